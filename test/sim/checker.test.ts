/**
 * The invariant checker must catch a broken rule, or a green simulation proves nothing:
 * with VTCs voting YES without the key checks, some schedule must fail on safety.
 */
import { describe, expect, it } from 'vitest';
import { runSchedule } from './schedule.js';
import { InvariantViolation, World } from './world.js';

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

  it('replays a seed exactly', () => {
    const a = runSchedule(4242);
    const b = runSchedule(4242);
    expect(b).toEqual(a);
  });
});
