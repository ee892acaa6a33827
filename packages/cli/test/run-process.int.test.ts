import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alive, BIN, buildCli, isFile, killStragglers, runCli, startCli, tempDir } from './run-helpers.js';

// Timeouts, Ctrl-C, retries and outputs through `pipewright run`, with real step processes.

const tmp = tempDir('pw-run-proc-');
const pidsToCheck: number[] = [];

beforeAll(() => buildCli(), 120_000);
afterEach(() => {
  killStragglers();
  for (const pid of pidsToCheck.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
});
afterAll(() => tmp.dispose());

const pidsIn = (file: string): number[] => readFileSync(file, 'utf8').split(/\s+/).filter(Boolean).map(Number);

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

describe('timeouts', () => {
  it('a step timeout kills the whole process tree of the step', async () => {
    const pids = join(tmp.dir, 'timeout-pids');
    const file = tmp.file(
      'timeout.yml',
      `jobs:
  slow:
    runs-on: local
    steps:
      - name: sleeper
        timeout: 2s
        kill-grace: 1s
        run: |
          sleep 1000 &
          echo $! >> "${pids}"
          bash -c 'sleep 1000 & echo $! >> "${pids}"; wait' &
          echo $! >> "${pids}"
          echo $$ >> "${pids}"
          wait
`,
    );
    const started = Date.now();
    const r = await runCli(['run', file, '--json']);
    const took = Date.now() - started;
    const report = JSON.parse(r.stdout);
    expect(r.code).toBe(1);
    const job = report.jobs[0];
    expect(job.status).toBe('failed');
    expect(job.steps[0]).toMatchObject({ name: 'sleeper', status: 'failed' });
    expect(`${job.reason} ${job.attempts[0].reason} ${job.attempts[0].message}`).toMatch(/timeout|timed out/);
    expect(took).toBeLessThan(30_000);
    const list = pidsIn(pids);
    pidsToCheck.push(...list);
    expect(list.length).toBe(4);
    // Nothing the step started outlives it (the CLI exited: the tree must be gone already).
    expect(await until(() => list.every((p) => !alive(p)), 3000)).toBe(true);
  });
});

describe('Ctrl-C', () => {
  it('the first SIGINT cancels gracefully: the always() cleanup job runs, exit 130', async () => {
    const dir = tmp.dir;
    const file = tmp.file(
      'cancel.yml',
      `jobs:
  work:
    runs-on: local
    steps:
      - run: |
          echo $$ > "${dir}/work-pid"
          touch "${dir}/work-started"
          sleep 60
          touch "${dir}/work-finished"
  after:
    needs: work
    runs-on: local
    steps:
      - run: touch "${dir}/after-ran"
  cleanup:
    needs: work
    if: \${{ always() }}
    runs-on: local
    steps:
      - run: echo "cleaning up" && touch "${dir}/cleanup-ran"
`,
    );
    const cli = startCli(['run', file, '--logs']);
    await until(() => isFile(join(dir, 'work-started')), 20_000);
    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect(r.code).toBe(130);
    expect(r.stdout).toContain('cancelling... press Ctrl-C again to force');
    expect(isFile(join(dir, 'cleanup-ran'))).toBe(true);
    expect(r.stdout).toContain('cleanup/Run echo "cleaning up" && touch');
    expect(isFile(join(dir, 'work-finished'))).toBe(false);
    expect(isFile(join(dir, 'after-ran'))).toBe(false);
    expect(r.stdout).toMatch(/run cancelled in \S+ \(interrupted \(Ctrl-C\)\)/);
    const workPid = pidsIn(join(dir, 'work-pid'))[0] as number;
    pidsToCheck.push(workPid);
    expect(alive(workPid)).toBe(false);
  });

  it('a SIGINT while the pipeline is being read (stdin) ends the command at once with 130 and one --json document', async () => {
    // `-`: the CLI waits for its pipeline on stdin, which never comes.
    const cli = startCli(['run', '-', '--json'], { stdin: 'pipe' });
    await new Promise((r) => setTimeout(r, 1500));
    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect({ code: r.code, signal: r.signal }).toStrictEqual({ code: 130, signal: null });
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'CANCELLED', exitCode: 130 } });
    expect(r.stderr).toContain('interrupted before the run started');
  });

  it('a signal that comes before anyone listens is held for the first listener, not the death of the process', async () => {
    // What the binary does first (holdInterrupts), then a signal, then a command subscribing late.
    const env = new URL('../dist/run/environment.js', import.meta.url).href;
    const script = `
      const { holdInterrupts, processEnvironment } = await import(${JSON.stringify(env)});
      holdInterrupts();
      process.kill(process.pid, 'SIGTERM');
      setTimeout(() => {
        const got = [];
        const stop = processEnvironment().onInterrupt((s) => got.push(s));
        stop();
        console.log('got ' + got.join(','));
      }, 200);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      child.on('close', (c, sig) => r([c, sig])),
    );
    expect({ code, signal, out }).toStrictEqual({ code: 0, signal: null, out: 'got SIGTERM\n' });
  });

  it('one SIGTERM while the pipeline is being read ends the command with 130 (a supervisor need not send two)', async () => {
    const cli = startCli(['run', '-'], { stdin: 'pipe' });
    await new Promise((r) => setTimeout(r, 1500));
    cli.child.kill('SIGTERM');
    const r = await cli.done;
    expect({ code: r.code, signal: r.signal }).toStrictEqual({ code: 130, signal: null });
  });

  it('SIGHUP (terminal closed) stops like SIGTERM: the cleanup job runs, no step is left, exit 130', async () => {
    const dir = tmp.dir;
    const file = tmp.file(
      'hangup.yml',
      `jobs:
  work:
    runs-on: local
    steps:
      - run: |
          echo $$ > "${dir}/hup-pid"
          touch "${dir}/hup-started"
          sleep 60
  cleanup:
    needs: work
    if: \${{ always() }}
    runs-on: local
    steps:
      - run: touch "${dir}/hup-cleanup-ran"
`,
    );
    const cli = startCli(['run', file]);
    await until(() => isFile(join(dir, 'hup-started')), 20_000);
    cli.child.kill('SIGHUP');
    const r = await cli.done;
    expect(r.code).toBe(130);
    expect(isFile(join(dir, 'hup-cleanup-ran'))).toBe(true);
    const workPid = pidsIn(join(dir, 'hup-pid'))[0] as number;
    pidsToCheck.push(workPid);
    expect(alive(workPid)).toBe(false);
  });

  it('a stdout that cannot be written (full disk) neither crashes the CLI nor leaves steps: the run ends, exit 3', async () => {
    const dir = tmp.dir;
    const file = tmp.file(
      'full.yml',
      `jobs:
  work:
    runs-on: local
    steps:
      - run: |
          echo $$ > "${dir}/full-pid"
          for i in 1 2 3 4 5; do echo "line $i"; sleep 0.2; done
          touch "${dir}/full-finished"
`,
    );
    const out = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, [BIN, 'run', file, '--logs'], { stdio: ['ignore', out, 'pipe'] });
    closeSync(out);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => {
      stderr += t;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(3);
    expect(stderr).toContain('pipewright: could not write to stdout (ENOSPC)');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(isFile(join(dir, 'full-finished'))).toBe(true);
    const workPid = pidsIn(join(dir, 'full-pid'))[0] as number;
    pidsToCheck.push(workPid);
    expect(alive(workPid)).toBe(false);
  });

  it('a second SIGINT forces: the cleanup job is aborted too, exit 130', async () => {
    const dir = join(tmp.dir, 'force');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    const file = tmp.file(
      'force.yml',
      `jobs:
  work:
    runs-on: local
    steps:
      - run: touch "${dir}/work-started" && sleep 60
  cleanup:
    needs: work
    if: \${{ always() }}
    runs-on: local
    steps:
      - run: |
          echo $$ > "${dir}/cleanup-pid"
          touch "${dir}/cleanup-started"
          sleep 60
          touch "${dir}/cleanup-finished"
`,
    );
    const started = Date.now();
    const cli = startCli(['run', file, '--json']);
    await until(() => isFile(join(dir, 'work-started')), 20_000);
    cli.child.kill('SIGINT');
    await until(() => isFile(join(dir, 'cleanup-started')), 20_000);
    expect(cli.stderr()).toContain('cancelling... press Ctrl-C again to force');
    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect(r.code).toBe(130);
    expect(Date.now() - started).toBeLessThan(40_000);
    expect(r.stderr).toContain('forcing: aborting cleanup jobs');
    expect(isFile(join(dir, 'cleanup-finished'))).toBe(false);
    const report = JSON.parse(r.stdout);
    expect(report.run.status).toBe('cancelled');
    expect(report.run.cancel).toMatchObject({ by: 'cli', force: true });
    expect(report.jobs.find((j: { id: string }) => j.id === 'cleanup').status).toBe('cancelled');
    const pid = pidsIn(join(dir, 'cleanup-pid'))[0] as number;
    pidsToCheck.push(pid);
    expect(alive(pid)).toBe(false);
  });
});

describe('Ctrl-C, harder cases', () => {
  it('a second SIGINT kills a step that ignores SIGTERM at once, not after its kill-grace', async () => {
    const dir = join(tmp.dir, 'stubborn');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    const file = tmp.file(
      'stubborn.yml',
      `jobs:
  work:
    runs-on: local
    kill-grace: 120
    steps:
      - run: |
          trap '' TERM
          echo $$ > "${dir}/work-pid"
          sleep 600 & wait
`,
    );
    const cli = startCli(['run', file]);
    await until(() => isFile(join(dir, 'work-pid')), 20_000);
    cli.child.kill('SIGINT');
    await until(() => cli.stdout().includes('cancelling...'), 10_000);
    const forcedAt = Date.now();
    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect(r.code).toBe(130);
    // Far below the 120 s grace the step asked for.
    expect(Date.now() - forcedAt).toBeLessThan(30_000);
    const pid = pidsIn(join(dir, 'work-pid'))[0] as number;
    pidsToCheck.push(pid);
    expect(alive(pid)).toBe(false);
  });

  it('SIGINT while a Docker engine that does not answer is being pinged ends with 130 at once', async () => {
    const { createServer } = await import('node:net');
    // Accepts connections and never answers: the ping waits its full timeout.
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const file = tmp.file(
        'boxed.yml',
        'jobs:\n  a:\n    runs-on: local\n    container: pipewright-test/busybox:latest\n    steps: [{run: "true"}]\n',
      );
      const cli = startCli(['run', file, '--json'], { env: { DOCKER_HOST: `tcp://127.0.0.1:${port}` } });
      await new Promise((r) => setTimeout(r, 1000));
      const at = Date.now();
      cli.child.kill('SIGINT');
      const r = await cli.done;
      expect(r.code).toBe(130);
      expect(Date.now() - at).toBeLessThan(3000);
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'CANCELLED' } });
    } finally {
      silent.close();
    }
  });

  it('SIGINT while the store is still connecting ends with 130 and, under --json, one error document', async () => {
    const file = tmp.file('early.yml', 'jobs:\n  a:\n    runs-on: local\n    steps: [{run: "true"}]\n');
    // Nothing listens on port 1: the store keeps retrying for seconds, so the signal lands during set-up.
    const cli = startCli(['run', file, '--store', 'redis://127.0.0.1:1/0', '--json']);
    await new Promise((r) => setTimeout(r, 1500));
    cli.child.kill('SIGINT');
    const r = await cli.done;
    expect(r.code).toBe(130);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'CANCELLED', exitCode: 130 } });
    expect(r.stderr).toMatch(/interrupted before the run started/);
  });
});

