import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttemptSpec, JobSpec, StepSpec } from '@pipewright/core';
import { attemptSpec } from '@pipewright/core/testing';
import { processAlive } from '@pipewright/executors';

/** Builds an attempt of one job from partial steps (2 s kill grace, as these tests expect). */
export function attemptOf(
  steps: Partial<StepSpec>[],
  job: Partial<JobSpec> = {},
  top: Partial<AttemptSpec> = {},
): AttemptSpec {
  return attemptSpec(steps, { killGraceMs: 2000, ...job }, top);
}

export { collectingContext } from '@pipewright/core/testing';

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
