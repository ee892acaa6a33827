import { spawn } from 'node:child_process';
import { close, constants, open, write } from 'node:fs';
import { access, lstat, mkdir, mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { ExecIO, ExecRequest, ExecResult, Workspace } from '@pipewright/core';
import {
  DEFAULT_SHELL_TEMPLATE,
  FALLBACK_SHELL_TEMPLATE,
  graceCutShort,
  isStepFileName,
  PipewrightError,
  STEP_FILE_KINDS,
  STEP_ID_ENV,
  scriptExtension,
  shellArgv,
  shellTemplate,
  stepFileName,
} from '@pipewright/core';
import { assertWorkingDir } from '../working-dir.js';
import { groupAlive, killGroup, killTagged } from './process-group.js';

/** Options of {@link ProcessWorkspace}. */
export interface ProcessWorkspaceOptions {
  /** Identity reported as the attempt's worker. @default `${os.hostname()}/process` */
  workerId?: string;
  /** Upper bound on the SIGTERM -> SIGKILL grace any step may ask for. @default no bound */
  maxKillGraceMs?: number;
  /** Keep the directory on {@link ProcessWorkspace.dispose}. @default false */
  keep?: boolean;
  /**
   * After a step's process group is dead, how long its output pipes may stay
   * silent before they are closed: a process that escaped the group (setsid)
   * must not hold the step open. @default 500
   */
  pipeIdleTimeoutMs?: number;
  /**
   * After a step's process group is dead, how long its output is read at most: a process that
   * escaped the group and keeps writing must not hold the step (and the run) open for ever.
   * After a cancel or timeout the pipes close once they are idle for `pipeIdleTimeoutMs` or
   * after that much time, whichever comes first. @default 5000
   */
  pipeDrainMaxMs?: number;
}

const bashCache = new Map<string, Promise<boolean>>();

/** Whether `name` is an executable on `PATH`. */
async function onPath(name: string, path: string | undefined): Promise<boolean> {
  const key = `${name}\0${path ?? ''}`;
  let found = bashCache.get(key);
  if (found === undefined) {
    found = (async () => {
      for (const dir of (path ?? '').split(delimiter)) {
        if (dir === '') continue;
        try {
          await access(join(dir, name), constants.X_OK);
          return true;
        } catch {}
      }
      return false;
    })();
    bashCache.set(key, found);
  }
  return found;
}

interface Pump {
  done: Promise<void>;
  lastActivity(): number;
  /** A sink promise is pending: the consumer, not the producer, is slow. */
  busy(): boolean;
  destroy(): void;
}

/** Forwards a stream to a sink, pausing the stream while the sink's promise is pending (backpressure). */
function pump(
  stream: Readable,
  sink: (chunk: Uint8Array) => void | Promise<void>,
  onError: (e: unknown) => void,
): Pump {
  let last = Date.now();
  let busy = false;
  stream.on('data', (chunk: Buffer) => {
    last = Date.now();
    let r: void | Promise<void>;
    try {
      r = sink(chunk);
    } catch (e) {
      onError(e);
      return;
    }
    if (r && typeof (r as Promise<void>).then === 'function') {
      stream.pause();
      busy = true;
      (r as Promise<void>).then(
        () => {
          busy = false;
          last = Date.now();
          stream.resume();
        },
        (e: unknown) => {
          busy = false;
          last = Date.now();
          onError(e);
          stream.resume();
        },
      );
    }
  });
  const done = new Promise<void>((res) => {
    stream.once('close', () => res());
    stream.once('error', () => res());
  });
  return { done, lastActivity: () => last, busy: () => busy, destroy: () => stream.destroy() };
}

/** Names of the script files this workspace writes in `.pipewright/` (beside the step loop's files). */
const SCRIPT_FILE = /^script-\d+(?:\.[A-Za-z0-9]+)?$/;
/** Kept, emptied, on recycling: the files the next attempt's first script step writes anyway. */
const KEPT_FILES = new Set([...STEP_FILE_KINDS.map((kind) => stepFileName(0, kind)), 'script-1.sh']);

const TRUNCATE = constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW;

/** `fs.open` without a FileHandle: cheaper on the engine's thread than `fs/promises`. */
function openFile(file: string, flags: string | number, mode?: number): Promise<number> {
  return new Promise((res, rej) => open(file, flags, mode, (e, fd) => (e ? rej(e) : res(fd))));
}

/** Never rejects: by the time it runs, the data is written. */
function closeFile(fd: number): Promise<void> {
  return new Promise((res) => close(fd, () => res()));
}

async function writeAll(fd: number, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await new Promise<number>((res, rej) =>
      write(fd, data, offset, data.length - offset, null, (e, n) => (e ? rej(e) : res(n))),
    );
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A workspace that is a directory on this host; each command runs as a local
 * child process in its own process group, so aborting a step reaches every
 * process it started.
 */
export class ProcessWorkspace implements Workspace {
  /** Identity of this worker. */
  readonly workerId: string;
  private readonly options: ProcessWorkspaceOptions;
  private seq = 0;

  /** Wraps an existing directory; see {@link ProcessWorkspace.create} to make a fresh one. */
  constructor(
    readonly hostDir: string,
    options: ProcessWorkspaceOptions = {},
  ) {
    this.options = options;
    this.workerId = options.workerId ?? `${hostname()}/process`;
  }

  /** Creates a fresh, uniquely named workspace directory under `root`. */
  static async create(root: string, prefix: string, options: ProcessWorkspaceOptions = {}): Promise<ProcessWorkspace> {
    const template = join(root, `${prefix.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80)}-`);
    try {
      return new ProcessWorkspace(await mkdtemp(template), options);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      // The root does not exist yet, or was removed since (tmp cleaners do that): create it, once per miss.
      await mkdir(root, { recursive: true, mode: 0o700 });
      return new ProcessWorkspace(await mkdtemp(template), options);
    }
  }

  /** Commands run on the host, so they see host paths unchanged. */
  toWorkspacePath(hostPath: string): string {
    return hostPath;
  }

  /** Runs one script; rejects only when it cannot start (missing shell, bad working directory). */
  async exec(req: ExecRequest, io: ExecIO): Promise<ExecResult> {
    if (req.signal.aborted) return { exitCode: null, signal: null };
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    Object.assign(env, req.env);
    if (req.pathPrepend?.length) env.PATH = [...req.pathPrepend, ...(env.PATH ? [env.PATH] : [])].join(delimiter);

    let template = req.shell.includes('{0}') ? req.shell : shellTemplate(req.shell);
    // GitHub's rule: with no shell given, bash when it exists, else sh.
    if (template === DEFAULT_SHELL_TEMPLATE && !(await onPath('bash', env.PATH))) template = FALLBACK_SHELL_TEMPLATE;

    const cwd = resolve(this.hostDir, req.workingDirectory ?? '.');
    // The workspace root exists (we made it); only a step's own working-directory needs checking
    // up front. A root removed under us is diagnosed below if the spawn fails.
    if (req.workingDirectory !== undefined) await assertWorkingDir(cwd, req.workingDirectory);
    // Beside the step loop's files, which already made the directory: no mkdir on the usual path.
    const scripts = join(this.hostDir, '.pipewright');
    const file = join(scripts, `script-${++this.seq}${scriptExtension(template)}`);
    let fd: number;
    try {
      fd = await openFile(file, 'w', 0o700);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await mkdir(scripts, { recursive: true });
      fd = await openFile(file, 'w', 0o700);
    }
    try {
      await writeAll(fd, Buffer.from(req.script));
    } catch (e) {
      await closeFile(fd);
      throw e;
    }
    const argv = shellArgv(template, file);
    const program = argv[0] ?? '';
    // The shell opens the script by name and the data is in the page cache once write returns,
    // so the close need not delay the spawn; only a script run as the program itself must be
    // closed first (exec of a file open for writing fails with ETXTBSY).
    const closed = closeFile(fd);
    if (program === file) await closed;

    const child = spawn(program, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((res, rej) => {
        child.once('spawn', res);
        child.once('error', rej);
      });
    } catch (e) {
      await closed;
      const code = (e as NodeJS.ErrnoException).code;
      // spawn says ENOENT for a missing cwd as for a missing program.
      if (code === 'ENOENT') await assertWorkingDir(cwd, req.workingDirectory ?? '.');
      throw new PipewrightError(
        'EXECUTOR_UNAVAILABLE',
        `could not start \`${program}\` (${code ?? (e as Error).message})${code === 'ENOENT' ? ': is it installed and on PATH?' : ''}`,
        { cause: e, details: { program } },
      );
    }
    const pid = child.pid as number;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      child.once('exit', (code, signal) => res({ code, signal }));
    });

    let sinkError: unknown;
    const onSinkError = (e: unknown) => {
      if (sinkError === undefined) sinkError = e;
      killGroup(pid, 'SIGKILL');
    };
    const pumps = [
      pump(child.stdout as Readable, (c) => io.stdout(c), onSinkError),
      pump(child.stderr as Readable, (c) => io.stderr(c), onSinkError),
    ];

    const grace = Math.max(0, Math.min(req.killGraceMs, this.options.maxKillGraceMs ?? Number.POSITIVE_INFINITY));
    // Processes of this step that left its group (setsid, daemons) still carry its id; those of
    // earlier steps (a service one started for the next ones) have another and are left alone.
    const stepId = req.env[STEP_ID_ENV];
    const kill = (signal: NodeJS.Signals) => {
      killGroup(pid, signal);
      if (stepId) void killTagged(STEP_ID_ENV, stepId, signal);
    };
    /** When the group gets SIGKILL: set on abort; a forced cancel (second Ctrl-C) moves it to now. */
    let deadline: number | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let cutShort: AbortSignal | undefined;
    const killNow = () => {
      deadline = Date.now();
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      kill('SIGKILL');
    };
    const onAbort = () => {
      cutShort = graceCutShort(req.signal);
      if (cutShort?.aborted) return killNow();
      deadline = Date.now() + grace;
      kill('SIGTERM');
      graceTimer = setTimeout(() => kill('SIGKILL'), grace);
      cutShort?.addEventListener('abort', killNow, { once: true });
    };
    req.signal.addEventListener('abort', onAbort, { once: true });

    let result: { code: number | null; signal: NodeJS.Signals | null };
    try {
      result = await exited;
      // The shell died of SIGTERM, but children that trap TERM get their grace before SIGKILL, in
      // the group or escaped from it.
      const tagged = stepId === undefined ? undefined : { envName: STEP_ID_ENV, id: stepId };
      while (deadline !== undefined && Date.now() < deadline && (await groupAlive(pid, tagged)))
        await sleep(Math.min(25, deadline - Date.now()));
      // Nothing a step starts outlives it: background children die with the step, and after an
      // abort so does every process that left the group (a /proc scan, only then: it costs ms).
      killGroup(pid, 'SIGKILL');
      if (deadline !== undefined && stepId) await killTagged(STEP_ID_ENV, stepId, 'SIGKILL');
    } finally {
      req.signal.removeEventListener('abort', onAbort);
      cutShort?.removeEventListener('abort', killNow);
      if (graceTimer !== undefined) clearTimeout(graceTimer);
    }

    const idle = this.options.pipeIdleTimeoutMs ?? 500;
    const drainLimit = this.options.pipeDrainMaxMs ?? 5000;
    const drainStart = Date.now();
    const drained = Promise.all(pumps.map((p) => p.done));
    let finished = false;
    void drained.then(() => {
      finished = true;
    });
    let scanned = false;
    while (!finished) {
      await Promise.race([drained, sleep(idle / 4)]);
      if (finished) break;
      // The group is dead, nothing is waiting on a slow sink, yet the pipes are open: a process of
      // the step that left its group holds them. Those of the step whose output still goes to a
      // pipe (not a service it started with its output in a file or /dev/null) end with the
      // step, SIGKILL as the group got, their output complete.
      if (!scanned && stepId && !pumps.some((p) => p.busy())) {
        scanned = true;
        if ((await killTagged(STEP_ID_ENV, stepId, 'SIGKILL', true)).length > 0) continue;
      }
      const draining = Date.now() - drainStart;
      // An aborted step (cancel, timeout, also one that comes during the drain) gets no more than
      // the idle time: the abort must end it.
      const maxDrain = req.signal.aborted ? idle : drainLimit;
      // A slow sink (backpressure) may take its time with what the dead group left in the pipe,
      // but not for ever when something outside the group keeps writing.
      const busy = pumps.some((p) => p.busy());
      const quiet = !busy && Date.now() - Math.max(...pumps.map((p) => p.lastActivity())) >= idle;
      if (quiet || (!busy && draining >= maxDrain) || draining >= 4 * maxDrain) {
        // A process outside the group still holds the pipe; stop reading instead of waiting forever.
        for (const p of pumps) p.destroy();
        await drained;
        if (!quiet) {
          // Output was still coming: what is cut must not vanish without a word (DESIGN §6).
          await Promise.resolve(
            io.stderr(
              Buffer.from(
                `pipewright: output after the step's processes ended was cut after ${((Date.now() - drainStart) / 1000).toFixed(1)} s: a process outside the step's process group kept writing\n`,
              ),
            ),
          ).catch(() => undefined);
        }
        break;
      }
    }
    await closed;
    if (sinkError !== undefined) {
      throw new PipewrightError(
        'EXECUTOR_UNAVAILABLE',
        `step output could not be delivered: ${(sinkError as Error).message ?? sinkError}`,
        {
          cause: sinkError,
        },
      );
    }
    return { exitCode: result.code, signal: result.signal };
  }

  /**
   * Readies the directory for another attempt, if it provably holds nothing of this one:
   * resolves `true` only when its top level is `.pipewright/` alone, `.pipewright/` holds only
   * pipewright's own regular files (no symlink, nothing a step added) and an empty `tmp/`.
   * The step files and scripts are then emptied or deleted, so the next attempt starts as in
   * a fresh directory. The common ones (`step-0-*`, `script-1.sh`) are truncated, not deleted
   * and created again: on ext4, allocating an inode scans past every recently deleted one, and
   * at a thousand short jobs that scan was most of the executor's CPU time.
   * Resolves `false` (the caller removes the directory) on anything else, errors included.
   */
  async recycle(): Promise<boolean> {
    if (this.options.keep) return false;
    const base = join(this.hostDir, '.pipewright');
    try {
      const [self, top, own, temp] = await Promise.all([
        lstat(this.hostDir),
        readdir(this.hostDir, { withFileTypes: true }),
        readdir(base, { withFileTypes: true }),
        readdir(join(base, 'tmp')),
      ]);
      if (!self.isDirectory() || temp.length > 0) return false;
      if (top.length !== 1 || top[0]?.name !== '.pipewright' || !top[0].isDirectory()) return false;
      let tmpSeen = false;
      for (const e of own) {
        if (e.name === 'tmp' && e.isDirectory()) tmpSeen = true;
        else if (!e.isFile() || !(isStepFileName(e.name) || SCRIPT_FILE.test(e.name))) return false;
      }
      if (!tmpSeen) return false;
      await Promise.all(
        own.map((e) => {
          if (e.name === 'tmp') return undefined;
          const path = join(base, e.name);
          // O_TRUNC at open: two round trips instead of truncate()'s three; O_NOFOLLOW as a second guard.
          return KEPT_FILES.has(e.name) ? openFile(path, TRUNCATE).then(closeFile) : unlink(path);
        }),
      );
      return true;
    } catch {
      return false;
    }
  }

  /** Removes the directory unless `keep` was set. */
  async dispose(): Promise<void> {
    if (this.options.keep) return;
    // The executor removes finished workspaces in batches (BatchRemover); this is its fallback
    // and the path for callers that dispose of a workspace themselves.
    await rm(this.hostDir, { recursive: true, force: true, maxRetries: 3 });
  }
}
