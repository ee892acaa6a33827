import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttemptSpec, ExecContext, JobSpec, StepSpec } from '@pipewright/core';
import { DEFAULT_RETRY } from '@pipewright/core';
import { processAlive } from '@pipewright/executors';

/** Builds an attempt of one job from partial steps. */
export function attemptOf(
  steps: Partial<StepSpec>[],
  job: Partial<JobSpec> = {},
  top: Partial<AttemptSpec> = {},
): AttemptSpec {
  const spec: JobSpec = {
    id: 'build',
    needs: [],
    runsOn: ['local'],
    timeoutMs: 60_000,
    continueOnError: false,
    outputs: {},
    env: {},
    defaults: {},
    retry: DEFAULT_RETRY,
    killGraceMs: 2000,
    steps: steps.map((s, index) => ({ index, with: {}, env: {}, continueOnError: false, ...s })),
    ...job,
  };
  return {
    runId: 'run-1',
    jobId: 'build',
    jobKey: 'build',
    attempt: 1,
    job: spec,
    matrix: {},
    env: {},
    defaults: {},
    contexts: {},
    ...top,
  };
}

/** An ExecContext that collects output per step and stream. */
export function collectingContext(over: Partial<ExecContext> = {}) {
  const chunks = new Map<string, Buffer[]>();
  const ctx: ExecContext = {
    signal: new AbortController().signal,
    output: (stream, step, chunk) => {
      const key = `${step}:${stream}`;
      const list = chunks.get(key) ?? [];
      list.push(Buffer.from(chunk));
      chunks.set(key, list);
    },
    secrets: {},
    avoidWorkers: [],
    actions: new Map(),
    ...over,
  };
  const text = (step: number, stream: 'stdout' | 'stderr' = 'stdout') =>
    Buffer.concat(chunks.get(`${step}:${stream}`) ?? []).toString();
  return { ctx, text };
}

/** A temporary directory removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Reads pids written one per line by a step. */
export async function readPids(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Waits until `file` exists with at least `n` pids in it. */
export async function waitForPids(file: string, n: number, timeoutMs = 10_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await readPids(file).catch(() => []);
    if (pids.length >= n) return pids;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} pids in ${file}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The pids among `pids` that are still alive (zombies count as dead). */
export async function alive(pids: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of pids) if (await processAlive(p)) out.push(p);
  return out;
}

/** Last-resort cleanup so a failing test never leaves processes behind. */
export function killAll(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {}
  }
}
