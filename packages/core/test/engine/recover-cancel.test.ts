import { Engine, type Executor, PipewrightError, seededRandom } from '@pipewright/core';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
import { describe, expect, it } from 'vitest';
import { interceptStore } from './helpers.js';

const YAML = 'jobs:\n  a: {runs-on: x, retry: {max-attempts: 3}, steps: [{run: x}]}\n';
/** Runs until aborted, then ends cancelled. */
const hanging: Executor = {
  name: 'process',
  runJob: (_a, ctx) =>
    new Promise((res) => {
      ctx.signal.addEventListener('abort', () =>
        res({ status: 'cancelled', reason: 'cancelled', workerId: 'w', steps: [], outputs: {} }),
      );
    }),
};

describe('4.8 recover() and cancel()', () => {
  it('applies a cancel of a run that recover() has taken but is still loading', async () => {
    const store = new MemoryStore();
    const e1 = new Engine({
      store,
      logs: new MemoryLogStore(),
      executors: [hanging],
      random: seededRandom(1),
      instanceId: 'e1',
    });
    const first = await e1.submit(YAML);
    const second = await e1.submit(YAML);
    await e1.settle();
    // e1 is abandoned (a crash). e2 takes over; the store is slow to answer getJobs for the second run.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reachedSecond!: () => void;
    const atSecond = new Promise<void>((r) => (reachedSecond = r));
    const slow = interceptStore(store, {
      acquireLease: async () => true,
      getJobs: async (original, id) => {
        if (id === second.id) {
          reachedSecond();
          await gate;
        }
        return original(id);
      },
    });
    const e2 = new Engine({
      store: slow,
      logs: new MemoryLogStore(),
      executors: [hanging],
      random: seededRandom(1),
      instanceId: 'e2',
    });
    const recovering = e2.recover();
    await atSecond; // the first run is taken, not yet in the scheduler
    const cancelled = e2.cancel(first.id, { reason: 'user pressed stop' });
    release();
    expect((await recovering).sort()).toEqual([first.id, second.id].sort());
    await cancelled;
    const report = await e2.wait(first.id);
    expect(report.run.status).toBe('cancelled');
    expect(report.run.cancel?.reason).toBe('user pressed stop');
    await e2.close();
    await e1.close();
  });

  it('a cancel through another engine on the same store reaches the run (its owner applies it)', async () => {
    const store = new MemoryStore();
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e1' });
    const e2 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e2' });
    const run = await e1.submit(YAML);
    await e1.settle();
    expect((await e1.getRun(run.id))?.jobs[0]?.status).toBe('running');
    await e2.cancel(run.id, { reason: 'stopped from the dashboard', by: 'alice' });
    const report = await e1.wait(run.id);
    expect(report.run.status).toBe('cancelled');
    expect(report.run.cancel).toMatchObject({ by: 'alice', reason: 'stopped from the dashboard', force: false });
    expect(report.jobs[0]?.status).toBe('cancelled');
    // A job of a run another engine owns cannot be cancelled from here: said, not silently dropped.
    const other = await e1.submit(YAML);
    await e1.settle();
    await expect(e2.cancel({ runId: other.id, job: 'a' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await e2.cancel(other.id);
    expect((await e1.wait(other.id)).run.status).toBe('cancelled');
    await e2.close();
    await e1.close();
  });

  it('a cancel recorded while no engine ran the run is applied by the one that recovers it', async () => {
    const store = new MemoryStore();
    let crashed = false;
    // After its "crash" e1 sees nothing in the store, so it cannot be the one that applies the request.
    const e1Store = interceptStore(store, { getRun: async (original, id) => (crashed ? undefined : original(id)) });
    const e1 = new Engine({ store: e1Store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e1' });
    const run = await e1.submit(YAML);
    await e1.settle();
    // e1 is abandoned (a crash): its lease is gone, so no one applies the request until recover().
    crashed = true;
    await store.releaseLease(run.id, 'e1');
    // A dashboard's engine: it runs nothing itself, so it takes nothing over at start.
    const e2 = new Engine({
      store,
      logs: new MemoryLogStore(),
      executors: [hanging],
      instanceId: 'e2',
      recoverOnStart: false,
    });
    await e2.cancel(run.id, { reason: 'not needed any more', by: 'bob' });
    expect((await store.getRun(run.id))?.requestedCancel).toMatchObject({ by: 'bob', force: false });
    // Recovery runs at start (DESIGN 4.8); the first recover() call reports what it took.
    const e3 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e3' });
    expect(await e3.recover()).toEqual([run.id]);
    expect(await e3.recover()).toEqual([]);
    const report = await e3.wait(run.id);
    expect(report.run.status).toBe('cancelled');
    expect(report.run.cancel).toMatchObject({ by: 'bob', reason: 'not needed any more' });
    await e3.close();
    await e2.close();
    await e1.close();
  });

  it('a recorded cancel takes effect before the recovered run resumes: the jobs after the lost attempt are decided with cancelled() true', async () => {
    const yaml = `
jobs:
  long: { runs-on: x, steps: [{ run: x }] }
  onCancel: { runs-on: x, needs: long, if: cancelled(), steps: [{ run: x }] }
  notCancelled: { runs-on: x, needs: long, if: "\${{ !cancelled() }}", steps: [{ run: x }] }
`;
    const store = new MemoryStore();
    let crashed = false;
    const e1Store = interceptStore(store, { getRun: async (original, id) => (crashed ? undefined : original(id)) });
    const e1 = new Engine({ store: e1Store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e1' });
    const run = await e1.submit(yaml);
    await e1.settle();
    crashed = true;
    await store.releaseLease(run.id, 'e1');
    const e2 = new Engine({
      store,
      logs: new MemoryLogStore(),
      executors: [hanging],
      instanceId: 'e2',
      recoverOnStart: false,
    });
    await e2.cancel(run.id, { reason: 'stop', by: 'bob' });
    const requestedAt = (await store.getRun(run.id))?.requestedCancel?.at;
    const started: string[] = [];
    const ok: Executor = {
      name: 'process',
      runJob: async (a) => {
        started.push(`${a.jobId}#${a.attempt}`);
        return { status: 'succeeded', workerId: 'w', steps: [], outputs: {} };
      },
    };
    const e3 = new Engine({
      store,
      logs: new MemoryLogStore(),
      executors: [ok],
      instanceId: 'e3',
      recoverOnStart: false,
    });
    expect(await e3.recover()).toEqual([run.id]);
    const report = await e3.wait(run.id);
    expect(started).toEqual(['onCancel#1']);
    const byJob = Object.fromEntries(report.jobs.map((j) => [j.id, j]));
    expect(byJob.long?.attempts.map((a) => a.reason)).toEqual(['lost']);
    expect(byJob.onCancel?.status).toBe('succeeded');
    expect(byJob.notCancelled?.status).toBe('skipped');
    expect(report.run).toMatchObject({ status: 'cancelled', cancel: { by: 'bob', reason: 'stop' } });
    expect(Date.parse(report.run.cancel?.at ?? '')).toBe(requestedAt);
    await e3.close();
    await e2.close();
    await e1.close();
  });

  it('an engine started on a store with an abandoned run takes it over without being asked', async () => {
    const store = new MemoryStore();
    const ok: Executor = {
      name: 'process',
      runJob: async () => ({ status: 'succeeded', workerId: 'w', steps: [], outputs: {} }),
    };
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e1' });
    const run = await e1.submit(YAML);
    await e1.settle();
    await store.releaseLease(run.id, 'e1'); // e1 crashed: its lease is gone
    const e2 = new Engine({ store, logs: new MemoryLogStore(), executors: [ok], instanceId: 'e2' });
    const report = await new Promise<Awaited<ReturnType<Engine['wait']>>>((resolve) => {
      e2.on('run:finished', async (e) => resolve(await e2.wait(e.runId)));
    });
    expect(report.run.id).toBe(run.id);
    expect(report.run.status).toBe('succeeded');
    // The attempt that was running under e1 was lost; the retry ran on e2.
    expect(report.jobs[0]?.attempts.map((a) => a.reason ?? a.status)).toEqual(['lost', 'succeeded']);
    await e2.close();
    await e1.close();
  });

  it("the engine that takes a run over numbers its log lines after the old engine's, dropping none", async () => {
    const store = new MemoryStore();
    const logs = new MemoryLogStore();
    const say = (who: string): Executor => ({
      name: 'process',
      runJob: async (_a, ctx) => {
        for (let i = 1; i <= 3; i++) await ctx.output('stdout', 0, new TextEncoder().encode(`${who} line ${i}\n`));
        // A "dies" with the attempt running (it ends only when its engine closes).
        if (who === 'A') return hanging.runJob(_a, ctx);
        return { status: 'succeeded', workerId: 'w', steps: [], outputs: {} };
      },
    });
    const e1 = new Engine({ store, logs, executors: [say('A')], instanceId: 'e1' });
    const run = await e1.submit(YAML);
    // A's lines are stored before it "crashes".
    for (let i = 0; i < 100 && (await logs.read(run.id)).length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    await store.releaseLease(run.id, 'e1');
    const e2 = new Engine({ store, logs, executors: [say('B')], instanceId: 'e2' });
    expect(await e2.recover()).toEqual([run.id]);
    expect((await e2.wait(run.id)).run.status).toBe('succeeded');
    const lines = (await logs.read(run.id)).filter((l) => l.stream === 'stdout');
    expect(lines.map((l) => l.text)).toEqual(['A line 1', 'A line 2', 'A line 3', 'B line 1', 'B line 2', 'B line 3']);
    const seqs = (await logs.read(run.id)).map((l) => l.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    await e2.close();
    await e1.close();
  });

  it('a run that a start-up recovery takes while another engine is still submitting it runs exactly once', async () => {
    const store = new MemoryStore();
    const ran: string[] = [];
    const named = (who: string): Executor => ({
      name: 'process',
      runJob: async () => {
        ran.push(who);
        return { status: 'succeeded', workerId: who, steps: [], outputs: {} };
      },
    });
    // A's lease comes late: the run is in the store without a lease for a while, and B's
    // start-up recovery may take it in between.
    const slowLease = interceptStore(store, {
      acquireLease: async (original, ...args) => {
        await new Promise((r) => setTimeout(r, 50));
        return original(...args);
      },
    });
    const a = new Engine({ store: slowLease, logs: new MemoryLogStore(), executors: [named('A')], instanceId: 'a' });
    const submitting = a.submit(YAML);
    await new Promise((r) => setTimeout(r, 10));
    const b = new Engine({ store, logs: new MemoryLogStore(), executors: [named('B')], instanceId: 'b' });
    const run = await submitting;
    // Whichever engine holds the lease runs it; the other's wait() reads the store.
    expect((await a.wait(run.id)).run.status).toBe('succeeded');
    expect((await b.wait(run.id)).run.status).toBe('succeeded');
    expect(ran).toHaveLength(1);
    await b.close();
    await a.close();
  });

  it('an engine restarted with the same instanceId takes back its queued runs at once', async () => {
    const store = new MemoryStore();
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'pod-1' });
    const holder = await e1.submit('concurrency: deploy\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n');
    const waiter = await e1.submit('concurrency: deploy\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n');
    await e1.settle();
    expect((await store.getRun(waiter.id))?.status).toBe('queued'); // waits for the group
    // The same pod comes back (its leases are still its own) and recovers both at start.
    const ok: Executor = {
      name: 'process',
      runJob: async () => ({ status: 'succeeded', workerId: 'w', steps: [], outputs: {} }),
    };
    const e2 = new Engine({ store, logs: new MemoryLogStore(), executors: [ok], instanceId: 'pod-1' });
    expect((await e2.recover()).sort()).toEqual([holder.id, waiter.id].sort());
    expect((await e2.wait(waiter.id)).run.status).toBe('succeeded');
    await e2.close();
    await e1.close();
  });

  it('close() during a recovery pass hands the run back instead of running or cancelling it', async () => {
    const store = new MemoryStore();
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e1' });
    const run = await e1.submit(YAML);
    await e1.settle();
    await store.releaseLease(run.id, 'e1'); // e1 crashed
    let calls = 0;
    let loading!: () => void;
    const atLoad = new Promise<void>((r) => (loading = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = interceptStore(store, {
      getJobs: async (original, id) => {
        loading();
        await gate;
        return original(id);
      },
    });
    const counting: Executor = {
      name: 'process',
      runJob: async (a, ctx) => {
        calls++;
        return hanging.runJob(a, ctx);
      },
    };
    const e2 = new Engine({ store: slow, logs: new MemoryLogStore(), executors: [counting], instanceId: 'e2' });
    await atLoad; // the start-up recovery holds the run's lease and is loading its jobs
    const closing = e2.close();
    release();
    await closing;
    expect(calls).toBe(0);
    const stored = await store.getRun(run.id);
    expect(stored?.status).toBe('running'); // not cancelled by an engine that was closing
    // Its lease is free again for an engine that will run it.
    expect(await store.acquireLease(run.id, 'e3', 30_000)).toBe(true);
    await e1.close();
  });
});

describe('4.8 recover(): what a lost attempt left running is stopped before its retry', () => {
  it("calls the attempt's executor's reclaim with the lost attempt, and only then retries it", async () => {
    const store = new MemoryStore();
    const placed: Executor = { ...hanging, workerId: 'host-1/process' };
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [placed], instanceId: 'e1' });
    const run = await e1.submit(YAML);
    await e1.settle();
    // e1 "crashes": its lease is taken over by e2 (acquireLease answers yes).
    const events: string[] = [];
    const reclaiming: Executor = {
      name: 'process',
      async reclaim(lost) {
        events.push(`reclaim ${lost.runId === run.id} ${lost.jobId} #${lost.attempt} on ${lost.workerId ?? '-'}`);
        await new Promise((r) => setTimeout(r, 50));
        events.push('reclaimed');
      },
      async runJob(attempt) {
        events.push(`run ${attempt.jobId} #${attempt.attempt}`);
        return { status: 'succeeded', workerId: 'w2', steps: [], outputs: {} };
      },
    };
    const e2 = new Engine({
      store: interceptStore(store, { acquireLease: async () => true }),
      logs: new MemoryLogStore(),
      executors: [reclaiming],
      instanceId: 'e2',
    });
    expect(await e2.recover()).toEqual([run.id]);
    const report = await e2.wait(run.id);
    expect(report.run.status).toBe('succeeded');
    expect(report.jobs[0]?.attempts.map((a) => a.reason ?? a.status)).toEqual(['lost', 'succeeded']);
    // The retry waits for the reclaim to finish.
    expect(events).toEqual(['reclaim true a #1 on host-1/process', 'reclaimed', 'run a #2']);
    await e2.close();
    await e1.close();
  });

  it('a reclaim that fails is reported and the retry goes ahead', async () => {
    const store = new MemoryStore();
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e1' });
    const run = await e1.submit(YAML);
    await e1.settle();
    const failing: Executor = {
      name: 'process',
      reclaim: async () => {
        throw new Error('docker is down');
      },
      runJob: async () => ({ status: 'succeeded', workerId: 'w2', steps: [], outputs: {} }),
    };
    const e2 = new Engine({
      store: interceptStore(store, { acquireLease: async () => true }),
      logs: new MemoryLogStore(),
      executors: [failing],
      instanceId: 'e2',
    });
    const errors: Error[] = [];
    e2.on('error', (err) => errors.push(err));
    await e2.recover();
    expect((await e2.wait(run.id)).run.status).toBe('succeeded');
    expect(errors.map((e) => e.message)).toEqual([
      'could not stop what lost attempt 1 of job a left running: docker is down',
    ]);
    await e2.close();
    await e1.close();
  });

  it('close() during the reclaim hands the run back to the store instead of cancelling it', async () => {
    const store = new MemoryStore();
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e1' });
    const run = await e1.submit(YAML);
    await e1.settle();
    let reclaiming!: () => void;
    const inReclaim = new Promise<void>((r) => (reclaiming = r));
    const slow: Executor = {
      name: 'process',
      async reclaim() {
        reclaiming();
        await new Promise((r) => setTimeout(r, 200));
      },
      runJob: async () => ({ status: 'succeeded', workerId: 'w2', steps: [], outputs: {} }),
    };
    const e2 = new Engine({
      store: interceptStore(store, { acquireLease: async () => true }),
      logs: new MemoryLogStore(),
      executors: [slow],
      instanceId: 'e2',
    });
    const recovering = e2.recover();
    await inReclaim;
    await e2.close();
    expect(await recovering).toEqual([]);
    const stored = await store.getRun(run.id);
    expect(stored?.status).toBe('running');
    expect(stored?.cancel).toBeUndefined();
    await e1.close();
  });

  it('a run whose lease another engine took during the reclaim is given back: not run here, its waiter follows the store, its cancel is recorded', async () => {
    const store = new MemoryStore();
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e1' });
    const run = await e1.submit(YAML);
    await e1.settle();
    let takes = 0;
    let reclaiming!: () => void;
    const inReclaim = new Promise<void>((r) => (reclaiming = r));
    const ran: string[] = [];
    const slow: Executor = {
      name: 'process',
      async reclaim() {
        reclaiming();
        await new Promise((r) => setTimeout(r, 200));
      },
      runJob: async (a) => {
        ran.push(a.jobId);
        return { status: 'succeeded', workerId: 'w2', steps: [], outputs: {} };
      },
    };
    // The first acquire takes the run; every later one finds another engine's lease.
    const e2 = new Engine({
      store: interceptStore(store, { acquireLease: async () => ++takes === 1 }),
      logs: new MemoryLogStore(),
      executors: [slow],
      instanceId: 'e2',
      recoverOnStart: false,
    });
    const recovering = e2.recover();
    await inReclaim;
    const waiting = e2.wait(run.id);
    const jobCancel = e2.cancel({ runId: run.id, job: 'a' }).catch((e: unknown) => e);
    await e2.cancel(run.id, { reason: 'stop it', by: 'alice' });
    expect(await recovering).toEqual([]);
    // One job of another engine's run cannot be cancelled from here: said, not dropped.
    expect(await jobCancel).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(ran).toEqual([]);
    // The cancel is waiting in the store for the run's owner; the waiter follows the store.
    expect((await store.getRun(run.id))?.requestedCancel).toMatchObject({ by: 'alice', reason: 'stop it' });
    await store.updateRun(run.id, { status: 'cancelled', finishedAt: Date.now() });
    expect((await waiting).run.status).toBe('cancelled');
    await e2.close();
    await e1.close();
  });

  it('runs taken before a store failure in the same pass are reclaimed before they are retried', async () => {
    const store = new MemoryStore();
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], instanceId: 'e1' });
    const first = await e1.submit(YAML);
    const second = await e1.submit(YAML);
    await e1.settle();
    const events: string[] = [];
    const reclaiming: Executor = {
      name: 'process',
      async reclaim(lost) {
        events.push(`reclaim ${lost.runId === first.id ? 'first' : 'second'}`);
      },
      runJob: async (a) => {
        events.push(`run ${a.runId === first.id ? 'first' : 'second'}`);
        return { status: 'succeeded', workerId: 'w2', steps: [], outputs: {} };
      },
    };
    const unavailable = new PipewrightError('STORE_UNAVAILABLE', 'the store is down');
    const e2 = new Engine({
      store: interceptStore(store, {
        acquireLease: async () => true,
        // Runs are recovered oldest first: the second one's jobs cannot be read.
        getJobs: async (original, id) => {
          if (id === second.id) throw unavailable;
          return original(id);
        },
      }),
      logs: new MemoryLogStore(),
      executors: [reclaiming],
      instanceId: 'e2',
      recoverOnStart: false,
      storeRetry: { maxMs: 1 },
    });
    await expect(e2.recover()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((await e2.wait(first.id)).run.status).toBe('succeeded');
    expect(events).toEqual(['reclaim first', 'run first']);
    await e2.close();
    await e1.close();
  });

  it('leaves alone a run its owner finished between the list and the lease (it was finished a second time)', async () => {
    const store = new MemoryStore();
    const ok: Executor = {
      name: 'process',
      runJob: async () => ({ status: 'succeeded', workerId: 'w', steps: [], outputs: {} }),
    };
    const e1 = new Engine({ store, logs: new MemoryLogStore(), executors: [ok], instanceId: 'e1' });
    const handle = await e1.submit(YAML);
    const report = await handle.wait();
    await e1.close();
    const before = await store.getRun(handle.id);
    // The list still shows it running (read before the owner finished it); the lease is free now.
    const stale = interceptStore(store, {
      listRuns: async (original) => {
        const runs = await original({});
        return runs.map((r) => (r.id === handle.id ? { ...r, status: 'running' as const, finishedAt: undefined } : r));
      },
    });
    const e2 = new Engine({ store: stale, logs: new MemoryLogStore(), executors: [ok], instanceId: 'e2' });
    const finished: string[] = [];
    e2.on('run:finished', (e) => finished.push(e.runId));
    expect(await e2.recover()).toEqual([]);
    await e2.settle();
    expect(finished).toEqual([]);
    expect(await store.getRun(handle.id)).toEqual(before);
    expect((await e2.getRun(handle.id))?.run).toEqual(report.run);
    await e2.close();
  });
});
