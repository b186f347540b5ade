import { describe, expect, it } from 'vitest';
import { getU16, getU32 } from '../../src/scsi/bytes.js';
import * as Cdb from '../../src/scsi/cdb.js';
import { ElementType } from '../../src/scsi/cdb.js';
import { Sense, SenseKey, decodeSense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { MemoryPort } from '../front/memory-port.js';
import { decodeElementStatus, elementStatus, hasSense, inventoryOverScsi, makeLibrary, senseOf } from '../library/test-kit.js';

const GOOD = ScsiStatus.GOOD;
const S1 = 0x1000;
const S2 = 0x1001;
const S3 = 0x1002;
const S4 = 0x1003;
const IE1 = 0x10;
const D1 = 0x100;
const D2 = 0x101;

describe('SMC: READ ELEMENT STATUS', () => {
  it('reports all element types in ascending address order with volume tags', async () => {
    const { port } = await makeLibrary();
    const s = await elementStatus(port);
    expect(s.pages.map((p) => p.type)).toEqual([1, 3, 4, 2]);
    expect(s.count).toBe(1 + 2 + 2 + 6);
    expect(s.firstAddress).toBe(1);
    expect(s.elements.map((e) => e.address)).toEqual([1, 0x10, 0x11, 0x100, 0x101, 0x1000, 0x1001, 0x1002, 0x1003, 0x1004, 0x1005]);
    const byAddr = new Map(s.elements.map((e) => [e.address, e]));
    expect(byAddr.get(S1)).toMatchObject({ full: true, barcode: 'A00001L8', mediumType: 1, access: true });
    expect(byAddr.get(S3)).toMatchObject({ full: true, barcode: 'W00003LY', mediumType: 4 });
    expect(byAddr.get(S4)).toMatchObject({ full: false, barcode: '' });
    expect(byAddr.get(D1)).toMatchObject({ full: true, barcode: 'A00004L8', luValid: true, lun: 1 });
    expect(byAddr.get(D2)).toMatchObject({ full: false, luValid: true, lun: 2 });
    expect(byAddr.get(IE1)).toMatchObject({ full: false, inEnab: true, exEnab: true, access: true });
    expect(byAddr.get(1)).toMatchObject({ full: false, except: false });
    // Descriptor lengths: 12 + 36 volume tag + 4 identification header.
    expect(s.pages.every((p) => p.pvoltag && p.descriptorLength === 52)).toBe(true);
    expect(s.byteCount).toBe(4 * 8 + 11 * 52);
  });

  it('omits volume tags without VOLTAG (16-byte descriptors)', async () => {
    const { port } = await makeLibrary();
    const r = await port.execute(Cdb.readElementStatus({ elementType: ElementType.storage }));
    const s = decodeElementStatus(r.data);
    expect(s.pages).toEqual([{ type: 2, pvoltag: false, descriptorLength: 16, byteCount: 6 * 16 }]);
    expect(s.elements[0]?.barcode).toBeUndefined();
  });

  it('reports each element type alone', async () => {
    const { port } = await makeLibrary();
    for (const [type, n] of [[ElementType.mediumTransport, 1], [ElementType.storage, 6], [ElementType.importExport, 2], [ElementType.dataTransfer, 2]] as const) {
      const s = await elementStatus(port, { elementType: type });
      expect(s.pages.map((p) => p.type)).toEqual([type]);
      expect(s.elements).toHaveLength(n);
    }
  });

  it('gives drive identifiers with DVCID: T10 vendor ID, vendor+product+serial padded to one width', async () => {
    const { port } = await makeLibrary();
    const s = await elementStatus(port, { elementType: ElementType.dataTransfer, deviceId: true });
    expect(s.pages[0]?.descriptorLength).toBe(12 + 36 + 4 + 24 + 12);
    expect(s.elements.map((e) => e.identifier)).toEqual(['PTPVTS  FAKE-LTO        SN0001', 'PTPVTS  FAKE-LTO        SN0002']);
    expect(s.elements.every((e) => e.codeSet === 2 && e.identifierType === 1)).toBe(true);
    // Other element types carry no identifier.
    const all = await elementStatus(port, { deviceId: true });
    expect(all.elements.filter((e) => e.identifier !== undefined).map((e) => e.address)).toEqual([D1, D2]);
  });

  it('honours the starting address and number of elements', async () => {
    const { port } = await makeLibrary();
    const s = await elementStatus(port, { elementType: ElementType.storage, startingAddress: S2, count: 2 });
    expect(s.elements.map((e) => e.address)).toEqual([S2, S3]);
    expect(s.firstAddress).toBe(S2);
    expect(s.count).toBe(2);
    // A starting address between elements starts at the next one, across types for type 0.
    const t = await elementStatus(port, { startingAddress: 0x12, count: 3 });
    expect(t.elements.map((e) => e.address)).toEqual([D1, D2, S1]);
    expect(t.pages.map((p) => p.type)).toEqual([4, 2]);
    const none = await elementStatus(port, { count: 0 });
    expect(none.count).toBe(0);
    expect(none.elements).toEqual([]);
  });

  it('rejects a starting address past every element of the type', async () => {
    const { port } = await makeLibrary();
    const r = await port.execute(Cdb.readElementStatus({ elementType: ElementType.dataTransfer, startingAddress: 0x102 }));
    expect(hasSense(r, Sense.INVALID_ELEMENT_ADDRESS)).toBe(true);
    expect(senseOf(r)?.fieldPointer).toEqual({ inCdb: true, byte: 2, bit: 7 });
  });

  it('truncates at the allocation length but reports the full byte count', async () => {
    const { port } = await makeLibrary();
    const full = await port.execute(Cdb.readElementStatus({ volTag: true }));
    const total = full.data.length;
    for (const alloc of [0, 7, 8, 20, 100, total - 1]) {
      const r = await port.execute(Cdb.readElementStatus({ volTag: true, allocationLength: alloc }));
      expect(r.status).toBe(GOOD);
      expect(r.data.length).toBe(alloc);
      expect(Buffer.from(r.data)).toEqual(Buffer.from(full.data.subarray(0, alloc)));
      if (alloc >= 8) {
        expect(getU16(r.data, 2)).toBe(11);
        expect(decodeElementStatus(r.data).byteCount).toBe(total - 8);
      }
    }
  });

  it('refuses an unknown element type code', async () => {
    const { port } = await makeLibrary();
    const cdb = Cdb.readElementStatus();
    const bytes = Uint8Array.from(cdb.cdb);
    bytes[1] = 0x05;
    const r = await port.execute({ ...cdb, cdb: bytes });
    expect(hasSense(r, Sense.INVALID_FIELD_IN_CDB)).toBe(true);
    expect(senseOf(r)?.fieldPointer).toMatchObject({ inCdb: true, byte: 1 });
  });

  it('with CURDATA does not wait for a re-scan after power-on', async () => {
    const { lib, port } = await makeLibrary();
    await lib.faults.powerCycle();
    await port.execute(Cdb.testUnitReady());
    lib.model.timeScale = 1000; // a re-scan would take far longer than the test
    const r = await port.execute(Cdb.readElementStatus({ currentData: true, volTag: true }));
    expect(r.status).toBe(GOOD);
    lib.model.timeScale = 0;
  });
});

describe('SMC: MOVE MEDIUM', () => {
  it('moves between slots, into and out of drives, and records the source slot', async () => {
    const { port, bays } = await makeLibrary();
    expect((await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }))).status).toBe(GOOD);
    expect((await port.execute(Cdb.moveMedium({ source: S4, destination: D2 }))).status).toBe(GOOD);
    expect(bays[1]?.cartridge?.barcode).toBe('A00001L8');
    let s = await elementStatus(port, { elementType: ElementType.dataTransfer });
    expect(s.elements[1]).toMatchObject({ full: true, barcode: 'A00001L8', svalid: true, source: S4 });
    // The drive still has the tape loaded: the changer asks it to unload first.
    expect(bays[1]?.loaded).toBe(true);
    expect((await port.execute(Cdb.moveMedium({ source: D2, destination: S1 }))).status).toBe(GOOD);
    expect(bays[1]?.log).toEqual(['insert A00001L8', 'unload', 'remove A00001L8']);
    s = await elementStatus(port, { elementType: ElementType.storage, count: 1 });
    expect(s.elements[0]).toMatchObject({ full: true, barcode: 'A00001L8', svalid: true, source: S4 });
    expect(await inventoryOverScsi(port)).toEqual(new Map([[D1, 'A00004L8'], [S1, 'A00001L8'], [S2, 'A00002L8'], [S3, 'W00003LY']]));
  });

  it('accepts the transport address 0 and the real transport address, refuses others', async () => {
    const { port } = await makeLibrary();
    expect((await port.execute(Cdb.moveMedium({ transport: 1, source: S1, destination: S4 }))).status).toBe(GOOD);
    const r = await port.execute(Cdb.moveMedium({ transport: 0x1000, source: S4, destination: S1 }));
    expect(hasSense(r, Sense.INVALID_ELEMENT_ADDRESS)).toBe(true);
    expect(senseOf(r)?.fieldPointer).toEqual({ inCdb: true, byte: 2, bit: 7 });
  });

  it.each([
    ['source', { source: 0x2000, destination: S4 }, 4],
    ['destination', { source: S1, destination: 0x2000 }, 6],
    ['destination is the transport', { source: S1, destination: 1 }, 6],
  ])('INVALID ELEMENT ADDRESS for a bad %s, pointing at its CDB byte', async (_w, o, byte) => {
    const { port } = await makeLibrary();
    const r = await port.execute(Cdb.moveMedium(o));
    expect(hasSense(r, Sense.INVALID_ELEMENT_ADDRESS)).toBe(true);
    expect(senseOf(r)?.fieldPointer).toEqual({ inCdb: true, byte, bit: 7 });
  });

  it('MEDIUM SOURCE ELEMENT EMPTY and MEDIUM DESTINATION ELEMENT FULL', async () => {
    const { port, lib } = await makeLibrary();
    const empty = await port.execute(Cdb.moveMedium({ source: S4, destination: S1 }));
    expect(hasSense(empty, Sense.MEDIUM_SOURCE_ELEMENT_EMPTY)).toBe(true);
    expect(senseOf(empty)?.key).toBe(SenseKey.ILLEGAL_REQUEST);
    expect(senseOf(empty)?.fieldPointer?.byte).toBe(4);
    const full = await port.execute(Cdb.moveMedium({ source: S1, destination: S2 }));
    expect(hasSense(full, Sense.MEDIUM_DESTINATION_ELEMENT_FULL)).toBe(true);
    expect(senseOf(full)?.fieldPointer?.byte).toBe(6);
    const same = await port.execute(Cdb.moveMedium({ source: S1, destination: S1 }));
    expect(hasSense(same, Sense.MEDIUM_DESTINATION_ELEMENT_FULL)).toBe(true);
    expect(lib.model.counters().moves).toBe(0);
  });

  it('refuses INVERT (the cartridges have one side)', async () => {
    const { port } = await makeLibrary();
    const r = await port.execute(Cdb.moveMedium({ source: S1, destination: S4, invert: true }));
    expect(hasSense(r, Sense.INVALID_FIELD_IN_CDB)).toBe(true);
    expect(senseOf(r)?.fieldPointer).toEqual({ inCdb: true, byte: 10, bit: 0 });
  });

  it("accepts mtx's EEPOS (CONTROL byte bits 7-6) to and from an import/export element; other CONTROL bits are still refused", async () => {
    const { port } = await makeLibrary();
    const withControl = (c: Cdb.Command, control: number): Cdb.Command => {
      const cdb = Uint8Array.from(c.cdb);
      cdb[11] = control;
      return { ...c, cdb };
    };
    expect((await port.execute(withControl(Cdb.moveMedium({ source: S1, destination: IE1 }), 0x40))).status).toBe(GOOD);
    expect((await elementStatus(port, { elementType: ElementType.importExport, count: 1 })).elements[0]).toMatchObject({ full: true, barcode: 'A00001L8' });
    expect((await port.execute(withControl(Cdb.moveMedium({ source: IE1, destination: S1 }), 0x80))).status).toBe(GOOD);
    expect(await inventoryOverScsi(port)).toEqual(new Map([[D1, 'A00004L8'], [S1, 'A00001L8'], [S2, 'A00002L8'], [S3, 'W00003LY']]));
    const naca = await port.execute(withControl(Cdb.moveMedium({ source: S1, destination: IE1 }), 0x04));
    expect(hasSense(naca, Sense.INVALID_FIELD_IN_CDB)).toBe(true);
    expect(senseOf(naca)?.fieldPointer).toEqual({ inCdb: true, byte: 11, bit: 2 });
  });

  it('MEDIUM REMOVAL PREVENTED when the drive host prevents removal; nothing moves', async () => {
    const { port, bays, lib } = await makeLibrary();
    bays[0]!.removalPrevented = true;
    const r = await port.execute(Cdb.moveMedium({ source: D1, destination: S4 }));
    expect(hasSense(r, Sense.MEDIUM_REMOVAL_PREVENTED)).toBe(true);
    expect(lib.model.occupant(D1)?.cartridge.barcode).toBe('A00004L8');
    expect(bays[0]?.cartridge?.barcode).toBe('A00004L8');
  });

  it('a drive that refuses the cartridge: the cartridge goes back to its slot', async () => {
    const { port, bays, lib } = await makeLibrary();
    bays[1]!.accepts = (t) => t === 'LTO9';
    const r = await port.execute(Cdb.moveMedium({ source: S1, destination: D2 }));
    expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
    expect(senseOf(r)).toMatchObject({ key: SenseKey.ILLEGAL_REQUEST, asc: 0x30, ascq: 0x00 });
    expect(lib.model.occupant(S1)?.cartridge.barcode).toBe('A00001L8');
    bays[1]!.accepts = undefined;
    bays[1]!.offline = true;
    const off = await port.execute(Cdb.moveMedium({ source: S1, destination: D2 }));
    expect(hasSense(off, Sense.MEDIA_LOAD_OR_EJECT_FAILED)).toBe(true);
    bays[1]!.offline = false;
    bays[1]!.brokenInserts = 1;
    const broken = await port.execute(Cdb.moveMedium({ source: S1, destination: D2 }));
    expect(senseOf(broken)?.key).toBe(SenseKey.HARDWARE_ERROR);
    expect(lib.model.occupant(S1)?.cartridge.barcode).toBe('A00001L8');
    expect(lib.changer.bugs).toEqual([]);
  });

  it('a drive loaded outside the changer reports full', async () => {
    const { port, bays } = await makeLibrary();
    await bays[1]!.insert({ barcode: 'X', mediaType: 'LTO8', path: '/dev/null', writeProtected: false, capacityBytes: 1 });
    const r = await port.execute(Cdb.moveMedium({ source: S1, destination: D2 }));
    expect(hasSense(r, Sense.MEDIUM_DESTINATION_ELEMENT_FULL)).toBe(true);
  });

  it('robot jam: HARDWARE ERROR / MECHANICAL POSITIONING ERROR for the next N moves only', async () => {
    const { port, lib } = await makeLibrary();
    lib.faults.jamNextMoves(2);
    for (let i = 0; i < 2; i++) {
      const r = await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }));
      expect(hasSense(r, Sense.MECHANICAL_POSITIONING_ERROR)).toBe(true);
      expect(senseOf(r)?.key).toBe(SenseKey.HARDWARE_ERROR);
    }
    expect(lib.model.occupant(S1)).toBeDefined();
    expect((await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }))).status).toBe(GOOD);
  });

  it('serialises concurrent moves (one transport)', async () => {
    const { port, lib } = await makeLibrary();
    const order: string[] = [];
    lib.onMove(async (e) => {
      order.push(`start ${e.barcode}`);
      await new Promise((r) => setTimeout(r, 5));
      order.push(`end ${e.barcode}`);
    });
    const [a, b] = await Promise.all([port.execute(Cdb.moveMedium({ source: S1, destination: S4 })), port.execute(Cdb.moveMedium({ source: S2, destination: 0x1004 }))]);
    expect([a.status, b.status]).toEqual([GOOD, GOOD]);
    expect(order).toEqual(['start A00001L8', 'end A00001L8', 'start A00002L8', 'end A00002L8']);
  });

  it('an aborted move moves nothing', async () => {
    const { port, lib } = await makeLibrary({ timeScale: 1 });
    const ac = new AbortController();
    const p = port.execute({ ...Cdb.moveMedium({ source: S1, destination: S4 }), signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toMatchObject({ code: 'ECANCELED' });
    await new Promise((r) => setTimeout(r, 10));
    expect(lib.model.occupant(S1)?.cartridge.barcode).toBe('A00001L8');
    expect(lib.model.occupant(S4)).toBeUndefined();
  });
});

