/**
 * One cartridge file opened for use by a drive: the position index (logical object number
 * to file offset) rebuilt by scanning on open, the append path with its sync points, tape
 * overwrite (truncation), and cartridge memory. Writes and reads are synchronous on
 * purpose: a drive model executes one medium operation at a time, a crash test needs
 * every write to have reached the kernel when the call returns, and a write to the page
 * cache costs a copy. The wait for the disk is not: a drive's sync point
 * ({@link Cartridge.syncAsync}, {@link Cartridge.appendFilemarksAsync}) runs its fdatasync
 * on the thread pool, so one drive's filemark (or a slow disk) does not stall the other
 * drives and sessions the event loop serves.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  CartridgeFormatError,
  decodeHeader,
  decodeLogFloor,
  decodeMamSlot,
  decodePartitionLayout,
  decodeRecordHeader,
  encodeHeader,
  encodeDiscard,
  encodeLogFloor,
  encodeMamSlot,
  encodePartitionLayout,
  encodeRecord,
  encodeRecordHeader,
  FORMAT_VERSION,
  HEADER_SIZE,
  HEADER_USED,
  LOG_FLOOR_ATTRIBUTE,
  LOG_OFFSET,
  MAM_SLOT_OFFSETS,
  MAM_SLOT_SIZE,
  MAX_PARTITIONS,
  PARTITION_LAYOUT_ATTRIBUTE,
  PARTITIONED_VERSION,
  payloadCrcOk,
  PRIVATE_ATTRIBUTES,
  RECORD_HEADER_SIZE,
  RecordKind,
  type CartridgeHeader,
  type LogFloor,
  type MamSlot,
  type PartitionLayout,
  type StoredAttribute,
} from './format.js';
import { writebackUnsupported } from '../../src/native.js';
import { nodeFileIo, type CartridgeFileIo } from './file-io.js';
import { scanLog } from './scan.js';

/**
 * Cartridge-memory identifiers FE01h..FEFFh hold the attributes partitions 1..255 keep on
 * their own (volume coherency information, partition label), packed like a slot's
 * attribute area: id (2), format (1), length (2), value. Partition 0's are plain
 * attributes, as they were before there was more than one partition. Past the SPC-defined
 * ranges, like the log floor: hosts never see them.
 */
export const PARTITION_ATTRIBUTES_BASE = 0xfe00;
export const MAX_ATTRIBUTE_PARTITION = 0xff;

/** Host-visible attributes a slot image holds: its plain ones and those packed for partitions 1.., not the log floor or the partition layout. */
export function countStoredAttributes(attrs: ReadonlyMap<number, StoredAttribute>): number {
  let n = 0;
  for (const [id, a] of attrs) {
    if (PRIVATE_ATTRIBUTES.includes(id)) continue;
    n += isPartitionContainer(id) ? unpackAttributes(a.value).size : 1;
  }
  return n;
}

function isPartitionContainer(id: number): boolean {
  return id > PARTITION_ATTRIBUTES_BASE && id <= PARTITION_ATTRIBUTES_BASE + MAX_ATTRIBUTE_PARTITION;
}

function packAttributes(attrs: ReadonlyMap<number, StoredAttribute>): StoredAttribute {
  let len = 0;
  for (const a of attrs.values()) len += 5 + a.value.length;
  const b = new Uint8Array(len);
  let off = 0;
  for (const [id, a] of [...attrs].sort((x, y) => x[0] - y[0])) {
    b[off] = id >> 8;
    b[off + 1] = id & 0xff;
    b[off + 2] = a.format;
    b[off + 3] = a.value.length >> 8;
    b[off + 4] = a.value.length & 0xff;
    b.set(a.value, off + 5);
    off += 5 + a.value.length;
  }
  return { format: 0, value: b };
}

/** Unpacks a partition's attributes; a malformed tail (never written so) is dropped. */
function unpackAttributes(v: Uint8Array): Map<number, StoredAttribute> {
  const out = new Map<number, StoredAttribute>();
  for (let off = 0; off + 5 <= v.length; ) {
    const n = ((v[off + 3] ?? 0) << 8) | (v[off + 4] ?? 0);
    if (off + 5 + n > v.length) break;
    out.set(((v[off] ?? 0) << 8) | (v[off + 1] ?? 0), { format: v[off + 2] ?? 0, value: v.slice(off + 5, off + 5 + n) });
    off += 5 + n;
  }
  return out;
}

/** What a new cartridge file is made of. */
export interface CartridgeInit {
  readonly mediaType: string;
  readonly barcode: string;
  readonly capacityBytes: number;
  readonly worm: boolean;
}

export interface CartridgeOpenOptions {
  /** Create the file with these facts when it does not exist. */
  readonly create?: CartridgeInit;
  /** Open without write access (media check, or a file the OS marks read-only). */
  readonly readOnly?: boolean;
  /** File system calls (tests inject failures here); Node's fs by default. */
  readonly io?: CartridgeFileIo;
}

/** Kinds of logical object on the tape. `damaged` is a stretch of the log that failed its checks. */
export type TapeObjectKind = 'block' | 'filemark' | 'damaged';

export interface TapeObject {
  readonly kind: TapeObjectKind;
  /** Payload bytes of a block; 0 for filemarks and for damage of unknown extent. */
  readonly length: number;
  /** File offset of the record header. */
  readonly offset: number;
}

/** A block could not be read back: its record is damaged. */
export class MediaReadError extends Error {
  override readonly name = 'MediaReadError';
  readonly code = 'EMEDIAREAD';
  constructor(
    message: string,
    readonly objectNumber: number,
    readonly offset: number,
  ) {
    super(message);
  }
}

/**
 * A write, cut or sync of the cartridge file failed, so records appended since the last
 * sync point may be lost on the disk even though they read back from the page cache.
 * The cartridge keeps refusing writes (with this error) until it is closed and opened
 * again, which rebuilds it from what the file really holds. `cause` is the fs error.
 */
