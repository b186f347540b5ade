/**
 * Text requests in the full feature phase (RFC 7143 11.10, 11.11): SendTargets, in a
 * discovery session for all targets and in a normal one for its own; any other key is
 * NotUnderstood. A request split over several PDUs (C bit) is gathered, up to 64 KiB.
 */
import { Opcode, RejectReason, RESERVED_TAG } from '../../../src/iscsi/constants.js';
import type { TextRequestPdu } from '../../../src/iscsi/pdu.js';
import { encodeText, parseText } from '../../../src/iscsi/text.js';
import { EMPTY, headerOf } from './common.js';
import type { TargetConnection } from './connection.js';

export class TextRequests {
  /** The data of a request sent in several PDUs, so far. */
  private parts: Buffer[] = [];

  constructor(private readonly c: TargetConnection) {}

  /** A Text Request whose turn has come; a sequence of them (C bit) is gathered first. */
  handle(p: TextRequestPdu): void {
    this.parts.push(Buffer.from(p.data ?? EMPTY));
    if (this.parts.reduce((n, b) => n + b.length, 0) > 65536) {
      this.parts = [];
      return this.c.reject(RejectReason.OUT_OF_RESOURCES, headerOf(p));
    }
    if (p.continue) {
      this.c.send({ opcode: Opcode.TEXT_RESPONSE, final: false, continue: false, lun: p.lun, itt: p.itt, ttt: this.c.allocTtt(), ...this.c.sn(true) });
      return;
    }
    let pairs: Array<[string, string]>;
    try {
      pairs = parseText(Buffer.concat(this.parts));
    } catch {
      this.parts = [];
      return this.c.reject(RejectReason.PROTOCOL_ERROR, headerOf(p));
    }
    this.parts = [];
    const answer: Array<[string, string]> = [];
    for (const [k, v] of pairs) {
      if (k === 'SendTargets') {
        // A normal session may only ask about its own target; discovery may ask for All.
        if (v === 'All' ? this.c.discovery : v === '' || v === this.c.ctx.iqn) answer.push(['TargetName', this.c.ctx.iqn], ['TargetAddress', this.c.ctx.portal]);
        else if (v === 'All') answer.push(['SendTargets', 'Reject']);
      } else {
        answer.push([k, 'NotUnderstood']);
      }
    }
    this.c.send({ opcode: Opcode.TEXT_RESPONSE, final: true, continue: false, lun: p.lun, itt: p.itt, ttt: RESERVED_TAG, ...this.c.sn(true), data: encodeText(answer) });
  }
}
