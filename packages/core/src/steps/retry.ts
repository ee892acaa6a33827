import type { BackoffSpec, RetrySpec } from '../spec/types.js';

/** Step-retry backoff: delay(n) = min(maxDelay, delay * factor^(n-1)), with jitter. `n` is 1-based. */
export function stepRetryDelay(backoff: BackoffSpec, n: number, random: () => number): number {
  const base = Math.min(backoff.maxDelayMs, backoff.delayMs * backoff.factor ** Math.max(0, n - 1));
  if (!Number.isFinite(base) || base <= 0) return 0;
  switch (backoff.jitter) {
    case 'full':
      return random() * base;
    case 'equal':
      return base / 2 + random() * (base / 2);
    default:
      return base;
  }
}

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