export class CartridgeWriteError extends Error {
  override readonly name = 'CartridgeWriteError';
  readonly code = 'ECARTWRITE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** The file refuses a write: opened read-only or closed. */
export class CartridgeStateError extends Error {
  override readonly name = 'CartridgeStateError';
  readonly code = 'ECARTSTATE';
}

/**
 * Appended bytes after which their writeback to disk starts in the background: a started
 * writeback of the range (sync_file_range) when the file I/O offers it, else an fdatasync,
 * which also waits for the device's cache and so is worth starting only every few MiB.
 */
const EARLY_WRITEBACK_BYTES = 8 * 1024 * 1024;
const EARLY_WRITEBACK_RANGE_BYTES = 1024 * 1024;

const KIND_CODE = { block: 0, filemark: 1, damaged: 2 } as const;
const KIND_NAME: readonly TapeObjectKind[] = ['block', 'filemark', 'damaged'];

/**
 * The position index of one partition: logical object number to file offset, kind and
 * length, with cumulative byte and filemark counts.
 */
class PartitionIndex {
  readonly offs: number[] = [];
  readonly kinds: number[] = [];
  readonly lens: number[] = [];
  /** Data bytes before object i (index i), with the total at index count. */
  readonly cumBytes: number[] = [0];
  /** Filemarks before object i, with the total at index count. */
  readonly cumFm: number[] = [0];
  readonly fmIds: number[] = [];

  get count(): number {
    return this.offs.length;
  }

  push(kind: TapeObjectKind, offset: number, length: number): void {
    const i = this.offs.length;
    this.offs.push(offset);
    this.kinds.push(KIND_CODE[kind]);
    this.lens.push(length);
    this.cumBytes.push((this.cumBytes[i] ?? 0) + (kind === 'block' ? length : 0));
    this.cumFm.push((this.cumFm[i] ?? 0) + (kind === 'filemark' ? 1 : 0));
    if (kind === 'filemark') this.fmIds.push(i);
  }

  /** Forgets every object from `at` on. */
  cut(at: number): void {
    if (at >= this.offs.length) return;
    this.offs.length = at;
    this.kinds.length = at;
    this.lens.length = at;
    this.cumBytes.length = at + 1;
    this.cumFm.length = at + 1;
    while (this.fmIds.length > 0 && (this.fmIds[this.fmIds.length - 1] ?? 0) >= at) this.fmIds.pop();
  }
}

/** Errors of fsync on a directory that mean "not supported here", not "the entry may be lost". */
const DIR_FSYNC_REFUSALS = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP']);

/** Makes the directory entry of `path` durable (after a create or rename). */
function fsyncDir(io: CartridgeFileIo, path: string): void {
  const fd = io.openSync(dirname(path), 'r');
  try {
    io.fsyncSync(fd);
  } catch (err) {
    // Some filesystems do not implement fsync on a directory; there the rename is all
    // they offer. Any other error (EIO) means the new name may not survive a power cut.
    if (!DIR_FSYNC_REFUSALS.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    io.closeSync(fd);
  }
}

/** Writes all of `b` at `pos`, continuing after short writes; a write that makes no progress is an error. */
function writeAll(io: CartridgeFileIo, fd: number, b: Uint8Array, pos: number): void {
  let done = 0;
  while (done < b.length) {
    const n = io.writeSync(fd, b, done, b.length - done, pos + done);
    if (!(n > 0)) throw new CartridgeWriteError(`write of ${b.length} bytes at offset ${pos} stopped after ${done} bytes: the system wrote nothing (returned ${n})`);
    done += n;
  }
}

/** Reads `n` bytes at `pos` (fewer at end of file). The buffer is not cleared first: only bytes read are returned. */
function readExact(io: CartridgeFileIo, fd: number, n: number, pos: number): Uint8Array {
  const u = Buffer.allocUnsafe(n);
  const b = new Uint8Array(u.buffer, u.byteOffset, n);
  let got = 0;
  while (got < n) {
    const r = io.readSync(fd, b, got, n - got, pos + got);
    if (r === 0) break;
    got += r;
  }
  return got === n ? b : b.subarray(0, got);
}

/**
 * Writes a fresh cartridge file atomically (temp file, fsync, rename, directory fsync).
 * Throws the fs error when any step fails (the temp file is removed); the cartridge
 * exists under `path` only once the directory fsync returned.
 */
export function createCartridgeFile(path: string, init: CartridgeInit, now = Date.now(), io: CartridgeFileIo = nodeFileIo): CartridgeHeader {
  if (!Number.isSafeInteger(init.capacityBytes) || init.capacityBytes <= 0) throw new RangeError(`capacityBytes must be a positive integer (got ${init.capacityBytes})`);
  const header: CartridgeHeader = { version: FORMAT_VERSION, mediaType: init.mediaType, barcode: init.barcode, capacityBytes: init.capacityBytes, worm: init.worm, createdMs: now };
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = io.openSync(tmp, 'w');
    try {
      writeAll(io, fd, encodeHeader(header), 0);
      io.ftruncateSync(fd, LOG_OFFSET);
      io.fsyncSync(fd);
    } finally {
      io.closeSync(fd);
    }
    io.renameSync(tmp, path);
  } catch (err) {
    try {
      io.unlinkSync(tmp);
    } catch {
      // Nothing to remove (the open failed, or the rename happened).
    }
    throw err;
  }
  fsyncDir(io, path);
  return header;
}

/**
 * An open cartridge. Logical object numbers count blocks and filemarks from 0 (BOP);
 * {@link objectCount} is the EOD position. Reads throw the fs error on an OS error; writes
 * throw {@link CartridgeWriteError} (with the fs error as `cause`) and from then on refuse
 * every write until the file is reopened. No method waits or can be cancelled.
 */
export class Cartridge {
  private hdr: CartridgeHeader;
  /** The file was not closed cleanly (no EOD marker) or had a torn tail that was dropped. */
  readonly recovered: boolean;
  private fd: number;
  /** A second open of the file for the background writeback, so its fdatasync cannot take the error report the next sync point's fdatasync must see. */
  private wbFd = -1;
  private fileSize: number;
  private appendOffset: number;
  private generation: number;
  /**
   * File offset past the records that may carry the current generation: appending below it
   * (an overwrite, or a tail found on open) starts a new generation.
   */
  private genEnd: number;
  /** An overwrite left older records past the append point; the file is cut at the next sync point. */
  private cutPending = false;
  /** A cut (ftruncate) of the file since its last fdatasync: not durable yet. */
  private cutUnsynced = false;
  private dirty = false;
  /** Bytes appended since the last fdatasync (sync point or early writeback). */
  private unflushed = 0;
  private writebackRunning = false;
  /** The file system refused sync_file_range: the early writeback is an fdatasync from then on. */
  private noRangeWriteback = false;
  /**
   * The sync point whose fdatasync is running on the thread pool ({@link syncAsync}), as a
   * promise that settles (never rejects) when it returned.
   */
  private syncing: Promise<void> | undefined;
  /** Appends so far: a sync point that returns knows whether records came after its marker. */
  private appends = 0;
  /** The first failed write or sync: set, the cartridge refuses writes until reopened. */
  private failure: CartridgeWriteError | undefined;
  private mamSequence = 0;
  private mam = new Map<number, StoredAttribute>();
  /** Attributes partitions 1.. keep on their own, by partition number (see {@link PARTITION_ATTRIBUTES_BASE}). */
  private partitionMam = new Map<number, Map<number, StoredAttribute>>();
  /** The log floor of the newest cartridge memory image (kept out of {@link mam}: hosts never see it). */
  private floor: LogFloor | undefined;
  /** The partition layout of the newest cartridge memory image (one partition of the header's capacity when it holds none). */
  private layout: PartitionLayout | undefined;
  /** One position index per partition. */
  private parts: PartitionIndex[] = [new PartitionIndex()];
  /** The partition the object methods address (see {@link selectPartition}). */
  private cur = 0;

