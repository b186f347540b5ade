/**
 * The session's command window (RFC 7143 4.2.2.1): PDUs that take a CmdSN are handled in
 * CmdSN order; one that comes early waits here until those before it have come, one
 * outside the window or already seen is ignored. MaxCmdSN leaves room for `size` commands
 * in progress, counting those that wait here.
 */
import { snLte } from '../../../src/iscsi/session.js';
import type { OrderedPdu } from './common.js';

/** What {@link CmdSnWindow.admit} did with a PDU. */
export const Admitted = {
  /** Its turn had come: it was handed on, with every held PDU that was next after it. */
  handled: 0,
  /** Early: it waits here (its memory must be kept). */
  held: 1,
  /** Outside the window (or a CmdSN already past): ignored, as the RFC requires. */
  outside: 2,
  /** The same CmdSN as one already held: ignored. */
  duplicate: 3,
} as const;
export type Admitted = (typeof Admitted)[keyof typeof Admitted];

export class CmdSnWindow {
  /** The next CmdSN expected. */
  expCmdSN = 0;
  private readonly held = new Map<number, OrderedPdu>();

  constructor(
    /** Commands the session may have in progress. */
    private readonly size: number,
    /** Commands in progress outside the window (tasks not yet answered). */
    private readonly active: () => number,
  ) {}

  maxCmdSN(): number {
    const active = this.active() + this.held.size;
    return (this.expCmdSN - 1 + Math.max(1, this.size - active)) >>> 0;
  }

  /** True when `cmdSN` is one the window still expects (not yet come, and within MaxCmdSN). */
  expects(cmdSN: number): boolean {
    return snLte(this.expCmdSN, cmdSN) && snLte(cmdSN, this.maxCmdSN());
  }

  /**
   * A non-immediate PDU: `handle` gets it now if its turn has come, then every held PDU
   * whose turn comes after it, in CmdSN order.
   */
  admit(p: OrderedPdu, handle: (p: OrderedPdu) => void): Admitted {
    if (!this.expects(p.cmdSN)) return Admitted.outside;
    if (p.cmdSN !== this.expCmdSN) {
      if (this.held.has(p.cmdSN)) return Admitted.duplicate;
      this.held.set(p.cmdSN, p);
      return Admitted.held;
    }
    this.expCmdSN = (this.expCmdSN + 1) >>> 0;
    handle(p);
    for (let next = this.held.get(this.expCmdSN); next; next = this.held.get(this.expCmdSN)) {
      this.held.delete(this.expCmdSN);
      this.expCmdSN = (this.expCmdSN + 1) >>> 0;
      handle(next);
    }
    return Admitted.handled;
  }

  /** Forgets the PDUs held (the connection is gone). */
  clear(): void {
    this.held.clear();
  }
}
