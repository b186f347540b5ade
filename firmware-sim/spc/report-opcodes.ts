/**
 * REPORT SUPPORTED OPERATION CODES (SPC-4 6.35), generated from the unit's dispatch
 * table, so what a unit claims is exactly what it dispatches.
 */
import { getU16, getU32, setU16, setU32 } from '../../src/scsi/bytes.js';
import { MaintenanceInServiceAction, SpcOpcode } from '../../src/scsi/opcodes.js';
import { invalidCdbField } from '../engine/check.js';
import { usage, type CommandSpec, type Exec } from '../engine/dispatch.js';
import { allocation } from '../engine/unit.js';

function timeouts(spec: CommandSpec<unknown>): Uint8Array {
  const b = new Uint8Array(12);
  setU16(b, 0, 0x0a);
  setU32(b, 4, spec.nominalTimeout ?? 0);
  setU32(b, 8, spec.recommendedTimeout ?? 0);
  return b;
}

function rsoc(x: Exec<unknown>): Uint8Array {
  const rctd = ((x.cdb[2] ?? 0) & 0x80) !== 0;
  const options = (x.cdb[2] ?? 0) & 0x07;
  const opcode = x.cdb[3] ?? 0;
  const sa = getU16(x.cdb, 4);
  const alloc = getU32(x.cdb, 6);
  const table = x.unit.table;
  if (options === 0) {
    const specs = table.all();
    const each = 8 + (rctd ? 12 : 0);
    const b = new Uint8Array(4 + each * specs.length);
    setU32(b, 0, each * specs.length);
    specs.forEach((s, i) => {
      const off = 4 + each * i;
      b[off] = s.opcode;
      if (s.serviceAction !== undefined) setU16(b, off + 2, s.serviceAction);
      b[off + 5] = (rctd ? 0x02 : 0) | (s.serviceAction !== undefined ? 0x01 : 0);
      setU16(b, off + 6, s.usage.length);
      if (rctd) b.set(timeouts(s), off + 8);
    });
    return allocation(b, alloc);
  }
  let spec: CommandSpec<unknown> | undefined;
  if (options === 1) {
    if (table.hasServiceActions(opcode)) invalidCdbField(3, 7);
    spec = table.get(opcode);
  } else if (options === 2) {
    if (!table.hasServiceActions(opcode) && table.get(opcode)) invalidCdbField(2, 2);
    spec = table.get(opcode, sa);
  } else if (options === 3) {
    spec = table.hasServiceActions(opcode) ? table.get(opcode, sa) : table.get(opcode);
  } else {
    invalidCdbField(2, 2);
  }
  if (!spec) {
    const b = new Uint8Array(4);
    b[1] = 0x01; // not supported
    return allocation(b, alloc);
  }
  const b = new Uint8Array(4 + spec.usage.length + (rctd ? 12 : 0));
  b[1] = (rctd ? 0x80 : 0) | 0x03; // supported, in conformance with a standard
  setU16(b, 2, spec.usage.length);
  // CDB usage data starts with the operation code itself, and the service action field holds
  // the service action (SPC-4 6.35.3); the other bytes are the mask of bits the command uses.
  b.set(spec.usage, 4);
  b[4] = spec.opcode;
  if (spec.serviceAction !== undefined) b[5] = ((spec.usage[1] ?? 0) & 0xe0) | spec.serviceAction;
  if (rctd) b.set(timeouts(spec), 4 + spec.usage.length);
  return allocation(b, alloc);
}

export const reportOpcodesCommand: CommandSpec<unknown> = {
  opcode: SpcOpcode.MAINTENANCE_IN,
  serviceAction: MaintenanceInServiceAction.REPORT_SUPPORTED_OPERATION_CODES,
  name: 'REPORT SUPPORTED OPERATION CODES',
  usage: usage(12, { 1: 0x1f, 2: 0x87, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff }),
  handler: rsoc,
  nominalTimeout: 1,
  recommendedTimeout: 10,
};
