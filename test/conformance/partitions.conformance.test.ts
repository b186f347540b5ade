/**
 * SSC partitions over every binding of the emulator: the medium partition page (11h)
 * with MODE SELECT and FORMAT MEDIUM, LOCATE with CP, READ POSITION forms with the
 * partition, SPACE to end of data per partition, data that survives unload and load, and
 * malformed pages and CDBs answering ILLEGAL REQUEST with field pointers. The sizes
 * (megabytes of an 8 MiB cartridge) are the emulator's: hardware labs skip.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/devices/command.js';
import { getU16 } from '../../src/scsi/bytes.js';
import { Cdb, DeviceType } from '../../src/scsi/index.js';
import { Sense } from '../../src/scsi/sense.js';
import { bindings, type OpenedLab } from './bindings.js';
import { clients, dismount, expectSense, mount, pattern, tidy, type Clients } from './helpers.js';

const SSC = DeviceType.sequentialAccess;
const MB = 1_000_000;
const CAPACITY = 8 * 1024 * 1024;

describe.each(bindings)('partitions over $name', (binding) => {
  let lab: OpenedLab;
  let c: Clients;

  beforeEach(async (ctx) => {
    if (binding.skip) ctx.skip();
    lab = await binding.open();
    // The layouts below are sized for the emulator's 8 MiB cartridges.
    if (!lab.library) {
      await lab.close();
      lab = undefined as unknown as OpenedLab;
      ctx.skip();
    }
    c = clients(lab);
  });

  afterEach(async () => {
    if (!lab) return;
    try {
      for (const u of lab.driveUnits ?? []) expect(u.unit.bugs, `emulator bugs in ${u.name}`).toEqual([]);
    } finally {
      await lab.close();
      lab = undefined as unknown as OpenedLab;
    }
  });

  const drive = () => c.drives[0]!;
  const scratch = () => lab.media.scratch[0]!;

  async function page11(): Promise<Uint8Array> {
    const data = await run(drive().port, Cdb.modeSense6({ page: 0x11, disableBlockDescriptors: true }), SSC);
    return Uint8Array.from(data.subarray(4, 4 + 2 + (data[5] ?? 0)));
  }

  /** MODE SELECT(6) of the page MODE SENSE returned, edited. */
  async function select11(edit: (p: Uint8Array) => Uint8Array | void): Promise<Uint8Array> {
    const cur = await page11();
    const p = edit(cur) ?? cur;
    const params = new Uint8Array(4 + p.length);
    params.set(p, 4);
    return run(drive().port, Cdb.modeSelect6(params), SSC);
  }

  /** IDP, sizes in MB (PSUM 10b), 0xffff for the partition taking the rest. */
  const idp = (sizes: number[]) => (p: Uint8Array): void => {
    p[3] = sizes.length - 1;
    p[4] = 0x20 | 0x10 | ((p[4] ?? 0) & 0x04);
    sizes.forEach((s, i) => {
      p[8 + 2 * i] = s >> 8;
      p[9 + 2 * i] = s & 0xff;
    });
  };

  async function partitionTape(sizes: number[]): Promise<void> {
    await select11(idp(sizes));
    await run(drive().port, Cdb.formatMedium(1), SSC);
  }

  it('MODE SELECT of page 11h and FORMAT MEDIUM lay out partitions that MODE SENSE and READ ATTRIBUTE report', async () => {
    await mount(c, scratch());
    const before = await page11();
    expect(before[2]).toBe(3); // LTO-8: up to four partitions
    expect(before[3]).toBe(0);
    expect((before[4] ?? 0) & 0x04).toBe(0x04); // POFM
    await partitionTape([2, 0xffff]);
    const p = await page11();
    expect(p[3]).toBe(1);
    expect([getU16(p, 8), getU16(p, 10)]).toEqual([2, Math.floor((CAPACITY - 2 * MB) / MB)]);
    const list = await run(drive().port, Cdb.readAttribute({ serviceAction: 3 }), SSC);
    expect([...list.subarray(0, 4)]).toEqual([0, 2, 0, 2]);
    expect(await drive().position()).toMatchObject({ partition: 0, block: 0, bop: true });
    // FORMAT 0 puts the default format (one partition) back.
    await run(drive().port, Cdb.formatMedium(0), SSC);
    expect((await page11())[3]).toBe(0);
  });

  it('LOCATE with CP moves between partitions; READ POSITION short and long report the partition; REWIND goes to BOP of partition 0', async () => {
    await mount(c, scratch());
    await partitionTape([3, 0xffff]);
    const d = drive();
    await d.writeBlock(pattern(100, 1));
    await d.locate(0, { partition: 1 });
    expect(await d.position()).toMatchObject({ partition: 1, block: 0, bop: true });
    await d.writeBlock(pattern(200, 2));
    await d.writeFilemarks(1);
    await d.writeBlock(pattern(300, 3));
    expect(await d.position()).toMatchObject({ partition: 1, block: 3, fileNumber: 1 });
    expect(await d.position({ form: 'short' })).toMatchObject({ partition: 1, block: 3 });
    await d.locate(0, { partition: 0, cdb: 16 });
    expect((await d.read(100)).data).toEqual(pattern(100, 1));
    await d.locate(2, { partition: 1, cdb: 16 });
    expect((await d.read(300)).data).toEqual(pattern(300, 3));
    await d.rewind();
    expect(await d.position()).toMatchObject({ partition: 0, block: 0, bop: true });
    // A partition the tape does not have.
    const e = await expectSense(d.locate(0, { partition: 2 }), Sense.INVALID_FIELD_IN_CDB);
    expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 8 });
  });

  it('SPACE to end of data stays in the current partition', async () => {
    await mount(c, scratch());
    await partitionTape([2, 0xffff]);
    const d = drive();
    for (let i = 0; i < 3; i++) await d.writeBlock(pattern(50, i));
    await d.locate(0, { partition: 1 });
    await d.writeBlock(pattern(60, 9));
    await d.locate(0, { partition: 0 });
    await d.spaceToEndOfData();
    expect(await d.position()).toMatchObject({ partition: 0, block: 3 });
    await d.locate(0, { partition: 1 });
    await d.spaceToEndOfData();
    expect(await d.position()).toMatchObject({ partition: 1, block: 1 });
    expect(await d.read(60)).toMatchObject({ eod: true, data: new Uint8Array(0) });
  });

  it('each partition keeps its data across unload and load, and a write discards only its own partition', async () => {
    await mount(c, scratch());
    await partitionTape([2, 0xffff]);
    const d = drive();
    for (let i = 0; i < 3; i++) await d.writeBlock(pattern(70, i));
    await d.locate(0, { partition: 1 });
    for (let i = 0; i < 2; i++) await d.writeBlock(pattern(80, 10 + i));
    await d.writeFilemarks(1);
    await d.locate(1, { partition: 0 });
    await d.writeBlock(pattern(71, 99));
    await d.writeFilemarks(1);
    await dismount(c);
    await mount(c, scratch());
    expect((await page11())[3]).toBe(1);
    expect(await d.position()).toMatchObject({ partition: 0, block: 0 });
    expect((await d.read(70)).data).toEqual(pattern(70, 0));
    expect((await d.read(71)).data).toEqual(pattern(71, 99));
    await d.locate(0, { partition: 1 });
    for (let i = 0; i < 2; i++) expect((await d.read(80)).data).toEqual(pattern(80, 10 + i));
    await d.spaceToEndOfData();
    expect(await d.position()).toMatchObject({ partition: 1, block: 3 });
    await tidy(c);
  });

  it('malformed medium partition pages answer ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST with a field pointer', async () => {
    await mount(c, scratch());
    const bad = async (edit: (p: Uint8Array) => Uint8Array | void, byte: number, bit: number): Promise<void> => {
      const e = await expectSense(select11(edit), Sense.INVALID_FIELD_IN_PARAMETER_LIST);
      expect(e.fieldPointer, `byte ${byte}`).toMatchObject({ inCdb: false, byte: 4 + byte, bit });
    };
    await bad((p) => void (p[4] = 0x80 | 0x40 | 0x18 | 0x04), 4, 7); // FDP and SDP
    await bad((p) => void (p[3] = 4, p[4] = 0x40 | 0x18 | 0x04), 3, 7); // five partitions
    await bad(idp([9, 0xffff]), 8, 7); // more than the cartridge holds
    await bad(idp([0xffff, 0xffff]), 10, 7); // two taking the rest
    await bad(idp([0, 0xffff]), 8, 7); // an empty partition
    await bad((p) => void (p[3] = 1, p[4] = 0x20 | 0x08 | 0x04), 4, 4); // kilobytes
    expect((await page11())[3]).toBe(0);
  });

  it('malformed FORMAT MEDIUM CDBs answer INVALID FIELD IN CDB with a field pointer; away from BOP 0 it is a COMMAND SEQUENCE ERROR', async () => {
    await mount(c, scratch());
    const d = drive();
    await d.writeBlock(pattern(10, 1));
    const raw = (bytes: number[]) => run(d.port, { cdb: Uint8Array.from(bytes), direction: 'none' }, SSC);
    let e = await expectSense(raw([0x04, 0, 0x03, 0, 0, 0]), Sense.INVALID_FIELD_IN_CDB);
    expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 2, bit: 3 });
    e = await expectSense(raw([0x04, 0, 0x01, 0, 0x10, 0]), Sense.INVALID_FIELD_IN_CDB);
    expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 3, bit: 7 });
    await expectSense(run(d.port, Cdb.formatMedium(0), SSC), Sense.COMMAND_SEQUENCE_ERROR);
    await d.rewind();
    expect((await d.read(10)).data).toEqual(pattern(10, 1));
  });
});
