/**
 * Medium auxiliary memory (cartridge memory) attributes, SPC-4 7.4. The catalogue says
 * which attributes the drive knows, their format and length, and which a host may write;
 * values live in the cartridge file (docs/cartridge-format.md) or are computed from the
 * drive's state when read.
 */
import { setU16 } from '../../src/scsi/bytes.js';

export const AttributeFormat = { binary: 0, ascii: 1, text: 2 } as const;
export type AttributeFormat = (typeof AttributeFormat)[keyof typeof AttributeFormat];

export interface AttributeDef {
  readonly id: number;
  readonly name: string;
  readonly format: AttributeFormat;
  /** Defined length in bytes; for `variable`, the maximum. */
  readonly length: number;
  readonly variable?: boolean;
  readonly readOnly: boolean;
  /**
   * Held for each partition on its own (READ/WRITE ATTRIBUTE PARTITION NUMBER selects
   * which); the others describe the whole medium and read the same in every partition.
   */
  readonly perPartition?: boolean;
}

function def(id: number, name: string, format: AttributeFormat, length: number, readOnly: boolean, variable = false, perPartition = false): AttributeDef {
  return { id, name, format, length, readOnly, ...(variable ? { variable } : {}), ...(perPartition ? { perPartition } : {}) };
}
const B = AttributeFormat.binary;
const A = AttributeFormat.ascii;
const T = AttributeFormat.text;

/** Attribute identifiers used by the drive. */
export const Attr = {
  REMAINING_CAPACITY: 0x0000,
  MAXIMUM_CAPACITY: 0x0001,
  TAPEALERT_FLAGS: 0x0002,
  LOAD_COUNT: 0x0003,
  MAM_SPACE_REMAINING: 0x0004,
  ASSIGNING_ORGANIZATION_DEVICE: 0x0005,
  FORMATTED_DENSITY_CODE: 0x0006,
  INITIALIZATION_COUNT: 0x0007,
  VOLUME_CHANGE_REFERENCE: 0x0009,
  DEVICE_AT_LAST_LOAD: 0x020a,
  DEVICE_AT_LOAD_MINUS_1: 0x020b,
  DEVICE_AT_LOAD_MINUS_2: 0x020c,
  DEVICE_AT_LOAD_MINUS_3: 0x020d,
  TOTAL_MB_WRITTEN_LIFETIME: 0x0220,
  TOTAL_MB_READ_LIFETIME: 0x0221,
  TOTAL_MB_WRITTEN_THIS_LOAD: 0x0222,
  TOTAL_MB_READ_THIS_LOAD: 0x0223,
  MEDIUM_MANUFACTURER: 0x0400,
  MEDIUM_SERIAL_NUMBER: 0x0401,
  MEDIUM_LENGTH: 0x0402,
  MEDIUM_WIDTH: 0x0403,
  ASSIGNING_ORGANIZATION_MEDIUM: 0x0404,
  MEDIUM_DENSITY_CODE: 0x0405,
  MEDIUM_MANUFACTURE_DATE: 0x0406,
  MAM_CAPACITY: 0x0407,
  MEDIUM_TYPE: 0x0408,
  MEDIUM_TYPE_INFORMATION: 0x0409,
  APPLICATION_VENDOR: 0x0800,
  APPLICATION_NAME: 0x0801,
  APPLICATION_VERSION: 0x0802,
  USER_MEDIUM_TEXT_LABEL: 0x0803,
  DATE_TIME_LAST_WRITTEN: 0x0804,
  TEXT_LOCALIZATION_IDENTIFIER: 0x0805,
  BARCODE: 0x0806,
  OWNING_HOST_TEXTUAL_NAME: 0x0807,
  MEDIA_POOL: 0x0808,
  PARTITION_USER_TEXT_LABEL: 0x0809,
  LOAD_UNLOAD_AT_PARTITION: 0x080a,
  APPLICATION_FORMAT_VERSION: 0x080b,
  VOLUME_COHERENCY_INFORMATION: 0x080c,
  MEDIUM_GUID: 0x0820,
  MEDIA_POOL_GUID: 0x0821,
} as const;

/** Largest VOLUME COHERENCY INFORMATION value taken: a 255-byte change reference and 256 bytes of application information. */
export const VCI_MAX = 1 + 255 + 8 + 8 + 2 + 256;

