import { describe, expect, it } from 'vitest';
import { ElementType, Sense } from '../scsi/index.js';
import { buildDeviceCapabilities, buildElementAddressAssignment, buildElementStatus } from '../scsi/parse-element-status.js';
import type { ElementStatusInput } from '../scsi/parse-element-status.js';
import { SenseError } from './errors.js';
import { MediaChanger } from './media-changer.js';

import { FakePort } from '../../test/kit/scripted-port.js';

const none = { except: false, asc: 0, ascq: 0, ed: false, mediumType: 0, invert: false } as const;
const slot = (address: number, barcode?: string): ElementStatusInput => ({
  ...none,
  address,
  full: barcode !== undefined,
  access: true,
  primaryVolumeTag: { identifier: barcode ?? '', sequenceNumber: 0 },
});

function library(slots: number): Uint8Array {
  return buildElementStatus([
    { type: 1, pvoltag: true, elements: [{ ...none, address: 0, full: false, access: true }] },
    { type: 2, pvoltag: true, elements: Array.from({ length: slots }, (_, i) => slot(0x1000 + i, i % 2 === 0 ? `A${String(i).padStart(5, '0')}L9` : undefined)) },
    { type: 3, pvoltag: true, elements: [{ ...slot(0x20), impExp: false, oir: false, cmc: false, inEnab: true, exEnab: true }] },
    { type: 4, pvoltag: true, elements: [{ ...slot(0x100, 'B00000L9'), sourceAddress: 0x1001, scsiAddress: { notBus: false, idValid: false, luValid: false, lun: 0, busAddress: 0 } }] },
  ]);
}

const changer = (port: FakePort, o: ConstructorParameters<typeof MediaChanger>[1] = {}): MediaChanger => new MediaChanger(port, o);

