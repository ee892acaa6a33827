import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// Runs the embedding example as a user would: plain Node against the built packages.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

beforeAll(() => {
  execFileSync('npx', ['tsc', '-b', 'packages/core', 'packages/executors', 'packages/storage-adapters'], {
    cwd: ROOT,
    stdio: 'pipe',
  });
}, 120_000);

describe('examples/embed', () => {
  it('submits a pipeline, prints events and masked logs, exits 0', async () => {
    const child = spawn(process.execPath, ['examples/embed/index.mjs'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      err += s;
    });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/^run \w+ started$/m);
    expect(out).toContain('greet: succeeded');
    expect(out).toContain('  shout | HELLO WORLD');
    expect(out).toContain('  greet | calling the API with ***');
    expect(out).not.toContain('s3cr3t-demo-token');
    expect(out).toContain('run succeeded; greet.outputs.who = world');
  });
});
