/**
 * One test per claim (1–25), each a small deterministic story run on the protocol core
 * under the simulated clock, with the invariants checked on every step. Claims 10–25 claim
 * the same method as program code; their tests run the same engine through the same
 * stories, named after the claim's own wording.
 */
import { describe, expect, it } from 'vitest';
import type { CommandResult } from '../../src/ptp/engine.js';
import { formatStatus } from '../../src/ptp/types.js';
import { configDigest, genesisKey, isStrong } from '../../src/ptp/rules.js';
import type { CommitRecord, ShutdownKey, SignedBallot } from '../../src/ptp/types.js';
import { SIM_TIMING, World } from './world.js';
import type { WorldOptions } from './world.js';

/** A ballot as the VTC that cast it logged it (worlds made with `trace: true`). */
interface Cast {
  readonly voter: string;
  readonly election: string;
  readonly choice: 'yes' | 'no';
  readonly keySeq: number;
  readonly why: string;
}
const casts = (w: World): Cast[] =>
  w.log.flatMap((l) => {
    const m = /^[\d.]+ (vtc\d+) ballot (\S+) (yes|no) keySeq=(\d+) \((.*)\)$/.exec(l);
    return m === null ? [] : [{ voter: m[1]!, election: m[2]!, choice: m[3] as 'yes' | 'no', keySeq: Number(m[4]), why: m[5]! }];
  });
const yesBy = (cs: readonly Cast[], election: string): string[] => cs.filter((c) => c.election === election && c.choice === 'yes').map((c) => c.voter).sort();
const noBy = (cs: readonly Cast[], election: string): string[] => cs.filter((c) => c.election === election && c.choice === 'no').map((c) => c.voter).sort();
/** The committed key a command produced (the test fails with the error if it did not). */
const keyOf = (r: CommandResult | undefined): ShutdownKey => {
  if (r === undefined) throw new Error('the command was never answered (was its VTC running?)');
  if (!r.ok) throw new Error(`the command failed: ${r.error.code} ${r.error.message}`);
  return r.key;
};
/** Index of the first log line matching `re` (-1: none). */
const logAt = (w: World, re: RegExp): number => w.log.findIndex((l) => re.test(l));

const mk = (o: Partial<WorldOptions> = {}): World => new World({ seed: 11, n: 4, ...o });
const statuses = (w: World): string[] => w.vtcs.filter((v) => v.alive).map((v) => formatStatus(v.engine.status()));
const newest = (w: World, i = 0): ShutdownKey => w.vtcs[i]!.engine.newestKey();
const writes = (w: World, from: number, to: number, o: Parameters<World['hostWrite']>[0] = {}): void => {
  for (let t = from; t < to; t += 20) w.sched.at(t, () => w.hostWrite(o));
};
const cmd = (w: World, t: number, c: Parameters<World['command']>[0], vtc = 0): { id: string } => {
  const ref = { id: '' };
  w.sched.at(t, () => {
    ref.id = w.command(c, w.vtcs[vtc]);
  });
  return ref;
};

/** A out at t1, B takes writes, B out at t2, `back` placed in operation alone at t3. */
function outOutBack(back: 'A' | 'B', o: Partial<WorldOptions> = {}, before?: (w: World) => void): World {
  const w = mk(o);
  before?.(w);
  cmd(w, 10, { command: 'vts-out', vts: 'A', mode: 'normal' }, 0);
  writes(w, 300, 900);
  cmd(w, 1000, { command: 'vts-out', vts: 'B', mode: 'normal' }, 1);
  cmd(w, 1500, { command: 'vts-in', vts: back }, 2);
  return w;
}

function claim1(): void {
  const w = outOutBack('B', { trace: true });
  w.run(3500);
  expect(statuses(w)).toEqual(['online-single(B)', 'online-single(B)', 'online-single(B)', 'online-single(B)']);
  // The operator's vts-in held the election in its phase 1: the key names it and who elected B.
  const k = newest(w);
  expect([k.seq, k.command, k.threshold]).toEqual([3, 'vts-in', 2]);
  expect(k.state).toEqual({ kind: 'online-single', vts: 'B' });
  expect(k.election).toMatchObject({ seq: 2, vts: 'B', round: 0 });
  // Cause: more than T = 2 VTCs elected B from key 2 (B current, B reports the seq it recorded going out).
  const yes = yesBy(casts(w), '2:B:0');
  expect(yes.length).toBeGreaterThan(2);
  expect(yes).toEqual(expect.arrayContaining([...(k.election?.yes ?? [])]));
  for (const c of casts(w).filter((x) => x.election === '2:B:0' && x.choice === 'yes')) expect([c.keySeq, c.why]).toEqual([2, 'current, same last key seq, newest key']);
  expect(w.counters.acked).toBeGreaterThan(0);
}

