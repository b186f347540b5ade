/**
 * Authenticated frames between VTCs. Layout (big-endian):
 *
 *   u32 length of the rest | u8 version | u16 from | u16 to | f64 sentAt ms | u32 counter |
 *   payload | MAC over everything before it (cluster secret)
 *
 * `from`/`to` index the configured VTC list, so a frame cannot be redirected to another
 * VTC; (sentAt, counter) is unique per sender, so a receiver rejects a frame it has seen,
 * one older than its freshness window, or one sent before the receiver itself started.
 */
import { tagsEqual } from '../ptp/mac.js';
import type { MacAlgorithm } from '../ptp/mac.js';

export const FRAME_VERSION = 1;
export const HEADER_SIZE = 4 + 1 + 2 + 2 + 8 + 4;
export const DEFAULT_MAX_FRAME = 1 << 20;

export const RejectReason = {
  malformed: 'malformed',
  oversized: 'oversized',
  badMac: 'bad-mac',
  unknownSender: 'unknown-sender',
  misdirected: 'misdirected',
  replayed: 'replayed',
  stale: 'stale',
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

export interface FrameStats {
  sent: number;
  accepted: number;
  rejected: Record<RejectReason, number>;
}

export const newFrameStats = (): FrameStats => ({
  sent: 0,
  accepted: 0,
  rejected: { malformed: 0, oversized: 0, 'bad-mac': 0, 'unknown-sender': 0, misdirected: 0, replayed: 0, stale: 0 },
});

export interface FrameConfig {
  /** Every configured VTC; a frame's `from` and `to` index this list. */
  readonly vtcs: readonly string[];
  readonly self: string;
  readonly mac: MacAlgorithm;
  /** Largest whole frame accepted or sent, in bytes. */
  readonly maxFrame?: number;
  /** How far a frame's sentAt may be from the receiver's clock, in ms (default 30 s). */
  readonly freshnessMs?: number;
}

export type OpenResult = { readonly ok: true; readonly from: string; readonly payload: Uint8Array; readonly sentAt: number; readonly counter: number } | { readonly ok: false; readonly reason: RejectReason };

/**
 * Seals outgoing and opens incoming frames for one VTC. Synchronous and in memory: no
 * timeouts; a rejected frame is counted in `stats` and reported, never thrown.
 */
export class FrameCodec {
  readonly stats: FrameStats = newFrameStats();
  readonly #vtcs: readonly string[];
  readonly #self: number;
  readonly #mac: MacAlgorithm;
  readonly #max: number;
  readonly #fresh: number;
  readonly #bootAt: number;
  #lastSentAt = -Infinity;
  #counter = 0;
  readonly #seen = new Map<number, Map<string, number>>();
  #lastPrune = -Infinity;

  /** `bootAt`: the receiver's start time; frames sent before it are rejected (the seen-set did not survive). */
  constructor(config: FrameConfig, bootAt: number) {
    this.#vtcs = config.vtcs;
    this.#self = config.vtcs.indexOf(config.self);
    if (this.#self < 0) throw new RangeError(`VTC ${config.self} is not in the configured list`);
    if (config.vtcs.length > 0xffff) throw new RangeError('at most 65535 VTCs');
    this.#mac = config.mac;
    this.#max = config.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#fresh = config.freshnessMs ?? 30_000;
    this.#bootAt = bootAt;
  }

  seal(to: string, payload: Uint8Array, now: number): Uint8Array {
    const dest = this.#vtcs.indexOf(to);
    if (dest < 0) throw new RangeError(`unknown VTC ${to}`);
    const total = HEADER_SIZE + payload.length + this.#mac.size;
    if (total > this.#max) throw new RangeError(`frame of ${total} bytes exceeds the limit of ${this.#max}`);
    if (now !== this.#lastSentAt) {
      this.#lastSentAt = now;
      this.#counter = 0;
    }
    const buf = new Uint8Array(total);
    const v = new DataView(buf.buffer);
    v.setUint32(0, total - 4);
    v.setUint8(4, FRAME_VERSION);
    v.setUint16(5, this.#self);
    v.setUint16(7, dest);
    v.setFloat64(9, now);
    v.setUint32(17, this.#counter++);
    buf.set(payload, HEADER_SIZE);
    buf.set(this.#mac.sign(buf.subarray(0, HEADER_SIZE + payload.length)), HEADER_SIZE + payload.length);
    this.stats.sent++;
    return buf;
  }

  open(frame: Uint8Array, now: number): OpenResult {
    const r = this.#open(frame, now);
    if (r.ok) this.stats.accepted++;
    else this.stats.rejected[r.reason]++;
    return r;
  }

  #open(frame: Uint8Array, now: number): OpenResult {
    if (frame.length > this.#max) return { ok: false, reason: 'oversized' };
    if (frame.length < HEADER_SIZE + this.#mac.size) return { ok: false, reason: 'malformed' };
    const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    if (v.getUint32(0) !== frame.length - 4 || v.getUint8(4) !== FRAME_VERSION) return { ok: false, reason: 'malformed' };
    const body = frame.subarray(0, frame.length - this.#mac.size);
    if (!tagsEqual(this.#mac.sign(body), frame.subarray(frame.length - this.#mac.size))) return { ok: false, reason: 'bad-mac' };
    const from = v.getUint16(5);
    const sender = this.#vtcs[from];
    if (sender === undefined || from === this.#self) return { ok: false, reason: 'unknown-sender' };
    if (v.getUint16(7) !== this.#self) return { ok: false, reason: 'misdirected' };
    const sentAt = v.getFloat64(9);
    const counter = v.getUint32(17);
    if (!Number.isFinite(sentAt) || sentAt < now - this.#fresh || sentAt > now + this.#fresh || sentAt < this.#bootAt) return { ok: false, reason: 'stale' };
    let seen = this.#seen.get(from);
    if (seen === undefined) {
      seen = new Map();
      this.#seen.set(from, seen);
    }
    const id = `${sentAt}:${counter}`;
    if (seen.has(id)) return { ok: false, reason: 'replayed' };
    seen.set(id, sentAt);
    if (now - this.#lastPrune > this.#fresh) this.#prune(now);
    return { ok: true, from: sender, payload: frame.subarray(HEADER_SIZE, frame.length - this.#mac.size), sentAt, counter };
  }

  #prune(now: number): void {
    this.#lastPrune = now;
    for (const seen of this.#seen.values()) for (const [id, at] of seen) if (at < now - this.#fresh) seen.delete(id);
  }
}

/**
 * Splits a byte stream into whole frames. A length field above the limit poisons the
 * stream (the peer is broken or hostile): `push` then returns `oversized` and the
 * caller closes the connection.
 */
export class FrameSplitter {
  readonly #max: number;
  #buf: Uint8Array = new Uint8Array(0);
  constructor(maxFrame = DEFAULT_MAX_FRAME) {
    this.#max = maxFrame;
  }
  push(chunk: Uint8Array): { frames: Uint8Array[]; error?: 'oversized' | 'malformed' } {
    const joined = new Uint8Array(this.#buf.length + chunk.length);
    joined.set(this.#buf);
    joined.set(chunk, this.#buf.length);
    const frames: Uint8Array[] = [];
    let off = 0;
    while (joined.length - off >= 4) {
      const len = new DataView(joined.buffer, joined.byteOffset + off, 4).getUint32(0);
      if (len + 4 > this.#max) return { frames, error: 'oversized' };
      if (len < HEADER_SIZE - 4) return { frames, error: 'malformed' };
      if (joined.length - off < len + 4) break;
      frames.push(joined.slice(off, off + 4 + len));
      off += 4 + len;
    }
    this.#buf = joined.slice(off);
    return { frames };
  }
}
