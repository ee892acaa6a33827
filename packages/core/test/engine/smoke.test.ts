import { describe, expect, it } from 'vitest';
import { byId, runToEnd, setup } from './helpers.js';

describe('engine smoke', () => {
  it('runs a small DAG in order', async () => {
    const env = setup();
    const report = await runToEnd(
      env,
      `
jobs:
  a: { runs-on: x, steps: [{ run: 'true' }] }
  b: { runs-on: x, needs: a, steps: [{ run: 'true' }] }
  c: { runs-on: x, needs: [a, b], steps: [{ run: 'true' }] }
`,
    );
    expect(report.run.status).toBe('succeeded');
    const jobs = byId(report);
    expect(jobs.a?.status).toBe('succeeded');
    expect(jobs.c?.attempts).toHaveLength(1);
    const order = env.executor.calls.map((c) => c.jobId);
    expect(order).toEqual(['a', 'b', 'c']);
  });
});
