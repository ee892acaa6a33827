// Test helpers and conformance suites for pipewright adapters.
