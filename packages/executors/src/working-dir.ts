import { stat } from 'node:fs/promises';
import { PipewrightError } from '@pipewright/core';

/**
 * Throws the exec rejection (`infra`) both executors give for a step `working-directory` that
 * is not a directory: `hostPath` is where it would be on this host, `shown` how the step sees it.
 */
export async function assertWorkingDir(hostPath: string, given: string, shown = hostPath): Promise<void> {
  const st = await stat(hostPath).catch(() => undefined);
  if (st?.isDirectory()) return;
  throw new PipewrightError(
    'EXECUTOR_UNAVAILABLE',
    `working-directory \`${given}\` does not exist in the workspace (${shown}): create it in an earlier step or fix the path`,
    { details: { workingDirectory: given } },
  );
}
