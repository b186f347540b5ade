/**
 * READ(6)/(16), WRITE(6)/(16), VERIFY(6) and WRITE FILEMARKS(6)/(16) (SSC-4 7.x), with
 * SSC's incorrect-length, filemark, end-of-data, early-warning and end-of-partition
 * reporting. Residues in the INFORMATION field count bytes in variable-block mode and
 * blocks in fixed-block mode. Blocks go through the drive's compression and encryption on
 * their way to and from the medium (codec.ts); capacity counts what is stored.
 */
import { getU24, getU64 } from '../../src/scsi/bytes.js';
import { SscOpcode } from '../../src/scsi/opcodes.js';
import { Sense, sense } from '../../src/scsi/sense.js';
import { CheckCondition, invalidCdbField } from '../engine/check.js';
import { hangUntilAborted } from '../engine/timing.js';
import { usage, type CommandSpec, type Exec, type HandlerResult } from '../engine/dispatch.js';
import type { Cartridge } from '../media/cartridge.js';
import { MediaReadError } from '../media/cartridge.js';
import { BlockDecodeError, decodeBlock, encodeBlock, inspectBlock } from './codec.js';
import { earlyWarningPoint, TapeAlertFlag, type TapeDrive } from './drive.js';
import { DecryptionMode } from './security.js';
import { DriveSense } from './sense-codes.js';

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

/**
 * The host's bytes of the block at the current position, decrypted and decompressed, or
 * CHECK CONDITION: MEDIUM ERROR for a block that does not read or decode, DATA PROTECT
 * for one the encryption settings refuse (the position then stays before it, so a host
 * can set the right key and read it again). Counts the bytes read from the medium.
 */
function readBlock(d: TapeDrive, m: Cartridge, residue: number, got: Uint8Array[], gotBytes: number): Uint8Array {
  const partial = (): Uint8Array | undefined => (gotBytes ? concat(got, gotBytes) : undefined);
  if (d.mediumErrors.has(d.position)) readFault(d, residue, partial());
  let payload: Uint8Array;
  try {
    payload = m.readBlock(d.position);
  } catch (e) {
    if (e instanceof MediaReadError) readFault(d, residue, partial());
    throw e;
  }
  const info = inspectBlock(payload);
  const mode = d.encryption.params.decryptionMode;
  const refuse = (code: typeof DriveSense.UNABLE_TO_DECRYPT_DATA): never => {
    throw new CheckCondition(sense(code, { information: residue }), partial());
  };
  if (info.encrypted && mode === DecryptionMode.disable) refuse(DriveSense.UNABLE_TO_DECRYPT_DATA);
  if (!info.encrypted && mode === DecryptionMode.decrypt) refuse(DriveSense.UNENCRYPTED_DATA_WHILE_DECRYPTING);
  d.counters.bytesRead += payload.length;
  if (!info.enveloped) return payload;
  try {
    return decodeBlock(payload, info, d.encryption.readKey());
  } catch (e) {
    if (!(e instanceof BlockDecodeError)) throw e;
    d.counters.bytesRead -= payload.length;
    if (e.reason === 'wrong-key') refuse(DriveSense.INCORRECT_DATA_ENCRYPTION_KEY);
    return readFault(d, residue, partial());
  }
}

/**
 * GCM segments of an encrypted block: two, sealed at once on two threads (native/gcm.cc),
 * measured faster than one (bench/drive-features, docs/emulator.md).
 */
const SEAL_SEGMENTS = 2;

/**
 * Appends a host block as the drive stores it (compressed, encrypted), or CHECK CONDITION
 * VOLUME OVERFLOW when what is stored would not fit. Counts host and medium bytes.
 */
function storeBlock(d: TapeDrive, m: Cartridge, data: Uint8Array, residue: number): void {
  const { payload } = encodeBlock(data, { compress: d.compression, encrypt: d.encryption.writeKey() }, d.scratch, SEAL_SEGMENTS);
  place(d, m, payload, data.length, residue);
}

/** Appends a stored payload for a host block of `hostLength` bytes (see {@link storeBlock}). */
function place(d: TapeDrive, m: Cartridge, payload: Uint8Array, hostLength: number, residue: number): void {
  // Past the physical end nothing more fits: the block is not written.
  if (m.dataBytes + payload.length > m.partitionCapacity) throw new CheckCondition(sense(Sense.VOLUME_OVERFLOW_EOM, { eom: true, information: residue }));
  if (d.mediumErrors.has(d.position)) writeFault(d, residue);
  try {
    m.appendBlock(payload);
  } catch (e) {
    d.mediaWriteFailed(e, residue);
  }
  d.position++;
  d.counters.bytesWritten += payload.length;
  d.counters.bytesFromHost += hostLength;
}


