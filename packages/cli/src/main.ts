import { RUN_STATUSES } from '@pipewright/core';
import { Command, CommanderError, Option } from 'commander';
import { graphCommand } from './commands/graph.js';
import { runCommand } from './commands/run.js';
import { logsCommand, type RawLogsOptions, type RawRunsOptions, runsCommand } from './commands/stored.js';
import { validateCommand } from './commands/validate.js';
import { EXIT } from './exit-codes.js';
import { guardStdout, releaseInterrupts, stdoutWriteFailure } from './run/environment.js';
import { CliError, errorDocument } from './run/errors.js';
import type { RawRunOptions } from './run/options.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  // Every command, validate and graph included, may be piped into `head`.
  guardStdout();
  let code: number = EXIT.OK;
  const program = new Command('pipewright')
    .description('Run GitHub-Actions-style pipelines on your machine or in Docker.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
    .showHelpAfterError('(run `pipewright --help` for usage)')
    // Only `run` takes over a Ctrl-C held since start-up (holdInterrupts); the others stop as usual.
    .hook('preAction', (_program, action) => {
      if (action.name() !== 'run') releaseInterrupts();
    });

  program
    .command('run')
    .description(
      'run a pipeline to the end on this machine (exit 0 succeeded, 1 failed, 2 invalid, 3 infrastructure, 130 cancelled)',
    )
    .argument('<file>', 'pipeline YAML file')
    .option('--input <name=value>', 'a workflow_dispatch input (repeatable)', collect, [])
    .option('--var <name=value>', 'a configuration variable, `vars.NAME` (repeatable; shown in clear)', collect, [])
    .option(
      '--secret <NAME>',
      'pass $NAME from the environment as secrets.NAME, masked everywhere (repeatable)',
      collect,
      [],
    )
    .addOption(new Option('--executor <name>', 'where jobs run').choices(['process', 'docker']).default('process'))
    .option('--store <url>', 'state store URL: memory or redis://HOST:PORT/DB', 'memory')
    .option('--log-store <url>', 'log store URL: memory, redis://HOST:PORT/DB or s3://BUCKET/PREFIX', 'memory')
    .option(
      '--s3-endpoint <url>',
      'S3-compatible endpoint for an s3:// log store (default: $AWS_ENDPOINT_URL, else AWS)',
    )
    .option('--concurrency <n>', 'jobs running at once', '8')
    .option('--logs', 'print step output as `job/step | line`')
    .option('--json', 'print the run report as JSON on stdout (everything else goes to stderr)')
    .option('--quiet', 'print only the final summary and errors')
    .action(async (file: string, opts: RawRunOptions) => {
      code = await runCommand(file, opts);
    });

  program
    .command('runs')
    .description('list runs kept in a state store, newest first')
    .requiredOption('--store <url>', 'state store URL: redis://HOST:PORT/DB')
    .option(
      '--status <status>',
      `only runs with this status (repeatable or comma-separated: ${RUN_STATUSES.join(', ')})`,
      collect,
      [],
    )
    .option('--limit <n>', 'at most this many runs', '20')
    .option('--json', 'print {runs:[...]} as JSON on stdout')
    .action(async (opts: RawRunsOptions) => {
      code = await runsCommand(opts);
    });

  program
    .command('logs')
    .description("print a stored run's log lines in order, as `job/step | line`")
    .argument('<run-id>', 'the run (see `pipewright runs`)')
    .requiredOption('--store <url>', 'state store URL: redis://HOST:PORT/DB')
    .requiredOption('--log-store <url>', 'log store URL: redis://HOST:PORT/DB or s3://BUCKET/PREFIX')
    .option(
      '--s3-endpoint <url>',
      'S3-compatible endpoint for an s3:// log store (default: $AWS_ENDPOINT_URL, else AWS)',
    )
    .option('--follow', "keep printing new lines until the run's log ends")
    .option('--job <id>', 'only lines of this job instance')
    .option('--json', 'one JSON object per line: {seq,ts,job,attempt,step,stepName,stream,text}')
    .action(async (runId: string, opts: RawLogsOptions) => {
      code = await logsCommand(runId, opts);
    });

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
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
        return EXIT.OK;
      // Commander has printed the usage error; under --json, stdout still holds one document.
      if (argv.includes('--json'))
        process.stdout.write(errorDocument(new CliError(err.message.replace(/^error: /, ''))));
      return EXIT.INVALID;
    }
    throw err;
  }
  return code;
}

/**
 * The process's exit code for a command's, once stdout and stderr have taken everything: a command that
 * succeeded but whose output (a report, a graph) could not be written (a full disk; a reader
 * that went away is fine) exits 3, saying so.
 */
export async function exitCodeAfterOutput(code: number): Promise<number> {
  await drained(process.stdout);
  const lost = stdoutWriteFailure();
  let exit = code;
  if (lost !== undefined && code === EXIT.OK) {
    process.stderr.write(`pipewright: could not write to stdout (${lost.code ?? lost.message})\n`);
    exit = EXIT.INFRA;
  }
  await drained(process.stderr);
  return exit;
}

/** Resolves once everything written to `stream` so far has been handed to the OS. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}
