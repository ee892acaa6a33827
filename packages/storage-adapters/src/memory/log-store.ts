import type { LogBatch, LogFollowOptions, LogLine, LogReadOptions, LogStore, LogStream } from '@pipewright/core';
import { LINE_OVERHEAD_BYTES } from '@pipewright/core';
import { followerClosed, invalid } from '../errors.js';
import { checkBatch, checkReadOptions, filterLines, indexAfter } from '../log-util.js';

/** Options of {@link MemoryLogStore}. */
export interface MemoryLogStoreOptions {
  /**
   * Most lines a follower receives in one batch.
   * @default 1000
   */
  maxFollowBatch?: number;
  /**
   * Most bytes of log kept per run: each line's text in UTF-8 bytes, plus 64 for the line
   * itself (so empty lines count too). Past it the oldest lines are dropped (the
   * newest, where a failure shows, are kept) and a reader that starts before them gets one
   * `system` line saying how many lines and bytes were dropped; `Infinity` keeps every line.
   * @default 67108864 (64 MiB)
   */
  maxBytesPerRun?: number;
}

/** {@link MemoryLogStoreOptions.maxBytesPerRun}'s default: 64 MiB of line text per run. */
const DEFAULT_MAX_BYTES_PER_RUN = 64 * 1024 * 1024;
/**
 * What a kept line counts against the cap besides its text: what it costs in memory (its object
 * and array slot, the log pipeline's own estimate), so that a flood of empty lines is bounded too.
 */
const LINE_COST = LINE_OVERHEAD_BYTES;

// One fixed-shape object per line without the run id (the run's map key holds it);
// job ids are interned so a 100,000-line job stores its id once.
class StoredLine {
  constructor(
    readonly seq: number,
    readonly ts: number,
    readonly jobId: string,
    readonly attempt: number,
    readonly step: number,
    readonly stream: LogStream,
    readonly text: string,
    /** UTF-8 bytes of `text`, counted once for the run's cap. */
    readonly bytes: number,
  ) {}
}

/** What the run's cap has dropped so far: the marker line stands at `line.seq` (the last dropped line's). */
interface Dropped {
  lines: number;
  bytes: number;
  line: StoredLine;
}

interface RunLog {
  /** Kept lines from index `head` on; those before it are dropped and go at the next compaction. */
  lines: StoredLine[];
  head: number;
  /** What the kept lines count against the cap: their text's UTF-8 bytes and LINE_COST each. */
  bytes: number;
  /** The same for the dropped lines still in `lines` (before `head`). */
  heldBytes: number;
  dropped: Dropped | undefined;
  jobIds: Map<string, string>;
  ended: boolean;
  waiters: Set<() => void>;
}

function toLine(runId: string, s: StoredLine): LogLine {
  return {
    seq: s.seq,
    ts: s.ts,
    runId,
    jobId: s.jobId,
    attempt: s.attempt,
    step: s.step,
    stream: s.stream,
    text: s.text,
  };
}

/** A {@link LogStore} in process memory; followers wake on appends, they do not poll. */
export class MemoryLogStore implements LogStore {
  readonly #runs = new Map<string, RunLog>();
  #closed = false;
  readonly #maxFollowBatch: number;
  readonly #maxBytesPerRun: number;

  constructor(options: MemoryLogStoreOptions = {}) {
    this.#maxFollowBatch = options.maxFollowBatch ?? 1000;
    const cap = options.maxBytesPerRun ?? DEFAULT_MAX_BYTES_PER_RUN;
    if (typeof cap !== 'number' || !(cap > 0)) {
      throw invalid(
        `MemoryLogStore maxBytesPerRun must be a positive number of bytes (or Infinity), got ${String(cap)}`,
      );
    }
    this.#maxBytesPerRun = cap;
  }