describe('SMC: EXCHANGE MEDIUM', () => {
  it('exchanges three ways and swaps two ways', async () => {
    const { port, lib } = await makeLibrary();
    expect((await port.execute(Cdb.exchangeMedium({ source: S1, firstDestination: D1, secondDestination: S4 }))).status).toBe(GOOD);
    expect(lib.model.inventory()).toEqual(new Map([[D1, 'A00001L8'], [S2, 'A00002L8'], [S3, 'W00003LY'], [S4, 'A00004L8']]));
    expect((await port.execute(Cdb.exchangeMedium({ source: S2, firstDestination: S3, secondDestination: S2 }))).status).toBe(GOOD);
    expect(lib.model.occupant(S2)?.cartridge.barcode).toBe('W00003LY');
    expect(lib.model.occupant(S3)?.cartridge.barcode).toBe('A00002L8');
  });

  it('error paths point at the offending address field', async () => {
    const { port } = await makeLibrary();
    const cases: Array<[Parameters<typeof Cdb.exchangeMedium>[0], typeof Sense.INVALID_ELEMENT_ADDRESS, number]> = [
      [{ source: S4, firstDestination: S1, secondDestination: 0x1005 }, Sense.MEDIUM_SOURCE_ELEMENT_EMPTY, 4],
      [{ source: S1, firstDestination: S4, secondDestination: 0x1005 }, Sense.MEDIUM_SOURCE_ELEMENT_EMPTY, 6],
      [{ source: S1, firstDestination: S2, secondDestination: S3 }, Sense.MEDIUM_DESTINATION_ELEMENT_FULL, 8],
      [{ source: S1, firstDestination: S1, secondDestination: S4 }, Sense.INVALID_ELEMENT_ADDRESS, 6],
      [{ source: S1, firstDestination: S2, secondDestination: 0x3000 }, Sense.INVALID_ELEMENT_ADDRESS, 8],
    ];
    for (const [o, code, byte] of cases) {
      const r = await port.execute(Cdb.exchangeMedium(o));
      expect(hasSense(r, code), JSON.stringify(o)).toBe(true);
      expect(senseOf(r)?.fieldPointer?.byte).toBe(byte);
    }
  });

  it('is not in the command set of a personality without exchange', async () => {
    const { port } = await makeLibrary({ personality: 'IBM-TS3200' });
    const r = await port.execute(Cdb.exchangeMedium({ source: S1, firstDestination: S2, secondDestination: S1 }));
    expect(hasSense(r, Sense.INVALID_COMMAND_OPERATION_CODE)).toBe(true);
  });

  it('a refusing drive puts both cartridges back', async () => {
    const { port, bays, lib } = await makeLibrary();
    bays[0]!.accepts = (t) => t !== 'LTO8-WORM';
    const before = lib.model.inventory();
    const r = await port.execute(Cdb.exchangeMedium({ source: S3, firstDestination: D1, secondDestination: S4 }));
    expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
    expect(lib.model.inventory()).toEqual(before);
    expect(bays[0]?.cartridge?.barcode).toBe('A00004L8');
  });

  it('a cartridge no element takes back stays in the gripper, reported with EXCEPT, and can be moved out', async () => {
    const { port, bays, lib } = await makeLibrary();
    bays[0]!.accepts = (t) => t === 'LTO9';
    const r = await port.execute(Cdb.exchangeMedium({ source: S1, firstDestination: D1, secondDestination: S4 }));
    expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
    const mt = await elementStatus(port, { elementType: ElementType.mediumTransport });
    expect(mt.elements[0]).toMatchObject({ full: true, except: true, barcode: 'A00004L8', asc: 0x15, ascq: 0x01 });
    expect((await port.execute(Cdb.moveMedium({ source: 1, destination: S4 }))).status).toBe(GOOD);
    expect(lib.model.inventory()).toEqual(new Map([[S1, 'A00001L8'], [S2, 'A00002L8'], [S3, 'W00003LY'], [S4, 'A00004L8']]));
  });
});

