import type { Expr } from '@actions/expressions';
import { Lexer, Parser } from '@actions/expressions';
import { Binary, ContextAccess, FunctionCall, Grouping, IndexAccess, Logical, Unary } from '@actions/expressions/ast';
import type { FunctionInfo } from '@actions/expressions/funcs/info';
import type { Token } from '@actions/expressions/lexer';
import { TokenType } from '@actions/expressions/lexer';

/** Context names GitHub Actions defines; any other name is a syntax error, as in GitHub. */
export const KNOWN_CONTEXTS: readonly string[] = [
  'github',
  'env',
  'inputs',
  'matrix',
  'needs',
  'steps',
  'secrets',
  'job',
  'jobs',
  'strategy',
  'runner',
  'vars',
];

/** Names (lower case) of the status functions. */
export const STATUS_FUNCTIONS: ReadonlySet<string> = new Set(['success', 'failure', 'always', 'cancelled']);

// Functions the library does not know but GitHub has; their arity is checked at parse time.
const EXTENSION_FUNCTIONS: FunctionInfo[] = [
  { name: 'success', minArgs: 0, maxArgs: 0 },
  { name: 'failure', minArgs: 0, maxArgs: 0 },
  { name: 'always', minArgs: 0, maxArgs: 0 },
  { name: 'cancelled', minArgs: 0, maxArgs: 0 },
  { name: 'hashFiles', minArgs: 1, maxArgs: 255 },
];

const FUNCTION_NAMES =
  'contains, startsWith, endsWith, format, join, toJSON, fromJSON, hashFiles, success, failure, always, cancelled';

/** A parsed expression plus facts the engine asks about it repeatedly. */
export interface ParsedExpression {
  readonly ast: Expr;
  /** Lower-case names of every function the expression calls. */
  readonly functions: ReadonlySet<string>;
  /** Lower-case names of every context the expression reads (`github`, `matrix`, ...). */
  readonly contexts: ReadonlySet<string>;
}

/** A syntax problem at a 0-based offset into the parsed string. */
export class ExpressionSyntaxProblem extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = 'ExpressionSyntaxProblem';
    this.offset = offset;
  }
}

// Bounded so that a server evaluating user-supplied expressions cannot grow it without limit;
// sized well above the number of distinct `if:`s in any realistic set of pipelines.
const CACHE_LIMIT = 1000;
const cache = new Map<string, ParsedExpression>();

/**
 * Parses one bare expression (no `${{ }}`), with a bounded cache: the engine evaluates the same
 * `if:` for every matrix instance and step, and lexing + parsing dominates evaluation.
 * `extraContexts` lets callers with non-standard context names use them (not cached).
 */
