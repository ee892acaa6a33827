import { mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AttemptOutcome, AttemptSpec, ContainerSpec, ExecContext, Executor, LostAttempt } from '@pipewright/core';
import {
  abortReasonOf,
  graceCutShort,
  imageReferenceProblem,
  interpolate,
  PipewrightError,
  runSteps,
  withGithubToken,
} from '@pipewright/core';
import type Docker from 'dockerode';
import { createDockerClient, describeAddress, pingEngine } from './connection.js';
import { parseContainerOptions, parseMemoryLimit } from './container-options.js';
import { ensureImage } from './images.js';
import { type DockerExecutorOptions, type ResolvedDockerExecutorOptions, resolveDockerOptions } from './options.js';
import { DockerWorkspace, statusOf } from './workspace.js';

/** Labels every container of pipewright carries. */
export const DOCKER_LABELS = {
  managed: 'pipewright.managed',
  run: 'pipewright.run',
  job: 'pipewright.job',
  attempt: 'pipewright.attempt',
  engine: 'pipewright.engine',
} as const;

/** PID 1 of every job container: sleeps until removed, exits at once on SIGTERM. */
const KEEPALIVE = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 3600 & wait; done'];

/** Thrown inside runJob when the attempt is aborted before its container is ready. */
class Aborted extends Error {}

/**
 * Runs each job attempt in its own container: the job's `container:` image (or
 * the default image), the workspace directory bind-mounted, steps run with
 * `docker exec` by the shared step loop. The container is removed when the
 * attempt ends, whatever the outcome; {@link reap} removes leftovers of a crash.
 */
export class DockerExecutor implements Executor {
  /** Executor name used for routing and reports. */
  readonly name = 'docker';
  /** Attempts run at once. */
  readonly capacity: number;
  /** The dockerode client in use. */
  readonly docker: Docker;
  /** The engine address, as shown in errors. */
  readonly address: string;
  /** The resolved options. */
  readonly options: ResolvedDockerExecutorOptions;
  private starting: Promise<void> | undefined;
  private readonly active = new Set<string>();
  /** Workspaces whose container could not be removed yet. */
  private readonly leftovers = new Set<DockerWorkspace>();
  private readonly pulls = new Map<string, Promise<void>>();
  private closed = false;

  constructor(options: DockerExecutorOptions = {}) {
    this.options = resolveDockerOptions(options);
    this.capacity = this.options.capacity;
    this.docker = this.options.docker ?? createDockerClient(this.options.connection);
    this.address = describeAddress(this.docker);
  }

  /**
   * Checks that the engine answers (`EXECUTOR_UNAVAILABLE` with the address
   * otherwise) and reaps this engine id's leftovers. Runs once; the first
   * `runJob` calls it. A failed start is retried by the next call.
   */
  start(): Promise<void> {
    this.starting ??= (async () => {
      await pingEngine(this.docker, this.options.pingTimeoutMs);
      if (this.options.reapOnStart) await this.reap();
    })();
    const p = this.starting;
    p.catch(() => {
      if (this.starting === p) this.starting = undefined;
    });
    return p;
  }

  /**
   * Removes every container labelled with this engine id that this instance is
   * not running right now (left by a crash), with its workspace directory.
   * @returns how many containers were removed
   */
  async reap(): Promise<number> {
    const list = await this.docker.listContainers({
      all: true,
      filters: { label: [`${DOCKER_LABELS.managed}=true`, `${DOCKER_LABELS.engine}=${this.options.engineId}`] },
    });
    let removed = 0;
    for (const c of list) {
      if (this.active.has(c.Id)) continue;
      if (await this.removeContainer(c)) removed++;
    }
    return removed;
  }

