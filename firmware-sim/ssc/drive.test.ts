import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { getU16, getU32, getU64 } from '../../src/scsi/bytes.js';
import { decodeSense, Sense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { InsertRefused } from '../engine/library-link.js';
import { TaskManagement } from '../engine/types.js';
import { checkCartridge } from '../media/check.js';
import { Attr } from './mam.js';
import { cdb, drain, expectGood, expectSense, pattern, raw, rig, type Rig } from './test-kit.js';

let r: Rig;
beforeEach(async () => {
  r = await rig();
});
afterEach(() => r.cleanup());

/** Blocks b0 b1 FM b2 b3 b4 FM FM b5, rewound. */
async function layout(): Promise<void> {
  const p = r.port;
  const w = async (n: number): Promise<void> => expectGood(await p.execute(Cdb.write6(pattern(64, n))));
  await w(0);
  await w(1);
  expectGood(await p.execute(Cdb.writeFilemarks6(1)));
  await w(2);
  await w(3);
  await w(4);
  expectGood(await p.execute(Cdb.writeFilemarks6(2)));
  await w(5);
  expectGood(await p.execute(Cdb.rewind()));
}

async function position(): Promise<number> {
  const rp = await r.port.execute(Cdb.readPosition('long'));
  expectGood(rp);
  return Number(getU64(rp.data, 8));
}

describe('medium states', () => {
  it('no medium is NOT READY / MEDIUM NOT PRESENT; loading raises MEDIUM MAY HAVE CHANGED', async () => {
    expectSense(await r.port.execute(Cdb.testUnitReady()), Sense.MEDIUM_NOT_PRESENT);
    expectSense(await r.port.execute(Cdb.read6({ length: 10 })), Sense.MEDIUM_NOT_PRESENT);
    await r.lu.insert(r.cartridge());
    expectSense(await r.port.execute(Cdb.testUnitReady()), Sense.NOT_READY_TO_READY_CHANGE);
    expectGood(await r.port.execute(Cdb.testUnitReady()));
  });

  it('UNLOAD ejects for the robot; PREVENT blocks it; LOAD rethreads', async () => {
    await r.load();
    const p = r.port;
    expectGood(await p.execute(Cdb.preventAllowMediumRemoval(true)));
    expectSense(await p.execute(Cdb.loadUnload({ load: false })), Sense.MEDIUM_REMOVAL_PREVENTED);
    await expect(r.lu.unloadForRobot()).rejects.toBeInstanceOf(InsertRefused);
    expectGood(await p.execute(Cdb.preventAllowMediumRemoval(false)));
    expect(r.lu.readyForRemoval()).toBe(false);
    expect(() => r.lu.remove()).toThrow(InsertRefused);
    expectGood(await p.execute(Cdb.loadUnload({ load: false })));
    expect(r.lu.readyForRemoval()).toBe(true);
    expectSense(await p.execute(Cdb.testUnitReady()), Sense.INITIALIZING_COMMAND_REQUIRED);
    expectGood(await p.execute(Cdb.loadUnload({ load: true })));
    expectGood(await p.execute(Cdb.testUnitReady()));
    await r.lu.unloadForRobot();
    const c = r.lu.remove();
    expect(c.barcode).toBe('A00001L7');
    expect(r.lu.hasMedium()).toBe(false);
    expect(checkCartridge(c.path)).toMatchObject({ ok: true, cleanEod: true });
  });

  it('refuses a second cartridge and inserts while offline', async () => {
    await r.load();
    await expect(r.lu.insert(r.cartridge({ barcode: 'B00001L7' }))).rejects.toMatchObject({ reason: 'full' });
    await r.lu.unloadForRobot();
    r.lu.remove();
    r.lu.faults.setOffline(true);
    await expect(r.lu.insert(r.cartridge())).rejects.toMatchObject({ reason: 'offline' });
    expectSense(await r.port.execute(Cdb.testUnitReady()), Sense.NOT_READY_OFFLINE);
  });

  it('LOAD with EOT is an invalid field; PREVENT value 2 is an invalid field', async () => {
    await r.load();
    expectSense(await cdb(r.port, raw(0x1b, 0, 0, 0, 0x05, 0)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 4, bit: 2 } });
    expectSense(await cdb(r.port, raw(0x1e, 0, 0, 0, 0x02, 0)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 4, bit: 1 } });
  });
});

