/**
 * One random schedule of the production-code world: a chaos phase of host I/O, operator
 * commands and faults, then healing, a liveness phase that brings the system back on-line,
 * final reads of every volume, and the history check. Everything derives from the seed:
 * `PTPVTS_SEED=<seed>` replays it exactly.
 */
import { SeededRandom } from '../../../src/ptp/random.js';
import { VTS_NAMES } from '../../../src/ptp/types.js';
import type { VtsName } from '../../../src/ptp/types.js';
import type { Violation } from './history.js';
import { ProdWorld } from './prod-world.js';

export interface ProdScheduleOptions {
  /** Chaos phase length in simulated ms (default 1500..3500 from the seed). */
  readonly chaosMs?: number;
  /** How long after healing the system gets to come back on-line with both VTS. */
  readonly livenessMs?: number;
  /** Number of VTCs (default 2..5 from the seed). */
  readonly n?: number;
  /** The VTCs' `tee` option (default on). */
  readonly tee?: boolean;
  /** Called with the world before the history check (debugging a seed). */
  readonly inspect?: (w: ProdWorld) => void;
}

export interface ProdScheduleResult {
  readonly seed: number;
  readonly n: number;
  readonly steps: number;
  readonly simMs: number;
  readonly faults: number;
  readonly faultKinds: Readonly<Record<string, number>>;
  readonly writes: number;
  readonly acked: number;
  readonly reads: number;
  readonly readsOk: number;
  readonly commands: number;
  readonly commandsOk: number;
  /** Back on-line with both VTS within the liveness phase. */
  readonly online: boolean;
  /** Not on-line, but a restored older image is in current: only the operator can decide (no liveness owed). */
  readonly restoredCurrent: boolean;
  readonly violations: readonly Violation[];
  readonly trace: readonly string[];
  readonly state: string;
}

export class ProdScheduleFailure extends Error {
  override readonly name = 'ProdScheduleFailure';
  constructor(
    readonly result: ProdScheduleResult,
    lines = Number(process.env.PTPVTS_LOG_LINES ?? 80),
  ) {
    super(`seed ${result.seed} n=${result.n}: ${result.violations.map((v) => `[${v.code}] ${v.message}`).join('\n  ')}\n  replay: PTPVTS_SEED=${result.seed}\n--- state ---\n${result.state}\n--- last events ---\n${result.trace.slice(-lines).join('\n')}`);
  }
}

/** Schedules the faults of the chaos phase. */
function addFaults(w: ProdWorld, r: SeededRandom, chaos: number): void {
  const s = w.os.sched;
  const count = 2 + r.int(6);
  for (let i = 0; i < count; i++) {
    const at = 100 + r.int(chaos - 100);
    const back = at + 100 + r.int(900);
    const k = r.next();
    if (k < 0.12) {
      const node = r.pick(w.vtcs);
      const power = r.next() < 0.5;
      s.at(at, () => w.crashVtc(node, power));
      s.at(back, () => w.startVtc(node));
    } else if (k < 0.24) {
      const x: VtsName = r.pick(VTS_NAMES);
      const power = r.next() < 0.6;
      s.at(at, () => w.crashVts(x, power));
      if (r.next() < 0.8) s.at(back, () => w.startVts(x));
    } else if (k < 0.32) {
      // Both VTS lose power at one instant; one may come back as an older image of itself.
      const restored: VtsName | null = r.next() < 0.5 ? r.pick(VTS_NAMES) : null;
      if (restored !== null) s.at(r.int(at), () => w.imageVts(restored));
      const first: VtsName = r.pick(VTS_NAMES);
      s.at(at, () => {
        w.crashVts('A', true);
        w.crashVts('B', true);
        if (restored !== null) w.restoreVts(restored);
      });
      s.at(back, () => w.startVts(first));
      s.at(back + r.int(600), () => w.startVts(first === 'A' ? 'B' : 'A'));
    } else if (k < 0.44) {
      // VTC groups that cannot reach each other (both ways).
      const shuffled = [...w.names].sort(() => r.next() - 0.5);
      const cut = 1 + r.int(Math.max(1, w.names.length - 1));
      const groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
      s.at(at, () => {
        w.fault('vtc-partition', JSON.stringify(groups));
        for (const a of groups[0]!) for (const b of groups[1]!) w.net.cut(a, b);
      });
      s.at(back, () => w.heal());
    } else if (k < 0.52) {
      // One way: a can no longer dial b, b still dials a.
      const a = r.pick(w.names);
      const b = r.pick(w.names.filter((v) => v !== a));
      if (b === undefined) continue;
      s.at(at, () => {
        w.fault('vtc-one-way', `${a} cannot dial ${b}`);
        w.net.blockDial(a, b);
      });
      s.at(back, () => w.heal());
    } else if (k < 0.62) {
      // VTC–VTS links: some VTCs lose one VTS (the others may still reach it).
      const x: VtsName = r.pick(VTS_NAMES);
      const who = w.names.filter(() => r.next() < 0.5);
      s.at(at, () => {
        w.fault('vts-link-cut', `${who.join(',')} cannot reach VTS ${x}`);
        for (const v of who) w.net.cut(v, `vts-${x}`);
      });
      s.at(back, () => w.heal());
    } else if (k < 0.68) {
      // The VTS's answers to one VTC are held (requests arrive and run; replies do not).
      const x: VtsName = r.pick(VTS_NAMES);
      const v = r.pick(w.names);
      s.at(at, () => {
        w.fault('vts-replies-stalled', `VTS ${x} -> ${v}`);
        w.net.stall(`vts-${x}`, v);
      });
      s.at(back, () => w.heal());
    } else if (k < 0.74) {
      const x: VtsName = r.pick(VTS_NAMES);
      const hung = r.next() < 0.4;
      s.at(at, () => w.diskFault(x, hung ? 'hung' : 'slow'));
      s.at(back, () => w.diskFault(x, 'none'));
    } else if (k < 0.79) {
      const x: VtsName = r.pick(VTS_NAMES);
      s.at(at, () => w.diskFault(x, 'full'));
      s.at(back, () => w.diskFault(x, 'none'));
    } else if (k < 0.87) {
      // A stop-the-world pause of one process, longer than the liveness windows.
      const p = r.pick([...w.names, 'vts-A', 'vts-B']);
      const len = 100 + r.int(1500);
      s.at(at, () => w.pause(p, len));
    } else if (k < 0.92) {
      const p = r.pick([...w.names, 'vts-A', 'vts-B']);
      const skew = (r.next() < 0.5 ? -1 : 1) * (50 + r.int(5000));
      s.at(at, () => w.skew(p, skew));
    } else if (k < 0.96) {
      const a = r.pick(w.names);
      const b = r.pick([...w.names.filter((v) => v !== a), 'vts-A', 'vts-B']);
      s.at(at, () => {
        w.fault('connection-reset', `${a} - ${b}`);
        w.net.reset(a, b);
      });
    } else {
      const a = r.pick(w.names);
      const x: VtsName = r.pick(VTS_NAMES);
      const ms = 50 + r.int(400);
      s.at(at, () => {
        w.fault('slow-link', `${a} <-> VTS ${x} +${ms} ms`);
        w.net.slow(a, `vts-${x}`, ms);
        w.net.slow(`vts-${x}`, a, ms);
      });
      s.at(back, () => w.heal());
    }
  }
}

