/** Time source and timers of the engine; inject a fake one in tests. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node fires a timer at once past 2^31-1 ms (about 24.8 days, with a warning); longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer of any length (see {@link setLongTimeout}): a plain timer, or one re-armed in pieces. */
export type LongTimer = NodeJS.Timeout | { timer: NodeJS.Timeout };

/** `setTimeout` for any `ms`: waits past Node's 24.8-day limit are re-armed in pieces. */
export function setLongTimeout(fn: () => void, ms: number, unref = false): LongTimer {
  if (!(ms > MAX_TIMER_MS)) {
    // The usual case stays one plain timer, no extra allocation.
    const t = setTimeout(fn, ms);
    if (unref) t.unref();
    return t;
  }
  const handle = {} as { timer: NodeJS.Timeout };
  const arm = (left: number): void => {
    handle.timer =
      left > MAX_TIMER_MS ? setTimeout(() => arm(left - MAX_TIMER_MS), MAX_TIMER_MS) : setTimeout(fn, left);
    if (unref) handle.timer.unref();
  };
  arm(ms);
  return handle;
}

/** Clears a {@link setLongTimeout} timer. */
export function clearLongTimeout(handle: LongTimer | undefined): void {
  if (handle === undefined) return;
  clearTimeout('timer' in handle ? handle.timer : handle);
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setLongTimeout(fn, ms, true),
  clearTimeout: (h) => clearLongTimeout(h as LongTimer),
};

/** Timers that real ones fit, so code can sleep on plain timers or on a {@link Clock}. */
type Timers = Pick<Clock, 'setTimeout' | 'clearTimeout'>;
const PLAIN_TIMERS: Timers = {
  setTimeout: (fn, ms) => setLongTimeout(fn, ms),
  clearTimeout: (h) => clearLongTimeout(h as LongTimer),
};

/** Waits `ms` on `timers` (plain ones by default), ending early when `signal` aborts; never rejects. */
export function abortableSleep(ms: number, signal: AbortSignal, timers: Timers = PLAIN_TIMERS): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      timers.clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = timers.setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/** A seeded random source (mulberry32): the same seed gives the same sequence, so runs replay. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