export const attributeCatalogue: readonly AttributeDef[] = [
  def(Attr.REMAINING_CAPACITY, 'REMAINING CAPACITY IN PARTITION', B, 8, true, false, true),
  def(Attr.MAXIMUM_CAPACITY, 'MAXIMUM CAPACITY IN PARTITION', B, 8, true, false, true),
  def(Attr.TAPEALERT_FLAGS, 'TAPEALERT FLAGS', B, 8, true),
  def(Attr.LOAD_COUNT, 'LOAD COUNT', B, 8, true),
  def(Attr.MAM_SPACE_REMAINING, 'MAM SPACE REMAINING', B, 8, true),
  def(Attr.ASSIGNING_ORGANIZATION_DEVICE, 'ASSIGNING ORGANIZATION', A, 8, true),
  def(Attr.FORMATTED_DENSITY_CODE, 'FORMATTED DENSITY CODE', B, 1, true),
  def(Attr.INITIALIZATION_COUNT, 'INITIALIZATION COUNT', B, 2, true),
  def(Attr.VOLUME_CHANGE_REFERENCE, 'VOLUME CHANGE REFERENCE', B, 4, true),
  def(Attr.DEVICE_AT_LAST_LOAD, 'DEVICE VENDOR/SERIAL NUMBER AT LAST LOAD', A, 40, true),
  def(Attr.DEVICE_AT_LOAD_MINUS_1, 'DEVICE VENDOR/SERIAL NUMBER AT LOAD-1', A, 40, true),
  def(Attr.DEVICE_AT_LOAD_MINUS_2, 'DEVICE VENDOR/SERIAL NUMBER AT LOAD-2', A, 40, true),
  def(Attr.DEVICE_AT_LOAD_MINUS_3, 'DEVICE VENDOR/SERIAL NUMBER AT LOAD-3', A, 40, true),
  def(Attr.TOTAL_MB_WRITTEN_LIFETIME, 'TOTAL MBYTES WRITTEN IN MEDIUM LIFE', B, 8, true),
  def(Attr.TOTAL_MB_READ_LIFETIME, 'TOTAL MBYTES READ IN MEDIUM LIFE', B, 8, true),
  def(Attr.TOTAL_MB_WRITTEN_THIS_LOAD, 'TOTAL MBYTES WRITTEN IN CURRENT/LAST LOAD', B, 8, true),
  def(Attr.TOTAL_MB_READ_THIS_LOAD, 'TOTAL MBYTES READ IN CURRENT/LAST LOAD', B, 8, true),
  def(Attr.MEDIUM_MANUFACTURER, 'MEDIUM MANUFACTURER', A, 8, true),
  def(Attr.MEDIUM_SERIAL_NUMBER, 'MEDIUM SERIAL NUMBER', A, 32, true),
  def(Attr.MEDIUM_LENGTH, 'MEDIUM LENGTH', B, 4, true),
  def(Attr.MEDIUM_WIDTH, 'MEDIUM WIDTH', B, 4, true),
  def(Attr.ASSIGNING_ORGANIZATION_MEDIUM, 'ASSIGNING ORGANIZATION', A, 8, true),
  def(Attr.MEDIUM_DENSITY_CODE, 'MEDIUM DENSITY CODE', B, 1, true),
  def(Attr.MEDIUM_MANUFACTURE_DATE, 'MEDIUM MANUFACTURE DATE', A, 8, true),
  def(Attr.MAM_CAPACITY, 'MAM CAPACITY', B, 8, true),
  def(Attr.MEDIUM_TYPE, 'MEDIUM TYPE', B, 1, true),
  def(Attr.MEDIUM_TYPE_INFORMATION, 'MEDIUM TYPE INFORMATION', B, 2, true),
  def(Attr.APPLICATION_VENDOR, 'APPLICATION VENDOR', A, 8, false),
  def(Attr.APPLICATION_NAME, 'APPLICATION NAME', A, 32, false),
  def(Attr.APPLICATION_VERSION, 'APPLICATION VERSION', A, 8, false),
  def(Attr.USER_MEDIUM_TEXT_LABEL, 'USER MEDIUM TEXT LABEL', T, 160, false),
  def(Attr.DATE_TIME_LAST_WRITTEN, 'DATE AND TIME LAST WRITTEN', A, 12, false),
  def(Attr.TEXT_LOCALIZATION_IDENTIFIER, 'TEXT LOCALIZATION IDENTIFIER', B, 1, false),
  def(Attr.BARCODE, 'BARCODE', A, 32, false),
  def(Attr.OWNING_HOST_TEXTUAL_NAME, 'OWNING HOST TEXTUAL NAME', T, 80, false),
  def(Attr.MEDIA_POOL, 'MEDIA POOL', T, 160, false),
  def(Attr.PARTITION_USER_TEXT_LABEL, 'PARTITION USER TEXT LABEL', A, 16, false, false, true),
  def(Attr.LOAD_UNLOAD_AT_PARTITION, 'LOAD/UNLOAD AT PARTITION', B, 1, false),
  def(Attr.APPLICATION_FORMAT_VERSION, 'APPLICATION FORMAT VERSION', A, 16, false),
  // LTFS writes one to each partition (70 bytes: an 8-byte change reference and 43 bytes of
  // LTFS information); the room left is for other applications' longer ones.
  def(Attr.VOLUME_COHERENCY_INFORMATION, 'VOLUME COHERENCY INFORMATION', B, VCI_MAX, false, true, true),
  def(Attr.MEDIUM_GUID, 'MEDIUM GLOBALLY UNIQUE IDENTIFIER', B, 36, false),
  def(Attr.MEDIA_POOL_GUID, 'MEDIA POOL GLOBALLY UNIQUE IDENTIFIER', B, 36, false),
];

