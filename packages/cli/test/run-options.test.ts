import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { definePipeline } from '@pipewright/core';
import pc from 'picocolors';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exitCodeFor } from '../src/commands/run.js';
import { CliError } from '../src/run/errors.js';
import { formatElapsed, truncate } from '../src/run/format.js';
import { localTrigger, repositoryOf } from '../src/run/git-context.js';
import { stepLabel } from '../src/run/labels.js';
import { parseConcurrency, parseInputs, parseSecretNames, resolveRunOptions } from '../src/run/options.js';
import { colorEnabled, type JobRow, LiveView, type Output, PlainView } from '../src/run/progress.js';
import { EnvSecrets } from '../src/run/secrets.js';
import { createStores, storeScheme } from '../src/run/stores.js';

// The pure pieces of `pipewright run`; the command itself is covered by run*.int.test.ts.

describe('options', () => {
  it('parses --input pairs, keeping later `=` in the value', () => {
    expect(parseInputs(['a=1', 'b=x=y', 'c='])).toEqual({ a: '1', b: 'x=y', c: '' });
    expect(() => parseInputs(['a'])).toThrow(/NAME=VALUE, got `a`/);
    expect(() => parseInputs(['1a=x'])).toThrow(/not valid/);
    expect(() => parseInputs(['a=1', 'a=2'])).toThrow(/given twice/);
  });

  it('validates --concurrency as a positive integer', () => {
    expect(parseConcurrency(undefined)).toBe(8);
    expect(parseConcurrency('3')).toBe(3);
    for (const bad of ['0', '-1', '1.5', 'x', '', '1e3']) expect(() => parseConcurrency(bad)).toThrow(CliError);
  });

  it('checks secret names and drops repeats', () => {
    expect(parseSecretNames(['A', 'B_2', 'A'])).toEqual(['A', 'B_2']);
    expect(() => parseSecretNames(['A-B'])).toThrow(/environment variable/);
  });

  it('fills in defaults and rejects unknown executors', () => {
    expect(resolveRunOptions({})).toMatchObject({
      executor: 'process',
      store: 'memory',
      logStore: 'memory',
      concurrency: 8,
    });
    expect(() => resolveRunOptions({ executor: 'k8s' })).toThrow(/one of process, docker/);
  });
});

describe('stores', () => {
  it('knows the scheme of a URL', () => {
    expect(storeScheme('memory')).toBe('memory');
    expect(storeScheme('memory://')).toBe('memory');
    expect(storeScheme('Redis://h:1/0')).toBe('redis');
  });

  it('opens memory stores and names the supported ones for anything else (exit 2)', async () => {
    const s = await createStores('memory', 'memory://');
    expect(typeof s.store.createRun).toBe('function');
    await s.close();
    await expect(createStores('postgres://x', 'memory')).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/supported: memory, redis:\/\/HOST:PORT\/DB/),
    });
  });
});

