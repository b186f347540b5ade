/**
 * Authenticated frames between VTCs. Layout (big-endian):
 *
 *   u32 length of the rest | u8 version | u16 from | u16 to | f64 sentAt ms | u32 counter |
 *   u64 from-run | u64 to-run | payload | MAC over everything before it (cluster secret)
 *
 * `from`/`to` index the configured VTC list, so a frame cannot be redirected to another
 * VTC; (from-run, sentAt, counter) is unique per sender, so a receiver rejects a frame it
 * has seen and one older than its freshness window.
 *
 * A frame sent to an earlier run of the receiver could be replayed to this one (the seen-set
 * died with that run). Each codec has a random run id; a sender puts in `to-run` the run id
 * it last saw from the receiver (in the `from-run` of an authentic frame), and a frame whose
 * `to-run` is the receiver's own was sealed for this run, so it cannot be such a replay. Only
 * a frame that names no run or another is judged by the clocks: refused when sent before the
 * receiver started. So a sender whose clock is behind the receiver's, or a receiver whose
 * clock stepped back, is refused at most once per restart, never for as long as the skew:
 * the refusal names the receiver's run to the sender ({@link OpenResult} `announceTo`, and
 * {@link FrameCodec.announce}), and every frame after it is bound to the run.
 */
import { randomBytes } from 'node:crypto';
import { tagsEqual } from '../ptp/mac.js';
import type { MacAlgorithm } from '../ptp/mac.js';

export const FRAME_VERSION = 2;
export const HEADER_SIZE = 4 + 1 + 2 + 2 + 8 + 4 + 8 + 8;
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

/**
 * `announceTo`: an authentic frame refused as sent before this run started, from a sender
 * that does not know this run: answer it with {@link FrameCodec.announce} so its next
 * frames are bound to the run.
 */
export type OpenResult =
  | { readonly ok: true; readonly from: string; readonly payload: Uint8Array; readonly sentAt: number; readonly counter: number; readonly fromRun: bigint }
  | { readonly ok: false; readonly reason: RejectReason; readonly announceTo?: string };

