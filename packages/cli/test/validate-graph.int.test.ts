import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, tempDir } from './run-helpers.js';

/*
 * The real command: `node packages/cli/bin/pipewright.js` over the built dist (run `npx tsc -b` first).
 */
const corpus = path.resolve(ROOT, '..', 'shared', 'corpus', 'gha');

function pipewright(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp?.dir, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let tmp: ReturnType<typeof tempDir> | undefined;
beforeAll(() => {
  if (!existsSync(path.join(ROOT, 'packages', 'cli', 'dist', 'main.js')))
    throw new Error('packages/cli/dist is missing: run `npx tsc -b` before the integration tests');
  tmp = tempDir('pw-validate-');
  const files: Record<string, string> = {
    'good.yml': `name: good
jobs:
  lint:
    steps: [{run: npm run lint}]
  build:
    needs: lint
    strategy:
      matrix:
        os: [ubuntu, macos]
        node: [18, 20]
        exclude: [{os: macos, node: 18}]
    steps:
      - uses: actions/checkout@v4
      - run: npm test
  dyn:
    needs: [build]
    strategy: {matrix: '\${{ fromJSON(needs.build.outputs.m) }}'}
    steps: [{run: echo}]
`,
    'cycle.yml': `jobs:
  a:
    needs: b
    steps: [{run: x}]
  b:
    needs: [c]
    steps: [{run: x}]
  c:
    needs: [a]
    steps: [{run: x}]
`,
    'broken.yml': `jobs:
  a:
    neds: b
    timeout: 5 minutes
    steps: 3
  b:
    needs: [a, zz]
    steps:
      - id: s
        run: echo \${{ matrix. }}
      - id: s
        run: echo
`,
  };
  for (const [name, text] of Object.entries(files)) tmp.file(name, text);
});
afterAll(() => {
  tmp?.dispose();
});

describe('pipewright validate', () => {
  it('exits 0 for a valid file, warnings on stderr', () => {
    const r = pipewright('validate', 'good.yml');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'good.yml:13:15: warning: action `actions/checkout@v4` is not registered; the step will fail at run time unless the engine registers it (engine.registerAction) (at jobs.build.steps[0].uses)\n' +
        'good.yml: valid (1 warning)\n',
    );
    expect(r.stdout).toBe('');
  });

  it('exits 2 with file:line:col: message for each error', () => {
    const r = pipewright('validate', 'broken.yml', 'cycle.yml');
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      'broken.yml:3:5: unknown key `neds` in a job; did you mean `needs`? (at jobs.a.neds)',
      'broken.yml:4:14: expected a duration such as `90s`, `5m` or `1h30m`, got `"5 minutes"` (string) (at jobs.a.timeout)',
      'broken.yml:5:12: expected a list of steps, got `3` (number) (at jobs.a.steps)',
      'broken.yml:7:16: job `b` needs unknown job `zz` (jobs: a, b) (at jobs.b.needs[1])',
      "broken.yml:10:30: invalid expression: Unexpected symbol: 'EOF' (at jobs.b.steps[0].run)",
      'broken.yml:11:13: duplicate step id `s` (also used by step 1 of job `b`) (at jobs.b.steps[1].id)',
      'cycle.yml:3:12: dependency cycle: a -> b -> c -> a (at jobs.a.needs)',
    ]);
  });

  it('exits 2 when any one of several files is invalid, and for a missing file', () => {
    expect(pipewright('validate', 'good.yml', 'cycle.yml').code).toBe(2);
    const r = pipewright('validate', 'nope.yml');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('nope.yml:1:1: cannot read pipeline: no such file\n');
  });

  it('reads `-` from standard input, and refuses a file over 4 MiB before reading it (/dev/zero ends)', () => {
    const fromStdin = spawnSync(process.execPath, [BIN, 'validate', '-'], {
      input: 'jobs:\n  a:\n    runs-on: x\n    steps: [{ run: echo }]\n',
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(fromStdin.status).toBe(0);
    const zero = pipewright('validate', '/dev/zero');
    expect(zero.code).toBe(2);
    expect(zero.stderr).toBe(
      '/dev/zero:1:1: cannot read pipeline: it is over 4 MiB, the most a pipeline may be; split it\n',
    );
    expect(pipewright('validate', '.').stderr).toBe('.:1:1: cannot read pipeline: is a directory\n');
  });

  it('--json prints every file with its errors and warnings on stdout', () => {
    const r = pipewright('validate', '--json', 'good.yml', 'cycle.yml');
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(false);
    expect(out.files.map((f: { file: string; valid: boolean }) => [f.file, f.valid])).toEqual([
      ['good.yml', true],
      ['cycle.yml', false],
    ]);
    expect(out.files[0].warnings).toHaveLength(1);
    expect(out.files[1].errors[0]).toMatchObject({
      file: 'cycle.yml',
      line: 3,
      column: 12,
      path: 'jobs.a.needs',
      severity: 'error',
      message: 'dependency cycle: a -> b -> c -> a',
    });
    expect(JSON.parse(pipewright('validate', '--json', 'good.yml').stdout).valid).toBe(true);
  });

  it('exits 2 on a usage error', () => {
    expect(pipewright('validate').code).toBe(2);
  });
});

