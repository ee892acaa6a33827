import {
  Composer,
  type CST,
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  Parser,
  type Scalar,
  type YAMLMap,
} from 'yaml';
import type { z } from 'zod';
import { type Diagnostic, PipelineInvalidError, PipewrightError } from '../errors.js';
import { checkExpressionSyntax, referencedSecrets } from '../expr/index.js';
import { parseExpression } from '../expr/parse.js';
import { scanTemplate, wholeExpression } from '../expr/scan.js';
import { cycleMessage, findCycles } from '../plan/dag.js';
import { expandJob, isDynamicMatrix } from '../plan/plan.js';
import { shellTemplate } from '../steps/shell.js';
import { imageReferenceProblem } from './image-ref.js';
import { normalizePipeline } from './normalize.js';
import { IGNORED_KEYS, KNOWN_KEYS, type PipelineRaw, pipelineRaw } from './schema.js';
import { didYouMean } from './suggest.js';
import type { JobSpec, PipelineSpec } from './types.js';

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

/** The largest pipeline file the parser reads by default (`maxBytes`). */
export const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_DEPTH = 64;
const MAX_ALIASES = 100;
/** Past this many errors (or warnings) a file is garbage, not a pipeline; more would only cost time and memory. */
const MAX_DIAGNOSTICS = 500;

/** Collects diagnostics, keeping at most MAX_DIAGNOSTICS errors and as many warnings, counting the rest. */
class Sink {
  readonly items: Diagnostic[] = [];
  errors = 0;
  warnings = 0;

  push(d: Diagnostic): void {
    const n = d.severity === 'error' ? ++this.errors : ++this.warnings;
    if (n <= MAX_DIAGNOSTICS) this.items.push(d);
  }

  /** Pushes `make()` while there is room; past the cap only counts, so a huge list costs no diagnostics. */
  pushLazy(severity: Diagnostic['severity'], make: () => Diagnostic): void {
    const n = severity === 'error' ? this.errors + 1 : this.warnings + 1;
    if (n <= MAX_DIAGNOSTICS) this.push(make());
    else if (severity === 'error') this.errors = n;
    else this.warnings = n;
  }

  /** True once enough errors are collected; checks may stop early. */
  get full(): boolean {
    return this.errors >= MAX_DIAGNOSTICS;
  }

  /** Sorted, deduplicated, with a note for what was left out. */
  finish(): Diagnostic[] {
    const out = sortDiagnostics(dedupe(this.items));
    const note = (severity: Diagnostic['severity'], n: number, what: string): void => {
      if (n > MAX_DIAGNOSTICS)
        out.push({
          severity,
          line: 1,
          column: 1,
          path: '',
          message: `... and ${n - MAX_DIAGNOSTICS} more ${what} not shown`,
        });
    };
    note('error', this.errors, 'errors');
    note('warning', this.warnings, 'warnings');
    return out;
  }
}

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
    private readonly text = '',
  ) {}

  // Indexed once per mapping: a linear search per diagnostic is quadratic on a file with 100,000 keys.
  private readonly index = new WeakMap<object, Map<string, Pair<unknown, unknown>>>();

  private pair(map: YAMLMap<unknown, unknown>, seg: PathSeg): Pair<unknown, unknown> | undefined {
    let byKey = this.index.get(map);
    if (!byKey) {
      byKey = new Map();
      for (const p of map.items) {
        if (isPair(p) && isScalar(p.key) && !byKey.has(String(p.key.value))) byKey.set(String(p.key.value), p);
      }
      this.index.set(map, byKey);
    }
    return byKey.get(String(seg));
  }

  /** Position of the value at `path` (or of its key when `key` is true); falls back to the nearest ancestor. */
  at(path: readonly PathSeg[], key = false): { line: number; column: number; offset: number } {
    let node: unknown = this.contents;
    let offset = rangeStart(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isMap(node)) {
        const pair = this.pair(node, seg as PathSeg);
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
        const pair = this.pair(node, seg);
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
    if (this.lines && isScalar(node) && node.range) {
      const abs = scalarOffset(this.text, node.range, node.type, String(node.value), valueOffset);
      if (abs !== undefined) {
        const pos = this.lines.linePos(abs);
        line = pos.line;
        column = pos.col;
      }
    }
    const d: Diagnostic = { severity: 'error', line, column, path: formatPath(path), message };
    if (this.file !== undefined) d.file = this.file;
    return d;
  }
}

