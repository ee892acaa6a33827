import { PipewrightError } from '@pipewright/core';
import { Redis, type RedisOptions } from 'ioredis';
import { invalid } from '../errors.js';

/** How a Redis adapter reaches Redis: shared by {@link RedisStore} and {@link RedisLogStore}. */
export interface RedisConnectionOptions {
  /**
   * `redis://` or `rediss://` URL.
   * @default 'redis://127.0.0.1:6379'
   * @example 'redis://:password@redis.internal:6379/0'
   */
  url?: string;
  /** Extra ioredis options (TLS, sentinels, username/password). `retryStrategy` and `maxRetriesPerRequest` are the adapter's. */
  redisOptions?: RedisOptions;
  /** Use this client instead of opening one; the adapter does not close it. */
  client?: Redis;
  /**
   * Key prefix; keys are `{<prefix>}:...` so all of a store's keys share one Cluster hash slot.
   * @default 'pw'
   */
  prefix?: string;
  /**
   * How long a call waits for an unreachable Redis before it fails with `STORE_UNAVAILABLE`.
   * @default 10000
   */
  unavailableAfterMs?: number;
}

/** Checks that an option is a positive finite number (or absent). */
export function checkPositive(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
    throw invalid(`Expected \`${name}\` to be a positive finite number, got \`${String(value)}\` (${typeof value}).`);
  }
}

/** How many times `unavailableAfterMs` a call may wait on an open connection that does not answer. */
const STALLED_FACTOR = 3;

/** True for errors that mean "the connection is gone", as opposed to a command error. */
function isConnectionError(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : '';
  return /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH/.test(
    msg,
  );
}

/**
 * One ioredis client plus the "wait, then fail with STORE_UNAVAILABLE" policy: ioredis
 * reconnects with backoff and queues commands; a call gives up once Redis has been
 * unreachable for `unavailableAfterMs`.
 */
export class RedisConnection {
  readonly client: Redis;
  readonly tag: string;
  readonly address: string;
  readonly #owned: boolean;
  readonly #unavailableAfterMs: number;
  #lastError: Error | undefined;
  #closed = false;
  /** Settles when close() is called: a call waiting for the connection fails then, not later. */
  readonly #closing: Promise<never>;
  #markClosed!: (err: PipewrightError) => void;
  #ready: Promise<void> | undefined;
  /** The check that the connection's database exists, once it passed (see {@link #checkDb}). */
  #dbChecked: Promise<void> | undefined;

