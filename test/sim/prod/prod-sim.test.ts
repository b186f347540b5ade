/**
 * The production-code simulation: real VtcAgents, VtsServers and VtsUnits over the simulated
 * network, clocks and disks (docs/simulation.md). `npm test` runs a bounded number of seeds;
 * `PTPVTS_PROD_SEEDS=N` runs more (from `PTPVTS_PROD_FROM`, default 1), `PTPVTS_SEED=S`
 * replays one and prints its trace.
 */
import { describe, expect, it } from 'vitest';
import { ProdScheduleFailure, runProdSchedule } from './prod-schedule.js';
import { runCheckedProdSchedule } from './prod-range.js';

const replay = process.env.PTPVTS_SEED === undefined ? null : Number(process.env.PTPVTS_SEED);
const count = Number(process.env.PTPVTS_PROD_SEEDS ?? 16);
const from = Number(process.env.PTPVTS_PROD_FROM ?? 1);

if (replay !== null && !Number.isInteger(replay)) throw new Error(`PTPVTS_SEED must be an integer seed (got ${process.env.PTPVTS_SEED})`);
if (!(Number.isInteger(count) && count > 0)) throw new Error(`PTPVTS_PROD_SEEDS must be a positive integer (got ${process.env.PTPVTS_PROD_SEEDS})`);

describe.skipIf(replay === null)('production simulation: replay', () => {
  it(`seed ${String(replay)}`, { timeout: 600_000 }, async () => {
    try {
      const r = await runCheckedProdSchedule(replay!);
      console.log(`${r.trace.join('\n')}\n--- state ---\n${r.state}\nseed ${r.seed} n=${r.n}: ${r.steps} events, ${r.faults} faults ${JSON.stringify(r.faultKinds)}, ${r.acked}/${r.writes} writes acknowledged, ${r.readsOk}/${r.reads} reads, on-line ${String(r.online)}`);
    } catch (e) {
      if (e instanceof ProdScheduleFailure) console.log(e.result.trace.join('\n'));
      throw e;
    }
  });
});

