import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProcessExecutor } from '@pipewright/executors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attemptOf, collectingContext, tempDir } from './helpers.js';

let root: { dir: string; cleanup: () => Promise<void> };
let marks: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  root = await tempDir('pw-out-');
  marks = await tempDir('pw-marks-');
});
afterEach(async () => {
  await root.cleanup();
  await marks.cleanup();
});

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

describe('ProcessExecutor: output', () => {
  it('delivers 100k lines of stdout complete and in order, stderr separately', async () => {
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx, text } = collectingContext();
    const out = await executor.runJob(attemptOf([{ run: 'seq 1 100000; echo to-stderr >&2' }]), ctx);
    expect(out.message ?? out.status).toBe('succeeded');
    const lines = text(0).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(100_000);
    expect(lines.every((l, i) => l === String(i + 1))).toBe(true);
    expect(text(0, 'stderr')).toBe('to-stderr\n');
  });

  it('a slow ctx.output pauses the child instead of buffering its output', async () => {
    const done = join(marks.dir, 'done');
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const total = 32 * 1024 * 1024;
    let received = 0;
    let slow = true;
    let maxAhead = 0;
    const { ctx } = collectingContext({
      output: async (_stream, _step, chunk) => {
        received += chunk.byteLength;
        if (slow) await new Promise((r) => setTimeout(r, 20));
      },
    });
    const run = executor.runJob(attemptOf([{ run: `head -c ${total} /dev/zero\ntouch '${done}'` }]), ctx);
    // For ~1.5 s the consumer takes at most ~75 chunks (a few MB); the child must still be blocked on the pipe.
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      maxAhead = Math.max(maxAhead, received);
      expect(await exists(done)).toBe(false);
    }
    expect(received).toBeLessThan(total / 2);
    slow = false;
    const out = await run;
    expect(out.message ?? out.status).toBe('succeeded');
    expect(received).toBe(total);
    expect(await exists(done)).toBe(true);
    expect(maxAhead).toBeGreaterThan(0);
  });

  it('does not hang on a pipe held open by a process that left the step group', async () => {
    const executor = new ProcessExecutor({ workRoot: root.dir });
    const { ctx, text } = collectingContext();
    const pidFile = join(marks.dir, 'escaped');
    const t0 = Date.now();
    try {
      const out = await executor.runJob(
        attemptOf([{ run: `setsid sh -c 'echo $$ > "${pidFile}"; exec sleep 30' &\necho main-done` }]),
        ctx,
      );
      expect(out.message ?? out.status).toBe('succeeded');
      expect(text(0)).toContain('main-done');
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      // This one escaped the group on purpose (setsid), so the test kills it itself.
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
  });
});
