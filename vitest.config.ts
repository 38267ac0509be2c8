import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/env-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // node:sqlite (the embedded backend) is stable in use but still flagged experimental in Node 22.
    execArgv: ['--disable-warning=ExperimentalWarning'],
    fileParallelism: true,
    maxWorkers: 2,
  },
});
