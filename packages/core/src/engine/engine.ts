import { createHash } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { monotonicFactory } from 'ulid';
import { z } from 'zod';
import { PipewrightError } from '../errors.js';
import { evaluateValue, interpolate, isTruthy, referencedSecrets } from '../expr/index.js';
import { logLineWanted } from '../logs/filter.js';
import type { LogPipelineOptions } from '../logs/options.js';
import { RunLogger } from '../logs/run-logger.js';
import type { ActionHandler, AttemptOutcome, Executor } from '../ports/executor.js';
import type { LogBatch, LogLine, LogReadOptions, LogStore } from '../ports/logs.js';
import type { SecretProvider } from '../ports/secrets.js';
import {
  attachSpecJson,
  type CancelRequest,
  isJobStatus,
  isRunStatus,
  isTerminalRun,
  type JobRecord,
  RUN_STATUSES,
  type RunQuery,
  type RunRecord,
  type RunStatus,
  type StateStore,
} from '../ports/state.js';
import { definePipeline, type PipelineInput, parsePipeline } from '../spec/parse.js';
import type { JobSpec, PipelineSpec } from '../spec/types.js';
import { errorMessage } from '../util/error-message.js';
import { type AttemptHost, RunningAttempt } from './attempt.js';
import { abortableSleep, type Clock, type Random, seededRandom, systemClock } from './clock.js';
import { buildReport, type RunReport } from './report.js';
import { baseBackoffDelay } from './retry.js';
import {
  githubContext,
  infraOutcome,
  initialJobs,
  Scheduler,
  type SchedulerCommand,
  type SchedulerEmit,
  type SchedulerEvent,
  storedJobs,
} from './scheduler.js';
import { isTransientStoreError, RetryingLogStore, RetryingStateStore, type StoreRetryOptions } from './store-retry.js';

/** Options of {@link Engine}. */
export interface EngineOptions {
  /** Where run state lives. */
  store: StateStore;
  /** Where log lines live. */
  logs: LogStore;
  /** Executors by name (`process`, `docker`, ...) or as a list (named by `executor.name`). */
  executors: Record<string, Executor> | readonly Executor[];
  /** Resolves `secrets.NAME` just in time, when an attempt starts. */
  secrets?: SecretProvider;
  /** Global limit of running attempts. @default 8 */
  concurrency?: number;
  /** Time source and timers. @default the system clock */
  clock?: Clock;
  /** Random source for backoff jitter; seed it to replay runs. @default Math.random */
  random?: Random;
  /** Picks the executor of a job; the default sends `container:` jobs to `docker` and the rest to `process` (or the only executor). */
  route?: (job: JobSpec, executors: readonly string[]) => string | { error: string };
  /** Log pipeline tuning (batch sizes, caps). */
  logOptions?: LogPipelineOptions;
  /** Identity of this engine instance, used as lease owner. @default a random id */
  instanceId?: string;
  /** Lease TTL for owned runs. @default 30000 */
  leaseTtlMs?: number;
  /**
   * Run `recover()` when the engine starts (DESIGN §4.8): unfinished runs in the store whose
   * lease has expired are taken over. The first `recover()` call also returns the runs taken
   * at start. Turn it off for an engine that must only run what it submits itself. @default true
   */
  recoverOnStart?: boolean;
  /**
   * Look for runs to take over (expired leases: their engine died or stalled) every this many
   * ms, as a `recover()` pass that reports its runs only through events (DESIGN §4.8: another
   * instance takes over an expired run). `false` turns it off.
   * @default `leaseTtlMs` when `recoverOnStart` is on, else off
   */
  recoverEveryMs?: number | false;
  /** How long store calls ride out an unreachable store before failing with `STORE_UNAVAILABLE`. @default {maxMs: 30000} */
  storeRetry?: StoreRetryOptions;
  /**
   * DESIGN §4.4: a job that waits longer than this to be started (global limit,
   * executor capacity, no worker) fails with reason `infra`; its retry policy
   * applies. Waiting on `max-parallel` or a concurrency group does not count.
   * `Infinity` disables it. @default 86400000 (24 h, GitHub's queue limit)
   */
  queueTimeoutMs?: number;
}

/** Options of {@link Engine.submit}. */
export interface SubmitOptions {
  inputs?: Record<string, unknown>;
  /** Submitting twice with one key returns the first run. */
  idempotencyKey?: string;
  /** Higher runs first when runs compete for capacity. @default 0 */
  priority?: number;
  /** What started the run (`{event: 'push', ref: ...}`): every key is `github.<key>`, and `event` is also `github.event_name`. */
  trigger?: Record<string, unknown>;
  /** Names of secrets the run may resolve. @default every `secrets.NAME` the pipeline references */
  secrets?: string[];
  /**
   * Configuration variables, the `vars` context (GitHub's repository and organisation variables):
   * name -> text. Stored with the run and shown in clear: never put a secret here.
   */
  vars?: Record<string, string>;
}

/** Options of {@link Engine.cancel}. */
export interface CancelOptions {
  reason?: string;
  /** Who asked. @default 'user' */
  by?: string;
  /** Also abort cleanup (`always()`) jobs — the second Ctrl-C. */
  force?: boolean;
}

/** A submitted run. */
export interface RunHandle {
  readonly id: string;
  /** False when an idempotency key returned an existing run. */
  readonly created: boolean;
  /** Resolves when the run is finished. */
  wait(): Promise<RunReport>;
  cancel(options?: CancelOptions): Promise<void>;
}

/** Events of the engine; payloads carry ids, never secret values. */
export interface EngineEvents {
  'run:queued': (e: { runId: string }) => void;
  'run:started': (e: { runId: string }) => void;
  'run:cancelling': (e: { runId: string; cancel: { by: string; reason: string; at: number; force: boolean } }) => void;
  'run:finished': (e: { runId: string; status: string; reason?: string }) => void;
  'job:queued': (e: { runId: string; jobId: string }) => void;
  'job:started': (e: { runId: string; jobId: string }) => void;
  'job:retrying': (e: { runId: string; jobId: string; attempt: number; delayMs: number }) => void;
  'job:finished': (e: { runId: string; jobId: string; status: string; reason?: string }) => void;
  'attempt:started': (e: { runId: string; jobId: string; attempt: number; executor: string }) => void;
  'attempt:finished': (e: { runId: string; jobId: string; attempt: number; status: string; reason?: string }) => void;
  'step:started': (e: { runId: string; jobId: string; attempt: number; step: number; name: string }) => void;
  'step:finished': (e: { runId: string; jobId: string; attempt: number; step: number; status: string }) => void;
  /** One event per stored log batch (not per line). */
  log: (batch: LogBatch) => void;
  /** A problem the engine handled (store write retried, executor crashed); never thrown at the host. */
  error: (err: Error) => void;
}

const optionsSchema = z.object({
  concurrency: z.number().int().positive().optional(),
  leaseTtlMs: z.number().int().positive().optional(),
  queueTimeoutMs: z.number().positive().optional(),
});

/** How long a takeover waits for executors to stop what lost attempts left running. */
const RECLAIM_MAX_MS = 10_000;
/** How long a run given back waits for its lease release (an expired lease frees it anyway). */
const RELEASE_WAIT_MS = 2_000;

/** Waits for `p` (its failure ignored) at most `ms`. */
async function withinMs(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref?.();
    }),
  ]);
  clearTimeout(timer);
}

/**
 * The scheduling engine: a thin loop that feeds the {@link Scheduler} events and
 * carries out its commands — persisting state before acting on it, calling
 * executors, routing output through the log pipeline.
 *
 * @example
 * const engine = new Engine({ store: new MemoryStore(), logs: new MemoryLogStore(), executors: [new ProcessExecutor()] });
 * const run = await engine.submit(yamlText);
 * const report = await run.wait();
 */
