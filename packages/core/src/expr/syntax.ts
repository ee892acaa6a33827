import { ExpressionSyntaxProblem, parseExpression } from './parse.js';
import { scanTemplate } from './scan.js';

/** One syntax problem: what is wrong, and the 0-based character offset into the checked text. */
export interface ExpressionSyntaxIssue {
  message: string;
  offset: number;
}

function check(body: string, base: number, out: ExpressionSyntaxIssue[]): void {
  try {
    parseExpression(body);
  } catch (e) {
    if (e instanceof ExpressionSyntaxProblem) out.push({ message: e.message, offset: base + e.offset });
    else out.push({ message: `Invalid expression: ${e instanceof Error ? e.message : String(e)}`, offset: base });
  }
}

/** Syntax problems in a string value of a pipeline: checks every ${{ }} (unterminated `${{` too); with allowBare (used for `if:` values) a string with no ${{ }} is itself checked as an expression. Offsets are 0-based character offsets into `text` so the caller can compute file:line:col. Never throws. */
export function checkExpressionSyntax(text: string, options?: { allowBare?: boolean }): ExpressionSyntaxIssue[] {
  const issues: ExpressionSyntaxIssue[] = [];
  try {
    const { spans, unterminatedAt } = scanTemplate(text);
    for (const s of spans) check(text.slice(s.innerStart, s.innerEnd), s.innerStart, issues);
    if (unterminatedAt !== undefined) {
      issues.push({
        message: `The expression is not closed: this \`\${{\` has no matching \`}}\``,
        offset: unterminatedAt,
      });
    }
    if (options?.allowBare === true && spans.length === 0 && unterminatedAt === undefined && text.trim() !== '') {
      check(text, 0, issues);
    }
  } catch (e) {
    // Defensive: a validator must report, not crash, whatever the input.
    issues.push({ message: `Cannot check expression: ${e instanceof Error ? e.message : String(e)}`, offset: 0 });
  }
  return issues;
}

const SECRET_DOT = /(?<![\w.-])secrets\s*\.\s*([A-Za-z_][A-Za-z0-9_-]*)/gi;
const SECRET_INDEX = /(?<![\w.-])secrets\s*\[\s*'((?:[^']|'')*)'\s*\]/gi;

const GITHUB_TOKEN = /(?<![\w.-])github\s*\.\s*token(?![\w-])/gi;

/**
 * Secret names referenced as secrets.NAME or secrets['NAME'] anywhere in the text, and
 * `GITHUB_TOKEN` for `github.token` (the same value on GitHub).
 */
export function referencedSecrets(text: string): string[] {
  // A textual scan, not a parse: it must also find references in values with syntax errors and in
  // bare `if:` conditions, and resolving one secret too many is harmless while missing one is not.
  // Most pipelines name no secret: one quick search spares the two scans (and their garbage) of a large spec.
  if (!/secrets|github\s*\.\s*token/i.test(text)) return [];
  const found: Array<{ at: number; name: string }> = [];
  for (const m of text.matchAll(GITHUB_TOKEN)) found.push({ at: m.index, name: 'GITHUB_TOKEN' });
  for (const m of text.matchAll(SECRET_DOT)) found.push({ at: m.index, name: m[1]! });
  for (const m of text.matchAll(SECRET_INDEX)) found.push({ at: m.index, name: m[1]!.replaceAll("''", "'") });
  found.sort((a, b) => a.at - b.at);
  return [...new Set(found.map((f) => f.name).filter((n) => n !== ''))];
}
