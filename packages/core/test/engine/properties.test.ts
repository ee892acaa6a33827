import type { FakeStep } from '@pipewright/core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { setup } from './helpers.js';

interface GenJob {
  needs: number[];
  always: boolean;
  timeoutMin: number;
  maxAttempts: number;
  maxParallel: number;
  matrix: number;
  /** Per attempt: exit code (or -1 = hang until aborted), duration in minutes. */
  attempts: Array<{ code: number; minutes: number }>;
}

const jobArb = (i: number): fc.Arbitrary<GenJob> =>
  fc.record({
    needs: i === 0 ? fc.constant([]) : fc.uniqueArray(fc.integer({ min: 0, max: i - 1 }), { maxLength: 3 }),
    always: fc.boolean({ trueWeight: 1, falseWeight: 6 } as never),
    timeoutMin: fc.integer({ min: 1, max: 30 }),
    maxAttempts: fc.integer({ min: 1, max: 3 }),
    maxParallel: fc.integer({ min: 1, max: 3 }),
    matrix: fc.integer({ min: 1, max: 3 }),
    attempts: fc.array(fc.record({ code: fc.constantFrom(0, 0, 0, 1, -1), minutes: fc.integer({ min: 0, max: 40 }) }), {
      minLength: 3,
      maxLength: 3,
    }),
  });

const scenarioArb = fc.integer({ min: 1, max: 60 }).chain((n) =>
  fc.record({
    jobs: fc.tuple(...Array.from({ length: n }, (_, i) => jobArb(i))),
    concurrency: fc.integer({ min: 1, max: 6 }),
    cancelAtMin: fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }),
    forceAfterMin: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
    queueTimeoutMin: fc.option(fc.integer({ min: 5, max: 120 }), { nil: undefined }),
    seed: fc.integer(),
  }),
);

function toYaml(jobs: GenJob[]): string {
  const lines = ['jobs:'];
  jobs.forEach((j, i) => {
    lines.push(`  j${i}:`);
    lines.push('    runs-on: x');
    if (j.needs.length) lines.push(`    needs: [${j.needs.map((n) => `j${n}`).join(', ')}]`);
    if (j.always) lines.push('    if: always()');
    lines.push(`    timeout-minutes: ${j.timeoutMin}`);
    lines.push(
      `    retry: { max-attempts: ${j.maxAttempts}, on: [failure, timeout, infra], backoff: { delay: 30s, factor: 2, jitter: full } }`,
    );
    if (j.matrix > 1)
      lines.push(
        `    strategy: { fail-fast: ${i % 2 === 0}, max-parallel: ${j.maxParallel}, matrix: { k: [${Array.from({ length: j.matrix }, (_, x) => x).join(', ')}] } }`,
      );
    lines.push('    steps: [{ run: x }]');
  });
  return lines.join('\n');
}

