import {
  droppedMarker,
  type LogBatch,
  lostMarker,
  MicroBatcher,
  PipewrightError,
  RunLogger,
  resolveLogPipelineOptions,
} from '@pipewright/core';
import { describe, expect, it } from 'vitest';
import { enc, FakeClock, settle, TestLogStore } from './helpers.js';

const ctx = (step = 0, stream: 'stdout' | 'stderr' = 'stdout', jobId = 'build') => ({
  jobId,
  attempt: 1,
  step,
  stream,
});
const lines = (n: number, prefix = 'l') => enc(Array.from({ length: n }, (_, i) => `${prefix}${i}\n`).join(''));

describe('RunLogger', () => {
  it('close() still ends the run log when the store failed, so followers do not wait forever', async () => {
    const store = new TestLogStore({ fail: new PipewrightError('STORE_UNAVAILABLE', 'store down') });
    const logger = new RunLogger(store, 'run-f', {});
    const out = logger.stream(ctx());
    out.write(enc('one\n'));
    await out.end().catch(() => undefined);
    await expect(logger.close()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(store.ended).toEqual(['run-f']);
  });

  it('close() after a failed flush does not wait for end() (a failing store may retry it for long)', async () => {
    const store = new TestLogStore({ fail: new PipewrightError('STORE_UNAVAILABLE', 'store down') });
    let endCalled = false;
    store.end = () => {
      endCalled = true;
      return new Promise<void>(() => {}); // never answers
    };
    const logger = new RunLogger(store, 'run-h', {});
    const out = logger.stream(ctx());
    out.write(enc('one\n'));
    await out.end().catch(() => undefined);
    await expect(logger.close()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(endCalled).toBe(true);
  });

  it('goes on numbering after startSeq (a run taken over after a restart)', async () => {
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'run-s', { startSeq: 41 });
    const out = logger.stream(ctx());
    out.write(enc('a\nb\n'));
    await out.end();
    await logger.close();
    expect(store.lines().map((l) => [l.seq, l.text])).toEqual([
      [42, 'a'],
      [43, 'b'],
    ]);
  });

  it('numbers lines per run from 1 without gaps across many streams, jobs and system lines', async () => {
    const store = new TestLogStore();
    const batches: LogBatch[] = [];
    const logger = new RunLogger(store, 'run-1', { maxBatchLines: 7, onBatch: (b) => batches.push(b) });
    const sinks = Array.from({ length: 12 }, (_, i) =>
      logger.stream(ctx(i % 3, i % 2 ? 'stderr' : 'stdout', `job-${i % 4}`)),
    );
    for (let round = 0; round < 20; round++) {
      for (const [i, s] of sinks.entries()) await s.write(enc(`r${round} s${i}\n${round % 3 ? 'partial' : ''}`));
      if (round % 5 === 0) logger.system({ jobId: 'job-0', attempt: 1, step: 0 }, `round ${round}`);
      if (round % 4 === 0) await settle();
    }
    await Promise.all(sinks.map((s) => s.end()));
    await logger.close();
    const all = store.lines();
    expect(all.map((l) => l.seq)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    // One line per write, 4 system lines, and the last round's unterminated "partial" of each sink.
    expect(all.length).toBe(12 * 20 + 4 + 12);
    expect(all.every((l) => l.runId === 'run-1')).toBe(true);
    // One onBatch per stored batch, none bigger than maxBatchLines, one append at a time.
    expect(batches).toEqual(store.batches);
    expect(batches.every((b) => b.lines.length <= 7)).toBe(true);
    expect(store.maxAppendsInFlight).toBe(1);
    expect(store.ended).toEqual(['run-1']);
  });

  it('carries job, attempt, step, stream and the clock time on every line', async () => {
    const clock = new FakeClock();
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'run-9', { clock });
    const err = logger.stream({ jobId: 'test (linux)', attempt: 2, step: 3, stream: 'stderr' });
    err.write(enc('boom\n'));
    await logger.close();
    expect(store.lines()).toEqual([
      {
        seq: 1,
        ts: clock.t,
        runId: 'run-9',
        jobId: 'test (linux)',
        attempt: 2,
        step: 3,
        stream: 'stderr',
        text: 'boom',
      },
    ]);
  });

  it('flushes at maxBatchLines', async () => {
    const clock = new FakeClock();
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'r', { clock, maxBatchLines: 10, flushIntervalMs: 1000 });
    const s = logger.stream(ctx());
    s.write(lines(9));
    await settle();
    expect(store.count).toBe(0);
    s.write(lines(1, 'x'));
    await settle();
    expect(store.batches.map((b) => b.lines.length)).toEqual([10]);
    expect(clock.pending).toBe(0);
    await logger.close();
  });

  it('flushes at maxBatchBytes', async () => {
    const clock = new FakeClock();
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'r', { clock, maxBatchBytes: 100, flushIntervalMs: 1000 });
    const s = logger.stream(ctx());
    s.write(enc(`${'a'.repeat(60)}\n`));
    await settle();
    expect(store.count).toBe(0);
    s.write(enc(`${'b'.repeat(40)}\n`));
    await settle();
    expect(store.batches.map((b) => b.lines.map((l) => l.text.length))).toEqual([[60, 40]]);
    await logger.close();
  });

  it('counts maxBatchBytes in UTF-8 bytes: 20 euro signs weigh 60', async () => {
    const clock = new FakeClock();
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'r', { clock, maxBatchBytes: 100, flushIntervalMs: 1000 });
    const s = logger.stream(ctx());
    s.write(enc(`${'€'.repeat(20)}\n`)); // 60 bytes, 20 characters
    await settle();
    expect(store.count).toBe(0);
    s.write(enc(`${'€'.repeat(14)}\n`)); // 42 more bytes: 102 >= 100, while 34 characters would not be
    await settle();
    expect(store.batches.map((b) => b.lines.map((l) => l.text.length))).toEqual([[20, 14]]);
    await logger.close();
  });

  it('flushes flushIntervalMs after the first buffered line (fake clock)', async () => {
    const clock = new FakeClock();
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'r', { clock, flushIntervalMs: 250 });
    const s = logger.stream(ctx());
    s.write(enc('one\n'));
    clock.advance(200);
    s.write(enc('two\n'));
    await settle();
    expect(store.count).toBe(0);
    clock.advance(50);
    await settle();
    expect(store.texts()).toEqual(['one', 'two']);
    expect(clock.pending).toBe(0);
    s.write(enc('three\n'));
    clock.advance(249);
    await settle();
    expect(store.count).toBe(2);
    clock.advance(1);
    await settle();
    expect(store.texts()).toEqual(['one', 'two', 'three']);
    await logger.close();
  });

  it('flushes at step end, including the unterminated last line', async () => {
    const clock = new FakeClock();
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'r', { clock, flushIntervalMs: 60_000 });
    const s = logger.stream(ctx());
    s.write(enc('done\nno newline'));
    await s.end();
    expect(store.texts()).toEqual(['done', 'no newline']);
    expect(() => s.write(enc('x'))).toThrow(/after end\(\)/);
    await logger.close();
  });

  it('applies backpressure: write() returns a promise above the high-water mark that resolves once the store caught up', async () => {
    let release: (() => void) | undefined;
    const store = new TestLogStore();
    const slow = Object.assign(Object.create(store) as TestLogStore, {
      append: async (runId: string, b: LogBatch) => {
        await new Promise<void>((r) => {
          release = r;
        });
        return store.append(runId, b);
      },
    });
    const logger = new RunLogger(slow, 'r', { highWaterMarkBytes: 4096, maxBatchBytes: 1024 });
    const s = logger.stream(ctx());
    let wait: void | Promise<void>;
    let written = 0;
    while (wait === undefined) {
      wait = s.write(enc(`${'z'.repeat(99)}\n`));
      written++;
      expect(written).toBeLessThan(100);
    }
    let resolved = false;
    void wait.then(() => {
      resolved = true;
    });
    await settle();
    expect(resolved).toBe(false);
    while (!resolved) {
      release?.();
      await settle();
    }
    const closing = logger.close();
    while (store.ended.length === 0) {
      release?.();
      await settle();
    }
    await closing;
    expect(store.count).toBe(written);
  });

  it('drops output above the per-step cap and says how much in one marker line', async () => {
    const store = new TestLogStore({ delayMs: 1 });
    const logger = new RunLogger(store, 'r', {
      maxStepBufferBytes: 1000,
      highWaterMarkBytes: 1 << 20,
      maxBatchBytes: 1024,
    });
    const s = logger.stream(ctx());
    // A producer that ignores backpressure: 100 lines of 100 bytes in one go.
    for (let i = 0; i < 100; i++) s.write(enc(`${String(i).padStart(99, '.')}\n`));
    await s.end();
    await logger.close();
    const got = store.lines();
    const kept = got.filter((l) => l.stream === 'stdout');
    const markers = got.filter((l) => l.stream === 'system');
    expect(kept.length).toBe(11); // 11 x 99 >= 1000
    expect(markers.map((l) => l.text)).toEqual([droppedMarker(89 * 100)]);
    expect(got.at(-1)?.stream).toBe('system');
    expect(got.map((l) => l.seq)).toEqual(got.map((_, i) => i + 1));
  });

  it('resumes after a drop once the store caught up, with the marker in between', async () => {
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'r', { maxStepBufferBytes: 10, maxBatchLines: 1 });
    const s = logger.stream(ctx());
    s.write(enc('0123456789\nlost\n'));
    await logger.flush();
    s.write(enc('back\n'));
    await logger.close();
    expect(store.texts()).toEqual(['0123456789', droppedMarker(5), 'back']);
  });

  it('after a store failure, tries the store again once retryFailedAfterMs has passed, led by a line saying how many were lost', async () => {
    const clock = new FakeClock();
    let down = true;
    const store = new TestLogStore();
    const append = store.append.bind(store);
    store.append = async (runId, batch) => {
      if (down) throw new Error('store down');
      return append(runId, batch);
    };
    const errors: PipewrightError[] = [];
    const logger = new RunLogger(store, 'run-r', {
      clock,
      maxBatchLines: 2,
      retryFailedAfterMs: 5000,
      onError: (e) => errors.push(e),
    });
    const s = logger.stream(ctx(1, 'stdout', 'test'));
    s.write(enc('a\nb\n'));
    await expect(logger.flush()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(errors).toHaveLength(1);
    s.write(enc('c\n')); // within the pause: lost, and the producer is not blocked
    await expect(logger.flush()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    // A try while the store is still down loses its marker too; the next marker counts every line.
    clock.t += 5000;
    s.write(enc('c2\n'));
    await expect(logger.flush()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(errors).toHaveLength(2);
    clock.t += 5000;
    down = false;
    s.write(enc('d\n'));
    await logger.close();
    expect(store.texts()).toEqual([lostMarker(4, 'store down'), 'd']);
    // The lost lines' numbers are not given again (a failed append may have been stored after all):
    // a, b were 1-2, the first marker and c2 were 3-4.
    expect(store.lines().map((l) => [l.seq, l.stream, l.jobId, l.step])).toEqual([
      [5, 'system', 'test', 1],
      [6, 'stdout', 'test', 1],
    ]);
    expect(errors).toHaveLength(2);
  });

  it('reports a failing store with STORE_UNAVAILABLE and does not block producers', async () => {
    const errors: PipewrightError[] = [];
    const store = new TestLogStore({ fail: new Error('disk full') });
    const logger = new RunLogger(store, 'run-x', { maxBatchLines: 1, onError: (e) => errors.push(e) });
    const s = logger.stream(ctx());
    s.write(enc('a\n'));
    await expect(logger.flush()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/run-x.*disk full/);
    expect(s.write(enc('b\n'))).toBeUndefined();
    await expect(logger.close()).rejects.toBeInstanceOf(PipewrightError);
  });

  it('refuses streams after close()', async () => {
    const logger = new RunLogger(new TestLogStore(), 'r');
    await logger.close();
    expect(() => logger.stream(ctx())).toThrow(expect.objectContaining({ code: 'ENGINE_CLOSED' }));
    await logger.close();
  });

  it('close() ends open streams, flushes, ends the run log and forgets secrets', async () => {
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'r', { flushIntervalMs: 60_000 });
    logger.addMask('hunter42');
    logger.stream(ctx()).write(enc('pw hunter42'));
    await logger.close();
    expect(store.texts()).toEqual(['pw ***']);
    expect(store.ended).toEqual(['r']);
    expect(logger.masker.size).toBe(0);
  });
});

