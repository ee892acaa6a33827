import type { JobSpec, RunDefaults } from '../spec/types.js';

/** Why an attempt or step failed, or was skipped/cancelled. */
export type FailureReason = 'exit_code' | 'timeout' | 'infra' | 'lost' | 'cancelled';

/** Output stream of a step. */
export type OutputStream = 'stdout' | 'stderr';

/**
 * Expression contexts visible to a job's steps (`github`, `inputs`, `matrix`,
 * `needs`, `strategy`, `vars`, `runner`, `job`). `env`, `steps` and `secrets`
 * are layered in by the step loop.
 */
export type JobContexts = Record<string, unknown>;

/** Everything an executor needs to run one attempt of one job instance. */
export interface AttemptSpec {
  runId: string;
  /** Job instance id, unique in the run (`build (linux, 20)` style key). */
  jobId: string;
  /** The base job id from the pipeline (`build`). */
  jobKey: string;
  /** 1-based attempt number. */
  attempt: number;
  /** The job's spec (steps, env, defaults, container, ...). */
  job: JobSpec;
  /** This instance's matrix values ({} for a non-matrix job). */
  matrix: Record<string, unknown>;
  /** Pipeline-level `env`. */
  env: Record<string, string>;
  /** Pipeline-level `defaults.run`. */
  defaults: RunDefaults;
  /** Expression contexts for this job. */
  contexts: JobContexts;
}

/** Result of one step, as reported by the step loop. */
export interface StepResult {
  index: number;
  id?: string;
  name: string;
  status: 'succeeded' | 'failed' | 'cancelled' | 'skipped';
  /** Result before `continue-on-error`. */
  outcome: 'success' | 'failure' | 'cancelled' | 'skipped';
  /** Result after `continue-on-error`. */
  conclusion: 'success' | 'failure' | 'cancelled' | 'skipped';
  reason?: FailureReason | 'condition' | 'upstream';
  exitCode?: number | null;
  signal?: string | null;
  message?: string;
  outputs: Record<string, string>;
  startedAt?: number;
  finishedAt?: number;
}

/** How one attempt ended. */
export interface AttemptOutcome {
  status: 'succeeded' | 'failed' | 'cancelled';
  reason?: FailureReason;
  /** Exit code of the step that failed the attempt, when there is one. */
  exitCode?: number | null;
  /** Human-readable explanation (never contains a secret value). */
  message?: string;
  /** Which worker ran it (host name, agent id, container id). */
  workerId: string;
  steps: StepResult[];
  /** Job `outputs:` evaluated at the end of the attempt. */
  outputs: Record<string, string>;
  /** The failing step asked not to be retried (NonRetryableError). */
  nonRetryable?: boolean;
  /** The failing step asked for at least this delay before a retry. */
  retryAfterMs?: number;
}

/** Step lifecycle notifications from the step loop. */
export interface StepEvents {
  stepStarted?(index: number, name: string, at: number): void;
  stepFinished?(result: StepResult): void;
}

/** A function registered with `engine.registerAction(name, fn)`, run for `uses: name`. */
export type ActionHandler = (
  ctx: ActionContext,
) => Promise<Record<string, string> | undefined> | Record<string, string> | undefined;

/** What a registered action receives. */
export interface ActionContext {
  /** The step's `with:` values, expressions evaluated. */
  inputs: Record<string, string>;
  /** The step's environment (secrets included where referenced). */
  env: Record<string, string>;
  /** Host directory of the workspace. */
  workspace: string;
  signal: AbortSignal;
  /** Write a line to the step's log (masked like everything else). */
  log(line: string): void;
}

