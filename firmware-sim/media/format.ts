/**
 * Byte layout of a cartridge file (docs/cartridge-format.md): a fixed header, two
 * cartridge-memory (MAM) slots written alternately, then an append-only log of records.
 * Pure encoders and decoders; file I/O lives in cartridge.ts and scan.ts.
 */
import { crc32c } from '../../src/native.js';
import { getAscii, getU16, getU32, getU64, setAscii, setU16, setU32, setU64 } from '../../src/scsi/bytes.js';

/** The version this build creates. Version 1 (MAM slot sequence outside the slot CRC) is read, and converted when opened for writing. */
export const FORMAT_VERSION = 2;
/**
 * The version of a file once FORMAT MEDIUM gave it a layout (more than one partition, or one
 * smaller than the tape): its records
 * carry a partition number (header byte 5) and its log holds discard records. A build that
 * reads only version 2 would take every record for partition 0, so it must refuse the file.
 */
export const PARTITIONED_VERSION = 3;
/** Versions this build reads. */
export const READABLE_VERSIONS: readonly number[] = [1, 2, 3];
/** Most partitions a cartridge file holds (what LTO-7 and later drives support). */
export const MAX_PARTITIONS = 4;
export const HEADER_MAGIC = 'PTPVTSCT';
export const HEADER_SIZE = 4096;
/** Bytes of the header actually used; the rest of the 4 KiB block is zero. */
export const HEADER_USED = 128;
export const MAM_SLOT_SIZE = 16384;
export const MAM_SLOT_OFFSETS = [HEADER_SIZE, HEADER_SIZE + MAM_SLOT_SIZE] as const;
export const LOG_OFFSET = HEADER_SIZE + 2 * MAM_SLOT_SIZE;
/** Format 2 slots: the CRC covers the slot header (magic, sequence, length) and the attributes. */
export const MAM_MAGIC = 0x4d414d32; // 'MAM2'
/** Format 1 slots: the CRC covers the attributes only; read from format 1 files alone. */
export const MAM_MAGIC_V1 = 0x4d414d31; // 'MAM1'
export const MAM_SLOT_HEADER = 16;
export const RECORD_MAGIC = 0x52454331; // 'REC1'
export const RECORD_HEADER_SIZE = 24;
/** Largest payload a record may claim; bigger lengths mean a corrupt header. */
export const MAX_RECORD_PAYLOAD = 64 * 1024 * 1024;

export const HeaderFlag = { worm: 0x0001 } as const;

/** Record kinds of the log. */
export const RecordKind = {
  data: 1,
  filemark: 2,
  endOfData: 3,
  syncPoint: 4,
  /**
   * Discard (format 3): the objects of the record's partition from the object number in its
   * 8-byte payload on are gone (an overwrite in a partitioned log, which cannot be cut).
   */
  discard: 5,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

const knownKinds = new Set<number>(Object.values(RecordKind));

/** Immutable facts about the cartridge, fixed when it is created. */
export interface CartridgeHeader {
  readonly version: number;
  readonly mediaType: string;
  readonly barcode: string;
  readonly capacityBytes: number;
  readonly worm: boolean;
  /** Creation time (ms since the epoch), used as the MAM manufacture date. */
  readonly createdMs: number;
}

export class CartridgeFormatError extends Error {
  override readonly name = 'CartridgeFormatError';
  readonly code = 'ECARTFORMAT';
}

export function encodeHeader(h: CartridgeHeader): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE);
  setAscii(b, 0, 8, HEADER_MAGIC);
  setU16(b, 8, h.version);
  setU16(b, 10, h.worm ? HeaderFlag.worm : 0);
  setU32(b, 12, LOG_OFFSET);
  setU32(b, 16, MAM_SLOT_SIZE);
  setU64(b, 20, BigInt(h.capacityBytes));
  setU64(b, 28, BigInt(h.createdMs));
  setAscii(b, 36, 16, h.mediaType);
  setAscii(b, 52, 32, h.barcode);
  setU32(b, HEADER_USED - 4, crc32c(b.subarray(0, HEADER_USED - 4)));
  return b;
}

