/**
 * Targeted stories for safety rules that the claim stories and random schedules do not reach
 * on their own (docs/mutations.md): each passes with the rule and ends in an invariant
 * violation (or a wrong decision) without it. They run the same World and engine as the
 * claim tests.
 */
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/ptp/types.js';
import type { VtsName } from '../../src/ptp/types.js';
import { World } from './world.js';

const G1 = ['vtc0', 'vtc1'];
const G2 = ['vtc2', 'vtc3'];

/** Ballots a VTC logged (worlds made with `trace: true`). */
const casts = (w: World): { voter: string; election: string; choice: string; keySeq: number; why: string }[] =>
  w.log.flatMap((l) => {
    const m = /^[\d.]+ (vtc\d+) ballot (\S+) (yes|no) keySeq=(\d+) \((.*)\)$/.exec(l);
    return m === null ? [] : [{ voter: m[1]!, election: m[2]!, choice: m[3]!, keySeq: Number(m[4]), why: m[5]! }];
  });

/** Keeps each group of VTCs cut from one VTS (re-applied after any heal of the VTS links). */
function cutVts(w: World, cuts: readonly (readonly [string, VtsName])[]): void {
  w.healVtsLinks();
  for (const [v, x] of cuts) w.cutVtsLink(v, x);
}