/** Per-attempt context the engine gives an executor. */
export interface ExecContext {
  /** Aborted on job timeout or cancel; `signal.reason` says which. */
  signal: AbortSignal;
  /** Step output; may return a promise to apply backpressure. */
  output(stream: OutputStream, step: number, chunk: Uint8Array): void | Promise<void>;
  /** Secret values resolved just in time for this attempt. */
  secrets: Record<string, string>;
  /** Workers that ran earlier attempts; place this one elsewhere when possible. */
  avoidWorkers: readonly string[];
  /** Registered actions by name. */
  actions: ReadonlyMap<string, ActionHandler>;
  /** Register a value to be masked from now on (e.g. `::add-mask::`). */
  addMask?(value: string): void;
  /** Step lifecycle callbacks. */
  events?: StepEvents;
  /** Clock used for step timestamps. @default Date.now */
  now?(): number;
  /** The engine's random source (seeded for replays): step-retry jitter draws from it. @default Math.random */
  random?(): number;
  /** Waits `ms` on the engine's clock (a fake clock in tests), ending early when `signal` aborts: step-retry backoff. */
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
  /**
   * Reports the worker the attempt landed on (a container, a remote agent) as soon as it is
   * known, so the store records it while the attempt runs (DESIGN §4.8) and a `lost` attempt
   * names its worker. Executors whose worker is known up front set {@link Executor.workerId}.
   */
  placed?(workerId: string): void;
}

/** The execution layer: runs one job attempt's steps somewhere. */
export interface Executor {
  readonly name: string;
  /** How many attempts it runs at once. @default Infinity */
  readonly capacity?: number | undefined;
  /**
   * The worker every attempt of this executor runs on, when it is known before an attempt
   * starts (a local executor: its host). The engine records it with the attempt before it
   * calls {@link runJob}.
   */
  readonly workerId?: string | undefined;
  runJob(attempt: AttemptSpec, ctx: ExecContext): Promise<AttemptOutcome>;
  /**
   * Stops what an attempt another engine lost may have left running (its engine died or lost
   * the run's lease), before the attempt is retried: processes carrying its
   * `PIPEWRIGHT_ATTEMPT_ID` on this host, its container. Called on takeover with the attempt's
   * recorded worker; an executor that cannot reach that worker does nothing. Must not throw
   * for an attempt it knows nothing of.
   */
  reclaim?(attempt: LostAttempt): Promise<void>;
  /** Release resources (connections, reapers). */
  close?(): Promise<void>;
}

/** An attempt found `running` in the store when its run was taken over: see {@link Executor.reclaim}. */
export interface LostAttempt {
  runId: string;
  jobId: string;
  attempt: number;
  /** The worker the attempt was placed on, when it was recorded. */
  workerId: string | undefined;
}

/** One command to run in a workspace. */
export interface ExecRequest {
  /** Script body (the step's `run:`). */
  script: string;
  /** GitHub-style shell: `bash`, `sh`, `python`, or a template with `{0}`. */
  shell: string;
  /** Working directory relative to the workspace root (or absolute). */
  workingDirectory?: string;
  env: Record<string, string>;
  signal: AbortSignal;
  /** Time between SIGTERM and SIGKILL. */
  killGraceMs: number;
  /**
   * Directories earlier steps added with `$GITHUB_PATH`, most recent first: the command's
   * `PATH` starts with them, followed by the `PATH` it would have had (the host's, the
   * container's, or `env.PATH`).
   */
  pathPrepend?: readonly string[];
}

/** How a command ended. */
export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
}

/** Output sinks of one command. */
export interface ExecIO {
  stdout(chunk: Uint8Array): void | Promise<void>;
  stderr(chunk: Uint8Array): void | Promise<void>;
}

/** Where an attempt's steps run: a directory on the host, or a container. */
export interface Workspace {
  /** Host directory backing the workspace (the step loop writes its files here). */
  readonly hostDir: string;
  /** Identity of the worker (host name, container id...). */
  readonly workerId: string;
  /** The path a command sees for a host path under `hostDir`. */
  toWorkspacePath(hostPath: string): string;
  /** Runs one command; rejects only on infrastructure errors (could not start). */
  exec(request: ExecRequest, io: ExecIO): Promise<ExecResult>;
  /**
   * Called before the step loop creates a step's files under `hostDir/.pipewright/`. A workspace
   * whose commands can replace that directory with a link the host would follow (a container
   * step, root in its container, in a bind-mounted workspace) makes it a real directory again.
   * Optional: a workspace whose commands run as the engine's own user needs nothing.
   */
  prepareStep?(): Promise<void>;
  dispose(): Promise<void>;
}
