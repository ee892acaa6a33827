// `@pipewright/executors/process`: the process executor alone, for callers that must not load dockerode.

export {
  defaultWorkRoot,
  ProcessExecutor,
  type ProcessExecutorOptions,
  type ResolvedProcessExecutorOptions,
  resolveProcessExecutorOptions,
} from './executor.js';
export { groupAlive, killGroup, processAlive } from './process-group.js';
export { ProcessWorkspace, type ProcessWorkspaceOptions } from './workspace.js';