describe('SMC: INITIALIZE ELEMENT STATUS, POSITION TO ELEMENT', () => {
  it('initialises all elements, or a range', async () => {
    const { port } = await makeLibrary();
    expect((await port.execute(Cdb.initializeElementStatus())).status).toBe(GOOD);
    expect((await port.execute(Cdb.initializeElementStatusWithRange({ start: S1, count: 3 }))).status).toBe(GOOD);
    expect((await port.execute(Cdb.initializeElementStatusWithRange({ start: S1, count: 3, fast: true }))).status).toBe(GOOD);
    const bad = await port.execute(Cdb.initializeElementStatusWithRange({ start: 0x3000, count: 1 }));
    expect(hasSense(bad, Sense.INVALID_ELEMENT_ADDRESS)).toBe(true);
    expect(senseOf(bad)?.fieldPointer?.byte).toBe(2);
  });

  it('positions the transport, and refuses unknown addresses', async () => {
    const { port, lib } = await makeLibrary();
    expect((await port.execute(Cdb.positionToElement({ destination: D2 }))).status).toBe(GOOD);
    expect(lib.model.transportPosition()).toBe(D2);
    const bad = await port.execute(Cdb.positionToElement({ destination: 0x3000 }));
    expect(hasSense(bad, Sense.INVALID_ELEMENT_ADDRESS)).toBe(true);
    expect(senseOf(bad)?.fieldPointer?.byte).toBe(4);
  });
});

