import { createHash } from 'node:crypto';

/**
 * The environment variable every step process of an attempt carries (like GitHub's
 * `RUNNER_TRACKING_ID`): a process that left the step's process group (`setsid`, a daemon)
 * still has it, so an executor can find and stop it when the step is aborted, and an engine
 * that takes over a lost attempt can stop what the dead engine's attempt left running.
 */
export const ATTEMPT_ID_ENV = 'PIPEWRIGHT_ATTEMPT_ID';

/** The value of {@link ATTEMPT_ID_ENV} for one attempt: the same in every engine, 24 hex digits. */
export function attemptIdOf(attempt: { runId: string; jobId: string; attempt: number }): string {
  return createHash('sha256')
    .update(`${attempt.runId}\n${attempt.jobId}\n${attempt.attempt}`)
    .digest('hex')
    .slice(0, 24);
}

/**
 * The environment variable of one step of an attempt (`<attempt id>.<step index>`): what an
 * executor stops when that step is aborted, or holds its output after it ended, without
 * touching what earlier steps of the attempt left running on purpose (a service started in
 * its own session for later steps).
 */
export const STEP_ID_ENV = 'PIPEWRIGHT_STEP_ID';
