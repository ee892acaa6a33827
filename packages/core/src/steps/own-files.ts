import { constants } from 'node:fs';
import { lstat, mkdir, open, unlink } from 'node:fs/promises';

// The engine reads and writes its own files in a workspace from the host, where a step can
// replace them: with a symlink (a container step is root in its container, and the workspace
// is bind-mounted) that would send the engine's writes or reads anywhere on the host, with a
// FIFO that would block a thread-pool thread for ever. Every executor's workspace and the step
// loop use these, so none follows a link or waits on a FIFO.

/** The kinds of file the step loop gives every step: `$GITHUB_OUTPUT`, `$GITHUB_ENV`, `$GITHUB_PATH`, `$GITHUB_STEP_SUMMARY`. */
export const STEP_FILE_KINDS = ['output', 'env', 'path', 'summary'] as const;
/** One of {@link STEP_FILE_KINDS}. */
export type StepFileKind = (typeof STEP_FILE_KINDS)[number];

/** The name of step `index`'s file of one kind, in the workspace's `.pipewright/` directory. */
export function stepFileName(index: number, kind: StepFileKind): string {
  return `step-${index}-${kind}`;
}

const STEP_FILE_NAME = new RegExp(`^step-\\d+-(?:${STEP_FILE_KINDS.join('|')})$`);

/** True for a name {@link stepFileName} gives (workspaces recycle or remove these). */
export function isStepFileName(name: string): boolean {
  return STEP_FILE_NAME.test(name);
}

/** Create or truncate, never through a symlink (ELOOP instead), never blocking on a FIFO (ENXIO). */
export const OWN_WRITE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Read, never through a symlink, never blocking on a FIFO. */
export const OWN_READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Makes `path` a real directory: a link or file a step left in its place is replaced. */
export async function ownDir(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st?.isDirectory()) return;
  if (st) await unlink(path);
  await mkdir(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
}

/** Writes `text` to `path`, replacing a symlink found there instead of writing through it. */
export async function writeOwnFile(path: string, text: string, mode: number): Promise<void> {
  const fh = await open(path, OWN_WRITE_FLAGS, mode).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'ELOOP') throw e;
    await unlink(path);
    return open(path, OWN_WRITE_FLAGS, mode);
  });
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
}

/** Reads `path` when it is a regular file (not a symlink, FIFO or directory). */
export async function readOwnFile(path: string): Promise<string> {
  const fh = await open(path, OWN_READ_FLAGS);
  try {
    if (!(await fh.stat()).isFile()) throw new Error(`${path} is not a regular file`);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}
