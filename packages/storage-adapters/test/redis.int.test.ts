import type { RunRecord } from '@pipewright/core';
import { describeLogStore, describeStateStore, runRecord } from '@pipewright/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLogStore } from '../src/redis/log-store.js';
import { RedisStore } from '../src/redis/state-store.js';
import { type RedisServer, redisServerAvailable, startRedisServer } from './helpers/redis-server.js';

const available = redisServerAvailable();
let server: RedisServer | undefined;
let n = 0;

describe.skipIf(!available)('RedisStore', () => {
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  describeStateStore(async () => ({ store: new RedisStore({ url: server!.url, prefix: `t${++n}` }) }), 'RedisStore');
  it('a follower started right before close() ends with the store at once (it must not read on, for ever)', async () => {
    for (const db of ['', '/3']) {
      for (const connected of [true, false]) {
        const logs = new RedisLogStore({ url: `${server!.url}${db}`, prefix: `fc${++n}` });
        if (connected) await logs.lastSeq('r1'); // the client is ready, its database checked
        const started = Date.now();
        // Handled from the start: it may reject while close() is still under way.
        const next = logs
          .follow('r1')
          [Symbol.asyncIterator]()
          .next()
          .then(
            () => 'resolved',
            (e: unknown) => e,
          );
        await logs.close();
        expect(await next).toMatchObject({ code: 'STORE_UNAVAILABLE' });
        // Not after the store's patience (10 s): at once.
        expect(Date.now() - started, `db ${db || '0'}, connected ${connected}`).toBeLessThan(3000);
      }
    }
  });

  it('a database the server does not have is INVALID_ARGUMENT, not a silent fall back to database 0', async () => {
    const prefix = `db${++n}`;
    const bad = new RedisStore({ url: `${server!.url}/99`, prefix });
    const logs = new RedisLogStore({ url: `${server!.url}/99`, prefix });
    const zero = new RedisStore({ url: `${server!.url}/0`, prefix });
    const three = new RedisStore({ url: `${server!.url}/3`, prefix });
    try {
      const run = runRecord({ inputs: {}, env: {}, defaults: {}, jobs: {} } as unknown as RunRecord['spec']);
      const err = await bad.createRun(run, []).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((err as Error).message).toMatch(/has no database 99/);
      const line = {
        seq: 1,
        ts: 1,
        runId: 'r1',
        jobId: 'j',
        attempt: 1,
        step: 0,
        stream: 'stdout' as const,
        text: 'x',
      };
      await expect(logs.append('r1', { runId: 'r1', lines: [line] })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      // A follower too, though it reads on a connection of its own.
      await expect(logs.follow('r1')[Symbol.asyncIterator]().next()).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect(await zero.getRun(run.id)).toBeUndefined();
      // An existing database other than 0 works, and is where the run goes.
      await three.createRun(run, []);
      expect((await three.getRun(run.id))?.id).toBe(run.id);
      expect(await zero.getRun(run.id)).toBeUndefined();
    } finally {
      await Promise.all([bad.close(), logs.close(), zero.close(), three.close()]);
    }
  });

  it('updateRun leaves out a spec the client holds, and sends it again when another client changed it', async () => {
    const prefix = `spec${++n}`;
    const a = new RedisStore({ url: server!.url, prefix });
    const b = new RedisStore({ url: server!.url, prefix });
    try {
      const spec = { inputs: {}, env: {}, defaults: {}, jobs: {} } as unknown as RunRecord['spec'];
      const run: RunRecord = runRecord(spec, { specHash: 'h1' });
      await a.createRun(run, []);
      // a holds the spec since createRun, so this reply is built from its copy.
      const first = await a.updateRun('r1', { status: 'running' });
      expect(first).toStrictEqual({ ...run, status: 'running' });
      first.spec.env.X = 'mutated';
      const changed = { ...spec, env: { CHANGED: '1' } };
      await b.updateRun('r1', { spec: changed, specHash: 'h2' });
      expect(await a.updateRun('r1', { priority: 2 })).toStrictEqual({
        ...run,
        status: 'running',
        priority: 2,
        spec: changed,
        specHash: 'h2',
      });
      // A patch that keeps specHash but changes the spec's length is still seen.
      const longer = { ...changed, env: { CHANGED: '12' } };
      await b.updateRun('r1', { spec: longer });
      expect((await a.updateRun('r1', { priority: 3 })).spec).toStrictEqual(longer);
      // The writing client's own spec patch of the same length, specHash untouched, returns the new spec.
      await a.updateRun('r1', { priority: 4 });
      const sameLength = { ...changed, env: { CHANGED: '21' } };
      expect((await a.updateRun('r1', { spec: sameLength })).spec).toStrictEqual(sameLength);
      expect((await a.updateRun('r1', { priority: 5 })).spec).toStrictEqual(sameLength);
      // Non-ASCII text (bytes differ from UTF-16 units) round-trips through the cache.
      const accented = { ...changed, env: { CHANGED: 'é✓' } };
      await a.updateRun('r1', { spec: accented, specHash: 'h3' });
      expect((await a.updateRun('r1', { priority: 6 })).spec).toStrictEqual(accented);
      expect((await b.getRun('r1'))?.spec).toStrictEqual(accented);
    } finally {
      await a.close();
      await b.close();
    }
  });

  describeLogStore(async () => ({ store: new RedisLogStore({ url: server!.url, prefix: `l${++n}` }) }), {
    name: 'RedisLogStore',
  });
});
