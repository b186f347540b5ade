/**
 * The iSCSI PDU codec (RFC 7143 section 11): one interface per PDU type carrying every
 * header field, {@link encodePdu} to bytes (padding and digests included), and
 * {@link decodePdu} from a framed PDU (see {@link PduFramer}). Pure apart from CRC32C,
 * which comes from the native addon. Shared by the initiator and the emulator's target.
 */
import { BHS_LENGTH, Opcode, RejectReason } from './constants.js';
import { crc32c } from '../native.js';

interface Segments {
  /** Additional header segments, raw (a multiple of 4 bytes). Only SCSI Command carries any. */
  readonly ahs?: Uint8Array;
  /** The data segment, unpadded. */
  readonly data?: Uint8Array;
}

export interface NopOutPdu extends Segments {
  readonly opcode: typeof Opcode.NOP_OUT;
  readonly immediate: boolean;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}
export interface ScsiCommandPdu extends Segments {
  readonly opcode: typeof Opcode.SCSI_COMMAND;
  readonly immediate: boolean;
  readonly final: boolean;
  readonly read: boolean;
  readonly write: boolean;
  /** Task attribute (0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA). */
  readonly attr: number;
  readonly lun: bigint;
  readonly itt: number;
  readonly expectedDataTransferLength: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  /** Bytes 32-47 of the BHS: the CDB, zero-padded; longer CDBs continue in an AHS of type 1. */
  readonly cdb: Uint8Array;
}
export interface TaskMgmtRequestPdu extends Segments {
  readonly opcode: typeof Opcode.TASK_MGMT_REQUEST;
  readonly immediate: boolean;
  readonly function: number;
  readonly lun: bigint;
  readonly itt: number;
  readonly referencedTaskTag: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly refCmdSN: number;
  readonly expDataSN: number;
}
export interface LoginRequestPdu extends Segments {
  readonly opcode: typeof Opcode.LOGIN_REQUEST;
  readonly transit: boolean;
  readonly continue: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly versionMax: number;
  readonly versionMin: number;
  /** 48-bit Initiator Session ID. */
  readonly isid: bigint;
  readonly tsih: number;
  readonly itt: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}
export interface TextRequestPdu extends Segments {
  readonly opcode: typeof Opcode.TEXT_REQUEST;
  readonly immediate: boolean;
  readonly final: boolean;
  readonly continue: boolean;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}
export interface DataOutPdu extends Segments {
  readonly opcode: typeof Opcode.DATA_OUT;
  readonly final: boolean;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly expStatSN: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
}
export interface LogoutRequestPdu extends Segments {
  readonly opcode: typeof Opcode.LOGOUT_REQUEST;
  readonly immediate: boolean;
  readonly reason: number;
  readonly itt: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}
export interface NopInPdu extends Segments {
  readonly opcode: typeof Opcode.NOP_IN;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
}
export interface ScsiResponsePdu extends Segments {
  readonly opcode: typeof Opcode.SCSI_RESPONSE;
  readonly bidiOverflow: boolean;
  readonly bidiUnderflow: boolean;
  readonly overflow: boolean;
  readonly underflow: boolean;
  readonly response: number;
  readonly status: number;
  readonly itt: number;
  readonly snackTag: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly expDataSN: number;
  readonly bidiReadResidualCount: number;
  readonly residualCount: number;
}
export interface TaskMgmtResponsePdu extends Segments {
  readonly opcode: typeof Opcode.TASK_MGMT_RESPONSE;
  readonly response: number;
  readonly itt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
}
export interface LoginResponsePdu extends Segments {
  readonly opcode: typeof Opcode.LOGIN_RESPONSE;
  readonly transit: boolean;
  readonly continue: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly versionMax: number;
  readonly versionActive: number;
  readonly isid: bigint;
  readonly tsih: number;
  readonly itt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly statusClass: number;
  readonly statusDetail: number;
}
export interface TextResponsePdu extends Segments {
  readonly opcode: typeof Opcode.TEXT_RESPONSE;
  readonly final: boolean;
  readonly continue: boolean;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
}
export interface DataInPdu extends Segments {
  readonly opcode: typeof Opcode.DATA_IN;
  readonly final: boolean;
  readonly acknowledge: boolean;
  readonly overflow: boolean;
  readonly underflow: boolean;
  /** S bit: the status rides on this PDU (status collapse). */
  readonly statusPresent: boolean;
  readonly status: number;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly residualCount: number;
}
export interface LogoutResponsePdu extends Segments {
  readonly opcode: typeof Opcode.LOGOUT_RESPONSE;
  readonly response: number;
  readonly itt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly time2Wait: number;
  readonly time2Retain: number;
}
export interface R2TPdu extends Segments {
  readonly opcode: typeof Opcode.R2T;
  readonly lun: bigint;
  readonly itt: number;
  readonly ttt: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly r2tSN: number;
  readonly bufferOffset: number;
  readonly desiredDataTransferLength: number;
}
export interface AsyncMessagePdu extends Segments {
  readonly opcode: typeof Opcode.ASYNC_MESSAGE;
  readonly lun: bigint;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly asyncEvent: number;
  readonly asyncVCode: number;
  readonly parameter1: number;
  readonly parameter2: number;
  readonly parameter3: number;
}
export interface RejectPdu extends Segments {
  readonly opcode: typeof Opcode.REJECT;
  readonly reason: number;
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  readonly dataSN: number;
}

