import type { LogStore, StateStore } from '@pipewright/core';
import { EXIT } from '../exit-codes.js';
import { CliError } from './errors.js';

/** A state store made from a `--store` URL. */
export interface StateStoreHandle {
  store: StateStore;
  close(): Promise<void>;
}

/** A log store made from a `--log-store` URL. */
export interface LogStoreHandle {
  logs: LogStore;
  close(): Promise<void>;
}

/** Settings that are not part of a store URL (S3 endpoint, environment). */
export interface StoreContext {
  /** The flag the URL came from, for error messages (`--store`, `--log-store`). */
  flag: string;
  /** `--s3-endpoint`, else `$AWS_ENDPOINT_URL`. */
  s3Endpoint?: string;
}

/** Makes stores for one URL scheme; `url` is the full URL as given. */
export interface StoreFactory {
  /** What the scheme looks like in help and errors (`memory`, `redis://host:6379/0`). */
  readonly example: string;
  /** Throws a usage error (exit 2) for a malformed URL of this scheme, before anything connects. */
  check?(url: string, flag: string): void;
  state?(url: string, ctx: StoreContext): Promise<StateStoreHandle>;
  logs?(url: string, ctx: StoreContext): Promise<LogStoreHandle>;
}

// The CLI waits this long for an unreachable Redis per call; the engine retries on top
// of it, so a Redis restart during a run is ridden out while a wrong address fails fast.
const REDIS_UNAVAILABLE_AFTER_MS = 5000;

/** A URL for messages: the password (if any) replaced by `***`. */
export function displayUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_, scheme: string, auth: string) => {
    const colon = auth.indexOf(':');
    return `${scheme}${colon < 0 ? '***' : `${auth.slice(0, colon)}:***`}@`;
  });
}

/**
 * Checks a `redis://host:port/db` (or `rediss://`) URL and returns it unchanged; a bad
 * one is a usage error (exit 2) saying what is wrong.
 */
export function parseRedisUrl(flag: string, url: string): string {
  const shown = displayUrl(url);
  const example = 'redis://127.0.0.1:6379/0';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CliError(`${flag} \`${shown}\` is not a valid URL; expected redis://HOST:PORT/DB, e.g. ${example}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new CliError(`${flag} \`${shown}\` must start with redis:// or rediss://, e.g. ${example}`);
  }
  if (!u.hostname)
    throw new CliError(`${flag} \`${shown}\` names no host; expected redis://HOST:PORT/DB, e.g. ${example}`);
  // ioredis decodes these with decodeURIComponent, which throws on a stray `%`.
  for (const [what, part] of [
    ['user name', u.username],
    ['password', u.password],
  ] as const) {
    try {
      decodeURIComponent(part);
    } catch {
      throw new CliError(`${flag} \`${shown}\`: the ${what} has a malformed %-escape; write a literal % as %25`);
    }
  }
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,5}$/.test(db)) {
    throw new CliError(
      `${flag} \`${shown}\`: the database after the port must be a number, got \`/${db}\`, e.g. ${example}`,
    );
  }
  return url;
}

/** Bucket and key prefix of an `s3://bucket/prefix` URL. */
export interface S3Location {
  bucket: string;
  /** Key prefix ending in `/`; undefined when the URL has none (the store's default applies). */
  prefix?: string;
}

