/**
 * The iSCSI binding of {@link ScsiPort}: one LUN of one target, over an {@link IscsiSession}
 * that several ports may share (one per LUN of a library, one session).
 */
import { IscsiSession, type IscsiSessionOptions } from '../../iscsi/session.js';
import { TransportError, validateRequest, type ScsiPort, type ScsiRequest, type ScsiResponse } from '../scsi-port.js';

export interface IscsiPortOptions extends IscsiSessionOptions {
  readonly lun: number;
}

/**
 * A logical unit behind an iSCSI target.
 *
 * - Timeout: `request.timeoutMs` (default: the session's `defaultTimeoutMs`, 30 s) aborts
 *   the command with ABORT TASK, then rejects with `ETIMEDOUT`.
 * - Cancel: `request.signal` aborts the same way and rejects with `ECANCELED`.
 * - Error: a lost connection rejects the command with `ECONNRESET` (never retried; the
 *   next command logs in again); a protocol violation with `EPROTO`; after `close()`,
 *   `ECLOSED`. CHECK CONDITION resolves with the sense bytes.
 */
export class IscsiPort implements ScsiPort {
  readonly address: string;
  private closed = false;

  /** `ownsSession`: close the session with the port (true when the port made it). */
  constructor(
    readonly session: IscsiSession,
    readonly lun: number,
    private readonly ownsSession = false,
  ) {
    this.address = `${session.address}/lun${lun}`;
  }

  async execute(request: ScsiRequest): Promise<ScsiResponse> {
    if (this.closed) throw new TransportError('ECLOSED', `${this.address} is closed`);
    validateRequest(request);
    const started = process.hrtime.bigint();
    const r = await this.session.execute({
      lun: this.lun,
      cdb: request.cdb,
      direction: request.direction,
      ...(request.direction === 'out' && request.dataOut ? { dataOut: request.dataOut } : {}),
      ...(request.direction === 'in' ? { dataInLength: request.dataInLength ?? 0 } : {}),
      ...(request.timeoutMs !== undefined ? { timeoutMs: request.timeoutMs } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    });
    return { status: r.status, data: r.data, sense: r.sense, residual: r.residual, durationNs: process.hrtime.bigint() - started };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsSession) await this.session.close();
  }
}

/** Logs in and returns a port to `options.lun`. Rejects with `LoginError` or `TransportError`. */
export async function openIscsiPort(options: IscsiPortOptions): Promise<IscsiPort> {
  const session = await IscsiSession.open(options);
  return new IscsiPort(session, options.lun, true);
}
