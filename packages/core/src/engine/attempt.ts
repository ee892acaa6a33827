import type { LogSink, RunLogger } from '../logs/run-logger.js';
import type {
  ActionHandler,
  AttemptOutcome,
  ExecContext,
  OutputStream,
  StepEvents,
  StepResult,
} from '../ports/executor.js';
import type { AbortReason } from '../steps/abort.js';
import { canFinishAttempt, infraOutcome, type SchedulerCommand, type SchedulerEvent } from './scheduler.js';

/** What an attempt needs from the engine that runs it. */
export interface AttemptHost {
  enqueue(event: SchedulerEvent): void;
  /** The attempt has ended (outcome known, log streams closed). */
  attemptEnded(key: string): void;
  readonly actions: ReadonlyMap<string, ActionHandler>;
  readonly now: () => number;
  readonly random: () => number;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

type StartCommand = Extract<SchedulerCommand, { type: 'start' }>;

function isStepResult(s: unknown): s is StepResult {
  return (
    typeof s === 'object' && s !== null && Number.isInteger((s as StepResult).index) && (s as StepResult).index >= 0
  );
}

/** The descriptor of every attempt's `signal`; set in the class's static block. */
let SIGNAL_PROPERTY: PropertyDescriptor;

/**
 * One running attempt: the {@link ExecContext} the executor gets and the engine's
 * bookkeeping for it, in one object. An attempt used to cost an async closure, an
 * AbortController and a dozen closures; at 100,000 jobs that garbage was a third
 * of the engine's time. The signal is created when the executor first reads it.
 */
export class RunningAttempt implements ExecContext {
  /** Aborted on job timeout or cancel; see {@link ExecContext.signal}. Defined in the constructor. */
  declare readonly signal: AbortSignal;
  secrets: Record<string, string> = {};
  readonly avoidWorkers: readonly string[];
  readonly actions: ReadonlyMap<string, ActionHandler>;
  readonly addMask: (value: string) => void;
  readonly now: () => number;
  /** The engine's random source; shared, not per attempt. */
  readonly random: () => number;
  /** Waits on the engine's clock; shared, not per attempt. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  // Every member an executor may use is an own property, so a context that is spread, copied
  // with Object.assign or taken apart (`const { stepStarted } = ctx.events`) keeps working.
  /** Step output; may return a promise to apply backpressure. */
  readonly output = (stream: OutputStream, step: number, chunk: Uint8Array): void | Promise<void> =>
    this.#sink(stream, step).write(chunk);
  /** The worker the attempt landed on; recorded while it runs. */
  readonly placed = (workerId: string): void => {
    const c = this.#c;
    this.#host.enqueue({ type: 'attemptWorker', runId: c.runId, jobId: c.jobId, attempt: c.attempt, workerId });
  };
  /** Step lifecycle callbacks. */
  readonly events: StepEvents = {
    stepStarted: (index: number, name: string, at: number): void => {
      const c = this.#c;
      this.#host.enqueue({ type: 'stepStarted', runId: c.runId, jobId: c.jobId, attempt: c.attempt, index, name, at });
    },
    stepFinished: (result: StepResult): void => {
      const c = this.#c;
      this.#endStep(result.index).catch(() => undefined); // a failed log store is reported when the run ends
      this.#host.enqueue({ type: 'stepFinished', runId: c.runId, jobId: c.jobId, attempt: c.attempt, result });
    },
  };
  // Private (#): kept out of spreads, JSON and util.inspect of the context an executor holds.
  /** Created when the executor reads `signal` or on the first abort, whichever comes first. */
  #controller: AbortController | undefined;
  /** Created on the first abort only: most attempts are never aborted. */
  #cleanup: AbortController | undefined;
  /** The key of the attempt in the engine's table. */
  readonly #key: string;
  readonly #host: AttemptHost;
  readonly #c: StartCommand;
  readonly #logger: RunLogger;
  /** Open log streams by `step:stream`; created with the first output. */
  #sinks: Map<string, LogSink> | undefined;

  constructor(host: AttemptHost, key: string, c: StartCommand, logger: RunLogger) {
    this.#host = host;
    this.#key = key;
    this.#c = c;
    this.#logger = logger;
    this.avoidWorkers = c.avoidWorkers;
    this.actions = host.actions;
    this.addMask = logger.maskAdder;
    this.now = host.now;
    this.random = host.random;
    this.sleep = host.sleep;
    // An own, enumerable accessor: a spread copies the signal (the getter runs), a prototype getter was dropped.
    // One getter function for all attempts, so they all share one hidden class (a getter per attempt made
    // a new one each time).
    Object.defineProperty(this, 'signal', SIGNAL_PROPERTY);
  }

