/**
 * Errors the device clients raise when a command reaches the device and comes back with
 * something other than success. Failures of the path itself (timeouts, cancellation,
 * lost connections) are `TransportError`s from the port and pass through unchanged.
 */
import { ascName, senseKeyName, SenseKey, statusName, ScsiStatus } from '../scsi/index.js';
import type { FieldPointer, SenseData, SenseFormat } from '../scsi/index.js';

/** Decoded sense as the clients keep it. */
export type DecodedSense = SenseData & { readonly format: SenseFormat };

/** Which command failed, for messages and for callers that branch on it. */
export interface CommandInfo {
  readonly opcode: number;
  /** Trace name for the device type, e.g. `WRITE(6)`, `MOVE MEDIUM`. */
  readonly commandName: string;
  readonly cdb: Uint8Array;
}

/** Normalises the INFORMATION field: descriptor sense gives a bigint, fixed a number. */
export function informationOf(s: SenseData): number | undefined {
  if (s.information === undefined) return undefined;
  return typeof s.information === 'bigint' ? Number(s.information) : s.information;
}

/**
 * A command ended in CHECK CONDITION with a condition the client does not treat as a
 * result. Carries the decoded sense and the names of key and ASC/ASCQ, so a log line or
 * a test reads `MEDIUM ERROR / WRITE ERROR` rather than numbers.
 *
 * Never raised for timeouts or cancellation (those are the port's `TransportError`).
 */
export class SenseError extends Error {
  override readonly name: string = 'SenseError';
  readonly code: string = 'ESENSE';
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  readonly keyName: string;
  readonly ascName: string;
  readonly filemark: boolean;
  readonly eom: boolean;
  readonly ili: boolean;
  readonly deferred: boolean;
  /** INFORMATION field when valid (residue for READ/WRITE/SPACE), as a number. */
  readonly information?: number;
  /** ILLEGAL REQUEST only: where in the CDB or parameter list the device objected. */
  readonly fieldPointer?: FieldPointer;
  /** Progress indication, when the device gave one (NOT READY, becoming ready). */
  readonly progress?: number;
  readonly sense: DecodedSense;
  readonly opcode: number;
  readonly commandName: string;
  readonly cdb: Uint8Array;

  constructor(sense: DecodedSense, command: CommandInfo, options?: { cause?: unknown; message?: string }) {
    const keyName = senseKeyName(sense.key);
    const asc = ascName(sense.asc, sense.ascq);
    super(options?.message ?? `${keyName} / ${asc} (${command.commandName})`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.key = sense.key;
    this.asc = sense.asc;
    this.ascq = sense.ascq;
    this.keyName = keyName;
    this.ascName = asc;
    this.filemark = sense.filemark ?? false;
    this.eom = sense.eom ?? false;
    this.ili = sense.ili ?? false;
    this.deferred = sense.deferred ?? false;
    const info = informationOf(sense);
    if (info !== undefined) this.information = info;
    if (sense.fieldPointer) this.fieldPointer = sense.fieldPointer;
    if (sense.progress !== undefined) this.progress = sense.progress;
    this.sense = sense;
    this.opcode = command.opcode;
    this.commandName = command.commandName;
    this.cdb = command.cdb;
  }

  /** True when the sense is the catalogued condition (key, ASC and ASCQ all equal). */
  is(code: { key: number; asc: number; ascq: number }): boolean {
    return this.key === code.key && this.asc === code.asc && this.ascq === code.ascq;
  }
}

/**
 * A WRITE or WRITE FILEMARKS ran into the physical end of the partition (sense key
 * VOLUME OVERFLOW). `notWritten` is the residue the device reported (blocks in fixed
 * mode, bytes in variable mode, filemarks for WRITE FILEMARKS) when it reported one.
 */
export class VolumeOverflowError extends SenseError {
  override readonly name: string = 'VolumeOverflowError';
  override readonly code: string = 'EVOLOVERFLOW';
  readonly notWritten?: number;

  constructor(sense: DecodedSense, command: CommandInfo, options?: { cause?: unknown }) {
    super(sense, command, { ...options, message: `${senseKeyName(SenseKey.VOLUME_OVERFLOW)} / ${ascName(sense.asc, sense.ascq)} (${command.commandName})` });
    const info = informationOf(sense);
    if (info !== undefined) this.notWritten = info;
  }
}

const statusCodes: Record<number, string> = {
  [ScsiStatus.BUSY]: 'EBUSY',
  [ScsiStatus.RESERVATION_CONFLICT]: 'ERESERVATION',
  [ScsiStatus.TASK_SET_FULL]: 'ETASKSETFULL',
  [ScsiStatus.ACA_ACTIVE]: 'EACAACTIVE',
  [ScsiStatus.TASK_ABORTED]: 'ETASKABORTED',
};

/**
 * A command completed with a status other than GOOD, CONDITION MET or CHECK CONDITION
 * (BUSY, RESERVATION CONFLICT, TASK SET FULL, ACA ACTIVE, TASK ABORTED), or with CHECK
 * CONDITION but no readable sense (then `cause` holds the decoding error). The clients
 * never retry these by themselves: whether to wait and retry BUSY is the caller's policy.
 */
export class StatusError extends Error {
  override readonly name = 'StatusError';
  readonly code: string;
  readonly status: number;
  readonly statusName: string;
  readonly opcode: number;
  readonly commandName: string;
  readonly cdb: Uint8Array;

  constructor(status: number, command: CommandInfo, options?: { cause?: unknown; detail?: string }) {
    const name = statusName(status);
    super(`${name} (${command.commandName})${options?.detail ? `: ${options.detail}` : ''}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.statusName = name;
    this.code = statusCodes[status] ?? 'ESTATUS';
    this.opcode = command.opcode;
    this.commandName = command.commandName;
    this.cdb = command.cdb;
  }
}

/**
 * Parameter data from the device could not be decoded as the standard format. The
 * command itself succeeded; `cause` holds the parser's error.
 */
export class ResponseFormatError extends Error {
  override readonly name = 'ResponseFormatError';
  readonly code = 'ERESPONSE';
  readonly commandName: string;

  constructor(command: Pick<CommandInfo, 'commandName'>, message: string, options?: { cause?: unknown }) {
    super(`${command.commandName}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.commandName = command.commandName;
  }
}

/** True when `e` is a {@link SenseError} for the catalogued condition `code` (or any, without one). */
export function isSenseError(e: unknown, code?: { key: number; asc: number; ascq: number }): e is SenseError {
  return e instanceof SenseError && (code === undefined || e.is(code));
}