  private constructor(
    readonly path: string,
    readonly readOnly: boolean,
    private readonly io: CartridgeFileIo,
  ) {
    this.fd = io.openSync(path, readOnly ? 'r' : 'r+');
    try {
      let header = decodeHeader(readExact(io, this.fd, HEADER_SIZE, 0));
      this.fileSize = io.fstatSize(this.fd);
      if (this.fileSize < LOG_OFFSET) throw new CartridgeFormatError(`cartridge file is ${this.fileSize} bytes, shorter than its fixed area (${LOG_OFFSET})`);
      this.loadMam(header.version);
      if (!readOnly && header.version < FORMAT_VERSION) header = this.convert(header);
      this.hdr = header;
      const count = this.partitionCount;
      this.parts = Array.from({ length: count }, () => new PartitionIndex());
      const scan = scanLog(this.fd, this.fileSize, 'after-last-sync', this.floor, count);
      let clean = scan.entries.length === 0;
      this.appendOffset = scan.endOfLog;
      for (const e of scan.entries) {
        const part = this.parts[e.partition] as PartitionIndex;
        if (e.kind === 'eod') {
          this.appendOffset = e.offset;
          clean = true;
        } else if (e.kind === 'discard') {
          part.cut(e.discardFrom ?? 0);
          clean = false;
        } else if (e.kind === 'block' || e.kind === 'filemark' || e.kind === 'damaged') {
          part.push(e.kind, e.offset, e.kind === 'filemark' ? 0 : e.length);
          clean = false;
        }
      }
      this.generation = Math.max(1, scan.maxGeneration, this.floor?.generation ?? 0);
      // The first append below the size found on open starts a new generation (see cutTail):
      // whatever a crash might leave of the old tail is then stale to a later scan.
      this.genEnd = this.fileSize;
      if (!readOnly && this.fileSize > scan.endOfLog) {
        // And the torn (or stale) tail is cut off for good before anything is appended.
        this.guarded('cutting the torn tail', () => {
          io.ftruncateSync(this.fd, scan.endOfLog);
          io.fdatasyncSync(this.fd);
        });
        this.fileSize = scan.endOfLog;
      }
      this.recovered = !clean || scan.tornBytes > 0;
    } catch (err) {
      io.closeSync(this.fd);
      throw err;
    }
  }

  /** Opens (and with `create`, first creates) a cartridge file. Throws {@link CartridgeFormatError} for a file that is not one. */
  static open(path: string, opts: CartridgeOpenOptions = {}): Cartridge {
    const io = opts.io ?? nodeFileIo;
    if (opts.create && !existsSync(path)) createCartridgeFile(path, opts.create, Date.now(), io);
    return new Cartridge(path, opts.readOnly ?? false, io);
  }

  /** Immutable facts; `version` is {@link FORMAT_VERSION} once a writable open converted an older file, {@link PARTITIONED_VERSION} once it was partitioned. */
  get header(): CartridgeHeader {
    return this.hdr;
  }

  /** The index of the partition the object methods address. */
  private get ix(): PartitionIndex {
    return this.parts[this.cur] as PartitionIndex;
  }

  private push(kind: TapeObjectKind, offset: number, length: number): void {
    this.ix.push(kind, offset, length);
  }

  /** Partitions on the tape (1 unless FORMAT MEDIUM made more). */
  get partitionCount(): number {
    return this.layout?.sizes.length ?? 1;
  }

  /** Capacity of each partition in bytes, partition 0 first. */
  get partitionSizes(): readonly number[] {
    return this.layout?.sizes ?? [this.hdr.capacityBytes];
  }

  /** The partition that {@link objectCount}, {@link object}, {@link readBlock}, {@link appendBlock}, {@link truncate} and the rest address. */
  get partition(): number {
    return this.cur;
  }

  /** Capacity in bytes of the current partition. */
  get partitionCapacity(): number {
    return this.partitionSizes[this.cur] ?? 0;
  }

  /** Makes partition `p` the one the object methods address (a LOCATE with CP). RangeError when the tape has no such partition. */
  selectPartition(p: number): void {
    if (!Number.isInteger(p) || p < 0 || p >= this.parts.length) throw new RangeError(`partition ${p} does not exist (the tape has ${this.parts.length})`);
    this.cur = p;
  }

  /** Objects (the EOD position) of partition `p`. */
  objectCountOf(p: number): number {
    return this.parts[p]?.count ?? 0;
  }

