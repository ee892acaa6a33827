// Parser and planner: parse + validate + plan (`parsePipeline` then `planPipeline`) of
//  - a generated 10,000-job pipeline (seeded; each job needs up to 3 of the 20 jobs before it,
//    two steps, an env, every 10th job an `if:` expression, every 50th a 2x2 matrix), and
//  - the largest workflow of ../shared/corpus/gha (skipped with a message when absent),
// against, side by side in this process on the same text, a baseline of only `yaml.parse`
// (its defaults, which check duplicate keys) and `yaml.parse` with `uniqueKeys: false`.
// Rounds alternate baseline and pipewright; medians of ROUNDS rounds are reported.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePipeline, planPipeline } from '@pipewright/core';
import { parse } from 'yaml';
import { median } from './lib.mjs';

const ROUNDS = Number(process.env.PARSE_BENCH_ROUNDS ?? 7);
const here = dirname(fileURLToPath(import.meta.url));
const corpus = resolve(here, '..', '..', 'shared', 'corpus', 'gha');

function generate(n, seed = 42) {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const lines = ['name: generated', 'on: push', 'env: {CI: "true"}', 'jobs:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  job_${i}:`);
    lines.push('    runs-on: ubuntu-latest');
    const k = i === 0 ? 0 : Math.floor(rand() * 4);
    const needs = new Set();
    for (let j = 0; j < k; j++) needs.add(Math.max(0, i - 1 - Math.floor(rand() * Math.min(20, i))));
    if (needs.size) lines.push(`    needs: [${[...needs].map((x) => `job_${x}`).join(', ')}]`);
    if (i % 10 === 0) lines.push("    if: ${{ github.ref == 'refs/heads/main' && success() }}");
    if (i % 50 === 0) lines.push('    strategy: {matrix: {os: [linux, macos], node: [18, 20]}}');
    lines.push('    timeout-minutes: 10');
    lines.push(`    env: {JOB: "${i}"}`);
    lines.push('    steps:');
    lines.push(`      - run: echo building ${i}`);
    lines.push('      - name: test');
    lines.push('        run: |');
    lines.push('          npm ci');
    lines.push('          npm test -- --shard ${{ matrix.node }}');
  }
  return `${lines.join('\n')}\n`;
}

function time(fn) {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

function bench(label, text) {
  let jobs = 0;
  let instances = 0;
  const pw = [];
  const base = [];
  const baseLoose = [];
  // warm-up (JIT) once each
  parse(text);
  planPipeline(parsePipeline(text).spec);
  for (let r = 0; r < ROUNDS; r++) {
    globalThis.gc?.();
    base.push(time(() => parse(text)));
    globalThis.gc?.();
    baseLoose.push(time(() => parse(text, { uniqueKeys: false })));
    globalThis.gc?.();
    pw.push(
      time(() => {
        const plan = planPipeline(parsePipeline(text).spec);
        jobs = plan.order.length;
        instances = plan.jobs.length;
      }),
    );
  }
  const [b, bl, p] = [median(base), median(baseLoose), median(pw)];
  const perJob = (ms) => `${((ms * 1000) / jobs).toFixed(1)} µs`;
  console.log(`\n${label}: ${(text.length / 1024).toFixed(0)} KiB, ${jobs} jobs, ${instances} planned instances`);
  console.log(`  yaml.parse (defaults)            ${b.toFixed(1).padStart(8)} ms  ${perJob(b)}/job`);
  console.log(`  yaml.parse (uniqueKeys: false)   ${bl.toFixed(1).padStart(8)} ms  ${perJob(bl)}/job`);
  console.log(`  parsePipeline + planPipeline     ${p.toFixed(1).padStart(8)} ms  ${perJob(p)}/job`);
  console.log(`  ratio vs yaml.parse: ${(p / b).toFixed(2)}x; vs uniqueKeys:false: ${(p / bl).toFixed(2)}x`);
  console.log(`  rounds: ${ROUNDS}; pipewright per round: ${pw.map((x) => x.toFixed(0)).join(', ')} ms`);
}

bench('generated 10,000-job pipeline', generate(10_000));
if (existsSync(corpus)) {
  const largest = readdirSync(corpus)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort((a, b) => statSync(join(corpus, b)).size - statSync(join(corpus, a)).size)[0];
  bench(`largest corpus file (${largest})`, readFileSync(join(corpus, largest), 'utf8'));
} else {
  console.log(`\nlargest corpus file: skipped, ${corpus} is absent`);
}
