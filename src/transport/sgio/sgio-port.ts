/**
 * {@link ScsiPort} over Linux SG_IO (sg v3): real tape drives and libraries through
 * `/dev/sgN`, `/dev/nstN` or `/dev/schN`.
 *
 * Completion triage, in the order the midlayer defines it: host status, then driver
 * status, then SCSI status. A host or driver failure rejects; any SCSI status, CHECK
 * CONDITION included, resolves with the sense bytes.
 */
import { TransportError, validateRequest } from '../scsi-port.js';
import type { ScsiPort, ScsiRequest, ScsiResponse } from '../scsi-port.js';
import { openNativeExecutor } from './sg-executor.js';
import type { SgCommand, SgCompletion, SgExecutor } from './sg-executor.js';
import { DriverStatus, HostStatus, driverStatusName, hostStatusName } from './sg-status.js';

/** The sg driver's CDB limit (cmd_len is a byte and the driver caps it at 252). */
export const SG_MAX_CDB = 252;
/** Kernel timeouts are a u32 of milliseconds. */
const MAX_TIMEOUT_MS = 0xffffffff;

export interface SgioPortOptions {
  /**
   * Timeout for requests that carry none, in milliseconds; default 60 000. Tape motion
   * (LOCATE, REWIND, ERASE, a library move) can take far longer: callers pass their own.
   */
  readonly defaultTimeoutMs?: number;
}