export function decodeHeader(b: Uint8Array): CartridgeHeader {
  if (b.length < HEADER_USED) throw new CartridgeFormatError(`cartridge header truncated to ${b.length} bytes (need ${HEADER_USED})`);
  if (getAscii(b, 0, 8) !== HEADER_MAGIC) throw new CartridgeFormatError('not a ptpvts cartridge file (bad magic)');
  const stored = getU32(b, HEADER_USED - 4);
  const actual = crc32c(b.subarray(0, HEADER_USED - 4));
  if (stored !== actual) throw new CartridgeFormatError(`cartridge header CRC mismatch (stored 0x${stored.toString(16)}, computed 0x${actual.toString(16)})`);
  const version = getU16(b, 8);
  if (!READABLE_VERSIONS.includes(version)) throw new CartridgeFormatError(`cartridge format version ${version} is not supported (this build reads ${READABLE_VERSIONS.join(' and ')})`);
  if (getU32(b, 12) !== LOG_OFFSET || getU32(b, 16) !== MAM_SLOT_SIZE) throw new CartridgeFormatError(`cartridge layout fields do not match format version ${version}`);
  return {
    version,
    worm: (getU16(b, 10) & HeaderFlag.worm) !== 0,
    capacityBytes: Number(getU64(b, 20)),
    createdMs: Number(getU64(b, 28)),
    mediaType: getAscii(b, 36, 16),
    barcode: getAscii(b, 52, 32),
  };
}

/** A decoded record header (the 24 bytes before each payload). */
export interface RecordHeader {
  readonly kind: RecordKind;
  /** Partition the record belongs to (header byte 5; 0 in files of formats 1 and 2). */
  readonly partition: number;
  readonly generation: number;
  readonly length: number;
  readonly payloadCrc: number;
}

export function encodeRecord(kind: RecordKind, generation: number, payload?: Uint8Array, partition = 0): Uint8Array {
  const header = encodeRecordHeader(kind, generation, payload, partition);
  if (!payload || payload.length === 0) return header;
  const b = new Uint8Array(RECORD_HEADER_SIZE + payload.length);
  b.set(header, 0);
  b.set(payload, RECORD_HEADER_SIZE);
  return b;
}

/** Just the header of a record, so a writer can hand header and payload to writev without a copy. */
export function encodeRecordHeader(kind: RecordKind, generation: number, payload?: Uint8Array, partition = 0): Uint8Array {
  const len = payload?.length ?? 0;
  const b = new Uint8Array(RECORD_HEADER_SIZE);
  setU32(b, 0, RECORD_MAGIC);
  b[4] = kind;
  b[5] = partition;
  setU32(b, 8, generation >>> 0);
  setU32(b, 12, len);
  setU32(b, 16, payload && len ? crc32c(payload) : 0);
  setU32(b, 20, crc32c(b.subarray(0, 20)));
  return b;
}

/** Decodes a record header; undefined when the bytes are not a valid header. */
export function decodeRecordHeader(b: Uint8Array, off = 0): RecordHeader | undefined {
  if (b.length - off < RECORD_HEADER_SIZE) return undefined;
  if (getU32(b, off) !== RECORD_MAGIC) return undefined;
  if (getU32(b, off + 20) !== crc32c(b.subarray(off, off + 20))) return undefined;
  const kind = b[off + 4] ?? 0;
  const length = getU32(b, off + 12);
  if (!knownKinds.has(kind) || length > MAX_RECORD_PAYLOAD) return undefined;
  if (kind === RecordKind.discard ? length !== DISCARD_PAYLOAD : kind !== RecordKind.data && length !== 0) return undefined;
  const partition = b[off + 5] ?? 0;
  // Bytes 6..7 stay reserved (zero); a partition number no file can hold is a corrupt header.
  if (partition >= MAX_PARTITIONS || b[off + 6] !== 0 || b[off + 7] !== 0) return undefined;
  return { kind: kind as RecordKind, partition, generation: getU32(b, off + 8), length, payloadCrc: getU32(b, off + 16) };
}

