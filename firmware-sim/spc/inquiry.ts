/**
 * INQUIRY (SPC-4 6.6): standard data and the VPD pages every unit has (00h supported
 * pages, 80h unit serial number, 83h device identification); device models add theirs
 * (B0h, B1h for tape) through the unit's hooks.
 */
import { setAscii, setU16 } from '../../src/scsi/bytes.js';
import { SpcOpcode } from '../../src/scsi/opcodes.js';
import { invalidCdbField } from '../engine/check.js';
import { usage, type CommandSpec, type Exec } from '../engine/dispatch.js';
import { allocation, type EmulatedUnit } from '../engine/unit.js';

const SAM5 = 0x00a0;
const SPC4 = 0x0460;

export function standardInquiry(unit: EmulatedUnit<unknown>): Uint8Array {
  const b = new Uint8Array(96);
  const id = unit.identity;
  b[0] = unit.deviceType & 0x1f;
  b[1] = 0x80; // removable medium
  b[2] = 0x06; // SPC-4
  b[3] = 0x12; // HiSup, response data format 2
  b[4] = b.length - 5;
  b[7] = 0x02; // CmdQue
  setAscii(b, 8, 8, id.vendor);
  setAscii(b, 16, 16, id.product);
  setAscii(b, 32, 4, id.revision);
  setAscii(b, 36, 20, id.serial);
  const versions = [SAM5, SPC4, ...(id.versionDescriptors ?? [])].slice(0, 8);
  versions.forEach((v, i) => setU16(b, 58 + 2 * i, v));
  return b;
}

function vpdHeader(unit: EmulatedUnit<unknown>, page: number, body: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + body.length);
  b[0] = unit.deviceType & 0x1f;
  b[1] = page;
  setU16(b, 2, body.length);
  b.set(body, 4);
  return b;
}

/** A 60-bit locally assigned NAA name derived from the serial, stable across runs. */
function naaLocal(serial: string, vendor: string, product: string): Uint8Array {
  let h = 0xcbf29ce484222325n;
  for (const ch of `${vendor}\0${product}\0${serial}`) {
    h ^= BigInt(ch.charCodeAt(0));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  const v = (3n << 60n) | (h & 0x0fffffffffffffffn);
  const b = new Uint8Array(8);
  for (let i = 7, x = v; i >= 0; i--, x >>= 8n) b[i] = Number(x & 0xffn);
  return b;
}

function deviceIdentification(unit: EmulatedUnit<unknown>): Uint8Array {
  const id = unit.identity;
  const t10 = new Uint8Array(8 + 16 + id.serial.length);
  setAscii(t10, 0, 8, id.vendor);
  setAscii(t10, 8, 16, id.product);
  setAscii(t10, 24, id.serial.length, id.serial);
  const naa = naaLocal(id.serial, id.vendor, id.product);
  const parts = [
    Uint8Array.of(0x02, 0x01, 0x00, t10.length),
    t10,
    Uint8Array.of(0x01, 0x03, 0x00, naa.length),
    naa,
  ];
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    body.set(p, off);
    off += p.length;
  }
  return body;
}

/** Every VPD page of the unit, by page code. */
export function vpdPages(unit: EmulatedUnit<unknown>): Map<number, Uint8Array> {
  const pages = new Map<number, Uint8Array>();
  const serial = new Uint8Array(unit.identity.serial.length);
  setAscii(serial, 0, serial.length, unit.identity.serial);
  pages.set(0x80, vpdHeader(unit, 0x80, serial));
  pages.set(0x83, vpdHeader(unit, 0x83, deviceIdentification(unit)));
  for (const [code, page] of unit.hooks.vpdPages?.() ?? []) pages.set(code, page);
  const codes = [0x00, ...[...pages.keys()].sort((a, b) => a - b)];
  pages.set(0x00, vpdHeader(unit, 0x00, Uint8Array.from(codes)));
  return pages;
}

function inquiry(x: Exec<unknown>): Uint8Array {
  const evpd = (x.cdb[1] ?? 0) & 0x01;
  const page = x.cdb[2] ?? 0;
  const alloc = ((x.cdb[3] ?? 0) << 8) | (x.cdb[4] ?? 0);
  if (!evpd) {
    if (page !== 0) invalidCdbField(2, 7);
    return allocation(standardInquiry(x.unit), alloc);
  }
  const data = vpdPages(x.unit).get(page);
  if (!data) invalidCdbField(2, 7);
  return allocation(data, alloc);
}

export const inquiryCommand: CommandSpec<unknown> = {
  opcode: SpcOpcode.INQUIRY,
  name: 'INQUIRY',
  usage: usage(6, { 1: 0x01, 2: 0xff, 3: 0xff, 4: 0xff }),
  handler: inquiry,
  bypassUnitAttention: true,
  overtakes: true,
  nominalTimeout: 1,
  recommendedTimeout: 10,
};
