import { Command, CommanderError, Option } from 'commander';
import { graphCommand } from './commands/graph.js';
import { validateCommand } from './commands/validate.js';
import { EXIT } from './exit-codes.js';

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.OK;
  const program = new Command('pipewright')
    .description('Run GitHub-Actions-style pipelines on your machine, Docker or remote agents.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
    .showHelpAfterError('(run `pipewright --help` for usage)');

  program
    .command('validate')
    .description('validate pipeline files; errors as file:line:col: message')
    .argument('<files...>', 'pipeline YAML files')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (files: string[], opts: { json?: boolean }) => {
      code = await validateCommand(files, opts);
    });

  program
    .command('graph')
    .description('print the planned DAG of a pipeline')
    .argument('<file>', 'pipeline YAML file')
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'mermaid', 'dot']).default('json'))
    .action(async (file: string, opts: { format: 'json' | 'mermaid' | 'dot' }) => {
      code = await graphCommand(file, opts);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return EXIT.OK;
      return EXIT.INVALID;
    }
    throw err;
  }
  return code;
}
