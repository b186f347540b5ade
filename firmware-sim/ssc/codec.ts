/**
 * What the drive does to a logical block between the host and the medium: compression
 * (mode page 0Fh DCE) and AES-256-GCM encryption (SECURITY PROTOCOL OUT, page 0010h).
 *
 * A block the drive changed is stored as an envelope inside the record payload, so the
 * cartridge format is untouched (docs/emulator.md, "Compression and encryption"):
 *
 * | Offset | Size | Field |
 * |---|---|---|
 * | 0 | 8 | magic `89 50 54 42 4B 0D 0A 1A` |
 * | 8 | 1 | envelope version, 1 |
 * | 9 | 1 | flags: bit 0 deflate (raw), bit 1 AES-256-GCM, bits 7..4 GCM segments less one (S) |
 * | 10 | 1 | U-KAD length (0..32) |
 * | 11 | 1 | A-KAD length (0..12) |
 * | 12 | 4 | the block's length as the host wrote it |
 * | 16 | 12 | GCM nonce (zero without encryption) |
 * | 28 | 16 x S | a GCM tag per segment (one zero tag without encryption) |
 * | 28 + 16 S | n | U-KAD, A-KAD, then the stored body |
 *
 * An encrypted body is cut into S equal segments (the last shorter), each sealed with the
 * nonce whose last 32 bits are XORed with the segment's index, and the same additional
 * data: envelope bytes 0..15 and the A-KAD. The drive writes S = 2 for bodies over
 * 64 KiB, sealing the second segment on the addon's helper thread while it seals the
 * first (S = 1 below that); readers accept up to 16.
 *
 * Compression comes first, then encryption (an encrypted body does not compress). A host
 * block that happens to begin with the magic is stored in an envelope with no flags, so a
 * plain record never reads as an envelope. The key never reaches the medium: only the
 * nonce, the tag and the key-associated data the host gave. Sealing is Node's OpenSSL
 * through the addon (no allocation per block); opening is node:crypto.
 */
import { createDecipheriv, randomFillSync } from 'node:crypto';
import { constants as zc, deflateRawSync, inflateRawSync } from 'node:zlib';
import { gcmSeal, gcmSeal2 } from '../../src/native.js';

export const ENVELOPE_MAGIC = Uint8Array.of(0x89, 0x50, 0x54, 0x42, 0x4b, 0x0d, 0x0a, 0x1a);
export const ENVELOPE_HEADER = 44;
const VERSION = 1;
const F_DEFLATE = 0x01;
const F_GCM = 0x02;
export const MAX_UKAD = 32;
export const MAX_AKAD = 12;
/** Largest block the drive accepts (READ BLOCK LIMITS); an envelope never claims more. */
const MAX_HOST_LENGTH = 0x800000;

/** Deflate level: level 3 measured faster than 1 on typical backup data, with a better ratio. */
const LEVEL = 3;
/** Bytes sampled to decide whether a block is worth compressing. */
const SAMPLE = 4096;
/**
 * The chi-square statistic of a sample's byte histogram (255 degrees of freedom) that
 * random bytes give: 255 +- 23. A sample inside this band looks like random bytes
 * (encrypted or already compressed data) and its block is stored as it is; text, records,
 * zeros and periodic patterns (which give 0) fall outside and are compressed.
 */
const RANDOM_CHI2 = [100, 420] as const;
/** GCM segments of one block at most (flags bits 7..4 hold the count less one). */
const MAX_SEGMENTS = 16;
/** A body is cut into segments of at least this many bytes. */
const MIN_SEGMENT = 64 * 1024;

/**
 * A buffer the drive reuses for the payloads it builds: the cartridge copies a payload
 * into the file before the next block is encoded, so one buffer serves every block.
 */
export class Scratch {
  private buf = new Uint8Array(0);
  get(n: number): Uint8Array {
    if (this.buf.length < n) this.buf = new Uint8Array(Math.max(n, this.buf.length * 2));
    return this.buf.subarray(0, n);
  }
}