describe('positioning', () => {
  it('SPACE blocks forward stops after a filemark with the residue', async () => {
    await r.load();
    await layout();
    expectSense(await r.port.execute(Cdb.space6(0, 5)), Sense.FILEMARK_DETECTED, { filemark: true, information: 3 });
    expect(await position()).toBe(3);
  });

  it('SPACE blocks backward stops on the BOP side of a filemark, and at BOP with EOM', async () => {
    await r.load();
    await layout();
    expectGood(await r.port.execute(Cdb.locate10(5)));
    expectSense(await r.port.execute(Cdb.space6(0, -4)), Sense.FILEMARK_DETECTED, { filemark: true, information: 2 });
    expect(await position()).toBe(2);
    expectGood(await r.port.execute(Cdb.locate10(1)));
    expectSense(await r.port.execute(Cdb.space6(0, -3)), Sense.BEGINNING_OF_PARTITION_MEDIUM_DETECTED, { eom: true, information: 2 });
    expect(await position()).toBe(0);
  });

  it('SPACE filemarks forward and backward, sequential filemarks, end of data', async () => {
    await r.load();
    await layout();
    const p = r.port;
    expectGood(await p.execute(Cdb.space6(1, 2)));
    expect(await position()).toBe(7);
    expectGood(await p.execute(Cdb.space6(1, -1)));
    expect(await position()).toBe(6);
    expectGood(await p.execute(Cdb.rewind()));
    expectGood(await p.execute(Cdb.space6(2, 2)));
    expect(await position()).toBe(8);
    expectSense(await p.execute(Cdb.space6(1, 1)), Sense.END_OF_DATA_DETECTED, { information: 1 });
    expect(await position()).toBe(9);
    expectGood(await p.execute(Cdb.rewind()));
    expectGood(await p.execute(Cdb.space16(3)));
    expect(await position()).toBe(9);
    expectSense(await p.execute(Cdb.space6(1, -5)), Sense.BEGINNING_OF_PARTITION_MEDIUM_DETECTED, { eom: true, information: 2 });
    expectSense(await p.execute(Cdb.space6(0, 20)), Sense.FILEMARK_DETECTED);
    expectSense(await cdb(p, raw(0x11, 0x04, 0, 0, 1, 0)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 1, bit: 3 } });
  });

  it('LOCATE(10)/(16) and READ POSITION short and long forms', async () => {
    await r.load();
    await layout();
    const p = r.port;
    expectGood(await p.execute(Cdb.locate10(4)));
    const short = await p.execute(Cdb.readPosition());
    expect(short.data.length).toBe(20);
    expect(short.data[0]! & 0x80).toBe(0);
    expect(getU32(short.data, 4)).toBe(4);
    const long = await p.execute(Cdb.readPosition('long'));
    expect(long.data.length).toBe(32);
    expect(getU64(long.data, 16)).toBe(1n);
    // File 2 begins after the second filemark (object 6): it is empty, ending at object 7.
    expectGood(await p.execute(Cdb.locate16(2, { destType: 1 })));
    expect(await position()).toBe(7);
    expectGood(await p.execute(Cdb.locate16(0, { destType: 3 })));
    expect(await position()).toBe(9);
    expectSense(await p.execute(Cdb.locate10(50)), Sense.END_OF_DATA_DETECTED);
    expect(await position()).toBe(9);
    expectGood(await p.execute(Cdb.rewind()));
    expect((await p.execute(Cdb.readPosition())).data[0]! & 0x80).toBe(0x80);
    expectSense(await p.execute(Cdb.locate10(0, { partition: 1 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 8, bit: 7 } });
    expectSense(await cdb(p, raw(0x34, 0x02, 0, 0, 0, 0, 0, 0, 0, 0), 20), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 1, bit: 4 } });
  });
});

