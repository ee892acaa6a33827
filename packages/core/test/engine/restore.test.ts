// biome-ignore-all lint/suspicious/noExplicitAny: scheduler commands are matched loosely in these scenario tests
import {
  initialJobs,
  type JobRecord,
  parsePipeline,
  type RunRecord,
  Scheduler,
  type SchedulerCommand,
  seededRandom,
} from '@pipewright/core';
import { runRecord } from '@pipewright/core/testing';
import { describe, expect, it } from 'vitest';

// The scheduler driven directly: snapshot runs mid-flight, restore them into a fresh scheduler
// (what recover() does after a crash) and play the executor's answers.
let now = 1000;
const scheduler = () =>
  new Scheduler({
    now: () => now,
    random: seededRandom(1),
    concurrency: 10,
    executors: [{ name: 'p', capacity: 10 }],
    route: () => ({ executor: 'p' }),
  });
let n = 0;
function runOf(yaml: string): { run: RunRecord; jobs: JobRecord[] } {
  const { spec } = parsePipeline(yaml);
  const id = `R${++n}`;
  const run = runRecord(spec, { id, createdAt: now });
  return { run, jobs: initialJobs(id, spec, now) };
}
const ok = { status: 'succeeded', workerId: 'w', steps: [], outputs: {} } as const;
const starts = (cmds: SchedulerCommand[]) =>
  cmds.filter((c) => c.type === 'start').map((c: any) => ({ runId: c.runId, jobId: c.jobId, attempt: c.attempt }));
const snap = (s: Scheduler, id: string) => structuredClone(s.snapshot(id)) as { run: RunRecord; jobs: JobRecord[] };

/** Answers every start with success until nothing more starts; returns the job ids started per wave. */
function drive(s: Scheduler, first: ReturnType<typeof starts>): string[][] {
  const waves: string[][] = [];
  let pending = first;
  for (let round = 0; round < 50 && pending.length; round++) {
    const next: ReturnType<typeof starts> = [];
    waves.push(pending.map((p) => p.jobId));
    for (const p of pending) {
      next.push(...starts(s.handle({ type: 'attemptFinished', ...p, outcome: ok as any })));
    }
    now += 5000;
    next.push(...starts(s.handle({ type: 'tick' })));
    pending = next;
  }
  return waves;
}

