/**
 * Stories of the production-code world: the faults of a known hole set up on purpose, with
 * the history checker as the judge (docs/simulation.md).
 */
import { describe, expect, it } from 'vitest';
import { ProdWorld } from './prod-world.js';
import type { ReadOp, WriteOp } from './history.js';

describe('production world stories', () => {
  // A VTC cut off from its peers but still reaching both VTS keeps taking host writes while
  // the others, who lost their links to A, commit a key leaving only B current. Its writes
  // must not be acknowledged with the data on A only, and no read may be stale.
  it('partitioned-vtc-keeps-writing: no acknowledged write lost, no stale read', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 11, n: 4 });
    for (const x of ['A', 'B'] as const) w.startVts(x);
    for (const v of w.vtcs) w.startVtc(v);
    await w.os.runUntil(300);
    expect(w.liveAgents()).toHaveLength(4);
    const [v1, v2, v3, v4] = w.vtcs as [(typeof w.vtcs)[0], (typeof w.vtcs)[0], (typeof w.vtcs)[0], (typeof w.vtcs)[0]];
    for (const v of [v1, v2, v3]) w.net.cut(v4.name, v.name);
    for (const v of [v1, v2, v3]) w.net.cut(v.name, 'vts-A');
    const writes: (WriteOp | null)[] = [];
    const reads: (ReadOp | null)[] = [];
    for (let t = 320; t < 3000; t += 40) {
      w.os.sched.at(t, () => writes.push(w.hostWrite(v4, 'deferred')));
      w.os.sched.at(t + 20, () => reads.push(w.hostRead(undefined, [v1, v2, v3, v4][Math.floor(t / 40) % 4])));
    }
    await w.os.runUntil(3000);
    // The others did leave A: a key with current {B}.
    expect(w.keys.some((k) => k.current.length === 1 && k.current[0] === 'B')).toBe(true);
    w.healAll();
    let nudge = w.now + 1000;
    const online = await w.os.runWhile(w.now + 8000, () => {
      if (w.now >= nudge) {
        nudge = w.now + 1000;
        w.nudge();
      }
      return w.allOnlineBoth();
    });
    expect(online).toBe(true);
    const finals = w.liveAgents().flatMap((v) => w.volumes.map((vol) => w.hostRead(vol, v)));
    await w.os.runWhile(w.now + 3000, () => finals.every((f) => f === null || f.end !== null));
    const tried = writes.filter((x): x is WriteOp => x !== null);
    expect(tried.length).toBeGreaterThan(10);
    expect(reads.filter((r) => r?.outcome === 'ok').length).toBeGreaterThan(5);
    expect(w.check(true)).toEqual([]);
  });
});

