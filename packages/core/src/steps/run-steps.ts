import { close, open as openFd } from 'node:fs';
import { lstat, mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { abortableSleep, clearLongTimeout, setLongTimeout } from '../engine/clock.js';
import { backoffDelay } from '../engine/retry.js';
import { NonRetryableError, RetryAfterError } from '../errors.js';
import {
  type ExprContext,
  evaluateCondition,
  evaluateValue,
  interpolate,
  isCleanupCondition,
  isTruthy,
  type StatusState,
  toExpressionString,
} from '../expr/index.js';
import type {
  AttemptOutcome,
  AttemptSpec,
  ExecContext,
  ExecIO,
  ExecResult,
  FailureReason,
  StepResult,
  Workspace,
} from '../ports/executor.js';
import { timeoutMinutesMs } from '../spec/duration.js';
import { DEFAULT_KILL_GRACE_MS, type StepSpec } from '../spec/types.js';
import { errorMessage } from '../util/error-message.js';
import { abortReasonOf } from './abort.js';
import { ATTEMPT_ID_ENV, attemptIdOf, STEP_ID_ENV } from './attempt-id.js';
import { withGithubToken } from './github-token.js';
import { createStepCommandScanners } from './masks.js';
import { parseFileCommands } from './outputs-file.js';
import { OWN_READ_FLAGS, OWN_WRITE_FLAGS, STEP_FILE_KINDS, stepFileName } from './own-files.js';
import { type StepFailureKind, shouldRetryStep } from './retry.js';
import { runnerArch, runnerOs } from './runner.js';
import { scriptForShell, shellTemplate } from './shell.js';

/** Knobs of {@link runSteps} that tests and the engine may inject. */
export interface RunStepsOptions {
  /** Random source in [0, 1) for step-retry jitter. @default `ctx.random`, else Math.random */
  random?: () => number;
  /** Waits between step retries; must resolve early when `signal` aborts. @default `ctx.sleep`, else a real timer */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** The outcome of one try of one step, before `continue-on-error`. */
interface TryResult {
  outcome: 'success' | 'failure' | 'cancelled';
  reason?: FailureReason;
  exitCode?: number | null;
  signal?: string | null;
  message?: string;
  outputs: Record<string, string>;
  envAdditions: Record<string, string>;
  /** Directories the step wrote to `$GITHUB_PATH`, in the order written. */
  pathAdditions?: string[];
  nonRetryable?: boolean;
  retryAfterMs?: number;
}

interface StepContextEntry {
  outputs: Record<string, string>;
  outcome: StepResult['outcome'];
  conclusion: StepResult['conclusion'];
}

const encoder = new TextEncoder();
const NEVER = new AbortController().signal;

/**
 * The shared step loop: runs an attempt's steps in a workspace with GitHub
 * Actions semantics (`if:` and status functions, step timeouts and retries,
 * `continue-on-error`, env layering, `$GITHUB_OUTPUT`/`$GITHUB_ENV`, registered
 * `uses:` actions, job outputs). Every executor and the remote agent reuse it;
 * it never throws for a step's failure, only reports it.
 */
export async function runSteps(
  attempt: AttemptSpec,
  workspace: Workspace,
  ctx: ExecContext,
  options: RunStepsOptions = {},
): Promise<AttemptOutcome> {
  return new StepLoop(attempt, workspace, ctx, options).run();
}

class StepLoop {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly stepsCtx: Record<string, StepContextEntry> = {};
  private readonly results: StepResult[] = [];
  private readonly extra = new Map<number, { nonRetryable?: boolean; retryAfterMs?: number }>();
  private readonly masks = new Set<string>();
  private readonly baseDir: string;
  private readonly wsPath: string;
  private readonly runnerTemp: string;
  /** Pipeline < job env, evaluated once; `$GITHUB_ENV` additions layer on top. */
  private jobEnv: Record<string, string> = {};
  private fileEnv: Record<string, string> = {};
  private protectedDefaults: Record<string, string> | undefined;
  private githubCtx: Record<string, unknown> | undefined;
  /** Step output streams whose last chunk ended mid-line ({@link streamKey}). */
  private readonly openLines = new Set<number>();
  /** Directories steps added with `$GITHUB_PATH`, most recent first. */
  private pathPrepend: string[] = [];
  /** {@link ATTEMPT_ID_ENV} of this attempt, in every step's environment. */
  private readonly attemptId: string;
  /** {@link runner}, made once per attempt. */
  private runnerCtx: Record<string, unknown> | undefined;
  /** {@link defaultEnv}, made once per attempt. */
  private defaults: Record<string, string> | undefined;
  private failed = false;
  /**
   * Creation of `.pipewright/tmp` (`RUNNER_TEMP`, and `.pipewright/` if the workspace lacks
   * it), started with the attempt and awaited by the first step alongside its own files
   * rather than before them; resolves to the error, if any.
   */
  private dirsReady: Promise<unknown> = Promise.resolve(undefined);
  /** Closes of the step files, left off the step's critical path; awaited before the loop returns. */
  private readonly closes: Promise<void>[] = [];

  constructor(
    private readonly attempt: AttemptSpec,
    private readonly workspace: Workspace,
    private readonly ctx: ExecContext,
    options: RunStepsOptions,
  ) {
    this.now = ctx.now ?? Date.now;
    // The engine's random source and clock, so a step retry's delay replays and follows a fake clock.
    const random = ctx.random;
    const sleep = ctx.sleep;
    this.random = options.random ?? (random ? () => random.call(ctx) : Math.random);
    this.sleep = options.sleep ?? (sleep ? (ms, signal) => sleep.call(ctx, ms, signal) : abortableSleep);
    this.baseDir = join(workspace.hostDir, '.pipewright');
    this.runnerTemp = join(this.baseDir, 'tmp');
    this.wsPath = workspace.toWorkspacePath(workspace.hostDir);
    this.attemptId = attemptIdOf({ runId: attempt.runId, jobId: attempt.jobId, attempt: attempt.attempt });
    for (const v of Object.values(ctx.secrets)) this.addSecret(v);
  }

  async run(): Promise<AttemptOutcome> {
    const { job } = this.attempt;
    // What the pipeline itself gets wrong at run time (a reusable workflow, an unregistered action,
    // an expression that cannot be evaluated) fails as the job's own failure, never retried: it
    // is not `infra`, which is for the platform (no shell, no container, an executor crash).
    // GitHub marks such a job `failure` too.
    if (job.uses !== undefined) {
      return this.finish({
        status: 'failed',
        reason: 'exit_code',
        nonRetryable: true,
        message: `job \`${this.attempt.jobKey}\` calls the reusable workflow \`${job.uses}\`: reusable workflows (jobs.<id>.uses) are not supported; inline its jobs instead`,
      });
    }
    // No round trip of its own: the first step's files are created at the same time (and
    // again after it when `.pipewright/` was missing). The step files live flat in it.
    this.dirsReady = mkdir(this.runnerTemp).then(
      () => undefined,
      (e: NodeJS.ErrnoException) =>
        e.code === 'EEXIST'
          ? undefined
          : mkdir(this.runnerTemp, { recursive: true }).then(
              () => undefined,
              (e2: unknown) => e2,
            ),
    );
    try {
      this.jobEnv = this.evalEnv(this.attempt.env, {});
      this.jobEnv = this.evalEnv(job.env, this.jobEnv);
    } catch (e) {
      await this.dirsReady;
      return this.finish({
        status: 'failed',
        reason: 'exit_code',
        nonRetryable: true,
        message: `could not evaluate the env of job \`${this.attempt.jobKey}\`: ${this.redact(errorMessage(e))}`,
      });
    }

    for (const [i, step] of job.steps.entries()) {
      await this.runStep(step, step.index ?? i);
    }
    // No file operation of ours may still be in flight when the workspace is disposed.
    await Promise.all([this.dirsReady, ...this.closes]);
    return this.finish(this.attemptResult());
  }

  private attemptResult(): Omit<AttemptOutcome, 'workerId' | 'steps' | 'outputs'> {
    const abort = abortReasonOf(this.ctx.signal);
    const interrupted = this.results.some((r) => r.outcome === 'cancelled');
    if (abort && (interrupted || abort.type === 'timeout' || this.results.length === 0)) {
      if (abort.type === 'cancel') {
        return {
          status: 'cancelled',
          reason: 'cancelled',
          message: this.redact(abort.message ?? 'the job was cancelled'),
        };
      }
      return {
        status: 'failed',
        reason: 'timeout',
        message: this.redact(abort.message ?? 'the job exceeded its timeout'),
      };
    }
    const bad = this.results.find((r) => r.conclusion === 'failure');
    if (bad === undefined) return { status: 'succeeded' };
    const reason: FailureReason =
      bad.reason === 'timeout' || bad.reason === 'infra' || bad.reason === 'lost' ? bad.reason : 'exit_code';
    const out: Omit<AttemptOutcome, 'workerId' | 'steps' | 'outputs'> = {
      status: 'failed',
      reason,
      exitCode: bad.exitCode ?? null,
      message: `step \`${bad.name}\` failed${bad.message ? `: ${bad.message}` : ''}`,
    };
    const extra = this.extra.get(bad.index);
    if (extra?.nonRetryable) out.nonRetryable = true;
    if (extra?.retryAfterMs !== undefined) out.retryAfterMs = extra.retryAfterMs;
    return out;
  }

  private finish(partial: Omit<AttemptOutcome, 'workerId' | 'steps' | 'outputs'>): AttemptOutcome {
    return { ...partial, workerId: this.workspace.workerId, steps: this.results, outputs: this.jobOutputs() };
  }

  /** Job `outputs:` with the final `steps` context; values holding a secret are dropped, as GitHub does. */
  private jobOutputs(): Record<string, string> {
    const out: Record<string, string> = {};
    const exprCtx = this.exprContext(this.currentEnv());
    for (const [key, template] of Object.entries(this.attempt.job.outputs)) {
      try {
        const value = interpolate(template, exprCtx, this.status());
        if (this.redact(value) !== value) continue;
        out[key] = value;
      } catch {
        // An output that cannot be evaluated is empty, as in GitHub.
        out[key] = '';
      }
    }
    return out;
  }

  private status(): StatusState {
    const abort = abortReasonOf(this.ctx.signal);
    return {
      success: !this.failed && abort === undefined,
      failure: this.failed || abort?.type === 'timeout',
      cancelled: abort?.type === 'cancel',
    };
  }

  /**
   * The variables GitHub gives every step: `CI`, the run, job and event, the runner. The
   * pipeline's env may override `CI` and `PIPEWRIGHT`, not the `GITHUB_*` / `RUNNER_*` ones. `GITHUB_ACTIONS` is not among them: pipewright is not GitHub.
   */
  private defaultEnv(): Record<string, string> {
    if (this.defaults) return this.defaults;
    const github = asRecord(this.attempt.contexts.github);
    const text = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
    const vars: Record<string, string | undefined> = {
      CI: 'true',
      PIPEWRIGHT: 'true',
      GITHUB_RUN_ID: text(github.run_id),
      GITHUB_RUN_ATTEMPT: text(github.run_attempt),
      GITHUB_JOB: this.attempt.jobKey,
      GITHUB_WORKFLOW: text(github.workflow),
      GITHUB_EVENT_NAME: text(github.event_name),
      GITHUB_REF: text(github.ref),
      GITHUB_REF_NAME: text(github.ref_name),
      GITHUB_REF_TYPE: text(github.ref_type),
      GITHUB_SHA: text(github.sha),
      GITHUB_REPOSITORY: text(github.repository),
      GITHUB_REPOSITORY_OWNER: text(github.repository_owner),
      RUNNER_OS: text(this.runner().os),
      RUNNER_ARCH: text(this.runner().arch),
    };
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(vars)) if (v !== undefined) out[k] = v;
    this.defaults = out;
    return out;
  }

  /** The {@link defaultEnv} variables no env may overwrite: the `GITHUB_*` and `RUNNER_*` ones. */
  private protectedEnv(): Record<string, string> {
    if (this.protectedDefaults) return this.protectedDefaults;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.defaultEnv()))
      if (k.startsWith('GITHUB_') || k.startsWith('RUNNER_')) out[k] = v;
    this.protectedDefaults = out;
    return out;
  }

  /** The `runner` context: the engine's (`attempt.contexts.runner`) over this host's defaults; the step variables follow it. */
  private runner(): Record<string, unknown> {
    this.runnerCtx ??= {
      os: runnerOs(),
      arch: runnerArch(),
      name: this.workspace.workerId,
      ...asRecord(this.attempt.contexts.runner),
      temp: this.workspace.toWorkspacePath(this.runnerTemp),
      workspace: this.wsPath,
    };
    return this.runnerCtx;
  }

  private currentEnv(): Record<string, string> {
    return { ...this.jobEnv, ...this.fileEnv };
  }

  /** The `github` context of the job's steps: the run's, with `job`, `workspace` and `token` (`secrets.GITHUB_TOKEN`, as on GitHub). */
  private githubContext(): Record<string, unknown> {
    if (this.githubCtx) return this.githubCtx;
    const github = { ...asRecord(this.attempt.contexts.github), job: this.attempt.jobKey, workspace: this.wsPath };
    this.githubCtx = withGithubToken(github, this.ctx.secrets);
    return this.githubCtx;
  }

  private exprContext(env: Record<string, string>): ExprContext {
    const c = this.attempt.contexts;
    const status = this.status();
    const jobStatus = status.cancelled ? 'cancelled' : status.failure ? 'failure' : 'success';
    return {
      ...c,
      github: this.githubContext(),
      runner: this.runner(),
      job: { ...asRecord(c.job), status: jobStatus },
      matrix: this.attempt.matrix,
      env,
      steps: this.stepsCtx,
      secrets: this.ctx.secrets,
    };
  }

  /** Evaluates an env block on top of `base`; each value sees the env built so far. */
  private evalEnv(block: Record<string, string>, base: Record<string, string>): Record<string, string> {
    const env = { ...base };
    for (const [k, v] of Object.entries(block)) {
      env[k] = interpolate(String(v), this.exprContext(base), this.status());
    }
    return env;
  }

  private async runStep(step: StepSpec, index: number): Promise<void> {
    const env = this.currentEnv();
    const exprCtx = this.exprContext(env);
    const name = this.redact(this.stepName(step, exprCtx));
    const abort = abortReasonOf(this.ctx.signal);

    if (abort && (abort.force || abort.cleanupSignal?.aborted || !isCleanupCondition(step.if))) {
      this.record(step, index, name, { outcome: 'cancelled', reason: 'cancelled' });
      return;
    }
    let shouldRun: boolean;
    try {
      shouldRun = evaluateCondition(step.if, exprCtx, this.status());
    } catch (e) {
      const message = `could not evaluate \`if: ${step.if}\`: ${this.redact(errorMessage(e))}`;
      await this.emit('stderr', index, `pipewright: step \`${name}\` failed: ${message}\n`);
      this.record(step, index, name, { outcome: 'failure', reason: 'exit_code', message, nonRetryable: true });
      return;
    }
    if (!shouldRun) {
      const st = this.status();
      this.record(step, index, name, { outcome: 'skipped', reason: st.success ? 'condition' : 'upstream' });
      return;
    }

    // Steps that start after the job was aborted (cleanup) must not see the already-aborted signal.
    const baseSignal = abort ? (abort.cleanupSignal ?? NEVER) : this.ctx.signal;
    const startedAt = this.now();
    this.ctx.events?.stepStarted?.(index, name, startedAt);

    let result: TryResult;
    for (let n = 1; ; n++) {
      result = await this.tryStep(step, index, baseSignal);
      this.fileEnv = { ...this.fileEnv, ...result.envAdditions };
      // As on GitHub: each added directory goes in front of those added before it.
      if (result.pathAdditions?.length) this.pathPrepend = [...result.pathAdditions.reverse(), ...this.pathPrepend];
      const retry = step.retry;
      if (result.outcome !== 'failure' || retry === undefined || n >= retry.maxAttempts) break;
      if (baseSignal.aborted || result.nonRetryable) break;
      if (!shouldRetryStep(retry, failureKind(result))) break;
      const delay = Math.max(backoffDelay(retry.backoff, n, this.random), result.retryAfterMs ?? 0);
      await this.emit(
        'stderr',
        index,
        `pipewright: step \`${name}\` failed (${result.message ?? 'failure'}); retrying in ${Math.round(delay)} ms (try ${n + 1} of ${retry.maxAttempts})\n`,
      );
      await this.sleep(delay, baseSignal);
      if (baseSignal.aborted) break;
    }
    if (
      result.outcome === 'failure' &&
      result.message !== undefined &&
      (result.exitCode === undefined || result.reason === 'timeout')
    ) {
      // Not a process that exited: nothing in the step's own output says why it failed (nor, under
      // continue-on-error, the job's outcome). GitHub shows such a failure in the log too.
      await this.emit('stderr', index, `pipewright: step \`${name}\` failed: ${this.redact(result.message)}\n`);
    }
    this.record(step, index, name, result, startedAt);
  }

  private record(
    step: StepSpec,
    index: number,
    name: string,
    r: Omit<TryResult, 'outcome' | 'outputs' | 'envAdditions' | 'reason'> & {
      outcome: StepResult['outcome'];
      reason?: StepResult['reason'];
      outputs?: Record<string, string>;
    },
    startedAt?: number,
  ): void {
    let conclusion: StepResult['conclusion'] = r.outcome;
    if (r.outcome === 'failure' && this.continueOnError(step)) conclusion = 'success';
    if (conclusion === 'failure') this.failed = true;
    const outputs = r.outputs ?? {};
    const status: StepResult['status'] =
      r.outcome === 'success'
        ? 'succeeded'
        : r.outcome === 'failure'
          ? 'failed'
          : r.outcome === 'cancelled'
            ? 'cancelled'
            : 'skipped';
    const result: StepResult = {
      index,
      name,
      status,
      outcome: r.outcome,
      conclusion,
      // The reported copy is redacted; later steps still see the real values.
      outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, this.redact(v)])),
    };
    if (step.id !== undefined) result.id = step.id;
    if (r.reason !== undefined) result.reason = r.reason;
    if (r.exitCode !== undefined) result.exitCode = r.exitCode;
    if (r.signal !== undefined) result.signal = r.signal;
    if (r.message !== undefined) result.message = this.redact(r.message);
    if (startedAt !== undefined) {
      result.startedAt = startedAt;
      result.finishedAt = this.now();
    } else {
      result.finishedAt = this.now();
    }
    if (r.nonRetryable || r.retryAfterMs !== undefined) {
      const extra: { nonRetryable?: boolean; retryAfterMs?: number } = {};
      if (r.nonRetryable) extra.nonRetryable = true;
      if (r.retryAfterMs !== undefined) extra.retryAfterMs = r.retryAfterMs;
      this.extra.set(index, extra);
    }
    this.results.push(result);
    if (step.id !== undefined) this.stepsCtx[step.id] = { outputs, outcome: r.outcome, conclusion };
    this.ctx.events?.stepFinished?.(result);
  }

  private continueOnError(step: StepSpec): boolean {
    const v = step.continueOnError;
    if (typeof v === 'boolean') return v;
    const s = String(v).trim();
    if (s === 'true') return true;
    if (s === 'false' || s === '') return false;
    try {
      return isTruthy(evaluateValue(s, this.exprContext(this.currentEnv()), this.status()));
    } catch {
      return false;
    }
  }

  private stepName(step: StepSpec, exprCtx: ExprContext): string {
    if (step.name !== undefined) {
      try {
        return interpolate(step.name, exprCtx, this.status());
      } catch {
        return step.name;
      }
    }
    return defaultStepName(step);
  }

  /** One try of a step, with its own timeout scope. */
  private async tryStep(step: StepSpec, index: number, baseSignal: AbortSignal): Promise<TryResult> {
    let timeoutMs = step.timeoutMs;
    // With the step's own env, as its `run:` sees it; an env that cannot be evaluated is
    // reported by the step itself, as without a timeout expression.
    const env =
      step.timeoutMinutesExpr !== undefined && timeoutMs === undefined ? this.stepEnvOrUndefined(step) : undefined;
    if (env !== undefined && step.timeoutMinutesExpr !== undefined) {
      try {
        const ctx = this.exprContext(env);
        timeoutMs = timeoutMinutesMs(evaluateValue(step.timeoutMinutesExpr, ctx, this.status()), (t) => this.redact(t));
      } catch (e) {
        // The pipeline's own failure, as for a `run:` that cannot be evaluated.
        const message = this.redact(`timeout-minutes: ${errorMessage(e)}`);
        return { outcome: 'failure', reason: 'exit_code', message, outputs: {}, envAdditions: {}, nonRetryable: true };
      }
    }
    const stepTimeoutMessage = `step exceeded its timeout of ${fmtMs(timeoutMs ?? 0)}`;
    const timeout = new AbortController();
    const timer =
      timeoutMs !== undefined
        ? setLongTimeout(() => timeout.abort({ type: 'timeout', message: stepTimeoutMessage }), timeoutMs)
        : undefined;
    const signal = AbortSignal.any([baseSignal, timeout.signal]);
    try {
      const r =
        step.uses !== undefined ? await this.runAction(step, index, signal) : await this.runScript(step, index, signal);
      if (r.outcome === 'success') return r;
      if (baseSignal.aborted) {
        const why = abortReasonOf(baseSignal);
        return { ...r, outcome: 'cancelled', reason: why?.type === 'timeout' ? 'timeout' : 'cancelled' };
      }
      if (timeout.signal.aborted) {
        return {
          ...r,
          outcome: 'failure',
          reason: 'timeout',
          message: stepTimeoutMessage,
        };
      }
      return r;
    } finally {
      clearLongTimeout(timer);
    }
  }

  private stepEnv(step: StepSpec): Record<string, string> {
    return this.evalEnv(step.env, this.currentEnv());
  }

  private stepEnvOrUndefined(step: StepSpec): Record<string, string> | undefined {
    try {
      return this.stepEnv(step);
    } catch {
      return undefined;
    }
  }

  private async runScript(step: StepSpec, index: number, signal: AbortSignal): Promise<TryResult> {
    const fail = (message: string, nonRetryable = true): TryResult => ({
      outcome: 'failure',
      reason: 'infra',
      message,
      outputs: {},
      envAdditions: {},
      ...(nonRetryable ? { nonRetryable } : {}),
    });
    const { job } = this.attempt;
    let env: Record<string, string>;
    let script: string;
    let template: string;
    let workingDirectory: string | undefined;
    try {
      env = this.stepEnv(step);
      const exprCtx = this.exprContext(env);
      template = shellTemplate(step.shell ?? job.defaults.shell ?? this.attempt.defaults.shell);
      script = scriptForShell(template, interpolate(step.run ?? '', exprCtx, this.status()));
      const wd = step.workingDirectory ?? job.defaults.workingDirectory ?? this.attempt.defaults.workingDirectory;
      if (wd !== undefined) workingDirectory = interpolate(wd, exprCtx, this.status());
    } catch (e) {
      // An expression that cannot be evaluated, or a shell that cannot be: the pipeline's own
      // failure (as for `if:`), never retried, not `infra` (which says "the platform, re-run").
      return { ...fail(this.redact(errorMessage(e))), reason: 'exit_code' };
    }

    // Flat in the base directory (no per-step mkdir), created in parallel: each file system
    // call is a thread-pool round trip on the critical path of the step.
    // The summary is written to, never read: there is no page to show a job summary on. A file
    // of the step's own (not /dev/null, which a root step could replace for the whole host).
    const files = STEP_FILE_KINDS.map((kind) => join(this.baseDir, stepFileName(index, kind)));
    const [outFile, envFile, pathFile, summaryFile] = files as [string, string, string, string];
    const prepError = this.workspace.prepareStep
      ? await this.workspace.prepareStep().then(
          () => this.createStepFiles(files),
          (e: unknown) => e,
        )
      : await this.createStepFiles(files);
    if (prepError !== undefined) return fail(`could not prepare the step's files: ${errorMessage(prepError)}`, false);
    const wp = (p: string) => this.workspace.toWorkspacePath(p);
    const fullEnv: Record<string, string> = {
      ...this.defaultEnv(),
      ...env,
      // As on GitHub, the GITHUB_* and RUNNER_* values the engine gives cannot be overwritten.
      ...this.protectedEnv(),
      GITHUB_OUTPUT: wp(outFile),
      PIPEWRIGHT_OUTPUT: wp(outFile),
      GITHUB_ENV: wp(envFile),
      PIPEWRIGHT_ENV: wp(envFile),
      GITHUB_PATH: wp(pathFile),
      GITHUB_STEP_SUMMARY: wp(summaryFile),
      GITHUB_WORKSPACE: this.wsPath,
      RUNNER_TEMP: wp(this.runnerTemp),
      [ATTEMPT_ID_ENV]: this.attemptId,
      [STEP_ID_ENV]: `${this.attemptId}.${index}`,
    };

    // `::set-output` lines (older workflows); $GITHUB_OUTPUT wins for a name set both ways, as
    // GitHub reads the file after the step.
    const commandOutputs: Record<string, string> = Object.create(null);
    let commandBytes = 0;
    let disabledCommand: string | undefined;
    // `::set-env` / `::add-path`, when ACTIONS_ALLOW_UNSECURE_COMMANDS allows them (the files win).
    const commandEnv: Record<string, string> = Object.create(null);
    let envCommandBytes = 0;
    const commandPath: string[] = [];
    const scan = createStepCommandScanners({
      ...(this.ctx.addMask ? { mask: (v: string) => this.addMask(v) } : {}),
      output: (name, value) => {
        if (name === '__proto__') return;
        commandBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
        if (commandBytes <= MAX_FILE_COMMAND_BYTES) commandOutputs[name] = value;
      },
      allowed: fullEnv.ACTIONS_ALLOW_UNSECURE_COMMANDS?.toLowerCase() === 'true',
      anyStopToken: fullEnv.ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS?.toLowerCase() === 'true',
      setEnv: (name, value) => {
        if (name === '__proto__') return;
        envCommandBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
        if (envCommandBytes <= MAX_FILE_COMMAND_BYTES) commandEnv[name] = value;
      },
      addPath: (dir) => {
        if (commandPath.length < 1000) commandPath.push(dir);
      },
      disabled: (_command, message) => {
        disabledCommand ??= message;
      },
    });
    const io: ExecIO = {
      stdout: (chunk) => {
        scan.stdout(chunk);
        this.noteLineEnd('stdout', index, chunk);
        return this.ctx.output('stdout', index, chunk);
      },
      stderr: (chunk) => {
        scan.stderr(chunk);
        this.noteLineEnd('stderr', index, chunk);
        return this.ctx.output('stderr', index, chunk);
      },
    };
    let res: ExecResult;
    try {
      res = await this.workspace.exec(
        {
          script,
          shell: template,
          ...(workingDirectory !== undefined ? { workingDirectory } : {}),
          env: fullEnv,
          signal,
          killGraceMs: step.killGraceMs ?? job.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
          ...(this.pathPrepend.length ? { pathPrepend: [...this.pathPrepend] } : {}),
        },
        io,
      );
    } catch (e) {
      scan.flush();
      return fail(`could not run the step: ${this.redact(errorMessage(e))}`, false);
    }
    // A last line without a newline (a trailing `::add-mask::` must mask before the log is written).
    scan.flush();

    let outputs: Record<string, string> = {};
    let envAdditions: Record<string, string> = {};
    let pathAdditions: string[] = [];
    let fileError: string | undefined;
    try {
      const [outText, envText, pathText] = await Promise.all([
        readIfWritten(outFile, '$GITHUB_OUTPUT'),
        readIfWritten(envFile, '$GITHUB_ENV'),
        readIfWritten(pathFile, '$GITHUB_PATH'),
      ]);
      outputs = parseFileCommands(outText, '$GITHUB_OUTPUT');
      if (commandBytes > 0) {
        if (commandBytes > MAX_FILE_COMMAND_BYTES) {
          throw new Error(
            `::set-output lines set more than ${formatBytes(MAX_FILE_COMMAND_BYTES)} of outputs: pass large data as a file instead`,
          );
        }
        outputs = { ...commandOutputs, ...outputs };
        checkOutputSizes(outputs);
      }
      // A UTF-16 unit is at most 3 UTF-8 bytes: a short file cannot hold an output over the limit.
      else if (outText.length * 3 > MAX_OUTPUT_BYTES) checkOutputSizes(outputs);
      if (envCommandBytes > MAX_FILE_COMMAND_BYTES) {
        throw new Error(
          `::set-env lines set more than ${formatBytes(MAX_FILE_COMMAND_BYTES)} of variables: pass large data as a file instead`,
        );
      }
      envAdditions = { ...commandEnv, ...parseFileCommands(envText, '$GITHUB_ENV') };
      pathAdditions = [...commandPath, ...parsePathFile(pathText)];
      checkEnvAdditions(envAdditions, pathAdditions);
    } catch (e) {
      fileError = errorMessage(e);
    }
    const nodeOptions = Object.keys(envAdditions).filter((k) => k.toUpperCase() === 'NODE_OPTIONS');
    if (nodeOptions.length > 0) {
      // As on GitHub: NODE_OPTIONS from $GITHUB_ENV would reach every later node process.
      for (const k of nodeOptions) delete envAdditions[k];
      await this.emit(
        'stderr',
        index,
        'pipewright: NODE_OPTIONS cannot be set through $GITHUB_ENV (as on GitHub); ignored\n',
      );
    }
    const base = { exitCode: res.exitCode, signal: res.signal, outputs, envAdditions, pathAdditions };
    if (res.exitCode !== 0) {
      const message =
        res.exitCode === null
          ? `the process was killed by ${res.signal ?? 'a signal'}`
          : `the process exited with code ${res.exitCode}`;
      return { ...base, outcome: 'failure', reason: 'exit_code', message };
    }
    fileError ??= disabledCommand;
    if (fileError !== undefined) {
      // The step's own output cannot explain this failure (nor, under continue-on-error, the report): say it.
      await this.emit('stderr', index, `pipewright: ${this.redact(fileError)}\n`);
      return { ...base, outcome: 'failure', reason: 'exit_code', message: fileError };
    }
    return { ...base, outcome: 'success' };
  }

  /**
   * Creates (truncates) the step's file-command files, as GitHub does: scripts that check
   * for them (`@actions/core` refuses to write to a missing file) see them exist. With the
   * directories, one round trip in the usual case; resolves to the error, if any.
   */
  private async createStepFiles(files: string[]): Promise<unknown> {
    const created = await Promise.allSettled([this.dirsReady, ...files.map((f) => this.createEmpty(f))]);
    const dirsError = created[0]?.status === 'fulfilled' ? created[0].value : undefined;
    if (dirsError !== undefined) return dirsError;
    const missing = created.some(
      (r) => r.status === 'rejected' && (r.reason as NodeJS.ErrnoException | undefined)?.code === 'ENOENT',
    );
    // `.pipewright/` did not exist when the files were opened; it does now.
    const again = missing ? await Promise.allSettled(files.map((f) => this.createEmpty(f))) : created.slice(1);
    const bad = again.find((r) => r.status === 'rejected');
    return bad?.status === 'rejected' ? bad.reason : undefined;
  }

  /**
   * An empty file once `open` returns; its `close` runs off the critical path. A step may have
   * left a symlink in its place (in a recycled or bind-mounted workspace): that is never
   * followed, which would truncate the link's target on the host, but replaced.
   */
  private createEmpty(file: string, replaced = false): Promise<void> {
    return new Promise((resolve, reject) => {
      openFd(file, OWN_WRITE_FLAGS, 0o666, (err, fd) => {
        if (err?.code === 'ELOOP' && !replaced) {
          unlink(file).then(() => this.createEmpty(file, true).then(resolve, reject), reject);
          return;
        }
        if (err) return reject(err);
        this.closes.push(new Promise<void>((done) => close(fd, () => done())));
        resolve();
      });
    });
  }

  private async runAction(step: StepSpec, index: number, signal: AbortSignal): Promise<TryResult> {
    const uses = step.uses ?? '';
    const handler = this.ctx.actions.get(uses) ?? this.ctx.actions.get(uses.split('@')[0] ?? uses);
    const empty = { outputs: {}, envAdditions: {} };
    if (handler === undefined) {
      return {
        ...empty,
        outcome: 'failure',
        reason: 'exit_code',
        nonRetryable: true,
        message: `action \`${uses}\` is not registered; register it with engine.registerAction('${uses}', fn)`,
      };
    }
    let env: Record<string, string>;
    let inputs: Record<string, string>;
    try {
      env = { ...this.defaultEnv(), ...this.stepEnv(step), ...this.protectedEnv() };
      const exprCtx = this.exprContext(env);
      inputs = Object.fromEntries(
        Object.entries(step.with).map(([k, v]) => [k, interpolate(String(v), exprCtx, this.status())]),
      );
    } catch (e) {
      return {
        ...empty,
        outcome: 'failure',
        reason: 'exit_code',
        nonRetryable: true,
        message: this.redact(errorMessage(e)),
      };
    }
    // log() is synchronous for the action; chaining keeps lines in order and lets us await backpressure at the end.
    let pending: Promise<void> = Promise.resolve();
    const log = (line: string) => {
      pending = pending.then(() => this.ctx.output('stdout', index, encoder.encode(`${line}\n`)));
    };
    let onAbort: (() => void) | undefined;
    try {
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason);
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
      aborted.catch(() => {});
      const returned = await Promise.race([
        Promise.resolve().then(() => handler({ inputs, env, workspace: this.workspace.hostDir, signal, log })),
        aborted,
      ]);
      await pending.catch(() => {});
      const outputs: Record<string, string> = {};
      if (returned && typeof returned === 'object') {
        for (const [k, v] of Object.entries(returned)) outputs[k] = typeof v === 'string' ? v : toExpressionString(v);
      }
      return { ...empty, outputs, outcome: 'success' };
    } catch (e) {
      await pending.catch(() => {});
      const r: TryResult = { ...empty, outcome: 'failure', reason: 'exit_code', message: this.redact(errorMessage(e)) };
      if (e instanceof NonRetryableError) r.nonRetryable = true;
      if (e instanceof RetryAfterError) r.retryAfterMs = e.retryAfterMs;
      return r;
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  private async emit(stream: 'stdout' | 'stderr', index: number, text: string): Promise<void> {
    // A line of pipewright's own starts on a line of its own, after output that ended mid-line.
    const key = streamKey(stream, index);
    const open = this.openLines.delete(key);
    await this.ctx.output(stream, index, encoder.encode(open ? `\n${text}` : text));
  }

  /** Notes whether a step's output chunk left a line unfinished (see {@link emit}). */
  private noteLineEnd(stream: 'stdout' | 'stderr', index: number, chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (chunk[chunk.length - 1] === 10) this.openLines.delete(streamKey(stream, index));
    else this.openLines.add(streamKey(stream, index));
  }

  private addMask(value: string): void {
    this.addSecret(value);
    this.ctx.addMask?.(value);
  }

  private addSecret(value: string): void {
    if (value === '') return;
    this.masks.add(value);
    for (const line of value.split(/\r?\n/)) if (line.trim() !== '') this.masks.add(line);
  }

  /** Replaces secret and masked values in text that leaves the loop (messages, reported outputs). */
  private redact(text: string): string {
    let out = text;
    for (const m of [...this.masks].sort((a, b) => b.length - a.length)) {
      if (out.includes(m)) out = out.split(m).join('***');
    }
    return out;
  }
}

