import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ATTEMPT_ID_ENV, attemptIdOf } from '@pipewright/core';
import { ProcessExecutor } from '@pipewright/executors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, attemptOf, collectingContext, killAll, readPids, tempDir, waitForPids } from './helpers.js';

let root: { dir: string; cleanup: () => Promise<void> };
let pidsDir: { dir: string; cleanup: () => Promise<void> };
const started: number[] = [];

beforeEach(async () => {
  root = await tempDir('pw-kill-');
  pidsDir = await tempDir('pw-pids-');
});
afterEach(async () => {
  killAll(started.splice(0));
  await root.cleanup();
  await pidsDir.cleanup();
});

/**
 * A step that leaves a background sleeper, a TERM-ignoring child and a
 * foreground sleep, writing every pid to `file`.
 */
function treeScript(file: string): string {
  return [
    `sleep 1000 & echo $! >> '${file}'`,
    `bash -c 'trap "" TERM; echo $$ >> "${file}"; exec sleep 1000' &`,
    `echo $$ >> '${file}'`,
    'sleep 1000',
  ].join('\n');
}

/**
 * Starts a one-step job whose child ignores SIGTERM (asking for `killGraceMs`, bounded by the
 * executor's `executorGraceMs`); resolves once the child runs.
 */
async function startStubborn(name: string, killGraceMs: number, executorGraceMs?: number) {
  const file = join(pidsDir.dir, name);
  const executor = new ProcessExecutor({
    workRoot: root.dir,
    ...(executorGraceMs === undefined ? {} : { killGraceMs: executorGraceMs }),
  });
  const job = new AbortController();
  const { ctx } = collectingContext({ signal: job.signal });
  const run = executor.runJob(
    attemptOf([{ run: `bash -c 'trap "" TERM; echo $$ >> "${file}"; exec sleep 1000' &\nwait`, killGraceMs }]),
    ctx,
  );
  const [child] = await waitForPids(file, 1);
  started.push(child as number);
  return { run, job, child: child as number };
}