describe('retries', () => {
  it('each job attempt is recorded separately, with its own timestamps and reason', async () => {
    const count = join(tmp.dir, 'retry-count');
    const file = tmp.file(
      'retry.yml',
      `jobs:
  flaky:
    runs-on: local
    retry:
      max-attempts: 3
      on: [failure]
      backoff: { delay: 300ms, factor: 1, jitter: none }
    steps:
      - run: |
          n=$(cat "${count}" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "${count}"
          echo "attempt $n in $PWD"
          [ "$n" -ge 3 ]
`,
    );
    const r = await runCli(['run', file, '--json']);
    expect(r.code).toBe(0);
    const job = JSON.parse(r.stdout).jobs[0];
    expect(job.status).toBe('succeeded');
    expect(
      job.attempts.map((a: { number: number; status: string; reason: string | null }) => [
        a.number,
        a.status,
        a.reason,
      ]),
    ).toEqual([
      [1, 'failed', 'exit_code'],
      [2, 'failed', 'exit_code'],
      [3, 'succeeded', null],
    ]);
    const times = job.attempts.map((a: { startedAt: string; finishedAt: string }) => [
      Date.parse(a.startedAt),
      Date.parse(a.finishedAt),
    ]);
    for (let i = 0; i < times.length; i++) {
      const [s, f] = times[i];
      expect(f).toBeGreaterThanOrEqual(s);
      if (i > 0) expect(s - times[i - 1][1]).toBeGreaterThanOrEqual(250); // the backoff delay between attempts
    }
    expect(job.attempts[0].exitCode).toBe(1);
    expect(r.stderr).toMatch(/flaky: attempt 1 failed \(exit_code\); retrying in/);
    expect(r.stderr).toMatch(/flaky: started attempt 3/);
  });
});

