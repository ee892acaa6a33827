import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
/** The CLI entry point, as `npx pipewright` runs it. */
export const BIN = join(ROOT, 'packages/cli/bin/pipewright.js');

/** Builds the CLI (incremental `tsc -b`) so the spawned bin runs the current sources. */
export function buildCli(): void {
  execFileSync('npx', ['tsc', '-b', 'packages/cli'], { cwd: ROOT, stdio: 'pipe' });
  if (!existsSync(join(ROOT, 'packages/cli/dist/main.js')))
    throw new Error('packages/cli/dist/main.js missing after build');
}

/** A temporary directory removed by `dispose()`. */
export function tempDir(prefix = 'pw-cli-'): {
  dir: string;
  file(name: string, text: string): string;
  dispose(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    file(name, text) {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How a CLI run ended. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running CLI child process. */
export interface CliProcess {
  child: ChildProcess;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when `predicate` holds for stdout+stderr (polls), or rejects after `ms`. */
  waitFor(predicate: (out: string) => boolean, ms?: number): Promise<void>;
  done: Promise<CliResult>;
}

const started = new Set<ChildProcess>();

/** Spawns `node bin/pipewright.js ...args` with a clean colour environment (no TTY: pipes). */
export function startCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string; stdin?: 'ignore' | 'pipe' } = {},
): CliProcess {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  delete env.FORCE_COLOR;
  delete env.NO_COLOR;
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env,
    // `pipe`: a stdin the test holds open (and may write to), for `run -`.
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const done = new Promise<CliResult>((res) => {
    child.on('close', (code, signal) => {
      started.delete(child);
      res({ code, signal, stdout: out, stderr: err });
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitFor(predicate, ms = 20_000) {
      const deadline = Date.now() + ms;
      while (!predicate(out + err)) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for output; got:\n${out}\n--- stderr ---\n${err}`);
        if (child.exitCode !== null)
          throw new Error(`the CLI exited (${child.exitCode}) first:\n${out}\n--- stderr ---\n${err}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    done,
  };
}

/** Runs the CLI to the end. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Kills CLI processes a failed test left behind. */
export function killStragglers(): void {
  for (const c of started) c.kill('SIGKILL');
  started.clear();
}

/** True while a process with this pid exists (zombies count as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true;
  }
}

/** Any ANSI escape sequence. */
export const ESCAPE = /\x1b\[/;

/** True when `path` exists and is a file. */
export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
