/**
 * Positioning: SPACE(6)/(16), LOCATE(10)/(16), REWIND and READ POSITION (SSC-4). A
 * position is a partition and a logical object number in it (blocks and filemarks counted
 * from that partition's BOP); SPACE and EOD stay inside the current partition, LOCATE with
 * CP changes partition, REWIND goes to BOP of partition 0. INFORMATION residues of SPACE
 * are the magnitude of the count not spaced.
 */
import { getS24, getU16, getU32, getU64, setU32, setU64, setU16 } from '../../src/scsi/bytes.js';
import { SscOpcode } from '../../src/scsi/opcodes.js';
import { Sense, sense, type SenseData } from '../../src/scsi/sense.js';
import { CheckCondition, invalidCdbField } from '../engine/check.js';
import { usage, type CommandSpec, type Exec, type HandlerResult } from '../engine/dispatch.js';
import { allocation } from '../engine/unit.js';
import type { Cartridge } from '../media/cartridge.js';
import type { TapeDrive } from './drive.js';

const eod = (residue: number): SenseData => sense(Sense.END_OF_DATA_DETECTED, { information: residue });
const bop = (residue: number): SenseData => sense(Sense.BEGINNING_OF_PARTITION_MEDIUM_DETECTED, { eom: true, information: residue });
const filemark = (residue: number): SenseData => sense(Sense.FILEMARK_DETECTED, { filemark: true, information: residue });

/** Seconds to move between two positions: the full rewind time scaled by the fraction of the tape crossed. */
function travelSeconds(d: TapeDrive, m: Cartridge, from: number, to: number, full: number): number {
  const cap = Math.max(1, m.partitionCapacity);
  return (Math.abs(m.dataBytesBefore(from) - m.dataBytesBefore(to)) / cap) * full;
}

function spaceBlocks(d: TapeDrive, m: Cartridge, count: number): SenseData | undefined {
  if (count > 0) {
    for (let done = 0; done < count; done++) {
      if (d.position >= m.objectCount) return eod(count - done);
      const kind = m.object(d.position)?.kind;
      d.position++;
      if (kind === 'filemark') return filemark(count - done);
    }
    return undefined;
  }
  const n = -count;
  for (let done = 0; done < n; done++) {
    if (d.position === 0) return bop(n - done);
    if (m.object(d.position - 1)?.kind === 'filemark') {
      // Stops on the BOP side of the filemark.
      d.position--;
      return filemark(n - done);
    }
    d.position--;
  }
  return undefined;
}

function spaceFilemarks(d: TapeDrive, m: Cartridge, count: number): SenseData | undefined {
  if (count > 0) {
    for (let done = 0; done < count; done++) {
      const next = m.nextFilemark(d.position);
      if (next === undefined) {
        d.position = m.objectCount;
        return eod(count - done);
      }
      d.position = next + 1;
    }
    return undefined;
  }
  const n = -count;
  for (let done = 0; done < n; done++) {
    const prev = m.previousFilemark(d.position);
    if (prev === undefined) {
      d.position = 0;
      return bop(n - done);
    }
    d.position = prev;
  }
  return undefined;
}

function runOfFilemarks(m: Cartridge, start: number, n: number): boolean {
  for (let i = start; i < start + n; i++) if (m.object(i)?.kind !== 'filemark') return false;
  return true;
}

function spaceSequentialFilemarks(d: TapeDrive, m: Cartridge, count: number): SenseData | undefined {
  if (count === 0) return undefined;
  const n = Math.abs(count);
  if (count > 0) {
    for (let p = m.nextFilemark(d.position); p !== undefined; p = m.nextFilemark(p + 1)) {
      if (runOfFilemarks(m, p, n)) {
        d.position = p + n;
        return undefined;
      }
    }
    d.position = m.objectCount;
    return eod(count);
  }
  for (let p = m.previousFilemark(d.position); p !== undefined; p = m.previousFilemark(p)) {
    const first = p - n + 1;
    if (first >= 0 && runOfFilemarks(m, first, n)) {
      d.position = first;
      return undefined;
    }
  }
  d.position = 0;
  return bop(n);
}

