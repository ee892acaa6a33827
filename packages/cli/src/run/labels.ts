import { defaultStepName, type PipelineSpec } from '@pipewright/core';

/**
 * A step's label from the pipeline when no event or record named it: its name, or the
 * name the step loop gives a step without one (`Run <first line of run>`). `jobId` may be
 * a base job id or a matrix instance id (`build (linux, x64)`).
 */
export function stepLabel(spec: PipelineSpec, jobId: string, index: number): string {
  const base = spec.jobs[jobId] ?? spec.jobs[jobId.replace(/ \(.*\)$/, '')];
  const step = base?.steps[index];
  if (!step) return `step ${index + 1}`;
  return step.name ?? defaultStepName(step);
}
