import { PipewrightError } from '../errors.js';
import {
  type ExprContext,
  evaluateCondition,
  evaluateValue,
  interpolate,
  isCleanupCondition,
  isTruthy,
} from '../expr/index.js';
import { topologicalOrder } from '../plan/dag.js';
import { expandMatrix, matrixOfValue } from '../plan/matrix.js';
import { expandJob, instanceIds, isDynamicMatrix } from '../plan/plan.js';
import type { AttemptOutcome, AttemptSpec, FailureReason, StepResult } from '../ports/executor.js';
import {
  type AttemptRecord,
  type AttemptStatus,
  type CancelRequest,
  isTerminalRun,
  type JobRecord,
  type JobStatus,
  type Reason,
  type RunRecord,
  type RunStatus,
  type StepRecord,
} from '../ports/state.js';
import { formatDuration, timeoutMinutesMs } from '../spec/duration.js';
import type { JobSpec, MatrixSpec } from '../spec/types.js';
import type { AbortReason } from '../steps/abort.js';
import { runnerArch, runnerOs } from '../steps/runner.js';
import type { Random } from './clock.js';
import { decideRetry } from './retry.js';

/*
 * The scheduling layer as a state machine: `handle(event)` mutates the state and
 * returns the commands the engine must carry out (start or abort an attempt, emit
 * an event, finish a run). Time and randomness are injected, nothing here does I/O,
 * so every rule is testable without timers and a run replays from its events.
 */

/** Static facts about an executor the scheduler places work on. */
export interface ExecutorSlot {
  name: string;
  capacity: number;
  /** The executor's worker when known up front ({@link Executor.workerId}); recorded with each attempt at start. */
  workerId?: string | undefined;
}

/** Picks the executor for a job, or undefined when none can run it (with why). */
export type Router = (job: JobSpec) => { executor: string } | { error: string };

/** Scheduler configuration. */
export interface SchedulerOptions {
  now: () => number;
  random: Random;
  /** Global limit of running attempts. */
  concurrency: number;
  executors: readonly ExecutorSlot[];
  route: Router;
  /**
   * How long a job may wait in the queue, admitted to start, before it fails with
   * reason `infra` ("no worker"). Time held by `max-parallel` does not count.
   * @default no limit
   */
  queueTimeoutMs?: number;
}

/** Inputs of the state machine. */
export type SchedulerEvent =
  | { type: 'submit'; run: RunRecord; jobs: JobRecord[] }
  | { type: 'restore'; run: RunRecord; jobs: JobRecord[] }
  /** Several runs after a restart, oldest first: every run's group holders are rebuilt before any waiter may take a group. */
  | { type: 'restoreAll'; runs: Array<{ run: RunRecord; jobs: JobRecord[] }> }
  | { type: 'attemptFinished'; runId: string; jobId: string; attempt: number; outcome: AttemptOutcome }
  | { type: 'attemptWorker'; runId: string; jobId: string; attempt: number; workerId: string }
  | { type: 'stepStarted'; runId: string; jobId: string; attempt: number; index: number; name: string; at: number }
  | { type: 'stepFinished'; runId: string; jobId: string; attempt: number; result: StepResult }
  | {
      type: 'cancel';
      runId: string;
      job?: string;
      reason: string;
      by: string;
      force: boolean;
      supersededBy?: string;
      timeout?: boolean;
    }
  | { type: 'tick' }
  /**
   * Another engine owns the run now (this one lost its lease): stop its attempts here and forget
   * it, writing nothing more for it. Its groups and slots are freed for the runs that stay.
   */
  | { type: 'abandon'; runId: string; reason: string };

/** Notifications the engine re-emits to its listeners. */
export type SchedulerEmit =
  | { event: 'run:queued'; runId: string }
  | { event: 'run:started'; runId: string }
  | { event: 'run:cancelling'; runId: string; cancel: CancelRequest }
  | { event: 'job:queued'; runId: string; jobId: string }
  | { event: 'job:started'; runId: string; jobId: string }
  | { event: 'job:retrying'; runId: string; jobId: string; attempt: number; delayMs: number }
  | { event: 'attempt:started'; runId: string; jobId: string; attempt: number; executor: string }
  | { event: 'attempt:finished'; runId: string; jobId: string; attempt: number; status: string; reason?: Reason }
  | { event: 'step:started'; runId: string; jobId: string; attempt: number; step: number; name: string }
  | { event: 'step:finished'; runId: string; jobId: string; attempt: number; step: number; status: string }
  | { event: 'job:finished'; runId: string; jobId: string; status: JobStatus; reason?: Reason }
  | { event: 'run:finished'; runId: string; status: string; reason?: Reason };

/** Outputs of the state machine. */
export type SchedulerCommand =
  | {
      type: 'start';
      runId: string;
      jobId: string;
      attempt: number;
      executor: string;
      spec: AttemptSpec;
      avoidWorkers: string[];
    }
  | { type: 'abort'; runId: string; jobId: string; attempt: number; reason: AbortReason }
  | { type: 'emit'; emit: SchedulerEmit }
  | { type: 'runFinished'; runId: string; run: RunRecord; jobs: JobRecord[] };

interface SBase {
  key: string;
  spec: JobSpec;
  /** The base's job instances (one per matrix combination), held directly: no lookup by id on hot paths. */
  instances: SJob[];
  evaluated: boolean;
  /** The bases this one needs (unknown names dropped), and the bases that need it. */
  needs: SBase[];
  dependents: SBase[];
  /** Instances not yet terminal; the base's dependents become evaluable when it reaches 0. */
  unfinished: number;
  /** `needs.<key>` for dependents, built once the base is finished. */
  needEntry: { result: string; outputs: Record<string, string> } | undefined;
  cleanup: boolean;
  failFast: boolean;
  maxParallel: number;
  /** Instances admitted to the ready list or running; at most `maxParallel`. */
  admitted: number;
  /** Queued instances held back by `max-parallel`, admitted in order as slots free. */
  backlog: SJob[];
  /**
   * Whether some ancestor failed, fixed once every ancestor is terminal. Cached so
   * `failure()` costs O(needs) per job instead of a walk over all ancestors (which
   * made a chain of n jobs O(n²)).
   */
  ancestorFailed?: boolean;
  /** The expression context built when the base became ready; its needs are final by then, so every start reuses it. */
  ctx?: ExprContext | undefined;
  /**
   * When `runs-on` holds `${{ }}`: each instance's spec with its labels evaluated (when the base
   * became ready), which the engine's `route` gets; undefined for literal labels.
   */
  routeSpecs: Map<SJob, JobSpec> | undefined;
}

// Every field is set at creation and never deleted: one object shape for all jobs
// keeps property access fast (a `delete` turns the object into a slow dictionary).
interface SJob {
  rec: JobRecord;
  base: SBase;
  readyAt: number | undefined;
  deadline: number | undefined;
  continuedOnError: boolean;
  /** `continue-on-error` as evaluated when the job became ready. */
  coe: boolean;
  timeoutMs: number;
  aborting: 'timeout' | 'cancel' | 'force' | undefined;
  cancelRequested: boolean;
  /**
   * The in-memory placeholder of a dynamic matrix job before its expansion. It is
   * never stored unless it ends without expanding (skipped, cancelled, failed), so
   * the stored jobs of a run are exactly the jobs of its report.
   */
  virtual: boolean;
  /** Counted in `base.admitted` (in the ready list or running). */
  admitted: boolean;
  /** When the job entered the ready list; the queue timeout runs from here. */
  queuedAt: number;
  /** The job-level concurrency group it holds or waits for. */
  group: string | undefined;
  /** Why a cancel aborted the running attempt, for the job's message when the executor gives none. */
  cancelWhy: string | undefined;
}

/** A job instance in a job-level concurrency group. */
interface GroupMember {
  run: SRun;
  job: SJob;
}

interface SRun {
  rec: RunRecord;
  jobs: Map<string, SJob>;
  bases: Map<string, SBase>;
  /** Jobs ready to start, in order; entries before `readyHead` are taken. */
  ready: SJob[];
  readyHead: number;
  waiting: Set<SJob>;
  running: Set<SJob>;
  unfinished: number;
  deadline?: number;
  /** The dispatch round in which the run last started an attempt (0: never). */
  served: number;
  /** The dispatch call in which the run could start nothing. */
  blockedStamp: number;
  github: Record<string, unknown>;
}

// Shared, frozen values of every job's contexts, so an attempt does not allocate its own copies.
const NO_OUTPUTS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const NO_VARS = Object.freeze({});
const NO_BACKLOG: SJob[] = Object.freeze([]) as unknown as SJob[];
const NO_NEEDS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;
const NO_WORKERS: readonly string[] = Object.freeze([]);
const RUNNER = Object.freeze({
  os: runnerOs(),
  arch: runnerArch(),
  name: 'pipewright',
});
const JOB_STATUS = Object.freeze({ status: 'success' });

const TERMINAL_JOB: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled', 'skipped']);

/** True when a job status is final. */
export function isTerminalJob(status: JobStatus): boolean {
  return TERMINAL_JOB.has(status);
}

