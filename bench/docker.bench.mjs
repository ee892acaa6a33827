// Docker executor: 50 one-step jobs (`true`), 4 at a time, through DockerExecutor
// (image check, temp workspace + bind mount, labelled container, runSteps with its
// step files, pid-wrapped exec, inspect, force remove) against a baseline doing the
// bare minimum with dockerode: temp dir, create (same keep-alive + bind mount),
// start, exec `sh -e script`, drain, inspect, force remove. Rounds alternate so
// both sides see the same machine load; we report the median and the best round.
// Needs a running engine and the test image: .ci/services/docker.sh
// Run: npx tsc -b packages/executors && node bench/docker.bench.mjs
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RETRY } from '@pipewright/core';
import { DockerExecutor } from '@pipewright/executors';
import Docker from 'dockerode';
import { median } from './lib.mjs';

const JOBS = Number(process.env.DOCKER_BENCH_JOBS ?? 50);
const CONCURRENCY = Number(process.env.DOCKER_BENCH_CONCURRENCY ?? 4);
const ROUNDS = Number(process.env.DOCKER_BENCH_ROUNDS ?? 5);
const IMAGE = process.env.DOCKER_TEST_IMAGE ?? 'pipewright-test/busybox:latest';
const ENGINE = `pwbench-${process.pid}`;
const KEEPALIVE = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 3600 & wait; done'];

const docker = new Docker();
try {
  await docker.ping();
  await docker.getImage(IMAGE).inspect();
} catch (e) {
  console.log(`docker bench skipped: no engine or no ${IMAGE} (${e.message}); run .ci/services/docker.sh`);
  process.exit(0);
}

const executor = new DockerExecutor({ engineId: ENGINE, network: 'none', defaultImage: IMAGE });
await executor.start();

function attempt(n) {
  return {
    runId: 'bench',
    jobId: `job-${n}`,
    jobKey: 'job',
    attempt: 1,
    matrix: {},
    env: {},
    defaults: {},
    contexts: {},
    job: {
      id: 'job',
      needs: [],
      runsOn: ['docker'],
      container: { image: IMAGE, env: {}, volumes: [], network: 'none' },
      timeoutMs: 600_000,
      continueOnError: false,
      outputs: {},
      env: {},
      defaults: {},
      retry: DEFAULT_RETRY,
      killGraceMs: 1000,
      steps: [{ index: 0, run: 'true', with: {}, env: {}, continueOnError: false }],
    },
  };
}

function ctx() {
  return {
    signal: new AbortController().signal,
    secrets: {},
    avoidWorkers: [],
    actions: new Map(),
    output() {},
  };
}

async function viaExecutor(n) {
  const out = await executor.runJob(attempt(n), ctx());
  if (out.status !== 'succeeded') throw new Error(`job ${n} ${out.status}: ${out.message}`);
}

async function baseline(n) {
  const dir = await mkdtemp(join(tmpdir(), 'pw-docker-bench-'));
  await writeFile(join(dir, 'step.sh'), 'true\n');
  const c = await docker.createContainer({
    Image: IMAGE,
    Entrypoint: KEEPALIVE.slice(0, 1),
    Cmd: KEEPALIVE.slice(1),
    Labels: { 'pipewright.managed': 'true', 'pipewright.engine': ENGINE },
    HostConfig: { NetworkMode: 'none', Binds: [`${dir}:/__w/workspace`] },
  });
  try {
    await c.start();
    const exec = await c.exec({ Cmd: ['sh', '-e', '/__w/workspace/step.sh'], AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    await new Promise((resolve) => {
      docker.modem.demuxStream(stream, { write() {} }, { write() {} });
      stream.once('end', resolve);
      stream.once('close', resolve);
    });
    let info = await exec.inspect();
    while (info.Running) info = await exec.inspect();
    if (info.ExitCode !== 0) throw new Error(`baseline job ${n} exited ${info.ExitCode}`);
  } finally {
    await c.remove({ force: true });
    await rm(dir, { recursive: true, force: true });
  }
}

async function pool(fn) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < JOBS) await fn(next++);
    }),
  );
  return performance.now() - t0;
}

// Warm-up: first container creation pays for overlay and image caches.
await pool(baseline);
await pool(viaExecutor);

const base = [];
const pw = [];
for (let r = 0; r < ROUNDS; r++) {
  base.push(await pool(baseline));
  pw.push(await pool(viaExecutor));
}
const mb = median(base);
const mp = median(pw);
console.log(`${JOBS} one-step jobs, concurrency ${CONCURRENCY}, ${ROUNDS} rounds (median)`);
console.log(
  `  bare dockerode : ${mb.toFixed(0)} ms  (${(mb / JOBS).toFixed(1)} ms/job)  rounds ${base.map((x) => x.toFixed(0)).join(', ')}`,
);
console.log(
  `  DockerExecutor : ${mp.toFixed(0)} ms  (${(mp / JOBS).toFixed(1)} ms/job)  rounds ${pw.map((x) => x.toFixed(0)).join(', ')}`,
);
console.log(`  ratio (median) : ${(mp / mb).toFixed(2)}x  (target <= 1.20x)`);
// The fastest round of each side is the least disturbed by other load on a shared machine.
console.log(`  ratio (best)   : ${(Math.min(...pw) / Math.min(...base)).toFixed(2)}x`);
const left = await docker.listContainers({ all: true, filters: { label: [`pipewright.engine=${ENGINE}`] } });
if (left.length) {
  console.log(`  LEFTOVER containers: ${left.length}`);
  process.exitCode = 1;
}