function claim2(): void {
  const w = outOutBack('A', { trace: true });
  w.run(3500);
  expect(statuses(w)).toEqual(['offline', 'offline', 'offline', 'offline']);
  // The vts-in key brought A back off-line, not elected, and did not record its seq on A.
  const k = newest(w);
  expect([k.seq, k.command, k.state.kind, k.election, k.threshold]).toEqual([3, 'vts-in', 'offline', null, 2]);
  expect(w.vts.A.lastKeySeq).toBe(1);
  // Cause: every VTC voted NO from key 2, whose current is {B}; nobody voted YES in any round.
  const cs = casts(w);
  expect(noBy(cs, '2:A:0')).toEqual(['vtc0', 'vtc1', 'vtc2', 'vtc3']);
  for (const c of cs.filter((x) => x.election.startsWith('2:A:'))) expect([c.keySeq, c.why]).toEqual([2, 'A is not in current {B} of key 2']);
  expect(cs.filter((c) => c.choice === 'yes')).toEqual([]);
}

function claim3(): void {
  const w = mk();
  const c = cmd(w, 10, { command: 'vts-out', vts: 'A', mode: 'normal' }, 0);
  w.run(600);
  expect(w.results.get(c.id)?.ok).toBe(true);
  const k = newest(w);
  expect([k.command, k.subjects, k.status, k.current]).toEqual(['vts-out', ['A'], { A: 'out', B: 'in' }, ['B']]);
  expect(w.vts.A.inOperation).toBe(false);
}

function claim4(): void {
  const w = mk();
  cmd(w, 10, { command: 'vts-out', vts: 'A', mode: 'normal' }, 2);
  w.run(800);
  const keys = w.vtcs.map((v) => v.engine.committedKeys().map((k) => k.mac));
  expect(new Set(keys.map((k) => k.join())).size).toBe(1);
  const out = w.vtcs[0]!.engine.committedKeys().find((k) => k.command === 'vts-out');
  expect(out?.originVtc).toBe('vtc2');
  expect(out?.acks.length).toBeGreaterThan(out?.threshold ?? 99);
}

function claim5(): void {
  const w = mk();
  cmd(w, 10, { command: 'vts-out', vts: 'B', mode: 'expedite' }, 0);
  w.run(800);
  expect(newest(w, 3).mode).toBe('expedite');
}

/**
 * Every mode per the table, each with a host write in flight on A when the command comes
 * (host I/O starts after the VTCs' first hellos, about 50 ms in): normal and expedite let it
 * complete before A records the key and leaves; immediate and forced abort it.
 */
function claim6(): void {
  // normal: the active mount completes, pending copies are drained, B alone is current.
  {
    const w = mk({ copier: false, trace: true });
    for (const v of w.volumes) w.sched.at(60, () => w.hostWrite({ vol: v, primary: 'A', copyMode: 'deferred', node: w.vtcs[0] }));
    w.sched.at(95, () => w.hostWrite({ vol: 'V00000', primary: 'A', copyMode: 'deferred', duration: 150, node: w.vtcs[1] }));
    const c = cmd(w, 105, { command: 'vts-out', vts: 'A', mode: 'normal' });
    w.run(800);
    const k = keyOf(w.results.get(c.id));
    expect([k.mode, k.copiesPending, k.current]).toEqual(['normal', [], ['B']]);
    // The write in flight was acknowledged before A recorded key 1 and left operation.
    const ack = logAt(w, /vtc1 ack write V00000 gen 2 /);
    expect(ack).toBeGreaterThan(logAt(w, /VTS A stopping \(normal\)/));
    expect(ack).toBeLessThan(logAt(w, /VTS A out of operation/));
    expect(w.counters.failedWrites).toBe(0);
    expect(w.vts.A.lastKeySeq).toBe(1);
  }
  // expedite: a write ending within the bound completes, one past it is aborted.
  {
    const w = mk({ copier: false, trace: true, timing: { ...SIM_TIMING, expediteTimeout: 40 } });
    w.sched.at(95, () => w.hostWrite({ vol: 'V00004', primary: 'A', copyMode: 'deferred', duration: 30, node: w.vtcs[1] }));
    w.sched.at(95, () => w.hostWrite({ vol: 'V00005', primary: 'A', copyMode: 'deferred', duration: 400, node: w.vtcs[2] }));
    const c = cmd(w, 105, { command: 'vts-out', vts: 'A', mode: 'expedite' });
    w.run(800);
    expect(keyOf(w.results.get(c.id)).mode).toBe('expedite');
    const ack = logAt(w, /vtc1 ack write V00004 gen 1 /);
    expect(ack).toBeGreaterThan(logAt(w, /VTS A stopping \(expedite\)/));
    expect(ack).toBeLessThan(logAt(w, /VTS A out of operation/));
    expect(logAt(w, /vtc2 write V00005 failed/)).toBeGreaterThan(logAt(w, /VTS A out of operation/));
    expect(w.counters.failedWrites).toBe(1);
  }
  // expedite: copies drained only until the bound; the rest are counted and nobody alone is current.
  {
    const w = mk({ copier: false, timing: { ...SIM_TIMING, expediteTimeout: 4 } });
    for (const v of w.volumes) w.sched.at(60, () => w.hostWrite({ vol: v, primary: 'A', copyMode: 'deferred', node: w.vtcs[0] }));
    const c = cmd(w, 105, { command: 'vts-out', vts: 'A', mode: 'expedite' });
    w.run(800);
    const k = keyOf(w.results.get(c.id));
    expect(k.copiesPending?.length).toBeGreaterThan(0);
    expect(k.copiesPending!.length).toBeLessThan(w.volumes.length);
    expect(k.current).toEqual([]);
  }
  // immediate and forced: the active mount is aborted (host error), copies left queued and counted.
  for (const mode of ['immediate', 'forced'] as const) {
    const w = mk({ copier: false, trace: true });
    w.sched.at(60, () => w.hostWrite({ vol: 'V00001', primary: 'A', copyMode: 'deferred', node: w.vtcs[0] }));
    w.sched.at(95, () => w.hostWrite({ vol: 'V00002', primary: 'A', copyMode: 'deferred', duration: 400, node: w.vtcs[1] }));
    const c = cmd(w, 115, { command: 'vts-out', vts: 'A', mode });
    w.run(800);
    const k = keyOf(w.results.get(c.id));
    expect([k.mode, k.copiesPending, k.current]).toEqual([mode, ['V00001'], []]);
    expect(logAt(w, /vtc1 write V00002 failed/)).toBeGreaterThan(logAt(w, /VTS A stopping/));
    expect(logAt(w, /ack write V00002/)).toBe(-1);
    expect(w.counters.failedWrites).toBe(1);
    expect(statuses(w)[0]).toBe('offline');
  }
  // unreachable VTS: every mode but forced fails; forced goes ahead and is marked forced.
  {
    const w = mk();
    w.sched.at(1, () => w.cutVtsLink('vtc0', 'A'));
    const n = cmd(w, 20, { command: 'vts-out', vts: 'A', mode: 'normal' }, 0);
    const f = cmd(w, 800, { command: 'vts-out', vts: 'A', mode: 'forced' }, 0);
    w.run(1500);
    const rn = w.results.get(n.id);
    expect(rn?.ok === false && rn.error.code).toBe('EPTP_VTS_UNREACHABLE');
    const rf = w.results.get(f.id);
    expect(rf?.ok && rf.key.mode).toBe('forced');
  }
}

