/**
 * READ ATTRIBUTE and WRITE ATTRIBUTE (SPC-4 6.17, 6.38) over the cartridge memory. Values
 * the drive computes (capacities, TapeAlert flags, this load's counters) are produced on
 * read; the rest come from the cartridge file. Attributes marked per partition (volume
 * coherency information, partition label, capacities) are kept for each partition the
 * PARTITION NUMBER field names; the rest describe the whole medium. When a cartridge
 * leaves, its attributes stay in the drive's cache, for READ ATTRIBUTE with CACHE set.
 */
import { getU16, getU32, setU16, setU32 } from '../../src/scsi/bytes.js';
import { SscOpcode } from '../../src/scsi/opcodes.js';
import { Sense, sense } from '../../src/scsi/sense.js';
import { CheckCondition, invalidCdbField, invalidParamField, parameterListLengthError } from '../engine/check.js';
import { usage, type CommandSpec, type Exec, type HandlerResult } from '../engine/dispatch.js';
import { allocation } from '../engine/unit.js';
import type { Cartridge } from '../media/cartridge.js';
import type { StoredAttribute } from '../media/format.js';
import { MAM_SLOT_SIZE } from '../media/format.js';
import type { TapeDrive } from './drive.js';
import { Attr, attributeCatalogue, attributeDef, asciiValue, binaryNumber, binaryValue, encodeAttribute, isHostVendorSpecific, padValue, valueFault, type AttributeValue } from './mam.js';

const MiB = 1024 * 1024;

/** The partitions of the loaded tape whose attributes a host may name (numbered from 0). */
export function partitionCount(m: Cartridge): number {
  return m.partitionCount;
}

/** The attributes of a cartridge that has left the drive, for READ ATTRIBUTE with CACHE set. */
export interface AttributeCache {
  readonly barcode: string;
  /** Attribute values by partition number. */
  readonly partitions: readonly (readonly AttributeValue[])[];
}

/** What the drive keeps of `m`'s attributes when it unloads (after the load's counters are recorded). */
export function cacheAttributes(d: TapeDrive, m: Cartridge): AttributeCache {
  const partitions: AttributeValue[][] = [];
  for (let p = 0; p < partitionCount(m); p++) partitions.push(cartridgeAttributes(d, m, p));
  return { barcode: m.header.barcode, partitions };
}

/**
 * Every attribute of the loaded cartridge in `partition`, stored and computed, in
 * identifier order: the whole medium's, with the partition's own per-partition ones.
 */
