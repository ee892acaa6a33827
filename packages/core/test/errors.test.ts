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
  });
});
