/**
 * Medium handling and capability reports: LOAD/UNLOAD, ERASE, FORMAT MEDIUM, PREVENT/ALLOW
 * MEDIUM REMOVAL, READ BLOCK LIMITS and REPORT DENSITY SUPPORT (SSC-4, SPC-4).
 */
import { getU16, setAscii, setU16, setU24, setU32, setU64 } from '../../src/scsi/bytes.js';
import { SpcOpcode, SscOpcode } from '../../src/scsi/opcodes.js';
import { Sense, sense } from '../../src/scsi/sense.js';
import { CheckCondition, invalidCdbField } from '../engine/check.js';
import { hangUntilAborted } from '../engine/timing.js';
import { usage, type CommandSpec, type Exec, type HandlerResult } from '../engine/dispatch.js';
import { allocation } from '../engine/unit.js';
import { knownDensities, mediaAccess, type Density } from '../personalities/drives.js';
import { partitionSizes, TapeAlertFlag, type TapeDrive } from './drive.js';
import { DriveSense } from './sense-codes.js';

/** The largest logical object identifier the drive addresses (READ BLOCK LIMITS with MLOI). */
export const MAX_LOGICAL_OBJECT_IDENTIFIER = 0xffffffffn;

async function loadUnload(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const d = x.device;
  const b4 = x.cdb[4] ?? 0;
  const load = (b4 & 0x01) !== 0;
  const eot = (b4 & 0x04) !== 0;
  const hold = (b4 & 0x08) !== 0;
  if (load && eot) invalidCdbField(4, 2);
  if (d.hung) await hangUntilAborted(x.signal);
  if (d.offline) throw new CheckCondition(sense(Sense.NOT_READY_OFFLINE));
  if (d.immediate?.released) throw new CheckCondition(sense(DriveSense.OPERATION_IN_PROGRESS));
  if (d.state === 'empty') throw new CheckCondition(sense(Sense.MEDIUM_NOT_PRESENT));
  if (d.state === 'loading') throw new CheckCondition(sense(Sense.BECOMING_READY));
  if (load) {
    if (d.state === 'loaded') {
      // LOAD of a loaded tape positions it at BOP of partition 0 (a rewind).
      const m = d.media;
      const settling = d.settleBuffer(x.signal);
      if (settling) await settling;
      await d.flush();
      const cap = Math.max(1, m?.partitionCapacity ?? 1);
      await d.delay(((m?.dataBytesBefore(d.position) ?? 0) / cap) * d.personality.timing.rewindSeconds, x.signal);
      if (m) await d.changePartition(m, 0);
      d.position = 0;
      d.tapeMoved();
      return undefined;
    }
    const t = d.personality.timing;
    await d.thread(x.signal, d.state === 'ejected' ? t.loadSeconds : t.threadSeconds, x.initiator);
    return undefined;
  }
  if (!hold && d.preventedBy.size > 0) {
    d.raiseTapeAlert(TapeAlertFlag.noRemoval);
    throw new CheckCondition(sense(Sense.MEDIUM_REMOVAL_PREVENTED));
  }
  if (d.state === 'loaded') await d.unthread(x.signal, hold);
  else if (!hold) d.state = 'ejected';
  return undefined;
}

async function erase(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const d = x.device;
  const long = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  const m = await d.ready(x.signal);
  d.checkWritable(m, d.position);
  // WORM media cannot be erased at all, not even the filemarks a write may overwrite.
  if (m.header.worm && d.position < m.objectCount) d.fail(Sense.WORM_OVERWRITE_ATTEMPTED);
  const cap = Math.max(1, m.partitionCapacity);
  const fraction = long ? 1 - m.dataBytesBefore(d.position) / cap : 0;
  const settling = d.settleBuffer(x.signal);
  if (settling) await settling;
  // The checks are done: with IMMED the command answers here and the erase runs on.
  await d.delay(0, x.signal);
  try {
    await m.whenSynced();
    m.truncate(d.position);
  } catch (e) {
    d.mediaWriteFailed(e);
  }
  await d.flush();
  await d.delay(fraction * d.personality.timing.eraseSeconds, x.signal);
  d.tapeMoved();
  return undefined;
}