/** Both out and both back, by commands and by a power loss of both: keys record it, no ballot is cast. */
function claim7(): void {
  {
    const w = mk();
    writes(w, 0, 200);
    const down = cmd(w, 300, { command: 'ptp-shutdown', mode: 'normal' }, 0);
    const up = cmd(w, 900, { command: 'ptp-start' }, 3);
    w.run(1600);
    expect(statuses(w)).toEqual(['online-both', 'online-both', 'online-both', 'online-both']);
    const k1 = keyOf(w.results.get(down.id));
    const k2 = keyOf(w.results.get(up.id));
    expect([k1.seq, k1.command, k1.current, k1.state.kind, k1.status]).toEqual([1, 'ptp-shutdown', ['A', 'B'], 'offline', { A: 'out', B: 'out' }]);
    expect([k2.seq, k2.command, k2.current, k2.state.kind]).toEqual([2, 'ptp-start', ['A', 'B'], 'online-both']);
    expect([w.vts.A.lastKeySeq, w.vts.B.lastKeySeq]).toEqual([2, 2]);
    expect(w.counters.acked).toBeGreaterThan(0);
    expect(w.ballotsCast()).toBe(0);
  }
  // A power loss of both, long enough for every VTC to notice: the loss is recorded (a forced
  // shutdown with reason failure, pending copies unknown, so current is empty) before either
  // serves again; both back, a return key places them on-line together, without a vote.
  {
    const v = mk();
    writes(v, 0, 200);
    v.sched.at(300, () => {
      v.crashVts('A');
      v.crashVts('B');
    });
    v.sched.at(1300, () => {
      v.powerOnVts('A');
      v.powerOnVts('B');
    });
    v.run(1000);
    expect(statuses(v)).toEqual(['offline', 'offline', 'offline', 'offline']);
    const lost = newest(v);
    expect([lost.seq, lost.command, lost.reason, lost.mode, lost.current, lost.status]).toEqual([1, 'ptp-shutdown', 'failure', 'forced', [], { A: 'out', B: 'out' }]);
    expect(isStrong(lost)).toBe(true);
    v.run(2500);
    expect(statuses(v)).toEqual(['online-both', 'online-both', 'online-both', 'online-both']);
    const back = newest(v);
    expect([back.seq, back.command, back.subjects, back.reason, back.current, back.state.kind]).toEqual([2, 'vts-in', ['A', 'B'], 'return', ['A', 'B'], 'online-both']);
    expect(v.counters.acked).toBeGreaterThan(0);
    expect(v.ballotsCast()).toBe(0);
  }
  // The same loss with only A powered back: A alone is not elected (current is empty), the
  // system stays off-line until B returns too.
  {
    const v = mk({ trace: true });
    writes(v, 0, 200);
    v.sched.at(300, () => {
      v.crashVts('A');
      v.crashVts('B');
    });
    v.sched.at(1300, () => v.powerOnVts('A'));
    v.sched.at(2600, () => v.powerOnVts('B'));
    v.run(2500);
    expect(statuses(v)).toEqual(['offline', 'offline', 'offline', 'offline']);
    const cs = casts(v);
    expect(cs.length).toBeGreaterThan(0);
    expect(cs.every((c) => c.choice === 'no' && c.why === 'A is not in current {} of key 1')).toBe(true);
    v.run(4000);
    expect(statuses(v)).toEqual(['online-both', 'online-both', 'online-both', 'online-both']);
    expect(newest(v).reason).toBe('return');
  }
}

