export { formatDuration, parseDuration } from './duration.js';
export { imageReferenceProblem } from './image-ref.js';
export {
  DEFAULT_MAX_BYTES,
  definePipeline,
  formatPath,
  type ParseOptions,
  type ParseResult,
  type PipelineInput,
  parsePipeline,
  type ValidationResult,
  validatePipeline,
} from './parse.js';
export type * from './types.js';
export { DEFAULT_JOB_TIMEOUT_MS, DEFAULT_KILL_GRACE_MS, DEFAULT_RETRY } from './types.js';
