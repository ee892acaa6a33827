import type { Expect } from '@pipewright/core';
import { isRunStatus, PipewrightError, RUN_STATUSES } from '@pipewright/core';

/** The run does not exist in the store. */
export function runNotFound(runId: string): PipewrightError {
  return new PipewrightError('RUN_NOT_FOUND', `Run "${runId}" was not found in the store; check the run id.`, {
    details: { runId },
  });
}

/** A compare-and-set write found another status than it expected. */
export function conflict(what: string, expected: Expect<string>, actual: string | undefined): PipewrightError {
  const want = statusList(expected);
  return new PipewrightError(
    'STORE_CONFLICT',
    `${what} has status "${actual ?? 'none'}", expected ${want.map((s) => `"${s}"`).join(' or ')}; ` +
      're-read it and decide again.',
    { details: { expected: want, actual } },
  );
}

/** The statuses of an `expect` guard as a list. */
export function statusList(expected: Expect<string>): string[] {
  return typeof expected.status === 'string' ? [expected.status] : [...expected.status];
}

/** A caller passed something the store cannot accept. */
export function invalid(message: string, details: Record<string, unknown> = {}): PipewrightError {
  return new PipewrightError('INVALID_ARGUMENT', message, { details });
}

/** Jobs passed with a run must belong to it and have unique ids. */
export function checkJobs(runId: string, jobs: readonly { runId: string; id: string }[], existing?: Set<string>): void {
  const seen = new Set<string>();
  for (const job of jobs) {
    if (job.runId !== runId) {
      throw invalid(`Job "${job.id}" has runId "${job.runId}" but is being added to run "${runId}"; set job.runId.`, {
        runId,
        jobId: job.id,
      });
    }
    if (seen.has(job.id) || existing?.has(job.id)) {
      throw invalid(`Job id "${job.id}" already exists in run "${runId}"; job instance ids must be unique per run.`, {
        runId,
        jobId: job.id,
      });
    }
    seen.add(job.id);
  }
}

/** `putJob` was called for a job the run does not have. */
export function unknownJob(runId: string, jobId: string): PipewrightError {
  return invalid(`Job "${jobId}" is not part of run "${runId}"; add it with addJobs() before replacing it.`, {
    runId,
    jobId,
  });
}

/** A run id already exists without a matching idempotency key. */
export function duplicateRun(runId: string): PipewrightError {
  return new PipewrightError(
    'STORE_CONFLICT',
    `A run with id "${runId}" already exists; use a fresh id or pass an idempotencyKey to deduplicate submissions.`,
    { details: { runId } },
  );
}

/** Applies a run patch: keys whose value is `undefined` are removed. `id` cannot change. */
export function applyPatch<T extends { id: string }>(record: T, patch: Partial<Omit<T, 'id'>>): T {
  const out: Record<string, unknown> = { ...record };
  for (const [k, v] of Object.entries(patch)) {
    if (k === 'id') continue;
    if (v === undefined) {
      if (!REQUIRED_RUN_FIELDS.has(k)) delete out[k];
    } else out[k] = v;
  }
  return out as T;
}

/**
 * Fields a run record cannot be without: an `undefined` for one of them in an `updateRun`
 * patch leaves it as it is, in every store (only optional fields are removed that way).
 */
export const REQUIRED_RUN_FIELDS: ReadonlySet<string> = new Set([
  'id',
  'pipelineName',
  'specHash',
  'spec',
  'inputs',
  'trigger',
  'priority',
  'status',
  'secretNames',
  'createdAt',
]);

/** A run status a store can hold, or INVALID_ARGUMENT. */
export function checkRunStatus(status: unknown, what: string): void {
  if (!isRunStatus(status)) {
    throw invalid(`${what} has unknown status "${String(status)}"; use one of ${RUN_STATUSES.join(', ')}.`);
  }
}

/**
 * What every store needs of a new run before it writes anything: a non-empty string id and a
 * finite `createdAt` (the list order). Redis would otherwise fail half-way through its script.
 */
export function checkNewRun(run: { id: unknown; createdAt: unknown; status: unknown }): void {
  if (typeof run.id !== 'string' || run.id === '') {
    throw invalid(`A run id must be a non-empty string, got \`${String(run.id)}\`.`);
  }
  checkCreatedAt(run.createdAt, `Run "${run.id}"`);
  checkRunStatus(run.status, `Run "${run.id}"`);
}

/** The fields of a run patch a store checks before it writes: its status and `createdAt`, when given. */
export function checkRunPatch(runId: string, patch: { status?: unknown; createdAt?: unknown }): void {
  if (patch.status !== undefined) checkRunStatus(patch.status, `Run "${runId}"`);
  if (patch.createdAt !== undefined) checkCreatedAt(patch.createdAt, `Run "${runId}"`);
}

/** `createdAt` of a run (new or patched): epoch milliseconds. */
export function checkCreatedAt(createdAt: unknown, what: string): void {
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt)) {
    throw invalid(`${what} has createdAt \`${String(createdAt)}\`; it must be a finite number (epoch ms).`);
  }
}

/** `listRuns`' `limit`: absent or a non-negative integer (as a log read's, {@link checkCount}). */
export function checkLimit(limit: unknown): void {
  checkCount('limit', limit);
}

/** A count or position a caller passes (`limit`, a log read's `after`): absent or a non-negative safe integer. */
export function checkCount(name: string, value: unknown): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)) {
    throw invalid(`Expected \`${name}\` to be a non-negative integer, got \`${String(value)}\` (${typeof value}).`);
  }
}

/** Throws when a TTL is not a positive finite number of ms. */
export function checkTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw invalid(`Expected \`ttlMs\` to be a positive finite number of milliseconds, got \`${ttlMs}\`.`);
  }
}

/** JSON a store reads back; text that is not JSON (written by something else) is STORE_CORRUPT, naming `what` of `runId`. */
export function parseStored(runId: string, what: string, json: string): unknown {
  try {
    return JSON.parse(json);
  } catch (err) {
    throw new PipewrightError('STORE_CORRUPT', `run ${runId}: ${what} is not JSON (${(err as Error).message})`, {
      cause: err,
      details: { runId },
    });
  }
}

/**
 * A log follower of a store that was closed (before or while it waited): the log is not known
 * to be complete, so the follower fails rather than end as if it were.
 */
export function followerClosed(store: string, runId: string): PipewrightError {
  return new PipewrightError(
    'STORE_UNAVAILABLE',
    `The ${store} was closed while following the log of run ${runId}; the log may go on: follow it again (with \`after\`) on an open store.`,
    { details: { runId } },
  );
}
