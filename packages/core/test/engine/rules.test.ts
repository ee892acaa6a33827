import { backoffDelay, decideRetry, seededRandom } from '@pipewright/core';
import type { FakeStep } from '@pipewright/core/testing';
import { describe, expect, it } from 'vitest';
import { byId, PLAN_THEN_MATRIX, runToEnd, settledOnClock, setup } from './helpers.js';

const ok: FakeStep[] = [{}];

describe('4.1 readiness and if:', () => {
  it('skips dependents of a failed job with reason upstream; always() jobs still run', async () => {
    const env = setup((job) => (job === 'a' ? [{ exitCode: 1 }] : ok));
    const r = await runToEnd(
      env,
      `
jobs:
  a: { runs-on: x, steps: [{ run: x }] }
  b: { runs-on: x, needs: a, steps: [{ run: x }] }
  c: { runs-on: x, needs: b, if: always(), steps: [{ run: x }] }
  d: { runs-on: x, needs: a, if: failure(), steps: [{ run: x }] }
`,
    );
    const j = byId(r);
    expect(j.a?.status).toBe('failed');
    expect(j.a?.reason).toBe('exit_code');
    expect(j.b).toMatchObject({ status: 'skipped', reason: 'upstream' });
    expect(j.c?.status).toBe('succeeded');
    expect(j.d?.status).toBe('succeeded');
    expect(r.run.status).toBe('failed');
  });

  it('a false condition skips with reason condition, and the run still succeeds', async () => {
    const env = setup();
    const r = await runToEnd(
      env,
      `
jobs:
  a: { runs-on: x, steps: [{ run: x }] }
  b: { runs-on: x, needs: a, if: "inputs.deploy == 'yes'", steps: [{ run: x }] }
  c: { runs-on: x, needs: b, steps: [{ run: x }] }
`,
    );
    const j = byId(r);
    expect(j.b).toMatchObject({ status: 'skipped', reason: 'condition' });
    expect(j.c).toMatchObject({ status: 'skipped', reason: 'upstream' });
    expect(r.run.status).toBe('succeeded');
  });

  it('no job starts before every instance of its needs is terminal', async () => {
    const env = setup((job, _a, m) => (job === 'build' ? [{ durationMs: 1000 * Number(m.n) }] : ok));
    await runToEnd(
      env,
      `
jobs:
  build: { runs-on: x, strategy: { matrix: { n: [1, 2, 3] } }, steps: [{ run: x }] }
  test: { runs-on: x, needs: build, steps: [{ run: x }] }
`,
    );
    const test = env.executor.calls.find((c) => c.jobId === 'test');
    const builds = env.executor.calls.filter((c) => c.jobId.startsWith('build'));
    expect(builds).toHaveLength(3);
    for (const b of builds) expect(test?.startedAt).toBeGreaterThanOrEqual(b.finishedAt as number);
  });

  it('passes job outputs to needs.<id>.outputs and expands dynamic matrices when ready', async () => {
    const env = setup((job) => (job === 'plan' ? [{ outputs: { list: '["a","b","c"]' } }] : ok));
    const r = await runToEnd(env, PLAN_THEN_MATRIX);
    const work = r.jobs.filter((j) => j.job === 'work' && j.status === 'succeeded');
    expect(work.map((j) => j.matrix.item)).toEqual(['a', 'b', 'c']);
    expect(byId(r).plan?.outputs).toEqual({ list: '["a","b","c"]' });
  });

  it('a dynamic matrix that yields no job, or an include/exclude that is not a list, fails the job and skips its dependents', async () => {
    const cases: [string, RegExp][] = [
      ['[]', /Matrix axis 'item'/],
      ['{"include":"abc"}', /Matrix include must be a list of mappings, got "abc"/],
      ['{"os":["a"],"exclude":{"os":"a"}}', /Matrix exclude must be a list of mappings/],
      ['{"os":"a"}', /Matrix axis 'os' must be a list of values, got "a"/],
      ['"abc"', /The matrix must be a mapping of axes, got "abc"/],
      ['{"os":["a"],"exclude":[{"os":"a"}]}', /yields no job after evaluation/],
    ];
    for (const [list, message] of cases) {
      const env = setup((job) => (job === 'plan' ? [{ outputs: { list } }] : ok));
      const matrix = list.startsWith('[')
        ? '{ item: "${{ fromJSON(needs.plan.outputs.list) }}" }'
        : '"${{ fromJSON(needs.plan.outputs.list) }}"';
      const r = await runToEnd(
        env,
        `
jobs:
  plan: { runs-on: x, outputs: { list: "\${{ steps.s.outputs.list }}" }, steps: [{ id: s, run: x }] }
  work:
    runs-on: x
    needs: plan
    strategy: { matrix: ${matrix} }
    steps: [{ run: x }]
  after: { runs-on: x, needs: work, steps: [{ run: x }] }
`,
      );
      const work = r.jobs.filter((j) => j.job === 'work');
      expect(work.map((j) => [j.status, j.reason])).toEqual([['failed', 'exit_code']]);
      expect(work[0]?.message).toMatch(message);
      expect(byId(r).after?.status).toBe('skipped');
      expect(r.run.status).toBe('failed');
      await env.engine.close();
    }
  });

  it("a dynamic matrix placeholder never reaches the store: stored jobs are the report's jobs", async () => {
    const env = setup((job) => (job === 'plan' ? [{ outputs: { list: '["a","b"]' } }] : ok));
    const handle = await env.engine.submit(`${PLAN_THEN_MATRIX}  never:
    runs-on: x
    needs: plan
    if: "false"
    strategy: { matrix: { item: "\${{ fromJSON(needs.plan.outputs.list) }}" } }
    steps: [{ run: x }]
`);
    // Before expansion: the live report shows the placeholder, the store does not hold it.
    expect((await env.engine.getRun(handle.id))?.jobs.map((j) => j.id)).toEqual(['plan', 'work', 'never']);
    expect((await env.store.getJobs(handle.id)).map((j) => j.id)).toEqual(['plan']);
    const waiting = handle.wait();
    const report = await settledOnClock(env.clock, waiting);
    expect(report?.jobs.map((j) => `${j.id}:${j.status}`)).toEqual([
      'plan:succeeded',
      'work (a):succeeded',
      'work (b):succeeded',
      'never:skipped',
    ]);
    const stored = await env.store.getJobs(handle.id);
    expect(stored.map((j) => j.id).sort()).toEqual(report?.jobs.map((j) => j.id).sort());
    expect(await env.engine.getRun(handle.id)).toEqual(report);
  });

  it('job continue-on-error keeps the run green and dependents running', async () => {
    const env = setup((job) => (job === 'flaky' ? [{ exitCode: 2 }] : ok));
    const r = await runToEnd(
      env,
      `
jobs:
  flaky: { runs-on: x, continue-on-error: true, steps: [{ run: x }] }
  next: { runs-on: x, needs: flaky, steps: [{ run: x }] }
`,
    );
    expect(byId(r).flaky?.status).toBe('failed');
    expect(byId(r).next?.status).toBe('succeeded');
    expect(r.run.status).toBe('succeeded');
  });
});

