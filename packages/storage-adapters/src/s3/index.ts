// `@pipewright/storage-adapters/s3`: the S3 log store (loads @aws-sdk/client-s3).
export { S3LogStore, type S3LogStoreOptions } from './log-store.js';
