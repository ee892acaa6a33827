import { PipewrightError } from '@pipewright/core';
import Docker from 'dockerode';
import type { DockerConnectionOptions } from './options.js';

/** Builds a dockerode client; unset fields fall back to DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH. */
export function createDockerClient(connection: DockerConnectionOptions | undefined): Docker {
  if (connection === undefined) return new Docker();
  const opts: Docker.DockerOptions = {};
  if (connection.socketPath !== undefined) opts.socketPath = connection.socketPath;
  if (connection.host !== undefined) opts.host = connection.host;
  if (connection.port !== undefined) opts.port = connection.port;
  if (connection.protocol !== undefined) opts.protocol = connection.protocol;
  if (connection.ca !== undefined) opts.ca = connection.ca as NonNullable<Docker.DockerOptions['ca']>;
  if (connection.cert !== undefined) opts.cert = connection.cert;
  if (connection.key !== undefined) opts.key = connection.key;
  if (connection.version !== undefined) opts.version = connection.version;
  return new Docker(opts);
}

/** The engine address a client talks to, for error messages (`unix:///var/run/docker.sock`, `https://host:2376`). */
export function describeAddress(docker: Docker): string {
  const modem = docker.modem as unknown as {
    socketPath?: unknown;
    host?: string;
    port?: string | number;
    protocol?: string;
  };
  if (modem.host) return `${modem.protocol ?? 'http'}://${modem.host}${modem.port ? `:${modem.port}` : ''}`;
  if (typeof modem.socketPath === 'string') {
    return modem.socketPath.startsWith('//') ? `npipe://${modem.socketPath}` : `unix://${modem.socketPath}`;
  }
  // docker-modem resolves its default socket lazily (a function); name the usual one.
  return 'unix:///var/run/docker.sock (default)';
}

/**
 * Pings the engine, bounded by `timeoutMs`. Rejects with `EXECUTOR_UNAVAILABLE`
 * naming the address tried, so the user sees where pipewright looked.
 */
export async function pingEngine(docker: Docker, timeoutMs: number): Promise<void> {
  const address = describeAddress(docker);
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      // dockerode honours abortSignal here; its typings do not list it.
      (docker.ping as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>).call(docker, {
        abortSignal: abort.signal,
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          abort.abort();
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new PipewrightError(
      'EXECUTOR_UNAVAILABLE',
      `Docker engine at ${address} is unreachable (${why}). Start dockerd, or point DOCKER_HOST / the executor's \`connection\` option at a running engine.`,
      { cause: e, details: { address } },
    );
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
