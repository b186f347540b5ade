/**
 * ptpvts against a peer no one here wrote: tgtd (Debian package `tgt`), a userspace iSCSI
 * target with a virtual tape drive and medium changer. The test sets up its own tgtd on
 * 127.0.0.1 (tape LUN backed by a tgtimg cartridge file, changer LUN configured through
 * tgtadm) and tears it down. ptpvts's initiator carries the commands; the TapeDrive and
 * MediaChanger clients issue and parse them. What tgt lacks is listed in
 * tgt-known-gaps.ts, and each of those checks is asserted to still fail there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IscsiSession } from '../../src/iscsi/session.js';
import { discoverTargets, IscsiPort } from '../../src/transport/iscsi/index.js';
import { MediaChanger } from '../../src/devices/media-changer.js';
import { TapeDrive } from '../../src/devices/tape-drive.js';
import { SenseError } from '../../src/devices/errors.js';
import { DeviceType, SpaceCode } from '../../src/scsi/index.js';
import * as Cdb from '../../src/scsi/cdb.js';
import { ElementTypeCode } from '../../src/scsi/parse-element-status.js';
import { Sense, describeSense, type SenseCode } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { startTgtd, tgtdUnavailable, type TgtdLibrary } from '../hil/lib/tgtd.js';
import { tgtInteropGaps } from './tgt-known-gaps.js';

const why = tgtdUnavailable();
const INITIATOR = 'iqn.2026-11.org.ptpvts:interop';
const BARCODES = ['PTP001L8', 'PTP002L8', 'PTP003L8'];

async function expectSense(p: Promise<unknown>, code: SenseCode): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof SenseError)) throw new Error(`expected ${describeSense(code)}, got ${e === undefined ? 'success' : String(e)}`);
  expect(`${e.keyName} / ${e.ascName}`).toBe(describeSense(code));
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

interface Ctx {
  lib: TgtdLibrary;
  session: IscsiSession;
  changer: MediaChanger;
  drive: TapeDrive;
  changerPort: IscsiPort;
}

interface Check {
  /** Key in tgt-known-gaps.ts. */
  readonly name: string;
  /** What a user relies on. */
  readonly title: string;
  run(c: Ctx): Promise<void>;
}

const slot = (c: Ctx, i: number): number => c.lib.elements.slots[i]!;
const driveElement = (c: Ctx): number => c.lib.elements.drives[0]!;

async function barcodesIn(c: Ctx, type: ElementTypeCode): Promise<Map<number, string | undefined>> {
  const es = await c.changer.elementStatus(type);
  return new Map(es.map((e) => [e.address, e.full ? (e.primaryVolumeTag?.identifier ?? '') : undefined]));
}

/**
 * What one element holds, asked for as the first of two elements: tgt cuts the last
 * descriptor of every READ ELEMENT STATUS answer (see tgt-known-gaps.ts), so the element
 * of interest must not be the last one reported.
 */
async function holds(c: Ctx, type: ElementTypeCode, address: number): Promise<string | undefined> {
  const [e] = await c.changer.elementStatus(type, address, 2);
  expect(e?.address).toBe(address);
  return e!.full ? (e!.primaryVolumeTag?.identifier ?? '') : undefined;
}

/** Writes B0 B1 B2 FM B3 B4 FM FM and rewinds; returns the blocks. */
async function layOut(c: Ctx): Promise<Uint8Array[]> {
  const blocks = [0, 1, 2, 3, 4].map((i) => pattern(100 + i * 50, i + 1));
  await c.drive.rewind();
  for (const b of blocks.slice(0, 3)) await c.drive.writeBlock(b);
  await c.drive.writeFilemarks(1);
  for (const b of blocks.slice(3)) await c.drive.writeBlock(b);
  await c.drive.writeFilemarks(2);
  await c.drive.rewind();
  return blocks;
}