describe('scheduler invariants (property)', () => {
  it('hold for random DAGs, outcomes, timeouts, retries and cancels', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (sc) => {
        const jobs = sc.jobs as GenJob[];
        const script = (key: string, attempt: number): FakeStep[] => {
          const j = jobs[Number(key.slice(1))] as GenJob;
          const a = j.attempts[Math.min(attempt, 3) - 1] as { code: number; minutes: number };
          return a.code === -1 ? [{ hang: true }] : [{ exitCode: a.code, durationMs: a.minutes * 60_000 }];
        };
        const env = setup(script, {
          concurrency: sc.concurrency,
          random: mulberry(sc.seed),
          ...(sc.queueTimeoutMin === undefined ? {} : { queueTimeoutMs: sc.queueTimeoutMin * 60_000 }),
        });
        const { engine, clock } = env;
        const finished = new Set<string>();
        const succeeded = new Set<string>();
        const baseOf = (id: string) => id.split(' ')[0] as string;
        const instancesStarted = new Map<string, number>(); // job id -> attempts started
        const runningByBase = new Map<string, number>();
        const lastFinish = new Map<string, number>();
        const retryDelay = new Map<string, number>();
        let running = 0;
        let cancelledAt: number | undefined;
        const violations: string[] = [];
        // A guarded transition that throws (ILLEGAL_TRANSITION) surfaces as an engine error.
        engine.on('error', (err) => violations.push(`engine error: ${err.message}`));
        engine.on('attempt:started', (e) => {
          const b = baseOf(e.jobId);
          const spec = jobs[Number(b.slice(1))] as GenJob;
          running++;
          if (running > sc.concurrency) violations.push(`global limit exceeded: ${running}`);
          const rb = (runningByBase.get(b) ?? 0) + 1;
          runningByBase.set(b, rb);
          if (spec.matrix > 1 && rb > spec.maxParallel) violations.push(`max-parallel exceeded for ${b}`);
          for (const n of spec.needs) {
            const done = [...finished].filter((id) => baseOf(id) === `j${n}`).length;
            if (done < (jobs[n] as GenJob).matrix) violations.push(`${e.jobId} started before need j${n} was terminal`);
          }
          if (succeeded.has(e.jobId)) violations.push(`${e.jobId} ran again after success`);
          const count = (instancesStarted.get(e.jobId) ?? 0) + 1;
          instancesStarted.set(e.jobId, count);
          if (count > spec.maxAttempts) violations.push(`${e.jobId} exceeded max-attempts`);
          if (count > 1) {
            const waited = clock.now() - (lastFinish.get(e.jobId) ?? 0);
            if (waited < (retryDelay.get(e.jobId) ?? 0)) violations.push(`${e.jobId} retried before its backoff`);
          }
          if (cancelledAt !== undefined && !spec.always)
            violations.push(`${e.jobId} (not cleanup) started after cancel`);
        });
        engine.on('attempt:finished', (e) => {
          running--;
          const b = baseOf(e.jobId);
          runningByBase.set(b, (runningByBase.get(b) ?? 1) - 1);
          lastFinish.set(e.jobId, clock.now());
        });
        engine.on('job:retrying', (e) => retryDelay.set(e.jobId, e.delayMs));
        engine.on('job:finished', (e) => {
          finished.add(e.jobId);
          if (e.status === 'succeeded') succeeded.add(e.jobId);
        });
        const handle = await engine.submit(toYaml(jobs));
        let report: Awaited<ReturnType<typeof handle.wait>> | undefined;
        void handle.wait().then((r) => {
          report = r;
        });
        if (sc.cancelAtMin !== undefined) {
          await clock.runUntil(() => report !== undefined, { step: 60_000, maxMs: sc.cancelAtMin * 60_000 });
          if (!report) {
            await handle.cancel({ reason: 'property test' });
            cancelledAt = clock.now();
            if (sc.forceAfterMin !== undefined) {
              await clock.runUntil(() => report !== undefined, { step: 60_000, maxMs: sc.forceAfterMin * 60_000 });
              if (!report) await handle.cancel({ force: true });
            }
          }
        }
        // Bound: everything finishes within every job's full retry budget.
        const done = await clock.runUntil(() => report !== undefined, { step: 60_000, maxMs: 400 * 3_600_000 });
        expect(violations).toEqual([]);
        expect(done).toBe(true);
        const r = report as NonNullable<typeof report>;
        for (const j of r.jobs) {
          expect(['succeeded', 'failed', 'cancelled', 'skipped']).toContain(j.status);
          expect(j.attempts.length).toBeLessThanOrEqual((jobs[Number(j.job.slice(1))] as GenJob).maxAttempts);
          // An attempt the queue timeout failed never ran and waited exactly the timeout.
          for (const a of j.attempts.filter((x) => x.message?.includes('(queue timeout)'))) {
            expect(sc.queueTimeoutMin).toBeDefined();
            expect(a).toMatchObject({ status: 'failed', reason: 'infra', workerId: null, exitCode: null });
            expect(Date.parse(a.finishedAt as string) - Date.parse(a.startedAt as string)).toBe(
              (sc.queueTimeoutMin as number) * 60_000,
            );
          }
        }
        if (cancelledAt !== undefined) expect(r.run.status).toBe('cancelled');
      }),
      { numRuns: 200 },
    );
  }, 300_000);
});

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
