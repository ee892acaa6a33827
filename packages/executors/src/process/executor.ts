import { rmSync } from 'node:fs';
import { chmod, lstat, mkdir } from 'node:fs/promises';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { AttemptOutcome, AttemptSpec, ExecContext, Executor, LostAttempt } from '@pipewright/core';
import { ATTEMPT_ID_ENV, attemptIdOf, PipewrightError, runSteps } from '@pipewright/core';
import { killTagged } from './process-group.js';
import { BatchRemover } from './remover.js';
import { ProcessWorkspace } from './workspace.js';

/** Options of {@link ProcessExecutor}. */
export interface ProcessExecutorOptions {
  /**
   * How many attempts may run at once; the engine enforces it.
   * @default Infinity
   */
  capacity?: number;
  /**
   * Directory under which each attempt gets a fresh workspace directory.
   * @default `${os.tmpdir()}/pipewright-<uid>`: per user, created 0700, and refused when it is a
   * link or another user's (the workspaces hold step scripts with secret values substituted in)
   */
  workRoot?: string;
  /**
   * Keep each attempt's workspace directory after it ends (for debugging).
   * @default false
   */
  keepWorkspace?: boolean;
  /**
   * How many finished attempts' directories may wait for reuse. A directory is reused only
   * when it holds nothing but pipewright's own files (see `ProcessWorkspace.recycle`);
   * `0` gives every attempt a new one. Ignored with `keepWorkspace`.
   * @default 16
   */
  workspacePool?: number;
  /**
   * Upper bound on the SIGTERM -> SIGKILL grace (`kill-grace`) any step may ask for.
   * @default no bound: the pipeline's `kill-grace` (10 s unless set)
   * @example new ProcessExecutor({ killGraceMs: 2000 })
   */
  killGraceMs?: number;
}

/** {@link ProcessExecutorOptions} with defaults resolved. */
export interface ResolvedProcessExecutorOptions {
  capacity: number;
  workRoot: string;
  /** `workRoot` is the default one: checked to be this user's private directory (a passed one is used as it is). */
  privateRoot: boolean;
  keepWorkspace: boolean;
  workspacePool: number;
  killGraceMs?: number;
}

function checkNumber(name: string, value: unknown, allowInfinity: boolean): void {
  const ok =
    typeof value === 'number' && !Number.isNaN(value) && value >= 0 && (allowInfinity || Number.isFinite(value));
  if (!ok) {
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `Expected \`${name}\` to be a ${allowInfinity ? 'non-negative number or Infinity' : 'non-negative finite number'}, got \`${String(value)}\` (${typeof value})`,
    );
  }
}

/** Validates and fills in {@link ProcessExecutorOptions}. */
export function resolveProcessExecutorOptions(options: ProcessExecutorOptions = {}): ResolvedProcessExecutorOptions {
  if (options.capacity !== undefined) {
    checkNumber('capacity', options.capacity, true);
    if (options.capacity < 1) {
      throw new PipewrightError(
        'INVALID_ARGUMENT',
        `Expected \`capacity\` to be at least 1, got \`${options.capacity}\``,
      );
    }
  }
  if (options.killGraceMs !== undefined) checkNumber('killGraceMs', options.killGraceMs, false);
  if (options.workspacePool !== undefined) checkNumber('workspacePool', options.workspacePool, false);
  if (options.workRoot !== undefined && (typeof options.workRoot !== 'string' || options.workRoot === '')) {
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `Expected \`workRoot\` to be a directory path, got \`${String(options.workRoot)}\``,
    );
  }
  const resolved: ResolvedProcessExecutorOptions = {
    capacity: options.capacity ?? Number.POSITIVE_INFINITY,
    workRoot: options.workRoot ?? defaultWorkRoot(),
    privateRoot: options.workRoot === undefined,
    keepWorkspace: options.keepWorkspace ?? false,
    workspacePool: Math.floor(options.workspacePool ?? 16),
  };
  if (options.killGraceMs !== undefined) resolved.killGraceMs = options.killGraceMs;
  return resolved;
}

/**
 * Runs each job attempt as local child processes in a fresh directory, one
 * process group per step. The default executor, as `act` does for every label.
 */
export class ProcessExecutor implements Executor {
  /** Executor name used for routing and in attempt records. */
  readonly name = 'process';
  /** How many attempts may run at once. */
  readonly capacity: number;
  /** Options with defaults resolved. */
  readonly options: ResolvedProcessExecutorOptions;
  /** This host: every attempt runs here, so the engine records it before the attempt starts. */
  readonly workerId = `${hostname()}/process`;

  constructor(options: ProcessExecutorOptions = {}) {
    this.options = resolveProcessExecutorOptions(options);
    this.capacity = this.options.capacity;
  }