/** In order: each check may rely on the state the ones before it left (cartridge loaded...). */
const checks: readonly Check[] = [
  {
    name: 'discovery',
    title: 'SendTargets discovery lists the target and its portal',
    async run(c) {
      const found = await discoverTargets({ host: c.lib.host, port: c.lib.port, initiatorName: INITIATOR });
      const t = found.find((f) => f.name === c.lib.iqn);
      expect(t, JSON.stringify(found)).toBeDefined();
      expect(t!.addresses.join(' ')).toContain(`127.0.0.1:${c.lib.port}`);
    },
  },
  {
    name: 'report_luns',
    title: 'REPORT LUNS lists the controller, the tape drive and the changer',
    async run(c) {
      const luns = (await c.changer.reportLuns()).map((l) => Number(l.lun));
      expect(luns).toEqual(expect.arrayContaining([0, ...c.lib.driveLuns, c.lib.changerLun]));
    },
  },
  {
    name: 'changer_inquiry',
    title: 'the changer LUN answers INQUIRY as a removable medium changer',
    async run(c) {
      const q = await c.changer.inquiry();
      expect(q.deviceType).toBe(DeviceType.mediumChanger);
      expect(q.removable).toBe(true);
      expect(q.vendor.length).toBeGreaterThan(0);
    },
  },
  {
    name: 'changer_tur',
    title: 'the changer is ready (TEST UNIT READY is GOOD)',
    async run(c) {
      await c.changer.testUnitReady();
    },
  },
  {
    name: 'changer_element_addresses',
    title: 'MODE SENSE page 1Dh gives the element addresses the changer was configured with',
    async run(c) {
      const a = await c.changer.elementAddressAssignment();
      expect(a).toMatchObject({
        firstTransport: c.lib.elements.transport,
        transportCount: 1,
        firstStorage: slot(c, 0),
        storageCount: c.lib.elements.slots.length,
        firstDataTransfer: driveElement(c),
        dataTransferCount: c.lib.elements.drives.length,
      });
    },
  },
  {
    name: 'changer_inventory_all_types',
    title: 'READ ELEMENT STATUS of every element type at once parses into an inventory',
    async run(c) {
      const inv = await c.changer.inventory();
      expect(inv.storage.length).toBe(c.lib.elements.slots.length);
    },
  },
  {
    name: 'changer_storage_status',
    title: 'READ ELEMENT STATUS of the storage slots shows every slot, each cartridge with its barcode',
    async run(c) {
      const s = await barcodesIn(c, ElementTypeCode.storage);
      expect([...s.entries()]).toEqual(c.lib.elements.slots.map((a, i) => [a, BARCODES[i]]));
    },
  },
  {
    name: 'changer_drive_status',
    title: 'READ ELEMENT STATUS of the drives shows every drive, empty',
    async run(c) {
      expect([...(await barcodesIn(c, ElementTypeCode.dataTransfer)).entries()]).toEqual(c.lib.elements.drives.map((a) => [a, undefined]));
    },
  },
  {
    name: 'changer_element_status_range',
    title: 'READ ELEMENT STATUS from a starting address shows that slot and its cartridge',
    async run(c) {
      for (const [i, b] of BARCODES.entries()) expect(await holds(c, ElementTypeCode.storage, slot(c, i))).toBe(b);
      expect(await holds(c, ElementTypeCode.dataTransfer, driveElement(c))).toBeUndefined();
    },
  },
  {
    name: 'drive_inquiry',
    title: 'the tape LUN answers INQUIRY as a removable sequential-access device with a serial number',
    async run(c) {
      const q = await c.drive.inquiry();
      expect(q.deviceType).toBe(DeviceType.sequentialAccess);
      expect(q.removable).toBe(true);
      expect((await c.drive.unitSerialNumber()).trim().length).toBeGreaterThan(0);
      expect(await c.drive.supportedVpdPages()).toEqual(expect.arrayContaining([0x00, 0x80, 0x83]));
    },
  },
  {
    name: 'drive_tur_empty',
    title: 'an empty drive answers TEST UNIT READY with NOT READY / MEDIUM NOT PRESENT',
    async run(c) {
      await expectSense(c.drive.testUnitReady(), Sense.MEDIUM_NOT_PRESENT);
    },
  },
  {
    name: 'changer_move_slot_to_slot',
    title: 'MOVE MEDIUM between slots moves the cartridge, and back',
    async run(c) {
      await c.changer.move(slot(c, 0), slot(c, 3));
      expect([await holds(c, ElementTypeCode.storage, slot(c, 0)), await holds(c, ElementTypeCode.storage, slot(c, 3))]).toEqual([undefined, BARCODES[0]]);
      await c.changer.move(slot(c, 3), slot(c, 0));
      expect(await holds(c, ElementTypeCode.storage, slot(c, 0))).toBe(BARCODES[0]);
    },
  },
  {
    name: 'changer_move_errors',
    title: 'MOVE MEDIUM from an empty slot and into a full one are refused with the SMC sense',
    async run(c) {
      await expectSense(c.changer.move(slot(c, 3), driveElement(c)), Sense.MEDIUM_SOURCE_ELEMENT_EMPTY);
      await expectSense(c.changer.move(slot(c, 0), slot(c, 1)), Sense.MEDIUM_DESTINATION_ELEMENT_FULL);
    },
  },
  {
    name: 'changer_load',
    title: 'MOVE MEDIUM from a slot to the drive loads the cartridge and the drive becomes ready',
    async run(c) {
      await c.changer.move(slot(c, 0), driveElement(c));
      await c.drive.waitReady({ timeoutMs: 10_000, intervalMs: 50 });
      expect(await holds(c, ElementTypeCode.dataTransfer, driveElement(c))).toBe(BARCODES[0]);
    },
  },
  {
    name: 'drive_read_block_limits',
    title: 'READ BLOCK LIMITS allows variable blocks of at least 256 KiB',
    async run(c) {
      const l = await c.drive.readBlockLimits();
      expect(l.maxBlockLength).toBeGreaterThanOrEqual(256 * 1024);
      expect(l.minBlockLength).toBeLessThanOrEqual(l.maxBlockLength);
    },
  },
  {
    name: 'drive_mode_sense',
    title: 'MODE SENSE reports variable-block mode on a writable cartridge',
    async run(c) {
      const m = await c.drive.blockMode();
      expect(m.blockSize).toBe(0);
      expect(m.writeProtected).toBe(false);
    },
  },
  {
    name: 'drive_write_read_filemarks',
    title: 'blocks and filemarks written are read back identical, with the filemark reported',
    async run(c) {
      const blocks = await layOut(c);
      for (const b of blocks.slice(0, 3)) {
        const r = await c.drive.read(64 * 1024, { sili: true });
        expect(Buffer.from(r.data).equals(Buffer.from(b))).toBe(true);
      }
      const fm = await c.drive.read(64 * 1024);
      expect(fm.filemark).toBe(true);
      expect(fm.data.length).toBe(0);
      for (const b of blocks.slice(3)) expect(Buffer.from((await c.drive.read(64 * 1024, { sili: true })).data).equals(Buffer.from(b))).toBe(true);
      expect((await c.drive.read(64 * 1024)).filemark).toBe(true);
      expect((await c.drive.read(64 * 1024)).filemark).toBe(true);
    },
  },
  {
    name: 'drive_read_short_block',
    title: 'READ of a block shorter than asked reports ILI and the block length',
    async run(c) {
      await c.drive.rewind();
      const r = await c.drive.read(1000);
      expect(r).toMatchObject({ ili: true, blockLength: 100, residue: 900 });
      expect(r.data.length).toBe(100);
    },
  },
  {
    name: 'drive_space',
    title: 'SPACE over blocks and filemarks, forward and backward, lands on the right block',
    async run(c) {
      const blocks = await layOut(c);
      await c.drive.space(SpaceCode.blocks, 2);
      expect(Buffer.from((await c.drive.read(64 * 1024, { sili: true })).data).equals(Buffer.from(blocks[2]!))).toBe(true);
      await c.drive.space(SpaceCode.filemarks, 1);
      expect(Buffer.from((await c.drive.read(64 * 1024, { sili: true })).data).equals(Buffer.from(blocks[3]!))).toBe(true);
      await c.drive.space(SpaceCode.blocks, -1);
      expect(Buffer.from((await c.drive.read(64 * 1024, { sili: true })).data).equals(Buffer.from(blocks[3]!))).toBe(true);
    },
  },
  {
    name: 'drive_space_back_filemark',
    title: 'SPACE back over a filemark ends on its beginning-of-tape side, so the next READ meets the filemark',
    async run(c) {
      await layOut(c);
      await c.drive.space(SpaceCode.filemarks, 1);
      await c.drive.space(SpaceCode.blocks, 1);
      await c.drive.space(SpaceCode.filemarks, -1);
      expect((await c.drive.read(64 * 1024)).filemark).toBe(true);
    },
  },
  {
    name: 'drive_space_filemark_stop',
    title: 'SPACE over more blocks than the file holds stops at the filemark and reports the residue',
    async run(c) {
      await layOut(c);
      const r = await c.drive.space(SpaceCode.blocks, 5);
      expect(r).toMatchObject({ filemark: true, residue: 2 });
    },
  },
  {
    name: 'drive_space_eod',
    title: 'SPACE to end of data, then READ, reports BLANK CHECK (end of data)',
    async run(c) {
      await layOut(c);
      await c.drive.spaceToEndOfData();
      const r = await c.drive.read(1000);
      expect(r.eod).toBe(true);
    },
  },
  {
    name: 'drive_append_after_eod',
    title: 'writing at end of data appends after what is there',
    async run(c) {
      const blocks = await layOut(c);
      await c.drive.spaceToEndOfData();
      const extra = pattern(777, 99);
      await c.drive.writeBlock(extra);
      await c.drive.writeFilemarks(1);
      await c.drive.rewind();
      await c.drive.space(SpaceCode.filemarks, 3);
      expect(Buffer.from((await c.drive.read(64 * 1024, { sili: true })).data).equals(Buffer.from(extra))).toBe(true);
      await c.drive.rewind();
      expect(Buffer.from((await c.drive.read(64 * 1024, { sili: true })).data).equals(Buffer.from(blocks[0]!))).toBe(true);
    },
  },
  {
    name: 'drive_large_blocks',
    title: '256 KiB and 1 MiB blocks cross iSCSI burst boundaries intact, both ways',
    async run(c) {
      const big = [pattern(256 * 1024, 7), pattern(1024 * 1024, 8), pattern(256 * 1024 + 13, 9)];
      await c.drive.rewind();
      for (const b of big) await c.drive.writeBlock(b);
      await c.drive.writeFilemarks(1);
      await c.drive.rewind();
      for (const b of big) expect(Buffer.from((await c.drive.read(1024 * 1024, { sili: true })).data).equals(Buffer.from(b))).toBe(true);
    },
  },
  {
    name: 'queue_depth',
    title: '64 commands issued at once all complete (CmdSN window and queueing)',
    async run(c) {
      const r = await Promise.all(Array.from({ length: 64 }, () => c.changerPort.execute(Cdb.testUnitReady())));
      expect(r.every((x) => x.status === ScsiStatus.GOOD)).toBe(true);
    },
  },
  {
    name: 'drive_read_overlength_block',
    title: 'READ of a block longer than asked reports ILI with a negative residue and returns the bytes asked for',
    async run(c) {
      const blocks = await layOut(c);
      await c.drive.space(SpaceCode.blocks, 2);
      const r = await c.drive.read(100);
      expect(r).toMatchObject({ ili: true, residue: -100 });
      expect(Buffer.from(r.data).equals(Buffer.from(blocks[2]!.subarray(0, 100)))).toBe(true);
    },
  },
  {
    name: 'drive_read_position',
    title: 'READ POSITION reports the block number after writing and BOP after rewind',
    async run(c) {
      await c.drive.rewind();
      expect(await c.drive.position()).toMatchObject({ block: 0, bop: true, unknown: false });
      await c.drive.writeBlock(pattern(100, 1));
      await c.drive.writeBlock(pattern(100, 2));
      expect(await c.drive.position({ form: 'short' })).toMatchObject({ block: 2, unknown: false });
    },
  },
  {
    name: 'drive_locate',
    title: 'LOCATE(10) to a block, then READ, gives that block',
    async run(c) {
      const blocks = await layOut(c);
      await c.drive.locate(1);
      expect(Buffer.from((await c.drive.read(64 * 1024, { sili: true })).data).equals(Buffer.from(blocks[1]!))).toBe(true);
    },
  },
  {
    name: 'drive_log_sense',
    title: 'LOG SENSE lists the supported log pages',
    async run(c) {
      await c.drive.logSense(0);
    },
  },
  {
    name: 'drive_not_ready_after_unload',
    title: 'after UNLOAD the drive is not ready until the cartridge is loaded again',
    async run(c) {
      await c.drive.rewind();
      await c.drive.unload();
      await expect(c.drive.testUnitReady()).rejects.toBeInstanceOf(SenseError);
    },
  },
  {
    name: 'login_crc32c_only',
    title: 'a login asking for CRC32C digests alone succeeds, or is refused by the target with Reject',
    async run(c) {
      const s = await IscsiSession.open({ host: c.lib.host, port: c.lib.port, initiatorName: INITIATOR, targetName: c.lib.iqn, headerDigest: true, dataDigest: true });
      await s.close();
    },
  },
  {
    name: 'changer_unload',
    title: 'MOVE MEDIUM from the drive back to its slot empties the drive',
    async run(c) {
      await c.drive.unload().catch(() => undefined);
      await c.changer.move(driveElement(c), slot(c, 0));
      expect(await holds(c, ElementTypeCode.dataTransfer, driveElement(c))).toBeUndefined();
      expect(await holds(c, ElementTypeCode.storage, slot(c, 0))).toBe(BARCODES[0]);
      await expectSense(c.drive.testUnitReady(), Sense.MEDIUM_NOT_PRESENT);
    },
  },
];

