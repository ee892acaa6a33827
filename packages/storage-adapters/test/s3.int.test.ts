import { describeLogStore } from '@pipewright/core/testing';
import { afterAll, beforeAll, describe } from 'vitest';
import { S3LogStore } from '../src/s3/log-store.js';
import { type S3Server, s3Options, startS3Server } from './helpers/s3-server.js';

let server: S3Server | undefined;
let n = 0;

describe('S3LogStore', () => {
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => {
    await server?.stop();
  });

  describeLogStore(
    async () => ({ store: new S3LogStore({ ...s3Options(server!, `t${++n}/`), flushIntervalMs: 50, pollMinMs: 20 }) }),
    { name: 'S3LogStore' },
  );
  describeLogStore(
    async () => ({
      // Tiny chunks: every read spans many chunk objects.
      store: new S3LogStore({ ...s3Options(server!, `c${++n}/`), maxChunkBytes: 200, flushIntervalMs: 20 }),
    }),
    { name: 'S3LogStore, small chunks' },
  );
});