  /** Payload bytes of the blocks of partition `p`. */
  dataBytesOf(p: number): number {
    const ix = this.parts[p];
    return ix ? (ix.cumBytes[ix.count] ?? 0) : 0;
  }

  private loadMam(fileVersion: number): void {
    let best: MamSlot | undefined;
    for (const off of MAM_SLOT_OFFSETS) {
      const slot = decodeMamSlot(readExact(this.io, this.fd, MAM_SLOT_SIZE, off), fileVersion);
      if (slot && (!best || slot.sequence > best.sequence)) best = slot;
    }
    if (best) {
      this.mamSequence = best.sequence;
      this.floor = decodeLogFloor(best.attrs);
      this.layout = decodePartitionLayout(best.attrs);
      for (const id of PRIVATE_ATTRIBUTES) best.attrs.delete(id);
      for (const [id, a] of best.attrs) {
        if (!isPartitionContainer(id)) continue;
        best.attrs.delete(id);
        this.partitionMam.set(id - PARTITION_ATTRIBUTES_BASE, unpackAttributes(a.value));
      }
      this.mam = best.attrs;
    }
  }

  /**
   * Converts a format 1 file to the current format, crash-safely: the newest cartridge
   * memory image goes to the other slot in the new layout (fdatasync), then to the slot
   * that held it (fdatasync), and only then does the header say version 2 (one write
   * inside the first sector, fdatasync). A crash at any point leaves a file that is
   * still version 1 with at least one valid slot holding the newest image, and the next
   * open converts it again.
   */
  private convert(old: CartridgeHeader): CartridgeHeader {
    this.guarded('converting the cartridge to the current format', () => {
      for (let k = 0; k < 2; k++) this.writeMamSlot(this.mamSequence + 1, this.mam);
      const header = { ...old, version: FORMAT_VERSION };
      writeAll(this.io, this.fd, encodeHeader(header).subarray(0, HEADER_USED), 0);
      this.io.fdatasyncSync(this.fd);
    });
    return { ...old, version: FORMAT_VERSION };
  }

  /** Throws the failure (a new error with it as cause) if the cartridge cannot be written. */
  private writable(): void {
    if (this.fd < 0) throw new CartridgeStateError(`cartridge ${this.path} is closed`);
    if (this.readOnly) throw new CartridgeStateError(`cartridge ${this.path} is open read-only`);
    if (this.failure) throw new CartridgeWriteError(`cartridge ${this.path} refuses writes since a write failed (${this.failure.message}); reload it to recover`, { cause: this.failure });
  }

