/**
 * One random schedule: a short burst of faults, commands and host writes, then healing
 * and a liveness bound. Everything derives from the seed, so `PTPVTS_SEED=<seed>` replays it.
 */
import { SeededRandom } from '../../src/ptp/random.js';
import type { BrokenRule } from '../../src/ptp/rules.js';
import { VTS_NAMES } from '../../src/ptp/types.js';
import type { VtsName } from '../../src/ptp/types.js';
import { InvariantViolation, World } from './world.js';

export const SIZES = [2, 3, 4, 5, 8] as const;

export interface ScheduleResult {
  readonly seed: number;
  readonly n: number;
  readonly steps: number;
  readonly simMs: number;
  readonly acked: number;
  readonly elections: number;
  readonly commandsOk: number;
  readonly commandsFailed: number;
  readonly adversaryFrames: number;
  readonly rejectedFrames: number;
}

export interface ScheduleOptions {
  readonly broken?: BrokenRule;
  readonly trace?: boolean;
  /** Chaos phase length in simulated ms. */
  readonly chaosMs?: number;
  /** How long after healing the system must be on-line. */
  readonly livenessMs?: number;
  readonly hmac?: boolean;
}

export class ScheduleFailure extends Error {
  override readonly name = 'ScheduleFailure';
  readonly seed: number;
  readonly code: string;
  constructor(seed: number, code: string, message: string, log: readonly string[], state: string, options?: { cause?: unknown }) {
    super(`${message}\n  replay: PTPVTS_SEED=${seed}\n--- state ---\n${state}\n--- last events ---\n${log.slice(-Number(process.env.PTPVTS_LOG_LINES ?? 60)).join('\n')}`, options);
    this.seed = seed;
    this.code = code;
  }
}

/**
 * The faults the fencing work added, drawn from their own random stream (so every seed keeps
 * its older events): host reads checked against the newest acknowledged generation all
 * along; a VTC cut off from its peers while the others lose a VTS it still reaches; both VTS
 * losing power at one instant, one of them sometimes coming back as an older image of itself.
 */
function addSafetyFaults(w: World, chaos: number, end: number, n: number): void {
  const r = w.rng2;
  const readEvery = 10 + r.int(30);
  for (let t = r.int(readEvery); t < end; t += readEvery) w.sched.at(t, () => w.hostRead());
  if (r.next() < 0.3) {
    const at = r.int(chaos);
    const lone = r.pick(w.names);
    const x: VtsName = r.pick(VTS_NAMES);
    const heal = at + 100 + r.int(700);
    w.sched.at(at, () => {
      w.note(`${lone} cut from its peers; the others lose VTS ${x}`);
      w.net.partition([[lone], w.names.filter((v) => v !== lone)]);
      for (const v of w.names) if (v !== lone) w.cutVtsLink(v, x);
    });
    w.sched.at(heal, () => {
      w.net.heal();
      w.healVtsLinks();
    });
  }
  if (r.next() < 0.3) {
    const at = 50 + r.int(chaos);
    const imageAt = r.int(at);
    const restored: VtsName | null = r.next() < 0.5 ? r.pick(VTS_NAMES) : null;
    const first: VtsName = r.pick(VTS_NAMES);
    const backFirst = at + 20 + r.int(400);
    const backSecond = r.next() < 0.5 ? backFirst + r.int(600) : Infinity;
    let image: ReturnType<World['imageOf']> | null = null;
    if (restored !== null) w.sched.at(imageAt, () => (image = w.imageOf(restored)));
    w.sched.at(at, () => {
      w.powerLossBoth();
      // A restore the VTCs can tell apart: the image predates a key the VTS recorded and some
      // VTC holds the confirmation of (a record whose answer was lost is evidence no VTC has:
      // seed 62378), or the system was on-line with both (the other VTS holds every write).
      // The image of the only current VTS taken after its last confirmed key is undetectable
      // (docs/protocol-notes.md).
      const h = w.headKey();
      const confirmed = restored === null ? 0 : Math.max(0, ...w.vtcs.map((v) => v.engine.confirmedSeq(restored)));
      if (restored !== null && image !== null && (image.lastKeySeq < confirmed || (h.state.kind === 'online-both' && h.status.A === 'in' && h.status.B === 'in'))) w.restoreVts(restored, image);
    });
    w.sched.at(backFirst, () => w.powerOnVts(first));
    if (backSecond !== Infinity) w.sched.at(backSecond, () => w.powerOnVts(first === 'A' ? 'B' : 'A'));
  }
  void n;
}

