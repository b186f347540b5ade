/** Small pieces every module of the target shares. */
import { BHS_LENGTH } from '../../../src/iscsi/constants.js';
import { encodePdu, type LogoutRequestPdu, type NopOutPdu, type Pdu, type ScsiCommandPdu, type TaskMgmtRequestPdu, type TextRequestPdu } from '../../../src/iscsi/pdu.js';

export const EMPTY = new Uint8Array(0);

/** Settled once: `.then` on it queues a microtask. */
export const RESOLVED: Promise<void> = Promise.resolve();

/** The PDUs that take a CmdSN (RFC 7143 4.2.2.1). */
export type OrderedPdu = NopOutPdu | ScsiCommandPdu | TaskMgmtRequestPdu | TextRequestPdu | LogoutRequestPdu;

/**
 * The BHS a Reject sends back, rebuilt from a decoded PDU: re-encoding loses nothing a
 * Reject needs, since the initiator matches it by opcode and ITT.
 */
export function headerOf(p: Pdu): Uint8Array {
  return Uint8Array.from(encodePdu({ ...p, data: EMPTY, ahs: EMPTY }).subarray(0, BHS_LENGTH));
}
