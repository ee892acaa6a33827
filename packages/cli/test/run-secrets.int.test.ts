import { randomBytes } from 'node:crypto';
import type { LogStore, StateStore } from '@pipewright/core';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunEnvironment, runCommand } from '../src/commands/run.js';
import { STORE_FACTORIES } from '../src/run/stores.js';
import { buildCli, ESCAPE, killStragglers, runCli, tempDir } from './run-helpers.js';

// No secret value may reach stdout, stderr, the report, the log store or the state store.

const tmp = tempDir('pw-run-secrets-');
const token = `tok-${randomBytes(8).toString('hex')}`;
const certLines = [`AAAA${randomBytes(6).toString('hex')}`, `BBBB${randomBytes(6).toString('hex')}`];
const cert = `-----BEGIN TEST-----\n${certLines.join('\n')}\n-----END TEST-----`;

const PIPELINE = `
jobs:
  leak:
    runs-on: local
    outputs:
      out: \${{ steps.s.outputs.tok }}
    steps:
      - id: s
        name: deploy with \${{ secrets.MY_TOKEN }}
        env:
          TOK: \${{ secrets.MY_TOKEN }}
          CERT: \${{ secrets.MY_CERT }}
        run: |
          echo "direct \${{ secrets.MY_TOKEN }}"
          echo "env $TOK"
          echo "inherited \${MY_TOKEN:-unset}"
          printf 'split %s' "\${TOK:0:9}"; sleep 0.2; printf '%s end\\n' "\${TOK:9}"
          echo "$CERT"
          echo "stderr $TOK" >&2
          echo "tok=$TOK" >> "$GITHUB_OUTPUT"
          exit 3
`;

const leaks = (text: string): string[] => [token, ...certLines].filter((v) => text.includes(v));

beforeAll(() => buildCli(), 120_000);
afterEach(() => killStragglers());
afterAll(() => tmp.dispose());

describe('secrets', () => {
  it('a ::add-mask:: on the last line without a newline, or on stderr, masks the value in the step itself and later', async () => {
    const file = tmp.file(
      'mask-tail.yml',
      'jobs:\n  a:\n    runs-on: local\n    steps:\n      - run: printf "::add-mask::hidden-tail-value"\n      - run: echo "::add-mask::stderr-masked-value" >&2\n      - run: echo "later hidden-tail-value stderr-masked-value"\n',
    );
    const r = await runCli(['run', file, '--logs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('| ::add-mask::***');
    expect(r.stdout).toContain('| later *** ***');
    // The log lines (after `|`); the first two steps' names spell the value out, as the file does.
    const logged = r.stdout
      .split('\n')
      .map((l) => l.split(' | ')[1] ?? '')
      .join('\n');
    expect(logged).not.toMatch(/hidden-tail-value|stderr-masked-value/);
  });

  it('match --secret names in any case, as on GitHub (secrets.my_token is --secret MY_TOKEN), masked', async () => {
    const file = tmp.file(
      'secrets-case.yml',
      'jobs:\n  a:\n    runs-on: local\n    steps:\n      - run: echo "lower=[${{ secrets.my_token }}] upper=[${{ secrets.MY_TOKEN }}] n=${#T}"\n        env: { T: "${{ secrets.My_Token }}" }\n',
    );
    const r = await runCli(['run', file, '--secret', 'MY_TOKEN', '--logs'], { env: { MY_TOKEN: token } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`| lower=[***] upper=[***] n=${token.length}`);
    expect(r.stderr).not.toMatch(/warning: the pipeline uses/);
    expect(leaks(r.stdout + r.stderr)).toEqual([]);
  });

  it('never appear in stdout, stderr, --logs or --json; *** stands in for them', async () => {
    const file = tmp.file('secrets.yml', PIPELINE);
    const r = await runCli(['run', file, '--secret', 'MY_TOKEN', '--secret', 'MY_CERT', '--logs', '--json'], {
      env: { MY_TOKEN: token, MY_CERT: cert },
    });
    expect(r.code).toBe(1);
    expect(leaks(r.stdout)).toEqual([]);
    expect(leaks(r.stderr)).toEqual([]);
    expect(r.stderr).toContain('| direct ***');
    expect(r.stderr).toContain('| env ***');
    expect(r.stderr).toContain('| split *** end');
    expect(r.stderr).toContain('| stderr ***');
    // The CLI takes --secret variables out of the environment steps inherit.
    expect(r.stderr).toContain('| inherited unset');
    const report = JSON.parse(r.stdout);
    expect(report.jobs[0].status).toBe('failed');
  });

  it('a secret too short to mask is named in a warning (never printed by the warning itself)', async () => {
    const file = tmp.file('short.yml', 'jobs:\n  a:\n    runs-on: local\n    steps: [{run: "true"}]\n');
    const r = await runCli(['run', file, '--secret', 'PIN', '--secret', 'MY_TOKEN'], {
      env: { PIN: 'q7', MY_TOKEN: token },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: --secret PIN: shorter than 3 characters, so it is not masked/);
    expect(r.stderr).not.toMatch(/MY_TOKEN: shorter/);
    expect(r.stderr).not.toContain('q7');
  });

  it('never appear in plain (non-JSON) output either', async () => {
    const file = tmp.file('secrets.yml', PIPELINE);
    const r = await runCli(['run', file, '--secret', 'MY_TOKEN', '--secret', 'MY_CERT', '--logs'], {
      env: { MY_TOKEN: token, MY_CERT: cert },
    });
    expect(r.code).toBe(1);
    expect(leaks(r.stdout + r.stderr)).toEqual([]);
    expect(r.stdout).not.toMatch(ESCAPE);
  });

  it('never reach the state store or the log store (the engine masks; the CLI redaction is only a second layer)', async () => {
    const state = new MemoryStore();
    const logs = new MemoryLogStore();
    STORE_FACTORIES['spy-test'] = {
      example: 'spy-test',
      state: async () => ({ store: state as StateStore, close: async () => {} }),
      logs: async () => ({ logs: logs as LogStore, close: async () => {} }),
    };
    const chunks: string[] = [];
    const sink = { write: (s: string) => chunks.push(String(s)) !== 0, isTTY: false } as unknown as NodeJS.WriteStream;
    const envr: RunEnvironment = {
      stdout: sink,
      stderr: sink,
      env: { MY_TOKEN: token, MY_CERT: cert },
      onInterrupt: () => () => {},
    };
    try {
      const file = tmp.file('secrets.yml', PIPELINE);
      const code = await runCommand(
        file,
        { secret: ['MY_TOKEN', 'MY_CERT'], store: 'spy-test', logStore: 'spy-test', logs: true, json: true },
        envr,
      );
      expect(code).toBe(1);
      const runs = await state.listRuns();
      expect(runs).toHaveLength(1);
      const run = runs[0] as (typeof runs)[number];
      const stored = JSON.stringify({ run, jobs: await state.getJobs(run.id) });
      expect(stored).toContain('"MY_TOKEN"'); // names are kept...
      expect(leaks(stored)).toEqual([]); // ...values never
      const lines = await logs.read(run.id);
      expect(lines.map((l) => l.text)).toContain('direct ***');
      expect(leaks(JSON.stringify(lines))).toEqual([]);
      expect(leaks(chunks.join(''))).toEqual([]);
      // The environment handed in lost the secret variables.
      expect(envr.env.MY_TOKEN).toBeUndefined();
    } finally {
      delete STORE_FACTORIES['spy-test'];
    }
  });
});
