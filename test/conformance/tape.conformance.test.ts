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
      const s = await rawCdb(drive().port, [0x05, 0x01, 0, 0, 0, 0], 6);
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