describe('SMC: PREVENT ALLOW MEDIUM REMOVAL and the import/export door', () => {
  it('locks the door while any initiator prevents removal', async () => {
    const { port, lib } = await makeLibrary();
    const other = new MemoryPort(lib.changer);
    await other.execute(Cdb.testUnitReady());
    expect((await port.execute(Cdb.preventAllowMediumRemoval(true))).status).toBe(GOOD);
    expect((await other.execute(Cdb.preventAllowMediumRemoval(true))).status).toBe(GOOD);
    await expect(lib.openDoor()).rejects.toMatchObject({ name: 'OperatorActionError', code: 'door-locked' });
    await port.execute(Cdb.preventAllowMediumRemoval(false));
    await expect(lib.openDoor()).rejects.toMatchObject({ code: 'door-locked' });
    await other.execute(Cdb.preventAllowMediumRemoval(false));
    await lib.openDoor();
    expect(lib.model.doorState('import-export')).toBe('open');
  });

  it('refuses the persistent prevent values', async () => {
    const { port } = await makeLibrary();
    const cdb = Cdb.preventAllowMediumRemoval(true);
    const bytes = Uint8Array.from(cdb.cdb);
    bytes[4] = 0x02;
    const r = await port.execute({ ...cdb, cdb: bytes });
    expect(hasSense(r, Sense.INVALID_FIELD_IN_CDB)).toBe(true);
  });

  it('a reset clears prevention', async () => {
    const { port, lib } = await makeLibrary();
    await port.execute(Cdb.preventAllowMediumRemoval(true));
    lib.changer.taskManagement('lu-reset', port.initiator);
    await lib.openDoor();
  });

  it('import/export elements are not accessible while the door is open', async () => {
    const { port, lib } = await makeLibrary();
    await lib.openDoor();
    const s = await elementStatus(port, { elementType: ElementType.importExport });
    expect(s.elements.every((e) => !e.access)).toBe(true);
    const r = await port.execute(Cdb.moveMedium({ source: S1, destination: IE1 }));
    expect(hasSense(r, Sense.MEDIUM_MAGAZINE_NOT_ACCESSIBLE)).toBe(true);
    expect(senseOf(r)?.key).toBe(SenseKey.NOT_READY);
    // Elsewhere the robot still works.
    expect((await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }))).status).toBe(GOOD);
  });

  it('after the operator used the door: IMPORT OR EXPORT ELEMENT ACCESSED, and the import shows IMPEXP', async () => {
    const { port, lib } = await makeLibrary();
    await lib.openDoor();
    const at = lib.insertIntoImportExport('N00001L8');
    expect(at).toBe(IE1);
    await lib.closeDoor();
    const ua = await port.execute(Cdb.testUnitReady());
    expect(hasSense(ua, Sense.IMPORT_EXPORT_ELEMENT_ACCESSED)).toBe(true);
    expect((await port.execute(Cdb.testUnitReady())).status).toBe(GOOD);
    const s = await elementStatus(port, { elementType: ElementType.importExport });
    expect(s.elements[0]).toMatchObject({ full: true, impExp: true, barcode: 'N00001L8', access: true });
    // Import it into the library, then export another.
    expect((await port.execute(Cdb.moveMedium({ source: IE1, destination: S4 }))).status).toBe(GOOD);
    expect((await port.execute(Cdb.moveMedium({ source: S2, destination: 0x11 }))).status).toBe(GOOD);
    const t = await elementStatus(port, { elementType: ElementType.importExport });
    expect(t.elements[1]).toMatchObject({ full: true, impExp: false, barcode: 'A00002L8', svalid: true, source: S2 });
    await lib.openDoor();
    expect(lib.removeFromImportExport(0x11).barcode).toBe('A00002L8');
    await lib.closeDoor();
  });
});

