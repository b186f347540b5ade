/**
 * Sense data as a value type: a named catalogue of {key, asc, ascq} conditions used by
 * both the emulator (to build) and the clients (to parse and name), plus codecs for the
 * fixed (0x70/0x71) and descriptor (0x72/0x73) formats of SPC-4 4.5.
 */
import { getU16, getU32, getU64, setU16, setU32, setU64 } from './bytes.js';

export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  BLANK_CHECK: 0x8,
  VENDOR_SPECIFIC: 0x9,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  VOLUME_OVERFLOW: 0xd,
  MISCOMPARE: 0xe,
  COMPLETED: 0xf,
} as const;
export type SenseKey = (typeof SenseKey)[keyof typeof SenseKey];

const senseKeyNames = new Map<number, string>(Object.entries(SenseKey).map(([k, v]) => [v, k.replace(/_/g, ' ')]));

export function senseKeyName(key: number): string {
  return senseKeyNames.get(key) ?? `SENSE KEY 0x${key.toString(16)}`;
}

/** One catalogued condition. */
export interface SenseCode {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  /** The SPC name of the additional sense code, e.g. `WRITE PROTECTED`. */
  readonly name: string;
}

function c(key: number, asc: number, ascq: number, name: string): SenseCode {
  return Object.freeze({ key, asc, ascq, name });
}

const K = SenseKey;

/**
 * The conditions ptpvts raises or recognises. Names follow SPC-4 annex F (ASC/ASCQ
 * assignments). The key is the usual one for the condition; parsing looks up names by
 * ASC/ASCQ alone, since the same ASC can arrive with another key.
 */
