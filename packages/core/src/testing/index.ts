// Test helpers and conformance suites for pipewright adapters.
export * from './state-store-suite.js';
