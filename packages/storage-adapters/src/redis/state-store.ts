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
import { isTerminalRun, RUN_STATUSES, specJsonOf } from '@pipewright/core';
import type { Redis } from 'ioredis';
import {
  checkJobs,
  checkLimit,
  checkNewRun,
  checkRunPatch,
  checkTtl,
  conflict,
  duplicateRun,
  invalid,
  parseStored,
  REQUIRED_RUN_FIELDS,
  runNotFound,
  statusList,
  unknownJob,
} from '../errors.js';
import { defineLazySpec } from '../lazy-spec.js';
import { checkPositive, RedisConnection, type RedisConnectionOptions } from './connection.js';
import {
  ACQUIRE_LEASE,
  ADD_JOBS,
  CREATE_RUN,
  GET_JOBS,
  GET_RUNS,
  PUT_JOBS,
  RELEASE_LEASE,
  RENEW_LEASE,
  UPDATE_RUN,
} from './scripts.js';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions extends RedisConnectionOptions {
  /**
   * Keep a run this long after it finished (succeeded, failed, cancelled), then let Redis
   * expire it with its jobs, lease and idempotency key. Unset: keep forever.
   * @example 7 * 24 * 3600 * 1000
   */
  retentionMs?: number;
}

type Script = (...args: (string | number)[]) => Promise<unknown>;
const SCRIPTS = {
  pwCreateRun: CREATE_RUN,
  pwUpdateRun: UPDATE_RUN,
  pwGetRuns: GET_RUNS,
  pwGetJobs: GET_JOBS,
  pwAddJobs: ADD_JOBS,
  pwPutJobs: PUT_JOBS,
  pwAcquireLease: ACQUIRE_LEASE,
  pwRenewLease: RENEW_LEASE,
  pwReleaseLease: RELEASE_LEASE,
};
type Scripted = Redis & { [K in keyof typeof SCRIPTS]: Script };

/** Defines the adapter's Lua scripts on a client (EVALSHA with EVAL fallback, via ioredis). */
export function defineScripts(client: Redis, scripts: Record<string, string>): void {
  for (const [name, lua] of Object.entries(scripts)) {
    if (!(name in client)) client.defineCommand(name, { lua });
  }
}

/** A flat HGETALL reply (field, JSON, field, JSON, ...) back to run `runId`'s record; its spec is decoded on first read. */
function fromHash<T>(runId: string, flat: readonly string[], from = 0, spec?: string): T {
  const out: Record<string, unknown> = {};
  for (let i = from; i < flat.length; i += 2) {
    const f = flat[i]!;
    if (f === 'spec') spec = flat[i + 1]!;
    else out[f] = parseStored(runId, `stored field \`${f}\``, flat[i + 1]!);
  }
  if (spec !== undefined) defineLazySpec(out, spec);
  return out as T;
}

/** Spec JSON this client holds, by run id (see {@link RedisStore.updateRun}). */
interface CachedSpec {
  json: string;
  /** The stored `specHash` field, as JSON. */
  hash: string;
  /** UTF-8 length of `json`, what the script's HSTRLEN compares with. */
  bytes: number;
}
const SPEC_CACHE_ENTRIES = 1000;
const SPEC_CACHE_CHARS = 64 * 2 ** 20;

function jobArgs(jobs: readonly JobRecord[]): string[] {
  const args: string[] = [String(jobs.length)];
  for (const j of jobs) args.push(j.id, JSON.stringify(j));
  return args;
}

function expectArgs(expect: Expect<string> | undefined): string[] {
  const list = expect ? statusList(expect) : [];
  return [String(list.length), ...list];
}

/**
 * A {@link StateStore} on Redis. Runs are hashes of JSON fields, jobs a hash of JSON per
 * run plus a list for their order, indexes are sorted sets by `createdAt`; every write
 * is one Lua script, so idempotency and compare-and-set hold across engine instances.
 */
export class RedisStore implements StateStore {
  readonly #conn: RedisConnection;
  readonly #retentionMs: number;
  #statusKeyCache: string[] | undefined;
  /**
   * Specs of runs this client created or updated and that have not finished. A spec does not
   * change after createRun, and without it an updateRun reply would carry the whole pipeline
   * (38 MB at 100,000 jobs) back on every status change. The script still checks the stored
   * spec's length and specHash, so a spec patched elsewhere is sent again.
   */
  readonly #specs = new Map<string, CachedSpec>();
  #specChars = 0;

