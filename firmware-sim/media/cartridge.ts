/**
 * One cartridge file opened for use by a drive: the position index (logical object number
 * to file offset) rebuilt by scanning on open, the append path with its sync points, tape
 * overwrite (truncation), and cartridge memory. Synchronous I/O on purpose: a drive model
 * executes one medium operation at a time, and a crash test needs every write to have
 * reached the kernel when the call returns.
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync, fstatSync, writeSync, writevSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  CartridgeFormatError,
  decodeHeader,
  decodeMamSlot,
  decodeRecordHeader,
  encodeHeader,
  encodeMamSlot,
  encodeRecord,
  encodeRecordHeader,
  FORMAT_VERSION,
  HEADER_SIZE,
  LOG_OFFSET,
  MAM_SLOT_OFFSETS,
  MAM_SLOT_SIZE,
  payloadCrcOk,
  RECORD_HEADER_SIZE,
  RecordKind,
  type CartridgeHeader,
  type StoredAttribute,
} from './format.js';
import { scanLog } from './scan.js';

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

/** The file refuses a write: opened read-only or closed. */
export class CartridgeStateError extends Error {
  override readonly name = 'CartridgeStateError';
  readonly code = 'ECARTSTATE';
}

/** Appended bytes after which their writeback to disk starts in the background. */
const EARLY_WRITEBACK_BYTES = 8 * 1024 * 1024;

const KIND_CODE = { block: 0, filemark: 1, damaged: 2 } as const;
const KIND_NAME: readonly TapeObjectKind[] = ['block', 'filemark', 'damaged'];

function fsyncDir(path: string): void {
  try {
    const fd = openSync(dirname(path), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

function writeAll(fd: number, b: Uint8Array, pos: number): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, b.length - done, pos + done);
}

/** Reads `n` bytes at `pos` (fewer at end of file). The buffer is not cleared first: only bytes read are returned. */
function readExact(fd: number, n: number, pos: number): Uint8Array {
  const u = Buffer.allocUnsafe(n);
  const b = new Uint8Array(u.buffer, u.byteOffset, n);
  let got = 0;
  while (got < n) {
    const r = readSync(fd, b, got, n - got, pos + got);
    if (r === 0) break;
    got += r;
  }
  return got === n ? b : b.subarray(0, got);
}

/** Writes a fresh cartridge file atomically (temp file, fsync, rename). */
export function createCartridgeFile(path: string, init: CartridgeInit, now = Date.now()): CartridgeHeader {
  if (!Number.isSafeInteger(init.capacityBytes) || init.capacityBytes <= 0) throw new RangeError(`capacityBytes must be a positive integer (got ${init.capacityBytes})`);
  const header: CartridgeHeader = { version: FORMAT_VERSION, mediaType: init.mediaType, barcode: init.barcode, capacityBytes: init.capacityBytes, worm: init.worm, createdMs: now };
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, encodeHeader(header), 0);
    ftruncateSync(fd, LOG_OFFSET);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(path);
  return header;
}

/**
 * An open cartridge. Logical object numbers count blocks and filemarks from 0 (BOP);
 * {@link objectCount} is the EOD position. Every method throws on an OS error (the
 * `code`/`errno` of Node's fs error); none waits or can be cancelled.
 */
export class Cartridge {
  readonly header: CartridgeHeader;
  /** The file was not closed cleanly (no EOD marker) or had a torn tail that was dropped. */
  readonly recovered: boolean;
  private fd: number;
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
  private dirty = false;
  /** Bytes appended since the last fdatasync (sync point or early writeback). */
  private unflushed = 0;
  private writebackRunning = false;
  private mamSequence = 0;
  private mam = new Map<number, StoredAttribute>();
  private readonly offs: number[] = [];
  private readonly kinds: number[] = [];
  private readonly lens: number[] = [];
  /** Data bytes before object i (index i), with the total at index objectCount. */
  private readonly cumBytes: number[] = [0];
  /** Filemarks before object i, with the total at index objectCount. */
  private readonly cumFm: number[] = [0];
  private readonly fmIds: number[] = [];

