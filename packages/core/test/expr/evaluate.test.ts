// biome-ignore-all lint/suspicious/noTemplateCurlyInString: GitHub expressions are written as ${{ }} inside plain strings
import { describe, expect, it } from 'vitest';
import { PipewrightError } from '../../src/errors.js';
import { type ExprContext, evaluateExpression, type StatusState } from '../../src/expr/index.js';

const ctx: ExprContext = {
  github: { ref: 'refs/heads/main', event_name: 'push', event: { commits: [{ id: 'a' }, { id: 'b' }] } },
  env: { NAME: 'World', EMPTY: '' },
  matrix: { os: 'linux', node: 20 },
  needs: {
    build: { result: 'success', outputs: { version: '1.2.3' } },
    test: { result: 'failure', outputs: {} },
  },
  steps: { s1: { outputs: { json: '{"a":[1,2],"b":{"c":true}}' }, outcome: 'success' } },
  inputs: { flag: true, count: 3 },
  vars: { list: ['a', 'B', 'c'] },
};

const ev = (e: string, c: ExprContext = ctx, s?: StatusState) => evaluateExpression(e, c, s);

function expectInvalid(fn: () => unknown, pattern: RegExp): PipewrightError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PipewrightError);
    const err = e as PipewrightError;
    expect(err.code).toBe('EXPRESSION_INVALID');
    expect(err.message).toMatch(pattern);
    return err;
  }
  throw new Error('expected an EXPRESSION_INVALID error');
}

describe('literals', () => {
  it.each([
    ['true', true],
    ['false', false],
    ['null', null],
    ['42', 42],
    ['-3.5', -3.5],
    ['0xff', 255],
    ['1e3', 1000],
    ["'hello'", 'hello'],
    ["'it''s a ''test'''", "it's a 'test'"],
    ["''", ''],
  ])('%s', (expr, value) => {
    expect(ev(expr)).toBe(value);
  });

  it('NaN and Infinity', () => {
    expect(ev('NaN')).toBeNaN();
    expect(ev('Infinity')).toBe(Number.POSITIVE_INFINITY);
  });

  it('accepts the ${{ }} wrapper with surrounding whitespace', () => {
    expect(ev('  ${{ 1 }}  ')).toBe(1);
    expect(ev('${{github.ref}}')).toBe('refs/heads/main');
  });
});