export type InitiatorPdu = NopOutPdu | ScsiCommandPdu | TaskMgmtRequestPdu | LoginRequestPdu | TextRequestPdu | DataOutPdu | LogoutRequestPdu;
export type TargetPdu = NopInPdu | ScsiResponsePdu | TaskMgmtResponsePdu | LoginResponsePdu | TextResponsePdu | DataInPdu | LogoutResponsePdu | R2TPdu | AsyncMessagePdu | RejectPdu;
export type Pdu = InitiatorPdu | TargetPdu;

/** Digest settings of one direction of a connection (both off until login completes). */
export interface Digests {
  readonly header: boolean;
  readonly data: boolean;
}
export const NO_DIGESTS: Digests = { header: false, data: false };

/**
 * A PDU that cannot be decoded. `reason` is the Reject reason the receiver answers with;
 * `header` is the offending BHS (what a Reject carries back).
 */
export class PduFormatError extends Error {
  override readonly name = 'PduFormatError';
  readonly code = 'EPROTO';
  constructor(
    message: string,
    readonly reason: RejectReason,
    readonly header: Uint8Array,
  ) {
    super(message);
  }
}

const EMPTY = new Uint8Array(0);
const u32 = (v: number): number => v >>> 0;
const bit = (b: boolean, n: number): number => (b ? 1 << n : 0);
const has = (byte: number, n: number): boolean => (byte & (1 << n)) !== 0;

/** Opcodes whose PDUs may never carry a data segment. */
const NO_DATA = new Set<number>([Opcode.TASK_MGMT_REQUEST, Opcode.LOGOUT_REQUEST, Opcode.TASK_MGMT_RESPONSE, Opcode.LOGOUT_RESPONSE, Opcode.R2T]);

/** Encodes one PDU: BHS, AHS, header digest, padded data segment, data digest. */
export function encodePdu(pdu: Pdu, digests: Digests = NO_DIGESTS): Buffer {
  const ahs = pdu.ahs ?? EMPTY;
  const data = pdu.data ?? EMPTY;
  if (ahs.length % 4 !== 0 || ahs.length > 255 * 4) throw new RangeError(`AHS length ${ahs.length} must be a multiple of 4 up to 1020`);
  if (data.length > 0xffffff) throw new RangeError(`data segment length ${data.length} exceeds 2^24-1`);
  const pad = (4 - (data.length % 4)) % 4;
  const hd = digests.header ? 4 : 0;
  const dd = digests.data && data.length > 0 ? 4 : 0;
  // From the small-buffer pool when it fits; every byte not written below must be zero.
  const out = Buffer.allocUnsafe(BHS_LENGTH + ahs.length + hd + data.length + pad + dd).fill(0);
  writeBhs(out, pdu);
  out[4] = ahs.length / 4;
  out.writeUIntBE(data.length, 5, 3);
  out.set(ahs, BHS_LENGTH);
  let at = BHS_LENGTH + ahs.length;
  if (hd) {
    out.writeUInt32LE(crc32c(out.subarray(0, at)), at);
    at += 4;
  }
  out.set(data, at);
  at += data.length + pad;
  // The CRC covers the padding too; it is transmitted least significant byte first.
  if (dd) out.writeUInt32LE(crc32c(out.subarray(at - data.length - pad, at)), at);
  return out;
}

