import { defineConfig } from 'vitest/config';

// libtorch state (threads, the intra-op pool) is process-wide: run the test files one after another in
// one forked process.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
