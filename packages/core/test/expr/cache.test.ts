import { describe, expect, it } from 'vitest';
import { evaluateExpression } from '../../src/expr/index.js';
import { parsedExpressionCacheSize, parseExpression } from '../../src/expr/parse.js';

describe('parsed expression cache', () => {
  it('returns the same parse for the same text', () => {
    expect(parseExpression("github.ref == 'x'")).toBe(parseExpression("github.ref == 'x'"));
  });

  it('stays bounded however many distinct expressions are evaluated', () => {
    for (let i = 0; i < 2500; i++) expect(evaluateExpression(`${i} == ${i}`, {})).toBe(true);
    expect(parsedExpressionCacheSize()).toBeLessThanOrEqual(1000);
  });

  it('does not cache parses that depend on extra context names', () => {
    const before = parsedExpressionCacheSize();
    expect(evaluateExpression('extra.value', { extra: { value: 7 } })).toBe(7);
    expect(parsedExpressionCacheSize()).toBe(before);
  });
});