/**
 * The same bytes as {@link encodePdu}, as pieces for a gathered write: the header (BHS,
 * AHS, header digest), the data segment as given (not copied), then padding and data
 * digest. Large Data-In and Data-Out segments then cross to the socket without a copy.
 */
export function encodePduParts(pdu: Pdu, digests: Digests = NO_DIGESTS): Uint8Array[] {
  const data = pdu.data ?? EMPTY;
  if (data.length < 4096) return [encodePdu(pdu, digests)];
  const ahs = pdu.ahs ?? EMPTY;
  if (ahs.length % 4 !== 0 || ahs.length > 255 * 4) throw new RangeError(`AHS length ${ahs.length} must be a multiple of 4 up to 1020`);
  if (data.length > 0xffffff) throw new RangeError(`data segment length ${data.length} exceeds 2^24-1`);
  const pad = (4 - (data.length % 4)) % 4;
  const hd = digests.header ? 4 : 0;
  const head = Buffer.allocUnsafe(BHS_LENGTH + ahs.length + hd).fill(0);
  writeBhs(head, pdu);
  head[4] = ahs.length / 4;
  head.writeUIntBE(data.length, 5, 3);
  head.set(ahs, BHS_LENGTH);
  if (hd) head.writeUInt32LE(crc32c(head.subarray(0, BHS_LENGTH + ahs.length)), BHS_LENGTH + ahs.length);
  const tail = Buffer.alloc(pad + (digests.data ? 4 : 0));
  if (digests.data) tail.writeUInt32LE(crc32c(tail.subarray(0, pad), crc32c(data)), pad);
  return tail.length > 0 ? [head, data, tail] : [head, data];
}

