import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The closing line goes last, after the default summary (see closing-line-reporter.ts).
    reporters: ['default', './test/support/closing-line-reporter.ts'],
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
