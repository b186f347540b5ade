/**
 * The recovery decision on a model: the production protocol engine (src/ptp/engine.ts) in
 * the deterministic simulation (test/sim/world.ts), with every cost fixed by the model
 * instead of by the machine: a one-way hop between any two peers, an fsync per journal
 * append, and a VTS that answers a round trip away (after making its state durable when the
 * operation records). Nothing here is timed on the wall clock: the figures are simulated
 * milliseconds, the same on any machine, and the critical path is read from the causal
 * history of the run (each engine input points at the input that produced it).
 *
 * Three decisions, each at 4, 8, 32 and 128 VTCs under a LAN and a WAN model:
 *  - `vts in B` after a PtP shutdown, given to one VTC, until B is on-line alone: one key
 *    holding the election in its phase 1 (what bench/recovery.bench.ts times on processes);
 *  - the failure key when VTS A fails while both are in, until B is on-line alone;
 *  - the election when the last VTS in (B, after A was taken out) fails and comes back,
 *    until the election key places it on-line alone.
 * The floor is one fsync plus two round trips on the same model. See docs/recovery-bench.md.
 */
import { DEFAULT_TIMING } from '../src/ptp/engine.js';
import type { Timing } from '../src/ptp/engine.js';
import { dominantTimer, floorOf, LAN, r3, runDecision, SCENARIOS, TITLE, WAN } from '../test/sim/recovery-model.js';
import type { Measured } from '../test/sim/recovery-model.js';
import { median, writeResults } from './lib.js';
import type { Figure, Target } from './lib.js';

const MODELS = [LAN, WAN] as const;
const COUNTS = (process.env.PTPVTS_BENCH_VTCS ?? '4,8,32,128').split(',').map(Number);
const SEEDS = Number(process.env.PTPVTS_BENCH_SEEDS ?? 5);
/** At 128 VTCs a world is slow to run (every VTC greets every other): fewer seeds. */
const SEEDS_LARGE = Number(process.env.PTPVTS_BENCH_SEEDS_LARGE ?? 3);
/** The production engine's timers. */
const TIMING: Timing = DEFAULT_TIMING;
/** Required: the decision within this multiple of its floor (8 and 32 VTCs). */
const REQUIRED_RATIO = 3;
/** Messages per decision per VTC may grow at most this much from the smallest cluster to the largest (O(n)). */
const REQUIRED_GROWTH = 1.5;

const figures: Figure[] = [];
const targets: Target[] = [];
const notes: string[] = [];

