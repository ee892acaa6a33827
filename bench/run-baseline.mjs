// The baseline of bench/run.bench.mjs, as a script of its own so that it is timed the same
// way as `pipewright run` (spawn to exit, node start-up and module loading included): runs a
// DAG's jobs with bare child_process.spawn in dependency order at a given concurrency, each
// job the way the process executor runs a one-step job (a script file, `bash -e script`, its
// own process group, stdout/stderr piped and drained).
// Usage: node bench/run-baseline.mjs <dag.json> <concurrency> <scratch dir>
//   dag.json: [{ "id": "j0", "needs": [] }, ...]
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const [dagFile, concurrencyArg, root] = process.argv.slice(2);
if (!dagFile || !concurrencyArg || !root) {
  console.error('usage: node bench/run-baseline.mjs <dag.json> <concurrency> <scratch dir>');
  process.exit(2);
}
const CONCURRENCY = Number(concurrencyArg);
const jobs = JSON.parse(await readFile(dagFile, 'utf8'));

const remaining = new Map(jobs.map((j) => [j.id, j.needs.length]));
const dependents = new Map(jobs.map((j) => [j.id, []]));
for (const j of jobs) for (const n of j.needs) dependents.get(n).push(j.id);
const ready = jobs.filter((j) => j.needs.length === 0).map((j) => j.id);
let running = 0;
let done = 0;

const runOne = async (id) => {
  const file = join(root, `${id}.sh`);
  await writeFile(file, 'true\n');
  await new Promise((res, rej) => {
    const child = spawn('bash', ['-e', file], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res() : rej(new Error(`${id} exited ${code}`))));
  });
};

await new Promise((resolve, reject) => {
  const pump = () => {
    while (running < CONCURRENCY && ready.length) {
      const id = ready.shift();
      running++;
      runOne(id).then(() => {
        running--;
        done++;
        for (const d of dependents.get(id)) {
          const left = remaining.get(d) - 1;
          remaining.set(d, left);
          if (left === 0) ready.push(d);
        }
        if (done === jobs.length) resolve();
        else pump();
      }, reject);
    }
  };
  pump();
});
