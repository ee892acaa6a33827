import type { AttemptOutcome, AttemptSpec, ExecContext, Executor, RunHandle, RunReport } from '@pipewright/core';
import { Engine } from '@pipewright/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisLogStore } from '../src/redis/log-store.js';
import { RedisStore } from '../src/redis/state-store.js';
import { type RedisServer, redisServerAvailable, startRedisServer } from './helpers/redis-server.js';

// The Engine on Redis, end to end: real redis-server, real engine, an executor that
// records every call so "nothing ran twice after success" is checked, not assumed.

const available = redisServerAvailable();

/** One recorded executor call. */
interface Call {
  key: string;
  attempt: number;
  startedAt: number;
  succeededAt?: number;
}

/** An executor whose jobs sleep `durationMs` (real time), print one line and succeed; it records every call. */
class RecordingExecutor implements Executor {
  readonly name = 'process';
  readonly calls: Call[] = [];
  constructor(private readonly durationMs: number) {}

  async runJob(a: AttemptSpec, ctx: ExecContext): Promise<AttemptOutcome> {
    const call: Call = { key: `${a.runId}/${a.jobId}`, attempt: a.attempt, startedAt: Date.now() };
    this.calls.push(call);
    const start = Date.now();
    ctx.events?.stepStarted?.(0, 'work', start);
    // Backpressure as a real executor applies it; a failed log store must not fail the job.
    await Promise.resolve(
      ctx.output('stdout', 0, new TextEncoder().encode(`did ${a.jobId} attempt ${a.attempt}\n`)),
    ).catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, this.durationMs);
      ctx.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(new Error('aborted'));
        },
        { once: true },
      );
    }).catch(() => undefined);
    if (ctx.signal.aborted) {
      return { status: 'cancelled', reason: 'cancelled', workerId: 'w1', steps: [], outputs: {} };
    }
    const step = {
      index: 0,
      name: 'work',
      status: 'succeeded' as const,
      outcome: 'success' as const,
      conclusion: 'success' as const,
      exitCode: 0,
      outputs: {},
      startedAt: start,
      finishedAt: Date.now(),
    };
    ctx.events?.stepFinished?.(step);
    call.succeededAt = Date.now();
    return { status: 'succeeded', workerId: 'w1', steps: [step], outputs: {} };
  }

  /** Calls that started after an earlier call of the same job had succeeded. */
  rerunsAfterSuccess(): Call[] {
    const firstSuccess = new Map<string, number>();
    for (const c of this.calls) {
      if (c.succeededAt !== undefined) {
        firstSuccess.set(c.key, Math.min(firstSuccess.get(c.key) ?? Number.POSITIVE_INFINITY, c.succeededAt));
      }
    }
    return this.calls.filter((c) => {
      const s = firstSuccess.get(c.key);
      return s !== undefined && c.startedAt > s;
    });
  }
}

const PIPELINE = `
name: chain
jobs:
  a:
    runs-on: local
    steps: [{run: a}]
  b:
    needs: a
    runs-on: local
    steps: [{run: b}]
  c:
    needs: b
    runs-on: local
    steps: [{run: c}]
  d:
    runs-on: local
    steps: [{run: d}]
`;

