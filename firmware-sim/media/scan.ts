/**
 * Walks the record log of a cartridge file. Used on open (to rebuild the position index)
 * and by the media check (to report damage). In the durable part of the log (up to the
 * second-to-last sync point) a damaged stretch followed by valid records becomes one
 * damaged logical object, so a flipped byte costs one block rather than the rest of the
 * tape. After it, the first damage starts the torn tail (a write a crash cut short, whose
 * pages may have reached the disk in any order): it and everything after it are ignored.
 */
import { readSync } from 'node:fs';
import { decodeDiscard, decodeRecordHeader, LOG_OFFSET, payloadCrcOk, RECORD_HEADER_SIZE, RECORD_MAGIC, RecordKind, type LogFloor, type RecordHeader } from './format.js';

/** Why a stretch of the log could not be used. */
export type DamageReason = 'bad-header' | 'bad-crc';

export interface ScanEntry {
  readonly offset: number;
  /** File offset just past this entry. */
  readonly end: number;
  readonly kind: 'block' | 'filemark' | 'eod' | 'sync' | 'damaged' | 'discard';
  /**
   * Partition of the record; for damage whose header is unreadable, the partition of the
   * record before it (a partitioned log is written in runs, one partition at a time).
   */
  readonly partition: number;
  /** Discard records: the first object number of {@link partition} they discard. */
  readonly discardFrom?: number;
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
  /** Highest generation of any valid record header seen, the cut-off tail included. */
  readonly maxGeneration: number;
  /** Bytes after {@link endOfLog}: a write cut short, or records orphaned by an overwrite. */
  readonly tornBytes: number;
  /** The tail held whole records of an older generation (an overwrite whose truncate was lost). */
  readonly staleTail: boolean;
  /** Valid records were found past the start of the torn tail (pages of an unsynced write reached the disk out of order) and were dropped with it. */
  readonly tornWithRecordsAfter: boolean;
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

function usableHeader(w: Window, off: number, size: number, minGen: number, partitions: number): RecordHeader | undefined {
  const h = decodeRecordHeader(w.get(off, RECORD_HEADER_SIZE));
  if (!h || h.generation < minGen || h.partition >= partitions) return undefined;
  if (off + RECORD_HEADER_SIZE + h.length > size) return undefined;
  return h;
}

/** The lowest generation a record at `off` may carry: the log's so far, and the floor's past its offset. */
function minGenAt(off: number, gen: number, floor: LogFloor | undefined): number {
  return floor && off >= floor.offset ? Math.max(gen, floor.generation) : gen;
}

/** Next offset after `from` holding a header that could continue the log, if any. */
function resync(w: Window, from: number, size: number, gen: number, floor: LogFloor | undefined, partitions: number): number | undefined {
  const m0 = (RECORD_MAGIC >>> 24) & 0xff;
  for (let pos = from; pos + RECORD_HEADER_SIZE <= size; ) {
    const chunk = w.get(pos, 1 << 20);
    if (chunk.length < 4) return undefined;
    let i = chunk.indexOf(m0);
    while (i >= 0 && i + 4 <= chunk.length) {
      if (usableHeader(w, pos + i, size, minGenAt(pos + i, gen, floor), partitions)) return pos + i;
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
 * CRC checked: `all` (media check) or `after-last-sync` (open: records before the
 * second-to-last sync point were made durable, so only what follows can be torn). `floor`
 * is the cartridge memory's log floor: past its offset, older generations are stale.
 * `partitions` is the count of the layout: a record claiming another partition is corrupt.
 */
export function scanLog(fd: number, fileSize: number, verify: 'all' | 'after-last-sync', floor?: LogFloor, partitions = 1): ScanResult {
  const w = new Window(fd, fileSize);
  const raw: ScanEntry[] = [];
  let off = LOG_OFFSET;
  let gen = 0;
  let part = 0;
  let staleTail = false;
  while (off + RECORD_HEADER_SIZE <= fileSize) {
    const min = minGenAt(off, gen, floor);
    const h = usableHeader(w, off, fileSize, min, partitions);
    if (!h) {
      const peek = decodeRecordHeader(w.get(off, RECORD_HEADER_SIZE));
      if (peek && peek.generation < min) {
        // Whole records of an older generation: leftovers of an overwrite, not damage.
        staleTail = true;
        break;
      }
      const next = resync(w, off + 1, fileSize, gen, floor, partitions);
      if (next === undefined) break;
      raw.push({ offset: off, end: next, kind: 'damaged', partition: part, length: 0, generation: gen, reason: 'bad-header' });
      off = next;
      continue;
    }
    gen = h.generation;
    const end = off + RECORD_HEADER_SIZE + h.length;
    if (h.kind === RecordKind.discard) {
      // Tiny, and it changes what every later record means: its payload is always checked.
      const payload = w.get(off + RECORD_HEADER_SIZE, h.length);
      const ok = payload.length === h.length && payloadCrcOk(h, payload);
      raw.push(ok ? { offset: off, end, kind: 'discard', partition: h.partition, length: 0, generation: h.generation, discardFrom: decodeDiscard(payload) } : { offset: off, end, kind: 'damaged', partition: h.partition, length: 0, generation: h.generation, reason: 'bad-crc' });
    } else {
      const kind = h.kind === RecordKind.data ? 'block' : h.kind === RecordKind.filemark ? 'filemark' : h.kind === RecordKind.endOfData ? 'eod' : 'sync';
      raw.push({ offset: off, end, kind, partition: h.partition, length: h.length, generation: h.generation, payloadCrc: h.payloadCrc });
    }
    if (h.kind === RecordKind.data || h.kind === RecordKind.filemark || h.kind === RecordKind.discard) part = h.partition;
    off = end;
  }

  // Only the last sync point's fdatasync can have been cut short: the one before it had
  // returned when the last was written (one medium operation at a time). So everything
  // up to the second-to-last sync point is durable, and damage there is damage; after it
  // the log may be a torn write, with pages lost anywhere, and records that survived
  // behind a lost page were never acknowledged.
  const syncIdx: number[] = [];
  for (let i = 0; i < raw.length; i++) if (raw[i]?.kind === 'sync') syncIdx.push(i);
  const durableIdx = syncIdx.length >= 2 ? (syncIdx[syncIdx.length - 2] ?? -1) : -1;
  // Generations of the records cut off count too: an append after the cut must not reuse
  // one, or a crash could splice those records back behind the new ones.
  let maxGeneration = 0;
  for (const e of raw) maxGeneration = Math.max(maxGeneration, e.generation);
  const entries: ScanEntry[] = [];
  let tornAt = -1;
  for (let i = 0; i < raw.length; i++) {
    const e = raw[i] as ScanEntry;
    let entry = e;
    if (e.kind === 'block' && (verify === 'all' || i > durableIdx)) {
      const payload = w.get(e.offset + RECORD_HEADER_SIZE, e.length);
      const ok = payload.length === e.length && payloadCrcOk({ kind: RecordKind.data, partition: e.partition, generation: e.generation, length: e.length, payloadCrc: e.payloadCrc ?? 0 }, payload);
      if (!ok) entry = { offset: e.offset, end: e.end, kind: 'damaged', partition: e.partition, length: e.length, generation: e.generation, reason: 'bad-crc' };
    }
    // The first damage after the durable part starts the torn tail: cut there, whatever follows.
    if (entry.kind === 'damaged' && i > durableIdx) {
      tornAt = i;
      break;
    }
    entries.push(entry);
  }
  const last = entries[entries.length - 1];
  const endOfLog = last ? last.end : LOG_OFFSET;
  let lastSyncEnd = LOG_OFFSET;
  let syncPoints = 0;
  for (const e of entries) {
    if (e.kind === 'sync') {
      syncPoints++;
      lastSyncEnd = e.end;
    }
  }
  return { entries, endOfLog, lastSyncEnd, syncPoints, maxGeneration, tornBytes: Math.max(0, fileSize - endOfLog), staleTail, tornWithRecordsAfter: tornAt >= 0 && raw.slice(tornAt + 1).some((e) => e.kind !== 'damaged') };
}
