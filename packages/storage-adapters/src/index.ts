// The public API of @pipewright/storage-adapters. Redis and S3 adapters live in the
// `./redis` and `./s3` subpath exports so importing this entry loads neither client.

export { MemoryLogStore, type MemoryLogStoreOptions } from './memory/log-store.js';
export { MemoryStore, type MemoryStoreOptions } from './memory/state-store.js';
export type { RedisConnectionOptions, RedisLogStoreOptions, RedisStoreOptions } from './redis/index.js';
export type { S3LogStoreOptions } from './s3/index.js';
