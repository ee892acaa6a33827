// Helpers the benchmarks share (not a benchmark itself: bench/run.mjs runs *.bench.mjs only).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The median of a list of numbers (the upper one of an even count). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** True when `redis-server` is on PATH; without it a Redis benchmark says so and exits 0. */
export function redisServerInstalled() {
  return spawnSync('redis-server', ['--version']).status === 0;
}

/**
 * A throwaway redis-server on a free 127.0.0.1 port (no persistence): its url and port, and
 * an ioredis client connected to it. `stop()` kills the server and removes its directory.
 */
export async function startRedis(tmpPrefix) {
  const { Redis } = await import('ioredis');
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const dir = mkdtempSync(join(tmpdir(), tmpPrefix));
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { lazyConnect: true });
  client.on('error', () => {}); // connection refused until the server listens; connect() below retries
  for (let i = 0; i < 100; i++) {
    try {
      await client.connect();
      break;
    } catch {
      client.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    port,
    client,
    stop() {
      server.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