export class Engine extends EventEmitter<EngineEvents> {
  private readonly store: RetryingStateStore;
  private readonly logStore: RetryingLogStore;
  private readonly executors = new Map<string, Executor>();
  private readonly secrets: SecretProvider | undefined;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly scheduler: Scheduler;
  private readonly actions = new Map<string, ActionHandler>();
  private readonly queue: SchedulerEvent[] = [];
  private pumping = false;
  private timer: unknown;
  private timerAt: number | undefined;
  private readonly attempts = new Map<string, RunningAttempt>();
  private readonly now = (): number => this.clock.now();
  private readonly attemptHost: AttemptHost = {
    enqueue: (event) => this.enqueue(event),
    attemptEnded: (key) => this.attempts.delete(key),
    actions: this.actions,
    now: this.now,
    random: () => this.random(),
    sleep: (ms, signal) => abortableSleep(ms, signal, this.clock),
  };
  private readonly loggers = new Map<string, RunLogger>();
  private readonly waiters = new Map<
    string,
    Array<{ resolve: (r: RunReport) => void; reject: (e: unknown) => void }>
  >();
  /**
   * Runs this engine submitted or restored and has not finished. The scheduler learns of
   * a run only when the loop takes its event, and the final status is stored a moment
   * after the scheduler drops it; in both gaps `wait` and `cancel` must not take the run
   * for another engine's (that polled the store every 250 ms, or dropped the cancel).
   * Every run the scheduler holds is in here (added before the scheduler's event, removed
   * after it drops the run), so this alone answers "is the run this engine's".
   */
  private readonly ownRuns = new Set<string>();
  /** The recovery the constructor started, until a recover() call has reported its runs. */
  private startRecovery: Promise<string[]> | undefined;
  /** Recovery passes under way (start-up and recover() calls). */
  private readonly recoveries = new Set<Promise<string[]>>();
  /** Submits under way (between their first check and handing the run to the scheduler). */
  private readonly submits = new Set<Promise<RunHandle>>();
  /** Runs recover() has taken and is still loading, with the cancels that arrived meanwhile. */
  private readonly restoring = new Map<string, RestoreBatch>();
  private readonly secretRefs = new WeakMap<JobSpec, { env: object; names: string[] }>();
  private readonly specSecrets = new WeakMap<PipelineSpec, boolean>();
  private readonly ulid = monotonicFactory();
  private readonly instanceId: string;
  private readonly leaseTtlMs: number;
  private readonly logOptions: LogPipelineOptions;
  private leaseTimer: NodeJS.Timeout | undefined;
  /** The periodic takeover pass (`recoverEveryMs`). */
  private recoverTimer: NodeJS.Timeout | undefined;
  private cancelPoll: NodeJS.Timeout | undefined;
  /** A cancel-request poll is under way. */
  private polling = false;
  /** The one ref'd handle that keeps the host process alive while runs are active. */
  private loopHold: NodeJS.Timeout | undefined;
  /** Runs that left the scheduler but whose waiters are not resolved yet. */
  private finishing = 0;
  private closed = false;
  /** close() has begun: a store outage no longer holds the loop. */
  private closing = false;
  private idle: Promise<void> = Promise.resolve();

