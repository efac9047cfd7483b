import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Subprocess and crash tests start their own processes; keep file parallelism modest on 2 cores.
    maxWorkers: 2,
  },
});
