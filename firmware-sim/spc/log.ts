/** LOG SENSE and LOG SELECT (SPC-4 6.7, 6.8) over the unit's log page registry. */
import { getU16, setU16 } from '../../src/scsi/bytes.js';
import { SpcOpcode } from '../../src/scsi/opcodes.js';
import { invalidCdbField, invalidParamField } from '../engine/check.js';
import { usage, type CommandSpec, type Exec } from '../engine/dispatch.js';
import { encodeLogPage } from '../engine/log-pages.js';
import { allocation } from '../engine/unit.js';

function supportedPages(x: Exec<unknown>, withSubpages: boolean): Uint8Array {
  const pages = x.unit.logPages.all();
  if (!withSubpages) {
    const codes = [0x00, ...new Set(pages.filter((p) => p.subpage === 0).map((p) => p.page))];
    const b = new Uint8Array(4 + codes.length);
    setU16(b, 2, codes.length);
    b.set(codes, 4);
    return b;
  }
  const pairs: Array<[number, number]> = [[0x00, 0x00], [0x00, 0xff], ...pages.map((p): [number, number] => [p.page, p.subpage])];
  const b = new Uint8Array(4 + 2 * pairs.length);
  b[0] = 0x40;
  b[1] = 0xff;
  setU16(b, 2, 2 * pairs.length);
  pairs.forEach(([p, s], i) => {
    b[4 + 2 * i] = p;
    b[5 + 2 * i] = s;
  });
  return b;
}

function logSense(x: Exec<unknown>): Uint8Array {
  const page = (x.cdb[2] ?? 0) & 0x3f;
  const subpage = x.cdb[3] ?? 0;
  const pointer = getU16(x.cdb, 5);
  const alloc = getU16(x.cdb, 7);
  if (page === 0x00 && (subpage === 0x00 || subpage === 0xff)) return allocation(supportedPages(x, subpage === 0xff), alloc);
  const p = x.unit.logPages.get(page, subpage);
  if (!p) invalidCdbField(x.unit.logPages.get(page) ? 3 : 2, x.unit.logPages.get(page) ? 7 : 5);
  const params = p.parameters();
  if (pointer > 0 && !params.some((q) => q.code >= pointer)) invalidCdbField(5, 7);
  return allocation(encodeLogPage(page, subpage, params.filter((q) => q.code >= pointer)), alloc);
}

function logSelect(x: Exec<unknown>): undefined {
  const pcr = ((x.cdb[1] ?? 0) & 0x02) !== 0;
  const len = getU16(x.cdb, 7);
  if (pcr) {
    if (len !== 0) invalidCdbField(7, 7);
    for (const p of x.unit.logPages.all()) p.reset?.();
    return undefined;
  }
  // Thresholds and cumulative values are not settable here; an empty list is a no-op.
  if (len !== 0) invalidParamField(0, 5);
  return undefined;
}

export const logCommands: CommandSpec<unknown>[] = [
  { opcode: SpcOpcode.LOG_SENSE, name: 'LOG SENSE', usage: usage(10, { 2: 0xff, 3: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff }), handler: logSense, nominalTimeout: 1, recommendedTimeout: 10 },
  { opcode: SpcOpcode.LOG_SELECT, name: 'LOG SELECT', usage: usage(10, { 1: 0x02, 2: 0xc0, 7: 0xff, 8: 0xff }), handler: logSelect, nominalTimeout: 1, recommendedTimeout: 10 },
];
