// biome-ignore-all lint/suspicious/noExplicitAny: executors written the loose way an embedder might write them
import { Engine, type ExecContext, type Executor, seededRandom } from '@pipewright/core';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
import { describe, expect, it } from 'vitest';
import { interceptStore } from './helpers.js';

// The ExecContext an executor gets is one object per attempt (the engine's own bookkeeping);
// these pin that it still behaves like the plain object it used to be.
const ONE_JOB = 'jobs:\n  a: {runs-on: x, steps: [{run: x}]}\n';
const ok = { status: 'succeeded', workerId: 'w', steps: [], outputs: {} } as const;

function engineWith(executor: Executor): Engine {
  return new Engine({
    store: new MemoryStore(),
    logs: new MemoryLogStore(),
    executors: [executor],
    random: seededRandom(1),
  });
}

describe('ExecContext as executors use it', () => {
  it('keeps the abort signal when an executor spreads the context to wrap it', async () => {
    let seen: unknown;
    const engine = engineWith({
      name: 'process',
      async runJob(_a, ctx) {
        const wrapped: ExecContext = { ...ctx, addMask: () => undefined };
        seen = wrapped.signal;
        return { ...ok };
      },
    });
    await (await engine.submit(ONE_JOB)).wait();
    expect(seen).toBeInstanceOf(AbortSignal);
    await engine.close();
  });

  it('lets an executor take stepStarted/stepFinished off ctx.events', async () => {
    const engine = engineWith({
      name: 'process',
      async runJob(_a, ctx) {
        const { stepStarted, stepFinished } = ctx.events as Required<NonNullable<ExecContext['events']>>;
        stepStarted(0, 's', 1);
        stepFinished({
          index: 0,
          name: 's',
          status: 'succeeded',
          outcome: 'success',
          conclusion: 'success',
          startedAt: 1,
          finishedAt: 2,
        } as any);
        return { ...ok };
      },
    });
    const report = await (await engine.submit(ONE_JOB)).wait();
    expect(report.run.status).toBe('succeeded');
    expect(report.jobs[0]?.attempts[0]?.message).toBeNull();
    await engine.close();
  });

  it('serializes: no cycle and no engine internals in JSON of the context', async () => {
    let json = '';
    const engine = engineWith({
      name: 'process',
      async runJob(_a, ctx) {
        json = JSON.stringify(ctx);
        return { ...ok };
      },
    });
    await (await engine.submit(ONE_JOB)).wait();
    expect(Object.keys(JSON.parse(json)).sort()).toEqual(
      ['actions', 'avoidWorkers', 'events', 'secrets', 'signal'].sort(),
    );
    await engine.close();
  });

  it('gives the report plain objects the embedder may annotate (outputs of a job that did not succeed)', async () => {
    const engine = engineWith({
      name: 'process',
      runJob: async () => ({ ...ok, status: 'failed', reason: 'exit_code', exitCode: 1 }) as any,
    });
    const report = await (
      await engine.submit(
        'jobs:\n  a: {runs-on: x, steps: [{run: x}]}\n  b: {runs-on: x, needs: a, steps: [{run: x}]}\n',
      )
    ).wait();
    expect(() => {
      (report.jobs[1] as any).outputs.note = 'skipped because a failed';
    }).not.toThrow();
    await engine.close();
  });

  it('delivers a batch to a listener attached while that batch is being written to the store', async () => {
    const store = new MemoryStore();
    let finishA!: () => void;
    let hold: Promise<void> | undefined;
    let entered!: () => void;
    const slow = interceptStore(store, {
      putJobs: async (original, ...args) => {
        if (hold) {
          entered();
          await hold;
        }
        return original(...args);
      },
    });
    const engine = new Engine({
      store: slow,
      logs: new MemoryLogStore(),
      executors: [{ name: 'process', runJob: () => new Promise((res) => (finishA = () => res({ ...ok }))) }],
      random: seededRandom(1),
    });
    const handle = await engine.submit(ONE_JOB);
    await engine.settle();
    let release!: () => void;
    hold = new Promise((r) => (release = r));
    const inPersist = new Promise<void>((r) => (entered = r));
    finishA();
    await inPersist; // the attempt's end is handled; its batch is being written
    hold = undefined;
    const seen: string[] = [];
    engine.on('job:finished', (e) => seen.push(e.jobId));
    release();
    await handle.wait();
    expect(seen).toEqual(['a']);
    await engine.close();
  });
});