describe('protection and compatibility', () => {
  it('write-protected cartridge: DATA PROTECT / WRITE PROTECTED, WP bit in the mode header', async () => {
    await r.load({ writeProtected: true });
    expectSense(await r.port.execute(Cdb.write6(pattern(10, 1))), Sense.WRITE_PROTECTED);
    expectSense(await r.port.execute(Cdb.writeFilemarks6(1)), Sense.WRITE_PROTECTED);
    const ms = await r.port.execute(Cdb.modeSense6({ page: 0x3f }));
    expect(ms.data[2]! & 0x80).toBe(0x80);
  });

  it('WORM: appends are fine, overwriting data is refused, trailing filemarks may be overwritten', async () => {
    await r.load({ mediaType: 'LTO7-WORM', barcode: 'W00001LX' });
    const p = r.port;
    expectGood(await p.execute(Cdb.write6(pattern(10, 1))));
    expectGood(await p.execute(Cdb.write6(pattern(10, 2))));
    expectGood(await p.execute(Cdb.writeFilemarks6(1)));
    expectGood(await p.execute(Cdb.locate10(1)));
    expectSense(await p.execute(Cdb.write6(pattern(10, 3))), Sense.WORM_OVERWRITE_ATTEMPTED);
    expectSense(await p.execute(Cdb.erase6()), Sense.WORM_OVERWRITE_ATTEMPTED);
    expectGood(await p.execute(Cdb.locate10(2)));
    expectGood(await p.execute(Cdb.write6(pattern(10, 4))));
  });

  it('an LTO-5 cartridge in an LTO-8 drive is INCOMPATIBLE MEDIUM INSTALLED', async () => {
    const r8 = await rig('ibm-lto8-fh');
    try {
      await r8.load({ mediaType: 'LTO5', barcode: 'C00001L5' });
      expectSense(await r8.port.execute(Cdb.read6({ length: 10 })), Sense.INCOMPATIBLE_MEDIUM_INSTALLED);
      expectSense(await r8.port.execute(Cdb.write6(pattern(10, 1))), Sense.INCOMPATIBLE_MEDIUM_INSTALLED);
    } finally {
      r8.cleanup();
    }
  });

  it('an LTO-5 cartridge in an LTO-7 drive reads but refuses writes with CANNOT WRITE MEDIUM - INCOMPATIBLE FORMAT', async () => {
    const r5 = await rig('ibm-lto5-hh');
    const c = await r5.load(r.cartridge({ mediaType: 'LTO5', barcode: 'C00002L5' }));
    expectGood(await r5.port.execute(Cdb.write6(pattern(33, 1))));
    await r5.lu.unloadForRobot();
    r5.lu.remove();
    r5.cleanup();
    await r.lu.insert(c);
    await drain(r.port);
    const rd = await r.port.execute(Cdb.read6({ length: 33 }));
    expectGood(rd);
    expect(rd.data).toEqual(pattern(33, 1));
    expectSense(await r.port.execute(Cdb.write6(pattern(10, 1))), Sense.CANNOT_WRITE_MEDIUM_INCOMPATIBLE_FORMAT);
  });
});