describe('4.2 timeouts', () => {
  it('a job timeout aborts the attempt with reason timeout', async () => {
    const env = setup(() => [{ hang: true }]);
    const r = await runToEnd(env, `jobs: { a: { runs-on: x, timeout: 5m, steps: [{ run: x }] } }`);
    const a = byId(r).a;
    expect(a).toMatchObject({ status: 'failed', reason: 'timeout' });
    expect(a?.attempts[0]?.reason).toBe('timeout');
    const call = env.executor.calls[0];
    expect((call?.finishedAt as number) - (call?.startedAt as number)).toBe(5 * 60_000);
  });

  it('timeout-minutes applies when no timeout is written; timeout wins over it', async () => {
    const env = setup(() => [{ hang: true }]);
    await runToEnd(
      env,
      `
jobs:
  a: { runs-on: x, timeout-minutes: 2, steps: [{ run: x }] }
  b: { runs-on: x, timeout-minutes: 2, timeout: 30s, steps: [{ run: x }] }
`,
    );
    const dur = (id: string) => {
      const c = env.executor.calls.find((x) => x.jobId === id);
      return (c?.finishedAt as number) - (c?.startedAt as number);
    };
    expect(dur('a')).toBe(120_000);
    expect(dur('b')).toBe(30_000);
  });

  it("a timeout-minutes expression sets the timeout per instance; one that gives no positive number fails the job (the pipeline's failure)", async () => {
    const env = setup(() => [{ hang: true }]);
    const r = await runToEnd(
      env,
      `
jobs:
  a: { runs-on: x, strategy: { fail-fast: false, matrix: { t: [1, 3] } }, timeout-minutes: "\${{ matrix.t }}", steps: [{ run: x }] }
  b: { runs-on: x, timeout-minutes: "\${{ fromJSON('\\"abc\\"') }}", steps: [{ run: x }] }
  c: { runs-on: x, timeout-minutes: "\${{ fromJSON('nope') }}", steps: [{ run: x }] }
  d: { runs-on: x, needs: [b], steps: [{ run: x }] }
`,
    );
    const dur = (id: string) => {
      const c = env.executor.calls.find((x) => x.jobId === id);
      return (c?.finishedAt as number) - (c?.startedAt as number);
    };
    expect(dur('a (1)')).toBe(60_000);
    expect(dur('a (3)')).toBe(180_000);
    expect(byId(r).b).toMatchObject({ status: 'failed', reason: 'exit_code', attempts: [] });
    expect(byId(r).b?.message).toBe('timeout-minutes: evaluated to "abc", not a positive number of minutes');
    expect(byId(r).c).toMatchObject({ status: 'failed', reason: 'exit_code', attempts: [] });
    expect(byId(r).c?.message).toMatch(/^timeout-minutes: Cannot evaluate/);
    expect(byId(r).d).toMatchObject({ status: 'skipped', reason: 'upstream' });
    expect(env.executor.calls.map((c) => c.jobId).sort()).toEqual(['a (1)', 'a (3)']);
  });

  it('an instance whose timeout-minutes cannot be evaluated fails before its siblings are queued: fail-fast cancels them, the run ends; continue-on-error does not cover it', async () => {
    const env = setup(() => [{ durationMs: 1000 }]);
    const r = await runToEnd(
      env,
      `
jobs:
  a: { runs-on: x, strategy: { matrix: { t: [1, 0, 2] } }, timeout-minutes: "\${{ matrix.t }}", steps: [{ run: x }] }
  b: { runs-on: x, continue-on-error: true, timeout-minutes: "\${{ 'x' }}", steps: [{ run: x }] }
  after-b: { runs-on: x, needs: b, steps: [{ run: x }] }
`,
    );
    const j = byId(r);
    expect(j['a (0)']).toMatchObject({ status: 'failed', reason: 'exit_code' });
    expect([j['a (1)']?.status, j['a (2)']?.status]).toEqual(['cancelled', 'cancelled']);
    expect(j.b).toMatchObject({ status: 'failed', reason: 'exit_code' });
    expect(j['after-b']).toMatchObject({ status: 'skipped', reason: 'upstream' });
    expect(r.run.status).toBe('failed');
    expect(env.executor.calls.map((c) => c.jobId)).toEqual([]);
  });

  it('a run timeout cancels the run with reason timeout', async () => {
    const env = setup(() => [{ hang: true }]);
    const r = await runToEnd(env, `timeout: 1m\njobs: { a: { runs-on: x, steps: [{ run: x }] } }`);
    expect(r.run).toMatchObject({ status: 'cancelled', reason: 'timeout' });
    expect(byId(r).a?.status).toBe('cancelled');
  });

  it('job timeouts retry only when retry.on includes timeout', async () => {
    const env = setup((_j, attempt) => (attempt === 1 ? [{ hang: true }] : ok));
    const r = await runToEnd(
      env,
      `
jobs:
  a: { runs-on: x, timeout: 10s, retry: { max-attempts: 2, on: [timeout], backoff: { delay: 1s, jitter: none } }, steps: [{ run: x }] }
  b: { runs-on: x, timeout: 10s, retry: { max-attempts: 2 }, steps: [{ run: x }] }
`,
    );
    expect(byId(r).a?.attempts.map((a) => a.reason)).toEqual(['timeout', null]);
    expect(byId(r).a?.status).toBe('succeeded');
    expect(byId(r).b?.attempts).toHaveLength(1);
    expect(byId(r).b?.status).toBe('failed');
  });
});

