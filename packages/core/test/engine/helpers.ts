import { Engine, type EngineOptions, PipewrightError, seededRandom } from '@pipewright/core';
import type { FakeStep } from '@pipewright/core/testing';
import { FakeClock, FakeExecutor } from '@pipewright/core/testing';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';

/** An engine on a fake clock with a scripted fake executor and memory stores. */
export function setup(
  script: (jobKey: string, attempt: number, matrix: Record<string, unknown>) => FakeStep[] = () => [{}],
  options: Partial<EngineOptions> & { capacity?: number; workers?: string[] } = {},
) {
  const clock = new FakeClock();
  const executor = new FakeExecutor({
    clock,
    name: 'process',
    ...(options.capacity === undefined ? {} : { capacity: options.capacity }),
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    script: (a) => script(a.jobKey, a.attempt, a.matrix),
  });
  const store = new MemoryStore({ now: () => clock.now() });
  const logs = new MemoryLogStore();
  const engine = new Engine({
    store,
    logs,
    executors: [executor],
    clock,
    random: seededRandom(42),
    concurrency: 4,
    ...options,
  });
  const events: string[] = [];
  for (const name of ['run:started', 'job:started', 'job:finished', 'run:finished', 'attempt:started'] as const) {
    engine.on(name, (e: Record<string, unknown>) => events.push(`${name} ${e.jobId ?? ''}`.trim()));
  }
  return { clock, executor, store, logs, engine, events };
}

/**
 * Advances the fake clock until `waiting` (a `wait()` started earlier) settles, and returns
 * its value; throws when it does not within `maxMs` of fake time.
 */
export async function settledOnClock<T>(
  clock: FakeClock,
  waiting: Promise<T>,
  { step = 1000, maxMs = 48 * 3_600_000 }: { step?: number; maxMs?: number } = {},
): Promise<T> {
  let settled = false;
  let value: T | undefined;
  void waiting.then((v) => {
    value = v;
    settled = true;
  });
  const done = await clock.runUntil(() => settled, { step, maxMs });
  if (!done) throw new Error('wait() did not settle on the fake clock');
  return value as T;
}

/** Runs a pipeline to the end on the fake clock and returns its report. */
export async function runToEnd(
  env: ReturnType<typeof setup>,
  yaml: string,
  submit: Parameters<Engine['submit']>[1] = {},
) {
  const handle = await env.engine.submit(yaml, submit);
  return settledOnClock(env.clock, handle.wait());
}

/** Jobs of a report by id. */
export function byId(report: { jobs: Array<{ id: string }> }) {
  return Object.fromEntries(report.jobs.map((j) => [j.id, j])) as Record<string, (typeof report.jobs)[number]>;
}

type Wraps<S> = {
  [K in keyof S]?: S[K] extends (...args: infer A) => infer R ? (original: (...args: A) => R, ...args: A) => R : never;
};

/**
 * `store` with some methods wrapped (each wrapper gets the original, bound, first); every other
 * member passes through bound to the store. For tests that slow, fail or count one store call.
 */
export function interceptStore<S extends object>(store: S, wraps: Wraps<S>): S {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const original = (value as (...a: unknown[]) => unknown).bind(target);
      const wrap = (wraps as Record<PropertyKey, ((o: unknown, ...a: unknown[]) => unknown) | undefined>)[prop];
      return wrap ? (...args: unknown[]) => wrap(original, ...args) : original;
    },
  });
}

/** A job `plan` whose output `list` (a JSON array) becomes the dynamic matrix of job `work`. */
export const PLAN_THEN_MATRIX = `
jobs:
  plan: { runs-on: x, outputs: { list: "\${{ steps.s.outputs.list }}" }, steps: [{ id: s, run: x }] }
  work:
    runs-on: x
    needs: plan
    strategy: { matrix: { item: "\${{ fromJSON(needs.plan.outputs.list) }}" } }
    steps: [{ run: x }]
`;

/** The `code` of the PipewrightError a call throws (or a note that it threw something else); undefined if it did not throw. */
export async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err instanceof PipewrightError ? err.code : `not a PipewrightError: ${String(err)}`;
  }
  return undefined;
}
