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
}

function def(id: number, name: string, format: AttributeFormat, length: number, readOnly: boolean, variable = false): AttributeDef {
  return { id, name, format, length, readOnly, ...(variable ? { variable } : {}) };
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
  APPLICATION_FORMAT_VERSION: 0x080b,
  VOLUME_COHERENCY_INFORMATION: 0x080c,
  MEDIUM_GUID: 0x0820,
  MEDIA_POOL_GUID: 0x0821,
} as const;

export const attributeCatalogue: readonly AttributeDef[] = [
  def(Attr.REMAINING_CAPACITY, 'REMAINING CAPACITY IN PARTITION', B, 8, true),
  def(Attr.MAXIMUM_CAPACITY, 'MAXIMUM CAPACITY IN PARTITION', B, 8, true),
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
  def(Attr.APPLICATION_FORMAT_VERSION, 'APPLICATION FORMAT VERSION', A, 16, false),
  def(Attr.VOLUME_COHERENCY_INFORMATION, 'VOLUME COHERENCY INFORMATION', B, 70, false, true),
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
