import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  buildDeviceCapabilities,
  buildElementAddressAssignment,
  buildElementStatus,
  parseDeviceCapabilities,
  parseElementAddressAssignment,
  parseElementStatus,
  parseTransportGeometry,
} from './parse-element-status.js';
import type { DeviceCapabilities, ElementStatusInput } from './parse-element-status.js';

const ascii = (s: string, n: number): number[] => [...s.padEnd(n, ' ')].map((c) => c.charCodeAt(0));

/** Storage page with PVOLTAG: two slots, one full (came from drive 0x0100), one empty. */
function storagePage(): number[] {
  const d1 = [0x10, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x81, 0x01, 0x00, ...ascii('A00001L9', 32), 0, 0, 0, 1];
  const d2 = [0x10, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, ...new Array<number>(36).fill(0)];
  const body = [...d1, ...d2];
  return [0x02, 0x80, 0x00, 48, 0x00, 0x00, 0x00, body.length, ...body];
}

/** Data transfer page with PVOLTAG and a device identifier (DVCID), one full drive. */
function drivePage(): number[] {
  const id = ascii('PTPVTS  ULT3580 D0001', 24); // 24 bytes, multiple of 4
  const d = [0x01, 0x00, 0x09, 0x00, 0x00, 0x00, 0x30, 0x05, 0x00, 0x80 | 0x01, 0x10, 0x00, ...ascii('A00002L9', 32), 0, 0, 0, 0, 0x02, 0x00, 0x00, id.length, ...id];
  return [0x04, 0x80, 0x00, d.length, 0x00, 0x00, 0x00, d.length, ...d];
}

/** Import/export page without tags: one mailslot with an imported cartridge, in exception. */
function mailslotPage(): number[] {
  const d = [0x00, 0x20, 0x3b | 0x04, 0x00, 0x3b, 0x12, 0, 0, 0, 0, 0, 0];
  return [0x03, 0x00, 0x00, 12, 0x00, 0x00, 0x00, 12, ...d];
}

function withHeader(pages: number[], first: number, count: number): Uint8Array {
  return Uint8Array.from([first >> 8, first & 0xff, 0, count, 0, 0, (pages.length >> 8) & 0xff, pages.length & 0xff, ...pages]);
}