describe.skipIf(why !== undefined)(`ptpvts initiator and device clients against tgtd${why ? ` (skipped: ${why})` : ''}`, () => {
  let ctx: Ctx | undefined;

  beforeAll(async () => {
    // Two drives, so that the one under test is never the last element tgt reports.
    const lib = await startTgtd({ drives: 2, barcodes: BARCODES, spareSlots: 2 });
    try {
      const session = await IscsiSession.open({ host: lib.host, port: lib.port, initiatorName: INITIATOR, targetName: lib.iqn });
      const changerPort = new IscsiPort(session, lib.changerLun);
      const fast = { sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 50))) };
      ctx = { lib, session, changer: new MediaChanger(changerPort, fast), drive: new TapeDrive(new IscsiPort(session, lib.driveLuns[0]!), fast), changerPort };
      // Each LUN owes this new I_T nexus one POWER ON unit attention.
      for (const d of [ctx.changer, ctx.drive, new TapeDrive(new IscsiPort(session, lib.driveLuns[1]!))]) await expectSense(d.testUnitReady(), Sense.POWER_ON_RESET);
    } catch (e) {
      await lib.stop();
      throw e;
    }
  });
  afterAll(async () => {
    await ctx?.session.close();
    await ctx?.lib.stop();
  });

  it('every known gap names a check of this suite', () => {
    const names = new Set(checks.map((c) => c.name));
    expect(Object.keys(tgtInteropGaps).filter((g) => !names.has(g))).toEqual([]);
  });

  for (const check of checks) {
    const gap = tgtInteropGaps[check.name];
    if (gap === undefined) {
      it(check.title, async () => {
        await check.run(ctx!);
      });
    } else {
      it(`${check.title} — still fails on tgtd (known gap: ${gap})`, async () => {
        await expect(check.run(ctx!)).rejects.toThrow();
      });
    }
  }
});

