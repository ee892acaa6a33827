import { data } from '@actions/expressions';
import type { Pair } from '@actions/expressions/data/expressiondata';
import { PipewrightError } from '../errors.js';

type ExpressionData = data.ExpressionData;

// Converting a whole context (github.event can be megabytes) on every evaluation would dominate
// the cost of an `if:`; these views convert one property at a time, when the expression reads it.

/** A plain JS object seen as an expression dictionary; keys match case-insensitively, as in GitHub. */
class ObjectView extends data.Dictionary {
  readonly #obj: Record<string, unknown>;
  readonly #converted = new Map<string, ExpressionData>();
  #lowerKeys: Map<string, string> | undefined;

  constructor(obj: Record<string, unknown>) {
    super();
    this.#obj = obj;
  }

  override get(key: string): ExpressionData | undefined {
    const real = Object.hasOwn(this.#obj, key) ? key : this.#findKey(key);
    if (real === undefined) return undefined;
    let v = this.#converted.get(real);
    if (v === undefined) {
      v = toData(this.#obj[real]);
      this.#converted.set(real, v);
    }
    return v;
  }

  override values(): ExpressionData[] {
    return Object.keys(this.#obj).map((k) => this.get(k)!);
  }

  override pairs(): Pair[] {
    return Object.keys(this.#obj).map((key) => ({ key, value: this.get(key)! }));
  }

  // Contexts belong to the caller: the evaluator never writes to them, and neither may anyone else.
  override add(key: string): void {
    throw new Error(`context objects are read-only (tried to add '${key}')`);
  }

  #findKey(key: string): string | undefined {
    if (this.#lowerKeys === undefined) {
      this.#lowerKeys = new Map();
      for (const k of Object.keys(this.#obj)) {
        const lower = k.toLowerCase();
        if (!this.#lowerKeys.has(lower)) this.#lowerKeys.set(lower, k);
      }
    }
    return this.#lowerKeys.get(key.toLowerCase());
  }
}

/** A plain JS array seen as an expression array; elements are converted on first access. */
class ArrayView extends data.Array {
  readonly #arr: readonly unknown[];
  #converted: ExpressionData[] | undefined;

  constructor(arr: readonly unknown[]) {
    super();
    this.#arr = arr;
  }

  override get(index: number): ExpressionData {
    return this.values()[index] ?? new data.Null();
  }

  override values(): ExpressionData[] {
    if (this.#converted === undefined) this.#converted = this.#arr.map((v) => toData(v));
    return this.#converted;
  }

  override add(value: ExpressionData): void {
    this.values().push(value);
  }
}

/** Converts a plain JS value to expression data (lazily for objects and arrays). */
export function toData(value: unknown): ExpressionData {
  switch (typeof value) {
    case 'string':
      return new data.StringData(value);
    case 'number':
      return new data.NumberData(value);
    case 'boolean':
      return new data.BooleanData(value);
    case 'bigint':
      return new data.NumberData(Number(value));
    case 'object':
      if (value === null) return new data.Null();
      if (isExpressionData(value)) return value;
      if (Array.isArray(value)) return new ArrayView(value);
      if (value instanceof Date) return new data.StringData(value.toISOString());
      return new ObjectView(value as Record<string, unknown>);
    default:
      return new data.Null();
  }
}

function isExpressionData(v: object): v is ExpressionData {
  return (
    v instanceof data.Null ||
    v instanceof data.BooleanData ||
    v instanceof data.NumberData ||
    v instanceof data.StringData ||
    v instanceof data.Array ||
    v instanceof data.Dictionary
  );
}

const MAX_DEPTH = 100;

/** Converts expression data back to plain JS (null/boolean/number/string/array/object). */
export function fromData(d: ExpressionData, depth = 0): unknown {
  if (depth > MAX_DEPTH) {
    throw new PipewrightError(
      'EXPRESSION_INVALID',
      `Expression result is nested deeper than ${MAX_DEPTH} levels (is a context value circular?)`,
    );
  }
  switch (d.kind) {
    case data.Kind.Null:
      return null;
    case data.Kind.Boolean:
    case data.Kind.Number:
    case data.Kind.String:
      return (d as data.BooleanData | data.NumberData | data.StringData).value;
    case data.Kind.Array:
      return (d as data.Array).values().map((v) => fromData(v, depth + 1));
    default:
      // Object.fromEntries defines own properties, so a key named __proto__ cannot reach the prototype.
      return Object.fromEntries((d as data.Dictionary).pairs().map((p) => [p.key, fromData(p.value, depth + 1)]));
  }
}

/** GitHub's number formatting: at most 15 decimals, no trailing zeros, `0` for -0. */
export function numberToString(n: number): string {
  return new data.NumberData(n).coerceString();
}

/** GitHub's conversion of a value to string (as used by interpolate). */
export function toExpressionString(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return numberToString(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'object':
      if (value === null) return '';
      if (isExpressionData(value)) return dataToString(value);
      try {
        return JSON.stringify(value) ?? '';
      } catch {
        return Array.isArray(value) ? 'Array' : 'Object';
      }
    default:
      return '';
  }
}

/** Expression data to string by the same rules as {@link toExpressionString}. */
export function dataToString(d: ExpressionData): string {
  if (d.primitive) return d.coerceString();
  try {
    return JSON.stringify(fromData(d)) ?? '';
  } catch {
    return d.kind === data.Kind.Array ? 'Array' : 'Object';
  }
}

/** GitHub truthiness of a value. */
export function isTruthy(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
      return value.length > 0;
    case 'number':
      return value !== 0 && !Number.isNaN(value);
    case 'boolean':
      return value;
    case 'bigint':
      return value !== 0n;
    case 'object':
      if (value === null) return false;
      if (isExpressionData(value)) return dataTruthy(value);
      return true;
    default:
      return false;
  }
}

/** GitHub truthiness of expression data. */
export function dataTruthy(d: ExpressionData): boolean {
  switch (d.kind) {
    case data.Kind.Null:
      return false;
    case data.Kind.Boolean:
      return (d as data.BooleanData).value;
    case data.Kind.Number: {
      const n = (d as data.NumberData).value;
      return n !== 0 && !Number.isNaN(n);
    }
    case data.Kind.String:
      return (d as data.StringData).value.length > 0;
    default:
      return true;
  }
}
