import type { LogBatch, LogFollowOptions, LogLine, LogReadOptions, LogStore, LogStream } from '@pipewright/core';
import { logLineWanted } from '@pipewright/core';
import type { Redis } from 'ioredis';
import { followerClosed } from '../errors.js';
import { checkBatch, checkReadOptions } from '../log-util.js';
import { checkPositive, RedisConnection, type RedisConnectionOptions } from './connection.js';
import { LOG_APPEND, LOG_END } from './scripts.js';
import { defineScripts } from './state-store.js';

/** Options of {@link RedisLogStore}. */
export interface RedisLogStoreOptions extends RedisConnectionOptions {
  /** Expire a run's log this long after {@link LogStore.end}. Unset: keep forever. */
  retentionMs?: number;
  /**
   * Entries fetched per XRANGE/XREAD round trip.
   * @default 1000
   */
  pageSize?: number;
  /**
   * How long one blocking XREAD of a follower waits before it asks again.
   * @default 5000
   */
  blockMs?: number;
}

type Scripted = Redis & {
  pwLogAppend(...args: (string | number)[]): Promise<number>;
  pwLogEnd(...args: (string | number)[]): Promise<number>;
};

type Entry = [id: string, fields: string[]];

// One stream entry per line, id `<seq>-0`, one field `l` holding [ts, jobId, attempt, step, stream, text]
// (the run id is the key). The end marker is the entry `<lastSeq>-1` with field `e`.
function encode(l: LogLine): string {
  return JSON.stringify([l.ts, l.jobId, l.attempt, l.step, l.stream, l.text]);
}

function decode(runId: string, entry: Entry): LogLine | undefined {
  const [id, fields] = entry;
  if (fields[0] !== 'l') return undefined;
  const [ts, jobId, attempt, step, stream, text] = JSON.parse(fields[1]!) as [
    number,
    string,
    number,
    number,
    LogStream,
    string,
  ];
  return { seq: Number.parseInt(id, 10), ts, runId, jobId, attempt, step, stream, text };
}

/**
 * A {@link LogStore} on Redis streams: one stream per run, one entry per line with the
 * line's seq as the entry id, so reads by range are XRANGE and followers XREAD BLOCK.
 */
export class RedisLogStore implements LogStore {
  readonly #conn: RedisConnection;
  readonly #retentionMs: number;
  readonly #pageSize: number;
  readonly #blockMs: number;
  #closed = false;
  readonly #followers = new Set<Redis>();

  constructor(options: RedisLogStoreOptions = {}) {
    checkPositive('retentionMs', options.retentionMs);
    checkPositive('pageSize', options.pageSize);
    checkPositive('blockMs', options.blockMs);
    this.#conn = new RedisConnection(options);
    this.#retentionMs = options.retentionMs ?? 0;
    this.#pageSize = options.pageSize ?? 1000;
    this.#blockMs = options.blockMs ?? 5000;
    defineScripts(this.#conn.client, { pwLogAppend: LOG_APPEND, pwLogEnd: LOG_END });
  }

  #key(runId: string): string {
    return this.#conn.key('log', runId);
  }

