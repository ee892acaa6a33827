import { rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { isAbsolute, join, posix, relative, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { Writable } from 'node:stream';
import type { ExecIO, ExecRequest, ExecResult, Workspace } from '@pipewright/core';
import {
  DEFAULT_SHELL_TEMPLATE,
  graceCutShort,
  ownDir,
  readOwnFile,
  scriptExtension,
  shellArgv,
  writeOwnFile,
} from '@pipewright/core';
import type Docker from 'dockerode';
import { assertWorkingDir } from '../working-dir.js';

/** Wraps a command so its pid (= its process group: docker execs are session leaders) lands in a file we can signal. */
/**
 * `$GITHUB_PATH` directories go in front of the container's own `PATH`, which only the
 * container knows: the wrapper does it, from {@link PATH_PREPEND_VAR}.
 */
const PATH_PREPEND_VAR = 'PIPEWRIGHT_PATH_PREPEND';
const PATH_PREFIX = `if [ -n "\${${PATH_PREPEND_VAR}:-}" ]; then PATH="$${PATH_PREPEND_VAR}:$PATH"; export PATH; fi; unset ${PATH_PREPEND_VAR}; `;
const PID_WRAPPER = `${PATH_PREFIX}echo $$ > "$0"; exec "$@"`;
/** GitHub's default shell (`bash -e`, or `sh -e` when the image has no bash), decided in the same exec: no probe round trip. */
const DEFAULT_SHELL_WRAPPER = `${PATH_PREFIX}echo $$ > "$0"; if command -v bash >/dev/null 2>&1; then exec bash -e "$1"; fi; exec sh -e "$1"`;
/** After SIGKILL, how long we wait for the exec's stream to end before cutting it. */
const AFTER_KILL_MS = 1500;

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** What {@link DockerWorkspace} needs: a started container with `hostDir` bind-mounted at `containerDir`. */
export interface DockerWorkspaceInit {
  docker: Docker;
  container: Docker.Container;
  /** Full container id. */
  containerId: string;
  image: string;
  hostDir: string;
  containerDir: string;
  /** Removes the host directory on dispose. @default true */
  removeHostDir?: boolean;
}

/** Result of a short helper command run in the container. */
interface HelperResult {
  exitCode: number | null;
  stdout: string;
}

/**
 * A job attempt's workspace inside one running container: each step is a
 * `docker exec` of the shell template, its script written to the bind-mounted
 * host directory. Disposing removes the container (force) and the directory.
 */
export class DockerWorkspace implements Workspace {
  /** Host directory bind-mounted into the container. */
  readonly hostDir: string;
  /** Short container id. */
  readonly workerId: string;
  /** Full container id. */
  readonly containerId: string;
  /** The image the container runs. */
  readonly image: string;
  /** Mount point of {@link hostDir} in the container. */
  readonly containerDir: string;
  private readonly docker: Docker;
  private readonly container: Docker.Container;
  private readonly removeHostDir: boolean;
  private seq = 0;
  private disposing: Promise<void> | undefined;

  constructor(init: DockerWorkspaceInit) {
    this.docker = init.docker;
    this.container = init.container;
    this.containerId = init.containerId;
    this.workerId = init.containerId.slice(0, 12);
    this.image = init.image;
    this.hostDir = init.hostDir;
    this.containerDir = init.containerDir;
    this.removeHostDir = init.removeHostDir ?? true;
  }

  /** Maps a host path under {@link hostDir} to the container path; other paths are returned unchanged. */
  toWorkspacePath(hostPath: string): string {
    const rel = relative(this.hostDir, hostPath);
    if (rel === '') return this.containerDir;
    if (rel.startsWith('..') || isAbsolute(rel)) return hostPath;
    return posix.join(this.containerDir, rel.split(sep).join('/'));
  }

  /**
   * The step loop's files go in `.pipewright/`: a link a container step put in its place (the
   * workspace is bind-mounted, the step is root in its container) is replaced first.
   */
  async prepareStep(): Promise<void> {
    await ownDir(join(this.hostDir, '.pipewright'));
  }

  /**
   * Runs one step. Output is demultiplexed into `io` in order; when `io` returns
   * a promise the exec stream is paused until it settles. On abort: SIGTERM to
   * the step's process group, SIGKILL after `killGraceMs`.
   */
  async exec(request: ExecRequest, io: ExecIO): Promise<ExecResult> {
    if (this.disposing) throw new Error(`the container ${this.workerId} was already removed`);
    // Nothing was started, so report the step as killed before it ran.
    if (request.signal.aborted) return { exitCode: null, signal: 'SIGTERM' };
    await this.checkWorkingDir(request.workingDirectory);
    const n = ++this.seq;
    const template = request.shell;
    const isDefault = template === DEFAULT_SHELL_TEMPLATE;
    // prepareStep() has made `.pipewright/` a real directory; `exec/` below it likewise.
    const dir = join(this.hostDir, '.pipewright', 'exec');
    await ownDir(dir);
    const scriptHost = join(dir, `step-${n}${scriptExtension(template)}`);
    const pidHost = join(dir, `step-${n}.pid`);
    await writeOwnFile(scriptHost, request.script, 0o755);
    const scriptPath = this.toWorkspacePath(scriptHost);
    const cmd = isDefault
      ? ['sh', '-c', DEFAULT_SHELL_WRAPPER, this.toWorkspacePath(pidHost), scriptPath]
      : ['sh', '-c', PID_WRAPPER, this.toWorkspacePath(pidHost), ...shellArgv(template, scriptPath)];

    const exec = await this.container.exec({
      Cmd: cmd,
      Env: toEnvList(
        request.pathPrepend?.length
          ? { ...request.env, [PATH_PREPEND_VAR]: request.pathPrepend.join(':') }
          : request.env,
      ),
      WorkingDir: this.workingDir(request.workingDirectory),
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    const stream = (await exec.start({ hijack: true, stdin: false })) as Duplex;

    let killedWith: string | undefined;
    let sinkError: unknown;
    const ended = pipeOutput(this.docker, stream, io, (e) => {
      sinkError = e;
      void this.signalStep(pidHost, 'KILL');
    });
    let cut = false;

    const onAbort = () => {
      void (async () => {
        // A forced cancel gives no grace; one forced after the fact (second Ctrl-C) ends it there.
        const cutShort = graceCutShort(request.signal);
        if (!cutShort?.aborted) {
          killedWith = 'SIGTERM';
          await this.signalStep(pidHost, 'TERM');
          if (await settlesWithin(ended, request.killGraceMs, cutShort)) return;
        }
        killedWith = 'SIGKILL';
        await this.signalStep(pidHost, 'KILL');
        if (await settlesWithin(ended, AFTER_KILL_MS)) return;
        // A descendant in another session may hold the pipe open; the step itself is gone.
        cut = true;
        stream.destroy();
      })();
    };
    if (request.signal.aborted) onAbort();
    else request.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await ended;
    } finally {
      request.signal.removeEventListener('abort', onAbort);
    }
    if (sinkError !== undefined) throw sinkError;

    const exitCode = await exitCodeOf(exec, !cut);
    if (killedWith !== undefined && (exitCode === null || exitCode > 128)) {
      const name = exitCode === null ? killedWith : (SIGNAL_NAMES.get(exitCode - 128) ?? killedWith);
      return { exitCode: null, signal: name };
    }
    return { exitCode, signal: null };
  }

  /**
   * Whether the kernel's OOM killer struck in this container: a step killed
   * for memory (the container keeps running) or the container itself.
   */
  async oomKilled(): Promise<boolean> {
    try {
      const info = await this.container.inspect();
      if (info.State.OOMKilled) return true;
      if (!info.State.Running) return false;
    } catch {
      return false;
    }
    // cgroup v2 (memory.events) or v1 (memory.oom_control) counters; Docker only flags OOM of PID 1.
    // The reading helper runs in the same cgroup: while the step's other processes still hold the
    // memory (a `head` still writing after its `tail` was killed), the helper itself can be
    // OOM-killed and read nothing. Then it tries again, once they have gone (up to 2 s: on a loaded
    // host they take their time; only a failed step gets here).
    for (let tries = 0; tries < 10; tries++) {
      if (tries > 0) await delay(200);
      const r = await this.helper([
        'sh',
        '-c',
        'cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null',
      ]).catch(() => undefined);
      const m = r && /^oom_kill (\d+)$/m.exec(r.stdout);
      if (m) return Number(m[1]) > 0;
    }
    return false;
  }

  /**
   * Whether the container is no longer running (killed or removed from outside, or its main
   * process ended): a step that failed then did not fail on its own.
   */
  async stopped(): Promise<boolean> {
    try {
      return !(await this.container.inspect()).State.Running;
    } catch (e) {
      return statusOf(e) === 404;
    }
  }

  /** Removes the container (force, with anonymous volumes) and the host directory; safe to call twice. */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      try {
        await this.container.remove({ force: true, v: true });
      } catch (e) {
        if (statusOf(e) !== 404) {
          // The engine could not be reached: a later call may try again.
          this.disposing = undefined;
          throw e;
        }
      }
      if (this.removeHostDir) await rm(this.hostDir, { recursive: true, force: true }).catch(() => {});
    })();
    return this.disposing;
  }

  /**
   * A working directory inside the workspace must exist, as with the process executor: a
   * missing one is an exec rejection (`infra`) naming it, not Docker's exit 126 in the step's
   * output. Paths outside the workspace (the image's own) are left to Docker.
   */
  private async checkWorkingDir(wd: string | undefined): Promise<void> {
    if (wd === undefined || wd === '') return;
    const inside = this.workingDir(wd);
    const rel = posix.relative(this.containerDir, inside);
    if (rel.startsWith('..') || posix.isAbsolute(rel)) return;
    await assertWorkingDir(join(this.hostDir, ...rel.split('/')), wd, inside, { root: this.hostDir });
  }

  private workingDir(wd: string | undefined): string {
    if (wd === undefined || wd === '') return this.containerDir;
    if (wd.startsWith('/')) return wd.startsWith(this.hostDir) ? this.toWorkspacePath(wd) : wd;
    return posix.join(this.containerDir, wd);
  }

  /** Signals the step's process group (its pid from the wrapper's file); without a pid, everything but PID 1. */
  private async signalStep(pidFile: string, sig: 'TERM' | 'KILL'): Promise<void> {
    let pid: number | undefined;
    for (let i = 0; i < 10 && pid === undefined; i++) {
      const text = await readOwnFile(pidFile).catch(() => '');
      const p = Number.parseInt(text.trim(), 10);
      if (Number.isInteger(p) && p > 1) pid = p;
      // The wrapper may not have written it yet when the abort comes right after start.
      else if (sig === 'TERM') await delay(50);
      else break;
    }
    const cmd =
      pid === undefined
        ? sig === 'KILL'
          ? ['sh', '-c', 'kill -s KILL -1']
          : undefined
        : ['sh', '-c', `kill -s ${sig} -"$0" 2>/dev/null || kill -s ${sig} "$0"`, String(pid)];
    if (cmd === undefined) return;
    await this.helper(cmd).catch(() => {});
  }

  /** Runs a short helper command and collects its stdout. */
  private async helper(cmd: string[]): Promise<HelperResult> {
    const exec = await this.container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, Tty: false });
    const stream = (await exec.start({ hijack: true, stdin: false })) as Duplex;
    const chunks: Uint8Array[] = [];
    await pipeOutput(this.docker, stream, { stdout: (c) => void chunks.push(c), stderr: () => {} }, () => {});
    return { exitCode: await exitCodeOf(exec, true), stdout: Buffer.concat(chunks).toString('utf8') };
  }
}

