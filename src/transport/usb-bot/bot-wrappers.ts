/**
 * The two wrappers of the USB Mass Storage Class Bulk-Only Transport (BOT 1.0, section
 * 5): the Command Block Wrapper the host sends on Bulk-Out, and the Command Status
 * Wrapper the device answers with on Bulk-In. Pure codec: both sides of the wire (the
 * binding and the emulated device) use it, so a malformed wrapper is refused alike.
 * All multi-byte fields are little-endian, unlike SCSI's big-endian CDB fields.
 */

/** `USBC` read as a little-endian u32. */
export const CBW_SIGNATURE = 0x43425355;
/** `USBS` read as a little-endian u32. */
export const CSW_SIGNATURE = 0x53425355;
export const CBW_LENGTH = 31;
export const CSW_LENGTH = 13;
/** CBWCB is 16 bytes; a longer CDB cannot travel over BOT at all. */
export const BOT_MAX_CDB = 16;
/** bCBWLUN has four bits. */
export const BOT_MAX_LUN = 15;

/** bCSWStatus values (BOT 5.2, table 5.3). */
export const CswStatus = {
  passed: 0,
  failed: 1,
  phaseError: 2,
} as const;
export type CswStatus = (typeof CswStatus)[keyof typeof CswStatus];

/** Class-specific requests on the control pipe (BOT 3.1 and 3.2). */
export const BotRequest = {
  /** Bulk-Only Mass Storage Reset: readies the interface for the next CBW. */
  reset: 0xff,
  /** Get Max LUN: one byte, the highest LUN; a single-LUN device may stall it. */
  getMaxLun: 0xfe,
} as const;

/** Interface class, subclass and protocol that announce BOT (Mass Storage, SCSI transparent, BBB). */
export const MassStorage = {
  interfaceClass: 0x08,
  subclassScsi: 0x06,
  protocolBulkOnly: 0x50,
} as const;

export interface CommandBlockWrapper {
  readonly tag: number;
  /** dCBWDataTransferLength: bytes the host expects to move in the data stage. */
  readonly dataTransferLength: number;
  /** Bit 7 of bmCBWFlags; meaningless when `dataTransferLength` is 0. */
  readonly dataIn: boolean;
  readonly lun: number;
  readonly cdb: Uint8Array;
}

export interface CommandStatusWrapper {
  readonly tag: number;
  /** dCSWDataResidue: expected length minus what the device actually processed. */
  readonly residue: number;
  readonly status: number;
}

/** A wrapper that fails the checks of BOT 6.2.1 / 6.3.1. */
export class BotFramingError extends Error {
  override readonly name = 'BotFramingError';
  readonly code = 'EBOTFRAME';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function u32(b: Uint8Array, off: number): number {
  return ((b[off] ?? 0) | ((b[off + 1] ?? 0) << 8) | ((b[off + 2] ?? 0) << 16)) + (b[off + 3] ?? 0) * 0x1000000;
}

function putU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

export function encodeCbw(w: CommandBlockWrapper): Uint8Array {
  if (!isU32(w.tag)) throw new BotFramingError(`CBW tag ${w.tag} is not a u32`);
  if (!isU32(w.dataTransferLength)) throw new BotFramingError(`CBW data transfer length ${w.dataTransferLength} is not a u32`);
  if (!Number.isInteger(w.lun) || w.lun < 0 || w.lun > BOT_MAX_LUN) throw new BotFramingError(`CBW LUN ${w.lun} is outside 0..${BOT_MAX_LUN}`);
  if (w.cdb.length < 1 || w.cdb.length > BOT_MAX_CDB) throw new BotFramingError(`CBW CDB length ${w.cdb.length} is outside 1..${BOT_MAX_CDB}`);
  const b = new Uint8Array(CBW_LENGTH);
  putU32(b, 0, CBW_SIGNATURE);
  putU32(b, 4, w.tag);
  putU32(b, 8, w.dataTransferLength);
  b[12] = w.dataIn ? 0x80 : 0x00;
  b[13] = w.lun;
  b[14] = w.cdb.length;
  b.set(w.cdb, 15);
  return b;
}

/**
 * Decodes a CBW the way a device judges it: valid (size and signature, BOT 6.2.1) and
 * meaningful (reserved bits zero, CB length 1..16, BOT 6.2.2). Throws
 * {@link BotFramingError} otherwise; a device then stalls both bulk endpoints until
 * reset recovery.
 */
export function decodeCbw(b: Uint8Array): CommandBlockWrapper {
  if (b.length !== CBW_LENGTH) throw new BotFramingError(`CBW is ${b.length} bytes, not ${CBW_LENGTH}`);
  const sig = u32(b, 0);
  if (sig !== CBW_SIGNATURE) throw new BotFramingError(`CBW signature 0x${sig.toString(16)} is not USBC`);
  const flags = b[12] ?? 0;
  if ((flags & 0x7f) !== 0) throw new BotFramingError(`CBW flags 0x${flags.toString(16)} set reserved bits`);
  const lunByte = b[13] ?? 0;
  if ((lunByte & 0xf0) !== 0) throw new BotFramingError(`CBW LUN byte 0x${lunByte.toString(16)} sets reserved bits`);
  const cbLen = b[14] ?? 0;
  if (cbLen < 1 || cbLen > BOT_MAX_CDB) throw new BotFramingError(`CBW CB length ${cbLen} is outside 1..${BOT_MAX_CDB}`);
  return {
    tag: u32(b, 4),
    dataTransferLength: u32(b, 8),
    dataIn: (flags & 0x80) !== 0,
    lun: lunByte,
    cdb: b.slice(15, 15 + cbLen),
  };
}

export function encodeCsw(w: CommandStatusWrapper): Uint8Array {
  if (!isU32(w.tag) || !isU32(w.residue)) throw new BotFramingError('CSW tag and residue must be u32');
  if (!Number.isInteger(w.status) || w.status < 0 || w.status > 0xff) throw new BotFramingError(`CSW status ${w.status} is not a byte`);
  const b = new Uint8Array(CSW_LENGTH);
  putU32(b, 0, CSW_SIGNATURE);
  putU32(b, 4, w.tag);
  putU32(b, 8, w.residue);
  b[12] = w.status;
  return b;
}

/**
 * Decodes a CSW the way a host judges it (BOT 6.3): it must be 13 bytes with the USBS
 * signature and the tag of the CBW it answers, and be meaningful (status 0 or 1 with a
 * residue no larger than the expected length, or status 2). Throws
 * {@link BotFramingError} naming the first failed check; the host then does reset
 * recovery.
 */
export function decodeCsw(b: Uint8Array, expected: { tag: number; dataTransferLength: number }): CommandStatusWrapper {
  if (b.length !== CSW_LENGTH) throw new BotFramingError(`CSW is ${b.length} bytes, not ${CSW_LENGTH}`);
  const sig = u32(b, 0);
  if (sig !== CSW_SIGNATURE) throw new BotFramingError(`CSW signature 0x${sig.toString(16)} is not USBS`);
  const tag = u32(b, 4);
  if (tag !== expected.tag) throw new BotFramingError(`CSW tag 0x${tag.toString(16)} does not match CBW tag 0x${expected.tag.toString(16)}`);
  const residue = u32(b, 8);
  const status = b[12] ?? 0;
  if (status > CswStatus.phaseError) throw new BotFramingError(`CSW status ${status} is reserved`);
  if (status !== CswStatus.phaseError && residue > expected.dataTransferLength) {
    throw new BotFramingError(`CSW residue ${residue} exceeds the expected length ${expected.dataTransferLength}`);
  }
  return { tag, residue, status };
}
