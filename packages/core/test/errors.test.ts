import { NonRetryableError, PipelineInvalidError, PipewrightError, RetryAfterError } from '@pipewright/core';
import { describe, expect, it } from 'vitest';

describe('error classes', () => {
  it('instanceof of a subclass holds only for its own instances (RetryAfterError is no NonRetryableError)', () => {
    const retry = new RetryAfterError('later', 5);
    const final = new NonRetryableError('bad');
    const base = new PipewrightError('INVALID_ARGUMENT', 'x');
    expect([retry instanceof RetryAfterError, retry instanceof NonRetryableError]).toEqual([true, false]);
    expect([final instanceof NonRetryableError, final instanceof RetryAfterError]).toEqual([true, false]);
    expect([base instanceof NonRetryableError, base instanceof PipelineInvalidError]).toEqual([false, false]);
    for (const e of [retry, final, base])
      expect([e instanceof PipewrightError, e instanceof Error]).toEqual([true, true]);
  });

  it('instanceof works across two copies of the package (a branded error of the same class name)', () => {
    const other = Object.assign(Object.create(Error.prototype), { name: 'RetryAfterError', retryAfterMs: 1 });
    Object.defineProperty(other, Symbol.for('pipewright.error'), { value: true });
    Object.defineProperty(other, Symbol.for('pipewright.error.kinds'), {
      value: ['RetryAfterError', 'PipewrightError'],
    });
    expect([
      other instanceof PipewrightError,
      other instanceof RetryAfterError,
      other instanceof NonRetryableError,
    ]).toEqual([true, true, false]);
    expect({ name: 'x' } instanceof PipewrightError).toBe(false);
    // A copy from before kinds were recorded: its name says its class.
    const older = Object.assign(Object.create(Error.prototype), { name: 'NonRetryableError' });
    Object.defineProperty(older, Symbol.for('pipewright.error'), { value: true });
    expect([older instanceof NonRetryableError, older instanceof RetryAfterError]).toEqual([true, false]);
  });

  it("matches by the built-in classes' fixed kinds, not by class names (minified copies, look-alike user classes)", () => {
    // A user class named like a built-in one is not it; anonymous subclasses do not match each other.
    class NonRetryableErrorLookAlike extends PipewrightError {}
    Object.defineProperty(NonRetryableErrorLookAlike, 'name', { value: 'NonRetryableError' });
    const lookAlike = new NonRetryableErrorLookAlike('INVALID_ARGUMENT', 'x');
    expect([lookAlike instanceof NonRetryableError, lookAlike instanceof PipewrightError]).toEqual([false, true]);
    const A = class extends PipewrightError {};
    const B = class extends PipewrightError {};
    expect([new A('INVALID_ARGUMENT', 'a') instanceof B, new A('INVALID_ARGUMENT', 'a') instanceof A]).toEqual([
      false,
      true,
    ]);
    // A user subclass of a built-in one is both.
    class Later extends RetryAfterError {}
    const later = new Later('x', 1);
    expect([later instanceof Later, later instanceof RetryAfterError, later instanceof NonRetryableError]).toEqual([
      true,
      true,
      false,
    ]);
    // A minified copy: its class is named `e`, its error carries the fixed kinds.
    const minified = Object.assign(Object.create(Error.prototype), { name: 'e' });
    Object.defineProperty(minified, Symbol.for('pipewright.error'), { value: true });
    Object.defineProperty(minified, Symbol.for('pipewright.error.kinds'), {
      value: ['NonRetryableError', 'PipewrightError'],
    });
    expect([minified instanceof NonRetryableError, minified instanceof RetryAfterError]).toEqual([true, false]);
  });
});