const byId = new Map(attributeCatalogue.map((d) => [d.id, d]));

export function attributeDef(id: number): AttributeDef | undefined {
  return byId.get(id);
}

/** Attributes a host may create that the catalogue does not name: the host vendor-specific range. */
export function isHostVendorSpecific(id: number): boolean {
  return id >= 0x1400 && id <= 0x17ff;
}

/** An attribute value as READ ATTRIBUTE reports it. */
export interface AttributeValue {
  readonly id: number;
  readonly format: number;
  readonly readOnly: boolean;
  readonly value: Uint8Array;
}

/** Encodes one attribute (SPC-4 table 331): id, READ ONLY + format, length, value. */
export function encodeAttribute(a: AttributeValue): Uint8Array {
  const b = new Uint8Array(5 + a.value.length);
  setU16(b, 0, a.id);
  b[2] = (a.readOnly ? 0x80 : 0) | (a.format & 0x03);
  setU16(b, 3, a.value.length);
  b.set(a.value, 5);
  return b;
}

/** Fixed-width ASCII (space padded) or text (NUL padded) value for an attribute. */
export function padValue(d: AttributeDef, v: Uint8Array): Uint8Array {
  if (d.variable || v.length >= d.length) return v;
  const b = new Uint8Array(d.length).fill(d.format === AttributeFormat.ascii ? 0x20 : 0);
  b.set(v);
  return b;
}

export function asciiValue(s: string, width: number): Uint8Array {
  const b = new Uint8Array(width).fill(0x20);
  for (let i = 0; i < Math.min(width, s.length); i++) {
    const c = s.charCodeAt(i);
    b[i] = c >= 0x20 && c < 0x7f ? c : 0x3f;
  }
  return b;
}

