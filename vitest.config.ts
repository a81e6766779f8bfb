import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Real Postgres, Redis, piscina threads and child processes: forks isolate them best.
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/globalSetup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default', './test/summaryReporter.ts'],
  },
});