export const Sense = {
  NO_ADDITIONAL_SENSE: c(K.NO_SENSE, 0x00, 0x00, 'NO ADDITIONAL SENSE INFORMATION'),
  FILEMARK_DETECTED: c(K.NO_SENSE, 0x00, 0x01, 'FILEMARK DETECTED'),
  END_OF_PARTITION_MEDIUM_DETECTED: c(K.NO_SENSE, 0x00, 0x02, 'END-OF-PARTITION/MEDIUM DETECTED'),
  SETMARK_DETECTED: c(K.NO_SENSE, 0x00, 0x03, 'SETMARK DETECTED'),
  BEGINNING_OF_PARTITION_MEDIUM_DETECTED: c(K.NO_SENSE, 0x00, 0x04, 'BEGINNING-OF-PARTITION/MEDIUM DETECTED'),
  END_OF_DATA_DETECTED: c(K.BLANK_CHECK, 0x00, 0x05, 'END-OF-DATA DETECTED'),
  PROGRAMMABLE_EARLY_WARNING: c(K.NO_SENSE, 0x00, 0x07, 'PROGRAMMABLE EARLY WARNING DETECTED'),
  OPERATION_IN_PROGRESS: c(K.NOT_READY, 0x00, 0x16, 'OPERATION IN PROGRESS'),
  NOT_READY_CAUSE_NOT_REPORTABLE: c(K.NOT_READY, 0x04, 0x00, 'LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE'),
  BECOMING_READY: c(K.NOT_READY, 0x04, 0x01, 'LOGICAL UNIT IS IN PROCESS OF BECOMING READY'),
  INITIALIZING_COMMAND_REQUIRED: c(K.NOT_READY, 0x04, 0x02, 'LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED'),
  MANUAL_INTERVENTION_REQUIRED: c(K.NOT_READY, 0x04, 0x03, 'LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED'),
  NOT_READY_OFFLINE: c(K.NOT_READY, 0x04, 0x12, 'LOGICAL UNIT NOT READY, OFFLINE'),
  WRITE_ERROR: c(K.MEDIUM_ERROR, 0x0c, 0x00, 'WRITE ERROR'),
  UNRECOVERED_READ_ERROR: c(K.MEDIUM_ERROR, 0x11, 0x00, 'UNRECOVERED READ ERROR'),
  RECORDED_ENTITY_NOT_FOUND: c(K.MEDIUM_ERROR, 0x14, 0x00, 'RECORDED ENTITY NOT FOUND'),
  MECHANICAL_POSITIONING_ERROR: c(K.HARDWARE_ERROR, 0x15, 0x01, 'MECHANICAL POSITIONING ERROR'),
  PARAMETER_LIST_LENGTH_ERROR: c(K.ILLEGAL_REQUEST, 0x1a, 0x00, 'PARAMETER LIST LENGTH ERROR'),
  INVALID_COMMAND_OPERATION_CODE: c(K.ILLEGAL_REQUEST, 0x20, 0x00, 'INVALID COMMAND OPERATION CODE'),
  LBA_OUT_OF_RANGE: c(K.ILLEGAL_REQUEST, 0x21, 0x00, 'LOGICAL BLOCK ADDRESS OUT OF RANGE'),
  INVALID_ELEMENT_ADDRESS: c(K.ILLEGAL_REQUEST, 0x21, 0x01, 'INVALID ELEMENT ADDRESS'),
  INVALID_FIELD_IN_CDB: c(K.ILLEGAL_REQUEST, 0x24, 0x00, 'INVALID FIELD IN CDB'),
  LOGICAL_UNIT_NOT_SUPPORTED: c(K.ILLEGAL_REQUEST, 0x25, 0x00, 'LOGICAL UNIT NOT SUPPORTED'),
  INVALID_FIELD_IN_PARAMETER_LIST: c(K.ILLEGAL_REQUEST, 0x26, 0x00, 'INVALID FIELD IN PARAMETER LIST'),
  PARAMETER_NOT_SUPPORTED: c(K.ILLEGAL_REQUEST, 0x26, 0x01, 'PARAMETER NOT SUPPORTED'),
  PARAMETER_VALUE_INVALID: c(K.ILLEGAL_REQUEST, 0x26, 0x02, 'PARAMETER VALUE INVALID'),
  WRITE_PROTECTED: c(K.DATA_PROTECT, 0x27, 0x00, 'WRITE PROTECTED'),
  NOT_READY_TO_READY_CHANGE: c(K.UNIT_ATTENTION, 0x28, 0x00, 'NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED'),
  IMPORT_EXPORT_ELEMENT_ACCESSED: c(K.UNIT_ATTENTION, 0x28, 0x01, 'IMPORT OR EXPORT ELEMENT ACCESSED'),
  POWER_ON_RESET: c(K.UNIT_ATTENTION, 0x29, 0x00, 'POWER ON, RESET, OR BUS DEVICE RESET OCCURRED'),
  POWER_ON_OCCURRED: c(K.UNIT_ATTENTION, 0x29, 0x01, 'POWER ON OCCURRED'),
  BUS_DEVICE_RESET: c(K.UNIT_ATTENTION, 0x29, 0x03, 'BUS DEVICE RESET FUNCTION OCCURRED'),
  MODE_PARAMETERS_CHANGED: c(K.UNIT_ATTENTION, 0x2a, 0x01, 'MODE PARAMETERS CHANGED'),
  LOG_PARAMETERS_CHANGED: c(K.UNIT_ATTENTION, 0x2a, 0x02, 'LOG PARAMETERS CHANGED'),
  COMMAND_SEQUENCE_ERROR: c(K.ILLEGAL_REQUEST, 0x2c, 0x00, 'COMMAND SEQUENCE ERROR'),
  COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: c(K.UNIT_ATTENTION, 0x2f, 0x00, 'COMMANDS CLEARED BY ANOTHER INITIATOR'),
  INCOMPATIBLE_MEDIUM_INSTALLED: c(K.MEDIUM_ERROR, 0x30, 0x00, 'INCOMPATIBLE MEDIUM INSTALLED'),
  CANNOT_READ_MEDIUM_INCOMPATIBLE_FORMAT: c(K.MEDIUM_ERROR, 0x30, 0x02, 'CANNOT READ MEDIUM - INCOMPATIBLE FORMAT'),
  CANNOT_WRITE_MEDIUM_INCOMPATIBLE_FORMAT: c(K.DATA_PROTECT, 0x30, 0x05, 'CANNOT WRITE MEDIUM - INCOMPATIBLE FORMAT'),
  WORM_OVERWRITE_ATTEMPTED: c(K.DATA_PROTECT, 0x30, 0x0c, 'WORM MEDIUM - OVERWRITE ATTEMPTED'),
  WORM_INTEGRITY_CHECK: c(K.DATA_PROTECT, 0x30, 0x0d, 'WORM MEDIUM - INTEGRITY CHECK'),
  MEDIUM_FORMAT_CORRUPTED: c(K.MEDIUM_ERROR, 0x31, 0x00, 'MEDIUM FORMAT CORRUPTED'),
  MEDIUM_NOT_PRESENT: c(K.NOT_READY, 0x3a, 0x00, 'MEDIUM NOT PRESENT'),
  MEDIUM_NOT_PRESENT_TRAY_OPEN: c(K.NOT_READY, 0x3a, 0x02, 'MEDIUM NOT PRESENT - TRAY OPEN'),
  SEQUENTIAL_POSITIONING_ERROR: c(K.MEDIUM_ERROR, 0x3b, 0x00, 'SEQUENTIAL POSITIONING ERROR'),
  MEDIUM_DESTINATION_ELEMENT_FULL: c(K.ILLEGAL_REQUEST, 0x3b, 0x0d, 'MEDIUM DESTINATION ELEMENT FULL'),
  MEDIUM_SOURCE_ELEMENT_EMPTY: c(K.ILLEGAL_REQUEST, 0x3b, 0x0e, 'MEDIUM SOURCE ELEMENT EMPTY'),
  MEDIUM_MAGAZINE_NOT_ACCESSIBLE: c(K.NOT_READY, 0x3b, 0x11, 'MEDIUM MAGAZINE NOT ACCESSIBLE'),
  MEDIUM_MAGAZINE_REMOVED: c(K.UNIT_ATTENTION, 0x3b, 0x12, 'MEDIUM MAGAZINE REMOVED'),
  MEDIUM_MAGAZINE_INSERTED: c(K.UNIT_ATTENTION, 0x3b, 0x13, 'MEDIUM MAGAZINE INSERTED'),
  REPORTED_LUNS_DATA_CHANGED: c(K.UNIT_ATTENTION, 0x3f, 0x0e, 'REPORTED LUNS DATA HAS CHANGED'),
  INTERNAL_TARGET_FAILURE: c(K.HARDWARE_ERROR, 0x44, 0x00, 'INTERNAL TARGET FAILURE'),
  INFORMATION_UNIT_CRC_ERROR: c(K.ABORTED_COMMAND, 0x47, 0x03, 'INFORMATION UNIT iuCRC ERROR DETECTED'),
  DATA_PHASE_ERROR: c(K.ABORTED_COMMAND, 0x4b, 0x00, 'DATA PHASE ERROR'),
  OVERLAPPED_COMMANDS_ATTEMPTED: c(K.ABORTED_COMMAND, 0x4e, 0x00, 'OVERLAPPED COMMANDS ATTEMPTED'),
  MEDIA_LOAD_OR_EJECT_FAILED: c(K.HARDWARE_ERROR, 0x53, 0x00, 'MEDIA LOAD OR EJECT FAILED'),
  MEDIUM_REMOVAL_PREVENTED: c(K.ILLEGAL_REQUEST, 0x53, 0x02, 'MEDIUM REMOVAL PREVENTED'),
  FAILURE_PREDICTION_THRESHOLD_EXCEEDED: c(K.UNIT_ATTENTION, 0x5d, 0x00, 'FAILURE PREDICTION THRESHOLD EXCEEDED'),
  VOLUME_OVERFLOW_EOM: c(K.VOLUME_OVERFLOW, 0x00, 0x02, 'END-OF-PARTITION/MEDIUM DETECTED'),
  SAVING_PARAMETERS_NOT_SUPPORTED: c(K.ILLEGAL_REQUEST, 0x39, 0x00, 'SAVING PARAMETERS NOT SUPPORTED'),
  INVALID_RELEASE_OF_PERSISTENT_RESERVATION: c(K.ILLEGAL_REQUEST, 0x26, 0x04, 'INVALID RELEASE OF PERSISTENT RESERVATION'),
} as const satisfies Record<string, SenseCode>;
export type SenseName = keyof typeof Sense;