describe('capability reports', () => {
  it('READ BLOCK LIMITS reports the personality; REPORT DENSITY SUPPORT lists densities', async () => {
    const rbl = await r.port.execute(Cdb.readBlockLimits());
    expectGood(rbl);
    expect((rbl.data[1]! << 16) | (rbl.data[2]! << 8) | rbl.data[3]!).toBe(0x800000);
    expect(getU16(rbl.data, 4)).toBe(1);
    const all = await r.port.execute(Cdb.reportDensitySupport());
    expectGood(all);
    const n = (getU16(all.data, 0) - 2) / 52;
    expect(n).toBe(3);
    expect([all.data[4], all.data[56], all.data[108]]).toEqual([0x5c, 0x5a, 0x58]);
    expect(all.data[6]! & 0xa0).toBe(0xa0);
    expect(all.data[110]! & 0x80).toBe(0);
    expectSense(await r.port.execute(Cdb.reportDensitySupport({ media: true })), Sense.MEDIUM_NOT_PRESENT);
    await r.load({ mediaType: 'LTO6', barcode: 'D00001L6' });
    const media = await r.port.execute(Cdb.reportDensitySupport({ media: true }));
    expect(getU16(media.data, 0)).toBe(54);
    expect(media.data[4]).toBe(0x5a);
    const types = await r.port.execute(Cdb.reportDensitySupport({ mediumType: true }));
    expect((getU16(types.data, 0) - 2) / 56).toBe(3);
  });

  it('LOG SENSE: sequential-access, TapeAlert (cleared on read) and tape capacity', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.write6(pattern(3000, 1))));
    const seq = await r.port.execute(Cdb.logSense({ page: 0x0c }));
    expectGood(seq);
    expect(Number(getU64(seq.data, 8))).toBe(3000);
    r.lu.faults.setTapeAlert(20);
    const ta = await r.port.execute(Cdb.logSense({ page: 0x2e }));
    expect(getU16(ta.data, 2)).toBe(64 * 5);
    expect(ta.data[4 + 19 * 5 + 4]).toBe(1);
    const again = await r.port.execute(Cdb.logSense({ page: 0x2e }));
    expect(again.data[4 + 19 * 5 + 4]).toBe(0);
    const cap = await r.port.execute(Cdb.logSense({ page: 0x31 }));
    expect(getU32(cap.data, 4 + 2 * 8 + 4)).toBe(1);
  });

  it('MODE SENSE returns the SSC pages; SWP in the device configuration page write-protects', async () => {
    await r.load();
    const all = await r.port.execute(Cdb.modeSense10({ page: 0x3f }));
    expectGood(all);
    const codes: number[] = [];
    for (let off = 8 + getU16(all.data, 6); off < all.data.length; off += 2 + all.data[off + 1]!) codes.push(all.data[off]! & 0x3f);
    expect(codes).toEqual([0x01, 0x0a, 0x0f, 0x10, 0x11, 0x1c]);
    const dc = await r.port.execute(Cdb.modeSense6({ page: 0x10, disableBlockDescriptors: true }));
    const pageBytes = Uint8Array.from(dc.data.subarray(4));
    pageBytes[10] = pageBytes[10]! | 0x04;
    const params = new Uint8Array(4 + pageBytes.length);
    params.set(pageBytes, 4);
    expectGood(await r.port.execute(Cdb.modeSelect6(params)));
    expectSense(await r.port.execute(Cdb.write6(pattern(10, 1))), Sense.WRITE_PROTECTED);
    const part = await r.port.execute(Cdb.modeSense6({ page: 0x11, disableBlockDescriptors: true }));
    const p11 = Uint8Array.from(part.data.subarray(4));
    // Additional partitions without FDP, SDP or IDP saying how to lay them out.
    p11[3] = 1;
    const bad = new Uint8Array(4 + p11.length);
    bad.set(p11, 4);
    expectSense(await r.port.execute(Cdb.modeSelect6(bad)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 7, bit: 7 } });
  });
});

