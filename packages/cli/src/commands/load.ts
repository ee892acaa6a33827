import { open } from 'node:fs/promises';
import {
  DEFAULT_MAX_BYTES,
  type Diagnostic,
  formatDiagnostic,
  type ValidationResult,
  validatePipeline,
} from '@pipewright/core';

/** The parser's limit (DESIGN: bad input is refused quickly): a bigger file is not read at all. */
const MAX_PIPELINE_BYTES = DEFAULT_MAX_BYTES;

/** Reads and validates a pipeline file (`-`: standard input); a file that cannot be read becomes a diagnostic. */
export async function loadPipeline(file: string, actions: readonly string[] = []): Promise<ValidationResult> {
  const name = file === '-' ? '<stdin>' : file;
  const problem = (message: string): ValidationResult => ({
    diagnostics: [{ file: name, line: 1, column: 1, path: '', severity: 'error', message }],
  });
  let text: string;
  try {
    const read = file === '-' ? await readBounded(process.stdin) : await readFileBounded(file);
    if (read === undefined) {
      return problem(
        `cannot read pipeline: it is over ${MAX_PIPELINE_BYTES / (1024 * 1024)} MiB, the most a pipeline may be; split it`,
      );
    }
    text = read;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied'
            : ((err as Error).message ?? String(err));
    return problem(`cannot read pipeline: ${why}`);
  }
  return validatePipeline(text, { file: name, actions });
}

/** The file's text, or undefined when it is over the limit; checked before reading when the size is known. */
async function readFileBounded(file: string): Promise<string | undefined> {
  const fh = await open(file, 'r');
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (st.isFile()) return st.size > MAX_PIPELINE_BYTES ? undefined : await fh.readFile('utf8');
    // A device or a pipe (/dev/stdin, a FIFO): its size is unknown, so read at most the limit.
    return await readBounded(fh.createReadStream({ autoClose: false }));
  } finally {
    await fh.close();
  }
}

async function readBounded(stream: NodeJS.ReadableStream): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > MAX_PIPELINE_BYTES) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Prints diagnostics to stderr as `file:line:col: severity: message`. */
export function printDiagnostics(diagnostics: readonly Diagnostic[]): void {
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
}