const byAscAscq = new Map<number, SenseCode>();
for (const code of Object.values(Sense)) {
  const k = (code.asc << 8) | code.ascq;
  if (!byAscAscq.has(k)) byAscAscq.set(k, code);
}

/** SPC name of an ASC/ASCQ pair, or `ASC 0x.. ASCQ 0x..` when not catalogued. */
export function ascName(asc: number, ascq: number): string {
  return byAscAscq.get((asc << 8) | ascq)?.name ?? `ASC 0x${hex2(asc)} ASCQ 0x${hex2(ascq)}`;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** The sense-key specific field of ILLEGAL REQUEST: where in the CDB or parameter list. */
export interface FieldPointer {
  /** true: the error is in the CDB; false: in the parameter list (Data-Out). */
  readonly inCdb: boolean;
  /** Byte offset of the offending field. */
  readonly byte: number;
  /** Bit (0-7) of the offending field's most significant bit, when known. */
  readonly bit?: number;
}

/** A decoded (or to-be-encoded) sense: the condition plus the stream and info fields. */
export interface SenseData {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  /** Current (false) or deferred (true) error. */
  readonly deferred?: boolean;
  readonly filemark?: boolean;
  /** End-of-medium (EOM): early warning or end of partition was reached. */
  readonly eom?: boolean;
  /** Incorrect length indicator: the block's length differed from the request. */
  readonly ili?: boolean;
  /**
   * The INFORMATION field (valid when set): for READ/WRITE/SPACE the residue in blocks,
   * bytes or filemarks as SSC defines; signed.
   */
  readonly information?: number | bigint;
  readonly commandSpecific?: number;
  readonly fieldPointer?: FieldPointer;
  /** Progress indication (0..65535) for NOT READY / becoming ready. */
  readonly progress?: number;
}

export const SenseFormat = { fixed: 'fixed', descriptor: 'descriptor' } as const;
export type SenseFormat = (typeof SenseFormat)[keyof typeof SenseFormat];

/** Builds a SenseData from a catalogue entry plus any extra fields. */
export function sense(code: SenseCode, extra: Omit<SenseData, 'key' | 'asc' | 'ascq'> = {}): SenseData {
  return { key: code.key, asc: code.asc, ascq: code.ascq, ...extra };
}

function sksBytes(s: SenseData): Uint8Array | undefined {
  if (s.fieldPointer) {
    const fp = s.fieldPointer;
    const b = new Uint8Array(3);
    b[0] = 0x80 | (fp.inCdb ? 0x40 : 0) | (fp.bit !== undefined ? 0x08 | (fp.bit & 7) : 0);
    setU16(b, 1, fp.byte);
    return b;
  }
  if (s.progress !== undefined) {
    const b = new Uint8Array(3);
    b[0] = 0x80;
    setU16(b, 1, s.progress);
    return b;
  }
  return undefined;
}

/** Encodes sense data. Fixed format is 18 bytes; descriptor format varies. */
export function encodeSense(s: SenseData, format: SenseFormat = 'fixed'): Uint8Array {
  const sks = sksBytes(s);
  if (format === 'fixed') {
    const b = new Uint8Array(18);
    const info = s.information;
    const infoFits = info !== undefined && BigInt(info) >= -(2n ** 31n) && BigInt(info) < 2n ** 32n;
    b[0] = (infoFits ? 0x80 : 0) | (s.deferred ? 0x71 : 0x70);
    b[2] = (s.filemark ? 0x80 : 0) | (s.eom ? 0x40 : 0) | (s.ili ? 0x20 : 0) | (s.key & 0x0f);
    if (infoFits) setU32(b, 3, Number(BigInt.asUintN(32, BigInt(info))));
    b[7] = 10;
    if (s.commandSpecific !== undefined) setU32(b, 8, s.commandSpecific >>> 0);
    b[12] = s.asc;
    b[13] = s.ascq;
    if (sks) b.set(sks, 15);
    return b;
  }
  const parts: Uint8Array[] = [];
  if (s.information !== undefined) {
    const d = new Uint8Array(12);
    d[0] = 0x00;
    d[1] = 0x0a;
    d[2] = 0x80;
    setU64(d, 4, BigInt(s.information));
    parts.push(d);
  }
  if (s.commandSpecific !== undefined) {
    const d = new Uint8Array(12);
    d[0] = 0x01;
    d[1] = 0x0a;
    setU64(d, 4, BigInt(s.commandSpecific >>> 0));
    parts.push(d);
  }
  if (sks) {
    const d = new Uint8Array(8);
    d[0] = 0x02;
    d[1] = 0x06;
    d.set(sks, 4);
    parts.push(d);
  }
  if (s.filemark || s.eom || s.ili) {
    const d = new Uint8Array(4);
    d[0] = 0x04;
    d[1] = 0x02;
    d[3] = (s.filemark ? 0x80 : 0) | (s.eom ? 0x40 : 0) | (s.ili ? 0x20 : 0);
    parts.push(d);
  }
  const len = parts.reduce((n, p) => n + p.length, 0);
  const b = new Uint8Array(8 + len);
  b[0] = s.deferred ? 0x73 : 0x72;
  b[1] = s.key & 0x0f;
  b[2] = s.asc;
  b[3] = s.ascq;
  b[7] = len;
  let off = 8;
  for (const p of parts) {
    b.set(p, off);
    off += p.length;
  }
  return b;
}

/** Error thrown by {@link decodeSense} for bytes that are not sense data. */
export class SenseFormatError extends Error {
  override readonly name = 'SenseFormatError';
  readonly code = 'ESENSEFORMAT';
}

function decodeSks(b: Uint8Array, off: number, key: number): Pick<SenseData, 'fieldPointer' | 'progress'> {
  const b0 = b[off] ?? 0;
  if (!(b0 & 0x80)) return {};
  const v = getU16(b, off + 1);
  if (key === SenseKey.ILLEGAL_REQUEST) {
    return { fieldPointer: { inCdb: (b0 & 0x40) !== 0, byte: v, ...(b0 & 0x08 ? { bit: b0 & 7 } : {}) } };
  }
  if (key === SenseKey.NOT_READY || key === SenseKey.NO_SENSE) return { progress: v };
  return {};
}

/**
 * Decodes fixed or descriptor sense data. Tolerates truncation (sense is often cut to the
 * allocation length) but rejects bytes whose response code is not a sense format.
 */
export function decodeSense(b: Uint8Array): SenseData & { format: SenseFormat } {
  if (b.length < 1) throw new SenseFormatError('sense data is empty');
  const rc = (b[0] ?? 0) & 0x7f;
  if (rc === 0x70 || rc === 0x71) {
    if (b.length < 3) throw new SenseFormatError(`fixed-format sense truncated to ${b.length} bytes (need at least 3)`);
    const b2 = b[2] ?? 0;
    const key = b2 & 0x0f;
    const valid = ((b[0] ?? 0) & 0x80) !== 0 && b.length >= 7;
    const raw = getU32(b, 3);
    const addLen = b[7] ?? 0;
    return {
      format: 'fixed',
      key,
      asc: b.length > 12 ? (b[12] ?? 0) : 0,
      ascq: b.length > 13 ? (b[13] ?? 0) : 0,
      deferred: rc === 0x71,
      filemark: (b2 & 0x80) !== 0,
      eom: (b2 & 0x40) !== 0,
      ili: (b2 & 0x20) !== 0,
      ...(valid ? { information: raw | 0 } : {}),
      ...(addLen >= 4 && b.length >= 12 ? { commandSpecific: getU32(b, 8) } : {}),
      ...(addLen >= 10 && b.length >= 18 ? decodeSks(b, 15, key) : {}),
    };
  }
  if (rc === 0x72 || rc === 0x73) {
    if (b.length < 4) throw new SenseFormatError(`descriptor-format sense truncated to ${b.length} bytes (need at least 4)`);
    const key = (b[1] ?? 0) & 0x0f;
    let out: SenseData & { format: SenseFormat } = {
      format: 'descriptor',
      key,
      asc: b[2] ?? 0,
      ascq: b[3] ?? 0,
      deferred: rc === 0x73,
      filemark: false,
      eom: false,
      ili: false,
    };
    const end = Math.min(b.length, 8 + (b[7] ?? 0));
    let off = 8;
    while (off + 2 <= end) {
      const type = b[off] ?? 0;
      const len = b[off + 1] ?? 0;
      if (off + 2 + len > end) break;
      if (type === 0x00 && len >= 0x0a && ((b[off + 2] ?? 0) & 0x80)) {
        out = { ...out, information: BigInt.asIntN(64, getU64(b, off + 4)) };
      } else if (type === 0x01 && len >= 0x0a) {
        out = { ...out, commandSpecific: Number(getU64(b, off + 4) & 0xffffffffn) };
      } else if (type === 0x02 && len >= 0x06) {
        out = { ...out, ...decodeSks(b, off + 4, key) };
      } else if (type === 0x04 && len >= 0x02) {
        const f = b[off + 3] ?? 0;
        out = { ...out, filemark: (f & 0x80) !== 0, eom: (f & 0x40) !== 0, ili: (f & 0x20) !== 0 };
      }
      off += 2 + len;
    }
    return out;
  }
  throw new SenseFormatError(`response code 0x${hex2(rc)} is not a sense data format (expected 70h-73h)`);
}

/** `ILLEGAL REQUEST / INVALID FIELD IN CDB` style description, for logs and errors. */
export function describeSense(s: Pick<SenseData, 'key' | 'asc' | 'ascq'>): string {
  return `${senseKeyName(s.key)} / ${ascName(s.asc, s.ascq)}`;
}

/** True when `s` is the catalogued condition `code` (key, ASC and ASCQ all equal). */
export function isSense(s: Pick<SenseData, 'key' | 'asc' | 'ascq'>, code: SenseCode): boolean {
  return s.key === code.key && s.asc === code.asc && s.ascq === code.ascq;
}
