import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (main) and ESM (module). Node gives every package the
    // CommonJS build; Vite would give our sources the ESM one, and two copies of graphql
    // refuse each other's schemas. Pin the one Node uses.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // expect.poll waits for a condition (a job completing, a delivery settling); on a loaded
    // 2-core machine that can take longer than the 1 s default. It returns as soon as the
    // condition holds, so a long limit costs nothing when the test passes.
    expect: { poll: { timeout: 20_000 } },
    // Subprocess and crash tests start their own processes; keep file parallelism modest on 2 cores.
    maxWorkers: 2,
  },
});
