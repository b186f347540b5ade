/**
 * The key journal's on-disk format, decoded in plain TypeScript with its own CRC-32C, so
 * tests and tools can check a journal without trusting the native code that wrote it.
 *
 * A journal is a sequence of records, no file header (docs/key-journal.md):
 * `[u32 LE length 1..MAX_RECORD][u32 LE CRC-32C of payload][payload]`.
 */

export const HEADER_SIZE = 8;
/** Largest payload a record may carry (64 MiB). */
export const MAX_RECORD = 64 * 1024 * 1024;

const table = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), bytewise; slow but independent of the addon. */
export function crc32cJs(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Frames one record. */
export function encodeRecord(payload: Uint8Array): Uint8Array {
  if (payload.length < 1 || payload.length > MAX_RECORD) throw new RangeError(`a record must be 1..${MAX_RECORD} bytes`);
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length, true);
  view.setUint32(4, crc32cJs(payload), true);
  out.set(payload, HEADER_SIZE);
  return out;
}

export interface DecodedJournal {
  readonly records: Uint8Array[];
  /** Byte offset of each record's header. */
  readonly offsets: number[];
  /** Length of the valid prefix; bytes beyond it are a torn or corrupt tail. */
  readonly validBytes: number;
}

/** Splits a journal image into records, stopping at the first torn or corrupt one. */
export function decodeJournal(bytes: Uint8Array): DecodedJournal {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  const offsets: number[] = [];
  let off = 0;
  while (bytes.length - off >= HEADER_SIZE) {
    const len = view.getUint32(off, true);
    const crc = view.getUint32(off + 4, true);
    if (len === 0 || len > MAX_RECORD || bytes.length - off - HEADER_SIZE < len) break;
    const payload = bytes.subarray(off + HEADER_SIZE, off + HEADER_SIZE + len);
    if (crc32cJs(payload) !== crc) break;
    records.push(payload);
    offsets.push(off);
    off += HEADER_SIZE + len;
  }
  return { records, offsets, validBytes: off };
}

/**
 * Bytes of torn or corrupt data after the valid prefix, up to the last nonzero byte: a
 * zero-filled tail is preallocation (or a filesystem's zeroing after a crash), not damage.
 */
export function tornLength(bytes: Uint8Array, validBytes: number): number {
  for (let i = bytes.length; i > validBytes; i--) if (bytes[i - 1] !== 0) return i - validBytes;
  return 0;
}
