// The public API of @pipewright/executors.

export * from './docker/index.js';
export * from './process/index.js';