  constructor(options: EngineOptions) {
    super();
    // Plain-JS callers get a named error, not a TypeError from deep inside.
    for (const key of ['store', 'logs', 'executors'] as const) {
      if (typeof options?.[key] !== 'object' || options[key] === null) {
        throw new PipewrightError(
          'INVALID_ARGUMENT',
          `Engine needs \`${key}\` (${key === 'executors' ? 'a list or map of executors' : key === 'store' ? 'a StateStore, e.g. new MemoryStore()' : 'a LogStore, e.g. new MemoryLogStore()'})`,
        );
      }
    }
    const parsed = optionsSchema.safeParse({
      concurrency: options.concurrency,
      leaseTtlMs: options.leaseTtlMs,
      queueTimeoutMs: options.queueTimeoutMs === Number.POSITIVE_INFINITY ? undefined : options.queueTimeoutMs,
    });
    if (!parsed.success) {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `Invalid engine options: ${parsed.error.issues.map((i) => `\`${i.path.join('.')}\` ${i.message}`).join('; ')}`,
      );
    }
    this.store = new RetryingStateStore(options.store, options.storeRetry);
    this.logStore = new RetryingLogStore(options.logs, options.storeRetry);
    this.secrets = options.secrets;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.instanceId = options.instanceId ?? `engine-${this.ulid().toLowerCase()}`;
    this.leaseTtlMs = options.leaseTtlMs ?? 30_000;
    this.logOptions = options.logOptions ?? {};
    const list = Array.isArray(options.executors)
      ? (options.executors as readonly Executor[])
      : Object.entries(options.executors as Record<string, Executor>).map(([name, e]) => ({ e, name }));
    for (const item of list) {
      const [name, e] =
        'e' in item ? [item.name as string, item.e as Executor] : [(item as Executor).name, item as Executor];
      this.executors.set(name, e);
    }
    if (this.executors.size === 0) throw new PipewrightError('INVALID_ARGUMENT', 'Engine needs at least one executor');
    const concurrency = options.concurrency ?? 8;
    const names = [...this.executors.keys()];
    const route = options.route ?? defaultRoute;
    this.scheduler = new Scheduler({
      now: () => this.clock.now(),
      random: this.random,
      concurrency,
      executors: names.map((name) => ({
        name,
        capacity: this.executors.get(name)?.capacity ?? Number.POSITIVE_INFINITY,
        workerId: this.executors.get(name)?.workerId,
      })),
      queueTimeoutMs: options.queueTimeoutMs ?? 86_400_000,
      // The host's route function is user code: whatever it throws or returns fails the job
      // (infra, with a message), never the engine's loop.
      route: (job) => {
        let r: unknown;
        try {
          r = route(job, names);
        } catch (err) {
          return {
            error: `the engine's route function threw for job \`${job.id}\`: ${(err as Error)?.message ?? String(err)}`,
          };
        }
        if (typeof r === 'string') return { executor: r };
        if (typeof r === 'object' && r !== null && typeof (r as { error?: unknown }).error === 'string') {
          return { error: (r as { error: string }).error };
        }
        return {
          error: `the engine's route function returned ${shown(r)} for job \`${job.id}\`; return an executor name or {error: message}`,
        };
      },
    });
    const every = options.recoverEveryMs ?? ((options.recoverOnStart ?? true) ? this.leaseTtlMs : false);
    if (every !== false && !(Number.isInteger(every) && every > 0)) {
      throw new PipewrightError('INVALID_ARGUMENT', `recoverEveryMs must be a positive integer or false, got ${every}`);
    }
    // DESIGN §4.8: recover() also runs at start; its runs are reported by the first recover() call.
    if (options.recoverOnStart ?? true) {
      const atStart = this.recoverRuns();
      this.startRecovery = atStart;
      atStart.catch((err) => this.emit('error', err as Error));
    }
    if (every !== false) {
      // One pass at a time (a slow store must not pile them up); a failed pass is retried next time.
      this.recoverTimer = setInterval(() => {
        if (this.closing || this.closed || this.recoveries.size > 0) return;
        this.recoverRuns().catch((err) => this.emit('error', err as Error));
      }, every);
      this.recoverTimer.unref();
    }
  }

  /**
   * Emits an event. A listener that throws does not reach the engine's loop (which would stall
   * the run) or the host: the error goes to the `error` listeners, and if one of those throws
   * too, to `console.error`.
   */
  override emit<T extends EventEmitter.EventNames<EngineEvents>>(
    event: T,
    ...args: EventEmitter.EventArgs<EngineEvents, T>
  ): boolean {
    try {
      return super.emit(event, ...args);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (event !== 'error') {
        try {
          return super.emit(
            'error',
            new PipewrightError('LISTENER_FAILED', `a listener of \`${String(event)}\` threw: ${error.message}`, {
              cause: error,
            }),
          );
        } catch (inner) {
          console.error(inner);
          return true;
        }
      }
      console.error(error);
      return true;
    }
  }

  /** Registers a function run by steps with `uses: name`. */
  registerAction(name: string, handler: ActionHandler): void {
    if (typeof name !== 'string' || name === '' || typeof handler !== 'function') {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `registerAction takes a non-empty name and a function, got ${typeof name} and ${typeof handler}`,
      );
    }
    this.actions.set(name, handler);
  }

  /**
   * Submits a pipeline (YAML text or a parsed spec) and returns at once; the run
   * proceeds in the background. Invalid pipelines throw `PIPELINE_INVALID`.
   */
  async submit(pipeline: string | PipelineSpec | PipelineInput, options: SubmitOptions = {}): Promise<RunHandle> {
    this.assertOpen();
    // close() waits for the submits under way, so the runs they hand the scheduler are closed too.
    const submitting = this.submitRun(pipeline, options);
    this.submits.add(submitting);
    try {
      return await submitting;
    } finally {
      this.submits.delete(submitting);
    }
  }

  private async submitRun(pipeline: string | PipelineSpec | PipelineInput, options: SubmitOptions): Promise<RunHandle> {
    const spec = this.specOf(pipeline);
    checkSubmitOptions(options);
    const inputs = resolveInputs(spec, options.inputs ?? {});
    const now = this.clock.now();
    const id = this.ulid(now).toLowerCase();
    const trigger: Record<string, unknown> = { ...(options.trigger ?? {}) };
    const pipelineName = spec.name ?? spec.file ?? 'pipeline';
    // The same `github` context the scheduler builds for the run's jobs.
    const vars = options.vars === undefined ? undefined : { ...options.vars };
    const ctx = { github: githubContext({ id, pipelineName, trigger, inputs }), inputs, vars: vars ?? {} };
    const specJson = JSON.stringify(spec);
    const referenced = referencedSecrets(specJson);
    this.specSecrets.set(spec, referenced.length > 0);
    const run: RunRecord = {
      id,
      pipelineName,
      specHash: createHash('sha256').update(specJson).digest('hex').slice(0, 16),
      spec,
      inputs,
      trigger,
      priority: options.priority ?? 0,
      status: 'queued',
      secretNames: options.secrets ?? referenced,
      createdAt: now,
    };
    attachSpecJson(run, specJson);
    if (options.idempotencyKey !== undefined) run.idempotencyKey = options.idempotencyKey;
    if (vars !== undefined) run.vars = vars;
    if (spec.concurrency) {
      try {
        run.concurrencyGroup = interpolate(spec.concurrency.group, ctx);
        const cip = spec.concurrency.cancelInProgress;
        const cancel = typeof cip === 'string' ? isTruthy(evaluateValue(cip, ctx)) : cip;
        if (cancel) run.cancelInProgress = true;
      } catch (err) {
        throw new PipewrightError('PIPELINE_INVALID', `concurrency.group: ${(err as Error).message}`, { cause: err });
      }
    }
    const jobs = initialJobs(id, spec, now);
    // Dynamic matrix placeholders stay in memory until they expand (or end unexpanded).
    // Claimed before the store has it, so a concurrent recover() that lists it leaves it alone.
    this.ownRuns.add(id);
    let created: Awaited<ReturnType<StateStore['createRun']>>;
    try {
      created = await this.store.createRun(run, storedJobs(spec, jobs));
    } catch (err) {
      this.ownRuns.delete(id);
      throw err;
    } finally {
      attachSpecJson(run, undefined);
    }
    const handle = this.handle(created.run.id, created.created);
    if (!created.created) {
      this.ownRuns.delete(id);
      return handle;
    }
    let leased = await this.store.acquireLease(id, this.instanceId, this.leaseTtlMs).catch(() => true);
    if (leased) {
      // Another engine's recovery may have taken the run between createRun and here, run it and
      // let go of the lease already: then it is done, not this engine's to start.
      const stored = await this.store.getRun(id).catch(() => undefined);
      if (stored && (stored.status !== 'queued' || stored.startedAt !== undefined)) {
        leased = false;
        await this.store.releaseLease(id, this.instanceId).catch(() => undefined);
      }
    }
    if (!leased) {
      // Another engine took the run between createRun and here: it runs it, not this one.
      this.ownRuns.delete(id);
      return handle;
    }
    this.ensureLeaseTimer();
    this.enqueue({ type: 'submit', run, jobs });
    return handle;
  }

  /**
   * Cancels a run (its id or the handle `submit` returned), or one job of it (`{runId, job}`);
   * a second call with `force` also aborts cleanup jobs.
   */
  async cancel(target: RunRef | { runId: string; job: string }, options: CancelOptions = {}): Promise<void> {
    const runId = 'runId' in Object(target) ? (target as { runId: string }).runId : runIdOf(target as RunRef);
    if (!this.ownRuns.has(runId)) return this.requestCancel(runId, target, options);
    const event: SchedulerEvent = {
      type: 'cancel',
      runId,
      reason: options.reason ?? 'cancelled',
      by: options.by ?? 'user',
      force: options.force ?? false,
    };
    if ('job' in Object(target)) {
      const job = (target as { job: string }).job;
      this.assertJob(runId, job);
      event.job = job;
    }
    const loading = this.restoring.get(runId);
    if (loading) {
      // recover() has taken the run but not handed it to the scheduler yet, which would drop the cancel.
      loading.cancels.push(event);
      await loading.flushed;
      // Given back after all (close(), or another engine holds its lease): recorded in the store
      // for its owner, or refused for one job, as for any run of another engine.
      if (!this.ownRuns.has(runId)) return this.requestCancel(runId, target, options);
    } else this.enqueue(event);
    await this.settle();
  }

  /** Resolves with the run's report once it has finished (its id or the handle `submit` returned). */
  async wait(run: RunRef): Promise<RunReport> {
    const runId = runIdOf(run);
    if (!this.ownRuns.has(runId)) {
      const report = await this.getRun(runId);
      if (!report) throw runNotFound(runId);
      if (isTerminalRun(report.run.status)) return report;
      // Owned by another engine instance: poll the store.
      return this.followStored(runId);
    }
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(runId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(runId, list);
    });
  }

  /** The current report of a run (its id or the handle `submit` returned), or undefined when unknown. */
  async getRun(ref: RunRef): Promise<RunReport | undefined> {
    const runId = runIdOf(ref);
    const live = this.scheduler.snapshot(runId);
    if (live) return buildReport(live.run, live.jobs);
    const run = await this.store.getRun(runId);
    if (!run) return undefined;
    return buildReport(run, await this.store.getJobs(runId));
  }

  /** Stored runs, newest first. */
  async listRuns(query: RunQuery | { status?: RunStatus | RunStatus[]; limit?: number } = {}): Promise<RunRecord[]> {
    if (typeof query !== 'object' || query === null || Array.isArray(query)) {
      throw new PipewrightError('INVALID_ARGUMENT', `listRuns takes {status?, limit?}, got ${kindOf(query)}`);
    }
    // One status as a plain string is the same query as a list of one.
    const status = query.status;
    const statuses = typeof status === 'string' ? [status] : status;
    if (statuses !== undefined) {
      const bad = Array.isArray(statuses) ? statuses.find((s) => !isRunStatus(s)) : statuses;
      if (bad !== undefined || !Array.isArray(statuses)) {
        throw new PipewrightError(
          'INVALID_ARGUMENT',
          `listRuns status must be one of ${RUN_STATUSES.join(', ')} (or a list of them), got \`${String(bad)}\``,
        );
      }
    }
    if (typeof status === 'string') return this.store.listRuns({ ...query, status: [status] });
    return this.store.listRuns(query as RunQuery);
  }

  /**
   * A run's log lines: stored lines after `after` (optionally only one job's or step's, at
   * most `limit`), and with `follow` live lines until the run ends (`job`/`step` filter them too).
   */
  async *logs(
    runId: string,
    options: LogReadOptions & { follow?: boolean; signal?: AbortSignal } = {},
  ): AsyncIterable<LogLine[]> {
    const { follow, signal, ...read } = options;
    // An unknown id is an error, as for wait(): following it would wait for a run that never comes.
    if (!this.ownRuns.has(runId) && !(await this.store.getRun(runId))) {
      throw runNotFound(runId);
    }
    if (follow) {
      const opts: { after?: number; signal?: AbortSignal } = {};
      if (read.after !== undefined) opts.after = read.after;
      if (signal !== undefined) opts.signal = signal;
      const wanted = (l: LogLine) => logLineWanted(l, read);
      for await (const batch of this.logStore.follow(runId, opts)) {
        const lines = read.job === undefined && read.step === undefined ? batch.lines : batch.lines.filter(wanted);
        if (lines.length > 0) yield lines;
      }
      return;
    }
    yield await this.logStore.read(runId, read);
  }

  /** Loads unfinished runs from the store and continues them; attempts that were running are marked `lost`. */
  async recover(): Promise<string[]> {
    this.assertOpen();
    // The runs the start-up recovery took are this call's too (once), then the store is looked at again.
    const atStart = this.startRecovery;
    this.startRecovery = undefined;
    const early = atStart ? await atStart.catch(() => [] as string[]) : [];
    const now = await this.recoverRuns();
    return [...early, ...now.filter((id) => !early.includes(id))];
  }

  /** One pass over the store, tracked so close() can wait for every pass under way. */
  private recoverRuns(): Promise<string[]> {
    const pass = this.recoverPass();
    this.recoveries.add(pass);
    const done = () => this.recoveries.delete(pass);
    pass.then(done, done);
    return pass;
  }

  private async recoverPass(): Promise<string[]> {
    const runs = await this.store.listRuns({ status: ['queued', 'running', 'cancelling'] });
    const taken: string[] = [];
    const restored: Array<{ run: RunRecord; jobs: JobRecord[] }> = [];
    let flushed!: () => void;
    const batch: RestoreBatch = { cancels: [], flushed: new Promise<void>((r) => (flushed = r)) };
    this.ensureLeaseTimer();
    /** The store failed the pass: what is taken is kept without asking it again. */
    let storeDown = false;
    try {
      for (const listed of runs.reverse()) {
        // An engine being closed takes nothing more over.
        if (this.closing || this.closed) break;
        if (this.ownRuns.has(listed.id)) continue;
        // A run another engine's submit() has stored but not leased yet may be taken here: that
        // engine then finds the lease taken and leaves the run to this one (see submit), so it
        // still runs once.
        const got = await this.store.acquireLease(listed.id, this.instanceId, this.leaseTtlMs);
        if (!got) continue;
        let run: RunRecord = listed;
        let jobs: JobRecord[];
        let lastSeq: number;
        try {
          // Read again under the lease: its owner may have finished it (and let the lease go)
          // since the list, and a stale `running` record would finish it a second time.
          const fresh = await this.store.getRun(listed.id);
          if (fresh === undefined || isTerminalRun(fresh.status)) {
            await this.store.releaseLease(listed.id, this.instanceId).catch(() => undefined);
            continue;
          }
          run = fresh;
          jobs = await this.store.getJobs(run.id);
          // Records the scheduler could not take (something else wrote them badly): set aside below.
          const bad = unrestorable(run, jobs);
          if (bad !== undefined) throw new PipewrightError('STORE_CORRUPT', bad);
          // The engine that wrote the run's lines so far numbered them: go on after its last one,
          // or the store would drop the first lines of this engine as resends.
          lastSeq = await this.logStore.lastSeq(run.id);
        } catch (err) {
          // Not loaded, not ours: the lease goes back for a later recovery.
          await this.store.releaseLease(run.id, this.instanceId).catch(() => undefined);
          // A store that is down stops the pass; a record that cannot be read sets only its run
          // aside; anything else (a run deleted meanwhile, a passing store error) leaves the run
          // for a later pass.
          const code = (err as PipewrightError)?.code;
          if (code === 'STORE_UNAVAILABLE') {
            storeDown = true;
            throw err;
          }
          if (code === 'STORE_CORRUPT') await this.setAside(run.id, errorMessage(err));
          else this.emit('error', err as Error);
          continue;
        }
        // close() began while the run was loading: hand it back instead of running it.
        if (this.closing || this.closed) {
          await this.store.releaseLease(run.id, this.instanceId).catch(() => undefined);
          break;
        }
        // A submit() of this engine may have claimed it while we waited on the store.
        if (this.ownRuns.has(run.id)) continue;
        taken.push(run.id);
        this.ownRuns.add(run.id);
        this.logger(run.id, lastSeq);
        this.restoring.set(run.id, batch);
        restored.push({ run, jobs });
      }
    } finally {
      // Before the lost attempts are retried (also for the runs taken before a store failure):
      // what they may have left running (the dead engine's step processes on this host, its
      // containers) is stopped, so a retry never runs beside it. All runs at once; their leases
      // are renewed meanwhile (they are `restoring`).
      if (await this.reclaimLost(restored)) {
        // Checked again after that wait: close() may have begun (the run goes back to the store
        // for another engine), or another engine may hold a lease this one failed to renew.
        for (let i = restored.length - 1; i >= 0; i--) {
          const id = (restored[i] as (typeof restored)[number]).run.id;
          const held =
            !this.closing &&
            !this.closed &&
            (storeDown || (await this.store.acquireLease(id, this.instanceId, this.leaseTtlMs).catch(() => true)));
          if (held) continue;
          restored.splice(i, 1);
          taken.splice(taken.indexOf(id), 1);
          await this.dropTaken(id, batch, storeDown);
        }
      }
      // One event for all: the scheduler gives every run back its concurrency groups before any
      // waiting job or queued run competes for one. Runs taken before a store failure are kept.
      // Cancels that came while the runs were loading follow it.
      if (restored.length > 0) this.enqueue({ type: 'restoreAll', runs: restored });
      for (const { run } of restored) {
        this.restoring.delete(run.id);
        // Asked for while nobody ran it (its engine had stopped).
        if (run.requestedCancel) this.applyRequestedCancel(run.id, run.requestedCancel);
      }
      for (const c of batch.cancels) this.enqueue(c);
      flushed();
    }
    await this.settle();
    return taken;
  }

  /**
   * Gives back a run recovery took but will not run after all (close() began, or another engine
   * holds its lease now): its lease when closing (one try, the store may be down: it expires
   * anyway), its waiters to the store. Cancels that came meanwhile are their callers' to record
   * (see {@link cancel}).
   */
  private async dropTaken(runId: string, batch: RestoreBatch, storeDown: boolean): Promise<void> {
    this.restoring.delete(runId);
    for (let i = batch.cancels.length - 1; i >= 0; i--) {
      if ((batch.cancels[i] as { runId: string }).runId === runId) batch.cancels.splice(i, 1);
    }
    this.forgetRun(runId);
    if ((this.closing || this.closed) && !storeDown) {
      await withinMs(this.store.releaseLease(runId, this.instanceId), RELEASE_WAIT_MS);
    }
  }

  /**
   * Asks each lost attempt's executor ({@link Executor.reclaim}) to stop what the attempt left
   * running, for all the runs at once; at most 10 s in all, and a failure is reported, not
   * fatal: the retry goes ahead. Resolves whether there was anything to reclaim.
   */
  private async reclaimLost(runs: ReadonlyArray<{ run: RunRecord; jobs: readonly JobRecord[] }>): Promise<boolean> {
    const calls: Promise<void>[] = [];
    for (const { run, jobs } of runs) {
      for (const j of jobs) {
        const a = j.attempts[j.attempts.length - 1];
        if (a === undefined || a.status !== 'running') continue;
        const executor = this.executors.get(a.executor);
        if (typeof executor?.reclaim !== 'function') continue;
        const lost = { runId: run.id, jobId: j.id, attempt: a.number, workerId: a.workerId };
        calls.push(
          Promise.resolve()
            .then(() => executor.reclaim?.(lost))
            .catch((err: unknown) => {
              const why = `could not stop what lost attempt ${a.number} of job ${j.id} left running: ${errorMessage(err)}`;
              this.emit('error', new PipewrightError('EXECUTOR_UNAVAILABLE', why, { cause: err, details: lost }));
            }),
        );
      }
    }
    if (calls.length === 0) return false;
    await withinMs(Promise.all(calls), RECLAIM_MAX_MS);
    return true;
  }

  /**
   * A run recovery cannot load (a record something else wrote badly): it is reported with its id
   * and marked failed (`infra`) where the store still takes that, so it neither blocks the other
   * runs nor waits unseen for ever.
   */
  private async setAside(runId: string, why: string): Promise<void> {
    const message = `run ${runId} cannot be recovered: its stored records are damaged (${why})`;
    this.emit('error', new PipewrightError('STORE_CORRUPT', message, { details: { runId } }));
    await this.store
      .updateRun(runId, { status: 'failed', reason: 'infra', message, finishedAt: this.clock.now() })
      .catch(() => undefined);
  }

  /** Stops the engine: aborts running attempts (as a forced cancel), flushes logs, closes executors. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    // Recoveries and submits under way finish first (new ones are refused), so the runs they
    // took or stored are closed too; settle() lets the scheduler take their events first.
    await Promise.all([...this.recoveries, ...this.submits].map((p) => p.catch(() => undefined)));
    await this.settle();
    for (const id of this.scheduler.runIds()) {
      this.enqueue({ type: 'cancel', runId: id, reason: 'engine closing', by: 'engine', force: true });
    }
    await this.settle();
    const deadline = Date.now() + 30_000;
    while (this.attempts.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.settle();
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    if (this.recoverTimer) clearInterval(this.recoverTimer);
    if (this.cancelPoll) clearInterval(this.cancelPoll);
    this.holdLoop();
    await Promise.all([...this.loggers.values()].map((l) => l.close().catch(() => undefined)));
    await Promise.all([...this.executors.values()].map((e) => e.close?.().catch(() => undefined)));
  }

  /** Resolves once every queued event has been processed and persisted. */
  async settle(): Promise<void> {
    for (let i = 0; i < 1000 && (this.pumping || this.queue.length); i++) await this.idle;
  }

  // ---- the loop -------------------------------------------------------------

  private handle(id: string, created: boolean): RunHandle {
    return {
      id,
      created,
      wait: () => this.wait(id),
      cancel: (o) => this.cancel(id, o),
    };
  }

  /**
   * A cancel of a run this engine does not own: recorded in the store as `requestedCancel`
   * for the owner to apply (see {@link pollCancelRequests}), or whoever recovers the run.
   */
  private async requestCancel(
    runId: string,
    target: RunRef | { runId: string; job: string },
    options: CancelOptions,
  ): Promise<void> {
    const stored = await this.store.getRun(runId);
    if (!stored) throw runNotFound(runId);
    if ('job' in Object(target)) {
      // A typo must not pass as a cancel that did nothing, finished run or not.
      const job = (target as { job: string }).job;
      const known = new Set<string>(Object.keys(stored.spec?.jobs ?? {}));
      for (const j of await this.store.getJobs(runId)) known.add(j.id);
      this.assertKnownJob(runId, job, [...known]);
    }
    if (isTerminalRun(stored.status)) return; // finished: nothing to cancel
    if ('job' in Object(target)) {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `Run \`${runId}\` is run by another engine instance; cancel its job \`${(target as { job: string }).job}\` through that engine, or cancel the whole run here`,
        { details: { runId } },
      );
    }
    const request: CancelRequest = {
      by: options.by ?? 'user',
      reason: options.reason ?? 'cancelled',
      at: this.clock.now(),
      force: options.force ?? false,
    };
    // A forced request never turns back into a graceful one.
    if (stored.requestedCancel?.force) request.force = true;
    try {
      await this.store.updateRun(runId, { requestedCancel: request }, { status: ['queued', 'running', 'cancelling'] });
    } catch (err) {
      // It finished in the meantime: nothing to cancel any more.
      if (err instanceof PipewrightError && err.code === 'STORE_CONFLICT') return;
      throw err;
    }
  }

  /** Applies cancels other instances recorded for the runs this engine owns. */
  private async pollCancelRequests(): Promise<void> {
    for (const id of this.scheduler.runIds()) {
      const stored = await this.store.getRun(id).catch(() => undefined);
      const request = stored?.requestedCancel;
      if (request) this.applyRequestedCancel(id, request);
    }
  }

  private applyRequestedCancel(runId: string, request: CancelRequest): void {
    const current = this.scheduler.runRecord(runId)?.cancel;
    if (current && (current.force || !request.force)) return; // already applied
    this.enqueue({ type: 'cancel', runId, reason: request.reason, by: request.by, force: request.force });
  }

  /** YAML text, a spec from parsePipeline/definePipeline, or a pipeline object in the YAML's own keys. */
  private specOf(pipeline: unknown): PipelineSpec {
    if (typeof pipeline === 'string') return parsePipeline(pipeline, { actions: [...this.actions.keys()] }).spec;
    if (isPipelineSpec(pipeline)) return pipeline;
    if (typeof pipeline !== 'object' || pipeline === null || Array.isArray(pipeline)) {
      throw new PipewrightError(
        'PIPELINE_INVALID',
        `submit() takes YAML text or a pipeline object, got ${pipeline === null ? 'null' : Array.isArray(pipeline) ? 'an array' : typeof pipeline}`,
      );
    }
    return definePipeline(pipeline as PipelineInput, { actions: [...this.actions.keys()] });
  }

  /** A job cancel must name a job of the run: a typo must not pass as a cancel that did nothing. */
  private assertJob(runId: string, job: string): void {
    const known = this.scheduler.jobIds(runId);
    if (known !== undefined) this.assertKnownJob(runId, job, known);
  }

  private assertKnownJob(runId: string, job: string, known: readonly string[]): void {
    if (known.includes(job)) return;
    const some = known.slice(0, 10).join(', ');
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `Run \`${runId}\` has no job \`${job}\`; its jobs are ${some}${known.length > 10 ? `, … (${known.length})` : ''}`,
      { details: { runId, job } },
    );
  }

  private assertOpen(): void {
    if (this.closed || this.closing) {
      throw new PipewrightError(
        'ENGINE_CLOSED',
        `The engine is ${this.closed ? 'closed' : 'closing'}; create a new Engine`,
      );
    }
  }

  private enqueue(event: SchedulerEvent): void {
    this.queue.push(event);
    if (!this.pumping) this.idle = this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length) {
        const commands: SchedulerCommand[] = [];
        // Take everything queued: one store write per batch of events.
        while (this.queue.length) {
          const ev = this.queue.shift() as SchedulerEvent;
          try {
            for (const c of this.scheduler.handle(ev)) commands.push(c);
          } catch (err) {
            this.emit('error', err as Error);
          }
        }
        const written = this.persist();
        if (written) await written;
        for (const c of commands) this.execute(c);
      }
    } finally {
      this.pumping = false;
      this.rearm();
      this.holdLoop();
    }
  }

  /**
   * The clock's timers are unref'd so an idle engine never keeps its host alive;
   * while runs are active one ref'd handle does, so `await run.wait()` in a script
   * survives a retry backoff with nothing else pending.
   */
  private holdLoop(): void {
    const active = !this.closed && (this.scheduler.activeRuns > 0 || this.finishing > 0);
    if (active && this.loopHold === undefined) this.loopHold = setInterval(() => {}, 2 ** 30);
    else if (!active && this.loopHold !== undefined) {
      clearInterval(this.loopHold);
      this.loopHold = undefined;
    }
  }

  /**
   * Writes changed records before their effects happen (DESIGN §4.8); retried with backoff.
   * Undefined when nothing changed, so the loop goes on without a promise round.
   */
  private persist(): Promise<void> | undefined {
    const dirty = this.scheduler.drainDirty();
    if (!dirty.runs.length && !dirty.jobs.length && !dirty.added.length) return undefined;
    const progress: WriteProgress = { added: 0, jobsWritten: false };
    // The common case, a store that answers at once, takes no retry loop and no extra async frame.
    return this.write(dirty, progress).then(undefined, (err: unknown) => this.rewrite(dirty, progress, err));
  }

  /** Writes what `progress` says is not written yet: each part once, so a retry never adds the same jobs twice. */
  private async write(dirty: Dirty, progress: WriteProgress): Promise<void> {
    for (; progress.added < dirty.added.length; progress.added++) {
      const a = dirty.added[progress.added] as (typeof dirty.added)[number];
      await this.store.addJobs(a.runId, a.jobs);
    }
    // One store call for the batch (one round trip on Redis) instead of one per job.
    if (!progress.jobsWritten && dirty.jobs.length) {
      await this.store.putJobs(dirty.jobs);
    }
    progress.jobsWritten = true;
    const runs = dirty.runs;
    if (runs.length === 1) {
      const r = runs[0] as RunRecord;
      await this.store.updateRun(r.id, runPatch(r));
    } else if (runs.length > 1) await Promise.all(runs.map((r) => this.store.updateRun(r.id, runPatch(r))));
  }

  /** The retries of a failed {@link persist}. */
  private async rewrite(dirty: Dirty, progress: WriteProgress, first: unknown): Promise<void> {
    let err = first;
    for (let attempt = 0; ; attempt++) {
      // An outage (the store wrapper already retried for storeRetry.maxMs) is surfaced once and then
      // waited out: the commands of this batch must not take effect unrecorded (DESIGN §4.8), and an
      // accepted run is never dropped. Only close() stops the wait. Any other failure is retried
      // a few times (a store may reject one write for a passing reason), then reported and dropped.
      const transient = isTransientStoreError(err);
      const giveUp = this.closing || (!transient && attempt >= 5);
      if (giveUp || (transient && attempt === 0)) this.emit('error', err as Error);
      if (giveUp) return;
      await new Promise((r) => setTimeout(r, baseBackoffDelay(PERSIST_BACKOFF, attempt + 1)));
      try {
        await this.write(dirty, progress);
        return;
      } catch (next) {
        err = next;
      }
    }
  }

  private execute(c: SchedulerCommand): void {
    switch (c.type) {
      case 'emit':
        this.emitEvent(c.emit);
        break;
      case 'start':
        // A start of a run this engine let go of (its lease was lost) in the same turn: not ours to run.
        if (this.ownRuns.has(c.runId)) this.startAttempt(c);
        break;
      case 'abort': {
        this.attempts.get(attemptKey(c.runId, c.jobId, c.attempt))?.abort(c.reason);
        break;
      }
      case 'runFinished':
        this.finishing++;
        this.finishRun(c.runId, c.run, c.jobs)
          .catch((err) => this.emit('error', err as Error))
          .finally(() => {
            this.finishing--;
            this.holdLoop();
          });
        break;
    }
  }

  private emitEvent(e: SchedulerEmit): void {
    // Five events per job: with nobody listening, skip building the payload copy.
    if (this.listenerCount(e.event) === 0) return;
    const { event, ...payload } = e;
    (this.emit as (name: string, payload: unknown) => boolean)(event, payload);
  }

  private logger(runId: string, startSeq = 0): RunLogger {
    let l = this.loggers.get(runId);
    if (!l) {
      l = new RunLogger(this.logStore, runId, {
        ...this.logOptions,
        startSeq,
        onBatch: (batch: LogBatch) => this.emit('log', batch),
      });
      this.loggers.set(runId, l);
    }
    return l;
  }

  private startAttempt(c: Extract<SchedulerCommand, { type: 'start' }>): void {
    const key = attemptKey(c.runId, c.jobId, c.attempt);
    const attempt = new RunningAttempt(this.attemptHost, key, c, this.logger(c.runId));
    this.attempts.set(key, attempt);
    const executor = this.executors.get(c.executor) as Executor;
    // No p-queue gate here: the scheduler holds attempts to `concurrency` (the property tests
    // check it never exceeds it), and a second queue cost a closure and a promise per attempt.
    let names = this.secretNamesFor(c.runId, c.spec.job);
    // Without a provider `github.token` reads as empty (there is no token to give); an explicit
    // `secrets.GITHUB_TOKEN` still fails the job, like any secret the engine cannot resolve.
    if (!this.secrets && names.includes('GITHUB_TOKEN') && !this.readsSecretExplicitly(c, 'GITHUB_TOKEN')) {
      names = names.filter((n) => n !== 'GITHUB_TOKEN');
    }
    if (names.length === 0) this.runExecutor(executor, c, attempt);
    else
      this.resolveSecrets(c, names, attempt).then(
        () => this.runExecutor(executor, c, attempt),
        // The provider's failure is not the executor's: say which it was.
        (err: unknown) => attempt.crashed(err, 'secrets could not be resolved'),
      );
  }

  private runExecutor(
    executor: Executor,
    c: Extract<SchedulerCommand, { type: 'start' }>,
    attempt: RunningAttempt,
  ): void {
    let outcome: Promise<AttemptOutcome>;
    try {
      // Promise.resolve: a plain-JS executor may return its outcome without a promise.
      outcome = Promise.resolve(executor.runJob(c.spec, attempt));
    } catch (err) {
      outcome = Promise.reject(err);
    }
    outcome.then(
      (o) => attempt.finish((o as AttemptOutcome | undefined) ?? infraOutcome('executor returned no outcome')),
      (err: unknown) => attempt.crashed(err),
    );
  }

  /** Resolves an attempt's secrets just in time and masks their values before any step runs. */
  private async resolveSecrets(
    c: Extract<SchedulerCommand, { type: 'start' }>,
    names: string[],
    attempt: RunningAttempt,
  ): Promise<void> {
    if (!this.secrets)
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `the job references secrets (${names.join(', ')}) but the engine has no secret provider`,
      );
    const secrets: unknown = await this.secrets.resolve(names, { runId: c.runId, jobId: c.jobId, attempt: c.attempt });
    // Only strings can be masked: a number or object would reach the logs unmasked. Name the key, never the value.
    if (typeof secrets !== 'object' || secrets === null || Array.isArray(secrets)) {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `the secret provider returned ${kindOf(secrets)}; return an object of name: string`,
      );
    }
    for (const [name, v] of Object.entries(secrets)) {
      if (v !== undefined && typeof v !== 'string') {
        throw new PipewrightError(
          'INVALID_ARGUMENT',
          `the secret provider returned ${kindOf(v)} for \`${name}\`; secret values must be strings`,
        );
      }
    }
    for (const v of Object.values(secrets as Record<string, string | undefined>)) if (v) attempt.addMask(v);
    attempt.secrets = secrets as Record<string, string>;
  }

  /** Whether the job (or the pipeline env) names `secrets.<name>` itself, not only through `github.token`. */
  private readsSecretExplicitly(c: Extract<SchedulerCommand, { type: 'start' }>, name: string): boolean {
    const text = JSON.stringify(c.spec.job) + JSON.stringify(c.spec.env);
    return referencedSecrets(text.replace(/github\s*\.\s*token/gi, '')).includes(name);
  }

  private secretNamesFor(runId: string, job: JobSpec): string[] {
    const run = this.scheduler.runRecord(runId);
    const allowed = run?.secretNames ?? [];
    const env = run?.spec.env ?? {};
    if (run) {
      let any = this.specSecrets.get(run.spec);
      if (any === undefined) {
        any = referencedSecrets(JSON.stringify(run.spec)).length > 0;
        this.specSecrets.set(run.spec, any);
      }
      // A pipeline that names no secret anywhere needs no per-job scan.
      if (!any) return [];
    }
    // Scanning the job's JSON per attempt is per-job work; matrix instances and retries share the answer.
    let cached = this.secretRefs.get(job);
    if (cached?.env !== env) {
      cached = { env, names: referencedSecrets(JSON.stringify(job) + JSON.stringify(env)) };
      this.secretRefs.set(job, cached);
    }
    return cached.names.filter((n) => allowed.includes(n) || allowed.length === 0);
  }

  /** `run` and `jobs` are the final records, so the report needs no read of the whole run back from the store. */
  private async finishRun(runId: string, run: RunRecord, jobs: JobRecord[]): Promise<void> {
    const logger = this.loggers.get(runId);
    this.loggers.delete(runId);
    try {
      if (logger) await logger.close().catch((err) => this.emit('error', err as Error));
      else await this.logStore.end(runId).catch(() => undefined);
      await this.settle();
      await this.store.releaseLease(runId, this.instanceId).catch(() => undefined);
    } finally {
      // Waiters get their report whatever happened to the bookkeeping above; a wait() must never hang.
      this.ownRuns.delete(runId);
      const list = this.waiters.get(runId) ?? [];
      this.waiters.delete(runId);
      if (list.length > 0) {
        const report = buildReport(run, jobs);
        for (const w of list) w.resolve(report);
      }
    }
  }

  /** One timer for the scheduler's next deadline. */
  private rearm(): void {
    if (this.closed) return;
    const next = this.scheduler.nextDeadline();
    if (next === undefined) {
      if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = undefined;
      return;
    }
    // A timer due no later than the next deadline is kept: waking early is a tick that finds
    // nothing due and re-arms. Each started job moves the deadline, and replacing the timer on
    // every turn of the loop cost a setTimeout per job.
    if (this.timer !== undefined && (this.timerAt as number) <= next) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = undefined;
        this.enqueue({ type: 'tick' });
      },
      // Node fires a timer of more than 2^31-1 ms at once; a later deadline is re-armed on waking.
      Math.min(2 ** 31 - 1, Math.max(0, next - this.clock.now())),
    );
  }

  /**
   * This engine no longer owns the run (DESIGN §4.8: an engine that stalled past its lease, or lost
   * the store for longer than it, may have been taken over): it stops the run's attempts, writes
   * nothing more for it and forgets it, so the run is not carried out twice. `wait()` callers go on
   * to follow it through the store, like any run of another engine.
   */
  private leaseLost(runId: string, why: string): void {
    if (!this.ownRuns.has(runId) || this.restoring.has(runId) || this.closing) return;
    this.ownRuns.delete(runId);
    this.emit(
      'error',
      new PipewrightError(
        'STORE_CONFLICT',
        `run ${runId}: this engine lost the run's lease (${why}); another engine may run it now, so this one stopped its attempts and writes nothing more for it`,
        { details: { runId } },
      ),
    );
    this.enqueue({ type: 'abandon', runId, reason: `this engine lost the run's lease (${why})` });
    this.forgetRun(runId);
  }

  /** Lets a run go to another engine: no longer ours, its log no longer written, its waiters follow the store. */
  private forgetRun(runId: string): void {
    this.ownRuns.delete(runId);
    this.loggers.get(runId)?.abandon();
    this.loggers.delete(runId);
    this.waitersToStore(runId);
  }

  /** Hands the run's waiters to the store: the run is another engine's to finish now. */
  private waitersToStore(runId: string): void {
    const waiting = this.waiters.get(runId);
    this.waiters.delete(runId);
    if (!waiting) return;
    void this.followStored(runId).then(
      (report) => {
        for (const w of waiting) w.resolve(report);
      },
      (err) => {
        for (const w of waiting) w.reject(err);
      },
    );
  }

  /** The report of a run another engine runs, once it is finished (store errors are retried). */
  private async followStored(runId: string): Promise<RunReport> {
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      if (this.closed)
        throw new PipewrightError('ENGINE_CLOSED', `The engine was closed while waiting for run ${runId}`);
      let r: RunReport | undefined;
      try {
        r = await this.getRun(runId);
      } catch (err) {
        // A record that cannot be read will not become readable by waiting; a store that is down may.
        if ((err as PipewrightError)?.code === 'STORE_CORRUPT') throw err;
        continue;
      }
      if (!r) throw runNotFound(runId);
      if (isTerminalRun(r.run.status)) return r;
    }
  }

  private ensureLeaseTimer(): void {
    if (this.leaseTimer) return;
    // Cancels recorded by other instances sharing the store reach the runs within about a second.
    this.cancelPoll = setInterval(() => {
      // One poll at a time: a slow or failing store must not pile them up.
      if (this.scheduler.activeRuns === 0 || this.closing || this.polling) return;
      this.polling = true;
      this.pollCancelRequests()
        .catch((err) => this.emit('error', err as Error))
        .finally(() => {
          this.polling = false;
        });
    }, CANCEL_POLL_MS);
    this.cancelPoll.unref();
    this.leaseTimer = setInterval(
      () => {
        // Runs recover() is still loading too: they are not in the scheduler yet.
        for (const id of [...this.scheduler.runIds(), ...this.restoring.keys()]) {
          // acquireLease renews a lease this engine holds and takes one that merely expired (a
          // stall, an outage: nobody else can have run anything then); it refuses only when
          // another engine holds it.
          this.store.acquireLease(id, this.instanceId, this.leaseTtlMs).then(
            (held) => {
              if (!held) this.leaseLost(id, 'another engine holds its lease now');
            },
            // The store does not answer: nothing is known yet; the next renewal decides.
            (err) => this.emit('error', err as Error),
          );
        }
      },
      Math.max(1000, Math.floor(this.leaseTtlMs / 3)),
    );
    this.leaseTimer.unref();
  }
}

