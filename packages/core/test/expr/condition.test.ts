// biome-ignore-all lint/suspicious/noTemplateCurlyInString: GitHub expressions are written as ${{ }} inside plain strings
import { describe, expect, it } from 'vitest';
import { PipewrightError } from '../../src/errors.js';
import {
  type ExprContext,
  evaluateCondition,
  hasStatusFunction,
  isCleanupCondition,
  isTruthy,
  type StatusState,
} from '../../src/expr/index.js';

const ok: StatusState = { success: true, failure: false, cancelled: false };
const failed: StatusState = { success: false, failure: true, cancelled: false };
const cancelling: StatusState = { success: false, failure: false, cancelled: true };

const ctx: ExprContext = {
  github: { ref: 'refs/heads/main', event_name: 'push' },
  needs: { build: { result: 'failure' } },
  matrix: { os: 'linux' },
};

describe('evaluateCondition', () => {
  it('undefined or empty means success()', () => {
    expect(evaluateCondition(undefined, ctx, ok)).toBe(true);
    expect(evaluateCondition('', ctx, failed)).toBe(false);
    expect(evaluateCondition('   ', ctx, cancelling)).toBe(false);
  });

  it('accepts the condition with and without ${{ }}', () => {
    expect(evaluateCondition("github.ref == 'refs/heads/main'", ctx, ok)).toBe(true);
    expect(evaluateCondition("${{ github.ref == 'refs/heads/main' }}", ctx, ok)).toBe(true);
    expect(evaluateCondition("github.event_name == 'pull_request'", ctx, ok)).toBe(false);
    expect(evaluateCondition("${{ github.event_name == 'pull_request' }}", ctx, ok)).toBe(false);
  });

  it('adds an implicit success() && when no status function is called', () => {
    expect(evaluateCondition('true', ctx, ok)).toBe(true);
    expect(evaluateCondition('true', ctx, failed)).toBe(false);
    expect(evaluateCondition('${{ true }}', ctx, cancelling)).toBe(false);
    // success() && (...) short-circuits: the invalid call on the right is never evaluated.
    expect(evaluateCondition("hashFiles('x')", ctx, failed)).toBe(false);
  });

  it('uses the condition as written when it calls a status function', () => {
    expect(evaluateCondition('failure()', ctx, failed)).toBe(true);
    expect(evaluateCondition('failure()', ctx, ok)).toBe(false);
    expect(evaluateCondition('always()', ctx, cancelling)).toBe(true);
    expect(evaluateCondition('cancelled()', ctx, cancelling)).toBe(true);
    expect(evaluateCondition("${{ always() && matrix.os == 'linux' }}", ctx, failed)).toBe(true);
    expect(evaluateCondition("failure() && needs.build.result == 'failure'", ctx, failed)).toBe(true);
    expect(evaluateCondition('!cancelled()', ctx, failed)).toBe(true);
    expect(evaluateCondition('SUCCESS() || Failure()', ctx, failed)).toBe(true);
  });

  it('coerces the result with GitHub truthiness', () => {
    expect(evaluateCondition("'non-empty'", ctx, ok)).toBe(true);
    expect(evaluateCondition("''", ctx, ok)).toBe(false);
    expect(evaluateCondition('0', ctx, ok)).toBe(false);
    expect(evaluateCondition('NaN', ctx, ok)).toBe(false);
    expect(evaluateCondition('github', ctx, ok)).toBe(true);
    expect(evaluateCondition('github.nope', ctx, ok)).toBe(false);
  });

  it('a template with text around ${{ }} is a non-empty string, so true, as in GitHub', () => {
    expect(evaluateCondition('${{ false }} && true', ctx, ok)).toBe(true);
    expect(evaluateCondition('${{ false }} && true', ctx, failed)).toBe(false);
  });

  it('throws EXPRESSION_INVALID on syntax errors', () => {
    expect(() => evaluateCondition('github.ref ==', ctx, ok)).toThrow(PipewrightError);
    expect(() => evaluateCondition('${{ always( }}', ctx, ok)).toThrow(/Invalid expression/);
  });
});

describe('hasStatusFunction / isCleanupCondition', () => {
  it.each([
    ['success()', true, false],
    ['${{ failure() }}', true, false],
    ['always()', true, true],
    ["${{ cancelled() || github.ref == 'x' }}", true, true],
    ['!cancelled()', true, true],
    ["contains(github.ref, 'x') && Always()", true, true],
    ["github.ref == 'always()'", false, false],
    ["'always' == github.ref", false, false],
    ['github.ref', false, false],
    ["format('{0}', always())", true, true],
  ])('%s', (cond, status, cleanup) => {
    expect(hasStatusFunction(cond)).toBe(status);
    expect(isCleanupCondition(cond)).toBe(cleanup);
  });

  it('falls back to a textual look on syntax errors', () => {
    expect(isCleanupCondition('always() &&')).toBe(true);
    expect(hasStatusFunction('failure() ==')).toBe(true);
    expect(isCleanupCondition("'always()' ==")).toBe(false);
  });

  it('undefined condition is not a cleanup condition', () => {
    expect(isCleanupCondition(undefined)).toBe(false);
  });
});

describe('isTruthy', () => {
  it.each([
    [null, false],
    [undefined, false],
    [false, false],
    [true, true],
    [0, false],
    [-0, false],
    [Number.NaN, false],
    [1, true],
    [-1, true],
    ['', false],
    ['false', true],
    ['0', true],
    [[], true],
    [{}, true],
  ])('%j -> %s', (v, t) => {
    expect(isTruthy(v)).toBe(t);
  });
});
