/**
 * A simulated network for deterministic tests: frames between named endpoints with seeded
 * loss, duplication, delay (hence reordering) and partitions, driven by a simulated clock.
 * It carries raw frames, so the same authentication (SecureChannel) runs as over TCP, and
 * an adversary can capture, replay and inject frames.
 */
import type { Random } from '../ptp/random.js';
import type { RawTransport } from './transport.js';

/** The simulated clock's event queue, as the network needs it. */
export interface SimScheduler {
  now(): number;
  at(time: number, fn: () => void): void;
}

export interface SimNetworkOptions {
  loss: number;
  duplicate: number;
  minDelay: number;
  maxDelay: number;
}

export interface SimNetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  blocked: number;
  injected: number;
}

export class SimNetwork {
  readonly #sched: SimScheduler;
  readonly #rng: Random;
  options: SimNetworkOptions;
  readonly #handlers = new Map<string, (frame: Uint8Array) => void>();
  readonly #down = new Set<string>();
  readonly #cut = new Set<string>();
  readonly stats: SimNetworkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, blocked: 0, injected: 0 };
  /** Sees every frame put on the wire (an eavesdropper for replay tests). */
  onWire: ((from: string, to: string, frame: Uint8Array) => void) | null = null;

  constructor(sched: SimScheduler, rng: Random, options: SimNetworkOptions) {
    this.#sched = sched;
    this.#rng = rng;
    this.options = options;
  }

  endpoint(name: string): RawTransport {
    return {
      send: (to, frame) => this.#send(name, to, frame),
      onFrame: (h) => {
        this.#handlers.set(name, h);
      },
    };
  }

  /** A crashed endpoint neither sends nor receives. */
  setDown(name: string, down: boolean): void {
    if (down) this.#down.add(name);
    else this.#down.delete(name);
  }
  cut(a: string, b: string): void {
    this.#cut.add(a < b ? `${a}|${b}` : `${b}|${a}`);
  }
  linked(a: string, b: string): boolean {
    return !this.#cut.has(a < b ? `${a}|${b}` : `${b}|${a}`);
  }
  /** Splits the endpoints into groups that cannot reach each other. */
  partition(groups: readonly (readonly string[])[]): void {
    for (let i = 0; i < groups.length; i++)
      for (let j = i + 1; j < groups.length; j++) for (const a of groups[i] ?? []) for (const b of groups[j] ?? []) this.cut(a, b);
  }
  heal(): void {
    this.#cut.clear();
  }

  /** Puts a frame on the wire to `to` as if from nowhere (an adversary). */
  inject(to: string, frame: Uint8Array, delay = 0): void {
    this.stats.injected++;
    this.#sched.at(this.#sched.now() + delay, () => {
      if (!this.#down.has(to)) this.#handlers.get(to)?.(frame);
    });
  }

  #send(from: string, to: string, frame: Uint8Array): void {
    this.stats.sent++;
    this.onWire?.(from, to, frame);
    if (this.#down.has(from)) return;
    if (!this.linked(from, to)) {
      this.stats.blocked++;
      return;
    }
    if (this.#rng.next() < this.options.loss) {
      this.stats.lost++;
      return;
    }
    const copies = this.#rng.next() < this.options.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const { minDelay, maxDelay } = this.options;
      const at = this.#sched.now() + minDelay + this.#rng.next() * (maxDelay - minDelay);
      this.#sched.at(at, () => {
        // A partition or crash that happens while the frame is in flight drops it too.
        if (this.#down.has(to) || !this.linked(from, to)) return;
        this.stats.delivered++;
        this.#handlers.get(to)?.(frame);
      });
    }
  }
}