describe('outputs', () => {
  it('flow from a step to its job outputs and into a dependent job', async () => {
    const got = join(tmp.dir, 'consumer-got');
    const file = tmp.file(
      'outputs.yml',
      `jobs:
  produce:
    runs-on: local
    outputs:
      version: \${{ steps.v.outputs.version }}
      notes: \${{ steps.v.outputs.notes }}
    steps:
      - id: v
        run: |
          echo "version=2.0.$((3 * 7))" >> "$GITHUB_OUTPUT"
          {
            echo "notes<<EOF"
            echo "line one"
            echo "line two"
            echo "EOF"
          } >> "$GITHUB_OUTPUT"
  consume:
    needs: produce
    runs-on: local
    steps:
      - env:
          NOTES: \${{ needs.produce.outputs.notes }}
        run: |
          echo "v=\${{ needs.produce.outputs.version }}" > "${got}"
          echo "$NOTES" >> "${got}"
`,
    );
    const r = await runCli(['run', file, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.jobs.find((j: { id: string }) => j.id === 'produce').outputs).toEqual({
      version: '2.0.21',
      notes: 'line one\nline two',
    });
    expect(readFileSync(got, 'utf8')).toBe('v=2.0.21\nline one\nline two\n');
  });
});

describe('the github context and the variables GitHub sets', () => {
  const RUNNER_OS = process.platform === 'darwin' ? 'macOS' : process.platform === 'win32' ? 'Windows' : 'Linux';
  const ARCH = ({ ia32: 'X86', x64: 'X64', arm: 'ARM', arm64: 'ARM64' } as Record<string, string>)[process.arch];
  it('github.event.inputs, github.job and GITHUB_* variables are there as on a workflow_dispatch run', async () => {
    const got = join(tmp.dir, 'ctx-got');
    const file = tmp.file(
      'ctx.yml',
      `name: ctx
on:
  workflow_dispatch:
    inputs:
      q: { type: string }
      n: { type: number, default: 3 }
jobs:
  probe:
    runs-on: local
    steps:
      - run: |
          echo "event.inputs=\${{ github.event.inputs.q }},\${{ github.event.inputs.n }} inputs=\${{ inputs.n }} job=\${{ github.job }} name=\${{ github.event_name }}" > "${got}"
          echo "env=$GITHUB_JOB,$GITHUB_EVENT_NAME,$GITHUB_WORKFLOW,$GITHUB_RUN_ATTEMPT,$RUNNER_OS" >> "${got}"
          echo "run=$GITHUB_RUN_ID" >> "${got}"
          echo "arch=\${{ runner.arch }},$RUNNER_ARCH,\${{ runner.os }}" >> "${got}"
`,
    );
    const r = await runCli(['run', file, '--json', '--input', 'q=hello']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(readFileSync(got, 'utf8')).toBe(
      `event.inputs=hello,3 inputs=3 job=probe name=workflow_dispatch\nenv=probe,workflow_dispatch,ctx,1,${RUNNER_OS}\nrun=${report.run.id}\narch=${ARCH},${ARCH},${RUNNER_OS}\n`,
    );
  });
});
