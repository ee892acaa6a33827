import { parseDuration } from './duration.js';
import type { JobRaw, PipelineRaw, RetryRaw, StepRaw } from './schema.js';
import {
  type ConcurrencySpec,
  type ContainerSpec,
  DEFAULT_JOB_TIMEOUT_MS,
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_RETRY,
  type InputSpec,
  type JobSpec,
  type MatrixSpec,
  type PipelineSpec,
  type RetrySpec,
  type RunDefaults,
  type StepSpec,
  type StrategySpec,
} from './types.js';

/** Scalar -> string the way GitHub puts values into the environment. */
function str(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'string' ? v : String(v);
}

function envOf(raw: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw ?? {})) out[k] = str(v);
  return out;
}

function defaultsOf(
  raw: { run?: { shell?: string | undefined; 'working-directory'?: string | undefined } | undefined } | undefined,
): RunDefaults {
  const d: RunDefaults = {};
  if (raw?.run?.shell !== undefined) d.shell = raw.run.shell;
  if (raw?.run?.['working-directory'] !== undefined) d.workingDirectory = raw.run['working-directory'];
  return d;
}

function concurrencyOf(raw: PipelineRaw['concurrency']): ConcurrencySpec | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === 'string') return { group: raw, cancelInProgress: false };
  return { group: raw.group, cancelInProgress: raw['cancel-in-progress'] ?? false };
}

function killGraceOf(raw: number | string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  return typeof raw === 'number' ? Math.round(raw * 1000) : parseDuration(raw);
}

/** Resolves a written `retry:` with its defaults. */
export function retryOf(raw: RetryRaw | undefined): RetrySpec {
  if (!raw) return structuredClone(DEFAULT_RETRY);
  const b = raw.backoff ?? {};
  const spec: RetrySpec = {
    maxAttempts: raw['max-attempts'] ?? DEFAULT_RETRY.maxAttempts,
    on: raw.on ?? [...DEFAULT_RETRY.on],
    backoff: {
      delayMs: b.delay !== undefined ? (parseDuration(b.delay) as number) : DEFAULT_RETRY.backoff.delayMs,
      factor: b.factor ?? DEFAULT_RETRY.backoff.factor,
      maxDelayMs:
        b['max-delay'] !== undefined ? (parseDuration(b['max-delay']) as number) : DEFAULT_RETRY.backoff.maxDelayMs,
      jitter: b.jitter ?? DEFAULT_RETRY.backoff.jitter,
    },
    differentWorker: raw['different-worker'] ?? true,
  };
  if (raw['exit-codes'] !== undefined) spec.exitCodes = raw['exit-codes'];
  if (raw['max-duration'] !== undefined) spec.maxDurationMs = parseDuration(raw['max-duration']) as number;
  return spec;
}

function matrixOf(raw: unknown): MatrixSpec | string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === 'string') return raw;
  const { include, exclude, ...axes } = raw as Record<string, unknown>;
  return {
    axes: axes as MatrixSpec['axes'],
    include: (include as MatrixSpec['include'] | undefined) ?? [],
    exclude: (exclude as MatrixSpec['exclude'] | undefined) ?? [],
  };
}

function strategyOf(raw: JobRaw['strategy']): StrategySpec | undefined {
  if (!raw) return undefined;
  const s: StrategySpec = { failFast: raw['fail-fast'] ?? true };
  const m = matrixOf(raw.matrix);
  if (m !== undefined) s.matrix = m;
  if (raw['max-parallel'] !== undefined) s.maxParallel = raw['max-parallel'];
  return s;
}

function containerOf(raw: JobRaw['container']): ContainerSpec | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === 'string') return { image: raw, env: {}, volumes: [] };
  const c: ContainerSpec = { image: raw.image, env: envOf(raw.env), volumes: raw.volumes ?? [] };
  if (raw.options !== undefined) c.options = raw.options;
  if (raw.cpus !== undefined) c.cpus = raw.cpus;
  if (raw.memory !== undefined) c.memory = raw.memory;
  if (raw.network !== undefined) c.network = raw.network;
  return c;
}

function runsOnOf(raw: JobRaw['runs-on']): string[] {
  if (raw === undefined) return [];
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw)) return raw;
  const labels = raw.labels === undefined ? [] : typeof raw.labels === 'string' ? [raw.labels] : raw.labels;
  return raw.group !== undefined ? [raw.group, ...labels] : labels;
}

function timeoutOf(timeout: string | undefined, minutes: number | string | undefined): { ms?: number; expr?: string } {
  if (timeout !== undefined) return { ms: parseDuration(timeout) as number };
  if (typeof minutes === 'number') return { ms: Math.round(minutes * 60_000) };
  if (typeof minutes === 'string') return { expr: minutes };
  return {};
}