/** The records one loop turn changed, as the scheduler hands them over. */
type Dirty = ReturnType<Scheduler['drainDirty']>;

/** How far a batch write has got, so a retry writes only the rest. */
interface WriteProgress {
  added: number;
  jobsWritten: boolean;
}

/** Between retries of a batch write that failed for a reason other than an outage: 100 ms doubling, at most 5 s. */
const PERSIST_BACKOFF = { delayMs: 100, factor: 2, maxDelayMs: 5000, jitter: 'none' } as const;

/** How often an engine looks in the store for cancels other instances recorded for its runs. */
const CANCEL_POLL_MS = 1000;

/** A run as `wait`, `cancel` and `getRun` take it: its id, or the handle `submit` returned. */
export type RunRef = string | { readonly id: string };

function runNotFound(runId: string): PipewrightError {
  return new PipewrightError('RUN_NOT_FOUND', `No run with id \`${runId}\``, { details: { runId } });
}

function runIdOf(run: RunRef): string {
  if (typeof run === 'string') return run;
  if (typeof run === 'object' && run !== null && typeof run.id === 'string') return run.id;
  throw new PipewrightError('INVALID_ARGUMENT', `Expected a run id or a run handle, got ${String(run)}`);
}

/** A normalized spec (from parsePipeline or definePipeline) rather than a pipeline in the YAML's keys. */
function isPipelineSpec(x: unknown): x is PipelineSpec {
  if (typeof x !== 'object' || x === null) return false;
  const spec = x as Partial<PipelineSpec>;
  if (typeof spec.jobs !== 'object' || spec.jobs === null || typeof spec.inputs !== 'object') return false;
  // Every job, and at least one: anything else goes through validation.
  let jobs = 0;
  for (const key in spec.jobs) {
    const job = spec.jobs[key] as Partial<JobSpec>;
    if (!(Array.isArray(job?.runsOn) && Array.isArray(job.steps) && typeof job.timeoutMs === 'number')) return false;
    jobs++;
  }
  return jobs > 0;
}