  /**
   * Runs file writes; on any error the cartridge is failed for good (until reopened) and
   * the error is thrown as a {@link CartridgeWriteError}. After a failed fdatasync the
   * kernel may already have dropped the pages it could not write and will not report it
   * again, so nothing written before may be acknowledged any more.
   */
  private guarded<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const f = err instanceof CartridgeWriteError ? err : new CartridgeWriteError(`${what} on ${this.path} failed${code ? ` (${code})` : ''}: ${(err as Error).message}`, { cause: err });
      this.failure ??= f;
      throw f;
    }
  }

  /** The write or sync failure that makes this cartridge refuse writes, if any. */
  get writeFailure(): CartridgeWriteError | undefined {
    return this.failure;
  }
  /** Number of logical objects (blocks + filemarks + damaged stretches): the EOD position. */
  get objectCount(): number {
    return this.ix.count;
  }

  get filemarkCount(): number {
    return this.ix.fmIds.length;
  }

  /** Payload bytes of all blocks up to EOD (of the current partition). */
  get dataBytes(): number {
    return this.dataBytesOf(this.cur);
  }

  /** File size in bytes, including records not yet made durable. */
  get sizeOnDisk(): number {
    return this.fileSize;
  }

  object(i: number): TapeObject | undefined {
    const ix = this.ix;
    const off = ix.offs[i];
    if (off === undefined) return undefined;
    return { kind: KIND_NAME[ix.kinds[i] ?? 0] ?? 'damaged', length: ix.lens[i] ?? 0, offset: off };
  }

  /** Filemarks before position `i` (the logical file number at that position). */
  filemarksBefore(i: number): number {
    const ix = this.ix;
    return ix.cumFm[Math.min(Math.max(0, i), ix.count)] ?? 0;
  }

  /** Block payload bytes before position `i`. */
  dataBytesBefore(i: number): number {
    const ix = this.ix;
    return ix.cumBytes[Math.min(Math.max(0, i), ix.count)] ?? 0;
  }

  /** Position of the `n`th filemark (0-based), if there are that many. */
  filemarkAt(n: number): number | undefined {
    return this.ix.fmIds[n];
  }

  /** The first filemark at or after position `from`. */
  nextFilemark(from: number): number | undefined {
    return this.ix.fmIds[this.filemarksBefore(from)];
  }

  /** The last filemark before position `before`. */
  previousFilemark(before: number): number | undefined {
    const n = this.filemarksBefore(before);
    return n > 0 ? this.ix.fmIds[n - 1] : undefined;
  }

  /** Reads block `i`, verifying its CRC. Throws {@link MediaReadError} for a damaged record, RangeError for a non-block. */
  readBlock(i: number): Uint8Array {
    const o = this.object(i);
    if (!o || o.kind === 'filemark') throw new RangeError(`object ${i} is not a block`);
    if (o.kind === 'damaged') throw new MediaReadError(`block ${i} at offset ${o.offset} is damaged`, i, o.offset);
    // Header and payload in one pread; the payload's CRC (native CRC32C) is checked before it is handed out.
    const b = readExact(this.io, this.fd, RECORD_HEADER_SIZE + o.length, o.offset);
    const h = decodeRecordHeader(b);
    const payload = b.subarray(RECORD_HEADER_SIZE);
    if (!h || h.kind !== RecordKind.data || h.partition !== this.cur || h.length !== o.length || payload.length !== o.length || !payloadCrcOk(h, payload)) {
      throw new MediaReadError(`block ${i} at offset ${o.offset} failed its CRC check`, i, o.offset);
    }
    return payload;
  }

  /**
   * Discards every object from position `at` on (a write there overwrites the rest of the
   * tape). The index forgets them at once; a new generation starts, and the log floor (this
   * offset, that generation) is written to the cartridge memory and fdatasynced, so the
   * discard is durable on return: a scan takes older records past the floor as stale,
   * whatever a power cut leaves of them. Then the file is cut there (durable at the next
   * sync point). Writing a marker over the first discarded record instead (an earlier
   * design) was not safe: a power cut that tore that one write, or lost a cut but kept the
   * zeroed page at its end, left a damaged header with the old records and sync points
   * after it, which reads as a damaged block with discarded data behind it.
   */
  truncate(at: number): void {
    this.writable();
    this.quiet('an overwrite');
    const ix = this.ix;
    if (at < 0 || at > ix.count) throw new RangeError(`cannot truncate at ${at} (EOD is ${ix.count})`);
    if (at < ix.count && this.parts.length > 1) {
      this.discard(at);
      return;
    }
    if (at < ix.count) {
      const off = ix.offs[at] ?? this.appendOffset;
      ix.cut(at);
      this.appendOffset = off;
      // 1. A new generation, and the floor that makes every older record from here on stale,
      //    durable in the cartridge memory (its two slots survive any torn write).
      this.generation++;
      this.genEnd = off;
      this.cutPending = true;
      // The floor replaces the previous one: an earlier overwrite's cut must be durable
      // first. Else a power cut could keep the new floor's page and lose that cut with the
      // new records after it, and the records it discarded, below the new floor and of a
      // generation the log accepts there, would read as data again.
      if (this.cutUnsynced) this.guarded('making the last cut durable before a new floor', () => this.io.fdatasyncSync(this.fd));
      this.cutUnsynced = false;
      this.floor = { offset: off, generation: this.generation };
      this.writeMamSlot(this.mamSequence + 1, this.mam);
      // 2. The cut, durable with the next sync point. A power cut before then may lose it,
      //    leaving the old records (stale under the floor), and may even have zeroed the tail
      //    of the page at the cut (the kernel zeroes it in the page cache and may write it back
      //    first): damage the floor turns into a torn tail rather than a damaged block.
      this.applyCut();
      return;
    }
    this.cutTail();
  }

  /**
   * Discards the current partition's objects from `at` on, in a partitioned log: the other
   * partitions' records lie after them in the file, so it cannot be cut. A discard record
   * (partition, first discarded object) is appended and made durable with a sync point
   * before this returns; a scan applies it in log order, so a power cut leaves the old
   * partition (the record torn or lost, and with it everything after) or the cut one.
   * The discarded records stay in the file as dead space.
   */
  private discard(at: number): void {
    this.ix.cut(at);
    this.append(encodeRecord(RecordKind.discard, this.generation, encodeDiscard(at), this.cur));
    this.syncMarker();
  }

  /**
   * FORMAT MEDIUM: every partition emptied and the tape laid out in partitions of `sizes`
   * bytes (partition 0 first). Crash-safe: everything so far is made durable first; then
   * the new layout and a log floor at the start of the log with a new generation go to
   * the cartridge memory in one slot write (fdatasync). An open finds the old image (old
   * layout, old records) or the new one, whose floor makes every older record stale, so
   * the layouts never mix. A file becomes format 3 (header rewritten, fdatasync) before
   * its first layout other than one partition of the whole tape is written. Then the log
   * is cut (and the cut fdatasynced, so a later floor cannot leave pre-format records
   * before it). Position: partition 0, BOP.
   */
  format(sizes: readonly number[]): void {
    this.writable();
    this.quiet('FORMAT MEDIUM');
    if (sizes.length < 1 || sizes.length > MAX_PARTITIONS) throw new RangeError(`a tape holds 1 to ${MAX_PARTITIONS} partitions (asked for ${sizes.length})`);
    for (const s of sizes) if (!Number.isSafeInteger(s) || s <= 0) throw new RangeError(`partition sizes must be positive integers (got ${sizes.join(', ')})`);
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total > this.hdr.capacityBytes) throw new RangeError(`partition sizes add up to ${total} bytes, more than the cartridge holds (${this.hdr.capacityBytes})`);
    // 1. What the tape holds now is durable: whatever the format leaves undone, the old tape is whole.
    this.sync();
    // A version 2 file keeps no layout as long as it is the default one (the whole tape).
    const layout = sizes.length === 1 && sizes[0] === this.hdr.capacityBytes && this.hdr.version < PARTITIONED_VERSION ? undefined : { sizes: [...sizes] };
    // 2. Readers that know no layouts must refuse the file before it can hold one.
    if (layout && this.hdr.version < PARTITIONED_VERSION) {
      const header = { ...this.hdr, version: PARTITIONED_VERSION };
      this.guarded('marking the cartridge partitioned', () => {
        writeAll(this.io, this.fd, encodeHeader(header).subarray(0, HEADER_USED), 0);
        this.io.fdatasyncSync(this.fd);
      });
      this.hdr = header;
    }
    // 3. The layout and the floor that makes every record so far stale, in one image.
    this.generation++;
    this.floor = { offset: LOG_OFFSET, generation: this.generation };
    this.layout = layout;
    // The attributes of partitions the new layout does not have go in the same image.
    const partitionMam = new Map([...this.partitionMam].filter(([p]) => p < sizes.length));
    const previous = this.partitionMam;
    this.partitionMam = partitionMam;
    try {
      this.writeMamSlot(this.mamSequence + 1, this.mam);
    } catch (e) {
      this.partitionMam = previous;
      throw e;
    }
    this.parts = sizes.map(() => new PartitionIndex());
    this.cur = 0;
    this.appendOffset = LOG_OFFSET;
    this.genEnd = LOG_OFFSET;
    this.cutPending = false;
    // 4. The old records go for good.
    this.guarded('cutting the log after FORMAT MEDIUM', () => {
      this.io.ftruncateSync(this.fd, LOG_OFFSET);
      this.io.fdatasyncSync(this.fd);
    });
    this.fileSize = LOG_OFFSET;
    this.dirty = false;
    this.cutUnsynced = false;
    this.unflushed = 0;
  }

  /**
   * Before an append below {@link genEnd} (over the EOD marker of a cleanly closed file, or
   * after a discard): a new generation, so that nothing past the new records can read as
   * data, and the file is cut at the next sync point if it still holds older bytes there.
   */
  private cutTail(): void {
    if (this.appendOffset >= this.genEnd) return;
    this.generation++;
    this.genEnd = this.appendOffset;
    this.cutPending = true;
  }

  /** Cuts the file where the log ends, if an overwrite left older records past it. */
  private applyCut(): void {
    if (!this.cutPending) return;
    this.cutPending = false;
    if (this.fileSize <= this.appendOffset) return;
    this.guarded('cutting the file after an overwrite', () => this.io.ftruncateSync(this.fd, this.appendOffset));
    this.cutUnsynced = true;
    this.fileSize = this.appendOffset;
    // A size change is part of what fdatasync writes: the cut is durable at the sync point.
    this.dirty = true;
  }

  private append(record: Uint8Array, payload?: Uint8Array): void {
    this.cutTail();
    const off = this.appendOffset;
    const total = record.length + (payload?.length ?? 0);
    this.guarded('appending a record', () => {
      if (payload && payload.length > 0) {
        // Header and payload go down in one writev: no copy of the block into a record buffer.
        let done = this.io.writevSync(this.fd, [record, payload], off);
        if (done < record.length) {
          writeAll(this.io, this.fd, record.subarray(Math.max(0, done)), off + Math.max(0, done));
          done = record.length;
        }
        if (done < total) writeAll(this.io, this.fd, payload.subarray(done - record.length), off + done);
      } else {
        writeAll(this.io, this.fd, record, off);
      }
    });
    this.appendOffset += total;
    this.genEnd = Math.max(this.genEnd, this.appendOffset);
    this.fileSize = Math.max(this.fileSize, this.appendOffset);
    this.dirty = true;
    this.appends++;
    this.unflushed += total;
    if (this.unflushed >= (this.rangeWriteback ? EARLY_WRITEBACK_RANGE_BYTES : EARLY_WRITEBACK_BYTES) && !this.writebackRunning) this.earlyWriteback();
  }

  /** Appends one block at EOD. Durable only after the next {@link sync}. */
  appendBlock(data: Uint8Array): void {
    this.writable();
    const off = this.appendOffset;
    this.append(encodeRecordHeader(RecordKind.data, this.generation, data, this.cur), data);
    this.push('block', off, data.length);
  }

  /** Appends `count` filemarks at EOD and makes everything so far durable (a sync point). */
  appendFilemarks(count: number): void {
    this.writable();
    this.quiet('a sync point');
    this.appendFilemarkRecords(count);
    this.sync();
  }

  /** Appends `count` filemark records at EOD (no sync point). */
  private appendFilemarkRecords(count: number): void {
    if (count > 0) {
      this.cutTail();
      const rec = encodeRecord(RecordKind.filemark, this.generation, undefined, this.cur);
      const all = new Uint8Array(rec.length * count);
      for (let k = 0; k < count; k++) all.set(rec, k * rec.length);
      const base = this.appendOffset;
      this.append(all);
      for (let k = 0; k < count; k++) this.push('filemark', base + k * rec.length, 0);
    }
  }

  /**
   * {@link appendFilemarks} with the sync point's wait off the event loop: the filemarks
   * are appended here (they are in the file when this returns its promise), and the
   * promise resolves once they and everything before them are durable ({@link syncAsync}).
   */
  appendFilemarksAsync(count: number): Promise<void> {
    this.writable();
    this.appendFilemarkRecords(count);
    return this.syncAsync();
  }

  /** The early writeback starts ranges (sync_file_range) rather than an fdatasync. */
  private get rangeWriteback(): boolean {
    return this.io.startWriteback !== undefined && !this.noRangeWriteback;
  }

  /**
   * Starts writing what was appended to the disk in the background (sync_file_range of
   * the range, or an fdatasync, on the thread pool), as a drive writes its buffer to tape
   * while the host keeps sending: the next sync point then waits for less. It makes
   * nothing durable that a sync point would not, and changes nothing a crash leaves
   * (records after the last sync point marker are still checked on open). It runs on its
   * own open of the file: Linux reports a writeback error once per open file, and that
   * report belongs to the sync point's fdatasync. An error it sees itself is kept and
   * fails the next write or sync point all the same.
   */
  private earlyWriteback(): void {
    const length = this.unflushed;
    this.unflushed = 0;
    if (this.wbFd < 0) {
      try {
        this.wbFd = this.io.openSync(this.path, 'r');
      } catch {
        // Only a head start is lost; the sync point's fdatasync writes everything.
        return;
      }
    }
    const fd = this.wbFd;
    this.writebackRunning = true;
    const range = this.rangeWriteback;
    const done = (err: NodeJS.ErrnoException | null): void => {
      this.writebackRunning = false;
      if (this.fd < 0) {
        // Closed meanwhile (close left this descriptor to us): its sync point already
        // made everything durable or failed.
        this.io.closeSync(fd);
        return;
      }
      // A file system without sync_file_range: only a head start is lost, and the next
      // early writeback is an fdatasync.
      if (err && range && writebackUnsupported(err)) {
        this.noRangeWriteback = true;
        return;
      }
      if (err) this.failure ??= new CartridgeWriteError(`background writeback of ${this.path} failed (${err.code ?? err.message}): records since the last sync point may be lost`, { cause: err });
    };
    // The range just appended (a head start only: after an overwrite it may reach back
    // over older bytes, which does no harm).
    if (range) this.io.startWriteback!(fd, Math.max(0, this.appendOffset - length), length, done);
    else this.io.fdatasync(fd, done);
  }

  /**
   * Writes a sync point marker and fdatasyncs: everything appended so far survives a crash.
   * Throws {@link CartridgeWriteError} when a write or sync failed since the last sync
   * point (including a failure of the background writeback): then nothing since the last
   * sync point is durable for sure, and the cartridge refuses writes until reopened.
   */
  sync(): void {
    this.writable();
    this.quiet('a sync point');
    this.applyCut();
    if (!this.dirty) return;
    this.syncMarker();
  }

  /**
   * {@link sync} with the fdatasync on the thread pool: the marker is written at once, and
   * the promise resolves when the fdatasync returned (everything appended before the
   * marker is then durable), or rejects with {@link CartridgeWriteError} when it failed, or
   * when any write or sync failed before or meanwhile (the background writeback's
   * included): the cartridge then refuses writes until reopened, as after {@link sync}.
   *
   * Ordering while the fdatasync runs:
   * - Sync points queue: a second one writes its marker only after the first returned, so
   *   every marker but the last is durable with all before it, the invariant the scan on
   *   open relies on when it treats the log up to the second-to-last marker as durable
   *   (a damaged stretch there is a damaged block, past it the torn tail).
   * - Appends ({@link appendBlock}, {@link appendFilemarksAsync}) proceed: the marker's
   *   offset is fixed and they lie past it. A crash leaves what it would leave if they had
   *   waited: the marker may or may not be durable, and whatever reached the disk after
   *   the last marker is checked record by record on open, its first damage cut off as
   *   the torn tail. The fdatasync may write some of them as well, which makes nothing
   *   acknowledged that is not durable; they become durable for sure at the next marker.
   *   After a failed fdatasync the next sync point fails, so none of them is ever
   *   acknowledged as durable.
   * - Calls that fdatasync on the loop or cut the file ({@link sync}, {@link truncate},
   *   {@link format}, {@link writeAttributes}, {@link close}) throw
   *   {@link CartridgeStateError} until it returned ({@link whenSynced}): two fdatasyncs on
   *   one open file at once could let the wrong one take the kernel's one-time report of a
   *   writeback error. Their asynchronous forms ({@link writeAttributeSetsAsync},
   *   {@link closeAsync}) wait for it, and are themselves the one fdatasync in flight.
   * - Reads proceed: they see the page cache, as before.
   */
  async syncAsync(): Promise<void> {
    // A sync point in flight: ours writes its marker after that one returned.
    while (this.syncing) await this.syncing;
    this.writable();
    this.applyCut();
    if (!this.dirty) return;
    this.append(encodeRecord(RecordKind.syncPoint, this.generation));
    const marked = this.appends;
    await this.fdatasyncAsync('fdatasync at a sync point');
    if (this.appends === marked) {
      this.unflushed = 0;
      this.dirty = false;
    }
    // No cut can start while the sync runs (quiet()): the last one is durable now.
    this.cutUnsynced = false;
  }

  /**
   * An fdatasync of the cartridge's descriptor on the thread pool, as the one sync point in
   * flight ({@link syncInFlight}). Rejects with {@link CartridgeWriteError}, failing the
   * cartridge, when it failed, or when any write or sync failed meanwhile (the background
   * writeback's): what came before may then be lost.
   */
  private async fdatasyncAsync(what: string): Promise<void> {
    const fd = this.fd;
    let settle = (): void => undefined;
    this.syncing = new Promise<void>((resolve) => (settle = resolve));
    try {
      const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => this.io.fdatasync(fd, resolve));
      if (err) {
        const f = new CartridgeWriteError(`${what} on ${this.path} failed${err.code ? ` (${err.code})` : ''}: ${err.message}`, { cause: err });
        this.failure ??= f;
        throw f;
      }
      this.writable();
    } finally {
      this.syncing = undefined;
      settle();
    }
  }

  /** True while a sync point's fdatasync runs on the thread pool ({@link syncAsync}). */
  get syncInFlight(): boolean {
    return this.syncing !== undefined;
  }

  /** Resolves (never rejects) once no sync point is in flight: then {@link sync}, {@link close} and the rest may run. */
  async whenSynced(): Promise<void> {
    while (this.syncing) await this.syncing;
  }

  /** Nothing appended or cut since the last sync point, and none in flight: {@link sync} would have nothing to do. */
  get synced(): boolean {
    return !this.dirty && !this.cutPending && !this.syncing;
  }

  /** Refuses a call that fdatasyncs on the loop or cuts the file while a sync point is in flight (see {@link syncAsync}). */
  private quiet(what: string): void {
    if (this.syncing) throw new CartridgeStateError(`${what} on ${this.path} cannot start while a sync point's fdatasync is in flight; wait for whenSynced()`);
  }

  private syncMarker(): void {
    this.append(encodeRecord(RecordKind.syncPoint, this.generation));
    this.guarded('fdatasync at a sync point', () => this.io.fdatasyncSync(this.fd));
    this.unflushed = 0;
    this.dirty = false;
    this.cutUnsynced = false;
  }

  /**
   * The cartridge memory attributes (a copy): partition 0's, which include those of the
   * whole medium; for another partition, only the ones it keeps on its own.
   */
  readAttributes(partition = 0): Map<number, StoredAttribute> {
    return new Map(partition === 0 ? this.mam : this.partitionMam.get(partition));
  }

  /** The attributes with the log floor, the partition layout and the attributes partitions 1.. keep, as a slot image holds them. */
  private withFloor(
    attrs: ReadonlyMap<number, StoredAttribute>,
    floor = this.floor,
    partitions: ReadonlyMap<number, ReadonlyMap<number, StoredAttribute>> = this.partitionMam,
    layout = this.layout,
  ): Map<number, StoredAttribute> {
    const all = new Map(attrs);
    for (const id of PRIVATE_ATTRIBUTES) all.delete(id);
    if (floor) all.set(LOG_FLOOR_ATTRIBUTE, encodeLogFloor(floor));
    for (const [p, m] of partitions) if (m.size > 0) all.set(PARTITION_ATTRIBUTES_BASE + p, packAttributes(m));
    if (layout) all.set(PARTITION_LAYOUT_ATTRIBUTE, encodePartitionLayout(layout));
    return all;
  }

  /** Writes the image with sequence `seq` (and the log floor) to its slot and fdatasyncs; the new image is then the one an open finds. */
  private writeMamSlot(seq: number, attrs: ReadonlyMap<number, StoredAttribute>): void {
    const image = encodeMamSlot(seq, this.withFloor(attrs));
    this.guarded('writing cartridge memory', () => {
      writeAll(this.io, this.fd, image, MAM_SLOT_OFFSETS[seq % 2] ?? HEADER_SIZE);
      this.io.fdatasyncSync(this.fd);
    });
    this.cutUnsynced = false;
    this.mamSequence = seq;
  }

  /**
   * Replaces the cartridge memory. Durable on return: written to the older of the two
   * slots, then fdatasync. Throws {@link CartridgeFormatError} when the attributes do not
   * fit with room left for a log floor (nothing written) and {@link CartridgeWriteError}
   * when the write or sync failed (the previous image is what an open finds, or this one).
   */
  writeAttributes(attrs: ReadonlyMap<number, StoredAttribute>, partition = 0): void {
    this.writeAttributeSets(new Map([[partition, attrs]]));
  }

  /**
   * Replaces the attributes of several partitions at once, in one image (so a crash keeps
   * all of them old or all new): partition 0's set includes the whole medium's. Durable on
   * return, and refused as {@link writeAttributes} is.
   */
  writeAttributeSets(sets: ReadonlyMap<number, ReadonlyMap<number, StoredAttribute>>): void {
    this.writable();
    this.quiet('writing cartridge memory');
    const { mam, partitions } = this.attributeSets(sets);
    const previous = this.partitionMam;
    this.partitionMam = partitions;
    try {
      this.writeMamSlot(this.mamSequence + 1, mam);
    } catch (e) {
      this.partitionMam = previous;
      throw e;
    }
    this.mam = new Map(mam);
  }

  /**
   * {@link writeAttributeSets} with the fdatasync on the thread pool (after any sync point
   * in flight): durable when the promise resolves, refused and failed as it is. Until then
   * {@link readAttributes} reports the attributes as they were.
   */
  async writeAttributeSetsAsync(sets: ReadonlyMap<number, ReadonlyMap<number, StoredAttribute>>): Promise<void> {
    await this.whenSynced();
    this.writable();
    const { mam, partitions } = this.attributeSets(sets);
    const seq = this.mamSequence + 1;
    const image = encodeMamSlot(seq, this.withFloor(mam, this.floor, partitions));
    this.guarded('writing cartridge memory', () => writeAll(this.io, this.fd, image, MAM_SLOT_OFFSETS[seq % 2] ?? HEADER_SIZE));
    await this.fdatasyncAsync('writing cartridge memory');
    this.mamSequence = seq;
    this.partitionMam = partitions;
    this.mam = new Map(mam);
  }

  /** The cartridge memory `sets` make (see {@link writeAttributeSets}), checked: throws before anything is written. */
  private attributeSets(sets: ReadonlyMap<number, ReadonlyMap<number, StoredAttribute>>): { mam: ReadonlyMap<number, StoredAttribute>; partitions: Map<number, Map<number, StoredAttribute>> } {
    const partitions = new Map(this.partitionMam);
    let mam: ReadonlyMap<number, StoredAttribute> = this.mam;
    for (const [p, attrs] of sets) {
      if (!Number.isInteger(p) || p < 0 || p > MAX_ATTRIBUTE_PARTITION) throw new RangeError(`partition ${p} is not 0..${MAX_ATTRIBUTE_PARTITION}`);
      for (const id of attrs.keys()) {
        if (PRIVATE_ATTRIBUTES.includes(id)) throw new CartridgeFormatError(`attribute ${id.toString(16)}h is the cartridge's own (${id === LOG_FLOOR_ATTRIBUTE ? 'its log floor' : 'its partition layout'})`);
        if (isPartitionContainer(id)) throw new CartridgeFormatError(`attribute ${id.toString(16)}h is the cartridge's own (partition ${id - PARTITION_ATTRIBUTES_BASE}'s attributes)`);
      }
      if (p === 0) mam = attrs;
      else partitions.set(p, new Map(attrs));
    }
    // An overwrite must always find room for its floor, and a FORMAT MEDIUM for the largest layout.
    encodeMamSlot(this.mamSequence + 1, this.withFloor(mam, this.floor ?? { offset: 0, generation: 0 }, partitions, { sizes: new Array<number>(MAX_PARTITIONS).fill(0) }));
    return { mam, partitions };
  }

  /**
   * Makes everything durable and closes the file: a sync point, then the EOD marker and
   * another sync point (when writable and not failed). The first sync point keeps the
   * last stretch of records out of the region an open has to verify after a crash inside
   * the final fdatasync. The file is closed even when that throws. Idempotent.
   */
  close(): void {
    if (this.fd < 0) return;
    // The fdatasync on the thread pool uses this descriptor: closing it now could sync another file.
    this.quiet('closing the cartridge');
    try {
      if (!this.readOnly && !this.failure) {
        this.sync();
        // A clean file already ends in EOD past the append offset; don't rewrite it on every unload.
        if (this.fileSize === this.appendOffset) this.append(encodeRecord(RecordKind.endOfData, this.generation));
        this.sync();
      }
    } finally {
      this.closeFiles();
    }
  }

  /**
   * {@link close} with its fdatasyncs on the thread pool (after any sync point in flight):
   * the same sync points and EOD marker, the file closed when the promise settles, even
   * when it rejects. Idempotent.
   */
  async closeAsync(): Promise<void> {
    await this.whenSynced();
    if (this.fd < 0) return;
    try {
      if (!this.readOnly && !this.failure) {
        await this.syncAsync();
        if (this.fileSize === this.appendOffset) this.append(encodeRecord(RecordKind.endOfData, this.generation));
        await this.syncAsync();
      }
    } finally {
      // Another caller may have started a sync point or closed the file meanwhile.
      await this.whenSynced();
      if (this.fd >= 0) this.closeFiles();
    }
  }

  private closeFiles(): void {
    this.io.closeSync(this.fd);
    this.fd = -1;
    // A writeback still running closes its descriptor when it ends.
    if (this.wbFd >= 0 && !this.writebackRunning) this.io.closeSync(this.wbFd);
    if (!this.writebackRunning) this.wbFd = -1;
  }

  get closed(): boolean {
    return this.fd < 0;
  }
}