function claim8(): void {
  const w = mk();
  writes(w, 0, 200);
  cmd(w, 300, { command: 'ptp-shutdown', mode: 'normal' }, 0);
  cmd(w, 900, { command: 'vts-in', vts: 'A' }, 1);
  w.run(2500);
  expect(statuses(w)).toEqual(['online-single(A)', 'online-single(A)', 'online-single(A)', 'online-single(A)']);
  expect(newest(w).election?.vts).toBe('A');
}

function claim9(): void {
  // Shut down in immediate mode with copies pending: neither VTS alone holds everything.
  const w = mk({ copier: false, trace: true });
  w.sched.at(60, () => w.hostWrite({ vol: 'V00003', primary: 'B', copyMode: 'deferred', node: w.vtcs[0] }));
  cmd(w, 100, { command: 'ptp-shutdown', mode: 'immediate' }, 0);
  cmd(w, 700, { command: 'vts-in', vts: 'A' }, 1);
  w.run(2500);
  expect(statuses(w)).toEqual(['offline', 'offline', 'offline', 'offline']);
  // Cause: the shutdown left V00003 pending, so key 1's current is empty and every VTC votes NO.
  const shutdown = w.vtcs[0]!.engine.committedKeys().find((k) => k.seq === 1);
  expect([shutdown?.command, shutdown?.current, shutdown?.copiesPending]).toEqual(['ptp-shutdown', [], ['V00003']]);
  const cs = casts(w);
  expect(noBy(cs, '1:A:0')).toEqual(['vtc0', 'vtc1', 'vtc2', 'vtc3']);
  expect(cs.filter((c) => c.election === '1:A:0').every((c) => c.keySeq === 1 && /^A (is not in current \{\} of key 1|reports 1 volume\(s\) behind the other VTS)$/.test(c.why))).toBe(true);
  expect(cs.filter((c) => c.choice === 'yes')).toEqual([]);
}

/**
 * A out, B takes writes, B out (keys `base + 1`, `base + 2`); then `cut` VTCs (the last ones)
 * lose their link to B, and the operator's vts-in B (via vtc0, which sees B) holds the
 * election in its phase 1. A VTC that cannot see B votes NO, so exactly `4 - cut` elect B.
 * With T != 2 the threshold is set first (key 1). Links heal at `healAt`.
 */
function voteStory(T: number, cut: number, healAt: number): { w: World; vtsIn: { id: string }; base: number } {
  const w = mk({ trace: true });
  const base = T === 2 ? 0 : 1;
  if (T !== 2) cmd(w, 10, { command: 'threshold-set', threshold: T }, 0);
  cmd(w, 100, { command: 'vts-out', vts: 'A', mode: 'normal' }, 0);
  writes(w, 300, 900);
  cmd(w, 1000, { command: 'vts-out', vts: 'B', mode: 'normal' }, 1);
  w.sched.at(1200, () => {
    for (let i = 0; i < cut; i++) w.cutVtsLink(`vtc${3 - i}`, 'B');
  });
  const vtsIn = cmd(w, 1500, { command: 'vts-in', vts: 'B' }, 0);
  w.sched.at(healAt, () => w.healVtsLinks());
  return { w, vtsIn, base };
}

function claim18(): void {
  // The threshold is retrieved from its own key: with T = 3 of 4, three YES do not elect B
  // (with the default T = 2 they would).
  const { w, vtsIn, base } = voteStory(3, 1, 4000);
  w.run(3500);
  expect(newest(w).threshold).toBe(3);
  const k = keyOf(w.results.get(vtsIn.id));
  expect([k.threshold, k.state.kind, k.election]).toEqual([3, 'offline', null]);
  expect(yesBy(casts(w), `${base + 2}:B:0`)).toEqual(['vtc0', 'vtc1', 'vtc2']);
  expect(statuses(w)).toEqual(['offline', 'offline', 'offline', 'offline']);
}

