import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { LogLine, LogStore } from '@pipewright/core';
import { describeLogStore } from '@pipewright/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3LogStore } from '../src/s3/log-store.js';
import { type S3Server, s3Options, startS3Server } from './helpers/s3-server.js';

let server: S3Server | undefined;
let n = 0;

const lines = (runId: string, from: number, to: number): LogLine[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    ts: from + i,
    runId,
    jobId: 'build',
    attempt: 1,
    step: 0,
    stream: 'stdout' as const,
    text: `line ${from + i} ${'x'.repeat((from + i) % 50)}`,
  }));

/** An S3 client whose PUTs fail while `failing()` says so, to simulate an S3 outage. */
function flakyClient(failing: (key: string) => boolean): S3Client {
  const opts = s3Options(server!, '');
  const client = new S3Client({
    endpoint: opts.endpoint,
    region: opts.region,
    forcePathStyle: true,
    credentials: opts.credentials,
  });
  const send = client.send.bind(client) as (cmd: unknown) => Promise<unknown>;
  (client as unknown as { send: (cmd: unknown) => Promise<unknown> }).send = async (cmd) => {
    const input = (cmd as { input?: { Key?: string; Body?: unknown } }).input;
    if (cmd?.constructor?.name === 'PutObjectCommand' && input?.Key && failing(input.Key)) {
      throw Object.assign(new Error('simulated 503'), { name: 'ServiceUnavailable' });
    }
    return send(cmd);
  };
  return client;
}

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
  describeLogStore(
    async () => {
      // Writer and reader are separate instances: reads see only what reached S3.
      const prefix = `x${++n}/`;
      const writer = new S3LogStore({ ...s3Options(server!, prefix), maxChunkBytes: 300, flushIntervalMs: 20 });
      const reader = new S3LogStore({ ...s3Options(server!, prefix), pollMinMs: 20, pollMaxMs: 200 });
      const store: LogStore = {
        append: async (runId, batch) => {
          await writer.append(runId, batch);
          await writer.flush(runId);
        },
        read: (runId, o) => reader.read(runId, o),
        follow: (runId, o) => reader.follow(runId, o),
        end: (runId) => writer.end(runId),
      };
      return {
        store,
        cleanup: async () => {
          await writer.close();
          await reader.close();
        },
      };
    },
    { name: 'S3LogStore, reader in another instance' },
  );

  it('makes buffered lines visible to other processes within flushIntervalMs', async () => {
    const prefix = `v${++n}/`;
    const writer = new S3LogStore({ ...s3Options(server!, prefix), flushIntervalMs: 100 });
    const reader = new S3LogStore(s3Options(server!, prefix));
    try {
      await writer.append('run1', { runId: 'run1', lines: lines('run1', 1, 10) });
      expect(await writer.read('run1')).toHaveLength(10);
      const deadline = Date.now() + 5000;
      let seen: LogLine[] = [];
      while (Date.now() < deadline && seen.length < 10) {
        seen = await reader.read('run1');
        if (seen.length < 10) await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toStrictEqual(lines('run1', 1, 10));
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('retries failed chunk writes without reordering or losing lines', async () => {
    const prefix = `f${++n}/`;
    const failedOnce = new Set<string>();
    let failures = 0;
    // Every chunk and index write fails on its first attempt.
    const client = flakyClient((key) => {
      if (failedOnce.has(key)) return false;
      failedOnce.add(key);
      failures++;
      return true;
    });
    const store = new S3LogStore({ ...s3Options(server!, prefix), client, maxChunkBytes: 500, flushIntervalMs: 10 });
    const reader = new S3LogStore(s3Options(server!, prefix));
    try {
      const all = lines('run2', 1, 300);
      for (let i = 0; i < all.length; i += 30)
        await store.append('run2', { runId: 'run2', lines: all.slice(i, i + 30) });
      await store.end('run2');
      expect(failures).toBeGreaterThan(5);
      expect(await reader.read('run2')).toStrictEqual(all);
    } finally {
      await store.close();
      await reader.close();
      client.destroy();
    }
  });

  it('reports STORE_UNAVAILABLE when S3 keeps failing, keeps the lines, and writes them once S3 is back', async () => {
    const prefix = `o${++n}/`;
    let down = true;
    const client = flakyClient(() => down);
    const store = new S3LogStore({ ...s3Options(server!, prefix), client, maxAttempts: 2, flushIntervalMs: 10_000 });
    const reader = new S3LogStore(s3Options(server!, prefix));
    try {
      const all = lines('run3', 1, 50);
      await store.append('run3', { runId: 'run3', lines: all.slice(0, 25) });
      await expect(store.end('run3')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      await expect(store.end('run3')).rejects.toThrow(/s3:\/\/logs\//);
      expect(await store.read('run3')).toStrictEqual(all.slice(0, 25));
      await store.append('run3', { runId: 'run3', lines: all.slice(25) });
      down = false;
      await store.end('run3');
      expect(await reader.read('run3')).toStrictEqual(all);
    } finally {
      await store.close();
      await reader.close();
      client.destroy();
    }
  });

  it('stores 100,000 log lines and reads and follows them back complete and in order', async () => {
    const prefix = `big${++n}/`;
    const writer = new S3LogStore({ ...s3Options(server!, prefix), maxChunkBytes: 256 * 1024 });
    const reader = new S3LogStore({ ...s3Options(server!, prefix), pollMinMs: 50, pollMaxMs: 500 });
    try {
      const all = lines('big', 1, 100_000);
      const following = (async () => {
        let count = 0;
        let prev = 0;
        for await (const b of reader.follow('big')) {
          for (const l of b.lines) {
            if (l.seq !== prev + 1) throw new Error(`follow saw ${l.seq} after ${prev}`);
            prev = l.seq;
            count++;
          }
        }
        return count;
      })();
      for (let i = 0; i < all.length; i += 500)
        await writer.append('big', { runId: 'big', lines: all.slice(i, i + 500) });
      await writer.end('big');
      expect(await following).toBe(100_000);
      expect(await reader.read('big')).toStrictEqual(all);
      expect(await reader.read('big', { after: 77_777, limit: 10 })).toStrictEqual(all.slice(77_777, 77_787));
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('keeps every chunk within maxChunkBytes of UTF-8, and the index says its real size', async () => {
    const prefix = `sz${++n}/`;
    const store = new S3LogStore({ ...s3Options(server!, prefix), maxChunkBytes: 600 });
    const client = new S3Client({ ...s3Options(server!, prefix), forcePathStyle: true });
    try {
      const multiByte = lines('run1', 1, 40).map((l) => ({ ...l, text: `${'ü'.repeat(40)} ${l.seq}` }));
      await store.append('run1', { runId: 'run1', lines: multiByte });
      await store.flush('run1');
      const index = JSON.parse(
        await (
          await client.send(new GetObjectCommand({ Bucket: server!.bucket, Key: `${prefix}run1/index.json` }))
        ).Body!.transformToString(),
      ) as { chunks: Array<[number, number, number]> };
      expect(index.chunks.length).toBeGreaterThan(1);
      for (const [first, , bytes] of index.chunks) {
        const body = await (
          await client.send(
            new GetObjectCommand({
              Bucket: server!.bucket,
              Key: `${prefix}run1/chunk-${String(first).padStart(15, '0')}.jsonl`,
            }),
          )
        ).Body!.transformToByteArray();
        expect(body.length).toBe(bytes);
        expect(bytes).toBeLessThanOrEqual(600);
      }
      expect(await store.read('run1')).toStrictEqual(multiByte);
    } finally {
      client.destroy();
      await store.close();
    }
  });

  it('a bucket that does not exist is STORE_UNAVAILABLE naming it, not an empty log', async () => {
    const store = new S3LogStore({ ...s3Options(server!, 'nb/'), bucket: 'no-such-bucket-here' });
    try {
      for (const call of [() => store.read('run1'), () => store.lastSeq('run1')]) {
        const err = await call().catch((e: unknown) => e);
        expect((err as { code?: string }).code).toBe('STORE_UNAVAILABLE');
        expect(String((err as Error).message)).toMatch(/no-such-bucket-here/);
      }
    } finally {
      await store.close();
    }
  });

  it('refuses run ids that cannot name objects', async () => {
    const store = new S3LogStore(s3Options(server!, `r${++n}/`));
    try {
      await expect(store.read('../etc')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    } finally {
      await store.close();
    }
  });

  it('needs a bucket', () => {
    expect(() => new S3LogStore({} as never)).toThrow(/bucket/);
  });
});
