import type { FailureReason } from '../ports/executor.js';
import type { BackoffSpec, RetryOn, RetrySpec } from '../spec/types.js';
import type { Random } from './clock.js';

/** The un-jittered delay after failed attempt `n` (1-based): min(maxDelay, delay * factor^(n-1)). */
export function baseBackoffDelay(backoff: BackoffSpec, n: number): number {
  const d = Math.min(backoff.maxDelayMs, backoff.delayMs * backoff.factor ** Math.max(0, n - 1));
  return Number.isFinite(d) && d > 0 ? d : 0;
}

/**
 * The delay before the attempt after failed attempt `n`, with jitter drawn from
 * `random`: full = uniform(0, d), equal = d/2 + uniform(0, d/2), none = d.
 */
export function backoffDelay(backoff: BackoffSpec, n: number, random: Random): number {
  const d = baseBackoffDelay(backoff, n);
  switch (backoff.jitter) {
    case 'full':
      return Math.floor(random() * d);
    case 'equal':
      return Math.floor(d / 2 + random() * (d / 2));
    default:
      return d;
  }
}

/** Which `retry.on` class a failure belongs to; `cancelled` never retries. */
export function retryClassOf(reason: FailureReason | undefined): RetryOn | undefined {
  switch (reason) {
    case 'exit_code':
      return 'failure';
    case 'timeout':
      return 'timeout';
    case 'infra':
    case 'lost':
      return 'infra';
    default:
      return undefined;
  }
}

/** Facts about a failed attempt that decide a retry. */
export interface FailedAttempt {
  /** Number of the attempt that failed (1-based). */
  number: number;
  reason: FailureReason | undefined;
  exitCode?: number | null | undefined;
  nonRetryable?: boolean | undefined;
  retryAfterMs?: number | undefined;
  /** When the first attempt started (for `max-duration`). */
  firstStartedAt: number;
  now: number;
}

/** A retry decision: retry after `delayMs`, or not, and why. */
export type RetryDecision = { retry: true; delayMs: number } | { retry: false; why: string };

/** Applies a retry policy to a failed attempt. Pure: the jitter comes from `random`. */
export function decideRetry(policy: RetrySpec, failed: FailedAttempt, random: Random): RetryDecision {
  const cls = retryClassOf(failed.reason);
  if (cls === undefined) return { retry: false, why: 'cancelled attempts never retry' };
  if (failed.nonRetryable) return { retry: false, why: 'the step asked not to be retried' };
  if (failed.number >= policy.maxAttempts) return { retry: false, why: `max-attempts (${policy.maxAttempts}) reached` };
  if (!policy.on.includes(cls)) return { retry: false, why: `retry.on does not include \`${cls}\`` };
  if (cls === 'failure' && policy.exitCodes !== undefined) {
    if (failed.exitCode === undefined || failed.exitCode === null || !policy.exitCodes.includes(failed.exitCode))
      return { retry: false, why: `exit code ${failed.exitCode} is not in retry.exit-codes` };
  }
  const delayMs = Math.max(backoffDelay(policy.backoff, failed.number, random), failed.retryAfterMs ?? 0);
  if (policy.maxDurationMs !== undefined && failed.now + delayMs - failed.firstStartedAt >= policy.maxDurationMs) {
    return { retry: false, why: 'retry.max-duration reached' };
  }
  return { retry: true, delayMs };
}
