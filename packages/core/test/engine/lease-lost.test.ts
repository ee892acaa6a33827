import {
  type AttemptOutcome,
  type AttemptSpec,
  Engine,
  type ExecContext,
  type PipewrightError,
} from '@pipewright/core';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
import { describe, expect, it } from 'vitest';

// DESIGN §4.8: a run is owned through a lease. An engine that stalled past it (a long GC or VM
// pause, a store outage longer than the TTL) may have been taken over; when it finds out, it must
// stop, not carry on beside the new owner.

const PIPELINE = `
on: workflow_dispatch
jobs:
  a: { runs-on: x, steps: [{ run: a }] }
  b: { runs-on: x, needs: a, steps: [{ run: b }] }
`;

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe('4.8 durability: an engine that lost its lease', () => {
  it('stops the run: aborts its attempts, writes nothing more for it, reports the loss, and wait() follows the store', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ now: () => now });
    const aborted: string[] = [];
    const started: string[] = [];
    const hanging = {
      name: 'process',
      runJob: (attempt: AttemptSpec, ctx: ExecContext) =>
        new Promise<AttemptOutcome>((resolve, reject) => {
          started.push(attempt.jobId);
          ctx.signal.addEventListener('abort', () => {
            aborted.push(attempt.jobId);
            // Executors often reject on abort: with the run's log already let go, that must not throw.
            if (attempt.jobId === 'a') reject(new Error('aborted'));
            else resolve({ status: 'cancelled', steps: [], outputs: {} } as AttemptOutcome);
          });
        }),
    };
    const engine = new Engine({
      store,
      logs: new MemoryLogStore(),
      executors: [hanging],
      leaseTtlMs: 3000,
      recoverOnStart: false,
    });
    const errors: PipewrightError[] = [];
    engine.on('error', (e) => errors.push(e as PipewrightError));
    const handle = await engine.submit(PIPELINE);
    expect(await until(() => started.includes('a'), 5000)).toBe(true);
    // The engine stalled: its lease expired and another engine took the run.
    now += 10_000;
    expect(await store.acquireLease(handle.id, 'engine-b', 60_000)).toBe(true);
    const before = await store.getJobs(handle.id);
    // The next renewal (every max(1 s, TTL / 3)) finds the lease gone.
    expect(await until(() => aborted.includes('a'), 5000)).toBe(true);
    expect(errors.map((e) => e.code)).toContain('STORE_CONFLICT');
    expect(errors.find((e) => e.code === 'STORE_CONFLICT')?.message).toMatch(/lost the run's lease/);
    await new Promise((r) => setTimeout(r, 200));
    // Nothing of the aborted attempt was written, and b never started.
    expect(await store.getJobs(handle.id)).toEqual(before);
    expect((await store.getRun(handle.id))?.status).toBe('running');
    expect(started).toEqual(['a']);
    // wait() follows the run through the store: the new owner finishes it.
    let report: string | undefined;
    void handle.wait().then((r) => {
      report = r.run.status;
    });
    await store.updateRun(handle.id, { status: 'succeeded', finishedAt: now });
    expect(await until(() => report !== undefined, 5000)).toBe(true);
    expect(report).toBe('succeeded');
    const t0 = Date.now();
    await engine.close();
    // No attempt was left behind for close() to wait out.
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a lease that merely expired (a stall, nobody took the run) is taken again: the run goes on', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ now: () => now });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const executor = {
      name: 'process',
      runJob: async (attempt: AttemptSpec) => {
        if (attempt.jobId === 'a') await gate;
        return { status: 'succeeded', steps: [], outputs: {} } as AttemptOutcome;
      },
    };
    const engine = new Engine({
      store,
      logs: new MemoryLogStore(),
      executors: [executor],
      leaseTtlMs: 3000,
      recoverOnStart: false,
    });
    const errors: PipewrightError[] = [];
    engine.on('error', (e) => errors.push(e as PipewrightError));
    const handle = await engine.submit(PIPELINE);
    now += 10_000; // the engine "stalled" past its TTL; nobody else is there
    await new Promise((r) => setTimeout(r, 1500)); // a renewal turn (every max(1 s, TTL / 3))
    release();
    const report = await handle.wait();
    expect(report.run.status).toBe('succeeded');
    expect(report.jobs.map((j) => [j.id, j.status, j.attempts.length])).toEqual([
      ['a', 'succeeded', 1],
      ['b', 'succeeded', 1],
    ]);
    expect(errors.map((e) => e.code)).not.toContain('STORE_CONFLICT');
    await engine.close();
  });
});
