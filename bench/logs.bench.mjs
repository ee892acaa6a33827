// Log pipeline: 1,000,000 lines of ~60 bytes through splitter -> masker (10 secrets)
// -> micro-batcher -> an in-memory LogStore, against a baseline that only splits
// lines (Buffer indexOf loop + toString), side by side in this process.
// Run: npx tsc -b packages/core && node --expose-gc bench/logs.bench.mjs
// (imports the built dist directly until the lead wires logs/ into the package index)
import { RunLogger } from '../packages/core/dist/logs/index.js';
import { median } from './lib.mjs';

const LINES = Number(process.env.LOG_BENCH_LINES ?? 1_000_000);
const CHUNK = 64 * 1024;
const ROUNDS = Number(process.env.LOG_BENCH_ROUNDS ?? 5);

const secrets = Array.from({ length: 10 }, (_, i) => `tok_${i}_${'Zq9x'.repeat(2 + i)}`);
const words = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu compile link test'.split(' ');
const lines = [];
for (let i = 0; i < LINES; i++) {
  let l = `${String(i).padStart(7, '0')} `;
  while (l.length < 59) l += `${words[(i * 7 + l.length) % words.length]} `;
  l = l.slice(0, 59);
  // 1 line in 100 prints a secret, so the masking path is exercised, not only the check.
  if (i % 100 === 0) l = `${l.slice(0, 20)} ${secrets[i % 10]}`;
  lines.push(l);
}
const all = Buffer.from(`${lines.join('\n')}\n`);
lines.length = 0;
const chunks = [];
for (let o = 0; o < all.length; o += CHUNK) chunks.push(all.subarray(o, o + CHUNK));

function baseline() {
  let n = 0;
  let chars = 0;
  let pending = null;
  for (const c0 of chunks) {
    const c = pending ? Buffer.concat([pending, c0]) : c0;
    let p = 0;
    for (let i = c.indexOf(10, p); i !== -1; i = c.indexOf(10, p)) {
      const t = c.toString('utf8', p, i);
      chars += t.length; // use the string so the split cannot be optimized away
      n++;
      p = i + 1;
    }
    pending = p < c.length ? c.subarray(p) : null;
  }
  return chars > 0 ? n : -1;
}

// Same split, but keeps every line like the array store keeps every LogLine: shows
// what retaining 1,000,000 objects costs the garbage collector, pipeline or not.
function baselineRetaining() {
  const out = [];
  let pending = null;
  for (const c0 of chunks) {
    const c = pending ? Buffer.concat([pending, c0]) : c0;
    let p = 0;
    for (let i = c.indexOf(10, p); i !== -1; i = c.indexOf(10, p)) {
      out.push(c.toString('utf8', p, i));
      p = i + 1;
    }
    pending = p < c.length ? c.subarray(p) : null;
  }
  return out.length;
}

function makeStore(retain = true) {
  const batches = [];
  let lines = 0;
  return {
    batches,
    get lines() {
      return lines;
    },
    async append(_runId, batch) {
      lines += batch.lines.length;
      if (retain) batches.push(batch);
    },
    async read() {
      return [];
    },
    async *follow() {},
    async end() {},
  };
}

async function pipeline(options = {}, retain = true) {
  const store = makeStore(retain);
  let events = 0;
  const logger = new RunLogger(store, 'run-1', { ...options, onBatch: () => events++ });
  for (const s of secrets) logger.addMask(s);
  const sink = logger.stream({ jobId: 'build', attempt: 1, step: 0, stream: 'stdout' });
  for (const c of chunks) {
    const wait = sink.write(c);
    if (wait) await wait;
  }
  await sink.end();
  await logger.close();
  for (const b of store.batches) {
    for (const l of b.lines) if (l.text.includes('tok_')) throw new Error(`secret leaked: seq ${l.seq}`);
  }
  return { n: store.lines, batches: events, events };
}

const gc = globalThis.gc ?? (() => {});
async function time(fn) {
  gc();
  const t = performance.now();
  const r = await fn();
  return { ms: performance.now() - t, r };
}

// Warm-up both paths.
baseline();
await pipeline();

const benchOptions = process.env.LOG_BENCH_OPTIONS ? JSON.parse(process.env.LOG_BENCH_OPTIONS) : {};
// Two phases, each side by side and interleaved: the stores that keep 1,000,000 lines
// grow the old generation, which slows every later run in the process, so the
// retaining pair runs after the non-retaining pair.
async function phase(runs) {
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, run] of Object.entries(runs)) {
      const { ms, r } = await time(run.fn);
      const n = typeof r === 'number' ? r : r.n;
      if (n !== LINES) throw new Error(`${name} produced ${n} lines, expected ${LINES}`);
      run.ms.push(ms);
      run.r = r;
    }
  }
  return Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v.ms)]));
}
const one = await phase({
  baseline: { fn: baseline, ms: [] },
  pipelineCounting: { fn: () => pipeline(benchOptions, false), ms: [] },
});
const two = await phase({
  baselineRetaining: { fn: baselineRetaining, ms: [] },
  pipeline: { fn: () => pipeline(benchOptions), ms: [] },
});
const rate = (ms) => Math.round((LINES / ms) * 1000).toLocaleString('en-US');
const row = (label, ms, vs) =>
  console.log(
    `${label.padEnd(48)} ${ms.toFixed(0).padStart(5)} ms ${rate(ms).padStart(11)} lines/s${vs ? `  ${(ms / vs).toFixed(2)}x` : ''}`,
  );
console.log(
  `${LINES.toLocaleString('en-US')} lines x ~60 bytes, ${chunks.length} chunks of 64 KiB, 10 secrets (1% of lines print one); median of ${ROUNDS}`,
);
row('A baseline: split only (indexOf + toString)', one.baseline);
row('A pipeline -> counting store (drops batches)', one.pipelineCounting, one.baseline);
row('B baseline, keeping every line in an array', two.baselineRetaining);
row('B pipeline -> array store (keeps every batch)', two.pipeline, two.baselineRetaining);
console.log(`B pipeline vs A baseline (split only): ${(two.pipeline / one.baseline).toFixed(2)}x`);
console.log('target: >= 1,000,000 lines/s and <= 2x the baseline');

if (process.env.LOG_BENCH_SWEEP) {
  console.log('\nbatch size sweep (counting store; maxBatchBytes = 1 MiB, highWaterMarkBytes = 4 MiB):');
  for (const maxBatchLines of [10, 100, 500, 1000, 5000]) {
    const ms = [];
    for (let i = 0; i < 3; i++) {
      ms.push(
        (await time(() => pipeline({ maxBatchLines, maxBatchBytes: 1 << 20, highWaterMarkBytes: 4 << 20 }, false))).ms,
      );
    }
    row(`  maxBatchLines ${maxBatchLines}`, median(ms), one.baseline);
  }
}