/** The runs one recover() call is loading: cancels wait for them to reach the scheduler. */
interface RestoreBatch {
  cancels: SchedulerEvent[];
  flushed: Promise<void>;
}

function attemptKey(runId: string, jobId: string, attempt: number): string {
  return `${runId}\u0000${jobId}\u0000${attempt}`;
}

/**
 * The fields of a run the scheduler changes after `createRun`. The rest (spec, inputs,
 * trigger, ...) is fixed at submit; sending it again made every run update re-encode
 * the whole pipeline (38 MB for 100,000 jobs) in stores that serialize per field.
 */
function runPatch(r: RunRecord): Partial<Omit<RunRecord, 'id'>> {
  const patch: Partial<Omit<RunRecord, 'id'>> = { status: r.status };
  if (r.reason !== undefined) patch.reason = r.reason;
  if (r.message !== undefined) patch.message = r.message;
  if (r.cancel !== undefined) patch.cancel = r.cancel;
  if (r.startedAt !== undefined) patch.startedAt = r.startedAt;
  if (r.finishedAt !== undefined) patch.finishedAt = r.finishedAt;
  return patch;
}

/** Sends `container:` jobs to the `docker` executor, the rest to `process` (or the only executor). */
export function defaultRoute(job: JobSpec, executors: readonly string[]): string | { error: string } {
  if (job.container) {
    if (executors.includes('docker')) return 'docker';
    return {
      error: `job \`${job.id}\` runs in a container (${job.container.image}) but no docker executor is configured; run with \`--executor docker\` or add a DockerExecutor`,
    };
  }
  if (executors.includes('process')) return 'process';
  if (executors.length === 1) return executors[0] as string;
  return { error: `no executor for job \`${job.id}\` (runs-on: ${job.runsOn.join(', ') || 'none'})` };
}

