import { GetObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { LogBatch, LogFollowOptions, LogLine, LogReadOptions, LogStore, LogStream } from '@pipewright/core';
import { logLineWanted, PipewrightError } from '@pipewright/core';
import { followerClosed, invalid } from '../errors.js';
import { checkBatch, checkReadOptions, indexAfter } from '../log-util.js';
import { checkPositive } from '../redis/connection.js';

/** Options of {@link S3LogStore}. */
export interface S3LogStoreOptions {
  /** Bucket holding the logs; it must exist. */
  bucket: string;
  /**
   * Key prefix; a run's objects live under `<prefix><runId>/`.
   * @default 'pipewright/logs/'
   */
  prefix?: string;
  /** S3-compatible endpoint (MinIO, R2, s3rver); unset for AWS. @example 'http://127.0.0.1:9000' */
  endpoint?: string;
  /** @default process.env.AWS_REGION ?? 'us-east-1' */
  region?: string;
  /** Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible servers. @default false */
  forcePathStyle?: boolean;
  /** Static credentials; unset: the AWS SDK's standard provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Use this client instead of creating one (the options above are then ignored); not destroyed on close. */
  client?: S3Client;
  /**
   * A chunk object is written once this many bytes of lines are buffered.
   * @default 1048576
   */
  maxChunkBytes?: number;
  /**
   * Buffered lines are written at the latest this long after the first of them arrived,
   * so a running job's lines are readable from other processes within about this time.
   * @default 1000
   */
  flushIntervalMs?: number;
  /**
   * When this many bytes wait to be written (S3 slow or failing), `append` waits for the
   * writes: backpressure instead of unbounded memory.
   * @default 16777216
   */
  maxBufferBytes?: number;
  /**
   * Attempts per object write before the write is reported as failed (lines stay buffered).
   * @default 5
   */
  maxAttempts?: number;
  /**
   * Follower polling: first interval, doubled while nothing new arrives, up to `pollMaxMs`.
   * @default 100
   */
  pollMinMs?: number;
  /** @default 2000 */
  pollMaxMs?: number;
}

/** The per-run index object: chunk ranges as [firstSeq, lastSeq, bytes]. */
interface Index {
  v: 1;
  lastSeq: number;
  ended: boolean;
  chunks: [number, number, number][];
}

// A buffered line: seq plus its encoded row, so later mutation of the caller's object
// cannot change what is written and memory per line stays one string.
interface Pending {
  seq: number;
  row: string;
  /** UTF-8 bytes of the row and its newline. */
  bytes: number;
}

interface Writer {
  index: Index;
  pending: Pending[];
  pendingBytes: number;
  lastSeq: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  flushing: Promise<void> | undefined;
  error: unknown;
  /** The in-memory index has chunks the index object does not list yet. */
  indexDirty: boolean;
  waiters: Set<() => void>;
}

type Row = [number, number, string, number, number, LogStream, string];

function encode(l: LogLine): string {
  return JSON.stringify([l.seq, l.ts, l.jobId, l.attempt, l.step, l.stream, l.text] satisfies Row);
}

function decode(runId: string, row: string): LogLine {
  const [seq, ts, jobId, attempt, step, stream, text] = JSON.parse(row) as Row;
  return { seq, ts, runId, jobId, attempt, step, stream, text };
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
const pad = (seq: number) => String(seq).padStart(15, '0');
const emptyIndex = (): Index => ({ v: 1, lastSeq: 0, ended: false, chunks: [] });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** No such object (a run without lines yet), as opposed to no such bucket, which is a configuration error. */
function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'NoSuchBucket' || e?.Code === 'NoSuchBucket') return false;
  return e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

/**
 * A {@link LogStore} on S3: per run, ordered JSON-lines chunk objects
 * (`<prefix><runId>/chunk-<firstSeq>.jsonl`) and a small `index.json` listing their
 * ranges. `append` buffers; chunks are written when `maxChunkBytes` is reached or
 * `flushIntervalMs` passed, and by `end`. In the writing process `read` and `follow`
 * also serve buffered lines; other processes see lines once their chunk is indexed.
 * One process writes a run's log (the engine that holds the run's lease).
 */
export class S3LogStore implements LogStore {
  readonly #s3: S3Client;
  readonly #ownsClient: boolean;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #where: string;
  readonly #maxChunkBytes: number;
  readonly #flushIntervalMs: number;
  readonly #maxBufferBytes: number;
  readonly #maxAttempts: number;
  readonly #pollMinMs: number;
  readonly #pollMaxMs: number;
  readonly #writers = new Map<string, Promise<Writer>>();
  /** Wakes the followers sleeping between polls (close() ends them). */
  readonly #followerWakers = new Set<() => void>();
  #closed = false;
  readonly #chunkCache = new Map<string, string>();

  constructor(options: S3LogStoreOptions) {
    if (!options || typeof options.bucket !== 'string' || options.bucket === '') {
      throw invalid('S3LogStore needs `bucket`: the name of an existing bucket, e.g. { bucket: "ci-logs" }.');
    }
    for (const k of [
      'maxChunkBytes',
      'flushIntervalMs',
      'maxBufferBytes',
      'maxAttempts',
      'pollMinMs',
      'pollMaxMs',
    ] as const) {
      checkPositive(k, options[k]);
    }
    this.#bucket = options.bucket;
    this.#prefix = options.prefix ?? 'pipewright/logs/';
    this.#maxChunkBytes = options.maxChunkBytes ?? 1024 * 1024;
    this.#flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.#maxBufferBytes = Math.max(options.maxBufferBytes ?? 16 * 1024 * 1024, this.#maxChunkBytes);
    this.#maxAttempts = options.maxAttempts ?? 5;
    this.#pollMinMs = options.pollMinMs ?? 100;
    this.#pollMaxMs = Math.max(options.pollMaxMs ?? 2000, this.#pollMinMs);
    if (options.client) {
      this.#s3 = options.client;
      this.#ownsClient = false;
    } else {
      const config: S3ClientConfig = { region: options.region ?? process.env.AWS_REGION ?? 'us-east-1' };
      if (options.endpoint !== undefined) config.endpoint = options.endpoint;
      if (options.forcePathStyle !== undefined) config.forcePathStyle = options.forcePathStyle;
      if (options.credentials) config.credentials = options.credentials;
      this.#s3 = new S3Client(config);
      this.#ownsClient = true;
    }
    this.#where = `s3://${this.#bucket}/${this.#prefix}${options.endpoint ? ` at ${options.endpoint}` : ''}`;
  }

  #key(runId: string, name: string): string {
    return `${this.#prefix}${runId}/${name}`;
  }

  #checkRunId(runId: string): void {
    if (!RUN_ID.test(runId)) {
      throw invalid(
        `Run id "${runId}" cannot name S3 objects; use letters, digits, '.', '_' and '-' (up to 200 characters).`,
        { runId },
      );
    }
  }

  #unavailable(op: string, cause: unknown): PipewrightError {
    const why = cause instanceof Error ? `: ${cause.name}: ${cause.message}` : '';
    return new PipewrightError(
      'STORE_UNAVAILABLE',
      `S3 log store ${this.#where} failed to ${op}${why}; check the endpoint, bucket and credentials.`,
      { cause, details: { bucket: this.#bucket, prefix: this.#prefix, op } },
    );
  }

  async #get(key: string): Promise<string | undefined> {
    let lastErr: unknown;
    // The SDK retries the request; a body cut off mid-stream (connection reset) is retried here.
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      try {
        const res = await this.#s3.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
        return (await res.Body?.transformToString('utf8')) ?? '';
      } catch (err) {
        if (isNotFound(err)) return undefined;
        lastErr = err;
        if (attempt < this.#maxAttempts) await sleep(Math.min(50 * 2 ** (attempt - 1), 1000));
      }
    }
    throw this.#unavailable(`read ${key} after ${this.#maxAttempts} attempts`, lastErr);
  }

  async #put(key: string, body: string, contentType: string): Promise<void> {
    let lastErr: unknown;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      try {
        await this.#s3.send(
          new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: body, ContentType: contentType }),
        );
        return;
      } catch (err) {
        lastErr = err;
        if (attempt < this.#maxAttempts) await sleep(Math.min(100 * 2 ** (attempt - 1), 2000));
      }
    }
    throw this.#unavailable(`write ${key} after ${this.#maxAttempts} attempts`, lastErr);
  }

  // Indexed chunks never change, so a follower re-reading the chunk it stopped in is served from here.
  async #chunk(key: string): Promise<string | undefined> {
    const hit = this.#chunkCache.get(key);
    if (hit !== undefined) return hit;
    const body = await this.#get(key);
    if (body !== undefined) {
      this.#chunkCache.set(key, body);
      if (this.#chunkCache.size > 8) this.#chunkCache.delete(this.#chunkCache.keys().next().value!);
    }
    return body;
  }

  async #loadIndex(runId: string): Promise<Index> {
    const key = this.#key(runId, 'index.json');
    // S3 replaces objects atomically; some S3-compatible servers (s3rver) do not, and a
    // read racing a write sees a truncated index. Such a read is retried, not trusted.
    for (let attempt = 1; ; attempt++) {
      const text = await this.#get(key);
      if (text === undefined) return emptyIndex();
      try {
        return JSON.parse(text) as Index;
      } catch (err) {
        if (attempt >= 5) throw this.#unavailable(`parse ${key}`, err);
        await sleep(20 * attempt);
      }
    }
  }

  #writer(runId: string): Promise<Writer> {
    let w = this.#writers.get(runId);
    if (!w) {
      w = this.#loadIndex(runId).then((index) => ({
        index,
        pending: [],
        pendingBytes: 0,
        lastSeq: index.lastSeq,
        timer: undefined,
        flushing: undefined,
        error: undefined,
        indexDirty: false,
        waiters: new Set<() => void>(),
      }));
      // A failed load must not stick: the next call tries again.
      w.catch(() => this.#writers.delete(runId));
      this.#writers.set(runId, w);
    }
    return w;
  }

  #wake(w: Writer): void {
    const waiters = [...w.waiters];
    w.waiters.clear();
    for (const f of waiters) f();
  }

  async append(runId: string, batch: LogBatch): Promise<void> {
    checkBatch(runId, batch);
    this.#checkRunId(runId);
    const w = await this.#writer(runId);
    let added = false;
    for (const l of batch.lines) {
      if (l.seq <= w.lastSeq) continue;
      const row = encode(l);
      const bytes = Buffer.byteLength(row) + 1;
      w.pending.push({ seq: l.seq, row, bytes });
      w.pendingBytes += bytes;
      w.lastSeq = l.seq;
      added = true;
    }
    if (!added) return;
    this.#wake(w);
    if (w.pendingBytes >= this.#maxBufferBytes) {
      await this.#flush(runId, w);
    } else if (w.pendingBytes >= this.#maxChunkBytes) {
      this.#flush(runId, w).catch(() => undefined);
    } else if (!w.timer) {
      w.timer = setTimeout(() => {
        w.timer = undefined;
        this.#flush(runId, w).catch(() => undefined);
      }, this.#flushIntervalMs);
      w.timer.unref?.();
    }
  }

  /** Writes every buffered line of `runId` (or of every run) to S3. */
  async flush(runId?: string): Promise<void> {
    const ids = runId === undefined ? [...this.#writers.keys()] : [runId];
    await Promise.all(
      ids.map(async (id) => {
        const w = this.#writers.get(id);
        if (w) await this.#flush(id, await w);
      }),
    );
  }

  // One flush at a time per run, so chunks and index updates happen in seq order.
  async #flush(runId: string, w: Writer, endAfter = false): Promise<void> {
    while (w.flushing) await w.flushing.catch(() => undefined);
    if (w.timer) {
      clearTimeout(w.timer);
      w.timer = undefined;
    }
    if (w.pending.length === 0 && !w.indexDirty && !(endAfter && !w.index.ended)) return;
    w.flushing = (async () => {
      while (w.pending.length > 0) {
        let take = 0;
        let bytes = 0;
        // Up to maxChunkBytes of UTF-8; a single longer row still makes a chunk of its own.
        while (take < w.pending.length) {
          const next = w.pending[take]!.bytes;
          if (take > 0 && bytes + next > this.#maxChunkBytes) break;
          bytes += next;
          take++;
        }
        const chunk = w.pending.slice(0, take);
        const first = chunk[0]!.seq;
        const last = chunk.at(-1)!.seq;
        // A retry writes the same bytes to the same key, so order never changes.
        await this.#put(
          this.#key(runId, `chunk-${pad(first)}.jsonl`),
          `${chunk.map((p) => p.row).join('\n')}\n`,
          'application/x-ndjson',
        );
        // Index and buffer change together, so an in-process reader never sees a gap.
        w.index.chunks.push([first, last, bytes]);
        w.index.lastSeq = last;
        w.pending.splice(0, take);
        w.pendingBytes -= bytes;
        if (w.pending.length === 0 && endAfter) w.index.ended = true;
        w.indexDirty = true;
        await this.#put(this.#key(runId, 'index.json'), JSON.stringify(w.index), 'application/json');
        w.indexDirty = false;
      }
      if ((endAfter && !w.index.ended) || w.indexDirty) {
        if (endAfter) w.index.ended = true;
        w.indexDirty = true;
        await this.#put(this.#key(runId, 'index.json'), JSON.stringify(w.index), 'application/json');
        w.indexDirty = false;
      }
      w.error = undefined;
    })();
    try {
      await w.flushing;
    } catch (err) {
      w.error = err;
      throw err;
    } finally {
      w.flushing = undefined;
      this.#wake(w);
    }
  }

  async end(runId: string): Promise<void> {
    this.#checkRunId(runId);
    const w = await this.#writer(runId);
    await this.#flush(runId, w, true);
    // The log is complete in S3: a long-lived process must not keep one writer per run it ever
    // logged. Readers and followers go to the index from now on.
    if (w.pending.length === 0) {
      const current = this.#writers.get(runId);
      if (current !== undefined && (await current.catch(() => undefined)) === w) {
        this.#writers.delete(runId);
        this.#wake(w);
      }
    }
  }

  /** Lines after `after` plus whether the log is complete up to them. */
  async #readFrom(runId: string, options: LogReadOptions): Promise<{ lines: LogLine[]; ended: boolean }> {
    this.#checkRunId(runId);
    const after = options.after ?? 0;
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const local = this.#writers.get(runId);
    const w = local ? await local.catch(() => undefined) : undefined;
    // Snapshot buffered lines before looking at chunks: a line is either in this snapshot or already indexed.
    const pending = w ? w.pending.slice(indexAfter(w.pending, after)) : [];
    const index = w ? { ...w.index, chunks: [...w.index.chunks] } : await this.#loadIndex(runId);
    const ended = index.ended;
    const keep = (l: LogLine) => logLineWanted(l, options);
    const out: LogLine[] = [];
    let seen = after;
    const firstChunk = indexAfter(
      index.chunks.map((c) => ({ seq: c[1] })),
      after,
    );
    for (let i = firstChunk; i < index.chunks.length && out.length < limit; i++) {
      const [first] = index.chunks[i]!;
      const body = await this.#chunk(this.#key(runId, `chunk-${pad(first)}.jsonl`));
      if (body === undefined) {
        throw this.#unavailable(`read chunk ${first} of run ${runId}`, new Error('chunk listed in index is missing'));
      }
      for (const row of body.split('\n')) {
        if (row === '') continue;
        const line = decode(runId, row);
        if (line.seq <= seen) continue;
        seen = line.seq;
        if (keep(line)) out.push(line);
        if (out.length >= limit) break;
      }
    }
    for (const p of pending) {
      if (out.length >= limit) break;
      if (p.seq <= seen) continue;
      seen = p.seq;
      const line = decode(runId, p.row);
      if (keep(line)) out.push(line);
    }
    return { lines: out, ended: ended && out.length < limit };
  }

  async lastSeq(runId: string): Promise<number> {
    this.#checkRunId(runId);
    // Lines this store is still gathering into a chunk count too.
    const w = this.#writers.get(runId);
    if (w) return (await w).lastSeq;
    return (await this.#loadIndex(runId)).lastSeq;
  }

  async read(runId: string, options: LogReadOptions = {}): Promise<LogLine[]> {
    checkReadOptions(options);
    return (await this.#readFrom(runId, options)).lines;
  }

  async *follow(runId: string, options: LogFollowOptions = {}): AsyncGenerator<LogBatch> {
    checkReadOptions(options);
    const { signal } = options;
    this.#checkRunId(runId);
    let last = options.after ?? 0;
    let delay = this.#pollMinMs;
    while (!signal?.aborted) {
      if (this.#closed) throw followerClosed('S3 log store', runId);
      const { lines, ended } = await this.#readFrom(runId, { after: last, limit: 5000 });
      if (lines.length > 0) {
        last = lines.at(-1)!.seq;
        delay = this.#pollMinMs;
        yield { runId, lines };
        continue;
      }
      if (ended) return;
      await this.#wait(runId, delay, signal);
      delay = Math.min(delay * 2, this.#pollMaxMs);
    }
  }

  // Sleeps `ms`, or less when this process appends to the run or the signal aborts.
  async #wait(runId: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    const local = this.#writers.get(runId);
    const w = local ? await local.catch(() => undefined) : undefined;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        w?.waiters.delete(done);
        this.#followerWakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      w?.waiters.add(done);
      this.#followerWakers.add(done);
    });
  }

  /** Writes what is buffered, then releases the client; followers fail (`STORE_UNAVAILABLE`), their logs may go on. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const wake of [...this.#followerWakers]) wake();
    try {
      await this.flush();
    } finally {
      for (const w of this.#writers.values()) {
        const writer = await w.catch(() => undefined);
        if (writer?.timer) clearTimeout(writer.timer);
        if (writer) this.#wake(writer);
      }
      this.#writers.clear();
      this.#chunkCache.clear();
      if (this.#ownsClient) this.#s3.destroy();
    }
  }
}
