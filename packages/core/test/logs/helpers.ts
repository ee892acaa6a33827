import type { LogBatch, LogClock, LogLine, LogStore } from '@pipewright/core';

/** A LogStore for these tests: keeps batches (or only counts them), optionally slow. */
export class TestLogStore implements LogStore {
  batches: LogBatch[] = [];
  ended: string[] = [];
  count = 0;
  bytes = 0;
  appendsInFlight = 0;
  maxAppendsInFlight = 0;
  constructor(
    private readonly opts: { delayMs?: number; retain?: boolean; fail?: Error; onAppend?: (b: LogBatch) => void } = {},
  ) {}
  async append(_runId: string, batch: LogBatch): Promise<void> {
    this.appendsInFlight++;
    this.maxAppendsInFlight = Math.max(this.maxAppendsInFlight, this.appendsInFlight);
    try {
      if (this.opts.delayMs) await new Promise((r) => setTimeout(r, this.opts.delayMs));
      if (this.opts.fail) throw this.opts.fail;
      this.count += batch.lines.length;
      for (const l of batch.lines) this.bytes += l.text.length;
      this.opts.onAppend?.(batch);
      if (this.opts.retain !== false) this.batches.push(batch);
    } finally {
      this.appendsInFlight--;
    }
  }
  async read(): Promise<LogLine[]> {
    return this.lines();
  }
  async *follow(): AsyncIterable<LogBatch> {}
  async end(runId: string): Promise<void> {
    this.ended.push(runId);
  }
  lines(): LogLine[] {
    return this.batches.flatMap((b) => b.lines);
  }
  texts(): string[] {
    return this.lines().map((l) => l.text);
  }
}

/** A manual clock: timers fire only in {@link advance}. */
export class FakeClock implements LogClock {
  t = 1_700_000_000_000;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= until && (!best || e[1].at < best[1].at)) best = e;
      if (!best) break;
      this.#timers.delete(best[0]);
      this.t = best[1].at;
      best[1].fn();
    }
    this.t = until;
  }
}

/** Lets pending promise callbacks (store appends) run. */
export const settle = () => new Promise((r) => setImmediate(r));

export const enc = (s: string) => Buffer.from(s, 'utf8');