/** Payload bytes of a discard record: the first discarded object number, 8 bytes. */
export const DISCARD_PAYLOAD = 8;

export function encodeDiscard(objectNumber: number): Uint8Array {
  const b = new Uint8Array(DISCARD_PAYLOAD);
  setU64(b, 0, BigInt(objectNumber));
  return b;
}

export function decodeDiscard(payload: Uint8Array): number {
  return Number(getU64(payload, 0));
}

export function payloadCrcOk(h: RecordHeader, payload: Uint8Array): boolean {
  return (h.length === 0 ? 0 : crc32c(payload)) === h.payloadCrc;
}

/** One cartridge-memory attribute as stored: its SPC format code and raw value bytes. */
export interface StoredAttribute {
  /** 0 binary, 1 ASCII, 2 text (SPC-4 table 334). */
  readonly format: number;
  readonly value: Uint8Array;
}

/** The slot CRC of format 2: slot header bytes 0..11, then the attribute area. */
function mamSlotCrc(b: Uint8Array, len: number): number {
  return crc32c(b.subarray(MAM_SLOT_HEADER, MAM_SLOT_HEADER + len), crc32c(b.subarray(0, 12)));
}

/** Encodes a MAM slot image in the current layout (at most {@link MAM_SLOT_SIZE} bytes). */
export function encodeMamSlot(sequence: number, attrs: ReadonlyMap<number, StoredAttribute>): Uint8Array {
  let len = 0;
  for (const a of attrs.values()) len += 5 + a.value.length;
  if (MAM_SLOT_HEADER + len > MAM_SLOT_SIZE) throw new CartridgeFormatError(`cartridge memory is full (${len} bytes of attributes, room for ${MAM_SLOT_SIZE - MAM_SLOT_HEADER})`);
  const b = new Uint8Array(MAM_SLOT_HEADER + len);
  let off = MAM_SLOT_HEADER;
  for (const [id, a] of [...attrs].sort((x, y) => x[0] - y[0])) {
    setU16(b, off, id);
    b[off + 2] = a.format;
    setU16(b, off + 3, a.value.length);
    b.set(a.value, off + 5);
    off += 5 + a.value.length;
  }
  setU32(b, 0, MAM_MAGIC);
  setU32(b, 4, sequence >>> 0);
  setU32(b, 8, len);
  setU32(b, 12, mamSlotCrc(b, len));
  return b;
}

/**
 * The log floor, kept in the cartridge memory image under an identifier no host can use
 * ({@link LOG_FLOOR_ATTRIBUTE}): records at or past `offset` count only with a generation of
 * at least `generation`. An overwrite writes it (durably) before it cuts the file, so
 * whatever a power cut leaves of the old records past the cut point can never read as data.
 */
export interface LogFloor {
  readonly offset: number;
  readonly generation: number;
}

/** Cartridge-memory identifier of the {@link LogFloor}: past the SPC-defined ranges, never shown to hosts. */
export const LOG_FLOOR_ATTRIBUTE = 0xff00;

export function encodeLogFloor(f: LogFloor): StoredAttribute {
  const value = new Uint8Array(12);
  const v = new DataView(value.buffer);
  v.setBigUint64(0, BigInt(f.offset));
  v.setUint32(8, f.generation >>> 0);
  return { format: 0, value };
}

/** The floor an attribute map holds, if any (a malformed one is ignored: it cannot have been written). */
export function decodeLogFloor(attrs: ReadonlyMap<number, StoredAttribute>): LogFloor | undefined {
  const a = attrs.get(LOG_FLOOR_ATTRIBUTE);
  if (!a || a.value.length !== 12) return undefined;
  const v = new DataView(a.value.buffer, a.value.byteOffset, 12);
  return { offset: Number(v.getBigUint64(0)), generation: v.getUint32(8) };
}

