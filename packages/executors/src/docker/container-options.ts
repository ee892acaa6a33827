import { PipewrightError, splitCommandLine } from '@pipewright/core';

/** The subset of `docker create` flags accepted in `jobs.<id>.container.options`. */
export interface ParsedContainerOptions {
  cpus?: number;
  memory?: number;
  memorySwap?: number;
  network?: string;
  user?: string;
  hostname?: string;
  env: Record<string, string>;
  labels: Record<string, string>;
  privileged?: boolean;
  init?: boolean;
  readOnly?: boolean;
  capAdd: string[];
  capDrop: string[];
  shmSize?: number;
  addHosts: string[];
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Parses a Docker memory size (`512m`, `1g`, `1048576`, `1.5GB`) to bytes, as
 * `docker run --memory` does (binary units).
 */
export function parseMemory(value: string | number, where: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return Math.floor(value);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$/i.exec(String(value));
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined || Number(m[1]) <= 0) {
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `${where}: expected a memory size such as \`512m\` or \`2g\`, got \`${String(value)}\``,
      { details: { where, value: String(value) } },
    );
  }
  return Math.floor(Number(m[1]) * unit);
}

/** Docker refuses a container memory limit below 6 MiB (at create time, which read as `infra`). */
const MIN_MEMORY_LIMIT = 6 * 1024 * 1024;

/** A container memory limit (`--memory`, `container.memory`): a size of at least 6 MiB, as Docker requires. */
export function parseMemoryLimit(value: string | number, where: string): number {
  const bytes = parseMemory(value, where);
  if (bytes < MIN_MEMORY_LIMIT) {
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `${where}: Docker's smallest memory limit is 6m, got \`${String(value)}\``,
      {
        details: { where, value: String(value) },
      },
    );
  }
  return bytes;
}

const SUPPORTED =
  '--cpus, --memory/-m, --memory-swap, --network/--net, --user/-u, --hostname/-h, --env/-e, --label/-l, --privileged, --init, --read-only, --cap-add, --cap-drop, --shm-size, --add-host';

/**
 * Parses GitHub's `container.options` string (extra `docker create` flags).
 * Unknown flags are an error rather than silently ignored, so a job never runs
 * with weaker limits or different isolation than its author wrote.
 */
export function parseContainerOptions(options: string | undefined): ParsedContainerOptions {
  const out: ParsedContainerOptions = { env: {}, labels: {}, capAdd: [], capDrop: [], addHosts: [] };
  if (options === undefined || options.trim() === '') return out;
  const where = 'container.options';
  let words: string[];
  try {
    words = splitCommandLine(options);
  } catch {
    throw new PipewrightError('INVALID_ARGUMENT', `${where}: a quote is not closed in \`${options}\``, {
      details: { where },
    });
  }
  for (let i = 0; i < words.length; i++) {
    const word = words[i] ?? '';
    const eq = word.indexOf('=');
    const flag = word.startsWith('--') && eq > 0 ? word.slice(0, eq) : word;
    const inline = word.startsWith('--') && eq > 0 ? word.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = words[++i];
      if (next === undefined) {
        throw new PipewrightError('INVALID_ARGUMENT', `${where}: \`${flag}\` needs a value`, { details: { flag } });
      }
      return next;
    };
    switch (flag) {
      case '--cpus': {
        const v = value();
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0) {
          throw new PipewrightError('INVALID_ARGUMENT', `${where}: --cpus expects a positive number, got \`${v}\``);
        }
        out.cpus = n;
        break;
      }
      case '--memory':
      case '-m':
        out.memory = parseMemoryLimit(value(), `${where} ${flag}`);
        break;
      case '--memory-swap': {
        const v = value();
        out.memorySwap = v.trim() === '-1' ? -1 : parseMemory(v, `${where} ${flag}`);
        break;
      }
      case '--network':
      case '--net':
        out.network = value();
        break;
      case '--user':
      case '-u':
        out.user = value();
        break;
      case '--hostname':
      case '-h':
        out.hostname = value();
        break;
      case '--env':
      case '-e': {
        const v = value();
        const at = v.indexOf('=');
        // `-e NAME` without a value passes the host's value in docker; we do not leak the host env.
        if (at <= 0) {
          throw new PipewrightError('INVALID_ARGUMENT', `${where}: \`${flag} ${v}\` must be NAME=value`);
        }
        out.env[v.slice(0, at)] = v.slice(at + 1);
        break;
      }
      case '--label':
      case '-l': {
        const v = value();
        const at = v.indexOf('=');
        const key = at < 0 ? v : v.slice(0, at);
        if (key.startsWith('pipewright.')) {
          throw new PipewrightError('INVALID_ARGUMENT', `${where}: labels starting with \`pipewright.\` are reserved`);
        }
        out.labels[key] = at < 0 ? '' : v.slice(at + 1);
        break;
      }
      case '--privileged':
        out.privileged = inline === undefined ? true : inline !== 'false';
        break;
      case '--init':
        out.init = inline === undefined ? true : inline !== 'false';
        break;
      case '--read-only':
        out.readOnly = inline === undefined ? true : inline !== 'false';
        break;
      case '--cap-add':
        out.capAdd.push(value());
        break;
      case '--cap-drop':
        out.capDrop.push(value());
        break;
      case '--shm-size':
        out.shmSize = parseMemory(value(), `${where} ${flag}`);
        break;
      case '--add-host':
        out.addHosts.push(value());
        break;
      default:
        throw new PipewrightError(
          'INVALID_ARGUMENT',
          `${where}: unsupported option \`${flag}\`; the Docker executor accepts ${SUPPORTED}`,
          { details: { flag } },
        );
    }
  }
  return out;
}
