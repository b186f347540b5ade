import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { getU32 } from '../../src/scsi/bytes.js';
import { Sense } from '../../src/scsi/sense.js';
import { cdb, expectGood, expectSense, pattern, raw, rig, type Rig } from './test-kit.js';
import { earlyWarningPoint } from './drive.js';

let r: Rig;
beforeEach(async () => {
  r = await rig();
});
afterEach(() => r.cleanup());

async function setBlockSize(size: number): Promise<void> {
  const params = new Uint8Array(12);
  params[3] = 8;
  params[9] = (size >> 16) & 0xff;
  params[10] = (size >> 8) & 0xff;
  params[11] = size & 0xff;
  expectGood(await r.port.execute(Cdb.modeSelect6(params)));
}

describe('READ/WRITE variable block', () => {
  it('writes and reads back blocks of different sizes', async () => {
    await r.load();
    const p = r.port;
    expectGood(await p.execute(Cdb.write6(pattern(1000, 1))));
    expectGood(await p.execute(Cdb.write6(pattern(10, 2))));
    expectGood(await p.execute(Cdb.writeFilemarks6(1)));
    expectGood(await p.execute(Cdb.rewind()));
    const a = await p.execute(Cdb.read6({ length: 1000 }));
    expectGood(a);
    expect(a.data).toEqual(pattern(1000, 1));
    const b = await p.execute(Cdb.read6({ length: 10 }));
    expect(b.data).toEqual(pattern(10, 2));
  });

  it('a shorter block gives ILI with a positive residue, unless SILI', async () => {
    await r.load();
    const p = r.port;
    expectGood(await p.execute(Cdb.write6(pattern(100, 1))));
    expectGood(await p.execute(Cdb.write6(pattern(100, 2))));
    expectGood(await p.execute(Cdb.rewind()));
    const short = await p.execute(Cdb.read6({ length: 150 }));
    expectSense(short, Sense.NO_ADDITIONAL_SENSE, { ili: true, information: 50 });
    expect(short.data).toEqual(pattern(100, 1));
    const sili = await p.execute(Cdb.read6({ length: 150, sili: true }));
    expectGood(sili);
    expect(sili.data).toEqual(pattern(100, 2));
  });

  it('a longer block gives ILI with a negative residue and the position after the block', async () => {
    await r.load();
    const p = r.port;
    expectGood(await p.execute(Cdb.write6(pattern(100, 1))));
    expectGood(await p.execute(Cdb.rewind()));
    const long = await p.execute(Cdb.read6({ length: 60 }));
    expectSense(long, Sense.NO_ADDITIONAL_SENSE, { ili: true, information: -40 });
    expect(long.data).toEqual(pattern(100, 1).subarray(0, 60));
    const pos = await p.execute(Cdb.readPosition());
    expect(getU32(pos.data, 4)).toBe(1);
  });

  it('a filemark gives FILEMARK DETECTED with the residue, positioned after it; then EOD is BLANK CHECK', async () => {
    await r.load();
    const p = r.port;
    expectGood(await p.execute(Cdb.writeFilemarks6(1)));
    expectGood(await p.execute(Cdb.rewind()));
    expectSense(await p.execute(Cdb.read6({ length: 512 })), Sense.FILEMARK_DETECTED, { filemark: true, information: 512 });
    expect(getU32((await p.execute(Cdb.readPosition())).data, 4)).toBe(1);
    expectSense(await p.execute(Cdb.read6({ length: 512 })), Sense.END_OF_DATA_DETECTED, { information: 512 });
    expect(getU32((await p.execute(Cdb.readPosition())).data, 4)).toBe(1);
  });

  it('refuses a variable block larger than the maximum block length', async () => {
    await r.load();
    const s = expectSense(await cdb(r.port, raw(0x0a, 0, 0xff, 0xff, 0xff, 0), 0, new Uint8Array(0)), Sense.INVALID_FIELD_IN_CDB);
    expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
  });

  it('writing in the middle truncates what follows', async () => {
    await r.load();
    const p = r.port;
    for (let i = 0; i < 4; i++) expectGood(await p.execute(Cdb.write6(pattern(50, i))));
    expectGood(await p.execute(Cdb.locate10(1)));
    expectGood(await p.execute(Cdb.write6(pattern(20, 9))));
    expectSense(await p.execute(Cdb.read6({ length: 50 })), Sense.END_OF_DATA_DETECTED);
    expect(r.lu.drive.media?.objectCount).toBe(2);
  });
});

