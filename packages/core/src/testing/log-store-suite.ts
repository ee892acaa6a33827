import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PipewrightError } from '../errors.js';
import type { LogBatch, LogLine, LogStore } from '../ports/logs.js';
import type { StoreUnderTest } from './state-store-suite.js';

/** Builds a fresh, empty {@link LogStore} for each test of {@link describeLogStore}. */
export type LogStoreFactory = () => Promise<StoreUnderTest<LogStore>>;

/** Options of {@link describeLogStore}. */
export interface LogStoreSuiteOptions {
  /** Labels the suite. @default 'adapter' */
  name?: string;
  /** How long a follower may take to see a line or the end, in ms (polling stores need more). @default 10000 */
  followTimeoutMs?: number;
}

let runCounter = 0;
const newRunId = () => `logrun-${++runCounter}-${Math.random().toString(36).slice(2, 8)}`;

/** Lines `from..to` (inclusive) of a run; job, step and stream rotate so filters have something to pick. */
function makeLines(runId: string, from: number, to: number): LogLine[] {
  const lines: LogLine[] = [];
  for (let seq = from; seq <= to; seq++) {
    lines.push({
      seq,
      ts: 1_700_000_000_000 + seq,
      runId,
      jobId: seq % 3 === 0 ? 'test-linux' : 'build',
      attempt: 1,
      step: (seq % 4) - 1,
      stream: seq % 5 === 0 ? 'stderr' : seq % 7 === 0 ? 'system' : 'stdout',
      text: seq % 11 === 0 ? `line ${seq} — unicode ✓ "quoted" \\ back\tslash` : `line ${seq}`,
    });
  }
  return lines;
}

