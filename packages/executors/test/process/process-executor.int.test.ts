// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are GitHub ${{ }} expressions, not JS templates
import { chown, lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { defaultWorkRoot, ProcessExecutor, ProcessWorkspace } from '@pipewright/executors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attemptOf, collectingContext, tempDir } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let root: { dir: string; cleanup: () => Promise<void> };
let executor: ProcessExecutor;
beforeEach(async () => {
  root = await tempDir('pw-proc-');
  executor = new ProcessExecutor({ workRoot: root.dir });
});
afterEach(async () => {
  await root.cleanup();
});

describe('ProcessExecutor', () => {
  it("the default work root is per user and private (0700); a link or another user's directory there is refused", async () => {
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = root.dir;
    try {
      const expected = join(root.dir, `pipewright-${process.getuid?.() ?? ''}`);
      expect(defaultWorkRoot()).toBe(expected);
      const { ctx } = collectingContext();
      const ok = await new ProcessExecutor({ workspacePool: 0 }).runJob(attemptOf([{ run: 'true' }]), ctx);
      expect(ok.status).toBe('succeeded');
      expect((await lstat(expected)).mode & 0o777).toBe(0o700);
      // Someone made it a link to a directory of theirs.
      await rm(expected, { recursive: true });
      await mkdir(join(root.dir, 'theirs'));
      await symlink(join(root.dir, 'theirs'), expected);
      const ex = new ProcessExecutor({ workspacePool: 0 });
      const linked = await ex.runJob(attemptOf([{ run: 'true' }]), collectingContext().ctx);
      expect(linked).toMatchObject({ status: 'failed', reason: 'infra' });
      expect(linked.message).toMatch(
        /is not a directory \(a link or file is in its place\); remove it, or set workRoot/,
      );
      expect(await readdir(join(root.dir, 'theirs'))).toEqual([]);
      // Not remembered: once the link is gone, the same executor makes its root again.
      await rm(expected);
      expect((await ex.runJob(attemptOf([{ run: 'true' }]), collectingContext().ctx)).status).toBe('succeeded');
      await rm(expected, { recursive: true, force: true });
      if (process.getuid?.() === 0) {
        await mkdir(expected, { mode: 0o777 });
        await chown(expected, 65534, 65534);
        const foreign = await new ProcessExecutor().runJob(attemptOf([{ run: 'true' }]), collectingContext().ctx);
        expect(foreign.message).toMatch(/belongs to another user \(uid 65534\)/);
      }
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it('reports exit codes: success, the failing step and its code', async () => {
    const { ctx } = collectingContext();
    const ok = await executor.runJob(attemptOf([{ run: 'true' }, { run: 'exit 0' }]), ctx);
    expect(ok).toMatchObject({ status: 'succeeded', workerId: `${hostname()}/process` });
    expect(executor.name).toBe('process');
    // Known up front, so the engine records it with the running attempt (DESIGN §4.8).
    expect(executor.workerId).toBe(ok.workerId);

    const bad = await executor.runJob(
      attemptOf([{ name: 'seven', run: 'echo before; exit 7' }, { run: 'echo never' }]),
      ctx,
    );
    expect(bad).toMatchObject({ status: 'failed', reason: 'exit_code', exitCode: 7 });
    expect(bad.steps.map((s) => [s.status, s.exitCode ?? null])).toEqual([
      ['failed', 7],
      ['skipped', null],
    ]);
    // bash -e: a failing command in the middle fails the step.
    const mid = await executor.runJob(attemptOf([{ run: 'false\necho not reached' }]), ctx);
    expect(mid).toMatchObject({ status: 'failed', exitCode: 1 });
  });

  it('layers env (pipeline < job < step) over the host env and sets the pipewright variables', async () => {
    const { ctx, text } = collectingContext({ secrets: { TOKEN: 'the-token' } });
    const out = await executor.runJob(
      attemptOf(
        [
          {
            run: 'echo "$A|$B|$C|$CI|$PIPEWRIGHT|${GITHUB_ACTIONS-unset}|$TOK|$PWD"; test -n "$PATH"; test "$GITHUB_WORKSPACE" = "$PWD"; test -d "$RUNNER_TEMP"',
            env: { C: 'step-c', TOK: '${{ secrets.TOKEN }}' },
          },
        ],
        { env: { B: 'job-b', C: 'job-c' } },
        { env: { A: 'pipe-a', B: 'pipe-b', C: 'pipe-c' } },
      ),
      ctx,
    );
    expect(out.status).toBe('succeeded');
    const [a, b, c, ci, pw, gha, tok] = text(0).trim().split('|');
    expect([a, b, c, ci, pw, gha, tok]).toEqual(['pipe-a', 'job-b', 'step-c', 'true', 'true', 'unset', 'the-token']);
  });

  it('passes outputs between steps and into job outputs, and GITHUB_ENV to later steps', async () => {
    const { ctx, text } = collectingContext();
    const out = await executor.runJob(
      attemptOf(
        [
          {
            id: 'gen',
            run: [
              'echo "version=1.2.3" >> "$GITHUB_OUTPUT"',
              'echo "via=pipewright" >> "$PIPEWRIGHT_OUTPUT"',
              '{ echo "notes<<EOF"; echo "line 1"; echo "line 2"; echo "EOF"; } >> "$GITHUB_OUTPUT"',
              'echo "FROM_ENV_FILE=hello" >> "$GITHUB_ENV"',
            ].join('\n'),
          },
          { run: 'echo "${{ steps.gen.outputs.version }} $FROM_ENV_FILE ${{ env.FROM_ENV_FILE }}"' },
        ],
        {
          outputs: {
            version: '${{ steps.gen.outputs.version }}',
            notes: '${{ steps.gen.outputs.notes }}',
            via: '${{ steps.gen.outputs.via }}',
          },
        },
      ),
      ctx,
    );
    expect(out.status).toBe('succeeded');
    expect(text(1).trim()).toBe('1.2.3 hello hello');
    expect(out.outputs).toEqual({ version: '1.2.3', notes: 'line 1\nline 2', via: 'pipewright' });
  });

  it('honours continue-on-error and step if: failure() / always()', async () => {
    const { ctx, text } = collectingContext();
    const out = await executor.runJob(
      attemptOf([
        { id: 'soft', run: 'exit 3', continueOnError: true },
        { run: 'echo after-soft ${{ steps.soft.outcome }} ${{ steps.soft.conclusion }}' },
        { run: 'exit 4' },
        { run: 'echo skipped-by-default' },
        { run: 'echo on-failure', if: 'failure()' },
        { run: 'echo always', if: '${{ always() }}' },
      ]),
      ctx,
    );
    expect(out).toMatchObject({ status: 'failed', exitCode: 4 });
    expect(text(1).trim()).toBe('after-soft failure success');
    expect(text(3)).toBe('');
    expect(text(4).trim()).toBe('on-failure');
    expect(text(5).trim()).toBe('always');
    expect(out.steps.map((s) => s.conclusion)).toEqual([
      'success',
      'success',
      'failure',
      'skipped',
      'success',
      'success',
    ]);
  });

  it('uses the shell templates: sh, python, a custom template, and working-directory', async () => {
    const { ctx, text } = collectingContext();
    const out = await executor.runJob(
      attemptOf([
        { run: 'mkdir -p sub/dir' },
        { run: 'echo "$0"; pwd', shell: 'sh', workingDirectory: 'sub/dir' },
        { run: 'import sys; print("py", sys.argv[0].endswith(".py"))', shell: 'python' },
        { run: 'echo custom "$1"', shell: 'bash {0} arg1' },
      ]),
      ctx,
    );
    expect(out.status).toBe('succeeded');
    expect(text(1)).toMatch(/\/sub\/dir\n$/);
    expect(text(2).trim()).toBe('py True');
    expect(text(3).trim()).toBe('custom arg1');
  });

  it('treats a shell that cannot start and a missing working-directory as infra failures', async () => {
    const { ctx } = collectingContext();
    const noShell = await executor.runJob(attemptOf([{ run: 'x', shell: 'no-such-shell-pw {0}' }]), ctx);
    expect(noShell).toMatchObject({ status: 'failed', reason: 'infra' });
    expect(noShell.message).toMatch(/could not start `no-such-shell-pw` \(ENOENT\): is it installed and on PATH\?/);
    const badCwd = await executor.runJob(attemptOf([{ run: 'true', workingDirectory: 'missing/dir' }]), ctx);
    expect(badCwd).toMatchObject({ status: 'failed', reason: 'infra' });
    expect(badCwd.message).toMatch(/working-directory `missing\/dir` does not exist/);
  });

  it('removes the workspace after the attempt unless keepWorkspace is set', async () => {
    const { ctx, text } = collectingContext();
    await executor.runJob(attemptOf([{ run: 'pwd; echo data > file.txt' }]), ctx);
    const used = text(0).trim();
    expect(used.startsWith(root.dir)).toBe(true);
    // Removal runs after the outcome is reported; close() waits for it.
    await executor.close();
    expect(await readdir(root.dir)).toEqual([]);

    const keeping = new ProcessExecutor({ workRoot: root.dir, keepWorkspace: true });
    const kept = collectingContext();
    await keeping.runJob(attemptOf([{ run: 'pwd; echo data > file.txt' }]), kept.ctx);
    const dir = kept.text(0).trim();
    expect(await readFile(join(dir, 'file.txt'), 'utf8')).toBe('data\n');
  });

  it('gives each attempt a fresh 0700 directory, with the file-command files existing and empty before each try', async () => {
    const { ctx, text } = collectingContext();
    // @actions/core's setOutput refuses a missing $GITHUB_OUTPUT, so the files must exist (as on GitHub),
    // empty, also on a retried try after the first try wrote to them.
    const check =
      'test -f "$GITHUB_OUTPUT"; test ! -s "$GITHUB_OUTPUT"; test -f "$GITHUB_ENV"; test ! -s "$GITHUB_ENV"; test -d "$RUNNER_TEMP"';
    const out = await executor.runJob(
      attemptOf([
        { run: `pwd; ${check}` },
        {
          id: 'flaky',
          run: `${check}; echo "try=$(cat "$RUNNER_TEMP/n" 2>/dev/null || echo 1)" >> "$GITHUB_OUTPUT"; echo X=1 >> "$GITHUB_ENV"; test -f "$RUNNER_TEMP/n" || { echo 2 > "$RUNNER_TEMP/n"; exit 3; }`,
          retry: {
            maxAttempts: 2,
            on: ['failure'],
            backoff: { delayMs: 0, factor: 1, maxDelayMs: 0, jitter: 'none' },
            differentWorker: false,
          },
        },
      ]),
      ctx,
    );
    expect(out.status).toBe('succeeded');
    expect(out.steps[1]?.outputs).toEqual({ try: '2' });
    const dir = text(0).trim();
    expect(dir.startsWith(root.dir)).toBe(true);
    const second = collectingContext();
    await executor.runJob(attemptOf([{ run: 'pwd' }]), second.ctx);
    expect(second.text(0).trim()).not.toBe(dir);
    const keeping = new ProcessExecutor({ workRoot: root.dir, keepWorkspace: true });
    const kept = collectingContext();
    await keeping.runJob(attemptOf([{ run: 'pwd' }]), kept.ctx);
    expect((await stat(kept.text(0).trim())).mode & 0o777).toBe(0o700);
  });

  it('runs a script as the program itself (`{0}` template) without ETXTBSY', async () => {
    const { ctx, text } = collectingContext();
    const runs = Array.from({ length: 10 }, (_, i) => ({ run: `#!/bin/sh\necho direct ${i}`, shell: '{0}' }));
    const out = await executor.runJob(attemptOf(runs), ctx);
    expect(out.status).toBe('succeeded');
    expect(text(9).trim()).toBe('direct 9');
  });

  it('creates the work root again when a tmp cleaner removed it', async () => {
    const gone = join(root.dir, 'removed', 'root');
    const ex = new ProcessExecutor({ workRoot: gone });
    await ex.runJob(attemptOf([{ run: 'true' }]), collectingContext().ctx);
    await ex.close();
    await rm(join(root.dir, 'removed'), { recursive: true });
    const again = await ex.runJob(attemptOf([{ run: 'echo ok > f' }]), collectingContext().ctx);
    expect(again.status).toBe('succeeded');
    await ex.close();
    expect(await readdir(gone)).toEqual([]);
  });

  it("reuses a finished attempt's directory only when it holds nothing but pipewright's files, emptied", async () => {
    const ex = new ProcessExecutor({ workRoot: root.dir, workspacePool: 1 });
    const exists = (p: string) =>
      stat(p).then(
        () => true,
        () => false,
      );
    const gone = async (dir: string) => {
      for (let i = 0; i < 300 && (await exists(dir)); i++) await sleep(10);
      return !(await exists(dir));
    };
    // A leaves only pipewright's files (two steps' worth, outputs and a secret-bearing script).
    const a = collectingContext();
    const outA = await ex.runJob(
      attemptOf([
        {
          run: 'echo "k=from-a" >> "$GITHUB_OUTPUT"; echo A=1 >> "$GITHUB_ENV"; pwd; echo a-temp > "$RUNNER_TEMP/t"; rm "$RUNNER_TEMP/t"',
        },
        { run: 'echo "second=a" >> "$GITHUB_OUTPUT" # a-script-text' },
      ]),
      a.ctx,
    );
    expect(outA.status).toBe('succeeded');
    const aDir = a.text(0).trim();
    // The recycling check runs after the outcome: wait until it has emptied A's files.
    for (let i = 0; i < 300 && (await exists(join(aDir, '.pipewright', 'step-1-output'))); i++) await sleep(10);
    await sleep(20);
    // B reuses A's directory and sees nothing of A: no step-1 files, empty step files, an empty tmp.
    const b = collectingContext();
    const outB = await ex.runJob(
      attemptOf([{ run: 'pwd; ls -A . .pipewright .pipewright/tmp; cat .pipewright/step-* .pipewright/script-1.sh' }]),
      b.ctx,
    );
    expect(outB.status).toBe('succeeded');
    expect(b.text(0).split('\n')[0]).toBe(aDir);
    expect(b.text(0)).not.toMatch(/from-a|A=1|second=a|a-script-text|step-1|script-2|a-temp/);
    expect(b.text(0)).toMatch(/script-1\.sh/);

    // Once B's script is emptied (its recycling ran), C gets the directory again, leaves a file
    // of its own, and the directory is removed, not pooled.
    const script = join(aDir, '.pipewright', 'script-1.sh');
    for (let i = 0; i < 300 && (await stat(script)).size > 0; i++) await sleep(10);
    await sleep(20);
    const c = collectingContext();
    await ex.runJob(attemptOf([{ run: 'pwd; echo x > left.txt' }]), c.ctx);
    expect(c.text(0).trim()).toBe(aDir);
    expect(await gone(aDir)).toBe(true);

    // D puts a symlink among pipewright's files: removed, not pooled, and its target untouched.
    const target = join(root.dir, 'outside.txt');
    await writeFile(target, 'keep me');
    const d = collectingContext();
    await ex.runJob(attemptOf([{ run: `pwd; ln -sf ${JSON.stringify(target)} .pipewright/step-0-output` }]), d.ctx);
    expect(await gone(d.text(0).trim())).toBe(true);
    expect(await readFile(target, 'utf8')).toBe('keep me');
    await rm(target);

    // close() removes the pooled directories too.
    await ex.close();
    expect(await readdir(root.dir)).toEqual([]);
  });

  it('with workspacePool: 0 every attempt gets a new directory', async () => {
    const ex = new ProcessExecutor({ workRoot: root.dir, workspacePool: 0 });
    const dirs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = collectingContext();
      await ex.runJob(attemptOf([{ run: 'pwd' }]), c.ctx);
      dirs.push(c.text(0).trim());
      await sleep(20);
    }
    expect(new Set(dirs).size).toBe(3);
    await ex.close();
    expect(await readdir(root.dir)).toEqual([]);
    expect(() => new ProcessExecutor({ workspacePool: -1 })).toThrow(
      /`workspacePool` to be a non-negative finite number/,
    );
  });

  it('validates its options with a message saying what was expected', () => {
    expect(() => new ProcessExecutor({ capacity: 0 })).toThrow(/`capacity` to be at least 1/);
    expect(() => new ProcessExecutor({ killGraceMs: -1 })).toThrow(
      /`killGraceMs` to be a non-negative finite number, got `-1`/,
    );
    expect(new ProcessExecutor({ capacity: 4 }).capacity).toBe(4);
    expect(new ProcessExecutor().capacity).toBe(Number.POSITIVE_INFINITY);
  });

  it('ProcessWorkspace.exec runs a script with the default shell and falls back to sh without bash', async () => {
    const dir = join(root.dir, 'ws');
    await mkdir(dir);
    const ws = new ProcessWorkspace(dir, { keep: true });
    const chunks: string[] = [];
    const io = { stdout: (c: Uint8Array) => void chunks.push(Buffer.from(c).toString()), stderr: () => {} };
    const signal = new AbortController().signal;
    // PATH without bash: /usr/bin holds both, so point PATH at a directory with only sh.
    const binDir = join(root.dir, 'bin');
    await mkdir(binDir);
    const { symlink } = await import('node:fs/promises');
    await symlink('/bin/sh', join(binDir, 'sh'));
    const res = await ws.exec(
      {
        script: 'echo "shell=$0 bash=${BASH_VERSION-none}"',
        shell: 'bash -e {0}',
        env: { PATH: binDir },
        signal,
        killGraceMs: 1000,
      },
      io,
    );
    expect(res).toEqual({ exitCode: 0, signal: null });
    expect(chunks.join('')).toMatch(/^shell=.*script-1\.sh bash=none\n$/);
  });
});