  constructor(options: RedisStoreOptions = {}) {
    checkPositive('retentionMs', options.retentionMs);
    this.#conn = new RedisConnection(options);
    this.#retentionMs = options.retentionMs ?? 0;
    defineScripts(this.#conn.client, SCRIPTS);
  }

  get #r(): Scripted {
    return this.#conn.client as Scripted;
  }

  #runKeys(runId: string) {
    // The id is encoded so that no id names another run's keys (`a:jobs` is not run `a`'s jobs);
    // engine ids (ULIDs) have neither `%` nor `:` and keep their plain keys.
    const id = /[%:]/.test(runId) ? runId.replace(/%/g, '%25').replace(/:/g, '%3A') : runId;
    const k = (s?: string) => this.#conn.key('run', s === undefined ? id : `${id}:${s}`);
    return { run: k(), jobs: k('jobs'), order: k('order'), lease: k('lease') };
  }

  #cacheSpec(runId: string, json: string | undefined, hash: string | undefined): void {
    this.#uncacheSpec(runId);
    if (json === undefined || hash === undefined || json.length > SPEC_CACHE_CHARS) return;
    // HSTRLEN in the script counts bytes, not UTF-16 units.
    this.#specs.set(runId, { json, hash, bytes: Buffer.byteLength(json) });
    this.#specChars += json.length;
    // Oldest first: Map iteration is insertion order.
    for (const [id] of this.#specs) {
      if (this.#specs.size <= SPEC_CACHE_ENTRIES && this.#specChars <= SPEC_CACHE_CHARS) break;
      this.#uncacheSpec(id);
    }
  }

  #uncacheSpec(runId: string): void {
    const old = this.#specs.get(runId);
    if (!old) return;
    this.#specs.delete(runId);
    this.#specChars -= old.json.length;
  }

  #statusKeys(): string[] {
    this.#statusKeyCache ??= RUN_STATUSES.map((s) => this.#conn.key('runs', s));
    return this.#statusKeyCache;
  }

  async createRun(run: RunRecord, jobs: JobRecord[]): Promise<CreateRunResult> {
    checkNewRun(run);
    checkJobs(run.id, jobs);
    const k = this.#runKeys(run.id);
    const idem = run.idempotencyKey;
    const fields: string[] = [];
    for (const [f, v] of Object.entries(run))
      if (v !== undefined) fields.push(f, f === 'spec' ? specJsonOf(run) : JSON.stringify(v));
    let stale = '';
    // At most twice: the second pass replaces a key whose run has expired meanwhile.
    for (let pass = 0; pass < 2; pass++) {
      const reply = (await this.#conn.call('createRun', () =>
        this.#r.pwCreateRun(
          11,
          idem === undefined ? this.#conn.key('idem') : this.#conn.key('idem', idem),
          k.run,
          k.jobs,
          k.order,
          this.#conn.key('runs'),
          ...this.#statusKeys(),
          idem === undefined ? '0' : '1',
          run.id,
          run.createdAt,
          run.status,
          stale,
          fields.length / 2,
          ...fields,
          ...jobArgs(jobs),
          this.#retentionMs,
        ),
      )) as [number, string?];
      if (reply[0] === 1) {
        const spec = fields.indexOf('spec');
        const hash = fields.indexOf('specHash');
        if (spec >= 0 && hash >= 0 && !isTerminalRun(run.status))
          this.#cacheSpec(run.id, fields[spec + 1], fields[hash + 1]);
        return { run: JSON.parse(JSON.stringify(run)) as RunRecord, created: true };
      }
      if (reply[0] === -1) throw duplicateRun(run.id);
      const existingId = reply[1]!;
      const existing = await this.getRun(existingId);
      if (existing) return { run: existing, created: false };
      stale = existingId;
    }
    throw invalid(`Idempotency key "${idem}" keeps pointing at expired runs; retry the submission.`);
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const flat = await this.#conn.call('getRun', () => this.#r.hgetall(this.#runKeys(runId).run).then(Object.entries));
    if (flat.length === 0) return undefined;
    const out: Record<string, unknown> = {};
    for (const [f, v] of flat) out[f] = parseStored(runId, `stored field \`${f}\``, v);
    return out as unknown as RunRecord;
  }

  async listRuns(query: RunQuery = {}): Promise<RunRecord[]> {
    const limit = query.limit;
    checkLimit(limit);
    if (limit === 0) return [];
    const indexes =
      query.status === undefined ? [this.#conn.key('runs')] : query.status.map((s) => this.#conn.key('runs', s));
    if (indexes.length === 0) return [];
    const page = limit === undefined ? 1000 : Math.max(limit, 10);
    const out: RunRecord[] = [];
    const gone: string[] = [];
    // Each index is read newest first in pages; runs that expired (retention) are skipped and unindexed.
    const cursors = indexes.map((key) => ({ key, offset: 0, buf: [] as [string, number][], done: false }));
    const refill = async () => {
      await this.#conn.call('listRuns', async () => {
        const pipe = this.#r.pipeline();
        const asked = cursors.filter((c) => c.buf.length === 0 && !c.done);
        for (const c of asked) pipe.zrevrange(c.key, c.offset, c.offset + page - 1, 'WITHSCORES');
        const res = (await pipe.exec()) ?? [];
        asked.forEach((c, i) => {
          const [err, flat] = res[i] as [Error | null, string[]];
          if (err) throw err;
          for (let j = 0; j < flat.length; j += 2) c.buf.push([flat[j]!, Number(flat[j + 1])]);
          c.offset += page;
          if (flat.length < page * 2) c.done = true;
        });
      });
    };
    const seen = new Set<string>();
    while (limit === undefined || out.length < limit) {
      if (cursors.some((c) => c.buf.length === 0 && !c.done)) await refill();
      const ids: string[] = [];
      const want = limit === undefined ? page : limit - out.length;
      while (ids.length < want) {
        let best: (typeof cursors)[number] | undefined;
        for (const c of cursors) {
          const head = c.buf[0];
          if (!head) continue;
          const b = best?.buf[0];
          if (!b || head[1] > b[1] || (head[1] === b[1] && head[0] > b[0])) best = c;
        }
        if (!best) break;
        const [id] = best.buf.shift()!;
        if (!seen.has(id)) {
          seen.add(id);
          ids.push(id);
        }
        if (best.buf.length === 0 && !best.done) break;
      }
      if (ids.length === 0) {
        if (cursors.every((c) => c.buf.length === 0 && c.done)) break;
        continue;
      }
      const hashes = (await this.#conn.call('listRuns', () =>
        this.#r.pwGetRuns(ids.length, ...ids.map((id) => this.#runKeys(id).run)),
      )) as string[][];
      hashes.forEach((flat, i) => {
        if (flat.length === 0) gone.push(ids[i]!);
        else if (limit === undefined || out.length < limit) {
          // A record something else wrote badly must not hide every other run: it is left out of
          // lists (getRun names the bad field).
          let rec: RunRecord | undefined;
          try {
            rec = fromHash<RunRecord>(ids[i]!, flat);
          } catch {
            rec = undefined;
          }
          if (rec) out.push(rec);
        }
      });
    }
    if (gone.length > 0) {
      const pipe = this.#r.pipeline();
      for (const key of [this.#conn.key('runs'), ...this.#statusKeys()]) pipe.zrem(key, ...gone);
      await pipe.exec().catch(() => undefined);
    }
    return out;
  }

  async updateRun(
    runId: string,
    patch: Partial<Omit<RunRecord, 'id'>>,
    expect?: Expect<RunStatus>,
  ): Promise<RunRecord> {
    const set: string[] = [];
    const del: string[] = [];
    for (const [f, v] of Object.entries(patch)) {
      if (f === 'id') continue;
      // A run cannot lack a required field: `undefined` removes optional ones only (as in MemoryStore).
      if (v === undefined) {
        if (!REQUIRED_RUN_FIELDS.has(f)) del.push(f);
      } else set.push(f, JSON.stringify(v));
    }
    checkRunPatch(runId, patch);
    const k = this.#runKeys(runId);
    // A patch that writes the spec invalidates what this client holds: the script must send the new one.
    if ('spec' in patch) this.#uncacheSpec(runId);
    const cached = this.#specs.get(runId);
    const known = cached ? [cached.bytes, cached.hash] : [];
    const reply = (await this.#conn.call('updateRun', () =>
      this.#r.pwUpdateRun(
        11,
        k.run,
        k.jobs,
        k.order,
        k.lease,
        this.#conn.key('runs'),
        ...this.#statusKeys(),
        runId,
        this.#retentionMs,
        ...expectArgs(expect),
        set.length / 2,
        ...set,
        del.length,
        ...del,
        ...known,
      ),
    )) as [number, ...string[]];
    if (reply[0] === -1) throw runNotFound(runId);
    if (reply[0] === -2) throw conflict(`Run "${runId}"`, expect!, reply[1]);
    const idem = reply[1];
    if (idem) {
      // The idempotency key's name is only known after the script read the run, so it expires in a second call.
      const key = this.#conn.key('idem', JSON.parse(idem) as string);
      await this.#conn.call('updateRun', () => this.#r.pexpire(key, this.#retentionMs));
    }
    const flat = reply as unknown as string[];
    const omitted = Number(flat[2]) === 1 && cached !== undefined;
    const rec = fromHash<RunRecord>(runId, flat, 3, omitted ? cached.json : undefined);
    if (isTerminalRun(rec.status)) this.#uncacheSpec(runId);
    else if (!omitted) {
      let spec: string | undefined;
      let hash: string | undefined;
      for (let i = 3; i < flat.length; i += 2) {
        if (flat[i] === 'spec') spec = flat[i + 1];
        else if (flat[i] === 'specHash') hash = flat[i + 1];
      }
      this.#cacheSpec(runId, spec, hash);
    }
    return rec;
  }

  async getJobs(runId: string): Promise<JobRecord[]> {
    const k = this.#runKeys(runId);
    const reply = (await this.#conn.call('getJobs', () => this.#r.pwGetJobs(3, k.run, k.jobs, k.order))) as [
      number,
      ...string[],
    ];
    if (reply[0] === -1) throw runNotFound(runId);
    const out: JobRecord[] = [];
    for (let i = 1; i < reply.length; i++)
      out.push(parseStored(runId, 'a stored job record', reply[i] as string) as JobRecord);
    return out;
  }

  async addJobs(runId: string, jobs: JobRecord[]): Promise<void> {
    checkJobs(runId, jobs);
    if (jobs.length === 0) {
      if (!(await this.getRun(runId))) throw runNotFound(runId);
      return;
    }
    const k = this.#runKeys(runId);
    const reply = (await this.#conn.call('addJobs', () =>
      this.#r.pwAddJobs(3, k.run, k.jobs, k.order, ...jobArgs(jobs)),
    )) as [number, string?];
    if (reply[0] === -1) throw runNotFound(runId);
    if (reply[0] === -3) checkJobs(runId, jobs, new Set([reply[1]!]));
  }

  /** A batch of one: the same script, checks and errors as {@link putJobs}. */
  putJob(job: JobRecord, expect?: Expect<JobStatus>): Promise<void> {
    return this.#putJobs('putJob', [job], expect);
  }

  /** One script call for the whole batch: one round trip however many jobs and runs. */
  putJobs(jobs: readonly JobRecord[], expect?: Expect<JobStatus>): Promise<void> {
    return this.#putJobs('putJobs', jobs, expect);
  }

  /** `op` names the call in a STORE_UNAVAILABLE error. */
  async #putJobs(op: string, jobs: readonly JobRecord[], expect?: Expect<JobStatus>): Promise<void> {
    if (jobs.length === 0) return;
    const keys: string[] = [];
    const pairOf = new Map<string, number>();
    const args: (string | number)[] = [];
    for (const job of jobs) {
      let pair = pairOf.get(job.runId);
      if (pair === undefined) {
        const k = this.#runKeys(job.runId);
        keys.push(k.run, k.jobs);
        pair = keys.length / 2;
        pairOf.set(job.runId, pair);
      }
      args.push(pair, job.id, JSON.stringify(job));
    }
    const reply = (await this.#conn.call(op, () =>
      this.#r.pwPutJobs(keys.length, ...keys, ...expectArgs(expect), jobs.length, ...args),
    )) as [number, number?, string?];
    if (reply[0] === 1) return;
    const job = jobs[(reply[1] ?? 1) - 1]!;
    if (reply[0] === -1) throw runNotFound(job.runId);
    if (reply[0] === -3) throw unknownJob(job.runId, job.id);
    throw conflict(`Job "${job.id}" of run "${job.runId}"`, expect!, reply[2]);
  }

  async acquireLease(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs);
    const k = this.#runKeys(runId);
    const reply = (await this.#conn.call('acquireLease', () =>
      this.#r.pwAcquireLease(2, k.run, k.lease, owner, Math.ceil(ttlMs)),
    )) as number;
    if (reply === -1) throw runNotFound(runId);
    return reply === 1;
  }

  async renewLease(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs);
    const k = this.#runKeys(runId);
    const reply = await this.#conn.call('renewLease', () => this.#r.pwRenewLease(1, k.lease, owner, Math.ceil(ttlMs)));
    return reply === 1;
  }

  async releaseLease(runId: string, owner: string): Promise<void> {
    const k = this.#runKeys(runId);
    await this.#conn.call('releaseLease', () => this.#r.pwReleaseLease(1, k.lease, owner));
  }

  async close(): Promise<void> {
    await this.#conn.close();
  }
}