/**
 * The partition layout: the size in bytes of each partition, partition 0 first. Kept in the
 * cartridge memory image under {@link PARTITION_LAYOUT_ATTRIBUTE} next to the log floor, so
 * FORMAT MEDIUM changes both in one slot write: a crash leaves the old layout with the old
 * records or the new one with none of them, never a mix. A file without it has one
 * partition of the header's capacity.
 */
export interface PartitionLayout {
  readonly sizes: readonly number[];
}

/** Cartridge-memory identifier of the {@link PartitionLayout}: the cartridge's own, never shown to hosts. */
export const PARTITION_LAYOUT_ATTRIBUTE = 0xff01;

/** Identifiers of the cartridge's own attributes (not hosts'). */
export const PRIVATE_ATTRIBUTES: readonly number[] = [LOG_FLOOR_ATTRIBUTE, PARTITION_LAYOUT_ATTRIBUTE];

/** Value: partition count (1 byte), 3 reserved bytes, then each size as 8 bytes. */
export function encodePartitionLayout(l: PartitionLayout): StoredAttribute {
  const value = new Uint8Array(4 + 8 * l.sizes.length);
  value[0] = l.sizes.length;
  l.sizes.forEach((s, i) => setU64(value, 4 + 8 * i, BigInt(s)));
  return { format: 0, value };
}

/** The layout an attribute map holds; undefined when there is none or it is malformed (it cannot have been written so). */
export function decodePartitionLayout(attrs: ReadonlyMap<number, StoredAttribute>): PartitionLayout | undefined {
  const a = attrs.get(PARTITION_LAYOUT_ATTRIBUTE);
  if (!a || a.value.length < 4) return undefined;
  const n = a.value[0] ?? 0;
  if (n < 1 || n > MAX_PARTITIONS || a.value.length !== 4 + 8 * n) return undefined;
  return { sizes: Array.from({ length: n }, (_, i) => Number(getU64(a.value, 4 + 8 * i))) };
}

/** A decoded MAM slot: its sequence number, its attributes, and the layout it was in. */
export interface MamSlot {
  readonly sequence: number;
  readonly attrs: Map<number, StoredAttribute>;
  readonly layout: 1 | 2;
}

/**
 * Decodes a MAM slot; undefined when the slot is empty or damaged. A file of format
 * version 1 may hold slots of either layout (a conversion to version 2 rewrites them
 * before the header says 2); a version 2 file holds only version 2 slots, whose sequence
 * number is under the CRC, so a damaged sequence can never make an older image win.
 */
export function decodeMamSlot(b: Uint8Array, fileVersion: number = FORMAT_VERSION): MamSlot | undefined {
  if (b.length < MAM_SLOT_HEADER) return undefined;
  const magic = getU32(b, 0);
  const layout = magic === MAM_MAGIC ? 2 : magic === MAM_MAGIC_V1 && fileVersion === 1 ? 1 : undefined;
  if (layout === undefined) return undefined;
  const len = getU32(b, 8);
  if (MAM_SLOT_HEADER + len > b.length) return undefined;
  const body = b.subarray(MAM_SLOT_HEADER, MAM_SLOT_HEADER + len);
  const crc = layout === 2 ? mamSlotCrc(b, len) : crc32c(body);
  if (crc !== getU32(b, 12)) return undefined;
  const attrs = new Map<number, StoredAttribute>();
  let off = 0;
  while (off + 5 <= body.length) {
    const id = getU16(body, off);
    const format = body[off + 2] ?? 0;
    const n = getU16(body, off + 3);
    if (off + 5 + n > body.length) return undefined;
    attrs.set(id, { format, value: body.slice(off + 5, off + 5 + n) });
    off += 5 + n;
  }
  return { sequence: getU32(b, 4), attrs, layout };
}
