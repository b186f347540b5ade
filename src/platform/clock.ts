/**
 * Time as the VTC and VTS code sees it: the wall clock and timers, injected so the same
 * code runs over the real clock in production and over a simulated one (test/sim/prod)
 * where every timer fires from a seeded scheduler and time only moves when it says so.
 */

/** A pending timer. `unref` (when the clock has it) lets the process exit while it is pending. */
export interface Timer {
  unref?(): unknown;
}

/**
 * `now` is milliseconds since the epoch on this process's clock (a simulated one may be
 * skewed from the others). Timers never throw; clearing one that already fired or was
 * cleared is a no-op. No cancellation beyond clearing.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(t: Timer | undefined | null): void;
  setInterval(fn: () => void, ms: number): Timer;
  clearInterval(t: Timer | undefined | null): void;
}

/** The process's real clock and timers (Date.now, global setTimeout/setInterval). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => {
    if (t !== undefined && t !== null) clearTimeout(t as NodeJS.Timeout);
  },
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (t) => {
    if (t !== undefined && t !== null) clearInterval(t as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `clock`. */
export const sleepOn = (clock: Clock, ms: number): Promise<void> => new Promise((r) => clock.setTimeout(r, ms));