describe.skipIf(!available)('Engine on a real Redis', () => {
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });

  describe('idempotency across engine instances', () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await startRedisServer();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('50 concurrent submits with one key through two engines create exactly one run, run once', async () => {
      const executor = new RecordingExecutor(20);
      const engines = [0, 1].map((i) => {
        const store = new RedisStore({ url: server.url, prefix: 'idem' });
        const logs = new RedisLogStore({ url: server.url, prefix: 'idem' });
        const engine = new Engine({ store, logs, executors: [executor], instanceId: `engine-${i}` });
        closers.push(
          () => store.close(),
          () => logs.close(),
          () => engine.close(),
        );
        return { engine, store };
      });
      const handles = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (engines[i % 2] as (typeof engines)[number]).engine.submit(PIPELINE, { idempotencyKey: 'delivery-42' }),
        ),
      );
      const ids = new Set(handles.map((h) => h.id));
      expect(ids.size).toBe(1);
      expect(handles.filter((h) => h.created)).toHaveLength(1);

      const reports = await Promise.all(handles.slice(0, 4).map((h) => h.wait()));
      for (const r of reports) expect(r.run.status).toBe('succeeded');
      const stored = await (engines[0] as (typeof engines)[number]).store.listRuns();
      expect(stored.map((r) => r.id)).toEqual([...ids]);
      // Four jobs, each called once: the duplicate submissions started nothing.
      expect(executor.calls.map((c) => c.key.split('/')[1]).sort()).toEqual(['a', 'b', 'c', 'd']);
    });
  });

  describe('Redis killed mid-run and restarted (appendonly yes)', () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await startRedisServer({ persistence: true });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('completes every accepted run, stores it complete, and runs no job twice after success', async () => {
      const executor = new RecordingExecutor(150);
      let retries = 0;
      // Short per-call waits so the engine's own retry (not ioredis' queue alone) rides out the outage.
      const store = new RedisStore({ url: server.url, prefix: 'kill', unavailableAfterMs: 300 });
      const logs = new RedisLogStore({ url: server.url, prefix: 'kill', unavailableAfterMs: 300 });
      const engine = new Engine({
        store,
        logs,
        executors: [executor],
        concurrency: 16,
        storeRetry: {
          maxMs: Number(process.env.PW_TEST_STORE_RETRY_MS ?? 30_000),
          maxDelayMs: 500,
          onRetry: () => {
            retries++;
          },
        },
      });
      const errors: Error[] = [];
      engine.on('error', (e) => errors.push(e));
      closers.push(
        () => store.close(),
        () => logs.close(),
        () => engine.close(),
      );

      const before: RunHandle[] = await Promise.all(Array.from({ length: 6 }, () => engine.submit(PIPELINE)));
      // Mid-run: the first jobs are running or done, later ones not yet started.
      await new Promise((r) => setTimeout(r, 200));
      expect(executor.calls.length).toBeGreaterThan(0);
      await server.kill();
      // Submissions during the outage wait for the store, then are accepted.
      const during = Array.from({ length: 2 }, () => engine.submit(PIPELINE));
      await new Promise((r) => setTimeout(r, 1500));
      await server.start();
      const handles = [...before, ...(await Promise.all(during))];

      const reports: RunReport[] = await Promise.all(handles.map((h) => h.wait()));
      for (const r of reports) {
        expect(r.run.status).toBe('succeeded');
        expect(r.jobs.map((j) => j.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
      }
      expect(executor.rerunsAfterSuccess()).toEqual([]);
      // The outage reached the engine, and the engine's retries carried the runs through it.
      expect(retries).toBeGreaterThan(0);
      expect(errors.filter((e) => !/unreachable|STORE_UNAVAILABLE/.test(e.message))).toEqual([]);

      // What a fresh reader sees in Redis after the restart: every run finished, every line once.
      const reader = new RedisStore({ url: server.url, prefix: 'kill' });
      const logReader = new RedisLogStore({ url: server.url, prefix: 'kill' });
      closers.push(
        () => reader.close(),
        () => logReader.close(),
      );
      const stored = await reader.listRuns();
      expect(stored.map((r) => r.id).sort()).toEqual(handles.map((h) => h.id).sort());
      for (const h of handles) {
        const run = await reader.getRun(h.id);
        expect(run?.status).toBe('succeeded');
        const jobs = await reader.getJobs(h.id);
        expect(jobs.map((j) => j.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
        const lines = await logReader.read(h.id);
        expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1));
        const said = lines.filter((l) => l.text.startsWith('did ')).map((l) => l.text.split(' ')[1]);
        expect(new Set(said)).toEqual(new Set(['a', 'b', 'c', 'd']));
      }
    });
  });

  describe('Redis gone for good', () => {
    let server: RedisServer;
    beforeAll(async () => {
      server = await startRedisServer();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('surfaces STORE_UNAVAILABLE after the bounded retry time, without crashing the host', async () => {
      const executor = new RecordingExecutor(100);
      const store = new RedisStore({ url: server.url, prefix: 'gone', unavailableAfterMs: 200 });
      const logs = new RedisLogStore({ url: server.url, prefix: 'gone', unavailableAfterMs: 200 });
      const engine = new Engine({ store, logs, executors: [executor], storeRetry: { maxMs: 600, maxDelayMs: 200 } });
      const errors: Error[] = [];
      engine.on('error', (e) => errors.push(e));
      closers.push(
        () => store.close(),
        () => logs.close(),
      );
      await engine.submit(PIPELINE);
      await new Promise((r) => setTimeout(r, 50));
      await server.kill();

      const started = Date.now();
      const err = await engine.submit(PIPELINE).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'STORE_UNAVAILABLE',
        message: expect.stringMatching(/did not answer createRun/),
      });
      expect(Date.now() - started).toBeLessThan(5000);
      // The in-flight run's writes give up too and are reported as events, not thrown at the host.
      const deadline = Date.now() + 30_000;
      while (!errors.some((e) => (e as { code?: string }).code === 'STORE_UNAVAILABLE') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(errors.some((e) => (e as { code?: string }).code === 'STORE_UNAVAILABLE')).toBe(true);
      await engine.close();
    });
  });
});