/** Key and key-associated data in force for writing or reading. */
export interface BlockKey {
  /** 32 bytes. */
  readonly key: Uint8Array;
  /** Unauthenticated key-associated data, stored in the clear. */
  readonly ukad?: Uint8Array;
  /** Authenticated key-associated data: stored in the clear, covered by the tag. */
  readonly akad?: Uint8Array;
}

/** How one block is to be stored. */
export interface EncodeOptions {
  readonly compress: boolean;
  readonly encrypt?: BlockKey;
}

/** A stored block, decoded as far as the drive's settings allow. */
export interface StoredBlock {
  /** True when the payload is an envelope. */
  readonly enveloped: boolean;
  readonly compressed: boolean;
  readonly encrypted: boolean;
  /** The length the host wrote. */
  readonly hostLength: number;
  readonly ukad?: Uint8Array;
  readonly akad?: Uint8Array;
}

/** Why a stored block cannot be handed out. */
export class BlockDecodeError extends Error {
  override readonly name = 'BlockDecodeError';
  constructor(
    readonly reason: 'malformed' | 'wrong-key',
    message: string,
  ) {
    super(message);
  }
}

function startsWithMagic(b: Uint8Array): boolean {
  if (b.length < ENVELOPE_MAGIC.length) return false;
  for (let i = 0; i < ENVELOPE_MAGIC.length; i++) if (b[i] !== ENVELOPE_MAGIC[i]) return false;
  return true;
}

/**
 * Whether deflate is worth running on `data`: not when a sample of it has the byte
 * histogram of random bytes (deflate would spend ~50 MB/s on it for nothing).
 */
export function worthCompressing(data: Uint8Array): boolean {
  if (data.length < 64) return false;
  const n = Math.min(SAMPLE, data.length);
  if (n < SAMPLE) return true; // too short to judge: try it
  // One element type for the loop (hosts hand in Buffers and Uint8Arrays alike).
  const sample = new Uint8Array(data.buffer, data.byteOffset, n);
  const h = new Int32Array(256);
  for (let i = 0; i < n; i++) h[sample[i] as number]! += 1;
  const e = n / 256;
  let chi2 = 0;
  for (let i = 0; i < 256; i++) {
    const d = (h[i] ?? 0) - e;
    chi2 += (d * d) / e;
  }
  return chi2 < RANDOM_CHI2[0] || chi2 > RANDOM_CHI2[1];
}

/** An envelope being built: the header is written, the body goes at `at`. */
interface Draft {
  readonly out: Uint8Array;
  readonly body: Uint8Array;
  /** Where the body starts in `out`. */
  readonly at: number;
  readonly segments: number;
  readonly flags: number;
  readonly aad: Uint8Array;
}

/** Compresses if asked and worth it; undefined when the block is stored as it came. */
function draft(data: Uint8Array, o: EncodeOptions, segments: number, scratch?: Scratch): Draft | undefined {
  let body: Uint8Array = data;
  let flags = 0;
  if (o.compress && worthCompressing(data)) {
    const packed = deflateRawSync(data, { level: LEVEL, strategy: zc.Z_DEFAULT_STRATEGY });
    if (packed.length + ENVELOPE_HEADER < data.length) {
      body = packed;
      flags |= F_DEFLATE;
    }
  }
  const k = o.encrypt;
  if (!k && flags === 0 && !startsWithMagic(data)) return undefined;
  const n = k ? Math.max(1, Math.min(MAX_SEGMENTS, segments, Math.ceil(body.length / MIN_SEGMENT))) : 1;
  if (k) flags |= F_GCM | ((n - 1) << 4);
  const ukad = k?.ukad ?? new Uint8Array(0);
  const akad = k?.akad ?? new Uint8Array(0);
  const at = 28 + 16 * n + ukad.length + akad.length;
  const out = scratch ? scratch.get(at + body.length) : new Uint8Array(at + body.length);
  out.fill(0, 0, at);
  out.set(ENVELOPE_MAGIC, 0);
  out[8] = VERSION;
  out[9] = flags;
  out[10] = ukad.length;
  out[11] = akad.length;
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(12, data.length);
  out.set(ukad, 28 + 16 * n);
  out.set(akad, 28 + 16 * n + ukad.length);
  if (k) randomFillSync(out.subarray(16, 28));
  else out.set(body, at);
  return { out, body, at, segments: n, flags, aad: aad(out, akad) };
}