/**
 * The transfer's wait in the streaming model (streaming.ts: buffer, speed matching,
 * backhitch), then `result`. `storedBefore` is the medium byte counter (written or read)
 * before the transfer, so the model sees bytes as stored, after compression. Without a
 * time scale (0) there is no model work and the result comes synchronously: a streaming
 * READ or WRITE then costs no promise hops and no AbortSignal, and the front can answer it
 * at once.
 */
function afterTransfer(x: Exec<TapeDrive>, kind: 'read' | 'write', storedBefore: number, result: HandlerResult): HandlerResult | Promise<HandlerResult> {
  const d = x.device;
  if (!d.waits(1)) return result;
  const stored = (kind === 'read' ? d.counters.bytesRead : d.counters.bytesWritten) - storedBefore;
  const seconds = d.transferSeconds(kind, stored);
  if (!(seconds > 0)) return result;
  return d.delay(seconds, x.signal).then(() => result);
}

function read6(x: Exec<TapeDrive>): HandlerResult | Promise<HandlerResult> {
  return read(x, getU24(x.cdb, 2));
}

/**
 * READ(16): the PARTITION and LOGICAL OBJECT IDENTIFIER fields say where the read starts;
 * the drive locates there first when it is elsewhere (SSC-4).
 */
function read16(x: Exec<TapeDrive>): HandlerResult | Promise<HandlerResult> {
  return startAt16(x, () => read(x, getU24(x.cdb, 12)));
}

/** READ of `count` bytes (variable) or blocks (fixed); CDB byte 1 holds SILI and FIXED in both forms. */
function read(x: Exec<TapeDrive>, count: number): HandlerResult | Promise<HandlerResult> {
  const d = x.device;
  const sili = ((x.cdb[1] ?? 0) & 0x02) !== 0;
  const fixed = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  // SSC: SILI with FIXED is an invalid combination; fixed mode needs a block size.
  if (fixed && sili) invalidCdbField(1, 1);
  if (fixed && d.blockSize === 0) invalidCdbField(1, 0);
  if (d.hung) return hangUntilAborted(x.signal);
  const m = d.readyNow();
  if (count === 0) return undefined;
  const before = d.counters.bytesRead;
  if (!fixed) {
    if (d.position >= m.objectCount) throw new CheckCondition(sense(Sense.END_OF_DATA_DETECTED, { information: count }));
    const obj = m.object(d.position);
    if (obj?.kind === 'filemark') {
      d.position++;
      throw new CheckCondition(sense(Sense.FILEMARK_DETECTED, { filemark: true, information: count }));
    }
    const block = readBlock(d, m, count, [], 0);
    d.position++;
    d.counters.bytesToHost += Math.min(block.length, count);
    if (block.length === count) return afterTransfer(x, 'read', before, block);
    const data = block.length > count ? block.subarray(0, count) : block;
    // A shorter block under SILI is not an error; a longer one always is (variable mode).
    if (block.length < count && sili) return afterTransfer(x, 'read', before, data);
    return afterTransfer(x, 'read', before, { data, sense: sense(Sense.NO_ADDITIONAL_SENSE, { ili: true, information: count - block.length }) });
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
    if (block.length !== size) {
      // The incorrect-length block itself is not counted as transferred.
      throw new CheckCondition(sense(Sense.NO_ADDITIONAL_SENSE, { ili: true, information: residue }), partial());
    }
    got.push(block);
    bytes += block.length;
  }
  d.counters.bytesToHost += bytes;
  return afterTransfer(x, 'read', before, got.length === 1 ? got[0] : concat(got, bytes));
}

