import { Engine } from '@pipewright/core';
import { describe, expect, it } from 'vitest';
import { interceptStore, setup } from './helpers.js';

describe('4.8 durability: submit racing recover', () => {
  it('a run being submitted is not also restored by a concurrent recover(), so no job runs twice', async () => {
    const env = setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let created = false;
    // createRun lands in the store at once but answers only when the gate opens: the window in which
    // recover() can list the new run.
    const slow = interceptStore(env.store, {
      createRun: async (original, ...args) => {
        const res = await original(...args);
        created = true;
        await gate;
        return res;
      },
    });
    const engine = new Engine({ store: slow, logs: env.logs, executors: [env.executor], clock: env.clock });
    const submitting = engine.submit('jobs:\n  a: { runs-on: x, steps: [{ run: x }] }\n');
    while (!created) await new Promise((r) => setImmediate(r));
    const recovering = engine.recover();
    await new Promise((r) => setTimeout(r, 20));
    release();
    const [handle, taken] = await Promise.all([submitting, recovering]);
    expect(taken).toEqual([]);
    let done = false;
    void handle.wait().then(() => {
      done = true;
    });
    await env.clock.runUntil(() => done, { step: 1000, maxMs: 3_600_000 });
    expect(env.executor.calls.filter((c) => c.jobId === 'a')).toHaveLength(1);
    await engine.close();
  });
});