describe('4.3 retry', () => {
  it('delay(n) = min(max-delay, delay * factor^(n-1)) with seeded jitter', () => {
    const b = { delayMs: 1000, factor: 2, maxDelayMs: 5000, jitter: 'none' as const };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(b, n, Math.random))).toEqual([1000, 2000, 4000, 5000, 5000]);
    const full = [1, 2, 3].map((n) => backoffDelay({ ...b, jitter: 'full' }, n, seededRandom(7)));
    const again = [1, 2, 3].map((n) => backoffDelay({ ...b, jitter: 'full' }, n, seededRandom(7)));
    expect(full).toEqual(again);
    full.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(1000 * 2 ** i);
    });
    for (let n = 1; n <= 4; n++) {
      const d = backoffDelay({ ...b, jitter: 'equal' }, n, seededRandom(n));
      const base = Math.min(5000, 1000 * 2 ** (n - 1));
      expect(d).toBeGreaterThanOrEqual(base / 2);
      expect(d).toBeLessThanOrEqual(base);
    }
  });

  it('retries a failure on a different worker, keeping every attempt', async () => {
    const env = setup((_j, attempt) => (attempt < 3 ? [{ exitCode: 1 }] : ok), { workers: ['w1', 'w2', 'w3'] });
    const r = await runToEnd(
      env,
      `jobs: { a: { runs-on: x, retry: { max-attempts: 3, on: [failure], backoff: { delay: 10s, jitter: none } }, steps: [{ run: x }] } }`,
    );
    const a = byId(r).a;
    expect(a?.status).toBe('succeeded');
    expect(a?.attempts.map((x) => x.status)).toEqual(['failed', 'failed', 'succeeded']);
    expect(a?.attempts.map((x) => x.workerId)).toEqual(['w1', 'w2', 'w3']);
    expect(env.executor.calls[1]?.avoidWorkers).toEqual(['w1']);
    // each retry waited at least its backoff
    const c = env.executor.calls;
    expect((c[1]?.startedAt as number) - (c[0]?.finishedAt as number)).toBeGreaterThanOrEqual(10_000);
    expect((c[2]?.startedAt as number) - (c[1]?.finishedAt as number)).toBeGreaterThanOrEqual(20_000);
  });

  it("every attempt keeps its exit code: a success reports its last process's code, no process none", async () => {
    const env = setup((job, attempt) =>
      job === 'a' ? [{ exitCode: attempt === 1 ? 1 : 0 }] : [{ infra: 'no docker socket' }],
    );
    const r = await runToEnd(
      env,
      `
jobs:
  a: { runs-on: x, retry: { max-attempts: 2, on: [failure], backoff: { delay: 1s } }, steps: [{ run: x }] }
  b: { runs-on: x, steps: [{ run: x }] }
`,
    );
    expect(byId(r).a?.attempts.map((x) => [x.status, x.exitCode])).toEqual([
      ['failed', 1],
      ['succeeded', 0],
    ]);
    expect(byId(r).b?.attempts.map((x) => [x.status, x.exitCode])).toEqual([['failed', null]]);
  });

  it('exit-codes filters which failures retry', async () => {
    const env = setup(() => [{ exitCode: 3 }]);
    const r = await runToEnd(
      env,
      `jobs: { a: { runs-on: x, retry: { max-attempts: 3, on: [failure], exit-codes: [75] }, steps: [{ run: x }] } }`,
    );
    expect(byId(r).a?.attempts).toHaveLength(1);
    expect(byId(r).a?.attempts[0]?.exitCode).toBe(3);
  });

  it('infra failures retry by default policy only when max-attempts allows', async () => {
    const env = setup((_j, attempt) => (attempt === 1 ? [{ infra: 'executor exploded' }] : ok));
    const r = await runToEnd(env, `jobs: { a: { runs-on: x, retry: { max-attempts: 2 }, steps: [{ run: x }] } }`);
    const a = byId(r).a;
    expect(a?.attempts.map((x) => x.reason)).toEqual(['infra', null]);
    expect(a?.attempts[0]?.message).toContain('executor exploded');
    expect(a?.status).toBe('succeeded');
  });

  it('max-duration cuts retries off', () => {
    const policy = {
      maxAttempts: 10,
      on: ['failure' as const],
      backoff: { delayMs: 60_000, factor: 1, maxDelayMs: 60_000, jitter: 'none' as const },
      maxDurationMs: 90_000,
      differentWorker: true,
    };
    const first = decideRetry(policy, { number: 1, reason: 'exit_code', firstStartedAt: 0, now: 10_000 }, Math.random);
    expect(first).toEqual({ retry: true, delayMs: 60_000 });
    const second = decideRetry(policy, { number: 2, reason: 'exit_code', firstStartedAt: 0, now: 80_000 }, Math.random);
    expect(second.retry).toBe(false);
  });

  it('cancelled attempts never retry', () => {
    const policy = {
      maxAttempts: 5,
      on: ['failure' as const, 'timeout' as const, 'infra' as const],
      backoff: { delayMs: 1, factor: 1, maxDelayMs: 1, jitter: 'none' as const },
      differentWorker: true,
    };
    expect(decideRetry(policy, { number: 1, reason: 'cancelled', firstStartedAt: 0, now: 0 }, Math.random).retry).toBe(
      false,
    );
  });
});

/** long takes 3 s to stop (its kill-grace); chain waits on it; cleanup needs chain. Started, 5 s in. */
async function startStopping() {
  const env = setup((job) => (job === 'long' ? [{ hang: true, stopMs: 3000 }] : [{ durationMs: 1000 }]));
  const handle = await env.engine.submit(`
jobs:
  long: { runs-on: x, steps: [{ run: x }] }
  chain: { runs-on: x, needs: long, steps: [{ run: x }] }
  cleanup: { runs-on: x, needs: chain, if: always(), steps: [{ run: x }] }
`);
  const waiting = handle.wait();
  await env.clock.advance(5000);
  return { env, handle, waiting };
}

