import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { type Diagnostic, PipelineInvalidError } from '../errors.js';
import { checkExpressionSyntax } from '../expr/index.js';
import { findCycle } from '../plan/dag.js';
import { normalizePipeline } from './normalize.js';
import { IGNORED_KEYS, KNOWN_KEYS, type PipelineRaw, pipelineRaw } from './schema.js';
import { didYouMean } from './suggest.js';
import type { PipelineSpec } from './types.js';

/** Options of {@link parsePipeline}. */
export interface ParseOptions {
  /** File name used in diagnostics. */
  file?: string;
  /** Names of actions registered with the engine; other `uses:` are warnings. */
  actions?: readonly string[];
  /** Largest accepted document. @default 4 MiB */
  maxBytes?: number;
  /** Deepest accepted nesting of mappings and lists. @default 64 */
  maxDepth?: number;
}

/** A parsed pipeline and the warnings found on the way. */
export interface ParseResult {
  spec: PipelineSpec;
  warnings: Diagnostic[];
}

/** Every problem of a pipeline, and the spec when there was no error. */
export interface ValidationResult {
  spec?: PipelineSpec;
  diagnostics: Diagnostic[];
}

type PathSeg = string | number;

const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_DEPTH = 64;
const MAX_ALIASES = 100;

/** Formats a path as `jobs.build.needs[1]`. */
export function formatPath(path: readonly PathSeg[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Maps YAML paths to line:column through the document's nodes. */
class Locator {
  constructor(
    private readonly contents: Node | null,
    private readonly lines: LineCounter | undefined,
    private readonly file: string | undefined,
  ) {}

  /** Position of the value at `path` (or of its key when `key` is true); falls back to the nearest ancestor. */
  at(path: readonly PathSeg[], key = false): { line: number; column: number; offset: number } {
    let node: unknown = this.contents;
    let offset = rangeStart(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        const last = i === path.length - 1;
        if (last && key) {
          node = pair.key;
        } else {
          node = pair.value ?? pair.key;
        }
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        node = item;
      } else {
        break;
      }
      offset = rangeStart(node) ?? offset;
    }
    if (!this.lines) return { line: 1, column: 1, offset };
    const pos = this.lines.linePos(offset);
    return { line: pos.line, column: pos.col, offset };
  }

  node(path: readonly PathSeg[]): unknown {
    let node: unknown = this.contents;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return undefined;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
      } else return undefined;
    }
    return node;
  }

  diag(severity: Diagnostic['severity'], path: readonly PathSeg[], message: string, key = false): Diagnostic {
    const { line, column } = this.at(path, key);
    const d: Diagnostic = { severity, line, column, path: formatPath(path), message };
    if (this.file !== undefined) d.file = this.file;
    return d;
  }

  /** Position of a character offset inside the scalar at `path`. */
  diagInScalar(path: readonly PathSeg[], valueOffset: number, message: string): Diagnostic {
    const node = this.node(path);
    let { line, column } = this.at(path);
    if (this.lines && isScalar(node) && node.range && node.source !== undefined) {
      // Plain and quoted single-line scalars map offsets directly; block scalars are
      // located by searching the value's text near the offset in the source.
      const src = node.srcToken && 'source' in node.srcToken ? String(node.srcToken.source) : undefined;
      const value = String(node.value);
      let abs: number | undefined;
      if (src !== undefined && !value.includes('\n')) {
        const lead = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' ? 1 : 0;
        abs = node.range[0] + lead + valueOffset;
      }
      if (abs !== undefined) {
        const pos = this.lines.linePos(abs);
        line = pos.line;
        column = pos.col;
      } else if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') {
        const before = value.slice(0, valueOffset).split('\n');
        line += before.length; // block content starts on the line after the indicator
        column = 1;
      }
    }
    const d: Diagnostic = { severity: 'error', line, column, path: formatPath(path), message };
    if (this.file !== undefined) d.file = this.file;
    return d;
  }
}

function rangeStart(node: unknown): number | undefined {
  const r = (node as { range?: [number, number, number] } | null)?.range;
  return r ? r[0] : undefined;
}

/** Deepest nesting of the AST, without recursion (hostile input may be very deep). */
function depthExceeds(root: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (depth > max) return true;
    if (isMap(node)) for (const p of node.items) stack.push([p.value, depth + 1]);
    else if (isSeq(node)) for (const item of node.items) stack.push([item, depth + 1]);
  }
  return false;
}