describe('secrets', () => {
  it('reads values from the environment, removes them from it, and masks them', async () => {
    const env: NodeJS.ProcessEnv = { TOKEN: 'abc-123-secret', CERT: 'line-one\nline-two' };
    const s = new EnvSecrets(['TOKEN', 'CERT'], env);
    expect(env).toEqual({});
    expect(await s.resolve(['TOKEN', 'OTHER'])).toEqual({ TOKEN: 'abc-123-secret', OTHER: '' });
    expect(s.redact('x abc-123-secret y line-two')).toBe('x *** y ***');
  });

  it('matches secret names case-insensitively, as GitHub does; two names for one secret are refused', async () => {
    const s = new EnvSecrets(['MY_TOKEN'], { MY_TOKEN: 'abc-123-secret' });
    expect(await s.resolve(['my_token', 'My_Token', 'MY_TOKEN'])).toEqual({
      my_token: 'abc-123-secret',
      My_Token: 'abc-123-secret',
      MY_TOKEN: 'abc-123-secret',
    });
    expect(s.has('my_token')).toBe(true);
    expect(s.has('other')).toBe(false);
    expect(s.names).toEqual(['MY_TOKEN']);
    expect(() => new EnvSecrets(['tok', 'TOK'], { tok: 'aaaa', TOK: 'bbbb' })).toThrow(
      /--secret tok and --secret TOK name the same secret \(secret names are case-insensitive/,
    );
  });

  it('names a missing variable', () => {
    expect(() => new EnvSecrets(['NOPE_1', 'NOPE_2'], {})).toThrow(/\$NOPE_1, \$NOPE_2 not set/);
  });
});

describe('exit codes', () => {
  const report = (status: string, reason: string | null, jobs: Array<{ status: string; reason: string | null }> = []) =>
    ({ run: { status, reason }, jobs }) as unknown as Parameters<typeof exitCodeFor>[0];
  it('maps the report to 0/1/3/130', () => {
    expect(exitCodeFor(report('succeeded', null))).toBe(0);
    expect(exitCodeFor(report('failed', 'exit_code', [{ status: 'failed', reason: 'exit_code' }]))).toBe(1);
    expect(exitCodeFor(report('failed', 'timeout', [{ status: 'failed', reason: 'timeout' }]))).toBe(1);
    expect(
      exitCodeFor(
        report('failed', 'exit_code', [
          { status: 'failed', reason: 'exit_code' },
          { status: 'failed', reason: 'infra' },
        ]),
      ),
    ).toBe(3);
    expect(exitCodeFor(report('failed', 'lost', [{ status: 'failed', reason: 'lost' }]))).toBe(3);
    expect(exitCodeFor(report('failed', 'exit_code', []), true)).toBe(3);
    expect(exitCodeFor(report('cancelled', 'cancelled'))).toBe(130);
    expect(exitCodeFor(report('cancelled', 'timeout'))).toBe(1);
  });
});

describe('format', () => {
  it('formats elapsed times compactly', () => {
    expect(formatElapsed(42)).toBe('42ms');
    expect(formatElapsed(1234)).toBe('1.2s');
    expect(formatElapsed(125_000)).toBe('2m05s');
    expect(formatElapsed(3_720_000)).toBe('1h02m');
  });
  it('truncates by code points', () => {
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('ab', 4)).toBe('ab');
  });
});

