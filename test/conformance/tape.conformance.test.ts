/**
 * SSC conformance of a tape drive, over every binding: each command's normal behaviour
 * and at least one of its errors, with exact sense, data and positions.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/devices/command.js';
import { VolumeOverflowError } from '../../src/devices/errors.js';
import { AttributeId, asciiAttribute, binaryAttribute, textAttribute } from '../../src/scsi/parse-attribute.js';
import { parseSupportedLogPages } from '../../src/scsi/parse-log.js';
import { Cdb, DeviceType, SpaceCode } from '../../src/scsi/index.js';
import { decodeSense, Sense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import type { ScsiPort } from '../../src/transport/scsi-port.js';
import { bindings, type OpenedLab } from './bindings.js';
import { clients, expectSense, mount, pattern, tidy, type Clients } from './helpers.js';

const LTO8_DENSITY = 0x5e;
const LTO7_DENSITY = 0x5c;

async function rawCdb(port: ScsiPort, cdb: number[], dataInLength = 0): Promise<ReturnType<typeof decodeSense>> {
  const r = await port.execute(dataInLength > 0 ? { cdb: Uint8Array.from(cdb), direction: 'in', dataInLength } : { cdb: Uint8Array.from(cdb), direction: 'none' });
  expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
  return decodeSense(r.sense);
}

describe.each(bindings)('tape drive over $name', (binding) => {
  let lab: OpenedLab;
  let c: Clients;

  beforeEach(async (ctx) => {
    if (binding.skip) ctx.skip();
    lab = await binding.open();
    c = clients(lab);
  });

  afterEach(async () => {
    if (!lab) return;
    try {
      if (!lab.library) await tidy(c);
      for (const u of lab.driveUnits ?? []) expect(u.unit.bugs, `emulator bugs in ${u.name}`).toEqual([]);
      expect(lab.library?.changer.bugs ?? []).toEqual([]);
    } finally {
      await lab.close();
      lab = undefined as unknown as OpenedLab;
    }
  });

  const drive = () => c.drives[0]!;
  const scratch = () => lab.media.scratch[0]!;
  const noEmulator = (): boolean => lab?.library === undefined;

  /** Writes B0 B1 B2 FM B3 B4 FM FM B5 (objects 0..8, EOD at 9) and rewinds. */
  async function layOut(): Promise<Uint8Array[]> {
    const blocks = [0, 1, 2, 3, 4, 5].map((i) => pattern(100 + i * 10, i));
    const d = drive();
    await d.writeBlock(blocks[0]!);
    await d.writeBlock(blocks[1]!);
    await d.writeBlock(blocks[2]!);
    await d.writeFilemarks(1);
    await d.writeBlock(blocks[3]!);
    await d.writeBlock(blocks[4]!);
    await d.writeFilemarks(2);
    await d.writeBlock(blocks[5]!);
    await d.rewind();
    return blocks;
  }

  describe('readiness and identity', () => {
    it('TEST UNIT READY without a cartridge answers NOT READY / MEDIUM NOT PRESENT', async () => {
      await expectSense(drive().testUnitReady(), Sense.MEDIUM_NOT_PRESENT);
    });

    it('TEST UNIT READY with a cartridge loaded is GOOD', async () => {
      await mount(c, scratch());
      await expect(drive().testUnitReady()).resolves.toBeUndefined();
    });

    it('standard INQUIRY reports a removable sequential-access device', async () => {
      const q = await drive().inquiry();
      expect(q.deviceType).toBe(DeviceType.sequentialAccess);
      expect(q.peripheralQualifier).toBe(0);
      expect(q.removable).toBe(true);
      expect(q.vendor.trim().length).toBeGreaterThan(0);
      expect(q.product.trim().length).toBeGreaterThan(0);
      expect(q.responseDataFormat).toBe(2);
    });

    it('VPD 00h lists 00h, 80h, 83h and B0h, and every listed page answers', async () => {
      const pages = await drive().supportedVpdPages();
      expect(pages).toEqual(expect.arrayContaining([0x00, 0x80, 0x83, 0xb0]));
      expect([...pages].sort((a, b) => a - b)).toEqual(pages);
      for (const p of pages) {
        const bytes = await drive().vpdPage(p);
        expect(bytes[1], `page code of VPD ${p.toString(16)}`).toBe(p);
      }
    });

    it('VPD 80h gives the drive serial number the library was configured with', async () => {
      const serial = await drive().unitSerialNumber();
      expect(serial.trim().length).toBeGreaterThan(0);
      if (lab.driveSerials) expect(serial.trim()).toBe(lab.driveSerials[0]);
      if (c.drives[1]) expect((await c.drives[1].unitSerialNumber()).trim()).not.toBe(serial.trim());
    });

    it('VPD 83h carries at least one logical unit designator that differs between drives', async () => {
      const ids = await drive().deviceIdentification();
      const lu = ids.filter((d) => d.association === 0);
      expect(lu.length).toBeGreaterThan(0);
      if (c.drives[1]) {
        const other = (await c.drives[1].deviceIdentification()).filter((d) => d.association === 0);
        expect(other.map((d) => d.text)).not.toEqual(lu.map((d) => d.text));
      }
    });

    it('VPD B0h reports WORM support on an LTO-8 drive', async () => {
      const caps = await drive().capabilities();
      expect(caps.worm).toBe(true);
    });

    it('VPD B1h gives the manufacturer-assigned serial number', async () => {
      const sn = await drive().manufacturerSerialNumber();
      expect(sn.trim().length).toBeGreaterThan(0);
    });

    it('INQUIRY of an unsupported VPD page is ILLEGAL REQUEST / INVALID FIELD IN CDB pointing at byte 2', async () => {
      const e = await expectSense(drive().vpdPage(0xee), Sense.INVALID_FIELD_IN_CDB);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
    });

    it('REQUEST SENSE says why the drive is not ready, then NO SENSE once it is', async () => {
      const s = await drive().requestSense();
      expect(s.key).toBe(Sense.MEDIUM_NOT_PRESENT.key);
      expect([s.asc, s.ascq]).toEqual([0x3a, 0x00]);
      await mount(c, scratch());
      const ok = await drive().requestSense();
      expect([ok.key, ok.asc, ok.ascq]).toEqual([0, 0, 0]);
    });

    it('REQUEST SENSE with a reserved bit set is refused with a field pointer', async () => {
      const s = await rawCdb(drive().port, [0x03, 0x02, 0, 0, 252, 0]);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 1 });
    });

    it('REPORT LUNS lists the changer and every drive of the target', async () => {
      const luns = (await drive().reportLuns()).map((l) => l.lun);
      if (lab.library) expect(luns).toEqual([0, ...lab.library.drives.map((d) => d.lun)]);
      else expect(luns.length).toBeGreaterThan(0);
    });

    it('REPORT LUNS with an allocation length under 16 is refused', async () => {
      const s = await rawCdb(drive().port, [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], 8);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer?.inCdb).toBe(true);
    });

    it('an unknown operation code is ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE at byte 0', async () => {
      const s = await rawCdb(drive().port, [0xc5, 0, 0, 0, 0, 0]);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x20, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 0 });
    });
  });

  describe('mode and log pages', () => {
    it('MODE SENSE(6) and (10) agree on density, block size and write protection', async () => {
      await mount(c, scratch());
      const m6 = await drive().modeSense(0x3f);
      const m10 = await drive().modeSense(0x3f, { form: 10 });
      expect(m6.blockDescriptors[0]?.densityCode).toBe(LTO8_DENSITY);
      expect(m10.blockDescriptors[0]?.densityCode).toBe(LTO8_DENSITY);
      expect(m6.blockDescriptors[0]?.blockLength).toBe(m10.blockDescriptors[0]?.blockLength);
      expect(m6.writeProtected).toBe(false);
      expect(m6.pages.map((p) => p.pageCode)).toEqual(m10.pages.map((p) => p.pageCode));
      expect(m6.pages.map((p) => p.pageCode)).toEqual(expect.arrayContaining([0x0a, 0x10]));
    });

    it('MODE SENSE of page 00h gives the header and block descriptor alone (what Linux st reads at open)', async () => {
      await mount(c, lab.media.writeProtected ?? scratch());
      const m = await drive().modeSense(0x00);
      expect(m.pages).toEqual([]);
      expect(m.blockDescriptors[0]?.densityCode).toBe(LTO8_DENSITY);
      expect(m.writeProtected).toBe(lab.media.writeProtected !== undefined);
    });

    it('MODE SENSE of a page the drive lacks is refused at byte 2', async () => {
      const e = await expectSense(drive().modeSense(0x3e), Sense.INVALID_FIELD_IN_CDB);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
    });

    it('MODE SELECT sets a fixed block size that MODE SENSE then reports, and variable mode back', async () => {
      await mount(c, scratch());
      await drive().setBlockSize(512);
      expect((await drive().blockMode()).blockSize).toBe(512);
      await drive().setBlockSize(0);
      expect((await drive().blockMode()).blockSize).toBe(0);
    });

    it('MODE SELECT of a block size beyond READ BLOCK LIMITS is refused and changes nothing', async () => {
      await mount(c, scratch());
      const limits = await drive().readBlockLimits();
      const e = await expectSense(drive().setBlockSize(limits.maxBlockLength + 1), Sense.INVALID_FIELD_IN_PARAMETER_LIST);
      expect(e.fieldPointer?.inCdb).toBe(false);
      expect((await drive().blockMode()).blockSize).toBe(0);
    });

    it('LOG SENSE page 00h lists 0Ch, 2Eh and 31h', async () => {
      const data = await run(drive().port, Cdb.logSense({ page: 0 }), DeviceType.sequentialAccess);
      const pages = parseSupportedLogPages(data).map((p) => p.pageCode);
      expect(pages).toEqual(expect.arrayContaining([0x0c, 0x2e, 0x31]));
    });

    it('LOG SENSE 0Ch counts the bytes the host wrote and read', async () => {
      await mount(c, scratch());
      await drive().writeBlock(pattern(5000, 1));
      await drive().rewind();
      await drive().read(5000);
      const page = await drive().logSense(0x0c);
      const value = (code: number): bigint => {
        const p = page.parameters.find((q) => q.code === code);
        if (!p) throw new Error(`parameter ${code} missing`);
        return p.value.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
      };
      expect(value(0)).toBe(5000n);
      expect(value(3)).toBe(5000n);
    });

    it('LOG SENSE 2Eh reports a raised TapeAlert flag, and reading clears it', async () => {
      await mount(c, lab.media.writeProtected ?? scratch());
      if (lab.media.writeProtected) {
        await expectSense(drive().writeBlock(pattern(10, 1)), Sense.WRITE_PROTECTED);
        expect((await drive().tapeAlerts()).map((a) => a.flag)).toContain(9);
        expect((await drive().tapeAlerts()).map((a) => a.flag)).not.toContain(9);
      } else {
        const page = await drive().logSense(0x2e);
        expect(page.parameters.length).toBe(64);
      }
    });

    it('LOG SENSE 31h reports the cartridge capacity', async () => {
      await mount(c, scratch());
      const page = await drive().logSense(0x31);
      const max = page.parameters.find((p) => p.code === 3);
      expect(max).toBeDefined();
      if (lab.library) expect(Number(max!.value.reduce((n, b) => (n << 8n) | BigInt(b), 0n))).toBe(8);
    });

    it('LOG SENSE of an unknown page is refused at byte 2', async () => {
      const e = await expectSense(drive().logSense(0x3a), Sense.INVALID_FIELD_IN_CDB);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
    });

    it('LOG SELECT with PCR resets the 0Ch counters; a parameter list is refused', async () => {
      await mount(c, scratch());
      await drive().writeBlock(pattern(3000, 2));
      await run(drive().port, Cdb.logSelect({ parameterCodeReset: true }), DeviceType.sequentialAccess);
      const page = await drive().logSense(0x0c);
      expect(page.parameters.find((p) => p.code === 0)?.value.every((b) => b === 0)).toBe(true);
      await expectSense(run(drive().port, Cdb.logSelect({ params: Uint8Array.of(0x0c, 0, 0, 4, 0, 0, 0x03, 0) }), DeviceType.sequentialAccess), Sense.INVALID_FIELD_IN_PARAMETER_LIST);
    });

    it('REPORT SUPPORTED OPERATION CODES lists exactly what the drive dispatches', async () => {
      const list = await drive().supportedOperationCodes();
      const opcodes = new Set(list.map((x) => x.opcode));
      for (const op of [0x00, 0x01, 0x03, 0x05, 0x08, 0x0a, 0x10, 0x11, 0x12, 0x15, 0x1a, 0x1b, 0x1e, 0x2b, 0x34, 0x4c, 0x4d, 0x5a, 0x8c, 0x8d, 0xa0, 0xa3]) {
        expect(opcodes.has(op), `opcode 0x${op.toString(16)}`).toBe(true);
      }
      const unit = lab.driveUnits?.[0];
      if (unit) {
        const table = unit.unit.table.all().map((s) => `${s.opcode}/${s.serviceAction ?? ''}`).sort();
        expect(list.map((x) => `${x.opcode}/${x.serviceAction ?? ''}`).sort()).toEqual(table);
      }
      const one = await drive().commandSupport(0x08);
      expect(one.supported).toBe(true);
      expect(one.cdbUsage.length).toBe(6);
      expect((await drive().commandSupport(0xc5)).supported).toBe(false);
    });

    it('REPORT SUPPORTED OPERATION CODES for one command starts its CDB usage data with the operation code', async () => {
      const one = await drive().commandSupport(0x08);
      expect(one.cdbUsage[0]).toBe(0x08);
    });

    it('REPORT SUPPORTED OPERATION CODES with an undefined reporting option is refused at byte 2', async () => {
      const s = await rawCdb(drive().port, [0xa3, 0x0c, 0x07, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], 4096);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
    });
  });

  describe('reading and writing', () => {
    it('READ BLOCK LIMITS gives a usable range, and a reserved bit is refused', async () => {
      const l = await drive().readBlockLimits();
      expect(l.maxBlockLength).toBeGreaterThanOrEqual(l.minBlockLength);
      expect(l.minBlockLength).toBeGreaterThanOrEqual(1);
      expect(l.maxBlockLength).toBeGreaterThanOrEqual(262144);
      const s = await rawCdb(drive().port, [0x05, 0x02, 0, 0, 0, 0], 6);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
    });

    it('variable-block WRITE then READ returns the same bytes', async () => {
      await mount(c, scratch());
      const blocks = [pattern(1, 1), pattern(4096, 2), pattern(65536, 3), pattern(262144, 4)];
      for (const b of blocks) expect((await drive().writeBlock(b)).written).toBe(b.length);
      await drive().rewind();
      for (const b of blocks) {
        const r = await drive().read(262144);
        expect(r.data).toEqual(b);
        expect(r.ili).toBe(b.length !== 262144);
        expect(r.residue).toBe(262144 - b.length);
      }
      const end = await drive().read(1000);
      expect(end.eod).toBe(true);
      expect(end.residue).toBe(1000);
    });

    it('READ of a shorter block reports ILI with a positive residue, and SILI suppresses it', async () => {
      await mount(c, scratch());
      const b = pattern(1000, 5);
      await drive().writeBlock(b);
      await drive().writeBlock(b);
      await drive().rewind();
      const r = await drive().read(2000);
      expect(r).toMatchObject({ ili: true, residue: 1000, blockLength: 1000, filemark: false, eod: false });
      expect(r.data).toEqual(b);
      const s = await drive().read(2000, { sili: true });
      expect(s).toMatchObject({ ili: false, residue: 0 });
      expect(s.data).toEqual(b);
    });

    it('READ of a longer block returns the requested bytes, ILI, a negative residue, and moves past the block', async () => {
      await mount(c, scratch());
      const b = pattern(1000, 6);
      await drive().writeBlock(b);
      await drive().writeBlock(pattern(10, 7));
      await drive().rewind();
      const r = await drive().read(400, { sili: true });
      expect(r).toMatchObject({ ili: true, residue: -600, blockLength: 1000 });
      expect(r.data).toEqual(b.subarray(0, 400));
      expect((await drive().position()).block).toBe(1);
    });

    it('fixed-block WRITE and READ move whole blocks; a filemark stops a READ with the residue in blocks', async () => {
      await mount(c, scratch());
      await drive().setBlockSize(512);
      const data = pattern(512 * 4, 8);
      expect((await drive().writeBlocks(data)).written).toBe(2048);
      await drive().writeFilemarks(1);
      await drive().rewind();
      const two = await drive().readBlocks(2);
      expect(two.data).toEqual(data.subarray(0, 1024));
      const rest = await drive().readBlocks(5);
      expect(rest).toMatchObject({ filemark: true, residue: 3 });
      expect(rest.data).toEqual(data.subarray(1024));
      expect((await drive().position()).block).toBe(5);
    });

    it('fixed-block READ of a block of another size reports ILI with the blocks not read', async () => {
      await mount(c, scratch());
      await drive().writeBlock(pattern(512, 1));
      await drive().writeBlock(pattern(700, 2));
      await drive().setBlockSize(512);
      await drive().rewind();
      const r = await drive().readBlocks(3);
      expect(r).toMatchObject({ ili: true, residue: 2 });
      expect(r.data).toEqual(pattern(512, 1));
    });

    it('fixed-block READ in variable mode, and SILI with FIXED, are refused', async () => {
      await mount(c, scratch());
      await expectSense(drive().readBlocks(1, { blockSize: 512 }), Sense.INVALID_FIELD_IN_CDB);
      const s = await rawCdb(drive().port, [0x08, 0x03, 0, 0, 1, 0], 512);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 1 });
    });

    it('WRITE without a cartridge is NOT READY / MEDIUM NOT PRESENT', async () => {
      await expectSense(drive().writeBlock(pattern(10, 1)), Sense.MEDIUM_NOT_PRESENT);
    });

    it('WRITE FILEMARKS writes filemarks a READ then reports, and setmarks are refused', async () => {
      await mount(c, scratch());
      await drive().writeBlock(pattern(10, 1));
      expect((await drive().writeFilemarks(2)).written).toBe(2);
      expect((await drive().position()).block).toBe(3);
      await drive().rewind();
      await drive().read(10);
      expect(await drive().read(10)).toMatchObject({ filemark: true, residue: 10 });
      expect(await drive().read(10)).toMatchObject({ filemark: true });
      expect(await drive().read(10)).toMatchObject({ eod: true });
      const s = await rawCdb(drive().port, [0x10, 0x02, 0, 0, 1, 0]);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 1 });
    });

    it('a WRITE in the middle of the data makes it the new end of data', async () => {
      await mount(c, scratch());
      await layOut();
      await drive().locate(2);
      await drive().writeBlock(pattern(50, 9));
      await drive().rewind();
      await drive().read(1000);
      await drive().read(1000);
      expect((await drive().read(1000)).data).toEqual(pattern(50, 9));
      expect((await drive().read(1000)).eod).toBe(true);
    });
  });

  describe('positioning', () => {
    it('SPACE over blocks forward and backward stops at filemarks with the residue', async () => {
      await mount(c, scratch());
      const blocks = await layOut();
      expect(await drive().space(SpaceCode.blocks, 2)).toMatchObject({ residue: 0, filemark: false });
      expect((await drive().position()).block).toBe(2);
      expect(await drive().space(SpaceCode.blocks, 5)).toMatchObject({ residue: 4, filemark: true });
      expect((await drive().position()).block).toBe(4);
      expect((await drive().read(1000)).data).toEqual(blocks[3]);
      expect(await drive().space(SpaceCode.blocks, -1)).toMatchObject({ residue: 0 });
      expect(await drive().space(SpaceCode.blocks, -2)).toMatchObject({ residue: 2, filemark: true });
      expect((await drive().position()).block).toBe(3);
    });

    it('SPACE over filemarks forward and backward lands on the right side of them', async () => {
      await mount(c, scratch());
      const blocks = await layOut();
      expect(await drive().space(SpaceCode.filemarks, 2)).toMatchObject({ residue: 0 });
      expect((await drive().position()).block).toBe(7);
      expect(await drive().space(SpaceCode.filemarks, -1)).toMatchObject({ residue: 0 });
      expect((await drive().position()).block).toBe(6);
      expect(await drive().space(SpaceCode.filemarks, 1, { cdb: 16 })).toMatchObject({ residue: 0 });
      expect((await drive().position()).block).toBe(7);
      await drive().space(SpaceCode.filemarks, 1);
      expect((await drive().read(1000)).data).toEqual(blocks[5]);
    });

    it('SPACE over sequential filemarks finds the first run of that many', async () => {
      await mount(c, scratch());
      const blocks = await layOut();
      const r = await drive().space(SpaceCode.sequentialFilemarks, 2);
      expect(r.residue).toBe(0);
      expect((await drive().position()).block).toBe(8);
      expect((await drive().read(1000)).data).toEqual(blocks[5]);
      await drive().rewind();
      expect(await drive().space(SpaceCode.sequentialFilemarks, 3)).toMatchObject({ eod: true });
      expect((await drive().position()).block).toBe(9);
    });

    it('SPACE to end of data positions for appending', async () => {
      await mount(c, scratch());
      await layOut();
      expect(await drive().spaceToEndOfData()).toMatchObject({ residue: 0, eod: false });
      expect((await drive().position()).block).toBe(9);
      expect((await drive().read(10)).eod).toBe(true);
    });

    it('SPACE forward into end of data is BLANK CHECK with the residue; backward into BOP says BOP', async () => {
      await mount(c, scratch());
      await layOut();
      expect(await drive().space(SpaceCode.filemarks, 5)).toMatchObject({ eod: true, residue: 2 });
      expect((await drive().position()).block).toBe(9);
      expect(await drive().space(SpaceCode.blocks, 1)).toMatchObject({ eod: true, residue: 1 });
      await drive().locate(2);
      expect(await drive().space(SpaceCode.blocks, -20)).toMatchObject({ bop: true, residue: 18 });
      const p = await drive().position();
      expect(p).toMatchObject({ block: 0, bop: true });
      await drive().locate(8);
      expect(await drive().space(SpaceCode.filemarks, -4)).toMatchObject({ bop: true, residue: 1 });
      expect((await drive().position()).block).toBe(0);
    });

    it('SPACE with a reserved code is refused at byte 1; without a cartridge it is NOT READY', async () => {
      await expectSense(drive().space(SpaceCode.blocks, 1), Sense.MEDIUM_NOT_PRESENT);
      await mount(c, scratch());
      const s = await rawCdb(drive().port, [0x11, 0x04, 0, 0, 1, 0]);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 1 });
    });

    it('REWIND returns to BOP from anywhere', async () => {
      await mount(c, scratch());
      await layOut();
      await drive().spaceToEndOfData();
      await drive().rewind();
      expect(await drive().position({ form: 'short' })).toMatchObject({ block: 0, bop: true, eop: false, unknown: false });
    });

    it('REWIND without a cartridge is NOT READY / MEDIUM NOT PRESENT', async () => {
      await expectSense(drive().rewind(), Sense.MEDIUM_NOT_PRESENT);
    });

    it('READ POSITION short and long forms agree on the block; the long form counts files', async () => {
      await mount(c, scratch());
      await layOut();
      await drive().locate(7);
      const s = await drive().position({ form: 'short' });
      const l = await drive().position({ form: 'long' });
      expect(s).toMatchObject({ form: 'short', block: 7, partition: 0, bop: false });
      expect(l).toMatchObject({ form: 'long', block: 7, fileNumber: 2, partition: 0, bop: false });
    });

    it('READ POSITION with an undefined service action is refused at byte 1', async () => {
      await mount(c, scratch());
      const s = await rawCdb(drive().port, [0x34, 0x02, 0, 0, 0, 0, 0, 0, 0, 0], 32);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 1 });
    });

    it('LOCATE(10) and LOCATE(16) reach a block, a file and end of data', async () => {
      await mount(c, scratch());
      const blocks = await layOut();
      await drive().locate(4);
      expect((await drive().read(1000)).data).toEqual(blocks[3]);
      await drive().locate(1, { cdb: 16 });
      expect((await drive().read(1000)).data).toEqual(blocks[1]);
      await drive().locate(2, { destType: 1 });
      expect((await drive().position()).block).toBe(7);
      await drive().locate(0, { destType: 3 });
      expect((await drive().position()).block).toBe(9);
    });

    it('LOCATE past end of data is BLANK CHECK / END-OF-DATA DETECTED and leaves the tape at EOD', async () => {
      await mount(c, scratch());
      await layOut();
      await expectSense(drive().locate(50), Sense.END_OF_DATA_DETECTED);
      expect((await drive().position()).block).toBe(9);
      await expectSense(drive().locate(50, { cdb: 16 }), Sense.END_OF_DATA_DETECTED);
    });

    it('LOCATE to a partition the cartridge does not have is refused at byte 8', async () => {
      await mount(c, scratch());
      const e = await expectSense(drive().locate(0, { partition: 1 }), Sense.INVALID_FIELD_IN_CDB);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 8 });
    });
  });

  describe('medium handling', () => {
    it('UNLOAD leaves the drive needing LOAD, and LOAD makes it ready at BOP', async () => {
      await mount(c, scratch());
      await drive().writeBlock(pattern(10, 1));
      await drive().unload({ hold: true });
      await expectSense(drive().testUnitReady(), Sense.INITIALIZING_COMMAND_REQUIRED);
      await drive().load();
      await drive().waitReady({ intervalMs: 50, timeoutMs: 60_000 });
      expect((await drive().position()).block).toBe(0);
      expect((await drive().read(100)).data).toEqual(pattern(10, 1));
    });

    it('LOAD with EOT set is refused at byte 4; LOAD without a cartridge is NOT READY', async () => {
      await expectSense(drive().load(), Sense.MEDIUM_NOT_PRESENT);
      await mount(c, scratch());
      const s = await rawCdb(drive().port, [0x1b, 0, 0, 0, 0x05, 0]);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 4 });
    });

    it('PREVENT MEDIUM REMOVAL makes UNLOAD fail with MEDIUM REMOVAL PREVENTED until ALLOW', async () => {
      await mount(c, scratch());
      await drive().preventRemoval();
      await expectSense(drive().unload(), Sense.MEDIUM_REMOVAL_PREVENTED);
      await expect(drive().testUnitReady()).resolves.toBeUndefined();
      await drive().allowRemoval();
      await drive().unload();
      await expectSense(drive().testUnitReady(), Sense.INITIALIZING_COMMAND_REQUIRED);
    });

    it('PREVENT with the magazine values (2, 3) is refused on a drive', async () => {
      const s = await rawCdb(drive().port, [0x1e, 0, 0, 0, 0x02, 0]);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 4 });
    });

    it('ERASE at a position makes it end of data; ERASE of a write-protected cartridge is refused', async () => {
      await mount(c, scratch());
      await layOut();
      await drive().locate(4);
      await drive().erase();
      await drive().rewind();
      await drive().spaceToEndOfData();
      expect((await drive().position()).block).toBe(4);
      await drive().locate(3);
      expect(await drive().read(10)).toMatchObject({ filemark: true });
      expect(await drive().read(10)).toMatchObject({ eod: true });
      if (lab.media.writeProtected) {
        await tidy(c);
        await mount(c, lab.media.writeProtected);
        await expectSense(drive().erase(), Sense.WRITE_PROTECTED);
      }
    });

    it('REPORT DENSITY SUPPORT lists LTO-8 and LTO-7 as writable and the mounted medium alone with MEDIA', async () => {
      const all = await drive().reportDensitySupport();
      const codes = all.map((d) => d.primaryDensityCode);
      expect(codes).toEqual(expect.arrayContaining([LTO8_DENSITY, LTO7_DENSITY]));
      expect(all.find((d) => d.primaryDensityCode === LTO8_DENSITY)).toMatchObject({ writeOk: true, defaultDensity: true });
      expect(all.find((d) => d.primaryDensityCode === LTO7_DENSITY)?.writeOk).toBe(true);
      await expectSense(drive().reportDensitySupport({ media: true }), Sense.MEDIUM_NOT_PRESENT);
      await mount(c, scratch());
      const mounted = await drive().reportDensitySupport({ media: true });
      expect(mounted.map((d) => d.primaryDensityCode)).toEqual([LTO8_DENSITY]);
      const types = await drive().reportMediumTypeSupport();
      expect(types.length).toBeGreaterThan(0);
    });

    it('READ ATTRIBUTE gives the barcode; a user label written with WRITE ATTRIBUTE reads back', async () => {
      await mount(c, scratch());
      const barcode = await drive().readAttribute(AttributeId.BARCODE);
      expect(String(barcode?.decoded).trim()).toBe(scratch());
      await drive().writeAttribute(textAttribute(AttributeId.USER_MEDIUM_TEXT_LABEL, 'conformance label'));
      await drive().writeAttribute(asciiAttribute(AttributeId.APPLICATION_VENDOR, 'PTPVTS'));
      const label = await drive().readAttribute(AttributeId.USER_MEDIUM_TEXT_LABEL);
      expect(String(label?.decoded).replace(/\0+$/, '').trim()).toBe('conformance label');
      expect(String((await drive().readAttribute(AttributeId.APPLICATION_VENDOR))?.decoded).trim()).toBe('PTPVTS');
      const all = await drive().readAttributes();
      expect(all.find((a) => a.id === AttributeId.REMAINING_CAPACITY_IN_PARTITION)?.readOnly).toBe(true);
    });

    it('WRITE ATTRIBUTE of a read-only attribute is refused with a pointer into the parameter list, and changes nothing', async () => {
      await mount(c, scratch());
      const before = await drive().readAttribute(AttributeId.LOAD_COUNT);
      const e = await expectSense(drive().writeAttributes([binaryAttribute(AttributeId.LOAD_COUNT, 99)]), Sense.INVALID_FIELD_IN_PARAMETER_LIST);
      expect(e.fieldPointer).toMatchObject({ inCdb: false, byte: 4 });
      expect((await drive().readAttribute(AttributeId.LOAD_COUNT))?.decoded).toEqual(before?.decoded);
    });
  });

  describe('media rules', () => {
    it('a write-protected cartridge reads but refuses WRITE and WRITE FILEMARKS with DATA PROTECT / WRITE PROTECTED', async (ctx) => {
      if (!lab.media.writeProtected) return ctx.skip();
      await mount(c, lab.media.writeProtected);
      expect((await drive().blockMode()).writeProtected).toBe(true);
      await expectSense(drive().writeBlock(pattern(100, 1)), Sense.WRITE_PROTECTED);
      await expectSense(drive().writeFilemarks(1), Sense.WRITE_PROTECTED);
      expect((await drive().read(100)).eod).toBe(true);
      const mounted = await drive().reportDensitySupport({ media: true });
      expect(mounted[0]?.writeOk).toBe(false);
    });

    it('a WORM cartridge appends but refuses an overwrite with WORM MEDIUM - OVERWRITE ATTEMPTED', async (ctx) => {
      if (!lab.media.worm) return ctx.skip();
      await mount(c, lab.media.worm);
      expect((await drive().readAttribute(AttributeId.MEDIUM_TYPE))?.decoded).toBe(0x80n);
      await drive().writeBlock(pattern(100, 1));
      await drive().writeBlock(pattern(100, 2));
      await drive().rewind();
      await expectSense(drive().writeBlock(pattern(100, 3)), Sense.WORM_OVERWRITE_ATTEMPTED);
      await expectSense(drive().erase(), Sense.WORM_OVERWRITE_ATTEMPTED);
      await drive().spaceToEndOfData();
      await drive().writeBlock(pattern(100, 4));
      await drive().rewind();
      for (const seed of [1, 2, 4]) expect((await drive().read(100)).data).toEqual(pattern(100, seed));
    });

    it('an LTO-7 cartridge is read and written in an LTO-8 drive at LTO-7 density', async (ctx) => {
      if (!lab.media.olderReadWrite) return ctx.skip();
      await mount(c, lab.media.olderReadWrite);
      expect((await drive().blockMode()).densityCode).toBe(LTO7_DENSITY);
      await drive().writeBlock(pattern(3000, 1));
      await drive().rewind();
      expect((await drive().read(3000)).data).toEqual(pattern(3000, 1));
    });

    it('an LTO-6 cartridge in an LTO-8 drive is refused with INCOMPATIBLE MEDIUM INSTALLED and TapeAlert 12', async (ctx) => {
      if (!lab.media.incompatible) return ctx.skip();
      // The library hands the cartridge over; the drive refuses to read or write it.
      await mount(c, lab.media.incompatible);
      await expectSense(drive().read(100), Sense.INCOMPATIBLE_MEDIUM_INSTALLED);
      await expectSense(drive().writeBlock(pattern(10, 1)), Sense.INCOMPATIBLE_MEDIUM_INSTALLED);
      expect((await drive().tapeAlerts()).map((a) => a.flag)).toContain(12);
      expect(await drive().reportDensitySupport({ media: true })).toEqual([]);
    });

    it('filling a small cartridge reports early warning with the data written, then VOLUME OVERFLOW', async (ctx) => {
      if (!lab.media.tiny || !lab.media.tinyCapacity) return ctx.skip();
      await mount(c, lab.media.tiny);
      const size = 32 * 1024;
      let written = 0;
      let warnedAt: number | undefined;
      let overflow: VolumeOverflowError | undefined;
      for (let i = 0; i < 200; i++) {
        try {
          const r = await drive().writeBlock(pattern(size, i));
          expect(r.written).toBe(size);
          written++;
          if (r.earlyWarning && warnedAt === undefined) {
            warnedAt = i;
            expect((await drive().position({ form: 'short' })).eop).toBe(true);
          }
          if (warnedAt === undefined) expect(r.earlyWarning).toBe(false);
          else expect(r.earlyWarning).toBe(true);
        } catch (e) {
          if (!(e instanceof VolumeOverflowError)) throw e;
          overflow = e;
          break;
        }
      }
      expect(warnedAt).toBeDefined();
      expect(warnedAt! * size).toBeLessThan(lab.media.tinyCapacity);
      expect(overflow).toBeDefined();
      expect([overflow!.key, overflow!.asc, overflow!.ascq]).toEqual([0x0d, 0x00, 0x02]);
      expect(overflow!.eom).toBe(true);
      expect(overflow!.notWritten).toBe(size);
      expect(written * size).toBeLessThanOrEqual(lab.media.tinyCapacity);
      expect((await drive().position()).block).toBe(written);
      // Filemarks still fit after early warning: that is what the warning is for.
      await drive().rewind();
      for (let i = 0; i < written; i++) expect((await drive().read(size)).data, `block ${i}`).toEqual(pattern(size, i));
      expect((await drive().read(size)).eod).toBe(true);
    });
  });

  describe('SSC-4 commands, IMMED, compression and encryption', () => {
    const exec = (cdb: number[] | Uint8Array, o: { in?: number; out?: Uint8Array } = {}) => {
      const b = Uint8Array.from(cdb);
      return drive().port.execute(o.out ? { cdb: b, direction: 'out', dataOut: o.out } : o.in ? { cdb: b, direction: 'in', dataInLength: o.in } : { cdb: b, direction: 'none' });
    };
    const good = async (p: ReturnType<typeof exec>): Promise<Uint8Array> => {
      const r = await p;
      if (r.status !== ScsiStatus.GOOD) expect.fail(`expected GOOD, got ${JSON.stringify(decodeSense(r.sense))}`);
      return r.data;
    };
    const senseOf = async (p: ReturnType<typeof exec>): Promise<ReturnType<typeof decodeSense> & { responseCode: number }> => {
      const r = await p;
      expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
      return { ...decodeSense(r.sense), responseCode: (r.sense[0] ?? 0) & 0x7f };
    };
    const cdb16 = (op: number, b1: number, loi: number, length: number): number[] => [op, b1, 0, 0, 0, 0, 0, 0, (loi >>> 24) & 0xff, (loi >> 16) & 0xff, (loi >> 8) & 0xff, loi & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff, 0];
    const u16 = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);
    const u32 = (b: Uint8Array, o: number): number => (u16(b, o) * 65536) + u16(b, o + 2);
    const spin = (protocol: number, page: number): number[] => [0xa2, protocol, page >> 8, page & 0xff, 0, 0, 0, 0, 0x20, 0, 0, 0];
    const spout = (params: Uint8Array): ReturnType<typeof exec> => exec([0xb5, 0x20, 0x00, 0x10, 0, 0, 0, 0, params.length >> 8, params.length & 0xff, 0, 0], { out: params });
    const setEncryption = (encrypt: number, decrypt: number, key?: Uint8Array): Uint8Array => {
      const p = new Uint8Array(20 + (key?.length ?? 0));
      p[1] = 0x10;
      p[3] = p.length - 4;
      p[4] = 0x40; // all I_T nexus
      p[6] = encrypt;
      p[7] = decrypt;
      p[8] = encrypt || decrypt ? 1 : 0;
      p[19] = key?.length ?? 0;
      if (key) p.set(key, 20);
      return p;
    };
    const KEY = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 ^ i);

    it('READ BLOCK LIMITS with MLOI answers the maximum logical object identifier in bytes 12..19 (SSC-4)', async () => {
      const r = await exec([0x05, 0x01, 0, 0, 0, 0], { in: 20 });
      if (noEmulator() && r.status !== ScsiStatus.GOOD) {
        // A drive of SSC-3 finds the bit reserved.
        expect([decodeSense(r.sense).key, decodeSense(r.sense).asc]).toEqual([0x05, 0x24]);
        return;
      }
      expect(r.status).toBe(ScsiStatus.GOOD);
      expect(r.data).toHaveLength(20);
      expect(u32(r.data, 12) * 2 ** 32 + u32(r.data, 16)).toBeGreaterThan(0);
    });

    it('REPORT SUPPORTED OPERATION CODES lists READ(16), WRITE(16), VERIFY(6) and SECURITY PROTOCOL IN/OUT', async () => {
      const all = await good(exec([0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0], { in: 8192 }));
      const ops = new Set(Array.from({ length: u32(all, 0) / 8 }, (_, i) => all[4 + 8 * i]));
      for (const op of [0x88, 0x8a, 0x13, 0xa2, 0xb5]) expect(ops.has(op), `opcode 0x${op.toString(16)}`).toBe(true);
    });

    it('WRITE(16) and READ(16) start at the logical object they name', async () => {
      await mount(c, scratch());
      const blocks = [pattern(1000, 1), pattern(2000, 2), pattern(3000, 3)];
      for (const [i, b] of blocks.entries()) await good(exec(cdb16(0x8a, 0, i, b.length), { out: b }));
      expect(await good(exec(cdb16(0x88, 0, 1, 2000), { in: 2000 }))).toEqual(blocks[1]);
      expect((await drive().position()).block).toBe(2);
      expect(await good(exec(cdb16(0x88, 0, 0, 1000), { in: 1000 }))).toEqual(blocks[0]);
      const s = await senseOf(exec(cdb16(0x88, 0, 10, 100), { in: 100 }));
      expect([s.key, s.asc, s.ascq]).toEqual([0x08, 0x00, 0x05]);
    });

    it('VERIFY(6) passes a block as written and reports MISCOMPARE for a different one', async () => {
      await mount(c, scratch());
      const b = pattern(4000, 7);
      await drive().writeBlock(b);
      await drive().rewind();
      await good(exec([0x13, 0x02, 0, 0x0f, 0xa0, 0], { out: b }));
      expect((await drive().position()).block).toBe(1);
      await drive().rewind();
      const other = Uint8Array.from(b);
      other[3999] = (other[3999] ?? 0) ^ 0x55;
      const s = await senseOf(exec([0x13, 0x02, 0, 0x0f, 0xa0, 0], { out: other }));
      expect([s.key, s.asc, s.ascq]).toEqual([0x0e, 0x1d, 0x00]);
    });

    it('REWIND with IMMED answers GOOD and the tape is at BOP once the drive is ready', async () => {
      await mount(c, scratch());
      for (let i = 0; i < 4; i++) await drive().writeBlock(pattern(10_000, i));
      await drive().rewind({ immediate: true });
      await drive().waitReady({ timeoutMs: 120_000, intervalMs: 50 });
      expect((await drive().position()).block).toBe(0);
    });

    it('LOCATE with IMMED beyond end of data: GOOD, then a deferred BLANK CHECK on the next command', async () => {
      await mount(c, scratch());
      await drive().writeBlock(pattern(100, 1));
      await drive().rewind();
      await good(exec([0x2b, 0x01, 0, 0, 0, 0, 50, 0, 0, 0]));
      let s = await senseOf(exec([0x00, 0, 0, 0, 0, 0]));
      // A real drive may still be busy: wait until the operation ends and its error shows.
      for (let i = 0; i < 600 && s.key === 0x02; i++) {
        await new Promise((res) => setTimeout(res, 100));
        s = await senseOf(exec([0x00, 0, 0, 0, 0, 0]));
      }
      expect([s.key, s.asc, s.ascq]).toEqual([0x08, 0x00, 0x05]);
      expect(s.responseCode).toBe(0x71);
      await expect(drive().testUnitReady()).resolves.toBeUndefined();
    });

    it('with data compression on (page 0Fh DCE), compressible blocks read back as written and the write ratio shows it', async () => {
      await mount(c, scratch());
      const ms = await good(exec([0x1a, 0x08, 0x0f, 0, 0xff, 0], { in: 255 }));
      const page = Uint8Array.from(ms.subarray(4, 4 + 2 + (ms[5] ?? 0)));
      expect((page[2] ?? 0) & 0x40).toBe(0x40); // DCC: the drive can compress
      page[2] = (page[2] ?? 0) | 0x80;
      const params = new Uint8Array(4 + page.length);
      params.set(page, 4);
      await good(exec([0x15, 0x10, 0, 0, params.length, 0], { out: params }));
      try {
        const text = new TextEncoder().encode('a compressible backup record; '.repeat(9000)).subarray(0, 262144);
        for (let i = 0; i < 4; i++) await drive().writeBlock(text);
        await drive().writeFilemarks(1);
        await drive().rewind();
        for (let i = 0; i < 4; i++) expect((await drive().read(262144)).data).toEqual(text);
        const supported = await good(exec([0x4d, 0, 0x00, 0, 0, 0, 0, 0x01, 0, 0], { in: 256 }));
        const codes = [...supported.subarray(4)];
        const logPage = codes.includes(0x1b) ? 0x1b : codes.includes(0x32) ? 0x32 : undefined;
        if (logPage === undefined) return;
        const lp = await good(exec([0x4d, 0, 0x40 | logPage, 0, 0, 0, 0, 0x04, 0, 0], { in: 1024 }));
        for (let off = 4; off < lp.length; off += 4 + (lp[off + 3] ?? 0)) {
          if (u16(lp, off) === 0x0001) expect(u16(lp, off + 4)).toBeGreaterThan(200); // write compression ratio x100
        }
      } finally {
        page[2] = (page[2] ?? 0) & 0x7f;
        params.set(page, 4);
        await exec([0x15, 0x10, 0, 0, params.length, 0], { out: params });
      }
    });

    it('SECURITY PROTOCOL IN reports AES-256-GCM; with a key set blocks read back, and without decryption answer DATA PROTECT 74/01', async (ctx) => {
      const protocols = await exec(spin(0x00, 0x0000), { in: 8192 });
      if (protocols.status !== ScsiStatus.GOOD || ![...protocols.data.subarray(8)].includes(0x20)) return ctx.skip();
      const caps = await good(exec(spin(0x20, 0x0010), { in: 8192 }));
      expect(u16(caps, 0)).toBe(0x0010);
      const algorithms: number[] = [];
      for (let off = 20; off + 24 <= 4 + u16(caps, 2); off += 4 + u16(caps, off + 2)) algorithms.push(u32(caps, off + 20));
      expect(algorithms).toContain(0x00010014);
      await mount(c, scratch());
      try {
        await good(spout(setEncryption(2, 2, KEY)));
        const st = await good(exec(spin(0x20, 0x0020), { in: 8192 }));
        expect([st[5], st[6]]).toEqual([2, 2]);
        const data = pattern(8192, 11);
        await drive().writeBlock(data);
        await drive().writeFilemarks(1);
        if (lab.cartridgeFiles) {
          const { readFileSync } = await import('node:fs');
          const file = readFileSync(lab.cartridgeFiles.get(scratch())!);
          expect(file.includes(Buffer.from(data.subarray(0, 256)))).toBe(false);
          expect(file.includes(Buffer.from(KEY))).toBe(false);
        }
        await drive().rewind();
        expect((await drive().read(8192)).data).toEqual(data);
        await good(spout(setEncryption(0, 0)));
        await drive().rewind();
        const s = await senseOf(exec([0x08, 0, 0, 0x20, 0, 0], { in: 8192 }));
        expect([s.key, s.asc, s.ascq]).toEqual([0x07, 0x74, 0x01]);
        const nb = await good(exec(spin(0x20, 0x0021), { in: 8192 }));
        expect((nb[12] ?? 0) & 0x0f).toBe(6);
      } finally {
        await spout(setEncryption(0, 0));
      }
    });
  });

  describe('emulator faults', () => {
    it('an injected medium error fails READ with MEDIUM ERROR / UNRECOVERED READ ERROR at that block only', async (ctx) => {
      if (noEmulator()) return ctx.skip();
      await mount(c, scratch());
      for (let i = 0; i < 3; i++) await drive().writeBlock(pattern(100, i));
      lab.driveUnits![0]!.faults.mediumErrorAt(1);
      await drive().rewind();
      expect((await drive().read(100)).data).toEqual(pattern(100, 0));
      await expectSense(drive().read(100), Sense.UNRECOVERED_READ_ERROR);
      lab.driveUnits![0]!.faults.clear();
    });

    it('a drive power cycle reports POWER ON OCCURRED once, then the tape is at BOP', async (ctx) => {
      if (noEmulator()) return ctx.skip();
      await mount(c, scratch());
      await drive().writeBlock(pattern(100, 1));
      lab.driveUnits![0]!.faults.powerCycle();
      await expectSense(drive().testUnitReady(), Sense.POWER_ON_OCCURRED);
      await expect(drive().testUnitReady()).resolves.toBeUndefined();
      expect((await drive().position()).block).toBe(0);
      expect((await drive().read(100)).data).toEqual(pattern(100, 1));
    });
  });
});