/**
 * FORMAT MEDIUM (SSC-4): FORMAT 0 gives the medium its default format (one partition), 1
 * partitions it as the medium partition page asks (MODE SELECT before, the page reports
 * POFM), 2 does both, which here is the same as 1. Without a MODE SELECT since power on,
 * 1 and 2 lay the tape out again as it is. Every partition is emptied; the position is BOP
 * of partition 0, where the command must start (ILLEGAL REQUEST, COMMAND SEQUENCE ERROR
 * elsewhere, as a drive would have to rewind over data it is about to destroy). No
 * parameter data is taken (TRANSFER LENGTH 0); VERIFY is accepted and has nothing to do.
 * The cartridge keeps the old layout or the new one whatever happens (cartridge.ts).
 */
async function formatMedium(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const d = x.device;
  const format = (x.cdb[2] ?? 0) & 0x0f;
  if (format > 2) invalidCdbField(2, 3);
  if (getU16(x.cdb, 3) !== 0) invalidCdbField(3, 7);
  const m = await d.ready(x.signal);
  d.checkWritable(m, 0);
  // WORM media take no format once written (it would erase them).
  if (m.header.worm && m.partitionSizes.some((_, p) => m.objectCountOf(p) > 0)) d.fail(Sense.WORM_OVERWRITE_ATTEMPTED);
  if (m.partition !== 0 || d.position !== 0) throw new CheckCondition(sense(Sense.COMMAND_SEQUENCE_ERROR));
  let sizes: number[];
  if (format === 0) sizes = [m.header.capacityBytes];
  else if (!d.partitionRequest) sizes = [...m.partitionSizes];
  else {
    const r = partitionSizes(d.partitionRequest, m.header.capacityBytes);
    // The page was accepted for another cartridge (or none): this one cannot take it.
    if ('error' in r) throw new CheckCondition(sense(Sense.PARAMETER_VALUE_INVALID));
    sizes = r.sizes;
  }
  const settling = d.settleBuffer(x.signal);
  if (settling) await settling;
  // The checks are done: with IMMED the command answers here and the format runs on.
  await d.delay(0, x.signal);
  try {
    await m.whenSynced();
    m.format(sizes);
  } catch (e) {
    d.mediaWriteFailed(e);
  }
  d.position = 0;
  d.partitionRequest = undefined;
  await d.delay(d.personality.timing.locateSeconds, x.signal);
  d.tapeMoved();
  return undefined;
}

function preventAllow(x: Exec<TapeDrive>): HandlerResult {
  const prevent = (x.cdb[4] ?? 0) & 0x03;
  // Values 2 and 3 concern medium changers' magazines.
  if (prevent > 1) invalidCdbField(4, 1);
  if (prevent) x.device.preventedBy.add(x.initiator);
  else x.device.preventedBy.delete(x.initiator);
  return undefined;
}

/**
 * READ BLOCK LIMITS (SSC-4 7.6): granularity, maximum and minimum block length; with MLOI
 * (SSC-4 on) 20 bytes whose bytes 12..19 hold the maximum logical object identifier.
 */
function readBlockLimits(x: Exec<TapeDrive>): Uint8Array {
  const p = x.device.personality;
  if ((x.cdb[1] ?? 0) & 0x01) {
    const m = new Uint8Array(20);
    setU64(m, 12, MAX_LOGICAL_OBJECT_IDENTIFIER);
    return m;
  }
  const b = new Uint8Array(6);
  b[0] = p.granularity & 0x1f;
  setU24(b, 1, p.maxBlockLength);
  setU16(b, 4, p.minBlockLength);
  return b;
}