/** The `needs.<id>.result` value of a set of instances. */
export function resultOf(jobs: readonly { rec: JobRecord; continuedOnError: boolean }[]): string {
  if (jobs.some((j) => j.rec.status === 'failed' && !j.continuedOnError)) return 'failure';
  if (jobs.some((j) => j.rec.status === 'cancelled')) return 'cancelled';
  if (jobs.length > 0 && jobs.every((j) => j.rec.status === 'skipped')) return 'skipped';
  return 'success';
}

/**
 * The `github` context of a run's expressions: its id, pipeline, the trigger's fields
 * (`trigger.event` is `event_name`) and `event`, the event's payload (`trigger.payload`; for a
 * run started by hand, `{inputs, workflow}`).
 */
export function githubContext(
  rec: Pick<RunRecord, 'id' | 'pipelineName' | 'trigger'> & { inputs?: Record<string, unknown> },
): Record<string, unknown> {
  const { event, payload, ...rest } = rec.trigger;
  const eventName = typeof event === 'string' ? event : 'workflow_dispatch';
  return {
    // What GitHub derives from `ref` and `repository` when the trigger does not say.
    ...derivedRefFields(rest),
    // The trigger's own fields (ref, sha, ...).
    ...rest,
    // The run's own facts win over a trigger field of the same name.
    run_id: rec.id,
    // A run is never re-run as a whole (a job's retries are its own attempts).
    run_attempt: '1',
    workflow: rec.pipelineName,
    event_name: eventName,
    // The webhook's payload as GitHub gives it; a run started by hand gets a workflow_dispatch
    // event whose `inputs` are the run's inputs as text (GitHub's `github.event.inputs`).
    event:
      typeof payload === 'object' && payload !== null
        ? payload
        : typeof event === 'object' && event !== null
          ? event
          : eventName === 'workflow_dispatch'
            ? { inputs: textInputs(rec.inputs), workflow: rec.pipelineName }
            : {},
  };
}

/** `ref_name`/`ref_type` of a `refs/heads/x` or `refs/tags/x` ref, `repository_owner` of `owner/name` (as GitHub has them). */
export function derivedRefFields(trigger: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  const m = typeof trigger.ref === 'string' ? /^refs\/(heads|tags)\/(.+)$/.exec(trigger.ref) : null;
  if (m) {
    out.ref_name = m[2] as string;
    out.ref_type = m[1] === 'tags' ? 'tag' : 'branch';
  }
  const repo = typeof trigger.repository === 'string' ? trigger.repository : '';
  if (repo.includes('/')) out.repository_owner = repo.slice(0, repo.indexOf('/'));
  return out;
}

/** Inputs as `github.event.inputs` has them: every value a string. */
function textInputs(inputs: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(inputs ?? {})) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

/** Whether an attempt may end in `status` (what an executor's outcome may say). */
export function canFinishAttempt(status: unknown): status is AttemptStatus {
  return (ATTEMPT_TRANSITIONS.running as readonly unknown[]).includes(status);
}

/** The guarded job transitions; anything else is a bug and throws. */
const JOB_TRANSITIONS: Record<JobStatus, readonly JobStatus[]> = {
  pending: ['queued', 'skipped', 'cancelled', 'failed'],
  // queued -> retrying: the queue timeout failed it and the retry policy applies.
  queued: ['running', 'cancelled', 'failed', 'retrying'],
  running: ['succeeded', 'failed', 'cancelled', 'retrying'],
  retrying: ['queued', 'cancelled', 'failed'],
  succeeded: [],
  failed: [],
  cancelled: [],
  skipped: [],
};

/** Moves a job to `to`, or throws `ILLEGAL_TRANSITION`. */
export function transitionJob(rec: JobRecord, to: JobStatus): void {
  if (!JOB_TRANSITIONS[rec.status].includes(to)) throw illegal('job', `${rec.runId}/${rec.id}`, rec.status, to);
  // Only a retrying job has a due time; assigned undefined rather than deleted (a delete makes a slow dictionary).
  if (rec.retryAt !== undefined) rec.retryAt = undefined;
  rec.status = to;
}

