/**
 * The simulated operating system under the production code: one seeded scheduler (the
 * simulation's only source of time), processes that can crash, lose power, pause and run
 * on a skewed clock, and a {@link Clock} per process whose timers fire from the scheduler.
 *
 * Determinism: nothing here reads the real clock or Math.random. After every scheduler
 * event the loop lets every promise continuation run (one macrotask turn) before the next
 * event, so the async production code interleaves the same way for the same seed.
 */
import type { Clock, Timer } from '../../../src/platform/clock.js';
import { Scheduler } from '../scheduler.js';

/** Simulated wall-clock time 0 is this date (frames and keys carry plausible timestamps). */
export const SIM_EPOCH = Date.UTC(2026, 0, 1);

/** A process of the simulated world: a VTC or a VTS. */
export class SimProcess {
  readonly name: string;
  /** Bumped at every crash: events of an earlier incarnation are dropped. */
  incarnation = 0;
  alive = true;
  /** Until this scheduler time, events of this process wait (a stop-the-world pause). */
  pausedUntil = 0;
  /** Added to the scheduler's time in what this process's clock reads. */
  skewMs = 0;
  /** Events dropped because the process had crashed, or deferred by a pause. */
  readonly stats = { dropped: 0, deferred: 0 };

  constructor(name: string) {
    this.name = name;
  }
}

/** The scheduler plus the processes' view of it. */
export class SimOs {
  readonly sched = new Scheduler();
  readonly processes = new Map<string, SimProcess>();
  /** Runs after every event, once it has settled (the production world checks every engine's invariants there). */
  afterEvent: (() => void) | null = null;

  process(name: string): SimProcess {
    let p = this.processes.get(name);
    if (p === undefined) {
      p = new SimProcess(name);
      this.processes.set(name, p);
    }
    return p;
  }

  /**
   * Runs `fn` in process `p` at scheduler time `at`, unless `p` has crashed since (its
   * incarnation changed) or is down; a paused process runs it when the pause ends.
   */
  post(p: SimProcess, at: number, fn: () => void): void {
    const inc = p.incarnation;
    const run = (): void => {
      if (p.incarnation !== inc || !p.alive) {
        p.stats.dropped++;
        return;
      }
      if (this.sched.now() < p.pausedUntil) {
        p.stats.deferred++;
        this.sched.at(p.pausedUntil, run);
        return;
      }
      fn();
    };
    this.sched.at(at, run);
  }

  /** The process's clock: skewed wall time, timers on the scheduler (at least 1 ms, as in node). */
  clock(p: SimProcess): Clock {
    const sched = this.sched;
    interface SimTimer extends Timer {
      cancelled: boolean;
    }
    const arm = (t: SimTimer, fn: () => void, ms: number, repeat: boolean): void => {
      const d = Math.max(1, Number.isFinite(ms) ? ms : 1);
      this.post(p, sched.now() + d, () => {
        if (t.cancelled) return;
        if (repeat) arm(t, fn, ms, true);
        fn();
      });
    };
    const cancel = (t: Timer | undefined | null): void => {
      if (t !== undefined && t !== null) (t as SimTimer).cancelled = true;
    };
    return {
      now: () => SIM_EPOCH + sched.now() + p.skewMs,
      setTimeout: (fn, ms) => {
        const t: SimTimer = { cancelled: false, unref: () => t };
        arm(t, fn, ms, false);
        return t;
      },
      clearTimeout: cancel,
      setInterval: (fn, ms) => {
        const t: SimTimer = { cancelled: false, unref: () => t };
        arm(t, fn, ms, true);
        return t;
      },
      clearInterval: cancel,
    };
  }

  /** Lets every pending promise continuation run: one macrotask turn drains the microtask queue. */
  static settle(): Promise<void> {
    return new Promise((r) => setImmediate(r));
  }

  /** Runs events until none is due by `until` (scheduler ms), settling after each. */
  async runUntil(until: number): Promise<void> {
    this.sched.at(until, () => undefined);
    await SimOs.settle();
    while (this.sched.step(until)) {
      await SimOs.settle();
      this.afterEvent?.();
    }
  }

  /** Runs until `done()` holds after an event, or `until` passes; returns whether it held. */
  async runWhile(until: number, done: () => boolean): Promise<boolean> {
    await SimOs.settle();
    if (done()) return true;
    while (this.sched.step(until)) {
      await SimOs.settle();
      this.afterEvent?.();
      if (done()) return true;
    }
    return done();
  }
}
