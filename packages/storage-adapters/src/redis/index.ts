// `@pipewright/storage-adapters/redis`: the Redis adapters (loads ioredis).
export type { RedisConnectionOptions } from './connection.js';
export { RedisLogStore, type RedisLogStoreOptions } from './log-store.js';
export { RedisStore, type RedisStoreOptions } from './state-store.js';