/** A value for a message: its JSON when it has one, else what it is (never a throw). */
function shown(v: unknown): string {
  if (typeof v !== 'object' || v === null) return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return kindOf(v);
  }
}

/** "null", "an array", "an object", "a number"...: what a value is, for messages that must not show it. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' || typeof v === 'undefined' ? `an ${typeof v}` : `a ${typeof v}`;
}

/** The options of `submit` that are not inputs: wrong types are the caller's error, named. */
function checkSubmitOptions(options: SubmitOptions): void {
  const { priority, idempotencyKey } = options;
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isFinite(priority))) {
    throw new PipewrightError('INVALID_ARGUMENT', `priority must be a finite number, got \`${String(priority)}\``);
  }
  // Both are stored as JSON: a BigInt or a cycle would fail in the store as a bare TypeError.
  for (const [name, value] of [
    ['inputs', options.inputs],
    ['trigger', options.trigger],
  ] as const) {
    try {
      // NaN and Infinity would silently come back as null from any store: refuse them too.
      JSON.stringify(value, (key, v) => {
        if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError(`\`${key}\` is ${v}`);
        return v;
      });
    } catch (err) {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `${name} must be plain JSON data (strings, numbers, booleans, arrays, objects): ${(err as Error).message}`,
      );
    }
  }
  const vars: unknown = options.vars;
  if (vars !== undefined) {
    const bad =
      typeof vars !== 'object' || vars === null || Array.isArray(vars)
        ? 'it is not an object'
        : Object.entries(vars).find(([, v]) => typeof v !== 'string')?.[0];
    if (bad !== undefined) {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `vars must be an object of name: text, got ${bad === 'it is not an object' ? kindOf(vars) : `a non-text value for \`${bad}\``}`,
      );
    }
  }
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || idempotencyKey === '')) {
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `idempotencyKey must be a non-empty string, got \`${String(idempotencyKey)}\``,
    );
  }
}

