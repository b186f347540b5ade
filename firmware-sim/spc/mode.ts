/**
 * MODE SENSE and MODE SELECT, 6- and 10-byte forms (SPC-4 6.11-6.14), over the unit's
 * mode page registry, plus the control mode page (0Ah) every unit has: its D_SENSE bit
 * picks the sense format the unit answers with.
 */
import { getU16, setU16 } from '../../src/scsi/bytes.js';
import { SpcOpcode } from '../../src/scsi/opcodes.js';
import { Sense, sense } from '../../src/scsi/sense.js';
import { CheckCondition, invalidCdbField, invalidParamField, parameterListLengthError } from '../engine/check.js';
import { usage, type CommandSpec, type Exec } from '../engine/dispatch.js';
import { StoredModePage, type ModePage } from '../engine/mode-pages.js';
import { allocation, type EmulatedUnit } from '../engine/unit.js';

const PC_CHANGEABLE = 1;
const PC_DEFAULT = 2;
const PC_SAVED = 3;

function pageBytes(p: ModePage, pc: number): Uint8Array {
  if (pc === PC_CHANGEABLE) {
    const m = Uint8Array.from(p.changeable());
    const cur = p.current();
    // The header bytes (code, length) are reported as in the current page.
    const hdr = (cur[0] ?? 0) & 0x40 ? 4 : 2;
    m.set(cur.subarray(0, hdr), 0);
    return m;
  }
  return pc === PC_DEFAULT ? p.defaults() : p.current();
}

function selectPages(unit: EmulatedUnit<unknown>, page: number, subpage: number): ModePage[] {
  const all = unit.modePages.all();
  if (page === 0x3f) return subpage === 0xff ? all : subpage === 0 ? all.filter((p) => p.subpage === 0) : [];
  if (subpage === 0xff) return all.filter((p) => p.page === page);
  const p = unit.modePages.get(page, subpage);
  return p ? [p] : [];
}

function modeSense(x: Exec<unknown>, ten: boolean): Uint8Array {
  const { cdb, unit } = x;
  const dbd = ((cdb[1] ?? 0) & 0x08) !== 0;
  const pc = (cdb[2] ?? 0) >> 6;
  const page = (cdb[2] ?? 0) & 0x3f;
  const subpage = cdb[3] ?? 0;
  const alloc = ten ? getU16(cdb, 7) : (cdb[4] ?? 0);
  if (pc === PC_SAVED) throw new CheckCondition(sense(Sense.SAVING_PARAMETERS_NOT_SUPPORTED, { fieldPointer: { inCdb: true, byte: 2, bit: 7 } }));
  // Page 00h asks for no page at all: just the header and block descriptors, which is what
  // Linux st reads at open to learn density, block size and write protection.
  const headerOnly = page === 0x00 && subpage === 0x00 && !unit.modePages.get(0x00);
  const pages = headerOnly ? [] : selectPages(unit, page, subpage);
  if (pages.length === 0 && !headerOnly) invalidCdbField(subpage !== 0 && page !== 0x3f && unit.modePages.get(page) ? 3 : 2, subpage !== 0 && page !== 0x3f && unit.modePages.get(page) ? 7 : 5);
  const bd = dbd ? new Uint8Array(0) : (unit.hooks.blockDescriptors?.() ?? new Uint8Array(0));
  const body = pages.map((p) => pageBytes(p, pc));
  const bodyLen = body.reduce((n, p) => n + p.length, 0);
  const hdrLen = ten ? 8 : 4;
  const b = new Uint8Array(hdrLen + bd.length + bodyLen);
  const dsp = unit.hooks.deviceSpecificParameter?.() ?? 0;
  const mt = unit.hooks.mediumType?.() ?? 0;
  if (ten) {
    setU16(b, 0, b.length - 2);
    b[2] = mt;
    b[3] = dsp;
    setU16(b, 6, bd.length);
  } else {
    b[0] = Math.min(b.length - 1, 0xff);
    b[1] = mt;
    b[2] = dsp;
    b[3] = bd.length;
  }
  b.set(bd, hdrLen);
  let off = hdrLen + bd.length;
  for (const p of body) {
    b.set(p, off);
    off += p.length;
  }
  return allocation(ten ? b : b.subarray(0, Math.min(b.length, 256)), alloc);
}

