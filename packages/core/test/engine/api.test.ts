import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AttemptOutcome,
  type AttemptSpec,
  Engine,
  type ExecContext,
  PipewrightError,
  parsePipeline,
  resolveInputs,
  runSteps,
} from '@pipewright/core';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
import { describe, expect, it } from 'vitest';
import { codeOf, runToEnd, settledOnClock, setup } from './helpers.js';

const TWO_JOBS = `
on: workflow_dispatch
jobs:
  build:
    runs-on: local
    steps: [{ run: make }]
  test:
    runs-on: local
    needs: build
    steps: [{ run: make test }]
`;

/** One job whose step reads secrets.TOKEN. */
const USES_TOKEN = `
on: workflow_dispatch
jobs:
  deploy:
    runs-on: local
    steps: [{ run: 'echo \${{ secrets.TOKEN }}' }]
`;

describe('Engine API: what callers pass', () => {
  it('wait, getRun and cancel take the handle submit returned as well as its id', async () => {
    const env = setup(() => [{ hang: true }]);
    const handle = await env.engine.submit(TWO_JOBS);
    await env.clock.runUntil(async () => (await env.engine.getRun(handle))?.jobs[0]?.status === 'running');
    expect((await env.engine.getRun(handle))?.run.id).toBe(handle.id);
    await env.engine.cancel(handle, { reason: 'by handle' });
    const waiting = env.engine.wait(handle);
    const report = await settledOnClock(env.clock, waiting, { step: 1000, maxMs: 60_000 });
    expect(report?.run.status).toBe('cancelled');
    expect(report?.run.cancel?.reason).toBe('by handle');
    await env.engine.close();
  });

  it('submit validates a pipeline object in the YAML keys, like definePipeline', async () => {
    const env = setup();
    const handle = await env.engine.submit({
      on: 'workflow_dispatch',
      jobs: { hello: { 'runs-on': 'local', steps: [{ run: 'echo hi' }] } },
    });
    const waiting = handle.wait();
    const status = (await settledOnClock(env.clock, waiting, { step: 1000, maxMs: 60_000 })).run.status;
    expect(status).toBe('succeeded');
    // Bad objects are PIPELINE_INVALID with the path, never a TypeError.
    const bad = env.engine.submit({ jobs: { hello: { 'runs-on': 'local', steps: 3 } } } as never);
    await expect(bad).rejects.toMatchObject({ code: 'PIPELINE_INVALID' });
    await expect(bad).rejects.toThrow(/jobs\.hello\.steps/);
    // Not a spec just because it has spec-like keys: validated, and rejected.
    for (const junk of [null, 42, [], {}, { inputs: {}, jobs: {} }])
      expect(await codeOf(env.engine.submit(junk as never))).toBe('PIPELINE_INVALID');
    expect((await env.store.listRuns()).length).toBe(1);
    await env.engine.close();
  });

  it('the constructor names a missing store, log store or executor list', () => {
    const store = new MemoryStore();
    const logs = new MemoryLogStore();
    const executors = [{ name: 'x', runJob: async () => ({ status: 'succeeded' as const, steps: [], outputs: {} }) }];
    expect(() => new Engine({ logs, executors } as never)).toThrow(/`store`/);
    expect(() => new Engine({ store, executors } as never)).toThrow(/`logs`/);
    expect(() => new Engine({ store, logs } as never)).toThrow(/`executors`/);
    try {
      new Engine({ store, logs } as never);
    } catch (err) {
      expect((err as PipewrightError).code).toBe('INVALID_ARGUMENT');
    }
  });

  it('cancelling a job the run does not have is INVALID_ARGUMENT and changes nothing', async () => {
    const env = setup();
    const handle = await env.engine.submit(TWO_JOBS);
    const err = await env.engine.cancel({ runId: handle.id, job: 'tset' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipewrightError);
    expect((err as PipewrightError).code).toBe('INVALID_ARGUMENT');
    expect((err as Error).message).toMatch(/no job `tset`.*build, test/);
    const waiting = handle.wait();
    const status = (await settledOnClock(env.clock, waiting, { step: 1000, maxMs: 60_000 })).run.status;
    expect(status).toBe('succeeded');
    // Finished, or run by another engine on the same store: still a typo, not a silent no-op.
    const late = await env.engine.cancel({ runId: handle.id, job: 'tset' }).catch((e: unknown) => e);
    expect((late as PipewrightError).code).toBe('INVALID_ARGUMENT');
    expect((late as Error).message).toMatch(/no job `tset`.*build, test/);
    const other = new Engine({ store: env.store, logs: env.logs, executors: [env.executor], recoverOnStart: false });
    expect(await codeOf(other.cancel({ runId: handle.id, job: 'tset' }))).toBe('INVALID_ARGUMENT');
    await expect(other.cancel({ runId: handle.id, job: 'test' })).resolves.toBeUndefined();
    await other.close();
    await env.engine.close();
  });

  it('the trigger becomes the github context: event is event_name, payload is github.event, the rest as given', async () => {
    const seen: AttemptSpec[] = [];
    const executor = {
      name: 'spy',
      async runJob(attempt: AttemptSpec): Promise<AttemptOutcome> {
        seen.push(attempt);
        return { status: 'succeeded', workerId: 'w', steps: [], outputs: {} };
      },
    };
    const engine = new Engine({ store: new MemoryStore(), logs: new MemoryLogStore(), executors: [executor] });
    const pipeline = 'on: workflow_dispatch\njobs:\n  a: { runs-on: x, steps: [{ run: x }] }\n';
    await (
      await engine.submit(pipeline, {
        trigger: {
          event: 'push',
          ref: 'refs/heads/main',
          repository: 'acme/app',
          payload: { commits: [{ id: 'c1' }] },
          run_id: 'forged',
        },
      })
    ).wait();
    await (await engine.submit(pipeline, { inputs: { q: 'x', flag: true } })).wait();
    const [push, manual] = seen.map((a) => a.contexts.github as Record<string, unknown>);
    expect(push).toMatchObject({ event_name: 'push', ref: 'refs/heads/main', event: { commits: [{ id: 'c1' }] } });
    // Derived as GitHub has them, when the trigger does not give them.
    expect(push).toMatchObject({ ref_name: 'main', ref_type: 'branch', repository_owner: 'acme' });
    expect(push).not.toHaveProperty('payload');
    expect(push?.run_id).toBe(seen[0]?.runId); // the run's own id, not the trigger's
    expect(manual).toMatchObject({ event_name: 'workflow_dispatch', event: { inputs: { q: 'x', flag: 'true' } } });
    await engine.close();
  });

  it('listRuns takes one status as a string or a list, and refuses a status runs cannot have', async () => {
    const env = setup();
    await runToEnd(env, TWO_JOBS);
    expect((await env.engine.listRuns({ status: 'succeeded' })).length).toBe(1);
    expect((await env.engine.listRuns({ status: ['succeeded'] })).length).toBe(1);
    expect((await env.engine.listRuns({ status: 'failed' })).length).toBe(0);
    for (const bad of [{ status: 'bogus' }, { status: ['succeeded', 'done'] }, { status: 3 }, 'succeeded', null]) {
      const err = await env.engine.listRuns(bad as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(bad)).toBeInstanceOf(PipewrightError);
      expect((err as PipewrightError).code).toBe('INVALID_ARGUMENT');
    }
    await env.engine.close();
  });

  it('a failing secret provider is reported as such, not as an executor error', async () => {
    const env = setup(() => [{}], {
      secrets: {
        resolve: async () => {
          throw new Error('vault sealed');
        },
      },
    });
    const report = await runToEnd(env, USES_TOKEN);
    const job = report.jobs[0];
    expect(job?.status).toBe('failed');
    expect(job?.reason).toBe('infra');
    expect(job?.attempts[0]?.message).toBe('secrets could not be resolved: vault sealed');
    await env.engine.close();
  });

  it('a secret provider answering with something other than strings fails the attempt, naming the key only', async () => {
    const answers: [unknown, RegExp][] = [
      [{ TOKEN: 12345678 }, /returned a number for `TOKEN`; secret values must be strings/],
      [{ TOKEN: { nested: 'abcdefgh' } }, /returned an object for `TOKEN`/],
      ['abcdefgh', /returned a string; return an object of name: string/],
      [null, /returned null/],
    ];
    for (const [answer, message] of answers) {
      const env = setup(() => [{}], { secrets: { resolve: async () => answer as Record<string, string> } });
      const report = await runToEnd(env, USES_TOKEN);
      const attempt = report.jobs[0]?.attempts[0];
      expect(report.jobs[0]?.reason).toBe('infra');
      expect(attempt?.message).toMatch(message);
      expect(JSON.stringify(report)).not.toMatch(/12345678|abcdefgh/);
      await env.engine.close();
    }
  });

  it('logs() passes job, step and limit through, stored and followed', async () => {
    const env = setup((job) => [{ output: `${job} says hi\n` }]);
    const report = await runToEnd(env, TWO_JOBS);
    const all = async (opts: Parameters<Engine['logs']>[1]) => {
      const out: string[] = [];
      for await (const lines of env.engine.logs(report.run.id, opts)) for (const l of lines) out.push(l.text);
      return out;
    };
    expect(await all({})).toEqual(['build says hi', 'test says hi']);
    expect(await all({ job: 'test' })).toEqual(['test says hi']);
    expect(await all({ limit: 1 })).toEqual(['build says hi']);
    expect(await all({ job: 'build', follow: true })).toEqual(['build says hi']);
    await env.engine.close();
  });

  it("logs() gives a job's reader the store's marker for dropped lines, stored and followed", async () => {
    const env = setup((job) => [
      { output: job === 'build' ? 'build says hi\n' : 'x'.repeat(50).concat('\n').repeat(10) },
    ]);
    const engine = new Engine({
      store: env.store,
      logs: new MemoryLogStore({ maxBytesPerRun: 200 }),
      executors: [env.executor],
      clock: env.clock,
      recoverOnStart: false,
    });
    const handle = await engine.submit(TWO_JOBS);
    const report = await settledOnClock(env.clock, handle.wait());
    const all = async (opts: Parameters<Engine['logs']>[1]) => {
      const out: string[] = [];
      for await (const lines of engine.logs(report!.run.id, opts)) for (const l of lines) out.push(l.text);
      return out;
    };
    // build's line went with the test job's flood: its reader learns that, read or followed.
    for (const follow of [false, true]) {
      const lines = await all({ job: 'build', follow });
      expect(lines, `follow ${follow}`).toHaveLength(1);
      expect(lines[0], `follow ${follow}`).toMatch(/^\[pipewright\] earlier log lines of this run were dropped/);
    }
    await engine.close();
  });

  it('inputs: declared booleans and numbers are converted from text; a value of another type is rejected', () => {
    const { spec } = parsePipeline(`
on:
  workflow_dispatch:
    inputs:
      dry: { type: boolean, default: false }
      n: { type: number, default: 1 }
jobs:
  a: { runs-on: local, steps: [{ run: x }] }
`);
    expect(resolveInputs(spec, { dry: 'TRUE', n: '42' })).toEqual({ dry: true, n: 42 });
    expect(resolveInputs(spec, { dry: false, n: 2.5 })).toEqual({ dry: false, n: 2.5 });
    expect(resolveInputs(spec, {})).toEqual({ dry: false, n: 1 });
    for (const bad of [{ dry: 'maybe' }, { n: 'abc' }, { n: '' }, { dry: 1 }, { n: Number.NaN }]) {
      let err: unknown;
      try {
        resolveInputs(spec, bad);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).toBeInstanceOf(PipewrightError);
      expect((err as PipewrightError).code).toBe('INVALID_ARGUMENT');
    }
  });

  it("step retries wait on the engine's clock and draw jitter from its random source", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pw-step-retry-'));
    const tries: number[] = [];
    const env = setup();
    // An executor that runs the real step loop; the first two tries of the step fail.
    const stepLoop = {
      name: 'process',
      runJob: (attempt: AttemptSpec, ctx: ExecContext): Promise<AttemptOutcome> =>
        runSteps(
          attempt,
          {
            hostDir: dir,
            workerId: 'w',
            toWorkspacePath: (p) => p,
            exec: async () => {
              tries.push(env.clock.now());
              return { exitCode: tries.length < 3 ? 1 : 0, signal: null };
            },
            dispose: async () => {},
          },
          ctx,
        ),
    };
    const clocked = setup(() => [{}], { executors: [stepLoop], clock: env.clock });
    try {
      const handle = await clocked.engine.submit(
        `
on: workflow_dispatch
jobs:
  a:
    runs-on: local
    steps:
      - run: flaky
        retry: { max-attempts: 3, on: [failure], backoff: { delay: 1h, factor: 1, jitter: full } }
`,
      );
      let report: Awaited<ReturnType<typeof handle.wait>> | undefined;
      void handle.wait().then((r) => {
        report = r;
      });
      // The step loop writes real files between tries: give it real time, and the fake clock minutes.
      for (let i = 0; i < 2000 && report === undefined; i++) {
        await new Promise((r) => setTimeout(r, 2));
        await env.clock.advance(60_000);
      }
      expect(report?.jobs[0]?.status).toBe('succeeded');
      expect(tries).toHaveLength(3);
      // Full jitter within [0, 1 h] on the fake clock: the test never waited an hour.
      const waits = [(tries[1] as number) - (tries[0] as number), (tries[2] as number) - (tries[1] as number)];
      for (const w of waits) {
        expect(w).toBeGreaterThanOrEqual(0);
        expect(w).toBeLessThanOrEqual(3_600_000);
      }
      // Seeded (setup's seededRandom(42)): the same delays on every run of this test.
      expect(waits.some((w) => w > 1000)).toBe(true);
    } finally {
      await clocked.engine.close();
      await env.engine.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a step's unterminated stdout and stderr tails are numbered before the next step's lines, even on a slow store", async () => {
    const inner = new MemoryLogStore();
    const slow = Object.assign(Object.create(inner) as MemoryLogStore, {
      append: async (runId: string, batch: Parameters<MemoryLogStore['append']>[1]) => {
        await new Promise((r) => setTimeout(r, 30));
        return inner.append(runId, batch);
      },
    });
    const text = (t: string) => new TextEncoder().encode(t);
    const step = (index: number) => ({
      index,
      name: `s${index}`,
      status: 'succeeded' as const,
      outcome: 'success' as const,
      conclusion: 'success' as const,
      outputs: {},
    });
    const writer = {
      name: 'process',
      runJob: async (_a: AttemptSpec, ctx: ExecContext): Promise<AttemptOutcome> => {
        ctx.events?.stepStarted(0, 's0', Date.now());
        await ctx.output('stdout', 0, text('first\nout-tail'));
        await ctx.output('stderr', 0, text('err-tail'));
        ctx.events?.stepFinished(step(0));
        ctx.events?.stepStarted(1, 's1', Date.now());
        await ctx.output('stdout', 1, text('next\n'));
        ctx.events?.stepFinished(step(1));
        return { status: 'succeeded', workerId: 'w', steps: [step(0), step(1)], outputs: {} };
      },
    };
    const engine = new Engine({ store: new MemoryStore(), logs: slow, executors: [writer] });
    const run = await engine.submit('jobs:\n  a: {runs-on: x, steps: [{run: x}, {run: y}]}\n');
    await run.wait();
    const lines = await inner.read(run.id);
    expect(lines.map((l) => `${l.step}:${l.stream}:${l.text}`)).toEqual([
      '0:stdout:first',
      '0:stdout:out-tail',
      '0:stderr:err-tail',
      '1:stdout:next',
    ]);
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4]);
    await engine.close();
  });

  it('logs() of an unknown run is RUN_NOT_FOUND, also when following', async () => {
    const env = setup();
    for (const follow of [false, true]) {
      const err = await (async () => {
        for await (const _ of env.engine.logs('no-such-run', { follow })) return undefined;
      })().catch((e: unknown) => e);
      expect((err as PipewrightError).code, `follow ${follow}`).toBe('RUN_NOT_FOUND');
    }
    await env.engine.close();
  });

  it('an executor that answers with a status an attempt cannot have fails the attempt as infra; the run ends', async () => {
    const answers: unknown[] = [
      { status: 'success' },
      {},
      { status: 'succeeded' },
      { status: 'succeeded', steps: [null] },
    ];
    for (const answer of answers) {
      const odd = { name: 'process', runJob: async () => answer as AttemptOutcome };
      const engine = new Engine({ store: new MemoryStore(), logs: new MemoryLogStore(), executors: [odd] });
      const report = await (await engine.submit(TWO_JOBS)).wait();
      const first = report.jobs[0];
      if ((answer as { status?: string }).status === 'succeeded') {
        // Missing steps and outputs are empty lists, not a crash.
        expect(report.run.status).toBe('succeeded');
      } else {
        expect(report.run.status).toBe('failed');
        expect(first?.reason).toBe('infra');
        expect(first?.attempts[0]?.message).toMatch(/process executor error: it returned an attempt status of/);
        // In the job's log too, like any executor error.
        const lines: string[] = [];
        for await (const batch of engine.logs(report.run.id)) for (const l of batch) lines.push(l.text);
        expect(lines.join('\n')).toMatch(/returned an attempt status of/);
      }
      await engine.close();
    }
  });

  it('a listener that throws stalls nothing: the run ends and the error goes to the error listeners', async () => {
    const ok = { name: 'process', runJob: async () => ({ status: 'succeeded' }) as AttemptOutcome };
    const engine = new Engine({ store: new MemoryStore(), logs: new MemoryLogStore(), executors: [ok] });
    const errors: PipewrightError[] = [];
    engine.on('job:started', () => {
      throw new Error('listener bug');
    });
    engine.on('error', (e) => errors.push(e as PipewrightError));
    const report = await (await engine.submit(TWO_JOBS)).wait();
    expect(report.run.status).toBe('succeeded');
    expect(report.jobs.map((j) => j.status)).toEqual(['succeeded', 'succeeded']);
    expect(errors.map((e) => e.code)).toEqual(['LISTENER_FAILED', 'LISTENER_FAILED']);
    expect(errors[0]?.message).toMatch(/listener of `job:started` threw: listener bug/);
    // An error listener that throws as well ends in console.error, not in the engine or the host.
    engine.on('error', () => {
      throw new Error('error listener bug');
    });
    const printed: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => printed.push(...args);
    try {
      expect((await (await engine.submit(TWO_JOBS)).wait()).run.status).toBe('succeeded');
    } finally {
      console.error = original;
    }
    expect(printed.map((p) => String(p))).toContainEqual(expect.stringMatching(/error listener bug/));
    await engine.close();
  });

  it('submit options of the wrong type are INVALID_ARGUMENT, and no run is stored', async () => {
    const env = setup();
    for (const options of [
      { inputs: 'x' },
      { inputs: ['a'] },
      { priority: 'high' },
      { priority: Number.NaN },
      { idempotencyKey: 7 },
      { idempotencyKey: '' },
      { inputs: { n: 10n } },
      { inputs: { n: Number.NaN } },
      { trigger: { at: Number.POSITIVE_INFINITY } },
      {
        trigger: (() => {
          const cyclic: Record<string, unknown> = {};
          cyclic.self = cyclic;
          return cyclic;
        })(),
      },
    ]) {
      expect(await codeOf(env.engine.submit(TWO_JOBS, options as never))).toBe('INVALID_ARGUMENT');
    }
    expect(await env.store.listRuns()).toEqual([]);
    await env.engine.close();
  });

  it("the host's route function: a throw or an answer that is neither a name nor {error} fails the job as infra", async () => {
    const ok = { name: 'process', runJob: async () => ({ status: 'succeeded' }) as AttemptOutcome };
    const routes: [() => unknown, RegExp][] = [
      [
        () => {
          throw new Error('route bug');
        },
        /route function threw for job `build`: route bug/,
      ],
      [() => 42, /route function returned 42 for job `build`; return an executor name or \{error: message\}/],
      [() => ({ executor: 'process' }), /returned \{"executor":"process"\}/],
      [
        () => {
          const cyclic: Record<string, unknown> = {};
          cyclic.self = cyclic;
          return cyclic;
        },
        /returned an object for job `build`/,
      ],
      [() => ({ error: 'no runner labelled gpu' }), /^no runner labelled gpu$/],
    ];
    for (const [route, message] of routes) {
      const engine = new Engine({
        store: new MemoryStore(),
        logs: new MemoryLogStore(),
        executors: [ok],
        route: route as () => string,
      });
      const report = await (await engine.submit(TWO_JOBS)).wait();
      expect(report.run.status).toBe('failed');
      expect(report.jobs[0]).toMatchObject({ status: 'failed', reason: 'infra', attempts: [] });
      expect(report.jobs[0]?.message).toMatch(message);
      expect(report.jobs[1]?.status).toBe('skipped');
      await engine.close();
    }
  });

  it("the route function gets runs-on with its expressions evaluated per instance; one that cannot be is the pipeline's failure", async () => {
    const seen: string[] = [];
    const ok = { name: 'process', runJob: async () => ({ status: 'succeeded' }) as AttemptOutcome };
    const engine = new Engine({
      store: new MemoryStore(),
      logs: new MemoryLogStore(),
      executors: [ok],
      route: (job) => {
        seen.push(`${job.id}: ${job.runsOn.join(' + ')}`);
        return 'process';
      },
    });
    const report = await (
      await engine.submit(`
jobs:
  build:
    strategy: { matrix: { os: [linux, mac] } }
    runs-on: \${{ matrix.os }}
    steps: [{ run: x }]
  many: { runs-on: "\${{ fromJSON('[\\"self-hosted\\", \\"gpu\\"]') }}", steps: [{ run: x }] }
  plain: { runs-on: [self-hosted, x64], steps: [{ run: x }] }
  bad: { runs-on: "\${{ fromJSON('{}') }}", steps: [{ run: x }] }
`)
    ).wait();
    expect(seen.sort()).toEqual(['build: linux', 'build: mac', 'many: self-hosted + gpu', 'plain: self-hosted + x64']);
    const bad = report.jobs.find((j) => j.id === 'bad');
    expect(bad).toMatchObject({ status: 'failed', reason: 'exit_code', attempts: [] });
    expect(bad?.message).toMatch(/^runs-on: `\$\{\{ fromJSON\('\{\}'\) \}\}` gave \{\}; a label is a string$/);
    await engine.close();
  });

  it('vars become the vars context of job if:, concurrency and steps, stored with the run; anything but text is refused', async () => {
    const seen: unknown[] = [];
    const ex = {
      name: 'process',
      runJob: async (a: AttemptSpec) => {
        seen.push(a.contexts.vars);
        return { status: 'succeeded' } as AttemptOutcome;
      },
    };
    const store = new MemoryStore();
    const engine = new Engine({ store, logs: new MemoryLogStore(), executors: [ex] });
    const yaml = `
concurrency: deploy-\${{ vars.REGION }}
jobs:
  yes: { runs-on: x, if: "vars.deploy == 'on'", steps: [{ run: x }] }
  no: { runs-on: x, if: "vars.deploy != 'on'", steps: [{ run: x }] }
`;
    const handle = await engine.submit(yaml, { vars: { DEPLOY: 'on', REGION: 'eu' } });
    const report = await handle.wait();
    expect(report.jobs.map((j) => [j.id, j.status])).toEqual([
      ['yes', 'succeeded'],
      ['no', 'skipped'],
    ]);
    expect(seen).toEqual([{ DEPLOY: 'on', REGION: 'eu' }]);
    const stored = await store.getRun(handle.id);
    expect(stored).toMatchObject({ vars: { DEPLOY: 'on', REGION: 'eu' }, concurrencyGroup: 'deploy-eu' });
    for (const vars of [{ N: 1 }, ['x'], 'x']) {
      await expect(engine.submit(yaml, { vars: vars as never })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/^vars must be an object of name: text/),
      });
    }
    await engine.close();
  });

  it('without a secret provider github.token reads as empty; an explicit secrets.GITHUB_TOKEN still fails the job', async () => {
    const seen: Record<string, string>[] = [];
    const ex = {
      name: 'process',
      runJob: async (_a: AttemptSpec, ctx: ExecContext) => {
        seen.push(ctx.secrets);
        return { status: 'succeeded' } as AttemptOutcome;
      },
    };
    const engine = new Engine({ store: new MemoryStore(), logs: new MemoryLogStore(), executors: [ex] });
    const viaGithub = await (
      await engine.submit('jobs:\n  a: { runs-on: x, steps: [{ run: "echo ${{ github.token }}" }] }\n')
    ).wait();
    expect(viaGithub.jobs[0]?.status).toBe('succeeded');
    expect(seen).toEqual([{}]);
    const explicit = await (
      await engine.submit(
        'jobs:\n  a: { runs-on: x, steps: [{ run: "echo ${{ secrets.GITHUB_TOKEN }} ${{ github.token }}" }] }\n',
      )
    ).wait();
    expect(explicit.jobs[0]).toMatchObject({ status: 'failed', reason: 'infra' });
    expect(explicit.jobs[0]?.message).toMatch(
      /references secrets \(GITHUB_TOKEN\) but the engine has no secret provider/,
    );
    await engine.close();
  });

  it('registerAction takes a name and a function', () => {
    const engine = new Engine({
      store: new MemoryStore(),
      logs: new MemoryLogStore(),
      executors: [{ name: 'x', runJob: async () => ({ status: 'succeeded' }) as AttemptOutcome }],
      recoverOnStart: false,
    });
    for (const [name, fn] of [
      ['', () => {}],
      ['notify', 42],
      [7, () => {}],
    ] as const) {
      expect(() => engine.registerAction(name as never, fn as never)).toThrow(
        /registerAction takes a non-empty name and a function/,
      );
    }
    void engine.close();
  });

  it('close() refuses new submits and closes the runs of submits already under way', async () => {
    const store = new MemoryStore();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const createRun = store.createRun.bind(store);
    store.createRun = async (...args) => {
      await gate;
      return createRun(...args);
    };
    const running = new Set<string>();
    const hanging = {
      name: 'process',
      runJob: (attempt: AttemptSpec, ctx: ExecContext) =>
        new Promise<AttemptOutcome>((resolve) => {
          running.add(attempt.jobId);
          ctx.signal.addEventListener('abort', () => {
            running.delete(attempt.jobId);
            resolve({ status: 'cancelled' } as AttemptOutcome);
          });
        }),
    };
    const engine = new Engine({ store, logs: new MemoryLogStore(), executors: [hanging], recoverOnStart: false });
    const early = engine.submit(TWO_JOBS);
    const closing = engine.close();
    expect(await codeOf(engine.submit(TWO_JOBS))).toBe('ENGINE_CLOSED');
    release();
    const handle = await early;
    await closing;
    expect(running.size).toBe(0);
    const stored = await store.getRun(handle.id);
    expect(stored?.status).toBe('cancelled');
    expect(stored?.cancel?.reason).toBe('engine closing');
  });
});
