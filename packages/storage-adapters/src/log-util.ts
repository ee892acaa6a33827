import type { LogBatch, LogReadOptions } from '@pipewright/core';
import { logLineWanted } from '@pipewright/core';
import { checkCount, invalid } from './errors.js';

/** Throws when a batch does not belong to `runId` or its lines are not in increasing `seq` order. */
export function checkBatch(runId: string, batch: LogBatch): void {
  if (batch.runId !== runId) {
    throw invalid(`Log batch has runId "${batch.runId}" but was appended to run "${runId}".`, { runId });
  }
  let prev = 0;
  for (const l of batch.lines) {
    if (l.runId !== runId) {
      throw invalid(`Log line ${l.seq} has runId "${l.runId}" but was appended to run "${runId}".`, { runId });
    }
    if (!Number.isSafeInteger(l.seq) || l.seq <= prev) {
      throw invalid(
        `Log lines must have increasing positive integer seq numbers; got ${l.seq} after ${prev} in run "${runId}".`,
        { runId, seq: l.seq },
      );
    }
    prev = l.seq;
  }
}

/**
 * `after` and `limit` of a read or follow: absent, or a non-negative integer. Every store
 * would read something else into `'5'`, `1.5` or `NaN` (Redis an invalid stream id).
 */
export function checkReadOptions(options: { after?: unknown; limit?: unknown }): void {
  checkCount('after', options.after);
  checkCount('limit', options.limit);
}

/** Index of the first element whose `seq` is greater than `after` (binary search; `items` sorted by seq). */
export function indexAfter(items: readonly { seq: number }[], after: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]!.seq <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Applies the `job`, `step` and `limit` filters of a read from `start` on. */
export function filterLines<S extends { jobId: string; step: number }, L>(
  items: readonly S[],
  start: number,
  options: LogReadOptions,
  map: (s: S) => L,
): L[] {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const out: L[] = [];
  for (let i = start; i < items.length && out.length < limit; i++) {
    const s = items[i]!;
    if (logLineWanted(s, options)) out.push(map(s));
  }
  return out;
}