  /**
   * Stops the processes a lost attempt left running on this host (its engine died): every
   * process of this user carrying the attempt's `PIPEWRIGHT_ATTEMPT_ID` gets SIGKILL. An
   * attempt that ran on another host has none here.
   */
  async reclaim(lost: LostAttempt): Promise<void> {
    await killTagged(ATTEMPT_ID_ENV, attemptIdOf(lost), 'SIGKILL');
  }

  /** Creates the attempt's workspace, runs its steps, then disposes of it (see {@link close}). */
  async runJob(attempt: AttemptSpec, ctx: ExecContext): Promise<AttemptOutcome> {
    const wsOptions = {
      keep: this.options.keepWorkspace,
      workerId: this.workerId,
      ...(this.options.killGraceMs !== undefined ? { maxKillGraceMs: this.options.killGraceMs } : {}),
    };
    // A recycled directory costs no file system call here; see disposeLater.
    const reused = this.pool.pop();
    let workspace: ProcessWorkspace;
    if (reused !== undefined) workspace = new ProcessWorkspace(reused, wsOptions);
    else {
      try {
        // Each new (not recycled) workspace: a tmp cleaner may have removed the root since, and
        // someone else made it. One lstat; a failed check is not remembered, so it can pass later.
        if (this.options.privateRoot) await ensurePrivateRoot(this.options.workRoot);
        workspace = await ProcessWorkspace.create(
          this.options.workRoot,
          `${attempt.runId}-${attempt.jobId}-${attempt.attempt}`,
          wsOptions,
        );
      } catch (e) {
        return {
          status: 'failed',
          reason: 'infra',
          message: `could not create a workspace under ${this.options.workRoot}: ${(e as Error).message}`,
          workerId: this.workerId,
          steps: [],
          outputs: {},
        };
      }
    }
    try {
      return await runSteps(attempt, workspace, ctx);
    } finally {
      this.disposeLater(workspace);
    }
  }

  /** Waits until every workspace of a finished attempt is removed, the recycled ones included. */
  async close(): Promise<void> {
    this.closing = true;
    for (;;) {
      for (const dir of this.pool.splice(0)) this.removeLater(dir);
      if (this.disposing.size === 0) break;
      this.remover.flush();
      await Promise.all(this.disposing);
    }
    this.closing = false;
  }

  private readonly disposing = new Set<Promise<void>>();
  private readonly remover = new BatchRemover();
  /** Directories of finished attempts, emptied of their files and ready for the next attempt. */
  private readonly pool: string[] = [];
  private closing = false;

  /**
   * Removing a workspace is off the attempt's critical path: the outcome is
   * reported (and dependants start) while the directory goes. {@link close}
   * waits for it, and a process exiting without close removes what is left.
   */
  private disposeLater(workspace: ProcessWorkspace): void {
    if (this.options.keepWorkspace) return;
    const dir = workspace.hostDir;
    undisposed.add(dir);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', removeUndisposed);
    }
    if (this.options.workspacePool > 0 && !this.closing) {
      // Checked and emptied after the outcome, off the critical path; until then it is in
      // `disposing`, so close() waits for the check and then removes the directory.
      const done: Promise<void> = workspace.recycle().then((clean) => {
        this.disposing.delete(done);
        if (clean && !this.closing && this.pool.length < this.options.workspacePool) this.pool.push(dir);
        else this.removeLater(dir);
      });
      this.disposing.add(done);
      return;
    }
    this.removeLater(dir);
  }

  /** Removes `dir` in the next batch; if the batch's `rm` fails, on its own with `fs.rm`. */
  private removeLater(dir: string): void {
    const done: Promise<void> = this.remover
      .remove(dir, () => new ProcessWorkspace(dir).dispose())
      .finally(() => {
        undisposed.delete(dir);
        this.disposing.delete(done);
      });
    this.disposing.add(done);
  }
}

/** Workspaces whose removal is in flight, across executors: the exit hook finishes them. */
const undisposed = new Set<string>();
let exitHookInstalled = false;

function removeUndisposed(): void {
  for (const dir of undisposed) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {}
  }
}

/** The default work root: one per user, so users of one machine neither share nor block each other. */
export function defaultWorkRoot(): string {
  const who = typeof process.getuid === 'function' ? String(process.getuid()) : userInfo().username;
  return join(tmpdir(), `pipewright-${who}`);
}

/**
 * Makes `root` this user's private directory, or says why it cannot be: a predictable path in a
 * shared /tmp may have been created first by someone else (who could then swap workspaces that
 * hold step scripts with secrets substituted in), or be a link.
 */
async function ensurePrivateRoot(root: string): Promise<void> {
  const st = await lstat(root).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
    await mkdir(root, { recursive: true, mode: 0o700 });
    return lstat(root);
  });
  if (!st.isDirectory()) {
    throw new Error(`${root} is not a directory (a link or file is in its place); remove it, or set workRoot`);
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(`${root} belongs to another user (uid ${st.uid}); remove it, or set workRoot`);
  }
  if ((st.mode & 0o077) !== 0) await chmod(root, 0o700);
}