describe('parseElementStatus', () => {
  it('decodes storage, data transfer and import/export pages as a library sends them', () => {
    const pages = [...mailslotPage(), ...storagePage(), ...drivePage()];
    const r = parseElementStatus(withHeader(pages, 0x0020, 4));
    expect(r).toMatchObject({ firstAddress: 0x20, elementsAvailable: 4, truncated: false });
    expect(r.pages.map((p) => p.type)).toEqual([3, 2, 4]);
    const [mail, slot1, slot2, drive] = r.pages.flatMap((p) => p.elements);
    expect(mail).toMatchObject({ type: 3, address: 0x20, full: true, impExp: true, except: true, access: true, exEnab: true, inEnab: true, oir: false, cmc: false, asc: 0x3b, ascq: 0x12 });
    expect(mail?.primaryVolumeTag).toBeUndefined();
    expect(slot1).toMatchObject({ type: 2, address: 0x1000, full: true, access: true, except: false, sourceAddress: 0x0100, mediumType: 1, primaryVolumeTag: { identifier: 'A00001L9', sequenceNumber: 1 } });
    expect(slot2).toMatchObject({ address: 0x1001, full: false, access: true });
    expect(slot2?.sourceAddress).toBeUndefined();
    expect(slot2?.primaryVolumeTag).toEqual({ identifier: '', sequenceNumber: 0 });
    expect(drive).toMatchObject({ type: 4, address: 0x0100, full: true, access: true, scsiAddress: { idValid: true, luValid: true, lun: 0, busAddress: 5, notBus: false }, sourceAddress: 0x1000 });
    expect(drive?.identifier).toMatchObject({ codeSet: 2, designatorType: 0, text: 'PTPVTS  ULT3580 D0001' });
  });

  it('stops at the allocation length and says so', () => {
    const full = withHeader([...storagePage()], 0x1000, 2);
    const cut = full.subarray(0, 8 + 8 + 48 + 10);
    const r = parseElementStatus(cut);
    expect(r.truncated).toBe(true);
    expect(r.reportBytes).toBe(8 + 96);
    expect(r.pages[0]?.elements).toHaveLength(1);
  });

  it('header only (allocation length 8) tells the size of the report', () => {
    const r = parseElementStatus(withHeader(storagePage(), 0x1000, 2).subarray(0, 8));
    expect(r).toMatchObject({ reportBytes: 104, pages: [], truncated: true });
  });

  it('rejects an impossible element type code', () => {
    expect(() => parseElementStatus(withHeader([0x07, 0, 0, 12, 0, 0, 0, 0], 0, 0))).toThrow(/element type code 7/);
  });

  it('round-trips through the builder', () => {
    const tag = fc.record({ identifier: fc.stringMatching(/^[A-Z0-9]{0,8}$/), sequenceNumber: fc.nat({ max: 0xffff }) });
    const element = (type: number): fc.Arbitrary<ElementStatusInput> =>
      fc.record({
        address: fc.nat({ max: 0xffff }),
        full: fc.boolean(),
        except: fc.boolean(),
        access: type === 1 ? fc.constant(true) : fc.boolean(),
        asc: fc.nat({ max: 255 }),
        ascq: fc.nat({ max: 255 }),
        ed: fc.boolean(),
        mediumType: fc.integer({ min: 0, max: 7 }),
        invert: fc.boolean(),
        sourceAddress: fc.option(fc.nat({ max: 0xffff }), { nil: undefined }),
        primaryVolumeTag: tag,
      }).map((e) => {
        const { sourceAddress, ...rest } = e;
        const base = sourceAddress === undefined ? rest : { ...rest, sourceAddress };
        if (type === 3) return { ...base, impExp: false, oir: true, cmc: false, inEnab: true, exEnab: false };
        if (type === 4) return { ...base, scsiAddress: { notBus: false, idValid: true, luValid: false, lun: 3, busAddress: 9 } };
        return base;
      });
    const group = fc.integer({ min: 1, max: 4 }).chain((type) => fc.record({ type: fc.constant(type as 1 | 2 | 3 | 4), elements: fc.array(element(type), { maxLength: 4 }), pvoltag: fc.constant(true) }));
    fc.assert(
      fc.property(fc.array(group, { maxLength: 4 }), (groups) => {
        const parsed = parseElementStatus(buildElementStatus(groups));
        expect(parsed.truncated).toBe(false);
        expect(parsed.pages.flatMap((p) => p.elements)).toEqual(groups.flatMap((g) => g.elements.map((e) => ({ type: g.type, ...e }))));
      }),
    );
  });
});

describe('changer mode pages', () => {
  it('1Dh element address assignment', () => {
    const body = Uint8Array.from([0x00, 0x00, 0x00, 0x01, 0x10, 0x00, 0x00, 0x28, 0x00, 0x20, 0x00, 0x04, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00]);
    const a = parseElementAddressAssignment(body);
    expect(a).toEqual({ firstTransport: 0, transportCount: 1, firstStorage: 0x1000, storageCount: 40, firstImportExport: 0x20, importExportCount: 4, firstDataTransfer: 0x100, dataTransferCount: 2 });
    expect(parseElementAddressAssignment(buildElementAddressAssignment(a).subarray(2))).toEqual(a);
  });

  it('1Eh transport geometry', () => {
    expect(parseTransportGeometry(Uint8Array.from([0x01, 0x00, 0x00, 0x01]))).toEqual([
      { rotate: true, memberNumber: 0 },
      { rotate: false, memberNumber: 1 },
    ]);
  });

  it('1Fh device capabilities as a library sends them, and round-trip', () => {
    // STORST+STORIE+STORDT; MT->ST,IE,DT; ST->ST,IE,DT; IE->ST,DT; DT->ST,IE,DT; no exchanges.
    const body = Uint8Array.from([0x0e, 0x00, 0x0e, 0x0e, 0x0a, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const c = parseDeviceCapabilities(body);
    expect(c.canStore).toEqual({ transport: false, storage: true, importExport: true, dataTransfer: true });
    expect(c.moveFrom.importExport).toEqual({ transport: false, storage: true, importExport: false, dataTransfer: true });
    expect(c.exchangeWith.storage.storage).toBe(false);
    const set = fc.record({ transport: fc.boolean(), storage: fc.boolean(), importExport: fc.boolean(), dataTransfer: fc.boolean() });
    const row = fc.record({ transport: set, storage: set, importExport: set, dataTransfer: set });
    fc.assert(
      fc.property(fc.record({ canStore: set, moveFrom: row, exchangeWith: row }), (x: DeviceCapabilities) => {
        expect(parseDeviceCapabilities(buildDeviceCapabilities(x).subarray(2))).toEqual(x);
      }),
    );
  });
});
