import { CliError } from './errors.js';

/** Raw `pipewright run` options as commander hands them over. */
export interface RawRunOptions {
  input?: string[];
  var?: string[];
  secret?: string[];
  executor?: string;
  store?: string;
  logStore?: string;
  s3Endpoint?: string;
  concurrency?: string;
  logs?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** Executors `pipewright run --executor` accepts. */
export const RUN_EXECUTORS = ['process', 'docker'] as const;

/** One of {@link RUN_EXECUTORS}. */
export type RunExecutorKind = (typeof RUN_EXECUTORS)[number];

/** `pipewright run` options, validated and with defaults filled in. */
export interface ResolvedRunOptions {
  inputs: Record<string, string>;
  /** `--var NAME=VALUE`: the `vars` context. */
  vars: Record<string, string>;
  /** Secret names in the order given (values are read separately, never kept here). */
  secrets: string[];
  executor: RunExecutorKind;
  store: string;
  logStore: string;
  /** `--s3-endpoint`; unset: `$AWS_ENDPOINT_URL`, else AWS. */
  s3Endpoint?: string;
  concurrency: number;
  logs: boolean;
  json: boolean;
  quiet: boolean;
}

const INPUT_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `--input k=v` values: the first `=` splits, later ones stay in the value. */
export function parseInputs(pairs: readonly string[]): Record<string, string> {
  return parsePairs(pairs, '--input', 'input', (name) => name);
}

/** Parses `--var k=v` values like {@link parseInputs}; variable names are case-insensitive, as on GitHub. */
export function parseVars(pairs: readonly string[]): Record<string, string> {
  return parsePairs(pairs, '--var', 'variable', (name) => name.toUpperCase());
}

/** `NAME=VALUE` pairs of a repeatable flag; two names that are the same under `key` are refused. */
function parsePairs(
  pairs: readonly string[],
  flag: string,
  what: string,
  key: (name: string) => string,
): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new CliError(`${flag} expects NAME=VALUE, got \`${pair}\` (example: ${flag} version=1.2.3)`);
    }
    const name = pair.slice(0, eq);
    if (!INPUT_NAME.test(name)) {
      throw new CliError(
        `${flag} name \`${name}\` is not valid: use letters, digits, \`_\` and \`-\`, starting with a letter or \`_\``,
      );
    }
    if (seen.has(key(name))) throw new CliError(`${flag} \`${name}\` is given twice; give each ${what} once`);
    seen.add(key(name));
    out[name] = pair.slice(eq + 1);
  }
  return out;
}

/** Checks `--secret NAME` values (environment variable names), dropping repeats. */
export function parseSecretNames(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of names) {
    if (!SECRET_NAME.test(name)) {
      throw new CliError(
        `--secret expects the name of an environment variable (letters, digits, \`_\`), got \`${name}\`; the value is read from $NAME`,
      );
    }
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** Parses a flag that takes a positive integer (`--concurrency 4`, `--limit 50`). */
export function parsePositiveInt(flag: string, value: string | undefined, fallback: number, example: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new CliError(`${flag} expects a positive integer, got \`${value}\` (example: ${flag} ${example})`);
  }
  return n;
}

/** Parses `--concurrency`: a positive integer. */
export function parseConcurrency(value: string | undefined): number {
  return parsePositiveInt('--concurrency', value, 8, 4);
}

/** Validates every option of `pipewright run` once, at the boundary. */
export function resolveRunOptions(raw: RawRunOptions): ResolvedRunOptions {
  const executor = raw.executor ?? 'process';
  if (!(RUN_EXECUTORS as readonly string[]).includes(executor)) {
    throw new CliError(`--executor must be one of ${RUN_EXECUTORS.join(', ')}, got \`${executor}\``);
  }
  return {
    inputs: parseInputs(raw.input ?? []),
    vars: parseVars(raw.var ?? []),
    secrets: parseSecretNames(raw.secret ?? []),
    executor: executor as RunExecutorKind,
    store: raw.store ?? 'memory',
    logStore: raw.logStore ?? 'memory',
    ...(raw.s3Endpoint !== undefined ? { s3Endpoint: raw.s3Endpoint } : {}),
    concurrency: parseConcurrency(raw.concurrency),
    logs: raw.logs ?? false,
    json: raw.json ?? false,
    quiet: raw.quiet ?? false,
  };
}
