/**
 * The invariant checker must catch a broken rule, or a green simulation proves nothing:
 * with VTCs voting YES without the key checks, some schedule must fail on safety.
 */
import { describe, expect, it } from 'vitest';
import { runSchedule } from './schedule.js';
import { InvariantViolation, World } from './world.js';
import { generationFloor } from '../../src/ptp/volumes.js';

describe('invariant checker', () => {
  it('catches YES votes cast without the key checks (claim-1 story)', () => {
    // Deterministic story: A out, B takes writes, B out, A back alone. A broken rule elects A.
    const w = new World({ seed: 7, n: 3, broken: 'yes-without-key-checks' });
    for (let t = 0; t < 3000; t += 15) w.sched.at(t, () => w.hostWrite());
    w.sched.at(10, () => w.command({ command: 'vts-out', vts: 'A', mode: 'normal' }, w.vtcs[0]));
    w.sched.at(600, () => w.command({ command: 'vts-out', vts: 'B', mode: 'normal' }, w.vtcs[1]));
    w.sched.at(1200, () => w.command({ command: 'vts-in', vts: 'A' }, w.vtcs[2]));
    let caught: unknown;
    try {
      w.run(3000);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InvariantViolation);
    expect((caught as InvariantViolation).code).toBe('safety');
  });

  it('catches it under message loss, duplication and varied timing', () => {
    let caught = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const w = new World({ seed, n: 3 + (seed % 3), broken: 'yes-without-key-checks', loss: 0.05, duplicate: 0.05, maxDelay: 15 });
      const jitter = w.rng.int(100);
      for (let t = 0; t < 4000; t += 15) w.sched.at(t, () => w.hostWrite());
      w.sched.at(10 + jitter, () => w.command({ command: 'vts-out', vts: 'A', mode: 'normal' }, w.vtcs[0]));
      w.sched.at(900 + jitter, () => w.command({ command: 'vts-out', vts: 'B', mode: 'normal' }, w.vtcs[1]));
      w.sched.at(1800 + jitter, () => w.command({ command: 'vts-in', vts: 'A' }, w.vtcs[2]));
      let code: string | undefined;
      try {
        w.run(4000);
      } catch (e) {
        if (!(e instanceof InvariantViolation)) throw e;
        code = e.code;
      }
      // A seed where a command was lost to the network never elects A and has nothing to catch.
      if (code !== undefined) expect(code, `seed ${seed}`).toBe('safety');
      if (code === 'safety') caught++;
    }
    expect(caught).toBeGreaterThanOrEqual(10);
  });

  /**
   * Finding 1: n = 4, T = 2. vtc3 is cut from its peers but reaches both VTS; vtc0-2 lose A
   * and commit a failure key for it (current {B}), which A never records. vtc3 stays on-line
   * with both at key 0.
   */
  function cutOffVtc(legacy?: { unfencedCopies?: boolean; preferredReads?: boolean }): { w: World; wrote: () => boolean; read: () => number | null } {
    const w = new World({ seed: 5, n: 4, copier: false, ...(legacy === undefined ? {} : { legacy }) });
    const v = (i: number): NonNullable<Parameters<World['hostWrite']>[0]>['node'] => w.vtcs[i];
    w.sched.at(100, () => w.hostWrite({ node: v(0), vol: 'V00000', copyMode: 'immediate', duration: 2 }));
    w.sched.at(150, () => {
      w.net.partition([['vtc3'], ['vtc0', 'vtc1', 'vtc2']]);
      for (const x of ['vtc0', 'vtc1', 'vtc2']) w.cutVtsLink(x, 'A');
    });
    w.sched.at(900, () => w.hostWrite({ node: v(1), vol: 'V00000', duration: 2 }));
    let wrote = false;
    w.sched.at(1000, () => {
      wrote = w.hostWrite({ node: v(3), vol: 'V00001', copyMode: 'deferred', primary: 'A', duration: 2 });
    });
    let read: number | null = -1;
    w.sched.at(1100, () => (read = w.hostRead({ node: v(3), vol: 'V00000' })));
    return { w, wrote: () => wrote, read: () => read };
  }

  it('finding 1 story: the cut-off VTC neither acknowledges a write kept only outside current nor serves a stale read', () => {
    const { w, read } = cutOffVtc();
    w.run(1500);
    expect(w.counters.acked).toBe(2);
    const k = w.vtcs[0]!.engine.newestKey();
    expect([k.reason, k.current]).toEqual(['failure', ['B']]);
    expect(w.vts.A.lastKeySeq).toBe(0);
    expect(w.vtcs[3]!.engine.newestKey().seq).toBe(0);
    expect(w.vts.A.dataGen('V00001')).toBe(0);
    expect(read()).toBeNull();
  });

  it('finding 1: the checker catches token updates and copies that do not carry the writer\'s epoch (safety)', () => {
    const { w } = cutOffVtc({ unfencedCopies: true });
    expect(() => w.run(1500)).toThrow(expect.objectContaining({ code: 'safety' }) as Error);
  });

  it('finding 1: the checker catches reads served by the preferred consistent VTS without comparing generations (stale-read)', () => {
    const { w } = cutOffVtc({ preferredReads: true });
    expect(() => w.run(1500)).toThrow(expect.objectContaining({ code: 'stale-read' }) as Error);
  });

  it('finding 2 story: both VTS lose power together, A returns as an older image of itself: never on-line alone; with B back, the newest data', () => {
    const w = new World({ seed: 9, n: 4, copier: false });
    let img: ReturnType<World['imageOf']> | null = null;
    w.sched.at(100, () => w.hostWrite({ node: w.vtcs[0], vol: 'V00002', copyMode: 'immediate', duration: 2 }));
    w.sched.at(120, () => (img = w.imageOf('A')));
    w.sched.at(130, () => w.command({ command: 'threshold-set', threshold: 2 }, w.vtcs[1]));
    w.sched.at(400, () => w.hostWrite({ node: w.vtcs[2], vol: 'V00002', copyMode: 'immediate', duration: 2 }));
    w.sched.at(500, () => {
      w.powerLossBoth();
      w.restoreVts('A', img!);
    });
    w.sched.at(550, () => w.powerOnVts('A'));
    for (let t = 560; t < 3000; t += 10) w.sched.at(t, () => w.vtcs.forEach((n) => expect(n.engine.status().kind === 'online-single').toBe(false)));
    w.run(3000);
    expect(w.counters.acked).toBe(2);
    expect(w.vts.A.dataGen('V00002')).toBe(1);
    expect(w.vtcs.map((n) => n.engine.status().kind)).toEqual(['offline', 'offline', 'offline', 'offline']);
    w.powerOnVts('B');
    w.run(6000);
    expect(w.allOnline()).toBe(true);
    // The second write, planned under key 1 (the threshold-set): generations order writes by key.
    expect(w.hostRead({ node: w.vtcs[3], vol: 'V00002' })).toBe(generationFloor(1));
  });

  it('replays a seed exactly', () => {
    const a = runSchedule(4242);
    const b = runSchedule(4242);
    expect(b).toEqual(a);
  });
});
