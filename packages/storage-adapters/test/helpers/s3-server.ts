import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

/** An s3rver on 127.0.0.1 with one bucket, in a temp directory. */
export interface S3Server {
  endpoint: string;
  bucket: string;
  stop(): Promise<void>;
}

/** Starts s3rver on a free port of 127.0.0.1 with bucket `bucket`. */
export async function startS3Server(bucket = 'logs'): Promise<S3Server> {
  const directory = mkdtempSync(join(tmpdir(), 'pw-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const addr = (await server.run()) as { address: string; port: number };
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    bucket,
    async stop() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Client options for the S3 adapter against {@link startS3Server}. */
export function s3Options(s: S3Server, prefix: string) {
  return {
    bucket: s.bucket,
    prefix,
    endpoint: s.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  };
}
