// biome-ignore-all lint/suspicious/noTemplateCurlyInString: GitHub expressions are written as ${{ }} inside plain strings
import { describe, expect, it } from 'vitest';
import { PipewrightError } from '../../src/errors.js';
import {
  containsExpression,
  type ExprContext,
  evaluateValue,
  interpolate,
  toExpressionString,
} from '../../src/expr/index.js';

const ctx: ExprContext = {
  matrix: { os: 'linux', node: 20, include: [{ a: 1 }] },
  env: { GREETING: 'hi' },
  steps: { gen: { outputs: { matrix: '{"os":["linux","mac"],"node":[18,20]}' } } },
  inputs: { retries: 3, enabled: false },
};

describe('interpolate', () => {
  it('replaces several expressions and keeps the text around them verbatim', () => {
    expect(interpolate('echo ${{ env.GREETING }} on ${{matrix.os}}/${{ matrix.node }}!', ctx)).toBe(
      'echo hi on linux/20!',
    );
    expect(interpolate('no expressions here: $HOME { } }}', ctx)).toBe('no expressions here: $HOME { } }}');
    expect(interpolate('', ctx)).toBe('');
  });

  it('converts values with GitHub string rules', () => {
    expect(interpolate('[${{ null }}]', ctx)).toBe('[]');
    expect(interpolate('${{ inputs.enabled }} ${{ !inputs.enabled }}', ctx)).toBe('false true');
    expect(interpolate('${{ 1.50 }} ${{ 0.1 }} ${{ -0 }} ${{ 1e3 }}', ctx)).toBe('1.5 0.1 0 1000');
    expect(interpolate('${{ matrix.include }}', ctx)).toBe('[{"a":1}]');
    expect(interpolate('${{ fromJSON(\'{"k":"v"}\') }}', ctx)).toBe('{"k":"v"}');
  });

  it('a }} inside a string literal does not close the expression', () => {
    expect(interpolate("a ${{ format('{0}}}', 'x') }} b", ctx)).toBe('a x} b');
    expect(interpolate("${{ '}}' }}", ctx)).toBe('}}');
  });

  it('throws EXPRESSION_INVALID with the offset of an unterminated ${{', () => {
    try {
      interpolate('ok ${{ env.GREETING }} then ${{ matrix.os', ctx);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PipewrightError);
      expect((e as PipewrightError).code).toBe('EXPRESSION_INVALID');
      expect((e as PipewrightError).message).toMatch(/never closed/);
      expect((e as PipewrightError).details.offset).toBe(28);
    }
  });

  it('reports syntax errors with offsets into the template', () => {
    try {
      interpolate('abc ${{ matrix.os == }}', ctx);
      expect.unreachable();
    } catch (e) {
      expect((e as PipewrightError).details.offset).toBe(20);
    }
  });
});

describe('evaluateValue', () => {
  it('returns the raw value when the string is exactly one expression', () => {
    expect(evaluateValue('${{ fromJSON(steps.gen.outputs.matrix) }}', ctx)).toEqual({
      os: ['linux', 'mac'],
      node: [18, 20],
    });
    expect(evaluateValue('  ${{ inputs.retries }}\n', ctx)).toBe(3);
    expect(evaluateValue('${{ inputs.enabled }}', ctx)).toBe(false);
    expect(evaluateValue('${{ matrix.nope }}', ctx)).toBeNull();
  });

  it('interpolates otherwise', () => {
    expect(evaluateValue('v${{ inputs.retries }}', ctx)).toBe('v3');
    expect(evaluateValue('${{ inputs.retries }}${{ inputs.retries }}', ctx)).toBe('33');
    expect(evaluateValue('plain', ctx)).toBe('plain');
  });
});

describe('containsExpression', () => {
  it.each([
    ['${{ x }}', true],
    ['a ${{', true],
    ['$ {{ x }}', false],
    ['{{ x }}', false],
    ['', false],
  ])('%j -> %s', (s, v) => {
    expect(containsExpression(s)).toBe(v);
  });
});

describe('toExpressionString', () => {
  it.each([
    [null, ''],
    [undefined, ''],
    [true, 'true'],
    [false, 'false'],
    [0, '0'],
    [-0, '0'],
    [1.5, '1.5'],
    [0.1 + 0.2, '0.3'],
    [123456789, '123456789'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    ['text', 'text'],
    [[1, 'a'], '[1,"a"]'],
    [{ a: { b: null } }, '{"a":{"b":null}}'],
  ])('%j -> %j', (v, s) => {
    expect(toExpressionString(v)).toBe(s);
  });

  it('does not throw on circular objects', () => {
    const o: Record<string, unknown> = {};
    o.self = o;
    expect(toExpressionString(o)).toBe('Object');
  });
});