/** The most a step may write to one file-command file: bounds what one step puts in memory. */
const MAX_FILE_COMMAND_BYTES = 16 * 1024 * 1024;
/** The most one output may hold: GitHub's limit (1 MB per output). */
const MAX_OUTPUT_BYTES = 1024 * 1024;

/**
 * A file command file's text; most steps write none, and one `lstat` is cheaper than
 * open+fstat+read+close. The file is the step's to replace: only a regular file is read
 * (a symlink would let a container step read host files through the engine), opened
 * without following links or blocking on a FIFO and checked again on the open descriptor,
 * and at most {@link MAX_FILE_COMMAND_BYTES}, however much a leftover writer appends meanwhile.
 */
async function readIfWritten(file: string, name: string): Promise<string> {
  const st = await lstat(file);
  if (st.isFile() && st.size === 0) return '';
  if (!st.isFile()) throw new Error(`${name} is not a regular file (the step replaced it); write to it with >>`);
  const fh = await open(file, OWN_READ_FLAGS);
  try {
    const now = await fh.stat();
    if (!now.isFile()) throw new Error(`${name} is not a regular file (the step replaced it); write to it with >>`);
    if (now.size > MAX_FILE_COMMAND_BYTES) {
      throw new Error(
        `${name} holds ${formatBytes(now.size)}; a step may write at most ${formatBytes(MAX_FILE_COMMAND_BYTES)} to it: pass large data as a file instead`,
      );
    }
    const buf = Buffer.allocUnsafe(now.size);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.toString('utf8', 0, got);
  } finally {
    await fh.close();
  }
}

