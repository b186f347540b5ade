/**
 * Partitions in the drive: the medium partition page (11h) with MODE SELECT, FORMAT
 * MEDIUM, LOCATE with CP, READ POSITION in every form, SPACE and EOD per partition,
 * writes that discard only their own partition, REWIND to BOP 0, capacity per partition
 * (log page 31h, READ ATTRIBUTE partition list), and the errors of each.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { getU16, getU32, getU64, setU64 } from '../../src/scsi/bytes.js';
import { Sense } from '../../src/scsi/sense.js';
import { SpaceCode } from '../../src/scsi/index.js';
import { checkCartridge } from '../media/check.js';
import { cdb, drain, expectGood, expectSense, pattern, rig, type Rig } from './test-kit.js';

let r: Rig;
afterEach(() => r.cleanup());

const MB = 1_000_000;
const CAP = 10 * MB;

/** The medium partition page as MODE SENSE returns it (without the mode header). */
async function page11(): Promise<Uint8Array> {
  const s = await r.port.execute(Cdb.modeSense6({ page: 0x11, disableBlockDescriptors: true }));
  expectGood(s);
  return Uint8Array.from(s.data.subarray(4, 4 + 2 + s.data[5]!));
}

/** MODE SELECT(6) of page 11h edited by `edit` from what MODE SENSE returned. */
async function select11(edit: (p: Uint8Array) => Uint8Array | void) {
  const cur = await page11();
  const p = edit(cur) ?? cur;
  const params = new Uint8Array(4 + p.length);
  params.set(p, 4);
  return r.port.execute(Cdb.modeSelect6(params));
}

/** IDP with sizes in MB (PSUM 10b); 0xffff takes the rest. */
const idpMb = (sizes: number[]) => (p: Uint8Array): void => {
  p[3] = sizes.length - 1;
  p[4] = 0x20 | (2 << 3) | (p[4]! & 0x04);
  sizes.forEach((s, i) => {
    p[8 + 2 * i] = s >> 8;
    p[9 + 2 * i] = s & 0xff;
  });
};

async function readPosLong(): Promise<{ partition: number; object: number; file: number; bop: boolean }> {
  const rp = await r.port.execute(Cdb.readPosition('long'));
  expectGood(rp);
  return { partition: getU32(rp.data, 4), object: Number(getU64(rp.data, 8)), file: Number(getU64(rp.data, 16)), bop: (rp.data[0]! & 0x80) !== 0 };
}

const write = async (n: number, seed: number): Promise<void> => expectGood(await r.port.execute(Cdb.write6(pattern(n, seed))));

async function readBlock(n: number): Promise<Uint8Array> {
  const rd = await r.port.execute(Cdb.read6({ length: n }));
  expectGood(rd);
  return rd.data;
}

/** Loads a 10 MB LTO-7 cartridge and partitions it 2 MB + the rest. */
async function twoPartitions(): Promise<void> {
  await r.load({ capacityBytes: CAP });
  expectGood(await select11(idpMb([2, 0xffff])));
  expectGood(await r.port.execute(Cdb.formatMedium(1)));
}