  constructor(options: RedisConnectionOptions) {
    checkPositive('unavailableAfterMs', options.unavailableAfterMs);
    const prefix = options.prefix ?? 'pw';
    if (prefix === '' || /[{}]/.test(prefix)) {
      throw invalid(`Expected \`prefix\` to be a non-empty string without braces, got \`${prefix}\`.`);
    }
    this.tag = `{${prefix}}`;
    this.#closing = new Promise<never>((_, reject) => {
      this.#markClosed = reject;
    });
    this.#closing.catch(() => undefined);
    this.#unavailableAfterMs = options.unavailableAfterMs ?? 10_000;
    const tuned: RedisOptions = {
      ...options.redisOptions,
      // Commands wait for a reconnect instead of failing after N retries; the bounded
      // wait in call() decides when to give up.
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 1000),
    };
    if (options.client) {
      this.client = options.client;
      this.#owned = false;
    } else {
      this.client = options.url ? new Redis(options.url, tuned) : new Redis(tuned);
      this.#owned = true;
    }
    this.client.on('error', (err: Error) => {
      this.#lastError = err;
    });
    const o = this.client.options;
    this.address = o.path ? o.path : `${o.host ?? '127.0.0.1'}:${o.port ?? 6379}`;
  }

  /** A key of this store: `{prefix}:a:b`. */
  key(...parts: string[]): string {
    return `${this.tag}:${parts.join(':')}`;
  }

  /** How long a call waits for an unreachable Redis before it fails. */
  get unavailableAfterMs(): number {
    return this.#unavailableAfterMs;
  }

  /** The STORE_UNAVAILABLE error of `op`, for waits this class does not run itself (blocking reads). */
  unavailable(op: string, cause?: unknown): PipewrightError {
    return this.#unavailable(op, cause);
  }

  #unavailable(op: string, cause?: unknown): PipewrightError {
    const why = cause ?? this.#lastError;
    const reason = why instanceof Error ? `: ${why.message}` : '';
    return new PipewrightError(
      'STORE_UNAVAILABLE',
      `Redis at ${this.address} is unreachable (${op} waited ${this.#unavailableAfterMs} ms${reason}); ` +
        'check that Redis is running and reachable, the call can be retried.',
      { cause: why, details: { address: this.address, op } },
    );
  }

  async #waitReady(deadline: number, op: string): Promise<void> {
    if (this.#closed || this.client.status === 'end') {
      throw new PipewrightError('STORE_UNAVAILABLE', `The Redis store for ${this.address} was closed (${op}).`, {
        details: { address: this.address, op },
      });
    }
    if (this.client.status === 'ready') return;
    // One shared 'ready' listener however many calls wait (at start-up thousands may).
    this.#ready ??= new Promise<void>((resolve) => {
      this.client.once('ready', () => {
        this.#ready = undefined;
        resolve();
      });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#ready,
        this.#closing,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(this.#unavailable(op)), Math.max(0, deadline - Date.now()));
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A database number the server does not have (`redis://host/99` on a server with 16): ioredis
   * reports the failed SELECT only as an error event and goes on in database 0, which may hold
   * someone else's data. The first call checks it and fails with `INVALID_ARGUMENT`.
   */
  #checkDb(): Promise<void> {
    const db = this.client.options.db ?? 0;
    // A client the caller gave us is theirs to point at a database.
    if (db === 0 || !this.#owned) return Promise.resolve();
    this.#dbChecked ??= this.client.select(db).then(
      () => undefined,
      (err: unknown) => {
        this.#dbChecked = undefined;
        if (isConnectionError(err)) throw err;
        throw invalid(
          `Redis at ${this.address} has no database ${db} (${err instanceof Error ? err.message : String(err)}); use a database number the server has (0-15 by default)`,
          { address: this.address, db },
        );
      },
    );
    return this.#dbChecked;
  }

  /** Runs one store operation under the unavailability policy. */
  async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const deadline = started + this.#unavailableAfterMs;
    await this.#waitReady(deadline, op);
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A command in flight when the connection drops is resent on reconnect; bound that wait too.
    // On a connection that stays open, a long answer may be a big script at work, so it gets
    // longer; but a server that answers nothing at all (frozen, SIGSTOPped) must not hang the
    // caller for ever: past STALLED_FACTOR x unavailableAfterMs the call fails as well.
    const stalledAt = started + STALLED_FACTOR * this.#unavailableAfterMs;
    const bound = new Promise<never>((_, reject) => {
      const check = () => {
        const left = stalledAt - Date.now();
        if (this.client.status === 'ready' && left > 0)
          timer = setTimeout(check, Math.min(this.#unavailableAfterMs, left));
        else reject(this.#unavailable(op));
      };
      timer = setTimeout(check, Math.max(0, deadline - Date.now()));
    });
    try {
      // The database check inside the bound: a server that stops answering fails it too.
      return await Promise.race([this.#checkDb().then(fn), bound]);
    } catch (err) {
      if (isConnectionError(err)) throw this.#unavailable(op, err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A second connection with the same settings (for blocking reads); the caller closes it. */
  duplicate(): Redis {
    const dup = this.client.duplicate();
    dup.on('error', () => {});
    return dup;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#markClosed(
      new PipewrightError('STORE_UNAVAILABLE', `The Redis store for ${this.address} was closed.`, {
        details: { address: this.address },
      }),
    );
    if (!this.#owned) return;
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
        return;
      } catch {
        // Fall through: a dead connection cannot QUIT.
      }
    }
    this.client.disconnect();
  }
}
