/**
 * The normalized pipeline model produced by the parser. Keys are camelCase;
 * durations are milliseconds; `needs` is always a list.
 */

/** Which outcomes a retry policy retries. */
export type RetryOn = 'failure' | 'timeout' | 'infra';

/** Jitter mode of a backoff. */
export type Jitter = 'full' | 'equal' | 'none';

/** Backoff between attempts: delay(n) = min(maxDelay, delay * factor^(n-1)). */
export interface BackoffSpec {
  delayMs: number;
  factor: number;
  maxDelayMs: number;
  jitter: Jitter;
}

/** The `retry:` extension, resolved with its defaults. */
export interface RetrySpec {
  /** Total attempts including the first. @default 1 */
  maxAttempts: number;
  /** @default ['infra'] */
  on: RetryOn[];
  /** When set, only these exit codes count as `failure`. */
  exitCodes?: number[];
  backoff: BackoffSpec;
  /** Cut-off over all attempts. */
  maxDurationMs?: number;
  /** @default true */
  differentWorker: boolean;
}

/** `concurrency:` at run or job level. */
export interface ConcurrencySpec {
  /** The group; may contain `${{ }}`. */
  group: string;
  /** Boolean, or an expression evaluated when the run/job starts. */
  cancelInProgress: boolean | string;
}

/** `jobs.<id>.container`. */
export interface ContainerSpec {
  image: string;
  env: Record<string, string>;
  options?: string;
  volumes: string[];
  /** Resource limits and network (pipewright extension under `container`). */
  cpus?: number;
  memory?: string;
  network?: string;
}

/** A matrix as written: axes plus include/exclude. */
export interface MatrixSpec {
  /** Axis name -> values (or an expression that yields the values). */
  axes: Record<string, unknown[] | string>;
  /** Extra combinations (or an expression). */
  include: Record<string, unknown>[] | string;
  /** Removed combinations (or an expression). */
  exclude: Record<string, unknown>[] | string;
}

/** `jobs.<id>.strategy`. */
export interface StrategySpec {
  /** A literal matrix, or an expression string (`${{ fromJSON(...) }}`) expanded when the job becomes ready. */
  matrix?: MatrixSpec | string;
  /** @default true */
  failFast: boolean | string;
  /** A number, or an expression evaluated when the job becomes ready. */
  maxParallel?: number | string;
}

/** `defaults.run`. */
export interface RunDefaults {
  shell?: string;
  workingDirectory?: string;
}

/** One step of a job. */
export interface StepSpec {
  /** 0-based position in the job. */
  index: number;
  id?: string;
  name?: string;
  if?: string;
  run?: string;
  uses?: string;
  with: Record<string, string>;
  shell?: string;
  workingDirectory?: string;
  env: Record<string, string>;
  timeoutMs?: number;
  /** `timeout-minutes` written as an expression; evaluated when the step starts. */
  timeoutMinutesExpr?: string;
  continueOnError: boolean | string;
  retry?: RetrySpec;
  killGraceMs?: number;
}

/** One job as written (before matrix expansion). */
export interface JobSpec {
  id: string;
  name?: string;
  needs: string[];
  if?: string;
  runsOn: string[];
  container?: ContainerSpec;
  strategy?: StrategySpec;
  /** Per attempt. @default 360 minutes */
  timeoutMs: number;
  /** `timeout-minutes` written as an expression; evaluated when the job becomes ready. */
  timeoutMinutesExpr?: string;
  continueOnError: boolean | string;
  outputs: Record<string, string>;
  env: Record<string, string>;
  defaults: RunDefaults;
  retry: RetrySpec;
  /** @default 10 s */
  killGraceMs: number;
  concurrency?: ConcurrencySpec;
  steps: StepSpec[];
  /** Job-level `uses:` (reusable workflow call): no steps; fails at run time. */
  uses?: string;
}

/** A workflow_dispatch input. */
export interface InputSpec {
  description?: string;
  required: boolean;
  default?: string | number | boolean;
  type?: string;
  options?: string[];
}

/** A parsed, validated pipeline. */
export interface PipelineSpec {
  name?: string;
  /** Raw `on:` (trigger filters); used by webhook ingestion only. */
  on?: unknown;
  inputs: Record<string, InputSpec>;
  env: Record<string, string>;
  defaults: RunDefaults;
  concurrency?: ConcurrencySpec;
  /** Run-level `timeout` extension. */
  timeoutMs?: number;
  /** Jobs in file order. */
  jobs: Record<string, JobSpec>;
  /** Source file, when parsed from one. */
  file?: string;
}

/** Default job timeout: 360 minutes, as GitHub. */
export const DEFAULT_JOB_TIMEOUT_MS = 360 * 60_000;
/** Default time between SIGTERM and SIGKILL. */
export const DEFAULT_KILL_GRACE_MS = 10_000;
/** The retry policy when none is written: one attempt. */
export const DEFAULT_RETRY: RetrySpec = {
  maxAttempts: 1,
  on: ['infra'],
  backoff: { delayMs: 1000, factor: 2, maxDelayMs: 60_000, jitter: 'full' },
  differentWorker: true,
};
