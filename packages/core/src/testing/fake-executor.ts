import type { Clock } from '../engine/clock.js';
import type { AttemptOutcome, AttemptSpec, ExecContext, Executor, StepResult } from '../ports/executor.js';
import { abortReasonOf } from '../steps/abort.js';

/** What one fake step does. */
export interface FakeStep {
  /** @default 0 */
  exitCode?: number;
  /** Simulated run time on the engine's clock. @default 0 */
  durationMs?: number;
  /** Written to stdout when the step starts. */
  output?: string;
  /** Runs until aborted (ignores `durationMs`). */
  hang?: boolean;
  /** Simulated time the step takes to stop once aborted (a process using its kill-grace). @default 0 */
  stopMs?: number;
  /** Throws as an executor/infrastructure error instead of running. */
  infra?: string;
  /** Job outputs to set when this step succeeds. */
  outputs?: Record<string, string>;
}

/** Per attempt: the steps to simulate. */
export type FakeScript = (attempt: AttemptSpec) => FakeStep[];

/** Options of {@link FakeExecutor}. */
export interface FakeExecutorOptions {
  clock: Clock;
  /** @default 'fake' */
  name?: string;
  capacity?: number;
  /** What each attempt does. @default one successful step */
  script?: FakeScript;
  /** Worker ids to place attempts on; the first one not in `avoidWorkers` is used. @default ['worker-1'] */
  workers?: string[];
}

/** A record of one call to {@link FakeExecutor.runJob}. */
export interface FakeCall {
  runId: string;
  jobId: string;
  attempt: number;
  workerId: string;
  avoidWorkers: readonly string[];
  startedAt: number;
  finishedAt?: number;
  outcome?: AttemptOutcome;
  secrets: Record<string, string>;
}

/** A scriptable executor for scheduler tests: durations on a fake clock, scripted exit codes, hangs and infra errors. */
export class FakeExecutor implements Executor {
  readonly name: string;
  readonly capacity: number | undefined;
  readonly calls: FakeCall[] = [];
  /** Attempts running now, and the most ever at once. */
  running = 0;
  maxRunning = 0;
  private readonly clock: Clock;
  private readonly script: FakeScript;
  private readonly workers: string[];

  constructor(options: FakeExecutorOptions) {
    this.clock = options.clock;
    this.name = options.name ?? 'fake';
    this.capacity = options.capacity;
    this.script = options.script ?? (() => [{}]);
    this.workers = options.workers ?? ['worker-1'];
  }

  async runJob(attempt: AttemptSpec, ctx: ExecContext): Promise<AttemptOutcome> {
    const workerId = this.workers.find((w) => !ctx.avoidWorkers.includes(w)) ?? (this.workers[0] as string);
    const call: FakeCall = {
      runId: attempt.runId,
      jobId: attempt.jobId,
      attempt: attempt.attempt,
      workerId,
      avoidWorkers: [...ctx.avoidWorkers],
      startedAt: this.clock.now(),
      secrets: { ...ctx.secrets },
    };
    this.calls.push(call);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      const outcome = await this.simulate(attempt, ctx, workerId);
      call.outcome = outcome;
      return outcome;
    } finally {
      call.finishedAt = this.clock.now();
      this.running--;
    }
  }

  private async simulate(attempt: AttemptSpec, ctx: ExecContext, workerId: string): Promise<AttemptOutcome> {
    const steps = this.script(attempt);
    const results: StepResult[] = [];
    const outputs: Record<string, string> = {};
    for (const [index, step] of steps.entries()) {
      if (step.infra) throw new Error(step.infra);
      const name = `step ${index + 1}`;
      const startedAt = this.clock.now();
      ctx.events?.stepStarted?.(index, name, startedAt);
      if (step.output) await ctx.output('stdout', index, new TextEncoder().encode(step.output));
      const aborted = await this.wait(step, ctx.signal);
      const finishedAt = this.clock.now();
      if (aborted) {
        const why = abortReasonOf(ctx.signal);
        const timeout = why?.type === 'timeout';
        const r: StepResult = {
          index,
          name,
          status: timeout ? 'failed' : 'cancelled',
          outcome: timeout ? 'failure' : 'cancelled',
          conclusion: timeout ? 'failure' : 'cancelled',
          reason: timeout ? 'timeout' : 'cancelled',
          outputs: {},
          startedAt,
          finishedAt,
        };
        results.push(r);
        ctx.events?.stepFinished?.(r);
        return timeout
          ? { status: 'failed', reason: 'timeout', message: 'job timed out', workerId, steps: results, outputs }
          : { status: 'cancelled', reason: 'cancelled', workerId, steps: results, outputs };
      }
      const code = step.exitCode ?? 0;
      const r: StepResult = {
        index,
        name,
        status: code === 0 ? 'succeeded' : 'failed',
        outcome: code === 0 ? 'success' : 'failure',
        conclusion: code === 0 ? 'success' : 'failure',
        exitCode: code,
        outputs: step.outputs ?? {},
        startedAt,
        finishedAt,
      };
      if (code !== 0) r.reason = 'exit_code';
      results.push(r);
      ctx.events?.stepFinished?.(r);
      if (code !== 0) {
        return {
          status: 'failed',
          reason: 'exit_code',
          exitCode: code,
          message: `step ${index + 1} exited with ${code}`,
          workerId,
          steps: results,
          outputs,
        };
      }
      Object.assign(outputs, step.outputs ?? {});
    }
    return { status: 'succeeded', workerId, steps: results, outputs };
  }

  /** Resolves true when aborted before the step's duration elapsed. */
  private wait(step: FakeStep, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(true);
    if (!step.hang && !step.durationMs) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: unknown;
      const onAbort = () => {
        if (timer !== undefined) this.clock.clearTimeout(timer);
        if (step.stopMs) this.clock.setTimeout(() => resolve(true), step.stopMs);
        else resolve(true);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (!step.hang) {
        timer = this.clock.setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve(false);
        }, step.durationMs ?? 0);
      }
    });
  }
}
