/**
 * The key journal's on-disk format, decoded in plain TypeScript with its own CRC-32C, so
 * tests and tools can check a journal without trusting the native code that wrote it.
 *
 * A journal is a sequence of records, no file header (docs/key-journal.md):
 * `[u32 LE word][u32 LE CRC-32C][payload]`. The word's low 31 bits are the payload length
 * (1..MAX_RECORD); bit 31 marks a continuation record, one that was not the first of the
 * group written and synced together. A plain record's CRC covers its payload; a
 * continuation record's CRC covers the word's four bytes, then the payload, so the flag
 * cannot flip unnoticed.
 */

export const HEADER_SIZE = 8;
/** Largest payload a record may carry (64 MiB). */
export const MAX_RECORD = 64 * 1024 * 1024;
/** Bit 31 of the header word: the record continues the commit group of the one before it. */
export const CONTINUATION = 0x8000_0000;

const table = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), bytewise; slow but independent of the addon. `seed` continues a previous result. */
export function crc32cJs(data: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function recordCrc(word: number, payload: Uint8Array): number {
  if ((word & CONTINUATION) === 0) return crc32cJs(payload);
  const w = new Uint8Array(4);
  new DataView(w.buffer).setUint32(0, word >>> 0, true);
  return crc32cJs(payload, crc32cJs(w));
}

/**
 * Frames one record. `continuation` marks every record of a commit group but its first;
 * a record written and synced on its own (the reference journal, a compaction snapshot,
 * a salvaged journal) is plain.
 */
export function encodeRecord(payload: Uint8Array, continuation = false): Uint8Array {
  if (payload.length < 1 || payload.length > MAX_RECORD) throw new RangeError(`a record must be 1..${MAX_RECORD} bytes`);
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const view = new DataView(out.buffer);
  const word = (payload.length | (continuation ? CONTINUATION : 0)) >>> 0;
  view.setUint32(0, word, true);
  view.setUint32(4, recordCrc(word, payload), true);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** A whole, intact record at `offset`, or null. */
function parseAt(bytes: Uint8Array, view: DataView, offset: number): { len: number; continuation: boolean } | null {
  if (bytes.length - offset < HEADER_SIZE) return null;
  const word = view.getUint32(offset, true);
  const len = word & ~CONTINUATION;
  if (len === 0 || len > MAX_RECORD || bytes.length - offset - HEADER_SIZE < len) return null;
  if (recordCrc(word, bytes.subarray(offset + HEADER_SIZE, offset + HEADER_SIZE + len)) !== view.getUint32(offset + 4, true)) return null;
  return { len, continuation: (word & CONTINUATION) !== 0 };
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
  for (let r = parseAt(bytes, view, off); r !== null; r = parseAt(bytes, view, off)) {
    records.push(bytes.subarray(off + HEADER_SIZE, off + HEADER_SIZE + r.len));
    offsets.push(off);
    off += HEADER_SIZE + r.len;
  }
  return { records, offsets, validBytes: off };
}

/** A stretch of damaged bytes between valid records (mid-log corruption). */
export interface JournalDamage {
  /** Offset of the first damaged byte: the header of the first record that fails its checks. */
  readonly offset: number;
  /** Bytes from `offset` to the next valid record. */
  readonly length: number;
  /** The seq the first lost record had: every record before it keeps its seq. */
  readonly firstLostSeq: number;
  /**
   * How many records the damaged bytes held, when their length fields still chain exactly
   * from `offset` to the next valid record; null when the damage hit a length field too.
   */
  readonly lostRecords: number | null;
}

/** What recovery makes of a journal image. */
export interface JournalScan {
  /** Every valid record recovery keeps, oldest first (records after mid-log damage included). */
  readonly records: Uint8Array[];
  readonly offsets: number[];
  /** Where the torn tail starts: open cuts the file here. The whole file when nothing is torn. */
  readonly keepBytes: number;
  /** Nonzero bytes in the torn tail (a zero-filled tail is preallocation, not damage). */
  readonly tornBytes: number;
  /** Mid-log damage, oldest first; empty when the journal opens normally. */
  readonly damage: JournalDamage[];
  /** Records of `records` that lie after the first damage. */
  readonly recordsAfterDamage: number;
}

/**
 * Recovery's reading of a journal image. After a record that fails its checks it looks
 * byte by byte for the next valid record. Damage that only plain-free records follow is
 * a torn tail: every record after it continues the commit group it belongs to, and only
 * the last group can be torn (a group is written only once the one before it is synced),
 * so none of them was acknowledged and open cuts them off. Damage that a plain record
 * follows is mid-log corruption: a later group was synced after it, so the damaged
 * records had been acknowledged, and open refuses rather than drop what follows.
 */
export function scanJournal(bytes: Uint8Array): JournalScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  type Item = { kind: 'rec'; off: number; len: number; continuation: boolean } | { kind: 'bad'; off: number; end: number };
  const items: Item[] = [];
  let off = 0;
  while (off < bytes.length) {
    const r = parseAt(bytes, view, off);
    if (r !== null) {
      items.push({ kind: 'rec', off, len: r.len, continuation: r.continuation });
      off += HEADER_SIZE + r.len;
      continue;
    }
    let p = off + 1;
    while (p + HEADER_SIZE <= bytes.length && parseAt(bytes, view, p) === null) p++;
    const end = p + HEADER_SIZE <= bytes.length ? p : bytes.length;
    items.push({ kind: 'bad', off, end });
    off = end;
  }
  let lastPlain = -1;
  items.forEach((it, i) => {
    if (it.kind === 'rec' && !it.continuation) lastPlain = i;
  });
  let torn = items.findIndex((it, i) => it.kind === 'bad' && i > lastPlain);
  if (torn < 0) torn = items.length;
  const records: Uint8Array[] = [];
  const offsets: number[] = [];
  const damage: JournalDamage[] = [];
  let recordsAfterDamage = 0;
  for (const it of items.slice(0, torn)) {
    if (it.kind === 'rec') {
      records.push(bytes.subarray(it.off + HEADER_SIZE, it.off + HEADER_SIZE + it.len));
      offsets.push(it.off);
      if (damage.length > 0) recordsAfterDamage++;
    } else {
      damage.push({ offset: it.off, length: it.end - it.off, firstLostSeq: records.length, lostRecords: chainedCount(view, it.off, it.end) });
    }
  }
  const last = items[torn - 1];
  const keepBytes = last === undefined ? 0 : last.kind === 'rec' ? last.off + HEADER_SIZE + last.len : last.end;
  return { records, offsets, keepBytes, tornBytes: tornLength(bytes, keepBytes), damage, recordsAfterDamage };
}

function chainedCount(view: DataView, from: number, to: number): number | null {
  let n = 0;
  let p = from;
  while (p + HEADER_SIZE <= to) {
    const len = view.getUint32(p, true) & ~CONTINUATION;
    if (len === 0 || len > MAX_RECORD) return null;
    p += HEADER_SIZE + len;
    n++;
  }
  return p === to && n > 0 ? n : null;
}

/**
 * Bytes of torn or corrupt data after the valid prefix, up to the last nonzero byte: a
 * zero-filled tail is preallocation (or a filesystem's zeroing after a crash), not damage.
 */
export function tornLength(bytes: Uint8Array, validBytes: number): number {
  for (let i = bytes.length; i > validBytes; i--) if (bytes[i - 1] !== 0) return i - validBytes;
  return 0;
}