/** The guarded run transitions (DESIGN §3): a cancelled run always passes through `cancelling`. */
const RUN_TRANSITIONS: Record<RunStatus, readonly RunStatus[]> = {
  queued: ['running', 'cancelling'],
  running: ['cancelling', 'succeeded', 'failed'],
  cancelling: ['cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

/** Moves a run to `to`, or throws `ILLEGAL_TRANSITION`. */
export function transitionRun(rec: RunRecord, to: RunStatus): void {
  if (!RUN_TRANSITIONS[rec.status].includes(to)) throw illegal('run', rec.id, rec.status, to);
  rec.status = to;
}

/** The guarded attempt transitions: an attempt runs once and ends once. */
const ATTEMPT_TRANSITIONS: Record<AttemptStatus, readonly AttemptStatus[]> = {
  running: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
};

/** Moves an attempt to `to`, or throws `ILLEGAL_TRANSITION`. */
export function transitionAttempt(a: AttemptRecord, to: AttemptStatus): void {
  if (!ATTEMPT_TRANSITIONS[a.status].includes(to)) throw illegal('attempt', `#${a.number}`, a.status, to);
  a.status = to;
}

function illegal(entity: string, id: string, from: string, to: string): PipewrightError {
  return new PipewrightError('ILLEGAL_TRANSITION', `illegal ${entity} transition ${from} -> ${to} (${id})`, {
    details: { entity, id, from, to },
  });
}

/** The scheduling state machine. */
export class Scheduler {
  private readonly runs = new Map<string, SRun>();
  /** The runs in submission order, for dispatch to walk without a Map iterator per pick. */
  private readonly runList: SRun[] = [];
  private dispatchStamp = 0;
  private readonly slots = new Map<string, { capacity: number; running: number; workerId: string | undefined }>();
  private running = 0;
  /** The current dispatch round (DESIGN §4.5): every run with a startable job starts one per round. */
  private round = 1;
  private readonly groups = new Map<string, { running?: string | undefined; pending?: string | undefined }>();
  /** Job-level concurrency groups (DESIGN §2), across runs: the holder (queued or running) and one pending job. */
  private readonly jobGroups = new Map<
    string,
    { holder?: GroupMember | undefined; pending?: GroupMember | undefined }
  >();
  // Keyed by the record itself: a string key per touch cost an allocation per state change.
  private readonly dirtyJobs = new Set<JobRecord>();
  private readonly newJobs = new Map<string, JobRecord[]>();
  private readonly dirtyRuns = new Map<string, RunRecord>();
  private cmds: SchedulerCommand[] = [];

  /** `opts.queueTimeoutMs` when finite; otherwise jobs wait in the queue without limit. */
  private readonly queueTimeoutMs: number | undefined;

  constructor(private readonly opts: SchedulerOptions) {
    const q = opts.queueTimeoutMs;
    this.queueTimeoutMs = q !== undefined && Number.isFinite(q) ? q : undefined;
    for (const e of opts.executors) this.slots.set(e.name, { capacity: e.capacity, running: 0, workerId: e.workerId });
  }

  /** Feeds one event; returns the commands to carry out. */
  handle(event: SchedulerEvent): SchedulerCommand[] {
    this.cmds = [];
    switch (event.type) {
      case 'submit':
        this.onSubmit(event.run, event.jobs);
        break;
      case 'restore':
        this.onRestore([event]);
        break;
      case 'restoreAll':
        this.onRestore(event.runs);
        break;
      case 'attemptFinished':
        this.onAttemptFinished(event.runId, event.jobId, event.attempt, event.outcome);
        break;
      case 'attemptWorker': {
        const a = this.attemptOf(event.runId, event.jobId, event.attempt);
        if (a) {
          a.workerId = event.workerId;
          this.touch(this.runs.get(event.runId)?.jobs.get(event.jobId));
        }
        break;
      }
      case 'stepStarted':
        this.onStepStarted(event);
        break;
      case 'stepFinished':
        this.onStepFinished(event);
        break;
      case 'cancel':
        this.onCancel(event);
        break;
      case 'tick':
        this.onTick();
        break;
      case 'abandon':
        this.onAbandon(event.runId, event.reason);
        break;
    }
    this.dispatch();
    // Hand the list over: kept here, it would pin the last run's records (runFinished carries them).
    const out = this.cmds;
    this.cmds = [];
    return out;
  }

  /** Records changed since the last drain, for the engine to persist before acting. */
  drainDirty(): { runs: RunRecord[]; jobs: JobRecord[]; added: Array<{ runId: string; jobs: JobRecord[] }> } {
    const out = {
      runs: [...this.dirtyRuns.values()],
      jobs: [...this.dirtyJobs.values()],
      added: [...this.newJobs].map(([runId, jobs]) => ({ runId, jobs })),
    };
    this.dirtyRuns.clear();
    this.dirtyJobs.clear();
    this.newJobs.clear();
    return out;
  }

  /** The earliest time something is due (attempt timeout, retry backoff, run timeout). */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    const consider = (t: number | undefined) => {
      if (t !== undefined && (next === undefined || t < next)) next = t;
    };
    const queueTimeout = this.queueTimeoutMs;
    for (const run of this.runs.values()) {
      if (run.rec.status === 'running') consider(run.deadline);
      for (const j of run.running) if (!j.aborting) consider(j.deadline);
      for (const j of run.waiting) consider(j.readyAt);
      if (queueTimeout !== undefined) {
        for (let i = run.readyHead; i < run.ready.length; i++) {
          const j = run.ready[i] as SJob;
          if (j.rec.status !== 'queued') continue;
          consider(j.queuedAt + queueTimeout);
          break;
        }
      }
    }
    return next;
  }

  /** Number of attempts running now. */
  get runningCount(): number {
    return this.running;
  }

  /** Number of runs held now (not yet finished). */
  get activeRuns(): number {
    return this.runs.size;
  }

  /** True while the scheduler holds a run (not yet finished). */
  hasRun(runId: string): boolean {
    return this.runs.has(runId);
  }

  /** Live records of a run (read-only use). */
  snapshot(runId: string): { run: RunRecord; jobs: JobRecord[] } | undefined {
    const run = this.runs.get(runId);
    if (!run) return undefined;
    return { run: run.rec, jobs: [...run.jobs.values()].map((j) => j.rec) };
  }

  /** The live record of a run held now (read-only use); O(1), unlike {@link snapshot}. */
  runRecord(runId: string): RunRecord | undefined {
    return this.runs.get(runId)?.rec;
  }

  /** Ids of runs currently held. */
  runIds(): string[] {
    return [...this.runs.keys()];
  }

  /** The job keys and instance ids of a held run (what a job cancel may name); undefined when not held. */
  jobIds(runId: string): string[] | undefined {
    const run = this.runs.get(runId);
    if (!run) return undefined;
    const ids = new Set(run.bases.keys());
    for (const id of run.jobs.keys()) ids.add(id);
    return [...ids];
  }

  // ---- events -------------------------------------------------------------

  private onSubmit(rec: RunRecord, jobs: JobRecord[]): void {
    this.admitRun(this.buildRun(rec, jobs, false));
  }

  /**
   * DESIGN §4.8 after a restart, in two passes over the runs: first every run takes back
   * what it held (its run-level group, the job-level groups of its started jobs), then
   * each run resumes — queued runs and waiting jobs compete for groups only now. One
   * pass, oldest run first, let an older run's waiter take a group a newer run's job
   * still held, and both ran.
   */
  private onRestore(items: ReadonlyArray<{ run: RunRecord; jobs: JobRecord[] }>): void {
    const runs = items.map((i) => this.buildRun(i.run, i.jobs, true));
    const waiters = runs.map((run) => this.restoreHolders(run));
    runs.forEach((run, i) => {
      this.takeRequestedCancel(run);
      this.restoreResume(run, waiters[i] as SJob[]);
    });
  }

  /**
   * A cancel asked for through another engine while nobody ran the run (its engine had
   * stopped) takes effect before the run resumes: its lost attempts are not retried and its
   * jobs are evaluated with `cancelled()` true, as if the cancel had come to a live owner
   * (`restoreResume` applies it). The request's time is the cancel's.
   */
  private takeRequestedCancel(run: SRun): void {
    const request = run.rec.requestedCancel;
    if (request === undefined || run.rec.cancel !== undefined || run.rec.status !== 'running') return;
    this.beginCancelling(run, { ...request });
  }

  /** Records a run's cancel with its deadline (its kill-grace, none when forced) and moves it to `cancelling`. */
  private beginCancelling(run: SRun, cancel: CancelRequest): void {
    const now = this.opts.now();
    run.rec.cancel = cancel;
    cancel.deadline = cancel.force ? now : now + this.longestGrace(run);
    if (run.rec.status !== 'cancelling') transitionRun(run.rec, 'cancelling');
    this.touchRun(run);
    this.emit({ event: 'run:cancelling', runId: run.rec.id, cancel });
  }

  private buildRun(rec: RunRecord, jobs: JobRecord[], restoring: boolean): SRun {
    const run: SRun = {
      rec,
      jobs: new Map(),
      bases: new Map(),
      ready: [],
      readyHead: 0,
      waiting: new Set(),
      running: new Set(),
      unfinished: 0,
      served: 0,
      blockedStamp: 0,
      github: githubContext(rec),
    };
    const replaced = this.runs.get(rec.id);
    if (replaced) this.runList.splice(this.runList.indexOf(replaced), 1);
    this.runs.set(rec.id, run);
    this.runList.push(run);
    const spec = rec.spec;
    for (const key in spec.jobs) {
      const js = spec.jobs[key] as JobSpec;
      run.bases.set(key, {
        key,
        spec: js,
        instances: [],
        evaluated: false,
        needs: [],
        dependents: [],
        unfinished: 0,
        needEntry: undefined,
        cleanup: isCleanupCondition(js.if),
        failFast: true,
        maxParallel: Number.POSITIVE_INFINITY,
        admitted: 0,
        // Shared until a job is held back: most bases never use `max-parallel`.
        backlog: NO_BACKLOG,
        routeSpecs: js.runsOn.some((l) => l.includes('${{')) ? new Map() : undefined,
      });
    }
    for (const base of run.bases.values()) {
      for (const n of base.spec.needs) {
        const nb = run.bases.get(n);
        if (nb === undefined) continue;
        base.needs.push(nb);
        nb.dependents.push(base);
      }
    }
    for (const jr of jobs) this.addJob(run, jr).virtual = !restoring && isPlaceholder(run.bases.get(jr.job)?.spec, jr);
    // A restored dynamic matrix job that had not expanded has no stored record: recreate its placeholder.
    if (restoring) {
      for (const base of run.bases.values()) {
        if (base.instances.length > 0 || !isDynamic(base.spec)) continue;
        for (const p of jobRecords(rec.id, base.spec, rec.createdAt)) this.addJob(run, p).virtual = true;
      }
    }
    return run;
  }

  /** A new run starts, or waits for its run-level concurrency group. */
  private admitRun(run: SRun): void {
    const rec = run.rec;
    this.emit({ event: 'run:queued', runId: rec.id });
    const group = rec.concurrencyGroup;
    if (group !== undefined) {
      const g = this.groups.get(group) ?? {};
      this.groups.set(group, g);
      if (g.running !== undefined && this.runs.has(g.running)) {
        if (g.pending !== undefined) {
          this.onCancel({
            type: 'cancel',
            runId: g.pending,
            reason: `superseded by run ${rec.id}`,
            by: 'concurrency',
            force: false,
            supersededBy: rec.id,
          });
        }
        g.pending = rec.id;
        if (rec.cancelInProgress === true) {
          this.onCancel({
            type: 'cancel',
            runId: g.running,
            reason: `superseded by run ${rec.id}`,
            by: 'concurrency',
            force: false,
            supersededBy: rec.id,
          });
        }
        return;
      }
      g.running = rec.id;
    }
    this.startRun(run);
  }

  private addJob(run: SRun, jr: JobRecord): SJob {
    const base = run.bases.get(jr.job) as SBase;
    const j: SJob = {
      rec: jr,
      base,
      readyAt: undefined,
      deadline: undefined,
      continuedOnError: false,
      coe: false,
      timeoutMs: base.spec.timeoutMs,
      aborting: undefined,
      cancelRequested: false,
      virtual: false,
      admitted: false,
      queuedAt: 0,
      group: undefined,
      cancelWhy: undefined,
    };
    run.jobs.set(jr.id, j);
    base.instances.push(j);
    if (!isTerminalJob(jr.status)) {
      run.unfinished++;
      base.unfinished++;
    }
    return j;
  }

  private startRun(run: SRun): void {
    const now = this.opts.now();
    transitionRun(run.rec, 'running');
    run.rec.startedAt = now;
    if (run.rec.spec.timeoutMs !== undefined) run.deadline = now + run.rec.spec.timeoutMs;
    this.touchRun(run);
    this.emit({ event: 'run:started', runId: run.rec.id });
    for (const base of run.bases.values()) if (base.spec.needs.length === 0) this.evaluateBase(run, base);
    this.checkRunDone(run);
  }

  /**
   * First restore pass: a started run takes back its run-level group, its settings and the
   * job-level groups its started jobs held. Returns the jobs that were waiting on a job-level
   * group, for the second pass.
   */
  private restoreHolders(run: SRun): SJob[] {
    if (run.rec.status === 'queued') return [];
    if (run.rec.concurrencyGroup !== undefined) {
      const g = this.groups.get(run.rec.concurrencyGroup) ?? {};
      g.running = run.rec.id;
      this.groups.set(run.rec.concurrencyGroup, g);
    }
    if (run.rec.spec.timeoutMs !== undefined && run.rec.startedAt !== undefined)
      run.deadline = run.rec.startedAt + run.rec.spec.timeoutMs;
    // Needs before dependents: a base's settings (continue-on-error, timeouts) may read `needs.<id>`,
    // which is final, and cached, only once that need's own settings are back.
    const order = topologicalOrder(new Map([...run.bases].map(([key, b]) => [key, b.spec.needs])));
    for (const key of order) {
      const base = run.bases.get(key) as SBase;
      if (base.instances.length === 0) continue;
      // Evaluated before the restart if any instance got past pending (the first may be waiting on a
      // concurrency group), or if a dynamic matrix was already expanded: evaluating again would expand twice.
      const only = base.instances.length === 1 ? base.instances[0] : undefined;
      const expanded = isDynamic(base.spec) && !(only && isPlaceholder(base.spec, only.rec));
      base.evaluated = expanded || base.instances.some((j) => j.rec.status !== 'pending');
      if (base.evaluated) this.applyJobSettings(run, base);
    }
    return this.restoreGroupHolders(run);
  }

  /** Second restore pass: lost attempts are failed as `lost` and retried per policy; waiting work competes again. */
  private restoreResume(run: SRun, groupWaiters: readonly SJob[]): void {
    const now = this.opts.now();
    if (run.rec.status === 'queued') {
      const group = run.rec.concurrencyGroup;
      if (group !== undefined) {
        const g = this.groups.get(group) ?? {};
        this.groups.set(group, g);
        if (g.running !== undefined && g.running !== run.rec.id) {
          g.pending = run.rec.id;
          return;
        }
        g.running = run.rec.id;
      }
      this.startRun(run);
      return;
    }
    for (const j of groupWaiters) this.queueOrWait(run, j, this.baseContext(run, j.base));
    for (const j of run.jobs.values()) {
      const s = j.rec.status;
      if (s === 'running') {
        const a = j.rec.attempts[j.rec.attempts.length - 1];
        if (a && a.status === 'running') {
          transitionAttempt(a, 'failed');
          a.reason = 'lost';
          a.message = 'the engine that ran this attempt stopped; the attempt was lost';
          a.finishedAt = now;
          // A finished attempt has no step still running: the step that was running went down with it.
          a.steps = a.steps.map((st) =>
            st?.status === 'running'
              ? { ...st, status: 'failed', outcome: 'failure', conclusion: 'failure', reason: 'lost', finishedAt: now }
              : st,
          );
          this.emit({
            event: 'attempt:finished',
            runId: run.rec.id,
            jobId: j.rec.id,
            attempt: a.number,
            status: 'failed',
            reason: 'lost',
          });
        }
        this.afterFailure(run, j, a, {
          status: 'failed',
          reason: 'lost',
          workerId: a?.workerId ?? '',
          steps: [],
          outputs: {},
        });
      } else if (s === 'queued') {
        this.admit(run, j);
      } else if (s === 'retrying') {
        // The backoff the failed attempt asked for still holds (DESIGN §4.3): not from now, not skipped.
        j.readyAt = Math.max(now, j.rec.retryAt ?? now);
        run.waiting.add(j);
      }
    }
    // Bases whose needs finished while no engine was watching.
    for (const base of run.bases.values()) if (!base.evaluated && this.needsDone(base)) this.evaluateBase(run, base);
    if (run.rec.status === 'cancelling') this.applyCancel(run, run.rec.cancel?.force ?? false);
    this.checkRunDone(run);
  }

  /** Job-level groups live in memory: restored jobs that had started hold theirs again; the waiting ones are returned. */
  private restoreGroupHolders(run: SRun): SJob[] {
    const waiting: SJob[] = [];
    for (const j of run.jobs.values()) {
      const conc = j.base.spec.concurrency;
      if (!conc || isTerminalJob(j.rec.status)) continue;
      if (j.rec.status === 'pending') {
        if (j.base.evaluated) waiting.push(j);
        continue;
      }
      try {
        const key = interpolate(conc.group, { ...this.baseContext(run, j.base), matrix: j.rec.matrix });
        const g = this.jobGroups.get(key) ?? {};
        this.jobGroups.set(key, g);
        if (g.holder) continue;
        g.holder = { run, job: j };
        j.group = key;
      } catch {
        // Evaluated fine before the restart; if not now, the job simply holds no group.
      }
    }
    return waiting;
  }

  private onStepStarted(e: Extract<SchedulerEvent, { type: 'stepStarted' }>): void {
    const a = this.attemptOf(e.runId, e.jobId, e.attempt);
    if (!a) return;
    const step: StepRecord = { index: e.index, name: e.name, status: 'running', startedAt: e.at };
    a.steps[e.index] = step;
    for (let i = 0; i < e.index; i++) a.steps[i] ??= { index: i, name: `step ${i + 1}`, status: 'pending' };
    this.touch(this.runs.get(e.runId)?.jobs.get(e.jobId));
    this.emit({
      event: 'step:started',
      runId: e.runId,
      jobId: e.jobId,
      attempt: e.attempt,
      step: e.index,
      name: e.name,
    });
  }

  private onStepFinished(e: Extract<SchedulerEvent, { type: 'stepFinished' }>): void {
    const a = this.attemptOf(e.runId, e.jobId, e.attempt);
    if (!a) return;
    a.steps[e.result.index] = stepRecordOf(e.result, a.steps[e.result.index]);
    this.touch(this.runs.get(e.runId)?.jobs.get(e.jobId));
    this.emit({
      event: 'step:finished',
      runId: e.runId,
      jobId: e.jobId,
      attempt: e.attempt,
      step: e.result.index,
      status: e.result.status,
    });
  }

  private onAttemptFinished(runId: string, jobId: string, number: number, outcome: AttemptOutcome): void {
    const run = this.runs.get(runId);
    const j = run?.jobs.get(jobId);
    if (!run || !j || j.rec.status !== 'running') return;
    const a = j.rec.attempts[number - 1];
    if (a?.status !== 'running') return;
    const now = this.opts.now();
    let status = outcome.status;
    let reason: Reason | undefined = outcome.reason;
    if (j.aborting === 'timeout' && status !== 'succeeded') {
      status = 'failed';
      reason = 'timeout';
    } else if ((j.aborting === 'cancel' || j.aborting === 'force') && status !== 'succeeded') {
      status = 'cancelled';
      reason = 'cancelled';
    }
    // The guard first: a refused transition must leave everything as it was, the slot included.
    transitionAttempt(a, status);
    this.release(run, j);
    if (reason !== undefined) a.reason = reason;
    else delete a.reason;
    if (outcome.message !== undefined) a.message = outcome.message;
    if (outcome.exitCode !== undefined) a.exitCode = outcome.exitCode;
    else if (status === 'succeeded') {
      // Executors report a code for failures only; a success exited with its last process's code.
      const code = lastExitCode(outcome.steps);
      if (code !== undefined) a.exitCode = code;
    }
    if (outcome.workerId) a.workerId = outcome.workerId;
    a.finishedAt = now;
    if (outcome.steps.length) a.steps = outcome.steps.map((s) => stepRecordOf(s, a.steps[s.index]));
    j.aborting = undefined;
    this.emit({
      event: 'attempt:finished',
      runId,
      jobId,
      attempt: number,
      status,
      ...(reason === undefined ? {} : { reason }),
    });
    if (status === 'succeeded') {
      j.rec.outputs = { ...outcome.outputs };
      this.finishJob(run, j, 'succeeded');
    } else if (status === 'cancelled') {
      this.keepOutputs(j, outcome);
      this.finishJob(run, j, 'cancelled', 'cancelled', outcome.message ?? j.cancelWhy);
    } else {
      this.afterFailure(run, j, a, {
        ...outcome,
        status: 'failed',
        ...(reason === undefined ? {} : { reason: reason as FailureReason }),
      });
    }
  }

  private afterFailure(run: SRun, j: SJob, a: AttemptRecord | undefined, outcome: AttemptOutcome): void {
    const now = this.opts.now();
    // Before the retry decision: a job cancelled in its back-off still has what its last attempt set.
    this.keepOutputs(j, outcome);
    const policy = j.base.spec.retry;
    const cancelling = run.rec.status === 'cancelling' || j.cancelRequested;
    const first = j.rec.attempts[0];
    const decision = cancelling
      ? ({ retry: false, why: 'the run is being cancelled' } as const)
      : decideRetry(
          policy,
          {
            number: a?.number ?? j.rec.attempts.length,
            reason: outcome.reason,
            exitCode: outcome.exitCode,
            nonRetryable: outcome.nonRetryable,
            retryAfterMs: outcome.retryAfterMs,
            firstStartedAt: first?.startedAt ?? now,
            now,
          },
          this.opts.random,
        );
    if (decision.retry) {
      transitionJob(j.rec, 'retrying');
      this.unadmit(run, j);
      j.readyAt = now + decision.delayMs;
      j.rec.retryAt = j.readyAt;
      run.waiting.add(j);
      this.touch(j);
      this.emit({
        event: 'job:retrying',
        runId: run.rec.id,
        jobId: j.rec.id,
        attempt: (a?.number ?? 0) + 1,
        delayMs: decision.delayMs,
      });
      return;
    }
    const reason = outcome.reason ?? 'exit_code';
    const msg = outcome.message ?? a?.message;
    this.finishJob(run, j, 'failed', reason, msg);
  }

  /**
   * A job that did not succeed keeps the outputs its last attempt set before it ended, as on
   * GitHub (job outputs are evaluated at the end of every job), for an `if: failure()` or
   * `always()` job that reads them.
   */
  private keepOutputs(j: SJob, outcome: AttemptOutcome): void {
    const outputs = outcome.outputs;
    if (typeof outputs !== 'object' || outputs === null) return;
    // Only what was set: an output naming a step that never ran is empty, and must not hide a
    // matrix sibling's value (instances merge, later ones winning) or an earlier attempt's.
    let kept: Record<string, string> | undefined;
    for (const k in outputs) {
      const v = outputs[k];
      if (typeof v !== 'string' || v === '') continue;
      kept ??= { ...j.rec.outputs };
      kept[k] = v;
    }
    if (kept !== undefined) j.rec.outputs = kept;
  }

  private onCancel(e: Extract<SchedulerEvent, { type: 'cancel' }>): void {
    const run = this.runs.get(e.runId);
    if (!run || isTerminalRun(run.rec.status)) return;
    const now = this.opts.now();
    if (e.job !== undefined) {
      const targets = [...run.jobs.values()].filter((j) => j.rec.id === e.job || j.rec.job === e.job);
      for (const j of targets)
        this.cancelJob(run, j, e.force ? 'force' : 'cancel', `cancelled by ${e.by}: ${e.reason}`);
      return;
    }
    const already = run.rec.cancel;
    if (already && (already.force || !e.force)) return;
    const cancel: CancelRequest = { by: e.by, reason: e.reason, at: now, force: e.force };
    if (e.supersededBy !== undefined) cancel.supersededBy = e.supersededBy;
    if (e.timeout) run.rec.reason = 'timeout';
    if (run.rec.status === 'queued') {
      // Never started (waiting on its concurrency group): nothing to clean up.
      run.rec.cancel = { ...(already ?? cancel), force: e.force, deadline: now };
      transitionRun(run.rec, 'cancelling');
      for (const j of run.jobs.values()) this.finishJob(run, j, 'cancelled', 'cancelled', `run cancelled: ${e.reason}`);
      this.checkRunDone(run);
      return;
    }
    this.beginCancelling(run, already ? { ...already, force: true } : cancel);
    this.applyCancel(run, e.force);
    this.checkRunDone(run);
  }

  /** The longest kill-grace among the run's running attempts that a graceful cancel aborts. */
  private longestGrace(run: SRun): number {
    let grace = 0;
    for (const j of run.running) {
      if (this.goesOnWhenCancelled(run, j.base)) continue;
      let g = j.base.spec.killGraceMs;
      for (const step of j.base.spec.steps)
        if (step.killGraceMs !== undefined && step.killGraceMs > g) g = step.killGraceMs;
      if (g > grace) grace = g;
    }
    return grace;
  }

  /** Applies a run cancel: abort running work, cancel what has not started; cleanup jobs survive unless forced. */
  private applyCancel(run: SRun, force: boolean): void {
    const why = `run cancelled: ${run.rec.cancel?.reason ?? 'cancelled'}`;
    for (const j of [...run.jobs.values()]) {
      if (isTerminalJob(j.rec.status)) continue;
      // A cleanup job not evaluated yet is decided by evaluateBase, with cancelled() true, once its needs are done.
      if (!force && j.base.cleanup && (!j.base.evaluated || this.goesOnWhenCancelled(run, j.base))) continue;
      if (j.rec.status === 'pending') {
        // DESIGN §4.1 holds in a cancel too: a job whose needs are still being stopped ends when they
        // have, so a cleanup job after it never starts beside a job upstream of it. Forced: nothing waits.
        if (!force && !j.base.evaluated && !this.needsDone(j.base)) continue;
        this.finishJob(run, j, 'cancelled', 'upstream', why);
      } else this.cancelJob(run, j, force ? 'force' : 'cancel', why);
    }
  }

  /**
   * Whether a job that passed its `if:` before the run was cancelled goes on (queued or
   * running) through a graceful cancel. As on GitHub, its `if:` is evaluated again with
   * `cancelled()` true: `always()` and `cancelled()` jobs go on, `!cancelled()` ones stop.
   * Only a condition that calls one of those two can be true then.
   */
  private goesOnWhenCancelled(run: SRun, base: SBase): boolean {
    if (!base.cleanup) return false;
    const status = { success: false, failure: this.ancestorFailed(base), cancelled: true };
    try {
      return evaluateCondition(base.spec.if, base.ctx ?? this.baseContext(run, base), status);
    } catch {
      return false;
    }
  }

  /**
   * Fails a job the pipeline itself got wrong before it ran (a job-level expression that cannot be
   * evaluated): the pipeline's failure, which `continue-on-error` does not cover (a mistake in the
   * file, not a failure of the work), as for an `if:` or a matrix that cannot be evaluated.
   */
  private failByPipeline(run: SRun, j: SJob, message: string): void {
    j.coe = false;
    this.finishJob(run, j, 'failed', PIPELINE_ERROR, message);
  }

  /** Tells the executor to abort the job's running (last) attempt. */
  private abortAttempt(runId: string, j: SJob, reason: AbortReason): void {
    const a = j.rec.attempts[j.rec.attempts.length - 1] as AttemptRecord;
    this.cmds.push({ type: 'abort', runId, jobId: j.rec.id, attempt: a.number, reason });
  }

  private cancelJob(run: SRun, j: SJob, kind: 'cancel' | 'force', why: string): void {
    j.cancelRequested = true;
    const s = j.rec.status;
    if (isTerminalJob(s)) return;
    if (s === 'running') {
      if (j.aborting === kind || j.aborting === 'force') return;
      if (j.aborting === 'timeout' && kind !== 'force') return;
      j.aborting = kind;
      j.cancelWhy = why;
      this.abortAttempt(run.rec.id, j, { type: 'cancel', force: kind === 'force', message: why });
      return;
    }
    this.finishJob(run, j, 'cancelled', s === 'pending' ? 'upstream' : 'cancelled', why);
  }

  private onTick(): void {
    const now = this.opts.now();
    for (const run of [...this.runs.values()]) {
      if (run.rec.status === 'running' && run.deadline !== undefined && run.deadline <= now) {
        this.onCancel({
          type: 'cancel',
          runId: run.rec.id,
          reason: `run timeout of ${run.rec.spec.timeoutMs} ms reached`,
          by: 'timeout',
          force: false,
          timeout: true,
        });
      }
      for (const j of run.running) {
        if (j.aborting || j.deadline === undefined || j.deadline > now) continue;
        j.aborting = 'timeout';
        this.abortAttempt(run.rec.id, j, { type: 'timeout', message: `job timeout of ${j.timeoutMs} ms reached` });
      }
      for (const j of [...run.waiting]) {
        if ((j.readyAt ?? 0) > now) continue;
        run.waiting.delete(j);
        j.readyAt = undefined;
        transitionJob(j.rec, 'queued');
        this.touch(j);
        this.admit(run, j);
        this.emit({ event: 'job:queued', runId: run.rec.id, jobId: j.rec.id });
      }
      if (this.queueTimeoutMs !== undefined) this.expireQueued(run, now, this.queueTimeoutMs);
    }
  }

  /**
   * DESIGN §4.4: fails the jobs that waited longer than the queue timeout in the
   * ready list. The list is in admission order, so only its expired head is visited.
   */
  private expireQueued(run: SRun, now: number, timeoutMs: number): void {
    while (run.readyHead < run.ready.length) {
      const j = run.ready[run.readyHead] as SJob;
      if (j.rec.status === 'queued' && j.queuedAt + timeoutMs > now) return;
      this.takeReady(run, run.readyHead);
      if (j.rec.status !== 'queued') continue;
      const routed = this.routeOf(j);
      const message = `no worker took the job within ${formatDuration(timeoutMs)} (queue timeout)`;
      // Recorded as an attempt that never ran, so retry counting and the report see it.
      const attempt: AttemptRecord = {
        number: j.rec.attempts.length + 1,
        executor: 'executor' in routed ? routed.executor : '',
        status: 'failed',
        reason: 'infra',
        message,
        startedAt: j.queuedAt,
        finishedAt: now,
        steps: [],
      };
      j.rec.attempts.push(attempt);
      this.unadmit(run, j);
      this.afterFailure(run, j, attempt, infraOutcome(message));
    }
  }

  /** Puts a queued job in the ready list, or in its base's backlog while `max-parallel` is reached. */
  private admit(run: SRun, j: SJob): void {
    const base = j.base;
    // Restore may reach a job twice (its group was free, and it is queued): one slot per job.
    if (j.admitted || base.backlog.includes(j)) return;
    if (base.admitted >= base.maxParallel) {
      if (base.backlog === NO_BACKLOG) base.backlog = [];
      base.backlog.push(j);
      return;
    }
    base.admitted++;
    j.admitted = true;
    j.queuedAt = this.opts.now();
    run.ready.push(j);
  }

  /** A job left the ready list or stopped running: its `max-parallel` slot goes to the backlog. */
  private unadmit(run: SRun, j: SJob): void {
    if (!j.admitted) return;
    j.admitted = false;
    const base = j.base;
    base.admitted--;
    while (base.backlog.length && base.admitted < base.maxParallel) {
      const next = base.backlog.shift() as SJob;
      if (next.rec.status === 'queued') this.admit(run, next);
    }
  }

  // ---- readiness ----------------------------------------------------------

  private needsDone(base: SBase): boolean {
    for (const nb of base.needs) if (nb.unfinished > 0) return false;
    return true;
  }

  /** `needs` context of a job: result and outputs of each need (matrix outputs merged, last wins). */
  private needsContext(base: SBase): Record<string, unknown> {
    if (base.needs.length === 0) return NO_NEEDS;
    // Built prototype-less, a hash table from the start: with `{}`, every distinct set of job names
    // became a hidden class of its own (thousands in a large DAG), and adding properties was slow.
    // The prototype is set afterwards, so executors get an ordinary object (toString, hasOwnProperty).
    const ctx: Record<string, unknown> = Object.create(null);
    for (const nb of base.needs) ctx[nb.key] = needEntry(nb);
    return Object.setPrototypeOf(ctx, Object.prototype) as Record<string, unknown>;
  }

  /**
   * `failure()` of a base whose needs are all terminal. A need that was itself
   * evaluated with all its needs terminal carries a final answer for its ancestors;
   * only needs finished without evaluation (cancelled while pending, restored) take
   * the full walk.
   */
  private ancestorFailed(base: SBase): boolean {
    let final = true;
    for (const nb of base.needs) {
      if (baseFailed(nb) || nb.ancestorFailed === true) return settleAncestors(base, true);
      if (nb.ancestorFailed === undefined) {
        final = false;
        if (walkAncestors(nb.needs)) return settleAncestors(base, true);
      }
    }
    return final ? settleAncestors(base, false) : false;
  }

  private baseContext(run: SRun, base: SBase): ExprContext {
    return {
      github: run.github,
      inputs: run.rec.inputs,
      needs: this.needsContext(base),
      env: run.rec.spec.env,
      vars: run.rec.vars ?? NO_VARS,
      runner: RUNNER,
      job: JOB_STATUS,
    };
  }

  /** DESIGN §4.1: evaluate a base job once all its needs are terminal. */
  private evaluateBase(run: SRun, base: SBase): void {
    if (base.evaluated) return;
    base.evaluated = true;
    const pendingInst: SJob[] = [];
    for (const j of base.instances) if (j.rec.status === 'pending') pendingInst.push(j);
    const cancelling = run.rec.status === 'cancelling';
    if (cancelling && (!base.cleanup || run.rec.cancel?.force)) {
      for (const j of pendingInst)
        this.finishJob(run, j, 'cancelled', 'upstream', 'the run was cancelled before this job started');
      return;
    }
    const ctx = this.baseContext(run, base);
    const needs = ctx.needs as Record<string, { result: string }>;
    let allSucceeded = true;
    for (const k in needs) if ((needs[k] as { result: string }).result !== 'success') allSucceeded = false;
    const status = {
      success: allSucceeded && !cancelling,
      failure: this.ancestorFailed(base),
      cancelled: cancelling,
    };
    let ok: boolean;
    try {
      ok = evaluateCondition(base.spec.if, ctx, status);
    } catch (err) {
      for (const j of pendingInst) this.failByPipeline(run, j, `if: ${(err as Error).message}`);
      return;
    }
    if (!ok) {
      const reason: Reason = allSucceeded ? 'condition' : 'upstream';
      for (const j of pendingInst) this.finishJob(run, j, 'skipped', reason);
      return;
    }
    let instances = pendingInst;
    if (isDynamic(base.spec)) {
      try {
        instances = this.expandDynamic(run, base, ctx, pendingInst);
      } catch (err) {
        for (const j of pendingInst) this.failByPipeline(run, j, `strategy.matrix: ${(err as Error).message}`);
        return;
      }
    }
    const errors = this.applyJobSettings(run, base, ctx);
    base.ctx = ctx;
    // The failures first: fail-fast may cancel siblings, which then are not queued.
    if (errors) for (const [j, error] of errors) this.failByPipeline(run, j, error);
    for (const j of instances) this.queueOrWait(run, j, ctx);
    if (instances.length === 0) this.checkDependents(run, base);
  }

  /**
   * Queues a job that passed its `if:`, unless its job-level concurrency group is
   * held: then it waits (status `pending`) as the group's one pending job,
   * superseding an older pending one, and with `cancel-in-progress` cancels the holder.
   */
  private queueOrWait(run: SRun, j: SJob, ctx: ExprContext): void {
    // Failed or cancelled (fail-fast) while its siblings were being queued.
    if (j.rec.status !== 'pending') return;
    const conc = j.base.spec.concurrency;
    if (conc) {
      let group: string;
      let cancelInProgress: boolean;
      try {
        const jctx = { ...ctx, matrix: j.rec.matrix };
        group = interpolate(conc.group, jctx);
        const cip = conc.cancelInProgress;
        cancelInProgress = typeof cip === 'string' ? isTruthy(evaluateValue(cip, jctx)) : cip;
      } catch (err) {
        this.failByPipeline(run, j, `concurrency: ${(err as Error).message}`);
        return;
      }
      j.group = group;
      const g = this.jobGroups.get(group) ?? {};
      this.jobGroups.set(group, g);
      if (g.holder) {
        const why = `superseded by job ${j.rec.id} of run ${run.rec.id} (concurrency group \`${group}\`)`;
        const older = g.pending;
        g.pending = { run, job: j };
        j.rec.message = `waiting for concurrency group \`${group}\` (held by job ${g.holder.job.rec.id} of run ${g.holder.run.rec.id})`;
        this.touch(j);
        if (older) this.finishJob(older.run, older.job, 'cancelled', 'cancelled', why);
        if (cancelInProgress && g.holder) this.cancelJob(g.holder.run, g.holder.job, 'cancel', why);
        return;
      }
      g.holder = { run, job: j };
    }
    this.queue(run, j);
  }

  private queue(run: SRun, j: SJob): void {
    transitionJob(j.rec, 'queued');
    this.touch(j);
    this.admit(run, j);
    this.emit({ event: 'job:queued', runId: run.rec.id, jobId: j.rec.id });
  }

  private onAbandon(runId: string, reason: string): void {
    const run = this.runs.get(runId);
    if (!run) return;
    for (const j of run.jobs.values()) {
      this.dirtyJobs.delete(j.rec);
      if (j.rec.status === 'running') {
        // Forced: the attempt's outcome is not this engine's to record any more.
        this.abortAttempt(runId, j, { type: 'cancel', force: true, message: reason });
        this.release(run, j);
      }
      if (j.group !== undefined) this.leaveGroup(j);
    }
    this.dirtyRuns.delete(runId);
    this.newJobs.delete(runId);
    this.dropRun(run);
  }

  /** Forgets a run (finished or let go) and hands its run-level group to the run waiting for it. */
  private dropRun(run: SRun): void {
    const id = run.rec.id;
    this.runs.delete(id);
    const at = this.runList.indexOf(run);
    if (at >= 0) this.runList.splice(at, 1);
    const group = run.rec.concurrencyGroup;
    const g = group === undefined ? undefined : this.groups.get(group);
    if (g === undefined || group === undefined) return;
    if (g.pending === id) g.pending = undefined;
    if (g.running === id) {
      g.running = undefined;
      const next = g.pending !== undefined ? this.runs.get(g.pending) : undefined;
      g.pending = undefined;
      if (next && next.rec.status === 'queued') {
        g.running = next.rec.id;
        this.startRun(next);
      }
    }
    if (g.running === undefined && g.pending === undefined) this.groups.delete(group);
  }

  /** A job left its job-level group (it ended): the pending job, if any, takes the group. */
  private leaveGroup(j: SJob): void {
    const key = j.group as string;
    j.group = undefined;
    const g = this.jobGroups.get(key);
    if (!g) return;
    if (g.pending?.job === j) g.pending = undefined;
    else if (g.holder?.job === j) {
      g.holder = undefined;
      const next = g.pending;
      g.pending = undefined;
      if (next && next.job.rec.status === 'pending' && this.runs.get(next.run.rec.id) === next.run) {
        g.holder = next;
        delete next.job.rec.message;
        this.queue(next.run, next.job);
      }
    }
    if (!g.holder && !g.pending) this.jobGroups.delete(key);
  }

  /**
   * Evaluates settings that may be expressions: fail-fast, max-parallel, timeouts, continue-on-error.
   * Returns the instances whose `timeout-minutes` cannot be evaluated to a positive number, with why.
   */
  private applyJobSettings(
    run: SRun,
    base: SBase,
    ctx: ExprContext = this.baseContext(run, base),
  ): Map<SJob, string> | undefined {
    let errors: Map<SJob, string> | undefined;
    const strat = base.spec.strategy;
    if (strat) {
      base.failFast = typeof strat.failFast === 'string' ? isTruthy(safeValue(strat.failFast, ctx)) : strat.failFast;
      if (strat.maxParallel !== undefined) {
        const mp =
          typeof strat.maxParallel === 'string' ? Number(safeValue(strat.maxParallel, ctx)) : strat.maxParallel;
        if (Number.isFinite(mp) && mp >= 1) base.maxParallel = Math.floor(mp);
      }
    }
    const coe = base.spec.continueOnError;
    const timeoutExpr = base.spec.timeoutMinutesExpr;
    const routeSpecs = base.routeSpecs;
    for (const j of base.instances) {
      if (typeof coe !== 'string' && timeoutExpr === undefined && routeSpecs === undefined) {
        j.coe = coe;
      } else {
        const jctx = { ...ctx, matrix: j.rec.matrix };
        j.coe = typeof coe === 'string' ? isTruthy(safeValue(coe, jctx)) : coe;
        if (timeoutExpr !== undefined) {
          try {
            j.timeoutMs = timeoutMinutesMs(evaluateValue(timeoutExpr, jctx));
          } catch (err) {
            errors ??= new Map();
            errors.set(j, `timeout-minutes: ${(err as Error).message}`);
          }
        }
        if (routeSpecs !== undefined) {
          try {
            routeSpecs.set(j, { ...base.spec, runsOn: runsOnLabels(base.spec.runsOn, jctx) });
          } catch (err) {
            errors ??= new Map();
            if (!errors.has(j)) errors.set(j, `runs-on: ${(err as Error).message}`);
          }
        }
      }
      // On restore a job may have failed already: under continue-on-error it still counts as a success.
      j.continuedOnError = j.rec.status === 'failed' && j.coe;
    }
    return errors;
  }

  private expandDynamic(run: SRun, base: SBase, ctx: ExprContext, placeholder: SJob[]): SJob[] {
    const m = base.spec.strategy?.matrix as MatrixSpec | string;
    let literal: unknown;
    if (typeof m === 'string') literal = evaluateValue(m, ctx);
    else {
      const axes: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(m.axes)) axes[k] = resolveDeep(v, ctx);
      literal = {
        ...axes,
        include: resolveDeep(m.include, ctx),
        exclude: resolveDeep(m.exclude, ctx),
      };
    }
    const combos = expandMatrix(matrixOfValue(literal));
    // As GitHub fails such a job: its dependents must not run as if it had succeeded.
    if (combos.length === 0) {
      throw new Error(
        'the matrix yields no job after evaluation: it has no axis and no `include`, or `exclude` removes every combination',
      );
    }
    // Replace the placeholder instance by the real ones.
    for (const p of placeholder) {
      run.jobs.delete(p.rec.id);
      run.unfinished--;
      base.unfinished--;
      this.dirtyJobs.delete(p.rec);
    }
    base.instances = [];
    const ids = instanceIds(base.key, combos);
    const now = this.opts.now();
    const added: SJob[] = [];
    const placeholderRec = placeholder[0]?.rec;
    combos.forEach((matrix, i) => {
      const id = ids[i] as string;
      // A single combination keeps the placeholder's id (runs stored by older versions hold a record of it).
      const rec: JobRecord = {
        runId: run.rec.id,
        id: combos.length === 1 && placeholderRec ? placeholderRec.id : id,
        job: base.key,
        matrix,
        needs: [...base.spec.needs],
        status: 'pending',
        outputs: {},
        attempts: [],
        createdAt: now,
      };
      added.push(this.addJob(run, rec));
    });
    const list = this.newJobs.get(run.rec.id) ?? [];
    list.push(...added.map((j) => j.rec));
    this.newJobs.set(run.rec.id, list);
    // A placeholder stored by an older version becomes skipped-by-expansion unless reused.
    for (const p of placeholder) {
      if (p.virtual || added.some((a) => a.rec.id === p.rec.id)) continue;
      transitionJob(p.rec, 'skipped');
      p.rec.reason = 'condition';
      p.rec.message = `expanded into ${combos.length} matrix instance(s)`;
      this.dirtyJobs.add(p.rec);
    }
    return added;
  }

  private checkDependents(run: SRun, base: SBase): void {
    for (const db of base.dependents) if (!db.evaluated && this.needsDone(db)) this.evaluateBase(run, db);
  }

  // ---- dispatch -----------------------------------------------------------

  /**
   * DESIGN §4.5: start ready jobs within the limits, round-robin across runs. In
   * each round every run with a startable job starts one; within a round runs go
   * by descending `priority`, equal priorities in submission order. A run that
   * could not start (capacity, `max-parallel`) keeps its turn in the round.
   */
  private dispatch(): void {
    // A run that could not start anything is skipped for the rest of this call; a stamp instead of a Set per call.
    const stamp = ++this.dispatchStamp;
    while (this.running < this.opts.concurrency) {
      let pick: SRun | undefined;
      let servedThisRound = false;
      // Submission order, so `>` keeps the earlier run on equal priority.
      for (const run of this.runList) {
        if (run.ready.length === run.readyHead || run.blockedStamp === stamp) continue;
        if (run.served >= this.round) servedThisRound = true;
        else if (!pick || run.rec.priority > pick.rec.priority) pick = run;
      }
      if (!pick) {
        if (!servedThisRound) return;
        this.round++;
        continue;
      }
      if (this.startOne(pick)) pick.served = this.round;
      else pick.blockedStamp = stamp;
    }
  }

  /** The engine's route for a job: its spec, with its evaluated `runs-on` labels when they were expressions. */
  private routeOf(j: SJob): ReturnType<Router> {
    return this.opts.route(j.base.routeSpecs?.get(j) ?? j.base.spec);
  }

  private startOne(run: SRun): boolean {
    for (let i = run.readyHead; i < run.ready.length; i++) {
      const j = run.ready[i] as SJob;
      if (j.rec.status !== 'queued') {
        i = this.takeReady(run, i);
        continue;
      }
      const routed = this.routeOf(j);
      if ('error' in routed) {
        i = this.takeReady(run, i);
        this.finishJob(run, j, 'failed', 'infra', routed.error);
        continue;
      }
      const slot = this.slots.get(routed.executor);
      if (!slot) {
        i = this.takeReady(run, i);
        this.finishJob(run, j, 'failed', 'infra', `no executor named \`${routed.executor}\``);
        continue;
      }
      if (slot.running >= slot.capacity) continue;
      this.takeReady(run, i);
      this.start(run, j, routed.executor);
      return true;
    }
    return false;
  }

  /**
   * Removes `ready[i]` and returns the index to continue the scan from. Taking the
   * head only moves `readyHead` (a splice at 0 per start made a 100,000-job fan-out
   * quadratic); the taken prefix is dropped in one splice once it is most of the array.
   */
  private takeReady(run: SRun, i: number): number {
    if (i === run.readyHead) {
      run.readyHead++;
      if (run.readyHead === run.ready.length) {
        run.ready.length = 0;
        run.readyHead = 0;
      } else if (run.readyHead >= 1024 && run.readyHead * 2 >= run.ready.length) {
        run.ready.splice(0, run.readyHead);
        run.readyHead = 0;
      }
      return run.readyHead - 1;
    }
    run.ready.splice(i, 1);
    return i - 1;
  }

  private start(run: SRun, j: SJob, executor: string): void {
    const now = this.opts.now();
    const number = j.rec.attempts.length + 1;
    const attempt: AttemptRecord = { number, executor, status: 'running', startedAt: now, steps: [] };
    const slot = this.slots.get(executor) as { running: number; workerId: string | undefined };
    if (slot.workerId !== undefined) attempt.workerId = slot.workerId;
    j.rec.attempts.push(attempt);
    const first = j.rec.startedAt === undefined;
    if (first) j.rec.startedAt = now;
    transitionJob(j.rec, 'running');
    j.deadline = now + j.timeoutMs;
    this.running++;
    slot.running++;
    run.running.add(j);
    this.touch(j);
    const avoid =
      j.base.spec.retry.differentWorker && number > 1
        ? [...new Set(j.rec.attempts.map((a) => a.workerId).filter((w): w is string => !!w))]
        : (NO_WORKERS as string[]);
    const base = j.base.ctx ?? this.baseContext(run, j.base);
    const strategy = {
      'fail-fast': j.base.failFast,
      'job-index': j.base.instances.indexOf(j),
      'job-total': j.base.instances.length,
      'max-parallel': Number.isFinite(j.base.maxParallel) ? j.base.maxParallel : j.base.instances.length,
    };
    const spec: AttemptSpec = {
      runId: run.rec.id,
      jobId: j.rec.id,
      jobKey: j.base.key,
      attempt: number,
      job: j.base.spec,
      matrix: j.rec.matrix,
      env: run.rec.spec.env,
      defaults: run.rec.spec.defaults,
      // Written out instead of spreading `base`: this literal is built once per attempt.
      contexts: {
        github: base.github,
        inputs: base.inputs,
        needs: base.needs,
        env: base.env,
        vars: base.vars,
        runner: base.runner,
        job: base.job,
        matrix: j.rec.matrix,
        strategy,
      },
    };
    if (first) this.emit({ event: 'job:started', runId: run.rec.id, jobId: j.rec.id });
    this.emit({ event: 'attempt:started', runId: run.rec.id, jobId: j.rec.id, attempt: number, executor });
    this.cmds.push({
      type: 'start',
      runId: run.rec.id,
      jobId: j.rec.id,
      attempt: number,
      executor,
      spec,
      avoidWorkers: avoid,
    });
  }

  private release(run: SRun, j: SJob): void {
    if (!run.running.delete(j)) return;
    this.running--;
    const a = j.rec.attempts[j.rec.attempts.length - 1];
    const slot = a ? this.slots.get(a.executor) : undefined;
    if (slot) slot.running--;
    j.deadline = undefined;
  }

  // ---- completion ---------------------------------------------------------

  private finishJob(run: SRun, j: SJob, status: JobStatus, reason?: Reason, message?: string): void {
    if (isTerminalJob(j.rec.status)) return;
    if (j.rec.status === 'running') this.release(run, j);
    run.waiting.delete(j);
    this.unadmit(run, j);
    if (j.group !== undefined) this.leaveGroup(j);
    transitionJob(j.rec, status);
    if (reason !== undefined) j.rec.reason = reason;
    if (message !== undefined) j.rec.message = message;
    j.rec.finishedAt = this.opts.now();
    if (status === 'failed' && j.coe) j.continuedOnError = true;
    run.unfinished--;
    if (j.virtual) this.materialize(run, j);
    else this.touch(j);
    this.emit({
      event: 'job:finished',
      runId: run.rec.id,
      jobId: j.rec.id,
      status,
      ...(reason === undefined ? {} : { reason }),
    });
    // fail-fast: a failing matrix instance cancels its siblings.
    if (status === 'failed' && !j.continuedOnError && j.base.failFast && j.base.instances.length > 1) {
      for (const s of j.base.instances) {
        if (s !== j && !isTerminalJob(s.rec.status)) this.cancelJob(run, s, 'cancel', `fail-fast: ${j.rec.id} failed`);
      }
    }
    if (--j.base.unfinished === 0) {
      j.base.ctx = undefined;
      this.checkDependents(run, j.base);
    }
    this.checkRunDone(run);
  }

  private checkRunDone(run: SRun): void {
    if (run.unfinished > 0 || isTerminalRun(run.rec.status) || run.rec.status === 'queued') return;
    const jobs = [...run.jobs.values()];
    const now = this.opts.now();
    if (run.rec.cancel) {
      transitionRun(run.rec, 'cancelled');
      run.rec.reason ??= 'cancelled';
      run.rec.message = run.rec.cancel.reason;
    } else {
      const failed = jobs.find(
        (j) => (j.rec.status === 'failed' && !j.continuedOnError) || j.rec.status === 'cancelled',
      );
      if (failed) {
        transitionRun(run.rec, 'failed');
        run.rec.reason = failed.rec.reason ?? 'exit_code';
        run.rec.message = `job ${failed.rec.id} ${failed.rec.status}${failed.rec.message ? `: ${failed.rec.message}` : ''}`;
      } else transitionRun(run.rec, 'succeeded');
    }
    run.rec.finishedAt = now;
    this.touchRun(run);
    this.emit({
      event: 'run:finished',
      runId: run.rec.id,
      status: run.rec.status,
      ...(run.rec.reason === undefined ? {} : { reason: run.rec.reason }),
    });
    this.cmds.push({ type: 'runFinished', runId: run.rec.id, run: run.rec, jobs: jobs.map((j) => j.rec) });
    this.dropRun(run);
  }

  // ---- helpers ------------------------------------------------------------

  private attemptOf(runId: string, jobId: string, n: number): AttemptRecord | undefined {
    return this.runs.get(runId)?.jobs.get(jobId)?.rec.attempts[n - 1];
  }

  private touch(j: SJob | undefined): void {
    if (j && !j.virtual) this.dirtyJobs.add(j.rec);
  }

  /** Stores a placeholder that ended without expanding, so the report's jobs and the stored ones agree. */
  private materialize(run: SRun, j: SJob): void {
    j.virtual = false;
    const list = this.newJobs.get(run.rec.id) ?? [];
    list.push(j.rec);
    this.newJobs.set(run.rec.id, list);
  }

  private touchRun(run: SRun): void {
    this.dirtyRuns.set(run.rec.id, run.rec);
  }

  private emit(e: SchedulerEmit): void {
    this.cmds.push({ type: 'emit', emit: e });
  }
}

