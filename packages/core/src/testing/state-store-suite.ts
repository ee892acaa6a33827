import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../errors.js';
import { PipewrightError } from '../errors.js';
import type { JobRecord, RunRecord, RunStatus, StateStore } from '../ports/state.js';
import type { PipelineSpec } from '../spec/types.js';
import { jobRecord, runRecord } from './attempt.js';

/** What a conformance-suite factory returns: a fresh, empty store and how to dispose of it. */
export interface StoreUnderTest<S> {
  store: S;
  /** Disposes of the store; when absent the suite calls `store.close()`. */
  cleanup?: () => Promise<void>;
}

/** Builds a fresh, empty {@link StateStore} for each test of {@link describeStateStore}. */
export type StateStoreFactory = () => Promise<StoreUnderTest<StateStore>>;

const SPEC: PipelineSpec = {
  name: 'conformance',
  inputs: { who: { required: false, default: 'world', type: 'string' } },
  env: { A: '1' },
  defaults: {},
  jobs: {
    build: {
      id: 'build',
      needs: [],
      runsOn: ['local'],
      timeoutMs: 60_000,
      continueOnError: false,
      outputs: {},
      env: {},
      defaults: {},
      retry: {
        maxAttempts: 1,
        on: ['infra'],
        backoff: { delayMs: 1000, factor: 2, maxDelayMs: 60_000, jitter: 'full' },
        differentWorker: true,
      },
      killGraceMs: 10_000,
      steps: [{ index: 0, run: 'echo hi', with: {}, env: {}, continueOnError: false }],
    },
  },
};

let counter = 0;
/** A minimal run: no optional field is set. */
function makeRun(overrides: Partial<RunRecord> = {}): RunRecord {
  counter++;
  return runRecord(SPEC, {
    id: `run-${String(counter).padStart(6, '0')}-${Math.random().toString(36).slice(2, 8)}`,
    pipelineName: 'conformance',
    specHash: 'sha256:abc',
    inputs: { who: 'world', n: 3, nested: { list: [], obj: {} } },
    trigger: { kind: 'api' },
    createdAt: 1_700_000_000_000 + counter,
    ...overrides,
  });
}

function makeJob(runId: string, id: string, overrides: Partial<JobRecord> = {}): JobRecord {
  return jobRecord(runId, id, { job: id.split('-')[0] ?? id, createdAt: 1_700_000_000_000, ...overrides });
}

/** A run with every optional field set, to check nothing is lost on the way. */
function makeFullRun(): RunRecord {
  return makeRun({
    idempotencyKey: `full-${counter}`,
    concurrencyGroup: 'deploy-prod',
    status: 'cancelling',
    reason: 'cancelled',
    message: 'stopped by alice — "quotes", unicode ✓, newline\nand tab\t',
    cancel: { by: 'alice', reason: 'superseded', at: 1_700_000_000_500, force: false, supersededBy: 'run-x' },
    secretNames: ['TOKEN', 'KEY'],
    priority: -5,
    startedAt: 1_700_000_000_100,
    finishedAt: 1_700_000_000_900,
    inputs: { big: 2 ** 52, neg: -1.5, flag: true, none: null, list: [1, 'two', { three: 3 }], empty: [] },
  });
}

