import { PipewrightError } from '../errors.js';
import type { LogBatch, LogLine, LogStore, LogStream } from '../ports/logs.js';
import type { LogClock } from './options.js';
import { systemLogClock } from './options.js';

/** Where a line comes from: one job attempt's step and stream. */
export interface LogStreamContext {
  jobId: string;
  attempt: number;
  /** Step index (0-based); -1 for job-level lines. */
  step: number;
  stream: LogStream;
}

/** Options of {@link MicroBatcher}; defaults as in `LogPipelineOptions`. */
export interface MicroBatcherOptions {
  maxBatchLines?: number;
  maxBatchBytes?: number;
  flushIntervalMs?: number;
  highWaterMarkBytes?: number;
  onBatch?: ((batch: LogBatch) => void) | undefined;
  onError?: ((error: PipewrightError) => void) | undefined;
  clock?: LogClock;
  /** `seq` of the run's last stored line: numbering goes on after it (a run taken over after a restart). @default 0 */
  startSeq?: number;
  /**
   * After a store failure, lines are discarded (producers never block on a dead store) for this
   * long; the next line or flush after it tries the store again, led by a marker line saying
   * how many lines were lost. @default 5000
   */
  retryFailedAfterMs?: number;
}

/** The line that stands for lines a failed store lost (DESIGN §6: nothing dropped silently). */
export function lostMarker(lines: number, reason: string): string {
  return `[pipewright] up to ${lines} log line${lines === 1 ? '' : 's'} lost: the log store failed (${reason})`;
}

/** Memory estimate of one buffered line beyond its text (object, array slot). */
export const LINE_OVERHEAD_BYTES = 64;

interface FlushWaiter {
  seq: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Numbers the lines of one run (`seq` from 1, gap-free) and sends them to the
 * {@link LogStore} in batches: at `maxBatchLines` lines, `maxBatchBytes` of text or
 * `flushIntervalMs` after the first buffered line, whichever comes first, and on
 * {@link flush}. At most one `append` is in flight, so batches arrive in order;
 * lines arriving meanwhile wait in the buffer, and {@link hasRoom} turns false when
 * the buffer exceeds the high-water mark (see {@link waitForRoom}).
 */
export class MicroBatcher {
  readonly #store: LogStore;
  readonly #runId: string;
  readonly #maxLines: number;
  readonly #maxBytes: number;
  readonly #intervalMs: number;
  readonly #highWater: number;
  readonly #lowWater: number;
  readonly #onBatch: ((batch: LogBatch) => void) | undefined;
  readonly #onError: ((error: PipewrightError) => void) | undefined;
  readonly #clock: LogClock;

  /** The batch being filled. */
  #open: LogLine[] = [];
  #openBytes = 0;
  /** Full batches waiting for the in-flight append, oldest first, and their UTF-8 sizes. */
  #sealed: LogLine[][] = [];
  #sealedBytes: number[] = [];
  /** Text size and line count of open + sealed lines. */
  #bytes = 0;
  #count = 0;
  #inFlightMemory = 0;
  #inFlight = false;
  #seq = 0;
  #storedSeq = 0;
  #timer: unknown = undefined;
  #failed: PipewrightError | undefined;
  /** When the store failed, and the lines lost since (given back their numbers: seq stays gap-free). */
  #failedAt = 0;
  #lost = 0;
  #lostCtx: LogStreamContext | undefined;
  /** `seq` of the last lost-lines marker added (0: none), so a marker lost again is not counted. */
  #markerSeq = 0;
  /** The run's log is another engine's now (see {@link abandon}): never sent to again. */
  #abandoned = false;
  /** `seq` up to which numbered lines have been counted as lost. */
  #countedThrough = 0;
  readonly #retryFailedAfterMs: number;
  #flushWaiters: FlushWaiter[] = [];
  #roomWaiters: (() => void)[] = [];
  #roomPromise: Promise<void> | undefined;

  constructor(store: LogStore, runId: string, options: MicroBatcherOptions = {}) {
    this.#store = store;
    this.#runId = runId;
    this.#maxLines = options.maxBatchLines ?? 1000;
    this.#maxBytes = options.maxBatchBytes ?? 256 * 1024;
    this.#intervalMs = options.flushIntervalMs ?? 100;
    this.#highWater = options.highWaterMarkBytes ?? 2 * 1024 * 1024;
    this.#lowWater = Math.floor(this.#highWater / 2);
    this.#onBatch = options.onBatch;
    this.#onError = options.onError;
    this.#clock = options.clock ?? systemLogClock;
    this.#seq = options.startSeq ?? 0;
    this.#storedSeq = this.#seq;
    this.#countedThrough = this.#seq;
    this.#retryFailedAfterMs = options.retryFailedAfterMs ?? 5000;
  }

