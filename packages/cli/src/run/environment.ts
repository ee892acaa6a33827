/** Process-level things a command uses (streams, environment, signals); tests and embedders may replace them. */
export interface CommandEnvironment {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  /** Subscribes to Ctrl-C / SIGTERM (the handler learns which); returns the unsubscribe function. */
  onInterrupt(handler: (signal: 'SIGINT' | 'SIGTERM') => void): () => void;
}

const ignoreEpipe = (err: NodeJS.ErrnoException) => {
  // `pipewright ... | head`: a closed pipe ends the output; it must not crash the command mid-way.
  if (err.code !== 'EPIPE') throw err;
};

/** Lets `pipewright ... | head` end quietly: a closed stdout pipe is not an error of the command. */
export function guardStdout(): void {
  if (!process.stdout.listeners('error').includes(ignoreEpipe)) process.stdout.on('error', ignoreEpipe);
}

/** The real process's streams, environment and signals. */
export function processEnvironment(): CommandEnvironment {
  guardStdout();
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onInterrupt(handler) {
      const onInt = () => handler('SIGINT');
      const onTerm = () => handler('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      return () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
      };
    },
  };
}
