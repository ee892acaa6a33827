/** Longest partial line kept between chunks; a longer line cannot be a workflow command we honour. */
const MAX_CARRY = 64 * 1024;

/**
 * What a step's output can ask for with workflow commands (`::name props::data` lines, as on
 * GitHub; command names in any case).
 */
export interface WorkflowCommandHandlers {
  /** `::add-mask::VALUE`: mask VALUE from now on. */
  mask?: (value: string) => void;
  /**
   * `::set-output name=NAME::VALUE`: set a step output (deprecated on GitHub in favour of
   * `$GITHUB_OUTPUT`, and still honoured there, so older workflows depend on it).
   */
  output?: (name: string, value: string) => void;
  /**
   * `::set-env name=NAME::VALUE` / `::add-path::DIR`: disabled on GitHub unless the step's
   * environment has `ACTIONS_ALLOW_UNSECURE_COMMANDS=true`. `allowed` says whether it has.
   */
  setEnv?: (name: string, value: string) => void;
  /** See {@link setEnv}. */
  addPath?: (dir: string) => void;
  /** A disabled command was used (`allowed` false); `message` says what to use instead. */
  disabled?: (command: string, message: string) => void;
  /** Whether `::set-env` and `::add-path` are allowed (`ACTIONS_ALLOW_UNSECURE_COMMANDS`). */
  allowed?: boolean;
  /**
   * Whether `::stop-commands::` may take an empty token or a command name
   * (`ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS`); without it such a token is refused and
   * commands go on being read (GitHub's fix for CVE-2020-15228: a step could switch off
   * `::add-mask::` for the rest of its output).
   */
  anyStopToken?: boolean;
}

/** Workflow command names (and `pause-logging`): not valid `::stop-commands::` tokens. */
const COMMAND_NAMES = new Set([
  'add-mask',
  'add-matcher',
  'add-path',
  'debug',
  'echo',
  'endgroup',
  'error',
  'group',
  'notice',
  'pause-logging',
  'remove-matcher',
  'save-state',
  'set-env',
  'set-output',
  'stop-commands',
  'warning',
]);

/**
 * The workflow commands of one step: both of its output streams are read (GitHub's runner
 * processes stderr too), sharing `::stop-commands::` state. `flush()` reads a last line
 * that ended without a newline, once the step's process has ended.
 */
export interface CommandScanners {
  stdout: (chunk: Uint8Array) => void;
  stderr: (chunk: Uint8Array) => void;
  flush: () => void;
}

/** One scanner per output stream of a step, sharing `::stop-commands::TOKEN` ... `::TOKEN::`. */
export function createStepCommandScanners(handlers: WorkflowCommandHandlers): CommandScanners {
  const state: StopState = { token: undefined };
  const out = createCommandScanner(handlers, state);
  const err = createCommandScanner(handlers, state);
  return {
    stdout: out.scan,
    stderr: err.scan,
    flush: () => {
      out.flush();
      err.flush();
    },
  };
}

interface StopState {
  /**
   * While set, command processing is off until a `::TOKEN::` line (lower case); an empty
   * token (allowed only with `anyStopToken`) stops it for the rest of the step.
   */
  token: string | undefined;
}

/**
 * A chunk consumer that finds workflow command lines in one output stream (also when a line
 * is split across chunks) and hands them to `handlers`. A command line is
 * `::command props::data`, leading and trailing whitespace ignored; other commands
 * (`::warning::`, `::group::`, ...) are left as output.
 */
function createCommandScanner(
  handlers: WorkflowCommandHandlers,
  stop: StopState,
): { scan: (chunk: Uint8Array) => void; flush: () => void } {
  const decoder = new TextDecoder();
  let carry = '';
  const onLine = (raw: string) => {
    if (!raw.includes('::')) return;
    const line = raw.trim();
    if (!line.startsWith('::')) return;
    const end = line.indexOf('::', 2);
    if (end < 0) return;
    const head = line.slice(2, end);
    const space = head.indexOf(' ');
    const command = (space < 0 ? head : head.slice(0, space)).toLowerCase();
    if (stop.token !== undefined) {
      if (stop.token !== '' && command === stop.token) stop.token = undefined;
      return;
    }
    const data = line.slice(end + 2);
    const props = () => propertiesOf(space < 0 ? '' : head.slice(space + 1));
    switch (command) {
      case 'stop-commands': {
        const token = data.trim().toLowerCase();
        if ((token === '' || COMMAND_NAMES.has(token)) && !handlers.anyStopToken) {
          handlers.disabled?.(
            command,
            `::stop-commands:: refused an empty token, \`pause-logging\` or a workflow command name as its token (as GitHub does); use a unique token, or set ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS=true`,
          );
          return;
        }
        stop.token = token;
        return;
      }
      case 'add-mask': {
        const value = data.trim();
        if (value !== '') handlers.mask?.(value);
        return;
      }
      case 'set-output': {
        const name = props().get('name');
        if (name !== undefined && name !== '') handlers.output?.(name, unescapeData(data));
        return;
      }
      case 'set-env':
      case 'add-path': {
        if (!handlers.allowed) {
          const instead =
            command === 'set-env' ? 'echo "NAME=value" >> "$GITHUB_ENV"' : 'echo "/a/dir" >> "$GITHUB_PATH"';
          handlers.disabled?.(
            command,
            `the \`${command}\` command is disabled (as on GitHub): use ${instead} instead, or set ACTIONS_ALLOW_UNSECURE_COMMANDS=true`,
          );
        } else if (command === 'add-path') {
          const dir = unescapeData(data).trim();
          if (dir !== '') handlers.addPath?.(dir);
        } else {
          const name = props().get('name');
          if (name !== undefined && name !== '') handlers.setEnv?.(name, unescapeData(data));
        }
        return;
      }
    }
  };
  return {
    scan: (chunk) => {
      const text = carry + decoder.decode(chunk, { stream: true });
      const lines = text.split('\n');
      carry = lines.pop() ?? '';
      if (carry.length > MAX_CARRY) carry = '';
      for (const raw of lines) onLine(raw);
    },
    flush: () => {
      const last = carry + decoder.decode();
      carry = '';
      if (last !== '' && last.length <= MAX_CARRY) onLine(last);
    },
  };
}

/** `k=v,k2=v2` of a workflow command, values unescaped as GitHub's runner does. */
function propertiesOf(text: string): Map<string, string> {
  const props = new Map<string, string>();
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0) props.set(pair.slice(0, eq).trim().toLowerCase(), unescapeProperty(pair.slice(eq + 1)));
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
