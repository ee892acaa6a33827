import {
  type AttemptRecord,
  PipewrightError,
  parsePipeline,
  type RunRecord,
  transitionAttempt,
  transitionJob,
  transitionRun,
} from '@pipewright/core';
import { jobRecord, runRecord } from '@pipewright/core/testing';
import { describe, expect, it } from 'vitest';

// DESIGN §3: every transition is one guarded function; an illegal one throws and changes nothing.

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof PipewrightError ? err.code : String(err);
  }
  return undefined;
}

const spec = parsePipeline('jobs:\n  a: {runs-on: x, steps: [{run: x}]}\n').spec;

describe('3 state machines', () => {
  it('a run goes queued -> running -> cancelling -> cancelled, never back and never around cancelling', () => {
    const run: RunRecord = runRecord(spec);
    transitionRun(run, 'running');
    expect(codeOf(() => transitionRun(run, 'queued'))).toBe('ILLEGAL_TRANSITION');
    expect(codeOf(() => transitionRun(run, 'cancelled'))).toBe('ILLEGAL_TRANSITION');
    expect(run.status).toBe('running');
    transitionRun(run, 'cancelling');
    expect(codeOf(() => transitionRun(run, 'succeeded'))).toBe('ILLEGAL_TRANSITION');
    transitionRun(run, 'cancelled');
    for (const to of ['queued', 'running', 'cancelling', 'succeeded', 'failed'] as const) {
      expect(
        codeOf(() => transitionRun(run, to)),
        to,
      ).toBe('ILLEGAL_TRANSITION');
    }
    expect(run.status).toBe('cancelled');
  });

  it('a job never leaves a terminal status; a retry goes through retrying and queued', () => {
    const job = jobRecord('r1', 'a');
    expect(codeOf(() => transitionJob(job, 'running'))).toBe('ILLEGAL_TRANSITION');
    transitionJob(job, 'queued');
    transitionJob(job, 'running');
    transitionJob(job, 'retrying');
    expect(codeOf(() => transitionJob(job, 'running'))).toBe('ILLEGAL_TRANSITION');
    transitionJob(job, 'queued');
    transitionJob(job, 'running');
    transitionJob(job, 'succeeded');
    expect(codeOf(() => transitionJob(job, 'running'))).toBe('ILLEGAL_TRANSITION');
    expect(job.status).toBe('succeeded');
  });

  it('an attempt ends once', () => {
    const a: AttemptRecord = { number: 1, executor: 'process', status: 'running', startedAt: 1, steps: [] };
    transitionAttempt(a, 'failed');
    expect(codeOf(() => transitionAttempt(a, 'succeeded'))).toBe('ILLEGAL_TRANSITION');
    expect(codeOf(() => transitionAttempt(a, 'running'))).toBe('ILLEGAL_TRANSITION');
    expect(a.status).toBe('failed');
  });
});
