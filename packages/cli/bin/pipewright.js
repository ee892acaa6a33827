#!/usr/bin/env node
import { exitCodeAfterOutput, main } from '../dist/main.js';

/** Resolves once everything written to `stream` so far has been handed to the OS. */
const drained = (stream) => new Promise((resolve) => stream.write('', () => resolve()));

main(process.argv.slice(2)).then(
  async (result) => {
    const code = await exitCodeAfterOutput(result);
    process.exitCode = code;
    // Interrupted: set-up still under way (a Docker ping, a store connecting) must not keep the
    // process alive for its own timeout. Everything the command owns is closed; what it printed
    // is flushed first, so a piped report or log is never cut off.
    if (code === 130) {
      await Promise.all([drained(process.stdout), drained(process.stderr)]);
      process.exit(code);
    }
  },
  (err) => {
    process.stderr.write(`pipewright: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 3;
  },
);