/** Parses `s3://bucket/prefix`; a bad URL is a usage error (exit 2). */
export function parseS3Url(flag: string, url: string): S3Location {
  const example = 's3://ci-logs/pipewright/';
  const m = /^s3:\/\/([^/?#]*)(\/[^?#]*)?$/i.exec(url);
  if (!m) throw new CliError(`${flag} \`${url}\` is not an S3 URL; expected s3://BUCKET/PREFIX, e.g. ${example}`);
  const bucket = m[1] as string;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new CliError(
      `${flag} \`${url}\`: \`${bucket}\` is not a valid bucket name (3-63 lowercase letters, digits, \`.\` and \`-\`), e.g. ${example}`,
    );
  }
  const path = (m[2] ?? '').replace(/^\/+/, '');
  if (path === '') return { bucket };
  return { bucket, prefix: path.endsWith('/') ? path : `${path}/` };
}

/** Checks an S3 endpoint URL (`--s3-endpoint` / `$AWS_ENDPOINT_URL`). */
export function parseS3Endpoint(endpoint: string): string {
  let u: URL | undefined;
  try {
    u = new URL(endpoint);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
    throw new CliError(
      `--s3-endpoint (or $AWS_ENDPOINT_URL) \`${displayUrl(endpoint)}\` is not an http(s) URL, e.g. http://127.0.0.1:9000`,
    );
  }
  return endpoint;
}

/**
 * Store URL schemes the CLI knows: each entry makes the state store and/or the log
 * store for its URLs. Redis and S3 clients load only when their scheme is used.
 */
export const STORE_FACTORIES: Record<string, StoreFactory> = {
  memory: {
    example: 'memory',
    async state() {
      const { MemoryStore } = await import('@pipewright/storage-adapters');
      const store = new MemoryStore();
      return { store, close: async () => store.close?.() };
    },
    async logs() {
      const { MemoryLogStore } = await import('@pipewright/storage-adapters');
      const logs = new MemoryLogStore();
      return { logs, close: async () => logs.close?.() };
    },
  },
  redis: {
    example: 'redis://HOST:PORT/DB',
    check: (url, flag) => void parseRedisUrl(flag, url),
    async state(url, ctx) {
      const checked = parseRedisUrl(ctx.flag, url);
      const { RedisStore } = await import('@pipewright/storage-adapters/redis');
      const store = new RedisStore({ url: checked, unavailableAfterMs: REDIS_UNAVAILABLE_AFTER_MS });
      return { store, close: () => store.close() };
    },
    async logs(url, ctx) {
      const checked = parseRedisUrl(ctx.flag, url);
      const { RedisLogStore } = await import('@pipewright/storage-adapters/redis');
      const logs = new RedisLogStore({ url: checked, unavailableAfterMs: REDIS_UNAVAILABLE_AFTER_MS });
      return { logs, close: () => logs.close() };
    },
  },
  s3: {
    example: 's3://BUCKET/PREFIX',
    check: (url, flag) => void parseS3Url(flag, url),
    async logs(url, ctx) {
      const loc = parseS3Url(ctx.flag, url);
      // The SDK's "future versions need Node 22" notice is about its releases, not this
      // run; on stderr it would read as a problem with the user's pipeline.
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
      const { S3LogStore } = await import('@pipewright/storage-adapters/s3');
      const logs = new S3LogStore({
        bucket: loc.bucket,
        ...(loc.prefix !== undefined ? { prefix: loc.prefix } : {}),
        // S3-compatible servers (MinIO, s3rver, R2 via custom domains) want path-style URLs.
        ...(ctx.s3Endpoint !== undefined ? { endpoint: ctx.s3Endpoint, forcePathStyle: true } : {}),
      });
      return { logs, close: () => logs.close() };
    },
  },
};
STORE_FACTORIES.rediss = STORE_FACTORIES.redis as StoreFactory;

/** The scheme of a store URL: `memory` (bare or `memory://`), `redis://...` -> `redis`. */
export function storeScheme(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  return (m ? (m[1] as string) : url).toLowerCase();
}

function factoryFor(flag: string, url: string, kind: 'state' | 'logs'): StoreFactory {
  const scheme = storeScheme(url);
  const factory = STORE_FACTORIES[scheme];
  const supported = [
    ...new Set(
      Object.values(STORE_FACTORIES)
        .filter((f) => f[kind] !== undefined)
        .map((f) => f.example),
    ),
  ];
  if (!factory?.[kind]) {
    const known =
      factory !== undefined
        ? ` cannot hold ${kind === 'state' ? 'run state' : 'logs'}`
        : scheme === url.toLowerCase()
          ? ' is not a known store'
          : ` has an unknown scheme \`${scheme}:\``;
    throw new CliError(`${flag} \`${displayUrl(url)}\`${known}; supported: ${supported.join(', ')}`);
  }
  return factory;
}

/** Options of {@link createStores} and the single-store openers. */
export interface StoreOpenOptions {
  /** `--s3-endpoint`; `$AWS_ENDPOINT_URL` when unset. */
  s3Endpoint?: string | undefined;
  /** Environment to read `AWS_ENDPOINT_URL` from. @default process.env */
  env?: NodeJS.ProcessEnv;
}

function context(flag: string, url: string, options: StoreOpenOptions): StoreContext {
  // Only an s3:// store reads the endpoint, so a $AWS_ENDPOINT_URL meant for other tools cannot break the rest.
  if (storeScheme(url) !== 's3') return { flag };
  const env = options.env ?? process.env;
  const endpoint = options.s3Endpoint ?? (env.AWS_ENDPOINT_URL || undefined);
  return endpoint === undefined ? { flag } : { flag, s3Endpoint: parseS3Endpoint(endpoint) };
}

function infra(flag: string, url: string, err: unknown): CliError {
  const msg = err instanceof Error ? err.message : String(err);
  return new CliError(`${flag} \`${displayUrl(url)}\`: cannot open the store: ${msg}`, EXIT.INFRA, 'STORE_UNAVAILABLE');
}

async function open<K extends 'state' | 'logs'>(
  kind: K,
  flag: string,
  url: string,
  options: StoreOpenOptions,
): Promise<K extends 'state' ? StateStoreHandle : LogStoreHandle> {
  const factory = factoryFor(flag, url, kind);
  const ctx = context(flag, url, options);
  try {
    const make = factory[kind] as (url: string, ctx: StoreContext) => Promise<StateStoreHandle | LogStoreHandle>;
    return (await make(url, ctx)) as K extends 'state' ? StateStoreHandle : LogStoreHandle;
  } catch (err) {
    if (err instanceof CliError) throw err;
    // A %-escape a client library could not decode: the URL is wrong, not the store.
    if (err instanceof URIError)
      throw new CliError(`${flag} \`${displayUrl(url)}\` is not a valid URL: ${err.message}`);
    throw infra(flag, url, err);
  }
}

/** Opens the state store of `--store URL`; bad URLs are usage errors (exit 2). */
export function openStateStore(url: string, options: StoreOpenOptions = {}): Promise<StateStoreHandle> {
  return open('state', '--store', url, options);
}

/** Opens the log store of `--log-store URL`; bad URLs are usage errors (exit 2). */
export function openLogStore(url: string, options: StoreOpenOptions = {}): Promise<LogStoreHandle> {
  return open('logs', '--log-store', url, options);
}

/**
 * Checks that a state store answers (one small read), so an unreachable one is an
 * infrastructure error (exit 3) before anything starts.
 */
async function probeStateStore(url: string, store: StateStore): Promise<void> {
  try {
    await store.listRuns({ limit: 1 });
  } catch (err) {
    throw infra('--store', url, err);
  }
}

/**
 * Checks that a log store answers (a read of a run that cannot exist), so an unreachable
 * one is an infrastructure error (exit 3) before the run starts instead of a run whose
 * lines are dropped after the store's retries.
 */
async function probeLogStore(url: string, logs: LogStore): Promise<void> {
  try {
    await logs.read('pipewright-probe', { limit: 1 });
  } catch (err) {
    throw infra('--log-store', url, err);
  }
}

/** The state and log stores of a run, with one `close()` for both. */
export interface Stores {
  store: StateStore;
  logs: LogStore;
  close(): Promise<void>;
}

/**
 * Makes the stores named by `--store` and `--log-store`. Unknown or malformed URLs
 * are usage errors (exit 2), found before anything connects; a store that cannot
 * be reached is an infrastructure error (exit 3).
 */
export async function createStores(
  storeUrl: string,
  logStoreUrl: string,
  options: StoreOpenOptions = {},
): Promise<Stores> {
  // Both URLs (and an S3 endpoint) are checked before either store connects.
  const stateFactory = factoryFor('--store', storeUrl, 'state');
  const logsFactory = factoryFor('--log-store', logStoreUrl, 'logs');
  stateFactory.check?.(storeUrl, '--store');
  logsFactory.check?.(logStoreUrl, '--log-store');
  context('--log-store', logStoreUrl, options);
  let state: StateStoreHandle | undefined;
  try {
    state = await openStateStore(storeUrl, options);
    await probeStateStore(storeUrl, state.store);
    const logs = await openLogStore(logStoreUrl, options);
    try {
      await probeLogStore(logStoreUrl, logs.logs);
    } catch (err) {
      await logs.close().catch(() => undefined);
      throw err;
    }
    const s = state;
    return {
      store: s.store,
      logs: logs.logs,
      close: async () => {
        await Promise.allSettled([s.close(), logs.close()]);
      },
    };
  } catch (err) {
    await state?.close().catch(() => undefined);
    throw err;
  }
}
