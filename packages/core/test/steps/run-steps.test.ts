// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are GitHub ${{ }} expressions, not JS templates

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type ActionHandler,
  DEFAULT_RETRY,
  type ExecContext,
  type ExecIO,
  type ExecRequest,
  type ExecResult,
  NonRetryableError,
  RetryAfterError,
  runSteps,
  type StepResult,
  type Workspace,
} from '@pipewright/core';
import { attemptSpec } from '@pipewright/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { abortableSleep } from '../../src/engine/clock.js';

type Script = (req: ExecRequest, io: ExecIO, call: number) => Promise<ExecResult> | ExecResult;

/** Records every command; `script` decides what each one does (exit code, files, output). */
class FakeWorkspace implements Workspace {
  readonly workerId = 'fake-worker';
  readonly requests: ExecRequest[] = [];
  constructor(
    readonly hostDir: string,
    private readonly script: Script = () => ({ exitCode: 0, signal: null }),
  ) {}
  toWorkspacePath(hostPath: string): string {
    return hostPath;
  }
  async exec(req: ExecRequest, io: ExecIO): Promise<ExecResult> {
    this.requests.push(req);
    return this.script(req, io, this.requests.length - 1);
  }
  async dispose(): Promise<void> {}
}

const execFileAsync = promisify(execFile);
const ok: ExecResult = { exitCode: 0, signal: null };
const exit = (code: number): ExecResult => ({ exitCode: code, signal: null });

const attemptOf = attemptSpec;

interface Recorded {
  ctx: ExecContext;
  chunks: { stream: string; step: number; text: string }[];
  started: number[];
  finished: StepResult[];
  masks: string[];
}

function context(over: Partial<ExecContext> = {}): Recorded {
  const rec: Recorded = { chunks: [], started: [], finished: [], masks: [], ctx: undefined as unknown as ExecContext };
  rec.ctx = {
    signal: new AbortController().signal,
    output: (stream, s, chunk) => {
      rec.chunks.push({ stream, step: s, text: Buffer.from(chunk).toString() });
    },
    secrets: {},
    avoidWorkers: [],
    actions: new Map(),
    addMask: (v) => rec.masks.push(v),
    events: {
      stepStarted: (i) => rec.started.push(i),
      stepFinished: (r) => rec.finished.push(r),
    },
    ...over,
  };
  return rec;
}

