#!/usr/bin/env node
import { main } from '../dist/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Interrupted: whatever set-up was still under way (a Docker ping, a store connecting) must
    // not keep the process alive for its own timeout. Everything the command owns is closed.
    if (code === 130) process.exit(code);
  },
  (err) => {
    process.stderr.write(`pipewright: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 3;
  },
);