  /** Runs one attempt in a fresh container; never throws, infrastructure problems are `reason: infra`. */
  async runJob(attempt: AttemptSpec, ctx: ExecContext): Promise<AttemptOutcome> {
    if (this.closed) {
      return this.infra(`the Docker executor was closed`);
    }
    let workspace: DockerWorkspace | undefined;
    /** A forced cancel gave up waiting for an engine that does not answer. */
    let unanswered = false;
    if (this.leftovers.size > 0) void this.removeLeftovers();
    try {
      try {
        await this.start();
        workspace = await this.createWorkspace(attempt, ctx.signal, ctx.secrets);
      } catch (e) {
        if (e instanceof Aborted || ctx.signal.aborted) return this.aborted(ctx.signal);
        const message = e instanceof Error ? e.message : String(e);
        const invalid = e instanceof PipewrightError && e.code === 'INVALID_ARGUMENT';
        // A pull may fail for a passing reason (registry down): infra, retried. What we refuse
        // ourselves (an expression in `container:` that cannot be evaluated, an unsupported
        // option, a non-image name) is the pipeline's own failure, final.
        if (invalid) return { ...this.infra(`job \`${attempt.jobId}\`: ${message}`, true), reason: 'exit_code' };
        return this.infra(`job \`${attempt.jobId}\`: ${message}`);
      }
      // The container is the worker: recorded while the attempt runs, not only in its outcome.
      ctx.placed?.(workspace.workerId);
      const ran = await settledOrForced(runSteps(attempt, workspace, ctx), ctx.signal);
      if (ran === FORCED_OUT) {
        // The engine does not answer (paused, restarting): a forced cancel must not wait for it
        // (DESIGN §4.4). The container is removed in the background once the engine answers.
        unanswered = true;
        return {
          ...this.aborted(ctx.signal),
          message: `the Docker engine did not answer within ${FORCED_BOUND_MS / 1000} s of the forced cancel; the container ${workspace.workerId} is removed once it answers`,
        };
      }
      const outcome = ran;
      if (outcome.status === 'failed' && (await workspace.oomKilled())) {
        const limit = attempt.job.container?.memory;
        return {
          ...outcome,
          reason: 'infra',
          message:
            `the container ran out of memory and the kernel's OOM killer stopped it (memory limit ${limit ?? 'none'}); ${outcome.message ?? ''}`.trim(),
        };
      }
      // `docker kill`/`rm -f` from outside: the step's exit 137 is the platform's doing, not the pipeline's.
      if (
        outcome.status === 'failed' &&
        outcome.reason === 'exit_code' &&
        !ctx.signal.aborted &&
        (await workspace.stopped())
      ) {
        // Under a memory limit the OOM killer may have taken the container's main process: Docker
        // does not always flag that, and a stopped container can no longer be asked.
        const limit = attempt.job.container?.memory;
        const oom =
          limit === undefined
            ? ''
            : `, or it ran out of memory: the kernel's OOM killer may have stopped it (memory limit ${limit})`;
        return {
          ...outcome,
          reason: 'infra',
          message:
            `the container ${workspace.workerId} stopped while the job ran (killed or removed from outside, or its main process ended${oom}); ${outcome.message ?? ''}`.trim(),
        };
      }
      return outcome;
    } catch (e) {
      // runSteps reports step failures itself; getting here means the engine failed under us.
      return this.infra(
        `job \`${attempt.jobId}\`: ${e instanceof Error ? e.message : String(e)}`,
        false,
        workspace?.workerId,
      );
    } finally {
      if (workspace) {
        const ws = workspace;
        // A container the engine could not remove (it was restarting) is removed later, not forgotten.
        const removal = ws.dispose().catch(() => {
          this.leftovers.add(ws);
        });
        if (!unanswered) await removal;
        this.active.delete(ws.containerId);
      }
    }
  }

  /**
   * Removes the container of a lost attempt (its engine died or lost the run's lease) with its
   * workspace directory, whichever engine created it, so its steps stop before the retry.
   * Nothing to do when there is none (the attempt ran elsewhere, or it was removed already).
   */
  async reclaim(lost: LostAttempt): Promise<void> {
    const list = await this.docker.listContainers({
      all: true,
      filters: {
        label: [
          `${DOCKER_LABELS.managed}=true`,
          `${DOCKER_LABELS.run}=${lost.runId}`,
          `${DOCKER_LABELS.job}=${lost.jobId}`,
          `${DOCKER_LABELS.attempt}=${lost.attempt}`,
        ],
      },
    });
    for (const c of list) {
      if (this.active.has(c.Id)) continue;
      await this.removeContainer(c);
    }
  }