/**
 * `needs.<id>` of a base: its result and its instances' outputs merged. Once every instance
 * is terminal it cannot change, so it is built once (frozen) and shared by all dependents.
 */
function needEntry(nb: SBase): { result: string; outputs: Record<string, string> } {
  if (nb.needEntry !== undefined) return nb.needEntry;
  let outputs: Record<string, string> = NO_OUTPUTS;
  for (const j of nb.instances) {
    for (const k in j.rec.outputs) {
      if (outputs === NO_OUTPUTS) outputs = {};
      outputs[k] = j.rec.outputs[k] as string;
    }
  }
  const entry = { result: resultOf(nb.instances), outputs };
  if (nb.unfinished > 0) return entry;
  Object.freeze(outputs);
  nb.needEntry = Object.freeze(entry);
  return entry;
}

/** The outcome of an attempt that failed outside its steps (no executor, executor crash, queue timeout). */
export function infraOutcome(message: string): AttemptOutcome {
  return { status: 'failed', reason: 'infra', message, workerId: '', steps: [], outputs: {} };
}

function settleAncestors(base: SBase, failed: boolean): boolean {
  base.ancestorFailed = failed;
  return failed;
}

function baseFailed(base: SBase): boolean {
  for (const j of base.instances) if (j.rec.status === 'failed' && !j.continuedOnError) return true;
  return false;
}

