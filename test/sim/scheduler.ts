/** A simulated clock: a binary heap of events ordered by (time, insertion order). */
import type { SimScheduler } from '../../src/net/sim-network.js';

interface Ev {
  readonly time: number;
  readonly seq: number;
  readonly fn: () => void;
  /** Where it was scheduled: captured only near the livelock bound, to name the loop. */
  readonly site?: string;
}

/** Events whose scheduling site a livelock report names. */
const SITE_WINDOW = 400;

/** The first stack frames outside the scheduler and the simulated OS: the code that scheduled an event. */
function siteOf(stack: string | undefined): string {
  const frames = (stack ?? '').split('\n').slice(1).map((l) => l.trim());
  const own = frames.filter((f) => !/test\/sim\/(scheduler|prod\/sim-os|prod\/sim-net|prod\/sim-fs)\.ts/u.test(f) && !f.includes('node:internal'));
  return own.slice(0, 4).join(' <- ') || frames.slice(0, 4).join(' <- ');
}

/** Events one schedule may run before it counts as a livelock (PTPVTS_MAX_EVENTS lowers it to find one fast). */
export const MAX_EVENTS = Number(process.env.PTPVTS_MAX_EVENTS ?? 2_000_000);

export class Scheduler implements SimScheduler {
  #now = 0;
  #seq = 0;
  readonly #heap: Ev[] = [];
  /** Scheduling sites of the events run near the livelock bound. */
  readonly #recent: string[] = [];
  steps = 0;

  #sites(): string {
    const count = new Map<string, number>();
    for (const s of this.#recent) count.set(s, (count.get(s) ?? 0) + 1);
    return [...count].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([s, n]) => `  ${n}x ${s}`).join('\n') || '  (no sites recorded)';
  }

  now(): number {
    return this.#now;
  }
  at(time: number, fn: () => void): void {
    // Sites are captured near the bound, and for one event in 1009 all along: a loop fed by
    // events scheduled long before (a flood of timers) shows in the sample.
    const seq = this.#seq++;
    const ev: Ev = { time: Math.max(time, this.#now), seq, fn, ...(this.steps > MAX_EVENTS - SITE_WINDOW || seq % 1009 === 0 ? { site: siteOf(new Error().stack) } : {}) };
    const h = this.#heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = h[p]!;
      if (pe.time < ev.time || (pe.time === ev.time && pe.seq < ev.seq)) break;
      h[i] = pe;
      i = p;
    }
    h[i] = ev;
  }
  /** Runs the next event; false when none is due by `until`. */
  step(until: number): boolean {
    const h = this.#heap;
    const top = h[0];
    if (top === undefined || top.time > until) return false;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      while (true) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (h[r]!.time < h[l]!.time || (h[r]!.time === h[l]!.time && h[r]!.seq < h[l]!.seq)) ? r : l;
        const ce = h[c]!;
        if (last.time < ce.time || (last.time === ce.time && last.seq < ce.seq)) break;
        h[i] = ce;
        i = c;
      }
      h[i] = last;
    }
    this.#now = top.time;
    this.steps++;
    // A schedule is short; this many events means messages or timers feed each other
    // without end (a livelock), which is a finding to report with its seed, not a hang.
    if (this.steps > MAX_EVENTS) throw new Error(`livelock: more than ${MAX_EVENTS} events by simulated time ${this.#now} ms; the last events were scheduled by:\n${this.#sites()}`);
    if (top.site !== undefined && this.steps > MAX_EVENTS - 200 * SITE_WINDOW) this.#recent.push(top.site);
    top.fn();
    return true;
  }
}
