/**
 * The network as the protocol core sees it, and the secure channel that puts frames
 * (src/net/frame.ts) between the core and any raw transport (TCP or simulated).
 */
import { FrameCodec } from './frame.js';
import type { FrameConfig, FrameStats } from './frame.js';

/**
 * A raw, unauthenticated datagram carrier between VTCs: whole frames in, whole frames out.
 * `send` never throws for network trouble: an unreachable peer means the frame is lost
 * (counted by the implementation); ordering and delivery are not guaranteed. There is no
 * cancellation of a frame once sent.
 */
export interface RawTransport {
  send(to: string, frame: Uint8Array): void;
  /** Sets the one receiver of incoming frames; `from` is only the carrier's hint and is not trusted. */
  onFrame(handler: (frame: Uint8Array) => void): void;
}

/**
 * Authenticated messaging between VTCs (what the protocol core calls `Network`). `send`
 * is fire-and-forget: loss, delay, duplication and reordering are the protocol's problem,
 * not errors. Frames that fail authentication are counted in `stats` and never delivered.
 * A payload the codec cannot encode (too large) throws RangeError at `send`.
 */
export interface Network {
  send(to: string, message: unknown): void;
  onDeliver(handler: (from: string, message: unknown) => void): void;
  readonly stats: FrameStats & { undecodable: number };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Messages as JSON inside authenticated frames. */
export class SecureChannel implements Network {
  readonly #raw: RawTransport;
  readonly #codec: FrameCodec;
  readonly #now: () => number;
  #handler: (from: string, message: unknown) => void = () => undefined;
  readonly stats: FrameStats & { undecodable: number };

  constructor(raw: RawTransport, config: FrameConfig, now: () => number) {
    this.#raw = raw;
    this.#now = now;
    this.#codec = new FrameCodec(config, now());
    this.stats = Object.assign(this.#codec.stats, { undecodable: 0 });
    raw.onFrame((f) => this.#receive(f));
  }

  send(to: string, message: unknown): void {
    this.#raw.send(to, this.#codec.seal(to, encoder.encode(JSON.stringify(message)), this.#now()));
  }

  onDeliver(handler: (from: string, message: unknown) => void): void {
    this.#handler = handler;
  }

  #receive(frame: Uint8Array): void {
    const r = this.#codec.open(frame, this.#now());
    if (!r.ok) {
      // The sender does not know this run yet: name it, so its next frames are bound to it (frame.ts).
      if (r.announceTo !== undefined) this.#raw.send(r.announceTo, this.#codec.announce(r.announceTo, this.#now()));
      return;
    }
    // An announcement only names the sender's run (the codec has learned it).
    if (r.payload.length === 0) return;
    let msg: unknown;
    try {
      msg = JSON.parse(decoder.decode(r.payload));
    } catch {
      this.stats.undecodable++;
      return;
    }
    this.#handler(r.from, msg);
  }
}
