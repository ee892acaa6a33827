/** Process-level things a command uses (streams, environment, signals); tests and embedders may replace them. */
export interface CommandEnvironment {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  /** Subscribes to Ctrl-C / SIGTERM; returns the unsubscribe function. */
  onInterrupt(handler: () => void): () => void;
}

const ignoreEpipe = (err: NodeJS.ErrnoException) => {
  // `pipewright ... | head`: a closed pipe ends the output; it must not crash the command mid-way.
  if (err.code !== 'EPIPE') throw err;
};

/** The real process's streams, environment and signals. */
export function processEnvironment(): CommandEnvironment {
  if (!process.stdout.listeners('error').includes(ignoreEpipe)) process.stdout.on('error', ignoreEpipe);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      return () => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
      };
    },
  };
}