describe('4.8 recover() with concurrency groups', () => {
  it('does not expand a dynamic matrix a second time when its first instance waits on a group', () => {
    const s = scheduler();
    const hold = runOf('jobs:\n  h: {runs-on: x, concurrency: deploy-a, steps: [{run: x}]}\n');
    const dyn = runOf(
      'jobs:\n  d:\n    runs-on: x\n    concurrency: "deploy-${{ matrix.env }}"\n' +
        '    strategy: {matrix: "${{ fromJSON(\'{\\"env\\":[\\"a\\",\\"b\\"]}\') }}"}\n' +
        '    retry: {max-attempts: 3}\n    steps: [{run: x}]\n',
    );
    s.handle({ type: 'submit', ...hold });
    s.handle({ type: 'submit', ...dyn });
    const h = snap(s, hold.run.id);
    const d = snap(s, dyn.run.id);
    expect(d.jobs.map((j) => `${j.id}:${j.status}`)).toEqual(['d (a):pending', 'd (b):running']);

    const s2 = scheduler();
    const first = [...starts(s2.handle({ type: 'restore', ...h })), ...starts(s2.handle({ type: 'restore', ...d }))];
    now += 5000;
    first.push(...starts(s2.handle({ type: 'tick' })));
    drive(s2, first);
    expect(s2.runIds()).toEqual([]);
    const jobs = (s2.snapshot(dyn.run.id) ?? d).jobs;
    expect(jobs.map((j) => j.id).sort()).toEqual(['d (a)', 'd (b)']);
  });

  it('restores a waiter whose group is free without taking a max-parallel slot twice', () => {
    const s = scheduler();
    const holder = runOf('jobs:\n  h: {runs-on: x, concurrency: g-2, steps: [{run: x}]}\n');
    const matrix = runOf(
      'jobs:\n  m:\n    runs-on: x\n    concurrency: "g-${{ matrix.n }}"\n' +
        '    strategy: {max-parallel: 2, matrix: {n: [1, 2, 3, 4]}}\n    retry: {max-attempts: 3}\n    steps: [{run: x}]\n',
    );
    s.handle({ type: 'submit', ...holder });
    s.handle({ type: 'submit', ...matrix });
    const s2 = scheduler();
    // The holder was lost in the crash: its group is free when the matrix's waiter is restored.
    const first = [
      ...starts(s2.handle({ type: 'restore', ...snap(s, holder.run.id) })),
      ...starts(s2.handle({ type: 'restore', ...snap(s, matrix.run.id) })),
    ];
    now += 5000;
    first.push(...starts(s2.handle({ type: 'tick' })));
    // Two instances may run at once: the slot count must stay right after the restore.
    const waves = drive(s2, first).map((w) => w.filter((id) => id.startsWith('m (')).length);
    expect(Math.max(...waves)).toBe(2);
    expect(waves.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(4);
    expect(s2.runIds()).toEqual([]);
  });
});

describe('4.8 recover(): holders before waiters', () => {
  it("gives a newer run's job back the job-level group it held before an older run's waiter may take it", () => {
    const s = scheduler();
    const older = runOf(
      'jobs:\n  a1: {runs-on: x, steps: [{run: x}]}\n' +
        '  a2: {runs-on: x, needs: a1, concurrency: deploy, steps: [{run: x}]}\n',
    );
    const newer = runOf('jobs:\n  b: {runs-on: x, concurrency: deploy, retry: {max-attempts: 3}, steps: [{run: x}]}\n');
    s.handle({ type: 'submit', ...older });
    s.handle({ type: 'submit', ...newer });
    // b holds `deploy` while a1 runs; when a1 ends, a2 waits for the group.
    s.handle({ type: 'attemptFinished', runId: older.run.id, jobId: 'a1', attempt: 1, outcome: ok as any });
    const a = snap(s, older.run.id);
    const b = snap(s, newer.run.id);
    expect(a.jobs.find((j) => j.id === 'a2')?.status).toBe('pending');
    expect(b.jobs.find((j) => j.id === 'b')?.status).toBe('running');

    // The engine crashed; recover() restores both, oldest first.
    const s2 = scheduler();
    const first = starts(s2.handle({ type: 'restoreAll', runs: [a, b] })).map((x) => x.jobId);
    expect(first).not.toContain('a2');
    now += 5000;
    const retried = starts(s2.handle({ type: 'tick' }));
    expect(retried.map((x) => x.jobId)).toEqual(['b']);
    expect(s2.snapshot(older.run.id)?.jobs.find((j) => j.id === 'a2')?.status).toBe('pending');
    // Only once b is done does a2 get the group.
    const next = starts(
      s2.handle({ type: 'attemptFinished', ...(retried[0] as (typeof retried)[number]), outcome: ok as any }),
    );
    expect(next.map((x) => x.jobId)).toEqual(['a2']);
  });

  it('lets a queued run take its run-level group only after a started run of that group is restored', () => {
    const s = scheduler();
    const running = runOf('concurrency: ship\njobs:\n  r: {runs-on: x, retry: {max-attempts: 2}, steps: [{run: x}]}\n');
    const queued = runOf('concurrency: ship\njobs:\n  q: {runs-on: x, steps: [{run: x}]}\n');
    // The engine resolves the run-level group at submit; the scheduler reads it from the record.
    running.run.concurrencyGroup = 'ship';
    queued.run.concurrencyGroup = 'ship';
    s.handle({ type: 'submit', ...running });
    s.handle({ type: 'submit', ...queued });
    const r = snap(s, running.run.id);
    const q = snap(s, queued.run.id);
    expect(q.run.status).toBe('queued');
    // Restored out of order (the queued run first): it must still wait for the running one.
    const s2 = scheduler();
    const first = starts(s2.handle({ type: 'restoreAll', runs: [q, r] })).map((x) => x.jobId);
    expect(first).not.toContain('q');
    expect(s2.snapshot(queued.run.id)?.run.status).toBe('queued');
  });
});

describe('4.8 recover(): settings in needs order', () => {
  it('still counts a need that failed under continue-on-error as a success when its dependent is listed first', () => {
    const fail = { status: 'failed', reason: 'exit_code', exitCode: 1, workerId: 'w', steps: [], outputs: {} } as const;
    const s = scheduler();
    // b and d are listed before a: restore must apply a's continue-on-error before it builds their needs context.
    const r = runOf(
      'jobs:\n' +
        '  b: {runs-on: x, needs: a, retry: {max-attempts: 2}, steps: [{run: x}]}\n' +
        '  d: {runs-on: x, needs: [a, c], steps: [{run: x}]}\n' +
        '  a: {runs-on: x, continue-on-error: true, steps: [{run: x}]}\n' +
        '  c: {runs-on: x, retry: {max-attempts: 2}, steps: [{run: x}]}\n',
    );
    const id = r.run.id;
    s.handle({ type: 'submit', ...r });
    s.handle({ type: 'attemptFinished', runId: id, jobId: 'a', attempt: 1, outcome: fail as any });
    const before = snap(s, id);
    expect(Object.fromEntries(before.jobs.map((j) => [j.id, j.status]))).toEqual({
      a: 'failed',
      b: 'running',
      c: 'running',
      d: 'pending',
    });
    const s2 = scheduler();
    s2.handle({ type: 'restoreAll', runs: [before] });
    now += 60_000;
    const retried = starts(s2.handle({ type: 'tick' }));
    expect(retried.map((x) => x.jobId).sort()).toEqual(['b', 'c']);
    s2.handle({ type: 'attemptFinished', runId: id, jobId: 'b', attempt: 2, outcome: ok as any });
    const next = starts(s2.handle({ type: 'attemptFinished', runId: id, jobId: 'c', attempt: 2, outcome: ok as any }));
    expect(next.map((x) => x.jobId)).toEqual(['d']);
  });
});

describe('4.8 a lost attempt after recover()', () => {
  it('ends the step it was running, emits attempt:finished and keeps the worker recorded at start', () => {
    const s = new Scheduler({
      now: () => now,
      random: seededRandom(1),
      concurrency: 10,
      executors: [{ name: 'p', capacity: 10, workerId: 'host-a/process' }],
      route: () => ({ executor: 'p' }),
    });
    const { run, jobs } = runOf('jobs:\n  a: {runs-on: x, steps: [{run: one}, {run: two}]}\n');
    const first = starts(s.handle({ type: 'submit', run, jobs }));
    expect(first).toEqual([{ runId: run.id, jobId: 'a', attempt: 1 }]);
    // Recorded before the executor is called: the start's own store write carries the worker.
    expect(s.drainDirty().jobs.find((j) => j.id === 'a')?.attempts[0]?.workerId).toBe('host-a/process');
    s.handle({ type: 'stepStarted', runId: run.id, jobId: 'a', attempt: 1, index: 0, name: 'one', at: now });
    const crashed = snap(s, run.id);

    now += 1000;
    const after = scheduler();
    const cmds = after.handle({ type: 'restoreAll', runs: [crashed] });
    // The run ends with its only job: its final records ride on the runFinished command.
    const finished = cmds.find((c) => c.type === 'runFinished') as Extract<SchedulerCommand, { type: 'runFinished' }>;
    const lost = finished.jobs.find((j) => j.id === 'a');
    expect(lost?.status).toBe('failed');
    expect(lost?.reason).toBe('lost');
    const attempt = lost?.attempts[0];
    expect(attempt).toMatchObject({ status: 'failed', reason: 'lost', workerId: 'host-a/process', finishedAt: now });
    expect(attempt?.steps[0]).toMatchObject({
      status: 'failed',
      conclusion: 'failure',
      reason: 'lost',
      finishedAt: now,
    });
    const emitted = cmds.filter((c) => c.type === 'emit').map((c: any) => c.emit);
    expect(emitted).toContainEqual({
      event: 'attempt:finished',
      runId: run.id,
      jobId: 'a',
      attempt: 1,
      status: 'failed',
      reason: 'lost',
    });
  });

  it('records the worker an executor reports while the attempt runs (placed)', () => {
    const s = scheduler();
    const { run, jobs } = runOf('jobs:\n  a: {runs-on: x, steps: [{run: one}]}\n');
    s.handle({ type: 'submit', run, jobs });
    expect(s.drainDirty().jobs.find((j) => j.id === 'a')?.attempts[0]?.workerId).toBeUndefined();
    s.handle({ type: 'attemptWorker', runId: run.id, jobId: 'a', attempt: 1, workerId: 'container-1' });
    expect(s.drainDirty().jobs.find((j) => j.id === 'a')?.attempts[0]?.workerId).toBe('container-1');
  });
});
