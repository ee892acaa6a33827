import type { LogReadOptions } from '../ports/logs.js';

/**
 * Whether a log line is one a reader filtering by `job` and `step` wants: a line of that job
 * and step, or a line of the run itself (`jobId: ''`, such as a store's marker for dropped
 * lines), which concerns every job. The one rule every log store and the engine apply.
 */
export function logLineWanted(
  line: { jobId: string; step: number },
  filter: Pick<LogReadOptions, 'job' | 'step'>,
): boolean {
  if (line.jobId === '') return true;
  return (
    (filter.job === undefined || line.jobId === filter.job) && (filter.step === undefined || line.step === filter.step)
  );
}