describe('medium partition page and FORMAT MEDIUM', () => {
  beforeEach(async () => {
    r = await rig();
  });

  it('MODE SENSE reports the generation limits, POFM, and the layout FORMAT MEDIUM applied', async () => {
    await r.load({ capacityBytes: CAP });
    let p = await page11();
    expect(p.length).toBe(2 + 6 + 2 * 4); // LTO-7: four size descriptors
    expect(p[2]).toBe(3); // MAXIMUM ADDITIONAL PARTITIONS
    expect(p[3]).toBe(0);
    expect(p[4]! & 0x04).toBe(0x04); // POFM: FORMAT MEDIUM applies the page
    expect(p[4]! & 0x18).toBe(0x18); // PSUM 11b
    expect(p[6]).toBe(9); // units of 10^9 bytes
    // The MODE SELECT alone changes nothing on the tape.
    expectGood(await select11(idpMb([2, 0xffff])));
    expect((await page11())[3]).toBe(0);
    expectGood(await r.port.execute(Cdb.formatMedium(1)));
    p = await page11();
    expect(p[3]).toBe(1);
    expect(p[4]! & 0x20).toBe(0x20);
    expect(p[4]! & 0x18).toBe(0x10); // reported in the MB units last selected
    expect(getU16(p, 8)).toBe(2);
    expect(getU16(p, 10)).toBe(Math.floor((CAP - 2 * MB) / MB));
    // READ ATTRIBUTE: the partition list counts them.
    const pl = await r.port.execute(Cdb.readAttribute({ serviceAction: 3 }));
    expectGood(pl);
    expect([...pl.data.subarray(0, 4)]).toEqual([0, 2, 0, 2]);
    // READ ATTRIBUTE names partition 1 now, not partition 2.
    expectGood(await r.port.execute(Cdb.readAttribute({ partition: 1 })));
    expectSense(await r.port.execute(Cdb.readAttribute({ partition: 2 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 7, bit: 7 } });
    // Log page 31h: remaining and maximum of the main (0) and alternate (1) partitions, MiB.
    const lp = await r.port.execute(Cdb.logSense({ page: 0x31 }));
    expectGood(lp);
    const vals = new Map<number, number>();
    for (let off = 4; off < 4 + getU16(lp.data, 2); off += 4 + lp.data[off + 3]!) vals.set(getU16(lp.data, off), getU32(lp.data, off + 4));
    expect(vals.get(3)).toBe(Math.floor((2 * MB) / (1 << 20)));
    expect(vals.get(4)).toBe(Math.floor((CAP - 2 * MB) / (1 << 20)));
    // FORMAT 0: back to one partition.
    expectGood(await r.port.execute(Cdb.formatMedium(0)));
    expect((await page11())[3]).toBe(0);
  });

  it('an LTO-5 drive takes at most one additional partition; an LTO-8 drive three', async () => {
    r.cleanup();
    r = await rig('ibm-lto5-hh');
    await r.load({ capacityBytes: CAP, mediaType: 'LTO5', barcode: 'A00001L5' });
    const p = await page11();
    expect(p[2]).toBe(1);
    expect(p.length).toBe(2 + 6 + 4);
    expectSense(await select11((q) => void (q[3] = 2, q[4] = 0x40 | 0x18 | 0x04)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 4 + 3, bit: 7 } });
    expectGood(await select11((q) => void (q[3] = 1, q[4] = 0x40 | 0x18 | 0x04)));
    expectGood(await r.port.execute(Cdb.formatMedium(2)));
    expect((await page11())[3]).toBe(1);
    r.cleanup();
    r = await rig('ibm-lto8-hh');
    await r.load({ capacityBytes: CAP, mediaType: 'LTO8', barcode: 'A00001L8' });
    expect((await page11())[2]).toBe(3);
    // Four partitions, device-sized (SDP): equal quarters.
    expectGood(await select11((q) => void (q[3] = 3, q[4] = 0x40 | 0x18 | 0x04)));
    expectGood(await r.port.execute(Cdb.formatMedium(1)));
    const p8 = await page11();
    expect(p8[3]).toBe(3);
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 3 })));
  });

  it('malformed medium partition pages answer ILLEGAL REQUEST with a field pointer, and change nothing', async () => {
    await r.load({ capacityBytes: CAP });
    const bad = async (edit: (p: Uint8Array) => Uint8Array | void, byte: number, bit: number): Promise<void> => {
      expectSense(await select11(edit), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 4 + byte, bit } });
    };
    // FDP and IDP together.
    await bad((p) => void (p[4] = 0x80 | 0x20 | 0x18 | 0x04), 4, 7);
    // More partitions than the drive has.
    await bad((p) => void (p[3] = 4, p[4] = 0x40 | 0x18 | 0x04), 3, 7);
    // Sizes in bytes (PSUM 00b) cannot describe a partition of an LTO tape.
    await bad((p) => void (p[3] = 1, p[4] = 0x20 | 0x04), 4, 4);
    // A partition of size 0; two partitions taking the rest; more than the cartridge holds.
    await bad(idpMb([0, 0xffff]), 8, 7);
    await bad(idpMb([0xffff, 0xffff]), 10, 7);
    await bad(idpMb([6, 5]), 10, 7);
    await bad(idpMb([11, 0xffff]), 8, 7);
    // No room left for the partition that takes the rest.
    await bad(idpMb([5, 5, 0xffff]), 12, 7);
    // POFM is the drive's, not the host's to change.
    await bad((p) => void (p[4] = p[4]! & ~0x04), 4, 2);
    // A page shorter than the descriptors it defines.
    const short = await select11((p) => {
      idpMb([2, 0xffff])(p);
      p[1] = 6 + 2;
      return p.subarray(0, 8 + 2);
    });
    expectSense(short, Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 4 + 1, bit: 7 } });
    // Nothing was recorded: FORMAT MEDIUM 1 keeps one partition.
    expectGood(await r.port.execute(Cdb.formatMedium(1)));
    expect((await page11())[3]).toBe(0);
    // A page as Linux st sends it for two partitions: only the descriptors it defines.
    const st = await select11((p) => {
      idpMb([0xffff, 3])(p);
      p[1] = 6 + 4;
      return p.subarray(0, 2 + 6 + 4);
    });
    expectGood(st);
    expectGood(await r.port.execute(Cdb.formatMedium(1)));
    const p = await page11();
    expect([p[3], getU16(p, 8), getU16(p, 10)]).toEqual([1, Math.floor((CAP - 3 * MB) / MB), 3]);
  });

  it('malformed FORMAT MEDIUM CDBs and states answer with the condition, and leave the data', async () => {
    await r.load({ capacityBytes: CAP });
    await write(100, 1);
    expectGood(await r.port.execute(Cdb.rewind()));
    const f = (b2: number, b3 = 0, b4 = 0) => cdb(r.port, Uint8Array.of(0x04, 0, b2, b3, b4, 0));
    expectSense(await f(3), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 2, bit: 3 } });
    expectSense(await f(1, 0, 8), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 3, bit: 7 } });
    expectSense(await f(0x10), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 2, bit: 4 } });
    // Not at BOP of partition 0.
    expectGood(await r.port.execute(Cdb.space6(SpaceCode.blocks, 1)));
    expectSense(await r.port.execute(Cdb.formatMedium(0)), Sense.COMMAND_SEQUENCE_ERROR);
    expectGood(await r.port.execute(Cdb.rewind()));
    expect(await readBlock(100)).toEqual(pattern(100, 1));
    await r.lu.unloadForRobot();
    r.lu.remove();
    await r.load({ capacityBytes: CAP, writeProtected: true });
    expectSense(await r.port.execute(Cdb.formatMedium(0)), Sense.WRITE_PROTECTED);
  });

  it('a layout selected without a cartridge that the loaded one cannot hold fails FORMAT MEDIUM with PARAMETER VALUE INVALID', async () => {
    expectGood(await select11(idpMb([11, 0xffff])));
    await r.load({ capacityBytes: CAP });
    expectSense(await r.port.execute(Cdb.formatMedium(1)), Sense.PARAMETER_VALUE_INVALID);
    expect((await page11())[3]).toBe(0);
    // The same request on a cartridge that holds it.
    await r.lu.unloadForRobot();
    r.lu.remove();
    await r.load({ capacityBytes: 2 * CAP, barcode: 'A00002L7' });
    expectGood(await r.port.execute(Cdb.formatMedium(1)));
    const p = await page11();
    expect([p[3], getU16(p, 8)]).toEqual([1, 11]);
  });

  it('a WORM cartridge with data takes no FORMAT MEDIUM', async () => {
    await r.load({ capacityBytes: CAP, mediaType: 'LTO7-WORM', barcode: 'W00001LR' });
    await write(10, 1);
    expectGood(await r.port.execute(Cdb.rewind()));
    expectSense(await r.port.execute(Cdb.formatMedium(0)), Sense.WORM_OVERWRITE_ATTEMPTED);
  });
});

