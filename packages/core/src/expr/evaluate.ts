import type { Expr } from '@actions/expressions';
import { data, Evaluator } from '@actions/expressions';
import type { ContextAccess, FunctionCall } from '@actions/expressions/ast';
import { PipewrightError } from '../errors.js';
import {
  ExpressionSyntaxProblem,
  KNOWN_CONTEXTS,
  type ParsedExpression,
  parseExpression,
  STATUS_FUNCTIONS,
} from './parse.js';
import { scanTemplate, wholeExpression } from './scan.js';
import { dataToString, dataTruthy, fromData, toData } from './value.js';

/** Values of success()/failure()/cancelled() for the current evaluation. */
export interface StatusState {
  success: boolean;
  failure: boolean;
  cancelled: boolean;
}

/** Plain-JS contexts: github, env, inputs, matrix, needs, steps, secrets, job, strategy, runner, vars. */
export type ExprContext = Record<string, unknown>;

const DEFAULT_STATUS: StatusState = { success: true, failure: false, cancelled: false };
const KNOWN = new Set(KNOWN_CONTEXTS);

/** The library's evaluator plus GitHub's status functions and null for absent contexts. */
class PipelineEvaluator extends Evaluator {
  readonly #status: StatusState;

  constructor(ast: Expr, context: data.Dictionary, status: StatusState) {
    super(ast, context);
    this.#status = status;
  }

  override visitContextAccess(contextAccess: ContextAccess): data.ExpressionData {
    // The library returns undefined for a context name that is valid but absent from the data.
    const v = super.visitContextAccess(contextAccess) as data.ExpressionData | undefined;
    return v ?? new data.Null();
  }