/**
 * Demultiplexes a non-TTY exec stream into `io`, one chunk at a time and in
 * order across stdout and stderr. docker-modem's demux ignores write()'s
 * return value, so we pause the source ourselves while the sink is full.
 * Resolves once every chunk was delivered and the stream ended.
 */
function pipeOutput(docker: Docker, stream: Duplex, io: ExecIO, onSinkError: (e: unknown) => void): Promise<void> {
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 16,
    write(item: { s: 'stdout' | 'stderr'; c: Buffer }, _enc, cb) {
      try {
        const r = item.s === 'stdout' ? io.stdout(item.c) : io.stderr(item.c);
        if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).then(() => cb(), cb);
        else cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
  let failed = false;
  const target = (s: 'stdout' | 'stderr') => ({
    write(c: Buffer): boolean {
      if (!failed && c.length > 0) sink.write({ s, c });
      return true;
    },
  });
  docker.modem.demuxStream(stream, target('stdout') as never, target('stderr') as never);
  stream.on('data', () => {
    if (sink.writableNeedDrain && !stream.isPaused()) {
      stream.pause();
      sink.once('drain', () => stream.resume());
    }
  });
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (failed) return resolve();
      sink.end(() => resolve());
    };
    sink.on('error', (e) => {
      failed = true;
      onSinkError(e);
      // Keep draining the exec so the process is not blocked on a full pipe while it is killed.
      stream.resume();
      finish();
    });
    stream.once('end', finish);
    stream.once('close', finish);
    stream.once('error', finish);
  });
}

/** The exec's exit code; the engine may flag it finished a moment after the stream ends. */
async function exitCodeOf(exec: Docker.Exec, expectDone: boolean): Promise<number | null> {
  for (let i = 0; i < 40; i++) {
    const info = await exec.inspect();
    if (!info.Running) return info.ExitCode ?? null;
    if (!expectDone && i >= 2) return null;
    await delay(Math.min(10 * 2 ** i, 100));
  }
  return null;
}

/** Whether `p` settles within `ms`; false at once when `cutShort` aborts first. */
function settlesWithin(p: Promise<unknown>, ms: number, cutShort?: AbortSignal): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let onCut: (() => void) | undefined;
  return Promise.race([
    p.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
      if (cutShort?.aborted) resolve(false);
      onCut = () => resolve(false);
      cutShort?.addEventListener('abort', onCut, { once: true });
    }),
  ]).finally(() => {
    clearTimeout(timer);
    if (onCut) cutShort?.removeEventListener('abort', onCut);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function toEnvList(env: Record<string, string>): string[] {
  return Object.entries(env)
    .filter(([k]) => k !== '' && !k.includes('='))
    .map(([k, v]) => `${k}=${v}`);
}

/** HTTP status of a dockerode error, if any. */
export function statusOf(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}
