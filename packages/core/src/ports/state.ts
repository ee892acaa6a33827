import type { PipelineSpec } from '../spec/types.js';
import type { FailureReason } from './executor.js';

/** Every run status, in lifecycle order. */
export const RUN_STATUSES = ['queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'] as const;
/** Run statuses. */
export type RunStatus = (typeof RUN_STATUSES)[number];

/** True when `x` is one of {@link RUN_STATUSES}. */
export function isRunStatus(x: unknown): x is RunStatus {
  return (RUN_STATUSES as readonly unknown[]).includes(x);
}

/** True when a run status is final (`succeeded`, `failed`, `cancelled`). */
export function isTerminalRun(status: string): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}
/** Every job status, in lifecycle order. */
export const JOB_STATUSES = [
  'pending',
  'queued',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'cancelled',
  'skipped',
] as const;
/** Job statuses (one job per matrix instance). */
export type JobStatus = (typeof JOB_STATUSES)[number];

/** True when `x` is one of {@link JOB_STATUSES}. */
export function isJobStatus(x: unknown): x is JobStatus {
  return (JOB_STATUSES as readonly unknown[]).includes(x);
}
/** Attempt statuses. */
export type AttemptStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';
/** Step statuses. */
export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';

/** Why a run, job or attempt ended the way it did. */
export type Reason = FailureReason | 'upstream' | 'condition';

/** A cancel request: who, why, when. */
export interface CancelRequest {
  by: string;
  reason: string;
  at: number;
  force: boolean;
  /**
   * When what was running at the cancel has been stopped at the latest: `at` plus the longest
   * `kill-grace` among the attempts it aborted (SIGKILL then); `at` when nothing ran or the
   * cancel was forced. Cleanup jobs that run afterwards have their own timeouts.
   */
  deadline?: number;
  /** Set when a concurrency group superseded the run. */
  supersededBy?: string;
}

/** A stored run. Times are epoch ms. */
export interface RunRecord {
  id: string;
  pipelineName: string;
  specHash: string;
  spec: PipelineSpec;
  inputs: Record<string, unknown>;
  trigger: Record<string, unknown>;
  idempotencyKey?: string;
  priority: number;
  concurrencyGroup?: string;
  /**
   * Set when the pipeline's `concurrency.cancel-in-progress` held at submit: queueing this run
   * cancels the group's running run (DESIGN §2, `concurrency`).
   */
  cancelInProgress?: boolean;
  status: RunStatus;
  reason?: Reason;
  message?: string;
  cancel?: CancelRequest;
  /**
   * A cancel asked for through an engine that does not own the run (DESIGN §4.8: instances
   * share a store). The owner applies it within about a second, or the instance that
   * recovers the run does; `cancel` records it once applied.
   */
  requestedCancel?: CancelRequest;
  /** The `vars` context of the run (configuration variables, in clear), when it was given some. */
  vars?: Record<string, string>;
  /** Names of secrets the run may resolve (never their values). */
  secretNames: string[];
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
}

/** A stored step of one attempt. */
export interface StepRecord {
  index: number;
  id?: string;
  name: string;
  status: StepStatus;
  outcome?: 'success' | 'failure' | 'cancelled' | 'skipped';
  conclusion?: 'success' | 'failure' | 'cancelled' | 'skipped';
  reason?: Reason;
  exitCode?: number | null;
  startedAt?: number;
  finishedAt?: number;
}

/** A stored attempt of a job. */
export interface AttemptRecord {
  number: number;
  workerId?: string;
  executor: string;
  status: AttemptStatus;
  reason?: Reason;
  message?: string;
  exitCode?: number | null;
  startedAt: number;
  finishedAt?: number;
  steps: StepRecord[];
}

/** A stored job instance. */
export interface JobRecord {
  runId: string;
  /** Instance id, unique within the run. */
  id: string;
  /** Base job id from the pipeline. */
  job: string;
  matrix: Record<string, unknown>;
  /** Base job ids this job needs. */
  needs: string[];
  status: JobStatus;
  reason?: Reason;
  message?: string;
  outputs: Record<string, string>;
  attempts: AttemptRecord[];
  /**
   * While `retrying`: when the next attempt may start (epoch ms; its backoff or a step's
   * `retry-after`), so an engine that recovers the run waits it out too.
   */
  retryAt?: number | undefined;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
}

/** Filter of {@link StateStore.listRuns}; newest first. */
export interface RunQuery {
  status?: RunStatus[];
  limit?: number;
}

/** Guard of a compare-and-set write: the stored status must be one of these. */
export interface Expect<S extends string> {
  status: S | readonly S[];
}

/** Result of {@link StateStore.createRun}. */
export interface CreateRunResult {
  run: RunRecord;
  /** False when the idempotency key was seen and `run` is the existing one. */
  created: boolean;
}

/**
 * Where run state lives. Every write that names `expect` is a compare-and-set on
 * the stored status and fails with `STORE_CONFLICT` when it does not match.
 */
export interface StateStore {
  /** Creates a run and its jobs atomically; with an idempotency key seen before, returns that run. */
  createRun(run: RunRecord, jobs: JobRecord[]): Promise<CreateRunResult>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  listRuns(query?: RunQuery): Promise<RunRecord[]>;
  updateRun(runId: string, patch: Partial<Omit<RunRecord, 'id'>>, expect?: Expect<RunStatus>): Promise<RunRecord>;
  getJobs(runId: string): Promise<JobRecord[]>;
  /** Adds jobs to a run (dynamic matrix expansion). */
  addJobs(runId: string, jobs: JobRecord[]): Promise<void>;
  /** Replaces one job record. */
  putJob(job: JobRecord, expect?: Expect<JobStatus>): Promise<void>;
  /**
   * Replaces several job records (of one or more runs) in one call, all or nothing:
   * when any job's run or record is missing, or (with `expect`) any stored status does
   * not match, nothing is written and the error is the one `putJob` would give for
   * the first such job. Optional: the engine falls back to `putJob` per job.
   */
  putJobs?(jobs: readonly JobRecord[], expect?: Expect<JobStatus>): Promise<void>;
  /** Takes a run's lease for `owner` if free or expired; true when held. */
  acquireLease(runId: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Extends a lease `owner` holds; false when lost. */
  renewLease(runId: string, owner: string, ttlMs: number): Promise<boolean>;
  releaseLease(runId: string, owner: string): Promise<void>;
  close?(): Promise<void>;
}

// Registered, so two copies of @pipewright/core in one process still find each other's text.
const SPEC_JSON = Symbol.for('pipewright.specJson');

/**
 * Hands a store the JSON text of `run.spec` that the engine has already computed (for
 * `specHash`), so the largest part of a run is encoded once per submit, not twice.
 * Kept off the record's enumerable fields: it never reaches JSON, spreads or reports.
 * Pass `undefined` to detach it once the store has the run.
 */
export function attachSpecJson(run: RunRecord, json: string | undefined): void {
  // `undefined` detaches it again: the text must not live as long as the record does.
  if (json === undefined) delete (run as unknown as Record<symbol, unknown>)[SPEC_JSON];
  else
    Object.defineProperty(run, SPEC_JSON, { value: { spec: run.spec, json }, enumerable: false, configurable: true });
}

/** The JSON text of `run.spec`: the engine's, when attached for this very spec object, or a fresh encoding. */
export function specJsonOf(run: RunRecord): string {
  const attached = (run as unknown as Record<symbol, { spec: unknown; json: string } | undefined>)[SPEC_JSON];
  return attached !== undefined && attached.spec === run.spec ? attached.json : JSON.stringify(run.spec);
}