function writeBhs(b: Buffer, p: Pdu): void {
  b[0] = p.opcode;
  switch (p.opcode) {
    case Opcode.NOP_OUT:
      b[0] |= bit(p.immediate, 6);
      b[1] = 0x80;
      writeLun(b, p.lun);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.ttt), 20);
      b.writeUInt32BE(u32(p.cmdSN), 24);
      b.writeUInt32BE(u32(p.expStatSN), 28);
      return;
    case Opcode.SCSI_COMMAND:
      if (p.cdb.length > 16) throw new RangeError('BHS CDB field is 16 bytes; put the rest in an extended CDB AHS');
      b[0] |= bit(p.immediate, 6);
      b[1] = bit(p.final, 7) | bit(p.read, 6) | bit(p.write, 5) | (p.attr & 0x07);
      writeLun(b, p.lun);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.expectedDataTransferLength), 20);
      b.writeUInt32BE(u32(p.cmdSN), 24);
      b.writeUInt32BE(u32(p.expStatSN), 28);
      b.set(p.cdb, 32);
      return;
    case Opcode.TASK_MGMT_REQUEST:
      b[0] |= bit(p.immediate, 6);
      b[1] = 0x80 | (p.function & 0x7f);
      writeLun(b, p.lun);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.referencedTaskTag), 20);
      b.writeUInt32BE(u32(p.cmdSN), 24);
      b.writeUInt32BE(u32(p.expStatSN), 28);
      b.writeUInt32BE(u32(p.refCmdSN), 32);
      b.writeUInt32BE(u32(p.expDataSN), 36);
      return;
    case Opcode.LOGIN_REQUEST:
      b[0] |= 0x40;
      b[1] = bit(p.transit, 7) | bit(p.continue, 6) | ((p.csg & 3) << 2) | (p.nsg & 3);
      b[2] = p.versionMax & 0xff;
      b[3] = p.versionMin & 0xff;
      b.writeUIntBE(Number(BigInt.asUintN(48, p.isid)), 8, 6);
      b.writeUInt16BE(p.tsih & 0xffff, 14);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt16BE(p.cid & 0xffff, 20);
      b.writeUInt32BE(u32(p.cmdSN), 24);
      b.writeUInt32BE(u32(p.expStatSN), 28);
      return;
    case Opcode.TEXT_REQUEST:
      b[0] |= bit(p.immediate, 6);
      b[1] = bit(p.final, 7) | bit(p.continue, 6);
      writeLun(b, p.lun);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.ttt), 20);
      b.writeUInt32BE(u32(p.cmdSN), 24);
      b.writeUInt32BE(u32(p.expStatSN), 28);
      return;
    case Opcode.DATA_OUT:
      b[1] = bit(p.final, 7);
      writeLun(b, p.lun);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.ttt), 20);
      b.writeUInt32BE(u32(p.expStatSN), 28);
      b.writeUInt32BE(u32(p.dataSN), 36);
      b.writeUInt32BE(u32(p.bufferOffset), 40);
      return;
    case Opcode.LOGOUT_REQUEST:
      b[0] |= bit(p.immediate, 6);
      b[1] = 0x80 | (p.reason & 0x7f);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt16BE(p.cid & 0xffff, 20);
      b.writeUInt32BE(u32(p.cmdSN), 24);
      b.writeUInt32BE(u32(p.expStatSN), 28);
      return;
    case Opcode.NOP_IN:
      b[1] = 0x80;
      writeLun(b, p.lun);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.ttt), 20);
      writeSn(b, p);
      return;
    case Opcode.SCSI_RESPONSE:
      b[1] = 0x80 | bit(p.bidiOverflow, 4) | bit(p.bidiUnderflow, 3) | bit(p.overflow, 2) | bit(p.underflow, 1);
      b[2] = p.response & 0xff;
      b[3] = p.status & 0xff;
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.snackTag), 20);
      writeSn(b, p);
      b.writeUInt32BE(u32(p.expDataSN), 36);
      b.writeUInt32BE(u32(p.bidiReadResidualCount), 40);
      b.writeUInt32BE(u32(p.residualCount), 44);
      return;
    case Opcode.TASK_MGMT_RESPONSE:
      b[1] = 0x80;
      b[2] = p.response & 0xff;
      b.writeUInt32BE(u32(p.itt), 16);
      writeSn(b, p);
      return;
    case Opcode.LOGIN_RESPONSE:
      b[1] = bit(p.transit, 7) | bit(p.continue, 6) | ((p.csg & 3) << 2) | (p.nsg & 3);
      b[2] = p.versionMax & 0xff;
      b[3] = p.versionActive & 0xff;
      b.writeUIntBE(Number(BigInt.asUintN(48, p.isid)), 8, 6);
      b.writeUInt16BE(p.tsih & 0xffff, 14);
      b.writeUInt32BE(u32(p.itt), 16);
      writeSn(b, p);
      b[36] = p.statusClass & 0xff;
      b[37] = p.statusDetail & 0xff;
      return;
    case Opcode.TEXT_RESPONSE:
      b[1] = bit(p.final, 7) | bit(p.continue, 6);
      writeLun(b, p.lun);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.ttt), 20);
      writeSn(b, p);
      return;
    case Opcode.DATA_IN:
      b[1] = bit(p.final, 7) | bit(p.acknowledge, 6) | bit(p.overflow, 2) | bit(p.underflow, 1) | bit(p.statusPresent, 0);
      b[3] = p.status & 0xff;
      writeLun(b, p.lun);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.ttt), 20);
      writeSn(b, p);
      b.writeUInt32BE(u32(p.dataSN), 36);
      b.writeUInt32BE(u32(p.bufferOffset), 40);
      b.writeUInt32BE(u32(p.residualCount), 44);
      return;
    case Opcode.LOGOUT_RESPONSE:
      b[1] = 0x80;
      b[2] = p.response & 0xff;
      b.writeUInt32BE(u32(p.itt), 16);
      writeSn(b, p);
      b.writeUInt16BE(p.time2Wait & 0xffff, 40);
      b.writeUInt16BE(p.time2Retain & 0xffff, 42);
      return;
    case Opcode.R2T:
      b[1] = 0x80;
      writeLun(b, p.lun);
      b.writeUInt32BE(u32(p.itt), 16);
      b.writeUInt32BE(u32(p.ttt), 20);
      writeSn(b, p);
      b.writeUInt32BE(u32(p.r2tSN), 36);
      b.writeUInt32BE(u32(p.bufferOffset), 40);
      b.writeUInt32BE(u32(p.desiredDataTransferLength), 44);
      return;
    case Opcode.ASYNC_MESSAGE:
      b[1] = 0x80;
      writeLun(b, p.lun);
      b.writeUInt32BE(0xffffffff, 16);
      writeSn(b, p);
      b[36] = p.asyncEvent & 0xff;
      b[37] = p.asyncVCode & 0xff;
      b.writeUInt16BE(p.parameter1 & 0xffff, 38);
      b.writeUInt16BE(p.parameter2 & 0xffff, 40);
      b.writeUInt16BE(p.parameter3 & 0xffff, 42);
      return;
    case Opcode.REJECT:
      b[1] = 0x80;
      b[2] = p.reason & 0xff;
      b.writeUInt32BE(0xffffffff, 16);
      writeSn(b, p);
      b.writeUInt32BE(u32(p.dataSN), 36);
      return;
  }
}