function walkAncestors(needs: readonly SBase[]): boolean {
  const seen = new Set<SBase>();
  const stack = [...needs];
  while (stack.length) {
    const nb = stack.pop() as SBase;
    if (seen.has(nb)) continue;
    seen.add(nb);
    if (baseFailed(nb)) return true;
    for (const n of nb.needs) stack.push(n);
  }
  return false;
}

/**
 * `runs-on` labels with their `${{ }}` evaluated: a string is one label, a list several (as
 * `runs-on: ${{ matrix.os }}` or `${{ fromJSON('["self-hosted","linux"]') }}` give on GitHub).
 */
function runsOnLabels(labels: readonly string[], ctx: ExprContext): string[] {
  const out: string[] = [];
  for (const label of labels) {
    if (!label.includes('${{')) {
      out.push(label);
      continue;
    }
    const v = evaluateValue(label, ctx);
    for (const x of Array.isArray(v) ? v : [v]) {
      if (typeof x !== 'string' && typeof x !== 'number') {
        throw new Error(`\`${label}\` gave ${JSON.stringify(x) ?? String(x)}; a label is a string`);
      }
      if (String(x).trim() !== '') out.push(String(x));
    }
  }
  if (out.length === 0) throw new Error('no label after evaluation');
  return out;
}

