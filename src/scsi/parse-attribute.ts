/**
 * Medium auxiliary memory attributes (SPC-4 7.4): READ ATTRIBUTE answers and WRITE
 * ATTRIBUTE parameter lists, with the standard attribute names and formats.
 */
import { getAscii, getU16, getU32, setU16, setU32 } from './bytes.js';
import { ScsiParseError, bit, getUtf8, needBytes, slice, u8 } from './parse-common.js';

/** FORMAT field of an attribute (SPC-4 table 295). */
export const AttributeFormat = { binary: 0, ascii: 1, text: 2 } as const;
export type AttributeFormat = (typeof AttributeFormat)[keyof typeof AttributeFormat];

interface AttributeSpec {
  readonly name: string;
  readonly format: AttributeFormat;
  /** Length in bytes the standard fixes; undefined where it varies. */
  readonly length?: number;
}

function spec(name: string, format: AttributeFormat, length?: number): AttributeSpec {
  return length === undefined ? { name, format } : { name, format, length };
}
const B = AttributeFormat.binary;
const A = AttributeFormat.ascii;
const T = AttributeFormat.text;

/** Standard attributes by identifier: device, medium and host type (SPC-4 tables 297-299). */
export const StandardAttributes: ReadonlyMap<number, AttributeSpec> = new Map([
  [0x0000, spec('REMAINING CAPACITY IN PARTITION', B, 8)],
  [0x0001, spec('MAXIMUM CAPACITY IN PARTITION', B, 8)],
  [0x0002, spec('TAPEALERT FLAGS', B, 8)],
  [0x0003, spec('LOAD COUNT', B, 8)],
  [0x0004, spec('MAM SPACE REMAINING', B, 8)],
  [0x0005, spec('ASSIGNING ORGANIZATION', A, 8)],
  [0x0006, spec('FORMATTED DENSITY CODE', B, 1)],
  [0x0007, spec('INITIALIZATION COUNT', B, 2)],
  [0x0008, spec('VOLUME IDENTIFIER', A, 32)],
  [0x0009, spec('VOLUME CHANGE REFERENCE', B, 4)],
  [0x020a, spec('DEVICE VENDOR/SERIAL NUMBER AT LAST LOAD', A, 40)],
  [0x020b, spec('DEVICE VENDOR/SERIAL NUMBER AT LOAD-1', A, 40)],
  [0x020c, spec('DEVICE VENDOR/SERIAL NUMBER AT LOAD-2', A, 40)],
  [0x020d, spec('DEVICE VENDOR/SERIAL NUMBER AT LOAD-3', A, 40)],
  [0x0220, spec('TOTAL MBYTES WRITTEN IN MEDIUM LIFE', B, 8)],
  [0x0221, spec('TOTAL MBYTES READ IN MEDIUM LIFE', B, 8)],
  [0x0222, spec('TOTAL MBYTES WRITTEN IN CURRENT/LAST LOAD', B, 8)],
  [0x0223, spec('TOTAL MBYTES READ IN CURRENT/LAST LOAD', B, 8)],
  [0x0224, spec('LOGICAL POSITION OF FIRST ENCRYPTED BLOCK', B, 8)],
  [0x0225, spec('LOGICAL POSITION OF FIRST UNENCRYPTED BLOCK AFTER THE FIRST ENCRYPTED BLOCK', B, 8)],
  [0x0340, spec('MEDIUM USAGE HISTORY', B, 90)],
  [0x0341, spec('PARTITION USAGE HISTORY', B, 60)],
  [0x0400, spec('MEDIUM MANUFACTURER', A, 8)],
  [0x0401, spec('MEDIUM SERIAL NUMBER', A, 32)],
  [0x0402, spec('MEDIUM LENGTH', B, 4)],
  [0x0403, spec('MEDIUM WIDTH', B, 4)],
  [0x0404, spec('ASSIGNING ORGANIZATION', A, 8)],
  [0x0405, spec('MEDIUM DENSITY CODE', B, 1)],
  [0x0406, spec('MEDIUM MANUFACTURE DATE', A, 8)],
  [0x0407, spec('MAM CAPACITY', B, 8)],
  [0x0408, spec('MEDIUM TYPE', B, 1)],
  [0x0409, spec('MEDIUM TYPE INFORMATION', B, 2)],
  [0x040a, spec('NUMERIC MEDIUM SERIAL NUMBER', B)],
  [0x0800, spec('APPLICATION VENDOR', A, 8)],
  [0x0801, spec('APPLICATION NAME', A, 32)],
  [0x0802, spec('APPLICATION VERSION', A, 8)],
  [0x0803, spec('USER MEDIUM TEXT LABEL', T, 160)],
  [0x0804, spec('DATE AND TIME LAST WRITTEN', A, 12)],
  [0x0805, spec('TEXT LOCALIZATION IDENTIFIER', B, 1)],
  [0x0806, spec('BARCODE', A, 32)],
  [0x0807, spec('OWNING HOST TEXTUAL NAME', T, 80)],
  [0x0808, spec('MEDIA POOL', T, 160)],
  [0x0809, spec('PARTITION USER TEXT LABEL', A, 16)],
  [0x080a, spec('LOAD/UNLOAD AT PARTITION', B, 1)],
  [0x080b, spec('APPLICATION FORMAT VERSION', A, 16)],
  [0x080c, spec('VOLUME COHERENCY INFORMATION', B)],
  [0x0820, spec('MEDIUM GLOBALLY UNIQUE IDENTIFIER', B, 36)],
  [0x0821, spec('MEDIA POOL GLOBALLY UNIQUE IDENTIFIER', B, 36)],
]);