function makeFullJob(runId: string): JobRecord {
  return makeJob(runId, 'test-linux', {
    job: 'test',
    matrix: { os: 'linux', node: 20, flags: [] },
    needs: ['build'],
    status: 'failed',
    reason: 'exit_code',
    message: 'exit 1',
    outputs: { version: '1.2.3' },
    startedAt: 1_700_000_000_100,
    finishedAt: 1_700_000_000_800,
    attempts: [
      {
        number: 1,
        workerId: 'w1',
        executor: 'process',
        status: 'failed',
        reason: 'infra',
        message: 'lost',
        exitCode: null,
        startedAt: 1_700_000_000_100,
        finishedAt: 1_700_000_000_300,
        steps: [
          { index: 0, id: 's0', name: 'checkout', status: 'succeeded', outcome: 'success', conclusion: 'success' },
          { index: 1, name: 'test', status: 'failed', exitCode: 1, startedAt: 1, finishedAt: 2 },
        ],
      },
      { number: 2, executor: 'process', status: 'failed', exitCode: 1, startedAt: 1_700_000_000_400, steps: [] },
    ],
  });
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<PipewrightError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a PipewrightError with code ${code}`).toBeInstanceOf(PipewrightError);
  expect((caught as PipewrightError).code).toBe(code);
  return caught as PipewrightError;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The conformance suite every {@link StateStore} adapter runs. `factory` must return a
 * fresh, empty store for each test; `name` labels the suite. Lease tests use short real TTLs (tens of ms) with
 * generous waits.
 */
export function describeStateStore(factory: StateStoreFactory, name = 'adapter'): void {
  describe(`StateStore conformance (${name})`, () => {
    let store: StateStore;
    let dispose: () => Promise<void>;

    beforeEach(async () => {
      const made = await factory();
      store = made.store;
      dispose = made.cleanup ?? (async () => store.close?.());
    });
    afterEach(async () => {
      await dispose();
    });

    describe('createRun / getRun', () => {
      it('round-trips a minimal run exactly, adding no keys', async () => {
        const run = makeRun();
        const res = await store.createRun(run, []);
        expect(res.created).toBe(true);
        expect(res.run).toStrictEqual(run);
        expect(await store.getRun(run.id)).toStrictEqual(run);
        expect(await store.getJobs(run.id)).toStrictEqual([]);
      });

      it('round-trips a run and jobs with every optional field set', async () => {
        const run = makeFullRun();
        const jobs = [makeJob(run.id, 'build'), makeFullJob(run.id)];
        await store.createRun(run, jobs);
        expect(await store.getRun(run.id)).toStrictEqual(run);
        expect(await store.getJobs(run.id)).toStrictEqual(jobs);
      });

      it('returns undefined for an unknown run', async () => {
        expect(await store.getRun('no-such-run')).toBeUndefined();
      });

      it("keeps runs apart whose ids extend another's (`a:jobs`, `a:lease`)", async () => {
        const victim = makeRun();
        await store.createRun(victim, [makeJob(victim.id, 'build')]);
        for (const suffix of ['jobs', 'order', 'lease'])
          expect(await store.getRun(`${victim.id}:${suffix}`)).toBeUndefined();
        const other = makeRun({ id: `${victim.id}:jobs` });
        const res = await store.createRun(other, [makeJob(other.id, 'evil')]);
        expect(res.created).toBe(true);
        expect(await store.getRun(other.id)).toStrictEqual(other);
        expect((await store.getJobs(other.id)).map((j) => j.id)).toEqual(['evil']);
        expect(await store.getRun(victim.id)).toStrictEqual(victim);
        expect((await store.getJobs(victim.id)).map((j) => j.id)).toEqual(['build']);
      });

      it('refuses a run without a non-empty id or a finite createdAt, writing nothing', async () => {
        const bad = [
          makeRun({ id: '', idempotencyKey: 'k-empty' }),
          makeRun({ createdAt: Number.NaN, idempotencyKey: 'k-nan' }),
        ];
        bad.push(makeRun({ createdAt: 'yesterday' as unknown as number, idempotencyKey: 'k-text' }));
        for (const run of bad) {
          await expectCode(store.createRun(run, [makeJob(run.id, 'build')]), 'INVALID_ARGUMENT');
          expect(await store.getRun(run.id)).toBeUndefined();
          // The key was not taken: a valid run with it is created.
          const good = makeRun({ idempotencyKey: run.idempotencyKey as string });
          expect((await store.createRun(good, [])).created).toBe(true);
        }
        const run = makeRun();
        await store.createRun(run, []);
        await expectCode(store.updateRun(run.id, { createdAt: Number.NaN }), 'INVALID_ARGUMENT');
        expect(await store.getRun(run.id)).toStrictEqual(run);
      });

      it('refuses a second run with an existing id and no idempotency key', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        await expectCode(store.createRun({ ...run, pipelineName: 'other' }, []), 'STORE_CONFLICT');
        expect((await store.getRun(run.id))?.pipelineName).toBe('conformance');
      });
    });

    describe('idempotency', () => {
      it('50 concurrent createRun calls with one key create exactly one run', async () => {
        const key = `delivery-${Math.random()}`;
        const candidates = Array.from({ length: 50 }, (_, i) => {
          const run = makeRun({ idempotencyKey: key });
          return { run, jobs: [makeJob(run.id, `j${i}`)] };
        });
        const results = await Promise.all(candidates.map((c) => store.createRun(c.run, c.jobs)));
        expect(results.filter((r) => r.created)).toHaveLength(1);
        const ids = new Set(results.map((r) => r.run.id));
        expect(ids.size).toBe(1);
        const winnerId = [...ids][0]!;
        const winner = candidates.find((c) => c.run.id === winnerId)!;
        for (const r of results) expect(r.run).toStrictEqual(winner.run);
        expect(await store.getJobs(winnerId)).toStrictEqual(winner.jobs);
        const all = await store.listRuns();
        expect(all.filter((r) => r.idempotencyKey === key)).toHaveLength(1);
        for (const c of candidates) if (c.run.id !== winnerId) expect(await store.getRun(c.run.id)).toBeUndefined();
      });

      it('returns the existing run, as it is now, for a key seen before', async () => {
        const first = makeRun({ idempotencyKey: 'k1' });
        await store.createRun(first, []);
        await store.updateRun(first.id, { status: 'running', startedAt: 5 });
        const again = await store.createRun(makeRun({ idempotencyKey: 'k1' }), []);
        expect(again.created).toBe(false);
        expect(again.run).toStrictEqual({ ...first, status: 'running', startedAt: 5 });
      });

      it('creates separate runs for different keys and for runs without a key', async () => {
        const a = await store.createRun(makeRun({ idempotencyKey: 'a' }), []);
        const b = await store.createRun(makeRun({ idempotencyKey: 'b' }), []);
        const c = await store.createRun(makeRun(), []);
        const d = await store.createRun(makeRun(), []);
        expect([a, b, c, d].every((r) => r.created)).toBe(true);
        expect(await store.listRuns()).toHaveLength(4);
      });
    });

    describe('listRuns', () => {
      async function seed(): Promise<RunRecord[]> {
        const runs = [
          makeRun({ id: 'r-b', createdAt: 2000, status: 'running' }),
          makeRun({ id: 'r-a', createdAt: 1000, status: 'queued' }),
          makeRun({ id: 'r-d', createdAt: 3000, status: 'succeeded' }),
          makeRun({ id: 'r-c', createdAt: 3000, status: 'failed' }),
          makeRun({ id: 'r-e', createdAt: 500, status: 'running' }),
        ];
        for (const r of runs) await store.createRun(r, []);
        return runs;
      }

      it('returns runs newest first, ties broken by id (descending)', async () => {
        await seed();
        expect((await store.listRuns()).map((r) => r.id)).toEqual(['r-d', 'r-c', 'r-b', 'r-a', 'r-e']);
      });

      it('returns full records', async () => {
        const runs = await seed();
        const listed = await store.listRuns();
        for (const r of runs) expect(listed.find((l) => l.id === r.id)).toStrictEqual(r);
      });

      it('filters by status and limits', async () => {
        await seed();
        expect((await store.listRuns({ status: ['running'] })).map((r) => r.id)).toEqual(['r-b', 'r-e']);
        expect((await store.listRuns({ status: ['failed', 'queued', 'running'] })).map((r) => r.id)).toEqual([
          'r-c',
          'r-b',
          'r-a',
          'r-e',
        ]);
        expect((await store.listRuns({ limit: 2 })).map((r) => r.id)).toEqual(['r-d', 'r-c']);
        expect((await store.listRuns({ status: ['running', 'queued'], limit: 2 })).map((r) => r.id)).toEqual([
          'r-b',
          'r-a',
        ]);
        expect(await store.listRuns({ status: ['cancelled'] })).toEqual([]);
        expect(await store.listRuns({ status: [] })).toEqual([]);
      });

      it('follows status changes', async () => {
        await seed();
        await store.updateRun('r-a', { status: 'running' });
        expect((await store.listRuns({ status: ['running'] })).map((r) => r.id)).toEqual(['r-b', 'r-a', 'r-e']);
        expect(await store.listRuns({ status: ['queued'] })).toEqual([]);
      });

      it('returns an empty list from an empty store', async () => {
        expect(await store.listRuns()).toEqual([]);
      });
    });

    describe('updateRun', () => {
      it('merges a patch and returns the stored record', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        const updated = await store.updateRun(run.id, { status: 'running', startedAt: 42, message: 'go' });
        const expected = { ...run, status: 'running', startedAt: 42, message: 'go' };
        expect(updated).toStrictEqual(expected);
        expect(await store.getRun(run.id)).toStrictEqual(expected);
      });

      it('removes a field whose patch value is undefined', async () => {
        const run = makeRun({ message: 'old' });
        await store.createRun(run, []);
        const patch = { message: undefined } as unknown as Partial<RunRecord>;
        const updated = await store.updateRun(run.id, patch);
        expect('message' in updated).toBe(false);
        expect('message' in ((await store.getRun(run.id)) ?? {})).toBe(false);
      });

      it('keeps a field a run cannot lack when its patch value is undefined', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        const patch = { status: undefined, spec: undefined, createdAt: undefined } as unknown as Partial<RunRecord>;
        const updated = await store.updateRun(run.id, patch);
        expect(updated).toStrictEqual(run);
        expect(await store.getRun(run.id)).toStrictEqual(run);
      });

      it('applies a write whose expected status matches (one or a list)', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        await store.updateRun(run.id, { status: 'running' }, { status: 'queued' });
        const r = await store.updateRun(run.id, { status: 'succeeded' }, { status: ['running', 'cancelling'] });
        expect(r.status).toBe('succeeded');
      });

      it('fails with STORE_CONFLICT and changes nothing when the status does not match', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        await expectCode(
          store.updateRun(run.id, { status: 'failed', message: 'x' }, { status: 'running' }),
          'STORE_CONFLICT',
        );
        await expectCode(
          store.updateRun(run.id, { status: 'failed' }, { status: ['running', 'cancelling'] }),
          'STORE_CONFLICT',
        );
        expect(await store.getRun(run.id)).toStrictEqual(run);
      });

      it('lets exactly one of 20 concurrent compare-and-set writes win', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            store.updateRun(run.id, { status: 'running', message: `w${i}` }, { status: 'queued' }),
          ),
        );
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const o of outcomes) {
          if (o.status === 'rejected') expect((o.reason as PipewrightError).code).toBe('STORE_CONFLICT');
        }
        const winner = (won[0] as PromiseFulfilledResult<RunRecord>).value;
        expect(await store.getRun(run.id)).toStrictEqual(winner);
      });

      it('fails with RUN_NOT_FOUND for an unknown run', async () => {
        await expectCode(store.updateRun('no-such-run', { status: 'running' }), 'RUN_NOT_FOUND');
        await expectCode(store.updateRun('no-such-run', { status: 'running' }, { status: 'queued' }), 'RUN_NOT_FOUND');
      });
    });

    describe('jobs', () => {
      it('keeps jobs in insertion order across createRun and addJobs', async () => {
        const run = makeRun();
        const first = ['zeta', 'alpha', 'mu'].map((id) => makeJob(run.id, id));
        await store.createRun(run, first);
        const more = ['beta', 'aardvark'].map((id) => makeJob(run.id, id, { matrix: { i: id } }));
        await store.addJobs(run.id, more);
        expect(await store.getJobs(run.id)).toStrictEqual([...first, ...more]);
      });

      it('keeps order when a job is replaced', async () => {
        const run = makeRun();
        const jobs = ['c', 'a', 'b'].map((id) => makeJob(run.id, id));
        await store.createRun(run, jobs);
        const replaced = { ...jobs[1]!, status: 'running' as const, startedAt: 9 };
        await store.putJob(replaced);
        expect((await store.getJobs(run.id)).map((j) => j.id)).toEqual(['c', 'a', 'b']);
        expect((await store.getJobs(run.id))[1]).toStrictEqual(replaced);
      });

      it('handles a run with many jobs', async () => {
        const run = makeRun();
        const jobs = Array.from({ length: 2000 }, (_, i) => makeJob(run.id, `job-${(i * 7919) % 2000}`));
        await store.createRun(run, jobs);
        expect(await store.getJobs(run.id)).toStrictEqual(jobs);
      });

      it('putJob replaces the whole record, optional fields included', async () => {
        const run = makeRun();
        const full = makeFullJob(run.id);
        await store.createRun(run, [full]);
        const bare = makeJob(run.id, full.id, { job: full.job, status: 'queued' });
        await store.putJob(bare);
        expect(await store.getJobs(run.id)).toStrictEqual([bare]);
      });

      it('putJob is a compare-and-set when expect is given', async () => {
        const run = makeRun();
        const job = makeJob(run.id, 'build');
        await store.createRun(run, [job]);
        await store.putJob({ ...job, status: 'queued' }, { status: 'pending' });
        await store.putJob({ ...job, status: 'running' }, { status: ['queued', 'retrying'] });
        await expectCode(store.putJob({ ...job, status: 'succeeded' }, { status: 'queued' }), 'STORE_CONFLICT');
        expect((await store.getJobs(run.id))[0]?.status).toBe('running');
      });

      it('lets exactly one of 20 concurrent putJob compare-and-set writes win', async () => {
        const run = makeRun();
        const job = makeJob(run.id, 'build');
        await store.createRun(run, [job]);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            store.putJob({ ...job, status: 'running', message: `w${i}` }, { status: 'pending' }),
          ),
        );
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        for (const o of outcomes) {
          if (o.status === 'rejected') expect((o.reason as PipewrightError).code).toBe('STORE_CONFLICT');
        }
      });

      it('putJob refuses a job that is not part of the run', async () => {
        const run = makeRun();
        await store.createRun(run, [makeJob(run.id, 'a')]);
        await expectCode(store.putJob(makeJob(run.id, 'b')), 'INVALID_ARGUMENT');
        expect((await store.getJobs(run.id)).map((j) => j.id)).toEqual(['a']);
      });

      it('addJobs refuses a job id that already exists, adding none of the batch', async () => {
        const run = makeRun();
        await store.createRun(run, [makeJob(run.id, 'a')]);
        await expectCode(store.addJobs(run.id, [makeJob(run.id, 'b'), makeJob(run.id, 'a')]), 'INVALID_ARGUMENT');
        expect((await store.getJobs(run.id)).map((j) => j.id)).toEqual(['a']);
      });

      it('fails with RUN_NOT_FOUND for an unknown run', async () => {
        await expectCode(store.getJobs('no-such-run'), 'RUN_NOT_FOUND');
        await expectCode(store.addJobs('no-such-run', [makeJob('no-such-run', 'a')]), 'RUN_NOT_FOUND');
        await expectCode(store.putJob(makeJob('no-such-run', 'a')), 'RUN_NOT_FOUND');
      });
    });

    // putJobs is optional; a store that has it must keep these rules.
    describe('putJobs (when the store has it)', () => {
      // Skips the test (reported as skipped, not passed) for a store without putJobs.
      const batch = (ctx: { skip: (note?: string) => never }) => {
        const put = store.putJobs;
        if (!put) return ctx.skip('the store has no putJobs');
        return (jobs: readonly JobRecord[], expect?: Parameters<typeof put>[1]) => put.call(store, jobs, expect);
      };

      it('replaces several jobs of several runs in one call, keeping order and copies', async (ctx) => {
        const put = batch(ctx);
        const r1 = makeRun();
        const r2 = makeRun();
        const a = ['x', 'y', 'z'].map((id) => makeJob(r1.id, id));
        const b = [makeJob(r2.id, 'x')];
        await store.createRun(r1, a);
        await store.createRun(r2, b);
        const next = [
          { ...a[2]!, status: 'running' as const, startedAt: 5 },
          { ...makeFullJob(r2.id), id: 'x' },
          { ...a[0]!, status: 'queued' as const },
        ];
        const snapshot = structuredClone(next);
        await put(next);
        next[0]!.needs.push('mutated');
        next[1]!.outputs.x = 'mutated';
        expect(await store.getJobs(r1.id)).toStrictEqual([snapshot[2], a[1], snapshot[0]]);
        expect(await store.getJobs(r2.id)).toStrictEqual([snapshot[1]]);
        await put([]);
      });

      it('is a compare-and-set per job, all or nothing', async (ctx) => {
        const put = batch(ctx);
        const run = makeRun();
        const jobs = [makeJob(run.id, 'a'), makeJob(run.id, 'b', { status: 'queued' })];
        await store.createRun(run, jobs);
        const err = await expectCode(
          put(
            jobs.map((j) => ({ ...j, status: 'running' as const })),
            { status: 'pending' },
          ),
          'STORE_CONFLICT',
        );
        expect(err.message).toContain('"b"');
        expect((await store.getJobs(run.id)).map((j) => j.status)).toEqual(['pending', 'queued']);
        await put(
          jobs.map((j) => ({ ...j, status: 'running' as const })),
          { status: ['pending', 'queued'] },
        );
        expect((await store.getJobs(run.id)).map((j) => j.status)).toEqual(['running', 'running']);
      });

      it('writes none of the batch when a run or a job is missing', async (ctx) => {
        const put = batch(ctx);
        const run = makeRun();
        const job = makeJob(run.id, 'a');
        await store.createRun(run, [job]);
        const moved = { ...job, status: 'running' as const };
        await expectCode(put([moved, makeJob(run.id, 'nope')]), 'INVALID_ARGUMENT');
        await expectCode(put([moved, makeJob('no-such-run', 'a')]), 'RUN_NOT_FOUND');
        expect(await store.getJobs(run.id)).toStrictEqual([job]);
      });

      it('lets exactly one of 20 concurrent compare-and-set batches win', async (ctx) => {
        const put = batch(ctx);
        const run = makeRun();
        const jobs = [makeJob(run.id, 'a'), makeJob(run.id, 'b')];
        await store.createRun(run, jobs);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            put(
              jobs.map((j) => ({ ...j, status: 'running' as const, message: `w${i}` })),
              { status: 'pending' },
            ),
          ),
        );
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        const stored = await store.getJobs(run.id);
        expect(stored[0]!.message).toBe(stored[1]!.message);
      });
    });

    describe('leases', () => {
      it('grants a free lease, refuses another owner, and lets the owner re-acquire', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        expect(await store.acquireLease(run.id, 'engine-a', 30_000)).toBe(true);
        expect(await store.acquireLease(run.id, 'engine-b', 30_000)).toBe(false);
        expect(await store.acquireLease(run.id, 'engine-a', 30_000)).toBe(true);
      });

      it('renews for the owner only', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        await store.acquireLease(run.id, 'engine-a', 30_000);
        expect(await store.renewLease(run.id, 'engine-a', 30_000)).toBe(true);
        expect(await store.renewLease(run.id, 'engine-b', 30_000)).toBe(false);
        expect(await store.acquireLease(run.id, 'engine-b', 30_000)).toBe(false);
      });

      it('releases for the owner only', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        await store.acquireLease(run.id, 'engine-a', 30_000);
        await store.releaseLease(run.id, 'engine-b');
        expect(await store.acquireLease(run.id, 'engine-b', 30_000)).toBe(false);
        await store.releaseLease(run.id, 'engine-a');
        expect(await store.renewLease(run.id, 'engine-a', 30_000)).toBe(false);
        expect(await store.acquireLease(run.id, 'engine-b', 30_000)).toBe(true);
      });

      it('lets another owner take an expired lease; the old owner then cannot renew', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        expect(await store.acquireLease(run.id, 'engine-a', 50)).toBe(true);
        await sleep(250);
        expect(await store.acquireLease(run.id, 'engine-b', 30_000)).toBe(true);
        expect(await store.renewLease(run.id, 'engine-a', 30_000)).toBe(false);
        expect(await store.acquireLease(run.id, 'engine-a', 30_000)).toBe(false);
      });

      it('a renewal extends the lease past its first TTL', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        expect(await store.acquireLease(run.id, 'engine-a', 300)).toBe(true);
        expect(await store.renewLease(run.id, 'engine-a', 30_000)).toBe(true);
        await sleep(500);
        expect(await store.acquireLease(run.id, 'engine-b', 30_000)).toBe(false);
      });

      it('keeps leases of different runs apart', async () => {
        const a = makeRun();
        const b = makeRun();
        await store.createRun(a, []);
        await store.createRun(b, []);
        expect(await store.acquireLease(a.id, 'engine-a', 30_000)).toBe(true);
        expect(await store.acquireLease(b.id, 'engine-b', 30_000)).toBe(true);
      });

      it('lets exactly one of 20 concurrent owners acquire', async () => {
        const run = makeRun();
        await store.createRun(run, []);
        const got = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.acquireLease(run.id, `engine-${i}`, 30_000)),
        );
        expect(got.filter(Boolean)).toHaveLength(1);
      });

      it('fails with RUN_NOT_FOUND when acquiring a lease on an unknown run', async () => {
        await expectCode(store.acquireLease('no-such-run', 'engine-a', 30_000), 'RUN_NOT_FOUND');
        expect(await store.renewLease('no-such-run', 'engine-a', 30_000)).toBe(false);
        await store.releaseLease('no-such-run', 'engine-a');
      });
    });

    describe('copies, not references', () => {
      it('is not changed by mutating returned records', async () => {
        const run = makeFullRun();
        const job = makeFullJob(run.id);
        const created = await store.createRun(run, [job]);
        created.run.status = 'failed';
        created.run.secretNames.push('X');
        const got = (await store.getRun(run.id))!;
        got.cancel!.by = 'mallory';
        (got.inputs as { list: unknown[] }).list.push(9);
        const listed = await store.listRuns();
        listed[0]!.specHash = 'changed';
        listed[0]!.spec.jobs.build!.steps.length = 0;
        const updated = await store.updateRun(run.id, { priority: 1 });
        updated.message = 'changed';
        const jobs = await store.getJobs(run.id);
        jobs[0]!.attempts[0]!.steps[0]!.name = 'changed';
        jobs[0]!.outputs.x = 'y';
        jobs.length = 0;
        expect(await store.getRun(run.id)).toStrictEqual({ ...run, priority: 1 });
        expect(await store.getJobs(run.id)).toStrictEqual([job]);
      });

      it('is not changed by mutating records after passing them in', async () => {
        const run = makeRun();
        const job = makeJob(run.id, 'a');
        const snapshotRun = structuredClone(run);
        const snapshotJob = structuredClone(job);
        await store.createRun(run, [job]);
        run.status = 'failed';
        run.secretNames.push('X');
        job.outputs.x = 'y';
        expect(await store.getRun(run.id)).toStrictEqual(snapshotRun);
        expect(await store.getJobs(run.id)).toStrictEqual([snapshotJob]);
        const put = { ...snapshotJob, status: 'running' as const, needs: ['q'] };
        await store.putJob(put);
        put.needs.push('r');
        expect((await store.getJobs(run.id))[0]?.needs).toEqual(['q']);
        const patch = { cancel: { by: 'a', reason: 'b', at: 1, force: false } };
        await store.updateRun(run.id, patch);
        patch.cancel.by = 'mallory';
        expect((await store.getRun(run.id))?.cancel?.by).toBe('a');
      });
    });

    it('accepts every run status', async () => {
      const statuses: RunStatus[] = ['queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'];
      for (const status of statuses) await store.createRun(makeRun({ status }), []);
      for (const status of statuses) expect(await store.listRuns({ status: [status] })).toHaveLength(1);
    });

    it('refuses an unknown run status and a limit that is not a non-negative integer (INVALID_ARGUMENT)', async () => {
      await expectCode(store.createRun(makeRun({ status: 'bogus' as RunStatus }), []), 'INVALID_ARGUMENT');
      const run = makeRun();
      await store.createRun(run, []);
      await expectCode(store.updateRun(run.id, { status: 'bogus' as RunStatus }), 'INVALID_ARGUMENT');
      expect((await store.getRun(run.id))?.status).toBe(run.status);
      for (const limit of [-1, 1.5]) await expectCode(store.listRuns({ limit }), 'INVALID_ARGUMENT');
    });
  });
}
