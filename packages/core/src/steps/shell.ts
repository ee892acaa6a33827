import { PipewrightError } from '../errors.js';

/** Template used when no `shell` is given anywhere (GitHub: bash, or sh when bash is missing). */
export const DEFAULT_SHELL_TEMPLATE = 'bash -e {0}';
/** Fallback for {@link DEFAULT_SHELL_TEMPLATE} on hosts without bash. */
export const FALLBACK_SHELL_TEMPLATE = 'sh -e {0}';

const BUILTIN: Record<string, string> = {
  bash: 'bash --noprofile --norc -eo pipefail {0}',
  sh: 'sh -e {0}',
  python: 'python {0}',
  pwsh: 'pwsh -command ". \'{0}\'"',
  powershell: 'powershell -command ". \'{0}\'"',
};

/**
 * GitHub's shell template for a `shell:` value: `bash`, `sh`, `python`, `pwsh`,
 * `powershell`, a custom template containing `{0}`, or undefined for the default.
 */
export function shellTemplate(shell: string | undefined): string {
  if (shell === undefined || shell.trim() === '') return DEFAULT_SHELL_TEMPLATE;
  const s = shell.trim();
  const builtin = BUILTIN[s];
  if (builtin !== undefined) return builtin;
  if (s.includes('{0}')) return s;
  throw new PipewrightError(
    'INVALID_ARGUMENT',
    `Unsupported shell \`${s}\`: use bash, sh, python, pwsh, powershell or a command template containing {0} (e.g. \`perl {0}\`)`,
    { details: { shell: s } },
  );
}

/** The program's base name of a template (`pwsh` for `/usr/bin/pwsh -command ...`). */
function programOf(template: string): string {
  const program = splitCommandLine(template)[0] ?? '';
  return program.split(/[\\/]/).pop() ?? program;
}

/**
 * The script as GitHub's runner writes it for the template's program: PowerShell gets
 * `$ErrorActionPreference = 'stop'` before it and exits with the last native command's exit
 * code after it (without them a failing cmdlet or program does not fail the step); `cmd` gets
 * `@echo off`. Other shells get the script as it is.
 */
export function scriptForShell(template: string, script: string): string {
  const base = programOf(template);
  if (base === 'pwsh' || base === 'powershell') {
    return `$ErrorActionPreference = 'stop'\n${script}\nif ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) { exit $LASTEXITCODE }\n`;
  }
  if (base === 'cmd') return `@echo off\r\n${script}`;
  return script;
}

/** File extension the script file needs for a template (some interpreters insist on one). */
export function scriptExtension(template: string): string {
  const base = programOf(template);
  if (base.startsWith('python')) return '.py';
  if (base === 'pwsh' || base === 'powershell') return '.ps1';
  if (base === 'cmd') return '.cmd';
  return '.sh';
}

/** argv for running `scriptPath` with a shell template: `{0}` is replaced by the path. */
export function shellArgv(template: string, scriptPath: string): string[] {
  const argv = splitCommandLine(template).map((a) => a.split('{0}').join(scriptPath));
  if (argv.length === 0) {
    throw new PipewrightError('INVALID_ARGUMENT', `Empty shell template: give a command such as \`bash {0}\``);
  }
  return argv;
}

/** Splits a command line on whitespace, honouring single and double quotes. */
export function splitCommandLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | null = null;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote) {
    throw new PipewrightError('INVALID_ARGUMENT', `Unterminated ${quote} quote in shell template \`${line}\``);
  }
  if (has) out.push(cur);
  return out;
}