/** Identifiers of the attributes clients use most, by name. */
export const AttributeId = {
  REMAINING_CAPACITY_IN_PARTITION: 0x0000,
  MAXIMUM_CAPACITY_IN_PARTITION: 0x0001,
  TAPEALERT_FLAGS: 0x0002,
  LOAD_COUNT: 0x0003,
  MAM_SPACE_REMAINING: 0x0004,
  VOLUME_IDENTIFIER: 0x0008,
  TOTAL_MBYTES_WRITTEN_IN_MEDIUM_LIFE: 0x0220,
  TOTAL_MBYTES_READ_IN_MEDIUM_LIFE: 0x0221,
  TOTAL_MBYTES_WRITTEN_IN_CURRENT_LOAD: 0x0222,
  TOTAL_MBYTES_READ_IN_CURRENT_LOAD: 0x0223,
  MEDIUM_MANUFACTURER: 0x0400,
  MEDIUM_SERIAL_NUMBER: 0x0401,
  MEDIUM_MANUFACTURE_DATE: 0x0406,
  MAM_CAPACITY: 0x0407,
  MEDIUM_TYPE: 0x0408,
  APPLICATION_VENDOR: 0x0800,
  APPLICATION_NAME: 0x0801,
  APPLICATION_VERSION: 0x0802,
  USER_MEDIUM_TEXT_LABEL: 0x0803,
  DATE_AND_TIME_LAST_WRITTEN: 0x0804,
  TEXT_LOCALIZATION_IDENTIFIER: 0x0805,
  BARCODE: 0x0806,
  OWNING_HOST_TEXTUAL_NAME: 0x0807,
  MEDIA_POOL: 0x0808,
} as const;

/** Name of an attribute: the standard name, or a range description for vendor/unknown ids. */
export function attributeName(id: number): string {
  const s = StandardAttributes.get(id);
  if (s) return s.name;
  const h = id.toString(16).padStart(4, '0');
  if (id >= 0x0c00 && id <= 0x0fff) return `VENDOR SPECIFIC DEVICE ATTRIBUTE 0x${h}`;
  if (id >= 0x1000 && id <= 0x13ff) return `VENDOR SPECIFIC MEDIUM ATTRIBUTE 0x${h}`;
  if (id >= 0x1400 && id <= 0x17ff) return `VENDOR SPECIFIC HOST ATTRIBUTE 0x${h}`;
  return `ATTRIBUTE 0x${h}`;
}

/** One attribute as it travels. */
export interface Attribute {
  readonly id: number;
  readonly format: AttributeFormat | 3;
  /** READ ONLY: the attribute cannot be changed by WRITE ATTRIBUTE (read side only). */
  readonly readOnly?: boolean;
  readonly value: Uint8Array;
}

/** An attribute with its value decoded by format. */
export interface DecodedAttribute extends Attribute {
  readonly name: string;
  /** Binary up to 8 bytes: bigint; ASCII and text: trimmed string; longer binary: the bytes. */
  readonly decoded: bigint | string | Uint8Array;
}

export function decodeAttributeValue(a: Pick<Attribute, 'format' | 'value'>): bigint | string | Uint8Array {
  if (a.format === AttributeFormat.ascii) return getAscii(a.value, 0, a.value.length).trim();
  if (a.format === AttributeFormat.text) return getUtf8(a.value);
  if (a.format === AttributeFormat.binary && a.value.length <= 8) {
    let v = 0n;
    for (const x of a.value) v = (v << 8n) | BigInt(x);
    return v;
  }
  return a.value;
}

function parseAttributeList(b: Uint8Array, off: number, end: number, out: DecodedAttribute[]): void {
  while (off + 5 <= end) {
    const len = getU16(b, off + 3);
    if (off + 5 + len > end) break;
    const format = (u8(b, off + 2) & 3) as AttributeFormat | 3;
    const value = slice(b, off + 5, off + 5 + len);
    const id = getU16(b, off);
    out.push({ id, format, readOnly: bit(b, off + 2, 7), value, name: attributeName(id), decoded: decodeAttributeValue({ format, value }) });
    off += 5 + len;
  }
}

