import type { JobRecord, RunRecord, StateStore } from '@pipewright/core';
import { isTransientStoreError, PipewrightError, RetryingStateStore, retryStoreCall } from '@pipewright/core';
import { jobRecord, runRecord } from '@pipewright/core/testing';
import { MemoryStore } from '@pipewright/storage-adapters';
import { describe, expect, it } from 'vitest';
import { interceptStore } from './helpers.js';

const fast = { maxMs: 2000, baseDelayMs: 1, maxDelayMs: 5, onRetry: undefined };
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });

/** A store whose named method fails `n` times before reaching the real one; `landFirst` makes the first failure happen after the write landed (a lost reply). */
function flaky(inner: StateStore, method: keyof StateStore, n: number, landFirst = false): StateStore {
  let left = n;
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== method || typeof value !== 'function')
        return typeof value === 'function' ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        if (left > 0) {
          left--;
          if (landFirst && left === n - 1) await value.apply(target, args);
          throw refused();
        }
        return value.apply(target, args);
      };
    },
  });
}

const run = (id: string): RunRecord => runRecord({ inputs: {}, env: {}, defaults: {}, jobs: {} }, { id });
const jobOf =
  (runId: string) =>
  (id: string, status: JobRecord['status']): JobRecord =>
    jobRecord(runId, id, { status });

describe('store retry', () => {
  it('classifies outages as transient and answers (conflicts, bad arguments) as final', () => {
    expect(isTransientStoreError(refused())).toBe(true);
    expect(isTransientStoreError(new PipewrightError('STORE_UNAVAILABLE', 'down'))).toBe(true);
    expect(isTransientStoreError(new PipewrightError('STORE_CONFLICT', 'changed'))).toBe(false);
    expect(isTransientStoreError(new Error('WRONGTYPE Operation against a key'))).toBe(false);
  });

  it('retries a transient failure until the call succeeds, reporting each retry', async () => {
    const seen: number[] = [];
    let calls = 0;
    const out = await retryStoreCall(
      'getRun',
      async () => {
        calls++;
        if (calls < 4) throw refused();
        return 'ok';
      },
      { ...fast, onRetry: (_e, _op, attempt) => seen.push(attempt) },
    );
    expect(out).toBe('ok');
    expect(calls).toBe(4);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('does not retry an answer', async () => {
    let calls = 0;
    const conflict = new PipewrightError('STORE_CONFLICT', 'status changed');
    await expect(
      retryStoreCall(
        'putJob',
        async () => {
          calls++;
          throw conflict;
        },
        fast,
      ),
    ).rejects.toBe(conflict);
    expect(calls).toBe(1);
  });

  it('gives up after maxMs with STORE_UNAVAILABLE naming the operation and the cause', async () => {
    const began = Date.now();
    const err = await retryStoreCall(
      'updateRun',
      async () => {
        throw refused();
      },
      { ...fast, maxMs: 60 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipewrightError);
    expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((err as Error).message).toMatch(/updateRun/);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(Date.now() - began).toBeLessThan(2000);
  });

  it('recognises its own createRun when the first try landed but its reply was lost', async () => {
    const inner = new MemoryStore();
    const store = new RetryingStateStore(flaky(inner, 'createRun', 1, true), fast);
    const res = await store.createRun(run('r1'), [] as JobRecord[]);
    expect(res.created).toBe(true);
    expect(res.run.id).toBe('r1');
    expect((await inner.listRuns()).map((r) => r.id)).toEqual(['r1']);
  });

  it('passes reads through the retry and returns the stored value', async () => {
    const inner = new MemoryStore();
    await inner.createRun(run('r2'), []);
    const store = new RetryingStateStore(flaky(inner, 'getRun', 2), fast);
    expect((await store.getRun('r2'))?.id).toBe('r2');
  });

  it('writes a batch with one putJobs call, retried through an outage', async () => {
    const inner = new MemoryStore();
    const job = jobOf('r3');
    await inner.createRun(run('r3'), [job('a', 'pending'), job('b', 'pending')]);
    let batches = 0;
    const counted = flaky(inner, 'putJobs', 2);
    const store = new RetryingStateStore(
      interceptStore(counted, {
        putJobs: (original, ...args) => {
          batches++;
          return original(...args);
        },
      }),
      fast,
    );
    await store.putJobs([job('a', 'running'), job('b', 'queued')]);
    expect(batches).toBe(3);
    expect((await inner.getJobs('r3')).map((j) => j.status)).toEqual(['running', 'queued']);
  });

  it('falls back to putJob per job when the store has no putJobs', async () => {
    const inner = new MemoryStore();
    const job = jobOf('r4');
    await inner.createRun(run('r4'), [job('a', 'pending'), job('b', 'pending')]);
    const singles: string[] = [];
    const plain: StateStore = {
      createRun: (r, j) => inner.createRun(r, j),
      getRun: (id) => inner.getRun(id),
      listRuns: (q) => inner.listRuns(q),
      updateRun: (id, p, e) => inner.updateRun(id, p, e),
      getJobs: (id) => inner.getJobs(id),
      addJobs: (id, j) => inner.addJobs(id, j),
      putJob: (j, e) => {
        singles.push(j.id);
        return inner.putJob(j, e);
      },
      acquireLease: (id, o, t) => inner.acquireLease(id, o, t),
      renewLease: (id, o, t) => inner.renewLease(id, o, t),
      releaseLease: (id, o) => inner.releaseLease(id, o),
    };
    await new RetryingStateStore(plain, fast).putJobs([job('a', 'running'), job('b', 'skipped')]);
    expect(singles).toEqual(['a', 'b']);
    expect((await inner.getJobs('r4')).map((j) => j.status)).toEqual(['running', 'skipped']);
  });

  it('rejects bad options with a clear error', () => {
    expect(() => new RetryingStateStore(new MemoryStore(), { maxMs: -1 })).toThrow(/storeRetry\.maxMs/);
  });
});