export function binaryValue(v: number | bigint, width: number): Uint8Array {
  const b = new Uint8Array(width);
  let x = BigInt(v);
  for (let i = width - 1; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

export function binaryNumber(b: Uint8Array | undefined): number {
  let x = 0;
  for (const c of b ?? []) x = x * 256 + c;
  return x;
}

// ------------------------------------------------------------------ value checks

/** Where a value breaks its attribute's rules: the byte (from the value's start) and bit, with the reason. */
export interface ValueFault {
  readonly byte: number;
  readonly bit: number;
  readonly reason: string;
}

const fault = (byte: number, bit: number, reason: string): ValueFault => ({ byte, bit, reason });

/** TEXT LOCALIZATION IDENTIFIER values (SPC-4): ASCII, ISO/IEC 8859-1..10, UCS-2BE, UTF-8. */
export function isTextLocalization(v: number): boolean {
  return v <= 0x0a || v === 0x80 || v === 0x81;
}

/** ASCII attribute data (SPC-4 4.3.1): printable characters 20h..7Eh only. */
function asciiFault(v: Uint8Array): ValueFault | undefined {
  const i = v.findIndex((c) => c < 0x20 || c > 0x7e);
  return i < 0 ? undefined : fault(i, 7, `byte 0x${(v[i] ?? 0).toString(16).padStart(2, '0')} is not printable ASCII`);
}

/** DATE AND TIME LAST WRITTEN: YYYYMMDDHHMM, a 24-hour clock. */
function dateTimeFault(v: Uint8Array): ValueFault | undefined {
  for (let i = 0; i < 12; i++) {
    const c = v[i] ?? 0;
    if (c < 0x30 || c > 0x39) return fault(i, 7, 'DATE AND TIME LAST WRITTEN must be 12 digits, YYYYMMDDHHMM');
  }
  const n = (from: number, len: number): number => Number(Buffer.from(v.subarray(from, from + len)).toString('latin1'));
  const month = n(4, 2);
  const day = n(6, 2);
  if (month < 1 || month > 12) return fault(4, 7, `month ${month} is not 1..12`);
  if (day < 1 || day > 31) return fault(6, 7, `day ${day} is not 1..31`);
  if (n(8, 2) > 23) return fault(8, 7, `hour ${n(8, 2)} is not 0..23`);
  if (n(10, 2) > 59) return fault(10, 7, `minute ${n(10, 2)} is not 0..59`);
  return undefined;
}

/** The parts of a VOLUME COHERENCY INFORMATION value (SPC-4 host type attributes). */
export interface VolumeCoherency {
  readonly changeReference: Uint8Array;
  readonly coherencyCount: bigint;
  readonly setIdentifier: bigint;
  readonly applicationInfo: Uint8Array;
  /** The LTFS part of the application information, when it holds one. */
  readonly ltfs?: { readonly volumeUuid: string; readonly version: number };
}

/** LTFS's application client specific information: "LTFS", NUL, the volume UUID and a NUL, then its version. */
const LTFS_SIGNATURE = Uint8Array.of(0x4c, 0x54, 0x46, 0x53, 0x00);
const LTFS_INFO_LENGTH = LTFS_SIGNATURE.length + 36 + 1 + 1;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/iu;

/**
 * Checks and splits a VOLUME COHERENCY INFORMATION value: VOLUME CHANGE REFERENCE VALUE
 * LENGTH (1) and value, VOLUME COHERENCY COUNT (8), VOLUME COHERENCY SET IDENTIFIER (8),
 * APPLICATION CLIENT SPECIFIC INFORMATION LENGTH (2) and information; the lengths must add
 * up to the value's. Application information that starts with LTFS's signature must be
 * LTFS's, a volume UUID in its text form.
 */
export function parseVolumeCoherency(v: Uint8Array): VolumeCoherency | ValueFault {
  if (v.length < 1) return fault(0, 7, 'VOLUME COHERENCY INFORMATION is empty');
  const n = v[0] ?? 0;
  const base = 1 + n;
  if (base + 18 > v.length) return fault(0, 7, `VOLUME CHANGE REFERENCE VALUE LENGTH ${n} leaves no room for the count, set identifier and information length (value is ${v.length} bytes)`);
  const dv = new DataView(v.buffer, v.byteOffset, v.length);
  const m = dv.getUint16(base + 16);
  if (base + 18 + m !== v.length) return fault(base + 16, 7, `APPLICATION CLIENT SPECIFIC INFORMATION LENGTH ${m} does not match the value (${v.length - base - 18} bytes follow)`);
  const info = v.subarray(base + 18);
  const out = { changeReference: v.slice(1, base), coherencyCount: dv.getBigUint64(base), setIdentifier: dv.getBigUint64(base + 8), applicationInfo: info.slice() };
  if (info.length < 4 || !LTFS_SIGNATURE.subarray(0, 4).every((c, i) => info[i] === c)) return out;
  const at = base + 18;
  if (info.length !== LTFS_INFO_LENGTH) return fault(base + 16, 7, `LTFS application information must be ${LTFS_INFO_LENGTH} bytes (got ${info.length})`);
  if (info[4] !== 0) return fault(at + 4, 7, 'LTFS signature must end in NUL');
  const uuid = Buffer.from(info.subarray(5, 41)).toString('latin1');
  if (!UUID_RE.test(uuid)) return fault(at + 5, 7, `LTFS volume UUID '${uuid.replace(/[^\x20-\x7e]/gu, '?')}' is not a UUID`);
  if (info[41] !== 0) return fault(at + 41, 7, 'LTFS volume UUID must end in NUL');
  return { ...out, ltfs: { volumeUuid: uuid.toLowerCase(), version: info[42] ?? 0 } };
}

/**
 * Whether `v` (as sent, before padding) is a valid value for `d`: ASCII attributes hold
 * printable ASCII; the date is a date; the text localization identifier is a defined one;
 * the volume coherency information is well formed. Lengths are checked by the caller.
 */
export function valueFault(d: AttributeDef, v: Uint8Array): ValueFault | undefined {
  if (v.length === 0) return undefined;
  if (d.format === AttributeFormat.ascii) {
    const f = asciiFault(v);
    if (f) return f;
  }
  switch (d.id) {
    case Attr.DATE_TIME_LAST_WRITTEN:
      return v.length === 12 ? dateTimeFault(v) : fault(0, 7, 'DATE AND TIME LAST WRITTEN must be 12 characters');
    case Attr.TEXT_LOCALIZATION_IDENTIFIER:
      return isTextLocalization(v[0] ?? 0) ? undefined : fault(0, 7, `TEXT LOCALIZATION IDENTIFIER 0x${(v[0] ?? 0).toString(16)} is reserved`);
    case Attr.LOAD_UNLOAD_AT_PARTITION:
      return (v[0] ?? 0) <= 1 ? undefined : fault(0, 7, 'LOAD/UNLOAD AT PARTITION must be 0 or 1');
    case Attr.VOLUME_COHERENCY_INFORMATION: {
      const r = parseVolumeCoherency(v);
      return 'reason' in r ? r : undefined;
    }
    default:
      return undefined;
  }
}
