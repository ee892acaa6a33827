// Test helpers and conformance suites for pipewright adapters.

export * from './attempt.js';
export * from './executor-suite.js';
export * from './fake-clock.js';
export * from './fake-executor.js';
export * from './log-store-suite.js';
export * from './state-store-suite.js';