/** The nonce of segment `i`: the envelope's nonce with its last 32 bits XORed with `i`. */
function segmentNonce(head: Uint8Array, i: number): Uint8Array {
  const iv = Uint8Array.from(head.subarray(16, 28));
  const v = new DataView(iv.buffer);
  v.setUint32(8, (v.getUint32(8) ^ i) >>> 0);
  return iv;
}

/** Bounds of segment `i` of `n` over a body of `len` bytes. */
function segmentRange(len: number, n: number, i: number): [number, number] {
  const size = Math.ceil(len / n);
  return [Math.min(len, i * size), Math.min(len, (i + 1) * size)];
}

/**
 * Encrypts segment `i` of the draft here, on the calling thread, straight into the
 * payload buffer (native/gcm.cc): node:crypto's update() would hand back a new buffer per
 * call, and the garbage collections that much short-lived memory causes cost more than
 * the cipher (bench/drive-features: encryption 0.55x of plain with it, 0.72x without).
 */
function sealSegment(d: Draft, key: Uint8Array, i: number): void {
  const [from, to] = segmentRange(d.body.length, d.segments, i);
  gcmSeal(key, segmentNonce(d.out, i), d.aad, d.body.subarray(from, to), d.out.subarray(d.at + from, d.at + to), d.out.subarray(28 + 16 * i, 44 + 16 * i));
}

/** Seals a two-segment draft, segment 1 on the addon's helper thread while this one seals segment 0. */
function sealPair(d: Draft, key: Uint8Array): void {
  const [a0, a1] = segmentRange(d.body.length, 2, 0);
  const [b0, b1] = segmentRange(d.body.length, 2, 1);
  const o = d.out;
  gcmSeal2(key, segmentNonce(o, 0), segmentNonce(o, 1), d.aad, d.body.subarray(a0, a1), o.subarray(d.at + a0, d.at + a1), o.subarray(28, 44), d.body.subarray(b0, b1), o.subarray(d.at + b0, d.at + b1), o.subarray(44, 60));
}

/**
 * The payload to store for a host block. A block neither compressed nor encrypted (and not
 * beginning with the magic) is stored as it came, without a copy. `segments` cuts an
 * encrypted body into that many GCM segments (of at least 64 KiB each).
 */
export function encodeBlock(data: Uint8Array, o: EncodeOptions, scratch?: Scratch, segments = 1): { payload: Uint8Array; compressed: boolean } {
  const d = draft(data, o, segments, scratch);
  if (!d) return { payload: data, compressed: false };
  if (o.encrypt && d.segments === 2) sealPair(d, o.encrypt.key);
  else if (o.encrypt) for (let i = 0; i < d.segments; i++) sealSegment(d, o.encrypt.key, i);
  return { payload: d.out, compressed: (d.flags & F_DEFLATE) !== 0 };
}

/** The additional authenticated data of every segment: envelope bytes 0..15 (flags, lengths) and the A-KAD. */
function aad(head: Uint8Array, akad: Uint8Array): Uint8Array {
  const a = new Uint8Array(16 + akad.length);
  a.set(head.subarray(0, 16), 0);
  a.set(akad, 16);
  return a;
}

/** Where the KADs of an envelope start: after its tags. */
function tagsEnd(payload: Uint8Array): number {
  const flags = payload[9] ?? 0;
  return 28 + 16 * ((flags & F_GCM) !== 0 ? (flags >> 4) + 1 : 1);
}

