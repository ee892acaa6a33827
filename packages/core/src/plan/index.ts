export { findCycle, findCycles, topologicalOrder } from './dag.js';
export { expandMatrix, matrixInstanceLabel } from './matrix.js';
export {
  expandJob,
  instanceIds,
  isDynamicMatrix,
  type Plan,
  type PlannedJob,
  planPipeline,
  planToDot,
  planToJson,
  planToMermaid,
} from './plan.js';