/** The LUN field (bytes 8-15). */
function writeLun(b: Buffer, v: bigint): void {
  b.writeBigUInt64BE(BigInt.asUintN(64, v), 8);
}

function writeSn(b: Buffer, p: { statSN: number; expCmdSN: number; maxCmdSN: number }): void {
  b.writeUInt32BE(u32(p.statSN), 24);
  b.writeUInt32BE(u32(p.expCmdSN), 28);
  b.writeUInt32BE(u32(p.maxCmdSN), 32);
}

/** One PDU cut out of the byte stream, digests already checked. */
export interface Frame {
  readonly bhs: Buffer;
  readonly ahs: Buffer;
  readonly data: Buffer;
}

/**
 * Decodes a framed PDU. Throws {@link PduFormatError} with the Reject reason for an
 * unknown opcode or a field the opcode does not allow.
 */
export function decodePdu(frame: Frame): Pdu {
  const b = frame.bhs;
  const op = (b[0] ?? 0) & 0x3f;
  const immediate = has(b[0] ?? 0, 6);
  const f1 = b[1] ?? 0;
  const ahs = frame.ahs;
  const data = frame.data;
  if (ahs.length > 0 && op !== Opcode.SCSI_COMMAND && op !== Opcode.SCSI_RESPONSE) throw bad(b, `${op.toString(16)}: AHS is not allowed on this PDU`, RejectReason.INVALID_PDU_FIELD);
  if (data.length > 0 && NO_DATA.has(op)) throw bad(b, `opcode 0x${op.toString(16)} carries no data segment (got ${data.length} bytes)`, RejectReason.INVALID_PDU_FIELD);
  const p = decodeFields(b, op, immediate, f1);
  // Segments are added after the fields, so each opcode has one object shape per case.
  if (ahs.length) (p as { ahs?: Uint8Array }).ahs = new Uint8Array(ahs);
  if (data.length) (p as { data?: Uint8Array }).data = data;
  return p;
}

