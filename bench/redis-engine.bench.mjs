// Engine on Redis vs BullMQ: 10,000 no-op jobs through the pipewright Engine with
// RedisStore (logs in MemoryLogStore: a no-op job writes no lines, so the log store is
// not what is measured) against BullMQ processing 10,000 no-op jobs on the same Redis.
// Both sides run with 64 jobs at once, keep their finished jobs in Redis, and alternate
// rounds in one process. Spawns its own redis-server; skips (exit 0) without one.
import { Engine, parsePipeline } from '@pipewright/core';
import { MemoryLogStore } from '@pipewright/storage-adapters';
import { RedisStore } from '@pipewright/storage-adapters/redis';
import { Queue, Worker } from 'bullmq';
import { median, redisServerInstalled, startRedis } from './lib.mjs';

if (!redisServerInstalled()) {
  console.log('skipped: redis-server is not installed (run .ci/services/redis.sh)');
  process.exit(0);
}

const JOBS = 10_000;
const RUNS = 100; // 100 runs x 100 independent jobs: many runs in flight, like a busy CI server
const CONCURRENCY = 64;
const ROUNDS = Number(process.env.ROUNDS ?? 3);

const redis = await startRedis('pw-bench-redis-engine-');
const { url, port } = redis;
const admin = redis.client;

const fmt = (n) => Math.round(n).toLocaleString('en-US');

const perRun = JOBS / RUNS;
const yaml = `name: noop\njobs:\n${Array.from({ length: perRun }, (_, i) => `  j${i}:\n    runs-on: local\n    steps: [{run: 'true'}]\n`).join('')}`;
const spec = parsePipeline(yaml).spec;

/** Succeeds at once without running anything: what is left is the engine and the store. */
const noop = {
  name: 'process',
  async runJob() {
    return { status: 'succeeded', workerId: 'bench', steps: [], outputs: {} };
  },
};

async function engineRound(round) {
  const store = new RedisStore({ url, prefix: `eng${round}` });
  const engine = new Engine({ store, logs: new MemoryLogStore(), executors: [noop], concurrency: CONCURRENCY });
  engine.on('error', (e) => console.error('engine error:', e.message));
  const t = performance.now();
  const handles = await Promise.all(Array.from({ length: RUNS }, () => engine.submit(spec)));
  const reports = await Promise.all(handles.map((h) => h.wait()));
  const ms = performance.now() - t;
  const ok = reports.reduce((n, r) => n + r.jobs.filter((j) => j.status === 'succeeded').length, 0);
  await engine.close();
  await store.close();
  if (ok !== JOBS) throw new Error(`engine: ${ok} of ${JOBS} jobs succeeded`);
  return JOBS / (ms / 1000);
}

async function bullRound(round) {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const name = `noop${round}`;
  const queue = new Queue(name, { connection });
  let done = 0;
  let finish;
  const finished = new Promise((r) => {
    finish = r;
  });
  const t = performance.now();
  const worker = new Worker(name, async () => undefined, { connection, concurrency: CONCURRENCY });
  worker.on('completed', () => {
    if (++done === JOBS) finish();
  });
  for (let i = 0; i < JOBS; i += 1000) {
    await queue.addBulk(Array.from({ length: 1000 }, (_, k) => ({ name: 'noop', data: { i: i + k } })));
  }
  await finished;
  const ms = performance.now() - t;
  await worker.close();
  await queue.close();
  return JOBS / (ms / 1000);
}

const eng = [];
const bull = [];
try {
  // One warm-up of each (script loading, JIT), not counted.
  await engineRound('w');
  await bullRound('w');
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      eng.push(await engineRound(r));
      bull.push(await bullRound(r));
    } else {
      bull.push(await bullRound(r));
      eng.push(await engineRound(r));
    }
    console.log(`round ${r + 1}: engine ${fmt(eng[r])} jobs/s, BullMQ ${fmt(bull[r])} jobs/s`);
  }
  const e = median(eng);
  const b = median(bull);
  console.log(
    `\n${JOBS.toLocaleString('en-US')} no-op jobs, ${CONCURRENCY} at once, median of ${ROUNDS}:\n` +
      `  Engine + RedisStore (+ MemoryLogStore): ${fmt(e)} jobs/s\n` +
      `  BullMQ Queue + Worker:                 ${fmt(b)} jobs/s\n` +
      `  ratio engine/BullMQ: ${(e / b).toFixed(2)} (target >= 1.00)`,
  );
} finally {
  admin.disconnect();
  redis.stop();
}