describe('positioning and data per partition', () => {
  beforeEach(async () => {
    r = await rig();
    await twoPartitions();
  });

  it('LOCATE with CP changes partition; READ POSITION short, long and extended report it; REWIND goes to BOP 0', async () => {
    await write(64, 1);
    await write(64, 2);
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    expect(await readPosLong()).toEqual({ partition: 1, object: 0, file: 0, bop: true });
    await write(70, 10);
    expectGood(await r.port.execute(Cdb.writeFilemarks6(1)));
    await write(71, 11);
    const short = await r.port.execute(Cdb.readPosition('short'));
    expectGood(short);
    expect([short.data[1], getU32(short.data, 4), getU32(short.data, 8)]).toEqual([1, 3, 3]);
    const ext = await r.port.execute(Cdb.readPosition('extended'));
    expectGood(ext);
    expect([ext.data[1], Number(getU64(ext.data, 8))]).toEqual([1, 3]);
    expect(await readPosLong()).toEqual({ partition: 1, object: 3, file: 1, bop: false });
    // LOCATE(16) with CP back to partition 0, block 1.
    expectGood(await r.port.execute(Cdb.locate16(1, { partition: 0 })));
    expect(await readPosLong()).toMatchObject({ partition: 0, object: 1 });
    expect(await readBlock(64)).toEqual(pattern(64, 2));
    // LOCATE without CP stays in the partition.
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    expectGood(await r.port.execute(Cdb.locate10(2)));
    expect(await readPosLong()).toMatchObject({ partition: 1, object: 2 });
    expect(await readBlock(71)).toEqual(pattern(71, 11));
    // LOCATE(16) to EOD of a partition, with CP.
    expectGood(await r.port.execute(Cdb.locate16(0, { partition: 0, destType: 3 })));
    expect(await readPosLong()).toMatchObject({ partition: 0, object: 2 });
    // REWIND from partition 1 goes to BOP of partition 0.
    expectGood(await r.port.execute(Cdb.locate10(1, { partition: 1 })));
    expectGood(await r.port.execute(Cdb.rewind()));
    expect(await readPosLong()).toEqual({ partition: 0, object: 0, file: 0, bop: true });
  });

  it('LOCATE beyond the end of data of a partition stops at its EOD; a partition the tape lacks is an invalid field', async () => {
    await write(10, 1);
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    await write(10, 2);
    expectSense(await r.port.execute(Cdb.locate10(5, { partition: 0 })), Sense.END_OF_DATA_DETECTED);
    expect(await readPosLong()).toMatchObject({ partition: 0, object: 1 });
    expectSense(await r.port.execute(Cdb.locate10(0, { partition: 2 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 8, bit: 7 } });
    expectSense(await r.port.execute(Cdb.locate16(0, { partition: 3 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 3, bit: 7 } });
    expect(await readPosLong()).toMatchObject({ partition: 0, object: 1 });
  });

  it('SPACE to EOD and READ stop at the end of data of the current partition', async () => {
    for (let i = 0; i < 3; i++) await write(20, i);
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    await write(30, 9);
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 0 })));
    expectGood(await r.port.execute(Cdb.space6(SpaceCode.endOfData)));
    expect(await readPosLong()).toMatchObject({ partition: 0, object: 3 });
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    expectGood(await r.port.execute(Cdb.space6(SpaceCode.endOfData)));
    expect(await readPosLong()).toMatchObject({ partition: 1, object: 1 });
    expectSense(await r.port.execute(Cdb.read6({ length: 30 })), Sense.END_OF_DATA_DETECTED);
    expectSense(await r.port.execute(Cdb.space6(SpaceCode.blocks, 1)), Sense.END_OF_DATA_DETECTED);
  });

  it('writing in one partition discards only that partition from the write point; the data survives unload and load', async () => {
    for (let i = 0; i < 3; i++) await write(40, i);
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    for (let i = 0; i < 3; i++) await write(50, 10 + i);
    expectGood(await r.port.execute(Cdb.writeFilemarks6(1)));
    // Overwrite from block 1 of partition 0.
    expectGood(await r.port.execute(Cdb.locate10(1, { partition: 0 })));
    await write(41, 99);
    expectGood(await r.port.execute(Cdb.writeFilemarks6(1)));
    const cart = await (async () => {
      const c = r.cartridge({ capacityBytes: CAP });
      await r.lu.unloadForRobot();
      r.lu.remove();
      return c;
    })();
    expect(checkCartridge(cart.path)).toMatchObject({ ok: true, partitions: [{ blocks: 2, filemarks: 1 }, { blocks: 3, filemarks: 1 }] });
    await r.lu.insert(cart);
    await drain(r.port);
    expect(await readPosLong()).toEqual({ partition: 0, object: 0, file: 0, bop: true });
    expect(await readBlock(40)).toEqual(pattern(40, 0));
    expect(await readBlock(41)).toEqual(pattern(41, 99));
    expectSense(await r.port.execute(Cdb.read6({ length: 40 })), Sense.FILEMARK_DETECTED);
    expectSense(await r.port.execute(Cdb.read6({ length: 40 })), Sense.END_OF_DATA_DETECTED);
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    for (let i = 0; i < 3; i++) expect(await readBlock(50)).toEqual(pattern(50, 10 + i));
    expect((await page11())[3]).toBe(1);
  });

  it('ERASE in one partition ends only its data; FORMAT MEDIUM with IMMED empties every partition', async () => {
    for (let i = 0; i < 2; i++) await write(20, i);
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    for (let i = 0; i < 3; i++) await write(30, 10 + i);
    expectGood(await r.port.execute(Cdb.locate10(1)));
    expectGood(await r.port.execute(Cdb.erase6()));
    expectGood(await r.port.execute(Cdb.space6(SpaceCode.endOfData)));
    expect(await readPosLong()).toMatchObject({ partition: 1, object: 1 });
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 0 })));
    expectGood(await r.port.execute(Cdb.space6(SpaceCode.endOfData)));
    expect(await readPosLong()).toMatchObject({ partition: 0, object: 2 });
    expectGood(await r.port.execute(Cdb.rewind()));
    expectGood(await r.port.execute(Cdb.formatMedium(1, { immediate: true })));
    expectGood(await r.port.execute(Cdb.testUnitReady()));
    expect((await page11())[3]).toBe(1);
    for (const p of [0, 1]) {
      expectGood(await r.port.execute(Cdb.locate10(0, { partition: p })));
      expectSense(await r.port.execute(Cdb.read6({ length: 20 })), Sense.END_OF_DATA_DETECTED);
    }
  });

  it('READ(16) and WRITE(16) change to the partition they name', async () => {
    await write(33, 3);
    const rw16 = (op: number, partition: number, object: number, n: number): Uint8Array => {
      const b = new Uint8Array(16);
      b[0] = op;
      b[3] = partition;
      setU64(b, 4, BigInt(object));
      b[12] = n >> 16;
      b[13] = (n >> 8) & 0xff;
      b[14] = n & 0xff;
      return b;
    };
    expectGood(await cdb(r.port, rw16(0x8a, 1, 0, 44), 0, pattern(44, 4)));
    expect(await readPosLong()).toMatchObject({ partition: 1, object: 1 });
    const rd = await cdb(r.port, rw16(0x88, 0, 0, 33), 33);
    expectGood(rd);
    expect(rd.data).toEqual(pattern(33, 3));
    expect(await readPosLong()).toMatchObject({ partition: 0, object: 1 });
    expectSense(await cdb(r.port, rw16(0x88, 2, 0, 33), 33), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 3, bit: 7 } });
  });

  it('each partition fills up on its own capacity', async () => {
    // Partition 0 holds 2 MB: a third 1 MiB block does not fit there, and does in partition 1.
    await write(1 << 20, 1);
    expectSense(await r.port.execute(Cdb.write6(pattern(1 << 20, 2))), Sense.VOLUME_OVERFLOW_EOM);
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    await write(1 << 20, 3);
    await write(1 << 20, 4);
  });

  it('READ ATTRIBUTE gives each partition its own remaining and maximum capacity (0000h, 0001h)', async () => {
    const capacity = async (partition: number): Promise<{ remaining: bigint; maximum: bigint }> => {
      const rd = await r.port.execute(Cdb.readAttribute({ partition, firstAttribute: 0, allocationLength: 4096 }));
      expectGood(rd);
      const out = new Map<number, bigint>();
      for (let off = 4; off + 5 <= 4 + getU32(rd.data, 0); ) {
        const id = getU16(rd.data, off);
        const len = getU16(rd.data, off + 3);
        if (len === 8) out.set(id, getU64(rd.data, off + 5));
        off += 5 + len;
      }
      return { remaining: out.get(0x0000)!, maximum: out.get(0x0001)! };
    };
    await write(1 << 20, 1);
    // 2 MB and 8 MB partitions, in MiB rounded down; 1 MiB written in partition 0 only.
    expect(await capacity(0)).toEqual({ remaining: 0n, maximum: 1n });
    expect(await capacity(1)).toEqual({ remaining: 7n, maximum: 7n });
  });

  it('a power cycle puts the position at BOP of partition 0 and keeps the layout', async () => {
    expectGood(await r.port.execute(Cdb.locate10(0, { partition: 1 })));
    await write(10, 1);
    r.lu.faults.powerCycle();
    await drain(r.port);
    expect(await readPosLong()).toEqual({ partition: 0, object: 0, file: 0, bop: true });
    expect((await page11())[3]).toBe(1);
  });
});