function decodeFields(b: Buffer, op: number, immediate: boolean, f1: number): Pdu {
  const lun = b.readBigUInt64BE(8);
  const itt = b.readUInt32BE(16);
  switch (op) {
    case Opcode.NOP_OUT:
      return { opcode: op, immediate, lun, itt, ttt: b.readUInt32BE(20), cmdSN: b.readUInt32BE(24), expStatSN: b.readUInt32BE(28) };
    case Opcode.SCSI_COMMAND:
      return {
        opcode: op, immediate, final: has(f1, 7), read: has(f1, 6), write: has(f1, 5), attr: f1 & 7, lun, itt,
        expectedDataTransferLength: b.readUInt32BE(20), cmdSN: b.readUInt32BE(24), expStatSN: b.readUInt32BE(28), cdb: new Uint8Array(b.subarray(32, 48)),
      };
    case Opcode.TASK_MGMT_REQUEST:
      if (!has(f1, 7)) throw bad(b, 'task management request without the F bit', RejectReason.INVALID_PDU_FIELD);
      return { opcode: op, immediate, function: f1 & 0x7f, lun, itt, referencedTaskTag: b.readUInt32BE(20), cmdSN: b.readUInt32BE(24), expStatSN: b.readUInt32BE(28), refCmdSN: b.readUInt32BE(32), expDataSN: b.readUInt32BE(36) };
    case Opcode.LOGIN_REQUEST:
      return {
        opcode: op, transit: has(f1, 7), continue: has(f1, 6), csg: (f1 >> 2) & 3, nsg: f1 & 3, versionMax: b[2] ?? 0, versionMin: b[3] ?? 0,
        isid: BigInt(b.readUIntBE(8, 6)), tsih: b.readUInt16BE(14), itt, cid: b.readUInt16BE(20), cmdSN: b.readUInt32BE(24), expStatSN: b.readUInt32BE(28),
      };
    case Opcode.TEXT_REQUEST:
      return { opcode: op, immediate, final: has(f1, 7), continue: has(f1, 6), lun, itt, ttt: b.readUInt32BE(20), cmdSN: b.readUInt32BE(24), expStatSN: b.readUInt32BE(28) };
    case Opcode.DATA_OUT:
      return { opcode: op, final: has(f1, 7), lun, itt, ttt: b.readUInt32BE(20), expStatSN: b.readUInt32BE(28), dataSN: b.readUInt32BE(36), bufferOffset: b.readUInt32BE(40) };
    case Opcode.LOGOUT_REQUEST:
      if (!has(f1, 7)) throw bad(b, 'logout request without the F bit', RejectReason.INVALID_PDU_FIELD);
      return { opcode: op, immediate, reason: f1 & 0x7f, itt, cid: b.readUInt16BE(20), cmdSN: b.readUInt32BE(24), expStatSN: b.readUInt32BE(28) };
    case Opcode.NOP_IN:
      return { opcode: op, lun, itt, ttt: b.readUInt32BE(20), statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32) };
    case Opcode.SCSI_RESPONSE:
      return {
        opcode: op, bidiOverflow: has(f1, 4), bidiUnderflow: has(f1, 3), overflow: has(f1, 2), underflow: has(f1, 1), response: b[2] ?? 0, status: b[3] ?? 0,
        itt, snackTag: b.readUInt32BE(20), statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32), expDataSN: b.readUInt32BE(36), bidiReadResidualCount: b.readUInt32BE(40), residualCount: b.readUInt32BE(44),
      };
    case Opcode.TASK_MGMT_RESPONSE:
      return { opcode: op, response: b[2] ?? 0, itt, statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32) };
    case Opcode.LOGIN_RESPONSE:
      return {
        opcode: op, transit: has(f1, 7), continue: has(f1, 6), csg: (f1 >> 2) & 3, nsg: f1 & 3, versionMax: b[2] ?? 0, versionActive: b[3] ?? 0,
        isid: BigInt(b.readUIntBE(8, 6)), tsih: b.readUInt16BE(14), itt, statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32), statusClass: b[36] ?? 0, statusDetail: b[37] ?? 0,
      };
    case Opcode.TEXT_RESPONSE:
      return { opcode: op, final: has(f1, 7), continue: has(f1, 6), lun, itt, ttt: b.readUInt32BE(20), statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32) };
    case Opcode.DATA_IN:
      return {
        opcode: op, final: has(f1, 7), acknowledge: has(f1, 6), overflow: has(f1, 2), underflow: has(f1, 1), statusPresent: has(f1, 0), status: b[3] ?? 0,
        lun, itt, ttt: b.readUInt32BE(20), statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32), dataSN: b.readUInt32BE(36), bufferOffset: b.readUInt32BE(40), residualCount: b.readUInt32BE(44),
      };
    case Opcode.LOGOUT_RESPONSE:
      return { opcode: op, response: b[2] ?? 0, itt, statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32), time2Wait: b.readUInt16BE(40), time2Retain: b.readUInt16BE(42) };
    case Opcode.R2T:
      return { opcode: op, lun, itt, ttt: b.readUInt32BE(20), statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32), r2tSN: b.readUInt32BE(36), bufferOffset: b.readUInt32BE(40), desiredDataTransferLength: b.readUInt32BE(44) };
    case Opcode.ASYNC_MESSAGE:
      return {
        opcode: op, lun, statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32), asyncEvent: b[36] ?? 0, asyncVCode: b[37] ?? 0, parameter1: b.readUInt16BE(38), parameter2: b.readUInt16BE(40), parameter3: b.readUInt16BE(42),
      };
    case Opcode.REJECT:
      return { opcode: op, reason: b[2] ?? 0, statSN: b.readUInt32BE(24), expCmdSN: b.readUInt32BE(28), maxCmdSN: b.readUInt32BE(32), dataSN: b.readUInt32BE(36) };
    default:
      throw bad(b, `unsupported opcode 0x${op.toString(16).padStart(2, '0')}`, RejectReason.COMMAND_NOT_SUPPORTED);
  }
}

