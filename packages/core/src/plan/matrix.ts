import { equals } from '@actions/expressions/result';
import { PipewrightError } from '../errors.js';
import { numberToString, toData } from '../expr/value.js';
import type { MatrixSpec } from '../spec/types.js';

/** Hard limit of combinations per matrix (GitHub: 256 jobs per matrix). Exceeding it throws `PIPELINE_INVALID`. */
export const MAX_MATRIX_COMBINATIONS = 256;

// Excludes can shrink any product, so a large raw product is legal in principle; this bound
// only keeps a pathological matrix (e.g. 10 axes of 100) from spinning before it is rejected.
const MAX_CROSS_PRODUCT = 65_536;

type Combination = Record<string, unknown>;
/** One leaf of an include/exclude entry: the path to it and the literal it must equal. */
type Leaf = { path: (string | number)[]; value: unknown };

/**
 * Expands a literal matrix exactly per GitHub's rules; returns the instance combinations in GitHub's order.
 *
 * Follows the documented rules and, where the docs are silent, GitHub's own `MatrixBuilder`:
 * - cross product in axis order, first axis outermost;
 * - `exclude` drops a combination when every leaf of the entry equals the combination's value at
 *   that path (so partial entries and partial nested objects match), compared with the expression
 *   `==` (case-insensitive strings, loose number coercion);
 * - each `include` entry is split into its axis keys (a filter, matched like `exclude`) and its
 *   other keys (extras); extras are merged into every surviving cross-product combination the
 *   filter matches, later entries overwriting earlier extras but never an axis value;
 * - an entry that matched no combination is appended as a combination of its own (axis keys first).
 *
 * A matrix with no axes and no `include`, or whose every combination is excluded, yields `[]`
 * (GitHub rejects such a workflow; the planner treats `[]` as "job has no instances").
 * The returned combinations are fresh copies and share nothing with the input.
 */
export function expandMatrix(matrix: MatrixSpec): Combination[] {
  const axes = checkAxes(matrix.axes);
  const axisNames = Object.keys(axes);
  const excludes = entries(matrix.exclude, 'exclude').map((entry, i) => {
    const names = Object.keys(entry);
    if (names.length === 0) invalid(`Matrix exclude[${i}] is empty; remove it or name at least one axis.`);
    for (const name of names) {
      if (!Object.hasOwn(axes, name)) {
        invalid(
          `Matrix exclude[${i}] key '${name}' does not match any axis of the matrix (axes: ${axisNames.join(', ') || 'none'}).`,
        );
      }
    }
    return leaves(entry);
  });
  const includes = entries(matrix.include, 'include').map((entry, i) => {
    if (Object.keys(entry).length === 0) invalid(`Matrix include[${i}] is empty; remove it or give it values.`);
    const filter: Combination = {};
    const extra: Combination = {};
    for (const [key, value] of Object.entries(entry)) (Object.hasOwn(axes, key) ? filter : extra)[key] = value;
    return { filter, extra, leaves: leaves(filter), matched: false };
  });

  const lengths = axisNames.map((name) => (axes[name] as unknown[]).length);
  const size = axisNames.length === 0 ? 0 : lengths.reduce((a, b) => a * b, 1);
  if (size > MAX_CROSS_PRODUCT) {
    invalid(
      `Matrix cross product has ${size} combinations (axes: ${axisNames.map((n, i) => `${n}=${lengths[i]}`).join(', ')}); ` +
        `at most ${MAX_MATRIX_COMBINATIONS} job instances are allowed. Reduce the axes.`,
    );
  }

  const out: Combination[] = [];
  for (let index = 0; index < size; index++) {
    const combo = combinationAt(axes, axisNames, lengths, index);
    if (excludes.some((ls) => matches(combo, ls))) continue;
    for (const inc of includes) {
      if (!matches(combo, inc.leaves)) continue;
      inc.matched = true;
      // Extras never name an axis, so later includes see the original values and only extras get overwritten.
      Object.assign(combo, inc.extra);
    }
    push(out, combo);
  }
  for (const inc of includes) if (!inc.matched) push(out, { ...inc.filter, ...inc.extra });
  return out.map((c) => structuredClone(c));
}

/**
 * A stable display/id suffix for one combination, as GitHub shows job names: values joined by `, `
 * in key order, e.g. `ubuntu-latest, 20` for `build (ubuntu-latest, 20)`. Objects and arrays are
 * shown as JSON; `null` and empty strings are skipped (as GitHub does), so two combinations can share
 * a label and an empty combination has the label `''`.
 */