describe('MicroBatcher', () => {
  it('keeps one append in flight and sends buffered lines in order after it', async () => {
    const store = new TestLogStore({ delayMs: 5 });
    const b = new MicroBatcher(store, 'r', { maxBatchLines: 3 });
    const c = ctx();
    for (let i = 0; i < 20; i++) expect(b.add({ ...c, stream: 'stdout' }, `l${i}`, 0)).toBe(i + 1);
    await b.flush();
    expect(store.texts()).toEqual(Array.from({ length: 20 }, (_, i) => `l${i}`));
    expect(store.maxAppendsInFlight).toBe(1);
    expect(store.batches.map((x) => x.lines.length)).toEqual([3, 3, 3, 3, 3, 3, 2]);
    b.dispose();
  });
});

describe('resolveLogPipelineOptions', () => {
  it('fills in the defaults', () => {
    const o = resolveLogPipelineOptions();
    expect(o).toMatchObject({
      maxLineBytes: 65536,
      maxBatchLines: 1000,
      maxBatchBytes: 262144,
      flushIntervalMs: 100,
      highWaterMarkBytes: 2097152,
      maxStepBufferBytes: 67108864,
      minMaskLength: 3,
    });
  });

  it('names every bad option, what was expected and what was given', () => {
    let error: unknown;
    try {
      resolveLogPipelineOptions({ maxLineBytes: -1, flushIntervalMs: 'soon' as never, colour: true } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PipewrightError);
    expect((error as PipewrightError).code).toBe('INVALID_ARGUMENT');
    const msg = (error as Error).message;
    expect(msg).toMatch(/`maxLineBytes`.*got `-1` \(number\)/);
    expect(msg).toMatch(/`flushIntervalMs`.*got `"soon"` \(string\)/);
    expect(msg).toMatch(/unknown option\(s\) `colour`/);
    expect(() => resolveLogPipelineOptions({ maxBatchBytes: 10, highWaterMarkBytes: 5 })).toThrow(/must not exceed/);
  });
});
