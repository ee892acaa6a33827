import { lstat, stat } from 'node:fs/promises';
import { PipewrightError } from '@pipewright/core';

/**
 * Throws the exec rejection (`infra`) both executors give for a step `working-directory` that
 * is not a directory: `hostPath` is where it would be on this host, `shown` how the step sees it.
 * With `inContainer`, only a definite answer rejects: a symlink may point into the container's
 * own filesystem and a directory the host cannot read may still be there, so both are left to
 * the container to judge.
 */
export async function assertWorkingDir(
  hostPath: string,
  given: string,
  shown = hostPath,
  inContainer = false,
): Promise<void> {
  let missing: boolean;
  try {
    const st = await (inContainer ? lstat : stat)(hostPath);
    missing = !st.isDirectory() && !(inContainer && st.isSymbolicLink());
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    missing = code === 'ENOENT' || code === 'ENOTDIR' || !inContainer;
  }
  if (!missing) return;
  throw new PipewrightError(
    'EXECUTOR_UNAVAILABLE',
    `working-directory \`${given}\` does not exist in the workspace (${shown}): create it in an earlier step or fix the path`,
    { details: { workingDirectory: given } },
  );
}
