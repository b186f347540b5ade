/**
 * READ(6), WRITE(6) and WRITE FILEMARKS(6)/(16) (SSC-4 7.x), with SSC's incorrect-length,
 * filemark, end-of-data, early-warning and end-of-partition reporting. Residues in the
 * INFORMATION field count bytes in variable-block mode and blocks in fixed-block mode.
 */
import { getU24 } from '../../src/scsi/bytes.js';
import { SscOpcode } from '../../src/scsi/opcodes.js';
import { Sense, sense } from '../../src/scsi/sense.js';
import { CheckCondition, invalidCdbField } from '../engine/check.js';
import { hangUntilAborted } from '../engine/timing.js';
import { usage, type CommandSpec, type Exec, type HandlerResult } from '../engine/dispatch.js';
import type { Cartridge } from '../media/cartridge.js';
import { MediaReadError } from '../media/cartridge.js';
import { earlyWarningPoint, TapeAlertFlag, type TapeDrive } from './drive.js';

const MiB = 1024 * 1024;

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const b = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    b.set(p, off);
    off += p.length;
  }
  return b;
}

function readFault(d: TapeDrive, residue: number, data?: Uint8Array): never {
  d.raiseTapeAlert(TapeAlertFlag.hardError);
  d.raiseTapeAlert(TapeAlertFlag.media);
  d.raiseTapeAlert(TapeAlertFlag.readFailure);
  throw new CheckCondition(sense(Sense.UNRECOVERED_READ_ERROR, { information: residue }), data);
}

function readBlock(d: TapeDrive, m: Cartridge, residue: number, got: Uint8Array[], gotBytes: number): Uint8Array {
  const partial = (): Uint8Array | undefined => (gotBytes ? concat(got, gotBytes) : undefined);
  if (d.mediumErrors.has(d.position)) readFault(d, residue, partial());
  try {
    return m.readBlock(d.position);
  } catch (e) {
    if (e instanceof MediaReadError) readFault(d, residue, partial());
    throw e;
  }
}

/**
 * The transfer time of `bytes` (timing model), then `result`. Without a wait (time scale 0)
 * the result comes synchronously: a streaming READ or WRITE then costs no promise hops and
 * no AbortSignal, and the front can answer it at once.
 */
function afterTransfer(x: Exec<TapeDrive>, bytes: number, result: HandlerResult): HandlerResult | Promise<HandlerResult> {
  const d = x.device;
  const seconds = (bytes / MiB) * d.personality.timing.perMiBSeconds;
  if (!d.waits(seconds)) return result;
  return d.delay(seconds, x.signal).then(() => result);
}

function read6(x: Exec<TapeDrive>): HandlerResult | Promise<HandlerResult> {
  const d = x.device;
  const sili = ((x.cdb[1] ?? 0) & 0x02) !== 0;
  const fixed = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  const count = getU24(x.cdb, 2);
  // SSC: SILI with FIXED is an invalid combination; fixed mode needs a block size.
  if (fixed && sili) invalidCdbField(1, 1);
  if (fixed && d.blockSize === 0) invalidCdbField(1, 0);
  if (d.hung) return hangUntilAborted(x.signal);
  const m = d.readyNow();
  if (count === 0) return undefined;
  if (!fixed) {
    if (d.position >= m.objectCount) throw new CheckCondition(sense(Sense.END_OF_DATA_DETECTED, { information: count }));
    const obj = m.object(d.position);
    if (obj?.kind === 'filemark') {
      d.position++;
      throw new CheckCondition(sense(Sense.FILEMARK_DETECTED, { filemark: true, information: count }));
    }
    const block = readBlock(d, m, count, [], 0);
    d.position++;
    d.counters.bytesRead += block.length;
    d.counters.bytesToHost += Math.min(block.length, count);
    if (block.length === count) return afterTransfer(x, block.length, block);
    const data = block.length > count ? block.subarray(0, count) : block;
    // A shorter block under SILI is not an error; a longer one always is (variable mode).
    if (block.length < count && sili) return afterTransfer(x, block.length, data);
    return afterTransfer(x, block.length, { data, sense: sense(Sense.NO_ADDITIONAL_SENSE, { ili: true, information: count - block.length }) });
  }
  const size = d.blockSize;
  const got: Uint8Array[] = [];
  let bytes = 0;
  for (let done = 0; done < count; done++) {
    const residue = count - done;
    const partial = (): Uint8Array | undefined => (bytes ? concat(got, bytes) : undefined);
    if (d.position >= m.objectCount) throw new CheckCondition(sense(Sense.END_OF_DATA_DETECTED, { information: residue }), partial());
    if (m.object(d.position)?.kind === 'filemark') {
      d.position++;
      throw new CheckCondition(sense(Sense.FILEMARK_DETECTED, { filemark: true, information: residue }), partial());
    }
    const block = readBlock(d, m, residue, got, bytes);
    d.position++;
    d.counters.bytesRead += block.length;
    if (block.length !== size) {
      // The incorrect-length block itself is not counted as transferred.
      throw new CheckCondition(sense(Sense.NO_ADDITIONAL_SENSE, { ili: true, information: residue }), partial());
    }
    got.push(block);
    bytes += block.length;
  }
  d.counters.bytesToHost += bytes;
  return afterTransfer(x, bytes, got.length === 1 ? got[0] : concat(got, bytes));
}