const perDecision = new Map<string, Measured[]>();
for (const m of MODELS) {
  figures.push({ name: `${m.name} floor: one fsync + two round trips`, value: floorOf(m), unit: 'ms', detail: { oneWayMs: m.oneWay, roundTripMs: 2 * m.oneWay, fsyncMs: m.fsync } });
  for (const s of SCENARIOS) {
    for (const n of COUNTS) {
      const seeds = Array.from({ length: n >= 128 ? SEEDS_LARGE : SEEDS }, (_, i) => i + 1);
      const started = performance.now();
      const ms = seeds.map((seed) => runDecision(s, n, seed, m, TIMING));
      perDecision.set(`${m.name}:${s}:${n}`, ms);
      const dec = ms.map((x) => x.decisionMs);
      const excl = ms.map((x) => x.decisionMs - x.timerMs);
      const med = median(dec);
      const medEx = median(excl);
      const first = ms[0]!;
      figures.push({
        name: `${m.name} ${s}, ${n} VTCs: decision time`,
        value: r3(med),
        unit: 'ms (simulated)',
        detail: {
          decision: TITLE[s],
          statistic: 'median',
          seeds: seeds.length,
          max: r3(Math.max(...dec)),
          excludingTimerWaits: { median: r3(medEx), max: r3(Math.max(...excl)) },
          timerWaits: { median: r3(median(ms.map((x) => x.timerMs))), max: r3(Math.max(...ms.map((x) => x.timerMs))) },
          beforeKeyLeavesCoordinator: { median: r3(median(ms.map((x) => x.beforeKeyMs))), max: r3(Math.max(...ms.map((x) => x.beforeKeyMs))) },
          appliedAtEveryVtc: { median: r3(median(ms.map((x) => x.appliedAllMs))), max: r3(Math.max(...ms.map((x) => x.appliedAllMs))) },
          ratioToFloor: r3(med / floorOf(m)),
          ratioToFloorExcludingTimers: r3(medEx / floorOf(m)),
          dominantTimer: dominantTimer(s, TIMING),
          criticalPath: first.path,
          criticalPathSameForEverySeed: ms.every((x) => JSON.stringify(x.path) === JSON.stringify(first.path)),
          timerWaitsOnPath: first.timerWaits,
          trail: first.trail,
          wallSeconds: r3((performance.now() - started) / 1000),
        },
      });
      figures.push({
        name: `${m.name} ${s}, ${n} VTCs: messages per decision`,
        value: median(ms.map((x) => x.messages)),
        unit: 'messages',
        detail: { statistic: 'median', max: Math.max(...ms.map((x) => x.messages)), perVtc: r3(median(ms.map((x) => x.messages)) / n), byType: first.byType, hellosInWindow: first.hellos, vtsOperations: first.vtsOps, vtsHeartbeats: first.heartbeats, window: 'trigger until every VTC holds the commit' },
      });
      console.log(`${m.name} ${s} n=${n}: ${med.toFixed(2)} ms (excl. timers ${medEx.toFixed(2)}; floor ${floorOf(m).toFixed(2)}), path ${JSON.stringify(first.path)}, ${first.messages} msgs ${JSON.stringify(first.byType)}`);
      if (s === 'vts-in' && (n === 8 || n === 32)) {
        const ratio = med / floorOf(m);
        targets.push({ name: `${m.name}, ${n} VTCs: \`vts in B\` decision vs one fsync + two round trips (lower is better; required <= ${REQUIRED_RATIO}x)`, ratio: r3(ratio), required: REQUIRED_RATIO, met: ratio <= REQUIRED_RATIO, lowerIsBetter: true });
      }
      if (s !== 'vts-in' && (n === 8 || n === 32)) {
        const ratio = medEx / floorOf(m);
        targets.push({ name: `${m.name}, ${n} VTCs: ${s === 'failure' ? 'failure key' : 'election'} decision with the timer waits left out, vs the floor (context: its timers are set by the operator; lower is better; <= ${REQUIRED_RATIO}x)`, ratio: r3(ratio), required: REQUIRED_RATIO, met: ratio <= REQUIRED_RATIO, lowerIsBetter: true });
      }
    }
  }
}
// The same decisions with short timers, to show what the timer waits are made of (context).
// A heartbeat timeout and a stagger shorter than a round trip or two make VTCs suspect a VTS
// that answers, or propose the same failure key at once; a return grace shorter than a tick
// and a round trip lets the first VTC call the election before the others have seen the VTS
// back, so they vote NO and the round waits for electionTimeout.
const tuned = (rtt: number): Timing => ({ ...DEFAULT_TIMING, tick: 10, heartbeatTimeout: 50 + 2 * rtt, returnGrace: 30 + rtt, stagger: 5 + 2 * rtt });
for (const m of MODELS) {
  const TUNED = tuned(2 * m.oneWay);
  for (const s of ['failure', 'election'] as const) {
    const n = 8;
    const ms = Array.from({ length: SEEDS }, (_, i) => runDecision(s, n, i + 1, m, TUNED));
    const dec = ms.map((x) => x.decisionMs);
    const med = median(dec);
    figures.push({
      name: `${m.name} ${s}, ${n} VTCs, short timers: decision time`,
      value: r3(med),
      unit: 'ms (simulated)',
      detail: { timing: { tick: TUNED.tick, heartbeatTimeout: TUNED.heartbeatTimeout, returnGrace: TUNED.returnGrace, stagger: TUNED.stagger }, statistic: 'median', seeds: SEEDS, max: r3(Math.max(...dec)), excludingTimerWaits: r3(median(ms.map((x) => x.decisionMs - x.timerMs))), timerWaits: r3(median(ms.map((x) => x.timerMs))), ratioToFloor: r3(med / floorOf(m)), trail: ms[0]!.trail },
    });
    console.log(`${m.name} ${s} n=${n}, short timers: ${med.toFixed(2)} ms (excl. timers ${median(ms.map((x) => x.decisionMs - x.timerMs)).toFixed(2)})`);
  }
}