/**
 * The reason of a job the pipeline itself fails before it runs (a job-level expression that cannot
 * be evaluated, a matrix that yields no job): the pipeline's failure like a step's non-zero exit,
 * never retried, not `infra` (which says the platform failed and re-running may help).
 */
const PIPELINE_ERROR: FailureReason = 'exit_code';

function safeValue(expr: string, ctx: ExprContext): unknown {
  try {
    return evaluateValue(expr, ctx);
  } catch {
    return undefined;
  }
}

function resolveDeep(v: unknown, ctx: ExprContext): unknown {
  if (typeof v === 'string') return v.includes('${{') ? evaluateValue(v, ctx) : v;
  if (Array.isArray(v)) return v.map((x) => resolveDeep(x, ctx));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = resolveDeep(x, ctx);
    return out;
  }
  return v;
}

/** The exit code of the last step that ran a process, if any did. */
function lastExitCode(steps: readonly StepResult[]): number | undefined {
  for (let i = steps.length - 1; i >= 0; i--) {
    const code = steps[i]?.exitCode;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

function stepRecordOf(r: StepResult, prev: StepRecord | undefined): StepRecord {
  const s: StepRecord = {
    index: r.index,
    name: r.name,
    status: r.status,
    outcome: r.outcome,
    conclusion: r.conclusion,
  };
  if (r.id !== undefined) s.id = r.id;
  if (r.reason !== undefined) s.reason = r.reason;
  if (r.exitCode !== undefined) s.exitCode = r.exitCode;
  const started = r.startedAt ?? prev?.startedAt;
  if (started !== undefined) s.startedAt = started;
  if (r.finishedAt !== undefined) s.finishedAt = r.finishedAt;
  return s;
}

function isDynamic(spec: JobSpec): boolean {
  return spec.strategy?.matrix !== undefined && isDynamicMatrix(spec.strategy.matrix);
}

/** Whether `rec` is the stand-in of dynamic matrix job `js` before it expands (its id is the job's key). */
function isPlaceholder(js: JobSpec | undefined, rec: JobRecord): boolean {
  return js !== undefined && rec.id === rec.job && isDynamic(js);
}

/**
 * The records of a new run the store gets at submit: all but the placeholders of
 * dynamic matrix jobs, which the scheduler keeps in memory until they expand.
 */
export function storedJobs(spec: RunRecord['spec'], jobs: readonly JobRecord[]): JobRecord[] {
  return jobs.filter((j) => !isPlaceholder(spec.jobs[j.job], j));
}

/** Creates the job records of a new run from its plan (one per static matrix instance). */
export function initialJobs(runId: string, spec: RunRecord['spec'], now: number): JobRecord[] {
  const jobs: JobRecord[] = [];
  for (const js of Object.values(spec.jobs)) for (const r of jobRecords(runId, js, now)) jobs.push(r);
  return jobs;
}

/** The pending records of one job: one per static matrix instance, or a dynamic matrix job's placeholder. */
function jobRecords(runId: string, js: JobSpec, now: number): JobRecord[] {
  return expandJob(js).map((p) => ({
    runId,
    id: p.id,
    job: p.job,
    matrix: p.matrix,
    needs: p.needs,
    status: 'pending',
    outputs: {},
    attempts: [],
    createdAt: now,
  }));
}
