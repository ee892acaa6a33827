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
import {
  applyPatch,
  checkJobs,
  checkTtl,
  conflict,
  duplicateRun,
  runNotFound,
  statusList,
  unknownJob,
} from '../errors.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Clock used for lease expiry (epoch ms); inject a fake clock in tests.
   * @default Date.now
   */
  now?: () => number;
}

// Records are kept as JSON text: every read is a fresh copy, and the memory store
// accepts exactly what a JSON-backed store (Redis, S3) would return.
interface StoredRun {
  json: string;
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
    const key = run.idempotencyKey;
    if (key !== undefined) {
      const existingId = this.#idempotency.get(key);
      const existing = existingId === undefined ? undefined : this.#runs.get(existingId);
      if (existing) return { run: JSON.parse(existing.json) as RunRecord, created: false };
    }
    if (this.#runs.has(run.id)) throw duplicateRun(run.id);
    checkJobs(run.id, jobs);
    const json = JSON.stringify(run);
    const stored: StoredRun = {
      json,
      status: run.status,
      createdAt: run.createdAt,
      idempotencyKey: key,
      jobs: new Map(jobs.map((j) => [j.id, { json: JSON.stringify(j), status: j.status }])),
    };
    this.#runs.set(run.id, stored);
    if (key !== undefined) this.#idempotency.set(key, run.id);
    return { run: JSON.parse(json) as RunRecord, created: true };
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const stored = this.#runs.get(runId);
    return stored ? (JSON.parse(stored.json) as RunRecord) : undefined;
  }

  async listRuns(query: RunQuery = {}): Promise<RunRecord[]> {
    const wanted = query.status ? new Set<RunStatus>(query.status) : undefined;
    const matches: [string, StoredRun][] = [];
    for (const entry of this.#runs) if (!wanted || wanted.has(entry[1].status)) matches.push(entry);
    matches.sort(([aId, a], [bId, b]) => b.createdAt - a.createdAt || (aId < bId ? 1 : aId > bId ? -1 : 0));
    const limited = query.limit === undefined ? matches : matches.slice(0, Math.max(0, query.limit));
    return limited.map(([, s]) => JSON.parse(s.json) as RunRecord);
  }

  async updateRun(
    runId: string,
    patch: Partial<Omit<RunRecord, 'id'>>,
    expect?: Expect<RunStatus>,
  ): Promise<RunRecord> {
    const stored = this.#runs.get(runId);
    if (!stored) throw runNotFound(runId);
    if (expect && !statusList(expect).includes(stored.status)) throw conflict(`Run "${runId}"`, expect, stored.status);
    const next = applyPatch(JSON.parse(stored.json) as RunRecord, patch);
    stored.json = JSON.stringify(next);
    stored.status = next.status;
    stored.createdAt = next.createdAt;
    return JSON.parse(stored.json) as RunRecord;
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

  async putJob(job: JobRecord, expect?: Expect<JobStatus>): Promise<void> {
    const stored = this.#runs.get(job.runId);
    if (!stored) throw runNotFound(job.runId);
    const current = stored.jobs.get(job.id);
    if (!current) throw unknownJob(job.runId, job.id);
    if (expect && !statusList(expect).includes(current.status)) {
      throw conflict(`Job "${job.id}" of run "${job.runId}"`, expect, current.status);
    }
    current.json = JSON.stringify(job);
    current.status = job.status;
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