describe('contexts', () => {
  it('property dereference and index, case-insensitive keys', () => {
    expect(ev('github.ref')).toBe('refs/heads/main');
    expect(ev("github['ref']")).toBe('refs/heads/main');
    expect(ev('GITHUB.REF')).toBe('refs/heads/main');
    expect(ev('needs.build.outputs.version')).toBe('1.2.3');
    expect(ev('github.event.commits[1].id')).toBe('b');
  });

  it('unknown properties, out-of-range indexes and absent contexts are null', () => {
    expect(ev('github.nope')).toBeNull();
    expect(ev('github.nope.deeper')).toBeNull();
    expect(ev('github.event.commits[5]')).toBeNull();
    expect(ev('secrets.TOKEN')).toBeNull();
    expect(ev('runner.os', {})).toBeNull();
  });

  it('object filter collects a property of every element', () => {
    expect(ev('needs.*.result')).toEqual(['success', 'failure']);
    expect(ev('github.event.commits.*.id')).toEqual(['a', 'b']);
    expect(ev("contains(needs.*.result, 'failure')")).toBe(true);
    expect(ev("contains(needs.*.result, 'cancelled')")).toBe(false);
  });

  it('returns objects and arrays as plain JS copies', () => {
    const v = ev('needs.build') as Record<string, unknown>;
    expect(v).toEqual({ result: 'success', outputs: { version: '1.2.3' } });
    v.result = 'changed';
    expect((ctx.needs as Record<string, { result: string }>).build!.result).toBe('success');
  });

  it('unknown context names are syntax errors, extra names in the context object are allowed', () => {
    expectInvalid(() => ev('nope.x'), /Unrecognized named-value 'nope'/);
    expect(ev('custom.x', { custom: { x: 1 } })).toBe(1);
  });

  it('does not read from the prototype chain', () => {
    expect(ev('github.constructor')).toBeNull();
    expect(ev("github['__proto__']")).toBeNull();
    expect(ev('toJSON(fromJSON(\'{"__proto__": {"x": 1}}\'))')).toContain('__proto__');
    expect(ev('fromJSON(\'{"constructor": 1, "toString": 2}\').constructor')).toBe(1);
    const v = ev('fromJSON(\'{"__proto__": {"polluted": true}}\')') as Record<string, unknown>;
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('operators', () => {
  it.each([
    ["'1' == 1", true],
    ['null == 0', true],
    ["'abc' == 'ABC'", true],
    ["'abc' != 'ABD'", true],
    ['true == 1', true],
    ["false == ''", true],
    ["'' == 0", true],
    ["' 1 ' == 1", true],
    ["'x' == 0", false],
    ['NaN == NaN', false],
    ['NaN != NaN', true],
    ["'abc' == NaN", false],
    ['null == null', true],
    ["null == ''", true],
    ['1 < 2', true],
    ['2 <= 2', true],
    ['3 > 2', true],
    ['2 >= 3', false],
    ["'a' < 'B'", true],
    ['NaN < 1', false],
    ['NaN >= 1', false],
    ["'10' > 9", true],
    ['github.event == github.event', true],
    ['github.event == needs.build', false],
    ['!true', false],
    ['!0', true],
    ["!''", true],
    ['!null', true],
    ['!github', false],
    ['!!matrix.os', true],
  ])('%s -> %s', (expr, value) => {
    expect(ev(expr)).toBe(value);
  });

  it('&& and || return operand values and short-circuit', () => {
    expect(ev("'a' && 'b'")).toBe('b');
    expect(ev("'' && 'b'")).toBe('');
    expect(ev("null || 'fallback'")).toBe('fallback');
    expect(ev("env.NAME || 'fallback'")).toBe('World');
    expect(ev("env.EMPTY || 0 || 'last'")).toBe('last');
    expect(ev('0 && hashFiles(1)')).toBe(0); // right side never evaluated
    expect(ev("matrix.os == 'linux' && 'yes' || 'no'")).toBe('yes');
  });

  it('precedence: ! > comparison > equality > && > ||', () => {
    expect(ev('true || false && false')).toBe(true);
    expect(ev('(true || false) && false')).toBe(false);
    expect(ev('!false == true')).toBe(true);
    expect(ev('1 < 2 == true')).toBe(true);
  });
});

describe('functions', () => {
  it('contains on strings (case-insensitive) and arrays (loose equality)', () => {
    expect(ev("contains('Hello World', 'world')")).toBe(true);
    expect(ev("contains('Hello', 'xyz')")).toBe(false);
    expect(ev("contains(vars.list, 'b')")).toBe(true);
    expect(ev("contains(vars.list, 'z')")).toBe(false);
    expect(ev("contains(fromJSON('[1, 2]'), '2')")).toBe(true);
    expect(ev("contains(github.ref, 'main')")).toBe(true);
  });

  it('startsWith / endsWith (case-insensitive, casting to string)', () => {
    expect(ev("startsWith(github.ref, 'REFS/heads/')")).toBe(true);
    expect(ev("endsWith(github.ref, '/MAIN')")).toBe(true);
    expect(ev("startsWith(github.ref, 'refs/tags/')")).toBe(false);
    expect(ev("startsWith(123, '12')")).toBe(true);
    expect(ev("startsWith(github, 'x')")).toBe(false);
  });

  it('format with placeholders and escaped braces', () => {
    expect(ev("format('{0} {{x}}', 1)")).toBe('1 {x}');
    expect(ev("format('Hello {0} {1} {0}', env.NAME, true)")).toBe('Hello World true World');
    expect(ev("format('{0}', null)")).toBe('');
    expect(ev("format('{0}', 1.50)")).toBe('1.5');
    expectInvalid(() => ev("format('{1}', 'a')"), /more arguments than were supplied/);
    expectInvalid(() => ev("format('{x}', 'a')"), /invalid format string/);
  });

  it('join with default and explicit separators', () => {
    expect(ev('join(vars.list)')).toBe('a,B,c');
    expect(ev("join(vars.list, ' | ')")).toBe('a | B | c');
    expect(ev("join('single', '-')")).toBe('single');
    expect(ev('join(needs.*.result)')).toBe('success,failure');
  });

  it('toJSON pretty-prints, fromJSON parses', () => {
    expect(ev('toJSON(matrix)')).toBe('{\n  "os": "linux",\n  "node": 20\n}');
    expect(ev('toJSON(null)')).toBe('null');
    expect(ev('fromJSON(steps.s1.outputs.json)')).toEqual({ a: [1, 2], b: { c: true } });
    expect(ev('fromJSON(steps.s1.outputs.json).b.C')).toBe(true);
    expect(ev("fromJSON('true')")).toBe(true);
    expect(ev("fromJSON('42')")).toBe(42);
    expect(ev('toJSON(fromJSON(\'[1,"a",null]\'))')).toBe('[\n  1,\n  "a",\n  null\n]');
  });

  it('fromJSON errors do not quote the input (it may be a secret)', () => {
    const err = expectInvalid(
      () => ev('fromJSON(secrets.S)', { secrets: { S: 'hunter2-not-json' } }),
      /not valid JSON/,
    );
    expect(err.message).not.toContain('hunter2');
    expect(JSON.stringify(err.details)).not.toContain('hunter2');
    expect(err.cause).toBeUndefined();
    expectInvalid(() => ev("fromJSON('')"), /empty string/);
  });

  it('format errors do not quote the format string (it may be a secret)', () => {
    const err = expectInvalid(() => ev('format(secrets.S)', { secrets: { S: 'p{a}ss' } }), /format/);
    expect(err.message).not.toContain('p{a}ss');
  });

  it('function names are case-insensitive', () => {
    expect(ev("CONTAINS('abc', 'B')")).toBe(true);
    expect(ev('tojson(1)')).toBe('1');
  });

  it('hashFiles is recognised but not supported', () => {
    expectInvalid(() => ev("hashFiles('**/package-lock.json')"), /hashFiles\(\) is not supported/);
  });

  it('unknown functions and wrong arity are errors with an offset', () => {
    const err = expectInvalid(() => ev("github.ref == foo('x')"), /Unrecognized function 'foo'.*available functions/);
    expect(err.details.offset).toBe(14);
    expectInvalid(() => ev("contains('a')"), /Too few parameters.*contains/);
    expectInvalid(() => ev('success(1)'), /Too many parameters.*success/);
  });
});

describe('status functions', () => {
  const ok: StatusState = { success: true, failure: false, cancelled: false };
  const failed: StatusState = { success: false, failure: true, cancelled: false };
  const cancelled: StatusState = { success: false, failure: false, cancelled: true };

  it('return the given state; always() is always true', () => {
    expect(ev('success()', ctx, ok)).toBe(true);
    expect(ev('failure()', ctx, failed)).toBe(true);
    expect(ev('success()', ctx, failed)).toBe(false);
    expect(ev('cancelled()', ctx, cancelled)).toBe(true);
    expect(ev('always()', ctx, cancelled)).toBe(true);
  });

  it('default to a successful, not cancelled state', () => {
    expect(ev('success() && !failure() && !cancelled()')).toBe(true);
  });
});

describe('syntax errors', () => {
  it.each([
    ['github.ref ==', /Unexpected end of expression/, 13],
    ['1 = 1', /Unexpected symbol '=/, 2],
    ["'abc", /Unterminated string literal/, 0],
    ['(1', /Unexpected end|Unexpected symbol/, 2],
    ['1 2', /Unexpected symbol/, 2],
    ['github.', /Unexpected/, 7],
    ['', /Expected an expression/, 0],
    ['a & b', /Unexpected symbol '&/, 2],
  ])('%j', (expr, pattern, offset) => {
    const err = expectInvalid(() => ev(expr), pattern);
    expect(err.details.offset).toBe(offset);
  });

  it('offsets count from the start of the string given, wrapper included', () => {
    const err = expectInvalid(() => ev('${{ github.ref == nope }}'), /nope/);
    expect(err.details.offset).toBe(18);
  });

  it('a multi-line expression reports offsets past the line breaks', () => {
    const err = expectInvalid(() => ev("'a\nb' ==\n  bogus"), /Unrecognized named-value 'bogus'/);
    expect(err.details.offset).toBe(11);
  });

  it('rejects expressions nested too deeply, without a stack overflow', () => {
    expectInvalid(() => ev(`${'('.repeat(100)}1${')'.repeat(100)}`), /depth/i);
  });
});

describe('templates inside evaluateExpression', () => {
  it('evaluates a string with text around ${{ }} as a string', () => {
    expect(ev('v${{ needs.build.outputs.version }}-${{ matrix.os }}')).toBe('v1.2.3-linux');
  });
});
