/**
 * Walks the record log of a cartridge file. Used on open (to rebuild the position index)
 * and by the media check (to report damage). A damaged stretch followed by valid records
 * becomes one damaged logical object, so a flipped byte costs one block rather than the
 * rest of the tape; damage with nothing valid after it is a torn tail and is ignored.
 */
import { readSync } from 'node:fs';
import { decodeRecordHeader, LOG_OFFSET, payloadCrcOk, RECORD_HEADER_SIZE, RECORD_MAGIC, RecordKind, type RecordHeader } from './format.js';

/** Why a stretch of the log could not be used. */
export type DamageReason = 'bad-header' | 'bad-crc';

export interface ScanEntry {
  readonly offset: number;
  /** File offset just past this entry. */
  readonly end: number;
  readonly kind: 'block' | 'filemark' | 'eod' | 'sync' | 'damaged';
  /** Payload bytes for blocks (also for a damaged block whose header survived); 0 otherwise. */
  readonly length: number;
  readonly generation: number;
  readonly reason?: DamageReason;
  /** CRC-32C the header claims for the payload (blocks only). */
  readonly payloadCrc?: number;
}

export interface ScanResult {
  /** Every usable entry in file order, torn tail excluded. */
  readonly entries: readonly ScanEntry[];
  /** File offset just past the last usable entry. */
  readonly endOfLog: number;
  /** File offset just past the last sync point marker (LOG_OFFSET when there is none). */
  readonly lastSyncEnd: number;
  readonly syncPoints: number;
  readonly maxGeneration: number;
  /** Bytes after {@link endOfLog}: a write cut short, or records orphaned by an overwrite. */
  readonly tornBytes: number;
  /** The tail held whole records of an older generation (an overwrite whose truncate was lost). */
  readonly staleTail: boolean;
}

/** A read-through window so a scan of many small records does not cost a syscall each. */
class Window {
  private buf = new Uint8Array(0);
  private base = 0;
  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {}

  get(pos: number, n: number): Uint8Array {
    const want = Math.max(0, Math.min(n, this.size - pos));
    if (pos >= this.base && pos + want <= this.base + this.buf.length) return this.buf.subarray(pos - this.base, pos - this.base + want);
    const len = Math.max(want, Math.min(1 << 20, this.size - pos));
    const b = new Uint8Array(len);
    let got = 0;
    while (got < len) {
      const r = readSync(this.fd, b, got, len - got, pos + got);
      if (r === 0) break;
      got += r;
    }
    this.buf = b.subarray(0, got);
    this.base = pos;
    return this.buf.subarray(0, Math.min(want, got));
  }
}

function usableHeader(w: Window, off: number, size: number, minGen: number): RecordHeader | undefined {
  const h = decodeRecordHeader(w.get(off, RECORD_HEADER_SIZE));
  if (!h || h.generation < minGen) return undefined;
  if (off + RECORD_HEADER_SIZE + h.length > size) return undefined;
  return h;
}

/** Next offset after `from` holding a header that could continue the log, if any. */
function resync(w: Window, from: number, size: number, minGen: number): number | undefined {
  const m0 = (RECORD_MAGIC >>> 24) & 0xff;
  for (let pos = from; pos + RECORD_HEADER_SIZE <= size; ) {
    const chunk = w.get(pos, 1 << 20);
    if (chunk.length < 4) return undefined;
    let i = chunk.indexOf(m0);
    while (i >= 0 && i + 4 <= chunk.length) {
      if (usableHeader(w, pos + i, size, minGen)) return pos + i;
      // usableHeader may have moved the window; re-fetch the same chunk.
      const again = w.get(pos, 1 << 20);
      i = again.indexOf(m0, i + 1);
    }
    pos += Math.max(1, chunk.length - 3);
  }
  return undefined;
}

/**
 * Scans the log of an open cartridge file. `verify` chooses which data payloads have their
 * CRC checked: `all` (media check) or `after-last-sync` (open: records before the last
 * sync point were made durable, so only the tail can be torn).
 */
export function scanLog(fd: number, fileSize: number, verify: 'all' | 'after-last-sync'): ScanResult {
  const w = new Window(fd, fileSize);
  const raw: ScanEntry[] = [];
  let off = LOG_OFFSET;
  let gen = 0;
  let staleTail = false;
  while (off + RECORD_HEADER_SIZE <= fileSize) {
    const h = usableHeader(w, off, fileSize, gen);
    if (!h) {
      const peek = decodeRecordHeader(w.get(off, RECORD_HEADER_SIZE));
      if (peek && peek.generation < gen) {
        // Whole records of an older generation: leftovers of an overwrite, not damage.
        staleTail = true;
        break;
      }
      const next = resync(w, off + 1, fileSize, gen);
      if (next === undefined) break;
      raw.push({ offset: off, end: next, kind: 'damaged', length: 0, generation: gen, reason: 'bad-header' });
      off = next;
      continue;
    }
    gen = h.generation;
    const end = off + RECORD_HEADER_SIZE + h.length;
    const kind = h.kind === RecordKind.data ? 'block' : h.kind === RecordKind.filemark ? 'filemark' : h.kind === RecordKind.endOfData ? 'eod' : 'sync';
    raw.push({ offset: off, end, kind, length: h.length, generation: h.generation, payloadCrc: h.payloadCrc });
    off = end;
  }

  let lastSyncIdx = -1;
  for (let i = raw.length - 1; i >= 0; i--) {
    if (raw[i]?.kind === 'sync') {
      lastSyncIdx = i;
      break;
    }
  }
  const entries: ScanEntry[] = [];
  for (let i = 0; i < raw.length; i++) {
    const e = raw[i] as ScanEntry;
    if (e.kind === 'block' && (verify === 'all' || i > lastSyncIdx)) {
      const payload = w.get(e.offset + RECORD_HEADER_SIZE, e.length);
      const ok = payload.length === e.length && payloadCrcOk({ kind: RecordKind.data, generation: e.generation, length: e.length, payloadCrc: e.payloadCrc ?? 0 }, payload);
      if (!ok) {
        entries.push({ offset: e.offset, end: e.end, kind: 'damaged', length: e.length, generation: e.generation, reason: 'bad-crc' });
        continue;
      }
    }
    entries.push(e);
  }
  // Damage with nothing valid after it is a write that never completed.
  while (entries.length > 0 && entries[entries.length - 1]?.kind === 'damaged') entries.pop();
  const last = entries[entries.length - 1];
  const endOfLog = last ? last.end : LOG_OFFSET;
  let lastSyncEnd = LOG_OFFSET;
  let syncPoints = 0;
  let maxGeneration = 0;
  for (const e of entries) {
    if (e.kind === 'sync') {
      syncPoints++;
      lastSyncEnd = e.end;
    }
    maxGeneration = Math.max(maxGeneration, e.generation);
  }
  return { entries, endOfLog, lastSyncEnd, syncPoints, maxGeneration, tornBytes: Math.max(0, fileSize - endOfLog), staleTail };
}
