import type {
  CreateRunResult,
  Expect,
  JobRecord,
  JobStatus,
  RunQuery,
  RunRecord,
  RunStatus,
  StateStore,
} from '@pipewright/core';
import { specJsonOf } from '@pipewright/core';
import {
  applyPatch,
  checkJobs,
  checkLimit,
  checkNewRun,
  checkRunPatch,
  checkTtl,
  conflict,
  duplicateRun,
  runNotFound,
  statusList,
  unknownJob,
} from '../errors.js';
import { defineLazySpec } from '../lazy-spec.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Clock used for lease expiry (epoch ms); inject a fake clock in tests.
   * @default Date.now
   */
  now?: () => number;
}

// Records are kept as JSON text: every read is a fresh copy, and the memory store
// accepts exactly what a JSON-backed store (Redis, S3) would return. A run's spec is
// kept apart from its other fields: it never changes after createRun and is by far
// the largest part (38 MB at 100,000 jobs), so updates re-encode only the small head,
// and a returned record decodes its spec only when the caller reads it.
interface StoredRun {
  /** JSON of the run without `spec`. */
  head: string;
  /** JSON of the spec (undefined only for a record that came in without one). */
  spec: string | undefined;
  status: RunStatus;
  createdAt: number;
  idempotencyKey: string | undefined;
  jobs: Map<string, StoredJob>;
}
interface StoredJob {
  json: string;
  status: JobStatus;
}
interface Lease {
  owner: string;
  expiresAt: number;
}

/** Splits a run into the JSON of its head (every field but `spec`) and of its spec. */
function encodeRun(run: RunRecord): { head: string; spec: string | undefined } {
  const { spec, ...head } = run;
  return { head: JSON.stringify(head), spec: spec === undefined ? undefined : specJsonOf(run) };
}

/** A fresh record from the stored JSON; its spec is decoded on first read ({@link defineLazySpec}). */
function decodeRun(stored: StoredRun): RunRecord {
  const rec = JSON.parse(stored.head) as Record<string, unknown>;
  if (stored.spec !== undefined) defineLazySpec(rec, stored.spec);
  return rec as unknown as RunRecord;
}

/** A {@link StateStore} in process memory: for tests, the CLI and single-process embedding. */
export class MemoryStore implements StateStore {
  readonly #now: () => number;
  readonly #runs = new Map<string, StoredRun>();
  readonly #idempotency = new Map<string, string>();
  readonly #leases = new Map<string, Lease>();

  constructor(options: MemoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  async createRun(run: RunRecord, jobs: JobRecord[]): Promise<CreateRunResult> {
    checkNewRun(run);
    const key = run.idempotencyKey;
    if (key !== undefined) {
      const existingId = this.#idempotency.get(key);
      const existing = existingId === undefined ? undefined : this.#runs.get(existingId);
      if (existing) return { run: decodeRun(existing), created: false };
    }
    if (this.#runs.has(run.id)) throw duplicateRun(run.id);
    checkJobs(run.id, jobs);
    const stored: StoredRun = {
      ...encodeRun(run),
      status: run.status,
      createdAt: run.createdAt,
      idempotencyKey: key,
      jobs: new Map(jobs.map((j) => [j.id, { json: JSON.stringify(j), status: j.status }])),
    };
    this.#runs.set(run.id, stored);
    if (key !== undefined) this.#idempotency.set(key, run.id);
    return { run: decodeRun(stored), created: true };
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const stored = this.#runs.get(runId);
    return stored ? decodeRun(stored) : undefined;
  }

  async listRuns(query: RunQuery = {}): Promise<RunRecord[]> {
    checkLimit(query.limit);
    const wanted = query.status ? new Set<RunStatus>(query.status) : undefined;
    const matches: [string, StoredRun][] = [];
    for (const entry of this.#runs) if (!wanted || wanted.has(entry[1].status)) matches.push(entry);
    matches.sort(([aId, a], [bId, b]) => b.createdAt - a.createdAt || (aId < bId ? 1 : aId > bId ? -1 : 0));
    const limited = query.limit === undefined ? matches : matches.slice(0, Math.max(0, query.limit));
    return limited.map(([, s]) => decodeRun(s));
  }

  async updateRun(
    runId: string,
    patch: Partial<Omit<RunRecord, 'id'>>,
    expect?: Expect<RunStatus>,
  ): Promise<RunRecord> {
    const stored = this.#runs.get(runId);
    if (!stored) throw runNotFound(runId);
    if (expect && !statusList(expect).includes(stored.status)) throw conflict(`Run "${runId}"`, expect, stored.status);
    checkRunPatch(runId, patch);
    const { spec, ...rest } = patch;
    const next = applyPatch(JSON.parse(stored.head) as Omit<RunRecord, 'spec'>, rest);
    stored.head = JSON.stringify(next);
    // A run without its pipeline is not a run: `spec: undefined` leaves the spec as it is.
    if (spec !== undefined) stored.spec = JSON.stringify(spec);
    stored.status = next.status;
    stored.createdAt = next.createdAt;
    return decodeRun(stored);
  }

  async getJobs(runId: string): Promise<JobRecord[]> {
    const stored = this.#runs.get(runId);
    if (!stored) throw runNotFound(runId);
    return [...stored.jobs.values()].map((j) => JSON.parse(j.json) as JobRecord);
  }

  async addJobs(runId: string, jobs: JobRecord[]): Promise<void> {
    const stored = this.#runs.get(runId);
    if (!stored) throw runNotFound(runId);
    checkJobs(runId, jobs, new Set(stored.jobs.keys()));
    for (const j of jobs) stored.jobs.set(j.id, { json: JSON.stringify(j), status: j.status });
  }

  /** A batch of one: the same checks and errors as {@link putJobs}. */
  putJob(job: JobRecord, expect?: Expect<JobStatus>): Promise<void> {
    return this.putJobs([job], expect);
  }

  async putJobs(jobs: readonly JobRecord[], expect?: Expect<JobStatus>): Promise<void> {
    const wanted = expect ? statusList(expect) : undefined;
    const targets: StoredJob[] = [];
    // Check every job before writing any: all or nothing.
    for (const job of jobs) {
      const stored = this.#runs.get(job.runId);
      if (!stored) throw runNotFound(job.runId);
      const current = stored.jobs.get(job.id);
      if (!current) throw unknownJob(job.runId, job.id);
      if (wanted && !wanted.includes(current.status)) {
        throw conflict(`Job "${job.id}" of run "${job.runId}"`, expect!, current.status);
      }
      targets.push(current);
    }
    jobs.forEach((job, i) => {
      const t = targets[i]!;
      t.json = JSON.stringify(job);
      t.status = job.status;
    });
  }

  async acquireLease(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs);
    if (!this.#runs.has(runId)) throw runNotFound(runId);
    const now = this.#now();
    const lease = this.#leases.get(runId);
    if (lease && lease.expiresAt > now && lease.owner !== owner) return false;
    this.#leases.set(runId, { owner, expiresAt: now + ttlMs });
    return true;
  }

  async renewLease(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs);
    const now = this.#now();
    const lease = this.#leases.get(runId);
    if (!lease || lease.owner !== owner || lease.expiresAt <= now) return false;
    lease.expiresAt = now + ttlMs;
    return true;
  }

  async releaseLease(runId: string, owner: string): Promise<void> {
    if (this.#leases.get(runId)?.owner === owner) this.#leases.delete(runId);
  }

  async close(): Promise<void> {}
}