  override visitFunctionCall(functionCall: FunctionCall): data.ExpressionData {
    switch (functionCall.functionName.lexeme.toLowerCase()) {
      case 'success':
        return new data.BooleanData(this.#status.success);
      case 'failure':
        return new data.BooleanData(this.#status.failure);
      case 'cancelled':
        return new data.BooleanData(this.#status.cancelled);
      case 'always':
        return new data.BooleanData(true);
      case 'fromjson':
        return this.#fromJSON(functionCall);
      case 'tojson':
        // The library's replacer assigns keys to a plain object, which turns `__proto__` into a prototype.
        return new data.StringData(JSON.stringify(fromData(this.eval(functionCall.args[0]!)), null, 2));
      case 'hashfiles':
        throw new PipewrightError(
          'EXPRESSION_INVALID',
          'hashFiles() is not supported by pipewright: compute the hash in a step and pass it on as a step output',
        );
      default:
        return super.visitFunctionCall(functionCall);
    }
  }

  // The library's own fromJSON drops keys such as `constructor` and `__proto__` (it indexes keys in
  // a plain object); plain JSON.parse plus the lazy views keeps every key.
  #fromJSON(functionCall: FunctionCall): data.ExpressionData {
    const input = this.eval(functionCall.args[0]!).coerceString();
    if (input.trim() === '') throw new Error('empty input');
    let parsed: unknown;
    try {
      parsed = JSON.parse(input);
    } catch {
      throw new Error('Error parsing JSON');
    }
    return toData(parsed);
  }
}

function shown(text: string): string {
  const t = text.trim();
  return t.length > 200 ? `${t.slice(0, 200)}...` : t;
}

function syntaxError(whole: string, problem: ExpressionSyntaxProblem, base: number): PipewrightError {
  const offset = base + problem.offset;
  return new PipewrightError(
    'EXPRESSION_INVALID',
    `Invalid expression \`${shown(whole)}\` at offset ${offset}: ${problem.message}`,
    { details: { expression: whole, offset } },
  );
}

/** Parses a bare expression, allowing context names the caller supplies beyond GitHub's. */
function parseFor(text: string, ctx: ExprContext): ParsedExpression {
  try {
    return parseExpression(text);
  } catch (e) {
    if (e instanceof ExpressionSyntaxProblem && e.message.startsWith('Unrecognized named-value')) {
      const extra = Object.keys(ctx).filter((k) => !KNOWN.has(k.toLowerCase()));
      if (extra.length > 0) return parseExpression(text, extra);
    }
    throw e;
  }
}

/** Evaluates a bare expression that starts at `base` in `whole`, with errors pointing into `whole`. */
function evaluateBare(
  text: string,
  base: number,
  whole: string,
  ctx: ExprContext,
  status: StatusState,
  parsed?: ParsedExpression,
): data.ExpressionData {
  let p: ParsedExpression;
  try {
    p = parsed ?? parseFor(text, ctx);
  } catch (e) {
    if (e instanceof ExpressionSyntaxProblem) throw syntaxError(whole, e, base);
    throw e;
  }
  try {
    return new PipelineEvaluator(p.ast, toData(ctx) as data.Dictionary, status).evaluate();
  } catch (e) {
    if (e instanceof PipewrightError) {
      throw new PipewrightError('EXPRESSION_INVALID', `Cannot evaluate \`${shown(whole)}\`: ${e.message}`, {
        details: { expression: whole, offset: base },
      });
    }
    throw new PipewrightError(
      'EXPRESSION_INVALID',
      `Cannot evaluate \`${shown(whole)}\`: ${libraryMessage(e)}`,
      // No `cause`: the library's messages and JSON.parse's errors quote the values they failed
      // on, and those values may be secrets.
      { details: { expression: whole, offset: base } },
    );
  }
}

function libraryMessage(e: unknown): string {
  if (e instanceof RangeError) return 'the value is nested too deeply (is a context value circular?)';
  const message = e instanceof Error ? e.message : String(e);
  if (message === 'empty input') return 'fromJSON() got an empty string';
  if (message.startsWith('Error parsing JSON')) return 'fromJSON() got a string that is not valid JSON';
  if (message.startsWith('The following format string references more arguments')) {
    return 'format() references more arguments than were supplied';
  }
  if (message.startsWith('The following format string is invalid')) {
    return "format() got an invalid format string (write '{{' and '}}' for literal braces)";
  }
  // Anything else: keep only the part before a colon, which is where library messages quote data.
  const colon = message.indexOf(':');
  return colon > 0 ? message.slice(0, colon) : message;
}

/** Interpolates a template into a string, with errors pointing into `whole` (`base` = template start). */
function renderTemplate(template: string, ctx: ExprContext, status: StatusState): string {
  const { spans, unterminatedAt } = scanTemplate(template);
  if (unterminatedAt !== undefined) {
    throw new PipewrightError(
      'EXPRESSION_INVALID',
      `Invalid expression in \`${shown(template)}\` at offset ${unterminatedAt}: the \`\${{\` is never closed by \`}}\``,
      { details: { expression: template, offset: unterminatedAt } },
    );
  }
  if (spans.length === 0) return template;
  let out = '';
  let last = 0;
  for (const s of spans) {
    out += template.slice(last, s.start);
    const v = evaluateBare(template.slice(s.innerStart, s.innerEnd), s.innerStart, template, ctx, status);
    out += dataToString(v);
    last = s.end;
  }
  return out + template.slice(last);
}

function evaluateToData(expr: string, ctx: ExprContext, status: StatusState): data.ExpressionData {
  if (!expr.includes('${{')) return evaluateBare(expr, 0, expr, ctx, status);
  const whole = wholeExpression(expr);
  if (whole !== undefined) {
    return evaluateBare(expr.slice(whole.innerStart, whole.innerEnd), whole.innerStart, expr, ctx, status);
  }
  return new data.StringData(renderTemplate(expr, ctx, status));
}

/** Evaluates one expression (with or without the ${{ }} wrapper) to a plain JS value (null/boolean/number/string/array/object). Throws PipewrightError code 'EXPRESSION_INVALID' on a syntax error or an unknown function, with a message saying what and where (offset). Unknown context properties evaluate to null, as GitHub. */
export function evaluateExpression(expr: string, ctx: ExprContext, status?: StatusState): unknown {
  return fromData(evaluateToData(expr, ctx, status ?? DEFAULT_STATUS));
}

/** Replaces every ${{ expr }} in a template with its value converted by GitHub's string rules (null -> '', booleans 'true'/'false', numbers as GitHub prints them, arrays/objects as JSON). Text outside ${{ }} is kept verbatim. */
export function interpolate(template: string, ctx: ExprContext, status?: StatusState): string {
  return renderTemplate(template, ctx, status ?? DEFAULT_STATUS);
}

/** When the whole string (trimmed) is exactly one ${{ expr }}, returns the raw value (object, array, number...); otherwise returns interpolate(). Used for dynamic matrices, `continue-on-error: ${{ ... }}`, `fail-fast`. */
export function evaluateValue(value: string, ctx: ExprContext, status?: StatusState): unknown {
  const st = status ?? DEFAULT_STATUS;
  const whole = wholeExpression(value);
  if (whole === undefined) return renderTemplate(value, ctx, st);
  return fromData(evaluateBare(value.slice(whole.innerStart, whole.innerEnd), whole.innerStart, value, ctx, st));
}

/** GitHub `if:` semantics: undefined/empty -> success(); wrapper optional; when the expression calls no status function it is evaluated as `success() && (expr)`; result coerced with GitHub truthiness. */
export function evaluateCondition(cond: string | undefined, ctx: ExprContext, status: StatusState): boolean {
  if (cond === undefined || cond.trim() === '') return status.success;
  // `success() && (expr)` short-circuits, so when success() is false the expression is not evaluated.
  if (!hasStatusFunction(cond) && !status.success) return false;
  return dataTruthy(evaluateToData(cond, ctx, status));
}

/** Lower-case names of the functions called anywhere in a condition or template; undefined on a syntax error. */
function calledFunctions(text: string): Set<string> | undefined {
  const bodies: string[] = [];
  if (text.includes('${{')) {
    const { spans } = scanTemplate(text);
    for (const s of spans) bodies.push(text.slice(s.innerStart, s.innerEnd));
  } else {
    bodies.push(text);
  }
  const names = new Set<string>();
  for (const b of bodies) {
    try {
      for (const n of parseExpression(b).functions) names.add(n);
    } catch {
      return undefined;
    }
  }
  return names;
}

// Without a valid parse (a syntax error is reported elsewhere) fall back to a textual look,
// skipping string literals so that `'always()'` does not count.
function textualCalls(text: string, names: readonly string[]): boolean {
  const code = text.replace(/'(?:[^']|'')*'/g, "''");
  return new RegExp(`(?<![\\w.-])(?:${names.join('|')})\\s*\\(`, 'i').test(code);
}

/** True when the expression calls any status function. */
export function hasStatusFunction(expr: string): boolean {
  const fns = calledFunctions(expr);
  if (fns === undefined) return textualCalls(expr, [...STATUS_FUNCTIONS]);
  for (const n of fns) if (STATUS_FUNCTIONS.has(n)) return true;
  return false;
}

/** True when the condition uses always() or cancelled() (a cleanup job/step that runs when the run is cancelled). */
export function isCleanupCondition(cond: string | undefined): boolean {
  if (cond === undefined) return false;
  const fns = calledFunctions(cond);
  if (fns === undefined) return textualCalls(cond, ['always', 'cancelled']);
  return fns.has('always') || fns.has('cancelled');
}
