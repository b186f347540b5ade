/**
 * Fault injection between VTCs for scenarios and tests: a RawTransport wrapper that drops
 * frames to and from cut peers, everything when isolated, and a share of frames at random.
 * It only removes frames; it never forges one (authentication stays end to end).
 */
import type { RawTransport } from '../net/transport.js';

export interface LinkFaults {
  /** Drop every frame in and out. */
  isolated: boolean;
  /** Probability in [0, 1] that a frame is lost, each way. */
  loss: number;
  /** Peers this VTC cannot talk to (both ways). */
  readonly cut: Set<string>;
}

export const noFaults = (): LinkFaults => ({ isolated: false, loss: 0, cut: new Set() });

/** Wraps `inner`; `names` is the VTC list frames index (to read a frame's sender). */
export class FaultyTransport implements RawTransport {
  readonly #inner: RawTransport;
  readonly #faults: LinkFaults;
  readonly #names: readonly string[];
  readonly #random: () => number;
  dropped = 0;

  constructor(inner: RawTransport, faults: LinkFaults, names: readonly string[], random: () => number = Math.random) {
    this.#inner = inner;
    this.#faults = faults;
    this.#names = names;
    this.#random = random;
  }

  #drop(peer: string | undefined): boolean {
    const f = this.#faults;
    const d = f.isolated || (peer !== undefined && f.cut.has(peer)) || (f.loss > 0 && this.#random() < f.loss);
    if (d) this.dropped++;
    return d;
  }

  send(to: string, frame: Uint8Array): void {
    if (!this.#drop(to)) this.#inner.send(to, frame);
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    this.#inner.onFrame((frame) => {
      const from = frame.length >= 7 ? this.#names[new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint16(5)] : undefined;
      if (!this.#drop(from)) handler(frame);
    });
  }
}
