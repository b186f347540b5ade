/**
 * Production-code schedules as vitest tests, in chunks, split over two files so that two
 * workers run them (`npm run sim:prod`; CI runs 500 schedules, `PTPVTS_LONG=1` 10^5).
 * `PTPVTS_PROD_SEEDS=N` and `PTPVTS_PROD_FROM=K` choose the range; `PTPVTS_SEED=S` replays
 * one seed and prints its trace. Without `PTPVTS_PROD_SIM=1` (set by the npm script) the
 * files define only a skipped test, so `npm test` does not run them.
 */
import { afterAll, expect, it } from 'vitest';
import { ProdScheduleFailure, runProdSchedule } from './prod-schedule.js';
import type { ProdScheduleResult } from './prod-schedule.js';

export const PROD_LONG = process.env.PTPVTS_LONG === '1';
export const PROD_PARTS = 2;

/** `0`: report schedules that did not come back on-line instead of failing them. */
const strictLiveness = process.env.PTPVTS_PROD_LIVENESS !== '0';

/** Runs one seed; a schedule that did not come back on-line (and owed it) is a failure too. */
export async function runCheckedProdSchedule(seed: number): Promise<ProdScheduleResult> {
  const r = await runProdSchedule(seed);
  if (!r.online && !r.restoredCurrent && strictLiveness) {
    throw new Error(`seed ${seed} n=${r.n}: [liveness] not on-line with both VTS after healing\n  replay: PTPVTS_SEED=${seed}\n--- state ---\n${r.state}\n--- last events ---\n${r.trace.slice(-60).join('\n')}`);
  }
  return r;
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const v = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer (got ${raw})`);
  return v;
}

export function defineProdRange(part: number): void {
  if (process.env.PTPVTS_PROD_SIM !== '1') {
    it.skip('production-code schedules run with npm run sim:prod', () => undefined);
    return;
  }
  const replay = process.env.PTPVTS_SEED;
  if (replay !== undefined) {
    if (part !== 0) {
      it.skip(`seed ${replay} is replayed by part 0`, () => undefined);
      return;
    }
    it(`replays seed ${replay}`, { timeout: 600_000 }, async () => {
      const seed = Number(replay);
      if (!Number.isInteger(seed)) throw new Error(`PTPVTS_SEED must be an integer seed (got ${replay})`);
      try {
        const r = await runCheckedProdSchedule(seed);
        console.log(`${r.trace.join('\n')}\n--- state ---\n${r.state}\nseed ${r.seed} n=${r.n}: ${r.steps} events, ${r.faults} faults ${JSON.stringify(r.faultKinds)}, ${r.acked}/${r.writes} writes acknowledged, ${r.readsOk}/${r.reads} reads, on-line ${String(r.online)}`);
      } catch (e) {
        if (e instanceof ProdScheduleFailure) console.log(e.result.trace.join('\n'));
        throw e;
      }
    });
    return;
  }
  const total = positiveInt('PTPVTS_PROD_SEEDS', PROD_LONG ? 100_000 : 500);
  const first = positiveInt('PTPVTS_PROD_FROM', 1);
  const per = Math.ceil(total / PROD_PARTS);
  const from = first + part * per;
  const to = Math.min(first + total, from + per);
  const chunk = PROD_LONG ? 1_000 : 100;
  const sum = { schedules: 0, online: 0, owedNothing: 0, acked: 0, reads: 0, faults: 0, ms: 0 };
  afterAll(() => {
    if (sum.schedules === 0) return;
    const sec = sum.ms / 1000;
    console.log(
      `production simulation part ${part}: ${sum.schedules} schedules (seeds ${from}..${to - 1}) in ${sec.toFixed(1)} s: ${(sum.schedules / sec).toFixed(2)} schedules/s; ` +
        `${(sum.faults / sum.schedules).toFixed(2)} faults per schedule; ${sum.acked} writes acknowledged, ${sum.reads} reads checked; ${sum.online} back on-line, ${sum.owedNothing} left to the operator (restored image in current)`,
    );
  });
  for (let start = from; start < to; start += chunk) {
    const end = Math.min(to, start + chunk);
    it(`production schedules ${start}..${end - 1}: no acknowledged write lost, no stale read, back on-line`, { timeout: PROD_LONG ? 7_200_000 : 1_200_000 }, async () => {
      const t0 = performance.now();
      const failures: string[] = [];
      for (let seed = start; seed < end; seed++) {
        try {
          const r = await runCheckedProdSchedule(seed);
          sum.schedules++;
          sum.acked += r.acked;
          sum.reads += r.readsOk;
          sum.faults += r.faults;
          if (r.online) sum.online++;
          else if (r.restoredCurrent) sum.owedNothing++;
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
      sum.ms += performance.now() - t0;
      expect(failures, failures.join('\n\n')).toEqual([]);
    });
  }
}
