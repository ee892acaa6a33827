/** Longest partial line kept between chunks; a longer line cannot be a workflow command we honour. */
const MAX_CARRY = 64 * 1024;

/** What a step's stdout can ask for with workflow commands (`::name props::data` lines, as on GitHub). */
export interface WorkflowCommandHandlers {
  /** `::add-mask::VALUE`: mask VALUE from now on. */
  mask?: (value: string) => void;
  /**
   * `::set-output name=NAME::VALUE`: set a step output (deprecated on GitHub in favour of
   * `$GITHUB_OUTPUT`, and still honoured there, so older workflows depend on it).
   */
  output?: (name: string, value: string) => void;
  /**
   * `::set-env` / `::add-path`: disabled on GitHub since 2020 (a step that uses them fails there,
   * saying to use `$GITHUB_ENV` / `$GITHUB_PATH`); `message` says so.
   */
  disabled?: (command: string, message: string) => void;
}

/**
 * The workflow commands of one step: both of its output streams are read (GitHub's runner
 * processes stderr too), sharing `::stop-commands::` state. `scan(chunk)` per stream.
 */
export interface CommandScanners {
  stdout: (chunk: Uint8Array) => void;
  stderr: (chunk: Uint8Array) => void;
}

/** One scanner per output stream of a step, sharing `::stop-commands::TOKEN` ... `::TOKEN::`. */
export function createStepCommandScanners(handlers: WorkflowCommandHandlers): CommandScanners {
  const state: StopState = { token: undefined };
  return { stdout: createCommandScanner(handlers, state), stderr: createCommandScanner(handlers, state) };
}

interface StopState {
  /** While set, command processing is off until a `::TOKEN::` line. */
  token: string | undefined;
}

/**
 * Returns a chunk consumer that finds workflow command lines in a step's stdout (also
 * when a line is split across chunks) and hands them to `handlers`. A command line is
 * `::command props::data`, leading and trailing whitespace ignored; other commands
 * (`::warning::`, `::group::`, ...) are left as output.
 */
export function createCommandScanner(
  handlers: WorkflowCommandHandlers,
  stop: StopState = { token: undefined },
): (chunk: Uint8Array) => void {
  const decoder = new TextDecoder();
  let carry = '';
  return (chunk) => {
    const text = carry + decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    carry = lines.pop() ?? '';
    if (carry.length > MAX_CARRY) carry = '';
    for (const raw of lines) {
      if (!raw.includes('::')) continue;
      const line = raw.trim();
      if (!line.startsWith('::')) continue;
      const end = line.indexOf('::', 2);
      if (end < 0) continue;
      const head = line.slice(2, end);
      const space = head.indexOf(' ');
      const command = space < 0 ? head : head.slice(0, space);
      if (stop.token !== undefined) {
        if (command === stop.token && line.length === end + 2) stop.token = undefined;
        continue;
      }
      if (command === 'stop-commands') {
        const token = line.slice(end + 2).trim();
        if (token !== '') stop.token = token;
      } else if (command === 'add-mask') {
        const value = line.slice(end + 2).trim();
        if (value !== '') handlers.mask?.(value);
      } else if (command === 'set-output' && handlers.output) {
        const name = propertiesOf(space < 0 ? '' : head.slice(space + 1)).get('name');
        if (name !== undefined && name !== '') handlers.output(name, unescapeData(line.slice(end + 2)));
      } else if ((command === 'set-env' || command === 'add-path') && handlers.disabled) {
        const instead =
          command === 'set-env' ? 'echo "NAME=value" >> "$GITHUB_ENV"' : 'echo "/a/dir" >> "$GITHUB_PATH"';
        handlers.disabled(command, `the \`${command}\` command is disabled (as on GitHub): use ${instead} instead`);
      }
    }
  };
}

/** `k=v,k2=v2` of a workflow command, values unescaped as GitHub's runner does. */
function propertiesOf(text: string): Map<string, string> {
  const props = new Map<string, string>();
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0) props.set(pair.slice(0, eq).trim(), unescapeProperty(pair.slice(eq + 1)));
  }
  return props;
}

function unescapeData(s: string): string {
  return s.includes('%') ? s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%') : s;
}

function unescapeProperty(s: string): string {
  return s.includes('%')
    ? s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%3A/gi, ':').replace(/%2C/gi, ',').replace(/%25/g, '%')
    : s;
}
