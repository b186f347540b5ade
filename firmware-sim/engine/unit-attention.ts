/**
 * Unit attention conditions (SPC-4 5.14): kept per I_T nexus, reported once to each
 * initiator and then cleared for that initiator only. An initiator the unit has never
 * seen inherits the conditions that were set for everyone (a power-on reset is pending
 * for every initiator until each of them has been told).
 */
import { isSense, Sense, sense, type SenseCode, type SenseData } from '../../src/scsi/sense.js';

const RESET_FAMILY = [Sense.POWER_ON_RESET, Sense.POWER_ON_OCCURRED, Sense.BUS_DEVICE_RESET];

function isReset(code: Pick<SenseData, 'key' | 'asc' | 'ascq'>): boolean {
  return RESET_FAMILY.some((r) => isSense(code, r));
}

export class UnitAttentions {
  private readonly queues = new Map<string, SenseCode[]>();
  /** What an initiator seen for the first time starts with. */
  private forNewcomers: SenseCode[];

  constructor(initial: SenseCode[] = [Sense.POWER_ON_RESET]) {
    this.forNewcomers = [...initial];
  }

  private queue(initiator: string): SenseCode[] {
    let q = this.queues.get(initiator);
    if (!q) {
      q = [...this.forNewcomers];
      this.queues.set(initiator, q);
    }
    return q;
  }

  /**
   * Establishes `code` for every initiator except `except` (the one whose action caused
   * it, as SPC says for MODE PARAMETERS CHANGED). A reset supersedes everything queued.
   */
  raise(code: SenseCode, except?: string): void {
    const add = (q: SenseCode[]): void => {
      if (isReset(code)) q.length = 0;
      if (q.some((c) => isReset(c)) && !isReset(code)) return;
      if (!q.some((c) => isSense(c, code))) q.push(code);
    };
    for (const [initiator, q] of this.queues) if (initiator !== except) add(q);
    if (isReset(code)) this.forNewcomers = [code];
    else if (except === undefined) add(this.forNewcomers);
  }

  /** A power-on or reset: every other condition is dropped and this one is pending for all. */
  reset(code: SenseCode = Sense.POWER_ON_RESET): void {
    this.queues.clear();
    this.forNewcomers = [code];
  }

  /** The highest-priority pending condition for `initiator`, without clearing it. */
  peek(initiator: string): SenseCode | undefined {
    return this.queue(initiator)[0];
  }

  /** Reports and clears the next condition for `initiator`. */
  take(initiator: string): SenseData | undefined {
    const code = this.queue(initiator).shift();
    return code ? sense(code) : undefined;
  }

  /** Number of conditions pending for `initiator`. */
  pending(initiator: string): number {
    return this.queue(initiator).length;
  }
}