describe('claims 1–25 on the protocol core', () => {
  it('claim 1: A out, B out, B back alone, more than T VTCs elect it: on-line with only B', claim1);
  it('claim 2: A out, B takes writes, B out, A (stale) back alone: not more than T elect it, the system stays off-line', claim2);
  it('claim 3: a command takes the first VTS out of operation and makes a shutdown key', claim3);
  it('claim 4: the command goes to one VTC, which provides it to the remaining VTCs', claim4);
  it('claim 5: the command carries its execution mode into the key', claim5);
  it('claim 6: normal, expedite, immediate and forced modes behave per the mode table', claim6);
  it('claim 7: both out, both returned: on-line with both, without a vote', claim7);
  it('claim 8: both out, only one returns: the VTCs elect it and the system goes on-line with it alone', claim8);
  it('claim 9: both out with copies pending, one returns: not elected, the system stays off-line', claim9);
  it('claim 10: program code — shutdown key, two outs, second back alone, elected: on-line single', claim1);
  it('claim 11: program code — not more than T elect: off-line', claim2);
  it('claim 12: program code — providing the command to the remaining VTCs', claim4);
  it('claim 13: program code — the command comprises an execution mode', claim5);
  it('claim 14: program code — normal, expedite, immediate, forced', claim6);
  it('claim 15: program code — both out, both returned at the second time: on-line with both', claim7);
  it('claim 16: program code — one operational, the other out: elected, on-line alone', claim8);
  it('claim 17: program code — one operational, not elected: off-line', claim9);
  it('claim 18: program product — the threshold is retrieved from its stored key before the election', claim18);
  it('claim 19: program product — second VTS back alone, not more than T elect: off-line', claim2);
  it('claim 20: program product — providing the first command to the remaining VTCs', claim4);
  it('claim 21: program product — the first command comprises an execution mode', claim5);
  it('claim 22: program product — the mode is one of normal, expedite, immediate, forced', claim6);
  it('claim 23: program product — both out, both returned: on-line with both', claim7);
  it('claim 24: program product — one returned alone and elected: on-line with it alone', claim8);
  it('claim 25: program product — one returned alone, not elected: off-line', claim9);
});

