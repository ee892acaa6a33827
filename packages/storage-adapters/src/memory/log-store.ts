import type { LogBatch, LogFollowOptions, LogLine, LogReadOptions, LogStore, LogStream } from '@pipewright/core';
import { followerClosed } from '../errors.js';
import { checkBatch, checkReadOptions, filterLines, indexAfter } from '../log-util.js';

/** Options of {@link MemoryLogStore}. */
export interface MemoryLogStoreOptions {
  /**
   * Most lines a follower receives in one batch.
   * @default 1000
   */
  maxFollowBatch?: number;
}

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
  ) {}
}

interface RunLog {
  lines: StoredLine[];
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

  constructor(options: MemoryLogStoreOptions = {}) {
    this.#maxFollowBatch = options.maxFollowBatch ?? 1000;
  }

  #log(runId: string): RunLog {
    let log = this.#runs.get(runId);
    if (!log) {
      log = { lines: [], jobIds: new Map(), ended: false, waiters: new Set() };
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
      log.lines.push(new StoredLine(l.seq, l.ts, jobId, l.attempt, l.step, l.stream, l.text));
      last = l.seq;
      added = true;
    }
    if (added) this.#wake(log);
  }

  async lastSeq(runId: string): Promise<number> {
    return this.#runs.get(runId)?.lines.at(-1)?.seq ?? 0;
  }

  async read(runId: string, options: LogReadOptions = {}): Promise<LogLine[]> {
    checkReadOptions(options);
    const log = this.#runs.get(runId);
    if (!log) return [];
    const start = indexAfter(log.lines, options.after ?? 0);
    return filterLines(log.lines, start, options, (s) => toLine(runId, s));
  }

  async *follow(runId: string, options: LogFollowOptions = {}): AsyncGenerator<LogBatch> {
    checkReadOptions(options);
    const { signal } = options;
    if (signal?.aborted) return;
    if (this.#closed) throw followerClosed('memory log store', runId);
    const log = this.#log(runId);
    let last = options.after ?? 0;
    for (;;) {
      const start = indexAfter(log.lines, last);
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
