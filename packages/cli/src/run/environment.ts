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

type Interrupt = 'SIGINT' | 'SIGTERM';
/** Signals that came while nobody was subscribed yet ({@link holdInterrupts}). */
const held: Interrupt[] = [];
const HELD_SIGNALS: ReadonlyArray<[NodeJS.Signals, Interrupt]> = [
  ['SIGINT', 'SIGINT'],
  ['SIGTERM', 'SIGTERM'],
  ['SIGHUP', 'SIGTERM'],
];
const holders = new Map<NodeJS.Signals, () => void>();

/**
 * From the first line of the `pipewright` binary until a command subscribes with `onInterrupt`
 * (loading modules, reading and validating the file): a Ctrl-C or SIGTERM is held for the
 * command, which then stops as it would have a moment later (exit 130, the `--json` document),
 * instead of the process dying by the signal with nothing on stdout. A second one ends the
 * process at once (130): nothing has started that needs stopping.
 */
export function holdInterrupts(): void {
  for (const [signal, as] of HELD_SIGNALS) {
    if (holders.has(signal)) continue;
    const hold = () => {
      held.push(as);
      if (held.length >= 2) process.exit(130);
    };
    holders.set(signal, hold);
    process.on(signal, hold);
  }
}

/** For commands that do not handle interrupts: a held one ends the process (130), later ones act as usual. */
export function releaseInterrupts(): void {
  stopHolding();
  if (held.length > 0) process.exit(130);
}

function stopHolding(): void {
  for (const [signal, hold] of holders) process.off(signal, hold);
  holders.clear();
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
      // What came before anyone listened is this handler's now, in order.
      stopHolding();
      for (const signal of held.splice(0)) handler(signal);
      return () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        process.off('SIGHUP', onTerm);
      };
    },
  };
}
