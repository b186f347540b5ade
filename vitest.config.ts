import { defineConfig } from 'vitest/config';

// The randomized PtP schedules (test/sim/sim-part-*, 10^5 of them, several minutes) run under
// `npm run sim`, which .ci/run runs after `npm test`; the claim stories, the seeds that once
// failed and the invariant checker's own tests in test/sim stay in the default run.
const withSchedules = process.env.PTPVTS_SIM === '1';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'firmware-sim/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['test/hil/**', 'test/power-loss/**', 'node_modules/**', 'dist/**', ...(withSchedules ? [] : ['test/sim/sim-part-*.test.ts'])],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
