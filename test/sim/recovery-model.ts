/**
 * The recovery decision on a cost model: the production engine in the deterministic world
 * with a fixed one-way hop, an fsync per journal append and a VTS a round trip away
 * (WorldOptions `oneWayDelay`, `appendLatency`, `vtsCost`), and the decision's critical path
 * read back from the world's causal history. Used by bench/recovery-model.bench.ts and its
 * test; docs/recovery-bench.md describes the model.
 */
import { DEFAULT_TIMING } from '../../src/ptp/engine.js';
import type { Timing } from '../../src/ptp/engine.js';
import { formatStatus } from '../../src/ptp/types.js';
import { World } from './world.js';
import type { CausalEvent } from './world.js';

export interface CostModel {
  readonly name: string;
  /** One-way hop between any two peers (VTC to VTC, VTC to VTS), ms. */
  readonly oneWay: number;
  /** One durable journal append (fsync), ms; the VTS's state file costs the same. */
  readonly fsync: number;
}

export const LAN: CostModel = { name: 'LAN', oneWay: 0.1, fsync: 1 };
export const WAN: CostModel = { name: 'WAN', oneWay: 10, fsync: 1 };

/** One fsync plus two round trips on the model. */
export const floorOf = (m: CostModel): number => m.fsync + 2 * (2 * m.oneWay);

export type Scenario = 'vts-in' | 'failure' | 'election';
export const SCENARIOS: readonly Scenario[] = ['vts-in', 'failure', 'election'];
export const TITLE: Record<Scenario, string> = {
  'vts-in': '`vts in B` after a PtP shutdown (one key, its election in phase 1)',
  failure: 'failure key: VTS A fails while both are in, B on-line alone',
  election: 'election: the last VTS in (B) fails and returns, elected by ballots',
};

export const r3 = (x: number): number => Number(x.toFixed(3));

/** One step of a critical path: the input reached, and the edge that led to it. */
export interface Step {
  readonly edge: NonNullable<CausalEvent['edge']>;
  readonly to: CausalEvent;
  /** Time spent on this edge after the trigger. */
  readonly ms: number;
  /** The edge began before the trigger (only its part after the trigger counts). */
  readonly crossing: boolean;
}

export interface Measured {
  readonly n: number;
  readonly seed: number;
  /** Trigger to the commit durable at the coordinator. */
  readonly decisionMs: number;
  /** The part of it spent waiting for a timer (a tick acting on what its VTC already knew). */
  readonly timerMs: number;
  /** Trigger to the decision's key leaving its coordinator (failure detection, grace, the election's ballots). */
  readonly beforeKeyMs: number;
  /** Trigger to the commit durable at every VTC. */
  readonly appliedAllMs: number;
  /** On the critical path after the trigger: durable appends at VTCs, one-way hops between VTCs, VTS operations (round trips), durable writes at a VTS, timer waits. */
  readonly path: { appends: number; hops: number; vtsRoundTrips: number; vtsWrites: number; timers: number };
  /** Messages between VTCs from the trigger until every VTC holds the commit, hellos apart. */
  readonly messages: number;
  readonly byType: Record<string, number>;
  readonly hellos: number;
  /** VTS operations that record (start, record, stop, reconcile) in the same window, heartbeats apart. */
  readonly vtsOps: number;
  readonly heartbeats: number;
  /** The critical path, written out. */
  readonly trail: string;
  /** What the timer waits on the path were (the effects of each tick that acted). */
  readonly timerWaits: { at: string; ms: number; did: string }[];
}

/** A world on the cost model, keeping its causal history. */
export function modelWorld(n: number, seed: number, m: CostModel, timing: Timing = DEFAULT_TIMING, silentVts = false): World {
  return new World({
    seed,
    n,
    timing,
    copier: false,
    oneWayDelay: m.oneWay,
    appendLatency: m.fsync,
    vtsCost: { roundTrip: 2 * m.oneWay, write: m.fsync, ...(silentVts ? { silent: true } : {}) },
    causal: true,
  });
}

