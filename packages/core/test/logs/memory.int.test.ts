import { droppedMarker, RunLogger } from '@pipewright/core';
import { describe, expect, it } from 'vitest';
import { TestLogStore } from './helpers.js';

const MB = 1024 * 1024;
const ctx = { jobId: 'flood', attempt: 1, step: 0, stream: 'stdout' as const };

function rssGrowthSampler() {
  globalThis.gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  return {
    sample() {
      const rss = process.memoryUsage().rss;
      if (rss > peak) peak = rss;
    },
    get growth() {
      return peak - start;
    },
  };
}

// A 64 KiB chunk of 80-byte lines; a fresh copy per write, as a child process pipe delivers them.
const line = `${'0123456789abcdef'.repeat(5).slice(0, 79)}\n`;
const template = Buffer.from(line.repeat(Math.floor((64 * 1024) / line.length)));

describe('log pipeline memory', () => {
  it('keeps RSS bounded while a step writes 200 MB to a slow store (backpressure)', async () => {
    const store = new TestLogStore({ delayMs: 2, retain: false });
    const logger = new RunLogger(store, 'run-big');
    const sink = logger.stream(ctx);
    const rss = rssGrowthSampler();
    let written = 0;
    let waits = 0;
    while (written < 200 * MB) {
      const wait = sink.write(Buffer.from(template));
      written += template.length;
      if (wait) {
        waits++;
        await wait;
        rss.sample();
      }
    }
    await sink.end();
    await logger.close();
    rss.sample();
    expect(store.bytes + store.count).toBe(written); // every byte stored (text + one newline per line)
    expect(waits).toBeGreaterThan(10); // the store really was the bottleneck
    // Unbounded buffering would hold ~200 MB of text plus objects; the high-water mark is 2 MiB.
    expect(rss.growth).toBeLessThan(100 * MB);
  });

  it('drops above the per-step cap with a marker, and memory stays bounded, when the producer ignores backpressure', async () => {
    const store = new TestLogStore({ delayMs: 1, retain: false });
    const markers: string[] = [];
    const logger = new RunLogger(store, 'run-drop', {
      maxStepBufferBytes: 4 * MB,
      onBatch: (b) => {
        for (const l of b.lines) if (l.stream === 'system') markers.push(l.text);
      },
    });
    const sink = logger.stream(ctx);
    const rss = rssGrowthSampler();
    let written = 0;
    // 200 MB written synchronously: the store cannot take anything meanwhile.
    while (written < 200 * MB) {
      void sink.write(Buffer.from(template));
      written += template.length;
      if (written % (16 * MB) < template.length) rss.sample();
    }
    await sink.end();
    await logger.close();
    rss.sample();
    expect(markers).toHaveLength(1);
    const dropped = Number(/\[pipewright\] (\d+) bytes/.exec(markers[0] ?? '')?.[1]);
    expect(markers[0]).toBe(droppedMarker(dropped));
    expect(store.bytes + store.count - markers[0]!.length - 1 + dropped).toBe(written);
    expect(rss.growth).toBeLessThan(100 * MB);
  });
});
