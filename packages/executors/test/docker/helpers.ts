import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttemptSpec, ContainerSpec, ExecContext, JobSpec, StepSpec } from '@pipewright/core';
import { attemptSpec, collectingContext, jobSpec, stepSpec } from '@pipewright/core/testing';
import Docker from 'dockerode';

/** The locally built test image (see .ci/services/docker.sh). */
export const TEST_IMAGE = process.env.DOCKER_TEST_IMAGE ?? 'pipewright-test/busybox:latest';

/** Whether the engine answers; under CI a missing engine is an error, elsewhere the suite is skipped. */
export async function dockerAvailable(): Promise<boolean> {
  try {
    await new Docker().ping();
    await new Docker().getImage(TEST_IMAGE).inspect();
    return true;
  } catch (e) {
    const why = `Docker integration tests need a running engine with ${TEST_IMAGE}: run .ci/services/docker.sh (${e instanceof Error ? e.message : String(e)})`;
    if (process.env.CI === 'true') throw new Error(why);
    console.warn(`skipping: ${why}`);
    return false;
  }
}

/** A fresh engine id per test, so leftovers are attributable. */
export function engineId(): string {
  return `pwtest-${randomUUID().slice(0, 8)}`;
}

/** Container ids (all states) labelled with an engine id, straight from the docker CLI. */
export function containersOf(id: string): string[] {
  const out = execFileSync('docker', ['ps', '-aq', '--filter', `label=pipewright.engine=${id}`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '');
}

/** Force-removes whatever a test left behind. */
export function removeContainersOf(id: string): void {
  const ids = containersOf(id);
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
}

/** A `run:` step. */
export function step(index: number, run: string, extra: Partial<StepSpec> = {}): StepSpec {
  return stepSpec(index, { run, ...extra });
}

/** A job spec with the given steps. */
export function job(steps: StepSpec[], extra: Partial<JobSpec> = {}): JobSpec {
  return { ...jobSpec([], { runsOn: ['docker'], ...extra }), steps };
}

/** A container spec for the test image. */
export function container(extra: Partial<ContainerSpec> = {}): ContainerSpec {
  return { image: TEST_IMAGE, env: {}, volumes: [], network: 'none', ...extra };
}

/** An attempt of `spec`. */
export function attempt(spec: JobSpec, n = 1): AttemptSpec {
  return attemptSpec([], spec, { runId: `run-${randomUUID().slice(0, 8)}`, attempt: n });
}

/** Collected output of one attempt, per step. */
export interface Captured {
  ctx: ExecContext;
  text(step: number, stream?: 'stdout' | 'stderr'): string;
  controller: AbortController;
}

/** An ExecContext that records output; `slow` makes every chunk wait, to exercise backpressure. */
export function capture(opts: { slow?: number } = {}): Captured {
  const controller = new AbortController();
  const { ctx, text } = collectingContext({ signal: controller.signal });
  const keep = ctx.output;
  ctx.output = (stream, stepIndex, chunk) => {
    keep(stream, stepIndex, chunk);
    if (opts.slow !== undefined) return new Promise((r) => setTimeout(r, opts.slow));
  };
  return { ctx, controller, text };
}

/** A socket in front of the real engine that a test can take away or freeze (see {@link dockerProxy}). */
export interface DockerProxy {
  /** Point the executor's `connection.socketPath` here. */
  socketPath: string;
  /** The engine "restarts": open connections drop, new ones are refused, until {@link up}. */
  down(): void;
  up(): void;
  /** The engine stops answering: connections stay open but nothing moves, until {@link thaw}. */
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

/** Starts a {@link DockerProxy} to /var/run/docker.sock in a temporary directory. */
export async function dockerProxy(): Promise<DockerProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'pw-docker-proxy-'));
  const socketPath = join(dir, 'docker.sock');
  let isDown = false;
  let frozen = false;
  const held: Array<[Socket, Buffer]> = [];
  const open = new Set<Socket>();
  const relay = (from: Socket, to: Socket) =>
    from.on('data', (d: Buffer) => {
      if (frozen) held.push([to, d]);
      else to.write(d);
    });
  const server = createServer((client) => {
    if (isDown) return client.destroy();
    const engine = connect('/var/run/docker.sock');
    open.add(client).add(engine);
    relay(client, engine);
    relay(engine, client);
    const end = () => {
      open.delete(client);
      open.delete(engine);
      client.destroy();
      engine.destroy();
    };
    client.on('error', end).on('close', end);
    engine.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  const thaw = () => {
    frozen = false;
    for (const [to, d] of held.splice(0)) if (!to.destroyed) to.write(d);
  };
  return {
    socketPath,
    down: () => {
      isDown = true;
      for (const s of open) s.destroy();
    },
    up: () => {
      isDown = false;
    },
    freeze: () => {
      frozen = true;
    },
    thaw,
    close: async () => {
      thaw();
      isDown = false;
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
