import type { LogLine, RunRecord } from '@pipewright/core';
import { PipewrightError } from '@pipewright/core';
import { jobRecord, runRecord } from '@pipewright/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLogStore } from '../src/redis/log-store.js';
import { RedisStore } from '../src/redis/state-store.js';
import { type RedisServer, redisServerAvailable, startRedisServer } from './helpers/redis-server.js';

const available = redisServerAvailable();

const run = (id: string, extra: Partial<RunRecord> = {}): RunRecord =>
  runRecord({ inputs: {}, env: {}, defaults: {}, jobs: {} }, { id, createdAt: Date.now(), ...extra });
const job = jobRecord;
const lines = (runId: string, from: number, to: number): LogLine[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    ts: 1_700_000_000_000 + from + i,
    runId,
    jobId: `job-${(from + i) % 4}`,
    attempt: 1,
    step: (from + i) % 3,
    stream: 'stdout' as const,
    text: `line ${from + i}: the quick brown fox jumps over the lazy dog`,
  }));

describe.skipIf(!available)('Redis adapters against a real server', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('creates one run from 50 concurrent createRun calls with one key through two connections', async () => {
    const a = new RedisStore({ url: server.url, prefix: 'two' });
    const b = new RedisStore({ url: server.url, prefix: 'two' });
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (i % 2 ? a : b).createRun(run(`cand-${i}`, { idempotencyKey: 'webhook-123' }), [job(`cand-${i}`, 'build')]),
        ),
      );
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(results.map((r) => r.run.id)).size).toBe(1);
      expect(await a.listRuns()).toHaveLength(1);
      expect(await b.listRuns()).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('stores 100,000 log lines and reads and follows them back complete and in order', async () => {
    const writer = new RedisLogStore({ url: server.url, prefix: 'big' });
    const reader = new RedisLogStore({ url: server.url, prefix: 'big' });
    try {
      const all = lines('big-run', 1, 100_000);
      const following = (async () => {
        let count = 0;
        let prev = 0;
        for await (const b of reader.follow('big-run')) {
          for (const l of b.lines) {
            if (l.seq !== prev + 1) throw new Error(`follow saw ${l.seq} after ${prev}`);
            prev = l.seq;
            count++;
          }
        }
        return count;
      })();
      for (let i = 0; i < all.length; i += 500) {
        await writer.append('big-run', { runId: 'big-run', lines: all.slice(i, i + 500) });
      }
      await writer.end('big-run');
      expect(await following).toBe(100_000);
      expect(await reader.read('big-run')).toStrictEqual(all);
      expect(await reader.read('big-run', { after: 99_990 })).toStrictEqual(all.slice(99_990));
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('fails fast with STORE_UNAVAILABLE naming the address when Redis is not there', async () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:1', unavailableAfterMs: 300 });
    try {
      const started = Date.now();
      const err = await store.getRun('x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PipewrightError);
      expect((err as PipewrightError).code).toBe('STORE_UNAVAILABLE');
      expect((err as PipewrightError).message).toContain('127.0.0.1:1');
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await store.close();
    }
  });
});

describe.skipIf(!available)('Redis restart', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer({ persistence: true });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a follower ends when its signal aborts, also while Redis is gone', async () => {
    const gone = await startRedisServer();
    const logs = new RedisLogStore({ url: gone.url, prefix: 'gone', unavailableAfterMs: 300 });
    try {
      await logs.append('g1', { runId: 'g1', lines: lines('g1', 1, 2) });
      const controller = new AbortController();
      const seen: number[] = [];
      const following = (async () => {
        for await (const b of logs.follow('g1', { signal: controller.signal })) seen.push(...b.lines.map((l) => l.seq));
      })();
      for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      await gone.kill();
      await new Promise((r) => setTimeout(r, 300));
      const abortedAt = Date.now();
      controller.abort();
      await following;
      expect(Date.now() - abortedAt).toBeLessThan(2_000);
      expect(seen).toEqual([1, 2]);
      // One started with `after` (it looks up the last seq first) ends on abort too.
      const late = new AbortController();
      const resuming = (async () => {
        for await (const _ of logs.follow('g1', { after: 1, signal: late.signal })) {
          // nothing arrives while Redis is gone
        }
      })();
      await new Promise((r) => setTimeout(r, 50));
      const lateAt = Date.now();
      late.abort();
      await resuming.catch(() => undefined);
      expect(Date.now() - lateAt).toBeLessThan(2_000);
    } finally {
      await logs.close();
      await gone.stop();
    }
  });

  it('a follower fails with STORE_UNAVAILABLE when Redis stays gone, like any call, instead of waiting for ever', async () => {
    const gone = await startRedisServer();
    const logs = new RedisLogStore({ url: gone.url, prefix: 'gone2', unavailableAfterMs: 300, blockMs: 200 });
    try {
      await logs.append('g2', { runId: 'g2', lines: lines('g2', 1, 2) });
      const seen: number[] = [];
      const following = (async () => {
        for await (const b of logs.follow('g2')) seen.push(...b.lines.map((l) => l.seq));
      })();
      for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      await gone.kill();
      const killedAt = Date.now();
      const err = (await following.then(
        () => undefined,
        (e: unknown) => e,
      )) as PipewrightError | undefined;
      expect(err?.code).toBe('STORE_UNAVAILABLE');
      // block time + unavailableAfterMs, with room for a loaded machine; before, it never ended.
      expect(Date.now() - killedAt).toBeLessThan(5_000);
      expect(seen).toEqual([1, 2]);
    } finally {
      await logs.close();
      await gone.stop();
    }
  });

  it('records something else wrote badly: a run is STORE_CORRUPT for getRun and left out of lists, a lease without expiry does not hide its run', async () => {
    const store = new RedisStore({ url: server.url, prefix: 'crp' });
    const { Redis } = await import('ioredis');
    const raw = new Redis(server.url);
    try {
      await store.createRun(run('crp-good'), [job('crp-good', 'a')]);
      await store.createRun(run('crp-bad'), [job('crp-bad', 'a')]);
      await raw.hset('{crp}:run:crp-bad', 'inputs', '{not json');
      const err = await store.getRun('crp-bad').catch((e: PipewrightError) => e);
      expect((err as PipewrightError).code).toBe('STORE_CORRUPT');
      expect((err as PipewrightError).message).toMatch(/run crp-bad: stored field `inputs` is not JSON/);
      expect((await store.listRuns()).map((r) => r.id)).toEqual(['crp-good']);
      // A lease key without expiry (written by something else) does not hide the run for ever.
      await raw.set('{crp}:run:crp-good:lease', 'ghost-engine');
      expect(await store.acquireLease('crp-good', 'me', 5000)).toBe(true);
      expect(await raw.pttl('{crp}:run:crp-good:lease')).toBeGreaterThan(0);
      await raw.hset('{crp}:run:crp-good:jobs', 'a', '{not json');
      expect(((await store.getJobs('crp-good').catch((e: PipewrightError) => e)) as PipewrightError).code).toBe(
        'STORE_CORRUPT',
      );
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('retentionMs expires finished runs and their idempotency key, also runs stored already finished', async () => {
    const store = new RedisStore({ url: server.url, prefix: 'ret', retentionMs: 60_000 });
    const { Redis } = await import('ioredis');
    const raw = new Redis(server.url);
    try {
      await store.createRun(run('ret-live', { idempotencyKey: 'k-live' }), [job('ret-live', 'a')]);
      await store.createRun(run('ret-done', { status: 'succeeded', idempotencyKey: 'k-done' }), [job('ret-done', 'a')]);
      const ttl = async (pattern: string) => {
        const keys = await raw.keys(pattern);
        expect(keys.length).toBeGreaterThan(0);
        return Promise.all(keys.map((k) => raw.pttl(k)));
      };
      // Unfinished: kept for good; finished at creation: every key of it expires.
      for (const t of await ttl('{ret}:run:ret-live*')) expect(t).toBe(-1);
      for (const t of await ttl('{ret}:run:ret-done*')) expect(t).toBeGreaterThan(0);
      for (const t of await ttl('{ret}:idem:k-done')) expect(t).toBeGreaterThan(0);
      await store.updateRun('ret-live', { status: 'failed' });
      for (const t of await ttl('{ret}:run:ret-live*')) expect(t).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('a frozen server (connection open, no answer) fails calls with STORE_UNAVAILABLE in bounded time', async () => {
    const frozen = await startRedisServer();
    const store = new RedisStore({ url: frozen.url, prefix: 'frz', unavailableAfterMs: 300 });
    const logs = new RedisLogStore({ url: frozen.url, prefix: 'frz', unavailableAfterMs: 300 });
    // Connected, its database not checked yet: the check is bounded like any call.
    const onDb3 = new RedisStore({ url: `${frozen.url}/3`, prefix: 'frz', unavailableAfterMs: 300 });
    try {
      await store.createRun(run('frz-1'), [job('frz-1', 'a')]);
      frozen.signal('SIGSTOP');
      const started = Date.now();
      const results = await Promise.allSettled([store.getRun('frz-1'), logs.read('frz-1'), onDb3.getRun('frz-1')]);
      const took = Date.now() - started;
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect(((r as PromiseRejectedResult).reason as PipewrightError).code).toBe('STORE_UNAVAILABLE');
      }
      // 3 x unavailableAfterMs, with room for a loaded machine; before, they waited until SIGCONT.
      expect(took).toBeLessThan(5_000);
      frozen.signal('SIGCONT');
      expect((await store.getRun('frz-1'))?.id).toBe('frz-1');
    } finally {
      frozen.signal('SIGCONT');
      await store.close();
      await logs.close();
      await onDb3.close();
      await frozen.stop();
    }
  });

  it('calls during an outage succeed after reconnect or fail with STORE_UNAVAILABLE; data written before survives', async () => {
    const store = new RedisStore({ url: server.url, unavailableAfterMs: 2000 });
    const logs = new RedisLogStore({ url: server.url, unavailableAfterMs: 2000 });
    try {
      const r = run('durable-1');
      const jobs = [job(r.id, 'a'), job(r.id, 'b')];
      await store.createRun(r, jobs);
      expect(await store.acquireLease(r.id, 'engine-a', 60_000)).toBe(true);
      await logs.append(r.id, { runId: r.id, lines: lines(r.id, 1, 1000) });

      await server.kill();
      const down = await store.getRun(r.id).catch((e: unknown) => e);
      expect((down as PipewrightError).code).toBe('STORE_UNAVAILABLE');
      expect((down as PipewrightError).message).toContain(`127.0.0.1:${server.port}`);

      // Issued while down; the server comes back while they wait.
      const during = [
        store.updateRun(r.id, { status: 'running', startedAt: 1 }, { status: 'queued' }),
        logs.append(r.id, { runId: r.id, lines: lines(r.id, 1001, 1100) }),
        store.getJobs(r.id),
      ];
      await new Promise((res) => setTimeout(res, 300));
      await server.start();
      const settled = await Promise.allSettled(during);
      for (const s of settled) {
        if (s.status === 'rejected') expect((s.reason as PipewrightError).code).toBe('STORE_UNAVAILABLE');
      }

      const after = await store.getRun(r.id);
      expect(after?.status === 'running' ? { ...after, status: 'queued', startedAt: undefined } : after).toEqual(r);
      if (settled[0]!.status === 'fulfilled') expect(after?.status).toBe('running');
      expect(await store.getJobs(r.id)).toStrictEqual(jobs);
      expect(await store.acquireLease(r.id, 'engine-b', 60_000)).toBe(false);
      const logged = await logs.read(r.id);
      expect(logged.slice(0, 1000)).toStrictEqual(lines(r.id, 1, 1000));
      // A resent batch adds nothing twice, whether or not it landed during the outage.
      await logs.append(r.id, { runId: r.id, lines: lines(r.id, 1001, 1100) });
      expect(await logs.read(r.id)).toStrictEqual(lines(r.id, 1, 1100));
    } finally {
      await store.close();
      await logs.close();
    }
  });
});
