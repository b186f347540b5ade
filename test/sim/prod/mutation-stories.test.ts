/**
 * Stories of the production-code world that put each production safety mechanism on the
 * spot: the situation it guards is set up on purpose and the history checker judges
 * (docs/mutations.md, "Production-code mutations"). Each passes on the code as it is; the
 * production mutation gate (scripts/prod-mutations.mjs) breaks one mechanism at a time and
 * requires a story or seed to fail. `PTPVTS_STORY_TRACE=1` prints each story's trace.
 */
import { describe, expect, it } from 'vitest';
import { VTS_NAMES } from '../../../src/ptp/types.js';
import type { VtsName } from '../../../src/ptp/types.js';
import type { ReadOp, WriteOp } from './history.js';
import { ProdWorld } from './prod-world.js';

type Node = ProdWorld['vtcs'][number];

const written = (ops: readonly (WriteOp | null)[]): WriteOp[] => ops.filter((x): x is WriteOp => x !== null);

/** Runs until `done` holds (checked after every event), failing the story with `what` past `until`. */
async function waitFor(w: ProdWorld, until: number, done: () => boolean, what: string): Promise<void> {
  const ok = await w.os.runWhile(until, done);
  if (!ok) throw new Error(`${what} did not happen by ${until} ms\n${w.describe()}\n${w.trace.slice(-40).join('\n')}`);
}

/** The history checker's verdict, with the final state: no violation (the failure names each, as `[code] message`). */
function expectNoViolation(w: ProdWorld): void {
  if (process.env.PTPVTS_STORY_TRACE === '1') console.log(`${w.trace.join('\n')}\n--- state ---\n${w.describe()}`);
  const v = w.check(true);
  const shown = v.slice(0, 3).map((x) => `[${x.code}] ${x.message}`);
  expect(v, `history checker: ${shown.join('; ')}${v.length > 3 ? ` (and ${v.length - 3} more)` : ''}`).toEqual([]);
}

/** Reads every volume through each of `via` in turn (one read of a volume at a time: a VTS refuses a second mount) and waits for the answers. */
async function readAll(w: ProdWorld, via: readonly Node[]): Promise<ReadOp[]> {
  const reads: ReadOp[] = [];
  for (const v of via) {
    const round = w.volumes.map((vol) => w.hostRead(vol, v)).filter((r): r is ReadOp => r !== null);
    await w.os.runWhile(w.now + 3000, () => round.every((r) => r.end !== null));
    reads.push(...round);
  }
  return reads;
}

/**
 * Holds every key VTS `x` is asked to record (its unit's recordKey) until `release()`: the
 * story decides when the key lands there. The VTS's code runs unchanged; only the moment
 * the request reaches it moves.
 */
function holdRecords(w: ProdWorld, x: VtsName): { waiting: () => number; release: () => void } {
  const unit = w.vts[x].unit;
  if (unit === null) throw new Error(`VTS ${x} is not running`);
  const record = unit.recordKey.bind(unit);
  let gate: (() => void)[] | null = [];
  let waiting = 0;
  unit.recordKey = async (seq: number, mac?: string): Promise<number> => {
    if (gate !== null && seq > unit.lastKeySeq) {
      waiting++;
      await new Promise<void>((r) => gate!.push(r));
    }
    return record(seq, mac);
  };
  return {
    waiting: () => waiting,
    release: () => {
      const g = gate ?? [];
      gate = null;
      for (const r of g) r();
    },
  };
}

/** Heals everything and does what an operator would until every VTC is on-line with both VTS. */
async function backOnline(w: ProdWorld, ms = 8000): Promise<void> {
  w.healAll();
  let nudge = w.now + 1000;
  const online = await w.os.runWhile(w.now + ms, () => {
    if (w.now >= nudge) {
      nudge = w.now + 1000;
      w.nudge();
    }
    return w.allOnlineBoth();
  });
  if (!online) throw new Error(`not back on-line with both VTS within ${ms} ms\n${w.describe()}\n${w.trace.slice(-40).join('\n')}`);
}

