/**
 * What a virtual drive needs of its VTC: the agent's host API (mount, block I/O, close)
 * and its view of the PtP system. {@link VtcAgent} has it all; tests may pass a stand-in.
 * Also how the agent's errors become the sense a host sees.
 */
import { Sense, sense } from '../../scsi/sense.js';
import type { SenseData } from '../../scsi/sense.js';
import type { HostHandle, VtcAgent } from '../agent.js';
import { codeOf } from '../errors.js';

/**
 * `write(h, data)` reads `data` only while it runs, before it returns its promise (the RPC
 * seals it into a frame, or copies it): the virtual drive passes the target's pooled Data-Out
 * buffer, reused as soon as the WRITE is answered, with the block maybe still on its way.
 * A stand-in must keep that contract (copy the block if it keeps it).
 */
export type HostPath = Pick<VtcAgent, 'self' | 'mount' | 'write' | 'writeFilemark' | 'read' | 'rewind' | 'close' | 'engine'> & {
  /**
   * Ends a mount without committing what it wrote. Used when present: a write the host was
   * told failed must not become a generation. (VtcAgent does not have it yet; see
   * docs/host-library.md, Known limits.)
   */
  readonly abandon?: (h: HostHandle) => Promise<unknown>;
};

/**
 * The message of the agent's refusal to mount, for reading, a volume no VTS holds any
 * generation of (planRead in src/ptp/volumes.ts): the volume is blank, not unavailable.
 */
export const NO_GENERATION_REASON = 'no VTS in service holds the volume';

/** True for the agent's answer to a read mount of a volume never written. */
export function isBlankVolume(e: unknown): boolean {
  return codeOf(e) === 'EVTC_OFFLINE' && e instanceof Error && e.message.endsWith(NO_GENERATION_REASON);
}

/**
 * Errors after which the VTS no longer holds the mount (aborted by a VTS going out, the VTS
 * or the link gone, the handle unknown there): a read-only mount is made again elsewhere.
 */
const MOUNT_LOST = new Set(['EMOUNTABORTED', 'EVTSOUT', 'EVTC_UNREACHABLE', 'EVTC_TIMEOUT', 'EBADHANDLE', 'ESTALERUN', 'EFENCED', 'ECLOSED', 'EVTC_BAD_REQUEST']);
export const mountLost = (e: unknown): boolean => MOUNT_LOST.has(codeOf(e));

/**
 * NOT READY while the PtP system cannot serve the volume: OFFLINE (04/12) when the PtP
 * system is off-line, IN PROCESS OF BECOMING READY (04/01) while a VTS is unreachable, this
 * VTC catches up with a newer key, or a mount is refused for a while (limits, in use).
 */
export function notReadySense(e: unknown): SenseData {
  return sense(codeOf(e) === 'EVTC_OFFLINE' && e instanceof Error && /off-line/.test(e.message) ? Sense.NOT_READY_OFFLINE : Sense.BECOMING_READY);
}