describe('cartridge memory (READ/WRITE ATTRIBUTE)', () => {
  function attrs(data: Uint8Array): Map<number, Uint8Array> {
    const m = new Map<number, Uint8Array>();
    const end = 4 + getU32(data, 0);
    for (let off = 4; off < end; ) {
      const id = getU16(data, off);
      const n = getU16(data, off + 3);
      m.set(id, data.subarray(off + 5, off + 5 + n));
      off += 5 + n;
    }
    return m;
  }
  const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString().trim();

  it('reports the standard attributes and counts loads across unloads', async () => {
    const c = await r.load({ capacityBytes: 50 * 1024 * 1024 });
    const v = await r.port.execute(Cdb.readAttribute());
    expectGood(v);
    const a = attrs(v.data);
    expect(Number(getU64(a.get(Attr.MAXIMUM_CAPACITY)!, 0))).toBe(50);
    expect(Number(getU64(a.get(Attr.LOAD_COUNT)!, 0))).toBe(1);
    expect(text(a.get(Attr.MEDIUM_MANUFACTURER))).toBe('PTPVTS');
    expect(text(a.get(Attr.BARCODE))).toBe('A00001L7');
    expect(a.get(Attr.MEDIUM_TYPE)?.[0]).toBe(0);
    expect(text(a.get(Attr.MEDIUM_MANUFACTURE_DATE))).toMatch(/^\d{8}$/u);
    expect(a.get(Attr.MEDIUM_DENSITY_CODE)?.[0]).toBe(0x5c);
    for (const id of [Attr.REMAINING_CAPACITY, Attr.MEDIUM_SERIAL_NUMBER, Attr.TOTAL_MB_WRITTEN_LIFETIME, Attr.TOTAL_MB_READ_LIFETIME, Attr.TOTAL_MB_WRITTEN_THIS_LOAD, Attr.TOTAL_MB_READ_THIS_LOAD]) expect(a.has(id), id.toString(16)).toBe(true);
    expectGood(await r.port.execute(Cdb.write6(new Uint8Array(2 * 1024 * 1024))));
    await r.lu.unloadForRobot();
    r.lu.remove();
    await r.lu.insert(c);
    await drain(r.port);
    const b = attrs((await r.port.execute(Cdb.readAttribute())).data);
    expect(Number(getU64(b.get(Attr.LOAD_COUNT)!, 0))).toBe(2);
    expect(Number(getU64(b.get(Attr.TOTAL_MB_WRITTEN_LIFETIME)!, 0))).toBe(2);
    expect(Number(getU64(b.get(Attr.TOTAL_MB_WRITTEN_THIS_LOAD)!, 0))).toBe(0);
  });

  it('host attributes persist in the cartridge; read-only ones are refused', async () => {
    const c = await r.load();
    const enc = (id: number, format: number, value: string): number[] => [id >> 8, id & 0xff, format, 0, value.length, ...Buffer.from(value)];
    const list = [...enc(Attr.APPLICATION_VENDOR, 1, 'ACME'), ...enc(Attr.APPLICATION_NAME, 1, 'Backup'), ...enc(Attr.USER_MEDIUM_TEXT_LABEL, 2, 'monday')];
    const params = Uint8Array.from([0, 0, 0, list.length, ...list]);
    expectGood(await r.port.execute(Cdb.writeAttribute(params)));
    const ro = Uint8Array.from([0, 0, 0, 13, ...[0x00, 0x03, 0x00, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 9]]);
    expectSense(await r.port.execute(Cdb.writeAttribute(ro)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 4, bit: 7 } });
    await r.lu.unloadForRobot();
    r.lu.remove();
    await r.lu.insert(c);
    await drain(r.port);
    const a = attrs((await r.port.execute(Cdb.readAttribute({ firstAttribute: 0x0800 }))).data);
    expect(text(a.get(Attr.APPLICATION_VENDOR))).toBe('ACME');
    expect(a.get(Attr.APPLICATION_VENDOR)?.length).toBe(8);
    expect(text(a.get(Attr.APPLICATION_NAME))).toBe('Backup');
    expect(Buffer.from(a.get(Attr.USER_MEDIUM_TEXT_LABEL)!).toString().replace(/\0+$/u, '')).toBe('monday');
    expect(a.has(Attr.LOAD_COUNT)).toBe(false);
  });

  it('list, supported, partition list service actions; bad service action and partition', async () => {
    await r.load();
    const list = await r.port.execute(Cdb.readAttribute({ serviceAction: 1 }));
    expect(getU32(list.data, 0) % 2).toBe(0);
    expect(getU16(list.data, 4)).toBe(0x0000);
    const sup = await r.port.execute(Cdb.readAttribute({ serviceAction: 5 }));
    expect(getU32(sup.data, 0)).toBeGreaterThan(40);
    const parts = await r.port.execute(Cdb.readAttribute({ serviceAction: 3 }));
    expect([...parts.data]).toEqual([0, 2, 0, 1]);
    expectSense(await r.port.execute(Cdb.readAttribute({ serviceAction: 4 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 1, bit: 4 } });
    expectSense(await r.port.execute(Cdb.readAttribute({ partition: 1 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 7, bit: 7 } });
  });
});

describe('faults', () => {
  it('a medium error at a block fails reads and writes there and sets TapeAlert flags', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.write6(pattern(10, 1))));
    expectGood(await r.port.execute(Cdb.write6(pattern(10, 2))));
    r.lu.faults.mediumErrorAt(1);
    expectGood(await r.port.execute(Cdb.rewind()));
    expectGood(await r.port.execute(Cdb.read6({ length: 10 })));
    expectSense(await r.port.execute(Cdb.read6({ length: 10 })), Sense.UNRECOVERED_READ_ERROR, { information: 10 });
    expectSense(await r.port.execute(Cdb.write6(pattern(10, 3))), Sense.WRITE_ERROR);
    const ta = await r.port.execute(Cdb.logSense({ page: 0x2e }));
    expect([3, 4, 5, 6].map((f) => ta.data[4 + (f - 1) * 5 + 4])).toEqual([1, 1, 1, 1]);
  });

  it('a damaged record in the file reads as MEDIUM ERROR', async () => {
    const c = await r.load();
    expectGood(await r.port.execute(Cdb.write6(pattern(100, 1))));
    await r.lu.unloadForRobot();
    r.lu.remove();
    const { readFileSync, writeFileSync } = await import('node:fs');
    const f = readFileSync(c.path);
    const { LOG_OFFSET, RECORD_HEADER_SIZE } = await import('../media/index.js');
    f[LOG_OFFSET + RECORD_HEADER_SIZE + 5] = f[LOG_OFFSET + RECORD_HEADER_SIZE + 5]! ^ 0xff;
    writeFileSync(c.path, f);
    await r.lu.insert(c);
    await drain(r.port);
    expectSense(await r.port.execute(Cdb.read6({ length: 100 })), Sense.UNRECOVERED_READ_ERROR);
  });

  it('a hung drive answers only after a LOGICAL UNIT RESET, with TASK ABORTED', async () => {
    await r.load();
    r.lu.faults.hang();
    const pending = r.port.execute(Cdb.read6({ length: 10 }));
    await new Promise((res) => setTimeout(res, 10));
    expect(r.lu.unit.inFlight()).toBe(1);
    r.lu.taskManagement(TaskManagement.logicalUnitReset, r.port.initiator);
    expect((await pending).status).toBe(ScsiStatus.TASK_ABORTED);
    expectSense(await r.port.execute(Cdb.testUnitReady()), Sense.BUS_DEVICE_RESET);
    expectGood(await r.port.execute(Cdb.testUnitReady()));
  });

  it('a power cycle reports POWER ON, keeps the data and loses the position', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.write6(pattern(10, 1))));
    r.lu.faults.powerCycle();
    expectSense(await r.port.execute(Cdb.testUnitReady()), Sense.POWER_ON_OCCURRED);
    const rp = await r.port.execute(Cdb.readPosition());
    expect(getU32(rp.data, 4)).toBe(0);
    const rd = await r.port.execute(Cdb.read6({ length: 10 }));
    expect(rd.data).toEqual(pattern(10, 1));
    const report = checkCartridge(r.lu.drive.cartridge!.path);
    expect(report.blocks).toBe(1);
  });

  it('an offline drive is NOT READY / OFFLINE for tape commands', async () => {
    await r.load();
    r.lu.faults.setOffline(true);
    expectSense(await r.port.execute(Cdb.read6({ length: 10 })), Sense.NOT_READY_OFFLINE);
    r.lu.faults.clear();
    expectSense(await r.port.execute(Cdb.read6({ length: 10 })), Sense.END_OF_DATA_DETECTED);
  });
});