export async function runProdSchedule(seed: number, o: ProdScheduleOptions = {}): Promise<ProdScheduleResult> {
  const pick = new SeededRandom(seed ^ 0x2545f491);
  const u = pick.next();
  const n = o.n ?? (u < 0.35 ? 2 : u < 0.7 ? 3 : u < 0.9 ? 4 : 5);
  const w = new ProdWorld({ seed, n, ...(o.tee === undefined ? {} : { tee: o.tee }) });
  const r = new SeededRandom(seed ^ 0x68e31da4);
  const s = w.os.sched;
  const chaos = o.chaosMs ?? 1500 + r.int(2000);
  const liveness = o.livenessMs ?? 8000;
  for (const x of VTS_NAMES) w.startVts(x);
  for (const v of w.vtcs) w.startVtc(v);
  // Host I/O and operator commands all through the chaos phase.
  const writeEvery = 20 + r.int(60);
  for (let t = 200 + r.int(writeEvery); t < chaos; t += writeEvery) s.at(t, () => w.hostWrite());
  const readEvery = 20 + r.int(60);
  for (let t = 200 + r.int(readEvery); t < chaos; t += readEvery) s.at(t, () => w.hostRead());
  const commands = r.int(4);
  for (let i = 0; i < commands; i++) {
    const at = 200 + r.int(chaos - 200);
    const x: VtsName = r.pick(VTS_NAMES);
    const mode = w.randomMode();
    s.at(at, () => w.command({ command: 'vts-out', vts: x, mode }));
    s.at(at + 200 + r.int(800), () => w.command({ command: 'vts-in', vts: x }));
  }
  addFaults(w, r, chaos);
  let online = false;
  try {
    await w.os.runUntil(chaos);
    w.note('--- heal ---');
    w.healAll();
    const deadline = chaos + liveness;
    let nudge = s.now() + 1500;
    // On-line with both counts once it has held for two heartbeat timeouts: a VTS that lost
    // power for less than one came back before any VTC missed it, and the VTCs still report
    // the status they had until their next heartbeat shows the restart (seed 602: a restored
    // image was taken as on-line the moment it came up).
    const settle = 2 * w.timing.heartbeatTimeout;
    let since: number | null = null;
    online = await w.os.runWhile(deadline, () => {
      if (s.now() >= nudge) {
        nudge = s.now() + 1000;
        w.nudge();
      }
      if (!w.allOnlineBoth()) since = null;
      else since ??= s.now();
      return since !== null && s.now() - since >= settle;
    });
    // Final reads: every volume through every live VTC.
    const finals: (ReturnType<ProdWorld["hostRead"]>)[] = [];
    if (online) for (const v of w.liveAgents()) for (const vol of w.volumes) finals.push(w.hostRead(vol, v));
    await w.os.runWhile(s.now() + 3000, () => finals.every((f) => f === null || f.end !== null));
  } catch (e) {
    w.note(`CRASH ${(e as Error).stack ?? String(e)}`);
    const result = summarize(w, seed, n, online, [{ code: 'lost-write', message: `the simulation threw: ${(e as Error).message}` }]);
    throw new ProdScheduleFailure(result);
  }
  o.inspect?.(w);
  const violations = w.check(online);
  const result = summarize(w, seed, n, online, violations);
  if (violations.length > 0) throw new ProdScheduleFailure(result);
  return result;
}

function summarize(w: ProdWorld, seed: number, n: number, online: boolean, violations: Violation[]): ProdScheduleResult {
  return {
    seed,
    n,
    steps: w.os.sched.steps,
    simMs: w.os.sched.now(),
    faults: w.counters.faults,
    faultKinds: { ...w.faultCounts },
    writes: w.counters.writes,
    acked: w.counters.writesAcked,
    reads: w.counters.reads,
    readsOk: w.counters.readsOk,
    commands: w.counters.commands,
    commandsOk: w.counters.commandsOk,
    online,
    restoredCurrent: !online && w.restoredCurrent(),
    violations,
    trace: w.trace,
    state: w.describe(),
  };
}