function modeSelect(x: Exec<unknown>, ten: boolean): undefined {
  const { cdb, unit } = x;
  const pf = ((cdb[1] ?? 0) & 0x10) !== 0;
  const len = ten ? getU16(cdb, 7) : (cdb[4] ?? 0);
  if (len === 0) return undefined;
  if (x.dataOut.length < len) parameterListLengthError();
  const data = x.dataOut.subarray(0, len);
  const hdrLen = ten ? 8 : 4;
  if (len < hdrLen) parameterListLengthError();
  const mdl = ten ? getU16(data, 0) : (data[0] ?? 0);
  if (mdl !== 0) invalidParamField(0, 7);
  const bdl = ten ? getU16(data, 6) : (data[3] ?? 0);
  if (bdl % 8 !== 0) invalidParamField(ten ? 7 : 3, 7);
  if (hdrLen + bdl > len) parameterListLengthError();
  for (let off = hdrLen; off < hdrLen + bdl; off += 8) {
    const hook = unit.hooks.selectBlockDescriptor;
    if (!hook) invalidParamField(ten ? 7 : 3, 7);
    try {
      hook.call(unit.hooks, data.subarray(off, off + 8), x.initiator);
    } catch (e) {
      if (e instanceof CheckCondition && e.sense.fieldPointer && !e.sense.fieldPointer.inCdb) {
        throw new CheckCondition({ ...e.sense, fieldPointer: { ...e.sense.fieldPointer, byte: e.sense.fieldPointer.byte + off } });
      }
      throw e;
    }
  }
  const list = data.subarray(hdrLen + bdl);
  if (list.length > 0) {
    if (!pf) invalidCdbField(1, 4);
    unit.modePages.selectAll(list, hdrLen + bdl);
  }
  unit.raise(Sense.MODE_PARAMETERS_CHANGED, x.initiator);
  return undefined;
}

/** The control mode page (0Ah); D_SENSE is the one bit a host may change. */
export function controlModePage(unit: EmulatedUnit<unknown>): StoredModePage {
  const values = new Uint8Array(12);
  values[0] = 0x0a;
  values[1] = 0x0a;
  values[3] = 0x10; // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering allowed
  setU16(values, 8, 0xffff); // BUSY TIMEOUT PERIOD: unlimited
  const mask = new Uint8Array(12);
  mask[2] = 0x04;
  return new StoredModePage(0x0a, values, mask, (v) => unit.setDescriptorSense(((v[2] ?? 0) & 0x04) !== 0));
}

export const modeCommands: CommandSpec<unknown>[] = [
  { opcode: SpcOpcode.MODE_SENSE_6, name: 'MODE SENSE(6)', usage: usage(6, { 1: 0x08, 2: 0xff, 3: 0xff, 4: 0xff }), handler: (x) => modeSense(x, false), nominalTimeout: 1, recommendedTimeout: 10 },
  { opcode: SpcOpcode.MODE_SENSE_10, name: 'MODE SENSE(10)', usage: usage(10, { 1: 0x08, 2: 0xff, 3: 0xff, 7: 0xff, 8: 0xff }), handler: (x) => modeSense(x, true), nominalTimeout: 1, recommendedTimeout: 10 },
  { opcode: SpcOpcode.MODE_SELECT_6, name: 'MODE SELECT(6)', usage: usage(6, { 1: 0x10, 4: 0xff }), handler: (x) => modeSelect(x, false), nominalTimeout: 1, recommendedTimeout: 10 },
  { opcode: SpcOpcode.MODE_SELECT_10, name: 'MODE SELECT(10)', usage: usage(10, { 1: 0x10, 7: 0xff, 8: 0xff }), handler: (x) => modeSelect(x, true), nominalTimeout: 1, recommendedTimeout: 10 },
];
