import type { AttemptRecord, JobRecord, RunRecord, StepRecord } from '../ports/state.js';

/** A step in a {@link RunReport}. */
export interface StepReport {
  id: string | null;
  name: string;
  status: string;
  outcome: string | null;
  conclusion: string | null;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** An attempt in a {@link RunReport}. */
export interface AttemptReport {
  number: number;
  workerId: string | null;
  executor: string;
  status: string;
  reason: string | null;
  message: string | null;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** A job instance in a {@link RunReport}. */
export interface JobReport {
  id: string;
  job: string;
  matrix: Record<string, unknown>;
  needs: string[];
  status: string;
  reason: string | null;
  message: string | null;
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  outputs: Record<string, string>;
  attempts: AttemptReport[];
  /** Steps of the last attempt. */
  steps: StepReport[];
}

/** The report of a run (DESIGN §8), with ISO-8601 timestamps. */
export interface RunReport {
  run: {
    id: string;
    pipeline: string;
    status: string;
    reason: string | null;
    message: string | null;
    cancel: {
      by: string;
      reason: string;
      at: string | null;
      /** When what was running at the cancel has been stopped at the latest (its kill-grace). */
      deadline: string | null;
      force: boolean;
      supersededBy?: string;
    } | null;
    createdAt: string | null;
    startedAt: string | null;
    finishedAt: string | null;
  };
  jobs: JobReport[];
}

// Timestamps of one run repeat a lot: a run of 10,000 jobs that takes 100 ms has about 100
// distinct milliseconds among its 50,000 timestamps. Each report converts each one once.
let isoCache = new Map<number, string>();
function iso(t: number | undefined): string | null {
  if (t === undefined) return null;
  let s = isoCache.get(t);
  if (s === undefined) {
    s = new Date(t).toISOString();
    isoCache.set(t, s);
  }
  return s;
}

function stepReport(s: StepRecord): StepReport {
  return {
    id: s.id ?? null,
    name: s.name,
    status: s.status,
    outcome: s.outcome ?? null,
    conclusion: s.conclusion ?? null,
    exitCode: s.exitCode ?? null,
    startedAt: iso(s.startedAt),
    finishedAt: iso(s.finishedAt),
  };
}

function attemptReport(a: AttemptRecord): AttemptReport {
  return {
    number: a.number,
    workerId: a.workerId || null,
    executor: a.executor,
    status: a.status,
    reason: a.reason ?? null,
    message: a.message ?? null,
    exitCode: a.exitCode ?? null,
    startedAt: iso(a.startedAt),
    finishedAt: iso(a.finishedAt),
  };
}

/**
 * Jobs in pipeline order (base jobs as written, instances in matrix order), so the
 * report does not depend on when a store or the scheduler learnt of a job
 * (instances of a dynamic matrix are added late).
 */
function inPipelineOrder(run: RunRecord, jobs: readonly JobRecord[]): readonly JobRecord[] {
  const keys = run.spec?.jobs ? Object.keys(run.spec.jobs) : [];
  const order = new Map<string, number>();
  for (let i = 0; i < keys.length; i++) order.set(keys[i] as string, i);
  const rank = (j: JobRecord) => order.get(j.job) ?? keys.length;
  let sorted = true;
  for (let i = 1; i < jobs.length && sorted; i++) sorted = rank(jobs[i - 1] as JobRecord) <= rank(jobs[i] as JobRecord);
  return sorted ? jobs : [...jobs].sort((a, b) => rank(a) - rank(b));
}

/** Builds the RunReport of a run from its records. */
export function buildReport(run: RunRecord, unordered: readonly JobRecord[]): RunReport {
  const jobs = inPipelineOrder(run, unordered);
  isoCache = new Map();
  try {
    return reportOf(run, jobs);
  } finally {
    isoCache = new Map();
  }
}

function reportOf(run: RunRecord, jobs: readonly JobRecord[]): RunReport {
  return {
    run: {
      id: run.id,
      pipeline: run.pipelineName,
      status: run.status,
      reason: run.reason ?? null,
      message: run.message ?? null,
      cancel: run.cancel
        ? {
            by: run.cancel.by,
            reason: run.cancel.reason,
            at: iso(run.cancel.at),
            deadline: iso(run.cancel.deadline),
            force: run.cancel.force,
            ...(run.cancel.supersededBy === undefined ? {} : { supersededBy: run.cancel.supersededBy }),
          }
        : null,
      createdAt: iso(run.createdAt),
      startedAt: iso(run.startedAt),
      finishedAt: iso(run.finishedAt),
    },
    jobs: jobs.map((j) => {
      const last = j.attempts[j.attempts.length - 1];
      return {
        id: j.id,
        job: j.job,
        matrix: j.matrix,
        needs: j.needs,
        status: j.status,
        reason: j.reason ?? null,
        message: j.message ?? null,
        createdAt: iso(j.createdAt),
        startedAt: iso(j.startedAt),
        finishedAt: iso(j.finishedAt),
        outputs: j.outputs,
        attempts: j.attempts.map(attemptReport),
        steps: last?.steps?.length ? last.steps.filter(Boolean).map(stepReport) : [],
      };
    }),
  };
}