const batch = (runId: string, lines: LogLine[]): LogBatch => ({ runId, lines });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Collects a follow until it ends; fails when it does not end within `timeoutMs`. */
async function collect(iterable: AsyncIterable<LogBatch>, timeoutMs: number): Promise<LogLine[]> {
  const out: LogLine[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`follow did not end within ${timeoutMs} ms`)), timeoutMs);
  });
  const drain = (async () => {
    for await (const b of iterable) out.push(...b.lines);
  })();
  try {
    await Promise.race([drain, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return out;
}

/**
 * The conformance suite every {@link LogStore} adapter runs. `factory` must return a
 * fresh, empty store for each test.
 */
export function describeLogStore(factory: LogStoreFactory, options: LogStoreSuiteOptions = {}): void {
  const followTimeout = options.followTimeoutMs ?? 10_000;
  describe(`LogStore conformance (${options.name ?? 'adapter'})`, () => {
    let store: LogStore;
    let dispose: () => Promise<void>;

    beforeEach(async () => {
      const made = await factory();
      store = made.store;
      dispose = made.cleanup ?? (async () => store.close?.());
    });
    afterEach(async () => {
      await dispose();
    });

    async function appendAll(runId: string, lines: LogLine[], size: number): Promise<void> {
      for (let i = 0; i < lines.length; i += size) await store.append(runId, batch(runId, lines.slice(i, i + size)));
    }

    describe('append / read', () => {
      it('reads back every line exactly, in seq order', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 100);
        await appendAll(runId, lines, 7);
        expect(await store.read(runId)).toStrictEqual(lines);
      });

      it('refuses an after or limit that is not a non-negative integer (INVALID_ARGUMENT)', async () => {
        const runId = newRunId();
        await store.append(runId, batch(runId, makeLines(runId, 1, 5)));
        for (const bad of [{ after: '2' }, { after: 1.5 }, { after: Number.NaN }, { after: -1 }, { limit: -1 }]) {
          const read = await store.read(runId, bad as never).then(
            () => 'accepted',
            (e: unknown) => (e as PipewrightError).code,
          );
          expect(read, JSON.stringify(bad)).toBe('INVALID_ARGUMENT');
          const followed = await collect(store.follow(runId, bad as never), followTimeout).then(
            () => 'accepted',
            (e: unknown) => (e as PipewrightError).code,
          );
          expect(followed, JSON.stringify(bad)).toBe('INVALID_ARGUMENT');
        }
      });

      it('returns nothing for a run without lines', async () => {
        expect(await store.read(newRunId())).toEqual([]);
      });

      it('filters by after, limit, job and step', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 60);
        await appendAll(runId, lines, 10);
        expect(await store.read(runId, { after: 55 })).toStrictEqual(lines.slice(55));
        expect(await store.read(runId, { after: 60 })).toEqual([]);
        expect(await store.read(runId, { after: 0, limit: 5 })).toStrictEqual(lines.slice(0, 5));
        expect(await store.read(runId, { after: 12, limit: 15 })).toStrictEqual(lines.slice(12, 27));
        expect(await store.read(runId, { job: 'test-linux' })).toStrictEqual(
          lines.filter((l) => l.jobId === 'test-linux'),
        );
        expect(await store.read(runId, { step: 2 })).toStrictEqual(lines.filter((l) => l.step === 2));
        expect(await store.read(runId, { step: -1 })).toStrictEqual(lines.filter((l) => l.step === -1));
        expect(await store.read(runId, { job: 'build', step: 0, after: 20, limit: 3 })).toStrictEqual(
          lines.filter((l) => l.jobId === 'build' && l.step === 0 && l.seq > 20).slice(0, 3),
        );
        expect(await store.read(runId, { job: 'nope' })).toEqual([]);
      });

      it('ignores lines it already has (a producer resending a batch)', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 20);
        await store.append(runId, batch(runId, lines.slice(0, 10)));
        await store.append(runId, batch(runId, lines.slice(5, 15)));
        await store.append(runId, batch(runId, lines.slice(15)));
        expect(await store.read(runId)).toStrictEqual(lines);
      });

      it('lastSeq (when the store has it) is the last stored seq, also after end(); 0 for a run without lines', async (ctx) => {
        if (!store.lastSeq) return ctx.skip();
        const runId = newRunId();
        expect(await store.lastSeq(runId)).toBe(0);
        await appendAll(runId, makeLines(runId, 1, 37), 10);
        expect(await store.lastSeq(runId)).toBe(37);
        await store.end(runId);
        expect(await store.lastSeq(runId)).toBe(37);
      });

      it('keeps runs apart', async () => {
        const ids = Array.from({ length: 8 }, newRunId);
        const all = new Map(ids.map((id, i) => [id, makeLines(id, 1, 10 + i)]));
        for (let round = 0; round < 20; round++) {
          await Promise.all(
            ids.map(async (id) => {
              const line = all.get(id)![round];
              if (line) await store.append(id, batch(id, [line]));
            }),
          );
        }
        for (const id of ids) expect(await store.read(id)).toStrictEqual(all.get(id));
      });

      it('returns copies: mutating a read line does not change the store', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 3);
        await store.append(runId, batch(runId, structuredClone(lines)));
        const got = await store.read(runId);
        got[0]!.text = 'changed';
        got.length = 0;
        expect(await store.read(runId)).toStrictEqual(lines);
      });
    });

    describe('follow', () => {
      it('started before any append, sees every line once in order and ends after end()', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 200);
        const following = collect(store.follow(runId), followTimeout);
        await sleep(50);
        for (let i = 0; i < lines.length; i += 20) {
          await store.append(runId, batch(runId, lines.slice(i, i + 20)));
          if (i % 60 === 0) await sleep(20);
        }
        await store.end(runId);
        expect(await following).toStrictEqual(lines);
      });

      it('started during appends, sees every line once in order', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 300);
        await appendAll(runId, lines.slice(0, 100), 25);
        const following = collect(store.follow(runId), followTimeout);
        const producing = (async () => {
          for (let i = 100; i < lines.length; i += 10) {
            await store.append(runId, batch(runId, lines.slice(i, i + 10)));
            if (i % 50 === 0) await sleep(5);
          }
          await store.end(runId);
        })();
        await producing;
        expect(await following).toStrictEqual(lines);
      });

      it('started after end, replays everything and ends', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 50);
        await appendAll(runId, lines, 10);
        await store.end(runId);
        expect(await collect(store.follow(runId), followTimeout)).toStrictEqual(lines);
      });

      it('of a run ended without lines, ends with nothing', async () => {
        const runId = newRunId();
        await store.end(runId);
        expect(await collect(store.follow(runId), followTimeout)).toEqual([]);
      });

      it('with after, resumes behind that seq', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 40);
        await appendAll(runId, lines.slice(0, 30), 10);
        const following = collect(store.follow(runId, { after: 25 }), followTimeout);
        await store.append(runId, batch(runId, lines.slice(30)));
        await store.end(runId);
        expect(await following).toStrictEqual(lines.slice(25));
      });

      it('with after past the last line of an ended log, ends at once with nothing', async () => {
        const runId = newRunId();
        await appendAll(runId, makeLines(runId, 1, 3), 3);
        await store.end(runId);
        expect(await collect(store.follow(runId, { after: 10 }), followTimeout)).toEqual([]);
      });

      it('ends when its signal aborts', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 5);
        await store.append(runId, batch(runId, lines));
        const controller = new AbortController();
        const seen: LogLine[] = [];
        const following = (async () => {
          for await (const b of store.follow(runId, { signal: controller.signal })) {
            seen.push(...b.lines);
            if (seen.length >= lines.length) controller.abort();
          }
        })();
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          following,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('follow did not end on abort')), followTimeout);
          }),
        ]);
        clearTimeout(timer);
        expect(seen).toStrictEqual(lines);
      });

      it('fails with STORE_UNAVAILABLE when the store closes while it waits, and when started after close', async (ctx) => {
        if (!store.close) return ctx.skip();
        const runId = newRunId();
        const lines = makeLines(runId, 1, 3);
        await store.append(runId, batch(runId, lines));
        const seen: LogLine[] = [];
        const following = (async () => {
          for await (const b of store.follow(runId)) seen.push(...b.lines);
        })().then(
          () => 'ended as if complete',
          (e: unknown) => (e as PipewrightError).code,
        );
        const deadline = Date.now() + followTimeout;
        while (seen.length < lines.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        await store.close();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const outcome = await Promise.race([
          following,
          new Promise((resolve) => {
            timer = setTimeout(() => resolve('still waiting'), followTimeout);
          }),
        ]);
        clearTimeout(timer);
        expect(outcome).toBe('STORE_UNAVAILABLE');
        expect(seen).toStrictEqual(lines);
        const late = await collect(store.follow(runId), followTimeout).then(
          () => 'ended',
          (e: unknown) => (e as PipewrightError).code,
        );
        expect(late).toBe('STORE_UNAVAILABLE');
      });

      it('fails with STORE_UNAVAILABLE when the store closes while its consumer holds a batch', async (ctx) => {
        if (!store.close) return ctx.skip();
        const runId = newRunId();
        await store.append(runId, batch(runId, makeLines(runId, 1, 2)));
        const iterator = store.follow(runId)[Symbol.asyncIterator]();
        const first = await iterator.next();
        expect(first.done).toBe(false);
        await store.close();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const outcome = await Promise.race([
          iterator.next().then(
            (r) => (r.done ? 'ended as if complete' : 'more lines'),
            (e: unknown) => (e as PipewrightError).code,
          ),
          new Promise((resolve) => {
            timer = setTimeout(() => resolve('still waiting'), followTimeout);
          }),
        ]);
        clearTimeout(timer);
        expect(outcome).toBe('STORE_UNAVAILABLE');
      });

      it('with an already aborted signal, ends at once', async () => {
        const runId = newRunId();
        await store.append(runId, batch(runId, makeLines(runId, 1, 5)));
        const got = await collect(store.follow(runId, { signal: AbortSignal.abort() }), followTimeout);
        expect(got.length).toBeLessThanOrEqual(5);
      });

      it('lets a consumer stop early (break) without disturbing other followers', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 30);
        await appendAll(runId, lines.slice(0, 10), 5);
        for await (const b of store.follow(runId)) {
          expect(b.lines.length).toBeGreaterThan(0);
          break;
        }
        const following = collect(store.follow(runId), followTimeout);
        await appendAll(runId, lines.slice(10), 5);
        await store.end(runId);
        expect(await following).toStrictEqual(lines);
      });

      it('keeps followers of different runs apart', async () => {
        const a = newRunId();
        const b = newRunId();
        const la = makeLines(a, 1, 30);
        const lb = makeLines(b, 1, 20);
        const fa = collect(store.follow(a), followTimeout);
        const fb = collect(store.follow(b), followTimeout);
        for (let i = 0; i < 30; i += 5) {
          await store.append(a, batch(a, la.slice(i, i + 5)));
          if (i < 20) await store.append(b, batch(b, lb.slice(i, i + 5)));
        }
        await store.end(b);
        expect(await fb).toStrictEqual(lb);
        await store.end(a);
        expect(await fa).toStrictEqual(la);
      });

      it('serves several followers of one run', async () => {
        const runId = newRunId();
        const lines = makeLines(runId, 1, 60);
        const followers = [collect(store.follow(runId), followTimeout), collect(store.follow(runId), followTimeout)];
        await appendAll(runId, lines, 6);
        followers.push(collect(store.follow(runId, { after: 30 }), followTimeout));
        await store.end(runId);
        const [one, two, three] = await Promise.all(followers);
        expect(one).toStrictEqual(lines);
        expect(two).toStrictEqual(lines);
        expect(three).toStrictEqual(lines.slice(30));
      });
    });
  });
}
