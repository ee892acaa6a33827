import type Docker from 'dockerode';
import type { DockerPullProgress, DockerRegistryAuth } from './options.js';
import { statusOf } from './workspace.js';

/** Why an image could not be made available; the message names the image. */
export class ImageUnavailableError extends Error {
  constructor(
    readonly image: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ImageUnavailableError';
  }
}

/** Inputs of {@link ensureImage}. */
export interface EnsureImageOptions {
  policy: 'missing' | 'always' | 'never';
  onProgress: ((event: DockerPullProgress) => void) | undefined;
  auth: DockerRegistryAuth | undefined;
}

/** Resolves once `image` is present locally, pulling it as the policy says. */
export async function ensureImage(docker: Docker, image: string, opts: EnsureImageOptions): Promise<void> {
  if (opts.policy !== 'always') {
    try {
      await docker.getImage(image).inspect();
      return;
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
    }
    if (opts.policy === 'never') {
      throw new ImageUnavailableError(
        image,
        `image \`${image}\` is not present on the Docker engine and pullPolicy is \`never\`; build or load it first (docker build / docker load / docker import)`,
      );
    }
  }
  await pull(docker, image, opts);
}

async function pull(docker: Docker, image: string, opts: EnsureImageOptions): Promise<void> {
  const fail = (why: string, cause?: unknown) =>
    new ImageUnavailableError(
      image,
      `could not pull image \`${image}\`: ${why}. Check the image name and tag, registry access and credentials, or make the image available locally`,
      cause === undefined ? undefined : { cause },
    );
  let stream: NodeJS.ReadableStream;
  try {
    stream = opts.auth ? await docker.pull(image, { authconfig: opts.auth }) : await docker.pull(image);
  } catch (e) {
    throw fail(errorText(e), e);
  }
  // followProgress resolves even when the engine reports an error in the stream, so look at each event.
  let streamError: string | undefined;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err) => (err ? reject(fail(errorText(err), err)) : resolve()),
      (obj: {
        error?: string;
        errorDetail?: { message?: string };
        status?: string;
        id?: string;
        progressDetail?: { current?: number; total?: number };
      }) => {
        if (obj.error !== undefined || obj.errorDetail?.message !== undefined) {
          streamError ??= obj.errorDetail?.message ?? obj.error;
          return;
        }
        if (opts.onProgress === undefined) return;
        const event: DockerPullProgress = { image };
        if (obj.status !== undefined) event.status = obj.status;
        if (obj.id !== undefined) event.id = obj.id;
        if (obj.progressDetail?.current !== undefined) event.current = obj.progressDetail.current;
        if (obj.progressDetail?.total !== undefined) event.total = obj.progressDetail.total;
        try {
          opts.onProgress(event);
        } catch {
          // A throwing progress callback must not break the pull.
        }
      },
    );
  });
  if (streamError !== undefined) throw fail(streamError);
}

function errorText(e: unknown): string {
  const json = (e as { json?: { message?: unknown } } | undefined)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return e instanceof Error ? e.message : String(e);
}