describe.skipIf(why !== undefined)(`ptpvts initiator logs in to tgtd with CHAP and digests${why ? ` (skipped: ${why})` : ''}`, () => {
  let lib: TgtdLibrary | undefined;
  const chap = { name: 'ptpvts-user', secret: 'secret-of-16-ch' };

  beforeAll(async () => {
    lib = await startTgtd({ drives: 1, barcodes: ['PTP001L8'], chap: { user: chap.name, secret: chap.secret }, digests: true });
  });
  afterAll(async () => {
    await lib?.stop();
  });

  it('refuses a login without CHAP and accepts the right secret', async () => {
    const base = { host: lib!.host, port: lib!.port, initiatorName: INITIATOR, targetName: lib!.iqn };
    await expect(IscsiSession.open({ ...base, loginTimeoutMs: 5000 })).rejects.toThrow();
    await expect(IscsiSession.open({ ...base, chap: { ...chap, secret: 'wrong-secret-16c' }, loginTimeoutMs: 5000 })).rejects.toThrow();
    const s = await IscsiSession.open({ ...base, chap });
    await s.close();
  });

  it('carries a 1 MiB write and read with CRC32C header and data digests', async () => {
    const s = await IscsiSession.open({ host: lib!.host, port: lib!.port, initiatorName: INITIATOR, targetName: lib!.iqn, chap, headerDigest: true, dataDigest: true });
    try {
      const fast = { sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 50))) };
      const changer = new MediaChanger(new IscsiPort(s, lib!.changerLun), fast);
      const drive = new TapeDrive(new IscsiPort(s, lib!.driveLuns[0]!), fast);
      await changer.testUnitReady().catch(() => undefined);
      await drive.testUnitReady().catch(() => undefined);
      await changer.move(lib!.elements.slots[0]!, lib!.elements.drives[0]!);
      await drive.waitReady({ timeoutMs: 10_000, intervalMs: 50 });
      const data = pattern(1024 * 1024, 42);
      await drive.writeBlock(data);
      await drive.writeFilemarks(1);
      await drive.rewind();
      expect(Buffer.from((await drive.read(1024 * 1024)).data).equals(Buffer.from(data))).toBe(true);
      await drive.unload();
      await changer.move(lib!.elements.drives[0]!, lib!.elements.slots[0]!);
    } finally {
      await s.close();
    }
  });
});