async function space(x: Exec<TapeDrive>, code: number, count: number, codeByte: number): Promise<HandlerResult> {
  const d = x.device;
  if (code > 3) invalidCdbField(codeByte, 3);
  const m = await d.ready(x.signal);
  const settling = d.settleBuffer(x.signal);
  if (settling) await settling;
  const from = d.position;
  let outcome: SenseData | undefined;
  if (code === 0) outcome = spaceBlocks(d, m, count);
  else if (code === 1) outcome = spaceFilemarks(d, m, count);
  else if (code === 2) outcome = spaceSequentialFilemarks(d, m, count);
  else d.position = m.objectCount;
  await d.delay(travelSeconds(d, m, from, d.position, d.personality.timing.rewindSeconds), x.signal);
  d.tapeMoved();
  if (outcome) throw new CheckCondition(outcome);
  return undefined;
}

async function space6(x: Exec<TapeDrive>): Promise<HandlerResult> {
  return space(x, (x.cdb[1] ?? 0) & 0x0f, getS24(x.cdb, 2), 1);
}

async function space16(x: Exec<TapeDrive>): Promise<HandlerResult> {
  // The parameter list (for setmark/partition spacing) is not supported.
  if (getU16(x.cdb, 12) !== 0) invalidCdbField(12, 7);
  const count = BigInt.asIntN(64, getU64(x.cdb, 4));
  if (count > BigInt(Number.MAX_SAFE_INTEGER) || count < -BigInt(Number.MAX_SAFE_INTEGER)) invalidCdbField(4, 7);
  return space(x, (x.cdb[1] ?? 0) & 0x0f, Number(count), 1);
}

/** LOCATE with CP (`partition` set) or without; `partitionByte` is where the CDB holds PARTITION, for the field pointer. */
async function locateTo(x: Exec<TapeDrive>, target: number | undefined, kind: 'object' | 'file' | 'eod', partition: number | undefined, partitionByte: number): Promise<HandlerResult> {
  const d = x.device;
  const m = await d.ready(x.signal);
  if (partition !== undefined && partition >= m.partitionCount) invalidCdbField(partitionByte, 7);
  const settling = d.settleBuffer(x.signal);
  if (settling) await settling;
  let from = d.position;
  if (partition !== undefined && partition !== m.partition) {
    // Across partitions: the move is timed from BOP of the other partition.
    await d.changePartition(m, partition);
    from = 0;
  }
  let dest: number;
  if (kind === 'eod') dest = m.objectCount;
  else if (kind === 'file') {
    const n = target ?? 0;
    const fm = n === 0 ? -1 : m.filemarkAt(n - 1);
    dest = fm === undefined ? m.objectCount + 1 : fm + 1;
  } else dest = target ?? 0;
  await d.delay(travelSeconds(d, m, from, Math.min(dest, m.objectCount), d.personality.timing.locateSeconds * 2), x.signal);
  d.tapeMoved();
  if (dest > m.objectCount) {
    d.position = m.objectCount;
    throw new CheckCondition(sense(Sense.END_OF_DATA_DETECTED));
  }
  d.position = dest;
  return undefined;
}

/** The PARTITION field when CP (byte 1 bit 1) is set: the partition to change to. */
function changeTo(x: Exec<TapeDrive>, byte: number): number | undefined {
  return ((x.cdb[1] ?? 0) & 0x02) !== 0 ? (x.cdb[byte] ?? 0) : undefined;
}

async function locate10(x: Exec<TapeDrive>): Promise<HandlerResult> {
  return locateTo(x, getU32(x.cdb, 3), 'object', changeTo(x, 8), 8);
}

