import { readdir, readFile, readlink } from 'node:fs/promises';

/** Sends `signal` to every process in the group led by `pgid`; a group that is already gone is fine. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ESRCH' && code !== 'EPERM') throw e;
  }
}

/**
 * Whether any live (non-zombie) process is still in the group, or, with `tagged`, carries
 * `<envName>=<id>` in its environment (one that left the group): one walk over /proc. On Linux
 * it reads /proc, because zombies whose parent died may never be reaped inside a container
 * whose PID 1 does not reap, and `kill(-pgid, 0)` counts them (a zombie's environment cannot be
 * read, so it never counts as tagged).
 */
export async function groupAlive(pgid: number, tagged?: { envName: string; id: string }): Promise<boolean> {
  if (process.platform !== 'linux') {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return false;
  }
  const needle = tagged === undefined ? undefined : Buffer.from(`${tagged.envName}=${tagged.id}\0`);
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) continue;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    if (state === 'Z' || state === 'X') continue;
    if (Number(fields[2]) === pgid) return true;
    if (needle !== undefined) {
      const env = await readProc(`/proc/${name}/environ`);
      if (env !== undefined && hasEntry(env, needle)) return true;
    }
  }
  return false;
}

/** Whether a NUL-separated environment block holds `needle` (`NAME=value\0`) as a whole entry. */
function hasEntry(env: Buffer, needle: Buffer): boolean {
  let at = env.indexOf(needle);
  while (at > 0 && env[at - 1] !== 0) at = env.indexOf(needle, at + 1);
  return at >= 0;
}

/** Whether one process is alive and not a zombie. */
export async function processAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

/**
 * Sends `signal` to every process of this user that carries `<envName>=<id>` in its
 * environment: a step's processes that left its process group (`setsid`, daemons), which a
 * group signal misses. With `onlyStreamingOutput`, only those whose stdout or stderr is a pipe
 * or socket (as the step's output is), not a file or /dev/null. Reads /proc (Linux; elsewhere
 * it finds nothing) and skips this process. Resolves to the pids signalled.
 */
export async function killTagged(
  envName: string,
  id: string,
  signal: NodeJS.Signals,
  onlyStreamingOutput = false,
): Promise<number[]> {
  if (process.platform !== 'linux') return [];
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const needle = Buffer.from(`${envName}=${id}\0`);
  const hit: number[] = [];
  const pids = entries.filter((name) => {
    const c = name.charCodeAt(0);
    return c >= 48 && c <= 57 && Number(name) !== process.pid;
  });
  await Promise.all(pids.map((name) => limited(() => check(name))));
  return hit;

  async function check(name: string): Promise<void> {
    // Another user's processes are unreadable (EACCES): they are not ours to stop anyway.
    const env = await readProc(`/proc/${name}/environ`);
    if (env === undefined) return;
    if (!hasEntry(env, needle)) return;
    if (onlyStreamingOutput && !(await outputIsStream(name))) return;
    try {
      process.kill(Number(name), signal);
      hit.push(Number(name));
    } catch {
      // Gone in the meantime.
    }
  }
}

/**
 * Whether process `pid` writes its stdout or stderr to a pipe or socket, as a step's processes
 * do unless redirected. (libuv gives a child a socketpair whose two ends have different inodes,
 * so which socket is the step's cannot be told from /proc.)
 */
async function outputIsStream(pid: string): Promise<boolean> {
  for (const fd of ['1', '2']) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
    if (target?.startsWith('socket:') || target?.startsWith('pipe:')) return true;
  }
  return false;
}

/** A /proc file, or undefined when it cannot be read; a full descriptor table is waited out, not taken for "not ours". */
async function readProc(path: string): Promise<Buffer | undefined> {
  for (let tries = 0; ; tries++) {
    try {
      return await readFile(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'EMFILE' && code !== 'ENFILE') || tries >= 50) return undefined;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * How many /proc files all scans of this process read at once: a host with more processes than
 * our descriptor limit must not make a scan (or the engine's own spawns meanwhile) fail with
 * EMFILE, however many steps are aborted together.
 */
const MAX_PROC_READS = 32;
let procReads = 0;
const waitingReads: Array<() => void> = [];

async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (procReads >= MAX_PROC_READS) await new Promise<void>((r) => waitingReads.push(r));
  procReads++;
  try {
    return await fn();
  } finally {
    procReads--;
    waitingReads.shift()?.();
  }
}
