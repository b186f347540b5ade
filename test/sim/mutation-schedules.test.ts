/**
 * A bounded run of random schedules for the mutation gate (scripts/mutations.mjs):
 * `PTPVTS_MUTATION_SEEDS=FROM:COUNT` runs seeds FROM .. FROM+COUNT-1 and fails on the first
 * schedule that breaks an invariant, naming its seed and the invariant (with
 * `PTPVTS_MUTATION_SCAN=1` it runs them all and names every failing seed). Without the variable
 * (npm test, npm run sim) the file defines one skipped test: the schedules proper run under
 * `npm run sim`.
 */
import { expect, it } from 'vitest';
import { runSchedule, ScheduleFailure } from './schedule.js';

function parseSeeds(text: string): { from: number; count: number } {
  const m = /^(\d+):(\d+)$/.exec(text);
  if (m === null) throw new Error(`PTPVTS_MUTATION_SEEDS must be FROM:COUNT (two whole numbers), got ${JSON.stringify(text)}`);
  return { from: Number(m[1]), count: Number(m[2]) };
}

const spec = process.env.PTPVTS_MUTATION_SEEDS;

if (spec === undefined) {
  it.skip('bounded schedules for the mutation gate (set PTPVTS_MUTATION_SEEDS=FROM:COUNT)', () => undefined);
} else {
  const { from, count } = parseSeeds(spec);
  const scan = process.env.PTPVTS_MUTATION_SCAN === '1';
  it(`schedules ${from}..${from + count - 1} keep every invariant`, async () => {
    let steps = 0;
    const failed: string[] = [];
    for (let seed = from; seed < from + count; seed++) {
      // Let the worker answer its runner now and then (a long synchronous loop looks hung).
      if ((seed - from) % 100 === 99) await new Promise<void>((r) => setImmediate(r));
      try {
        steps += runSchedule(seed).steps;
      } catch (e) {
        if (!(e instanceof ScheduleFailure)) throw e;
        const line = `schedule seed ${seed} [${e.code}]: ${e.message.split('\n')[0] ?? ''}`;
        if (!scan) throw new Error(line, { cause: e });
        failed.push(line);
      }
    }
    if (failed.length > 0) throw new Error(`${failed.length} of ${count} schedules failed:\n${failed.join('\n')}`);
    expect(steps).toBeGreaterThan(0);
  }, 600_000);
}
