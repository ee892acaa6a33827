import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type PipelineSpec, planPipeline, validatePipeline } from '@pipewright/core';
import { describe, expect, it } from 'vitest';

/*
 * Real workflows from public repositories (../shared/corpus/gha, beside the repository; never
 * copied into it). SOURCES.tsv records, per file, what GitHub would run: jobs, needs edges,
 * depth, fan-in, static matrices with their instances, and dynamic matrices.
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
// PIPEWRIGHT_CORPUS points elsewhere (used to check the absent-corpus behaviour).
const corpus = process.env.PIPEWRIGHT_CORPUS ?? path.resolve(repoRoot, '..', 'shared', 'corpus', 'gha');
const sources = path.join(corpus, 'SOURCES.tsv');
const present = existsSync(sources);

interface Expected {
  jobs: number;
  edges: number;
  depth: number;
  fanIn: number;
  staticMatrices: number;
  instances: number;
  dynamicMatrices: number;
}

/** The figures of the `note` column: `14 jobs, 19 needs-edges, depth 7, max fan-in 5; matrix: 5 static (46 inst), 0 dynamic`. */
function expectedOf(note: string): Expected {
  const shape = /(\d+) jobs, (\d+) needs-edges, depth (\d+), max fan-in (\d+)/.exec(note);
  if (!shape) throw new Error(`SOURCES.tsv note without job figures: ${note}`);
  const matrix = /matrix: (\d+) static \((\d+) inst\), (\d+) dynamic/.exec(note);
  return {
    jobs: Number(shape[1]),
    edges: Number(shape[2]),
    depth: Number(shape[3]),
    fanIn: Number(shape[4]),
    staticMatrices: Number(matrix?.[1] ?? 0),
    instances: Number(matrix?.[2] ?? 0),
    dynamicMatrices: Number(matrix?.[3] ?? 0),
  };
}

function rows(): Array<{ file: string; repo: string; note: string }> {
  const [header, ...lines] = readFileSync(sources, 'utf8').trim().split('\n');
  const cols = (header ?? '').split('\t');
  const at = (name: string) => {
    const i = cols.indexOf(name);
    if (i < 0) throw new Error(`SOURCES.tsv has no \`${name}\` column`);
    return i;
  };
  const [file, repo, note] = [at('file'), at('repo'), at('note')];
  return lines.map((l) => {
    const f = l.split('\t');
    return { file: f[file] ?? '', repo: f[repo] ?? '', note: f[note] ?? '' };
  });
}

function actualOf(spec: PipelineSpec): Expected {
  const plan = planPipeline(spec);
  const jobs = Object.values(spec.jobs);
  const depth = new Map<string, number>();
  for (const id of plan.order) {
    const needs = spec.jobs[id]?.needs ?? [];
    depth.set(id, 1 + Math.max(0, ...needs.map((n) => depth.get(n) ?? 0)));
  }
  let staticMatrices = 0;
  let instances = 0;
  let dynamicMatrices = 0;
  for (const job of jobs) {
    if (job.strategy?.matrix === undefined) continue;
    const planned = plan.jobs.filter((p) => p.job === job.id);
    if (planned.some((p) => p.dynamic)) dynamicMatrices++;
    else {
      staticMatrices++;
      instances += planned.length;
    }
  }
  // Every instance needs base job ids only, and a job's instances come after all its needs'.
  const position = new Map(plan.jobs.map((p, i) => [p.id, i]));
  for (const p of plan.jobs) {
    for (const n of p.needs) {
      expect(spec.jobs[n], `${p.id} needs ${n}`).toBeDefined();
      for (const q of plan.jobs.filter((x) => x.job === n))
        expect(position.get(q.id)).toBeLessThan(position.get(p.id) ?? -1);
    }
  }
  return {
    jobs: jobs.length,
    edges: jobs.reduce((n, j) => n + j.needs.length, 0),
    depth: Math.max(0, ...depth.values()),
    fanIn: Math.max(0, ...jobs.map((j) => j.needs.length)),
    staticMatrices,
    instances,
    dynamicMatrices,
  };
}

describe('real workflows (../shared/corpus/gha)', () => {
  if (!present) {
    it(`corpus folder ${corpus}`, (ctx) => {
      if (process.env.CI === 'true') throw new Error(`corpus not found at ${corpus}; CI must provide ../shared`);
      console.warn(`skipping the corpus test: ${corpus} is absent (it lives beside the repository in CI)`);
      ctx.skip();
    });
    return;
  }

  const all = rows();
  it('lists 40 workflows, each present', () => {
    expect(all.length).toBeGreaterThanOrEqual(40);
    for (const r of all) expect(existsSync(path.join(corpus, r.file)), r.file).toBe(true);
  });

  it.each(all)('$file validates and plans as GitHub would run it', ({ file, note }) => {
    const text = readFileSync(path.join(corpus, file), 'utf8');
    const result = validatePipeline(text, { file });
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    expect(errors, errors.map((d) => `${d.line}:${d.column} ${d.message}`).join('\n')).toEqual([]);
    expect(result.spec).toBeDefined();
    expect(actualOf(result.spec as PipelineSpec)).toEqual(expectedOf(note));
  });
});
