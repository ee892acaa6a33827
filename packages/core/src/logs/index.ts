export {
  LINE_OVERHEAD_BYTES,
  type LogStreamContext,
  lostMarker,
  MicroBatcher,
  type MicroBatcherOptions,
} from './batcher.js';
export { logLineWanted } from './filter.js';
export { MASK, SecretMasker, type SecretMaskerOptions } from './masker.js';
export {
  type LogClock,
  type LogPipelineOptions,
  type ResolvedLogPipelineOptions,
  resolveLogPipelineOptions,
  systemLogClock,
} from './options.js';
export { droppedMarker, type LogSink, type LogSinkContext, type LogStepContext, RunLogger } from './run-logger.js';
export { LINE_CONTINUATION_MARKER, LineSplitter, type LineSplitterOptions } from './splitter.js';
