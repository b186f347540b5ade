/**
 * The one transport contract of ptpvts. Every way of reaching a logical unit (the
 * in-process emulator, iSCSI, Linux SG_IO, USB Bulk-Only) implements {@link ScsiPort},
 * and the conformance suite runs over each of them unchanged.
 *
 * A port addresses exactly one logical unit (an I_T_L nexus): a tape drive or a medium
 * changer. Opening and discovery are binding-specific; executing a command is not.
 */

/** Direction of the data phase of a command, seen from the initiator. */
export const DataDirection = {
  none: 'none',
  /** Data-In: device to initiator (READ, INQUIRY, ...). */
  in: 'in',
  /** Data-Out: initiator to device (WRITE, MODE SELECT, ...). */
  out: 'out',
} as const;
export type DataDirection = (typeof DataDirection)[keyof typeof DataDirection];

/** One SCSI command to execute. */
export interface ScsiRequest {
  /** The command descriptor block, 6 to 16 bytes (up to 260 for variable-length CDBs). */
  readonly cdb: Uint8Array;
  readonly direction: DataDirection;
  /**
   * Data-Out buffer; required when `direction` is `out`, ignored otherwise. Bindings do not
   * copy it (as a socket write does not): leave it unchanged until `execute` settles.
   */
  readonly dataOut?: Uint8Array;
  /**
   * Data-In buffer size: the most bytes the initiator accepts (the expected data transfer
   * length). Required when `direction` is `in`.
   */
  readonly dataInLength?: number;
  /**
   * Milliseconds the command may take before the binding gives up on it. When it expires
   * the binding aborts the command where the transport allows (ABORT TASK, SG_IO timeout,
   * USB reset recovery) and the promise rejects with a {@link TransportError} whose code
   * is `ETIMEDOUT`. Defaults to the binding's own default (documented per binding).
   */
  readonly timeoutMs?: number;
  /**
   * Cancellation. When the signal aborts before completion, the binding aborts the
   * command where the transport allows and the promise rejects with a
   * {@link TransportError} whose code is `ECANCELED`. Whether the device executed the
   * command is then unknown, exactly as on real hardware.
   */
  readonly signal?: AbortSignal;
}

/** The outcome of a command that reached the device and came back with a status. */
export interface ScsiResponse {
  /** SCSI status byte (see `ScsiStatus` in src/scsi). */
  readonly status: number;
  /** Data-In bytes actually transferred (empty for none/out). */
  readonly data: Uint8Array;
  /**
   * Sense data when status is CHECK CONDITION (autosense), otherwise empty. A CHECK
   * CONDITION is data, not a failure of the call: `execute` resolves with it.
   */
  readonly sense: Uint8Array;
  /** Expected transfer length minus the bytes actually transferred (never negative). */
  readonly residual: number;
  /** Wall time the binding spent on the command, in nanoseconds, when it measures it. */
  readonly durationNs?: bigint;
}

/**
 * A logical unit reachable through some transport.
 *
 * Error rules shared by every binding:
 * - A command that completes with any SCSI status (GOOD, CHECK CONDITION, BUSY,
 *   RESERVATION CONFLICT, TASK SET FULL, ...) resolves with a {@link ScsiResponse}.
 * - A failure of the transport (connection lost, host or driver error, timeout,
 *   cancellation, bad arguments) rejects with a {@link TransportError}; the command's
 *   outcome on the device is then unknown and the binding never retries it by itself.
 * - After `close()`, `execute` rejects with code `ECLOSED`.
 */
export interface ScsiPort {
  /** Human-readable address of the unit, for logs: `memory:lib0/drive1`, `iscsi://...`. */
  readonly address: string;
  /** Executes one command. See the interface doc for resolve/reject rules. */
  execute(request: ScsiRequest): Promise<ScsiResponse>;
  /**
   * Releases the binding's resources. Commands still in flight reject with `ECLOSED`.
   * Idempotent.
   */
  close(): Promise<void>;
}

/** Codes carried by {@link TransportError}. OS errors keep their own code (`ENOENT`...). */
export const TransportErrorCode = {
  timeout: 'ETIMEDOUT',
  canceled: 'ECANCELED',
  closed: 'ECLOSED',
  invalidArgument: 'EINVAL',
  connectionLost: 'ECONNRESET',
  protocol: 'EPROTO',
  hostError: 'EHOSTSTATUS',
  driverError: 'EDRIVERSTATUS',
} as const;

/** A failure of the path to the device, as opposed to a SCSI status from the device. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;

  constructor(code: string, message: string, options?: { cause?: unknown; errno?: number; syscall?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.errno !== undefined) this.errno = options.errno;
    if (options?.syscall !== undefined) this.syscall = options.syscall;
  }
}

/**
 * Validates a request the same way in every binding, so bad arguments fail alike
 * everywhere. Throws {@link TransportError} with code `EINVAL` naming the field.
 */
export function validateRequest(request: ScsiRequest): void {
  const { cdb, direction } = request;
  if (!(cdb instanceof Uint8Array)) throw new TransportError('EINVAL', 'request.cdb must be a Uint8Array');
  if (cdb.length < 6 || cdb.length > 260) {
    throw new TransportError('EINVAL', `request.cdb length ${cdb.length} is outside 6..260`);
  }
  if (direction !== 'none' && direction !== 'in' && direction !== 'out') {
    throw new TransportError('EINVAL', `request.direction must be none, in or out (got ${String(direction)})`);
  }
  if (direction === 'out' && !(request.dataOut instanceof Uint8Array)) {
    throw new TransportError('EINVAL', 'request.dataOut must be a Uint8Array when direction is out');
  }
  if (direction === 'in') {
    const n = request.dataInLength;
    if (n === undefined || !Number.isInteger(n) || n < 0 || n > 0x7fffffff) {
      throw new TransportError('EINVAL', `request.dataInLength must be an integer 0..2^31-1 when direction is in (got ${String(n)})`);
    }
  }
  if (request.timeoutMs !== undefined && (!Number.isFinite(request.timeoutMs) || request.timeoutMs <= 0)) {
    throw new TransportError('EINVAL', `request.timeoutMs must be a positive number (got ${String(request.timeoutMs)})`);
  }
}
