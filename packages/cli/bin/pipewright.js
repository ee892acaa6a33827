#!/usr/bin/env node
import { holdInterrupts } from '../dist/run/environment.js';

// Before the modules load (~100 ms): a Ctrl-C from here on stops the command with its exit code
// and report, instead of killing the process with nothing on stdout.
holdInterrupts();
const { exitCodeAfterOutput, main } = await import('../dist/main.js');

main(process.argv.slice(2)).then(
  async (result) => {
    const code = await exitCodeAfterOutput(result);
    process.exitCode = code;
    // Interrupted: set-up still under way (a Docker ping, a store connecting) must not keep the
    // process alive for its own timeout. Everything the command owns is closed, and what it
    // printed has been flushed (exitCodeAfterOutput), so a piped report or log is never cut off.
    if (code === 130) process.exit(code);
  },
  (err) => {
    process.stderr.write(`pipewright: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 3;
  },
);
