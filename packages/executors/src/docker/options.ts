import { hostname, tmpdir } from 'node:os';
import { PipewrightError } from '@pipewright/core';
import type Docker from 'dockerode';
import { z } from 'zod';

/** One progress event of an image pull, as the engine reports it. */
export interface DockerPullProgress {
  /** The image being pulled (`name:tag`). */
  image: string;
  /** Engine status text, e.g. `Downloading`, `Pull complete`. */
  status?: string;
  /** Layer id the event is about. */
  id?: string;
  /** Bytes done / total of the layer, when known. */
  current?: number;
  total?: number;
}

/** Registry credentials for a pull (dockerode's `authconfig`). Never logged. */
export interface DockerRegistryAuth {
  username?: string;
  password?: string;
  auth?: string;
  serveraddress?: string;
  identitytoken?: string;
}

/** How to reach the Docker engine; anything unset comes from `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`. */
export interface DockerConnectionOptions {
  /** Unix socket or Windows named pipe. @example '/var/run/docker.sock' */
  socketPath?: string;
  /** TCP host name or address. */
  host?: string;
  /** TCP port. @example 2376 */
  port?: number | string;
  /** @default 'http', or 'https' when `ca`, `cert` and `key` are given */
  protocol?: 'http' | 'https' | 'ssh';
  /** TLS material (PEM) for `https`. */
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Engine API version to pin, e.g. `v1.41`. */
  version?: string;
}

/** Options of {@link DockerExecutor}. */
export interface DockerExecutorOptions {
  /** How to reach the engine. Ignored when `docker` is given. @default from DOCKER_HOST, else /var/run/docker.sock */
  connection?: DockerConnectionOptions;
  /** A ready dockerode client (advanced; wins over `connection`). */
  docker?: Docker;
  /**
   * Identity of this engine instance, written to every container as the label
   * `pipewright.engine`. {@link DockerExecutor.reap} removes containers carrying
   * it, so two engines sharing one Docker host must use different ids.
   * @default the host name
   */
  engineId?: string;
  /** Image for jobs without `container:`. @default 'ubuntu:24.04' */
  defaultImage?: string;
  /** Network mode when the job names none (`none`, `bridge`, `host`, a network name). @default the engine's default */
  network?: string;
  /** `missing`: pull only when not present locally; `always`; `never`: fail when missing. @default 'missing' */
  pullPolicy?: 'missing' | 'always' | 'never';
  /** Called for each pull progress event. */
  onPullProgress?: (event: DockerPullProgress) => void;
  /** Registry credentials for an image, or undefined for anonymous pulls. */
  registryAuth?: (image: string) => DockerRegistryAuth | undefined;
  /** Host directory under which each attempt's workspace directory is created; must be visible to the engine. @default os.tmpdir() */
  workspaceRoot?: string;
  /** Where the workspace is mounted in the container. @default '/__w/workspace' */
  containerWorkspace?: string;
  /** Attempts run at once. @default Infinity */
  capacity?: number;
  /** How long the first `ping()` may take before the engine counts as unreachable. @default 5000 */
  pingTimeoutMs?: number;
  /** Remove this engine id's leftover containers when the executor starts. @default true */
  reapOnStart?: boolean;
  /** Extra labels for every container (keys must not start with `pipewright.`). */
  labels?: Record<string, string>;
  /** Run docker-init as PID 1 (reaps zombies). @default false */
  init?: boolean;
}

/** {@link DockerExecutorOptions} with defaults applied. */
export interface ResolvedDockerExecutorOptions {
  connection: DockerConnectionOptions | undefined;
  docker: Docker | undefined;
  engineId: string;
  defaultImage: string;
  network: string | undefined;
  pullPolicy: 'missing' | 'always' | 'never';
  onPullProgress: ((event: DockerPullProgress) => void) | undefined;
  registryAuth: ((image: string) => DockerRegistryAuth | undefined) | undefined;
  workspaceRoot: string;
  containerWorkspace: string;
  capacity: number;
  pingTimeoutMs: number;
  reapOnStart: boolean;
  labels: Record<string, string>;
  init: boolean;
}

const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { message: 'expected a function' });

const schema = z.strictObject({
  connection: z
    .strictObject({
      socketPath: z.string().min(1).optional(),
      host: z.string().min(1).optional(),
      port: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]).optional(),
      protocol: z.enum(['http', 'https', 'ssh']).optional(),
      ca: z.any().optional(),
      cert: z.any().optional(),
      key: z.any().optional(),
      version: z.string().optional(),
    })
    .optional(),
  docker: z
    .custom<Docker>((v) => typeof v === 'object' && v !== null && 'modem' in v, {
      message: 'expected a dockerode client',
    })
    .optional(),
  engineId: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/,
      'letters, digits and _ . : @ - (max 128), starting with a letter or digit',
    )
    .optional(),
  defaultImage: z.string().min(1).optional(),
  network: z.string().min(1).optional(),
  pullPolicy: z.enum(['missing', 'always', 'never']).optional(),
  onPullProgress: fn.optional(),
  registryAuth: fn.optional(),
  workspaceRoot: z.string().min(1).optional(),
  containerWorkspace: z.string().startsWith('/').optional(),
  capacity: z.number().int().positive().or(z.literal(Number.POSITIVE_INFINITY)).optional(),
  pingTimeoutMs: z.number().int().positive().optional(),
  reapOnStart: z.boolean().optional(),
  labels: z
    .record(z.string(), z.string())
    .refine(
      (l) => Object.keys(l).every((k) => !k.startsWith('pipewright.')),
      'label keys starting with `pipewright.` are reserved',
    )
    .optional(),
  init: z.boolean().optional(),
});

/** Validates {@link DockerExecutorOptions} once and fills in defaults. */
export function resolveDockerOptions(options: DockerExecutorOptions = {}): ResolvedDockerExecutorOptions {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `\`${i.path.join('.') || '(options)'}\`: ${i.message}`).join('; ');
    throw new PipewrightError('INVALID_ARGUMENT', `Invalid DockerExecutor options: ${issues}`, {
      details: { issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })) },
    });
  }
  return {
    connection: options.connection,
    docker: options.docker,
    engineId: options.engineId ?? sanitizeId(hostname()),
    defaultImage: options.defaultImage ?? 'ubuntu:24.04',
    network: options.network,
    pullPolicy: options.pullPolicy ?? 'missing',
    onPullProgress: options.onPullProgress,
    registryAuth: options.registryAuth,
    workspaceRoot: options.workspaceRoot ?? tmpdir(),
    containerWorkspace: (options.containerWorkspace ?? '/__w/workspace').replace(/\/+$/, '') || '/',
    capacity: options.capacity ?? Number.POSITIVE_INFINITY,
    pingTimeoutMs: options.pingTimeoutMs ?? 5000,
    reapOnStart: options.reapOnStart ?? true,
    labels: options.labels ?? {},
    init: options.init ?? false,
  };
}

/** `text` as an engine id: characters a label value cannot hold become `-`, at most 128 of them. */
export function engineIdOf(text: string): string {
  return sanitizeId(text);
}

function sanitizeId(s: string): string {
  const id = s.replace(/[^A-Za-z0-9_.:@-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return id === '' ? 'pipewright' : id.slice(0, 128);
}
