import { type Diagnostic, PipewrightError } from '@pipewright/core';
import { EXIT } from '../exit-codes.js';

/** A problem the CLI reports as one line on stderr and an exit code (usage: 2, infrastructure: 3). */
export class CliError extends Error {
  /** Process exit code for this error. */
  readonly exitCode: number;
  /** Stable code used in `--json` error documents. */
  readonly code: string;

  constructor(message: string, exitCode: number = EXIT.INVALID, code = exitCode === EXIT.INFRA ? 'INFRA' : 'USAGE') {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.code = code;
  }
}

/** Any error as a {@link CliError}: one that is not is an infrastructure error (exit 3), its message after `prefix`. */
export function asCliError(prefix: string, err: unknown): CliError {
  if (err instanceof CliError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new CliError(`${prefix}: ${msg}`, EXIT.INFRA, err instanceof PipewrightError ? err.code : 'INFRA');
}

/**
 * Reports a failed command: `pipewright NAME: message` on stderr and, with `--json`, the
 * `{error: {code, message, exitCode}}` document on stdout. Returns the exit code.
 */
export function reportFailure(
  name: string,
  out: { stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown } },
  json: boolean,
  err: CliError,
  diagnostics?: readonly Diagnostic[],
): number {
  out.stderr.write(`pipewright ${name}: ${err.message}\n`);
  if (json) out.stdout.write(errorDocument(err, diagnostics));
  return err.exitCode;
}

/** The `{error: {code, message, exitCode, diagnostics?}}` document `--json` prints for a failed command. */
export function errorDocument(err: CliError, diagnostics?: readonly Diagnostic[]): string {
  const doc = {
    error: { code: err.code, message: err.message, exitCode: err.exitCode, ...(diagnostics ? { diagnostics } : {}) },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