/** Resolves when the request's signal aborts, like a process killed by SIGTERM. */
function untilAborted(req: ExecRequest): Promise<ExecResult> {
  return new Promise((resolve) => {
    if (req.signal.aborted) resolve({ exitCode: null, signal: 'SIGTERM' });
    req.signal.addEventListener('abort', () => resolve({ exitCode: null, signal: 'SIGTERM' }), { once: true });
  });
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pw-steps-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runSteps', () => {
  it('runs steps in order with layered, interpolated env and the pipewright variables', async () => {
    const ws = new FakeWorkspace(dir);
    const rec = context({ secrets: { TOKEN: 's3cr3t-value' } });
    const attempt = attemptOf(
      [
        { run: 'echo ${{ matrix.os }} ${{ env.LEVEL }}', env: { LEVEL: 'step', FROM_SECRET: '${{ secrets.TOKEN }}' } },
        { run: 'echo two' },
      ],
      { env: { LEVEL: 'job', JOB_ONLY: '${{ env.PIPE }}-j' } },
      { env: { PIPE: 'p', LEVEL: 'pipe' }, matrix: { os: 'linux' } },
    );
    const out = await runSteps(attempt, ws, rec.ctx);
    expect(out.status).toBe('succeeded');
    expect(out.workerId).toBe('fake-worker');
    const [first, second] = ws.requests;
    expect(first?.script).toBe('echo linux step');
    expect(first?.env).toMatchObject({
      PIPE: 'p',
      LEVEL: 'step',
      JOB_ONLY: 'p-j',
      FROM_SECRET: 's3cr3t-value',
      CI: 'true',
      PIPEWRIGHT: 'true',
      GITHUB_WORKSPACE: dir,
    });
    expect(first?.env.GITHUB_ACTIONS).toBeUndefined();
    expect(first?.env.GITHUB_OUTPUT).toBe(first?.env.PIPEWRIGHT_OUTPUT);
    expect(first?.env.GITHUB_OUTPUT?.startsWith(join(dir, '.pipewright'))).toBe(true);
    expect(first?.env.RUNNER_TEMP).toBe(join(dir, '.pipewright', 'tmp'));
    expect(second?.env.LEVEL).toBe('job');
    expect(second?.env.FROM_SECRET).toBeUndefined();
    expect(rec.started).toEqual([0, 1]);
    expect(rec.finished.map((r) => [r.name, r.status, r.outcome, r.conclusion])).toEqual([
      ['Run echo ${{ matrix.os }} ${{ env.LEVEL }}', 'succeeded', 'success', 'success'],
      ['Run echo two', 'succeeded', 'success', 'success'],
    ]);
  });

  it('creates .pipewright/, RUNNER_TEMP and empty file-command files before every try, and leaves no file open', async () => {
    const openFds = async () => (await readdir('/proc/self/fd').catch(() => [])).length;
    const seen: { out: number; env: number; temp: boolean }[] = [];
    const script: Script = async (req, _io, call) => {
      const [o, e, t] = await Promise.all([
        stat(req.env.GITHUB_OUTPUT ?? ''),
        stat(req.env.GITHUB_ENV ?? ''),
        stat(req.env.RUNNER_TEMP ?? ''),
      ]);
      seen.push({ out: o.size, env: e.size, temp: t.isDirectory() });
      await writeFile(req.env.GITHUB_OUTPUT ?? '', 'k=v\n', { flag: 'a' });
      await writeFile(req.env.GITHUB_ENV ?? '', 'K=v\n', { flag: 'a' });
      return call === 0 ? exit(1) : ok;
    };
    const retry = { ...DEFAULT_RETRY, maxAttempts: 2, on: ['failure' as const] };
    const before = await openFds();
    // A workspace without `.pipewright/` (the loop creates it), and one whose executor made it already.
    const bare = join(dir, 'bare');
    const made = join(dir, 'made');
    await Promise.all([mkdir(bare), mkdir(join(made, '.pipewright'), { recursive: true })]);
    for (const d of [bare, made]) {
      seen.length = 0;
      const out = await runSteps(
        attemptOf([{ run: 'a', retry }, { run: 'b' }]),
        new FakeWorkspace(d, script),
        context().ctx,
        {
          sleep: async () => {},
        },
      );
      expect(out.status).toBe('succeeded');
      // The retried try starts from empty files again, as GitHub's runner gives each step.
      expect(seen).toEqual([
        { out: 0, env: 0, temp: true },
        { out: 0, env: 0, temp: true },
        { out: 0, env: 0, temp: true },
      ]);
    }
    if (before > 0) expect(await openFds()).toBe(before);
  });

  it('resolves shell and working-directory: step > job defaults > pipeline defaults > GitHub default', async () => {
    const ws = new FakeWorkspace(dir);
    const attempt = attemptOf(
      [{ run: 'a' }, { run: 'b', shell: 'python', workingDirectory: 'sub' }, { run: 'c', shell: 'perl {0}' }],
      { defaults: { shell: 'sh' } },
      { defaults: { shell: 'bash', workingDirectory: 'pipe-wd' } },
    );
    await runSteps(attempt, ws, context().ctx);
    expect(ws.requests.map((r) => [r.shell, r.workingDirectory])).toEqual([
      ['sh -e {0}', 'pipe-wd'],
      ['python {0}', 'sub'],
      ['perl {0}', 'pipe-wd'],
    ]);
    const ws2 = new FakeWorkspace(dir);
    await runSteps(attemptOf([{ run: 'x' }, { run: 'y', shell: 'bash' }]), ws2, context().ctx);
    expect(ws2.requests.map((r) => r.shell)).toEqual(['bash -e {0}', 'bash --noprofile --norc -eo pipefail {0}']);
    expect(ws2.requests[0]?.workingDirectory).toBeUndefined();
  });

  it('passes outputs between steps (key=value and heredoc) and evaluates job outputs', async () => {
    const ws = new FakeWorkspace(dir, async (req, _io, call) => {
      if (call === 0) await writeFile(req.env.GITHUB_OUTPUT ?? '', 'version=1.2.3\nnotes<<EOF\nline a\nline b\nEOF\n');
      return ok;
    });
    const attempt = attemptOf(
      [{ id: 'meta', run: 'produce' }, { run: 'echo ${{ steps.meta.outputs.version }} ${{ steps.meta.outcome }}' }],
      { outputs: { version: '${{ steps.meta.outputs.version }}', notes: '${{ steps.meta.outputs.notes }}' } },
    );
    const out = await runSteps(attempt, ws, context().ctx);
    expect(ws.requests[1]?.script).toBe('echo 1.2.3 success');
    expect(out.steps[0]?.outputs).toEqual({ version: '1.2.3', notes: 'line a\nline b' });
    expect(out.outputs).toEqual({ version: '1.2.3', notes: 'line a\nline b' });
  });

  it('honours ::set-output lines (split across chunks, escaped as GitHub does); $GITHUB_OUTPUT wins for the same name', async () => {
    const ws = new FakeWorkspace(dir, async (req, io, call) => {
      if (call === 0) {
        await io.stdout(Buffer.from('  ::set-output name=run_tests::tr'));
        await io.stdout(Buffer.from('ue\n::set-output name=multi::a%0Ab%25\n::set-output name=both::from-line\n'));
        await io.stdout(Buffer.from('not a command ::set-output name=x::y\n::set-output::no-name\n'));
        await writeFile(req.env.GITHUB_OUTPUT ?? '', 'both=from-file\n');
      }
      return ok;
    });
    const out = await runSteps(
      attemptOf([{ id: 'check', run: 'produce' }, { run: 'echo ${{ steps.check.outputs.run_tests }}' }]),
      ws,
      context().ctx,
    );
    expect(out.steps[0]?.outputs).toEqual({ run_tests: 'true', multi: 'a\nb%', both: 'from-file' });
    expect(ws.requests[1]?.script).toBe('echo true');
  });

  it('reads a file command file only when it is a regular file of at most 16 MiB, each output at most 1 MiB', async () => {
    const outside = join(dir, '..', `outside-${Date.now()}.txt`);
    await writeFile(outside, 'token=host-file-content\n');
    try {
      const cases: [(file: string) => Promise<void>, RegExp][] = [
        [
          async (file) => {
            await rm(file);
            await symlink(outside, file);
          },
          /\$GITHUB_OUTPUT is not a regular file/,
        ],
        [
          (file) => writeFile(file, `big=${'x'.repeat(1024 * 1024 + 1)}\n`),
          /\$GITHUB_OUTPUT: output `big` holds 1\.0 MiB; an output may hold at most 1\.0 MiB/,
        ],
        [
          (file) => writeFile(file, `many=${'x'.repeat(1000)}\n`.repeat(17 * 1024)),
          /\$GITHUB_OUTPUT holds 16\.7 MiB; a step may write at most 16\.0 MiB to it/,
        ],
        [
          async (file) => {
            await rm(file);
            await execFileAsync('mkfifo', [file]);
          },
          /\$GITHUB_OUTPUT is not a regular file/,
        ],
      ];
      for (const [act, message] of cases) {
        const ws = new FakeWorkspace(dir, async (req) => {
          await act(req.env.GITHUB_OUTPUT ?? '');
          return ok;
        });
        const out = await runSteps(attemptOf([{ id: 'a', run: 'write' }]), ws, context().ctx);
        expect(out.status, String(message)).toBe('failed');
        expect(out.message, String(out.message)).toMatch(message);
        expect(JSON.stringify(out)).not.toContain('host-file-content');
      }
      // The symlink the first step left was replaced, not followed: its target is untouched.
      expect(await readFile(outside, 'utf8')).toBe('token=host-file-content\n');
    } finally {
      await rm(outside, { force: true });
    }
  });

  it('a step timeout or retry delay past 24.8 days (Node timer limit) waits, instead of firing at once', async () => {
    const ws = new FakeWorkspace(dir, () => new Promise<ExecResult>((r) => setTimeout(() => r(ok), 50)));
    const out = await runSteps(attemptOf([{ run: 'slow', timeoutMs: 2 ** 31 + 1000 }]), ws, context().ctx);
    expect(out.steps[0]?.status).toBe('succeeded');
    const aborter = new AbortController();
    let slept = false;
    const sleeping = abortableSleep(40 * 86_400_000, aborter.signal).then(() => {
      slept = true;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(slept).toBe(false);
    aborter.abort();
    await sleeping;
    expect(slept).toBe(true);
  });

  it("an expression that cannot be evaluated in run/env/working-directory fails the step as the pipeline's (exit_code, not retried), saying why in the log", async () => {
    for (const bad of [
      { run: "echo ${{ fromJSON('x') }}" },
      { run: 'echo', env: { A: "${{ fromJSON('x') }}" } },
      { run: 'echo', workingDirectory: "${{ fromJSON('x') }}" },
      { run: 'echo', if: "fromJSON('x')" },
    ]) {
      const ws = new FakeWorkspace(dir);
      const rec = context();
      const out = await runSteps(
        attemptOf([{ name: 'bad', continueOnError: true, ...bad }, { run: 'next' }]),
        ws,
        rec.ctx,
      );
      expect(out.steps[0]).toMatchObject({ status: 'failed', reason: 'exit_code', conclusion: 'success' });
      expect(out.status).toBe('succeeded');
      expect(ws.requests.map((r) => r.script)).toEqual(['next']);
      const logged = rec.chunks
        .filter((c) => c.step === 0 && c.stream === 'stderr')
        .map((c) => c.text)
        .join('');
      expect(logged).toMatch(/^pipewright: step `bad` failed: .*fromJSON/);
    }
  });

  it("a step timeout says so on the step's stderr", async () => {
    const ws = new FakeWorkspace(dir, (req) => untilAborted(req));
    const rec = context();
    const out = await runSteps(attemptOf([{ name: 'slow', run: 'sleep', timeoutMs: 20 }]), ws, rec.ctx);
    expect(out.steps[0]).toMatchObject({ status: 'failed', reason: 'timeout' });
    const logged = rec.chunks
      .filter((c) => c.step === 0 && c.stream === 'stderr')
      .map((c) => c.text)
      .join('');
    expect(logged).toMatch(/^pipewright: step `slow` failed: step exceeded its timeout of/);
  });

  it('applies $GITHUB_ENV to later steps, below the later step env', async () => {
    const ws = new FakeWorkspace(dir, async (req, _io, call) => {
      if (call === 0) await writeFile(req.env.GITHUB_ENV ?? '', 'ADDED=yes\nOVERRIDDEN=file\n');
      return ok;
    });
    await runSteps(
      attemptOf([{ run: 'a' }, { run: 'b ${{ env.ADDED }}', env: { OVERRIDDEN: 'step' } }]),
      ws,
      context().ctx,
    );
    expect(ws.requests[1]?.env).toMatchObject({ ADDED: 'yes', OVERRIDDEN: 'step' });
    expect(ws.requests[1]?.script).toBe('b yes');
  });

  it('fails the attempt on a failing step; later steps skip unless if: failure()/always()', async () => {
    const ws = new FakeWorkspace(dir, (_r, _io, call) => (call === 0 ? exit(3) : ok));
    const out = await runSteps(
      attemptOf([
        { name: 'boom', run: 'exit 3' },
        { run: 'skipped' },
        { run: 'on-failure', if: 'failure()' },
        { run: 'always', if: '${{ always() }}' },
        { run: 'on-success', if: 'success()' },
      ]),
      ws,
      context().ctx,
    );
    expect(out).toMatchObject({ status: 'failed', reason: 'exit_code', exitCode: 3 });
    expect(out.message).toContain('boom');
    expect(ws.requests.map((r) => r.script)).toEqual(['exit 3', 'on-failure', 'always']);
    expect(out.steps.map((s) => s.status)).toEqual(['failed', 'skipped', 'succeeded', 'succeeded', 'skipped']);
    expect(out.steps[1]?.reason).toBe('upstream');
  });

  it('continue-on-error keeps the outcome failure but the conclusion success', async () => {
    const ws = new FakeWorkspace(dir, (_r, _io, call) => (call < 2 ? exit(1) : ok));
    const out = await runSteps(
      attemptOf(
        [
          { id: 'a', run: 'x', continueOnError: true },
          { id: 'b', run: 'y', continueOnError: '${{ matrix.experimental }}' },
          { run: 'echo ${{ steps.a.outcome }}/${{ steps.a.conclusion }}' },
        ],
        {},
        { matrix: { experimental: true } },
      ),
      ws,
      context().ctx,
    );
    expect(out.status).toBe('succeeded');
    expect(out.steps.slice(0, 2).map((s) => [s.outcome, s.conclusion])).toEqual([
      ['failure', 'success'],
      ['failure', 'success'],
    ]);
    expect(ws.requests[2]?.script).toBe('echo failure/success');
  });

  it('times a step out: the step signal aborts and the step fails with reason timeout', async () => {
    const ws = new FakeWorkspace(dir, (req, _io, call) => (call === 0 ? untilAborted(req) : ok));
    const out = await runSteps(
      attemptOf([
        { run: 'sleep', timeoutMs: 30 },
        { run: 'cleanup', if: 'always()' },
      ]),
      ws,
      context().ctx,
    );
    expect(out).toMatchObject({ status: 'failed', reason: 'timeout' });
    expect(out.steps[0]).toMatchObject({ status: 'failed', reason: 'timeout', signal: 'SIGTERM' });
    expect(out.steps[0]?.message).toMatch(/timeout of 30ms/);
    expect(ws.requests).toHaveLength(2);
  });

  it("evaluates a step's timeout-minutes expression (with the step's env); one that gives no positive number fails the step untried", async () => {
    const ws = new FakeWorkspace(dir, (req, _io, call) => (call === 0 ? untilAborted(req) : ok));
    const out = await runSteps(
      attemptOf([
        { run: 'sleep', env: { T: '0.0005' }, timeoutMinutesExpr: '${{ fromJSON(env.T) }}' },
        { id: 'bad', run: 'never', if: 'always()', timeoutMinutesExpr: "${{ 'abc' }}" },
        { run: 'after', if: 'always()', timeoutMinutesExpr: '2' },
      ]),
      ws,
      context().ctx,
    );
    expect(out.steps[0]).toMatchObject({ status: 'failed', reason: 'timeout', signal: 'SIGTERM' });
    expect(out.steps[0]?.message).toMatch(/timeout of 30ms/);
    expect(out.steps[1]).toMatchObject({ status: 'failed', reason: 'exit_code' });
    expect(out.steps[1]?.message).toBe('timeout-minutes: evaluated to "abc", not a positive number of minutes');
    expect(out.steps[2]).toMatchObject({ status: 'succeeded' });
    // `never` was not run: the second request is the third step's.
    expect(ws.requests.map((r) => r.script)).toEqual(['sleep', 'after']);
  });

  it('retries a step in place per its retry policy, with backoff from the injected random source', async () => {
    const ws = new FakeWorkspace(dir, (_r, _io, call) => (call < 2 ? exit(75) : ok));
    const delays: number[] = [];
    const retry = {
      ...DEFAULT_RETRY,
      maxAttempts: 3,
      on: ['failure' as const],
      exitCodes: [75],
      backoff: { delayMs: 100, factor: 2, maxDelayMs: 150, jitter: 'none' as const },
    };
    const rec = context();
    const out = await runSteps(attemptOf([{ run: 'flaky', retry }]), ws, rec.ctx, {
      sleep: async (ms) => {
        delays.push(ms);
      },
    });
    expect(out.status).toBe('succeeded');
    expect(ws.requests).toHaveLength(3);
    expect(delays).toEqual([100, 150]);
    expect(rec.chunks.filter((c) => c.stream === 'stderr').map((c) => c.text)[0]).toMatch(
      /retrying in 100 ms \(try 2 of 3\)/,
    );

    const ws2 = new FakeWorkspace(dir, () => exit(1));
    const out2 = await runSteps(attemptOf([{ run: 'x', retry }]), ws2, context().ctx, { sleep: async () => {} });
    expect(ws2.requests).toHaveLength(1);
    expect(out2).toMatchObject({ status: 'failed', exitCode: 1 });
  });

  it('an action throwing RetryAfterError is retried no sooner than it asked; NonRetryableError is not retried', async () => {
    let calls = 0;
    const actions = new Map<string, (input: unknown) => Promise<Record<string, string>>>([
      [
        'later',
        async () => {
          calls++;
          if (calls === 1) throw new RetryAfterError('rate limited', 5000);
          return { ok: 'yes' };
        },
      ],
      [
        'never',
        async () => {
          throw new NonRetryableError('bad input');
        },
      ],
    ]);
    const retry = {
      ...DEFAULT_RETRY,
      maxAttempts: 3,
      on: ['failure' as const],
      backoff: { delayMs: 100, factor: 2, maxDelayMs: 100_000, jitter: 'none' as const },
    };
    const delays: number[] = [];
    const sleep = async (ms: number) => {
      delays.push(ms);
    };
    const a = await runSteps(
      attemptOf([{ uses: 'later', retry }]),
      new FakeWorkspace(dir),
      context({ actions: actions as never }).ctx,
      { sleep },
    );
    expect(a.status).toBe('succeeded');
    expect(calls).toBe(2);
    expect(delays).toEqual([5000]);
    expect(new RetryAfterError('x', 1) instanceof NonRetryableError).toBe(false);
    const b = await runSteps(
      attemptOf([{ uses: 'never', retry }]),
      new FakeWorkspace(dir),
      context({ actions: actions as never }).ctx,
      { sleep },
    );
    expect(b).toMatchObject({ status: 'failed', nonRetryable: true });
    expect(delays).toEqual([5000]);
  });

  it('cancels: the running step aborts, later steps are cancelled unless always(), which gets a live signal', async () => {
    const job = new AbortController();
    const signals: AbortSignal[] = [];
    const ws = new FakeWorkspace(dir, (req, _io, call) => {
      signals.push(req.signal);
      if (call === 0) {
        setTimeout(() => job.abort({ type: 'cancel', message: 'cancelled by alice' }), 5);
        return untilAborted(req);
      }
      return ok;
    });
    const out = await runSteps(
      attemptOf([
        { run: 'long' },
        { run: 'normal' },
        { run: 'cleanup', if: 'always()' },
        { run: 'c2', if: 'cancelled()' },
      ]),
      ws,
      context({ signal: job.signal }).ctx,
    );
    expect(out).toMatchObject({ status: 'cancelled', reason: 'cancelled', message: 'cancelled by alice' });
    expect(out.steps.map((s) => s.status)).toEqual(['cancelled', 'cancelled', 'succeeded', 'succeeded']);
    expect(ws.requests.map((r) => r.script)).toEqual(['long', 'cleanup', 'c2']);
    expect(signals[1]?.aborted).toBe(false);
  });

  it('aborts cleanup steps via cleanupSignal, and starts none after a forced cancel', async () => {
    const cleanup = new AbortController();
    const job = new AbortController();
    job.abort({ type: 'cancel', cleanupSignal: cleanup.signal });
    const ws = new FakeWorkspace(dir, (req) => {
      setTimeout(() => cleanup.abort({ type: 'cancel', force: true }), 5);
      return untilAborted(req);
    });
    const out = await runSteps(
      attemptOf([{ run: 'cleanup', if: 'always()' }]),
      ws,
      context({ signal: job.signal }).ctx,
    );
    expect(out.status).toBe('cancelled');
    expect(out.steps[0]?.status).toBe('cancelled');

    const forced = new AbortController();
    forced.abort({ type: 'cancel', force: true });
    const ws2 = new FakeWorkspace(dir);
    const out2 = await runSteps(
      attemptOf([{ run: 'cleanup', if: 'always()' }]),
      ws2,
      context({ signal: forced.signal }).ctx,
    );
    expect(ws2.requests).toHaveLength(0);
    expect(out2.status).toBe('cancelled');
  });

  it('fails with reason timeout when the job signal aborts with a timeout reason', async () => {
    const job = new AbortController();
    const ws = new FakeWorkspace(dir, (req) => {
      setTimeout(() => job.abort({ type: 'timeout' }), 5);
      return untilAborted(req);
    });
    const out = await runSteps(attemptOf([{ run: 'long' }]), ws, context({ signal: job.signal }).ctx);
    expect(out).toMatchObject({ status: 'failed', reason: 'timeout' });
  });

  it('reports a workspace exec rejection as infra', async () => {
    const ws = new FakeWorkspace(dir, () => Promise.reject(new Error('spawn bash ENOENT')));
    const out = await runSteps(attemptOf([{ run: 'x' }]), ws, context().ctx);
    expect(out).toMatchObject({ status: 'failed', reason: 'infra' });
    expect(out.message).toContain('spawn bash ENOENT');
  });

  it('runs registered actions with interpolated inputs and uses their return value as outputs', async () => {
    const seen: unknown[] = [];
    const greet: ActionHandler = ({ inputs, env, workspace, log }) => {
      seen.push({ inputs, env: env.WHO, workspace });
      log('hello from the action');
      return { greeting: `hi ${inputs.name}` };
    };
    const rec = context({ actions: new Map([['greet', greet]]) });
    const ws = new FakeWorkspace(dir);
    const out = await runSteps(
      attemptOf(
        [
          { id: 'g', uses: 'greet@v1', with: { name: '${{ matrix.who }}' }, env: { WHO: 'env-who' } },
          { run: 'echo ${{ steps.g.outputs.greeting }}' },
        ],
        {},
        { matrix: { who: 'bob' } },
      ),
      ws,
      rec.ctx,
    );
    expect(out.status).toBe('succeeded');
    expect(seen).toEqual([{ inputs: { name: 'bob' }, env: 'env-who', workspace: dir }]);
    expect(ws.requests[0]?.script).toBe('echo hi bob');
    expect(rec.chunks[0]).toEqual({ stream: 'stdout', step: 0, text: 'hello from the action\n' });
  });

  it('fails an unregistered action clearly and maps NonRetryableError / RetryAfterError', async () => {
    const out = await runSteps(attemptOf([{ uses: 'actions/checkout@v4' }]), new FakeWorkspace(dir), context().ctx);
    // The pipeline's own problem, not the platform's: a failure (CLI exit 1), never retried.
    expect(out).toMatchObject({ status: 'failed', reason: 'exit_code', nonRetryable: true });
    expect(out.message).toContain(
      "action `actions/checkout@v4` is not registered; register it with engine.registerAction('actions/checkout@v4', fn)",
    );

    const actions = new Map<string, ActionHandler>([
      [
        'nope',
        () => {
          throw new NonRetryableError('bad input');
        },
      ],
      [
        'later',
        () => {
          throw new RetryAfterError('rate limited', 5000);
        },
      ],
    ]);
    const a = await runSteps(attemptOf([{ uses: 'nope' }]), new FakeWorkspace(dir), context({ actions }).ctx);
    expect(a).toMatchObject({ status: 'failed', reason: 'exit_code', nonRetryable: true });
    const b = await runSteps(attemptOf([{ uses: 'later' }]), new FakeWorkspace(dir), context({ actions }).ctx);
    expect(b).toMatchObject({ status: 'failed', retryAfterMs: 5000 });
    expect(b.message).toContain('rate limited');
  });

  it('fails a job that calls a reusable workflow', async () => {
    const out = await runSteps(
      attemptOf([], { uses: 'org/repo/.github/workflows/x.yml@main' }),
      new FakeWorkspace(dir),
      context().ctx,
    );
    expect(out).toMatchObject({ status: 'failed', reason: 'exit_code', nonRetryable: true });
    expect(out.message).toContain('reusable workflows (jobs.<id>.uses) are not supported');
  });

  it('reads workflow commands on stderr too, honours ::stop-commands::, and fails a step using the disabled ::set-env', async () => {
    const ws = new FakeWorkspace(dir, async (_req, io, call) => {
      if (call === 0) {
        await io.stderr(Buffer.from('::add-mask::from-stderr-secret\n::set-output name=err::yes\n'));
        await io.stdout(Buffer.from('::stop-commands::tok123\n::set-output name=stopped::no\n::add-mask::never\n'));
        await io.stdout(Buffer.from('::tok123::\n::set-output name=after::yes\n'));
      } else {
        await io.stdout(Buffer.from('::set-env name=X::1\n'));
      }
      return ok;
    });
    const rec = context();
    const out = await runSteps(attemptOf([{ run: 'a' }, { run: 'b' }]), ws, rec.ctx);
    expect(rec.masks).toEqual(['from-stderr-secret']);
    expect(out.steps[0]?.outputs).toEqual({ err: 'yes', after: 'yes' });
    expect(out.steps[1]).toMatchObject({ status: 'failed', reason: 'exit_code' });
    expect(out.steps[1]?.message).toMatch(
      /the `set-env` command is disabled \(as on GitHub\): use echo "NAME=value" >> "\$GITHUB_ENV"/,
    );
  });

  it('keeps the GITHUB_* / RUNNER_* values against env and $GITHUB_ENV, and drops NODE_OPTIONS from $GITHUB_ENV, as GitHub does', async () => {
    const ws = new FakeWorkspace(dir, async (req, _io, call) => {
      if (call === 0)
        await writeFile(req.env.GITHUB_ENV ?? '', 'RUNNER_OS=Hacked\nNODE_OPTIONS=--require=/tmp/x.js\nMINE=1\n');
      return ok;
    });
    const rec = context();
    await runSteps(attemptOf([{ run: 'a' }, { run: 'b', env: { GITHUB_JOB: 'other', CI: 'false' } }]), ws, rec.ctx);
    const env = ws.requests[1]?.env ?? {};
    expect(env.RUNNER_OS).toBe(ws.requests[0]?.env.RUNNER_OS);
    expect(Object.keys(env).filter((k) => k.toUpperCase() === 'NODE_OPTIONS')).toEqual([]);
    expect(env.RUNNER_OS).not.toBe('Hacked');
    expect(env.GITHUB_JOB).toBe('build');
    expect(env.CI).toBe('false');
    expect(env.MINE).toBe('1');
    expect(env.NODE_OPTIONS).toBeUndefined();
    expect(rec.chunks.map((c) => c.text).join('')).toContain('NODE_OPTIONS cannot be set through $GITHUB_ENV');
  });

  it('github.token is secrets.GITHUB_TOKEN, as on GitHub', async () => {
    const ws = new FakeWorkspace(dir);
    const rec = context({ secrets: { GITHUB_TOKEN: 'ghp-test-token' } });
    await runSteps(
      attemptOf([{ run: 'gh --token ${{ github.token }}', env: { GH: '${{ github.token }}' } }]),
      ws,
      rec.ctx,
    );
    expect(ws.requests[0]?.script).toBe('gh --token ghp-test-token');
    expect(ws.requests[0]?.env.GH).toBe('ghp-test-token');
    const none = new FakeWorkspace(dir);
    await runSteps(attemptOf([{ run: 'x${{ github.token }}x' }]), none, context().ctx);
    expect(none.requests[0]?.script).toBe('xx');
  });

  it("a registered action gets the engine's GITHUB_* / RUNNER_* values too, whatever env says", async () => {
    let seen: Record<string, string> = {};
    const actions = new Map([
      [
        'acme/env',
        async ({ env }: { env: Record<string, string> }) => {
          seen = env;
          return {};
        },
      ],
    ]);
    const ws = new FakeWorkspace(dir);
    await runSteps(
      attemptOf([{ uses: 'acme/env', env: { RUNNER_OS: 'Hacked', GITHUB_JOB: 'evil', MINE: 'x' } }, { run: 'r' }]),
      ws,
      context({ actions: actions as never }).ctx,
    );
    expect(seen.RUNNER_OS).toBe(ws.requests[0]?.env.RUNNER_OS);
    expect(seen.GITHUB_JOB).toBe('build');
    expect(seen.MINE).toBe('x');
  });

  it('hands a PowerShell step its script wrapped as GitHub does', async () => {
    const ws = new FakeWorkspace(dir);
    await runSteps(attemptOf([{ run: 'Write-Host hi', shell: 'pwsh' }, { run: 'echo hi' }]), ws, context().ctx);
    expect(ws.requests[0]?.script).toMatch(/^\$ErrorActionPreference = 'stop'\nWrite-Host hi\nif \(\(Test-Path/);
    expect(ws.requests[1]?.script).toBe('echo hi');
  });

  it('workflow commands as GitHub reads them: any case, a last line without newline, stop-commands resumed by its token in any case; an empty or command-name token is refused (masks go on)', async () => {
    const ws = new FakeWorkspace(dir, async (_req, io, call) => {
      if (call === 0) {
        await io.stdout(Buffer.from('::ADD-MASK::upper-case-mask\n::stop-commands::Tok\n::add-mask::while-stopped\n'));
        await io.stdout(Buffer.from('::TOK::anything\n::Set-Output NAME=late::yes\n::add-mask::no-newline-mask'));
      } else if (call === 1) {
        await io.stdout(Buffer.from('::stop-commands::\n::add-mask::after-empty-token\n'));
      } else {
        await io.stdout(Buffer.from('::stop-commands::add-mask\n::add-mask::after-command-token\n'));
      }
      return ok;
    });
    const rec = context();
    const out = await runSteps(attemptOf([{ run: 'a' }, { run: 'b' }, { run: 'c', if: 'always()' }]), ws, rec.ctx);
    expect(rec.masks).toEqual(['upper-case-mask', 'no-newline-mask', 'after-empty-token', 'after-command-token']);
    expect(out.steps[0]?.outputs).toEqual({ late: 'yes' });
    expect(out.steps[1]).toMatchObject({ status: 'failed', reason: 'exit_code' });
    expect(out.steps[1]?.message).toMatch(/::stop-commands:: refused an empty token/);
    expect(out.steps[2]).toMatchObject({ status: 'failed', reason: 'exit_code' });
  });

  it("pipewright's own line about a step starts on a new line after output that ended mid-line", async () => {
    const ws = new FakeWorkspace(dir, async (_req, io) => {
      await io.stderr(Buffer.from('partial'));
      await io.stdout(Buffer.from('::set-env name=A::b\n'));
      return ok;
    });
    const rec = context();
    await runSteps(attemptOf([{ name: 'glue', run: 'x' }]), ws, rec.ctx);
    const stderr = rec.chunks
      .filter((c) => c.stream === 'stderr')
      .map((c) => c.text)
      .join('');
    expect(stderr).toMatch(/^partial\npipewright: the `set-env` command is disabled/);
  });

  it('a variable a step adds that no process environment can hold fails that step, not the next', async () => {
    const ws = new FakeWorkspace(dir, async (req, _io, call) => {
      if (call === 0) await writeFile(req.env.GITHUB_ENV ?? '', 'BAD=a\u0000b\n');
      return ok;
    });
    const out = await runSteps(attemptOf([{ run: 'a' }, { run: 'b' }]), ws, context().ctx);
    expect(out.steps[0]).toMatchObject({ status: 'failed', reason: 'exit_code' });
    expect(out.steps[0]?.message).toBe('$GITHUB_ENV: the value of BAD holds a NUL byte');
    expect(ws.requests).toHaveLength(1);
  });

  it('::set-env and ::add-path work when ACTIONS_ALLOW_UNSECURE_COMMANDS is true, as on GitHub', async () => {
    const ws = new FakeWorkspace(dir, async (_req, io, call) => {
      if (call === 0) await io.stdout(Buffer.from('::set-env name=FOO::bar%0Abaz\n::add-path::/opt/legacy/bin\n'));
      return ok;
    });
    const out = await runSteps(
      attemptOf([{ run: 'a' }, { run: 'b' }], { env: { ACTIONS_ALLOW_UNSECURE_COMMANDS: 'true' } }),
      ws,
      context().ctx,
    );
    expect(out.steps[0]).toMatchObject({ status: 'succeeded' });
    expect(ws.requests[1]?.env.FOO).toBe('bar\nbaz');
    expect(ws.requests[1]?.pathPrepend).toEqual(['/opt/legacy/bin']);
  });

  it("masks a secret in a step's timeout-minutes message before quoting it (an escaped value would not match)", async () => {
    const secret = 'pa"ss\\word-123';
    const rec = context({ secrets: { T: secret } });
    const out = await runSteps(
      attemptOf([{ run: 'x', timeoutMinutesExpr: '${{ secrets.T }}' }]),
      new FakeWorkspace(dir),
      rec.ctx,
    );
    expect(out.steps[0]?.message).toBe('timeout-minutes: evaluated to "***", not a positive number of minutes');
    const all = JSON.stringify(out) + rec.chunks.map((c) => c.text).join('');
    expect(all).not.toContain('ss\\\\word');
    expect(all).not.toContain('word-123');
  });

  it('awaits ctx.output promises (backpressure) and honours ::add-mask::', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const order: string[] = [];
    const rec = context();
    rec.ctx.output = async (_s, _i, chunk) => {
      order.push(`out:${Buffer.from(chunk).toString().trim()}`);
      await gate;
    };
    const ws = new FakeWorkspace(dir, async (_req, io) => {
      const p = io.stdout(Buffer.from('::add-mask::hunter2\n'));
      expect(p).toBeInstanceOf(Promise);
      setTimeout(() => {
        order.push('release');
        release();
      }, 10);
      await p;
      order.push('after-await');
      return ok;
    });
    await runSteps(attemptOf([{ run: 'x' }]), ws, rec.ctx);
    expect(order).toEqual(['out:::add-mask::hunter2', 'release', 'after-await']);
    expect(rec.masks).toEqual(['hunter2']);
  });

  it('keeps secret values out of messages, reported step outputs and job outputs', async () => {
    const ws = new FakeWorkspace(dir, async (req) => {
      await writeFile(req.env.GITHUB_OUTPUT ?? '', `leak=${req.env.TOKEN}\n`);
      return exit(1);
    });
    const out = await runSteps(
      attemptOf([{ id: 's', name: 'use ${{ secrets.TOKEN }}', run: 'x', env: { TOKEN: '${{ secrets.TOKEN }}' } }], {
        outputs: { leak: '${{ steps.s.outputs.leak }}' },
      }),
      ws,
      context({ secrets: { TOKEN: 'tok-123456' } }).ctx,
    );
    const text = JSON.stringify(out);
    expect(text).not.toContain('tok-123456');
    expect(out.steps[0]?.outputs.leak).toBe('***');
    expect(out.outputs.leak).toBeUndefined();
  });

  it('fails a step whose if: cannot be evaluated, naming the condition', async () => {
    const out = await runSteps(attemptOf([{ run: 'x', if: 'nosuchfn()' }]), new FakeWorkspace(dir), context().ctx);
    expect(out.status).toBe('failed');
    expect(out.steps[0]?.message).toContain('could not evaluate `if: nosuchfn()`');
  });
});