/** After a write: the early-warning report when the tape is past the early-warning point. */
function earlyWarning(d: TapeDrive, m: Cartridge): HandlerResult {
  if (m.dataBytes >= earlyWarningPoint(m.partitionCapacity)) {
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
  return write(x, getU24(x.cdb, 2), 2);
}

/** WRITE(16): like READ(16), it starts at the partition and logical object given, locating there first. */
function write16(x: Exec<TapeDrive>): HandlerResult | Promise<HandlerResult> {
  return startAt16(x, () => write(x, getU24(x.cdb, 12), 12));
}

/** WRITE of `count` bytes (variable) or blocks (fixed); `countByte` is where the CDB holds the count. */
function write(x: Exec<TapeDrive>, count: number, countByte: number): HandlerResult | Promise<HandlerResult> {
  const d = x.device;
  const fixed = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  if (fixed && d.blockSize === 0) invalidCdbField(1, 0);
  if (!fixed && count > d.personality.maxBlockLength) invalidCdbField(countByte, 7);
  if (d.hung) return hangUntilAborted(x.signal);
  const m = d.readyNow();
  if (count === 0) return undefined;
  const size = fixed ? d.blockSize : count;
  const blocks = fixed ? count : 1;
  if (x.dataOut.length < size * blocks) throw new CheckCondition(sense(Sense.DATA_PHASE_ERROR));
  d.checkWritable(m, d.position, fixed ? blocks : count);
  // An overwrite cuts the file: not while a sync point is in flight (another path's flush).
  if (d.position < m.objectCount && m.syncInFlight) return m.whenSynced().then(() => write(x, count, countByte));
  try {
    if (d.position < m.objectCount) m.truncate(d.position);
  } catch (e) {
    d.mediaWriteFailed(e, fixed ? blocks : count);
  }
  const before = d.counters.bytesWritten;
  for (let i = 0; i < blocks; i++) storeBlock(d, m, x.dataOut.subarray(i * size, (i + 1) * size), fixed ? blocks - i : count);
  return afterTransfer(x, 'write', before, earlyWarning(d, m));
}

/**
 * Positions for READ(16)/WRITE(16) (CDB byte 3 PARTITION, bytes 4..11 LOGICAL OBJECT
 * IDENTIFIER), then runs the transfer: in another partition than the current one, the
 * drive changes partition first (a partition the tape does not have is refused). A start
 * beyond end of data answers BLANK CHECK at end of data.
 */
function startAt16(x: Exec<TapeDrive>, transfer: () => HandlerResult | Promise<HandlerResult>): HandlerResult | Promise<HandlerResult> {
  const d = x.device;
  const partition = x.cdb[3] ?? 0;
  const id = getU64(x.cdb, 4);
  if (id > BigInt(Number.MAX_SAFE_INTEGER)) invalidCdbField(4, 7);
  const target = Number(id);
  if (d.hung) return hangUntilAborted(x.signal);
  const m = d.readyNow();
  if (partition >= m.partitionCount) invalidCdbField(3, 7);
  if (partition === m.partition && target === d.position) return transfer();
  const settling = d.settleBuffer(x.signal);
  if (settling) return settling.then(() => locateThenTransfer(x, m, partition, target, transfer));
  return locateThenTransfer(x, m, partition, target, transfer);
}

/** The locate part of {@link startAt16}, once the buffer's data is on tape. */
function locateThenTransfer(x: Exec<TapeDrive>, m: Cartridge, partition: number, target: number, transfer: () => HandlerResult | Promise<HandlerResult>): HandlerResult | Promise<HandlerResult> {
  const d = x.device;
  // Leaving a partition with unsynced data waits for its sync point (off the event loop).
  const changing = d.changePartition(m, partition);
  if (changing) return changing.then(() => locateThenTransfer(x, m, partition, target, transfer));
  const full = d.personality.timing.locateSeconds * 2;
  const seconds = (Math.abs(m.dataBytesBefore(d.position) - m.dataBytesBefore(Math.min(target, m.objectCount))) / Math.max(1, m.partitionCapacity)) * full;
  const go = (): HandlerResult | Promise<HandlerResult> => {
    if (target > m.objectCount) {
      d.position = m.objectCount;
      throw new CheckCondition(sense(Sense.END_OF_DATA_DETECTED));
    }
    d.position = target;
    d.tapeMoved();
    return transfer();
  };
  if (!d.waits(seconds)) return go();
  return d.delay(seconds, x.signal).then(go);
}

/**
 * VERIFY(6): reads and checks `count` blocks (FIXED) or one block (variable) from the
 * current position, as READ would, without transferring them; BYTCMP compares them with
 * the Data-Out bytes instead (MISCOMPARE on a difference, INFORMATION the residue); VTE
 * verifies up to end of data. Encrypted blocks verify only with the key, as they read.
 */
function verify6(x: Exec<TapeDrive>): HandlerResult | Promise<HandlerResult> {
  const d = x.device;
  const b1 = x.cdb[1] ?? 0;
  const vte = (b1 & 0x20) !== 0;
  const bytcmp = (b1 & 0x02) !== 0;
  const fixed = (b1 & 0x01) !== 0;
  const count = getU24(x.cdb, 2);
  if (vte && (bytcmp || count !== 0)) invalidCdbField(vte && bytcmp ? 1 : 2, vte && bytcmp ? 1 : 7);
  if (fixed && d.blockSize === 0) invalidCdbField(1, 0);
  if (d.hung) return hangUntilAborted(x.signal);
  const m = d.readyNow();
  if (!vte && count === 0) return undefined;
  const want = fixed ? d.blockSize * count : count;
  if (bytcmp && x.dataOut.length < want) throw new CheckCondition(sense(Sense.DATA_PHASE_ERROR));
  let compared = 0;
  const before = d.counters.bytesRead;
  const objects = vte ? Infinity : fixed ? count : 1;
  for (let done = 0; done < objects; done++) {
    const residue = fixed ? count - done : count;
    if (d.position >= m.objectCount) {
      if (vte) break;
      throw new CheckCondition(sense(Sense.END_OF_DATA_DETECTED, { information: residue }));
    }
    if (m.object(d.position)?.kind === 'filemark') {
      d.position++;
      if (vte) continue;
      throw new CheckCondition(sense(Sense.FILEMARK_DETECTED, { filemark: true, information: residue }));
    }
    const block = readBlock(d, m, residue, [], 0);
    d.position++;
    const expected = fixed ? d.blockSize : count;
    if (!vte && block.length !== expected) {
      throw new CheckCondition(sense(Sense.NO_ADDITIONAL_SENSE, { ili: true, information: fixed ? residue : count - block.length }));
    }
    if (bytcmp) {
      const ref = x.dataOut.subarray(compared, compared + block.length);
      for (let i = 0; i < block.length; i++) {
        if (block[i] !== ref[i]) {
          // The block that differs counts as not verified; the position stays after it.
          throw new CheckCondition(sense(DriveSense.MISCOMPARE_DURING_VERIFY, { information: fixed ? residue : count - i }));
        }
      }
      compared += block.length;
    }
  }
  return afterTransfer(x, 'read', before, undefined);
}

async function writeFilemarks(x: Exec<TapeDrive>, count: number): Promise<HandlerResult> {
  const d = x.device;
  const m = await d.ready(x.signal);
  // IMMED 0: status once the buffer's data (and the filemarks) are on tape (SSC-4 WRITE
  // FILEMARKS); with IMMED they stay in the buffer.
  const immed = d.immediate?.controller.signal === x.signal;
  if (count === 0) {
    // A flush: everything written so far becomes durable, which a failed cartridge cannot promise.
    if (m.writeFailure) d.mediaWriteFailed(m.writeFailure, 0);
    const settling = immed ? undefined : d.settleBuffer(x.signal);
    if (settling) await settling;
    if (!m.readOnly) await d.flush();
    return undefined;
  }
  d.checkWritable(m, d.position, count);
  // The checks are done: with IMMED the command answers here and the rest runs on.
  await d.delay(0, x.signal);
  try {
    if (d.position < m.objectCount) {
      await m.whenSynced();
      m.truncate(d.position);
    }
  } catch (e) {
    d.mediaWriteFailed(e, count);
  }
  if (d.mediumErrors.has(d.position)) writeFault(d, count);
  // A filemark takes room on the medium too; past the physical end the rest are not
  // written and the command ends in VOLUME OVERFLOW with the count not written.
  const fit = Math.max(0, Math.floor((m.partitionCapacity - m.dataBytes) / FILEMARK_MEDIUM_BYTES));
  const now = Math.min(count, fit);
  try {
    // The filemarks' sync point: a write or sync failure (now or in the background
    // writeback since the last one) means none of them is acknowledged. Its fdatasync runs
    // on the thread pool; the command answers when it returned, other drives run meanwhile.
    if (now > 0) await m.appendFilemarksAsync(now);
  } catch (e) {
    d.mediaWriteFailed(e, count);
  }
  d.position += now;
  const settling = immed ? undefined : d.settleBuffer(x.signal);
  if (settling) await settling;
  await d.flush();
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
  // READ(16): SILI, FIXED; PARTITION; LOGICAL OBJECT IDENTIFIER; TRANSFER LENGTH.
  { opcode: SscOpcode.READ_16, name: 'READ(16)', usage: usage(16, { 1: 0x03, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff }), handler: read16, nominalTimeout: 60, recommendedTimeout: 1200 },
  // WRITE(16): FIXED (FCS/LCS of logical block protection are not supported); as READ(16) otherwise.
  { opcode: SscOpcode.WRITE_16, name: 'WRITE(16)', usage: usage(16, { 1: 0x01, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff }), handler: write16, nominalTimeout: 60, recommendedTimeout: 1200 },
  // VERIFY(6): VTE, BYTCMP, FIXED (VLBPM/VBF protection checks and IMMED are not supported).
  { opcode: SscOpcode.VERIFY_6, name: 'VERIFY(6)', usage: usage(6, { 1: 0x23, 2: 0xff, 3: 0xff, 4: 0xff }), handler: verify6, nominalTimeout: 60, recommendedTimeout: 1200 },
];
