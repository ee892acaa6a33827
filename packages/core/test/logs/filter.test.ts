import { logLineWanted } from '@pipewright/core';
import { describe, expect, it } from 'vitest';

describe('logLineWanted', () => {
  it("keeps a job's and step's lines for their filter, and the run's own lines for every filter", () => {
    const a0 = { jobId: 'a', step: 0 };
    const run = { jobId: '', step: -1 };
    expect(logLineWanted(a0, {})).toBe(true);
    expect(logLineWanted(a0, { job: 'a', step: 0 })).toBe(true);
    expect(logLineWanted(a0, { job: 'b' })).toBe(false);
    expect(logLineWanted(a0, { job: 'a', step: 1 })).toBe(false);
    expect(logLineWanted(run, { job: 'b', step: 3 })).toBe(true);
  });
});
