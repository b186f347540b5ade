/**
 * Running one command on a {@link ScsiPort} and sorting its outcome: GOOD data, a CHECK
 * CONDITION as decoded sense, or a typed error. The device clients are built on these two
 * helpers, so every client maps statuses and sense the same way.
 */
import { Cdb, decodeSense, opcodeName, ScsiStatus, SenseKey } from '../scsi/index.js';
import type { Command } from '../scsi/index.js';
import { ScsiParseError } from '../scsi/parse-common.js';
import type { ScsiPort } from '../transport/scsi-port.js';
import { ResponseFormatError, SenseError, StatusError, VolumeOverflowError } from './errors.js';
import type { CommandInfo, DecodedSense } from './errors.js';

/** Per-call options. Both go to the port unchanged; see `ScsiRequest`. */
export interface CallOptions {
  /** Cancels the command; the port rejects with `TransportError` code `ECANCELED`. */
  readonly signal?: AbortSignal;
  /** Milliseconds before the port gives up; it rejects with `TransportError` code `ETIMEDOUT`. */
  readonly timeoutMs?: number;
}

/** A command that came back GOOD (or CONDITION MET). */
export interface GoodOutcome {
  readonly kind: 'good';
  readonly data: Uint8Array;
  readonly residual: number;
}

/** A command that came back CHECK CONDITION, with its sense decoded. */
export interface CheckOutcome {
  readonly kind: 'check';
  readonly data: Uint8Array;
  readonly residual: number;
  readonly sense: DecodedSense;
  readonly info: CommandInfo;
}

export type Outcome = GoodOutcome | CheckOutcome;

/** Describes a command for error messages. */
export function commandInfo(command: Command, deviceType: number): CommandInfo {
  const opcode = command.cdb[0] ?? 0;
  return { opcode, commandName: opcodeName(deviceType, opcode), cdb: command.cdb };
}

/**
 * Executes `command` and returns GOOD or CHECK CONDITION as an {@link Outcome}.
 *
 * - Timeout, cancellation and path failures: the port's `TransportError` passes through.
 * - Any other status: throws {@link StatusError}.
 * - CHECK CONDITION without autosense: fetches the sense with REQUEST SENSE once; sense
 *   that cannot be decoded throws {@link StatusError} with the decoding error as `cause`.
 */
export async function issue(port: ScsiPort, command: Command, deviceType: number, opts: CallOptions = {}): Promise<Outcome> {
  const info = commandInfo(command, deviceType);
  const response = await port.execute({
    cdb: command.cdb,
    direction: command.direction,
    ...(command.dataOut !== undefined ? { dataOut: command.dataOut } : {}),
    ...(command.dataInLength !== undefined ? { dataInLength: command.dataInLength } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
  });
  if (response.status === ScsiStatus.GOOD || response.status === ScsiStatus.CONDITION_MET) {
    return { kind: 'good', data: response.data, residual: response.residual };
  }
  if (response.status !== ScsiStatus.CHECK_CONDITION) throw new StatusError(response.status, info);
  let senseBytes = response.sense;
  if (senseBytes.length === 0) {
    // Transports without autosense leave the sense with the device until REQUEST SENSE.
    const rs = Cdb.requestSense();
    const r = await port.execute({ cdb: rs.cdb, direction: 'in', dataInLength: rs.dataInLength ?? 252, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.signal !== undefined ? { signal: opts.signal } : {}) });
    if (r.status !== ScsiStatus.GOOD || r.data.length === 0) throw new StatusError(response.status, info, { detail: 'no sense data' });
    senseBytes = r.data;
  }
  let sense: DecodedSense;
  try {
    sense = decodeSense(senseBytes);
  } catch (e) {
    throw new StatusError(response.status, info, { detail: 'sense data unreadable', cause: e });
  }
  return { kind: 'check', data: response.data, residual: response.residual, sense, info };
}

/** The typed error for a CHECK CONDITION the caller does not treat as a result. */
export function senseError(outcome: CheckOutcome): SenseError {
  if (outcome.sense.key === SenseKey.VOLUME_OVERFLOW) return new VolumeOverflowError(outcome.sense, outcome.info);
  return new SenseError(outcome.sense, outcome.info);
}

/**
 * Executes `command` and returns its Data-In bytes; any CHECK CONDITION throws
 * {@link SenseError} (or {@link VolumeOverflowError}), other statuses {@link StatusError};
 * `TransportError` from the port (timeout, cancel, path) passes through unchanged.
 */
export async function run(port: ScsiPort, command: Command, deviceType: number, opts: CallOptions = {}): Promise<Uint8Array> {
  const outcome = await issue(port, command, deviceType, opts);
  if (outcome.kind === 'check') throw senseError(outcome);
  return outcome.data;
}

/** Applies a parser to a command's data; a format error becomes {@link ResponseFormatError}. */
export function parseWith<T>(command: Command, deviceType: number, data: Uint8Array, parse: (b: Uint8Array) => T): T {
  try {
    return parse(data);
  } catch (e) {
    if (e instanceof ScsiParseError) throw new ResponseFormatError(commandInfo(command, deviceType), e.message, { cause: e });
    throw e;
  }
}
