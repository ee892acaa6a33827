import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../src/commands/run.js';
import { BIN, buildCli, ESCAPE, killStragglers, ROOT, runCli, startCli, tempDir } from './run-helpers.js';

// `pipewright run` as a user runs it: the built bin in a child process, real step processes.

const OK = `
name: ok
jobs:
  a:
    runs-on: local
    steps:
      - name: say
        run: echo "hello from a"
  b:
    needs: a
    runs-on: local
    steps:
      - run: echo "hello from b" >&2
`;

const FAILS = `
jobs:
  a:
    runs-on: local
    steps:
      - name: boom
        run: |
          echo "about to fail"
          exit 7
  after:
    needs: a
    runs-on: local
    steps:
      - run: echo never
`;

const tmp = tempDir('pw-run-');

beforeAll(() => buildCli(), 120_000);
afterEach(() => killStragglers());
afterAll(() => tmp.dispose());

describe('exit codes', () => {
  it('0 when the run succeeds, with a summary line', async () => {
    const r = await runCli(['run', tmp.file('ok.yml', OK)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/run succeeded in \S+: 2 succeeded, 0 failed, 0 skipped/);
  });

  it('1 when a step fails; the dependent is skipped and the failure explained', async () => {
    const r = await runCli(['run', tmp.file('fails.yml', FAILS)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/a failed \(exit_code\)/);
    expect(r.stdout).toMatch(/7/);
    expect(r.stdout).toMatch(/after: skipped/);
    expect(r.stdout).toMatch(/run failed in \S+: 0 succeeded, 1 failed, 1 skipped/);
  });

  it('2 for an invalid pipeline, with every error as file:line:col: message on stderr', async () => {
    const file = tmp.file(
      'invalid.yml',
      `jobs:
  a:
    runs-on: local
    needs: [nope]
    steps:
      - run: echo x
  b:
    runs-on: local
    stepz: []
`,
    );
    const r = await runCli(['run', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter((l) => l.startsWith(`${file}:`));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(/^.+invalid\.yml:\d+:\d+: /);
    expect(r.stderr).toContain('nope');
  });

  it('2 for a missing file', async () => {
    const r = await runCli(['run', `${tmp.dir}/does-not-exist.yml`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/does-not-exist\.yml:1:1: .*no such file/);
  });

  it.each([
    [['--concurrency', '0'], /--concurrency expects a positive integer, got `0`/],
    [['--concurrency', 'two'], /--concurrency expects a positive integer, got `two`/],
    [['--concurrency', '1.5'], /--concurrency expects a positive integer/],
    [['--input', 'novalue'], /--input expects NAME=VALUE, got `novalue`/],
    [['--input', '=x'], /--input expects NAME=VALUE/],
    [['--input', 'a=1', '--input', 'a=2'], /`a` is given twice/],
    [['--var', 'novalue'], /--var expects NAME=VALUE, got `novalue`/],
    [['--var', 'a=1', '--var', 'A=2'], /--var `A` is given twice/],
    [['--secret', 'PW_TEST_SURELY_UNSET'], /\$PW_TEST_SURELY_UNSET not set/],
    [['--secret', 'not a name'], /--secret expects the name of an environment variable/],
    [['--store', 'redis://127.0.0.1:notaport'], /--store `redis:\/\/127\.0\.0\.1:notaport` is not a valid URL/],
    [['--store', 'redis://:p%ZZ@127.0.0.1:6379/0'], /the password has a malformed %-escape; write a literal % as %25/],
    [['--log-store', 'redis://u%G:pw@127.0.0.1:6379/0'], /the user name has a malformed %-escape/],
    [['--log-store', 's3:///prefix'], /is not a valid bucket name/],
    [['--store', 'ftp://x'], /--store `ftp:\/\/x` has an unknown scheme `ftp:`; supported: memory, redis/],
    [['--executor', 'kubernetes'], /Allowed choices are process, docker/],
  ])('2 for bad usage: %j', async (args, message) => {
    const r = await runCli(['run', tmp.file('ok.yml', OK), ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('2 for an input the pipeline does not declare, or a required input not given', async () => {
    const file = tmp.file(
      'inputs.yml',
      `on:
  workflow_dispatch:
    inputs:
      version: { required: true }
      flavour: { default: plain }
jobs:
  a:
    runs-on: local
    steps:
      - run: echo "\${{ inputs.version }} \${{ inputs.flavour }}"
`,
    );
    const unknown = await runCli(['run', file, '--input', 'version=1', '--input', 'colour=red']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/`colour`: the pipeline declares no such input; declared: version, flavour/);
    const missing = await runCli(['run', file]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/input `version` is required; pass it with --input version=VALUE/);
  });

  it('keeps `=` inside --input values', async () => {
    const file = tmp.file(
      'eq.yml',
      `jobs:
  a:
    runs-on: local
    steps:
      - run: echo "got[\${{ inputs.query }}]"
`,
    );
    const r = await runCli(['run', file, '--input', 'query=a=b==c', '--logs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('got[a=b==c]');
  });

  it('3 when a step cannot even start (infrastructure), with the reason', async () => {
    const file = tmp.file(
      'infra.yml',
      `jobs:
  a:
    runs-on: local
    steps:
      - run: echo hi
        shell: /nonexistent/shell-xyz {0}
`,
    );
    const r = await runCli(['run', file]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/a failed \(infra\).*could not start `\/nonexistent\/shell-xyz`/);
  });

  it('3 when --executor docker cannot reach a Docker engine', async () => {
    const r = await runCli(['run', tmp.file('ok.yml', OK), '--executor', 'docker'], {
      env: { DOCKER_HOST: 'tcp://127.0.0.1:1' },
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /--executor docker: the Docker engine at \S+127\.0\.0\.1:1 does not answer \([^)]*ECONNREFUSED[^)]*\); start dockerd, or set DOCKER_HOST/,
    );
    // Said once, without the library's advice about options a CLI user cannot set.
    expect(r.stderr.match(/DOCKER_HOST/g)).toHaveLength(1);
    expect(r.stderr).not.toMatch(/`connection`|\.\./);
  });

  // DESIGN §2: `container:` jobs run in Docker, label jobs on this machine, with no flag needed.
  const dockerUp = spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;
  const MIXED = `jobs:
  boxed:
    runs-on: local
    container: pipewright-test/busybox:latest
    steps:
      - run: echo "in a container as $(id -u), hostname $(hostname)"
  local:
    runs-on: local
    needs: boxed
    steps:
      - run: echo "on the host"
`;
  it.skipIf(!dockerUp && !process.env.CI)(
    'runs container: jobs in Docker and the others as processes, without --executor',
    async () => {
      const r = await runCli(['run', tmp.file('mixed.yml', MIXED), '--logs', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/boxed\/Run echo .*\| in a container as 0, hostname [0-9a-f]{12}/);
      expect(r.stderr).toContain('| on the host');
      const report = JSON.parse(r.stdout);
      const exec = Object.fromEntries(
        report.jobs.map((j: { id: string; attempts: Array<{ executor: string }> }) => [j.id, j.attempts[0]?.executor]),
      );
      expect(exec).toEqual({ boxed: 'docker', local: 'process' });
    },
  );

  it.skipIf(!dockerUp && !process.env.CI)(
    "two CLI runs on one host leave each other's containers alone (one engine id per process)",
    async () => {
      const LONG = `jobs:
  boxed:
    runs-on: local
    container: pipewright-test/busybox:latest
    steps:
      - run: echo started && sleep 4 && echo finished
`;
      const first = startCli(['run', tmp.file('long.yml', LONG), '--logs']);
      // The first run's container is up once its step has printed.
      await first.waitFor((out) => out.includes('| started'), 60_000);
      const second = await runCli(['run', tmp.file('mixed2.yml', MIXED)]);
      expect(second.code, second.stderr).toBe(0);
      const r = await first.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).toContain('| finished');
    },
  );

  it('3 when a container: job needs Docker and no engine answers', async () => {
    const r = await runCli(['run', tmp.file('mixed-down.yml', MIXED)], { env: { DOCKER_HOST: 'tcp://127.0.0.1:1' } });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/the Docker engine at \S+127\.0\.0\.1:1 does not answer/);
    // It names what needs Docker, not a flag the user never gave.
    expect(r.stderr).toMatch(/job boxed runs in a container/);
    expect(r.stderr).not.toMatch(/--executor docker:/);
  });
});

describe('--json', () => {
  it('prints exactly one JSON document, the RunReport (DESIGN §8); progress goes to stderr', async () => {
    const r = await runCli(['run', tmp.file('fails.yml', FAILS), '--json', '--logs']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(Object.keys(report).sort()).toEqual(['jobs', 'run']);
    for (const k of ['id', 'status', 'reason', 'createdAt', 'startedAt', 'finishedAt'])
      expect(report.run).toHaveProperty(k);
    expect(report.run.status).toBe('failed');
    expect(report.run.reason).toBe('exit_code');
    expect(Date.parse(report.run.finishedAt)).toBeGreaterThanOrEqual(Date.parse(report.run.startedAt));
    const a = report.jobs.find((j: { id: string }) => j.id === 'a');
    for (const k of [
      'id',
      'job',
      'matrix',
      'status',
      'reason',
      'startedAt',
      'finishedAt',
      'outputs',
      'attempts',
      'steps',
    ]) {
      expect(a).toHaveProperty(k);
    }
    expect(a.status).toBe('failed');
    expect(a.attempts).toHaveLength(1);
    for (const k of ['number', 'workerId', 'status', 'reason', 'message', 'exitCode', 'startedAt', 'finishedAt']) {
      expect(a.attempts[0]).toHaveProperty(k);
    }
    expect(a.attempts[0].exitCode).toBe(7);
    expect(a.steps[0]).toMatchObject({
      name: 'boom',
      status: 'failed',
      outcome: 'failure',
      conclusion: 'failure',
      exitCode: 7,
    });
    for (const k of ['id', 'startedAt', 'finishedAt']) expect(a.steps[0]).toHaveProperty(k);
    expect(report.jobs.find((j: { id: string }) => j.id === 'after')).toMatchObject({
      status: 'skipped',
      reason: 'upstream',
    });
    // Everything human-readable went to stderr.
    expect(r.stderr).toContain('a/boom | about to fail');
    expect(r.stderr).toMatch(/run failed/);
  });

  it('on a usage error stdout still holds one JSON document (an error)', async () => {
    const r = await runCli(['run', tmp.file('ok.yml', OK), '--json', '--concurrency', '-3']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'USAGE', exitCode: 2 } });
  });

  it('for an invalid pipeline the JSON error carries the diagnostics', async () => {
    const r = await runCli([
      'run',
      tmp.file('bad.yml', 'jobs:\n  a:\n    runs-on: local\n    timeout-minutez: 3\n    steps: [{ run: echo }]\n'),
      '--json',
    ]);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout);
    expect(doc.error.code).toBe('PIPELINE_INVALID');
    expect(doc.error.diagnostics[0]).toMatchObject({
      line: 4,
      column: 5,
      severity: 'error',
      path: 'jobs.a.timeout-minutez',
    });
  });
});

describe('output modes', () => {
  it('a non-TTY run writes plain prefixed lines with no escape codes', async () => {
    const r = await runCli(['run', tmp.file('fails.yml', FAILS), '--logs']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).not.toMatch(ESCAPE);
    expect(r.stdout).toMatch(/^\[\d\d:\d\d:\d\d\] a: started$/m);
    expect(r.stdout).toMatch(/^\[\d\d:\d\d:\d\d\] a: failed \(exit_code\) after \S+$/m);
    expect(r.stdout).toMatch(/^a\/boom \| about to fail$/m);
  });

  it('a terminal gets the live view (cursor moves), a TERM=dumb terminal the plain lines', async () => {
    const file = tmp.file('ok.yml', OK);
    const onTerminal = async (env: NodeJS.ProcessEnv): Promise<string> => {
      let text = '';
      const tty = {
        write: (s: string) => {
          text += String(s);
          return true;
        },
        isTTY: true,
        columns: 100,
        rows: 30,
      } as unknown as NodeJS.WriteStream;
      const code = await runCommand(file, {}, { stdout: tty, stderr: tty, env, onInterrupt: () => () => {} });
      expect(code).toBe(0);
      return text;
    };
    const CURSOR_UP = /\u001b\[\d*F/;
    expect(await onTerminal({ TERM: 'xterm' })).toMatch(CURSOR_UP);
    const dumb = await onTerminal({ TERM: 'dumb' });
    expect(dumb).not.toMatch(ESCAPE);
    expect(dumb).toMatch(/^\[\d\d:\d\d:\d\d\] b: succeeded in \S+$/m);
  });

  it('FORCE_COLOR colours a non-TTY run, and NO_COLOR wins over it', async () => {
    const file = tmp.file('fails.yml', FAILS);
    const forced = await runCli(['run', file], { env: { FORCE_COLOR: '1' } });
    expect(forced.stdout).toMatch(ESCAPE);
    const none = await runCli(['run', file], { env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
    expect(none.stdout + none.stderr).not.toMatch(ESCAPE);
    expect(none.code).toBe(1);
  });

  it('--quiet prints only the summary (and failures)', async () => {
    const ok = await runCli(['run', tmp.file('ok.yml', OK), '--quiet']);
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim().split('\n')).toHaveLength(1);
    expect(ok.stdout).toMatch(/run succeeded/);
    const failed = await runCli(['run', tmp.file('fails.yml', FAILS), '--quiet']);
    expect(failed.stdout).not.toMatch(/started/);
    expect(failed.stdout).toMatch(/a failed \(exit_code\)/);
    expect(failed.stdout).toMatch(/run failed/);
  });

  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!hasScript && !process.env.CI)(
    'on a TTY: a live view redrawn in place; NO_COLOR drops colour, not the redraw',
    async () => {
      const file = tmp.file('ok.yml', OK);
      const tty = (env: Record<string, string>) =>
        spawnSync('script', ['-qec', `stty rows 40 cols 100; ${process.execPath} ${BIN} run ${file}`, '/dev/null'], {
          cwd: ROOT,
          env: { ...process.env, ...env, FORCE_COLOR: '' },
          encoding: 'utf8',
          timeout: 60_000,
        });
      const coloured = tty({ NO_COLOR: '' });
      expect(coloured.status).toBe(0);
      expect(coloured.stdout).toContain('\x1b[?25l'); // cursor hidden while drawing
      expect(coloured.stdout).toMatch(/\x1b\[\d+F\x1b\[0J/); // moved up and redrawn
      expect(coloured.stdout).toMatch(/\x1b\[32m/); // green
      expect(coloured.stdout).toContain('\x1b[?25h'); // cursor restored
      const plain = tty({ NO_COLOR: '1' });
      expect(plain.status).toBe(0);
      expect(plain.stdout).toMatch(/\x1b\[\d+F\x1b\[0J/);
      expect(plain.stdout).not.toMatch(/\x1b\[\d+(;\d+)*m/);
      expect(plain.stdout).toMatch(/✓ b +succeeded in/);
    },
  );
});

describe('examples/hello', () => {
  it('`npx pipewright run examples/hello/pipeline.yml` exits 0 with readable output', async () => {
    const r = await runCli(['run', 'examples/hello/pipeline.yml']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/build \(linux, x64\): succeeded/);
    expect(r.stdout).toMatch(/cleanup: succeeded/);
    expect(r.stdout).toMatch(/run succeeded in \S+: 8 succeeded, 0 failed, 0 skipped/);
  });

  it('passes outputs to dependents and retries the flaky step in place', async () => {
    const r = await runCli(['run', 'examples/hello/pipeline.yml', '--json', '--logs']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.jobs.find((j: { id: string }) => j.id === 'prepare').outputs).toEqual({ version: '1.2.42' });
    expect(r.stderr).toContain('report/report | built v1.2.42 on 4 platforms');
    expect(r.stderr).toContain('flaky/sometimes fails | first try: failing on purpose');
    expect(r.stderr).toContain('flaky/sometimes fails | second try: fine');
  });

  it('honours the deprecated ::set-output command a dependent job reads (as in the corpus cpython workflow)', async () => {
    const file = tmp.file(
      'set-output.yml',
      `jobs:
  check:
    runs-on: local
    outputs: { run_tests: "\${{ steps.check.outputs.run_tests }}" }
    steps:
      - id: check
        run: echo "::set-output name=run_tests::true"
  test:
    runs-on: local
    needs: check
    if: needs.check.outputs.run_tests == 'true'
    steps: [{ run: echo tested }]
`,
    );
    const r = await runCli(['run', file, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const byId = Object.fromEntries(report.jobs.map((j: { id: string }) => [j.id, j]));
    expect(byId.check.outputs).toEqual({ run_tests: 'true' });
    expect(byId.test.status).toBe('succeeded');
  });

  it('--var sets the vars context (any case); a vars.NAME read but not given is warned about', async () => {
    const file = tmp.file(
      'vars.yml',
      'jobs:\n  a:\n    runs-on: local\n    if: vars.enabled == \'yes\'\n    steps:\n      - run: echo "region=[${{ vars.S3_REGION }}] other=[${{ vars.OTHER }}]"\n',
    );
    const r = await runCli(['run', file, '--var', 'ENABLED=yes', '--var', 's3_region=eu-west-1', '--logs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('| region=[eu-west-1] other=[]');
    expect(r.stderr).toContain(
      'warning: the pipeline uses vars.OTHER but no --var OTHER=... was given; it will be empty',
    );
  });

  it('warns, once per job, that a Windows or macOS runs-on runs on this host', async () => {
    const file = tmp.file(
      'os.yml',
      `jobs:
  t:
    strategy: { matrix: { os: [ubuntu-latest, windows-latest] } }
    runs-on: \${{ matrix.os }}
    steps: [{ run: "true" }]
  m: { runs-on: macos-14, steps: [{ run: "true" }] }
  u: { runs-on: ubuntu-latest, steps: [{ run: "true" }] }
`,
    );
    const r = await runCli(['run', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'warning: runs-on of t (windows-latest), m (macos-14) asks for another OS; pipewright runs every job on this host, so runner.os is Linux there',
    );
    expect((await runCli(['run', file, '--quiet'])).stderr).not.toContain('asks for another OS');
  });

  it('npx resolves the bin too', () => {
    const out = execFileSync('npx', ['--no-install', 'pipewright', 'run', 'examples/hello/pipeline.yml', '--quiet'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(out).toMatch(/run succeeded/);
  });
});
