import { PipewrightError } from '../errors.js';
import type { OutputStream } from '../ports/executor.js';
import type { LogStore } from '../ports/logs.js';
import { type LogStreamContext, MicroBatcher } from './batcher.js';
import { SecretMasker } from './masker.js';
import type { LogPipelineOptions, ResolvedLogPipelineOptions } from './options.js';
import { resolveLogPipelineOptions } from './options.js';
import { LineSplitter } from './splitter.js';

/** One job attempt's step: where {@link RunLogger.system} lines go. */
export interface LogStepContext {
  jobId: string;
  attempt: number;
  /** Step index (0-based); -1 for job-level lines. */
  step: number;
}

/** Context of {@link RunLogger.stream}: a step's stdout or stderr. */
export interface LogSinkContext extends LogStepContext {
  stream: OutputStream;
}

/** The sink of an abandoned run's log: everything written is dropped. */
const DROPPING_SINK: LogSink = {
  write: () => undefined,
  end: () => Promise.resolve(),
};

/** Where an executor writes one step stream's raw output. */
export interface LogSink {
  /**
   * Feeds a chunk. Returns a promise when the run's unstored output is above the
   * high-water mark: await it before reading more of the child's output.
   */
  write(chunk: Uint8Array): void | Promise<void>;
  /** Ends the stream: flushes its unterminated line; resolves when the run's lines so far are stored. */
  end(): Promise<void>;
}

/** Text of the line that replaces output dropped at the per-step cap. */
export function droppedMarker(bytes: number): string {
  return `[pipewright] ${bytes} bytes of output dropped`;
}

/**
 * The log pipeline of one run: raw chunks -> {@link LineSplitter} (per step stream)
 * -> {@link SecretMasker} (per run) -> {@link MicroBatcher} (per run) -> `LogStore`.
 *
 * @example
 * const logger = new RunLogger(store, runId, { onBatch: (b) => events.emit('log', b) });
 * logger.addMask(secretValue);
 * const out = logger.stream({ jobId, attempt: 1, step: 0, stream: 'stdout' });
 * child.stdout.on('data', async (chunk) => { const p = out.write(chunk); if (p) { child.stdout.pause(); await p; child.stdout.resume(); } });
 * await out.end();
 * await logger.close();
 */
export class RunLogger {
  /** The run's masker; values added apply to every line completed from then on. */
  readonly masker: SecretMasker;
  readonly #options: ResolvedLogPipelineOptions;
  readonly #batcher: MicroBatcher;
  readonly #store: LogStore;
  readonly #runId: string;
  readonly #open = new Set<StreamSink>();
  #closed = false;
  /** See {@link abandon}: attempts still ending here write into nothing, without an error. */
  #abandoned = false;