export function parseExpression(text: string, extraContexts?: readonly string[]): ParsedExpression {
  if (extraContexts === undefined || extraContexts.length === 0) {
    const hit = cache.get(text);
    if (hit !== undefined) return hit;
    const parsed = parseUncached(text, KNOWN_CONTEXTS);
    if (cache.size >= CACHE_LIMIT) {
      // Map iterates in insertion order: dropping the first key drops the oldest entry.
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(text, parsed);
    return parsed;
  }
  return parseUncached(text, [...KNOWN_CONTEXTS, ...extraContexts]);
}

/** Number of cached parsed expressions (for tests of the bound). */
export function parsedExpressionCacheSize(): number {
  return cache.size;
}

function parseUncached(text: string, contexts: readonly string[]): ParsedExpression {
  const tokens = lex(text);
  const offsets = tokenOffsets(text, tokens);
  let ast: Expr | undefined;
  try {
    ast = new Parser(tokens, [...contexts], EXTENSION_FUNCTIONS).parse();
  } catch (e) {
    throw parserProblem(e, text, offsets);
  }
  if (ast === undefined) {
    throw new ExpressionSyntaxProblem('Expected an expression, found nothing', 0);
  }
  return { ast, ...collectNames(ast) };
}

function lex(text: string): Token[] {
  let tokens: Token[];
  try {
    tokens = new Lexer(text).lex().tokens;
  } catch (e) {
    throw lexerProblem(e, text);
  }
  for (const t of tokens) {
    // The library unescapes only the first '' of a string literal; GitHub unescapes all of them.
    if (t.type === TokenType.STRING) t.value = t.lexeme.slice(1, -1).replaceAll("''", "'");
  }
  return tokens;
}

// Tokens carry line/column only (and wrong columns after a multi-line string), so offsets are
// recomputed: tokens are contiguous except for the whitespace the lexer skips.
function tokenOffsets(text: string, tokens: Token[]): Map<Token, number> {
  const offsets = new Map<Token, number>();
  let cursor = 0;
  for (const t of tokens) {
    if (t.type === TokenType.EOF) {
      offsets.set(t, text.length);
      continue;
    }
    while (cursor < text.length && ' \t\r\n'.includes(text[cursor]!)) cursor++;
    offsets.set(t, cursor);
    cursor += t.lexeme.length;
  }
  return offsets;
}

function lexerProblem(e: unknown, text: string): ExpressionSyntaxProblem {
  const message = e instanceof Error ? e.message : String(e);
  if (message === 'ErrorExceededMaxLength') {
    return new ExpressionSyntaxProblem('Expression is longer than the maximum of 21000 characters', 0);
  }
  const m = /^Unexpected symbol: '([\s\S]*)'\. Located at position (\d+) within expression/.exec(message);
  if (m !== null) {
    const offset = Math.max(0, Number(m[2]) - 1);
    if (text[offset] === "'") {
      return new ExpressionSyntaxProblem("Unterminated string literal: add the closing '", offset);
    }
    return new ExpressionSyntaxProblem(`Unexpected symbol '${m[1]}'`, offset);
  }
  return new ExpressionSyntaxProblem(message, 0);
}

function parserProblem(e: unknown, text: string, offsets: Map<Token, number>): ExpressionSyntaxProblem {
  const err = e as { message?: unknown; tok?: Token; typ?: number };
  const message = typeof err.message === 'string' ? err.message : String(e);
  const tok = err.tok;
  let offset = tok !== undefined ? (offsets.get(tok) ?? 0) : 0;
  if (message.startsWith('Unexpected end of expression')) {
    return new ExpressionSyntaxProblem('Unexpected end of expression', text.trimEnd().length);
  }
  const name = tok?.lexeme ?? '';
  if (message.startsWith('Unrecognized named-value')) {
    return new ExpressionSyntaxProblem(
      `Unrecognized named-value '${name}': expected one of the contexts ${KNOWN_CONTEXTS.join(', ')} or a function call`,
      offset,
    );
  }
  if (message.startsWith('Unrecognized function')) {
    return new ExpressionSyntaxProblem(
      `Unrecognized function '${name}': available functions are ${FUNCTION_NAMES}`,
      offset,
    );
  }
  if (message.startsWith('Too few parameters') || message.startsWith('Too many parameters')) {
    return new ExpressionSyntaxProblem(`${message.split(':')[0]} to function '${name}'`, offset);
  }
  if (tok?.type === TokenType.EOF) offset = text.trimEnd().length;
  return new ExpressionSyntaxProblem(message, offset);
}

function collectNames(ast: Expr): { functions: Set<string>; contexts: Set<string> } {
  const functions = new Set<string>();
  const contexts = new Set<string>();
  const stack: Expr[] = [ast];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n instanceof ContextAccess) {
      contexts.add(n.name.lexeme.toLowerCase());
    } else if (n instanceof FunctionCall) {
      functions.add(n.functionName.lexeme.toLowerCase());
      stack.push(...n.args);
    } else if (n instanceof Logical) {
      stack.push(...n.args);
    } else if (n instanceof Binary) {
      stack.push(n.left, n.right);
    } else if (n instanceof Unary) {
      stack.push(n.expr);
    } else if (n instanceof Grouping) {
      stack.push(n.group);
    } else if (n instanceof IndexAccess) {
      stack.push(n.expr, n.index);
    }
  }
  return { functions, contexts };
}