function bad(b: Buffer, msg: string, reason: RejectReason = RejectReason.PROTOCOL_ERROR): PduFormatError {
  return new PduFormatError(msg, reason, Uint8Array.from(b));
}

/** What the framer reports besides whole frames. */
export type FrameEvent =
  | { readonly kind: 'frame'; readonly frame: Frame }
  /** Data segment over the limit: its bytes were skipped; the stream stays in step. */
  | { readonly kind: 'too-long'; readonly bhs: Buffer; readonly length: number }
  /** Data digest mismatch: the PDU was read whole; the stream stays in step. */
  | { readonly kind: 'data-digest'; readonly bhs: Buffer }
  /** Header digest mismatch: no field of the header can be trusted, so neither can the stream. */
  | { readonly kind: 'header-digest'; readonly bhs: Buffer };

export interface FramerOptions {
  /** Digests the peer applies to what it sends, read at the start of every PDU. */
  digests(): Digests;
  /** Largest data segment accepted, read at the start of every PDU. */
  maxDataSegmentLength(): number;
  /** Where a PDU that spans several reads is gathered (default `Buffer.allocUnsafe`). */
  alloc?(n: number): Buffer;
}

/**
 * Cuts a TCP byte stream into PDUs. Settings are read per PDU because digests switch on
 * right after the last login PDU, possibly in the middle of a received chunk.
 */
export class PduFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private skipping = 0;

  constructor(private readonly options: FramerOptions) {}

  /**
   * Feeds bytes; calls `onEvent` for each PDU completed. `onEvent` runs synchronously, so
   * a handler that changes settings affects the very next PDU. Returns false when a fatal
   * event (header digest) stopped the framer.
   */
  push(chunk: Buffer, onEvent: (e: FrameEvent) => boolean | void): boolean {
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, chunk.length);
      this.skipping -= n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    while (this.buffered >= BHS_LENGTH) {
      const head = this.peek(BHS_LENGTH);
      const ahsLen = (head[4] ?? 0) * 4;
      const dataLen = head.readUIntBE(5, 3);
      const { header: hd, data: dd } = this.options.digests();
      const headerLen = BHS_LENGTH + ahsLen + (hd ? 4 : 0);
      if (dataLen > this.options.maxDataSegmentLength()) {
        if (this.buffered < headerLen) return true;
        const all = this.take(headerLen);
        const bhs = Buffer.from(all.subarray(0, BHS_LENGTH));
        if (hd && all.readUInt32LE(BHS_LENGTH + ahsLen) !== crc32c(all.subarray(0, BHS_LENGTH + ahsLen))) {
          onEvent({ kind: 'header-digest', bhs });
          return false;
        }
        const skip = padded(dataLen) + (dd && dataLen > 0 ? 4 : 0);
        const n = Math.min(skip, this.buffered);
        this.take(n);
        this.skipping = skip - n;
        if (onEvent({ kind: 'too-long', bhs, length: dataLen }) === false) return false;
        if (this.skipping > 0) return true;
        continue;
      }
      const total = headerLen + padded(dataLen) + (dd && dataLen > 0 ? 4 : 0);
      if (this.buffered < total) return true;
      const all = this.take(total);
      const bhs = all.subarray(0, BHS_LENGTH);
      if (hd && all.readUInt32LE(BHS_LENGTH + ahsLen) !== crc32c(all.subarray(0, BHS_LENGTH + ahsLen))) {
        onEvent({ kind: 'header-digest', bhs });
        return false;
      }
      const dataAt = headerLen;
      if (dd && dataLen > 0) {
        const padEnd = dataAt + padded(dataLen);
        if (all.readUInt32LE(padEnd) !== crc32c(all.subarray(dataAt, padEnd))) {
          if (onEvent({ kind: 'data-digest', bhs }) === false) return false;
          continue;
        }
      }
      const frame: Frame = { bhs, ahs: all.subarray(BHS_LENGTH, BHS_LENGTH + ahsLen), data: all.subarray(dataAt, dataAt + dataLen) };
      if (onEvent({ kind: 'frame', frame }) === false) return false;
    }
    return true;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) return first.subarray(0, n);
    // Only the bytes asked for are joined; later PDUs stay in their chunks.
    return this.gather(n, false);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = this.gather(n, true);
    }
    this.buffered -= n;
    return out;
  }

  /** The first `n` buffered bytes in one buffer (copied once); `consume` drops them from the queue. */
  private gather(n: number, consume: boolean): Buffer {
    const out = consume && this.options.alloc ? this.options.alloc(n) : Buffer.allocUnsafe(n);
    let got = 0;
    let i = 0;
    while (got < n) {
      const c = this.chunks[i];
      if (!c) throw new Error(`framer: ${n} bytes asked, ${got} buffered`);
      const k = Math.min(c.length, n - got);
      c.copy(out, got, 0, k);
      got += k;
      if (consume) {
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      } else i++;
    }
    return out;
  }
}