/**
 * Maps an offset in a scalar's value to an offset in the source. Exact when the source spells the
 * value literally (plain, quoted without escapes, literal block); otherwise the nearest occurrence
 * of the text at that offset, else undefined (callers fall back to the scalar's start).
 */
function scalarOffset(
  text: string,
  range: readonly [number, number, number],
  type: Scalar['type'],
  value: string,
  valueOffset: number,
): number | undefined {
  const raw = text.slice(range[0], range[1]);
  if (type === 'PLAIN' && raw === value) return range[0] + valueOffset;
  if ((type === 'QUOTE_DOUBLE' || type === 'QUOTE_SINGLE') && raw.slice(1, -1) === value)
    return range[0] + 1 + valueOffset;
  if (type === 'BLOCK_LITERAL') {
    // Content lines follow the header line, each indented by the block's indentation.
    const lines = raw.split('\n');
    const indent =
      lines
        .slice(1)
        .find((l) => l.trim() !== '')
        ?.match(/^ */)?.[0].length ?? 0;
    const before = value.slice(0, valueOffset).split('\n');
    let abs = range[0] + (lines[0]?.length ?? 0) + 1;
    for (let i = 1; i < before.length; i++) abs += (lines[i]?.length ?? 0) + 1;
    return abs + indent + (before[before.length - 1]?.length ?? 0);
  }
  // Escapes and folding only ever make the source longer than the value, so the text sits at or
  // after `valueOffset` in it: searching from there keeps two equal snippets (the same expression
  // used twice) at their own positions instead of both at the first.
  for (let len = Math.min(40, value.length - valueOffset); len >= 3; len = Math.floor(len / 2)) {
    const snippet = value.slice(valueOffset, valueOffset + len);
    let at = raw.indexOf(snippet, Math.min(valueOffset, raw.length));
    if (at < 0) at = raw.indexOf(snippet);
    if (at >= 0) return range[0] + at;
  }
  return undefined;
}

function rangeStart(node: unknown): number | undefined {
  const r = (node as { range?: [number, number, number] } | null)?.range;
  return r ? r[0] : undefined;
}

/**
 * The first collection nested deeper than `max` in the concrete syntax tree, without recursion.
 * This runs before yaml composes the document because its composer recurses: a few hundred levels
 * overflow the stack (sometimes fatally, inside V8's RegExp compiler) and deeply nested explicit
 * keys (`? ? ? ...`) take minutes.
 */
function tooDeep(tokens: readonly CST.Token[], max: number): { offset: number } | undefined {
  const stack: Array<[unknown, number]> = tokens.map((t) => [t, 0]);
  while (stack.length) {
    const [tok, depth] = stack.pop() as [unknown, number];
    if (!tok || typeof tok !== 'object') continue;
    const t = tok as {
      type?: string;
      offset?: number;
      value?: unknown;
      items?: Array<{ key?: unknown; value?: unknown }>;
    };
    if (t.type === 'document') stack.push([t.value, depth]);
    else if (t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection') {
      if (depth + 1 > max) return { offset: t.offset ?? 0 };
      for (const item of t.items ?? []) stack.push([item.key, depth + 1], [item.value, depth + 1]);
    }
  }
  return undefined;
}

/**
 * Keys repeated within one mapping (scalar keys only), and `__proto__` keys (loading them
 * into objects would silently drop them), without recursion.
 */
