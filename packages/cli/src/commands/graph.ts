import { PipewrightError, planPipeline, planToDot, planToJson, planToMermaid } from '@pipewright/core';
import { EXIT } from '../exit-codes.js';
import { loadPipeline, printDiagnostics } from './load.js';

/** `pipewright graph FILE [--format json|mermaid|dot]`. */
export async function graphCommand(file: string, opts: { format: 'json' | 'mermaid' | 'dot' }): Promise<number> {
  const r = await loadPipeline(file);
  if (!r.spec) {
    printDiagnostics(r.diagnostics);
    return EXIT.INVALID;
  }
  try {
    const plan = planPipeline(r.spec);
    const out =
      opts.format === 'mermaid'
        ? planToMermaid(plan)
        : opts.format === 'dot'
          ? planToDot(plan)
          : `${JSON.stringify(planToJson(plan), null, 2)}\n`;
    process.stdout.write(out);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof PipewrightError) {
      process.stderr.write(`${file}: ${err.message}\n`);
      return EXIT.INVALID;
    }
    throw err;
  }
}
