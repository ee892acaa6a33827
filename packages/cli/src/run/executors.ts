import { hostname } from 'node:os';
import type { Executor } from '@pipewright/core';
import { EXIT } from '../exit-codes.js';
import { CliError } from './errors.js';
import type { RunExecutorKind } from './options.js';

/**
 * Makes the executor for `--executor` (`why`: what asked for it, for the error). Executors load lazily so `validate` and
 * `graph` never pay for dockerode. A Docker engine that does not answer is an
 * infrastructure error (exit 3), found before the run starts.
 */
export async function createExecutor(kind: RunExecutorKind, why = '--executor docker'): Promise<Executor> {
  if (kind === 'process') {
    // The subpath skips dockerode: less start-up, and a smaller heap makes every step's fork cheaper.
    const { ProcessExecutor } = await import('@pipewright/executors/process');
    return new ProcessExecutor();
  }
  const mod = (await import('@pipewright/executors')) as Record<string, unknown>;
  type DockerLike = Executor & { start?(): Promise<void>; readonly address?: string };
  const Docker = mod.DockerExecutor as (new (options: { engineId: string }) => DockerLike) | undefined;
  if (typeof Docker !== 'function') {
    throw new CliError(`${why}: this build of @pipewright/executors has no Docker executor`, EXIT.INFRA);
  }
  let executor: DockerLike | undefined;
  try {
    // One id per CLI process: the executor reaps the containers of its own id at start, and with
    // the host name as id a second `pipewright run` on this host removed the first one's containers.
    const engineIdOf = mod.engineIdOf as (text: string) => string;
    executor = new Docker({ engineId: engineIdOf(`cli-${process.pid}-${hostname()}`) });
    await executor.start?.();
    return executor;
  } catch (err) {
    // The executor's own error already names the address and why; only its advice is for library users.
    const cause = err instanceof Error ? err : new Error(String(err));
    const detail = (cause.cause instanceof Error ? cause.cause.message : undefined) ?? cause.message;
    const at = executor?.address ?? '';
    throw new CliError(
      `${why}: the Docker engine${at ? ` at ${at}` : ''} does not answer (${detail}); start dockerd, or set DOCKER_HOST to where it listens`,
      EXIT.INFRA,
      'EXECUTOR_UNAVAILABLE',
    );
  }
}