describe('SMC: library door, readiness, unit attentions', () => {
  it('NOT READY while the library door is open; NOT READY TO READY CHANGE after it closes', async () => {
    const { port, lib } = await makeLibrary();
    await lib.openDoor('library');
    const tur = await port.execute(Cdb.testUnitReady());
    expect(hasSense(tur, Sense.MANUAL_INTERVENTION_REQUIRED)).toBe(true);
    const mv = await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }));
    expect(senseOf(mv)?.key).toBe(SenseKey.NOT_READY);
    lib.insertIntoStorage(S4, 'M00001L8');
    expect(lib.removeFromStorage(S1).barcode).toBe('A00001L8');
    await lib.closeDoor('library');
    expect(hasSense(await port.execute(Cdb.testUnitReady()), Sense.NOT_READY_TO_READY_CHANGE)).toBe(true);
    expect(await inventoryOverScsi(port)).toEqual(new Map([[D1, 'A00004L8'], [S2, 'A00002L8'], [S3, 'W00003LY'], [S4, 'M00001L8']]));
  });

  it('power cycle: POWER ON OCCURRED, prevention cleared, cartridges stay', async () => {
    const { port, lib } = await makeLibrary();
    await port.execute(Cdb.preventAllowMediumRemoval(true));
    await lib.faults.powerCycle();
    const r = await port.execute(Cdb.testUnitReady());
    expect(hasSense(r, Sense.POWER_ON_OCCURRED)).toBe(true);
    expect(lib.model.removalPrevented()).toBe(false);
    expect(lib.model.inventory().get(S1)).toBe('A00001L8');
  });
});