  /** Stops taking jobs. Running attempts finish (and remove their containers) on their own. */
  async close(): Promise<void> {
    this.closed = true;
    // Bounded: an engine that still does not answer must not hold the host's shutdown.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.removeLeftovers(),
      new Promise<void>((r) => {
        timer = setTimeout(r, 10_000);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  /** Removes a container we do not run (left by a crash or a lost attempt) and the workspace directory we made for it. */
  private async removeContainer(c: Docker.ContainerInfo): Promise<boolean> {
    let removed = false;
    try {
      await this.docker.getContainer(c.Id).remove({ force: true, v: true });
      removed = true;
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
    // Only directories we created: under our root, with our prefix.
    const root = resolve(this.options.workspaceRoot);
    for (const m of c.Mounts ?? []) {
      const src = m.Source ? resolve(m.Source) : '';
      if (m.Destination === this.options.containerWorkspace && src.startsWith(join(root, 'pipewright-docker-'))) {
        await rm(src, { recursive: true, force: true }).catch(() => {});
      }
    }
    return removed;
  }

  /** Tries again to remove containers whose removal failed (the engine was unreachable). */
  private async removeLeftovers(): Promise<void> {
    for (const ws of [...this.leftovers]) {
      this.leftovers.delete(ws);
      await ws.dispose().catch(() => this.leftovers.add(ws));
    }
  }

  /**
   * The job's container with `${{ }}` evaluated, as GitHub does for `container:` (`image:
   * ${{ matrix.image }}`, env from `secrets`): contexts `github`, `inputs`, `matrix`, `needs`,
   * `vars`, pipeline `env`, `secrets`. An expression that fails is the pipeline's error.
   */
  private containerSpec(attempt: AttemptSpec, secrets: Record<string, string>): ContainerSpec {
    const c = attempt.job.container;
    if (c === undefined) return { image: this.options.defaultImage, env: {}, volumes: [] };
    // `secrets` only for env, as on GitHub: an image, option or volume that held one would show it
    // in error messages (a bad image name, Docker's own errors), which are stored unmasked.
    // `github.token` is `secrets.GITHUB_TOKEN`, as in steps: also only where secrets may go.
    const github = withGithubToken((attempt.contexts.github ?? {}) as Record<string, unknown>, secrets);
    const base = { ...attempt.contexts, matrix: attempt.matrix };
    // The pipeline env as steps see it (its own `${{ }}` evaluated, each value on the contexts
    // alone); a value that cannot be evaluated reads as empty here and fails the steps.
    const pipelineEnv = (ctx: Record<string, unknown>): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(attempt.env)) {
        try {
          out[k] = v.includes('${{') ? interpolate(v, { ...ctx, env: {} }) : v;
        } catch {
          out[k] = '';
        }
      }
      return out;
    };
    const context = { ...base, env: pipelineEnv(base) };
    const withSecretsBase = { ...base, github, secrets };
    const withSecrets = { ...withSecretsBase, env: pipelineEnv(withSecretsBase) };
    const ev = (text: string, where: string): string => {
      if (!text.includes('${{')) return text;
      try {
        return interpolate(text, where.startsWith('env.') ? withSecrets : context);
      } catch (e) {
        throw new PipewrightError('INVALID_ARGUMENT', `container ${where}: ${(e as Error).message}`);
      }
    };
    const out: ContainerSpec = {
      ...c,
      image: ev(c.image, 'image'),
      env: Object.fromEntries(Object.entries(c.env).map(([k, v]) => [k, ev(v, `env.${k}`)])),
      volumes: c.volumes.map((v, i) => ev(v, `volumes[${i}]`)),
    };
    if (c.options !== undefined) out.options = ev(c.options, 'options');
    if (c.memory !== undefined) out.memory = ev(c.memory, 'memory');
    if (c.network !== undefined) out.network = ev(c.network, 'network');
    return out;
  }

  private async createWorkspace(
    attempt: AttemptSpec,
    signal: AbortSignal,
    secrets: Record<string, string>,
  ): Promise<DockerWorkspace> {
    const check = () => {
      if (signal.aborted) throw new Aborted();
    };
    check();
    const spec = this.containerSpec(attempt, secrets);
    const badImage = imageReferenceProblem(spec.image);
    if (badImage !== undefined) throw new PipewrightError('INVALID_ARGUMENT', `container image: ${badImage}`);
    const image = spec.image.replace(/^docker:\/\//, '');
    const extra = parseContainerOptions(spec.options);
    const memory = spec.memory !== undefined ? parseMemoryLimit(spec.memory, 'container.memory') : extra.memory;
    const cpus = spec.cpus ?? extra.cpus;
    const network = spec.network ?? extra.network ?? this.options.network;

    // A pull can take long, or hang on a registry that never answers: a cancel must not wait for
    // it (DESIGN §4.4). The pull goes on in dockerd; nothing here waits for it any more.
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(new Aborted());
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.image(image)
        .then(resolve, reject)
        .finally(() => signal.removeEventListener('abort', onAbort));
    });
    check();

    const hostDir = await mkdtemp(join(this.options.workspaceRoot, 'pipewright-docker-'));
    const binds = [`${hostDir}:${this.options.containerWorkspace}`];
    const volumes: Record<string, object> = {};
    for (const v of spec.volumes) {
      if (v.includes(':')) binds.push(v);
      else volumes[v] = {};
    }
    const hostConfig: Docker.HostConfig = { Binds: binds, AutoRemove: false };
    if (network !== undefined) hostConfig.NetworkMode = network;
    if (cpus !== undefined) hostConfig.NanoCpus = Math.round(cpus * 1e9);
    if (memory !== undefined) {
      hostConfig.Memory = memory;
      // No swap unless asked: a memory limit should mean the OOM killer, not a crawl.
      hostConfig.MemorySwap = extra.memorySwap ?? memory;
    }
    if (extra.privileged) hostConfig.Privileged = true;
    if (extra.init ?? this.options.init) hostConfig.Init = true;
    if (extra.readOnly) hostConfig.ReadonlyRootfs = true;
    if (extra.capAdd.length) hostConfig.CapAdd = extra.capAdd;
    if (extra.capDrop.length) hostConfig.CapDrop = extra.capDrop;
    if (extra.shmSize !== undefined) hostConfig.ShmSize = extra.shmSize;
    if (extra.addHosts.length) hostConfig.ExtraHosts = extra.addHosts;

    // `container.env` wins over `-e` in `container.options`, like every other field over its option.
    const env = { ...extra.env, ...spec.env };
    const create: Docker.ContainerCreateOptions = {
      Image: image,
      Entrypoint: KEEPALIVE.slice(0, 1),
      Cmd: KEEPALIVE.slice(1),
      WorkingDir: this.options.containerWorkspace,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        ...this.options.labels,
        ...extra.labels,
        [DOCKER_LABELS.managed]: 'true',
        [DOCKER_LABELS.run]: attempt.runId,
        [DOCKER_LABELS.job]: attempt.jobId,
        [DOCKER_LABELS.attempt]: String(attempt.attempt),
        [DOCKER_LABELS.engine]: this.options.engineId,
      },
      Tty: false,
      OpenStdin: false,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      HostConfig: hostConfig,
    };
    if (Object.keys(volumes).length) create.Volumes = volumes;
    if (extra.user !== undefined) create.User = extra.user;
    if (extra.hostname !== undefined) create.Hostname = extra.hostname;

    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(create);
    } catch (e) {
      await rm(hostDir, { recursive: true, force: true }).catch(() => {});
      throw new Error(`could not create a container from image \`${image}\`: ${errorText(e)}`, { cause: e });
    }
    this.active.add(container.id);
    const workspace = new DockerWorkspace({
      docker: this.docker,
      container,
      containerId: container.id,
      image,
      hostDir,
      containerDir: this.options.containerWorkspace,
    });
    try {
      await container.start();
      check();
    } catch (e) {
      await workspace.dispose().catch(() => {});
      this.active.delete(container.id);
      if (e instanceof Aborted) throw e;
      const text = errorText(e);
      const hint = /executable file not found|no such file/i.test(text)
        ? ' (the Docker executor needs `sh` in the image to keep the container alive and run steps)'
        : '';
      throw new Error(`could not start a container from image \`${image}\`: ${text}${hint}`, { cause: e });
    }
    return workspace;
  }

  /** One pull per image at a time, shared by the attempts waiting for it. */
  private image(image: string): Promise<void> {
    let p = this.pulls.get(image);
    if (p === undefined) {
      p = ensureImage(this.docker, image, {
        policy: this.options.pullPolicy,
        onProgress: this.options.onPullProgress,
        auth: this.options.registryAuth?.(image),
      }).finally(() => this.pulls.delete(image));
      this.pulls.set(image, p);
    }
    return p;
  }

  private infra(message: string, nonRetryable = false, workerId?: string): AttemptOutcome {
    const out: AttemptOutcome = {
      status: 'failed',
      reason: 'infra',
      message,
      workerId: workerId ?? `docker:${this.options.engineId}`,
      steps: [],
      outputs: {},
    };
    if (nonRetryable) out.nonRetryable = true;
    return out;
  }

  private aborted(signal: AbortSignal): AttemptOutcome {
    const why = abortReasonOf(signal);
    const base = { workerId: `docker:${this.options.engineId}`, steps: [], outputs: {} };
    if (why?.type === 'timeout') {
      return { ...base, status: 'failed', reason: 'timeout', message: why.message ?? 'the job exceeded its timeout' };
    }
    return { ...base, status: 'cancelled', reason: 'cancelled', message: why?.message ?? 'the job was cancelled' };
  }
}

/** How long a forced cancel waits for the Docker engine before it gives up on it. */
const FORCED_BOUND_MS = 5000;
const FORCED_OUT = Symbol('forced cancel not answered');

/**
 * `work`'s result, or {@link FORCED_OUT} when the cancel was forced (second Ctrl-C, engine
 * close) and `work` did not end within {@link FORCED_BOUND_MS} of that: every Docker call
 * under it may be waiting on an engine that does not answer.
 */
function settledOrForced<T>(work: Promise<T>, signal: AbortSignal): Promise<T | typeof FORCED_OUT> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const giveUp = () => {
      timer ??= setTimeout(() => resolve(FORCED_OUT), FORCED_BOUND_MS);
    };
    const onAbort = () => {
      const cut = graceCutShort(signal);
      if (cut?.aborted) giveUp();
      else cut?.addEventListener('abort', giveUp, { once: true });
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function errorText(e: unknown): string {
  const json = (e as { json?: { message?: unknown } } | undefined)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return e instanceof Error ? e.message : String(e);
}
