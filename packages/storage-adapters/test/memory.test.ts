import { attachSpecJson } from '@pipewright/core';
import { describeStateStore, runRecord } from '@pipewright/core/testing';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/memory/state-store.js';

describeStateStore(async () => ({ store: new MemoryStore() }), 'MemoryStore');

describe('MemoryStore with an injected clock', () => {
  it('expires leases by the injected clock', async () => {
    let now = 1000;
    const store = new MemoryStore({ now: () => now });
    await store.createRun(runRecord({ inputs: {}, env: {}, defaults: {}, jobs: {} }), []);
    expect(await store.acquireLease('r1', 'a', 100)).toBe(true);
    now += 99;
    expect(await store.acquireLease('r1', 'b', 100)).toBe(false);
    now += 1;
    expect(await store.acquireLease('r1', 'b', 100)).toBe(true);
    expect(await store.renewLease('r1', 'a', 100)).toBe(false);
  });

  it('rejects a non-positive lease TTL with a clear error', async () => {
    const store = new MemoryStore();
    await expect(store.acquireLease('r1', 'a', 0)).rejects.toThrow(/ttlMs/);
  });
});

describe('MemoryStore and the engine-encoded spec', () => {
  it('stores the spec text the engine attached instead of encoding the spec again', async () => {
    const store = new MemoryStore();
    const spec = { inputs: {}, env: {}, defaults: {}, jobs: {} };
    const run = runRecord(spec);
    // A marker that differs from JSON.stringify(spec) shows which text was stored.
    attachSpecJson(run, JSON.stringify({ ...spec, name: 'from-the-engine' }));
    await store.createRun(run, []);
    expect((await store.getRun('r1'))?.spec.name).toBe('from-the-engine');
  });
});
