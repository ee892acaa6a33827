import { readFile } from 'node:fs/promises';
import { type Diagnostic, formatDiagnostic, type ValidationResult, validatePipeline } from '@pipewright/core';

/** Reads and validates a pipeline file; a missing file becomes a diagnostic. */
export async function loadPipeline(file: string, actions: readonly string[] = []): Promise<ValidationResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(err);
    return {
      diagnostics: [{ file, line: 1, column: 1, path: '', severity: 'error', message: `cannot read pipeline: ${why}` }],
    };
  }
  return validatePipeline(text, { file, actions });
}

/** Prints diagnostics to stderr as `file:line:col: severity: message`. */
export function printDiagnostics(diagnostics: readonly Diagnostic[]): void {
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
}