/** Applies workflow_dispatch input defaults and checks required inputs. */
export function resolveInputs(spec: PipelineSpec, given: Record<string, unknown>): Record<string, unknown> {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new PipewrightError('INVALID_ARGUMENT', `inputs must be an object of name: value, got ${kindOf(given)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(spec.inputs)) {
    if (name in given) {
      const v = given[name];
      // Text from a command line or a form is converted; a value that is not of the declared type is
      // rejected, as GitHub rejects it, instead of reaching the run as a string.
      if (def.type === 'boolean' && typeof v === 'string' && /^(true|false)$/i.test(v.trim()))
        out[name] = v.trim().toLowerCase() === 'true';
      else if (def.type === 'number' && typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)))
        out[name] = Number(v);
      else out[name] = v;
      const got = out[name];
      if (
        (def.type === 'boolean' && typeof got !== 'boolean') ||
        (def.type === 'number' && (typeof got !== 'number' || !Number.isFinite(got)))
      ) {
        throw new PipewrightError(
          'INVALID_ARGUMENT',
          `input \`${name}\` is a ${def.type}, got \`${String(v)}\`; pass ${def.type === 'boolean' ? 'true or false' : 'a number'}`,
        );
      }
      if (def.type === 'choice' && def.options && !def.options.includes(String(v))) {
        throw new PipewrightError(
          'INVALID_ARGUMENT',
          `input \`${name}\` must be one of ${def.options.join(', ')}, got \`${String(v)}\``,
        );
      }
    } else if (def.default !== undefined) out[name] = def.default;
    else if (def.required) {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `input \`${name}\` is required; pass it with --input ${name}=VALUE`,
      );
    } else out[name] = '';
  }
  for (const [k, v] of Object.entries(given)) if (!(k in out)) out[k] = v;
  return out;
}