describe('stories around the vote', () => {
  // Each row: T, VTCs cut off from B, YES expected. Every VTC is up and acknowledges the
  // vts-in key (more than T acks), so only the ballots decide.
  it.each([
    [2, 3, 1],
    [2, 2, 2],
    [2, 1, 3],
    [3, 3, 1],
    [3, 2, 2],
    [3, 1, 3],
    [3, 0, 4],
  ] as const)('T = %i, %i VTC(s) cannot see B: %i YES; on-line exactly when YES > T', (T, cut, yes) => {
    const elected = yes > T;
    const { w, vtsIn, base } = voteStory(T, cut, elected ? 1600 : 3500);
    w.run(3400);
    const k = keyOf(w.results.get(vtsIn.id));
    const id = `${base + 2}:B:0`;
    const cs = casts(w);
    const all = ['vtc0', 'vtc1', 'vtc2', 'vtc3'];
    // The decision's cause: who voted what, from which key, against which threshold.
    expect(yesBy(cs, id)).toEqual(all.slice(0, 4 - cut));
    expect(noBy(cs, id)).toEqual(all.slice(4 - cut));
    for (const c of cs.filter((x) => x.election === id)) expect(c.keySeq).toBe(base + 2);
    for (const c of cs.filter((x) => x.election === id && x.choice === 'no')) expect(c.why).toMatch(/^B has not answered here since key|^B is not in operation as seen here/);
    expect([k.seq, k.threshold, k.acks.length]).toEqual([base + 3, T, 4]);
    if (elected) {
      expect(k.state).toEqual({ kind: 'online-single', vts: 'B' });
      expect(k.election?.yes.length).toBeGreaterThan(T);
      expect(all.slice(0, 4 - cut)).toEqual(expect.arrayContaining([...k.election!.yes]));
      expect(statuses(w)).toEqual(['online-single(B)', 'online-single(B)', 'online-single(B)', 'online-single(B)']);
      return;
    }
    // Not elected: B is started without recording the key, and every later election on B
    // (about that key, or a failure key a VTC that cannot see B makes) gets no more YES than T.
    expect([k.state.kind, k.election]).toEqual(['offline', null]);
    expect(w.vts.B.lastKeySeq).toBe(base + 2);
    expect(statuses(w)).toEqual(['offline', 'offline', 'offline', 'offline']);
    const onB = (c: Cast): boolean => {
      const [seq, vts] = c.election.split(':');
      return vts === 'B' && Number(seq) >= base + 2;
    };
    const rounds = new Set(cs.filter(onB).map((c) => c.election));
    expect(rounds.size).toBeGreaterThan(1);
    for (const r of rounds) expect(yesBy(cs, r).length).toBeLessThanOrEqual(T);
    // Once the cut VTCs see B again, the same rule elects it: the vote was the cause.
    w.run(6000);
    expect(statuses(w)).toEqual(['online-single(B)', 'online-single(B)', 'online-single(B)', 'online-single(B)']);
  });

  it('a VTC that missed a key cannot serve with it, and the keys agree once it reconnects', () => {
    const w = outOutBack('B', {}, (x) => {
      x.sched.at(950, () => x.net.partition([['vtc3'], ['vtc0', 'vtc1', 'vtc2']]));
      x.sched.at(2200, () => x.net.heal());
    });
    w.run(2100);
    // vtc3 still holds the key from before B went out; B fences its writes by key seq.
    expect(newest(w, 3).seq).toBeLessThan(newest(w, 0).seq);
    const before = w.counters.acked;
    w.hostWrite({ node: w.vtcs[3]!, vol: 'V00001', duration: 5 });
    w.run(2150);
    expect(w.counters.acked).toBe(before);
    w.run(4500);
    const keys = w.vtcs.map((v) => v.engine.committedKeys().map((k) => `${k.seq}:${k.mac}`).join());
    expect(new Set(keys).size).toBe(1);
    expect(statuses(w)).toEqual(['online-single(B)', 'online-single(B)', 'online-single(B)', 'online-single(B)']);
  });

  it('a restored old image of the current VTS gets NO (it reports an older last key seq)', () => {
    const w = outOutBack('B', { trace: true }, (x) => {
      x.sched.at(1400, () => {
        x.vts.B.lastKeySeq = 0;
      });
    });
    w.run(2500);
    expect(statuses(w)).toEqual(['offline', 'offline', 'offline', 'offline']);
    expect(w.log.some((l) => /ballot .* no .*reports last key seq 0/.test(l))).toBe(true);
    // The operator's vts-in put B in operation without recording its key: B still reports the
    // seq it came back with, so every later election judges the same evidence (and says NO).
    expect(w.vts.B.inOperation).toBe(true);
    expect(w.vts.B.lastKeySeq).toBe(0);
    expect(w.log.filter((l) => /ballot 3:B:\d+ no .*reports last key seq 0/.test(l)).length).toBeGreaterThan(0);
  });

  it('a commit that says more than T elected a VTS must carry their signed YES ballots of that election', () => {
    const w = mk();
    const e = w.vtcs[0]!.engine;
    const signer = w.vtcs[1]!.engine.signer;
    const election = { seq: 0, vts: 'B' as const, round: 0 };
    const key = signer.sign<ShutdownKey>({
      ...genesisKey('ptp1', 4),
      seq: 1,
      issuedAt: 1,
      originVtc: 'vtc1',
      command: 'vts-in',
      subjects: ['B'],
      status: { A: 'out', B: 'in' },
      election: { ...election, yes: [] },
    });
    const ballot = (voter: string, choice: 'yes' | 'no', round = 0): SignedBallot =>
      w.vtcs[w.names.indexOf(voter)]!.engine.signer.sign<SignedBallot>({ ptpId: 'ptp1', election: { ...election, round }, voter, keySeq: 0, choice, why: 'test' });
    const commit = (ballots: SignedBallot[], yes: string[]): CommitRecord =>
      signer.sign<CommitRecord>({ ptpId: 'ptp1', seq: 1, keyMac: key.mac, coordinator: 'vtc1', outcome: 'done', error: null, acks: ['vtc1', 'vtc2', 'vtc3'], copiesPending: [], current: ['B'], state: { kind: 'online-single', vts: 'B' }, recorded: ['B'], attempted: ['B'], ballots, election: { ...election, yes } });
    const refused = (): number => e.stats.rejectedReasons['commit-election-unbacked'] ?? 0;
    const offer = (c: CommitRecord): void => e.receive('vtc1', { t: 'commit', key, commit: c }, 10);
    // Names three voters, carries one ballot.
    offer(commit([ballot('vtc1', 'yes')], ['vtc1', 'vtc2', 'vtc3']));
    expect(refused()).toBe(1);
    // Three ballots, but one is NO and one is of another round.
    offer(commit([ballot('vtc1', 'yes'), ballot('vtc2', 'no'), ballot('vtc3', 'yes', 1)], ['vtc1', 'vtc2', 'vtc3']));
    expect(refused()).toBe(2);
    // Not more than T (2 of 4 with T = 2).
    offer(commit([ballot('vtc1', 'yes'), ballot('vtc2', 'yes')], ['vtc1', 'vtc2']));
    expect(refused()).toBe(3);
    // A ballot with a forged MAC fails the commit's own check.
    const forged = { ...ballot('vtc3', 'yes'), mac: 'ab'.repeat(32) };
    offer(commit([ballot('vtc1', 'yes'), ballot('vtc2', 'yes'), forged], ['vtc1', 'vtc2', 'vtc3']));
    expect(e.stats.rejectedReasons['EPTP_BAD_MAC'] ?? e.stats.rejected).toBeGreaterThan(0);
    expect(refused()).toBe(3);
    // More than T signed YES ballots of that election: taken.
    offer(commit([ballot('vtc1', 'yes'), ballot('vtc2', 'yes'), ballot('vtc3', 'yes')], ['vtc1', 'vtc2', 'vtc3']));
    expect(refused()).toBe(3);
    // (The world is not run on: its checker would rightly refuse ballots no VTC cast.)
    const appended = e.takeEffects().filter((x) => x.kind === 'append' && x.record.type === 'commit');
    expect(appended).toHaveLength(1);
  });

  it('the audited forced override places the stale VTS on-line with a key of its own', () => {
    const w = outOutBack('A');
    const o = cmd(w, 3000, { command: 'override', vts: 'A' }, 1);
    w.sched.at(2900, () => {
      // The operator accepts losing B's writes; the simulation's own safety check would flag exactly that.
      w.check = () => undefined;
    });
    w.run(3500);
    const r = w.results.get(o.id);
    expect(r?.ok && [r.key.reason, r.key.mode, r.key.state]).toEqual(['override', 'forced', { kind: 'online-single', vts: 'A' }]);
  });

  it('clear errors: invalid threshold, unknown VTS, a conflicting command in flight, a VTS already out', () => {
    const w = mk();
    const bad = cmd(w, 5, { command: 'threshold-set', threshold: 4 });
    const neg = cmd(w, 6, { command: 'threshold-set', threshold: -1 });
    const unk = cmd(w, 7, { command: 'vts-out', vts: 'C', mode: 'normal' });
    const first = cmd(w, 10, { command: 'vts-out', vts: 'A', mode: 'normal' }, 0);
    const second = cmd(w, 10, { command: 'vts-out', vts: 'B', mode: 'normal' }, 0);
    const again = cmd(w, 600, { command: 'vts-out', vts: 'A', mode: 'normal' }, 1);
    w.run(1000);
    const code = (id: string): string | undefined => {
      const r = w.results.get(id);
      return r?.ok === false ? r.error.code : undefined;
    };
    expect([code(bad.id), code(neg.id), code(unk.id), code(second.id), code(again.id)]).toEqual([
      'EPTP_THRESHOLD',
      'EPTP_THRESHOLD',
      'EPTP_UNKNOWN_VTS',
      'EPTP_CONFLICT',
      'EPTP_INVALID_COMMAND',
    ]);
    expect(w.results.get(first.id)?.ok).toBe(true);
    const r = w.results.get(bad.id);
    expect(r?.ok === false && r.error.message).toMatch(/0 <= T < 4/);
  });
});