export function runSchedule(seed: number, o: ScheduleOptions = {}): ScheduleResult {
  const pickRng = new SeededRandom(seed ^ 0x9e3779b9);
  // Small clusters are cheap and find most bugs; 8 VTCs (n^2 messages) get a smaller share.
  const u = pickRng.next();
  const n = u < 0.25 ? 2 : u < 0.5 ? 3 : u < 0.75 ? 4 : u < 0.9 ? 5 : 8;
  const lossy = pickRng.next() < 0.6;
  const w = new World({
    seed,
    n,
    hmac: o.hmac ?? pickRng.next() < 0.02,
    ...(o.broken === undefined ? {} : { broken: o.broken }),
    trace: o.trace ?? false,
    loss: lossy ? pickRng.next() * 0.15 : 0,
    duplicate: lossy ? pickRng.next() * 0.1 : 0,
    maxDelay: 2 + pickRng.next() * 25,
  });
  const r = w.rng;
  const chaos = o.chaosMs ?? 500 + r.int(1000);
  const liveness = o.livenessMs ?? 8000;
  try {
    // Host writes all along, so every fault meets writes in flight.
    const writeEvery = 8 + r.int(20);
    for (let t = r.int(writeEvery); t < chaos + liveness; t += writeEvery) w.sched.at(t, () => w.hostWrite());
    for (let t = 5 + r.int(40); t < chaos + liveness; t += 20 + r.int(80)) w.sched.at(t, () => w.adversary());
    const events = 2 + r.int(7);
    for (let i = 0; i < events; i++) {
      const at = r.int(chaos);
      const kind = r.next();
      if (kind < 0.3) {
        const cmd = w.randomCommand();
        w.sched.at(at, () => w.command(cmd));
      } else if (kind < 0.5) {
        const x: VtsName = r.pick(VTS_NAMES);
        const back = r.next() < 0.6 ? at + 50 + r.int(600) : Infinity;
        w.sched.at(at, () => w.crashVts(x));
        if (back !== Infinity) w.sched.at(back, () => w.powerOnVts(x));
      } else if (kind < 0.62) {
        const node = r.pick(w.vtcs);
        const back = at + 20 + r.int(600);
        w.sched.at(at, () => w.crashVtc(node));
        w.sched.at(back, () => w.restartVtc(node));
      } else if (kind < 0.77) {
        const shuffled = [...w.names].sort(() => r.next() - 0.5);
        const cut = 1 + r.int(Math.max(1, n - 1));
        const groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
        const heal = at + 50 + r.int(700);
        w.sched.at(at, () => {
          w.note(`partition ${JSON.stringify(groups)}`);
          w.net.partition(groups);
        });
        w.sched.at(heal, () => {
          w.note('partition healed');
          w.net.heal();
        });
      } else if (kind < 0.87) {
        const node = r.pick(w.names);
        const x: VtsName = r.pick(VTS_NAMES);
        w.sched.at(at, () => {
          w.note(`link ${node}-${x} cut`);
          w.cutVtsLink(node, x);
        });
        w.sched.at(at + 50 + r.int(600), () => w.healVtsLinks());
      } else {
        const x: VtsName = r.pick(VTS_NAMES);
        w.sched.at(at, () => w.command({ command: 'vts-out', vts: x, mode: r.pick(['normal', 'expedite', 'immediate', 'forced'] as const) }));
        w.sched.at(at + 100 + r.int(600), () => w.command({ command: 'vts-in', vts: x }));
      }
    }
    addSafetyFaults(w, chaos, chaos + liveness, n);
    w.run(chaos);

    // Heal everything and bring the current VTS back; the system must come on-line.
    w.note('--- heal ---');
    w.net.heal();
    w.net.options = { ...w.net.options, loss: 0, duplicate: 0 };
    w.healVtsLinks();
    for (const node of w.vtcs) w.restartVtc(node);
    const deadline = chaos + liveness;
    const lone = r.pick(VTS_NAMES);
    let needed: VtsName[] = [];
    let nextNudge = w.sched.now();
    while (w.sched.now() < deadline && !w.allOnline()) {
      if (w.sched.now() >= nextNudge) {
        // Keys may still change after healing (commands in flight), so what is needed is re-read each time.
        const newest = w.headKey();
        needed = newest.current.length === 0 ? ['A', 'B'] : newest.current.length === 2 ? [lone] : [...newest.current];
        // Both current, but a VTC saw the lone one restart while the other was lost too (it may
        // be a restored image, and only the other's tokens show what it lacks): the VTCs
        // rightly refuse to elect it alone, so both are brought back, as an operator would
        // (docs/protocol-notes.md, "Restart marks and both VTS lost at once").
        if (newest.current.length === 2 && w.vtcs.some((v) => v.alive && v.engine.restartMarks()[lone].bothLost)) needed = ['A', 'B'];
        for (const x of needed) w.powerOnVts(x);
        nextNudge = w.sched.now() + 400;
        // Both out: one ptp-start, as an operator would, rather than two vts-in that contend for one seq.
        const out = needed.filter((x) => w.vts[x].powered && !w.vts[x].inOperation);
        if (out.length === 2) w.command({ command: 'ptp-start' });
        else for (const x of out) w.command({ command: 'vts-in', vts: x });
      }
      if (!w.sched.step(deadline)) break;
    }
    if (!w.allOnline() && !w.restoredCurrent()) throw new InvariantViolation('liveness', `not on-line ${liveness} ms after healing (needed ${needed.join(',')})`);
  } catch (e) {
    if (e instanceof InvariantViolation) throw new ScheduleFailure(seed, e.code, `[${e.code}] seed ${seed} n=${n}: ${e.message}`, w.log, w.describe(), { cause: e });
    throw new ScheduleFailure(seed, 'crash', `[crash] seed ${seed} n=${n}: ${(e as Error).stack ?? String(e)}`, w.log, w.describe(), { cause: e });
  }
  return {
    seed,
    n,
    steps: w.sched.steps,
    simMs: w.sched.now(),
    acked: w.counters.acked,
    elections: w.counters.elections,
    commandsOk: w.counters.commandsOk,
    commandsFailed: w.counters.commandsFailed,
    adversaryFrames: w.counters.adversaryFrames,
    rejectedFrames: w.vtcs.reduce((a, v) => a + Object.values(v.codec.stats.rejected).reduce((x, y) => x + y, 0), 0),
  };
}