async function locate16(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const destType = ((x.cdb[1] ?? 0) >> 3) & 0x07;
  if (destType !== 0 && destType !== 1 && destType !== 3) invalidCdbField(1, 5);
  const id = getU64(x.cdb, 4);
  if (id > BigInt(Number.MAX_SAFE_INTEGER)) invalidCdbField(4, 7);
  return locateTo(x, Number(id), destType === 0 ? 'object' : destType === 1 ? 'file' : 'eod', changeTo(x, 3), 3);
}

/** REWIND: to BOP of partition 0 (SSC: beginning of partition 0), whatever the current partition. */
async function rewind(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const d = x.device;
  const m = await d.ready(x.signal, false);
  const settling = d.settleBuffer(x.signal);
  if (settling) await settling;
  await d.flush();
  await d.delay(travelSeconds(d, m, d.position, 0, d.personality.timing.rewindSeconds), x.signal);
  await d.changePartition(m, 0);
  d.position = 0;
  d.tapeMoved();
  return undefined;
}

async function readPosition(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const d = x.device;
  const sa = (x.cdb[1] ?? 0) & 0x1f;
  const alloc = getU16(x.cdb, 7);
  if (sa !== 0 && sa !== 1 && sa !== 6 && sa !== 8) invalidCdbField(1, 4);
  if (sa !== 8 && alloc !== 0) invalidCdbField(7, 7);
  const m = await d.ready(x.signal, false);
  const pos = d.position;
  const part = m.partition;
  // BOP and EOP of the current partition.
  const flags = (pos === 0 ? 0x80 : 0) | (d.pastEarlyWarning(m) ? 0x40 : 0);
  if (sa === 6) {
    const b = new Uint8Array(32);
    b[0] = flags;
    setU32(b, 4, part);
    setU64(b, 8, pos);
    setU64(b, 16, m.filemarksBefore(pos));
    return b;
  }
  if (sa === 8) {
    const b = new Uint8Array(32);
    b[0] = flags;
    b[1] = part;
    setU16(b, 2, 0x1c);
    setU64(b, 8, pos);
    setU64(b, 16, pos);
    return allocation(b, alloc);
  }
  const b = new Uint8Array(20);
  // A position that does not fit in 32 bits is reported with LOLU (block positions unknown).
  b[0] = flags | (pos > 0xffffffff ? 0x04 : 0);
  b[1] = part;
  if (pos <= 0xffffffff) {
    setU32(b, 4, pos);
    setU32(b, 8, pos);
  }
  return b;
}

export const positionCommands: CommandSpec<TapeDrive>[] = [
  { opcode: SscOpcode.REWIND, name: 'REWIND', usage: usage(6, { 1: 0x01 }), handler: rewind, nominalTimeout: 100, recommendedTimeout: 600 },
  { opcode: SscOpcode.SPACE_6, name: 'SPACE(6)', usage: usage(6, { 1: 0x0f, 2: 0xff, 3: 0xff, 4: 0xff }), handler: space6, nominalTimeout: 100, recommendedTimeout: 2400 },
  {
    opcode: SscOpcode.SPACE_16,
    name: 'SPACE(16)',
    usage: usage(16, { 1: 0x0f, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff }),
    handler: space16,
    nominalTimeout: 100,
    recommendedTimeout: 2400,
  },
  { opcode: SscOpcode.LOCATE_10, name: 'LOCATE(10)', usage: usage(10, { 1: 0x07, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 8: 0xff }), handler: locate10, nominalTimeout: 100, recommendedTimeout: 2400 },
  {
    opcode: SscOpcode.LOCATE_16,
    name: 'LOCATE(16)',
    usage: usage(16, { 1: 0x3b, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff }),
    handler: locate16,
    nominalTimeout: 100,
    recommendedTimeout: 2400,
  },
  { opcode: SscOpcode.READ_POSITION, name: 'READ POSITION', usage: usage(10, { 1: 0x1f, 7: 0xff, 8: 0xff }), handler: readPosition, nominalTimeout: 1, recommendedTimeout: 10 },
];