describe.skipIf(replay !== null)('production simulation', () => {
  it('replays a seed exactly: same seed, same trace', { timeout: 120_000 }, async () => {
    const a = await runProdSchedule(3);
    const b = await runProdSchedule(3);
    expect(a.trace.length).toBeGreaterThan(20);
    expect(b.trace).toEqual(a.trace);
    expect(b.steps).toBe(a.steps);
    expect(b.state).toBe(a.state);
    // And another seed is another schedule.
    const c = await runProdSchedule(4);
    expect(c.trace).not.toEqual(a.trace);
  });

  it(`${count} random schedules keep every acknowledged write and serve no stale data`, { timeout: 600_000 }, async () => {
    const t0 = performance.now();
    const failures: string[] = [];
    let faults = 0;
    let acked = 0;
    let readsOk = 0;
    let steps = 0;
    let online = 0;
    let owedNothing = 0;
    const kinds: Record<string, number> = {};
    for (let seed = from; seed < from + count; seed++) {
      try {
        const r = await runCheckedProdSchedule(seed);
        faults += r.faults;
        acked += r.acked;
        readsOk += r.readsOk;
        steps += r.steps;
        if (r.online) online++;
        else if (r.restoredCurrent) owedNothing++;
        for (const [k, v] of Object.entries(r.faultKinds)) kinds[k] = (kinds[k] ?? 0) + v;
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    const sec = (performance.now() - t0) / 1000;
    console.log(
      `production simulation: ${count} schedules (seeds ${from}..${from + count - 1}) in ${sec.toFixed(1)} s: ${(count / sec).toFixed(2)} schedules/s, ${(steps / sec).toFixed(0)} events/s; ` +
        `${(faults / count).toFixed(2)} faults per schedule ${JSON.stringify(kinds)}; ${acked} writes acknowledged, ${readsOk} reads checked; ` +
        `${online} back on-line, ${owedNothing} left to the operator (restored image in current), ${failures.length} failed`,
    );
    expect(failures, failures.join('\n\n')).toEqual([]);
  });

  // Regression: a copy whose source stopped answering mid-stream (its export-read timed out)
  // left the destination's copy stream open, so the volume stayed busy there until the 30 s
  // idle bound and resync could not finish: this seed stayed in resync after healing.
  it('seed 40: a copy that fails mid-stream frees the destination, and resync finishes', { timeout: 60_000 }, async () => {
    const r = await runProdSchedule(40);
    expect(r.online).toBe(true);
    expect(r.faultKinds['vts-disk-hung']).toBe(1);
  });

  // Regression: a copy whose close could not reach the destination (the link went) left its
  // stream open there, and the copier sent no abort; the volume stayed busy on A until the
  // 30 s idle bound, and resync never finished within the liveness phase. The copier now
  // aborts after a failed close, and a stream goes after three of its sender's RPC timeouts.
  it('seed 147: a copy whose close failed frees the destination, and resync finishes', { timeout: 60_000 }, async () => {
    const r = await runProdSchedule(147);
    expect(r.online).toBe(true);
  });

  // Regression: a deferred write through vtc1 committed generation 11 on A and marked B
  // behind at 11 while a write through vtc2, still mounted on B (its VTC had timed out),
  // committed its own generation 11 there: the acknowledged write read back stale from B.
  // Marking behind for a host write is now refused while the volume is mounted there or
  // when that VTS knows the generation already, so the later write is not acknowledged.
  it('seed 268: a deferred write is not acknowledged over another write of its generation on the other VTS', { timeout: 60_000 }, async () => {
    const r = await runProdSchedule(268);
    expect(r.online).toBe(true);
  });

  // Regression: a read mount left on B (its close could not reach B: seed 444; its mount
  // call timed out after B made it: seed 354) held the volume busy while the VTC kept
  // calling, and every copy of it to B failed: resync never finished. The host router now
  // abandons such mounts again until B answers, by handle or by the mount's tag.
  it('seeds 354 and 444: a VTS mount its VTC could not end is abandoned later, and resync finishes', { timeout: 60_000 }, async () => {
    for (const seed of [354, 444]) expect((await runProdSchedule(seed)).online, `seed ${seed}`).toBe(true);
  });

  // Regression: vtc1's read mount of V00002 reached A while A's disk was slow, and A made it
  // just after the link from vtc1 went: vtc1's call timed out, so it never learned the handle,
  // and its heartbeats kept the idle bound away. The volume stayed busy on A, every copy of it
  // there failed "mounted or being copied", and resync never finished. The mount is now
  // abandoned by the tag vtc1 sent with it; here the abandon reaches A while A is still
  // making the mount, which is dropped as soon as it is made.
  it('seed 289: a mount whose answer was lost is abandoned by its tag, and resync finishes', { timeout: 60_000 }, async () => {
    const r = await runProdSchedule(289);
    expect(r.online).toBe(true);
  });
  // The replays below run with the VTCs' `tee` off (immediate copies made at close), as when
  // they were found: writing immediate copies to both VTS as the host writes moves every
  // schedule, and with it on 554, 252, 602 and 11 no longer reach the fault their story is
  // about (a survey of production seeds 1..1500 with the fork mutation in place found no
  // other seed that does). The random schedules (npm run sim:prod) run with the tee on.
  // Regression: vtc3, cut off, committed a weak forced key 2 and recorded it on B; the
  // majority's own key 2 (vts-in B) then put B back in operation without recording (a VTS
  // keeps the first key of a seq), so B refused every fenced copy of the majority's chain
  // as a fork and resync never ended. A VTC that sees a VTS in operation holding another
  // key of its newest seq now commits a key that supersedes it (reason supersede).
  it('seed 554: a forked key recorded on a VTS is superseded, and resync finishes', { timeout: 60_000 }, async () => {
    const r = await runProdSchedule(554, { tee: false });
    expect(r.online).toBe(true);
  });
  // Regression: both VTS lost power and A came back restored from before writes acknowledged
  // on it alone, with the same image id and last key seq (the key that followed never
  // recorded on it). In 252 B was out of operation (current {A}): the VTCs put A back
  // on-line and served stale data. A's token sum is now below what an earlier boot of it
  // held, as one VTC saw and told the others in its hellos: A stays off-line for the
  // operator. In 602 both were current: B's tokens hold every write's generation, so the
  // system comes back with both, and the one write only A held (its copy to B was queued)
  // reads as unavailable, never stale.
  it('seeds 252 and 602: a restored image that no key tells apart is never served as current', { timeout: 60_000 }, async () => {
    const r252 = await runProdSchedule(252, { tee: false });
    expect(r252.restoredCurrent).toBe(true);
    expect(r252.faultKinds['vts-restored-image']).toBe(1);
    const r602 = await runProdSchedule(602, { tee: false });
    expect(r602.online).toBe(true);
    expect(r602.faultKinds['vts-restored-image']).toBe(1);
  });
  // Regression: a frame stamped (by its sender's clock) before its receiver started was
  // refused, as the receiver's replay memory died with its last run. vtc1's clock was 4.7 s
  // behind (670), so it could not reach a VTS that had restarted for 4.7 s and alone committed
  // weak forced keys; in 1425 the VTS's clock stepped back, its replies looked sent before the
  // VTCs restarted, and \`vts in B\` failed as unreachable. Frames now name the receiver's run
  // (src/net/frame.ts): one bound to it is no replay of an earlier run, whatever the clocks.
  // Seed 11 (VTS A's clock stepped back 2.9 s) still meets that skew after the host path's
  // write-behind and copy read-ahead moved the schedules of 670 and 1425 past it.
  it('seeds 11, 670 and 1425: clock skew against a peer\'s start costs at most one refused frame', { timeout: 90_000 }, async () => {
    for (const seed of [11, 670, 1425]) {
      const r = await runProdSchedule(seed, { tee: false });
      expect(r.online, `seed ${seed}`).toBe(true);
      expect(r.faultKinds['clock-skew'], `seed ${seed}`).toBe(1);
    }
  });
});