describe('safety stories', () => {
  /**
   * The "newer keySeq on a ballot" rule. With T >= floor(n/2) it is redundant: the VTCs that
   * missed a key are at most n - T - 1 <= T and cannot elect alone. Under the audited
   * below-half override (n = 4, T = 1) two VTCs can: vtc0 and vtc1, cut from vtc2, vtc3 and
   * from B, place A on-line by the audited override (key 3) and take writes on A; they then
   * lose A, make a failure key (4) and, A back, hold an election about key 4. Their ballots
   * (keySeq 4) reach vtc2 and vtc3 (a ballot gets through where the keys' sync does not),
   * which still hold key 2 (both out, both current). The operator's vts-in B at vtc2 then
   * holds its election on B: B is in current of key 2 and reports its last key seq 2, so
   * only the ballots' newer keySeq stands between vtc2, vtc3 and electing a VTS that lacks
   * every write acknowledged on A since key 3.
   */
  it('under the below-half override, a VTC that has seen a ballot with a newer keySeq votes NO (else two VTCs elect a stale VTS)', () => {
    const w = new World({ seed: 5, n: 4, trace: true, copier: false });
    const vtc = (name: string) => w.vtcs[w.names.indexOf(name)]!;
    // Every ballot frame from G1 to G2 is held back by the partition and delivered anyway,
    // a few ms later; nothing else crosses.
    const prev = w.net.onWire;
    let partitioned = false;
    let delivered = 0;
    w.net.onWire = (from, to, frame) => {
      prev?.(from, to, frame);
      if (!partitioned || !G1.includes(from) || !G2.includes(to)) return;
      if (!Buffer.from(frame).toString('latin1').includes('{"t":"ballot"')) return;
      delivered++;
      w.net.inject(to, frame, 3);
    };
    w.sched.at(10, () => w.command({ command: 'threshold-set', threshold: 1, belowHalf: true, note: 'lab rig: two VTCs may decide' }, vtc('vtc0')));
    // Written on both (immediate copies) while on-line with both: B holds generation 1 of each.
    for (const [i, vol] of w.volumes.entries()) w.sched.at(100 + i * 10, () => w.hostWrite({ node: vtc('vtc1'), vol, copyMode: 'immediate', duration: 2 }));
    w.sched.at(300, () => w.command({ command: 'ptp-shutdown', mode: 'normal' }, vtc('vtc0')));
    w.sched.at(700, () => {
      partitioned = true;
      w.net.partition([G1, G2]);
      cutVts(w, [...G1.map((v) => [v, 'B'] as const), ...G2.map((v) => [v, 'A'] as const)]);
    });
    w.sched.at(800, () => w.command({ command: 'override', vts: 'A', note: 'B is down for service' }, vtc('vtc0')));
    for (let t = 1200; t < 1500; t += 40) w.sched.at(t, () => w.hostWrite({ node: vtc('vtc0'), vol: 'V00000', duration: 2 }));
    // G1 loses A (failure key 4), then sees it again: an election about key 4, ballots keySeq 4.
    w.sched.at(1600, () => cutVts(w, [...G1.flatMap((v) => [[v, 'B'] as const, [v, 'A'] as const]), ...G2.map((v) => [v, 'A'] as const)]));
    w.sched.at(2200, () => cutVts(w, [...G1.map((v) => [v, 'B'] as const), ...G2.map((v) => [v, 'A'] as const)]));
    w.sched.at(3000, () => w.command({ command: 'vts-in', vts: 'B' }, vtc('vtc2')));
    for (let t = 3400; t < 4000; t += 40) w.sched.at(t, () => w.hostWrite({ node: vtc('vtc2'), vol: 'V00000', duration: 2 }));
    w.run(4000);

    // The setting: the override key, the failure key and the election about it, all in G1.
    const g1 = vtc('vtc0').engine.committedKeys();
    expect(g1.map((k) => [k.seq, k.command, k.reason])).toEqual([
      [1, 'threshold-set', 'override'],
      [2, 'ptp-shutdown', 'command'],
      [3, 'vts-in', 'override'],
      [4, 'vts-out', 'failure'],
      [5, 'vts-in', 'election'],
    ]);
    expect(delivered).toBeGreaterThan(0);
    expect(w.counters.acked).toBeGreaterThan(w.volumes.length);
    expect(formatStatus(vtc('vtc0').engine.status())).toBe('online-single(A)');
    // vtc2 and vtc3 hold key 2, saw keySeq 4 on ballots, and so voted NO on B: the rule is the cause.
    for (const v of G2) expect(vtc(v).engine.newestKey().seq).toBeLessThanOrEqual(3);
    const onB = casts(w).filter((c) => G2.includes(c.voter) && c.election === '2:B:0');
    expect(onB.map((c) => [c.voter, c.choice, c.keySeq])).toEqual([
      ['vtc2', 'no', 2],
      ['vtc3', 'no', 2],
    ]);
    for (const c of onB) expect(c.why).toBe('a ballot carries key 4, newer than 2 here');
    expect(G2.map((v) => formatStatus(vtc(v).engine.status()))).toEqual(['offline', 'offline']);
  });

  /**
   * The election-seq rule: a VTC votes YES only in an election about its own newest key. vtc0
   * coordinates key 1 (A out, B current), takes writes on B, then key 2 (B out too); its
   * proposals and the acknowledgements reach vtc1..vtc3, its commits and syncs do not (lost on
   * the way). They hold keys 1 and 2 without their commits: their newest committed key is 0,
   * where A is current, and A reports last key seq 1, within the range they expect. When the
   * operator's vts-in A holds its election about key 2, only the rule makes them vote NO.
   * Without it three YES (more than T = 2) elect A, which lacks every write since key 1: the
   * coordinator's own check that A is current in its key still keeps A off-line, but A is
   * started with key 3 recorded, so it reports the newest seq as if it had been judged.
   */
  it('a VTC votes YES only in an election about its own newest key (else VTCs whose commits were lost elect a stale VTS)', () => {
    const w = new World({ seed: 8, n: 4, trace: true, copier: false });
    const v0 = w.vtcs[0]!;
    const others = ['vtc1', 'vtc2', 'vtc3'];
    // Between vtc0 and the others every frame is delivered, a few ms late, except vtc0's commits and syncs.
    const prev = w.net.onWire;
    for (const x of others) w.net.cut('vtc0', x);
    w.net.onWire = (from, to, frame) => {
      prev?.(from, to, frame);
      if (from === 'vtc0' && others.includes(to)) {
        const text = Buffer.from(frame).toString('latin1');
        if (!text.includes('{"t":"commit"') && !text.includes('{"t":"sync",')) w.net.inject(to, frame, 2);
      } else if (to === 'vtc0' && others.includes(from)) w.net.inject(to, frame, 2);
    };
    for (const [i, vol] of w.volumes.entries()) w.sched.at(60 + i * 10, () => w.hostWrite({ node: v0, vol, copyMode: 'immediate', duration: 2 }));
    w.sched.at(250, () => w.command({ command: 'vts-out', vts: 'A', mode: 'normal' }, v0));
    for (let t = 400; t < 520; t += 20) w.sched.at(t, () => w.hostWrite({ node: v0, vol: 'V00000', duration: 2 }));
    w.sched.at(550, () => w.command({ command: 'vts-out', vts: 'B', mode: 'normal' }, v0));
    const vtsIn = { id: '' };
    w.sched.at(700, () => (vtsIn.id = w.command({ command: 'vts-in', vts: 'A' }, v0)));
    w.run(1500);

    expect(w.counters.acked).toBe(w.volumes.length + 6);
    // vtc1..vtc3 hold keys 1 to 3 but committed none of them.
    for (const n of w.vtcs.slice(1)) expect([n.engine.newestKey().seq, n.engine.heldSeqs().maxHeld]).toEqual([0, 3]);
    const r = w.results.get(vtsIn.id);
    expect(r?.ok === true && [r.key.seq, r.key.state.kind, r.key.election]).toEqual([3, 'offline', null]);
    // Not elected: A was put in operation without recording key 3.
    expect(w.vts.A.lastKeySeq).toBe(1);
    // The cause: vtc0 voted NO from key 2 (A not current), the others NO for want of key 2.
    const onA = casts(w).filter((c) => c.election === '2:A:0');
    expect(onA.map((c) => [c.voter, c.choice, c.keySeq, c.why]).sort()).toEqual([
      ['vtc0', 'no', 2, 'A is not in current {B} of key 2'],
      ['vtc1', 'no', 0, 'election is about key 2, newest here is 0'],
      ['vtc2', 'no', 0, 'election is about key 2, newest here is 0'],
      ['vtc3', 'no', 0, 'election is about key 2, newest here is 0'],
    ]);
    expect(formatStatus(v0.engine.status())).toBe('offline');
  });

  /**
   * Catch-up after a restart. vtc2 goes down before any key. B is cut from every VTC, so
   * vtc0 and vtc1 make failure key 1 (B out, A current; B never records it and stays in
   * operation at last key seq 0) and write generations 2 and 3 on A alone. A then loses power
   * and comes back as an image taken before key 1 (generation 1, last key seq 0): vtc0 and
   * vtc1 see its new boot, make key 2 and never elect it. vtc2 restarts with no key at all
   * (on-line with both, epoch 0) and reaches A and B, which both admit epoch 0 and both hold
   * generation 1: no fence, no boot it saw before, no confirmed seq to compare. Only waiting
   * until more than T VTCs said they hold no newer key keeps it from serving generation 1.
   */
  it('a restarted VTC serves nothing until more than T VTCs said they hold no newer key (else it reads what a restore destroyed)', () => {
    const w = new World({ seed: 4, n: 3, trace: true, copier: false });
    const [v0, v1, v2] = w.vtcs as [World['vtcs'][number], World['vtcs'][number], World['vtcs'][number]];
    let img: ReturnType<World['imageOf']> | null = null;
    w.sched.at(100, () => w.hostWrite({ node: v0, vol: 'V00000', copyMode: 'immediate', duration: 2 }));
    w.sched.at(150, () => (img = w.imageOf('A')));
    w.sched.at(180, () => w.crashVtc(v2));
    w.sched.at(200, () => w.names.forEach((v) => w.cutVtsLink(v, 'B')));
    w.sched.at(650, () => w.hostWrite({ node: v0, vol: 'V00000', duration: 2 }));
    w.sched.at(700, () => w.hostWrite({ node: v1, vol: 'V00000', duration: 2 }));
    w.sched.at(780, () => {
      w.crashVts('A');
      w.restoreVts('A', img!);
    });
    w.sched.at(830, () => w.powerOnVts('A'));
    // vtc2 alone reaches B again.
    w.sched.at(1400, () => cutVts(w, [[v0.name, 'B'], [v1.name, 'B']]));
    const reads: (number | null)[] = [];
    w.sched.at(1500, () => w.restartVtc(v2));
    for (let t = 1500.5; t < 1600; t += 1) w.sched.at(t, () => reads.push(w.hostRead({ node: v2, vol: 'V00000' })));
    w.run(2500);
    expect(w.counters.acked).toBe(3);
    expect([w.vts.A.dataGen('V00000'), w.vts.A.lastKeySeq, w.vts.B.dataGen('V00000'), w.vts.B.lastKeySeq, w.vts.B.inOperation]).toEqual([1, 0, 1, 0, true]);
    const keys = v0.engine.committedKeys();
    expect(keys.slice(0, 2).map((k) => [k.seq, k.command, k.reason, k.subjects])).toEqual([
      [1, 'vts-out', 'failure', ['B']],
      [2, 'vts-out', 'failure', ['A']],
    ]);
    // vtc2 restarted with no key and learnt keys 1 and 2 before it served anything.
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every((r) => r === null)).toBe(true);
    expect(v2.engine.newestKey().seq).toBe(v0.engine.newestKey().seq);
    expect(w.vtcs.map((n) => formatStatus(n.engine.status()))).toEqual(['offline', 'offline', 'offline']);
  });

  /**
   * Restart evidence survives a restart of the VTC that saw it (seed 97888). n = 2, on-line
   * with both; vtc1 cannot reach B. Both VTS lose power; B comes back alone (a new boot: it
   * may be a restored image that lacks what only A's tokens show). vtc0 sees B restart while
   * A is lost too (both lost at once), then crashes and restarts. vtc1 never saw B's old
   * boot; the operator's forced `vts-out A` on it would vouch for B as the survivor. vtc0,
   * which journalled the sighting, refuses that key (it cannot leave B serving alone; forced
   * never goes against an answer), so the loss is recorded as both lost (current empty) and
   * B is never elected alone (vtc0 would vote NO for it in any case). Kept in memory only, the marks died with vtc0, both VTCs elected B, and
   * B served alone whatever it had lost.
   */
  it('a VTC that restarts still knows a VTS restart it saw while the other was lost (journalled sighting), and never elects that VTS alone', () => {
    const w = new World({ seed: 3, n: 2, trace: true, copier: false });
    const [v0, v1] = w.vtcs as [World['vtcs'][number], World['vtcs'][number]];
    w.cutVtsLink(v1.name, 'B');
    w.sched.at(200, () => w.powerLossBoth());
    w.sched.at(250, () => w.healVtsLinks());
    w.sched.at(260, () => w.powerOnVts('B'));
    w.sched.at(330, () => w.crashVtc(v0));
    let afterRestart: ReturnType<typeof v0.engine.restartMarks> | null = null;
    w.sched.at(340, () => {
      w.restartVtc(v0);
      afterRestart = v0.engine.restartMarks();
    });
    let forced = '';
    w.sched.at(345, () => (forced = w.command({ command: 'vts-out', vts: 'A', mode: 'forced' }, v1)));
    w.run(2500);
    expect(afterRestart).toEqual({ A: { restartedSeq: null, bothLost: false }, B: { restartedSeq: 0, bothLost: true } });
    expect(w.vtcs.map((n) => formatStatus(n.engine.status()))).toEqual(['offline', 'offline']);
    const head = v0.engine.newestKey();
    expect([head.command, head.reason, head.current]).toEqual(['ptp-shutdown', 'failure', []]);
    // vtc0 refused the forced vts-out that would have left B serving alone, no VTC voted YES
    // for B, and no key ever placed B on-line.
    const r = w.results.get(forced);
    expect(r?.ok).toBe(false);
    expect(r?.ok === false ? r.error.message : '').toMatch(/conflicts with the keys held by vtc0/);
    expect(casts(w).some((c) => /:B:/.test(c.election) && c.choice === 'yes')).toBe(false);
    expect(v0.engine.committedKeys().some((k) => k.reason === 'election' || k.state.kind === 'online-single')).toBe(false);
  });

  /**
   * Generation-aware reads. Tokens are reconciled whenever a VTS returns, so a VTS whose
   * token reads consistent at an older generation than the other's is rare; a restore that
   * no VTC can tell apart makes one (docs/protocol-notes.md, "What a restore can still hide"):
   * every VTC is replaced (new disks: no journal, so no sighting of B's previous boot) while
   * B is restored from an image taken before the last write, and B reports the same last key
   * seq. (With their journals the VTCs see B restart, count it as lost and reconcile its
   * tokens when it returns.) B's token says
   * "generation 1, consistent"; A holds generation 2, acknowledged on both. Only the
   * comparison of generations across both VTS keeps B from serving generation 1.
   */
  it('a VTS whose token reads consistent at an older generation never serves a read (a restore nobody can tell apart)', () => {
    const w = new World({ seed: 3, n: 3, trace: true, copier: false });
    let img: ReturnType<World['imageOf']> | null = null;
    w.sched.at(100, () => w.hostWrite({ node: w.vtcs[0], vol: 'V00000', copyMode: 'immediate', duration: 2 }));
    w.sched.at(200, () => (img = w.imageOf('B')));
    w.sched.at(300, () => w.hostWrite({ node: w.vtcs[1], vol: 'V00000', copyMode: 'immediate', duration: 2 }));
    w.sched.at(400, () =>
      w.vtcs.forEach((n) => {
        w.crashVtc(n);
        n.journal.wipe();
      }),
    );
    w.sched.at(450, () => {
      w.crashVts('B');
      w.restoreVts('B', img!);
      w.powerOnVts('B');
    });
    w.sched.at(500, () => w.vtcs.forEach((n) => w.restartVtc(n)));
    w.run(1500);
    expect(w.counters.acked).toBe(2);
    expect([w.vts.A.dataGen('V00000'), w.vts.B.dataGen('V00000')]).toEqual([2, 1]);
    expect(w.vts.B.vols.get('V00000')).toMatchObject({ generation: 1, consistent: true });
    // On-line with both: the restore was not noticed (the VTCs' own sweep of reads runs all along).
    expect(w.vtcs.map((n) => formatStatus(n.engine.status()))).toEqual(['online-both', 'online-both', 'online-both']);
    for (const node of w.vtcs) expect(w.hostRead({ node, vol: 'V00000', quiet: true })).toBe(2);
  });
});