describe('the VTC agreement threshold: safe bounds, audited overrides, configurations that disagree', () => {
  /**
   * n = 2 split into halves, each half cut from the other VTS: with T = 0 each VTC alone
   * commits its own failure key 2 and serves its own VTS (the split brain found at T = 0).
   */
  function splitBrain(w: World): void {
    w.sched.at(300, () => {
      w.net.partition([['vtc0'], ['vtc1']]);
      w.cutVtsLink('vtc0', 'B');
      w.cutVtsLink('vtc1', 'A');
    });
    for (let t = 600; t < 1500; t += 20) {
      w.sched.at(t, () => w.hostWrite({ node: w.vtcs[0] }));
      w.sched.at(t + 5, () => w.hostWrite({ node: w.vtcs[1] }));
    }
  }
  const keysAt = (w: World, seq: number): string[] => [...new Set(w.vtcs.flatMap((n) => n.engine.committedKeys().filter((k) => k.seq === seq && isStrong(k)).map((k) => k.mac)))];

  it('n = 2, T = 0 is refused with the minimum named, so a partition cannot commit two keys 2', () => {
    const w = mk({ n: 2 });
    const set = cmd(w, 10, { command: 'threshold-set', threshold: 0 }, 0);
    splitBrain(w);
    w.run(2000);
    const r = w.results.get(set.id);
    expect(r?.ok === false && r.error.code).toBe('EPTP_THRESHOLD_UNSAFE');
    expect(r?.ok === false && r.error.message).toMatch(/T = 0 is below the minimum 1 for n = 2 VTCs/);
    expect(newest(w).threshold).toBe(1);
    // Each half alone makes only weak forced keys: off-line, and never two strong keys at one seq.
    expect(statuses(w)).toEqual(['offline', 'offline']);
    for (let seq = 1; seq <= 3; seq++) expect(keysAt(w, seq).length).toBeLessThanOrEqual(1);
  });

  it('T below floor(n/2) goes through only as an audited override, and then costs exactly the split brain it allows', () => {
    const w = mk({ n: 2, trace: true });
    const bare = cmd(w, 5, { command: 'threshold-set', threshold: 0, belowHalf: true }, 0);
    const set = cmd(w, 10, { command: 'threshold-set', threshold: 0, belowHalf: true, note: 'lab rig, one VTC' }, 0);
    splitBrain(w);
    let violation: unknown;
    try {
      w.run(2000);
    } catch (e) {
      violation = e;
    }
    const r = w.results.get(bare.id);
    expect(r?.ok === false && [r.error.code, r.error.message]).toEqual(['EPTP_INVALID_COMMAND', expect.stringMatching(/needs the operator's reason/)]);
    const k = keyOf(w.results.get(set.id));
    expect([k.command, k.threshold, k.reason, k.note]).toEqual(['threshold-set', 0, 'override', 'lab rig, one VTC']);
    // The cost, as the override's reason accepts it: each VTC alone commits a different key 2.
    expect(keysAt(w, 2)).toHaveLength(2);
    expect(violation === undefined || (violation as Error).name === 'InvariantViolation').toBe(true);
  });

  it('every VTC refuses a key whose threshold does not fit its configuration', () => {
    const w = mk();
    const e = w.vtcs[0]!.engine;
    const signer = w.vtcs[1]!.engine.signer;
    const propose = (over: Partial<ShutdownKey>): string | undefined => {
      const key = signer.sign<ShutdownKey>({ ...genesisKey('ptp1', 4), seq: 1, issuedAt: 1, originVtc: 'vtc1', ...over });
      e.receive('vtc1', { t: 'propose', key }, 10);
      const nack = e.takeEffects().find((x) => x.kind === 'send' && x.msg.t === 'nack');
      return nack?.kind === 'send' && nack.msg.t === 'nack' ? nack.msg.reason : undefined;
    };
    // An unsafe threshold without the override (a coordinator that skipped the check).
    expect(propose({ command: 'threshold-set', subjects: [], threshold: 1 })).toMatch(/sets threshold 1 below 2 \(floor\(n\/2\), n = 4\) without the audited override/);
    // A key built by a VTC configured with three VTCs (its genesis threshold is 1, here 2).
    expect(propose({ command: 'vts-out', subjects: ['A'], status: { A: 'out', B: 'in' }, current: ['B'], threshold: 1 })).toMatch(/carries threshold 1, but key 0 it follows has 2 here/);
    expect(propose({ command: 'threshold-set', subjects: [], threshold: 4, reason: 'override' })).toMatch(/carries threshold 4, but 4 VTCs are configured here/);
    expect(e.stats.rejectedReasons['threshold-mismatch']).toBe(3);
    expect(e.configWarnings()).toHaveLength(3);
    // The audited override itself is acknowledged.
    expect(propose({ command: 'threshold-set', subjects: [], threshold: 1, reason: 'override', note: 'test' })).toBeUndefined();
  });

  it('a peer configured with another VTC list is reported and takes no part until its list matches', () => {
    const w = mk();
    const e = w.vtcs[0]!.engine;
    const other = configDigest('ptp1', ['vtc0', 'vtc1', 'vtc2']);
    e.receive('vtc1', { t: 'hello', hi: 0, top: 0, topMac: '', cfg: other }, 10);
    expect(e.configWarnings().at(-1)).toMatch(/^vtc1: its configuration digest [0-9a-f]{16} differs from [0-9a-f]{16} here/);
    e.receive('vtc1', { t: 'sync-req', after: 0 }, 11);
    expect(e.stats.rejectedReasons['config-mismatch']).toBe(2);
    e.receive('vtc1', { t: 'hello', hi: 0, top: 0, topMac: '', cfg: configDigest('ptp1', w.names) }, 12);
    const before = e.stats.rejected;
    e.receive('vtc1', { t: 'sync-req', after: 0 }, 13);
    expect(e.stats.rejected).toBe(before);
  });

  it('T = n - 1 with a VTC lost and a VTS failure: off-line for good, until the audited forced threshold-set lowers T', () => {
    const w = mk({ trace: true });
    writes(w, 60, 5000);
    cmd(w, 10, { command: 'threshold-set', threshold: 3 }, 0);
    w.sched.at(200, () => w.crashVtc(w.vtcs[3]!));
    w.sched.at(300, () => w.crashVts('A'));
    const override = cmd(w, 1500, { command: 'override', vts: 'B' }, 1);
    const plain = cmd(w, 2000, { command: 'threshold-set', threshold: 2 }, 1);
    const forced = cmd(w, 2500, { command: 'threshold-set', threshold: 2, mode: 'forced', note: 'vtc3 destroyed; ticket 42' }, 0);
    w.run(1400);
    // The failure key is forced and only 3 VTCs hold it: not more than T = 3, so it is weak.
    const failure = newest(w);
    expect([failure.command, failure.reason, failure.mode, failure.acks.length, failure.threshold, isStrong(failure)]).toEqual(['vts-out', 'failure', 'forced', 3, 3, false]);
    expect(statuses(w)).toEqual(['offline', 'offline', 'offline']);
    w.run(2400);
    // The override is forced and weak too; a plain threshold-set cannot reach more than T.
    const ov = keyOf(w.results.get(override.id));
    expect([ov.reason, ov.acks.length, isStrong(ov)]).toEqual(['override', 3, false]);
    const p = w.results.get(plain.id);
    expect(p?.ok === false && p.error.code).toBe('EPTP_NO_QUORUM');
    expect(statuses(w)).toEqual(['offline', 'offline', 'offline']);
    const acked = w.counters.acked;
    w.run(3500);
    // The recovery: forced, audited, and strong under the new T (3 acks > 2).
    const k = keyOf(w.results.get(forced.id));
    expect([k.command, k.mode, k.reason, k.note, k.threshold, k.acks.length, isStrong(k)]).toEqual(['threshold-set', 'forced', 'override', 'vtc3 destroyed; ticket 42', 2, 3, true]);
    expect(statuses(w)).toEqual(['online-single(B)', 'online-single(B)', 'online-single(B)']);
    expect(w.counters.acked).toBeGreaterThan(acked);
    // The lost VTC returns, learns the keys, and T goes back up by a plain command.
    w.sched.at(3600, () => w.restartVtc(w.vtcs[3]!));
    const raise = cmd(w, 4600, { command: 'threshold-set', threshold: 3 }, 2);
    w.run(5200);
    expect(keyOf(w.results.get(raise.id)).threshold).toBe(3);
    expect(statuses(w)).toEqual(['online-single(B)', 'online-single(B)', 'online-single(B)', 'online-single(B)']);
  });
});