/** Turns an OS error from the executor into a {@link TransportError} keeping its code. */
export function osTransportError(err: unknown, what: string): TransportError {
  if (err instanceof TransportError) return err;
  const e = err as { code?: unknown; errno?: unknown; syscall?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : 'EIO';
  const opts: { cause: unknown; errno?: number; syscall?: string } = { cause: err };
  if (typeof e?.errno === 'number') opts.errno = Math.abs(e.errno);
  if (typeof e?.syscall === 'string') opts.syscall = e.syscall;
  return new TransportError(code, `${what}: ${String(e?.message ?? err)}`, opts);
}

/**
 * Interprets one SG_IO completion: host status, then driver status (DRIVER_SENSE is not a
 * failure), then the SCSI status, which always resolves.
 */
export function interpretCompletion(c: SgCompletion, command: SgCommand, address: string): ScsiResponse {
  const driver = c.driverStatus & 0x0f;
  if (c.hostStatus === HostStatus.DID_TIME_OUT || driver === DriverStatus.DRIVER_TIMEOUT) {
    throw new TransportError(
      'ETIMEDOUT',
      `${address}: command timed out after ${command.timeoutMs} ms (host status ${hostStatusName(c.hostStatus)}, driver status ${driverStatusName(c.driverStatus)}); the midlayer aborted it, its effect on the device is unknown`,
    );
  }
  if (c.hostStatus !== HostStatus.DID_OK) {
    throw new TransportError('EHOSTSTATUS', `${address}: host status ${hostStatusName(c.hostStatus)}`);
  }
  if (driver !== DriverStatus.DRIVER_OK && driver !== DriverStatus.DRIVER_SENSE) {
    throw new TransportError('EDRIVERSTATUS', `${address}: driver status ${driverStatusName(c.driverStatus)}`);
  }
  const expected = command.direction === 'in' ? command.dataInLength : command.direction === 'out' ? (command.dataOut?.length ?? 0) : 0;
  const residual = Math.min(Math.max(0, c.resid), expected);
  const got = command.direction === 'in' ? expected - residual : 0;
  return {
    status: c.status,
    data: got === c.data.length ? c.data : c.data.subarray(0, got),
    sense: c.sense,
    residual,
    durationNs: BigInt(Math.round(c.durationNs)),
  };
}

interface InFlight {
  fail(err: TransportError): void;
}

/**
 * A logical unit behind a SCSI generic node.
 *
 * Timeout: `timeoutMs` (or the port default) goes to the kernel as the SG_IO timeout;
 * when it expires the midlayer aborts the command and reports DID_TIME_OUT, and
 * `execute` rejects with `ETIMEDOUT`.
 *
 * Cancellation: an aborted `signal` rejects at once with `ECANCELED`. The ioctl cannot
 * be interrupted, so the command keeps running in the kernel until it completes or times
 * out and its outcome is unknown; its result is discarded.
 *
 * Errors: bad requests reject with `EINVAL` before anything is sent; a failed ioctl
 * rejects with the OS code (`EIO`, `ENOMEM`...); host and driver failures reject with
 * `EHOSTSTATUS` / `EDRIVERSTATUS` naming the DID_ / DRIVER_ value; after `close()`
 * everything rejects with `ECLOSED`.
 */
export class SgioPort implements ScsiPort {
  readonly address: string;
  readonly #executor: SgExecutor;
  readonly #defaultTimeoutMs: number;
  readonly #inflight = new Set<InFlight>();
  #closed = false;

  /** Wraps an executor; {@link SgioPort.open} is the usual way in. */
  constructor(address: string, executor: SgExecutor, options: SgioPortOptions = {}) {
    const t = options.defaultTimeoutMs ?? 60_000;
    if (!Number.isFinite(t) || t <= 0 || t > MAX_TIMEOUT_MS) {
      throw new TransportError('EINVAL', `defaultTimeoutMs must be a positive number of milliseconds up to 2^32-1 (got ${String(t)})`);
    }
    this.address = address;
    this.#executor = executor;
    this.#defaultTimeoutMs = t;
  }

  /**
   * Opens a SCSI generic node. Rejects with a {@link TransportError} carrying the OS code:
   * `ENOENT` (no such node), `EACCES` (permissions: udev usually gives the `tape` or
   * `disk` group access), `ENOTTY` (not an sg v3 device), `EBUSY`...
   */
  static async open(path: string, options: SgioPortOptions = {}): Promise<SgioPort> {
    if (typeof path !== 'string' || path.length === 0) throw new TransportError('EINVAL', 'path must be a non-empty string');
    let executor: SgExecutor;
    try {
      executor = await openNativeExecutor(path);
    } catch (err) {
      throw osTransportError(err, `cannot open SCSI generic node ${path}`);
    }
    return new SgioPort(`sg:${path}`, executor, options);
  }

  async execute(request: ScsiRequest): Promise<ScsiResponse> {
    validateRequest(request);
    if (request.cdb.length > SG_MAX_CDB) {
      throw new TransportError('EINVAL', `request.cdb length ${request.cdb.length} exceeds the sg driver's ${SG_MAX_CDB}`);
    }
    if (this.#closed) throw new TransportError('ECLOSED', `${this.address} is closed`);
    const timeoutMs = Math.min(MAX_TIMEOUT_MS, Math.ceil(request.timeoutMs ?? this.#defaultTimeoutMs));
    const command: SgCommand = {
      cdb: request.cdb,
      direction: request.direction,
      ...(request.direction === 'out' && request.dataOut !== undefined ? { dataOut: request.dataOut } : {}),
      dataInLength: request.direction === 'in' ? (request.dataInLength ?? 0) : 0,
      timeoutMs,
    };
    const { signal } = request;
    const canceled = () =>
      new TransportError('ECANCELED', `${this.address}: command canceled; SG_IO cannot be interrupted, so whether the device executed it is unknown`, {
        cause: signal?.reason,
      });
    if (signal?.aborted) throw canceled();

    return new Promise<ScsiResponse>((resolve, reject) => {
      let settled = false;
      const entry: InFlight = { fail: (err) => finish(() => reject(err)) };
      const onAbort = () => finish(() => reject(canceled()));
      const finish = (act: () => void) => {
        if (settled) return;
        settled = true;
        this.#inflight.delete(entry);
        signal?.removeEventListener('abort', onAbort);
        act();
      };
      this.#inflight.add(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
      let pending: Promise<SgCompletion>;
      try {
        pending = this.#executor.execute(command);
      } catch (err) {
        finish(() => reject(osTransportError(err, `${this.address}: SG_IO failed`)));
        return;
      }
      pending.then(
        (c) =>
          finish(() => {
            try {
              resolve(interpretCompletion(c, command, this.address));
            } catch (err) {
              reject(err);
            }
          }),
        (err: unknown) => finish(() => reject(osTransportError(err, `${this.address}: SG_IO failed`))),
      );
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [...this.#inflight]) c.fail(new TransportError('ECLOSED', `${this.address} was closed with the command in flight; its outcome is unknown`));
    this.#executor.close();
  }
}