describe('mismatched configuration', () => {
  // One VTC started with another topology (it believes in a fifth VTC) keeps taking host
  // writes and reads while the others take A out of current. It takes no part in the
  // protocol, says why, and nothing it does may be acknowledged outside current or read stale.
  it('a VTC with another VTC list is reported, takes no part, and loses or serves stale nothing', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 23, n: 4 });
    for (const x of ['A', 'B'] as const) w.startVts(x);
    const [v1, v2, v3, v4] = w.vtcs as [(typeof w.vtcs)[0], (typeof w.vtcs)[0], (typeof w.vtcs)[0], (typeof w.vtcs)[0]];
    for (const v of [v1, v2, v3]) w.startVtc(v);
    w.startVtc(v4, { vtcs: [...w.vtcs.map((v) => v.name), 'vtc5'] });
    await w.os.runUntil(400);
    expect(w.liveAgents()).toHaveLength(4);
    const writes: (WriteOp | null)[] = [];
    const reads: (ReadOp | null)[] = [];
    for (let t = 420; t < 2600; t += 40) {
      const via = [v1, v2, v3, v4][Math.floor(t / 40) % 4]!;
      w.os.sched.at(t, () => writes.push(w.hostWrite(via, t % 80 === 0 ? 'deferred' : 'immediate')));
      w.os.sched.at(t + 20, () => reads.push(w.hostRead(undefined, [v4, v1, v2, v3][Math.floor(t / 40) % 4])));
    }
    // The three that agree lose their links to A and leave it.
    w.os.sched.at(900, () => {
      for (const v of [v1, v2, v3]) w.net.cut(v.name, 'vts-A');
    });
    await w.os.runUntil(2600);
    // The three that share the topology left A: a failure key with current {B}; the odd one is off-line.
    expect(v1.agent!.engine.committedKeys().some((k) => k.current.length === 1 && k.current[0] === 'B')).toBe(true);
    expect(v4.agent!.engine.status().kind).toBe('offline');
    // Both sides say the configurations differ.
    expect(v4.agent!.engine.configWarnings().some((x) => /configuration digest/.test(x))).toBe(true);
    expect(v1.agent!.engine.configWarnings().some((x) => /vtc4: its configuration digest/.test(x))).toBe(true);
    w.healAll();
    await w.os.runWhile(w.now + 3000, () => [v1, v2, v3].every((v) => v.agent?.engine.status().kind === 'online-both'));
    const finals = [v1, v2, v3].flatMap((v) => w.volumes.map((vol) => w.hostRead(vol, v)));
    await w.os.runWhile(w.now + 3000, () => finals.every((f) => f === null || f.end !== null));
    const tried = writes.filter((x): x is WriteOp => x !== null);
    expect(tried.filter((x) => x.outcome === 'ok').length).toBeGreaterThan(5);
    // Nothing written through the odd VTC was acknowledged: it serves no host.
    expect(tried.filter((x) => x.vtc === v4.name).length).toBeGreaterThan(5);
    expect(tried.filter((x) => x.vtc === v4.name && x.outcome === 'ok')).toEqual([]);
    expect(w.check(false)).toEqual([]);
  });
});

describe('a restarted VTS put back in', () => {
  // A taken out (forced, a deferred copy pending), crashed and restarted, then put back in by
  // the operator. A VTC that saw the restart before the vts-in key took effect must not call
  // A lost on that old sighting: the system flapped (a failure key for A at once, then a
  // return key) in 7 of these 30 seeds.
  it('is not taken out again by a failure key on a restart seen before its vts-in', { timeout: 120_000 }, async () => {
    const flaps: string[] = [];
    for (let seed = 1; seed <= 30; seed++) {
      const w = new ProdWorld({ seed, n: 3 });
      for (const x of ['A', 'B'] as const) w.startVts(x);
      for (const v of w.vtcs) w.startVtc(v, { preferredVts: 'A' });
      await w.os.runUntil(400);
      for (const v of w.vtcs) v.agent!.copies.paused = true;
      w.hostWrite(w.vtcs[0], 'deferred', 'V00001');
      await w.os.runUntil(700);
      w.command({ command: 'vts-out', vts: 'A', mode: 'forced' }, w.vtcs[1]);
      await w.os.runUntil(1200);
      w.crashVts('A', false);
      await w.os.runUntil(1800);
      w.startVts('A');
      await w.os.runUntil(2400);
      for (const v of w.vtcs) if (v.agent) v.agent.copies.paused = false;
      w.command({ command: 'vts-in', vts: 'A' }, w.vtcs[2]);
      await w.os.runUntil(5000);
      const keys = w.vtcs[0]!.agent!.engine.committedKeys();
      if (keys.some((k) => k.seq > 2)) flaps.push(`seed ${seed}: ${keys.map((k) => `${k.seq} ${k.command}/${k.reason} {${k.current.join(',')}}`).join('; ')}`);
      expect(w.vtcs.map((v) => v.agent?.engine.status().kind)).toEqual(['online-both', 'online-both', 'online-both']);
      expect(w.check(false)).toEqual([]);
    }
    expect(flaps).toEqual([]);
  });
});

