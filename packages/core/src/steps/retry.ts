import type { RetrySpec } from '../spec/types.js';

/** What a failed step try was, for deciding whether to retry it. */
export type StepFailureKind = { kind: 'failure'; exitCode: number | null } | { kind: 'timeout' } | { kind: 'infra' };

/** Whether a step's retry policy retries this failure. */
export function shouldRetryStep(retry: RetrySpec, failure: StepFailureKind): boolean {
  if (failure.kind === 'timeout') return retry.on.includes('timeout');
  if (failure.kind === 'infra') return retry.on.includes('infra');
  if (!retry.on.includes('failure')) return false;
  if (retry.exitCodes === undefined) return true;
  return failure.exitCode !== null && retry.exitCodes.includes(failure.exitCode);
}