function densityDescriptor(dn: Density, writeOk: boolean, isDefault: boolean): Uint8Array {
  const b = new Uint8Array(52);
  b[0] = dn.code;
  b[1] = dn.code;
  b[2] = (writeOk ? 0x80 : 0) | (isDefault ? 0x20 : 0);
  setU16(b, 3, 0x0034);
  setU24(b, 5, dn.bitsPerMm);
  setU16(b, 8, dn.mediaWidth);
  setU16(b, 10, dn.tracks);
  setU32(b, 12, Math.floor(dn.capacityBytes / 1_000_000));
  setAscii(b, 16, 8, dn.assigningOrganization);
  setAscii(b, 24, 8, dn.densityName);
  setAscii(b, 32, 20, dn.description);
  return b;
}

function mediumTypeDescriptor(dn: Density, codes: readonly number[]): Uint8Array {
  const b = new Uint8Array(56);
  b[0] = dn.mediumTypeCode;
  setU16(b, 2, 52);
  b[4] = Math.min(9, codes.length);
  codes.slice(0, 9).forEach((c, i) => (b[5 + i] = c));
  setU16(b, 14, dn.mediaWidth);
  setU16(b, 16, 1000);
  setAscii(b, 20, 8, dn.assigningOrganization);
  setAscii(b, 28, 8, dn.densityName);
  setAscii(b, 36, 20, dn.description);
  return b;
}

async function reportDensitySupport(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const d = x.device;
  const media = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  const mediumType = ((x.cdb[1] ?? 0) & 0x02) !== 0;
  const alloc = getU16(x.cdb, 7);
  const p = d.personality;
  let list: readonly Density[];
  if (media) {
    await d.ready(x.signal, false);
    const dn = d.mediumDensity();
    list = dn && d.access !== 'incompatible' ? [dn] : [];
  } else list = knownDensities(p);
  const native = p.writeDensities[0];
  const parts = list.map((dn) => {
    const access = media && d.cartridge ? d.access : mediaAccess(p, dn.mediaType);
    const writeOk = access === 'read-write' && !(media && d.writeProtected());
    return mediumType ? mediumTypeDescriptor(dn, [dn.code]) : densityDescriptor(dn, writeOk, media ? true : dn === native);
  });
  const len = parts.reduce((n, q) => n + q.length, 0);
  const b = new Uint8Array(4 + len);
  setU16(b, 0, len + 2);
  let off = 4;
  for (const q of parts) {
    b.set(q, off);
    off += q.length;
  }
  return allocation(b, alloc);
}

export const mediumCommands: CommandSpec<TapeDrive>[] = [
  // MLOI (byte 1 bit 0) is SSC-4: an SSC-3 personality's table clears it (index.ts).
  { opcode: SscOpcode.READ_BLOCK_LIMITS, name: 'READ BLOCK LIMITS', usage: usage(6, { 1: 0x01 }), handler: readBlockLimits, nominalTimeout: 1, recommendedTimeout: 10 },
  { opcode: SscOpcode.LOAD_UNLOAD, name: 'LOAD/UNLOAD', usage: usage(6, { 1: 0x01, 4: 0x0f }), handler: loadUnload, nominalTimeout: 60, recommendedTimeout: 780 },
  // FORMAT MEDIUM: VERIFY, IMMED; FORMAT; TRANSFER LENGTH.
  { opcode: SscOpcode.FORMAT_MEDIUM, name: 'FORMAT MEDIUM', usage: usage(6, { 1: 0x03, 2: 0x0f, 3: 0xff, 4: 0xff }), handler: formatMedium, nominalTimeout: 100, recommendedTimeout: 3000 },
  { opcode: SscOpcode.ERASE_6, name: 'ERASE(6)', usage: usage(6, { 1: 0x03 }), handler: erase, nominalTimeout: 60, recommendedTimeout: 23_000 },
  { opcode: SpcOpcode.PREVENT_ALLOW_MEDIUM_REMOVAL, name: 'PREVENT ALLOW MEDIUM REMOVAL', usage: usage(6, { 4: 0x03 }), handler: preventAllow, nominalTimeout: 1, recommendedTimeout: 10 },
  { opcode: SscOpcode.REPORT_DENSITY_SUPPORT, name: 'REPORT DENSITY SUPPORT', usage: usage(10, { 1: 0x03, 7: 0xff, 8: 0xff }), handler: reportDensitySupport, nominalTimeout: 1, recommendedTimeout: 10 },
];
