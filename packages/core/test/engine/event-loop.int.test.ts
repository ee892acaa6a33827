import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/*
 * The engine's clock timers are unref'd, so while a job waits out a retry backoff
 * nothing else holds an embedding program's event loop: `await run.wait()` at the
 * top level used to end the process with code 13 (unsettled top-level await).
 * These tests run real Node processes against the built packages, as a user would.
 */

const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
let dir = '';

beforeAll(async () => {
  try {
    execFileSync('npx', ['tsc', '-b', 'packages/core', 'packages/executors', 'packages/storage-adapters'], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  } catch {
    // Another package's in-progress error does not stop the emit of these three.
  }
  // Under examples/ so that @pipewright/* resolve from the workspace's node_modules.
  dir = await mkdtemp(join(ROOT, 'examples', '.event-loop-'));
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const PIPELINE = `
jobs:
  a:
    runs-on: x
    retry: { max-attempts: 2, on: [failure], backoff: { delay: 2s, jitter: none } }
    steps: [{ run: exit 1 }]
`;

async function script(name: string, body: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(
    file,
    `import { Engine } from '@pipewright/core';
import { ProcessExecutor } from '@pipewright/executors/process';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
const engine = new Engine({ store: new MemoryStore(), logs: new MemoryLogStore(), executors: [new ProcessExecutor()] });
const started = Date.now();
${body}
`,
  );
  return file;
}

async function runNode(file: string): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((res) => child.on('close', res));
  clearTimeout(killer);
  return { code, out, err, ms: Date.now() - t0 };
}

describe('4.3 retry: the engine holds the event loop while runs are active', () => {
  it('await run.wait() survives a retry backoff with nothing else pending, then close() lets the process exit', async () => {
    const file = await script(
      'wait-and-close.mjs',
      `const run = await engine.submit(${JSON.stringify(PIPELINE)});
const report = await run.wait();
console.log('final', report.run.status, report.jobs[0].attempts.length, Date.now() - started >= 2000);
await engine.close();`,
    );
    const r = await runNode(file);
    expect(r.err).toBe('');
    expect(r.out).toBe('final failed 2 true\n');
    expect(r.code).toBe(0);
  }, 70_000);

  it('releases the hold once the engine is idle: a program that never calls close() still exits', async () => {
    const file = await script(
      'wait-no-close.mjs',
      `const run = await engine.submit(${JSON.stringify(PIPELINE)});
const report = await run.wait();
console.log('final', report.run.status);`,
    );
    const r = await runNode(file);
    expect(r.err).toBe('');
    expect(r.out).toBe('final failed\n');
    expect(r.code).toBe(0);
    // Exits right after the run, not after some long-lived timer.
    expect(r.ms).toBeLessThan(30_000);
  }, 70_000);
});
