import { isStepFileName, STEP_FILE_KINDS, stepFileName } from '@pipewright/core';
import { describe, expect, it } from 'vitest';

describe("the step loop's file names", () => {
  it('names one file per kind and step, and recognises exactly those names', () => {
    expect(STEP_FILE_KINDS.map((k) => stepFileName(3, k))).toEqual([
      'step-3-output',
      'step-3-env',
      'step-3-path',
      'step-3-summary',
    ]);
    for (const k of STEP_FILE_KINDS) expect(isStepFileName(stepFileName(12, k))).toBe(true);
    for (const other of ['step-1-other', 'step-x-env', 'script-1.sh', 'step-1-env.bak', 'xstep-1-env', 'step--env']) {
      expect(isStepFileName(other), other).toBe(false);
    }
  });
});