function padded(n: number): number {
  return (n + 3) & ~3;
}

/** Frames and decodes a single encoded PDU (tests, tools). Throws when the bytes are not one whole PDU. */
export function decodeBytes(bytes: Uint8Array, digests: Digests = NO_DIGESTS, maxDataSegmentLength = 0xffffff): Pdu {
  let out: Pdu | undefined;
  let err: Error | undefined;
  const framer = new PduFramer({ digests: () => digests, maxDataSegmentLength: () => maxDataSegmentLength });
  framer.push(Buffer.from(bytes), (e) => {
    if (e.kind !== 'frame') err = new PduFormatError(`framing: ${e.kind}`, RejectReason.PROTOCOL_ERROR, Uint8Array.from(e.bhs));
    else if (out) err = new Error('more than one PDU');
    else out = decodePdu(e.frame);
  });
  if (err) throw err;
  if (!out) throw new Error('incomplete PDU');
  return out;
}

/** An 8-byte LUN field for LUN `n` (peripheral addressing below 256, flat space above). */
export function encodeLun(n: number): bigint {
  if (!Number.isInteger(n) || n < 0 || n > 0x3fff) throw new RangeError(`LUN ${n} is outside 0..16383`);
  if (n < 256) return BigInt(n) << 48n;
  return BigInt(0x4000 | n) << 48n;
}

/** The LUN number of an 8-byte LUN field, or undefined for an addressing method this target does not use. */
export function decodeLun(v: bigint): number | undefined {
  const top = Number((v >> 48n) & 0xffffn);
  if ((v & 0xffffffffffffn) !== 0n) return undefined;
  const method = top >> 14;
  if (method === 0 && top >> 8 === 0) return top & 0xff;
  if (method === 1) return top & 0x3fff;
  return undefined;
}

/** An extended CDB AHS (type 1) for the bytes of `cdb` beyond 16, or empty. */
export function extendedCdbAhs(cdb: Uint8Array): Uint8Array {
  if (cdb.length <= 16) return EMPTY;
  const rest = cdb.subarray(16);
  const len = rest.length + 1;
  const out = new Uint8Array(3 + len + ((4 - ((3 + len) % 4)) % 4));
  out[0] = (len >> 8) & 0xff;
  out[1] = len & 0xff;
  out[2] = 1;
  out.set(rest, 4);
  return out;
}

/** The whole CDB of a SCSI Command PDU: the BHS field plus an extended CDB AHS if any. */
export function commandCdb(p: ScsiCommandPdu): Uint8Array {
  const ahs = p.ahs ?? EMPTY;
  let at = 0;
  while (at + 3 <= ahs.length) {
    const len = ((ahs[at] ?? 0) << 8) | (ahs[at + 1] ?? 0);
    const type = ahs[at + 2] ?? 0;
    if (type === 1 && len >= 1 && at + 3 + len <= ahs.length) {
      const out = new Uint8Array(16 + len - 1);
      out.set(p.cdb.subarray(0, 16));
      out.set(ahs.subarray(at + 4, at + 3 + len), 16);
      return out;
    }
    at += 3 + len + ((4 - ((3 + len) % 4)) % 4);
  }
  return p.cdb;
}