describe('a VTC paused longer than the heartbeat timeout', () => {
  // A GC pause or a loaded host holds one VTC's event loop for six heartbeat timeouts while
  // both VTS are fine. On resuming it must ask them again, not take them out for the
  // silence it slept through (a loaded benchmark host forced a ptp-shutdown this way).
  it('asks both VTS again and makes no key for the silence it slept through', { timeout: 120_000 }, async () => {
    const spurious: string[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const w = new ProdWorld({ seed, n: 3 });
      for (const x of ['A', 'B'] as const) w.startVts(x);
      for (const v of w.vtcs) w.startVtc(v);
      await w.os.runUntil(500);
      expect(w.allOnlineBoth()).toBe(true);
      const before = w.vtcs[1]!.agent!.engine.newestKey().seq;
      w.pause(w.vtcs[0]!.name, 1000);
      for (let t = 520; t < 2500; t += 60) w.os.sched.at(t, () => void w.hostWrite(w.vtcs[1], 'immediate'));
      await w.os.runUntil(2500);
      const keys = w.vtcs[1]!.agent!.engine.committedKeys().filter((k) => k.seq > before);
      if (keys.length > 0) spurious.push(`seed ${seed}: ${keys.map((k) => `${k.seq} ${k.command}/${k.reason}`).join('; ')}`);
      expect(w.check(false)).toEqual([]);
    }
    expect(spurious).toEqual([]);
  });
});

describe('a VTC whose wall clock steps back', () => {
  // NTP steps a VTC's clock back 1.2 s just after a key took effect. The engine's time must
  // not run backwards with it: "asked for a view since the key?" compared a heartbeat issued
  // at the stepped-back time with the key's time, so every answer asked again at once, a
  // loop of status requests without delay until the wall clock caught up (seed 135 of the
  // production simulation: over 2,000,000 events in 1.9 s of simulated time). The VTC must
  // also still notice a VTS that stops answering, in about a heartbeat timeout.
  const run = async (stepMs: number): Promise<{ events: number; lostAfterMs: number | null; check: unknown[] }> => {
    const w = new ProdWorld({ seed: 5, n: 3 });
    for (const x of ['A', 'B'] as const) w.startVts(x);
    for (const v of w.vtcs) w.startVtc(v);
    await w.os.runUntil(400);
    expect(w.allOnlineBoth()).toBe(true);
    w.command({ command: 'vts-out', vts: 'B', mode: 'immediate' });
    await w.os.runUntil(700);
    w.command({ command: 'vts-in', vts: 'B' });
    await w.os.runUntil(1000);
    expect(w.allOnlineBoth()).toBe(true);
    const seq = Math.max(...w.keys.map((k) => k.seq));
    if (stepMs !== 0) w.skew(w.vtcs[0]!.name, stepMs);
    const before = w.os.sched.steps;
    await w.os.runUntil(1400);
    const events = w.os.sched.steps - before;
    // Now VTS A stops answering everyone: a failure key must follow within a few heartbeat timeouts.
    const cutAt = w.now;
    for (const v of w.vtcs) w.net.cut(v.name, 'vts-A');
    let lostAfterMs: number | null = null;
    // (runWhile runs until the condition holds.)
    await w.os.runWhile(cutAt + 3000, () => {
      if (lostAfterMs === null && w.keys.some((k) => k.seq > seq && !k.current.includes('A'))) lostAfterMs = w.now - cutAt;
      return lostAfterMs !== null;
    });
    return { events, lostAfterMs, check: w.check(false) };
  };

  it('keeps its own time moving forward: no burst of status requests, and a silent VTS is still noticed in time', { timeout: 120_000 }, async () => {
    const steady = await run(0);
    const stepped = await run(-1220);
    expect(steady.check).toEqual([]);
    expect(stepped.check).toEqual([]);
    // The same 400 ms with and without the step: about the same work.
    expect(stepped.events).toBeLessThan(steady.events * 2 + 200);
    expect(steady.lostAfterMs).not.toBeNull();
    expect(stepped.lostAfterMs).not.toBeNull();
    expect(stepped.lostAfterMs!).toBeLessThan(steady.lostAfterMs! + 4 * 160);
  });
});