/** Runs the world in 10 ms slices until `done` holds (an error after `limit` ms). */
function until(w: World, what: string, done: () => boolean, limit = 20_000): void {
  const end = w.sched.now() + limit;
  while (!done()) {
    if (w.sched.now() >= end) throw new Error(`not reached within ${limit} ms: ${what}\n${w.describe()}`);
    w.run(w.sched.now() + 10);
  }
}

const everyone = (w: World, status: string): boolean => w.vtcs.every((v) => formatStatus(v.engine.status()) === status && !v.engine.inFlight());

/** The input at `node` that made the commit of key `seq` by `coordinator` durable there. */
export function commitAt(w: World, node: string, seq: number, coordinator: string, after: number): CausalEvent | undefined {
  return w.causal!.find((e) => e.node === node && e.at >= after && e.kind === 'append' && e.detail === `commit ${seq} by ${coordinator} done`);
}

/** What a tick on the critical path did (its effects, hellos apart). */
function timerRole(tick: CausalEvent): string {
  const out = [...new Set(tick.out.filter((o) => o !== 'send hello'))];
  return out.length === 0 ? 'nothing' : out.join(', ');
}

/** The timer behind the longest wait on each decision's path (read from the trails; docs/recovery-bench.md). */
export function dominantTimer(s: Scenario, timing: Timing = DEFAULT_TIMING): string {
  if (s === 'vts-in') return 'none: no tick on the path';
  if (s === 'failure') return `heartbeatTimeout (${timing.heartbeatTimeout} ms): VTS A counts as failed once it has not answered for that long, seen at the first heartbeat answer (one per tick, ${timing.tick} ms) after it`;
  return `returnGrace (${timing.returnGrace} ms): a VTC joins the election that long after it first sees B back in operation, at a tick; the lead proposes the election key at its own tick once its own grace is over`;
}

/** Follows parents back from `end` until the trigger (a root, or an input before `triggerAt`). */
export function criticalPath(w: World, end: CausalEvent, triggerAt: number): Step[] {
  const c = w.causal!;
  const steps: Step[] = [];
  for (let e = end; e.parent !== null && e.edge !== null; ) {
    const p = c[e.parent]!;
    const crossing = p.at < triggerAt;
    steps.push({ edge: e.edge, to: e, ms: e.at - Math.max(p.at, triggerAt), crossing });
    if (crossing) break;
    e = p;
  }
  return steps.reverse();
}

export function measure(w: World, n: number, seed: number, triggerAt: number, seq: number, coordinator: string): Measured {
  const end = commitAt(w, coordinator, seq, coordinator, triggerAt);
  if (end === undefined) throw new Error(`key ${seq} never committed at ${coordinator}`);
  // When each VTC made the commit durable (one pass over the history).
  const durableAt = new Map<string, number>();
  for (const e of w.causal!) if (e.at >= triggerAt && e.kind === 'append' && e.detail === `commit ${seq} by ${coordinator} done` && !durableAt.has(e.node)) durableAt.set(e.node, e.at);
  const appliedAll = Math.max(...w.vtcs.map((v) => durableAt.get(v.name) ?? Infinity));
  if (appliedAll === Infinity) throw new Error(`key ${seq} was not applied at every VTC`);
  const steps = criticalPath(w, end, triggerAt);
  const path = { appends: 0, hops: 0, vtsRoundTrips: 0, vtsWrites: 0, timers: 0 };
  let timerMs = 0;
  const timerWaits: Measured['timerWaits'] = [];
  for (const s of steps) {
    if (s.edge === 'timer') {
      timerMs += s.ms;
      path.timers++;
      timerWaits.push({ at: s.to.node, ms: r3(s.ms), did: timerRole(s.to) });
      continue;
    }
    if (s.crossing) continue;
    if (s.edge === 'append') path.appends++;
    else if (s.edge === 'hop') path.hops++;
    else {
      path.vtsRoundTrips++;
      if (!/status|unreachable|refused/.test(s.to.detail)) path.vtsWrites++;
    }
  }
  const trail = steps.map((s) => `${s.edge === 'timer' ? `[timer ${s.ms.toFixed(1)}]` : s.edge}${s.crossing ? '*' : ''}>${s.to.node}:${s.to.kind === 'frame' ? s.to.detail : s.to.kind === 'tick' ? 'tick' : s.to.detail}@${(s.to.at - triggerAt).toFixed(1)}`).join(' ');
  const firstPropose = w.sent.find((x) => x.at >= triggerAt && x.from === coordinator && x.t === 'propose');
  const window = w.sent.filter((x) => x.at >= triggerAt && x.at <= appliedAll);
  const byType: Record<string, number> = {};
  for (const x of window) if (x.t !== 'hello') byType[x.t] = (byType[x.t] ?? 0) + 1;
  const ops = w.causal!.filter((e) => e.at >= triggerAt && e.at <= appliedAll).flatMap((e) => e.out.filter((o) => o.startsWith('vts ')));
  return {
    n,
    seed,
    decisionMs: end.at - triggerAt,
    timerMs,
    beforeKeyMs: (firstPropose?.at ?? triggerAt) - triggerAt,
    appliedAllMs: appliedAll - triggerAt,
    path,
    messages: Object.values(byType).reduce((a, b) => a + b, 0),
    byType,
    hellos: window.length - Object.values(byType).reduce((a, b) => a + b, 0),
    vtsOps: ops.filter((o) => !o.endsWith(' status')).length,
    heartbeats: ops.filter((o) => o.endsWith(' status')).length,
    trail,
    timerWaits,
  };
}