  private constructor(
    readonly path: string,
    readonly readOnly: boolean,
  ) {
    this.fd = openSync(path, readOnly ? 'r' : 'r+');
    try {
      this.header = decodeHeader(readExact(this.fd, HEADER_SIZE, 0));
      this.fileSize = fstatSync(this.fd).size;
      if (this.fileSize < LOG_OFFSET) throw new CartridgeFormatError(`cartridge file is ${this.fileSize} bytes, shorter than its fixed area (${LOG_OFFSET})`);
      this.loadMam();
      const scan = scanLog(this.fd, this.fileSize, 'after-last-sync');
      let clean = scan.entries.length === 0;
      this.appendOffset = scan.endOfLog;
      for (const e of scan.entries) {
        if (e.kind === 'eod') {
          this.appendOffset = e.offset;
          clean = true;
        } else if (e.kind === 'block' || e.kind === 'filemark' || e.kind === 'damaged') {
          this.push(e.kind, e.offset, e.kind === 'filemark' ? 0 : e.length);
          clean = false;
        }
      }
      this.generation = Math.max(1, scan.maxGeneration);
      this.genEnd = this.fileSize;
      this.recovered = !clean || scan.tornBytes > 0;
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  /** Opens (and with `create`, first creates) a cartridge file. Throws {@link CartridgeFormatError} for a file that is not one. */
  static open(path: string, opts: CartridgeOpenOptions = {}): Cartridge {
    if (opts.create && !existsSync(path)) createCartridgeFile(path, opts.create);
    return new Cartridge(path, opts.readOnly ?? false);
  }

  private push(kind: TapeObjectKind, offset: number, length: number): void {
    const i = this.offs.length;
    this.offs.push(offset);
    this.kinds.push(KIND_CODE[kind]);
    this.lens.push(length);
    const bytes = (this.cumBytes[i] ?? 0) + (kind === 'block' ? length : 0);
    const fms = (this.cumFm[i] ?? 0) + (kind === 'filemark' ? 1 : 0);
    this.cumBytes.push(bytes);
    this.cumFm.push(fms);
    if (kind === 'filemark') this.fmIds.push(i);
  }

  private loadMam(): void {
    let best: { sequence: number; attrs: Map<number, StoredAttribute> } | undefined;
    for (const off of MAM_SLOT_OFFSETS) {
      const slot = decodeMamSlot(readExact(this.fd, MAM_SLOT_SIZE, off));
      if (slot && (!best || slot.sequence > best.sequence)) best = slot;
    }
    if (best) {
      this.mamSequence = best.sequence;
      this.mam = best.attrs;
    }
  }

  private writable(): void {
    if (this.fd < 0) throw new CartridgeStateError(`cartridge ${this.path} is closed`);
    if (this.readOnly) throw new CartridgeStateError(`cartridge ${this.path} is open read-only`);
  }

  /** Number of logical objects (blocks + filemarks + damaged stretches): the EOD position. */
  get objectCount(): number {
    return this.offs.length;
  }

  get filemarkCount(): number {
    return this.fmIds.length;
  }

  /** Payload bytes of all blocks up to EOD. */
  get dataBytes(): number {
    return this.cumBytes[this.offs.length] ?? 0;
  }

  /** File size in bytes, including records not yet made durable. */
  get sizeOnDisk(): number {
    return this.fileSize;
  }

  object(i: number): TapeObject | undefined {
    const off = this.offs[i];
    if (off === undefined) return undefined;
    return { kind: KIND_NAME[this.kinds[i] ?? 0] ?? 'damaged', length: this.lens[i] ?? 0, offset: off };
  }

  /** Filemarks before position `i` (the logical file number at that position). */
  filemarksBefore(i: number): number {
    return this.cumFm[Math.min(Math.max(0, i), this.offs.length)] ?? 0;
  }

  /** Block payload bytes before position `i`. */
  dataBytesBefore(i: number): number {
    return this.cumBytes[Math.min(Math.max(0, i), this.offs.length)] ?? 0;
  }

  /** Position of the `n`th filemark (0-based), if there are that many. */
  filemarkAt(n: number): number | undefined {
    return this.fmIds[n];
  }

  /** The first filemark at or after position `from`. */
  nextFilemark(from: number): number | undefined {
    return this.fmIds[this.filemarksBefore(from)];
  }

  /** The last filemark before position `before`. */
  previousFilemark(before: number): number | undefined {
    const n = this.filemarksBefore(before);
    return n > 0 ? this.fmIds[n - 1] : undefined;
  }

  /** Reads block `i`, verifying its CRC. Throws {@link MediaReadError} for a damaged record, RangeError for a non-block. */
  readBlock(i: number): Uint8Array {
    const o = this.object(i);
    if (!o || o.kind === 'filemark') throw new RangeError(`object ${i} is not a block`);
    if (o.kind === 'damaged') throw new MediaReadError(`block ${i} at offset ${o.offset} is damaged`, i, o.offset);
    // Header and payload in one pread; the payload's CRC (native CRC32C) is checked before it is handed out.
    const b = readExact(this.fd, RECORD_HEADER_SIZE + o.length, o.offset);
    const h = decodeRecordHeader(b);
    const payload = b.subarray(RECORD_HEADER_SIZE);
    if (!h || h.kind !== RecordKind.data || h.length !== o.length || payload.length !== o.length || !payloadCrcOk(h, payload)) {
      throw new MediaReadError(`block ${i} at offset ${o.offset} failed its CRC check`, i, o.offset);
    }
    return payload;
  }

  /**
   * Discards every object from position `at` on (a write there overwrites the rest of the
   * tape). The index forgets them at once; later records carry a higher generation and are
   * written over the old ones in place, and the next sync point cuts the file where the
   * new records end and makes that durable. Old records a crash leaves past the new ones
   * have the older generation and are recognised as stale on open.
   */
  truncate(at: number): void {
    this.writable();
    if (at < 0 || at > this.offs.length) throw new RangeError(`cannot truncate at ${at} (EOD is ${this.offs.length})`);
    if (at < this.offs.length) {
      const off = this.offs[at] ?? this.appendOffset;
      this.offs.length = at;
      this.kinds.length = at;
      this.lens.length = at;
      this.cumBytes.length = at + 1;
      this.cumFm.length = at + 1;
      while (this.fmIds.length > 0 && (this.fmIds[this.fmIds.length - 1] ?? 0) >= at) this.fmIds.pop();
      this.appendOffset = off;
    }
    this.cutTail();
  }

  /**
   * Before an append below {@link genEnd}: a new generation, so that nothing past the new
   * records can read as data, and the file is cut at the next sync point. Until then the
   * old bytes stay and the new records overwrite them in place (no truncation and
   * reallocation of a whole stream's worth of file on every rewrite).
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
    ftruncateSync(this.fd, this.appendOffset);
    this.fileSize = this.appendOffset;
    // A size change is part of what fdatasync writes: the cut is durable at the sync point.
    this.dirty = true;
  }

  private append(record: Uint8Array, payload?: Uint8Array): void {
    this.cutTail();
    const total = record.length + (payload?.length ?? 0);
    if (payload && payload.length > 0) {
      // Header and payload go down in one writev: no copy of the block into a record buffer.
      const done = writevSync(this.fd, [record, payload], this.appendOffset);
      if (done < total) {
        const whole = new Uint8Array(total);
        whole.set(record, 0);
        whole.set(payload, record.length);
        writeAll(this.fd, whole.subarray(done), this.appendOffset + done);
      }
    } else {
      writeAll(this.fd, record, this.appendOffset);
    }
    this.appendOffset += total;
    this.genEnd = Math.max(this.genEnd, this.appendOffset);
    this.fileSize = Math.max(this.fileSize, this.appendOffset);
    this.dirty = true;
    this.unflushed += total;
    if (this.unflushed >= EARLY_WRITEBACK_BYTES && !this.writebackRunning) this.earlyWriteback();
  }

  /** Appends one block at EOD. Durable only after the next {@link sync}. */
  appendBlock(data: Uint8Array): void {
    this.writable();
    const off = this.appendOffset;
    this.append(encodeRecordHeader(RecordKind.data, this.generation, data), data);
    this.push('block', off, data.length);
  }

  /** Appends `count` filemarks at EOD and makes everything so far durable (a sync point). */
  appendFilemarks(count: number): void {
    this.writable();
    if (count > 0) {
      this.cutTail();
      const rec = encodeRecord(RecordKind.filemark, this.generation);
      const all = new Uint8Array(rec.length * count);
      for (let k = 0; k < count; k++) all.set(rec, k * rec.length);
      const base = this.appendOffset;
      this.append(all);
      for (let k = 0; k < count; k++) this.push('filemark', base + k * rec.length, 0);
    }
    this.sync();
  }

  /**
   * Starts writing what was appended to the disk in the background (an fdatasync on the
   * thread pool), as a drive writes its buffer to tape while the host keeps sending: the
   * next sync point then waits for less. It makes nothing durable that a sync point would
   * not, and changes nothing a crash leaves (records after the last sync point marker are
   * still checked on open).
   */
  private earlyWriteback(): void {
    this.unflushed = 0;
    this.writebackRunning = true;
    fdatasync(this.fd, () => {
      // An error (the file closed meanwhile) is left to the next sync point to report.
      this.writebackRunning = false;
    });
  }

  /** Writes a sync point marker and fdatasyncs: everything appended so far survives a crash. */
  sync(): void {
    this.writable();
    this.applyCut();
    if (!this.dirty) return;
    this.append(encodeRecord(RecordKind.syncPoint, this.generation));
    fdatasyncSync(this.fd);
    this.unflushed = 0;
    this.dirty = false;
  }

  /** The cartridge memory attributes (a copy). */
  readAttributes(): Map<number, StoredAttribute> {
    return new Map(this.mam);
  }

  /** Replaces the cartridge memory. Durable on return: written to the older of the two slots, then fdatasync. */
  writeAttributes(attrs: ReadonlyMap<number, StoredAttribute>): void {
    this.writable();
    const seq = this.mamSequence + 1;
    const image = encodeMamSlot(seq, attrs);
    writeAll(this.fd, image, MAM_SLOT_OFFSETS[seq % 2] ?? HEADER_SIZE);
    fdatasyncSync(this.fd);
    this.mamSequence = seq;
    this.mam = new Map(attrs);
  }

  /** Writes the EOD marker and a sync point (when writable) and closes the file. Idempotent. */
  close(): void {
    if (this.fd < 0) return;
    try {
      if (!this.readOnly) {
        this.applyCut();
        // A clean file already ends in EOD past the append offset; don't rewrite it on every unload.
        if (this.fileSize === this.appendOffset) this.append(encodeRecord(RecordKind.endOfData, this.generation));
        this.sync();
      }
    } finally {
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  get closed(): boolean {
    return this.fd < 0;
  }
}
