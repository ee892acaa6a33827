import type { LogLine } from '@pipewright/core';
import { describeLogStore } from '@pipewright/core/testing';
import { describe, expect, it } from 'vitest';
import { MemoryLogStore } from '../src/memory/log-store.js';

describeLogStore(async () => ({ store: new MemoryLogStore() }), { name: 'MemoryLogStore' });

const line = (seq: number, runId = 'r'): LogLine => ({
  seq,
  ts: seq,
  runId,
  jobId: 'j',
  attempt: 1,
  step: 0,
  stream: 'stdout',
  text: `t${seq}`,
});

describe('MemoryLogStore', () => {
  it('refuses a batch of another run or with decreasing seq numbers', async () => {
    const store = new MemoryLogStore();
    await expect(store.append('r', { runId: 'other', lines: [] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(store.append('r', { runId: 'r', lines: [line(1, 'x')] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(store.append('r', { runId: 'r', lines: [line(2), line(1)] })).rejects.toThrow(/increasing/);
  });

  it('wakes a follower on append without polling (no timers pending while it waits)', async () => {
    const store = new MemoryLogStore();
    const it = store.follow('r')[Symbol.asyncIterator]();
    const next = it.next();
    await store.append('r', { runId: 'r', lines: [line(1)] });
    expect((await next).value).toStrictEqual({ runId: 'r', lines: [line(1)] });
    await it.return?.();
  });

  it('caps follower batches at maxFollowBatch', async () => {
    const store = new MemoryLogStore({ maxFollowBatch: 10 });
    await store.append('r', { runId: 'r', lines: Array.from({ length: 25 }, (_, i) => line(i + 1)) });
    await store.end('r');
    const sizes: number[] = [];
    for await (const b of store.follow('r')) sizes.push(b.lines.length);
    expect(sizes).toEqual([10, 10, 5]);
  });
});
