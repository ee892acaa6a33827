import { describeLogStore, describeStateStore } from '@pipewright/core/testing';
import { afterAll, beforeAll, describe } from 'vitest';
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
  describeLogStore(async () => ({ store: new RedisLogStore({ url: server!.url, prefix: `l${++n}` }) }), {
    name: 'RedisLogStore',
  });
});