export function cartridgeAttributes(d: TapeDrive, m: Cartridge, partition = 0): AttributeValue[] {
  const stored = m.readAttributes();
  const own = partition === 0 ? stored : m.readAttributes(partition);
  const out = new Map<number, AttributeValue>();
  for (const [id, a] of stored) if (!attributeDef(id)?.perPartition) out.set(id, { id, format: a.format, readOnly: attributeDef(id)?.readOnly ?? false, value: a.value });
  for (const [id, a] of own) if (attributeDef(id)?.perPartition) out.set(id, { id, format: a.format, readOnly: attributeDef(id)?.readOnly ?? false, value: a.value });
  const ro = (id: number, format: number, value: Uint8Array): void => void out.set(id, { id, format, readOnly: true, value });
  // REMAINING and MAXIMUM CAPACITY IN PARTITION (SPC-4): the partition's own, in MiB.
  const cap = m.partitionSizes[partition] ?? 0;
  const dn = d.mediumDensity();
  ro(Attr.REMAINING_CAPACITY, 0, binaryValue(Math.floor(Math.max(0, cap - m.dataBytesOf(partition)) / MiB), 8));
  ro(Attr.MAXIMUM_CAPACITY, 0, binaryValue(Math.floor(cap / MiB), 8));
  ro(Attr.TAPEALERT_FLAGS, 0, binaryValue(d.tapeAlert, 8));
  let used = 16;
  for (const a of stored.values()) used += 5 + a.value.length;
  ro(Attr.MAM_SPACE_REMAINING, 0, binaryValue(MAM_SLOT_SIZE - used, 8));
  ro(Attr.MAM_CAPACITY, 0, binaryValue(MAM_SLOT_SIZE, 8));
  if (dn) {
    ro(Attr.ASSIGNING_ORGANIZATION_DEVICE, 1, asciiValue(dn.assigningOrganization, 8));
    ro(Attr.ASSIGNING_ORGANIZATION_MEDIUM, 1, asciiValue(dn.assigningOrganization, 8));
    ro(Attr.FORMATTED_DENSITY_CODE, 0, binaryValue(dn.code, 1));
    ro(Attr.MEDIUM_DENSITY_CODE, 0, binaryValue(dn.code, 1));
    ro(Attr.MEDIUM_WIDTH, 0, binaryValue(dn.mediaWidth, 4));
    ro(Attr.MEDIUM_LENGTH, 0, binaryValue(1000, 4));
  }
  ro(Attr.MEDIUM_TYPE, 0, binaryValue(m.header.worm ? 0x80 : 0x00, 1));
  ro(Attr.MEDIUM_TYPE_INFORMATION, 0, binaryValue(0, 2));
  // Lifetime totals include this load's transfers as they happen.
  const mbW = Math.floor(d.counters.bytesWritten / MiB);
  const mbR = Math.floor(d.counters.bytesRead / MiB);
  const storedW = binaryNumber(stored.get(Attr.TOTAL_MB_WRITTEN_THIS_LOAD)?.value);
  const storedR = binaryNumber(stored.get(Attr.TOTAL_MB_READ_THIS_LOAD)?.value);
  ro(Attr.TOTAL_MB_WRITTEN_THIS_LOAD, 0, binaryValue(mbW, 8));
  ro(Attr.TOTAL_MB_READ_THIS_LOAD, 0, binaryValue(mbR, 8));
  ro(Attr.TOTAL_MB_WRITTEN_LIFETIME, 0, binaryValue(binaryNumber(stored.get(Attr.TOTAL_MB_WRITTEN_LIFETIME)?.value) + mbW - storedW, 8));
  ro(Attr.TOTAL_MB_READ_LIFETIME, 0, binaryValue(binaryNumber(stored.get(Attr.TOTAL_MB_READ_LIFETIME)?.value) + mbR - storedR, 8));
  return [...out.values()].sort((a, b) => a.id - b.id);
}

function withLength(parts: Uint8Array[]): Uint8Array {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const b = new Uint8Array(4 + len);
  setU32(b, 0, len);
  let off = 4;
  for (const p of parts) {
    b.set(p, off);
    off += p.length;
  }
  return b;
}

function idList(ids: readonly number[]): Uint8Array[] {
  return ids.map((id) => {
    const b = new Uint8Array(2);
    setU16(b, 0, id);
    return b;
  });
}

/** The values READ ATTRIBUTE answers from: the loaded cartridge, or with CACHE set and none loaded, the cache. */
interface AttributeSource {
  readonly partitions: number;
  values(partition: number): readonly AttributeValue[];
}

async function attributeSource(x: Exec<TapeDrive>, cache: boolean): Promise<AttributeSource> {
  const d = x.device;
  const c = d.attributeCache;
  if (cache && c && !d.hung && d.state !== 'loaded') return { partitions: c.partitions.length, values: (p) => c.partitions[p] ?? [] };
  const m = await d.ready(x.signal, false);
  return { partitions: partitionCount(m), values: (p) => cartridgeAttributes(d, m, p) };
}

async function readAttribute(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const sa = (x.cdb[1] ?? 0) & 0x1f;
  const partition = x.cdb[7] ?? 0;
  const first = getU16(x.cdb, 8);
  const alloc = getU32(x.cdb, 10);
  const cache = ((x.cdb[14] ?? 0) & 0x01) !== 0;
  if (sa !== 0 && sa !== 1 && sa !== 2 && sa !== 3 && sa !== 5) invalidCdbField(1, 4);
  if ((x.cdb[5] ?? 0) !== 0) invalidCdbField(5, 7);
  if (sa === 5) return allocation(withLength(idList(attributeCatalogue.map((a) => a.id).filter((id) => id >= first))), alloc);
  const src = await attributeSource(x, cache);
  if (sa === 2) {
    // One logical volume: AVAILABLE DATA, first volume number 0, count 1.
    return allocation(Uint8Array.of(0x00, 0x02, 0x00, 0x01), alloc);
  }
  if (sa === 3) {
    // The partitions FORMAT MEDIUM laid out: AVAILABLE DATA, first partition number 0, count.
    return allocation(Uint8Array.of(0x00, 0x02, 0x00, src.partitions), alloc);
  }
  if (partition >= src.partitions) invalidCdbField(7, 7);
  const attrs = src.values(partition).filter((a) => a.id >= first);
  if (sa === 1) return allocation(withLength(idList(attrs.map((a) => a.id))), alloc);
  return allocation(withLength(attrs.map(encodeAttribute)), alloc);
}