describe('production mutation stories', () => {
  // vtc4 is cut off from its peers but still reaches both VTS. vtc1..vtc3 lose their links to
  // A and commit a failure key for A (current {B}), which B records and A never does. vtc4
  // then writes (deferred copies, the data to A): B's fence must refuse every one of them,
  // since B alone is current. Site A is then lost for good: every acknowledged write must
  // be on B.
  it('cut-off VTC after a failure key it missed: site A lost for good, nothing acknowledged is lost', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 21, n: 4 });
    for (const x of VTS_NAMES) w.startVts(x);
    for (const v of w.vtcs) w.startVtc(v, { ioSelection: 'preferred', preferredVts: 'A' });
    await w.os.runUntil(300);
    expect(w.liveAgents()).toHaveLength(4);
    const [v1, v2, v3, v4] = w.vtcs as [Node, Node, Node, Node];
    for (const v of [v1, v2, v3]) w.net.cut(v4.name, v.name);
    for (const v of [v1, v2, v3]) w.net.cut(v.name, 'vts-A');
    await waitFor(w, 4000, () => w.keys.some((k) => k.current.length === 1 && k.current[0] === 'B') && (w.vts.B.unit?.lastKeySeq ?? 0) >= 1, 'a failure key for A recorded on B');
    const writes: (WriteOp | null)[] = [];
    const t0 = w.now;
    for (let t = t0 + 20; t < t0 + 1500; t += 30) w.os.sched.at(t, () => writes.push(w.hostWrite(v4, 'deferred')));
    // Site A is lost, powered off for good, the instant a write through vtc4 is acknowledged
    // (before any copy of it can reach B), or once vtc4 has tried for a while.
    await w.os.runWhile(t0 + 1600, () => written(writes).some((o) => o.outcome === 'ok'));
    expect(written(writes).length).toBeGreaterThan(w.now >= t0 + 1600 ? 20 : 0);
    w.crashVts('A', true);
    await w.os.runUntil(w.now + 500);
    await readAll(w, [v1, v2, v3]);
    expectNoViolation(w);
  });

  // The same partition; vtc4 now reads. Every volume was written (immediate copies) before
  // the partition, so both VTS hold the same generations and A's tokens read consistent:
  // only B, which recorded the failure key, can tell vtc4 it is behind. No read may be served
  // by A, which is outside current.
  it('cut-off VTC reads after a failure key it missed: nothing is served by the VTS outside current', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 23, n: 4 });
    for (const x of VTS_NAMES) w.startVts(x);
    for (const v of w.vtcs) w.startVtc(v, { ioSelection: 'preferred', preferredVts: 'A' });
    await w.os.runUntil(300);
    expect(w.liveAgents()).toHaveLength(4);
    const [v1, v2, v3, v4] = w.vtcs as [Node, Node, Node, Node];
    const before = w.volumes.map((vol) => w.hostWrite(v1, 'immediate', vol));
    await waitFor(w, w.now + 2000, () => before.every((o) => o?.outcome === 'ok'), 'the writes before the partition');
    for (const v of [v1, v2, v3]) w.net.cut(v4.name, v.name);
    for (const v of [v1, v2, v3]) w.net.cut(v.name, 'vts-A');
    // At once: a connection a cut would reset only later could carry A's views (A still in
    // operation, the failure key's best-effort stop not answered) and bring A back before vtc4 reads.
    for (const v of [v1, v2, v3]) w.net.reset(v.name, 'vts-A');
    await waitFor(w, w.now + 4000, () => w.keys.some((k) => k.current.length === 1 && k.current[0] === 'B') && (w.vts.B.unit?.lastKeySeq ?? 0) >= 1, 'a failure key for A recorded on B');
    const reads: ReadOp[] = [];
    for (let i = 0; i < 4; i++) reads.push(...(await readAll(w, [v4])));
    expect(reads.length).toBe(4 * w.volumes.length);
    expectNoViolation(w);
  });

  // The same partition, but the failure key is recorded on B while vtc4's write is being
  // committed on A: vtc4 checked B's fence before the commit, and only the fence on what
  // follows the commit (the token update of a deferred copy, the copy of an immediate one)
  // can still refuse the write. Site A is then lost for good.
  for (const mode of ['deferred', 'immediate'] as const) {
    it(`a failure key recorded on B during a ${mode} write's commit on A: the write is refused, nothing acknowledged is lost`, { timeout: 120_000 }, async () => {
      const w = new ProdWorld({ seed: 22, n: 4 });
      for (const x of VTS_NAMES) w.startVts(x);
      for (const v of w.vtcs) w.startVtc(v, { ioSelection: 'preferred', preferredVts: 'A' });
      await w.os.runUntil(300);
      expect(w.liveAgents()).toHaveLength(4);
      const [v1, v2, v3, v4] = w.vtcs as [Node, Node, Node, Node];
      const held = holdRecords(w, 'B');
      for (const v of [v1, v2, v3]) w.net.cut(v4.name, v.name);
      for (const v of [v1, v2, v3]) w.net.cut(v.name, 'vts-A');
      // The failure key for A reaches B; B records it only once vtc4's write is at its commit on A.
      await waitFor(w, 4000, () => held.waiting() > 0, 'the failure key for A sent to B');
      w.hangDiskOn('A', (op) => op.kind === 'sync' && op.path.endsWith('.work'));
      const write = w.hostWrite(v4, mode);
      expect(write).not.toBeNull();
      await waitFor(w, w.now + 300, () => w.diskHeld('A') > 0, 'the commit on A');
      held.release();
      await waitFor(w, w.now + 300, () => (w.vts.B.unit?.lastKeySeq ?? 0) >= 1, 'the failure key recorded on B');
      w.diskFault('A', 'none');
      await w.os.runWhile(w.now + 2000, () => write!.end !== null);
      w.crashVts('A', true);
      await w.os.runUntil(w.now + 500);
      await readAll(w, [v1, v2, v3]);
      expectNoViolation(w);
    });
  }

  // Both VTS lose power at one instant right after host writes were acknowledged with
  // immediate copies (the data on both). What a close acknowledged was fsynced before the
  // answer, so both come back holding it, whatever the cut kept of what was not synced.
  for (const seed of [31, 32, 33]) {
    it(`both VTS lose power just after acknowledged writes (seed ${seed}): every one is read back`, { timeout: 120_000 }, async () => {
      const w = new ProdWorld({ seed, n: 3 });
      for (const x of VTS_NAMES) w.startVts(x);
      for (const v of w.vtcs) w.startVtc(v);
      await w.os.runUntil(300);
      expect(w.liveAgents()).toHaveLength(3);
      const writes: (WriteOp | null)[] = [];
      for (let t = 320; t < 620; t += 15) w.os.sched.at(t, () => writes.push(w.hostWrite(undefined, 'immediate')));
      await w.os.runUntil(620);
      await w.os.runWhile(w.now + 1000, () => written(writes).every((o) => o.end !== null));
      expect(written(writes).filter((o) => o.outcome === 'ok').length).toBeGreaterThan(4);
      w.crashVts('A', true);
      w.crashVts('B', true);
      await w.os.runUntil(w.now + 200);
      w.healAll();
      // The VTCs see both VTS return (new boots) and judge them before serving again.
      await w.os.runUntil(w.now + 1500);
      await backOnline(w);
      await readAll(w, w.liveAgents());
      expectNoViolation(w);
    });
  }

  // A restore no VTC can tell apart (docs/protocol-notes.md, "What a restore can still
  // hide"): every VTC restarts with an empty journal while B comes back as an image taken
  // before the last write, with the same last key seq and image identity. B's token of the
  // volume then reads consistent at the older generation; a read must still go to A, which
  // holds the newest generation either VTS reports, even through VTCs that prefer B.
  it('a VTS whose token reads consistent at an older generation never serves a read (a restore nobody can tell apart)', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 41, n: 3 });
    const blank = w.vtcs.map((v) => v.disk.fs.snapshot());
    for (const x of VTS_NAMES) w.startVts(x);
    for (const v of w.vtcs) w.startVtc(v, { ioSelection: 'preferred', preferredVts: 'B' });
    await w.os.runUntil(300);
    expect(w.liveAgents()).toHaveLength(3);
    const [v1, v2] = w.vtcs as [Node, Node, Node];
    const w1 = w.hostWrite(v1, 'immediate');
    await waitFor(w, w.now + 1000, () => w1?.outcome === 'ok', 'the first write acknowledged');
    w.imageVts('B');
    const w2 = w.hostWrite(v2, 'immediate', w1!.volser);
    await waitFor(w, w.now + 1000, () => w2?.outcome === 'ok', 'the second write of the same volume acknowledged');
    for (const [i, v] of w.vtcs.entries()) {
      w.crashVtc(v, true);
      v.disk.fs.restore(blank[i]!);
    }
    w.crashVts('B', true);
    expect(w.restoreVts('B')).toBe(true);
    await w.os.runUntil(w.now + 100);
    w.startVts('B');
    for (const v of w.vtcs) w.startVtc(v, { ioSelection: 'preferred', preferredVts: 'B' });
    await waitFor(w, w.now + 4000, () => w.allOnlineBoth(), 'every VTC on-line with both VTS');
    const reads = await readAll(w, w.liveAgents());
    expect(reads.filter((r) => r.outcome === 'ok' && r.volser === w1!.volser)).toHaveLength(3);
    expectNoViolation(w);
  });

  // B is taken out (normal), hosts write on A alone, and B is put back in: the reconcile must
  // mark B behind on every volume it missed before B counts as current again. The copies from
  // A never start here (A's exports are held), and A is then lost for good: B must not be
  // left serving the generations it held before it went out.
  it('a VTS put back in is marked behind on what it missed: lost with the other, its old data is never served', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 61, n: 3 });
    for (const x of VTS_NAMES) w.startVts(x);
    for (const v of w.vtcs) w.startVtc(v);
    await w.os.runUntil(300);
    expect(w.liveAgents()).toHaveLength(3);
    const [v1, v2, v3] = w.vtcs as [Node, Node, Node];
    const first = w.volumes.map((vol) => w.hostWrite(v1, 'immediate', vol));
    await waitFor(w, w.now + 2000, () => first.every((o) => o?.outcome === 'ok'), 'the first writes (both VTS)');
    w.command({ command: 'vts-out', vts: 'B', mode: 'normal' }, v1);
    await waitFor(w, w.now + 3000, () => w.liveAgents().every((v) => v.agent!.engine.newestKey().seq >= 1 && v.agent!.engine.status().kind === 'online-single'), 'B out of operation');
    const onA = w.volumes.map((vol) => w.hostWrite(v2, 'immediate', vol));
    await waitFor(w, w.now + 2000, () => onA.every((o) => o?.outcome === 'ok'), 'the writes on A alone');
    // A's exports are held from here on: no copy to B can start.
    const a = w.vts.A.unit!;
    a.exportVolume = () => new Promise(() => undefined);
    w.command({ command: 'vts-in', vts: 'B' }, v1);
    await waitFor(w, w.now + 3000, () => w.liveAgents().every((v) => v.agent!.engine.newestKey().seq >= 2), 'B back in');
    w.crashVts('A', true);
    await w.os.runUntil(w.now + 2000);
    await readAll(w, [v1, v2, v3]);
    expectNoViolation(w);
  });

  // A key takes A out of operation (B records it as the survivor), hosts write on B alone,
  // and B loses power. B must come back reporting the key it recorded: then the VTCs can
  // judge it the VTS they left current, elect it, and the system comes back on-line by itself
  // (a VTS reporting less than it confirmed recording is taken for an older image and only
  // the operator can bring it back). Liveness, then the history.
  it('the survivor loses power after recording a key: it comes back reporting it, and the system comes back on-line', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 71, n: 3 });
    for (const x of VTS_NAMES) w.startVts(x);
    for (const v of w.vtcs) w.startVtc(v);
    await w.os.runUntil(300);
    expect(w.liveAgents()).toHaveLength(3);
    const [v1, v2] = w.vtcs as [Node, Node, Node];
    w.command({ command: 'vts-out', vts: 'A', mode: 'normal' }, v1);
    await waitFor(w, w.now + 3000, () => (w.vts.B.unit?.lastKeySeq ?? 0) >= 1 && w.liveAgents().every((v) => v.agent!.engine.status().kind === 'online-single'), 'A out of operation, B recording the key');
    const onB = w.volumes.map((vol) => w.hostWrite(v2, 'immediate', vol));
    await waitFor(w, w.now + 2000, () => onB.every((o) => o?.outcome === 'ok'), 'the writes on B alone');
    w.crashVts('B', true);
    await w.os.runUntil(w.now + 200);
    await backOnline(w);
    await readAll(w, w.liveAgents());
    expectNoViolation(w);
  });

  // B is out, hosts write on A alone, and the operator puts B back in. vtc1 plans the key
  // against the boot of A it sees; before the key's record reaches A, A loses power and comes
  // back as an image taken before those writes (older last key seq, same image identity). The
  // record must be refused (A restarted since the plan and reports less than it confirmed):
  // recorded, it would vouch for the image and start B as current beside it.
  it('a key planned against a boot of A reaches a restored older image of A: it records nothing there', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 81, n: 3 });
    for (const x of VTS_NAMES) w.startVts(x);
    for (const v of w.vtcs) w.startVtc(v);
    await w.os.runUntil(300);
    expect(w.liveAgents()).toHaveLength(3);
    const [v1, v2] = w.vtcs as [Node, Node, Node];
    const first = w.volumes.map((vol) => w.hostWrite(v2, 'immediate', vol));
    await waitFor(w, w.now + 2000, () => first.every((o) => o?.outcome === 'ok'), 'the first writes (both VTS)');
    w.imageVts('A');
    w.command({ command: 'vts-out', vts: 'B', mode: 'normal' }, v1);
    await waitFor(w, w.now + 3000, () => w.liveAgents().every((v) => v.agent!.engine.status().kind === 'online-single') && (w.vts.A.unit?.lastKeySeq ?? 0) >= 1, 'B out of operation');
    const onA = w.volumes.map((vol) => w.hostWrite(v2, 'immediate', vol));
    await waitFor(w, w.now + 2000, () => onA.every((o) => o?.outcome === 'ok'), 'the writes on A alone');
    // vtc1's operations on A for the next key wait until A has come back as the older image.
    const engine = v1.agent!.engine;
    const take = engine.takeEffects.bind(engine);
    const heldOps: ReturnType<typeof take> = [];
    let holding = true;
    engine.takeEffects = () => {
      const out = take();
      if (!holding) return [...heldOps.splice(0), ...out];
      heldOps.push(...out.filter((e) => e.kind === 'vts' && e.vts === 'A' && e.op.op !== 'status'));
      return out.filter((e) => !heldOps.includes(e));
    };
    w.command({ command: 'vts-in', vts: 'B' }, v1);
    await waitFor(w, w.now + 2000, () => heldOps.length > 0, "the key's operation on A");
    w.crashVts('A', true);
    expect(w.restoreVts('A')).toBe(true);
    w.startVts('A');
    await waitFor(w, w.now + 300, () => w.vts.A.unit !== null, 'A back (the older image)');
    // vtc1's next status poll finds its old connection to A gone (and forgets A's view); the
    // held operations then reach the new A over a new connection.
    await waitFor(w, w.now + 300, () => v1.agent!.status().vts.A === null, "vtc1's poll of the old A failing");
    holding = false;
    await w.os.runUntil(w.now + 3000);
    await readAll(w, w.liveAgents());
    expectNoViolation(w);
  });
  // B is out of operation; vtc2 and vtc3 are paused while hosts write through vtc1 on A alone.
  // A then loses power and comes back restored from before those writes, with its image id
  // and last key seq unchanged: to vtc2 and vtc3 it looks exactly as they last saw it. Only
  // vtc1 saw A's token sum pass the image's, and its hellos told the others. No VTC may elect
  // A or serve from it: it stays off-line for the operator (docs/protocol-notes.md, "A
  // restored image that no key tells apart").
  it('a restore that only one VTC saw the VTS get past is judged by every VTC (token sums in the hellos)', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 71, n: 3 });
    for (const x of VTS_NAMES) w.startVts(x);
    for (const v of w.vtcs) w.startVtc(v);
    await w.os.runUntil(300);
    expect(w.liveAgents()).toHaveLength(3);
    const [v1, v2, v3] = w.vtcs as [Node, Node, Node];
    const first = w.volumes.map((vol) => w.hostWrite(v1, 'immediate', vol));
    await waitFor(w, w.now + 2000, () => first.every((o) => o?.outcome === 'ok'), 'the first writes (both VTS)');
    w.command({ command: 'vts-out', vts: 'B', mode: 'normal' }, v1);
    await waitFor(w, w.now + 3000, () => w.liveAgents().every((v) => v.agent!.engine.newestKey().seq >= 1 && v.agent!.engine.status().kind === 'online-single'), 'B out of operation');
    await w.os.runUntil(w.now + 200);
    w.imageVts('A');
    w.pause(v2.name, 2500);
    w.pause(v3.name, 2500);
    const onA = w.volumes.map((vol) => w.hostWrite(v1, 'immediate', vol));
    await waitFor(w, w.now + 2000, () => onA.every((o) => o?.outcome === 'ok'), 'the writes on A alone, through vtc1');
    // A heartbeat of vtc1 sees A's new sum, and a hello carries it.
    await w.os.runUntil(w.now + 500);
    w.crashVts('A', true);
    expect(w.restoreVts('A')).toBe(true);
    await w.os.runUntil(w.now + 50);
    w.startVts('A');
    await w.os.runUntil(w.now + 4000);
    expect(w.liveAgents().map((v) => v.agent!.engine.status().kind)).toEqual(['offline', 'offline', 'offline']);
    expect(w.restoredCurrent()).toBe(true);
    await readAll(w, w.liveAgents());
    expectNoViolation(w);
  });
});