function duplicateKeys(root: unknown): Array<{ key: string; at: number }> {
  const found: Array<{ key: string; at: number }> = [];
  const stack: unknown[] = [root];
  while (stack.length) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const p of node.items) {
        if (isScalar(p.key)) {
          const k = String(p.key.value);
          if (seen.has(k) || k === '__proto__') found.push({ key: k, at: p.key.range?.[0] ?? 0 });
          seen.add(k);
        } else stack.push(p.key);
        stack.push(p.value);
      }
    } else if (isSeq(node)) for (const item of node.items) stack.push(item);
  }
  return found;
}

function levelOf(path: readonly PathSeg[]): keyof typeof KNOWN_KEYS | undefined {
  const n = path.length;
  if (n === 0) return 'pipeline';
  if (path[0] !== 'jobs') {
    const last = path[n - 1];
    return last === 'defaults' || last === 'run' || last === 'concurrency' ? last : undefined;
  }
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

function zodIssues(issues: readonly z.core.$ZodIssue[], loc: Locator, out: Sink): void {
  for (const issue of issues) {
    if (out.full) return;
    const path = issue.path.filter((p): p is PathSeg => typeof p === 'string' || typeof p === 'number');
    if (issue.code === 'invalid_union') {
      // When the value has the shape of exactly one alternative (say a mapping for `container`),
      // that alternative's own problems (`missing required key image`) say more than the union's summary.
      const fits = issue.errors.filter(
        (branch) => branch.length > 0 && !branch.some((i) => i.path.length === 0 && i.code === 'invalid_type'),
      );
      const [only] = fits;
      if (fits.length === 1 && only) {
        zodIssues(
          only.map((i) => ({ ...i, path: [...issue.path, ...i.path] }) as z.core.$ZodIssue),
          loc,
          out,
        );
        continue;
      }
    }
    if (issue.code === 'unrecognized_keys') {
      const level = levelOf(path);
      const known = level ? KNOWN_KEYS[level] : [];
      for (const key of issue.keys) {
        if (out.full) {
          out.errors += 1;
          continue;
        }
        const hint = didYouMean(key, known);
        const where = level ? ` in a ${level === 'pipeline' ? 'pipeline' : level}` : '';
        const msg = `unknown key \`${key}\`${where}${hint ? `; did you mean \`${hint}\`?` : ''}${
          known.length && !hint ? ` (expected one of: ${known.join(', ')})` : ''
        }`;
        out.push(loc.diag('error', [...path, key], msg, true));
      }
      continue;
    }
    // `input` is only set because validateValue parses with `reportInput`; undefined means the key is absent.
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      const field = path[path.length - 1];
      out.push(loc.diag('error', path.slice(0, -1), `missing required key \`${String(field)}\``));
      continue;
    }
    let message = issue.message.replace(/^Invalid input: /, '');
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

/** GitHub's workflow trigger events (docs: "Events that trigger workflows"). */
const EVENTS = [
  'branch_protection_rule',
  'check_run',
  'check_suite',
  'create',
  'delete',
  'deployment',
  'deployment_status',
  'discussion',
  'discussion_comment',
  'fork',
  'gollum',
  'image_version',
  'issue_comment',
  'issues',
  'label',
  'merge_group',
  'milestone',
  'page_build',
  'project',
  'project_card',
  'project_column',
  'public',
  'pull_request',
  'pull_request_comment',
  'pull_request_review',
  'pull_request_review_comment',
  'pull_request_target',
  'push',
  'registry_package',
  'release',
  'repository_dispatch',
  'schedule',
  'status',
  'watch',
  'workflow_call',
  'workflow_dispatch',
  'workflow_run',
];

/** An `on:` event GitHub does not know is most likely a typo: a warning, since `run` ignores triggers. */
function eventChecks(on: unknown, loc: Locator, out: Sink): void {
  const names: Array<{ name: string; path: PathSeg[] }> = [];
  if (typeof on === 'string') names.push({ name: on, path: ['on'] });
  else if (Array.isArray(on)) {
    on.forEach((e, i) => {
      if (typeof e === 'string') names.push({ name: e, path: ['on', i] });
    });
  } else if (typeof on === 'object' && on !== null)
    for (const name of Object.keys(on)) names.push({ name, path: ['on', name] });
  for (const { name, path } of names) {
    if (EVENTS.includes(name)) continue;
    const hint = didYouMean(name, EVENTS);
    out.push(
      loc.diag(
        'warning',
        path,
        `\`${name}\` is not a GitHub event${hint ? `; did you mean \`${hint}\`?` : ''}`,
        typeof path[path.length - 1] === 'string' && path.length > 1,
      ),
    );
  }
}

const INPUT_KEYS = ['description', 'required', 'default', 'type', 'options'];
const INPUT_TYPES = ['string', 'boolean', 'number', 'choice', 'environment'];

/**
 * `on.workflow_dispatch.inputs`: the engine applies them at submit, so they are checked as
 * GitHub checks them (known keys and types, `choice` with options, a default of the type).
 * Trigger filters (push branches, paths...) are for webhook ingestion and stay unchecked.
 */
function inputChecks(on: unknown, loc: Locator, out: Sink): void {
  const dispatch = (on as { workflow_dispatch?: unknown } | null | undefined)?.workflow_dispatch;
  const inputs = (dispatch as { inputs?: unknown } | null | undefined)?.inputs;
  if (typeof on !== 'object' || on === null || typeof inputs !== 'object' || inputs === null) return;
  for (const [name, def] of Object.entries(inputs as Record<string, unknown>)) {
    const at = ['on', 'workflow_dispatch', 'inputs', name];
    if (def === null || typeof def !== 'object' || Array.isArray(def)) {
      out.push(
        loc.diag('error', at, `input \`${name}\` must be a mapping (description, required, default, type, options)`),
      );
      continue;
    }
    const d = def as Record<string, unknown>;
    for (const key of Object.keys(d)) {
      if (INPUT_KEYS.includes(key)) continue;
      const hint = didYouMean(key, INPUT_KEYS);
      out.push(
        loc.diag(
          'error',
          [...at, key],
          `unknown key \`${key}\` in an input${hint ? `; did you mean \`${hint}\`?` : ` (expected one of: ${INPUT_KEYS.join(', ')})`}`,
          true,
        ),
      );
    }
    const type = d.type ?? 'string';
    if (typeof type !== 'string' || !INPUT_TYPES.includes(type)) {
      const hint = typeof type === 'string' ? didYouMean(type, INPUT_TYPES) : undefined;
      out.push(
        loc.diag(
          'error',
          [...at, 'type'],
          `input type must be one of ${INPUT_TYPES.join(', ')}${hint ? `; did you mean \`${hint}\`?` : ''}`,
        ),
      );
      continue;
    }
    if (d.required !== undefined && typeof d.required !== 'boolean') {
      out.push(loc.diag('error', [...at, 'required'], 'expected true or false'));
    }
    const options = d.options;
    if (type === 'choice' && (!Array.isArray(options) || options.length === 0)) {
      out.push(loc.diag('error', at, `input \`${name}\` of type choice needs a non-empty \`options\` list`));
    }
    if (d.default === undefined) continue;
    const fits =
      type === 'boolean'
        ? typeof d.default === 'boolean' || (typeof d.default === 'string' && /^(true|false)$/i.test(d.default))
        : type === 'number'
          ? typeof d.default === 'number' ||
            (typeof d.default === 'string' && d.default.trim() !== '' && Number.isFinite(Number(d.default)))
          : type === 'choice'
            ? Array.isArray(options) && options.map(String).includes(String(d.default))
            : ['string', 'number', 'boolean'].includes(typeof d.default);
    if (!fits) {
      out.push(
        loc.diag(
          'error',
          [...at, 'default'],
          type === 'choice' ? 'the default must be one of the options' : `the default must be a ${type}`,
        ),
      );
    }
  }
}

