import { lstat, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { PipewrightError } from '@pipewright/core';

/**
 * Throws the exec rejection (`infra`) both executors give for a step `working-directory` that
 * is not a directory: `hostPath` is where it would be on this host, `shown` how the step sees it.
 * With `inContainer` (the workspace root it is under), only a definite answer rejects: see
 * {@link missingInContainer}.
 */
export async function assertWorkingDir(
  hostPath: string,
  given: string,
  shown = hostPath,
  inContainer?: { root: string },
): Promise<void> {
  const missing = inContainer ? await missingInContainer(inContainer.root, hostPath) : await missingHere(hostPath);
  if (!missing) return;
  throw new PipewrightError(
    'EXECUTOR_UNAVAILABLE',
    `working-directory \`${given}\` does not exist in the workspace (${shown}): create it in an earlier step or fix the path`,
    { details: { workingDirectory: given } },
  );
}

async function missingHere(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  return !st?.isDirectory();
}

/**
 * Walks from the workspace root down, part by part: a symlink anywhere may point into the
 * container's own filesystem and a part the host cannot read may still be there, so either
 * leaves the decision to the container (false). Only a definite ENOENT/ENOTDIR, or a
 * part that is a plain file, is missing.
 */
async function missingInContainer(root: string, path: string): Promise<boolean> {
  const parts = relative(root, path).split(sep).filter(Boolean);
  let at = root;
  for (const part of parts) {
    at = join(at, part);
    try {
      const st = await lstat(at);
      if (st.isSymbolicLink()) return false;
      if (!st.isDirectory()) return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ENOTDIR';
    }
  }
  return false;
}