/**
 * READ ATTRIBUTE, service action ATTRIBUTE VALUES. `availableData` is the AVAILABLE DATA
 * field: when it exceeds what arrived, the answer was cut and `truncated` is set so the
 * caller re-reads with `availableData + 4` bytes.
 */
export function parseAttributeValues(b: Uint8Array): { availableData: number; attributes: DecodedAttribute[]; truncated: boolean } {
  needBytes(b, 4, 'READ ATTRIBUTE data');
  const availableData = getU32(b, 0);
  const attributes: DecodedAttribute[] = [];
  parseAttributeList(b, 4, Math.min(b.length, 4 + availableData), attributes);
  return { availableData, attributes, truncated: b.length < 4 + availableData };
}

/** READ ATTRIBUTE, service actions ATTRIBUTE LIST and SUPPORTED ATTRIBUTES: identifiers. */
export function parseAttributeIdList(b: Uint8Array): number[] {
  needBytes(b, 4, 'READ ATTRIBUTE list');
  const end = Math.min(b.length, 4 + getU32(b, 0));
  const ids: number[] = [];
  for (let off = 4; off + 2 <= end; off += 2) ids.push(getU16(b, off));
  return ids;
}

/** READ ATTRIBUTE, service actions VOLUME LIST and PARTITION LIST. */
export function parseAttributeNumberList(b: Uint8Array): { first: number; count: number } {
  needBytes(b, 4, 'READ ATTRIBUTE volume/partition list');
  return { first: u8(b, 2), count: u8(b, 3) };
}

/** An attribute to write; `value` of length 0 deletes it. */
export interface AttributeToWrite {
  readonly id: number;
  readonly format: AttributeFormat;
  readonly value: Uint8Array;
}

/** Encodes an ASCII attribute padded with spaces to its standard length (or the text's). */
export function asciiAttribute(id: number, text: string, length?: number): AttributeToWrite {
  const n = length ?? StandardAttributes.get(id)?.length ?? text.length;
  const value = new Uint8Array(n).fill(0x20);
  for (let i = 0; i < Math.min(n, text.length); i++) {
    const c = text.charCodeAt(i);
    value[i] = c >= 0x20 && c < 0x7f ? c : 0x3f;
  }
  return { id, format: AttributeFormat.ascii, value };
}

/** Encodes a TEXT attribute as UTF-8, NUL-padded to its standard length when it has one. */
export function textAttribute(id: number, text: string): AttributeToWrite {
  const enc = new TextEncoder().encode(text);
  const n = StandardAttributes.get(id)?.length ?? enc.length;
  if (enc.length > n) throw new ScsiParseError('WRITE ATTRIBUTE parameter list', `${attributeName(id)} takes at most ${n} bytes (got ${enc.length})`);
  const value = new Uint8Array(n);
  value.set(enc);
  return { id, format: AttributeFormat.text, value };
}

/** Encodes a binary attribute of `length` bytes (default: the standard length, else 8). */
export function binaryAttribute(id: number, v: bigint | number, length?: number): AttributeToWrite {
  const n = length ?? StandardAttributes.get(id)?.length ?? 8;
  const value = new Uint8Array(n);
  let x = BigInt.asUintN(n * 8, BigInt(v));
  for (let i = n - 1; i >= 0; i--) {
    value[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return { id, format: AttributeFormat.binary, value };
}

/**
 * Builds a WRITE ATTRIBUTE parameter list: PARAMETER DATA LENGTH then the attributes in
 * ascending identifier order, as SPC-4 requires the device server to expect.
 */
export function buildWriteAttributeList(attrs: readonly AttributeToWrite[]): Uint8Array {
  const sorted = [...attrs].sort((a, z) => a.id - z.id);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]?.id === sorted[i - 1]?.id) throw new ScsiParseError('WRITE ATTRIBUTE parameter list', `attribute 0x${(sorted[i]?.id ?? 0).toString(16)} appears twice`);
  }
  const len = sorted.reduce((n, a) => n + 5 + a.value.length, 0);
  const b = new Uint8Array(4 + len);
  setU32(b, 0, len);
  let off = 4;
  for (const a of sorted) {
    if (!Number.isInteger(a.id) || a.id < 0 || a.id > 0xffff) throw new ScsiParseError('WRITE ATTRIBUTE parameter list', `attribute id ${a.id} is outside 0..65535`);
    if (a.value.length > 0xffff) throw new ScsiParseError('WRITE ATTRIBUTE parameter list', `attribute 0x${a.id.toString(16)} value exceeds 65535 bytes`);
    setU16(b, off, a.id);
    b[off + 2] = a.format & 3;
    setU16(b, off + 3, a.value.length);
    b.set(a.value, off + 5);
    off += 5 + a.value.length;
  }
  return b;
}
