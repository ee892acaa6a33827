import { spawn } from 'node:child_process';

/** One directory waiting to be removed, with the in-process remover used if the batch fails. */
interface Pending {
  dir: string;
  fallback: () => Promise<void>;
  resolve: () => void;
}

/**
 * Removes workspace directories in batches, one `rm -rf` child per batch. Every
 * file system call made on the engine's thread costs it time (a thread-pool
 * hand-off, often a context switch on a busy host), and removing even a tiny
 * workspace takes ~9 of them; one fork per batch is cheaper than ~9 calls per
 * attempt. When `rm` cannot run or fails (Windows, permissions), each directory
 * falls back to its in-process remover.
 */
export class BatchRemover {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxBatch = 64,
    private readonly delayMs = 250,
  ) {}

  /** Queues `dir`; resolves once it is gone (or every way of removing it was tried). */
  remove(dir: string, fallback: () => Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push({ dir, fallback, resolve });
      if (this.queue.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
    });
  }

  /** Starts removing everything queued now instead of waiting for the batch to fill. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue.splice(0);
    if (batch.length === 0) return;
    void rmRf(batch.map((p) => p.dir))
      .then((ok) => (ok ? undefined : Promise.all(batch.map((p) => p.fallback().catch(() => {})))))
      .finally(() => {
        for (const p of batch) p.resolve();
      });
  }
}

const RM = '/bin/rm';

function rmRf(dirs: string[]): Promise<boolean> {
  if (process.platform === 'win32') return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      // An absolute path: a PATH search costs the child one failed exec per entry.
      const child = spawn(RM, ['-rf', '--', ...dirs], { stdio: 'ignore' });
      child.once('error', () => resolve(false));
      child.once('close', (code) => resolve(code === 0));
    } catch {
      resolve(false);
    }
  });
}
