// The scheduling layer's own cost: 10,000 and 100,000 no-op jobs in three shapes
// (seeded random DAG, fan-out, chain) through the real Engine with the memory stores
// and an executor that succeeds at once, against a baseline in the same process that
// drives the same DAG with a bare p-queue loop (same concurrency; a job is added to the
// queue when its last need finishes). The order of the variants rotates every round;
// medians.
// A third variant runs the Engine on a store that keeps records by reference (no JSON
// copies), to split the engine's own cost from MemoryStore's.
//
// The spec is built with definePipeline (the object form, validated like YAML). The
// YAML parser is timed on its own: parsing a 100,000-job file takes minutes (it grows
// quadratically), so it would hide the engine; ENGINE_BENCH_PARSE=0 skips it.
//
// Memory, per finished job:
//  - retained: heap used after a full GC once the run has finished, with the engine,
//    its stores and the report still referenced, minus the heap after GC before the
//    round (needs --expose-gc, which bench/run.mjs passes). That is what a finished run
//    keeps: the store's records and the report the caller holds; measured once more
//    after dropping the report.
//  - peak: the highest heap used sampled every 1,000 jobs during the round, minus the
//    heap before the round.
//  - peak RSS: each variant once more in a fresh child process, max RSS (getrusage)
//    minus the RSS after building the spec, divided by the job count.
//
// ENGINE_BENCH_ROUNDS (default 3), ENGINE_BENCH_SIZES (default 10000,100000),
// ENGINE_BENCH_SHAPES (default random,fanout,chain), ENGINE_BENCH_RSS=0 skips the
// child processes.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { definePipeline, Engine, parsePipeline, seededRandom } from '@pipewright/core';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
import PQueue from 'p-queue';
import { median } from './lib.mjs';

const CONCURRENCY = 8;
const ROUNDS = Number(process.env.ENGINE_BENCH_ROUNDS ?? 3);
const SIZES = (process.env.ENGINE_BENCH_SIZES ?? '10000,100000').split(',').map(Number);
const SHAPES = (process.env.ENGINE_BENCH_SHAPES ?? 'random,fanout,chain').split(',');
const gc = globalThis.gc ?? (() => {});
const heap = () => process.memoryUsage().heapUsed;

/** needs[i] = indexes of the jobs job i needs. */
function shapeOf(shape, n) {
  const needs = new Array(n);
  if (shape === 'chain') for (let i = 0; i < n; i++) needs[i] = i === 0 ? [] : [i - 1];
  else if (shape === 'fanout') for (let i = 0; i < n; i++) needs[i] = i === 0 ? [] : [0];
  else {
    // Each job needs 0-3 distinct jobs among the 20 before it (like bench/run.bench.mjs).
    // Seeded (core's mulberry32), so the random DAG is the same on every run.
    const rnd = seededRandom(42);
    for (let i = 0; i < n; i++) {
      const set = new Set();
      const k = i === 0 ? 0 : Math.floor(rnd() * 4);
      for (let t = 0; t < k; t++) set.add(Math.max(0, i - 1 - Math.floor(rnd() * Math.min(20, i))));
      needs[i] = [...set];
    }
  }
  return needs;
}

function objectOf(name, needs) {
  const jobs = {};
  for (let i = 0; i < needs.length; i++) {
    const job = { 'runs-on': 'local', steps: [{ run: 'true' }] };
    if (needs[i].length) job.needs = needs[i].map((x) => `j${x}`);
    jobs[`j${i}`] = job;
  }
  return { name, on: 'workflow_dispatch', jobs };
}

function yamlOf(name, needs) {
  const lines = [`name: ${name}`, 'on: workflow_dispatch', 'jobs:'];
  for (let i = 0; i < needs.length; i++) {
    lines.push(`  j${i}:`, '    runs-on: local');
    if (needs[i].length) lines.push(`    needs: [${needs[i].map((x) => `j${x}`).join(', ')}]`);
    lines.push('    steps:', '      - run: "true"');
  }
  return `${lines.join('\n')}\n`;
}

let sampled = 0;
let peakHeap = 0;
function sample() {
  if (++sampled % 1000 === 0) {
    const h = heap();
    if (h > peakHeap) peakHeap = h;
  }
}

const OK = Object.freeze({ status: 'succeeded', workerId: 'noop', steps: [], outputs: {} });
const noopExecutor = {
  name: 'noop',
  async runJob() {
    sample();
    return { ...OK, steps: [], outputs: {} };
  },
};

