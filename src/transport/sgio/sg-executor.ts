/**
 * The low-level SG_IO executor under {@link SgioPort}: one ioctl per command, raw
 * results, no interpretation. Injectable, so the port's status triage, timeout and
 * cancellation mapping are tested without a SCSI device.
 */
import { native } from '../../native.js';
import type { NativeSgDevice } from '../../native.js';
import type { DataDirection } from '../scsi-port.js';

export interface SgCommand {
  readonly cdb: Uint8Array;
  readonly direction: DataDirection;
  /** Required when direction is `out`; read in place, so leave it alone until settled. */
  readonly dataOut?: Uint8Array;
  /** Data-In buffer size (0 unless direction is `in`). */
  readonly dataInLength: number;
  /** Kernel timeout, milliseconds: on expiry the midlayer aborts the command (DID_TIME_OUT). */
  readonly timeoutMs: number;
}

/** What the sg driver reported for one SG_IO, uninterpreted. */
export interface SgCompletion {
  readonly status: number;
  readonly hostStatus: number;
  readonly driverStatus: number;
  readonly sense: Uint8Array;
  /** The whole Data-In buffer; the first `dataInLength - resid` bytes are valid. */
  readonly data: Uint8Array;
  readonly resid: number;
  readonly durationNs: number;
  readonly info: number;
}

/**
 * Runs SG_IO commands on one open node.
 *
 * - `execute` resolves with whatever the driver reported, whatever the statuses; it
 *   rejects only when the ioctl itself fails, with an `Error` carrying the OS `code`,
 *   `errno` and `syscall`. It cannot be cancelled: the ioctl runs to completion or to its
 *   kernel timeout.
 * - `close` releases the node once the commands in flight have returned (the descriptor
 *   stays open under a running ioctl); later `execute` calls throw with code `ECLOSED`.
 */
export interface SgExecutor {
  execute(command: SgCommand): Promise<SgCompletion>;
  close(): void;
}

const directionCode = { none: 0, in: 1, out: 2 } as const;

class NativeSgExecutor implements SgExecutor {
  readonly #device: NativeSgDevice;
  constructor(device: NativeSgDevice) {
    this.#device = device;
  }
  execute(c: SgCommand): Promise<SgCompletion> {
    return this.#device.execute(c.cdb, directionCode[c.direction], c.dataOut ?? null, c.dataInLength, c.timeoutMs);
  }
  close(): void {
    this.#device.close();
  }
}

/**
 * Opens `path` (`/dev/sgN`, `/dev/nstN`, `/dev/schN`) read-write and non-blocking and
 * checks it speaks sg v3. Rejects with the OS error: `ENOENT`, `EACCES`, `EBUSY`...,
 * and `ENOTTY` when the node is not a SCSI generic device.
 */
export async function openNativeExecutor(path: string): Promise<SgExecutor> {
  return new NativeSgExecutor(await native.sgOpen(path));
}
