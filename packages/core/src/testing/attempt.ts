import type { AttemptSpec, ExecContext, OutputStream } from '../ports/executor.js';
import type { JobRecord, RunRecord } from '../ports/state.js';
import type { JobSpec, StepSpec } from '../spec/types.js';
import { DEFAULT_RETRY } from '../spec/types.js';

/** A normalized step from the fields a test cares about. */
export function stepSpec(index: number, step: Partial<StepSpec> = {}): StepSpec {
  return { index, with: {}, env: {}, continueOnError: false, ...step };
}

/** A normalized job (id `build`, 60 s timeout, 1 s kill grace) with the given steps. */
export function jobSpec(steps: Partial<StepSpec>[], job: Partial<JobSpec> = {}): JobSpec {
  return {
    id: 'build',
    needs: [],
    runsOn: ['local'],
    timeoutMs: 60_000,
    continueOnError: false,
    outputs: {},
    env: {},
    defaults: {},
    retry: DEFAULT_RETRY,
    killGraceMs: 1000,
    steps: steps.map((s, i) => stepSpec(i, s)),
    ...job,
  };
}

/** Attempt 1 of a job built by {@link jobSpec}, for calling `Executor.runJob` or `runSteps` directly. */
export function attemptSpec(
  steps: Partial<StepSpec>[],
  job: Partial<JobSpec> = {},
  attempt: Partial<AttemptSpec> = {},
): AttemptSpec {
  const spec = jobSpec(steps, job);
  return {
    runId: 'run-1',
    jobId: spec.id,
    jobKey: spec.id,
    attempt: 1,
    job: spec,
    matrix: {},
    env: {},
    defaults: {},
    contexts: {},
    ...attempt,
  };
}

/** An {@link ExecContext} that keeps each step's output; `text(step, stream)` reads it back as UTF-8. */
export function collectingContext(over: Partial<ExecContext> = {}): {
  ctx: ExecContext;
  text(step: number, stream?: OutputStream): string;
} {
  const chunks = new Map<string, Buffer[]>();
  const ctx: ExecContext = {
    signal: new AbortController().signal,
    output: (stream, step, chunk) => {
      const key = `${step}:${stream}`;
      const list = chunks.get(key) ?? [];
      list.push(Buffer.from(chunk));
      chunks.set(key, list);
    },
    secrets: {},
    avoidWorkers: [],
    actions: new Map(),
    ...over,
  };
  const text = (step: number, stream: OutputStream = 'stdout') =>
    Buffer.concat(chunks.get(`${step}:${stream}`) ?? []).toString('utf8');
  return { ctx, text };
}

/** A queued run record of `spec` (id `r1`, created at 1) with the given fields replaced. */
export function runRecord(spec: RunRecord['spec'], over: Partial<RunRecord> = {}): RunRecord {
  return {
    id: 'r1',
    pipelineName: 'p',
    specHash: 'h',
    spec,
    inputs: {},
    trigger: {},
    priority: 0,
    status: 'queued',
    secretNames: [],
    createdAt: 1,
    ...over,
  };
}

/** A pending job record `id` of run `runId` (created at 1) with the given fields replaced. */
export function jobRecord(runId: string, id: string, over: Partial<JobRecord> = {}): JobRecord {
  return {
    runId,
    id,
    job: id,
    matrix: {},
    needs: [],
    status: 'pending',
    outputs: {},
    attempts: [],
    createdAt: 1,
    ...over,
  };
}
