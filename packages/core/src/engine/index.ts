export { type Clock, type Random, seededRandom, systemClock } from './clock.js';
export {
  type CancelOptions,
  defaultRoute,
  Engine,
  type EngineEvents,
  type EngineOptions,
  type RunHandle,
  type RunRef,
  resolveInputs,
  type SubmitOptions,
} from './engine.js';
export type { AttemptReport, JobReport, RunReport, StepReport } from './report.js';
export { buildReport } from './report.js';
export { backoffDelay, baseBackoffDelay, decideRetry, type RetryDecision, retryClassOf } from './retry.js';
export {
  derivedRefFields,
  type ExecutorSlot,
  initialJobs,
  isTerminalJob,
  resultOf,
  Scheduler,
  type SchedulerCommand,
  type SchedulerEmit,
  type SchedulerEvent,
  type SchedulerOptions,
  transitionAttempt,
  transitionJob,
  transitionRun,
} from './scheduler.js';
