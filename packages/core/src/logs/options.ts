import { z } from 'zod';
import { PipewrightError } from '../errors.js';
import type { LogBatch } from '../ports/logs.js';

/** Time source and timers of the log pipeline; inject a fake one in tests. */
export interface LogClock {
  /** Epoch milliseconds. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock; looks the globals up on every call so `vi.useFakeTimers()` applies after construction too. */
export const systemLogClock: LogClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Options of the log pipeline (splitter, masker, micro-batcher) of one run. */
export interface LogPipelineOptions {
  /**
   * Longest stored line, in UTF-8 bytes. A longer line is cut into pieces; every
   * piece after the first starts with {@link LINE_CONTINUATION_MARKER}.
   * @default 65536
   */
  maxLineBytes?: number;
  /**
   * A batch is sent to the store once it holds this many lines.
   * @default 1000
   */
  maxBatchLines?: number;
  /**
   * A batch is sent to the store once its lines' text reaches this size
   * (UTF-16 code units, which equals bytes for ASCII).
   * @default 262144
   */
  maxBatchBytes?: number;
  /**
   * A batch is sent at the latest this long after its first line arrived.
   * @default 100
   */
  flushIntervalMs?: number;
  /**
   * After the log store failed (past its retries), lines are discarded for this long without
   * blocking producers; then the store is tried again, and the first stored line says how
   * many were lost.
   * @default 5000
   */
  retryFailedAfterMs?: number;
  /**
   * Lines buffered for the run (not yet stored) above which `LogSink.write`
   * returns a promise: the producer should await it, which pauses reading the
   * child's output until the store has caught up to half of this.
   * Counted as text size plus 64 per line.
   * @default 2097152
   */
  highWaterMarkBytes?: number;
  /**
   * Hard cap on one step's buffered (not yet stored) output, for producers that
   * ignore backpressure. Output beyond it is dropped and replaced by one line
   * `[pipewright] N bytes of output dropped`.
   * @default 67108864
   */
  maxStepBufferBytes?: number;
  /**
   * Registered secret values shorter than this are not masked (masking `a` or
   * `ok` would shred every line). Lines of a multi-line value are masked when
   * they have at least `max(4, minMaskLength)` characters.
   * @default 3
   */
  minMaskLength?: number;
  /** Called once per stored batch (after `LogStore.append` resolved), e.g. to emit one engine event per batch. */
  onBatch?: (batch: LogBatch) => void;
  /** Called once when the store fails; later lines of the run are discarded and `flush`/`close` reject. */
  onError?: (error: PipewrightError) => void;
  /**
   * Clock and timers.
   * @default systemLogClock
   */
  clock?: LogClock;
}

/** {@link LogPipelineOptions} with every default filled in. */
export interface ResolvedLogPipelineOptions {
  maxLineBytes: number;
  maxBatchLines: number;
  maxBatchBytes: number;
  flushIntervalMs: number;
  retryFailedAfterMs: number;
  highWaterMarkBytes: number;
  maxStepBufferBytes: number;
  minMaskLength: number;
  onBatch: ((batch: LogBatch) => void) | undefined;
  onError: ((error: PipewrightError) => void) | undefined;
  clock: LogClock;
}

const int = (min: number) => z.number().int().min(min).max(Number.MAX_SAFE_INTEGER);
const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { message: 'Expected a function' });

const schema = z
  .object({
    maxLineBytes: int(8).default(64 * 1024),
    maxBatchLines: int(1).default(1000),
    maxBatchBytes: int(1).default(256 * 1024),
    flushIntervalMs: int(0).default(100),
    retryFailedAfterMs: int(0).default(5000),
    highWaterMarkBytes: int(1).default(2 * 1024 * 1024),
    maxStepBufferBytes: int(1).default(64 * 1024 * 1024),
    minMaskLength: int(1).default(3),
    onBatch: fn.optional(),
    onError: fn.optional(),
    clock: z
      .custom<LogClock>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as LogClock).now === 'function' &&
          typeof (v as LogClock).setTimeout === 'function' &&
          typeof (v as LogClock).clearTimeout === 'function',
        { message: 'Expected an object with now(), setTimeout() and clearTimeout()' },
      )
      .default(systemLogClock),
  })
  .strict();

function describe(value: unknown): string {
  if (typeof value === 'function') return 'function';
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  return `\`${shown.length > 40 ? `${shown.slice(0, 40)}...` : shown}\` (${value === null ? 'null' : typeof value})`;
}

/**
 * Validates log pipeline options and fills in defaults.
 * @throws PipewrightError `INVALID_ARGUMENT` naming every bad option, what was expected and what was given.
 */
export function resolveLogPipelineOptions(options: LogPipelineOptions = {}): ResolvedLogPipelineOptions {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = issue.path.join('.') || '(options)';
      const given =
        issue.code === 'unrecognized_keys'
          ? `unknown option(s) ${issue.keys.map((k) => `\`${k}\``).join(', ')}`
          : `got ${describe(issue.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k as PropertyKey], options))}`;
      return `\`${key}\`: ${issue.message}, ${given}`;
    });
    throw new PipewrightError('INVALID_ARGUMENT', `Invalid log pipeline options: ${problems.join('; ')}`, {
      details: { issues: problems },
    });
  }
  const o = parsed.data;
  if (o.maxBatchBytes > o.highWaterMarkBytes) {
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `Invalid log pipeline options: \`maxBatchBytes\` (${o.maxBatchBytes}) must not exceed \`highWaterMarkBytes\` (${o.highWaterMarkBytes}); raise the high-water mark or lower the batch size`,
    );
  }
  return {
    maxLineBytes: o.maxLineBytes,
    maxBatchLines: o.maxBatchLines,
    maxBatchBytes: o.maxBatchBytes,
    flushIntervalMs: o.flushIntervalMs,
    retryFailedAfterMs: o.retryFailedAfterMs,
    highWaterMarkBytes: o.highWaterMarkBytes,
    maxStepBufferBytes: o.maxStepBufferBytes,
    minMaskLength: o.minMaskLength,
    onBatch: o.onBatch as ResolvedLogPipelineOptions['onBatch'],
    onError: o.onError as ResolvedLogPipelineOptions['onError'],
    clock: o.clock,
  };
}
