import { EXIT } from '../exit-codes.js';
import { loadPipeline, printDiagnostics } from './load.js';

/** `pipewright validate FILE... [--json]`: exit 0 when every file is valid, 2 otherwise. */
export async function validateCommand(files: string[], opts: { json?: boolean }): Promise<number> {
  const results = [];
  let invalid = 0;
  for (const file of files) {
    const r = await loadPipeline(file);
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    const warnings = r.diagnostics.filter((d) => d.severity === 'warning');
    if (errors.length) invalid++;
    results.push({ file, valid: errors.length === 0, errors, warnings });
    if (!opts.json) {
      printDiagnostics(r.diagnostics);
      if (!errors.length)
        process.stderr.write(
          `${file}: valid${warnings.length ? ` (${warnings.length} warning${warnings.length === 1 ? '' : 's'})` : ''}\n`,
        );
    }
  }
  if (opts.json) process.stdout.write(`${JSON.stringify({ valid: invalid === 0, files: results }, null, 2)}\n`);
  return invalid ? EXIT.INVALID : EXIT.OK;
}
