// Process executor: per-step overhead and stdout throughput of ProcessExecutor
// (workspace dir, runSteps, script file, process group, file commands) against a
// baseline that spawns `bash -e script` directly, side by side in this process.
// Run: npx tsc -b packages/executors && node bench/process-executor.bench.mjs
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RETRY } from '@pipewright/core';
import { ProcessExecutor } from '@pipewright/executors';
import { median } from './lib.mjs';

const STEPS = Number(process.env.PROC_BENCH_STEPS ?? 40);
const BYTES = Number(process.env.PROC_BENCH_BYTES ?? 64 * 1024 * 1024);
const ROUNDS = Number(process.env.PROC_BENCH_ROUNDS ?? 3);

const root = await mkdtemp(join(tmpdir(), 'pw-bench-'));
const executor = new ProcessExecutor({ workRoot: root });

function attempt(runs) {
  return {
    runId: 'bench',
    jobId: 'job',
    jobKey: 'job',
    attempt: 1,
    matrix: {},
    env: {},
    defaults: {},
    contexts: {},
    job: {
      id: 'job',
      needs: [],
      runsOn: ['local'],
      timeoutMs: 600_000,
      continueOnError: false,
      outputs: {},
      env: {},
      defaults: {},
      retry: DEFAULT_RETRY,
      killGraceMs: 1000,
      steps: runs.map((run, index) => ({ index, run, with: {}, env: {}, continueOnError: false })),
    },
  };
}

function ctx(onChunk) {
  return {
    signal: new AbortController().signal,
    output: (_s, _i, c) => onChunk(c),
    secrets: {},
    avoidWorkers: [],
    actions: new Map(),
  };
}

async function baselineRun(script) {
  const file = join(root, `baseline-${Math.random().toString(36).slice(2)}.sh`);
  await writeFile(file, script);
  let bytes = 0;
  await new Promise((resolve, reject) => {
    const child = spawn('bash', ['-e', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c) => {
      bytes += c.length;
    });
    child.on('error', reject);
    child.on('close', resolve);
  });
  await rm(file);
  return bytes;
}

async function time(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const overhead = { exec: [], base: [] };
const throughput = { exec: [], base: [] };
for (let r = 0; r < ROUNDS; r++) {
  overhead.exec.push(
    await time(async () => {
      const out = await executor.runJob(
        attempt(Array.from({ length: STEPS }, () => 'true')),
        ctx(() => {}),
      );
      if (out.status !== 'succeeded') throw new Error(out.message);
    }),
  );
  overhead.base.push(
    await time(async () => {
      for (let i = 0; i < STEPS; i++) await baselineRun('true');
    }),
  );
  let got = 0;
  throughput.exec.push(
    await time(async () => {
      await executor.runJob(
        attempt([`head -c ${BYTES} /dev/zero`]),
        ctx((c) => {
          got += c.byteLength;
        }),
      );
    }),
  );
  if (got !== BYTES) throw new Error(`executor delivered ${got} of ${BYTES} bytes`);
  throughput.base.push(
    await time(async () => {
      const b = await baselineRun(`head -c ${BYTES} /dev/zero`);
      if (b !== BYTES) throw new Error('baseline lost bytes');
    }),
  );
}
// Workspaces are removed after each attempt's outcome; close() waits for the last ones.
await executor.close();
await rm(root, { recursive: true, force: true });

const stepExec = median(overhead.exec) / STEPS;
const stepBase = median(overhead.base) / STEPS;
const mbps = (ms) => BYTES / 1024 / 1024 / (ms / 1000);
const tpExec = mbps(median(throughput.exec));
const tpBase = mbps(median(throughput.base));
console.log(`per step (${STEPS} steps of \`true\`, median of ${ROUNDS}):`);
console.log(`  ProcessExecutor  ${stepExec.toFixed(2)} ms/step`);
console.log(`  bare spawn       ${stepBase.toFixed(2)} ms/step`);
console.log(`  ratio            ${(stepExec / stepBase).toFixed(2)}x`);
console.log(`stdout throughput (${BYTES / 1024 / 1024} MiB, median of ${ROUNDS}):`);
console.log(`  ProcessExecutor  ${tpExec.toFixed(0)} MiB/s`);
console.log(`  bare spawn       ${tpBase.toFixed(0)} MiB/s`);
console.log(`  ratio            ${(tpExec / tpBase).toFixed(2)}x of baseline`);