describe('pipewright graph', () => {
  it('json: one entry per static matrix instance, needs as base job ids, dynamic marked', () => {
    const r = pipewright('graph', 'good.yml');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      jobs: [
        { id: 'lint', job: 'lint', matrix: {}, needs: [], dynamic: false },
        { id: 'build (ubuntu, 18)', job: 'build', matrix: { os: 'ubuntu', node: 18 }, needs: ['lint'], dynamic: false },
        { id: 'build (ubuntu, 20)', job: 'build', matrix: { os: 'ubuntu', node: 20 }, needs: ['lint'], dynamic: false },
        { id: 'build (macos, 20)', job: 'build', matrix: { os: 'macos', node: 20 }, needs: ['lint'], dynamic: false },
        { id: 'dyn', job: 'dyn', matrix: {}, needs: ['build'], dynamic: true },
      ],
    });
    expect(pipewright('graph', 'good.yml', '--format', 'json').stdout).toBe(r.stdout);
  });

  it('mermaid and dot draw an edge from every instance of a need', () => {
    const mermaid = pipewright('graph', 'good.yml', '--format', 'mermaid');
    expect(mermaid.code).toBe(0);
    expect(mermaid.stdout.split('\n')[0]).toBe('flowchart LR');
    expect(mermaid.stdout).toContain('j4["dyn (dynamic matrix)"]');
    expect(mermaid.stdout.match(/ --> /g)).toHaveLength(6);
    const dot = pipewright('graph', 'good.yml', '--format', 'dot');
    expect(dot.code).toBe(0);
    expect(dot.stdout).toMatch(/^digraph pipeline \{/);
    expect(dot.stdout).toContain('"lint" -> "build (macos, 20)";');
    expect(dot.stdout).toContain('"build (macos, 20)" -> "dyn";');
    expect(dot.stdout).toContain('"dyn" [style=dashed];');
  });

  it('exits 2 with the errors for an invalid pipeline or format', () => {
    const r = pipewright('graph', 'cycle.yml');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('cycle.yml:3:12: dependency cycle: a -> b -> c -> a (at jobs.a.needs)\n');
    expect(pipewright('graph', 'good.yml', '--format', 'svg').code).toBe(2);
  });

  it.skipIf(!existsSync(corpus))('graphs every corpus workflow', () => {
    const files = readdirSync(corpus).filter((f) => /\.ya?ml$/.test(f));
    expect(files.length).toBeGreaterThanOrEqual(40);
    const v = pipewright('validate', ...files.map((f) => path.join(corpus, f)));
    expect(
      v.code,
      v.stderr
        .split('\n')
        .filter((l) => !/warning|valid/.test(l))
        .join('\n'),
    ).toBe(0);
    const r = pipewright('graph', path.join(corpus, 'BurntSushi__ripgrep__ci.yml'));
    expect(r.code).toBe(0);
    const { jobs } = JSON.parse(r.stdout) as { jobs: Array<{ job: string }> };
    // 5 jobs, one with an 18-instance include-only matrix.
    expect(jobs).toHaveLength(4 + 18);
  });

  it('validate --json piped into a reader that stops early (`| head -c 1`) ends without an EPIPE crash', () => {
    // Enough output (~400 KB) that writes go on after the reader has gone.
    const many = Array.from({ length: 3000 }, () => path.join(tmp?.dir as string, 'good.yml'));
    const args = [BIN, 'validate', ...many, '--json'].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('sh', ['-c', `'${process.execPath}' ${args} | head -c 1 >/dev/null`], {
      cwd: tmp?.dir,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).not.toMatch(/EPIPE|internal error|Unhandled/);
    expect(r.status).toBe(0);
  });
});
