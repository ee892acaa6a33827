/** Where one `${{ ... }}` sits in a string (0-based offsets; `end` is past the closing `}}`). */
export interface ExpressionSpan {
  start: number;
  innerStart: number;
  innerEnd: number;
  end: number;
}

/** Every `${{ }}` in a string, and the offset of a `${{` that is never closed (scanning stops there). */
export interface TemplateScan {
  spans: ExpressionSpan[];
  unterminatedAt?: number;
}

/**
 * Finds the `${{ }}` expressions of a string. As in GitHub's template reader, a `}}` inside a
 * single-quoted string literal does not close the expression, so `${{ format('}}') }}` works.
 */
export function scanTemplate(text: string): TemplateScan {
  const spans: ExpressionSpan[] = [];
  let from = 0;
  for (;;) {
    const start = text.indexOf('${{', from);
    if (start < 0) return { spans };
    const innerStart = start + 3;
    let inString = false;
    let close = -1;
    for (let i = innerStart; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 39 /* ' */) inString = !inString;
      else if (!inString && c === 125 /* } */ && text.charCodeAt(i + 1) === 125) {
        close = i;
        break;
      }
    }
    if (close < 0) return { spans, unterminatedAt: start };
    spans.push({ start, innerStart, innerEnd: close, end: close + 2 });
    from = close + 2;
  }
}

/** The span when the whole string, ignoring surrounding whitespace, is exactly one `${{ }}`. */
export function wholeExpression(text: string): ExpressionSpan | undefined {
  const lead = text.length - text.trimStart().length;
  if (!text.startsWith('${{', lead)) return undefined;
  const { spans, unterminatedAt } = scanTemplate(text);
  const first = spans[0];
  if (unterminatedAt !== undefined || spans.length !== 1 || first === undefined) return undefined;
  return first.end === text.trimEnd().length ? first : undefined;
}

/** True when the string contains a `${{` (an unterminated one too, so it is reported, not ignored). */
export function containsExpression(s: string): boolean {
  return s.includes('${{');
}
