/** Errors of the iSCSI layer. Transport-level failures of commands use `TransportError`. */
import { loginStatusName } from './constants.js';

/** Login refused by the target, or by us for a target that broke the rules. */
export class LoginError extends Error {
  override readonly name = 'LoginError';
  readonly code = 'ELOGIN';
  /** Status-Class << 8 | Status-Detail (see `LoginStatus`); 0x0200 for our own refusals. */
  readonly status: number;
  constructor(status: number, message?: string, options?: { cause?: unknown }) {
    super(message ?? `login failed: ${loginStatusName(status)} (0x${status.toString(16).padStart(4, '0')})`, options);
    this.status = status;
  }
  get statusClass(): number {
    return this.status >> 8;
  }
  get statusDetail(): number {
    return this.status & 0xff;
  }
}

/** The peer broke the protocol (bad PDU, answer to something never asked). */
export class IscsiProtocolError extends Error {
  override readonly name = 'IscsiProtocolError';
  readonly code = 'EPROTO';
}
