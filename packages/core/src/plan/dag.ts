/**
 * Finds a dependency cycle in `graph` (node -> the nodes it needs). Returns it as
 * a closed path `[a, b, c, a]` (a needs b, b needs c, c needs a), or undefined.
 * Iterative, so deep chains cannot overflow the stack.
 */
export function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 1 | 2>(); // 1 = on the current path, 2 = done
  for (const start of graph.keys()) {
    if (state.has(start)) continue;
    const path: string[] = [];
    const stack: Array<{ node: string; next: number }> = [{ node: start, next: 0 }];
    state.set(start, 1);
    path.push(start);
    while (stack.length) {
      const top = stack[stack.length - 1] as { node: string; next: number };
      const deps = graph.get(top.node) ?? [];
      if (top.next < deps.length) {
        const dep = deps[top.next++] as string;
        const s = state.get(dep);
        if (s === 1) return [...path.slice(path.indexOf(dep)), dep];
        if (s === undefined && graph.has(dep)) {
          state.set(dep, 1);
          path.push(dep);
          stack.push({ node: dep, next: 0 });
        }
      } else {
        state.set(top.node, 2);
        path.pop();
        stack.pop();
      }
    }
  }
  return undefined;
}

/**
 * Every separate cycle of `graph`, up to `max`: once a cycle is found its nodes are taken out
 * and the search goes on, so each tangle of nodes is reported once (as one of its cycles).
 */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>, max = 100): string[][] {
  const rest = new Map(graph);
  const cycles: string[][] = [];
  while (cycles.length < max) {
    const cycle = findCycle(rest);
    if (!cycle) break;
    cycles.push(cycle);
    for (const node of cycle) rest.delete(node);
  }
  return cycles;
}

/** How a cycle is reported: `dependency cycle: a -> b -> a`, and for a job that needs itself, says so. */
export function cycleMessage(cycle: readonly string[]): string {
  return `dependency cycle: ${cycle.join(' -> ')}${cycle.length === 2 ? ' (the job needs itself)' : ''}`;
}

/**
 * Orders nodes so every node comes after the nodes it needs (Kahn's algorithm);
 * ties keep the input order. Throws if there is a cycle.
 */
export function topologicalOrder(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const [node, deps] of graph) {
    indegree.set(node, deps.filter((d) => graph.has(d)).length);
    for (const d of deps) {
      if (!graph.has(d)) continue;
      let list = dependents.get(d);
      if (!list) {
        list = [];
        dependents.set(d, list);
      }
      list.push(node);
    }
  }
  const order: string[] = [];
  const ready = [...graph.keys()].filter((n) => indegree.get(n) === 0);
  for (let i = 0; i < ready.length; i++) {
    const n = ready[i] as string;
    order.push(n);
    for (const m of dependents.get(n) ?? []) {
      const left = (indegree.get(m) as number) - 1;
      indegree.set(m, left);
      if (left === 0) ready.push(m);
    }
  }
  if (order.length !== graph.size) {
    const cycle = findCycle(graph);
    throw new Error(`dependency cycle: ${cycle?.join(' -> ') ?? 'unknown'}`);
  }
  return order;
}
