import {
  definePipeline,
  findCycle,
  PipelineInvalidError,
  type PipelineSpec,
  planPipeline,
  planToJson,
  topologicalOrder,
} from '@pipewright/core';
import { describe, expect, it } from 'vitest';

const g = (edges: Record<string, string[]>) => new Map(Object.entries(edges));

describe('findCycle / topologicalOrder', () => {
  it('names the cycle as a closed path in needs direction', () => {
    expect(findCycle(g({ a: ['b'], b: ['c'], c: ['a'] }))).toEqual(['a', 'b', 'c', 'a']);
    expect(findCycle(g({ x: [], a: ['x', 'b'], b: ['a'] }))).toEqual(['a', 'b', 'a']);
    expect(findCycle(g({ a: [], b: ['a'], c: ['a', 'b'] }))).toBeUndefined();
  });

  it('orders needs first, keeping file order among peers', () => {
    expect(topologicalOrder(g({ d: ['b', 'c'], b: ['a'], c: ['a'], a: [] }))).toEqual(['a', 'b', 'c', 'd']);
    expect(() => topologicalOrder(g({ a: ['b'], b: ['a'] }))).toThrow('dependency cycle: a -> b -> a');
  });

  it('handles a 10,000-long chain without recursion', () => {
    const edges: Record<string, string[]> = { j0: [] };
    for (let i = 1; i < 10_000; i++) edges[`j${i}`] = [`j${i - 1}`];
    edges.j0 = ['j9999'];
    expect(findCycle(g(edges))).toHaveLength(10_001);
    edges.j0 = [];
    expect(topologicalOrder(g(edges)).at(-1)).toBe('j9999');
  });
});

describe('planPipeline', () => {
  it('plans one entry per static matrix instance, dynamic matrices as one entry', () => {
    const spec = definePipeline({
      jobs: {
        test: {
          needs: 'build',
          strategy: { matrix: { os: ['linux', 'mac'], include: [{ os: 'win', experimental: true }] } },
          steps: [{ run: 'x' }],
        },
        build: { steps: [{ run: 'x' }] },
        shard: {
          needs: ['test'],
          strategy: { matrix: '${{ fromJSON(needs.test.outputs.m) }}' },
          steps: [{ run: 'x' }],
        },
      },
    });
    const plan = planPipeline(spec);
    expect(plan.order).toEqual(['build', 'test', 'shard']);
    expect(planToJson(plan)).toEqual({
      jobs: [
        { id: 'build', job: 'build', matrix: {}, needs: [], dynamic: false },
        { id: 'test (linux)', job: 'test', matrix: { os: 'linux' }, needs: ['build'], dynamic: false },
        { id: 'test (mac)', job: 'test', matrix: { os: 'mac' }, needs: ['build'], dynamic: false },
        {
          id: 'test (win, true)',
          job: 'test',
          matrix: { os: 'win', experimental: true },
          needs: ['build'],
          dynamic: false,
        },
        { id: 'shard', job: 'shard', matrix: {}, needs: ['test'], dynamic: true },
      ],
    });
  });

  it('rejects a hand-built spec with unknown/self needs or a cycle', () => {
    const base = definePipeline({ jobs: { a: { steps: [{ run: 'x' }] }, b: { steps: [{ run: 'x' }] } } });
    const withNeeds = (a: string[], b: string[]): PipelineSpec => ({
      ...base,
      jobs: { a: { ...base.jobs.a!, needs: a }, b: { ...base.jobs.b!, needs: b } },
    });
    const err = (spec: PipelineSpec) => {
      try {
        planPipeline(spec);
      } catch (e) {
        expect(e).toBeInstanceOf(PipelineInvalidError);
        return e as PipelineInvalidError;
      }
      throw new Error('expected planPipeline to throw');
    };
    expect(err(withNeeds(['zz'], [])).diagnostics[0]?.message).toBe('job `a` needs unknown job `zz`');
    const self = err(withNeeds(['a'], []));
    expect(self.diagnostics[0]?.message).toBe('dependency cycle: a -> a (the job needs itself)');
    expect(self.code).toBe('PIPELINE_CYCLE');
    const cycle = err(withNeeds(['b'], ['a']));
    expect(cycle.code).toBe('PIPELINE_CYCLE');
    expect(cycle.diagnostics[0]?.message).toBe('dependency cycle: a -> b -> a');
  });
});