/** After a write: the early-warning report when the tape is past the early-warning point. */
function earlyWarning(d: TapeDrive, m: Cartridge): HandlerResult {
  if (m.dataBytes >= earlyWarningPoint(m.header.capacityBytes)) {
    d.raiseTapeAlert(TapeAlertFlag.writeWarning);
    return { sense: sense(Sense.END_OF_PARTITION_MEDIUM_DETECTED, { eom: true, information: 0 }) };
  }
  return undefined;
}

function writeFault(d: TapeDrive, residue: number): never {
  d.raiseTapeAlert(TapeAlertFlag.hardError);
  d.raiseTapeAlert(TapeAlertFlag.media);
  d.raiseTapeAlert(TapeAlertFlag.writeFailure);
  throw new CheckCondition(sense(Sense.WRITE_ERROR, { information: residue }));
}

function write6(x: Exec<TapeDrive>): HandlerResult | Promise<HandlerResult> {
  const d = x.device;
  const fixed = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  const count = getU24(x.cdb, 2);
  if (fixed && d.blockSize === 0) invalidCdbField(1, 0);
  if (!fixed && count > d.personality.maxBlockLength) invalidCdbField(2, 7);
  if (d.hung) return hangUntilAborted(x.signal);
  const m = d.readyNow();
  if (count === 0) return undefined;
  const size = fixed ? d.blockSize : count;
  const blocks = fixed ? count : 1;
  if (x.dataOut.length < size * blocks) throw new CheckCondition(sense(Sense.DATA_PHASE_ERROR));
  d.checkWritable(m, d.position, fixed ? blocks : count);
  try {
    if (d.position < m.objectCount) m.truncate(d.position);
  } catch (e) {
    d.mediaWriteFailed(e, fixed ? blocks : count);
  }
  const cap = m.header.capacityBytes;
  for (let i = 0; i < blocks; i++) {
    const residue = fixed ? blocks - i : count;
    // Past the physical end nothing more fits: the block is not written.
    if (m.dataBytes + size > cap) throw new CheckCondition(sense(Sense.VOLUME_OVERFLOW_EOM, { eom: true, information: residue }));
    if (d.mediumErrors.has(d.position)) writeFault(d, residue);
    try {
      m.appendBlock(x.dataOut.subarray(i * size, (i + 1) * size));
    } catch (e) {
      d.mediaWriteFailed(e, residue);
    }
    d.position++;
    d.counters.bytesWritten += size;
    d.counters.bytesFromHost += size;
  }
  return afterTransfer(x, size * blocks, earlyWarning(d, m));
}

async function writeFilemarks(x: Exec<TapeDrive>, count: number): Promise<HandlerResult> {
  const d = x.device;
  const m = await d.ready(x.signal);
  if (count === 0) {
    // A flush: everything written so far becomes durable, which a failed cartridge cannot promise.
    if (m.writeFailure) d.mediaWriteFailed(m.writeFailure, 0);
    if (!m.readOnly) d.flush();
    return undefined;
  }
  d.checkWritable(m, d.position, count);
  try {
    if (d.position < m.objectCount) m.truncate(d.position);
  } catch (e) {
    d.mediaWriteFailed(e, count);
  }
  if (d.mediumErrors.has(d.position)) writeFault(d, count);
  // A filemark takes room on the medium too; past the physical end the rest are not
  // written and the command ends in VOLUME OVERFLOW with the count not written.
  const fit = Math.max(0, Math.floor((m.header.capacityBytes - m.dataBytes) / FILEMARK_MEDIUM_BYTES));
  const now = Math.min(count, fit);
  try {
    // The filemarks' sync point: a write or sync failure (now or in the background
    // writeback since the last one) means none of them is acknowledged.
    if (now > 0) m.appendFilemarks(now);
  } catch (e) {
    d.mediaWriteFailed(e, count);
  }
  d.position += now;
  d.flush();
  if (now < count) throw new CheckCondition(sense(Sense.VOLUME_OVERFLOW_EOM, { eom: true, information: count - now }));
  return earlyWarning(d, m);
}

/** Room a filemark is taken to use on the medium, for the end-of-medium check. */
const FILEMARK_MEDIUM_BYTES = 4096;

async function writeFilemarks6(x: Exec<TapeDrive>): Promise<HandlerResult> {
  // LTO has no setmarks.
  if ((x.cdb[1] ?? 0) & 0x02) invalidCdbField(1, 1);
  return writeFilemarks(x, getU24(x.cdb, 2));
}

export const ioCommands: CommandSpec<TapeDrive>[] = [
  { opcode: SscOpcode.READ_6, name: 'READ(6)', usage: usage(6, { 1: 0x03, 2: 0xff, 3: 0xff, 4: 0xff }), handler: read6, nominalTimeout: 60, recommendedTimeout: 1200 },
  { opcode: SscOpcode.WRITE_6, name: 'WRITE(6)', usage: usage(6, { 1: 0x01, 2: 0xff, 3: 0xff, 4: 0xff }), handler: write6, nominalTimeout: 60, recommendedTimeout: 1200 },
  { opcode: SscOpcode.WRITE_FILEMARKS_6, name: 'WRITE FILEMARKS(6)', usage: usage(6, { 1: 0x03, 2: 0xff, 3: 0xff, 4: 0xff }), handler: writeFilemarks6, nominalTimeout: 60, recommendedTimeout: 1200 },
  { opcode: SscOpcode.WRITE_FILEMARKS_16, name: 'WRITE FILEMARKS(16)', usage: usage(16, { 1: 0x01, 12: 0xff, 13: 0xff, 14: 0xff }), handler: (x) => writeFilemarks(x, getU24(x.cdb, 12)), nominalTimeout: 60, recommendedTimeout: 1200 },
];
