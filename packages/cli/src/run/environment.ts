/** Process-level things a command uses (streams, environment, signals); tests and embedders may replace them. */
export interface CommandEnvironment {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  /** Subscribes to Ctrl-C / SIGTERM (the handler learns which); returns the unsubscribe function. */
  onInterrupt(handler: (signal: 'SIGINT' | 'SIGTERM') => void): () => void;
}

/** The first write error of stdout that was not a closed pipe (a full disk, an I/O error). */
let stdoutFailure: NodeJS.ErrnoException | undefined;

const onStdoutError = (err: NodeJS.ErrnoException) => {
  // `pipewright ... | head`: a closed pipe ends the output; it must not crash the command mid-way.
  // Nor may a full disk or a broken terminal: the run goes on (its steps must still be stopped
  // properly), and main() turns a lost stdout into exit 3 at the end.
  if (err.code !== 'EPIPE') stdoutFailure ??= err;
};
// Diagnostics that cannot be written are lost; the command's outcome is still its exit code.
const onStderrError = () => {};

/**
 * Lets `pipewright ... | head` end quietly, and keeps a failing stdout or stderr (EPIPE, ENOSPC,
 * EIO) from crashing the command with steps still running.
 */
export function guardStdout(): void {
  if (!process.stdout.listeners('error').includes(onStdoutError)) process.stdout.on('error', onStdoutError);
  if (!process.stderr.listeners('error').includes(onStderrError)) process.stderr.on('error', onStderrError);
}

/** Why stdout could not be written (other than a reader that went away), if it could not. */
export function stdoutWriteFailure(): NodeJS.ErrnoException | undefined {
  return stdoutFailure;
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
      // A closed terminal or a dropped ssh session: stop like SIGTERM, so steps (in their own
      // process groups, out of the hangup's reach) and cleanup jobs are not left behind.
      process.on('SIGHUP', onTerm);
      return () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        process.off('SIGHUP', onTerm);
      };
    },
  };
}