describe('4.4 cancellation', () => {
  it('cancel aborts running work, runs cleanup jobs, and records who and why', async () => {
    const env = setup((job) => (job === 'cleanup' || job === 'notify' ? [{ durationMs: 1000 }] : [{ hang: true }]));
    const handle = await env.engine.submit(`
jobs:
  build: { runs-on: x, steps: [{ run: x }] }
  test: { runs-on: x, needs: build, steps: [{ run: x }] }
  cleanup: { runs-on: x, needs: test, if: always(), steps: [{ run: x }] }
  notify: { runs-on: x, needs: test, if: cancelled(), steps: [{ run: x }] }
`);
    const waiting = handle.wait();
    await env.clock.advance(5000);
    await handle.cancel({ reason: 'user pressed Ctrl-C', by: 'alice' });
    const report = await settledOnClock(env.clock, waiting);
    const j = byId(report as NonNullable<typeof report>);
    expect(report?.run.status).toBe('cancelled');
    expect(report?.run.cancel).toMatchObject({ by: 'alice', reason: 'user pressed Ctrl-C', force: false });
    expect(j.build?.status).toBe('cancelled');
    expect(j.test?.status).toBe('cancelled');
    expect(j.cleanup?.status).toBe('succeeded');
    expect(j.notify?.status).toBe('succeeded');
  });

  it('a job not started yet ends only once its needs have stopped, so a cleanup job after it never runs beside them', async () => {
    const { env, handle, waiting } = await startStopping();
    await handle.cancel({ reason: 'stop' });
    await env.clock.advance(1000);
    // long is still stopping: chain is not over yet, so cleanup has not started.
    expect(env.executor.calls.map((c) => c.jobId)).toEqual(['long']);
    expect(byId((await env.engine.getRun(handle.id))!).chain?.status).toBe('pending');
    const report = await settledOnClock(env.clock, waiting);
    const calls = new Map(env.executor.calls.map((c) => [c.jobId, c]));
    expect(calls.get('cleanup')?.startedAt).toBeGreaterThanOrEqual(calls.get('long')?.finishedAt as number);
    const j = byId(report!);
    expect(j.long?.status).toBe('cancelled');
    expect(j.chain).toMatchObject({ status: 'cancelled', reason: 'upstream' });
    expect(j.cleanup?.status).toBe('succeeded');
    expect(report?.run.status).toBe('cancelled');
  });

  it('a job cancelled while it waits for a retry keeps the outputs its failed attempt set', async () => {
    const env = setup(() => [{ outputs: { report: '3 failures' } }, { exitCode: 1 }]);
    const handle = await env.engine.submit(`
jobs:
  test:
    runs-on: x
    retry: { max-attempts: 3, on: [failure], backoff: { delay: 30s, jitter: none } }
    steps: [{ run: x }, { run: y }]
`);
    const waiting = handle.wait();
    await env.clock.advance(1000);
    expect(byId((await env.engine.getRun(handle.id))!).test?.status).toBe('retrying');
    await handle.cancel({ reason: 'stop' });
    const report = await settledOnClock(env.clock, waiting);
    const test = byId(report!).test;
    expect(test?.status).toBe('cancelled');
    expect(test?.attempts).toHaveLength(1);
    expect(test?.outputs).toEqual({ report: '3 failures' });
  });

  it('a forced cancel ends the jobs not started at once, whatever is still stopping', async () => {
    const { env, handle, waiting } = await startStopping();
    await handle.cancel({ reason: 'stop', force: true });
    const now = byId((await env.engine.getRun(handle.id))!);
    expect(now.chain?.status).toBe('cancelled');
    expect(now.cleanup?.status).toBe('cancelled');
    const report = await settledOnClock(env.clock, waiting);
    expect(env.executor.calls.map((c) => c.jobId)).toEqual(['long']);
    expect(report?.run.status).toBe('cancelled');
  });

  it('the cancel record says by when what was running is stopped: at + its kill-grace; at when forced', async () => {
    const yaml = `
jobs:
  build: { runs-on: x, kill-grace: 30s, steps: [{ run: x }, { run: y, kill-grace: 45s }] }
  lint: { runs-on: x, steps: [{ run: x }] }
`;
    for (const force of [false, true]) {
      const env = setup(() => [{ hang: true }]);
      const handle = await env.engine.submit(yaml);
      const waiting = handle.wait();
      await env.clock.advance(5000);
      await handle.cancel({ reason: 'stop', by: 'alice', force });
      const report = await settledOnClock(env.clock, waiting);
      const cancel = report?.run.cancel;
      // build's longest kill-grace is its second step's 45 s; a forced cancel kills at once.
      const grace = force ? 0 : 45_000;
      expect(cancel?.deadline, `force ${force}`).toBe(new Date(Date.parse(cancel?.at as string) + grace).toISOString());
      await env.engine.close();
    }
  });

  it('a forced cancel also aborts running cleanup jobs', async () => {
    const env = setup(() => [{ hang: true }]);
    const handle = await env.engine.submit(`
jobs:
  build: { runs-on: x, steps: [{ run: x }] }
  cleanup: { runs-on: x, needs: build, if: always(), steps: [{ run: x }] }
`);
    let finished = false;
    const waiting = handle.wait();
    void waiting.then(() => {
      finished = true;
    });
    await env.clock.advance(1000);
    await handle.cancel();
    await env.clock.advance(1000);
    expect(env.executor.calls.map((c) => c.jobId)).toEqual(['build', 'cleanup']);
    expect(finished).toBe(false); // cleanup hangs: the first cancel waits for it
    await handle.cancel({ force: true });
    const report = await settledOnClock(env.clock, waiting);
    expect(byId(report as NonNullable<typeof report>).cleanup?.status).toBe('cancelled');
    expect(report?.run.cancel?.force).toBe(true);
  });

  it('cancelling one job skips its dependents and leaves the rest running', async () => {
    const env = setup((job) => (job === 'slow' ? [{ hang: true }] : [{ durationMs: 10_000 }]));
    const handle = await env.engine.submit(`
jobs:
  slow: { runs-on: x, steps: [{ run: x }] }
  after: { runs-on: x, needs: slow, steps: [{ run: x }] }
  other: { runs-on: x, steps: [{ run: x }] }
`);
    const waiting = handle.wait();
    await env.clock.advance(1000);
    await env.engine.cancel({ runId: handle.id, job: 'slow' }, { reason: 'not needed' });
    const report = await settledOnClock(env.clock, waiting);
    const j = byId(report as NonNullable<typeof report>);
    expect(j.slow?.status).toBe('cancelled');
    expect(j.after).toMatchObject({ status: 'skipped', reason: 'upstream' });
    expect(j.other?.status).toBe('succeeded');
  });

  it('fail-fast cancels the other matrix instances; fail-fast: false does not', async () => {
    const script = (_j: string, _a: number, m: Record<string, unknown>): FakeStep[] =>
      m.n === 1 ? [{ exitCode: 1, durationMs: 1000 }] : [{ durationMs: 60_000 }];
    const env = setup(script);
    const r = await runToEnd(
      env,
      `jobs: { t: { runs-on: x, strategy: { matrix: { n: [1, 2, 3] } }, steps: [{ run: x }] } }`,
    );
    expect(r.jobs.map((j) => j.status)).toEqual(['failed', 'cancelled', 'cancelled']);
    const env2 = setup(script);
    const r2 = await runToEnd(
      env2,
      `jobs: { t: { runs-on: x, strategy: { fail-fast: false, matrix: { n: [1, 2, 3] } }, steps: [{ run: x }] } }`,
    );
    expect(r2.jobs.map((j) => j.status)).toEqual(['failed', 'succeeded', 'succeeded']);
  });

  describe('queue timeout (end of 4.4)', () => {
    it('a job no executor slot takes within the queue timeout fails with reason infra ("no worker")', async () => {
      const env = setup((job) => (job === 'a' ? [{ hang: true }] : ok), { capacity: 1, queueTimeoutMs: 3_600_000 });
      const r = await runToEnd(
        env,
        `
jobs:
  a: { runs-on: x, timeout: 2h, steps: [{ run: x }] }
  b: { runs-on: x, steps: [{ run: x }] }
`,
      );
      const b = byId(r).b;
      expect(b).toMatchObject({ status: 'failed', reason: 'infra', startedAt: null });
      expect(b?.message).toBe('no worker took the job within 1h (queue timeout)');
      expect(b?.attempts).toHaveLength(1);
      expect(b?.attempts[0]).toMatchObject({ status: 'failed', reason: 'infra', workerId: null, exitCode: null });
      const t = (iso: string | null | undefined) => Date.parse(iso as string) - Date.parse(r.run.createdAt as string);
      expect([t(b?.attempts[0]?.startedAt), t(b?.finishedAt)]).toEqual([0, 3_600_000]);
      expect(env.executor.calls.map((c) => c.jobId)).toEqual(['a']);
    });

    it('the retry policy applies as for any infra failure; the clock restarts on each queueing', async () => {
      const env = setup((job) => (job === 'a' ? [{ durationMs: 90 * 60_000 }] : ok), {
        capacity: 1,
        queueTimeoutMs: 3_600_000,
      });
      const r = await runToEnd(
        env,
        `
jobs:
  a: { runs-on: x, steps: [{ run: x }] }
  b: { runs-on: x, retry: { max-attempts: 2, on: [infra], backoff: { delay: 1s, jitter: none } }, steps: [{ run: x }] }
`,
      );
      const b = byId(r).b;
      expect(b?.status).toBe('succeeded');
      expect(b?.attempts.map((a) => a.reason ?? a.status)).toEqual(['infra', 'succeeded']);
      const call = env.executor.calls.find((c) => c.jobId === 'b');
      expect((call?.startedAt as number) - (env.executor.calls[0]?.startedAt as number)).toBe(90 * 60_000);
    });

    it('time held back by max-parallel does not count', async () => {
      const env = setup(() => [{ durationMs: 40 * 60_000 }], { queueTimeoutMs: 3_600_000 });
      const r = await runToEnd(
        env,
        `jobs: { t: { runs-on: x, strategy: { max-parallel: 1, matrix: { n: [1, 2, 3, 4] } }, steps: [{ run: x }] } }`,
      );
      expect(r.jobs.map((j) => j.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
      expect(env.executor.maxRunning).toBe(1);
    });

    it('defaults to 24 hours and rejects a non-positive value', async () => {
      const env = setup((job) => (job === 'a' ? [{ durationMs: 30 * 3_600_000 }] : ok), { capacity: 1 });
      const r = await runToEnd(
        env,
        `jobs: { a: { runs-on: x, timeout: 31h, steps: [{ run: x }] }, b: { runs-on: x, steps: [{ run: x }] } }`,
      );
      expect(byId(r).b?.message).toBe('no worker took the job within 24h (queue timeout)');
      expect(() => setup(() => ok, { queueTimeoutMs: 0 })).toThrow(/queueTimeoutMs/);
      expect(() => setup(() => ok, { queueTimeoutMs: Number.POSITIVE_INFINITY })).not.toThrow();
    });
  });
});

describe('4.4 cancellation: !cancelled()', () => {
  it('a queued or running job whose if: is !cancelled() stops on a cancel; always() and cancelled() jobs go on', async () => {
    const env = setup((job) => (job === 'build' ? [{ exitCode: 1 }] : [{ durationMs: 600_000 }]), { concurrency: 3 });
    const handle = await env.engine.submit(`
jobs:
  build: { runs-on: x, steps: [{ run: x }] }
  guarded: { runs-on: x, needs: build, if: "\${{ !cancelled() }}", steps: [{ run: x }] }
  always: { runs-on: x, needs: build, if: always(), steps: [{ run: x }] }
  onCancel: { runs-on: x, needs: build, if: "failure() || cancelled()", steps: [{ run: x }] }
  queued: { runs-on: x, needs: build, if: "!cancelled()", steps: [{ run: x }] }
`);
    await env.clock.advance(5_000);
    // Three slots: guarded, always and onCancel run; queued waits for a slot.
    const live = await env.engine.getRun(handle.id);
    expect(Object.fromEntries(live?.jobs.map((x) => [x.id, x.status]) ?? [])).toMatchObject({
      guarded: 'running',
      always: 'running',
      onCancel: 'running',
      queued: 'queued',
    });
    await handle.cancel();
    const report = await settledOnClock(env.clock, handle.wait());
    const j = byId(report as NonNullable<typeof report>);
    expect(j.guarded).toMatchObject({ status: 'cancelled', attempts: [{ status: 'cancelled' }] });
    expect(j.queued).toMatchObject({ status: 'cancelled', attempts: [] });
    expect(j.always?.status).toBe('succeeded');
    expect(j.onCancel?.status).toBe('succeeded');
    // The !cancelled() jobs stopped at the cancel (running: within its kill-grace), never after.
    for (const id of ['guarded', 'queued']) {
      expect(Date.parse(j[id]?.finishedAt ?? '')).toBeLessThan(Date.parse(report?.run.createdAt ?? '') + 60_000);
    }
  });
});

describe('4.5 concurrency and fairness', () => {
  it('never exceeds the global limit nor per-executor capacity', async () => {
    const env = setup(() => [{ durationMs: 1000 }], { concurrency: 3 });
    const jobs = Array.from({ length: 12 }, (_, i) => `  j${i}: { runs-on: x, steps: [{ run: x }] }`).join('\n');
    await runToEnd(env, `jobs:\n${jobs}`);
    expect(env.executor.maxRunning).toBe(3);
    const env2 = setup(() => [{ durationMs: 1000 }], { concurrency: 10, capacity: 2 });
    await runToEnd(env2, `jobs:\n${jobs}`);
    expect(env2.executor.maxRunning).toBe(2);
  });

  it('max-parallel limits instances of one matrix job', async () => {
    const env = setup(() => [{ durationMs: 1000 }], { concurrency: 10 });
    await runToEnd(
      env,
      `jobs: { t: { runs-on: x, strategy: { max-parallel: 2, matrix: { n: [1, 2, 3, 4, 5] } }, steps: [{ run: x }] } }`,
    );
    expect(env.executor.maxRunning).toBe(2);
  });

  it('round-robin: a small run submitted after a big one is not starved', async () => {
    const env = setup(() => [{ durationMs: 1000 }], { concurrency: 2 });
    const big = Array.from({ length: 50 }, (_, i) => `  j${i}: { runs-on: x, steps: [{ run: x }] }`).join('\n');
    const h1 = await env.engine.submit(`name: big\njobs:\n${big}`);
    const h2 = await env.engine.submit(
      `name: small\njobs:\n  a: { runs-on: x, steps: [{ run: x }] }\n  b: { runs-on: x, steps: [{ run: x }] }`,
    );
    let small: unknown;
    void h2.wait().then((r) => {
      small = r;
    });
    await env.clock.runUntil(() => small !== undefined);
    const smallCalls = env.executor.calls.filter((c) => c.runId === h2.id);
    // Both small jobs start within the first few slots, long before the big run drains.
    expect(Math.max(...smallCalls.map((c) => env.executor.calls.indexOf(c)))).toBeLessThan(6);
    void h1;
  });

  it('priority breaks ties: it orders runs within a round, round-robin stays first', async () => {
    const env = setup(() => [{ durationMs: 1000 }], { concurrency: 1 });
    const body = Array.from({ length: 3 }, (_, i) => `  j${i}: { runs-on: x, steps: [{ run: x }] }`).join('\n');
    await env.engine.submit(`name: first\njobs:\n  blocker: { runs-on: x, steps: [{ run: x }] }`);
    const low = await env.engine.submit(`name: low\njobs:\n${body}`, { priority: 0 });
    const high = await env.engine.submit(`name: high\njobs:\n${body}`, { priority: 10 });
    let done = false;
    void low.wait().then(() => {
      done = true;
    });
    await env.clock.runUntil(() => done);
    const order = env.executor.calls.map((c) => c.runId).slice(1);
    expect(order).toEqual([high.id, low.id, high.id, low.id, high.id, low.id]);
  });

  it('a steady stream of high-priority runs does not starve a low-priority one', async () => {
    const env = setup(() => [{ durationMs: 1000 }], { concurrency: 1 });
    const body = Array.from({ length: 3 }, (_, i) => `  j${i}: { runs-on: x, steps: [{ run: x }] }`).join('\n');
    const low = await env.engine.submit(`name: low\njobs:\n${body}`, { priority: 0 });
    const highs = [];
    for (let i = 0; i < 4; i++) {
      highs.push(await env.engine.submit(`name: high${i}\njobs:\n${body}`, { priority: 10 }));
      await env.clock.advance(500);
    }
    let done = false;
    void low.wait().then(() => {
      done = true;
    });
    await env.clock.runUntil(() => done);
    const lowStarts = env.executor.calls.flatMap((c, i) => (c.runId === low.id ? [i] : []));
    // One start per round each: the low run's three jobs start among the first 3 rounds of 5 runs.
    expect(lowStarts).toHaveLength(3);
    expect(Math.max(...lowStarts)).toBeLessThan(15);
    expect(env.executor.calls.length).toBe(15);
  });

  it('concurrency groups: one running, one pending; a newer pending supersedes the older', async () => {
    const env = setup(() => [{ durationMs: 10_000 }]);
    const yaml = `concurrency: deploy\njobs: { a: { runs-on: x, steps: [{ run: x }] } }`;
    const r1 = await env.engine.submit(yaml);
    const r2 = await env.engine.submit(yaml);
    const r3 = await env.engine.submit(yaml);
    const reports: Record<string, { run: { status: string; cancel: unknown } }> = {};
    for (const h of [r1, r2, r3])
      void h.wait().then((r) => {
        reports[h.id] = r;
      });
    await env.clock.runUntil(() => Object.keys(reports).length === 3);
    expect(reports[r1.id]?.run.status).toBe('succeeded');
    expect(reports[r2.id]?.run.status).toBe('cancelled');
    expect(reports[r2.id]?.run.cancel).toMatchObject({ by: 'concurrency', supersededBy: r3.id });
    expect(reports[r3.id]?.run.status).toBe('succeeded');
    // r3 started only after r1 finished
    const c1 = env.executor.calls.find((c) => c.runId === r1.id);
    const c3 = env.executor.calls.find((c) => c.runId === r3.id);
    expect(c3?.startedAt).toBeGreaterThanOrEqual(c1?.finishedAt as number);
  });

  it('job-level groups across runs: one holder, one pending; a newer pending supersedes the older', async () => {
    const env = setup((job) => (job === 'deploy' ? [{ durationMs: 10_000 }] : ok));
    const yaml = `
jobs:
  build: { runs-on: x, steps: [{ run: x }] }
  deploy: { runs-on: x, needs: build, concurrency: "prod-\${{ inputs.app }}", steps: [{ run: x }] }
`;
    const r1 = await env.engine.submit(yaml, { inputs: { app: 'web' } });
    const r2 = await env.engine.submit(yaml, { inputs: { app: 'web' } });
    const r3 = await env.engine.submit(yaml, { inputs: { app: 'web' } });
    const other = await env.engine.submit(yaml, { inputs: { app: 'api' } });
    const reports: Record<string, Awaited<ReturnType<typeof r1.wait>>> = {};
    for (const h of [r1, r2, r3, other])
      void h.wait().then((r) => {
        reports[h.id] = r;
      });
    await env.clock.advance(1000);
    const live = byId((await env.engine.getRun(r3.id)) as NonNullable<Awaited<ReturnType<typeof env.engine.getRun>>>);
    expect(live.deploy?.status).toBe('pending');
    expect(live.deploy?.message).toContain('waiting for concurrency group `prod-web`');
    await env.clock.runUntil(() => Object.keys(reports).length === 4);
    const deploy = (id: string) => byId(reports[id] as NonNullable<(typeof reports)[string]>).deploy;
    expect(deploy(r1.id)?.status).toBe('succeeded');
    expect(deploy(r2.id)).toMatchObject({ status: 'cancelled', reason: 'cancelled', attempts: [] });
    expect(deploy(r2.id)?.message).toBe(`superseded by job deploy of run ${r3.id} (concurrency group \`prod-web\`)`);
    expect(reports[r2.id]?.run).toMatchObject({ status: 'failed', reason: 'cancelled' });
    expect(deploy(r3.id)?.status).toBe('succeeded');
    const start = (id: string) => env.executor.calls.find((c) => c.runId === id && c.jobId === 'deploy');
    // r3 waited for r1's deploy; the other app's group ran alongside r1.
    expect(start(r3.id)?.startedAt).toBe(start(r1.id)?.finishedAt);
    expect(start(other.id)?.startedAt).toBe(start(r1.id)?.startedAt);
  });

  it('job-level cancel-in-progress cancels the holder; matrix instances can form their own groups', async () => {
    const env = setup((job) => (job === 'migrate' ? [{ hang: true }] : [{ durationMs: 10_000 }]));
    const h1 = await env.engine.submit(`
jobs:
  migrate: { runs-on: x, concurrency: { group: db, cancel-in-progress: true }, steps: [{ run: x }] }
`);
    await env.clock.advance(1000);
    const h2 = await env.engine.submit(`
jobs:
  migrate: { runs-on: x, concurrency: { group: db, cancel-in-progress: "\${{ true }}" }, steps: [{ run: x }] }
  shard:
    runs-on: x
    strategy: { matrix: { n: [1, 2, 3, 4] } }
    concurrency: "shard-\${{ matrix.n < 3 }}"
    steps: [{ run: x }]
`);
    let first: Awaited<ReturnType<typeof h1.wait>> | undefined;
    void h1.wait().then((r) => {
      first = r;
    });
    await env.clock.runUntil(() => first !== undefined, { maxMs: 60_000 });
    expect(byId(first as NonNullable<typeof first>).migrate).toMatchObject({
      status: 'cancelled',
      reason: 'cancelled',
      message: `superseded by job migrate of run ${h2.id} (concurrency group \`db\`)`,
    });
    await env.clock.advance(30_000);
    const r2 = (await env.engine.getRun(h2.id)) as NonNullable<Awaited<ReturnType<typeof env.engine.getRun>>>;
    expect(byId(r2).migrate?.status).toBe('running');
    // shard (1) held shard-true, shard (2) waited; shard (3) held shard-false, shard (4) waited.
    const starts = env.executor.calls.filter((c) => c.jobId.startsWith('shard')).map((c) => [c.jobId, c.startedAt]);
    const t0 = env.executor.calls.find((c) => c.jobId === 'shard (1)')?.startedAt as number;
    expect(starts).toEqual([
      ['shard (1)', t0],
      ['shard (3)', t0],
      ['shard (2)', t0 + 10_000],
      ['shard (4)', t0 + 10_000],
    ]);
    await h2.cancel({ force: true });
  });

  it("a job-level group that cannot be evaluated fails the job as the pipeline's failure (exit_code)", async () => {
    const env = setup();
    const r = await runToEnd(
      env,
      `jobs: { a: { runs-on: x, concurrency: "\${{ fromJSON('nope') }}", steps: [{ run: x }] } }`,
    );
    expect(byId(r).a).toMatchObject({ status: 'failed', reason: 'exit_code', attempts: [] });
    expect(byId(r).a?.message).toMatch(/^concurrency: /);
    expect(env.executor.calls).toHaveLength(0);
  });

  it('cancel-in-progress cancels the running run of the group', async () => {
    const env = setup(() => [{ hang: true }]);
    const yaml = `concurrency: { group: ci, cancel-in-progress: true }\njobs: { a: { runs-on: x, steps: [{ run: x }] } }`;
    const r1 = await env.engine.submit(yaml);
    let first: { run: { status: string; cancel: { reason: string } | null } } | undefined;
    void r1.wait().then((r) => {
      first = r;
    });
    await env.clock.advance(1000);
    const r2 = await env.engine.submit(yaml);
    await env.clock.runUntil(() => first !== undefined, { maxMs: 60_000 });
    expect(first?.run.status).toBe('cancelled');
    expect(first?.run.cancel?.reason).toBe(`superseded by run ${r2.id}`);
    await env.clock.advance(1000);
    expect(env.executor.calls.some((c) => c.runId === r2.id)).toBe(true);
    // The flag is the run's own field, not an entry in the user's trigger.
    const stored = await env.store.getRun(r2.id);
    expect(stored?.cancelInProgress).toBe(true);
    expect(stored?.trigger).toEqual({});
    await r2.cancel({ force: true });
  });

  it('a trigger field cannot ask for cancel-in-progress: the pipeline decides', async () => {
    const env = setup(() => [{ hang: true }]);
    const yaml = `concurrency: { group: ci }\njobs: { a: { runs-on: x, steps: [{ run: x }] } }`;
    const r1 = await env.engine.submit(yaml);
    await env.clock.advance(1000);
    const r2 = await env.engine.submit(yaml, { trigger: { __cancelInProgress: true, cancelInProgress: true } });
    await env.clock.advance(5000);
    expect((await env.engine.getRun(r1.id))?.run.status).toBe('running');
    expect((await env.store.getRun(r2.id))?.cancelInProgress).toBeUndefined();
    await r1.cancel({ force: true });
    await r2.cancel({ force: true });
  });
});

describe('4.6 secrets just in time', () => {
  it('resolves secrets when an attempt starts, never at submit, and never stores them', async () => {
    const asked: Array<{ names: string[]; at: number }> = [];
    let clockRef: { now(): number } | undefined;
    const env = setup(() => [{ durationMs: 1000 }], {
      secrets: {
        resolve: async (names) => {
          asked.push({ names, at: clockRef?.now() ?? -1 });
          return Object.fromEntries(names.map((n) => [n, `value-of-${n}-s3cr3t`]));
        },
      },
    });
    clockRef = env.clock;
    const handle = await env.engine.submit(`
jobs:
  a: { runs-on: x, steps: [{ run: x }] }
  b: { runs-on: x, needs: a, env: { TOKEN: "\${{ secrets.API_TOKEN }}" }, steps: [{ run: x }] }
`);
    expect(asked).toEqual([]);
    let report: unknown;
    void handle.wait().then((r) => {
      report = r;
    });
    await env.clock.runUntil(() => report !== undefined);
    expect(asked).toHaveLength(1);
    expect(asked[0]?.names).toEqual(['API_TOKEN']);
    expect(env.executor.calls.find((c) => c.jobId === 'b')?.secrets).toEqual({
      API_TOKEN: 'value-of-API_TOKEN-s3cr3t',
    });
    const stored = JSON.stringify([await env.store.getRun(handle.id), await env.store.getJobs(handle.id), report]);
    expect(stored).not.toContain('s3cr3t');
  });
});

describe('4.7 idempotency', () => {
  it('N concurrent submits with one key create one run', async () => {
    const env = setup();
    const yaml = `jobs: { a: { runs-on: x, steps: [{ run: x }] } }`;
    const handles = await Promise.all(
      Array.from({ length: 20 }, () => env.engine.submit(yaml, { idempotencyKey: 'delivery-123' })),
    );
    expect(new Set(handles.map((h) => h.id)).size).toBe(1);
    expect(handles.filter((h) => h.created)).toHaveLength(1);
    expect(await env.store.listRuns()).toHaveLength(1);
    await env.clock.runUntil(() => env.executor.calls.length > 0);
    expect(env.executor.calls).toHaveLength(1);
  });
});

describe('4.8 durability', () => {
  it('an attempt is recorded running before the executor is called', async () => {
    const env = setup(() => [{ durationMs: 1000 }]);
    let seen: string | undefined;
    const orig = env.executor.runJob.bind(env.executor);
    env.executor.runJob = async (a, ctx) => {
      const jobs = await env.store.getJobs(a.runId);
      seen = jobs.find((j) => j.id === a.jobId)?.attempts[a.attempt - 1]?.status;
      return orig(a, ctx);
    };
    await runToEnd(env, `jobs: { a: { runs-on: x, steps: [{ run: x }] } }`);
    expect(seen).toBe('running');
  });

  it('recover() marks running attempts lost, retries them, and never reruns finished jobs', async () => {
    const env = setup(() => [{ hang: true }]);
    const yaml = `
jobs:
  a: { runs-on: x, steps: [{ run: x }] }
  b: { runs-on: x, needs: a, retry: { max-attempts: 2 }, steps: [{ run: x }] }
`;
    // First engine: a succeeds, b is running when the engine "dies".
    const first = setup((job) => (job === 'a' ? ok : [{ hang: true }]));
    const handle = await first.engine.submit(yaml);
    await first.clock.advance(1000);
    expect(first.executor.calls.map((c) => c.jobId)).toEqual(['a', 'b']);
    // Second engine on the same store (simulating a restart), lease expired.
    const second = setup(() => ok, { store: first.store, logs: first.logs });
    // The first engine stops renewing; its lease expires on the store's clock.
    await first.clock.advance(31_000);
    const taken = await second.engine.recover();
    expect(taken).toEqual([handle.id]);
    const waiting = second.engine.wait(handle.id);
    const report = await settledOnClock(second.clock, waiting);
    const j = byId(report as NonNullable<typeof report>);
    expect(j.a?.attempts).toHaveLength(1);
    expect(j.b?.attempts.map((a) => a.reason)).toEqual(['lost', null]);
    expect(j.b?.status).toBe('succeeded');
    expect(second.executor.calls.map((c) => c.jobId)).toEqual(['b']);
    void env;
  });

  it('recover() waits out the backoff of a job that was retrying when its engine died', async () => {
    const yaml = `
jobs:
  r: { runs-on: x, retry: { max-attempts: 2, on: [failure], backoff: { delay: 2m, max-delay: 10m, jitter: none } }, steps: [{ run: x }] }
`;
    const first = setup(() => [{ exitCode: 1, durationMs: 1000 }]);
    const handle = await first.engine.submit(yaml);
    await first.clock.advance(1000);
    expect((await first.store.getJobs(handle.id))[0]).toMatchObject({
      status: 'retrying',
      retryAt: expect.any(Number),
    });
    const second = setup(() => ok, { store: first.store, logs: first.logs });
    await first.clock.advance(31_000);
    expect(await second.engine.recover()).toEqual([handle.id]);
    const report = await settledOnClock(second.clock, second.engine.wait(handle.id));
    const [a1, a2] = byId(report as NonNullable<typeof report>).r?.attempts ?? [];
    expect(a2?.status).toBe('succeeded');
    expect(Date.parse(a2?.startedAt ?? '') - Date.parse(a1?.finishedAt ?? '')).toBeGreaterThanOrEqual(120_000);
    // The due time goes with the wait.
    expect((await first.store.getJobs(handle.id))[0]?.retryAt).toBeUndefined();
  });

  it('recover() keeps a failed continue-on-error job counting as a success', async () => {
    const yaml = `
jobs:
  a: { runs-on: x, continue-on-error: true, steps: [{ run: x }] }
  b: { runs-on: x, retry: { max-attempts: 2 }, steps: [{ run: x }] }
`;
    const first = setup((job) => (job === 'a' ? [{ exitCode: 1 }] : [{ hang: true }]));
    const handle = await first.engine.submit(yaml);
    await first.clock.advance(1000);
    const second = setup(() => ok, { store: first.store, logs: first.logs });
    await first.clock.advance(31_000);
    expect(await second.engine.recover()).toEqual([handle.id]);
    const waiting = second.engine.wait(handle.id);
    const report = await settledOnClock(second.clock, waiting);
    const j = byId(report as NonNullable<typeof report>);
    expect(j.a?.status).toBe('failed');
    expect(j.b?.status).toBe('succeeded');
    expect(report?.run.status).toBe('succeeded');
  });

  it('recover() restores job-level concurrency groups: the retried holder keeps its group, the waiter waits', async () => {
    const yaml = `
jobs:
  deploy: { runs-on: x, concurrency: prod, retry: { max-attempts: 2, backoff: { delay: 1s, jitter: none } }, steps: [{ run: x }] }
`;
    const first = setup(() => [{ hang: true }]);
    const a = await first.engine.submit(yaml);
    const b = await first.engine.submit(yaml);
    await first.clock.advance(1000);
    expect(first.executor.calls.map((c) => c.runId)).toEqual([a.id]);
    const second = setup(() => [{ durationMs: 10_000 }], { store: first.store, logs: first.logs });
    await first.clock.advance(31_000);
    expect(await second.engine.recover()).toEqual([a.id, b.id]);
    const reports: Record<string, Awaited<ReturnType<typeof a.wait>>> = {};
    for (const h of [a, b])
      void second.engine.wait(h.id).then((r) => {
        reports[h.id] = r;
      });
    await second.clock.runUntil(() => Object.keys(reports).length === 2);
    expect(
      byId(reports[a.id] as NonNullable<(typeof reports)[string]>).deploy?.attempts.map((x) => x.reason ?? x.status),
    ).toEqual(['lost', 'succeeded']);
    expect(byId(reports[b.id] as NonNullable<(typeof reports)[string]>).deploy?.status).toBe('succeeded');
    const [ca, cb] = second.executor.calls;
    expect([ca?.runId, cb?.runId]).toEqual([a.id, b.id]);
    expect(cb?.startedAt).toBe(ca?.finishedAt);
  });

  it('recover() rebuilds the in-memory placeholder of a dynamic matrix that had not expanded', async () => {
    const yaml = `
jobs:
  plan: { runs-on: x, retry: { max-attempts: 2 }, outputs: { list: "\${{ steps.s.outputs.list }}" }, steps: [{ id: s, run: x }] }
  work:
    runs-on: x
    needs: plan
    strategy: { matrix: { item: "\${{ fromJSON(needs.plan.outputs.list) }}" } }
    steps: [{ run: x }]
`;
    const first = setup(() => [{ hang: true }]);
    const handle = await first.engine.submit(yaml);
    await first.clock.advance(1000);
    expect((await first.store.getJobs(handle.id)).map((j) => j.id)).toEqual(['plan']);
    const second = setup((job) => (job === 'plan' ? [{ outputs: { list: '["x","y"]' } }] : ok), {
      store: first.store,
      logs: first.logs,
    });
    await first.clock.advance(31_000);
    expect(await second.engine.recover()).toEqual([handle.id]);
    const waiting = second.engine.wait(handle.id);
    const report = await settledOnClock(second.clock, waiting);
    expect(report?.jobs.map((j) => `${j.id}:${j.status}`)).toEqual([
      'plan:succeeded',
      'work (x):succeeded',
      'work (y):succeeded',
    ]);
    expect((await first.store.getJobs(handle.id)).map((j) => j.id).sort()).toEqual(['plan', 'work (x)', 'work (y)']);
  });
});
