import { type Diagnostic, PipelineInvalidError } from '../errors.js';
import type { JobSpec, MatrixSpec, PipelineSpec } from '../spec/types.js';
import { cycleMessage, findCycles, topologicalOrder } from './dag.js';
import { expandMatrix, matrixInstanceLabel } from './matrix.js';

/** One job instance of a plan (one per static matrix combination). */
export interface PlannedJob {
  /** Instance id, unique in the run: `build`, or `build (ubuntu-latest, 20)` for a matrix instance. */
  id: string;
  /** Base job id. */
  job: string;
  /** Matrix values of this instance ({} when none, or when the matrix is dynamic). */
  matrix: Record<string, unknown>;
  /** Base job ids this job needs. */
  needs: string[];
  /** True when the matrix uses expressions and expands when the job becomes ready. */
  dynamic: boolean;
}

/** A pipeline turned into a DAG of job instances, in topological order. */
export interface Plan {
  spec: PipelineSpec;
  /** Instances, base jobs in topological order (file order among peers). */
  jobs: PlannedJob[];
  /** Base job ids in topological order. */
  order: string[];
}

/** True when the matrix has any expression, so it can only expand at run time. */
export function isDynamicMatrix(matrix: MatrixSpec | string | undefined): boolean {
  if (matrix === undefined) return false;
  if (typeof matrix === 'string') return true;
  return JSON.stringify(matrix).includes('${{');
}

/** Instance ids for a job's combinations; a job without a matrix has one instance named after the job. */
export function instanceIds(jobKey: string, combinations: readonly Record<string, unknown>[]): string[] {
  const used = new Set<string>();
  return combinations.map((combo) => {
    const label = matrixInstanceLabel(combo);
    let id = label ? `${jobKey} (${label})` : jobKey;
    for (let n = 2; used.has(id); n++) id = `${jobKey} (${label}) #${n}`;
    used.add(id);
    return id;
  });
}

/** Expands one job into its instances (static matrices only). */
export function expandJob(job: JobSpec): PlannedJob[] {
  const matrix = job.strategy?.matrix;
  if (matrix === undefined) return [{ id: job.id, job: job.id, matrix: {}, needs: [...job.needs], dynamic: false }];
  if (isDynamicMatrix(matrix)) return [{ id: job.id, job: job.id, matrix: {}, needs: [...job.needs], dynamic: true }];
  const combos = expandMatrix(matrix as MatrixSpec);
  const ids = instanceIds(job.id, combos);
  return combos.map((m, i) => ({
    id: ids[i] as string,
    job: job.id,
    matrix: m,
    needs: [...job.needs],
    dynamic: false,
  }));
}

/**
 * Plans a pipeline: matrix expansion, DAG checks (unknown and self needs, cycles)
 * and topological order.
 * @throws PipelineInvalidError with code `PIPELINE_CYCLE` or `PIPELINE_INVALID`.
 */
export function planPipeline(spec: PipelineSpec): Plan {
  const graph = new Map<string, string[]>();
  const problems: Diagnostic[] = [];
  const at = (path: string, message: string): Diagnostic => ({
    ...(spec.file === undefined ? {} : { file: spec.file }),
    severity: 'error',
    line: 1,
    column: 1,
    path,
    message,
  });
  const cycles: Diagnostic[] = [];
  for (const [id, job] of Object.entries(spec.jobs)) {
    for (const n of job.needs) {
      if (!Object.hasOwn(spec.jobs, n))
        problems.push(at(`jobs.${id}.needs`, `job \`${id}\` needs unknown job \`${n}\``));
    }
    graph.set(
      id,
      job.needs.filter((n) => Object.hasOwn(spec.jobs, n)),
    );
  }
  // A job that needs itself is the shortest cycle: findCycles reports it with the others.
  for (const cycle of findCycles(graph)) cycles.push(at(`jobs.${cycle[0]}.needs`, cycleMessage(cycle)));
  if (problems.length) throw new PipelineInvalidError([...problems, ...cycles]);
  if (cycles.length) throw new PipelineInvalidError(cycles, 'PIPELINE_CYCLE');
  const order = topologicalOrder(graph);
  const jobs: PlannedJob[] = [];
  for (const id of order) jobs.push(...expandJob(spec.jobs[id] as JobSpec));
  return { spec, jobs, order };
}

/** The graph JSON of DESIGN §8: `{jobs:[{id,job,matrix,needs,dynamic}]}`. */
export function planToJson(plan: Plan): { jobs: PlannedJob[] } {
  return { jobs: plan.jobs.map(({ id, job, matrix, needs, dynamic }) => ({ id, job, matrix, needs, dynamic })) };
}

function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The plan as a Graphviz `dot` digraph (edges from a need to its dependents). */
export function planToDot(plan: Plan): string {
  const lines = ['digraph pipeline {', '  rankdir=LR;', '  node [shape=box];'];
  const byJob = new Map<string, PlannedJob[]>();
  for (const j of plan.jobs) byJob.set(j.job, [...(byJob.get(j.job) ?? []), j]);
  for (const j of plan.jobs) lines.push(`  ${quote(j.id)}${j.dynamic ? ' [style=dashed]' : ''};`);
  for (const j of plan.jobs)
    for (const n of j.needs) for (const dep of byJob.get(n) ?? []) lines.push(`  ${quote(dep.id)} -> ${quote(j.id)};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** The plan as a Mermaid flowchart. */
export function planToMermaid(plan: Plan): string {
  const nodeId = new Map<string, string>();
  for (const [i, j] of plan.jobs.entries()) nodeId.set(j.id, `j${i}`);
  const byJob = new Map<string, PlannedJob[]>();
  for (const j of plan.jobs) byJob.set(j.job, [...(byJob.get(j.job) ?? []), j]);
  const esc = (s: string) => s.replace(/"/g, '#quot;');
  const lines = ['flowchart LR'];
  for (const j of plan.jobs) lines.push(`  ${nodeId.get(j.id)}["${esc(j.id)}${j.dynamic ? ' (dynamic matrix)' : ''}"]`);
  for (const j of plan.jobs)
    for (const n of j.needs)
      for (const dep of byJob.get(n) ?? []) lines.push(`  ${nodeId.get(dep.id)} --> ${nodeId.get(j.id)}`);
  return `${lines.join('\n')}\n`;
}
