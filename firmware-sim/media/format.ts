/**
 * Byte layout of a cartridge file (docs/cartridge-format.md): a fixed header, two
 * cartridge-memory (MAM) slots written alternately, then an append-only log of records.
 * Pure encoders and decoders; file I/O lives in cartridge.ts and scan.ts.
 */
import { crc32c } from '../../src/native.js';
import { getAscii, getU16, getU32, getU64, setAscii, setU16, setU32, setU64 } from '../../src/scsi/bytes.js';

/** The version this build writes. Version 1 (MAM slot sequence outside the slot CRC) is read, and converted when opened for writing. */
export const FORMAT_VERSION = 2;
/** Versions this build reads. */
export const READABLE_VERSIONS: readonly number[] = [1, 2];
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
  readonly generation: number;
  readonly length: number;
  readonly payloadCrc: number;
}

export function encodeRecord(kind: RecordKind, generation: number, payload?: Uint8Array): Uint8Array {
  const header = encodeRecordHeader(kind, generation, payload);
  if (!payload || payload.length === 0) return header;
  const b = new Uint8Array(RECORD_HEADER_SIZE + payload.length);
  b.set(header, 0);
  b.set(payload, RECORD_HEADER_SIZE);
  return b;
}

/** Just the header of a record, so a writer can hand header and payload to writev without a copy. */
export function encodeRecordHeader(kind: RecordKind, generation: number, payload?: Uint8Array): Uint8Array {
  const len = payload?.length ?? 0;
  const b = new Uint8Array(RECORD_HEADER_SIZE);
  setU32(b, 0, RECORD_MAGIC);
  b[4] = kind;
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
  if (kind !== RecordKind.data && length !== 0) return undefined;
  return { kind: kind as RecordKind, generation: getU32(b, off + 8), length, payloadCrc: getU32(b, off + 16) };
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
