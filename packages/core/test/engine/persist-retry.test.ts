import { Engine, PipewrightError } from '@pipewright/core';
import { describe, expect, it } from 'vitest';
import { interceptStore, PLAN_THEN_MATRIX, runToEnd, setup } from './helpers.js';

describe('4.8 durability: a batch write that fails part-way', () => {
  it('is retried without adding the same jobs twice, and the run completes', async () => {
    const env = setup((job) => (job === 'plan' ? [{ outputs: { list: '["a","b"]' } }] : [{}]));
    // After the dynamic matrix's instances are added, the next batched job write fails once as an outage.
    let addJobsCalls = 0;
    let failNextPutJobs = false;
    const errors: Error[] = [];
    const inner = env.store;
    const flaky = interceptStore(inner, {
      addJobs: async (original, ...args) => {
        addJobsCalls++;
        await original(...args);
        failNextPutJobs = true;
      },
      putJobs: async (original, ...args) => {
        if (failNextPutJobs) {
          failNextPutJobs = false;
          throw new PipewrightError('STORE_UNAVAILABLE', 'connection lost (test)');
        }
        return original(...args);
      },
    });
    const engine = new Engine({
      store: flaky,
      logs: env.logs,
      executors: [env.executor],
      clock: env.clock,
      // The wrapper gives up at once (its first delay already exceeds maxMs), so the engine's own retry is what is tested.
      storeRetry: { maxMs: 1, baseDelayMs: 50, maxDelayMs: 50 },
    });
    engine.on('error', (e) => errors.push(e));
    const report = await runToEnd({ ...env, engine }, PLAN_THEN_MATRIX);
    expect(report.run.status).toBe('succeeded');
    expect(addJobsCalls).toBe(1);
    // The outage was surfaced once, as STORE_UNAVAILABLE; nothing else went wrong.
    expect(errors.map((e) => (e as PipewrightError).code)).toEqual(['STORE_UNAVAILABLE']);
    const stored = await inner.getJobs(report.run.id);
    expect(stored.map((j) => `${j.id}:${j.status}`).sort()).toEqual(
      report.jobs.map((j) => `${j.id}:${j.status}`).sort(),
    );
    await engine.close();
  });
});
