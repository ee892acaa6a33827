import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessExecutor } from '@pipewright/executors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchRemover } from '../../src/process/remover.js';
import { attemptOf, collectingContext, tempDir } from './helpers.js';

let root: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  root = await tempDir('pw-removal-');
});
afterEach(async () => {
  await root.cleanup();
});

describe('workspace removal off the critical path', () => {
  it('close() waits until the workspaces of 100 concurrent attempts are gone', async () => {
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        executor.runJob(
          attemptOf(
            [{ run: 'mkdir -p a/b && echo x > a/b/f && echo "k=v" >> "$GITHUB_OUTPUT"' }],
            {},
            { jobId: `j${i}` },
          ),
          collectingContext().ctx,
        ),
      ),
    );
    expect(outcomes.every((o) => o.status === 'succeeded')).toBe(true);
    await executor.close();
    expect(await readdir(root.dir)).toEqual([]);
  });

  it('BatchRemover removes more directories than one batch holds, and falls back when rm fails', async () => {
    const remover = new BatchRemover(4, 10);
    const dirs = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const dir = join(root.dir, `d${i}`);
        await mkdir(join(dir, 'sub'), { recursive: true });
        await writeFile(join(dir, 'sub', 'f'), 'x');
        return dir;
      }),
    );
    let fallbacks = 0;
    await Promise.all(dirs.map((d) => remover.remove(d, async () => void fallbacks++)));
    expect(await readdir(root.dir)).toEqual([]);
    expect(fallbacks).toBe(0);

    // A path rm refuses (`.` as the last component) makes the batch fail: every directory gets its fallback.
    const odd = `${join(root.dir, 'x')}/.`;
    await mkdir(odd, { recursive: true });
    await remover.remove(odd, async () => void fallbacks++);
    expect(fallbacks).toBe(1);
  });

  it('a process that exits without close() still removes the workspaces in flight', () => {
    const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
    const core = fileURLToPath(new URL('../../../core/dist/index.js', import.meta.url));
    if (!existsSync(dist) || !existsSync(core)) throw new Error('build first: npx tsc -b');
    // Exits in the same tick as the attempt's outcome, before the batch's rm ever runs.
    const program = `
      import { readdirSync } from 'node:fs';
      const { ProcessExecutor } = await import(${JSON.stringify(dist)});
      const { DEFAULT_RETRY } = await import(${JSON.stringify(core)});
      const ex = new ProcessExecutor({ workRoot: ${JSON.stringify(root.dir)} });
      const job = { id: 'j', needs: [], runsOn: ['local'], timeoutMs: 60000, continueOnError: false, outputs: {}, env: {},
        defaults: {}, retry: DEFAULT_RETRY, killGraceMs: 1000, steps: [{ index: 0, run: 'echo hi > file', with: {}, env: {}, continueOnError: false }] };
      const o = await ex.runJob({ runId: 'r', jobId: 'j', jobKey: 'j', attempt: 1, job, matrix: {}, env: {}, defaults: {}, contexts: {} },
        { signal: new AbortController().signal, output() {}, secrets: {}, avoidWorkers: [], actions: new Map() });
      console.log(o.status, readdirSync(${JSON.stringify(root.dir)}).length);
      process.exit(0);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', program], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('succeeded 1');
    expect(spawnSync('ls', ['-A', root.dir], { encoding: 'utf8' }).stdout).toBe('');
  });
});