/** The floor: the same DAG on a bare p-queue, a job queued when its last need finishes. */
async function baseline(spec) {
  const ids = Object.keys(spec.jobs);
  const index = new Map(ids.map((id, i) => [id, i]));
  const remaining = new Int32Array(ids.length);
  const dependents = ids.map(() => []);
  ids.forEach((id, i) => {
    const needs = spec.jobs[id].needs;
    remaining[i] = needs.length;
    for (const n of needs) dependents[index.get(n)].push(i);
  });
  const queue = new PQueue({ concurrency: CONCURRENCY });
  const results = new Array(ids.length);
  let done = 0;
  return new Promise((resolve) => {
    const start = (i) => {
      queue
        .add(() => noopExecutor.runJob())
        .then((outcome) => {
          results[i] = outcome;
          done++;
          for (const d of dependents[i]) if (--remaining[d] === 0) start(d);
          if (done === ids.length) resolve(results);
        });
    };
    for (let i = 0; i < ids.length; i++) if (remaining[i] === 0) start(i);
  });
}

/** A StateStore that keeps the engine's records by reference: no copies, no JSON. */
class RefStore {
  runs = new Map();
  async createRun(run, jobs) {
    this.runs.set(run.id, { run, jobs: new Map(jobs.map((j) => [j.id, j])) });
    return { run, created: true };
  }
  async getRun(id) {
    return this.runs.get(id)?.run;
  }
  async listRuns() {
    return [...this.runs.values()].map((r) => r.run);
  }
  async updateRun(id, patch) {
    const r = this.runs.get(id);
    Object.assign(r.run, patch);
    return r.run;
  }
  async getJobs(id) {
    return [...(this.runs.get(id)?.jobs.values() ?? [])];
  }
  async addJobs(id, jobs) {
    for (const j of jobs) this.runs.get(id).jobs.set(j.id, j);
  }
  async putJob(job) {
    this.runs.get(job.runId).jobs.set(job.id, job);
  }
  async putJobs(jobs) {
    for (const job of jobs) this.runs.get(job.runId).jobs.set(job.id, job);
  }
  async acquireLease() {
    return true;
  }
  async renewLease() {
    return true;
  }
  async releaseLease() {}
}

async function viaEngine(spec, store = new MemoryStore()) {
  const logs = new MemoryLogStore();
  const engine = new Engine({ store, logs, executors: [noopExecutor], concurrency: CONCURRENCY });
  const run = await engine.submit(spec);
  const report = await run.wait();
  if (report.run.status !== 'succeeded' || report.jobs.length !== Object.keys(spec.jobs).length) {
    throw new Error(`engine run ended ${report.run.status} with ${report.jobs.length} jobs`);
  }
  await engine.close();
  return { engine, store, logs, report };
}

// Module-level, so the run's objects stay reachable until both measurements are taken.
let pinned;

async function measure(fn, spec, n) {
  gc();
  gc();
  const before = heap();
  peakHeap = before;
  const t0 = process.hrtime.bigint();
  pinned = await fn(spec);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const peak = peakHeap;
  gc();
  gc();
  const retained = heap() - before;
  // The same without the report the caller holds: what the engine and its stores keep.
  if (pinned?.report) pinned.report = undefined;
  gc();
  gc();
  const stored = heap() - before;
  pinned = undefined;
  return { ms, retainedPerJob: retained / n, storedPerJob: stored / n, peakPerJob: (peak - before) / n };
}

const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

// ---- child mode: one variant in a fresh process, for its peak RSS -------------------
if (process.argv[2] === '--child') {
  const [, , , variant, shape, nText] = process.argv;
  const n = Number(nText);
  const spec = definePipeline(objectOf(`bench-${shape}`, shapeOf(shape, n)));
  gc();
  const rss0 = process.memoryUsage().rss;
  const maxBefore = process.resourceUsage().maxRSS * 1024;
  if (variant === 'engine') await viaEngine(spec);
  else if (variant === 'ref') await viaEngine(spec, new RefStore());
  else await baseline(spec);
  const maxRss = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ rss0, maxBefore, maxRss, perJob: (maxRss - Math.max(rss0, maxBefore)) / n }));
  process.exit(0);
}