/**
 * WRITE ATTRIBUTE: every attribute of the list is checked (writable, its format, its
 * length, its value's rules) before any is applied, so a refused list changes nothing;
 * a refusal points at the offending field of the parameter list. Per-partition attributes
 * go to the partition the CDB names; the others to the whole medium. Cartridge memory
 * writes are durable when the command ends, so WTC (write-through) changes nothing.
 */
async function writeAttribute(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const d = x.device;
  const partition = x.cdb[7] ?? 0;
  const len = getU32(x.cdb, 10);
  if ((x.cdb[5] ?? 0) !== 0) invalidCdbField(5, 7);
  const m = await d.ready(x.signal, false);
  if (partition >= partitionCount(m)) invalidCdbField(7, 7);
  if (len === 0) return undefined;
  if (len < 4 || x.dataOut.length < len) parameterListLengthError();
  const data = x.dataOut.subarray(0, len);
  const dataLen = getU32(data, 0);
  if (4 + dataLen > len) parameterListLengthError();
  const medium = new Map<number, StoredAttribute>(m.readAttributes());
  const own = partition === 0 ? medium : new Map<number, StoredAttribute>(m.readAttributes(partition));
  let off = 4;
  while (off < 4 + dataLen) {
    if (off + 5 > 4 + dataLen) parameterListLengthError();
    const id = getU16(data, off);
    const format = (data[off + 2] ?? 0) & 0x03;
    const n = getU16(data, off + 3);
    if (off + 5 + n > 4 + dataLen) parameterListLengthError();
    const value = data.slice(off + 5, off + 5 + n);
    const def = attributeDef(id);
    if (def) {
      if (def.readOnly) invalidParamField(off, 7);
      if (format !== def.format) invalidParamField(off + 2, 1);
      if (n > def.length || (n !== 0 && def.format === 0 && !def.variable && n !== def.length)) invalidParamField(off + 3, 7);
      const bad = valueFault(def, value);
      if (bad) invalidParamField(off + 5 + bad.byte, bad.bit);
      const target = def.perPartition ? own : medium;
      if (n === 0) target.delete(id);
      else target.set(id, { format, value: padValue(def, value) });
    } else if (isHostVendorSpecific(id)) {
      if (n === 0) medium.delete(id);
      else medium.set(id, { format, value });
    } else invalidParamField(off, 7); // reserved, vendor-specific or the drive's own (FF00h, its log floor, among them)
    off += 5 + n;
  }
  try {
    await m.writeAttributeSetsAsync(partition === 0 ? new Map([[0, medium]]) : new Map([[0, medium], [partition, own]]));
  } catch (e) {
    if (e instanceof Error && /cartridge memory is full/u.test(e.message)) throw new CheckCondition(sense(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 0 } }));
    d.mediaWriteFailed(e);
  }
  return undefined;
}

export const attributeCommands: CommandSpec<TapeDrive>[] = [
  {
    opcode: SscOpcode.READ_ATTRIBUTE,
    name: 'READ ATTRIBUTE',
    usage: usage(16, { 1: 0x1f, 5: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0x01 }),
    handler: readAttribute,
    nominalTimeout: 1,
    recommendedTimeout: 60,
  },
  {
    opcode: SscOpcode.WRITE_ATTRIBUTE,
    name: 'WRITE ATTRIBUTE',
    usage: usage(16, { 1: 0x01, 5: 0xff, 7: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff }),
    handler: writeAttribute,
    nominalTimeout: 1,
    recommendedTimeout: 60,
  },
];