/** Re-export for convenience: the job records of a run's initial plan. */
/** Seeded random source, re-exported for replayable engines. */
export { initialJobs, seededRandom };

/**
 * Why a stored run cannot be handed to the scheduler (undefined when it can): what `buildRun`
 * and the restore rely on, checked before one bad run can take the others down with it.
 */
function unrestorable(run: RunRecord, jobs: readonly JobRecord[]): string | undefined {
  if (!isRunStatus(run.status)) return `unknown run status \`${String(run.status)}\``;
  let spec: PipelineSpec;
  try {
    spec = run.spec;
  } catch (err) {
    return `its pipeline cannot be read: ${errorMessage(err)}`;
  }
  if (typeof spec !== 'object' || spec === null || typeof spec.jobs !== 'object' || spec.jobs === null) {
    return 'its pipeline has no jobs';
  }
  for (const j of jobs) {
    if (typeof j !== 'object' || j === null || typeof j.id !== 'string' || typeof j.job !== 'string') {
      return 'a job record has no id or job';
    }
    if (!Object.hasOwn(spec.jobs, j.job)) return `job \`${j.id}\` belongs to no job of its pipeline`;
    if (!isJobStatus(j.status)) return `job \`${j.id}\` has unknown status \`${String(j.status)}\``;
    if (!Array.isArray(j.attempts)) return `job \`${j.id}\` has no attempt list`;
  }
  return undefined;
}
