import { PipewrightError } from '../errors.js';
import type { LogBatch, LogFollowOptions, LogLine, LogReadOptions, LogStore } from '../ports/logs.js';
import type {
  CreateRunResult,
  Expect,
  JobRecord,
  JobStatus,
  RunQuery,
  RunRecord,
  RunStatus,
  StateStore,
} from '../ports/state.js';
import { backoffDelay } from './retry.js';

/** How the engine retries store calls that fail because the store is unreachable. */
export interface StoreRetryOptions {
  /**
   * Give up and fail with `STORE_UNAVAILABLE` once a call has been retried this long.
   * @default 30000
   */
  maxMs?: number;
  /** First delay between tries; doubled per try. @default 100 */
  baseDelayMs?: number;
  /** Longest delay between tries. @default 2000 */
  maxDelayMs?: number;
  /** Called before each retry (for logging); never with a secret value. */
  onRetry?: (err: unknown, op: string, attempt: number, delayMs: number) => void;
}

/** {@link StoreRetryOptions} with defaults filled in. */
export interface ResolvedStoreRetryOptions {
  maxMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  onRetry: ((err: unknown, op: string, attempt: number, delayMs: number) => void) | undefined;
}

/** Fills in the defaults of {@link StoreRetryOptions} and checks the numbers. */
export function resolveStoreRetryOptions(options: StoreRetryOptions = {}): ResolvedStoreRetryOptions {
  const out = {
    maxMs: options.maxMs ?? 30_000,
    baseDelayMs: options.baseDelayMs ?? 100,
    maxDelayMs: options.maxDelayMs ?? 2000,
    onRetry: options.onRetry,
  };
  for (const k of ['maxMs', 'baseDelayMs', 'maxDelayMs'] as const) {
    const v = out[k];
    if (!(Number.isFinite(v) && v > 0)) {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `Expected \`storeRetry.${k}\` to be a positive finite number, got \`${String(v)}\` (${typeof v}).`,
      );
    }
  }
  return out;
}

const CONNECTION_ERROR =
  /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|socket hang up/;

/**
 * True for failures worth retrying: the store is unreachable (`STORE_UNAVAILABLE`)
 * or the connection broke. Conflicts, bad arguments and missing runs are answers,
 * not outages, and are never retried.
 */
export function isTransientStoreError(err: unknown): boolean {
  if (err instanceof PipewrightError) return err.code === 'STORE_UNAVAILABLE';
  return err instanceof Error && CONNECTION_ERROR.test(err.message);
}

/** Delay before retry number `attempt` (1-based): the retry policy's backoff, doubling, capped, equal jitter. */
export function storeRetryDelay(
  attempt: number,
  options: Pick<ResolvedStoreRetryOptions, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  const backoff = { delayMs: options.baseDelayMs, factor: 2, maxDelayMs: options.maxDelayMs, jitter: 'equal' } as const;
  return backoffDelay(backoff, attempt, random);
}

/**
 * Runs `fn`, retrying transient store failures with backoff until `maxMs` has passed;
 * then fails with `STORE_UNAVAILABLE` naming the operation and the last cause.
 */
export function retryStoreCall<T>(
  op: string,
  fn: (attempt: number) => Promise<T>,
  options: ResolvedStoreRetryOptions,
): Promise<T> {
  // The common case, a store that answers, costs one promise reaction and no async frame: the
  // engine makes a few store calls per job, and their frames were a tenth of its garbage.
  const started = Date.now();
  let first: Promise<T>;
  try {
    first = Promise.resolve(fn(1));
  } catch (err) {
    first = Promise.reject(err);
  }
  return first.then(undefined, (err: unknown) => retryAfter(op, fn, options, err, started));
}

/** The retries of {@link retryStoreCall} once the first try failed with `err`. */
async function retryAfter<T>(
  op: string,
  fn: (attempt: number) => Promise<T>,
  options: ResolvedStoreRetryOptions,
  err: unknown,
  started: number,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (!isTransientStoreError(err)) throw err;
    const delay = storeRetryDelay(attempt, options);
    const elapsed = Date.now() - started;
    if (elapsed + delay > options.maxMs) {
      const why = err instanceof Error ? err.message : String(err);
      throw new PipewrightError(
        'STORE_UNAVAILABLE',
        `The store did not answer ${op} for ${Math.round(elapsed / 1000)} s (${attempt} tries; last error: ${why}); check that it is running and reachable.`,
        { cause: err, details: { op, attempts: attempt, elapsedMs: elapsed } },
      );
    }
    options.onRetry?.(err, op, attempt, delay);
    await new Promise((r) => setTimeout(r, delay));
    try {
      return await fn(attempt + 1);
    } catch (next) {
      err = next;
    }
  }
}

/**
 * A {@link StateStore} whose calls ride out store outages (see {@link retryStoreCall}).
 * Retried writes are safe because the engine writes whole records without `expect`,
 * and a `createRun` whose first try landed before the connection dropped is
 * recognised by its run id (ids are fresh ULIDs, so a match is this very run).
 */
