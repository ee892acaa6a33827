// A small Node service embedding pipewright: it submits a pipeline, prints the
// engine's events as they happen, and exits 0 when the run succeeds.
//
//   npm install            # from the repository root: installs and builds the packages
//   node examples/embed/index.mjs
//
// In your own project: npm install @pipewright/core @pipewright/executors @pipewright/storage-adapters
import { Engine } from '@pipewright/core';
import { ProcessExecutor } from '@pipewright/executors';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';

const pipeline = `
name: embedded
jobs:
  greet:
    runs-on: local
    outputs:
      who: \${{ steps.name.outputs.who }}
    steps:
      - id: name
        run: echo "who=world" >> "$GITHUB_OUTPUT"
      - name: use a secret
        env:
          TOKEN: \${{ secrets.API_TOKEN }}
        run: echo "calling the API with $TOKEN"
  shout:
    needs: greet
    runs-on: local
    steps:
      - uses: shout
        with:
          text: hello \${{ needs.greet.outputs.who }}
`;

const engine = new Engine({
  store: new MemoryStore(),
  logs: new MemoryLogStore(),
  executors: [new ProcessExecutor()],
  concurrency: 4,
  // Resolved just in time, when an attempt starts; values are masked in every log line.
  secrets: {
    resolve: async (names) => Object.fromEntries(names.map((n) => [n, n === 'API_TOKEN' ? 's3cr3t-demo-token' : ''])),
  },
});

// A step with `uses: shout` runs this function in-process.
engine.registerAction('shout', async ({ inputs, log }) => {
  log(inputs.text.toUpperCase());
  return { shouted: inputs.text.toUpperCase() };
});

engine.on('run:started', (e) => console.log(`run ${e.runId} started`));
engine.on('job:started', (e) => console.log(`${e.jobId}: started`));
engine.on('step:finished', (e) => console.log(`${e.jobId}: step ${e.step + 1} ${e.status}`));
engine.on('job:finished', (e) => console.log(`${e.jobId}: ${e.status}${e.reason ? ` (${e.reason})` : ''}`));
engine.on('log', (batch) => {
  for (const line of batch.lines) console.log(`  ${line.jobId} | ${line.text}`);
});
engine.on('error', (err) => console.error(`engine error: ${err.message}`));

// While a run is active the engine holds the event loop, so awaiting wait() is enough here.
try {
  const run = await engine.submit(pipeline, { idempotencyKey: `embed-example-${process.pid}` });
  process.once('SIGINT', () => run.cancel({ reason: 'SIGINT', by: 'embed example' }));
  const report = await run.wait();
  const greet = report.jobs.find((j) => j.job === 'greet');
  console.log(`run ${report.run.status}; greet.outputs.who = ${greet?.outputs.who}`);
  process.exitCode = report.run.status === 'succeeded' ? 0 : 1;
} finally {
  await engine.close();
}
