// The public API of @pipewright/core.
export * from './engine/index.js';
export {
  isTransientStoreError,
  RetryingLogStore,
  RetryingStateStore,
  retryStoreCall,
  type StoreRetryOptions,
} from './engine/store-retry.js';
export * from './errors.js';
export * from './expr/index.js';
export * from './logs/index.js';
export * from './plan/index.js';
export type * from './ports/index.js';
export {
  attachSpecJson,
  isJobStatus,
  isRunStatus,
  isTerminalRun,
  JOB_STATUSES,
  RUN_STATUSES,
  specJsonOf,
} from './ports/state.js';
export * from './spec/index.js';
export { type AbortReason, abortReasonOf, cancelReason, graceCutShort, timeoutReason } from './steps/abort.js';
export { ATTEMPT_ID_ENV, attemptIdOf, STEP_ID_ENV } from './steps/attempt-id.js';
export { withGithubToken } from './steps/github-token.js';
export { parseFileCommands } from './steps/outputs-file.js';
export {
  isStepFileName,
  ownDir,
  readOwnFile,
  STEP_FILE_KINDS,
  type StepFileKind,
  stepFileName,
  writeOwnFile,
} from './steps/own-files.js';
export { defaultStepName, type RunStepsOptions, runSteps } from './steps/run-steps.js';
export {
  DEFAULT_SHELL_TEMPLATE,
  FALLBACK_SHELL_TEMPLATE,
  scriptExtension,
  shellArgv,
  shellTemplate,
  splitCommandLine,
} from './steps/shell.js';