  get #r(): Scripted {
    return this.#conn.client as Scripted;
  }

  async append(runId: string, batch: LogBatch): Promise<void> {
    checkBatch(runId, batch);
    if (batch.lines.length === 0) return;
    const args: (string | number)[] = [1, this.#key(runId), batch.lines.length];
    for (const l of batch.lines) args.push(l.seq, encode(l));
    // One script call per batch: one round trip, and a resent batch adds nothing twice.
    await this.#conn.call('log append', () => this.#r.pwLogAppend(...args));
  }

  async lastSeq(runId: string): Promise<number> {
    // Entry ids are `<seq>-0` for lines and `<lastSeq>-1` for the end marker: the newest id says it.
    const entries = (await this.#conn.call('log last seq', () =>
      this.#r.xrevrange(this.#key(runId), '+', '-', 'COUNT', 1),
    )) as Entry[];
    const id = entries[0]?.[0];
    return id === undefined ? 0 : Number.parseInt(id, 10);
  }

  async read(runId: string, options: LogReadOptions = {}): Promise<LogLine[]> {
    checkReadOptions(options);
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const out: LogLine[] = [];
    let start = `${(options.after ?? 0) + 1}-0`;
    const key = this.#key(runId);
    while (out.length < limit) {
      const entries = (await this.#conn.call('log read', () =>
        this.#r.xrange(key, start, '+', 'COUNT', this.#pageSize),
      )) as Entry[];
      for (const e of entries) {
        const line = decode(runId, e);
        if (!line) continue;
        if (!logLineWanted(line, options)) continue;
        out.push(line);
        if (out.length >= limit) break;
      }
      if (entries.length < this.#pageSize) break;
      start = `(${entries.at(-1)![0]}`;
    }
    return out;
  }

  async *follow(runId: string, options: LogFollowOptions = {}): AsyncGenerator<LogBatch> {
    checkReadOptions(options);
    const { signal } = options;
    if (signal?.aborted) return;
    if (this.#closed) throw followerClosed('Redis log store', runId);
    const key = this.#key(runId);
    const after = options.after ?? 0;
    // A blocking XREAD holds its connection, so each follower gets its own.
    const conn = this.#conn.duplicate();
    this.#followers.add(conn);
    // An XREAD queued while Redis is unreachable does not settle when its connection is closed:
    // the abort must end the follower on its own. Listened for before anything is awaited.
    let abortNow: (() => void) | undefined;
    const aborted = new Promise<null>((resolve) => {
      abortNow = () => resolve(null);
    });
    const onAbort = () => {
      abortNow?.();
      conn.disconnect();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // The blocking connection is not checked by call(): a database the server does not have
      // must fail here, before it reads database 0 instead (see RedisConnection). Registered as a
      // follower first, so a close() meanwhile ends it.
      await Promise.race([this.#conn.call('follow', async () => undefined), aborted]);
      if (signal?.aborted) return;
      if (this.#closed) throw followerClosed('Redis log store', runId);
      // Reading from past the stored end would miss the end marker (`<lastSeq>-1` sorts before
      // `<after>-0`): start at the last stored seq instead and skip what is not after `after`.
      const known = after > 0 ? await Promise.race([this.lastSeq(runId), aborted.then(() => after)]) : 0;
      if (signal?.aborted) return;
      let last = `${Math.min(after, known)}-0`;
      for (;;) {
        let reply: [string, Entry[]][] | null;
        try {
          const read = conn.xread('COUNT', this.#pageSize, 'BLOCK', this.#blockMs, 'STREAMS', key, last) as Promise<
            [string, Entry[]][] | null
          >;
          read.catch(() => undefined); // settles (if ever) after an abort: nobody waits for it then
          // A read queued while Redis is down waits for the reconnect; past the block time plus
          // the store's patience the follower fails like any call, instead of waiting for ever.
          let stall: NodeJS.Timeout | undefined;
          const stalled = new Promise<never>((_, reject) => {
            stall = setTimeout(
              () => reject(this.#conn.unavailable('log follow')),
              this.#blockMs + this.#conn.unavailableAfterMs,
            );
          });
          try {
            reply = await Promise.race([read, aborted, stalled]);
          } finally {
            clearTimeout(stall);
          }
        } catch (err) {
          if (signal?.aborted) return;
          if (this.#closed) throw followerClosed('Redis log store', runId);
          if (conn.status === 'end') return;
          throw err;
        }
        if (signal?.aborted) return;
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) continue;
        last = entries.at(-1)![0];
        const lines: LogLine[] = [];
        let ended = false;
        for (const e of entries) {
          const line = decode(runId, e);
          if (!line) ended = true;
          else if (line.seq > after) lines.push(line);
        }
        if (lines.length > 0) yield { runId, lines };
        if (ended || signal?.aborted) return;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#followers.delete(conn);
      conn.disconnect();
    }
  }

  async end(runId: string): Promise<void> {
    await this.#conn.call('log end', () => this.#r.pwLogEnd(1, this.#key(runId), this.#retentionMs));
  }

  /** Ends every follower (with `STORE_UNAVAILABLE`: their logs may go on) and the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const f of this.#followers) f.disconnect();
    this.#followers.clear();
    await this.#conn.close();
  }
}
