import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cancelReason, PipewrightError } from '@pipewright/core';
import { DockerExecutor } from '@pipewright/executors';
import Docker from 'dockerode';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  attempt,
  capture,
  container,
  containersOf,
  dockerAvailable,
  dockerProxy,
  engineId,
  job,
  removeContainersOf,
  step,
  TEST_IMAGE,
} from './helpers.js';

const available = await dockerAvailable();

describe.skipIf(!available)('DockerExecutor (real engine)', () => {
  const ids: string[] = [];
  /** An executor with its own engine label; afterEach checks it left nothing. */
  const executor = (extra: ConstructorParameters<typeof DockerExecutor>[0] = {}) => {
    const id = engineId();
    ids.push(id);
    return new DockerExecutor({ engineId: id, network: 'none', defaultImage: TEST_IMAGE, ...extra });
  };

  beforeAll(() => {
    expect(available).toBe(true);
  });

  afterEach(() => {
    for (const id of ids.splice(0)) {
      const left = containersOf(id);
      removeContainersOf(id);
      expect(left, `containers left by engine ${id}`).toEqual([]);
    }
  });

  it('runs two steps in one container that share the workspace', async () => {
    const ex = executor();
    const c = capture();
    const placed: string[] = [];
    c.ctx.placed = (w) => placed.push(w);
    const out = await ex.runJob(
      attempt(
        job(
          [
            step(
              0,
              'echo "hello from $(tr "\\0" " " < /proc/$$/cmdline)" > shared.txt; echo "v=42" >> "$GITHUB_OUTPUT"; hostname > host.txt',
              {
                id: 'first',
              },
            ),
            step(1, 'cat shared.txt; echo "pwd=$(pwd)"; test "$(hostname)" = "$(cat host.txt)" && echo same-container'),
          ],
          { container: container(), outputs: { v: '${{ steps.first.outputs.v }}' } },
        ),
      ),
      c.ctx,
    );
    expect(out.status).toBe('succeeded');
    expect(out.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
    expect(out.outputs).toEqual({ v: '42' });
    expect(out.workerId).toMatch(/^[0-9a-f]{12}$/);
    // Reported while the attempt ran, before its outcome (DESIGN §4.8).
    expect(placed).toEqual([out.workerId]);
    // busybox has no bash: the default template falls back to `sh -e`.
    expect(c.text(1)).toMatch(/hello from sh -e \/__w\/workspace\/\S+\.sh/);
    expect(c.text(1)).toContain('pwd=/__w/workspace');
    expect(c.text(1)).toContain('same-container');
  });

  it('reports exit codes, stderr, `sh -e` semantics and an explicit bash that the image lacks', async () => {
    const ex = executor();
    const c = capture();
    const out = await ex.runJob(
      attempt(
        job(
          [
            step(0, 'echo to-stderr >&2; false; echo not-reached', { continueOnError: true }),
            step(1, 'exit 3', { continueOnError: true }),
            step(2, 'echo hi', { shell: 'bash', continueOnError: true }),
            step(3, 'exit 7'),
            step(4, 'echo never'),
          ],
          { container: container() },
        ),
      ),
      c.ctx,
    );
    expect(out.status).toBe('failed');
    expect(out.reason).toBe('exit_code');
    expect(out.exitCode).toBe(7);
    expect(out.steps.map((s) => [s.outcome, s.exitCode ?? null])).toEqual([
      ['failure', 1],
      ['failure', 3],
      ['failure', 127],
      ['failure', 7],
      ['skipped', null],
    ]);
    expect(c.text(0, 'stderr')).toBe('to-stderr\n');
    expect(c.text(0)).not.toContain('not-reached');
  });

  it('uses bash for the default shell once the image has one', async () => {
    const ex = executor();
    const c = capture();
    const out = await ex.runJob(
      attempt(
        job(
          [
            // A stand-in bash that marks the environment, so we can see which shell ran the next step.
            step(0, 'printf \'#!/bin/sh\\nexport VIA_BASH="$*"\\nexec sh "$@"\\n\' > /bin/bash; chmod +x /bin/bash'),
            step(1, 'echo "via=$VIA_BASH"'),
          ],
          { container: container() },
        ),
      ),
      c.ctx,
    );
    expect(out.status).toBe('succeeded');
    expect(c.text(1)).toMatch(/^via=-e \/__w\/workspace\/\S+\.sh\n$/);
  });

  it('delivers 100,000 lines complete and in order through a slow consumer (backpressure)', async () => {
    const ex = executor();
    const c = capture({ slow: 1 });
    const out = await ex.runJob(attempt(job([step(0, 'seq 1 100000')], { container: container() })), c.ctx);
    expect(out.status).toBe('succeeded');
    const lines = c.text(0).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.length).toBe(100_000);
    const bad = lines.findIndex((l, i) => l !== String(i + 1));
    expect(bad).toBe(-1);
  });

  it('kills a timed-out step (SIGTERM, then SIGKILL after kill-grace) and removes the container in time', async () => {
    const ex = executor();
    const c = capture();
    const killGraceMs = 1000;
    const t0 = Date.now();
    const out = await ex.runJob(
      attempt(
        job(
          [
            // Ignores SIGTERM, so only the SIGKILL after the grace ends it.
            step(0, "trap '' TERM; echo started; while :; do sleep 1; done", { timeoutMs: 500, killGraceMs }),
            step(1, 'echo after'),
          ],
          { container: container() },
        ),
      ),
      c.ctx,
    );
    const elapsed = Date.now() - t0;
    expect(out.status).toBe('failed');
    expect(out.reason).toBe('timeout');
    expect(out.steps[0]?.signal).toBe('SIGKILL');
    expect(c.text(0)).toContain('started');
    expect(out.steps[1]?.outcome).toBe('skipped');
    expect(elapsed).toBeLessThan(500 + killGraceMs + 2000 + 1500); // timeout + grace + 2 s (+ container start)
    expect(containersOf(ex.options.engineId)).toEqual([]);
  });

  it('stops a step that honours SIGTERM without waiting for the grace', async () => {
    const ex = executor();
    const c = capture();
    const t0 = Date.now();
    const out = await ex.runJob(
      attempt(job([step(0, 'sleep 30', { timeoutMs: 300, killGraceMs: 10_000 })], { container: container() })),
      c.ctx,
    );
    expect(out.reason).toBe('timeout');
    expect(out.steps[0]?.signal).toBe('SIGTERM');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('cancels a running job: kills the step and removes the container within kill-grace + 2 s', async () => {
    const ex = executor();
    const c = capture();
    const killGraceMs = 1000;
    const run = ex.runJob(
      attempt(
        job([step(0, "trap '' TERM; echo up; sleep 60 & wait; sleep 60")], {
          container: container(),
          killGraceMs,
        }),
      ),
      c.ctx,
    );
    // Cancel once the step is really running.
    const deadline = Date.now() + 10_000;
    while (!c.text(0).includes('up') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const id = containersOf(ex.options.engineId);
    expect(id).toHaveLength(1);
    const t0 = Date.now();
    c.controller.abort(cancelReason('test cancel'));
    const out = await run;
    expect(Date.now() - t0).toBeLessThan(killGraceMs + 2000);
    expect(out.status).toBe('cancelled');
    expect(out.reason).toBe('cancelled');
    expect(containersOf(ex.options.engineId)).toEqual([]);
  });

  it('a cancel forced after the fact (second Ctrl-C) SIGKILLs a SIGTERM-ignoring step without waiting out its grace', async () => {
    const ex = executor();
    const c = capture();
    const cleanup = new AbortController();
    const run = ex.runJob(
      attempt(
        job([step(0, "trap '' TERM; echo up; while :; do sleep 1; done")], {
          container: container(),
          killGraceMs: 60_000,
        }),
      ),
      c.ctx,
    );
    const deadline = Date.now() + 10_000;
    while (!c.text(0).includes('up') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    c.controller.abort({ type: 'cancel', cleanupSignal: cleanup.signal });
    await new Promise((r) => setTimeout(r, 500));
    const forcedAt = Date.now();
    cleanup.abort({ type: 'cancel', force: true });
    const out = await run;
    expect(Date.now() - forcedAt).toBeLessThan(10_000); // not the 60 s grace
    expect(out.status).toBe('cancelled');
    expect(out.steps[0]?.signal).toBe('SIGKILL');
    expect(containersOf(ex.options.engineId)).toEqual([]);
  });

  it('fails as infra, naming the image, when the image is missing and cannot be pulled', async () => {
    const events: unknown[] = [];
    const ex = executor({ onPullProgress: (e) => events.push(e) });
    // A registry on a closed local port: the pull fails at once, with no outside network.
    const image = '127.0.0.1:9/pipewright-test/missing:nope';
    const out = await ex.runJob(attempt(job([step(0, 'true')], { container: container({ image }) })), capture().ctx);
    expect(out.status).toBe('failed');
    expect(out.reason).toBe('infra');
    expect(out.message).toContain(image);
    expect(out.message).toMatch(/could not pull/);

    const never = executor({ pullPolicy: 'never' });
    const out2 = await never.runJob(
      attempt(job([step(0, 'true')], { container: container({ image: 'pipewright-test/absent:1' }) })),
      capture().ctx,
    );
    expect(out2.reason).toBe('infra');
    expect(out2.message).toContain('pipewright-test/absent:1');
  });

  it('gives every attempt a new container (a retry after infra does not reuse one)', async () => {
    const ex = executor();
    const spec = job([step(0, 'hostname')], { container: container() });
    const a = capture();
    const b = capture();
    const first = await ex.runJob(attempt(spec, 1), a.ctx);
    const second = await ex.runJob(attempt(spec, 2), b.ctx);
    expect(first.status).toBe('succeeded');
    expect(second.status).toBe('succeeded');
    expect(first.workerId).not.toBe(second.workerId);
    expect(a.text(0).trim()).not.toBe(b.text(0).trim());
  });

  it('applies resource limits, network mode, labels and container options', async () => {
    const ex = executor();
    const c = capture();
    const spec = job([step(0, 'echo "FOO=$FOO BAR=$BAR host=$(hostname)"; sleep 1')], {
      // `env` wins over `-e` for the same name, as every field wins over its option.
      container: container({
        cpus: 0.5,
        memory: '64m',
        env: { FOO: 'foo' },
        options: '--hostname pw-box -e BAR=bar -e FOO=from-options',
      }),
    });
    const a = attempt(spec, 3);
    const run = ex.runJob(a, c.ctx);
    let info: Docker.ContainerInspectInfo | undefined;
    const deadline = Date.now() + 10_000;
    while (!info && Date.now() < deadline) {
      const [id] = containersOf(ex.options.engineId);
      if (id) info = await new Docker().getContainer(id).inspect();
      else await new Promise((r) => setTimeout(r, 20));
    }
    const out = await run;
    expect(out.status).toBe('succeeded');
    expect(c.text(0)).toContain('FOO=foo BAR=bar host=pw-box');
    expect(info?.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info?.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(info?.HostConfig.NetworkMode).toBe('none');
    expect(info?.Config.Labels).toMatchObject({
      'pipewright.managed': 'true',
      'pipewright.run': a.runId,
      'pipewright.job': 'build',
      'pipewright.attempt': '3',
      'pipewright.engine': ex.options.engineId,
    });
  });

  it('a working-directory missing from the workspace fails the step as infra naming it; one made by an earlier step works', async () => {
    const ex = executor();
    const c = capture();
    const out = await ex.runJob(
      attempt(
        job(
          [
            step(0, 'mkdir -p made/here /opt/pwtool/sub && ln -s /etc tooldir && ln -s /opt/pwtool app'),
            step(1, 'pwd', { workingDirectory: 'made/here' }),
            // Links into the container's own filesystem, last part or a parent: the host cannot judge them.
            step(2, 'test -f passwd && echo in-etc', { workingDirectory: 'tooldir' }),
            step(3, 'pwd -P', { workingDirectory: 'app/sub' }),
            step(4, 'echo never', { workingDirectory: 'missing' }),
          ],
          { container: container() },
        ),
      ),
      c.ctx,
    );
    expect(c.text(1).trim()).toBe('/__w/workspace/made/here');
    expect(c.text(2).trim()).toBe('in-etc');
    expect(c.text(3).trim()).toBe('/opt/pwtool/sub');
    expect(out.status).toBe('failed');
    expect(out.reason).toBe('infra');
    expect(out.steps[4]?.message).toMatch(/working-directory `missing` does not exist in the workspace/);
    expect(c.text(4)).toBe('');
  });

  it("symlinks a container step plants in the workspace never send the engine's host writes or reads elsewhere", async () => {
    const outside = await mkdtemp(join(tmpdir(), 'pw-outside-'));
    const victim = join(outside, 'victim.sh');
    await writeFile(victim, 'original\n');
    try {
      const ex = executor();
      const c = capture();
      const out = await ex.runJob(
        attempt(
          job(
            [
              // The next step's script, its pid file and the step-file directory all point at the host.
              step(
                0,
                `ln -s ${victim} .pipewright/exec/step-2.sh && ln -s ${victim} .pipewright/exec/step-2.pid && echo planted`,
              ),
              step(1, 'echo second; rm -rf .pipewright/exec && ln -s ' + outside + ' .pipewright/exec'),
              // The step files' directory itself (this step loses its own outputs file with it).
              step(2, `echo third; rm -rf .pipewright && ln -s ${outside} .pipewright`, { continueOnError: true }),
              step(3, 'echo fourth'),
              step(4, 'echo fifth'),
            ],
            { container: container() },
          ),
        ),
        c.ctx,
      );
      expect(out.status).toBe('succeeded');
      expect([0, 1, 2, 3, 4].map((i) => c.text(i).trim())).toEqual(['planted', 'second', 'third', 'fourth', 'fifth']);
      expect(await readFile(victim, 'utf8')).toBe('original\n');
      expect(await readdir(outside)).toEqual(['victim.sh']);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('evaluates ${{ }} in container: (image from the matrix, env from a secret)', async () => {
    const ex = executor();
    const c = capture();
    c.ctx.secrets = { TOKEN: 'tok-s3cr3t-value' };
    const spec = attempt(
      job([step(0, 'echo "image ok, token=$TOKEN"')], {
        container: container({
          image: '${{ matrix.img }}',
          env: { TOKEN: '${{ secrets.TOKEN }}' },
          // Extensions with expressions too: unevaluated, Docker would refuse the memory size.
          memory: '${{ matrix.mem }}',
          network: '${{ matrix.net }}',
        }),
      }),
    );
    const out = await ex.runJob({ ...spec, matrix: { img: TEST_IMAGE, mem: '256m', net: 'none' } }, c.ctx);
    expect(out.status, out.message).toBe('succeeded');
    // Masking is the engine's log pipeline's job; here the value must simply have arrived.
    expect(c.text(0)).toContain('image ok, token=tok-s3cr3t-value');
    // `github.token` is secrets.GITHUB_TOKEN in container env too.
    const gh = capture();
    gh.ctx.secrets = { GITHUB_TOKEN: 'ghs-test-token' };
    const withToken = await ex.runJob(
      attempt(
        job([step(0, 'echo "gh=$GH"')], {
          container: container({ image: TEST_IMAGE, env: { GH: '${{ github.token }}' } }),
        }),
      ),
      gh.ctx,
    );
    expect(withToken.status, withToken.message).toBe('succeeded');
    expect(gh.text(0)).toContain('gh=ghs-test-token');
    // The pipeline env as steps see it: its own expressions evaluated first.
    const pe = capture();
    const piped = await ex.runJob(
      {
        ...attempt(
          job([step(0, 'echo "c=$C"')], {
            container: container({ image: TEST_IMAGE, env: { C: '${{ env.COMBINED }}' } }),
          }),
        ),
        env: { COMBINED: "${{ format('{0}-x', 'abc') }}" },
      },
      pe.ctx,
    );
    expect(piped.status, piped.message).toBe('succeeded');
    expect(pe.text(0)).toContain('c=abc-x');
    const bad = await ex.runJob(
      attempt(job([step(0, 'true')], { container: container({ image: "${{ fromJSON('x') }}" }) })),
      capture().ctx,
    );
    expect(bad).toMatchObject({ status: 'failed', reason: 'exit_code', nonRetryable: true });
    expect(bad.message).toMatch(/container image:/);
    // `secrets` is for env only (as on GitHub): an image naming one never carries the value into a message.
    const leaky = capture();
    leaky.ctx.secrets = { TOKEN: 'tok-s3cr3t-value' };
    const named = await ex.runJob(
      attempt(job([step(0, 'true')], { container: container({ image: 'x${{ secrets.TOKEN }}/' }) })),
      leaky.ctx,
    );
    expect(named.status).toBe('failed');
    expect(JSON.stringify(named)).not.toContain('tok-s3cr3t-value');
  });

  it("a container killed from outside under a running step fails the attempt as infra, not as the step's exit 137", async () => {
    const ex = executor();
    const c = capture();
    let placed = '';
    c.ctx.placed = (w) => {
      placed = w;
    };
    const running = ex.runJob(attempt(job([step(0, 'echo up; sleep 30')], { container: container() })), c.ctx);
    const deadline = Date.now() + 30_000;
    while (!c.text(0).includes('up') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(placed).toMatch(/^[0-9a-f]{12}$/);
    spawnSync('docker', ['kill', placed], { stdio: 'ignore' });
    const out = await running;
    expect(out).toMatchObject({ status: 'failed', reason: 'infra' });
    expect(out.message).toMatch(/stopped while the job ran/);
  });

  it('a container it could not remove (the engine dropped away) is removed later, not forgotten', async () => {
    const proxy = await dockerProxy();
    try {
      const ex = executor({ connection: { socketPath: proxy.socketPath } });
      const c = capture();
      let placed = '';
      c.ctx.placed = (w) => {
        placed = w;
      };
      const running = ex.runJob(attempt(job([step(0, 'echo up; sleep 1')], { container: container() })), c.ctx);
      const deadline = Date.now() + 30_000;
      while (!c.text(0).includes('up') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      proxy.down();
      const out = await running;
      expect(out.status).toBe('failed');
      // Still there: its removal failed while the engine was away.
      expect(spawnSync('docker', ['inspect', placed], { stdio: 'ignore' }).status).toBe(0);
      proxy.up();
      await ex.close();
      expect(spawnSync('docker', ['inspect', placed], { stdio: 'ignore' }).status).not.toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('a forced cancel does not wait for a Docker engine that stopped answering (DESIGN 4.4)', async () => {
    const proxy = await dockerProxy();
    let placed = '';
    try {
      const ex = executor({ connection: { socketPath: proxy.socketPath } });
      const c = capture();
      c.ctx.placed = (w) => {
        placed = w;
      };
      const run = ex.runJob(attempt(job([step(0, 'echo up; sleep 30')], { container: container() })), c.ctx);
      const deadline = Date.now() + 30_000;
      while (!c.text(0).includes('up') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      proxy.freeze();
      const forcedAt = Date.now();
      c.controller.abort({ type: 'cancel', force: true, message: 'forced' });
      const out = await run;
      expect(Date.now() - forcedAt).toBeLessThan(15_000); // 5 s bound, room for a loaded host
      expect(out.status).toBe('cancelled');
      expect(out.message, JSON.stringify(out)).toMatch(/did not answer within 5 s of the forced cancel/);
      // Once the engine answers again, the container goes.
      proxy.thaw();
      const gone = Date.now() + 30_000;
      while (spawnSync('docker', ['inspect', placed], { stdio: 'ignore' }).status === 0 && Date.now() < gone) {
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(spawnSync('docker', ['inspect', placed], { stdio: 'ignore' }).status).not.toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('refuses an image name that is no image reference before asking Docker (some crashed the process)', async () => {
    const ex = executor();
    for (const image of ['x/', '..', '', 'a//b']) {
      const out = await ex.runJob(attempt(job([step(0, 'true')], { container: container({ image }) })), capture().ctx);
      expect(out).toMatchObject({ status: 'failed', reason: 'exit_code', nonRetryable: true });
      expect(out.message).toMatch(/is not an image reference/);
    }
    // The process is still here to check: give a stray request a moment to fail, as it used to.
    await new Promise((r) => setTimeout(r, 200));
  });

  it('rejects unsupported container options clearly, without retry', async () => {
    const ex = executor();
    const out = await ex.runJob(
      attempt(job([step(0, 'true')], { container: container({ options: '--device /dev/kvm' }) })),
      capture().ctx,
    );
    expect(out.reason).toBe('exit_code');
    expect(out.nonRetryable).toBe(true);
    expect(out.message).toContain('--device');
    const quote = await ex.runJob(
      attempt(job([step(0, 'true')], { container: container({ options: '--hostname "abc' }) })),
      capture().ctx,
    );
    expect(quote).toMatchObject({ status: 'failed', reason: 'exit_code', nonRetryable: true });
    expect(quote.message).toContain('container.options: a quote is not closed in `--hostname "abc`');
    // A memory limit Docker would refuse at create time (as infra, retried) is refused up front.
    for (const small of [container({ memory: '1m' }), container({ options: '--memory 512k' })]) {
      const tiny = await ex.runJob(attempt(job([step(0, 'true')], { container: small })), capture().ctx);
      expect(tiny).toMatchObject({ status: 'failed', reason: 'exit_code', nonRetryable: true });
      expect(tiny.message).toMatch(/Docker's smallest memory limit is 6m/);
    }
  });

  it('runs a job without `container:` in the default image', async () => {
    const ex = executor();
    const c = capture();
    const out = await ex.runJob(attempt(job([step(0, 'echo in-default; test -x /bin/busybox')])), c.ctx);
    expect(out.status).toBe('succeeded');
    expect(c.text(0)).toBe('in-default\n');
  });

  it('reports a step killed by the OOM killer as infra with OOM in the message', async () => {
    const ex = executor();
    const c = capture();
    // `tail` keeps the whole last "line" (100 MiB of NULs without a newline) in memory.
    const out = await ex.runJob(
      attempt(job([step(0, 'head -c 100m /dev/zero | tail > /dev/null')], { container: container({ memory: '8m' }) })),
      c.ctx,
    );
    expect(out.status).toBe('failed');
    expect(out.reason).toBe('infra');
    expect(out.message).toMatch(/OOM/);
  });

  it("reclaim removes a lost attempt's container whichever engine made it, and leaves the others", async () => {
    const id = engineId();
    ids.push(id);
    const docker = new Docker();
    const mk = (attemptNo: number) =>
      docker.createContainer({
        Image: TEST_IMAGE,
        Cmd: ['sleep', '300'],
        Labels: {
          'pipewright.managed': 'true',
          'pipewright.engine': id,
          'pipewright.run': 'r-dead',
          'pipewright.job': 'build (linux)',
          'pipewright.attempt': String(attemptNo),
        },
        HostConfig: { NetworkMode: 'none' },
      });
    const lost = await mk(1);
    await lost.start();
    const other = await mk(2);
    await other.start();
    // Another engine (another id) takes the run over.
    const ex = executor();
    await ex.reclaim({ runId: 'r-dead', jobId: 'build (linux)', attempt: 1, workerId: undefined });
    const left = containersOf(id);
    expect(left).toHaveLength(1);
    expect(left[0]).toContain(other.id.slice(0, 12));
    await ex.reclaim({ runId: 'r-dead', jobId: 'build (linux)', attempt: 3, workerId: undefined }); // none: fine
    await other.remove({ force: true });
  });

  it('reap() removes containers of its engine id left by a crash, and start() runs it', async () => {
    const id = engineId();
    ids.push(id);
    const docker = new Docker();
    const other = engineId();
    ids.push(other);
    const mk = (engine: string) =>
      docker.createContainer({
        Image: TEST_IMAGE,
        Cmd: ['sleep', '300'],
        Labels: { 'pipewright.managed': 'true', 'pipewright.engine': engine },
        HostConfig: { NetworkMode: 'none' },
      });
    const orphan = await mk(id);
    await orphan.start();
    const foreign = await mk(other);
    const ex = new DockerExecutor({ engineId: id, network: 'none', defaultImage: TEST_IMAGE });
    await ex.start();
    expect(containersOf(id)).toEqual([]);
    // Another engine's containers are not ours to remove.
    expect(containersOf(other)).toHaveLength(1);
    await foreign.remove({ force: true });
    expect(await ex.reap()).toBe(0);
  });
});

describe('DockerExecutor with an unreachable engine', () => {
  it('fails start() with EXECUTOR_UNAVAILABLE naming the socket, and the attempt as infra', async () => {
    const ex = new DockerExecutor({ connection: { socketPath: '/tmp/pipewright-no-such-docker.sock' }, engineId: 'x' });
    const err = await ex.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipewrightError);
    expect((err as PipewrightError).code).toBe('EXECUTOR_UNAVAILABLE');
    expect((err as PipewrightError).message).toContain('unix:///tmp/pipewright-no-such-docker.sock');
    expect((err as PipewrightError).details).toEqual({ address: 'unix:///tmp/pipewright-no-such-docker.sock' });
    const out = await ex.runJob(attempt(job([step(0, 'true')])), capture().ctx);
    expect(out.status).toBe('failed');
    expect(out.reason).toBe('infra');
    expect(out.message).toContain('unix:///tmp/pipewright-no-such-docker.sock');
  });

  it('names a TCP address that refuses connections', async () => {
    const ex = new DockerExecutor({ connection: { host: '127.0.0.1', port: 9 }, engineId: 'x', pingTimeoutMs: 2000 });
    const err = (await ex.start().catch((e: unknown) => e)) as PipewrightError;
    expect(err.code).toBe('EXECUTOR_UNAVAILABLE');
    expect(err.message).toContain('http://127.0.0.1:9');
  });

  it('validates its options', () => {
    expect(() => new DockerExecutor({ pullPolicy: 'sometimes' as never })).toThrow(/pullPolicy/);
    expect(() => new DockerExecutor({ labels: { 'pipewright.run': 'x' } })).toThrow(/reserved/);
  });
});
