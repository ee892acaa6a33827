/**
 * Why a job attempt's `AbortSignal` was aborted. The engine aborts with one of
 * these as `signal.reason` so executors can tell a job timeout from a cancel.
 */
export interface AbortReason {
  type: 'timeout' | 'cancel';
  /** A forced cancel (second Ctrl-C): no further step may start, cleanup steps included. */
  force?: boolean;
  message?: string;
  /**
   * Aborted when cleanup steps (`if: always()`) that run after this abort must
   * stop too, e.g. on a forced second cancel. A signal can abort only once, so
   * the escalation needs a second one.
   */
  cleanupSignal?: AbortSignal;
}

/** Builds a cancel reason. */
export function cancelReason(message?: string, force = false): AbortReason {
  return message === undefined ? { type: 'cancel', force } : { type: 'cancel', force, message };
}

/** Builds a timeout reason. */
export function timeoutReason(message?: string): AbortReason {
  return message === undefined ? { type: 'timeout' } : { type: 'timeout', message };
}

/**
 * The {@link AbortReason} of an aborted signal, or `undefined` when it is not
 * aborted. Foreign reasons are mapped: a `TimeoutError` (from
 * `AbortSignal.timeout`) is a timeout, anything else a cancel.
 */
export function abortReasonOf(signal: AbortSignal): AbortReason | undefined {
  if (!signal.aborted) return undefined;
  const r: unknown = signal.reason;
  if (typeof r === 'object' && r !== null) {
    const t = (r as { type?: unknown }).type;
    if (t === 'timeout' || t === 'cancel') return r as AbortReason;
    if ((r as { name?: unknown }).name === 'TimeoutError') return { type: 'timeout' };
  }
  return { type: 'cancel' };
}

const ABORTED = AbortSignal.abort();

/**
 * When the kill-grace of a step aborted through `signal` ends early: an aborted signal for a
 * cancel that is forced from the start (no grace at all), else the reason's `cleanupSignal`,
 * which a forced cancel after the fact (second Ctrl-C) aborts. Undefined: the grace runs out.
 */
export function graceCutShort(signal: AbortSignal): AbortSignal | undefined {
  const why = abortReasonOf(signal);
  return why?.force ? ABORTED : why?.cleanupSignal;
}
