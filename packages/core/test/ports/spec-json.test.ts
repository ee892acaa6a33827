import { attachSpecJson, definePipeline, type RunRecord, specJsonOf } from '@pipewright/core';
import { runRecord } from '@pipewright/core/testing';
import { describe, expect, it } from 'vitest';

const runOf = (spec: RunRecord['spec']): RunRecord => runRecord(spec);

const spec = definePipeline({ name: 'p', on: 'push', jobs: { a: { 'runs-on': 'local', steps: [{ run: 'true' }] } } });

describe('attachSpecJson / specJsonOf', () => {
  it('hands over the attached text instead of encoding the spec again', () => {
    const run = runOf(spec);
    expect(specJsonOf(run)).toBe(JSON.stringify(spec));
    // A marker text proves the attached value is the one returned, not a new encoding.
    attachSpecJson(run, '{"marker":true}');
    expect(specJsonOf(run)).toBe('{"marker":true}');
  });

  it('ignores the attached text once the record holds another spec', () => {
    const run = runOf(spec);
    attachSpecJson(run, '{"marker":true}');
    const other = definePipeline({ name: 'q', on: 'push', jobs: { b: { 'runs-on': 'local', steps: [{ run: 'x' }] } } });
    run.spec = other;
    expect(specJsonOf(run)).toBe(JSON.stringify(other));
  });

  it('stays out of JSON, spreads and key listings', () => {
    const run = runOf(spec);
    attachSpecJson(run, '{"marker":true}');
    expect(JSON.stringify(run)).not.toContain('marker');
    expect(Object.getOwnPropertySymbols({ ...run })).toEqual([]);
    expect(Object.keys(run)).not.toContain('specJson');
  });
});

describe('attachSpecJson(run, undefined)', () => {
  it('detaches the text, so the record no longer keeps it alive', () => {
    const run = runOf(spec);
    attachSpecJson(run, '{"marker":true}');
    attachSpecJson(run, undefined);
    expect(specJsonOf(run)).toBe(JSON.stringify(spec));
    expect(Object.getOwnPropertySymbols(run)).toEqual([]);
  });
});