function levelOf(path: readonly PathSeg[]): keyof typeof KNOWN_KEYS | undefined {
  const n = path.length;
  if (n === 0) return 'pipeline';
  if (path[0] !== 'jobs') return path[n - 1] === 'defaults' ? 'defaults' : path[n - 1] === 'run' ? 'run' : undefined;
  if (n === 2) return 'job';
  if (n === 4 && path[2] === 'steps') return 'step';
  const last = path[n - 1];
  if (last === 'retry') return 'retry';
  if (last === 'backoff') return 'backoff';
  if (last === 'strategy') return 'strategy';
  if (last === 'defaults') return 'defaults';
  if (last === 'run') return 'run';
  if (last === 'container') return 'container';
  if (last === 'concurrency') return 'concurrency';
  return undefined;
}

function zodIssues(issues: readonly z.core.$ZodIssue[], loc: Locator, out: Diagnostic[]): void {
  for (const issue of issues) {
    const path = issue.path.filter((p): p is PathSeg => typeof p === 'string' || typeof p === 'number');
    if (issue.code === 'unrecognized_keys') {
      const level = levelOf(path);
      const known = level ? KNOWN_KEYS[level] : [];
      for (const key of issue.keys) {
        const hint = didYouMean(key, known);
        const where = level ? ` in a ${level === 'pipeline' ? 'pipeline' : level}` : '';
        const msg = `unknown key \`${key}\`${where}${hint ? `; did you mean \`${hint}\`?` : ''}${
          known.length && !hint ? ` (expected one of: ${known.join(', ')})` : ''
        }`;
        out.push(loc.diag('error', [...path, key], msg, true));
      }
      continue;
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      const field = path[path.length - 1];
      out.push(loc.diag('error', path.slice(0, -1), `missing required key \`${String(field)}\``));
      continue;
    }
    let message = issue.message.replace(/^Invalid input: /, '');
    if (issue.code === 'invalid_type') message = `${message}`;
    const got = describeValue(issue.input);
    if (got && !/received/.test(message)) message += `, got ${got}`;
    out.push(loc.diag('error', path, message));
  }
}

function describeValue(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const s = JSON.stringify(v);
  return `\`${s.length > 40 ? `${s.slice(0, 37)}...` : s}\` (${typeof v})`;
}

/** Walks every string in a JS value, with its path. */
function eachString(value: unknown, path: PathSeg[], fn: (s: string, path: PathSeg[]) => void): void {
  if (typeof value === 'string') fn(value, path);
  else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) eachString(v, [...path, i], fn);
  } else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) eachString(v, [...path, k], fn);
}