// ---- main ---------------------------------------------------------------------------
console.log(
  `engine vs bare p-queue loop, concurrency ${CONCURRENCY}, ${ROUNDS} alternating rounds, median; node ${process.version}`,
);
const rows = [];
for (const n of SIZES) {
  for (const shape of SHAPES) {
    const needs = shapeOf(shape, n);
    const edges = needs.reduce((s, x) => s + x.length, 0);
    const td = process.hrtime.bigint();
    const spec = definePipeline(objectOf(`bench-${shape}`, needs));
    const defineMs = Number(process.hrtime.bigint() - td) / 1e6;
    let parseMs;
    if (process.env.ENGINE_BENCH_PARSE !== '0' && n <= 10_000) {
      const tp = process.hrtime.bigint();
      parsePipeline(yamlOf(`bench-${shape}`, needs), { maxBytes: 1 << 28 });
      parseMs = Number(process.hrtime.bigint() - tp) / 1e6;
    }
    // Warm-up on a small slice so JIT state is comparable for all variants.
    if (n === SIZES[0] && shape === SHAPES[0]) {
      const small = definePipeline(objectOf('warm', shapeOf(shape, 2000)));
      await baseline(small);
      await viaEngine(small);
      await viaEngine(small, new RefStore());
    }
    const eng = [];
    const base = [];
    const ref = [];
    const variants = [
      () => measure(baseline, spec, n).then((x) => base.push(x)),
      () => measure(viaEngine, spec, n).then((x) => eng.push(x)),
      () => measure((s) => viaEngine(s, new RefStore()), spec, n).then((x) => ref.push(x)),
    ];
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order so every variant sees the same drift of the machine.
      for (let v = 0; v < variants.length; v++) await variants[(v + r) % variants.length]();
    }
    const row = {
      shape,
      n,
      edges,
      parseMs,
      defineMs,
      baseMs: median(base.map((x) => x.ms)),
      engMs: median(eng.map((x) => x.ms)),
      refMs: median(ref.map((x) => x.ms)),
      refRetained: median(ref.map((x) => x.retainedPerJob)),
      engStored: median(eng.map((x) => x.storedPerJob)),
      ratios: eng.map((e, i) => e.ms / base[i].ms),
      engRetained: median(eng.map((x) => x.retainedPerJob)),
      baseRetained: median(base.map((x) => x.retainedPerJob)),
      engPeak: median(eng.map((x) => x.peakPerJob)),
      basePeak: median(base.map((x) => x.peakPerJob)),
    };
    row.ratio = row.engMs / row.baseMs;
    rows.push(row);
    const parsed = parseMs === undefined ? '' : `, YAML parse ${fmt(parseMs)} ms`;
    console.log(
      `${shape.padEnd(7)} ${fmt(n).padStart(7)} jobs (${fmt(edges)} edges; definePipeline ${fmt(defineMs)} ms${parsed}): ` +
        `baseline ${fmt(row.baseMs)} ms = ${fmt((n / row.baseMs) * 1000)} jobs/s, ` +
        `engine ${fmt(row.engMs)} ms = ${fmt((n / row.engMs) * 1000)} jobs/s, ratio ${fmt(row.ratio, 2)}x ` +
        `[engine on a by-reference store ${fmt(row.refMs)} ms = ${fmt((n / row.refMs) * 1000)} jobs/s, ` +
        `${fmt(row.refMs / row.baseMs, 2)}x, retained ${fmt(row.refRetained)} B/job] ` +
        `(rounds ${row.ratios.map((x) => fmt(x, 2)).join(' ')}); heap per job: engine retained ${fmt(row.engRetained)} B (without the report ${fmt(row.engStored)} B), ` +
        `peak ${fmt(row.engPeak)} B; baseline retained ${fmt(row.baseRetained)} B, peak ${fmt(row.basePeak)} B`,
    );
  }
}

if (process.env.ENGINE_BENCH_RSS !== '0') {
  const n = Math.max(...SIZES);
  const self = fileURLToPath(import.meta.url);
  for (const shape of SHAPES) {
    const out = {};
    for (const variant of ['baseline', 'engine', 'ref']) {
      const r = spawnSync(process.execPath, ['--expose-gc', self, '--child', variant, shape, String(n)], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`child ${variant} ${shape} failed: ${r.stderr}`);
      out[variant] = JSON.parse(r.stdout);
    }
    console.log(
      `peak RSS ${shape} ${fmt(n)} jobs (fresh process, max RSS minus RSS after building the spec): ` +
        `baseline ${fmt(out.baseline.perJob)} B/job, engine ${fmt(out.engine.perJob)} B/job ` +
        `(max RSS ${fmt(out.engine.maxRss / 2 ** 20)} MiB), engine on a by-reference store ${fmt(out.ref.perJob)} B/job`,
    );
  }
}

const worst = rows.reduce((a, b) => (b.ratio > a.ratio ? b : a));
const worstMem = rows.reduce((a, b) => (b.engRetained > a.engRetained ? b : a));
console.log(
  `target engine <= 3x baseline: ${worst.ratio <= 3 ? 'met' : 'NOT met'} (worst ${worst.shape} ${fmt(worst.n)}: ${fmt(worst.ratio, 2)}x); ` +
    `target < 2 KiB per finished job: ${worstMem.engRetained < 2048 ? 'met' : 'NOT met'} (worst retained ${fmt(worstMem.engRetained)} B with the report, ${fmt(worstMem.engStored)} B without)`,
);
