// The public API of @pipewright/executors.

export * from './docker/index.js';
export {
  ProcessExecutor,
  type ProcessExecutorOptions,
  type ResolvedProcessExecutorOptions,
  resolveProcessExecutorOptions,
} from './process/executor.js';
export { groupAlive, killGroup, processAlive } from './process/process-group.js';
export { ProcessWorkspace, type ProcessWorkspaceOptions } from './process/workspace.js';