describe('ProcessExecutor: stopping steps', () => {
  it('a step timeout kills the whole tree, TERM-ignoring child and background sleeper included', async () => {
    const file = join(pidsDir.dir, 'pids');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx } = collectingContext();
    const t0 = Date.now();
    const run = executor.runJob(
      attemptOf([
        { run: treeScript(file), timeoutMs: 1500, killGraceMs: 300 },
        { run: 'echo cleanup', if: 'always()' },
      ]),
      ctx,
    );
    const pids = await waitForPids(file, 3);
    started.push(...pids);
    expect(await alive(pids)).toHaveLength(3);
    const out = await run;
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(out).toMatchObject({ status: 'failed', reason: 'timeout' });
    expect(out.steps[0]).toMatchObject({ status: 'failed', reason: 'timeout' });
    expect(out.steps[1]?.status).toBe('succeeded');
    expect(await alive(await readPids(file))).toEqual([]);
  });

  it('background processes die when a step ends normally', async () => {
    const file = join(pidsDir.dir, 'bg');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx } = collectingContext();
    const out = await executor.runJob(attemptOf([{ run: `sleep 1000 & echo $! >> '${file}'\necho done` }]), ctx);
    const pids = await readPids(file);
    started.push(...pids);
    expect(out.status).toBe('succeeded');
    expect(pids).toHaveLength(1);
    expect(await alive(pids)).toEqual([]);
  });

  it('a step timeout also kills what left the process group (setsid), found by the attempt id it carries', async () => {
    const file = join(pidsDir.dir, 'escaped-timeout');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx } = collectingContext();
    const out = await executor.runJob(
      attemptOf([
        {
          // Its output goes elsewhere, so no pipe gives it away: only the attempt id does.
          run: `setsid sh -c 'echo $$ > "${file}"; exec sleep 1000' > /dev/null 2>&1 &\nwhile [ ! -s '${file}' ]; do sleep 0.01; done\nsleep 1000`,
          timeoutMs: 500,
          killGraceMs: 200,
        },
      ]),
      ctx,
    );
    const pids = await readPids(file);
    started.push(...pids);
    expect(out.steps[0]).toMatchObject({ status: 'failed', reason: 'timeout' });
    expect(pids).toHaveLength(1);
    expect(await alive(pids)).toEqual([]);
  });

  it('a process that left the group and still holds the step output dies with the step, its output complete', async () => {
    const file = join(pidsDir.dir, 'escaped-pipe');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx, text } = collectingContext();
    const t0 = Date.now();
    const out = await executor.runJob(
      attemptOf([
        {
          run: `setsid sh -c 'echo $$ > "${file}"; echo from-escaped; exec sleep 1000' &\nwhile [ ! -s '${file}' ]; do sleep 0.01; done\necho main-done`,
        },
      ]),
      ctx,
    );
    const pids = await readPids(file);
    started.push(...pids);
    expect(out.status).toBe('succeeded');
    expect(text(0)).toContain('from-escaped');
    expect(text(0)).toContain('main-done');
    expect(text(0, 'stderr')).not.toContain('was cut');
    expect(await alive(pids)).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('an abort or a pipe-holder kill of one step leaves a service an earlier step started in its own session', async () => {
    const svc = join(pidsDir.dir, 'service');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx, text } = collectingContext();
    const out = await executor.runJob(
      attemptOf([
        {
          run: `setsid sh -c 'echo $$ > "${svc}"; exec sleep 300' > /dev/null 2>&1 &\nwhile [ ! -s '${svc}' ]; do sleep 0.01; done`,
        },
        { run: 'sleep 30', timeoutMs: 300, killGraceMs: 100, continueOnError: true },
        { run: `setsid sh -c 'echo holder; exec sleep 300' &\necho started` },
        { run: 'echo last' },
      ]),
      ctx,
    );
    const pids = await readPids(svc);
    started.push(...pids);
    expect(out.steps.map((s) => s.conclusion)).toEqual(['success', 'success', 'success', 'success']);
    expect(out.steps[1]?.reason).toBe('timeout');
    expect(text(2)).toContain('started');
    // Zombies count as dead here (a `kill -0` would take one for alive).
    expect(await alive(pids)).toEqual(pids);
  });

  it("a step's own service with its output elsewhere outlives the step; an escaped process still on the step's output does not", async () => {
    const svc = join(pidsDir.dir, 'own-service');
    const holder = join(pidsDir.dir, 'holder');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx } = collectingContext();
    const out = await executor.runJob(
      attemptOf([
        {
          run: [
            `setsid sh -c 'echo $$ > "${svc}"; exec sleep 300' > /dev/null 2>&1 &`,
            `setsid sh -c 'echo $$ > "${holder}"; exec sleep 300' &`,
            `while [ ! -s '${svc}' ] || [ ! -s '${holder}' ]; do sleep 0.01; done`,
          ].join('\n'),
        },
      ]),
      ctx,
    );
    const service = await readPids(svc);
    const holding = await readPids(holder);
    started.push(...service, ...holding);
    expect(out.status).toBe('succeeded');
    expect(await alive(service)).toEqual(service);
    expect(await alive(holding)).toEqual([]);
  });

  it('on abort an escaped process that traps TERM gets the kill-grace, as a group member does', async () => {
    const file = join(pidsDir.dir, 'trapper');
    const log = join(pidsDir.dir, 'trapper.log');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx } = collectingContext();
    const out = await executor.runJob(
      attemptOf([
        {
          run: `setsid sh -c 'trap "sleep 0.5; echo cleaned-up; exit 0" TERM; echo $$ > "${file}"; while :; do sleep 0.05; done' > '${log}' 2>&1 &\nwhile [ ! -s '${file}' ]; do sleep 0.01; done\nsleep 1000`,
          timeoutMs: 300,
          killGraceMs: 5000,
        },
      ]),
      ctx,
    );
    started.push(...(await readPids(file)));
    expect(out.steps[0]).toMatchObject({ status: 'failed', reason: 'timeout' });
    expect(await readFile(log, 'utf8')).toContain('cleaned-up');
  });

  it("reclaim stops the processes a lost attempt left on this host (a dead engine's steps), and only its own", async () => {
    // Two "orphans" of a dead engine, in sessions of their own: attempt 1 of job a, attempt 2 of it.
    const orphan = (attempt: number) => {
      const env = { ...process.env, [ATTEMPT_ID_ENV]: attemptIdOf({ runId: 'r-dead', jobId: 'a', attempt }) };
      const child = spawn('sleep', ['1000'], { env, detached: true, stdio: 'ignore' });
      child.unref();
      started.push(child.pid as number);
      return child.pid as number;
    };
    const lost = orphan(1);
    const other = orphan(2);
    const executor = new ProcessExecutor({ workRoot: root.dir });
    await executor.reclaim({ runId: 'r-dead', jobId: 'a', attempt: 1, workerId: executor.workerId });
    await new Promise((r) => setTimeout(r, 100));
    expect(await alive([lost])).toEqual([]);
    expect(await alive([other])).toEqual([other]);
  });

  it('a process that escaped the group and keeps writing does not hold the step open: reading stops in bounded time', async () => {
    const file = join(pidsDir.dir, 'chatty');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx, text } = collectingContext();
    const t0 = Date.now();
    try {
      const out = await executor.runJob(
        attemptOf([
          // The escaped loop writes its own pid once it runs in its new session; the step waits
          // for that, so the group kill at the step's end cannot catch it before setsid.
          {
            // `env -u`: without the step id the executor cannot tell it is the step's.
            run: `env -u PIPEWRIGHT_STEP_ID setsid sh -c 'echo $$ > "${file}"; while :; do echo tick; sleep 0.1; done' &\nwhile [ ! -s '${file}' ]; do sleep 0.01; done\necho main-done`,
          },
          { run: 'echo next' },
        ]),
        ctx,
      );
      expect(out.status).toBe('succeeded');
      expect(out.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
      expect(text(0, 'stderr')).toMatch(/pipewright: output after the step's processes ended was cut after \d+\.\d s/);
      // 5 s of reading at most (pipeDrainMaxMs), with room for a loaded machine; before, it never ended.
      expect(Date.now() - t0).toBeLessThan(15_000);
    } finally {
      // The escaped loop is outside any group the executor kills (documented): the test ends it.
      const pids = await readPids(file).catch(() => [] as number[]);
      for (const pid of pids) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  });

  it('a cancel via ctx.signal stops the running step and cancels the attempt; always() steps still run', async () => {
    const file = join(pidsDir.dir, 'cancel');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const job = new AbortController();
    const { ctx, text } = collectingContext({ signal: job.signal });
    const run = executor.runJob(
      attemptOf([
        { run: treeScript(file), killGraceMs: 200 },
        { run: 'echo normal' },
        { run: 'echo cleanup', if: 'always()' },
      ]),
      ctx,
    );
    const pids = await waitForPids(file, 3);
    started.push(...pids);
    job.abort({ type: 'cancel', message: 'cancelled by test' });
    const out = await run;
    expect(out).toMatchObject({ status: 'cancelled', reason: 'cancelled', message: 'cancelled by test' });
    expect(out.steps.map((s) => s.status)).toEqual(['cancelled', 'cancelled', 'succeeded']);
    expect(text(2).trim()).toBe('cleanup');
    expect(await alive(pids)).toEqual([]);
  });

  it('a job timeout via ctx.signal fails the attempt with reason timeout', async () => {
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const job = new AbortController();
    const { ctx } = collectingContext({ signal: job.signal });
    const timer = setTimeout(() => job.abort({ type: 'timeout', message: 'job exceeded 1s' }), 300);
    const out = await executor.runJob(attemptOf([{ run: 'sleep 1000' }]), ctx);
    clearTimeout(timer);
    expect(out).toMatchObject({ status: 'failed', reason: 'timeout', message: 'job exceeded 1s' });
  });

  it('a forced cancel (second Ctrl-C) cuts the kill-grace short: SIGKILL at once', async () => {
    const { run, job, child } = await startStubborn('force', 60_000);
    // How the engine cancels: the first abort carries the signal that a later forced cancel aborts.
    const cleanup = new AbortController();
    job.abort({ type: 'cancel', cleanupSignal: cleanup.signal });
    await new Promise((r) => setTimeout(r, 300));
    expect(await alive([child])).toEqual([child]);
    const forcedAt = Date.now();
    cleanup.abort({ type: 'cancel', force: true });
    const out = await run;
    expect(out.status).toBe('cancelled');
    // Far below the 60 s grace: the forced cancel does not wait it out.
    expect(Date.now() - forcedAt).toBeLessThan(10_000);
    expect(await alive([child])).toEqual([]);
  });

  it('a cancel that is forced from the start gives no grace at all', async () => {
    const { run, job, child } = await startStubborn('force-first', 60_000);
    const abortedAt = Date.now();
    job.abort({ type: 'cancel', force: true });
    expect((await run).status).toBe('cancelled');
    expect(Date.now() - abortedAt).toBeLessThan(10_000);
    expect(await alive([child])).toEqual([]);
  });

  it('respects kill-grace: a TERM-ignoring child lives through the grace, then dies', async () => {
    const grace = 1500;
    const { run, job, child } = await startStubborn('grace', grace);
    let settled = false;
    void run.then(() => {
      settled = true;
    });
    const abortedAt = Date.now();
    job.abort({ type: 'cancel' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await alive([child])).toEqual([child]);
    expect(settled).toBe(false);
    const out = await run;
    const took = Date.now() - abortedAt;
    expect(out.status).toBe('cancelled');
    expect(took).toBeGreaterThanOrEqual(grace - 50);
    expect(took).toBeLessThan(grace + 10_000);
    expect(await alive([child])).toEqual([]);
  });

  it('the executor killGraceMs bounds the grace a step asks for', async () => {
    const { run, job, child } = await startStubborn('cap', 60_000, 100);
    const t0 = Date.now();
    job.abort({ type: 'cancel' });
    await run;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await alive([child])).toEqual([]);
  });
});