  static {
    // The getter of every attempt's own `signal` property (in the class body: it reads a private field).
    SIGNAL_PROPERTY = {
      get(this: RunningAttempt): AbortSignal {
        this.#controller ??= new AbortController();
        return this.#controller.signal;
      },
      enumerable: true,
      configurable: true,
    };
  }

  /**
   * Aborts the attempt's signal (once) with `reason`; a forced abort also aborts the cleanup
   * signal that cleanup steps run with (`reason.cleanupSignal`).
   */
  abort(reason: Omit<AbortReason, 'cleanupSignal'>): void {
    this.#cleanup ??= new AbortController();
    this.#controller ??= new AbortController();
    const full: AbortReason = { ...reason, cleanupSignal: this.#cleanup.signal };
    if (!this.#controller.signal.aborted) this.#controller.abort(full);
    if (reason.force) this.#cleanup.abort(full);
  }

  /** Records the outcome once every open log stream has ended. */
  finish(given: AttemptOutcome): void {
    // A plain-JS executor may return anything: a status the attempt cannot end in is an executor
    // error (logged like a crash), not a transition the scheduler would refuse and hang on.
    if (!canFinishAttempt(given?.status)) {
      this.crashed(
        new Error(
          `it returned an attempt status of \`${String(given?.status)}\`; expected succeeded, failed or cancelled`,
        ),
      );
      return;
    }
    let outcome = given;
    // Missing lists are empty ones (`{status: 'succeeded'}` is a fair answer from a no-op
    // executor); step entries that are not step results are left out.
    const steps = Array.isArray(outcome.steps) ? outcome.steps : [];
    const goodSteps = steps.filter(isStepResult);
    const outputs = typeof outcome.outputs === 'object' && outcome.outputs !== null ? outcome.outputs : undefined;
    if (goodSteps.length !== steps.length || steps !== outcome.steps || outputs === undefined) {
      outcome = { ...outcome, steps: goodSteps, outputs: outputs ?? {} };
    }
    // Messages are stored and reported: whatever an executor quoted (Docker errors, a value in an
    // option), no secret value may reach them (DESIGN §4.6).
    if (typeof outcome.message === 'string') {
      const masked = this.#logger.masker.mask(outcome.message);
      if (masked !== outcome.message) outcome = { ...outcome, message: masked };
    }
    // Secret values are dropped with the context when the attempt ends.
    this.secrets = {};
    const sinks = this.#sinks;
    // Most attempts have no open log stream left: finish without the extra promise round.
    if (!sinks || sinks.size === 0) {
      this.#done(outcome);
      return;
    }
    void Promise.all([...sinks.values()].map((s) => s.end().catch(() => undefined))).then(() => {
      sinks.clear();
      this.#done(outcome);
    });
  }

  /**
   * The executor (or, with `source`, something else the attempt needed, like its secrets)
   * threw or rejected: the attempt fails as `infra`, with the message in its log.
   */
  crashed(err: unknown, source?: string): void {
    const msg = err instanceof Error ? err.message : String(err);
    const c = this.#c;
    const what = source ?? `${c.executor} executor error`;
    this.#logger.system({ jobId: c.jobId, attempt: c.attempt, step: -1 }, `[pipewright] ${what}: ${msg}`);
    this.finish(infraOutcome(`${what}: ${msg}`));
  }

  #done(outcome: AttemptOutcome): void {
    const c = this.#c;
    this.#host.attemptEnded(this.#key);
    this.#host.enqueue({ type: 'attemptFinished', runId: c.runId, jobId: c.jobId, attempt: c.attempt, outcome });
  }

  #sink(stream: OutputStream, step: number): LogSink {
    const k = `${step}:${stream}`;
    this.#sinks ??= new Map();
    let s = this.#sinks.get(k);
    if (!s) {
      s = this.#logger.stream({ jobId: this.#c.jobId, attempt: this.#c.attempt, step, stream });
      this.#sinks.set(k, s);
    }
    return s;
  }

  async #endStep(step: number): Promise<void> {
    const sinks = this.#sinks;
    if (!sinks) return;
    // Both streams hand over their last line now, in this turn: waiting for stdout's flush before
    // ending stderr let the next step's lines get their seq before this step's stderr tail.
    const ending: Promise<void>[] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      const k = `${step}:${stream}`;
      const s = sinks.get(k);
      if (s) {
        sinks.delete(k);
        ending.push(s.end());
      }
    }
    await Promise.all(ending);
  }
}