describe('colour', () => {
  it('is on for a terminal unless NO_COLOR; FORCE_COLOR turns it on elsewhere', () => {
    expect(colorEnabled(true, {})).toBe(true);
    expect(colorEnabled(false, {})).toBe(false);
    expect(colorEnabled(true, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled(false, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorEnabled(false, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled(true, { TERM: 'dumb' })).toBe(false);
    expect(colorEnabled(false, { CI: 'true' })).toBe(false);
  });
});

function fakeOutput(isTTY: boolean, rows = 24): Output & { text: string } {
  const o = {
    text: '',
    isTTY,
    write(s: string) {
      o.text += s;
    },
    columns: () => 80,
    rows: () => rows,
  };
  return o;
}

describe('views', () => {
  afterEach(() => vi.useRealTimers());
  const plain = pc.createColors(false);

  it('PlainView writes one prefixed line per change, no escape codes', () => {
    const out = fakeOutput(false);
    const v = new PlainView(out, plain);
    const row: JobRow = { id: 'build', status: 'running', attempt: 1, startedAt: 0 };
    v.update(row, 'started', 0);
    Object.assign(row, { status: 'succeeded', finishedAt: 1200 });
    v.update(row, 'finished', 1200);
    v.log('build/compile | hi');
    expect(out.text).toMatch(
      /^\[\d\d:\d\d:\d\d\] build: started\n\[\d\d:\d\d:\d\d\] build: succeeded in 1\.2s\nbuild\/compile \| hi\n$/,
    );
    expect(out.text).not.toContain('\x1b');
  });

  it('LiveView redraws its block in place and prints logs above it', () => {
    vi.useFakeTimers();
    const out = fakeOutput(true);
    const rows: JobRow[] = [
      { id: 'a', status: 'pending', attempt: 0 },
      { id: 'b', status: 'pending', attempt: 0 },
    ];
    const v = new LiveView(out, plain, rows, 100, () => 5000);
    expect(out.text).toMatch(/· a +pending\n· b +pending\n/);
    Object.assign(rows[0] as JobRow, { status: 'running', attempt: 2, startedAt: 3000 });
    v.update(rows[0] as JobRow, 'started');
    v.log('a/x | line');
    vi.advanceTimersByTime(100);
    expect(out.text).toContain('\x1b[2F\x1b[0Ja/x | line\n');
    expect(out.text).toMatch(/a +running {2}attempt 2 {2}2\.0s/);
    v.stop();
    expect(out.text.endsWith('\x1b[?25h')).toBe(true);
  });

  it('LiveView keeps to the terminal height: active jobs first, the rest counted', () => {
    vi.useFakeTimers();
    const out = fakeOutput(true, 6);
    const rows: JobRow[] = Array.from({ length: 20 }, (_, i) => ({ id: `j${i}`, status: 'pending', attempt: 0 }));
    (rows[7] as JobRow).status = 'running';
    (rows[9] as JobRow).status = 'failed';
    new LiveView(out, plain, rows, 100, () => 0).stop();
    const lastFrame = out.text.split('\x1b[0J').pop() ?? out.text;
    const lines = lastFrame.replace('\x1b[?25h', '').trim().split('\n');
    expect(lines.length).toBeLessThanOrEqual(4);
    expect(lines[0]).toContain('j7');
    expect(lines[1]).toContain('j9');
    expect(lines[lines.length - 1]).toMatch(/… 18 pending/);
  });
});

describe('step labels', () => {
  it('label a step the way the step loop names it: its name, else `Run <first line>` / `Run <uses>`', () => {
    const spec = definePipeline({
      jobs: {
        a: {
          'runs-on': 'local',
          strategy: { matrix: { os: ['x'] } },
          steps: [
            { name: 'named', run: 'x' },
            { id: 'only-id', run: '\n  make all\n  make test' },
            { uses: 'acme/act@v1' },
          ],
        },
      },
    });
    expect([0, 1, 2, 3].map((i) => stepLabel(spec, 'a (x)', i))).toEqual([
      'named',
      'Run make all',
      'Run acme/act@v1',
      'step 4',
    ]);
  });
});

describe('the github context of a local run', () => {
  it('reads owner/name from the usual remote URL forms', () => {
    expect(repositoryOf('git@github.com:astral-sh/ruff.git')).toBe('astral-sh/ruff');
    expect(repositoryOf('https://github.com/nuxt/nuxt')).toBe('nuxt/nuxt');
    expect(repositoryOf('ssh://git@example.com:2222/org/app.git/')).toBe('org/app');
    expect(repositoryOf('https://user:s3cr3t@gitlab.com/group/sub/proj.git')).toBe('sub/proj');
    // Credentials never come out; one path segment or a local path is no owner/name.
    for (const url of [
      'https://user:s3cr3t@git.example.com/project.git',
      '/srv/git/project.git',
      'https://host:8443/r.git',
      '',
    ]) {
      expect(repositoryOf(url), url).toBeUndefined();
    }
  });

  it('takes sha, ref and repository from the git checkout, or from GITHUB_* when the CLI runs on GitHub', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-git-'));
    try {
      const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
      git('init', '-q', '-b', 'feature/x');
      git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'first');
      git('remote', 'add', 'origin', 'git@github.com:acme/widgets.git');
      const sha = git('rev-parse', 'HEAD');
      expect(await localTrigger(dir, {})).toEqual({
        sha,
        ref: 'refs/heads/feature/x',
        ref_name: 'feature/x',
        ref_type: 'branch',
        repository: 'acme/widgets',
        repository_owner: 'acme',
      });
      expect(
        await localTrigger(dir, { GITHUB_SHA: 'abc', GITHUB_REF: 'refs/tags/v1', GITHUB_REPOSITORY: 'o/r' }),
      ).toEqual({
        sha: 'abc',
        ref: 'refs/tags/v1',
        ref_name: 'v1',
        ref_type: 'tag',
        repository: 'o/r',
        repository_owner: 'o',
      });
      // Not a repository, or no current directory: nothing, and no failure.
      expect(await localTrigger(tmpdir(), {})).toEqual({});
      expect(await localTrigger(undefined, {})).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
