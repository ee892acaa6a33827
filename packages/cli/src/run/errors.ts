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