describe('a mount whose answer the VTC never got', () => {
  // VTS B's disk hangs while it opens a volume for a host read through vtc2: vtc2 gives up
  // (RPC timeout) and the read fails. Then the disk comes back and B finishes the mount, for a
  // VTC that never learnt its handle. That mount must not keep the volume held on B: a
  // deferred write through vtc1 then marks B behind, and the copy that brings B up to date must
  // get in (production simulation seeds 289, 388 and 534 stayed in resync after healing). And
  // when vtc2 starts again, the tag of the mount its first process gave up on, which its new
  // process sends again, must not refuse the new mount.
  it('is released on the VTS: later copies and mounts of the volume get in, resync finishes, and a restarted VTC mounts again', { timeout: 120_000 }, async () => {
    const w = new ProdWorld({ seed: 7, n: 2 });
    for (const x of ['A', 'B'] as const) w.startVts(x);
    const [v1, v2] = w.vtcs as [(typeof w.vtcs)[0], (typeof w.vtcs)[0]];
    w.startVtc(v1, { ioSelection: 'preferred', preferredVts: 'A' });
    w.startVtc(v2, { ioSelection: 'preferred', preferredVts: 'B' });
    const online = (): Promise<boolean> => w.os.runWhile(w.now + 3000, () => w.allOnlineBoth());
    expect(await online()).toBe(true);
    const first = w.hostWrite(v1, 'immediate', 'V00001')!;
    await w.os.runWhile(w.now + 2000, () => first.end !== null);
    expect(first.outcome).toBe('ok');
    expect(await online()).toBe(true);

    // The read's mount on B waits on the disk past vtc2's RPC timeout (400 ms).
    w.hangDiskOn('B', (op) => op.kind === 'open' && op.path.includes('/cache/') && op.path.includes('V00001'));
    const read = w.hostRead('V00001', v2)!;
    await w.os.runWhile(w.now + 2000, () => read.end !== null);
    expect(read.outcome).toBe('fail');
    expect(read.error).toBe('EVTC_TIMEOUT');
    // vtc2 keeps calling B (its heartbeats) while the mount is still being made there.
    await w.os.runUntil(w.now + 200);
    expect(w.diskHeld('B')).toBeGreaterThan(0);
    w.diskFault('B', 'none');
    await w.os.runUntil(w.now + 200);

    // B holds no mount nobody owns; a deferred write's copy to B gets in, and resync finishes.
    const second = w.hostWrite(v1, 'deferred', 'V00001')!;
    await w.os.runWhile(w.now + 2000, () => second.end !== null);
    expect(second.outcome).toBe('ok');
    expect(second.copies).toEqual(['A']);
    const synced = await w.os.runWhile(w.now + 3000, () => w.allOnlineBoth() && w.vts.B.unit?.volumes().find((v) => v.volser === 'V00001')?.dataGeneration === second.generation);
    expect(synced, `${w.describe()}\n${w.trace.slice(-30).join('\n')}`).toBe(true);
    expect(w.vts.B.unit!.activeMounts()).toEqual([]);
    // And a host read through vtc2 is served by B again.
    const again = w.hostRead('V00001', v2)!;
    await w.os.runWhile(w.now + 2000, () => again.end !== null);
    expect(again.outcome).toBe('ok');
    expect(again.vts).toBe('B');
    // vtc2 starts again: its new process names its mounts as the first did (from 1), and
    // what B remembers of the mount the first gave up on must not refuse the new one.
    w.crashVtc(v2, false);
    w.startVtc(v2, { ioSelection: 'preferred', preferredVts: 'B' });
    expect(await online()).toBe(true);
    const fresh = w.hostRead('V00001', v2)!;
    await w.os.runWhile(w.now + 2000, () => fresh.end !== null);
    expect(fresh.error).toBeNull();
    expect(fresh.vts).toBe('B');
    expect(w.check(true)).toEqual([]);
  });
});
