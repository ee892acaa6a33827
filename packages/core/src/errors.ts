const BRAND = Symbol.for('pipewright.error');
/**
 * A built-in error class's fixed kind (a string, so a minifier leaves it alone); an error
 * carries the kinds of its class chain under {@link KINDS}, for `instanceof` across two
 * copies of the package.
 */
const KIND: unique symbol = Symbol.for('pipewright.error.kind') as never;
const KINDS = Symbol.for('pipewright.error.kinds');

/** Stable machine-readable error codes. */
export type ErrorCode =
  | 'PIPELINE_INVALID'
  | 'PIPELINE_CYCLE'
  | 'EXPRESSION_INVALID'
  | 'EXECUTOR_UNAVAILABLE'
  | 'STORE_UNAVAILABLE'
  | 'STORE_CONFLICT'
  | 'RUN_NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'ACTION_NOT_FOUND'
  | 'ENGINE_CLOSED'
  /** A run, job or attempt was moved to a status its state machine does not allow (a bug). */
  | 'ILLEGAL_TRANSITION'
  /** A listener of an engine event threw; the engine reports it on `error` and carries on. */
  | 'LISTENER_FAILED'
  /** A stored record cannot be read back (not JSON, fields missing): the run it belongs to is set aside. */
  | 'STORE_CORRUPT';

/** Where a problem sits in a pipeline file (1-based line and column). */
export interface SourceLocation {
  file?: string;
  line: number;
  column: number;
  /** YAML path such as `jobs.build.needs[1]`. */
  path: string;
}

/** One problem found in a pipeline: an error or a warning. */
export interface Diagnostic extends SourceLocation {
  severity: 'error' | 'warning';
  message: string;
}

/** Options for {@link PipewrightError}. */
export interface PipewrightErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

/**
 * The one base error of pipewright. `code` is stable; `details` is structured.
 * `instanceof` works across two copies of the package.
 */
export class PipewrightError extends Error {
  /** @internal The class's kind for `instanceof` across copies of the package. */
  static readonly [KIND]: string = 'PipewrightError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: PipewrightErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PipewrightError';
    this.code = code;
    this.details = options.details ?? {};
    Object.defineProperty(this, BRAND, { value: true });
    // The kinds of the built-in classes in this error's class chain (a user subclass has none of its own).
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
      if (Object.hasOwn(c, KIND)) kinds.push((c as unknown as { [KIND]: string })[KIND]);
    }
    Object.defineProperty(this, KINDS, { value: kinds });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class `instanceof` asks about (a subclass, too)
    return isPipewrightErrorOf(this, value);
  }
}

/**
 * `value instanceof cls` for PipewrightError and its subclasses, also across two copies of the
 * package: branded, and for a subclass of its class chain (by class name across copies).
 */
function isPipewrightErrorOf(cls: object, value: unknown): boolean {
  if (typeof value !== 'object' || value === null || (value as Record<symbol, unknown>)[BRAND] !== true) return false;
  if (cls === PipewrightError) return true;
  if (Function.prototype[Symbol.hasInstance].call(cls, value)) return true;
  // Another copy's instance: only the built-in classes match it, by their fixed kind.
  if (!Object.hasOwn(cls, KIND)) return false;
  const kind = (cls as { [KIND]: string })[KIND];
  const kinds = (value as Record<symbol, unknown>)[KINDS];
  // A copy from before kinds were recorded: its error's name is its class's kind.
  return Array.isArray(kinds) ? kinds.includes(kind) : (value as { name?: unknown }).name === kind;
}

/** Formats a diagnostic as DESIGN §8 prints it: `file:line:col: message (at path)`, warnings marked `warning:`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file ?? '<pipeline>'}:${d.line}:${d.column}`;
  const path = d.path ? ` (at ${d.path})` : '';
  return `${where}: ${d.severity === 'warning' ? 'warning: ' : ''}${d.message}${path}`;
}

/** A pipeline failed validation; `diagnostics` lists every problem found. */
export class PipelineInvalidError extends PipewrightError {
  /** @internal */
  static override readonly [KIND]: string = 'PipelineInvalidError';
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[], code: 'PIPELINE_INVALID' | 'PIPELINE_CYCLE' = 'PIPELINE_INVALID') {
    const errors = diagnostics.filter((d) => d.severity === 'error');
    const head = errors.slice(0, 20).map(formatDiagnostic).join('\n');
    const more = errors.length > 20 ? `\n... and ${errors.length - 20} more` : '';
    super(code, `Pipeline is invalid (${errors.length} error${errors.length === 1 ? '' : 's'}):\n${head}${more}`, {
      details: { diagnostics },
    });
    this.name = 'PipelineInvalidError';
    this.diagnostics = diagnostics;
  }
}

/** Thrown by registered actions to fail a step without retrying it. */
export class NonRetryableError extends PipewrightError {
  /** @internal */
  static override readonly [KIND]: string = 'NonRetryableError';
  constructor(message: string, options: PipewrightErrorOptions = {}) {
    super('INVALID_ARGUMENT', message, options);
    this.name = 'NonRetryableError';
  }
}

/** Thrown by registered actions to ask for a retry no sooner than `retryAfterMs`. */
export class RetryAfterError extends PipewrightError {
  /** @internal */
  static override readonly [KIND]: string = 'RetryAfterError';
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options: PipewrightErrorOptions = {}) {
    super('INVALID_ARGUMENT', message, options);
    this.name = 'RetryAfterError';
    this.retryAfterMs = retryAfterMs;
  }
}