/** What a stored payload is, without decoding its body. */
export function inspectBlock(payload: Uint8Array): StoredBlock {
  const plain = { enveloped: false, compressed: false, encrypted: false, hostLength: payload.length };
  const flags = payload[9] ?? 0;
  if (!startsWithMagic(payload) || payload.length < ENVELOPE_HEADER || payload[8] !== VERSION || (flags & 0x0c) !== 0) return plain;
  if ((flags & F_GCM) === 0 && flags >> 4 !== 0) return plain;
  const ul = payload[10] ?? 0;
  const al = payload[11] ?? 0;
  const k = tagsEnd(payload);
  const hostLength = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(12);
  if (ul > MAX_UKAD || al > MAX_AKAD || k + ul + al > payload.length || hostLength > MAX_HOST_LENGTH) return plain;
  return {
    enveloped: true,
    compressed: (flags & F_DEFLATE) !== 0,
    encrypted: (flags & F_GCM) !== 0,
    hostLength,
    ...(ul ? { ukad: payload.slice(k, k + ul) } : {}),
    ...(al ? { akad: payload.slice(k + ul, k + ul + al) } : {}),
  };
}

/** Where the body of an envelope starts. */
function bodyStart(payload: Uint8Array): number {
  return tagsEnd(payload) + (payload[10] ?? 0) + (payload[11] ?? 0);
}

/** The body of an encrypted envelope, decrypted and authenticated with `key`, segment by segment. */
function decrypt(payload: Uint8Array, key: Uint8Array | undefined): Uint8Array {
  if (!key) throw new BlockDecodeError('wrong-key', 'the block is encrypted and no key is set');
  const n = ((payload[9] ?? 0) >> 4) + 1;
  const k = tagsEnd(payload);
  const at = bodyStart(payload);
  const body = payload.subarray(at);
  const additional = aad(payload, payload.subarray(k + (payload[10] ?? 0), at));
  const plain = new Uint8Array(body.length);
  for (let i = 0; i < n; i++) {
    const [from, to] = segmentRange(body.length, n, i);
    const d = createDecipheriv('aes-256-gcm', key, segmentNonce(payload, i));
    d.setAAD(additional);
    d.setAuthTag(payload.subarray(28 + 16 * i, 44 + 16 * i));
    plain.set(d.update(body.subarray(from, to)), from);
    try {
      d.final();
    } catch {
      throw new BlockDecodeError('wrong-key', 'the block does not authenticate with the key set');
    }
  }
  return plain;
}

/**
 * The host's bytes of a stored payload. `key` is needed for an encrypted block; a wrong key
 * throws {@link BlockDecodeError} `wrong-key`, a body that does not decode `malformed`.
 */
export function decodeBlock(payload: Uint8Array, info: StoredBlock, key?: Uint8Array): Uint8Array {
  if (!info.enveloped) return payload;
  let body: Uint8Array = info.encrypted ? decrypt(payload, key) : payload.subarray(bodyStart(payload));
  if (info.compressed) {
    try {
      body = inflateRawSync(body, { maxOutputLength: info.hostLength + 1 });
    } catch (e) {
      throw new BlockDecodeError('malformed', `the compressed block does not inflate: ${(e as Error).message}`);
    }
  }
  if (body.length !== info.hostLength) throw new BlockDecodeError('malformed', `the block decodes to ${body.length} bytes, its header says ${info.hostLength}`);
  // A plain Uint8Array view (zlib and crypto hand out Buffers), as undecoded blocks are.
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

/** True when `key` opens an encrypted block (next block encryption status 5h rather than 6h). */
export function keyOpens(payload: Uint8Array, info: StoredBlock, key: Uint8Array | undefined): boolean {
  if (!info.encrypted || !key) return false;
  try {
    decrypt(payload, key);
    return true;
  } catch (e) {
    if (e instanceof BlockDecodeError) return false;
    throw e;
  }
}