  /** `seq` of the last line added (0 before the first). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** `seq` of the last line the store has accepted. */
  get storedSeq(): number {
    return this.#storedSeq;
  }

  /** `seq` through which every line is either stored or lost to a store failure: nothing up to it is pending. */
  get settledSeq(): number {
    return Math.max(this.#storedSeq, this.#countedThrough);
  }

  /** Estimated memory held by lines not yet stored (buffered and in flight). */
  get bufferedBytes(): number {
    return this.#bytes + this.#count * LINE_OVERHEAD_BYTES + this.#inFlightMemory;
  }

  /** The store error that stopped this batcher, if any. */
  get error(): PipewrightError | undefined {
    return this.#failed;
  }

  /**
   * Adds one (already masked) line and returns its `seq`; returns 0 (line discarded) after a store
   * failure. `bytes` is the text's UTF-8 size, when the caller has it already.
   */
  add(ctx: LogStreamContext, text: string, ts: number, bytes = Buffer.byteLength(text)): number {
    if (this.#failed !== undefined && !this.#retryFailed(ctx, ts)) {
      this.#lost++;
      this.#lostCtx = ctx;
      return 0;
    }
    const seq = ++this.#seq;
    const open = this.#open;
    open.push({
      seq,
      ts,
      runId: this.#runId,
      jobId: ctx.jobId,
      attempt: ctx.attempt,
      step: ctx.step,
      stream: ctx.stream,
      text,
    });
    // UTF-8 bytes, as `maxBatchBytes` says: a line of non-ASCII text weighs up to 3x its length.
    this.#openBytes += bytes;
    this.#bytes += bytes;
    this.#count++;
    if (open.length >= this.#maxLines || this.#openBytes >= this.#maxBytes) {
      this.#seal();
      if (!this.#inFlight) this.#pump();
    } else if (open.length === 1) {
      this.#timer = this.#clock.setTimeout(this.#onTimer, this.#intervalMs);
    }
    return seq;
  }

  /** False while the unstored lines exceed the high-water mark. */
  hasRoom(): boolean {
    return this.bufferedBytes <= this.#highWater || this.#failed !== undefined;
  }

  /** Resolves once the unstored lines are down to half the high-water mark (at once if they are). */
  waitForRoom(): Promise<void> {
    if (this.bufferedBytes <= this.#lowWater || this.#failed !== undefined) return Promise.resolve();
    if (this.#roomPromise === undefined) {
      this.#roomPromise = new Promise((resolve) => this.#roomWaiters.push(resolve));
      // Someone is blocked: send what is buffered without waiting for the timer.
      this.#seal();
      if (!this.#inFlight) this.#pump();
    }
    return this.#roomPromise;
  }

  /** Sends every line added so far; resolves when the store has them all. */
  flush(): Promise<void> {
    if (this.#failed !== undefined && !this.#retryFailed(this.#lostCtx, this.#clock.now())) {
      return Promise.reject(this.#failed);
    }
    const seq = this.#seq;
    if (this.settledSeq >= seq) return Promise.resolve();
    this.#seal();
    const done = new Promise<void>((resolve, reject) => this.#flushWaiters.push({ seq, resolve, reject }));
    if (!this.#inFlight) this.#pump();
    return done;
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#seal();
    if (!this.#inFlight) this.#pump();
  };

  /** Closes the open batch (if any) so it is sent next. */
  #seal(): void {
    if (this.#open.length === 0) return;
    this.#sealed.push(this.#open);
    this.#sealedBytes.push(this.#openBytes);
    this.#open = [];
    this.#openBytes = 0;
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #pump(): void {
    if (this.#sealed.length === 0 || this.#failed !== undefined) return;
    const batch = this.#sealed.shift() as LogLine[];
    const bytes = this.#sealedBytes.shift() as number;
    this.#bytes -= bytes;
    this.#count -= batch.length;
    this.#inFlight = true;
    this.#inFlightMemory = bytes + batch.length * LINE_OVERHEAD_BYTES;
    void this.#send({ runId: this.#runId, lines: batch });
  }

  async #send(batch: LogBatch): Promise<void> {
    try {
      await this.#store.append(this.#runId, batch);
    } catch (cause) {
      this.#fail(cause, batch);
      return;
    }
    this.#inFlight = false;
    this.#inFlightMemory = 0;
    this.#storedSeq = batch.lines[batch.lines.length - 1]!.seq;
    if (this.#markerSeq !== 0 && this.#storedSeq >= this.#markerSeq) {
      this.#lost = 0;
      this.#markerSeq = 0;
    }
    if (this.#onBatch !== undefined) {
      try {
        this.#onBatch(batch);
      } catch {
        // A listener's bug must not stop the log of the run.
      }
    }
    if (this.#flushWaiters.length > 0) {
      const stored = this.#storedSeq;
      const still: FlushWaiter[] = [];
      for (const w of this.#flushWaiters) {
        if (w.seq <= stored) w.resolve();
        else still.push(w);
      }
      this.#flushWaiters = still;
    }
    if (this.#roomPromise !== undefined && this.bufferedBytes <= this.#lowWater) this.#releaseRoom();
    this.#pump();
  }

  #releaseRoom(): void {
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    this.#roomPromise = undefined;
    for (const resolve of waiters) resolve();
  }

  /**
   * Once `retryFailedAfterMs` has passed since a store failure: back to normal, the marker of
   * the lost lines first (in the stream of `ctx`, or of the last lost line). False before that.
   */
  #retryFailed(ctx: LogStreamContext | undefined, ts: number): boolean {
    if (this.#abandoned || this.#clock.now() - this.#failedAt < this.#retryFailedAfterMs) return false;
    const reason = this.#failed?.details?.reason as string;
    this.#failed = undefined;
    // Counted until the marker is stored: if it is lost too, the next marker still counts these.
    const lost = this.#lost;
    if (lost > 0 && ctx !== undefined) {
      this.#markerSeq = this.add(
        { jobId: ctx.jobId, attempt: ctx.attempt, step: ctx.step, stream: 'system' },
        lostMarker(lost, reason),
        ts,
      );
    }
    return true;
  }

  #fail(cause: unknown, batch?: LogBatch): void {
    // An append still in flight when the log was abandoned: nothing to report or retry.
    if (this.#abandoned) return;
    const reason = cause instanceof Error ? cause.message : String(cause);
    this.#failed = new PipewrightError(
      'STORE_UNAVAILABLE',
      `Log store failed to append lines of run ${this.#runId} (${reason}); lines are discarded for ${this.#retryFailedAfterMs} ms, then the store is tried again, led by a line saying how many were lost. Check the log store.`,
      { cause, details: { runId: this.#runId, storedSeq: this.#storedSeq, reason } },
    );
    // Every numbered line not known to be stored is lost, and its number is not given again:
    // an append that failed here may have reached the store, which would then take a reused
    // number for a resend and drop the line. So the log has a gap, and the marker says how big.
    this.#failedAt = this.#clock.now();
    const from = Math.max(this.#storedSeq, this.#countedThrough);
    // A marker that is lost as well is not a lost line of its own: the next marker counts all.
    this.#lost += this.#seq - from - (this.#markerSeq > from ? 1 : 0);
    this.#countedThrough = this.#seq;
    this.#markerSeq = 0;
    this.#lostCtx = this.#open.at(-1) ?? this.#sealed.at(-1)?.at(-1) ?? batch?.lines.at(-1) ?? this.#lostCtx;
    this.#drop();
    try {
      this.#onError?.(this.#failed);
    } catch {
      // see onBatch
    }
  }

  /** Forgets every line not stored, stops the timer and lets every waiter go (`#failed` is set). */
  #drop(): void {
    this.#inFlight = false;
    this.#inFlightMemory = 0;
    this.#open = [];
    this.#openBytes = 0;
    this.#sealed = [];
    this.#sealedBytes = [];
    this.#bytes = 0;
    this.#count = 0;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const w of this.#flushWaiters) w.reject(this.#failed);
    this.#flushWaiters = [];
    this.#releaseRoom();
  }

  /**
   * The run's log is another writer's now (its engine lost the run's lease): every buffered line is
   * dropped, later ones are discarded, and nothing more is sent, ever (no marker either: the new
   * owner's numbering must not be crossed).
   */
  abandon(): void {
    this.#abandoned = true;
    this.#failed = new PipewrightError(
      'STORE_CONFLICT',
      `the log of run ${this.#runId} is written by another engine now`,
    );
    this.#drop();
  }

  /** Stops the timer; lines still buffered stay unsent (call {@link flush} first). */
  dispose(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