/** Checks that do not fit a schema: steps, ids, needs and the DAG, expressions, ignored keys. */
function semanticChecks(raw: PipelineRaw, loc: Locator, options: ParseOptions, out: Sink): void {
  const jobIds = Object.keys(raw.jobs);
  const actions = new Set(options.actions ?? []);
  eventChecks(raw.on, loc, out);
  inputChecks(raw.on, loc, out);
  for (const key of IGNORED_KEYS.pipeline) {
    if (key in raw) out.push(loc.diag('warning', [key], `\`${key}\` is a GitHub key pipewright ignores`, true));
  }
  for (const [id, job] of Object.entries(raw.jobs)) {
    if (out.full) return;
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
      if (job.steps === undefined || (Array.isArray(job.steps) && job.steps.length === 0)) {
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
    // Beside schema errors the raw value may hold anything: only well-shaped steps are checked here.
    (Array.isArray(job.steps) ? job.steps : []).forEach((step, i) => {
      if (!step || typeof step !== 'object' || Array.isArray(step)) return;
      const sp = [...jp, 'steps', i];
      if (Array.isArray(step.parallel)) {
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
          if (!p || typeof p !== 'object') return;
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
      // A job that needs itself is the shortest cycle, reported with the others below.
      if (n !== id && !Object.hasOwn(raw.jobs, n)) {
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
      needs.filter((n) => Object.hasOwn(raw.jobs, n)),
    );
  }
  // Every separate cycle, not only the first: each is an error of its own.
  for (const cycle of findCycles(graph)) {
    const [from, to] = cycle as [string, string];
    const job = raw.jobs[from];
    const i = Array.isArray(job?.needs) ? job.needs.indexOf(to) : -1;
    out.push(loc.diag('error', i >= 0 ? ['jobs', from, 'needs', i] : ['jobs', from, 'needs'], cycleMessage(cycle)));
  }
  // Expression syntax in every string value; `if:` values are expressions even without ${{ }}.
  eachString(raw, [], (s, path) => {
    if (path[0] === 'on' || out.full) return;
    const last = path[path.length - 1];
    const allowBare = last === 'if';
    // A container image that is no image reference (GitHub refuses it too); `services:` are ignored.
    if (
      path[0] === 'jobs' &&
      path[2] === 'container' &&
      (path.length === 3 || (path.length === 4 && last === 'image')) &&
      !s.includes('${{')
    ) {
      const problem = imageReferenceProblem(s);
      if (problem !== undefined) out.push(loc.diag('error', path, problem));
    }
    // A shell that can never run fails every run of the step: say so now (GitHub refuses the file too).
    if (last === 'shell' && isShellPath(path) && !s.includes('${{')) {
      try {
        shellTemplate(s);
      } catch (err) {
        // `cmd` is a GitHub shell (Windows runners): valid in the file, it only cannot run here.
        const windowsOnly = s.trim() === 'cmd';
        out.push(
          loc.diag(
            windowsOnly ? 'warning' : 'error',
            path,
            windowsOnly ? '`cmd` is a Windows shell; this step fails when pipewright runs it' : (err as Error).message,
          ),
        );
      }
    }
    // `if: >` / `if: |` with `${{ }}` inside: GitHub keeps the block's newline, so the value is text
    // around an expression, a non-empty string, always true there. pipewright evaluates what the
    // author meant; the file behaves differently on GitHub, which is worth a word.
    if (allowBare && s !== s.trim() && wholeExpression(s) !== undefined) {
      out.push(
        loc.diag(
          'warning',
          path,
          '`if:` has whitespace around its ${{ }} (a `>` or `|` block adds a newline): GitHub takes that for text, always true; pipewright evaluates the expression. Write it on one line to behave the same on both',
        ),
      );
    }
    for (const problem of checkExpressionSyntax(s, { allowBare })) {
      out.push(loc.diagInScalar(path, problem.offset, `invalid expression: ${problem.message}`));
    }
    // GitHub refuses the whole file when a context is used where it is not available; pipewright
    // evaluates it (secrets aside, below), so the file behaves differently on the two: say so.
    // One parse of the string's expressions for both checks below.
    const names = allowBare || s.includes('${{') ? namesUsed(s, allowBare) : undefined;
    const allowed = contextsAllowedAt(path);
    if (allowed !== undefined && names !== undefined) {
      const used = [...names.contexts].filter((c) => !allowed.includes(c) && c !== 'secrets');
      if (used.length > 0) {
        out.push(
          loc.diag(
            'warning',
            path,
            `${used.map((c) => `\`${c}\``).join(', ')} ${used.length > 1 ? 'are' : 'is'} not available here on GitHub, which refuses the file (available: ${allowed.join(', ')}); pipewright evaluates it`,
          ),
        );
      }
    }
    if (names?.functions.has('hashfiles')) {
      out.push(
        loc.diag(
          'warning',
          path,
          '`hashFiles()` is not supported: evaluating it fails the step or job (pipewright evaluates expressions in the engine, away from the workspace files)',
        ),
      );
    }
    // The engine decides these before any secret is resolved (secrets are fetched per attempt),
    // so `secrets` there would read as empty and silently change the outcome; GitHub rejects it.
    const at = secretsOutsideSteps(path);
    if (at !== undefined && s.includes('secrets') && referencedSecrets(s).length > 0) {
      out.push(
        loc.diagInScalar(
          path,
          Math.max(0, s.indexOf('secrets')),
          `\`secrets\` is not available in ${at} (GitHub allows it in steps, their env and with, and job env/outputs); put the secret in an \`env:\` and test \`env.NAME\` in a step's \`if:\``,
        ),
      );
    }
  });
}

/** `defaults.run.shell` (run or job level) or a step's `shell` — not an env, output or action input named `shell`. */
function isShellPath(path: readonly PathSeg[]): boolean {
  const n = path.length;
  if (path[n - 2] === 'run' && path[n - 3] === 'defaults') return n === 3 || (n === 5 && path[0] === 'jobs');
  return n === 5 && path[0] === 'jobs' && path[2] === 'steps';
}

/** Job-level keys the scheduler evaluates (and the run-level `concurrency`): where `secrets` cannot be read. */
const SCHEDULER_KEYS = new Set(['if', 'strategy', 'timeout-minutes', 'continue-on-error', 'concurrency', 'runs-on']);

function secretsOutsideSteps(path: readonly PathSeg[]): string | undefined {
  if (path[0] === 'concurrency') return 'the run-level `concurrency`';
  if (path[0] === 'jobs' && path.length >= 3 && SCHEDULER_KEYS.has(String(path[2]))) {
    return `\`jobs.${String(path[1])}.${String(path[2])}\``;
  }
  return undefined;
}

const STEP_CONTEXTS = [
  'github',
  'needs',
  'strategy',
  'matrix',
  'job',
  'runner',
  'env',
  'vars',
  'secrets',
  'steps',
  'inputs',
];
const JOB_MATRIX_CONTEXTS = ['github', 'needs', 'strategy', 'matrix', 'vars', 'inputs'];

/**
 * The contexts GitHub makes available at a place of the file (its "context availability"
 * table), or undefined where pipewright does not check.
 */
function contextsAllowedAt(path: readonly PathSeg[]): readonly string[] | undefined {
  const [top, , key, sub] = path;
  if (top === 'env') return ['github', 'secrets', 'inputs', 'vars'];
  if (top === 'concurrency' || top === 'run-name') return ['github', 'inputs', 'vars'];
  if (top !== 'jobs' || path.length < 3) return undefined;
  switch (key) {
    case 'if':
      return ['github', 'needs', 'vars', 'inputs'];
    case 'strategy':
      return ['github', 'needs', 'vars', 'inputs'];
    case 'env':
      return ['github', 'needs', 'strategy', 'matrix', 'vars', 'secrets', 'inputs'];
    case 'outputs':
      return STEP_CONTEXTS;
    case 'defaults':
      return [...JOB_MATRIX_CONTEXTS, 'env'];
    case 'container':
      return sub === 'env'
        ? STEP_CONTEXTS
        : sub === 'credentials'
          ? [...JOB_MATRIX_CONTEXTS, 'env']
          : JOB_MATRIX_CONTEXTS;
    case 'name':
    case 'runs-on':
    case 'concurrency':
    case 'timeout-minutes':
    case 'timeout':
    case 'continue-on-error':
    case 'kill-grace':
    case 'retry':
      return JOB_MATRIX_CONTEXTS;
    case 'steps':
      return STEP_CONTEXTS;
    default:
      return undefined;
  }
}

/**
 * The contexts and functions (lower case) the expressions of `text` use, from their syntax trees
 * (string literals and properties are not reads); `bare`: text without `${{ }}` is one
 * expression. An expression that does not parse uses nothing here: its syntax error is reported
 * on its own.
 */
function namesUsed(text: string, bare: boolean): { contexts: Set<string>; functions: Set<string> } {
  const { spans } = scanTemplate(text);
  const bodies =
    spans.length > 0
      ? spans.map((sp) => text.slice(sp.innerStart, sp.innerEnd))
      : bare && !text.includes('${{')
        ? [text]
        : [];
  const contexts = new Set<string>();
  const functions = new Set<string>();
  for (const body of bodies) {
    try {
      const parsed = parseExpression(body);
      for (const c of parsed.contexts) contexts.add(c);
      for (const f of parsed.functions) functions.add(f);
    } catch {
      // reported by checkExpressionSyntax
    }
  }
  return { contexts, functions };
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
  const lineCounter = new LineCounter();
  /** An error at a character offset of the text, before the document has a structure to point into. */
  const errorAt = (offset: number, message: string): Diagnostic => {
    const pos = offset === 0 ? { line: 1, col: 1 } : lineCounter.linePos(offset);
    return { ...base, severity: 'error', line: pos.line, column: pos.col, path: '', message };
  };
  /** The whole result when the text cannot be read as one YAML document: one error at `offset`. */
  const fatal = (message: string, offset = 0): ValidationResult => ({ diagnostics: [errorAt(offset, message)] });
  if (bytes > maxBytes) {
    return fatal(`pipeline is ${bytes} bytes; the limit is ${maxBytes} bytes (split it, or raise maxBytes)`);
  }
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  let doc: Document.Parsed | undefined;
  try {
    const tokens = Array.from(new Parser(lineCounter.addNewLine).parse(text));
    const deep = tooDeep(tokens, maxDepth);
    if (deep) {
      return fatal(`pipeline nests deeper than ${maxDepth} levels of mappings and lists; flatten it`, deep.offset);
    }
    // yaml's own uniqueKeys check is quadratic (7 s for 40,000 keys); duplicateKeys() does it with a Set.
    const composer = new Composer({ uniqueKeys: false });
    for (const d of composer.compose(tokens, true, text.length)) {
      if (doc) {
        return fatal(
          'YAML syntax: a pipeline file holds one YAML document; remove the second `---` document',
          d.range[0],
        );
      }
      doc = d;
    }
  } catch (err) {
    return fatal(`YAML error: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!doc) return fatal('the pipeline is empty; add a `jobs:` key');
  // Capped like every other check, with the same "... and N more" note.
  const syntax = new Sink();
  for (const e of doc.errors) {
    syntax.pushLazy('error', () => errorAt(e.pos[0], `YAML syntax: ${e.message.split('\n')[0] ?? e.message}`));
  }
  if (syntax.errors === 0) {
    for (const offset of duplicateKeys(doc.contents)) {
      syntax.pushLazy('error', () =>
        errorAt(
          offset.at,
          offset.key === '__proto__'
            ? '`__proto__` cannot be a key (a job id, env name, input, output or matrix axis); rename it'
            : `duplicate key \`${offset.key}\`: each key may appear once in a mapping`,
        ),
      );
    }
  }
  if (syntax.errors > 0) return { diagnostics: syntax.finish() };
  const loc = new Locator(doc.contents as Node | null, lineCounter, file, text);
  let js: unknown;
  try {
    js = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const message = /alias/i.test(msg)
      ? `YAML aliases expand too much (limit ${MAX_ALIASES} alias expansions); write the values out or use fewer \`*alias\` references`
      : `YAML error: ${msg}`;
    return { diagnostics: [loc.diag('error', [], message)] };
  }
  return validateValue(js, loc, options);
}

function validateValue(js: unknown, loc: Locator, options: ParseOptions): ValidationResult {
  const out = new Sink();
  if (js === null || typeof js !== 'object' || Array.isArray(js)) {
    out.push(loc.diag('error', [], 'a pipeline is a mapping with at least a `jobs:` key'));
    return { diagnostics: out.finish() };
  }
  const parsed = pipelineRaw.safeParse(js, { reportInput: true });
  if (!parsed.success) {
    zodIssues(parsed.error.issues, loc, out);
    // Semantic checks still help when the structure is mostly right.
    const partial = js as PipelineRaw;
    if (partial.jobs && typeof partial.jobs === 'object' && !Array.isArray(partial.jobs)) {
      try {
        semanticChecks(sanitizeForChecks(partial), loc, options, out);
      } catch {
        // the schema errors already describe the problem
      }
    }
    matrixChecksOfValidJobs(js, loc, out);
    return { diagnostics: out.finish() };
  }
  semanticChecks(parsed.data, loc, options, out);
  // Matrix errors are reported with the others, so the matrices are checked either way.
  const spec = normalizePipeline(parsed.data);
  matrixChecks(Object.values(spec.jobs), loc, out);
  if (out.errors) return { diagnostics: out.finish() };
  if (options.file !== undefined) spec.file = options.file;
  return { spec, diagnostics: out.finish() };
}

/**
 * Static matrices expand at validation, so a matrix GitHub would reject (an empty axis, an exclude
 * naming no axis, no combination left, more than 256 instances) fails validation, not the run.
 */
function matrixChecks(jobs: readonly JobSpec[], loc: Locator, out: Sink): void {
  for (const job of jobs) {
    if (job.strategy?.matrix === undefined || isDynamicMatrix(job.strategy.matrix)) continue;
    try {
      if (expandJob(job).length === 0) {
        // GitHub rejects it ("Matrix must define at least one vector"); planned, the job would vanish.
        out.push(
          loc.diag(
            'error',
            ['jobs', job.id, 'strategy', 'matrix'],
            'the matrix yields no job: it has no axis and no `include`, or `exclude` removes every combination; give it at least one combination',
          ),
        );
      }
    } catch (err) {
      if (!(err instanceof PipewrightError)) throw err;
      out.push(loc.diag('error', ['jobs', job.id, 'strategy', 'matrix'], err.message));
    }
  }
}

/**
 * The same checks beside schema errors elsewhere in the file: every job whose own shape is valid
 * is normalized on its own and its matrix expanded, so a bad matrix is not hidden by a typo in
 * another job.
 */
function matrixChecksOfValidJobs(js: unknown, loc: Locator, out: Sink): void {
  const jobs = (js as { jobs?: unknown }).jobs;
  if (typeof jobs !== 'object' || jobs === null || Array.isArray(jobs)) return;
  const specs: JobSpec[] = [];
  for (const [id, job] of Object.entries(jobs as Record<string, unknown>)) {
    const one = pipelineRaw.safeParse({ jobs: { [id]: job } });
    if (!one.success) continue;
    try {
      const spec = normalizePipeline(one.data).jobs[id];
      if (spec) specs.push(spec);
    } catch {
      // a job the schema let through but normalization cannot take: its other errors say why
    }
  }
  matrixChecks(specs, loc, out);
}

/** Keeps only well-shaped jobs/steps so semantic checks can run beside schema errors. */
function sanitizeForChecks(raw: PipelineRaw): PipelineRaw {
  const jobs: PipelineRaw['jobs'] = {};
  for (const [id, job] of Object.entries(raw.jobs as Record<string, unknown>)) {
    if (!job || typeof job !== 'object' || Array.isArray(job)) continue;
    const j = { ...(job as Record<string, unknown>) };
    if (!(typeof j.needs === 'string' || (Array.isArray(j.needs) && j.needs.every((n) => typeof n === 'string'))))
      delete j.needs;
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