// The failure key when A's host is silent (powered off: no refused connection), as a real power loss is.
for (const m of MODELS) {
  const n = 8;
  const ms = Array.from({ length: SEEDS }, (_, i) => runDecision('failure', n, i + 1, m, TIMING, { silentVts: true }));
  const dec = ms.map((x) => x.decisionMs);
  figures.push({
    name: `${m.name} failure, ${n} VTCs, VTS A's host silent: decision time`,
    value: r3(median(dec)),
    unit: 'ms (simulated)',
    detail: { statistic: 'median', seeds: SEEDS, max: r3(Math.max(...dec)), excludingTimerWaits: r3(median(ms.map((x) => x.decisionMs - x.timerMs))), timerWaits: r3(median(ms.map((x) => x.timerMs))), vtsOpTimeout: TIMING.vtsOpTimeout, trail: ms[0]!.trail },
  });
  console.log(`${m.name} failure n=${n}, A's host silent: ${median(dec).toFixed(2)} ms`);
}

// Messages per decision: O(n) when messages / n stays bounded as the cluster grows. Measured
// from 32 to 128 VTCs: at 4 the election's three talliers are every VTC but one, so the
// smallest cluster is all-to-all by construction and would only measure that.
const lo = COUNTS.includes(32) ? 32 : Math.min(...COUNTS);
const hi = Math.max(...COUNTS);
for (const s of SCENARIOS) {
  const per = COUNTS.map((n) => median(perDecision.get(`LAN:${s}:${n}`)!.map((x) => x.messages)) / n);
  const growth = per[COUNTS.indexOf(hi)]! / per[COUNTS.indexOf(lo)]!;
  targets.push({ name: `${s}: messages per decision per VTC, ${hi} VTCs vs ${lo} (O(n): bounded; lower is better; required <= ${REQUIRED_GROWTH}x)`, ratio: r3(growth), required: REQUIRED_GROWTH, met: growth <= REQUIRED_GROWTH, lowerIsBetter: true });
  console.log(`${s}: messages per VTC ${COUNTS.map((n, i) => `${n}: ${per[i]!.toFixed(2)}`).join(', ')}`);
}
notes.push(`model: every VTC-to-VTC frame takes exactly the one-way delay; every journal append (key, commit, sighting) is durable one fsync after it is asked for; a VTS answers a status after one round trip and an operation that records (start, record, stop, reconcile) after a round trip and one fsync of its state file; an unreachable VTS answers as such after one round trip (a refused connection: a host that drops packets silently costs the VTS operation timeout instead)`);
notes.push(`LAN: ${MODELS[0]!.oneWay} ms one way (${2 * MODELS[0]!.oneWay} ms round trip), ${MODELS[0]!.fsync} ms fsync; WAN: ${MODELS[1]!.oneWay} ms one way (${2 * MODELS[1]!.oneWay} ms round trip), ${MODELS[1]!.fsync} ms fsync; floor = one fsync + two round trips`);
notes.push(`engine timers: the production defaults ${JSON.stringify(TIMING)}; seeds 1..${SEEDS} (1..${SEEDS_LARGE} at 128 VTCs), each seed moving the trigger within a tick and the VTCs' tick phases`);
notes.push('critical path: from the commit made durable at the coordinator, each engine input is followed back to the input during which its cause was emitted (the frame sent, the append or VTS operation asked for), until the trigger; a tick points back to its VTC\'s newest input other than a hello, and the time between is a timer wait');
notes.push('messages per decision: frames between VTCs from the trigger until every VTC holds the commit, hellos (sent every helloInterval whatever happens) counted apart');
writeResults('recovery-model', figures, targets, notes);