describe('malformed CDBs', () => {
  it.each([
    ['READ(6) reserved bit', raw(0x08, 0x04, 0, 0, 1, 0), 1, 2],
    ['WRITE(6) SILI-like bit', raw(0x0a, 0x02, 0, 0, 1, 0), 1, 1],
    ['REWIND reserved byte', raw(0x01, 0, 0x01, 0, 0, 0), 2, 0],
    ['ERASE reserved bit', raw(0x19, 0x04, 0, 0, 0, 0), 1, 2],
    ['LOCATE(10) reserved byte 2', raw(0x2b, 0, 0x80, 0, 0, 0, 0, 0, 0, 0), 2, 7],
    ['READ BLOCK LIMITS reserved bit', raw(0x05, 0x02, 0, 0, 0, 0), 1, 1],
    ['REPORT DENSITY SUPPORT reserved', raw(0x44, 0x04, 0, 0, 0, 0, 0, 0, 0xff, 0), 1, 2],
  ])('%s -> INVALID FIELD IN CDB', async (_name, bytes, byte, bit) => {
    await r.load();
    const res = await cdb(r.port, bytes, 0);
    const s = expectSense(res, Sense.INVALID_FIELD_IN_CDB);
    expect(s.fieldPointer).toEqual({ inCdb: true, byte, bit });
    expect(decodeSense(res.sense).key).toBe(0x05);
  });
});

describe('timing model', () => {
  it('scales the load time by timeScale: BECOMING READY while threading', async () => {
    r.lu.unit.timeScale = 0.005; // 15 s load -> 75 ms
    const inserting = r.lu.insert(r.cartridge());
    await new Promise((res) => setTimeout(res, 10));
    expectSense(await r.port.execute(Cdb.testUnitReady()), Sense.BECOMING_READY);
    await inserting;
    await drain(r.port);
    expectGood(await r.port.execute(Cdb.testUnitReady()));
    const t0 = Date.now();
    expectGood(await r.port.execute(Cdb.loadUnload({ load: false })));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(50);
  });

  it('a slow REWIND is cancelled by the transport timeout', async () => {
    await r.load({ capacityBytes: 10_000 });
    expectGood(await r.port.execute(Cdb.write6(pattern(9000, 1))));
    r.lu.unit.timeScale = 1;
    await expect(r.port.execute({ ...Cdb.rewind(), timeoutMs: 30 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    r.lu.unit.timeScale = 0;
  });
});