export class RetryingStateStore implements StateStore {
  /** The wrapped store. */
  readonly inner: StateStore;
  readonly #o: ResolvedStoreRetryOptions;

  constructor(inner: StateStore, options: StoreRetryOptions = {}) {
    this.inner = inner;
    this.#o = resolveStoreRetryOptions(options);
  }

  #call<T>(op: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    return retryStoreCall(op, fn, this.#o);
  }

  createRun(run: RunRecord, jobs: JobRecord[]): Promise<CreateRunResult> {
    return this.#call('createRun', async (attempt) => {
      try {
        const res = await this.inner.createRun(run, jobs);
        // A replayed command (ours landed, the reply was lost) reports our own run as seen before.
        if (!res.created && attempt > 1 && res.run.id === run.id) return { run: res.run, created: true };
        return res;
      } catch (err) {
        if (attempt > 1 && err instanceof PipewrightError && err.code === 'STORE_CONFLICT') {
          const stored = await this.inner.getRun(run.id);
          if (stored && stored.specHash === run.specHash && stored.createdAt === run.createdAt) {
            return { run: stored, created: true };
          }
        }
        throw err;
      }
    });
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    return this.#call('getRun', () => this.inner.getRun(runId));
  }

  listRuns(query?: RunQuery): Promise<RunRecord[]> {
    return this.#call('listRuns', () => this.inner.listRuns(query));
  }

  updateRun(runId: string, patch: Partial<Omit<RunRecord, 'id'>>, expect?: Expect<RunStatus>): Promise<RunRecord> {
    return this.#call('updateRun', () => this.inner.updateRun(runId, patch, expect));
  }

  getJobs(runId: string): Promise<JobRecord[]> {
    return this.#call('getJobs', () => this.inner.getJobs(runId));
  }

  addJobs(runId: string, jobs: JobRecord[]): Promise<void> {
    return this.#call('addJobs', async (attempt) => {
      try {
        await this.inner.addJobs(runId, jobs);
      } catch (err) {
        // A replayed addJobs finds its own jobs already there: that is success.
        if (attempt > 1 && err instanceof PipewrightError && err.code === 'INVALID_ARGUMENT') {
          const have = new Set((await this.inner.getJobs(runId)).map((j) => j.id));
          if (jobs.every((j) => have.has(j.id))) return;
        }
        throw err;
      }
    });
  }

  putJob(job: JobRecord, expect?: Expect<JobStatus>): Promise<void> {
    return this.#call('putJob', () => this.inner.putJob(job, expect));
  }

  /** One batched call when the wrapped store has `putJobs`; else `putJob` per job, concurrently. */
  putJobs(jobs: readonly JobRecord[], expect?: Expect<JobStatus>): Promise<void> {
    if (jobs.length === 0) return Promise.resolve();
    const inner = this.inner;
    if (inner.putJobs)
      return this.#call('putJobs', () =>
        (inner.putJobs as NonNullable<StateStore['putJobs']>).call(inner, jobs, expect),
      );
    return Promise.all(jobs.map((j) => this.putJob(j, expect))).then(() => undefined);
  }

  acquireLease(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.#call('acquireLease', () => this.inner.acquireLease(runId, owner, ttlMs));
  }

  renewLease(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.#call('renewLease', () => this.inner.renewLease(runId, owner, ttlMs));
  }

  releaseLease(runId: string, owner: string): Promise<void> {
    return this.#call('releaseLease', () => this.inner.releaseLease(runId, owner));
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}

/**
 * A {@link LogStore} whose writes (`append`, `end`) ride out store outages. Appends
 * must be idempotent by `seq` in the wrapped store (the conformance suite's stores
 * skip lines at or below the last stored `seq`), so a replayed batch adds nothing twice.
 */
export class RetryingLogStore implements LogStore {
  /** The wrapped store. */
  readonly inner: LogStore;
  readonly #o: ResolvedStoreRetryOptions;

  constructor(inner: LogStore, options: StoreRetryOptions = {}) {
    this.inner = inner;
    this.#o = resolveStoreRetryOptions(options);
  }

  append(runId: string, batch: LogBatch): Promise<void> {
    return retryStoreCall('append', () => this.inner.append(runId, batch), this.#o);
  }

  read(runId: string, options?: LogReadOptions): Promise<LogLine[]> {
    return retryStoreCall('read', () => this.inner.read(runId, options), this.#o);
  }

  follow(runId: string, options?: LogFollowOptions): AsyncIterable<LogBatch> {
    return this.inner.follow(runId, options);
  }

  end(runId: string): Promise<void> {
    return retryStoreCall('end', () => this.inner.end(runId), this.#o);
  }

  /** The inner store's `lastSeq`, or, for a store without one, the last line of the whole log read once. */
  lastSeq(runId: string): Promise<number> {
    const inner = this.inner;
    return retryStoreCall(
      'lastSeq',
      async () => (inner.lastSeq ? inner.lastSeq(runId) : ((await inner.read(runId)).at(-1)?.seq ?? 0)),
      this.#o,
    );
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