/**
 * Runs one decision on a fresh world and measures it. The trigger is moved within a tick
 * by the seed, so seeds meet the timers at different phases.
 */
export function runDecision(s: Scenario, n: number, seed: number, m: CostModel, timing: Timing = DEFAULT_TIMING, o: { silentVts?: boolean } = {}): Measured {
  const TIMING = timing;
  const phase = (x: number): number => (x * 37) % TIMING.tick;
  const w = modelWorld(n, seed, m, timing, o.silentVts === true);
  until(w, 'on-line with both VTS', () => everyone(w, 'online-both'));
  const coordinator = w.vtcs[0]!;
  // Idle long enough for every VTC to have heard from both VTS and every peer, and for nothing to be in flight.
  const settle = (): void => w.run(w.sched.now() + 3 * TIMING.helloInterval + phase(seed));
  settle();
  if (s === 'vts-in') {
    w.command({ command: 'ptp-shutdown', mode: 'normal' }, coordinator);
    until(w, 'off-line after the shutdown', () => everyone(w, 'offline'));
    settle();
    const t0 = w.sched.now();
    const id = w.command({ command: 'vts-in', vts: 'B' }, coordinator);
    until(w, 'B on-line alone', () => everyone(w, 'online-single(B)'));
    const r = w.results.get(id);
    if (r === undefined || !r.ok || formatStatus(r.key.state) !== 'online-single(B)') throw new Error(`vts in B did not place B on-line alone: ${JSON.stringify(r)}`);
    return measure(w, n, seed, t0, r.seq, coordinator.name);
  }
  if (s === 'failure') {
    const before = w.vtcs[0]!.engine.newestKey().seq;
    const t0 = w.sched.now();
    w.crashVts('A');
    until(w, 'B on-line alone after A failed', () => everyone(w, 'online-single(B)'), 3 * timing.vtsOpTimeout);
    const k = w.vtcs[0]!.engine.committedKeys().find((x) => x.seq > before && x.command === 'vts-out' && x.reason === 'failure');
    if (k === undefined) throw new Error('no failure key');
    return measure(w, n, seed, t0, k.seq, k.originVtc);
  }
  w.command({ command: 'vts-out', vts: 'A', mode: 'normal' }, coordinator);
  until(w, 'B on-line alone after A was taken out', () => everyone(w, 'online-single(B)'));
  settle();
  w.crashVts('B');
  until(w, 'off-line after B failed', () => everyone(w, 'offline'));
  settle();
  const before = w.vtcs[0]!.engine.newestKey().seq;
  const t0 = w.sched.now();
  w.powerOnVts('B');
  until(w, 'B elected', () => everyone(w, 'online-single(B)'));
  const k = w.vtcs[0]!.engine.committedKeys().find((x) => x.seq > before && x.reason === 'election');
  if (k === undefined) throw new Error('no election key');
  return measure(w, n, seed, t0, k.seq, k.originVtc);
}