/** The directories of a `$GITHUB_PATH` file: one per line, blank lines ignored (as GitHub reads it). */
function parsePathFile(text: string): string[] {
  if (text === '') return [];
  const dirs: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const dir = line.trim();
    if (dir !== '') dirs.push(dir);
  }
  return dirs;
}

/** A step's name when it has no `name:`, as GitHub shows it: `Run <first line of run>`, `Run <uses>`. */
export function defaultStepName(step: Pick<StepSpec, 'run' | 'uses' | 'index'>): string {
  if (step.run !== undefined) {
    const first = step.run.split('\n').find((l) => l.trim() !== '') ?? '';
    return `Run ${first.trim()}`;
  }
  if (step.uses !== undefined) return `Run ${step.uses}`;
  return `Step ${step.index + 1}`;
}

/**
 * Throws when a variable or directory a step adds for the later steps cannot be put in a
 * process environment (a NUL byte, a `=` in a name): the step that wrote it fails, not the
 * next one (which would fail to start, as `infra`).
 */
function checkEnvAdditions(env: Record<string, string>, path: readonly string[]): void {
  for (const [name, value] of Object.entries(env)) {
    if (name.includes('=') || name.includes('\0')) {
      throw new Error(`$GITHUB_ENV: the variable name ${JSON.stringify(name)} cannot hold \`=\` or a NUL byte`);
    }
    if (value.includes('\0')) throw new Error(`$GITHUB_ENV: the value of ${name} holds a NUL byte`);
  }
  for (const dir of path) {
    if (dir.includes('\0')) throw new Error(`$GITHUB_PATH: ${JSON.stringify(dir)} holds a NUL byte`);
  }
}

/** One number per step and stream. */
function streamKey(stream: 'stdout' | 'stderr', index: number): number {
  return index * 2 + (stream === 'stderr' ? 1 : 0);
}

/** Throws when an output is over GitHub's 1 MB limit for one output. */
function checkOutputSizes(outputs: Record<string, string>): void {
  for (const [key, value] of Object.entries(outputs)) {
    const bytes = Buffer.byteLength(value);
    if (bytes > MAX_OUTPUT_BYTES) {
      throw new Error(
        `$GITHUB_OUTPUT: output \`${key}\` holds ${formatBytes(bytes)}; an output may hold at most ${formatBytes(MAX_OUTPUT_BYTES)} (GitHub's limit): pass large data as a file instead`,
      );
    }
  }
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${n} bytes`;
}

function failureKind(r: TryResult): StepFailureKind {
  if (r.reason === 'timeout') return { kind: 'timeout' };
  if (r.reason === 'infra') return { kind: 'infra' };
  return { kind: 'failure', exitCode: r.exitCode ?? null };
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function fmtMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
