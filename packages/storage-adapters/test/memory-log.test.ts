import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

describe('MemoryLogStore maxBytesPerRun', () => {
  // Each line's text is `t<seq>` padded to 10 bytes.
  const sized = (seq: number, jobId = 'j'): LogLine => ({ ...line(seq), jobId, text: `t${seq}`.padEnd(10, '.') });
  const append = (store: MemoryLogStore, from: number, to: number, jobId?: string) =>
    store.append('r', { runId: 'r', lines: Array.from({ length: to - from + 1 }, (_, i) => sized(from + i, jobId)) });

  it('keeps the newest lines within the cap and says what it dropped, once, to a reader that starts before them', async () => {
    // Each 10-byte line counts 74 (64 for the line itself): 222 keeps three.
    const store = new MemoryLogStore({ maxBytesPerRun: 222 });
    await append(store, 1, 5);
    await append(store, 6, 7);
    // 7 lines arrived, 3 may stay: lines 5-7; 1-4 (40 bytes of text) went.
    const all = await store.read('r');
    expect(all.map((l) => l.seq)).toEqual([4, 5, 6, 7]);
    expect(all[0]).toMatchObject({ seq: 4, stream: 'system', jobId: '', attempt: 0, step: -1 });
    expect(all[0]!.text).toMatch(/dropped, up to line 4 \(4 lines, 40 bytes in all\).*maxBytesPerRun/);
    expect(all.slice(1)).toStrictEqual([sized(5), sized(6), sized(7)]);
    expect(await store.lastSeq('r')).toBe(7);
    // A reader past the dropped range gets no marker; one inside it gets the marker and then the rest.
    expect((await store.read('r', { after: 4 })).map((l) => l.seq)).toEqual([5, 6, 7]);
    expect((await store.read('r', { after: 2 })).map((l) => l.seq)).toEqual([4, 5, 6, 7]);
    // The marker counts towards the limit, and the next read goes on after it.
    const first = await store.read('r', { limit: 2 });
    expect(first.map((l) => l.seq)).toEqual([4, 5]);
    expect((await store.read('r', { after: 5, limit: 2 })).map((l) => l.seq)).toEqual([6, 7]);
    expect(await store.read('r', { limit: 0 })).toEqual([]);
  });

  it('gives the marker to a filtered reader too: the dropped lines may have been its job', async () => {
    const store = new MemoryLogStore({ maxBytesPerRun: 148 });
    await append(store, 1, 3, 'a');
    await append(store, 4, 5, 'b');
    const a = await store.read('r', { job: 'a' });
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ seq: 3, stream: 'system', jobId: '' });
    expect(a[0]!.text).toMatch(
      /^\[pipewright\] earlier log lines of this run were dropped, up to line 3 \(3 lines, 30 bytes/,
    );
  });

  it('follow yields the marker before the kept lines, and live lines after them', async () => {
    const store = new MemoryLogStore({ maxBytesPerRun: 148 });
    await append(store, 1, 4);
    const seen: LogLine[] = [];
    const done = (async () => {
      for await (const b of store.follow('r')) seen.push(...b.lines);
    })();
    await new Promise((r) => setTimeout(r, 10));
    await append(store, 5, 5);
    await store.end('r');
    await done;
    expect(seen.map((l) => [l.seq, l.stream])).toEqual([
      [2, 'system'],
      [3, 'stdout'],
      [4, 'stdout'],
      [5, 'stdout'],
    ]);
  });

  it('drops lines from its memory, not only from what it returns (a run that logs a lot stays within the cap)', async () => {
    const store = new MemoryLogStore({ maxBytesPerRun: 7400 });
    for (let i = 0; i < 200; i++) await append(store, i * 50 + 1, i * 50 + 50);
    const kept = await store.read('r');
    expect(kept[0]!.text).toMatch(/up to line 9900 \(9900 lines, 99000 bytes in all\)/);
    expect(kept.slice(1).map((l) => l.seq)).toEqual(Array.from({ length: 100 }, (_, i) => 9901 + i));

    // Distinct 64 KiB lines through a 1 MiB cap, in batches of 1 and of 64, ending at any point
    // between compactions: the heap holds at most 1.5 times the cap, never the 60+ MiB that
    // went through.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (const [batches, size] of [
      [1000, 1],
      [15, 64],
      [24, 64],
    ] as const) {
      const big = new MemoryLogStore({ maxBytesPerRun: 16 * (65536 + 64) });
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let b = 0; b < batches; b++) {
        const lines = Array.from({ length: size }, (_, i) => ({
          ...line(b * size + i + 1),
          text: String(b * size + i).padEnd(65536, 'x'),
        }));
        await big.append('r', { runId: 'r', lines });
      }
      gc();
      const grown = process.memoryUsage().heapUsed - before;
      // Without the cap it would be 60+ MiB; the slack absorbs what else the test process allocates.
      expect(grown, `${batches} x ${size}`).toBeLessThan(16 * 1024 * 1024);
      expect((await big.read('r')).length).toBe(17); // the marker and the last 16 lines
    }
  });

  it('counts UTF-8 bytes and keeps the newest line even when it alone is over the cap', async () => {
    const store = new MemoryLogStore({ maxBytesPerRun: 8 + 64 });
    await store.append('r', {
      runId: 'r',
      lines: [
        { ...line(1), text: 'ééé' },
        { ...line(2), text: 'éééé' },
      ],
    });
    // 'ééé' is 6 bytes, 'éééé' 8: together 14 > 8, so only line 2 stays.
    const lines = await store.read('r');
    expect(lines[0]!.text).toMatch(/up to line 1 \(1 lines, 6 bytes in all\)/);
    expect(lines.slice(1).map((l) => l.text)).toEqual(['éééé']);
    const big = new MemoryLogStore({ maxBytesPerRun: 2 });
    await big.append('r', { runId: 'r', lines: [line(1)] });
    await big.append('r', { runId: 'r', lines: [{ ...line(2), text: 'longer than the cap' }] });
    expect((await big.read('r')).map((l) => l.seq)).toEqual([1, 2]);
    expect((await big.read('r'))[1]!.text).toBe('longer than the cap');
  });

  it('counts each line, so a flood of empty lines is bounded too', async () => {
    const store = new MemoryLogStore({ maxBytesPerRun: 64 * 100 });
    for (let b = 0; b < 50; b++) {
      const lines = Array.from({ length: 100 }, (_, i) => ({ ...line(b * 100 + i + 1), text: '' }));
      await store.append('r', { runId: 'r', lines });
    }
    const kept = await store.read('r');
    expect(kept).toHaveLength(101); // the marker and 100 empty lines
    expect(kept[0]!.text).toMatch(/up to line 4900 \(4900 lines, 0 bytes in all\)/);
  });

  it('refuses a cap that is not a positive number', () => {
    for (const bad of [0, -1, Number.NaN, '64MB' as unknown as number]) {
      expect(() => new MemoryLogStore({ maxBytesPerRun: bad })).toThrow(/maxBytesPerRun must be a positive number/);
    }
    expect(() => new MemoryLogStore({ maxBytesPerRun: Number.POSITIVE_INFINITY })).not.toThrow();
  });
});