/** How often a run is announced to one sender at most, in ms of the receiver's clock. */
const ANNOUNCE_EVERY_MS = 50;

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
  readonly #run: bigint;
  /** The run id each peer (by index) last showed in an authentic frame. */
  readonly #peerRun = new Map<number, bigint>();
  readonly #announced = new Map<number, number>();
  #lastSentAt = -Infinity;
  #counter = 0;
  readonly #seen = new Map<number, Map<string, number>>();
  #lastPrune = -Infinity;

  /**
   * `bootAt`: the receiver's start time; a frame not bound to this run and sent before it is
   * rejected (the seen-set of an earlier run did not survive). `run`: this codec's run id
   * (random, nonzero, by default).
   */
  constructor(config: FrameConfig, bootAt: number, run?: bigint) {
    this.#vtcs = config.vtcs;
    this.#self = config.vtcs.indexOf(config.self);
    if (this.#self < 0) throw new RangeError(`VTC ${config.self} is not in the configured list`);
    if (config.vtcs.length > 0xffff) throw new RangeError('at most 65535 VTCs');
    this.#mac = config.mac;
    this.#max = config.maxFrame ?? DEFAULT_MAX_FRAME;
    this.#fresh = config.freshnessMs ?? 30_000;
    this.#bootAt = bootAt;
    this.#run = run ?? (randomBytes(8).readBigUInt64BE(0) || 1n);
    if (this.#run <= 0n || this.#run >= 1n << 64n) throw new RangeError('the run id must be a nonzero unsigned 64-bit integer');
  }

  /** This codec's run id, as its frames carry it. */
  get run(): bigint {
    return this.#run;
  }

  /** An empty frame to `to`, which only names this run: the answer to an `announceTo`. */
  announce(to: string, now: number): Uint8Array {
    return this.seal(to, new Uint8Array(0), now);
  }

  /**
   * Seals `payload` for `to`. The payload may come in parts (an RPC's envelope and its
   * body): they are laid one after another into the frame, which is the only copy made of
   * them, so a 256 KiB body is copied once on its way out, not once per layer. The bytes on
   * the wire are the same as for the parts joined into one payload.
   */
  seal(to: string, payload: Uint8Array | readonly Uint8Array[], now: number): Uint8Array {
    const dest = this.#vtcs.indexOf(to);
    if (dest < 0) throw new RangeError(`unknown VTC ${to}`);
    const parts: readonly Uint8Array[] = payload instanceof Uint8Array ? [payload] : payload;
    let payloadSize = 0;
    for (const p of parts) payloadSize += p.length;
    const total = HEADER_SIZE + payloadSize + this.#mac.size;
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
    v.setBigUint64(21, this.#run);
    v.setBigUint64(29, this.#peerRun.get(dest) ?? 0n);
    let at = HEADER_SIZE;
    for (const p of parts) {
      buf.set(p, at);
      at += p.length;
    }
    buf.set(this.#mac.sign(buf.subarray(0, at)), at);
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
    const fromRun = v.getBigUint64(21);
    const bound = v.getBigUint64(29) === this.#run;
    if (fromRun === 0n || !Number.isFinite(sentAt) || sentAt < now - this.#fresh || sentAt > now + this.#fresh) return { ok: false, reason: 'stale' };
    if (!bound && sentAt < this.#bootAt) {
      // Authentic, but maybe a replay of a frame sent to an earlier run: refused, and the
      // sender is told this run (at most every ANNOUNCE_EVERY_MS), so its next frame is bound.
      const last = this.#announced.get(from) ?? -Infinity;
      if (now - last < ANNOUNCE_EVERY_MS && now >= last) return { ok: false, reason: 'stale' };
      this.#announced.set(from, now);
      return { ok: false, reason: 'stale', announceTo: sender };
    }
    let seen = this.#seen.get(from);
    if (seen === undefined) {
      seen = new Map();
      this.#seen.set(from, seen);
    }
    const id = `${fromRun}:${sentAt}:${counter}`;
    if (seen.has(id)) return { ok: false, reason: 'replayed' };
    seen.set(id, sentAt);
    this.#peerRun.set(from, fromRun);
    if (now - this.#lastPrune > this.#fresh) this.#prune(now);
    return { ok: true, from: sender, payload: frame.subarray(HEADER_SIZE, frame.length - this.#mac.size), sentAt, counter, fromRun };
  }

  #prune(now: number): void {
    this.#lastPrune = now;
    for (const seen of this.#seen.values()) for (const [id, at] of seen) if (at < now - this.#fresh) seen.delete(id);
  }
}

/** Why a {@link FrameSplitter} gave up on its stream. */
export type SplitError = 'oversized' | 'malformed';

/**
 * Splits a byte stream into whole frames. A length field above the limit, or one too short
 * to hold a frame header, poisons the stream (the peer is broken or hostile): `push` then
 * returns `error` (and `detail`, saying what the length was) for that push and every later
 * one, and the caller closes the connection.
 *
 * Socket reads are kept as they came, in a list, never joined into one growing buffer: a
 * frame lying inside one read is handed out as a view of it (no copy), and one spread over
 * several reads is copied once, into a buffer of its own size. A frame handed out is never
 * written to again by the splitter.
 */
export class FrameSplitter {
  readonly #max: number;
  /**
   * Reads, oldest first: those before index `#first` are used up (dropped in batches, so a
   * stream of tiny reads costs no quadratic shifting), and `#chunks[#first]` is unconsumed
   * from byte `#head` on.
   */
  #chunks: Uint8Array[] = [];
  #first = 0;
  #head = 0;
  /** Unconsumed bytes in `#chunks`. */
  #pending = 0;
  #poisoned: { error: SplitError; detail: string } | null = null;

  constructor(maxFrame = DEFAULT_MAX_FRAME) {
    this.#max = maxFrame;
  }

  /** Bytes received but not yet handed out as part of a frame. */
  get pending(): number {
    return this.#pending;
  }

  push(chunk: Uint8Array): { frames: Uint8Array[]; error?: SplitError; detail?: string } {
    const frames: Uint8Array[] = [];
    if (this.#poisoned !== null) return { frames, ...this.#poisoned };
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#pending += chunk.length;
    }
    while (this.#pending >= 4) {
      const len = this.#peekLength();
      if (len + 4 > this.#max) {
        this.#poisoned = { error: 'oversized', detail: `frame length field says ${len + 4} bytes, over the limit of ${this.#max}` };
        return { frames, ...this.#poisoned };
      }
      if (len < HEADER_SIZE - 4) {
        this.#poisoned = { error: 'malformed', detail: `frame length field says ${len + 4} bytes, shorter than a frame header (${HEADER_SIZE})` };
        return { frames, ...this.#poisoned };
      }
      if (this.#pending < len + 4) break;
      frames.push(this.#take(len + 4));
    }
    return { frames };
  }

  /** The big-endian u32 at the front of the unconsumed bytes (at least 4 are there). */
  #peekLength(): number {
    let n = 0;
    let got = 0;
    for (let i = this.#first; got < 4; i++) {
      const c = this.#chunks[i] as Uint8Array;
      for (let j = i === this.#first ? this.#head : 0; j < c.length && got < 4; j++, got++) n = n * 256 + (c[j] as number);
    }
    return n;
  }

  /** Removes `size` bytes (no more than `#pending`) from the front: a view when they lie in one read, else one copy. */
  #take(size: number): Uint8Array {
    const first = this.#chunks[this.#first] as Uint8Array;
    if (first.length - this.#head >= size) {
      const out = first.subarray(this.#head, this.#head + size);
      this.#advance(size);
      return out;
    }
    const out = new Uint8Array(size);
    let at = 0;
    while (at < size) {
      const c = this.#chunks[this.#first] as Uint8Array;
      const n = Math.min(c.length - this.#head, size - at);
      out.set(c.subarray(this.#head, this.#head + n), at);
      at += n;
      this.#advance(n);
    }
    return out;
  }

  /** Consumes `n` bytes of the first read (no more than it has left). */
  #advance(n: number): void {
    this.#head += n;
    this.#pending -= n;
    if (this.#head < (this.#chunks[this.#first] as Uint8Array).length) return;
    this.#head = 0;
    this.#first++;
    if (this.#first === this.#chunks.length) {
      this.#chunks = [];
      this.#first = 0;
    } else if (this.#first >= 64 && this.#first * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#first);
      this.#first = 0;
    }
  }
}
