import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/hil/**/*.test.ts'],
    testTimeout: 1_200_000,
    hookTimeout: 1_200_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
