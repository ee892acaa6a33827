// `pipewright run` end to end: a generated 1,000-job DAG whose one step runs `true`,
// concurrency 8, through the CLI (one child process, timed from spawn to exit)
// against a baseline script (bench/run-baseline.mjs, also a child process timed from
// spawn to exit) that runs the same DAG with bare child_process.spawn: the same order,
// the same concurrency, the same shell invocation as the executor (`bash -e script`,
// own process group), one script file per job. Rounds alternate so both see the same
// machine load; the ratio to read is the median of the per-round ratios.
// Run: npx tsc -b && node --expose-gc bench/run.bench.mjs
// Before/after: RUN_BENCH_BEFORE_BIN=/path/to/old/packages/cli/bin/pipewright.js (an older commit built elsewhere).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib.mjs';

const JOBS = Number(process.env.RUN_BENCH_JOBS ?? 1000);
const CONCURRENCY = Number(process.env.RUN_BENCH_CONCURRENCY ?? 8);
const ROUNDS = Number(process.env.RUN_BENCH_ROUNDS ?? 3);
const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = join(HERE, '..', 'packages', 'cli', 'bin', 'pipewright.js');
const BASELINE = join(HERE, 'run-baseline.mjs');
// RUN_BENCH_SHM=0 skips the extra CLI run per round with workspaces on tmpfs.
const SHM = process.env.RUN_BENCH_SHM !== '0';
// Another build of the CLI (e.g. an older commit's, built elsewhere) timed in the same rounds, for before/after.
const BEFORE_BIN = process.env.RUN_BENCH_BEFORE_BIN;

// A seeded DAG: job i needs up to 3 of the 20 jobs before it, so the graph is wide
// (concurrency is what limits it) but every edge is real.
function makeDag(n, seed = 42) {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  const jobs = [];
  for (let i = 0; i < n; i++) {
    const needs = new Set();
    const k = i === 0 ? 0 : Math.floor(rand() * 4);
    for (let j = 0; j < k; j++) needs.add(Math.max(0, i - 1 - Math.floor(rand() * 20)));
    jobs.push({ id: `j${i}`, needs: [...needs].map((x) => `j${x}`) });
  }
  return jobs;
}

function toYaml(jobs) {
  const out = ['name: bench', 'jobs:'];
  for (const j of jobs) {
    out.push(`  ${j.id}:`, '    runs-on: local');
    if (j.needs.length) out.push(`    needs: [${j.needs.join(', ')}]`);
    out.push('    steps:', '      - run: "true"');
  }
  return `${out.join('\n')}\n`;
}

function timeCli(file, env = {}, bin = BIN) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, 'run', file, '--concurrency', String(CONCURRENCY), '--quiet'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`pipewright run exited ${code}: ${out}`));
      else resolve(performance.now() - t0);
    });
  });
}

function timeStartup() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [BIN, '--version'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve(performance.now() - t0));
  });
}

// The baseline is a script of its own (bench/run-baseline.mjs), timed like the CLI from spawn
// to exit: both pay node's start-up and their module loading, as the issue's "baseline script" does.
function timeBaseline(dagJson, root) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [BASELINE, dagJson, String(CONCURRENCY), root], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`run-baseline.mjs exited ${code}`));
      else resolve(performance.now() - t0);
    });
  });
}

const root = await mkdtemp(join(tmpdir(), 'pw-run-bench-'));
try {
  const jobs = makeDag(JOBS);
  const file = join(root, 'dag.yml');
  await writeFile(file, toYaml(jobs));
  const dagJson = join(root, 'dag.json');
  await writeFile(dagJson, JSON.stringify(jobs));
  console.log(
    `${JOBS} jobs, ${jobs.reduce((n, j) => n + j.needs.length, 0)} edges, concurrency ${CONCURRENCY}, ${ROUNDS} rounds`,
  );
  // Warm-up: page cache, JIT of the bench's own code.
  await timeBaseline(dagJson, root);
  await timeCli(file);
  const cli = [];
  const base = [];
  const startup = [];
  // Workspaces on tmpfs: shows how much of the gap is the step loop's file system work.
  const shm = SHM && existsSync('/dev/shm') ? '/dev/shm' : undefined;
  const cliShm = [];
  const before = [];
  if (BEFORE_BIN) await timeCli(file, {}, BEFORE_BIN);
  for (let r = 0; r < ROUNDS; r++) {
    base.push(await timeBaseline(dagJson, root));
    if (BEFORE_BIN) {
      before.push(await timeCli(file, {}, BEFORE_BIN));
      console.log(
        `round ${r + 1}: before (${BEFORE_BIN}) ${before[r].toFixed(0)} ms (${(before[r] / base[r]).toFixed(2)}x)`,
      );
    }
    cli.push(await timeCli(file));
    if (shm) cliShm.push(await timeCli(file, { TMPDIR: shm }));
    startup.push(await timeStartup());
    console.log(
      `round ${r + 1}: baseline ${base[r].toFixed(0)} ms, pipewright run ${cli[r].toFixed(0)} ms (${(cli[r] / base[r]).toFixed(2)}x)${shm ? `, with TMPDIR=${shm} ${cliShm[r].toFixed(0)} ms (${(cliShm[r] / base[r]).toFixed(2)}x)` : ''}`,
    );
  }
  const b = median(base);
  const c = median(cli);
  const st = median(startup);
  console.log('');
  console.log(`| measure | bare spawn | pipewright run | ratio |`);
  console.log(`| --- | --- | --- | --- |`);
  console.log(
    `| ${JOBS} jobs, median | ${b.toFixed(0)} ms (${(b / JOBS).toFixed(2)} ms/job) | ${c.toFixed(0)} ms (${(c / JOBS).toFixed(2)} ms/job) | **${(c / b).toFixed(2)}x** |`,
  );
  const ratios = cli.map((x, i) => x / base[i]);
  console.log(
    `| ${JOBS} jobs, median of the per-round ratios (${ratios.map((x) => x.toFixed(2)).join(', ')}) | | | **${median(ratios).toFixed(2)}x** |`,
  );
  if (BEFORE_BIN) {
    const br = before.map((x, i) => x / base[i]);
    console.log(
      `| before, median | | ${median(before).toFixed(0)} ms | ${(median(before) / b).toFixed(2)}x (per-round ratios ${br.map((x) => x.toFixed(2)).join(', ')}, median ${median(br).toFixed(2)}x) |`,
    );
  }
  if (shm) {
    const m = median(cliShm);
    console.log(
      `| workspaces on tmpfs (\`TMPDIR=${shm}\`), median | | ${m.toFixed(0)} ms (${(m / JOBS).toFixed(2)} ms/job) | ${(m / b).toFixed(2)}x |`,
    );
  }
  console.log(`| CLI start-up alone (\`pipewright --version\`), median | | ${st.toFixed(0)} ms | |`);
  console.log(
    `overhead per job: ${((c - b) / JOBS).toFixed(2)} ms (medians), ${(median(cli.map((x, i) => x - base[i])) / JOBS).toFixed(2)} ms (median of per-round differences); target ratio <= 1.3x`,
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
