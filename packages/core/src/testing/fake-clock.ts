import type { Clock } from '../engine/clock.js';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** Lets pending promise callbacks run (a few macrotask turns). */
export async function flushAsync(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * A manual clock for deterministic tests: time moves only through {@link FakeClock.advance},
 * which fires due timers in time order and lets async work settle between them.
 */
export class FakeClock implements Clock {
  private current: number;
  private timers: Timer[] = [];
  private nextId = 1;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const t: Timer = { id: this.nextId++, at: this.current + Math.max(0, ms), fn };
    this.timers.push(t);
    return t.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Number of pending timers. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    await flushAsync();
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > target) break;
      this.timers.shift();
      this.current = Math.max(this.current, next.at);
      next.fn();
      await flushAsync();
    }
    this.current = target;
    await flushAsync();
  }

  /** Advances in `step` increments until `done()` is true or `maxMs` elapsed; returns whether done. */
  async runUntil(done: () => boolean, { step = 1000, maxMs = 24 * 3_600_000 } = {}): Promise<boolean> {
    const end = this.current + maxMs;
    await flushAsync();
    while (!done() && this.current < end) {
      const next = this.timers.reduce<number | undefined>(
        (m, t) => (m === undefined || t.at < m ? t.at : m),
        undefined,
      );
      const jump = next !== undefined && next > this.current ? Math.min(next - this.current, step) : step;
      await this.advance(jump);
    }
    return done();
  }
}
