/**
 * One test per claim (1–25), each a small deterministic story run on the protocol core
 * under the simulated clock, with the invariants checked on every step. Claims 10–25 claim
 * the same method as program code; their tests run the same engine through the same
 * stories, named after the claim's own wording.
 */
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/ptp/types.js';
import { genesisKey } from '../../src/ptp/rules.js';
import type { CommitRecord, ShutdownKey, SignedBallot } from '../../src/ptp/types.js';
import { SIM_TIMING, World } from './world.js';
import type { WorldOptions } from './world.js';

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
  const w = outOutBack('B');
  w.run(3500);
  expect(statuses(w)).toEqual(['online-single(B)', 'online-single(B)', 'online-single(B)', 'online-single(B)']);
  // The operator's vts-in held the election in its phase 1: the key names it and who elected B.
  const k = newest(w);
  expect(k.command).toBe('vts-in');
  expect(k.state).toEqual({ kind: 'online-single', vts: 'B' });
  expect(k.election?.yes.length).toBeGreaterThan(k.threshold);
  expect(w.counters.acked).toBeGreaterThan(0);
}

function claim2(): void {
  const w = outOutBack('A');
  w.run(3500);
  expect(statuses(w)).toEqual(['offline', 'offline', 'offline', 'offline']);
  expect(newest(w).election).toBeNull();
  expect(w.ballotsCast()).toBeGreaterThan(0);
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

/** Every mode per the table: mounts, copies, unreachable VTS. (Host I/O starts after the VTCs' first hellos, about 50 ms in.) */
function claim6(): void {
  // normal: the active mount completes, pending copies are drained, B alone is current.
  {
    const w = mk({ copier: false });
    for (const v of w.volumes) w.sched.at(60, () => w.hostWrite({ vol: v, primary: 'A', copyMode: 'deferred', node: w.vtcs[0] }));
    w.sched.at(95, () => w.hostWrite({ vol: 'V00000', primary: 'A', copyMode: 'deferred', duration: 150, node: w.vtcs[1] }));
    const c = cmd(w, 105, { command: 'vts-out', vts: 'A', mode: 'normal' });
    w.run(800);
    const r = w.results.get(c.id);
    expect(r?.ok && r.key.copiesPending).toEqual([]);
    expect(r?.ok && r.key.current).toEqual(['B']);
    expect(w.counters.failedWrites).toBe(0);
  }
  // expedite: copies drained only until the bound; the rest are counted and nobody alone is current.
  {
    const w = mk({ copier: false, timing: { ...SIM_TIMING, expediteTimeout: 4 } });
    for (const v of w.volumes) w.sched.at(60, () => w.hostWrite({ vol: v, primary: 'A', copyMode: 'deferred', node: w.vtcs[0] }));
    const c = cmd(w, 105, { command: 'vts-out', vts: 'A', mode: 'expedite' });
    w.run(800);
    const r = w.results.get(c.id);
    expect(r?.ok && r.key.copiesPending?.length).toBeGreaterThan(0);
    expect(r?.ok && r.key.copiesPending!.length).toBeLessThan(w.volumes.length);
    expect(r?.ok && r.key.current).toEqual([]);
  }
  // immediate: the active mount is aborted (host error), copies left queued and counted.
  {
    const w = mk({ copier: false });
    w.sched.at(60, () => w.hostWrite({ vol: 'V00001', primary: 'A', copyMode: 'deferred', node: w.vtcs[0] }));
    w.sched.at(95, () => w.hostWrite({ vol: 'V00002', primary: 'A', copyMode: 'deferred', duration: 400, node: w.vtcs[1] }));
    const c = cmd(w, 115, { command: 'vts-out', vts: 'A', mode: 'immediate' });
    w.run(800);
    const r = w.results.get(c.id);
    expect(r?.ok && r.key.copiesPending).toEqual(['V00001']);
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

function claim7(): void {
  const w = mk();
  writes(w, 0, 200);
  cmd(w, 300, { command: 'ptp-shutdown', mode: 'normal' }, 0);
  cmd(w, 900, { command: 'ptp-start' }, 3);
  w.run(1600);
  expect(statuses(w)).toEqual(['online-both', 'online-both', 'online-both', 'online-both']);
  expect(w.ballotsCast()).toBe(0);
  // Both back by themselves after a power loss of both: on-line with both, again without a vote.
  const v = mk();
  v.sched.at(10, () => {
    v.crashVts('A');
    v.crashVts('B');
  });
  v.sched.at(100, () => {
    v.powerOnVts('A');
    v.powerOnVts('B');
  });
  v.run(1500);
  expect(statuses(v).every((s) => s === 'online-both' || s.startsWith('resync'))).toBe(true);
  expect(v.ballotsCast()).toBe(0);
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
  const w = mk({ copier: false });
  w.sched.at(60, () => w.hostWrite({ vol: 'V00003', primary: 'B', copyMode: 'deferred', node: w.vtcs[0] }));
  cmd(w, 100, { command: 'ptp-shutdown', mode: 'immediate' }, 0);
  cmd(w, 700, { command: 'vts-in', vts: 'A' }, 1);
  w.run(2500);
  expect(statuses(w)).toEqual(['offline', 'offline', 'offline', 'offline']);
  expect(w.ballotsCast()).toBeGreaterThan(0);
}

/** Exactly at the threshold: yes == T stays off-line; yes == T + 1 goes on-line (crashed VTCs are not electing). */
function thresholdEdge(crashed: number): World {
  return outOutBack('B', {}, (w) => {
    for (let i = 0; i < crashed; i++) w.sched.at(1400, () => w.crashVtc(w.vtcs[3 - i]!));
  });
}

function claim18(): void {
  // The threshold is retrieved from its own key: T = 3 of 4 needs all four YES.
  const w = outOutBack('B', {}, (x) => {
    x.sched.at(1200, () => x.command({ command: 'threshold-set', threshold: 3 }, x.vtcs[0]));
    x.sched.at(1400, () => x.crashVtc(x.vtcs[3]!));
  });
  w.run(3500);
  expect(newest(w).threshold).toBe(3);
  expect(statuses(w)).toEqual(['offline', 'offline', 'offline']);
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
  it('yes == T stays off-line; yes == T + 1 goes on-line (n = 4, T = 2)', () => {
    const atT = thresholdEdge(2);
    atT.run(3500);
    expect(statuses(atT)).toEqual(['offline', 'offline']);
    const above = thresholdEdge(1);
    above.run(3500);
    expect(statuses(above)).toEqual(['online-single(B)', 'online-single(B)', 'online-single(B)']);
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