function stepOf(raw: Omit<StepRaw, 'parallel'>, index: number): StepSpec {
  const s: StepSpec = {
    index,
    with: envOf(raw.with),
    env: envOf(raw.env),
    continueOnError: raw['continue-on-error'] ?? false,
  };
  if (raw.id !== undefined) s.id = raw.id;
  if (raw.name !== undefined) s.name = raw.name;
  if (raw.if !== undefined) s.if = String(raw.if);
  if (raw.run !== undefined) s.run = raw.run;
  if (raw.uses !== undefined) s.uses = raw.uses;
  if (raw.shell !== undefined) s.shell = raw.shell;
  if (raw['working-directory'] !== undefined) s.workingDirectory = raw['working-directory'];
  const t = timeoutOf(raw.timeout, raw['timeout-minutes']);
  if (t.ms !== undefined) s.timeoutMs = t.ms;
  if (t.expr !== undefined) s.timeoutMinutesExpr = t.expr;
  if (raw.retry !== undefined) s.retry = retryOf(raw.retry);
  const kg = killGraceOf(raw['kill-grace']);
  if (kg !== undefined) s.killGraceMs = kg;
  return s;
}

function jobOf(id: string, raw: JobRaw): JobSpec {
  const t = timeoutOf(raw.timeout, raw['timeout-minutes']);
  const job: JobSpec = {
    id,
    needs: raw.needs === undefined ? [] : typeof raw.needs === 'string' ? [raw.needs] : [...raw.needs],
    runsOn: runsOnOf(raw['runs-on']),
    timeoutMs: t.ms ?? DEFAULT_JOB_TIMEOUT_MS,
    continueOnError: raw['continue-on-error'] ?? false,
    outputs: { ...(raw.outputs ?? {}) },
    env: envOf(raw.env),
    defaults: defaultsOf(raw.defaults),
    retry: retryOf(raw.retry),
    killGraceMs: killGraceOf(raw['kill-grace']) ?? DEFAULT_KILL_GRACE_MS,
    // `parallel:` groups are flattened: their steps run one after another.
    steps: (raw.steps ?? []).flatMap((s) => (s.parallel ? s.parallel : [s])).map(stepOf),
  };
  if (t.expr !== undefined) job.timeoutMinutesExpr = t.expr;
  if (raw.name !== undefined) job.name = raw.name;
  if (raw.if !== undefined) job.if = String(raw.if);
  const container = containerOf(raw.container);
  if (container) job.container = container;
  const strategy = strategyOf(raw.strategy);
  if (strategy) job.strategy = strategy;
  const conc = concurrencyOf(raw.concurrency);
  if (conc) job.concurrency = conc;
  if (raw.uses !== undefined) job.uses = raw.uses;
  return job;
}

function inputsOf(on: unknown): Record<string, InputSpec> {
  const dispatch = (on as { workflow_dispatch?: { inputs?: Record<string, Record<string, unknown>> } } | null)
    ?.workflow_dispatch;
  const out: Record<string, InputSpec> = {};
  if (!dispatch || typeof dispatch !== 'object' || !dispatch.inputs) return out;
  for (const [name, def] of Object.entries(dispatch.inputs)) {
    if (!def || typeof def !== 'object') continue;
    const i: InputSpec = { required: def.required === true };
    if (typeof def.description === 'string') i.description = def.description;
    if (['string', 'number', 'boolean'].includes(typeof def.default))
      i.default = def.default as string | number | boolean;
    if (typeof def.type === 'string') i.type = def.type;
    // A quoted default of a boolean or number input is that value, as the validator accepted it.
    if (typeof i.default === 'string' && def.type === 'boolean') i.default = i.default.toLowerCase() === 'true';
    if (typeof i.default === 'string' && def.type === 'number') i.default = Number(i.default);
    if (Array.isArray(def.options)) i.options = def.options.map(String);
    out[name] = i;
  }
  return out;
}

/** Turns a validated raw pipeline into the normalized {@link PipelineSpec}. */
export function normalizePipeline(raw: PipelineRaw): PipelineSpec {
  const jobs: Record<string, JobSpec> = {};
  for (const [id, job] of Object.entries(raw.jobs)) jobs[id] = jobOf(id, job);
  const spec: PipelineSpec = {
    inputs: inputsOf(raw.on),
    env: envOf(raw.env),
    defaults: defaultsOf(raw.defaults),
    jobs,
  };
  if (raw.name !== undefined) spec.name = raw.name;
  if (raw.on !== undefined) spec.on = raw.on;
  const conc = concurrencyOf(raw.concurrency);
  if (conc) spec.concurrency = conc;
  if (raw.timeout !== undefined) spec.timeoutMs = parseDuration(raw.timeout) as number;
  return spec;
}
