/** TEST UNIT READY, REQUEST SENSE and REPORT LUNS (SPC-4 6.37, 6.29, 6.33). */
import { setU32 } from '../../src/scsi/bytes.js';
import { SpcOpcode } from '../../src/scsi/opcodes.js';
import { encodeSense, Sense, sense } from '../../src/scsi/sense.js';
import { CheckCondition, invalidCdbField } from '../engine/check.js';
import { usage, type CommandSpec, type Exec } from '../engine/dispatch.js';
import { allocation } from '../engine/unit.js';

function testUnitReady(x: Exec<unknown>): undefined {
  const why = x.unit.hooks.notReady?.();
  if (why) throw new CheckCondition(why);
  return undefined;
}

/**
 * With autosense the sense of a failed command went back with its status, so REQUEST
 * SENSE reports what is true now: a pending unit attention (and clears it), else a
 * pending deferred error (and clears it), else why the unit is not ready, else NO SENSE.
 */
function requestSense(x: Exec<unknown>): Uint8Array {
  const desc = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  const alloc = x.cdb[4] ?? 0;
  const s = x.unit.unitAttentions.take(x.initiator) ?? x.unit.hooks.deferredError?.(x.initiator) ?? x.unit.hooks.notReady?.() ?? sense(Sense.NO_ADDITIONAL_SENSE);
  return allocation(encodeSense(s, desc ? 'descriptor' : 'fixed'), alloc);
}

function lunEntry(lun: number): Uint8Array {
  const b = new Uint8Array(8);
  if (lun < 256) b[1] = lun;
  else {
    b[0] = 0x40 | ((lun >> 8) & 0x3f);
    b[1] = lun & 0xff;
  }
  return b;
}

function reportLuns(x: Exec<unknown>): Uint8Array {
  const select = x.cdb[2] ?? 0;
  if (select > 0x02) invalidCdbField(2, 7);
  const alloc = (((x.cdb[6] ?? 0) << 24) | ((x.cdb[7] ?? 0) << 16) | ((x.cdb[8] ?? 0) << 8) | (x.cdb[9] ?? 0)) >>> 0;
  if (alloc < 16) invalidCdbField(6, 7);
  const luns = select === 0x01 ? [] : x.unit.lunList();
  const b = new Uint8Array(8 + 8 * luns.length);
  setU32(b, 0, 8 * luns.length);
  luns.forEach((l, i) => b.set(lunEntry(l), 8 + 8 * i));
  return allocation(b, alloc);
}

export const basicCommands: CommandSpec<unknown>[] = [
  { opcode: SpcOpcode.TEST_UNIT_READY, name: 'TEST UNIT READY', usage: usage(6), handler: testUnitReady, overtakes: true, nominalTimeout: 1, recommendedTimeout: 10 },
  { opcode: SpcOpcode.REQUEST_SENSE, name: 'REQUEST SENSE', usage: usage(6, { 1: 0x01, 4: 0xff }), handler: requestSense, bypassUnitAttention: true, overtakes: true, nominalTimeout: 1, recommendedTimeout: 10 },
  { opcode: SpcOpcode.REPORT_LUNS, name: 'REPORT LUNS', usage: usage(12, { 2: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff }), handler: reportLuns, bypassUnitAttention: true, overtakes: true, nominalTimeout: 1, recommendedTimeout: 10 },
];
