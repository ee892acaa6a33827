import { definePipeline, Engine, type JobRecord, PipewrightError } from '@pipewright/core';
import { jobRecord, runRecord } from '@pipewright/core/testing';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
import { describe, expect, it } from 'vitest';
import { interceptStore } from './helpers.js';

// DESIGN §9: bad input never loses a run that was accepted. A record something else wrote badly
// must cost only its own run at recovery, visibly, not every run recovered with it.

const spec = definePipeline({ on: 'workflow_dispatch', jobs: { a: { 'runs-on': 'x', steps: [{ run: 'a' }] } } });

describe('4.8 durability: recovery with damaged records', () => {
  for (const [label, damage] of [
    ['a job record with an unknown status', async (jobs: JobRecord[]) => [{ ...jobs[0], status: 'teleported' }]],
    [
      'a job record that cannot be read (the store says STORE_CORRUPT)',
      async () => {
        throw new PipewrightError('STORE_CORRUPT', 'run bad: a stored job record is not JSON');
      },
    ],
    ['a job of no job of the pipeline', async (jobs: JobRecord[]) => [{ ...jobs[0], job: 'gone' }]],
  ] as const) {
    it(`${label}: that run is set aside (failed, reported with its id); the others recover`, async () => {
      const base = new MemoryStore();
      for (const [id, createdAt] of [
        ['h1', 1],
        ['bad', 2],
        ['h2', 3],
      ] as const) {
        await base.createRun(runRecord(spec, { id, createdAt, status: 'running', startedAt: createdAt }), [
          jobRecord(id, 'a', { status: 'queued' }),
        ]);
      }
      const store = interceptStore(base, {
        getJobs: async (original, runId) => {
          const jobs = (await original(runId)) as JobRecord[];
          return runId === 'bad' ? (damage as (j: JobRecord[]) => Promise<JobRecord[]>)(jobs) : jobs;
        },
      });
      const ran: string[] = [];
      const executor = {
        name: 'process',
        runJob: async (attempt: { runId: string }) => {
          ran.push(attempt.runId);
          return { status: 'succeeded' as const, steps: [], outputs: {} };
        },
      };
      const engine = new Engine({ store, logs: new MemoryLogStore(), executors: [executor], recoverOnStart: false });
      const errors: PipewrightError[] = [];
      engine.on('error', (e) => errors.push(e as PipewrightError));
      const taken = await engine.recover();
      expect(taken.sort()).toEqual(['h1', 'h2']);
      expect((await engine.wait('h1')).run.status).toBe('succeeded');
      expect((await engine.wait('h2')).run.status).toBe('succeeded');
      expect(ran.sort()).toEqual(['h1', 'h2']);
      const bad = await base.getRun('bad');
      expect(bad).toMatchObject({ status: 'failed', reason: 'infra' });
      expect(bad?.message).toMatch(/run bad cannot be recovered: its stored records are damaged/);
      expect(errors.map((e) => [e.code, e.details?.runId])).toContainEqual(['STORE_CORRUPT', 'bad']);
      await engine.close();
    });
  }
});

describe('4.8 durability: a passing error while loading a run', () => {
  it('leaves that run for a later pass (not failed) and recovers the others', async () => {
    const base = new MemoryStore();
    for (const [id, createdAt] of [
      ['h1', 1],
      ['flaky', 2],
    ] as const) {
      await base.createRun(runRecord(spec, { id, createdAt, status: 'running', startedAt: createdAt }), [
        jobRecord(id, 'a', { status: 'queued' }),
      ]);
    }
    let fail = true;
    const store = interceptStore(base, {
      getJobs: async (original, runId) => {
        if (runId === 'flaky' && fail) throw new Error('LOADING Redis is loading the dataset in memory');
        return original(runId);
      },
    });
    const executor = {
      name: 'process',
      runJob: async () => ({ status: 'succeeded' as const, steps: [], outputs: {} }),
    };
    const engine = new Engine({ store, logs: new MemoryLogStore(), executors: [executor], recoverOnStart: false });
    engine.on('error', () => {});
    expect(await engine.recover()).toEqual(['h1']);
    expect((await base.getRun('flaky'))?.status).toBe('running');
    fail = false;
    expect(await engine.recover()).toEqual(['flaky']);
    expect((await engine.wait('flaky')).run.status).toBe('succeeded');
    await engine.close();
  });
});

describe('4.8 durability: takeover without a recover() call', () => {
  it('an engine takes over a run whose lease expired by itself, every recoverEveryMs', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ now: () => now });
    await store.createRun(runRecord(spec, { id: 'orphan', status: 'running', startedAt: 1 }), [
      jobRecord('orphan', 'a', { status: 'queued' }),
    ]);
    // Its engine held the lease and died.
    expect(await store.acquireLease('orphan', 'dead-engine', 5000)).toBe(true);
    const executor = {
      name: 'process',
      runJob: async () => ({ status: 'succeeded' as const, steps: [], outputs: {} }),
    };
    const engine = new Engine({
      store,
      logs: new MemoryLogStore(),
      executors: [executor],
      recoverOnStart: false,
      recoverEveryMs: 50,
    });
    const finished: string[] = [];
    engine.on('run:finished', (e) => finished.push(`${e.runId}:${e.status}`));
    await new Promise((r) => setTimeout(r, 300));
    // The lease is still the dead engine's: nothing is taken.
    expect(finished).toEqual([]);
    now += 10_000;
    const deadline = Date.now() + 5000;
    while (finished.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(finished).toEqual(['orphan:succeeded']);
    await engine.close();
    expect(() => new Engine({ store, logs: new MemoryLogStore(), executors: [executor], recoverEveryMs: 0 })).toThrow(
      /recoverEveryMs must be a positive integer or false/,
    );
  });
});
