/** The CmdSN window on its own: order, early PDUs, the window's edges, serial arithmetic. */
import { describe, expect, it } from 'vitest';
import { Opcode, RESERVED_TAG } from '../../../src/iscsi/constants.js';
import type { NopOutPdu } from '../../../src/iscsi/pdu.js';
import { Admitted, CmdSnWindow } from './cmdsn-window.js';

const nop = (cmdSN: number): NopOutPdu => ({ opcode: Opcode.NOP_OUT, immediate: false, lun: 0n, itt: cmdSN & 0xffff, ttt: RESERVED_TAG, cmdSN, expStatSN: 0 });

describe('CmdSN window', () => {
  it('hands PDUs on in CmdSN order, holding early ones until those before them come', () => {
    let active = 0;
    const w = new CmdSnWindow(8, () => active);
    w.expCmdSN = 10;
    const seen: number[] = [];
    const handle = (p: { cmdSN: number }): void => void seen.push(p.cmdSN);
    expect(w.admit(nop(12), handle)).toBe(Admitted.held);
    expect(w.admit(nop(11), handle)).toBe(Admitted.held);
    expect(w.admit(nop(12), handle)).toBe(Admitted.duplicate);
    expect(seen).toEqual([]);
    // Held PDUs count against the window.
    expect(w.maxCmdSN()).toBe(10 - 1 + 8 - 2);
    expect(w.admit(nop(10), handle)).toBe(Admitted.handled);
    expect(seen).toEqual([10, 11, 12]);
    expect(w.expCmdSN).toBe(13);
    expect(w.admit(nop(12), handle)).toBe(Admitted.outside);
    active = 3;
    expect(w.maxCmdSN()).toBe(13 - 1 + 8 - 3);
    expect(w.admit(nop(13 + 5), handle)).toBe(Admitted.outside);
    expect(w.admit(nop(13 + 4), handle)).toBe(Admitted.held);
  });

  it('always leaves room for one command, and wraps at 2^32', () => {
    const w = new CmdSnWindow(4, () => 100);
    w.expCmdSN = 0xffffffff;
    expect(w.maxCmdSN()).toBe(0xffffffff);
    expect(w.expects(0xffffffff)).toBe(true);
    expect(w.expects(0)).toBe(false);
    const seen: number[] = [];
    expect(w.admit(nop(0xffffffff), (p) => void seen.push(p.cmdSN))).toBe(Admitted.handled);
    expect(w.expCmdSN).toBe(0);
    expect(w.expects(0)).toBe(true);
    expect(seen).toEqual([0xffffffff]);
  });

  it('forgets what it holds when cleared', () => {
    const w = new CmdSnWindow(8, () => 0);
    w.expCmdSN = 1;
    const seen: number[] = [];
    w.admit(nop(2), (p) => void seen.push(p.cmdSN));
    w.clear();
    w.admit(nop(1), (p) => void seen.push(p.cmdSN));
    expect(seen).toEqual([1]);
    expect(w.expCmdSN).toBe(2);
  });
});
