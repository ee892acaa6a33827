import type { JobRecord, JobStatus, RunRecord } from '@pipewright/core';
import { Engine, type Executor } from '@pipewright/core';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
import { describe, expect, it } from 'vitest';

const PIPELINE = `
jobs:
  a: { runs-on: x, steps: [{ run: 'true' }] }
`;

/** A memory store whose job writes wait for `open()`, and which counts run reads. */
class GatedStore extends MemoryStore {
  reads = 0;
  #open: () => void = () => {};
  readonly #gate = new Promise<void>((resolve) => {
    this.#open = resolve;
  });
  open(): void {
    this.#open();
  }
  override async putJobs(jobs: readonly JobRecord[], expect?: { status: JobStatus | JobStatus[] }): Promise<void> {
    await this.#gate;
    return super.putJobs(jobs, expect);
  }
  override async getRun(runId: string): Promise<RunRecord | undefined> {
    this.reads++;
    return super.getRun(runId);
  }
}

const noop: Executor = {
  name: 'process',
  async runJob() {
    return { status: 'succeeded', workerId: 'w', steps: [], outputs: {} };
  },
};

describe('runs this engine owns, before the loop has taken them', () => {
  it('wait() and cancel() of a run submitted while a store write is in flight do not go to the store', async () => {
    const store = new GatedStore();
    const engine = new Engine({ store, logs: new MemoryLogStore(), executors: [noop] });
    try {
      const first = await engine.submit(PIPELINE);
      // The loop is now waiting on the gated write, so the next runs sit in its queue, unknown to the scheduler.
      const second = await engine.submit(PIPELINE);
      const third = await engine.submit(PIPELINE);
      // submit() reads each run back once, right after leasing it; what follows must read nothing.
      store.reads = 0;
      const waited = second.wait();
      const cancelled = third.cancel({ reason: 'changed my mind' });
      store.open();
      await cancelled;
      const [r1, r2, r3] = await Promise.all([first.wait(), waited, third.wait()]);
      expect(r1.run.status).toBe('succeeded');
      expect(r2.run.status).toBe('succeeded');
      expect(r3.run.status).toBe('cancelled');
      expect(store.reads).toBe(0);
    } finally {
      store.open();
      await engine.close();
    }
  });
});