export function matrixInstanceLabel(combination: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const value of Object.values(combination)) {
    if (value === null || value === undefined || value === '') continue;
    if (typeof value === 'number') parts.push(numberToString(value));
    else if (typeof value === 'object') parts.push(JSON.stringify(value));
    else parts.push(String(value));
  }
  return parts.join(', ');
}

/**
 * An evaluated matrix value (a dynamic matrix's `${{ }}` result: axes plus optional `include` and
 * `exclude`) as a {@link MatrixSpec} for {@link expandMatrix}; `include`/`exclude` absent or null
 * are none. Throws `PIPELINE_INVALID` for anything but a mapping; {@link expandMatrix} checks the rest.
 */
export function matrixOfValue(value: unknown): MatrixSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    invalid(`The matrix must be a mapping of axes, got ${JSON.stringify(value) ?? String(value)}.`);
  }
  const { include, exclude, ...axes } = value as Record<string, unknown>;
  for (const [name, values] of Object.entries(axes)) {
    if (!Array.isArray(values))
      invalid(`Matrix axis '${name}' must be a list of values, got ${JSON.stringify(values)}.`);
  }
  return {
    axes: axes as MatrixSpec['axes'],
    include: listOrNone(include, 'include'),
    exclude: listOrNone(exclude, 'exclude'),
  };
}

function listOrNone(value: unknown, kind: 'include' | 'exclude'): Record<string, unknown>[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) invalid(`Matrix ${kind} must be a list of mappings, got ${JSON.stringify(value)}.`);
  return value as Record<string, unknown>[];
}

function checkAxes(axes: MatrixSpec['axes']): Record<string, unknown[]> {
  for (const [name, values] of Object.entries(axes)) {
    if (typeof values === 'string') {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `Matrix axis '${name}' is still an expression (${values}); evaluate the matrix before expanding it.`,
        { details: { axis: name } },
      );
    }
    if (!Array.isArray(values)) invalid(`Matrix axis '${name}' must be a list of values, got ${typeof values}.`);
    if (values.length === 0) invalid(`Matrix axis '${name}' does not contain any values; give it at least one.`);
  }
  return axes as Record<string, unknown[]>;
}

function entries(list: MatrixSpec['include'] | MatrixSpec['exclude'], kind: 'include' | 'exclude'): Combination[] {
  if (typeof list === 'string') {
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `Matrix ${kind} is still an expression (${list}); evaluate the matrix before expanding it.`,
    );
  }
  list.forEach((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      invalid(`Matrix ${kind}[${i}] must be a mapping of axis names to values, got ${JSON.stringify(entry)}.`);
    }
  });
  return list;
}

/** Mixed-radix decode of `index`: the last axis varies fastest, as GitHub orders jobs. */
function combinationAt(
  axes: Record<string, unknown[]>,
  names: string[],
  lengths: number[],
  index: number,
): Combination {
  const combo: Combination = {};
  let rest = index;
  const picks = new Array<number>(names.length);
  for (let i = names.length - 1; i >= 0; i--) {
    const len = lengths[i] as number;
    picks[i] = rest % len;
    rest = Math.floor(rest / len);
  }
  names.forEach((name, i) => {
    combo[name] = (axes[name] as unknown[])[picks[i] as number];
  });
  return combo;
}

/** Flattens an entry into its literal leaves; an empty nested object or list has none and matches anything. */
function leaves(value: unknown, path: (string | number)[] = []): Leaf[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...path, i]));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]));
  }
  return [{ path, value: value ?? null }];
}

function matches(combo: Combination, ls: Leaf[]): boolean {
  return ls.every(({ path, value }) => equals(toData(valueAt(combo, path)), toData(value)));
}

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let cur = root;
  for (const step of path) {
    if (typeof step === 'number' && Array.isArray(cur)) cur = cur[step];
    else if (typeof step === 'string' && typeof cur === 'object' && cur !== null && !Array.isArray(cur)) {
      cur = Object.hasOwn(cur, step) ? (cur as Combination)[step] : undefined;
    } else return null;
  }
  return cur ?? null;
}

function push(out: Combination[], combo: Combination): void {
  if (out.length >= MAX_MATRIX_COMBINATIONS) {
    invalid(
      `Matrix produces more than ${MAX_MATRIX_COMBINATIONS} job instances (GitHub's limit); ` +
        'remove axis values, add exclude entries or split the job.',
    );
  }
  out.push(combo);
}

function invalid(message: string): never {
  throw new PipewrightError('PIPELINE_INVALID', message);
}
