/**
 * SMC conformance of a medium changer, over every binding: the inventory, moves and
 * exchanges with their errors, element status details, mode and log pages, and (on the
 * emulator) doors, robot faults and unit attentions.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../src/devices/command.js';
import { MediaChanger } from '../../src/devices/media-changer.js';
import { AttributeId } from '../../src/scsi/parse-attribute.js';
import type { ElementStatus } from '../../src/scsi/parse-element-status.js';
import { elementsOf, parseElementStatus, parseVolumeElementAddress } from '../../src/scsi/parse-element-status.js';
import { getU24 } from '../../src/scsi/bytes.js';
import { Cdb, DeviceType, ElementType } from '../../src/scsi/index.js';
import { decodeSense, Sense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { MemoryPort } from '../../firmware-sim/front/memory-port.js';
import { bindings, type OpenedLab } from './bindings.js';
import { clients, expectSense, mount, tidy, type Clients } from './helpers.js';

describe.each(bindings)('medium changer over $name', (binding) => {
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
      expect(lab.library?.changer.bugs ?? []).toEqual([]);
      for (const u of lab.driveUnits ?? []) expect(u.unit.bugs).toEqual([]);
      if (lab.library) {
        const barcodes = lab.library.inventory().map((e) => e.barcode);
        expect(new Set(barcodes).size, 'every cartridge exactly once').toBe(barcodes.length);
      }
    } finally {
      await lab.close();
      lab = undefined as unknown as OpenedLab;
    }
  });

  const changer = () => c.changer;
  const full = (els: readonly ElementStatus[]): ElementStatus[] => els.filter((e) => e.full);
  const empty = (els: readonly ElementStatus[]): ElementStatus[] => els.filter((e) => !e.full);
  const barcodeOf = (e: ElementStatus | undefined): string | undefined => e?.primaryVolumeTag?.identifier;
  const noEmulator = (): boolean => lab?.library === undefined;

  /** Two full storage slots and one empty one, from the current inventory. */
  async function slots(): Promise<{ a: ElementStatus; b: ElementStatus; free: ElementStatus }> {
    const inv = await changer().inventory();
    const [a, b] = full(inv.storage);
    const [free] = empty(inv.storage);
    if (!a || !b || !free) throw new Error('the library needs two full storage slots and an empty one');
    return { a, b, free };
  }

  describe('identity', () => {
    it('TEST UNIT READY is GOOD on a ready library', async () => {
      await expect(changer().testUnitReady()).resolves.toBeUndefined();
    });

    it('INQUIRY reports a medium changer with a serial number', async () => {
      const q = await changer().inquiry();
      expect(q.deviceType).toBe(DeviceType.mediumChanger);
      expect(q.peripheralQualifier).toBe(0);
      expect((await changer().unitSerialNumber()).trim().length).toBeGreaterThan(0);
      expect(await changer().supportedVpdPages()).toEqual(expect.arrayContaining([0x00, 0x80, 0x83]));
    });

    it('INQUIRY of an unsupported VPD page is refused at byte 2', async () => {
      const e = await expectSense(changer().vpdPage(0xb0), Sense.INVALID_FIELD_IN_CDB);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
    });

    it('REPORT LUNS from the changer lists LUN 0 and the drives', async () => {
      const luns = (await changer().reportLuns()).map((l) => l.lun);
      expect(luns[0]).toBe(0);
      if (lab.library) expect(luns).toEqual([0, ...lab.library.drives.map((d) => d.lun)]);
    });

    it('REPORT SUPPORTED OPERATION CODES lists the SMC commands, and an unknown opcode is refused at byte 0', async () => {
      const ops = new Set((await changer().supportedOperationCodes()).map((x) => x.opcode));
      for (const op of [0x00, 0x03, 0x12, 0x1e, 0xa5, 0xb8, 0x07]) expect(ops.has(op), `opcode 0x${op.toString(16)}`).toBe(true);
      if (lab.library) expect([...ops].sort((a, b) => a - b)).toEqual([...new Set(lab.library.changer.table.all().map((s) => s.opcode))].sort((a, b) => a - b));
      const r = await lab.changer.execute({ cdb: Uint8Array.of(0x08, 0, 0, 0, 1, 0), direction: 'in', dataInLength: 512 });
      expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
      const s = decodeSense(r.sense);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x20, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 0 });
    });
  });

  describe('READ ELEMENT STATUS', () => {
    it('reports every element type, and the volume tags match where the cartridges were placed', async () => {
      const inv = await changer().inventory();
      expect(inv.transports.length).toBeGreaterThanOrEqual(1);
      expect(inv.storage.length).toBeGreaterThan(0);
      expect(inv.dataTransfer.length).toBe(lab.drives.length);
      expect(inv.all.length).toBe(inv.transports.length + inv.storage.length + inv.importExport.length + inv.dataTransfer.length);
      for (const type of [ElementType.mediumTransport, ElementType.storage, ElementType.importExport, ElementType.dataTransfer]) {
        const one = await changer().elementStatus(type);
        expect(one.every((e) => e.type === type)).toBe(true);
        expect(one.map((e) => e.address)).toEqual(inv.all.filter((e) => e.type === type).map((e) => e.address));
      }
      if (lab.initialInventory) {
        const seen = new Map(full(inv.all).map((e) => [e.address, barcodeOf(e)]));
        expect(seen).toEqual(new Map(lab.initialInventory));
      }
      for (const e of full(inv.all)) expect(barcodeOf(e)?.length ?? 0, `volume tag at ${e.address}`).toBeGreaterThan(0);
    });

    it('DVCID gives each drive the serial number its own VPD page 80h reports', async () => {
      const dts = await changer().elementStatus(ElementType.dataTransfer, 0, 0xffff, { deviceId: true });
      expect(dts.length).toBe(lab.drives.length);
      for (const [i, e] of dts.entries()) {
        const serial = (await c.drives[i]!.unitSerialNumber()).trim();
        expect(e.identifier?.text ?? '', `drive ${i + 1} identifier`).toContain(serial);
        if (lab.driveSerials) expect(serial).toBe(lab.driveSerials[i]);
      }
    });

    it('honours the starting address and number of elements', async () => {
      const storage = (await changer().inventory()).storage;
      const from = storage[2]!;
      const part = await changer().elementStatus(ElementType.storage, from.address, 3);
      expect(part.map((e) => e.address)).toEqual(storage.slice(2, 5).map((e) => e.address));
      const across = await changer().elementStatus(ElementType.all, from.address, 2);
      expect(across.map((e) => e.address)).toEqual(storage.slice(2, 4).map((e) => e.address));
    });

    it('with a short allocation length still reports the full byte count, and the client re-reads it whole', async () => {
      const whole = await changer().inventory();
      const cmd = Cdb.readElementStatus({ volTag: true, allocationLength: 64 });
      const r = await lab.changer.execute({ cdb: cmd.cdb, direction: 'in', dataInLength: 64 });
      expect(r.status).toBe(ScsiStatus.GOOD);
      expect(r.data.length).toBe(64);
      const reportBytes = getU24(r.data, 5);
      expect(reportBytes).toBeGreaterThan(64 - 8);
      const fullCmd = Cdb.readElementStatus({ volTag: true, allocationLength: 0xffff });
      const all = await lab.changer.execute({ cdb: fullCmd.cdb, direction: 'in', dataInLength: 0xffff });
      expect(all.data.length).toBe(8 + reportBytes);
      expect(parseElementStatus(all.data).pages.flatMap((p) => p.elements).length).toBe(whole.all.length);
      const small = new MediaChanger(lab.changer, { initialAllocationLength: 64 });
      expect((await small.inventory()).all.map((e) => [e.address, barcodeOf(e)])).toEqual(whole.all.map((e) => [e.address, barcodeOf(e)]));
    });

    it('an element type code above 4 is refused at byte 1', async () => {
      const r = await lab.changer.execute({ cdb: Uint8Array.of(0xb8, 0x15, 0, 0, 0, 10, 0, 0, 0x10, 0, 0, 0), direction: 'in', dataInLength: 4096 });
      expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
      const s = decodeSense(r.sense);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 1 });
    });
  });

  describe('MOVE MEDIUM', () => {
    it('moves a cartridge from slot to slot', async () => {
      const { a, free } = await slots();
      await changer().move(a.address, free.address);
      const after = await changer().inventory();
      expect(after.all.find((e) => e.address === a.address)?.full).toBe(false);
      const moved = after.all.find((e) => e.address === free.address);
      expect(barcodeOf(moved)).toBe(barcodeOf(a));
      expect(moved?.sourceAddress).toBe(a.address);
    });

    it('loading a drive makes it ready with the cartridge whose barcode it reads, and unloading puts it back', async () => {
      const barcode = lab.media.scratch[0]!;
      const home = (await changer().findByBarcode(barcode))!.address;
      const dte = await mount(c, barcode, 0);
      const inDrive = (await changer().elementStatus(ElementType.dataTransfer, dte, 1))[0];
      expect(inDrive).toMatchObject({ full: true });
      expect(barcodeOf(inDrive)).toBe(barcode);
      expect(inDrive?.sourceAddress).toBe(home);
      await expect(c.drives[0]!.testUnitReady()).resolves.toBeUndefined();
      expect(String((await c.drives[0]!.readAttribute(AttributeId.BARCODE))?.decoded).trim()).toBe(barcode);
      await c.drives[0]!.unload();
      await changer().move(dte, home);
      expect(barcodeOf(await changer().findByBarcode(barcode))).toBe(barcode);
      expect((await changer().findByBarcode(barcode))?.address).toBe(home);
      await expectSense(c.drives[0]!.testUnitReady(), Sense.MEDIUM_NOT_PRESENT);
    });

    it('moving out of a drive that is still loaded unloads it first', async () => {
      const barcode = lab.media.scratch[0]!;
      const dte = await mount(c, barcode, 1);
      const { free } = await slots();
      await changer().move(dte, free.address);
      expect(barcodeOf((await changer().elementStatus(ElementType.storage, free.address, 1))[0])).toBe(barcode);
      await expectSense(c.drives[1]!.testUnitReady(), Sense.MEDIUM_NOT_PRESENT);
    });

    it('a drive whose host prevents removal keeps its cartridge: MEDIUM REMOVAL PREVENTED', async () => {
      const dte = await mount(c, lab.media.scratch[0]!, 0);
      await c.drives[0]!.preventRemoval();
      const { free } = await slots();
      await expectSense(changer().move(dte, free.address), Sense.MEDIUM_REMOVAL_PREVENTED);
      expect((await changer().elementStatus(ElementType.dataTransfer, dte, 1))[0]?.full).toBe(true);
      await c.drives[0]!.allowRemoval();
      await changer().move(dte, free.address);
    });

    it('from an empty element is MEDIUM SOURCE ELEMENT EMPTY pointing at the source field', async () => {
      const { a, free } = await slots();
      const e = await expectSense(changer().move(free.address, a.address), Sense.MEDIUM_SOURCE_ELEMENT_EMPTY);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 4 });
    });

    it('to a full element is MEDIUM DESTINATION ELEMENT FULL pointing at the destination field, and nothing moves', async () => {
      const { a, b } = await slots();
      const e = await expectSense(changer().move(a.address, b.address), Sense.MEDIUM_DESTINATION_ELEMENT_FULL);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 6 });
      expect(barcodeOf((await changer().elementStatus(ElementType.storage, a.address, 1))[0])).toBe(barcodeOf(a));
    });

    it('with an element address the library lacks is INVALID ELEMENT ADDRESS with a field pointer', async () => {
      const { a, free } = await slots();
      const src = await expectSense(changer().move(0x7777, free.address), Sense.INVALID_ELEMENT_ADDRESS);
      expect(src.fieldPointer).toMatchObject({ inCdb: true, byte: 4 });
      const dst = await expectSense(changer().move(a.address, 0x7777), Sense.INVALID_ELEMENT_ADDRESS);
      expect(dst.fieldPointer).toMatchObject({ inCdb: true, byte: 6 });
    });
  });

  describe('other robot commands', () => {
    it('EXCHANGE MEDIUM swaps two cartridges', async (ctx) => {
      if (!(await changer().deviceCapabilities()).exchangeWith.storage.storage) return ctx.skip();
      const { a, b } = await slots();
      await changer().exchange(a.address, b.address, a.address);
      const inv = await changer().inventory();
      expect(barcodeOf(inv.all.find((e) => e.address === a.address))).toBe(barcodeOf(b));
      expect(barcodeOf(inv.all.find((e) => e.address === b.address))).toBe(barcodeOf(a));
    });

    it('EXCHANGE MEDIUM from an empty element or onto the source is refused and moves nothing', async (ctx) => {
      if (!(await changer().deviceCapabilities()).exchangeWith.storage.storage) return ctx.skip();
      const { a, b, free } = await slots();
      const e1 = await expectSense(changer().exchange(free.address, a.address, free.address), Sense.MEDIUM_SOURCE_ELEMENT_EMPTY);
      expect(e1.fieldPointer).toMatchObject({ inCdb: true, byte: 4 });
      const e2 = await expectSense(changer().exchange(a.address, b.address, b.address), Sense.INVALID_ELEMENT_ADDRESS);
      expect(e2.fieldPointer).toMatchObject({ inCdb: true, byte: 8 });
      const inv = await changer().inventory();
      expect(barcodeOf(inv.all.find((e) => e.address === a.address))).toBe(barcodeOf(a));
      expect(barcodeOf(inv.all.find((e) => e.address === b.address))).toBe(barcodeOf(b));
    });

    it('INITIALIZE ELEMENT STATUS (whole and with range) keeps the inventory as it is', async () => {
      const before = (await changer().inventory()).all.map((e) => [e.address, barcodeOf(e)]);
      await changer().initializeElementStatus();
      const storage = (await changer().inventory()).storage;
      await changer().initializeElementStatus({ start: storage[0]!.address, count: 4, fast: true });
      expect((await changer().inventory()).all.map((e) => [e.address, barcodeOf(e)])).toEqual(before);
    });

    it('INITIALIZE ELEMENT STATUS WITH RANGE from an address the library lacks is refused at byte 2', async () => {
      const e = await expectSense(changer().initializeElementStatus({ start: 0x7777, count: 1 }), Sense.INVALID_ELEMENT_ADDRESS);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
    });

    it('POSITION TO ELEMENT goes to a real element and refuses an unknown one at byte 4', async () => {
      const { a } = await slots();
      await expect(changer().positionToElement(a.address)).resolves.toBeUndefined();
      const e = await expectSense(changer().positionToElement(0x7777), Sense.INVALID_ELEMENT_ADDRESS);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 4 });
    });

    it('PREVENT with a value other than 0 or 1 is refused at byte 4', async () => {
      const r = await lab.changer.execute({ cdb: Uint8Array.of(0x1e, 0, 0, 0, 0x03, 0), direction: 'none' });
      const s = decodeSense(r.sense);
      expect([s.key, s.asc, s.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 4 });
    });
  });

  describe('mode and log pages', () => {
    it('mode page 1Dh gives the first address and count of each element type as the inventory shows them', async () => {
      const inv = await changer().inventory();
      const a = await changer().elementAddressAssignment();
      const first = (els: readonly ElementStatus[]): number => els[0]?.address ?? 0;
      expect(a).toMatchObject({
        firstTransport: first(inv.transports),
        transportCount: inv.transports.length,
        firstStorage: first(inv.storage),
        storageCount: inv.storage.length,
        firstImportExport: first(inv.importExport),
        importExportCount: inv.importExport.length,
        firstDataTransfer: first(inv.dataTransfer),
        dataTransferCount: inv.dataTransfer.length,
      });
    });

    it('mode page 1Eh has one entry per transport, and 1Fh says storage and drives hold media', async () => {
      const inv = await changer().inventory();
      expect((await changer().transportGeometry()).length).toBe(inv.transports.length);
      const caps = await changer().deviceCapabilities();
      expect(caps.canStore.storage).toBe(true);
      expect(caps.canStore.dataTransfer).toBe(inv.dataTransfer.length > 0);
      expect(caps.canStore.importExport).toBe(inv.importExport.length > 0);
      expect(caps.moveFrom.storage.dataTransfer).toBe(true);
      expect(caps.moveFrom.dataTransfer.storage).toBe(true);
    });

    it('MODE SENSE of a page the changer lacks is refused at byte 2', async () => {
      const e = await expectSense(changer().modeSense(0x10), Sense.INVALID_FIELD_IN_CDB);
      expect(e.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
    });

    it('LOG SENSE 0Dh reports a plausible temperature', async () => {
      const page = await changer().logSense(0x0d);
      const t = page.parameters.find((p) => p.code === 0);
      expect(t).toBeDefined();
      const celsius = t!.value[1] ?? 0;
      expect(celsius).toBeGreaterThan(0);
      expect(celsius).toBeLessThan(80);
    });
  });

  describe('volume tags: SEND VOLUME TAG and REQUEST VOLUME ELEMENT ADDRESS', () => {
    const SVT = 0xb6;
    const A = Cdb.SendVolumeTagAction;

    /** Runs a command on the changer port; CHECK CONDITION comes back decoded, not thrown. */
    async function raw(cmd: { cdb: Uint8Array; direction: 'none' | 'in' | 'out'; dataOut?: Uint8Array; dataInLength?: number }) {
      const r = await lab.changer.execute({ ...cmd, timeoutMs: 60_000 });
      return { ...r, decoded: r.status === ScsiStatus.CHECK_CONDITION ? decodeSense(r.sense) : undefined };
    }

    function svt(address: number, action: number, length: number): Uint8Array {
      return Uint8Array.of(SVT, 0, address >> 8, address & 0xff, 0, action, 0, 0, length >> 8, length & 0xff, 0, 0);
    }

    /** Skips where the changer lacks SEND VOLUME TAG (it is optional in SMC-3). */
    async function needSendVolumeTag(ctx: { skip: () => void }): Promise<boolean> {
      const ops = new Set((await changer().supportedOperationCodes()).map((x) => x.opcode));
      if (ops.has(SVT) && ops.has(0xb5)) return true;
      ctx.skip();
      return false;
    }

    it('an asserted alternate tag shows in READ ELEMENT STATUS (AVOLTAG), a translate finds it, and undefine removes it', async (ctx) => {
      if (!(await needSendVolumeTag(ctx))) return;
      const { a, b } = await slots();
      const tag = 'CONF-ALT-0001';
      const asserted = await raw(Cdb.sendVolumeTag({ elementAddress: a.address, action: A.assertAlternate, template: tag, minSequence: 4 }));
      expect(asserted.decoded).toBeUndefined();
      try {
        const inv = await changer().inventory();
        const at = inv.all.find((e) => e.address === a.address);
        expect(at?.alternateVolumeTag).toEqual({ identifier: tag, sequenceNumber: 4 });
        expect(barcodeOf(at)).toBe(barcodeOf(a));
        expect(inv.all.find((e) => e.address === b.address)?.alternateVolumeTag?.identifier ?? '').toBe('');
        expect((await changer().findByBarcode(tag, { inventory: inv }))?.address).toBe(a.address);
        const pages = parseElementStatus((await raw(Cdb.readElementStatus({ volTag: true }))).data).pages;
        expect(pages.every((p) => p.pvoltag && p.avoltag)).toBe(true);

        expect((await raw(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAlternate, template: 'CONF-ALT-*' }))).decoded).toBeUndefined();
        const r = await raw(Cdb.requestVolumeElementAddress({ volTag: true }));
        expect(r.status).toBe(ScsiStatus.GOOD);
        const v = parseVolumeElementAddress(r.data);
        expect(v.sendAction).toBe(A.translateAlternate);
        expect(elementsOf(v).map((e) => [e.address, e.alternateVolumeTag?.identifier, barcodeOf(e)])).toEqual([[a.address, tag, barcodeOf(a)]]);

        // The label is searched with the primary translate.
        expect((await raw(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translatePrimary, template: barcodeOf(b)! }))).decoded).toBeUndefined();
        const byLabel = parseVolumeElementAddress((await raw(Cdb.requestVolumeElementAddress({ volTag: true }))).data);
        expect(elementsOf(byLabel).map((e) => e.address)).toEqual([b.address]);
      } finally {
        expect((await raw(Cdb.sendVolumeTag({ elementAddress: a.address, action: A.undefineAlternate }))).decoded).toBeUndefined();
      }
      expect((await changer().inventory()).all.find((e) => e.address === a.address)?.alternateVolumeTag?.identifier ?? '').toBe('');
    });

    it('the alternate tag follows its cartridge through MOVE MEDIUM', async (ctx) => {
      if (!(await needSendVolumeTag(ctx))) return;
      const { a, free } = await slots();
      expect((await raw(Cdb.sendVolumeTag({ elementAddress: a.address, action: A.assertAlternate, template: 'CONF-MOVES' }))).decoded).toBeUndefined();
      await changer().move(a.address, free.address);
      try {
        const inv = await changer().inventory();
        expect(inv.all.find((e) => e.address === free.address)?.alternateVolumeTag?.identifier).toBe('CONF-MOVES');
      } finally {
        await raw(Cdb.sendVolumeTag({ elementAddress: free.address, action: A.undefineAlternate }));
        await changer().move(free.address, a.address);
      }
    });

    it('a reserved send action code is refused at byte 5, a parameter list length other than 40 at byte 8', async (ctx) => {
      if (!(await needSendVolumeTag(ctx))) return;
      const { a } = await slots();
      const params = Cdb.volumeTagTemplate({ template: 'CONF-BAD' });
      const reserved = await raw({ cdb: svt(a.address, 0x03, 40), direction: 'out', dataOut: params });
      expect([reserved.decoded?.key, reserved.decoded?.asc, reserved.decoded?.ascq]).toEqual([0x05, 0x24, 0x00]);
      expect(reserved.decoded?.fieldPointer).toMatchObject({ inCdb: true, byte: 5 });
      const short = await raw({ cdb: svt(a.address, A.assertAlternate, 32), direction: 'out', dataOut: params.subarray(0, 32) });
      expect([short.decoded?.key, short.decoded?.asc]).toEqual([0x05, 0x24]);
      expect(short.decoded?.fieldPointer).toMatchObject({ inCdb: true, byte: 8 });
      expect((await changer().inventory()).all.find((e) => e.address === a.address)?.alternateVolumeTag?.identifier ?? '').toBe('');
    });

    it('a wildcard in a tag to assert is INVALID FIELD IN PARAMETER LIST at its byte; the transport or an empty slot cannot be tagged', async (ctx) => {
      if (!(await needSendVolumeTag(ctx))) return;
      const { a, free } = await slots();
      const wild = await raw({ cdb: svt(a.address, A.assertAlternate, 40), direction: 'out', dataOut: Cdb.volumeTagTemplate({ template: 'CONF*' }) });
      expect([wild.decoded?.key, wild.decoded?.asc, wild.decoded?.ascq]).toEqual([0x05, 0x26, 0x00]);
      expect(wild.decoded?.fieldPointer).toMatchObject({ inCdb: false, byte: 4 });
      const transport = (await changer().inventory()).transports[0]!;
      const t = await raw(Cdb.sendVolumeTag({ elementAddress: transport.address, action: A.assertAlternate, template: 'CONF-T' }));
      expect([t.decoded?.key, t.decoded?.asc, t.decoded?.ascq]).toEqual([0x05, 0x21, 0x01]);
      expect(t.decoded?.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
      const e = await raw(Cdb.sendVolumeTag({ elementAddress: free.address, action: A.assertAlternate, template: 'CONF-E' }));
      expect(e.decoded?.key).toBe(0x05);
      expect(e.decoded?.fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
    });

    it('REQUEST VOLUME ELEMENT ADDRESS before any translate is COMMAND SEQUENCE ERROR; an element type above 4 is refused at byte 1', async (ctx) => {
      if (!(await needSendVolumeTag(ctx))) return;
      // A shared hardware changer may remember an earlier translate of this initiator.
      if (lab.library) {
        const r = await raw(Cdb.requestVolumeElementAddress());
        expect([r.decoded?.key, r.decoded?.asc, r.decoded?.ascq]).toEqual([0x05, 0x2c, 0x00]);
      }
      const bad = await raw({ cdb: Uint8Array.of(0xb5, 0x07, 0, 0, 0, 10, 0, 0, 0x10, 0, 0, 0), direction: 'in', dataInLength: 4096 });
      expect([bad.decoded?.key, bad.decoded?.asc]).toEqual([0x05, 0x24]);
      expect(bad.decoded?.fieldPointer).toMatchObject({ inCdb: true, byte: 1 });
    });

    it('emulator: an asserted tag is in the library\'s record of tags, what a lab saves', async (ctx) => {
      if (noEmulator() || !(await needSendVolumeTag(ctx))) return;
      const { a } = await slots();
      await raw(Cdb.sendVolumeTag({ elementAddress: a.address, action: A.assertAlternate, template: 'CONF-SAVED', minSequence: 2 }));
      expect(lab.library!.model.volumeTagAssignments().get(barcodeOf(a)!)).toEqual({ alternate: { identifier: 'CONF-SAVED', sequence: 2 } });
    });
  });

  describe('emulator: doors, faults and unit attentions', () => {
    it('an open import/export door makes its elements inaccessible: moves there are NOT READY / MEDIUM MAGAZINE NOT ACCESSIBLE', async (ctx) => {
      if (noEmulator()) return ctx.skip();
      const { a } = await slots();
      const ie = (await changer().inventory()).importExport.find((e) => !e.full)!;
      await lab.library!.openDoor();
      expect((await changer().elementStatus(ElementType.importExport)).every((e) => !e.access)).toBe(true);
      await expectSense(changer().move(a.address, ie.address), Sense.MEDIUM_MAGAZINE_NOT_ACCESSIBLE);
      lab.library!.insertIntoImportExport('N00001L8', { address: ie.address, capacityBytes: 1 << 20 });
      await lab.library!.closeDoor();
      await expectSense(changer().testUnitReady(), Sense.IMPORT_EXPORT_ELEMENT_ACCESSED);
      const now = (await changer().elementStatus(ElementType.importExport, ie.address, 1))[0];
      expect(now).toMatchObject({ full: true, access: true });
      expect(barcodeOf(now)).toBe('N00001L8');
    });

    it('PREVENT MEDIUM REMOVAL locks the import/export door until ALLOW', async (ctx) => {
      if (noEmulator()) return ctx.skip();
      await changer().preventRemoval();
      await expect(lab.library!.openDoor()).rejects.toMatchObject({ name: 'OperatorActionError' });
      await changer().allowRemoval();
      await lab.library!.openDoor();
      await lab.library!.closeDoor();
    });

    it('closing the door raises IMPORT OR EXPORT ELEMENT ACCESSED once for each initiator', async (ctx) => {
      if (noEmulator()) return ctx.skip();
      const other = new MediaChanger(new MemoryPort(lab.library!.changer, { initiator: 'second-host' }));
      await other.requestSense();
      await other.testUnitReady().catch(() => undefined);
      await lab.library!.openDoor();
      await lab.library!.closeDoor();
      for (const host of [changer(), other]) {
        await expectSense(host.testUnitReady(), Sense.IMPORT_EXPORT_ELEMENT_ACCESSED);
        await expect(host.testUnitReady()).resolves.toBeUndefined();
      }
      await other.port.close();
    });

    it('a power cycle reports POWER ON OCCURRED once per initiator and keeps every cartridge where it was', async (ctx) => {
      if (noEmulator()) return ctx.skip();
      const before = (await changer().inventory()).all.map((e) => [e.address, barcodeOf(e)]);
      const other = new MediaChanger(new MemoryPort(lab.library!.changer, { initiator: 'second-host' }));
      await lab.library!.faults.powerCycle();
      for (const host of [changer(), other]) {
        await expectSense(host.testUnitReady(), Sense.POWER_ON_OCCURRED);
        await expect(host.testUnitReady()).resolves.toBeUndefined();
      }
      expect((await changer().inventory()).all.map((e) => [e.address, barcodeOf(e)])).toEqual(before);
      await other.port.close();
    });

    it('a jammed robot fails the move with HARDWARE ERROR / MECHANICAL POSITIONING ERROR and moves nothing', async (ctx) => {
      if (noEmulator()) return ctx.skip();
      const { a, free } = await slots();
      lab.library!.faults.jamNextMoves(1);
      await expectSense(changer().move(a.address, free.address), Sense.MECHANICAL_POSITIONING_ERROR);
      const inv = await changer().inventory();
      expect(barcodeOf(inv.all.find((e) => e.address === a.address))).toBe(barcodeOf(a));
      expect(inv.all.find((e) => e.address === free.address)?.full).toBe(false);
      await changer().move(a.address, free.address);
    });

    it('the emulator inventory and READ ELEMENT STATUS agree after a series of moves', async (ctx) => {
      if (noEmulator()) return ctx.skip();
      const { a, b, free } = await slots();
      await changer().move(a.address, free.address);
      await changer().move(b.address, a.address);
      await mount(c, lab.media.scratch[2]!, 1);
      const scsi = new Map(full((await changer().inventory()).all).map((e) => [e.address, barcodeOf(e)]));
      const model = new Map(lab.library!.inventory().map((e) => [e.address, e.barcode]));
      expect(scsi).toEqual(model);
      await run(lab.changer, Cdb.testUnitReady(), DeviceType.mediumChanger);
    });
  });
});
