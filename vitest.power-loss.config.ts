import { defineConfig } from 'vitest/config';

// Power-loss campaigns run over powerfs (FUSE): each file mounts its own filesystem and keeps
// a writer busy, so files run one after another (two cores; a FUSE daemon per worker).
export default defineConfig({
  test: {
    include: ['test/power-loss/**/*.power-loss.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default'],
  },
});
