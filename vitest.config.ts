import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}`, import.meta.url));

// Tests import the packages' TypeScript sources directly, so a unit run needs no build.
const alias = [
  { find: /^@pipewright\/core\/testing$/, replacement: src('core/src/testing/index.ts') },
  { find: /^@pipewright\/core$/, replacement: src('core/src/index.ts') },
  { find: /^@pipewright\/executors\/process$/, replacement: src('executors/src/process/index.ts') },
  { find: /^@pipewright\/executors$/, replacement: src('executors/src/index.ts') },
  { find: /^@pipewright\/storage-adapters\/redis$/, replacement: src('storage-adapters/src/redis/index.ts') },
  { find: /^@pipewright\/storage-adapters\/s3$/, replacement: src('storage-adapters/src/s3/index.ts') },
  { find: /^@pipewright\/storage-adapters$/, replacement: src('storage-adapters/src/index.ts') },
  { find: /^@pipewright\/server$/, replacement: src('server/src/index.ts') },
];

export default defineConfig({
  resolve: { alias },
  test: {
    retry: process.env.CI ? 1 : 0,
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['packages/*/test/**/*.int.test.ts', '**/node_modules/**'],
          testTimeout: 30_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['packages/*/test/**/*.int.test.ts', 'examples/**/*.int.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