describe('SMC: mode and log pages, INQUIRY', () => {
  async function modePage(port: MemoryPort, page: number): Promise<Uint8Array> {
    const r = await port.execute(Cdb.modeSense6({ page, allocationLength: 255, disableBlockDescriptors: true } as Parameters<typeof Cdb.modeSense6>[0]));
    expect(r.status).toBe(GOOD);
    const headerLen = 4 + (r.data[3] ?? 0);
    return r.data.subarray(headerLen);
  }

  it('element address assignment page 1Dh', async () => {
    const { port } = await makeLibrary();
    const p = await modePage(port, 0x1d);
    expect(p[0]! & 0x3f).toBe(0x1d);
    expect(p[1]).toBe(0x12);
    expect([2, 4, 6, 8, 10, 12, 14, 16].map((o) => getU16(p, o))).toEqual([1, 1, 0x1000, 6, 0x10, 2, 0x100, 2]);
  });

  it('transport geometry page 1Eh and device capabilities page 1Fh', async () => {
    const { port } = await makeLibrary();
    const g = await modePage(port, 0x1e);
    expect([...g.subarray(0, 4)]).toEqual([0x1e, 2, 0, 0]);
    const c = await modePage(port, 0x1f);
    expect(c[1]).toBe(0x12);
    expect(c[2]).toBe(0x0e);
    expect([...c.subarray(4, 8)]).toEqual([0x0e, 0x0e, 0x0e, 0x0e]);
    expect([...c.subarray(12, 16)]).toEqual([0, 0x0e, 0x0e, 0x0e]);
    const ibm = await makeLibrary({ personality: 'IBM-TS3200' });
    const ci = await modePage(ibm.port, 0x1f);
    expect([...ci.subarray(12, 16)]).toEqual([0, 0, 0, 0]);
  });

  it('temperature log page and the supported pages list', async () => {
    const { port } = await makeLibrary({ personality: 'IBM-TS3200' });
    const sup = await port.execute(Cdb.logSense({ page: 0x00, allocationLength: 255 }));
    expect([...sup.data.subarray(4)]).toContain(0x0d);
    const t = await port.execute(Cdb.logSense({ page: 0x0d, allocationLength: 255 }));
    expect(t.status).toBe(GOOD);
    expect(t.data[0]).toBe(0x0d);
    expect(getU16(t.data, 4)).toBe(0);
    expect(t.data[9]).toBe(28);
    expect(getU16(t.data, 10)).toBe(1);
    expect(t.data[15]).toBe(40);
  });

  it('INQUIRY: medium changer with the personality identity; REPORT LUNS lists the drives', async () => {
    const { port } = await makeLibrary({ personality: 'IBM-TS3200' });
    const r = await port.execute(Cdb.inquiry());
    expect(r.data[0]).toBe(0x08);
    expect(Buffer.from(r.data.subarray(8, 32)).toString()).toBe('IBM     3573-TL         ');
    const luns = await port.execute(Cdb.reportLuns());
    expect(getU32(luns.data, 0)).toBe(24);
    expect([luns.data[9], luns.data[17], luns.data[25]]).toEqual([0, 1, 2]);
  });

  it('REPORT SUPPORTED OPERATION CODES lists the SMC commands', async () => {
    const { port } = await makeLibrary();
    const r = await port.execute(Cdb.reportSupportedOperationCodes({ allocationLength: 4096 }));
    expect(r.status).toBe(GOOD);
    const ops = new Set<number>();
    for (let off = 4; off + 8 <= r.data.length; off += 8 + (((r.data[off + 5] ?? 0) & 0x02) ? 12 : 0)) ops.add(r.data[off] ?? 0);
    for (const op of [0x07, 0x1e, 0x2b, 0xa5, 0xa6, 0xb8, 0xe7]) expect(ops.has(op), op.toString(16)).toBe(true);
    expect(decodeSense.length).toBe(1);
  });
});
