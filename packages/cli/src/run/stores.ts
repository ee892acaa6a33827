import type { LogStore, StateStore } from '@pipewright/core';
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

/** Makes stores for one URL scheme; `url` is the full URL as given. */
export interface StoreFactory {
  /** What the scheme looks like in help and errors (`memory`, `redis://host:6379/0`). */
  readonly example: string;
  state?(url: string): Promise<StateStoreHandle>;
  logs?(url: string): Promise<LogStoreHandle>;
}

/**
 * Store URL schemes the CLI knows. Add `redis` and `s3` here: each entry makes
 * the state store and/or the log store for its URLs.
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
};

/** The scheme of a store URL: `memory` (bare or `memory://`), `redis://...` -> `redis`. */
export function storeScheme(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  return (m ? (m[1] as string) : url).toLowerCase();
}

function factoryFor(flag: string, url: string, kind: 'state' | 'logs'): StoreFactory {
  const scheme = storeScheme(url);
  const factory = STORE_FACTORIES[scheme];
  const supported = Object.entries(STORE_FACTORIES)
    .filter(([, f]) => f[kind] !== undefined)
    .map(([, f]) => f.example);
  if (!factory?.[kind]) {
    const known =
      scheme === 'redis' || scheme === 'rediss' || scheme === 's3'
        ? ' is not available in this build'
        : ' is not a known store';
    throw new CliError(`${flag} \`${url}\`${known}; supported: ${supported.join(', ')}`);
  }
  return factory;
}

/** The state and log stores of a run, with one `close()` for both. */
export interface Stores {
  store: StateStore;
  logs: LogStore;
  close(): Promise<void>;
}

/**
 * Makes the stores named by `--store` and `--log-store`. Unknown or unsupported
 * URLs are usage errors (exit 2); a store that cannot be reached is an
 * infrastructure error (exit 3).
 */
export async function createStores(storeUrl: string, logStoreUrl: string): Promise<Stores> {
  const stateFactory = factoryFor('--store', storeUrl, 'state');
  const logFactory = factoryFor('--log-store', logStoreUrl, 'logs');
  let state: StateStoreHandle | undefined;
  try {
    state = await (stateFactory.state as NonNullable<StoreFactory['state']>)(storeUrl);
    const logs = await (logFactory.logs as NonNullable<StoreFactory['logs']>)(logStoreUrl);
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
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot open the store: ${(err as Error).message}`, 3);
  }
}