describe('READ/WRITE fixed block', () => {
  it('transfers several blocks per command once MODE SELECT sets the block size', async () => {
    await r.load();
    const p = r.port;
    expectSense(await p.execute(Cdb.write6(pattern(512, 1), { fixed: true, blockSize: 512 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 1, bit: 0 } });
    await setBlockSize(512);
    const sensed = await p.execute(Cdb.modeSense6({ page: 0x10 }));
    expect(sensed.data[3]).toBe(8);
    expect(sensed.data[4]).toBe(0x5c);
    expect((sensed.data[9]! << 16) | (sensed.data[10]! << 8) | sensed.data[11]!).toBe(512);
    expectGood(await p.execute(Cdb.write6(pattern(2048, 3), { fixed: true, blockSize: 512 })));
    expectGood(await p.execute(Cdb.writeFilemarks6(1)));
    expectGood(await p.execute(Cdb.rewind()));
    const rd = await p.execute(Cdb.read6({ length: 4, fixed: true, blockSize: 512 }));
    expectGood(rd);
    expect(rd.data).toEqual(pattern(2048, 3));
    expectGood(await p.execute(Cdb.rewind()));
    const more = await p.execute(Cdb.read6({ length: 6, fixed: true, blockSize: 512 }));
    expectSense(more, Sense.FILEMARK_DETECTED, { filemark: true, information: 2 });
    expect(more.data.length).toBe(2048);
  });

  it('an incorrect-length block in fixed mode reports ILI with the block residue', async () => {
    await r.load();
    const p = r.port;
    expectGood(await p.execute(Cdb.write6(pattern(512, 1))));
    expectGood(await p.execute(Cdb.write6(pattern(100, 2))));
    expectGood(await p.execute(Cdb.rewind()));
    await setBlockSize(512);
    const rd = await p.execute(Cdb.read6({ length: 3, fixed: true, blockSize: 512 }));
    expectSense(rd, Sense.NO_ADDITIONAL_SENSE, { ili: true, information: 2 });
    expect(rd.data.length).toBe(512);
  });

  it('SILI with FIXED is an invalid field', async () => {
    await r.load();
    await setBlockSize(512);
    expectSense(await cdb(r.port, raw(0x08, 0x03, 0, 0, 1, 0), 512), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 1, bit: 1 } });
  });

  it('MODE SELECT refuses a block length the drive cannot do and an unknown density', async () => {
    await r.load();
    const params = new Uint8Array(12);
    params[3] = 8;
    params[9] = 0xff;
    params[10] = 0xff;
    params[11] = 0xff;
    expectSense(await r.port.execute(Cdb.modeSelect6(params)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 9, bit: 7 } });
    const dens = new Uint8Array(12);
    dens[3] = 8;
    dens[4] = 0x42;
    expectSense(await r.port.execute(Cdb.modeSelect6(dens)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 4, bit: 7 } });
  });
});

describe('WRITE FILEMARKS', () => {
  it('writes filemarks with both CDB forms; count 0 only flushes; setmarks are refused', async () => {
    await r.load();
    const p = r.port;
    expectGood(await p.execute(Cdb.writeFilemarks6(2)));
    expectGood(await p.execute(Cdb.writeFilemarks16(1)));
    expectGood(await p.execute(Cdb.writeFilemarks6(0)));
    expect(r.lu.drive.media?.filemarkCount).toBe(3);
    expectSense(await p.execute(Cdb.writeFilemarks6(1, { setmarks: true })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 1, bit: 1 } });
    expectSense(await cdb(p, raw(0x10, 0x04, 0, 0, 1, 0)), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 1, bit: 2 } });
  });
});

describe('filling a cartridge', () => {
  it('reports early warning with data written, then VOLUME OVERFLOW without writing', async () => {
    const cap = 100_000;
    await r.load({ capacityBytes: cap });
    const p = r.port;
    const ew = earlyWarningPoint(cap);
    let written = 0;
    while (written + 1000 < ew) {
      expectGood(await p.execute(Cdb.write6(pattern(1000, written))));
      written += 1000;
    }
    // This write crosses the early-warning point: data written, NO SENSE with EOM.
    const warn = await p.execute(Cdb.write6(pattern(1000, 1)));
    const first = expectSense(warn, Sense.END_OF_PARTITION_MEDIUM_DETECTED, { eom: true, information: 0 });
    expect(first.key).toBe(0);
    written += 1000;
    expect(r.lu.drive.media?.dataBytes).toBe(written);
    const pos = await p.execute(Cdb.readPosition());
    expect(pos.data[0]! & 0x40).toBe(0x40);
    // Filemarks in the early-warning zone are written with the same warning.
    expectSense(await p.execute(Cdb.writeFilemarks6(1)), Sense.END_OF_PARTITION_MEDIUM_DETECTED, { eom: true });
    while (written + 1000 <= cap) {
      expectSense(await p.execute(Cdb.write6(pattern(1000, 2))), Sense.END_OF_PARTITION_MEDIUM_DETECTED, { eom: true });
      written += 1000;
    }
    const over = await p.execute(Cdb.write6(pattern(1000, 3)));
    expectSense(over, Sense.VOLUME_OVERFLOW_EOM, { eom: true, information: 1000 });
    expect(r.lu.drive.media?.dataBytes).toBe(written);
  });

  it('in fixed mode the overflow residue counts the blocks not written', async () => {
    await r.load({ capacityBytes: 10_000 });
    await setBlockSize(1000);
    const w = await r.port.execute(Cdb.write6(pattern(12_000, 1), { fixed: true, blockSize: 1000 }));
    expectSense(w, Sense.VOLUME_OVERFLOW_EOM, { eom: true, information: 2 });
    expect(r.lu.drive.media?.dataBytes).toBe(10_000);
  });
});
