// Storage adapters: log append throughput of RedisLogStore against pipelined XADD with
// raw ioredis on the same server (same payload, same entry ids), and createRun+putJob
// round trips of RedisStore against two plain SETs per iteration. Spawns its own
// redis-server on a free port; skips (exit 0) when redis-server is not installed.
import { RedisLogStore, RedisStore } from '@pipewright/storage-adapters/redis';
import { median, redisServerInstalled, startRedis } from './lib.mjs';

if (!redisServerInstalled()) {
  console.log('skipped: redis-server is not installed (run .ci/services/redis.sh)');
  process.exit(0);
}

const redis = await startRedis('pw-bench-redis-');
const url = redis.url;
const raw = redis.client;

const fmt = (n) => Math.round(n).toLocaleString('en-US');

function makeLines(runId, n) {
  return Array.from({ length: n }, (_, i) => ({
    seq: i + 1,
    ts: 1_700_000_000_000 + i,
    runId,
    jobId: `job-${i % 8}`,
    attempt: 1,
    step: i % 5,
    stream: 'stdout',
    text: `2024-01-01T00:00:00Z building module ${i}: compiling src/file-${i % 100}.ts ok`,
  }));
}

// --- log append -------------------------------------------------------------------
const LINES = 200_000;
const BATCH = 500;
const logStore = new RedisLogStore({ url, prefix: 'bench' });

async function adapterAppend(round) {
  const runId = `a${round}`;
  const lines = makeLines(runId, LINES);
  const t = performance.now();
  for (let i = 0; i < LINES; i += BATCH) await logStore.append(runId, { runId, lines: lines.slice(i, i + BATCH) });
  return LINES / ((performance.now() - t) / 1000);
}

async function baselineAppend(round) {
  const key = `{bench}:raw:${round}`;
  const lines = makeLines(key, LINES);
  const t = performance.now();
  for (let i = 0; i < LINES; i += BATCH) {
    const pipe = raw.pipeline();
    for (const l of lines.slice(i, i + BATCH)) {
      pipe.xadd(key, `${l.seq}-0`, 'l', JSON.stringify([l.ts, l.jobId, l.attempt, l.step, l.stream, l.text]));
    }
    await pipe.exec();
  }
  return LINES / ((performance.now() - t) / 1000);
}

const ours = [];
const base = [];
for (let round = 0; round < 3; round++) {
  base.push(await baselineAppend(round));
  ours.push(await adapterAppend(round));
  await raw.flushall();
}
const logOurs = median(ours);
const logBase = median(base);
console.log(`log append, ${fmt(LINES)} lines in batches of ${BATCH} (median of 3):`);
console.log(`  RedisLogStore.append        ${fmt(logOurs)} lines/s`);
console.log(`  raw pipelined XADD          ${fmt(logBase)} lines/s`);
console.log(`  ratio adapter/baseline      ${(logOurs / logBase).toFixed(2)}`);

// read back through the adapter, for scale
{
  const runId = 'a0';
  const lines = makeLines(runId, LINES);
  for (let i = 0; i < LINES; i += BATCH) await logStore.append(runId, { runId, lines: lines.slice(i, i + BATCH) });
  const t = performance.now();
  const got = await logStore.read(runId);
  const s = (performance.now() - t) / 1000;
  console.log(`  RedisLogStore.read          ${fmt(got.length / s)} lines/s (${fmt(got.length)} lines)`);
}
await logStore.close();

// --- createRun + putJob -----------------------------------------------------------
const ITER = 2000;
const store = new RedisStore({ url, prefix: 'bench-state' });
const spec = { inputs: {}, env: {}, defaults: {}, jobs: {} };
const runRec = (id) => ({
  id,
  pipelineName: 'bench',
  specHash: 'h',
  spec,
  inputs: { a: 1 },
  trigger: { kind: 'api' },
  priority: 0,
  status: 'queued',
  secretNames: [],
  createdAt: Date.now(),
});
const jobRec = (runId) => ({
  runId,
  id: 'build',
  job: 'build',
  matrix: {},
  needs: [],
  status: 'pending',
  outputs: {},
  attempts: [],
  createdAt: 1,
});

async function adapterState(round, concurrency) {
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ITER) {
        const id = `r${round}-${next++}`;
        const job = jobRec(id);
        await store.createRun(runRec(id), [job]);
        await store.putJob({ ...job, status: 'running' }, { status: 'pending' });
      }
    }),
  );
  return ITER / ((performance.now() - t) / 1000);
}

async function baselineState(round, concurrency) {
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ITER) {
        const id = `b${round}-${next++}`;
        const job = jobRec(id);
        await raw.set(`{bench-raw}:run:${id}`, JSON.stringify(runRec(id)));
        await raw.set(`{bench-raw}:job:${id}`, JSON.stringify({ ...job, status: 'running' }));
      }
    }),
  );
  return ITER / ((performance.now() - t) / 1000);
}

for (const concurrency of [1, 32]) {
  const o = [];
  const b = [];
  for (let round = 0; round < 3; round++) {
    b.push(await baselineState(`${concurrency}-${round}`, concurrency));
    o.push(await adapterState(`${concurrency}-${round}`, concurrency));
  }
  console.log(`createRun+putJob, ${fmt(ITER)} iterations, concurrency ${concurrency} (median of 3):`);
  console.log(`  RedisStore                  ${fmt(median(o))} iterations/s`);
  console.log(`  raw SET + SET               ${fmt(median(b))} iterations/s`);
  console.log(`  ratio adapter/baseline      ${(median(o) / median(b)).toFixed(2)}`);
}

await store.close();
await raw.quit();
redis.stop();