  #log(runId: string): RunLog {
    let log = this.#runs.get(runId);
    if (!log) {
      log = {
        lines: [],
        head: 0,
        bytes: 0,
        heldBytes: 0,
        dropped: undefined,
        jobIds: new Map(),
        ended: false,
        waiters: new Set(),
      };
      this.#runs.set(runId, log);
    }
    return log;
  }

  #wake(log: RunLog): void {
    const waiters = [...log.waiters];
    log.waiters.clear();
    for (const w of waiters) w();
  }

  async append(runId: string, batch: LogBatch): Promise<void> {
    checkBatch(runId, batch);
    const log = this.#log(runId);
    let last = log.lines.at(-1)?.seq ?? 0;
    let added = false;
    for (const l of batch.lines) {
      // A resent batch (at-least-once producer) repeats lines we have: skip them.
      if (l.seq <= last) continue;
      let jobId = log.jobIds.get(l.jobId);
      if (jobId === undefined) {
        jobId = l.jobId;
        log.jobIds.set(jobId, jobId);
      }
      const bytes = Buffer.byteLength(l.text);
      log.lines.push(new StoredLine(l.seq, l.ts, jobId, l.attempt, l.step, l.stream, l.text, bytes));
      log.bytes += bytes + LINE_COST;
      last = l.seq;
      added = true;
    }
    if (log.bytes > this.#maxBytesPerRun) this.#trim(log);
    if (added) this.#wake(log);
  }

  /** Drops the oldest lines until the run is within its cap again; the newest line always stays. */
  #trim(log: RunLog): void {
    const { lines } = log;
    while (log.bytes > this.#maxBytesPerRun && lines.length - log.head > 1) {
      const gone = lines[log.head++] as StoredLine;
      log.bytes -= gone.bytes + LINE_COST;
      log.heldBytes += gone.bytes + LINE_COST;
      const d = log.dropped ?? { lines: 0, bytes: 0, line: gone };
      d.lines++;
      d.bytes += gone.bytes;
      d.line = gone;
      log.dropped = d;
    }
    // Dropped lines leave the array once they hold half the cap's bytes or are half of its slots,
    // so a run holds at most 1.5 times its cap; each kept line is moved at most twice per cap's
    // worth of dropped text.
    if (log.heldBytes * 2 > this.#maxBytesPerRun || (log.head > 1024 && log.head * 2 > lines.length)) {
      log.lines = lines.slice(log.head);
      log.head = 0;
      log.heldBytes = 0;
    }
  }

  /** The index of the first kept line after `after`. */
  #startAfter(log: RunLog, after: number): number {
    return Math.max(log.head, indexAfter(log.lines, after));
  }

  /**
   * The line that stands for the dropped ones, for a reader that starts before them; whatever
   * the reader's job or step filter, since the dropped lines may have been of any job.
   */
  #droppedMarker(runId: string, log: RunLog, after: number): LogLine | undefined {
    const d = log.dropped;
    if (d === undefined || after >= d.line.seq) return undefined;
    const cap = this.#maxBytesPerRun;
    // A line of the run (jobId ''): the dropped lines may have been any job's.
    return {
      seq: d.line.seq,
      ts: d.line.ts,
      runId,
      jobId: '',
      attempt: 0,
      step: -1,
      stream: 'system',
      text: `[pipewright] earlier log lines of this run were dropped, up to line ${d.line.seq} (${d.lines} lines, ${d.bytes} bytes in all): the memory log store keeps the last ${cap} bytes of a run (MemoryLogStore maxBytesPerRun); use a Redis or S3 log store to keep them all`,
    };
  }

  async lastSeq(runId: string): Promise<number> {
    return this.#runs.get(runId)?.lines.at(-1)?.seq ?? 0;
  }

  async read(runId: string, options: LogReadOptions = {}): Promise<LogLine[]> {
    checkReadOptions(options);
    const log = this.#runs.get(runId);
    if (!log) return [];
    const after = options.after ?? 0;
    const marker = this.#droppedMarker(runId, log, after);
    const start = this.#startAfter(log, after);
    if (marker === undefined) return filterLines(log.lines, start, options, (s) => toLine(runId, s));
    if (options.limit !== undefined && options.limit < 1) return [];
    const rest = options.limit === undefined ? options : { ...options, limit: options.limit - 1 };
    return [marker, ...filterLines(log.lines, start, rest, (s) => toLine(runId, s))];
  }

  async *follow(runId: string, options: LogFollowOptions = {}): AsyncGenerator<LogBatch> {
    checkReadOptions(options);
    const { signal } = options;
    if (signal?.aborted) return;
    if (this.#closed) throw followerClosed('memory log store', runId);
    const log = this.#log(runId);
    let last = options.after ?? 0;
    for (;;) {
      const marker = this.#droppedMarker(runId, log, last);
      if (marker !== undefined) {
        last = marker.seq;
        yield { runId, lines: [marker] };
        if (signal?.aborted) return;
        continue;
      }
      const start = this.#startAfter(log, last);
      if (start < log.lines.length) {
        const slice = log.lines.slice(start, start + this.#maxFollowBatch);
        last = slice.at(-1)!.seq;
        yield { runId, lines: slice.map((s) => toLine(runId, s)) };
        if (signal?.aborted) return;
        continue;
      }
      if (log.ended) return;
      // Closed while the consumer held a batch: no wake-up is coming.
      if (this.#closed) throw followerClosed('memory log store', runId);
      await new Promise<void>((resolve) => {
        const done = () => {
          signal?.removeEventListener('abort', done);
          log.waiters.delete(done);
          resolve();
        };
        log.waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
      if (signal?.aborted) return;
      if (this.#closed && !log.ended) throw followerClosed('memory log store', runId);
    }
  }

  async end(runId: string): Promise<void> {
    const log = this.#log(runId);
    log.ended = true;
    this.#wake(log);
  }

  /** Wakes every follower: those of an ended log finish, the others fail (`STORE_UNAVAILABLE`). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const log of this.#runs.values()) this.#wake(log);
  }
}