  /** `startSeq`: the `seq` of the run's last stored line, when another engine wrote some before (recovery). */
  constructor(store: LogStore, runId: string, options: LogPipelineOptions & { startSeq?: number } = {}) {
    const { startSeq, ...pipeline } = options;
    this.#options = resolveLogPipelineOptions(pipeline);
    this.#store = store;
    this.#runId = runId;
    this.masker = new SecretMasker({ minLength: this.#options.minMaskLength });
    this.#batcher = new MicroBatcher(store, runId, { ...this.#options, startSeq: startSeq ?? 0 });
  }

  /** The run these lines belong to. */
  get runId(): string {
    return this.#runId;
  }

  /** `seq` of the last line numbered so far. */
  get lastSeq(): number {
    return this.#batcher.lastSeq;
  }

  /**
   * Masks `value` in every line completed from now on (each line of a multi-line
   * value). Returns false when it is too short to be masked (see `minMaskLength`).
   */
  addMask(value: string): boolean {
    return this.masker.add(value);
  }

  /** `addMask` as a standalone function (for an executor's context), made once per logger. */
  readonly maskAdder = (value: string): void => {
    this.masker.add(value);
  };

  /** A sink for one step's stdout or stderr. */
  stream(ctx: LogSinkContext): LogSink {
    if (this.#abandoned) return DROPPING_SINK;
    this.#assertOpen('stream');
    const sink = new StreamSink(this, this.#batcher, this.#options, ctx, this.#open);
    this.#open.add(sink);
    return sink;
  }

  /** Writes pipewright's own text (masked, one line per `\n`) as `system` lines of a step. */
  system(ctx: LogStepContext, text: string): void {
    if (this.#abandoned) return;
    this.#assertOpen('system');
    const line = { jobId: ctx.jobId, attempt: ctx.attempt, step: ctx.step, stream: 'system' as const };
    const ts = this.#options.clock.now();
    const splitter = new LineSplitter((t) => this.#batcher.add(line, t, ts), {
      maxLineBytes: this.#options.maxLineBytes,
      masker: this.masker,
    });
    splitter.push(Buffer.from(text));
    splitter.end();
  }

  /** Resolves when every line numbered so far is stored. Rejects with `STORE_UNAVAILABLE` if the store failed. */
  flush(): Promise<void> {
    return this.#batcher.flush();
  }

  /**
   * Ends every open sink (flushing unterminated lines), stores everything, marks the
   * run's log complete with `store.end(runId)` and forgets the masked values.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await Promise.all([...this.#open].map((s) => s.end()));
    } finally {
      this.#closed = true;
    }
    try {
      await this.#batcher.flush();
    } catch (err) {
      // Followers must still learn that the log is over, but a store that just failed may take its
      // whole retry time to answer: end it in the background and report the failure now.
      Promise.resolve()
        .then(() => this.#store.end(this.#runId))
        .catch(() => undefined);
      this.#batcher.dispose();
      this.masker.clear();
      throw err;
    }
    try {
      await this.#store.end(this.#runId);
    } finally {
      this.#batcher.dispose();
      this.masker.clear();
    }
  }

  /**
   * Stops this run's log here without ending it: another engine took the run over and writes its
   * log from now on. Buffered and later lines of this logger are dropped; no stream can be opened.
   */
  abandon(): void {
    this.#abandoned = true;
    this.#closed = true;
    this.#batcher.abandon();
    this.#batcher.dispose();
    this.masker.clear();
  }

  #assertOpen(what: string): void {
    if (this.#closed) {
      throw new PipewrightError(
        'ENGINE_CLOSED',
        `RunLogger.${what}() called after close() for run ${this.#runId}; create the streams before closing the run's log`,
      );
    }
  }
}

class StreamSink implements LogSink {
  readonly #batcher: MicroBatcher;
  readonly #ctx: LogStreamContext;
  readonly #cap: number;
  readonly #clock: ResolvedLogPipelineOptions['clock'];
  readonly #splitter: LineSplitter;
  readonly #open: Set<StreamSink>;
  readonly #logger: RunLogger;
  #ts = 0;
  /** Text size of this stream's lines not yet stored, for the per-step cap. */
  #unstored = 0;
  /** [seq, size] of each write's lines, so stored ones can be subtracted from `#unstored`. */
  #marks: number[] = [];
  #markHead = 0;
  #dropped = 0;
  #ended: Promise<void> | undefined;

  constructor(
    logger: RunLogger,
    batcher: MicroBatcher,
    options: ResolvedLogPipelineOptions,
    ctx: LogSinkContext,
    open: Set<StreamSink>,
  ) {
    this.#logger = logger;
    this.#batcher = batcher;
    this.#ctx = { jobId: ctx.jobId, attempt: ctx.attempt, step: ctx.step, stream: ctx.stream };
    this.#cap = options.maxStepBufferBytes;
    this.#clock = options.clock;
    this.#open = open;
    this.#splitter = new LineSplitter(this.#onLine, { maxLineBytes: options.maxLineBytes, masker: logger.masker });
  }

  write(chunk: Uint8Array): void | Promise<void> {
    if (this.#ended !== undefined) {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `LogSink.write() after end() for run ${this.#logger.runId}, job ${this.#ctx.jobId}, step ${this.#ctx.step} (${this.#ctx.stream}); write every chunk before ending the stream`,
      );
    }
    this.#release();
    this.#ts = this.#clock.now();
    const before = this.#unstored;
    this.#splitter.push(chunk);
    if (this.#unstored !== before) this.#marks.push(this.#batcher.lastSeq, this.#unstored - before);
    if (this.#batcher.hasRoom()) return;
    return this.#batcher.waitForRoom();
  }

  end(): Promise<void> {
    if (this.#ended === undefined) {
      this.#release();
      this.#ts = this.#clock.now();
      this.#splitter.end();
      if (this.#dropped > 0) this.#emitDropped();
      this.#open.delete(this);
      this.#ended = this.#batcher.flush();
    }
    return this.#ended;
  }

  readonly #onLine = (text: string, known?: number): void => {
    // One UTF-8 size per line serves the cap, the drop count and the batcher's byte bound.
    const bytes = known ?? Buffer.byteLength(text);
    if (this.#unstored >= this.#cap) {
      this.#dropped += bytes + 1;
      return;
    }
    if (this.#dropped > 0) this.#emitDropped();
    this.#unstored += bytes;
    this.#batcher.add(this.#ctx, text, this.#ts, bytes);
  };

  #emitDropped(): void {
    const ctx = { jobId: this.#ctx.jobId, attempt: this.#ctx.attempt, step: this.#ctx.step, stream: 'system' as const };
    this.#batcher.add(ctx, droppedMarker(this.#dropped), this.#ts);
    this.#dropped = 0;
  }

  /** Subtracts the lines the store has accepted (or lost to a store failure) since the last write. */
  #release(): void {
    const stored = this.#batcher.settledSeq;
    const marks = this.#marks;
    let head = this.#markHead;
    while (head < marks.length && marks[head]! <= stored) {
      this.#unstored -= marks[head + 1]!;
      head += 2;
    }
    if (head === marks.length) {
      this.#marks = [];
      head = 0;
    } else if (head > 1024) {
      this.#marks = marks.slice(head);
      head = 0;
    }
    this.#markHead = head;
  }
}