describe('MediaChanger', () => {
  it('inventory sends READ ELEMENT STATUS with VOLTAG over all types and sorts by type', async () => {
    const port = new FakePort().on(0xb8, { data: library(6) });
    const inv = await changer(port).inventory();
    expect(port.cdbs[0]).toEqual([0xb8, 0x10, 0, 0, 0xff, 0xff, 0x00, 0x00, 0x10, 0x00, 0, 0]);
    expect(inv.transports).toHaveLength(1);
    expect(inv.storage).toHaveLength(6);
    expect(inv.importExport[0]).toMatchObject({ address: 0x20, inEnab: true, exEnab: true, full: false });
    expect(inv.dataTransfer[0]).toMatchObject({ address: 0x100, full: true, sourceAddress: 0x1001, primaryVolumeTag: { identifier: 'B00000L9' } });
    expect(inv.storage.filter((e) => e.full).map((e) => e.primaryVolumeTag?.identifier)).toEqual(['A00000L9', 'A00002L9', 'A00004L9']);
  });

  it('re-issues READ ELEMENT STATUS with the byte count the device reported', async () => {
    const data = library(200);
    const port = new FakePort().on(0xb8, { data });
    const inv = await changer(port, { initialAllocationLength: 8 }).inventory();
    expect(port.requests.map((r) => r.dataInLength)).toEqual([8, data.length]);
    expect(inv.storage).toHaveLength(200);
  });

  it('elementStatus for one type, DVCID and CURDATA bits', async () => {
    const port = new FakePort().on(0xb8, { data: library(2) });
    await changer(port).elementStatus(ElementType.dataTransfer, 0x100, 2, { deviceId: true, currentData: true, volumeTags: false });
    expect(port.cdbs[0]?.slice(0, 7)).toEqual([0xb8, 0x04, 0x01, 0x00, 0x00, 0x02, 0x03]);
  });

  it('findByBarcode', async () => {
    const port = new FakePort().on(0xb8, { data: library(6) });
    const c = changer(port);
    expect((await c.findByBarcode('A00004L9'))?.address).toBe(0x1004);
    expect((await c.findByBarcode('B00000L9'))?.type).toBe(4);
    expect(await c.findByBarcode('NOPE')).toBeUndefined();
  });

  it('move, exchange, position, initialize (with and without range)', async () => {
    const port = new FakePort();
    const c = changer(port);
    await c.move(0x1000, 0x100);
    await c.exchange(0x1000, 0x100, 0x1001, { transport: 1 });
    await c.positionToElement(0x20);
    await c.initializeElementStatus();
    await c.initializeElementStatus({ start: 0x1000, count: 10, fast: true });
    expect(port.cdbs).toEqual([
      [0xa5, 0, 0, 0, 0x10, 0x00, 0x01, 0x00, 0, 0, 0, 0],
      [0xa6, 0, 0, 1, 0x10, 0x00, 0x01, 0x00, 0x10, 0x01, 0, 0],
      [0x2b, 0, 0, 0, 0x00, 0x20, 0, 0, 0, 0],
      [0x07, 0, 0, 0, 0, 0],
      [0xe7, 0x03, 0x10, 0x00, 0, 0, 0, 10, 0, 0],
    ]);
    expect(port.requests[0]?.timeoutMs).toBe(15 * 60_000);
  });

  it('a move from an empty slot names the condition and the command', async () => {
    const port = new FakePort().on(0xa5, { sense: { ...Sense.MEDIUM_SOURCE_ELEMENT_EMPTY } });
    const e = await changer(port).move(0x1001, 0x100).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SenseError);
    expect((e as SenseError).message).toBe('ILLEGAL REQUEST / MEDIUM SOURCE ELEMENT EMPTY (MOVE MEDIUM)');
  });

  it('prevent/allow removal locks the door', async () => {
    const port = new FakePort().on(0x1e, [{}, { sense: { ...Sense.MEDIUM_REMOVAL_PREVENTED } }]);
    const c = changer(port);
    await c.preventRemoval();
    await expect(c.allowRemoval()).rejects.toMatchObject({ ascName: 'MEDIUM REMOVAL PREVENTED' });
    expect(port.cdbs[0]).toEqual([0x1e, 0, 0, 0, 1, 0]);
  });

  it('mode pages 1Dh, 1Eh, 1Fh with DBD', async () => {
    const eaa = { firstTransport: 0, transportCount: 1, firstStorage: 0x1000, storageCount: 6, firstImportExport: 0x20, importExportCount: 1, firstDataTransfer: 0x100, dataTransferCount: 1 };
    const set = (x: number) => ({ transport: (x & 1) !== 0, storage: (x & 2) !== 0, importExport: (x & 4) !== 0, dataTransfer: (x & 8) !== 0 });
    const caps = { canStore: set(0xe), moveFrom: { transport: set(0xe), storage: set(0xe), importExport: set(0xa), dataTransfer: set(0xe) }, exchangeWith: { transport: set(0), storage: set(0), importExport: set(0), dataTransfer: set(0) } };
    const wrap = (page: Uint8Array) => Uint8Array.from([page.length + 3, 0, 0, 0, ...page]);
    const port = new FakePort().on(0x1a, (req) => {
      const page = (req.cdb[2] ?? 0) & 0x3f;
      if (page === 0x1d) return { data: wrap(buildElementAddressAssignment(eaa)) };
      if (page === 0x1e) return { data: wrap(Uint8Array.from([0x1e, 0x02, 0x00, 0x00])) };
      return { data: wrap(buildDeviceCapabilities(caps)) };
    });
    const c = changer(port);
    expect(await c.elementAddressAssignment()).toEqual(eaa);
    expect(await c.transportGeometry()).toEqual([{ rotate: false, memberNumber: 0 }]);
    expect(await c.deviceCapabilities()).toEqual(caps);
    expect(port.cdbs[0]).toEqual([0x1a, 0x08, 0x1d, 0, 255, 0]);
  });

  it('report LUNs and supported opcodes', async () => {
    const port = new FakePort()
      .on(0xa0, { data: Uint8Array.from([0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]) })
      .on(0xa3, { data: Uint8Array.from([0, 0, 0, 8, 0xa5, 0, 0, 0, 0, 0, 0, 12]) });
    const c = changer(port);
    expect((await c.reportLuns()).map((l) => l.lun)).toEqual([0, 1]);
    expect(await c.supportedOperationCodes()).toEqual([{ opcode: 0xa5, cdbLength: 12 }]);
  });
});
