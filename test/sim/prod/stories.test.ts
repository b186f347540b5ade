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