/** Checks that do not fit a schema: steps, ids, needs and the DAG, expressions, ignored keys. */
function semanticChecks(raw: PipelineRaw, loc: Locator, options: ParseOptions, out: Diagnostic[]): void {
  const jobIds = Object.keys(raw.jobs);
  const actions = new Set(options.actions ?? []);
  for (const key of IGNORED_KEYS.pipeline) {
    if (key in raw) out.push(loc.diag('warning', [key], `\`${key}\` is a GitHub key pipewright ignores`, true));
  }
  for (const [id, job] of Object.entries(raw.jobs)) {
    const jp = ['jobs', id];
    for (const key of IGNORED_KEYS.job) {
      if (key in job)
        out.push(loc.diag('warning', [...jp, key], `\`${key}\` is a GitHub key pipewright ignores`, true));
    }
    if (job.uses !== undefined) {
      out.push(
        loc.diag(
          'warning',
          [...jp, 'uses'],
          `job \`${id}\` calls a reusable workflow (\`uses: ${job.uses}\`); pipewright does not run those, the job will fail at run time`,
        ),
      );
      if (job.steps !== undefined)
        out.push(loc.diag('error', [...jp, 'steps'], 'a job with `uses` cannot have `steps`'));
    } else {
      if (job.with !== undefined || job.secrets !== undefined) {
        const k = job.with !== undefined ? 'with' : 'secrets';
        out.push(
          loc.diag('warning', [...jp, k], `\`${k}\` only applies to reusable workflow jobs (\`uses\`); ignored`, true),
        );
      }
      if (job.steps === undefined || job.steps.length === 0) {
        out.push(
          loc.diag(
            'error',
            jp,
            `job \`${id}\` has no steps; add \`steps:\` with at least one \`run\` or \`uses\` step`,
          ),
        );
      }
    }
    const seen = new Map<string, number>();
    (job.steps ?? []).forEach((step, i) => {
      const sp = [...jp, 'steps', i];
      if (step.parallel !== undefined) {
        if (step.run !== undefined || step.uses !== undefined)
          out.push(loc.diag('error', [...sp, 'parallel'], 'a `parallel` group cannot also have `run` or `uses`', true));
        out.push(
          loc.diag(
            'warning',
            [...sp, 'parallel'],
            'pipewright runs the steps of a `parallel` group one after another',
            true,
          ),
        );
        step.parallel.forEach((p, k) => {
          if (p.run === undefined && p.uses === undefined)
            out.push(
              loc.diag(
                'error',
                [...sp, 'parallel', k],
                'a step needs `run` (a script) or `uses` (a registered action)',
              ),
            );
          if (p.id !== undefined) {
            if (seen.has(p.id))
              out.push(loc.diag('error', [...sp, 'parallel', k, 'id'], `duplicate step id \`${p.id}\``));
            else seen.set(p.id, i);
          }
        });
        return;
      }
      if (step.run === undefined && step.uses === undefined) {
        out.push(loc.diag('error', sp, 'a step needs `run` (a script) or `uses` (a registered action)'));
      } else if (step.run !== undefined && step.uses !== undefined) {
        out.push(loc.diag('error', [...sp, 'uses'], 'a step has either `run` or `uses`, not both', true));
      }
      if (step.uses !== undefined && !actions.has(step.uses)) {
        out.push(
          loc.diag(
            'warning',
            [...sp, 'uses'],
            `action \`${step.uses}\` is not registered; the step will fail at run time unless the engine registers it (engine.registerAction)`,
          ),
        );
      }
      if (step.id !== undefined) {
        const first = seen.get(step.id);
        if (first !== undefined) {
          out.push(
            loc.diag(
              'error',
              [...sp, 'id'],
              `duplicate step id \`${step.id}\` (also used by step ${first + 1} of job \`${id}\`)`,
            ),
          );
        } else seen.set(step.id, i);
      }
    });
    const needs = job.needs === undefined ? [] : typeof job.needs === 'string' ? [job.needs] : job.needs;
    const needsPath = (i: number): PathSeg[] =>
      typeof job.needs === 'string' ? [...jp, 'needs'] : [...jp, 'needs', i];
    needs.forEach((n, i) => {
      if (n === id) out.push(loc.diag('error', needsPath(i), `job \`${id}\` needs itself`));
      else if (!(n in raw.jobs)) {
        const hint = didYouMean(n, jobIds);
        out.push(
          loc.diag(
            'error',
            needsPath(i),
            `job \`${id}\` needs unknown job \`${n}\`${hint ? `; did you mean \`${hint}\`?` : ` (jobs: ${jobIds.join(', ')})`}`,
          ),
        );
      }
    });
  }
  const graph = new Map<string, string[]>();
  for (const [id, job] of Object.entries(raw.jobs)) {
    const needs = job.needs === undefined ? [] : typeof job.needs === 'string' ? [job.needs] : job.needs;
    graph.set(
      id,
      needs.filter((n) => n !== id && n in raw.jobs),
    );
  }
  const cycle = findCycle(graph);
  if (cycle) {
    const [from, to] = cycle as [string, string];
    const job = raw.jobs[from];
    const i = Array.isArray(job?.needs) ? job.needs.indexOf(to) : -1;
    out.push(
      loc.diag(
        'error',
        i >= 0 ? ['jobs', from, 'needs', i] : ['jobs', from, 'needs'],
        `dependency cycle: ${cycle.join(' -> ')}`,
      ),
    );
  }
  // Expression syntax in every string value; `if:` values are expressions even without ${{ }}.
  eachString(raw, [], (s, path) => {
    if (path[0] === 'on') return;
    const last = path[path.length - 1];
    const allowBare = last === 'if';
    for (const problem of checkExpressionSyntax(s, { allowBare })) {
      out.push(loc.diagInScalar(path, problem.offset, `invalid expression: ${problem.message}`));
    }
  });
}

function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return ds.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Validates YAML text; never throws. Returns every error and warning, and the spec when valid. */
export function validatePipeline(text: string, options: ParseOptions = {}): ValidationResult {
  const file = options.file;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const bytes = Buffer.byteLength(text, 'utf8');
  const base = file === undefined ? {} : { file };
  if (bytes > maxBytes) {
    return {
      diagnostics: [
        {
          ...base,
          severity: 'error',
          line: 1,
          column: 1,
          path: '',
          message: `pipeline is ${bytes} bytes; the limit is ${maxBytes} bytes (split it, or raise maxBytes)`,
        },
      ],
    };
  }
  const lineCounter = new LineCounter();
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    return {
      diagnostics: [
        { ...base, severity: 'error', line: 1, column: 1, path: '', message: `YAML error: ${String(err)}` },
      ],
    };
  }
  const diagnostics: Diagnostic[] = [];
  for (const e of doc.errors) {
    const pos = lineCounter.linePos(e.pos[0]);
    const msg = e.message.split('\n')[0] ?? e.message;
    const friendly = /Map keys must be unique/.test(msg) ? `duplicate key: ${msg}` : msg;
    diagnostics.push({
      ...base,
      severity: 'error',
      line: pos.line,
      column: pos.col,
      path: '',
      message: `YAML syntax: ${friendly}`,
    });
  }
  if (diagnostics.length) return { diagnostics: sortDiagnostics(diagnostics) };
  const loc = new Locator(doc.contents as Node | null, lineCounter, file);
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (depthExceeds(doc.contents, maxDepth)) {
    return { diagnostics: [loc.diag('error', [], `pipeline nests deeper than ${maxDepth} levels; flatten it`)] };
  }
  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return { diagnostics: [loc.diag('error', [], `YAML error: ${msg} (too many aliases?)`)] };
  }
  return validateValue(js, loc, options);
}

function validateValue(js: unknown, loc: Locator, options: ParseOptions): ValidationResult {
  const diagnostics: Diagnostic[] = [];
  if (js === null || typeof js !== 'object' || Array.isArray(js)) {
    diagnostics.push(loc.diag('error', [], 'a pipeline is a mapping with at least a `jobs:` key'));
    return { diagnostics };
  }
  const parsed = pipelineRaw.safeParse(js);
  if (!parsed.success) {
    zodIssues(parsed.error.issues, loc, diagnostics);
    // Semantic checks still help when the structure is mostly right.
    const partial = js as PipelineRaw;
    if (partial.jobs && typeof partial.jobs === 'object' && !Array.isArray(partial.jobs)) {
      try {
        semanticChecks(sanitizeForChecks(partial), loc, options, diagnostics);
      } catch {
        // the schema errors already describe the problem
      }
    }
    return { diagnostics: sortDiagnostics(dedupe(diagnostics)) };
  }
  semanticChecks(parsed.data, loc, options, diagnostics);
  if (diagnostics.some((d) => d.severity === 'error')) return { diagnostics: sortDiagnostics(dedupe(diagnostics)) };
  const spec = normalizePipeline(parsed.data);
  if (options.file !== undefined) spec.file = options.file;
  return { spec, diagnostics: sortDiagnostics(diagnostics) };
}

/** Keeps only well-shaped jobs/steps so semantic checks can run beside schema errors. */
function sanitizeForChecks(raw: PipelineRaw): PipelineRaw {
  const jobs: PipelineRaw['jobs'] = {};
  for (const [id, job] of Object.entries(raw.jobs as Record<string, unknown>)) {
    if (!job || typeof job !== 'object' || Array.isArray(job)) continue;
    const j = { ...(job as Record<string, unknown>) };
    if (!(typeof j.needs === 'string' || (Array.isArray(j.needs) && j.needs.every((n) => typeof n === 'string'))))
      delete j.needs;
    if (!Array.isArray(j.steps)) delete j.steps;
    else j.steps = (j.steps as unknown[]).map((s) => (s && typeof s === 'object' ? s : {}));
    jobs[id] = j as PipelineRaw['jobs'][string];
  }
  return { ...raw, jobs };
}

function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.line}:${d.column}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Parses and validates a pipeline written in YAML.
 * @throws PipelineInvalidError (code `PIPELINE_INVALID`, or `PIPELINE_CYCLE` when the only problem is a cycle) with every diagnostic.
 * @example
 * const { spec, warnings } = parsePipeline(readFileSync('ci.yml', 'utf8'), { file: 'ci.yml' });
 */
export function parsePipeline(text: string, options: ParseOptions = {}): ParseResult {
  const result = validatePipeline(text, options);
  return unwrap(result);
}

function unwrap(result: ValidationResult): ParseResult {
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (!result.spec || errors.length) {
    const onlyCycle = errors.length > 0 && errors.every((d) => d.message.startsWith('dependency cycle'));
    throw new PipelineInvalidError(result.diagnostics, onlyCycle ? 'PIPELINE_CYCLE' : 'PIPELINE_INVALID');
  }
  return { spec: result.spec, warnings: result.diagnostics.filter((d) => d.severity === 'warning') };
}

/** The typed object form of a pipeline: the same keys as the YAML (GitHub Actions syntax). */
export type PipelineInput = z.input<typeof pipelineRaw>;

/**
 * Validates a pipeline given as a JavaScript object (no YAML), with the same rules as {@link parsePipeline}.
 * @example
 * const spec = definePipeline({ jobs: { hello: { 'runs-on': 'local', steps: [{ run: 'echo hi' }] } } });
 */
export function definePipeline(input: PipelineInput, options: Omit<ParseOptions, 'maxBytes'> = {}): PipelineSpec {
  const loc = new Locator(null, undefined, options.file ?? '<object>');
  return unwrap(validateValue(input, loc, { ...options, file: options.file ?? '<object>' })).spec;
}
