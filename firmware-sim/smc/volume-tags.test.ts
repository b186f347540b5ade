import { describe, expect, it } from 'vitest';
import { getU16, getU24 } from '../../src/scsi/bytes.js';
import * as Cdb from '../../src/scsi/cdb.js';
import { ElementType, SendVolumeTagAction as A } from '../../src/scsi/cdb.js';
import { buildElementStatus, elementsOf, parseElementStatus, parseVolumeElementAddress } from '../../src/scsi/parse-element-status.js';
import { Sense, decodeSense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import type { ScsiResponse } from '../../src/transport/scsi-port.js';
import { MemoryPort } from '../front/memory-port.js';
import { parseLibraryConfig, LibraryConfigError } from '../library/config.js';
import { hasSense, makeLibrary, smallLibrary } from '../library/test-kit.js';
import { matchesPattern } from './volume-tags.js';

const GOOD = ScsiStatus.GOOD;
const S1 = 0x1000;
const S2 = 0x1001;
const S3 = 0x1002;
const S4 = 0x1003;
const D1 = 0x100;

function expectSense(r: ScsiResponse, code: (typeof Sense)[keyof typeof Sense], pointer?: { inCdb: boolean; byte: number; bit?: number }): void {
  expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
  expect(hasSense(r, code), JSON.stringify(decodeSense(r.sense))).toBe(true);
  if (pointer) expect(decodeSense(r.sense).fieldPointer).toEqual(pointer);
}

async function status(port: MemoryPort, o: Cdb.ReadElementStatusOptions = {}): Promise<ReturnType<typeof parseElementStatus>> {
  const r = await port.execute(Cdb.readElementStatus({ volTag: true, ...o }));
  expect(r.status).toBe(GOOD);
  return parseElementStatus(r.data);
}

async function tags(port: MemoryPort): Promise<Map<number, { primary?: string; alternate?: string; seq?: number }>> {
  const s = await status(port);
  return new Map(
    elementsOf(s)
      .filter((e) => e.full)
      .map((e) => [e.address, { primary: e.primaryVolumeTag?.identifier, alternate: e.alternateVolumeTag?.identifier, seq: e.alternateVolumeTag?.sequenceNumber }]),
  );
}

/** A CDB built by hand, for malformed ones. */
function svt(address: number, action: number, length: number, b1 = 0): Uint8Array {
  return Uint8Array.of(0xb6, b1, address >> 8, address & 0xff, 0, action, 0, 0, length >> 8, length & 0xff, 0, 0);
}

describe('matchesPattern', () => {
  it('matches ? with one character and * with any run, anchored at both ends', () => {
    expect(matchesPattern('A0000?L8', 'A00001L8')).toBe(true);
    expect(matchesPattern('A0000?L8', 'A000012L8')).toBe(false);
    expect(matchesPattern('A*', 'A00001L8')).toBe(true);
    expect(matchesPattern('*L8', 'A00001L8')).toBe(true);
    expect(matchesPattern('*L8', 'W00003LY')).toBe(false);
    expect(matchesPattern('A*1*8', 'A00001L8')).toBe(true);
    expect(matchesPattern('*', '')).toBe(true);
    expect(matchesPattern('A00001', 'A00001L8')).toBe(false);
    expect(matchesPattern('a00001L8', 'A00001L8')).toBe(false);
  });
});

describe('SMC: alternate volume tags in READ ELEMENT STATUS', () => {
  it('a library without alternate tags reports primary tags only (AVOLTAG clear, 52-byte descriptors)', async () => {
    const { port } = await makeLibrary();
    const s = await status(port);
    expect(s.pages.every((p) => p.pvoltag && !p.avoltag && p.descriptorLength === 52)).toBe(true);
  });

  it('altBarcode from the YAML is reported as the alternate tag; AVOLTAG is set in every page and empty descriptors carry zeroes', async () => {
    const cartridges = [{ barcode: 'A00001L8', location: 'slot 1', altBarcode: 'OFFSITE-7' }, { barcode: 'A00002L8', location: 'slot 2' }];
    const { port } = await makeLibrary({ cartridges });
    const s = await status(port);
    expect(s.pages.every((p) => p.pvoltag && p.avoltag && p.descriptorLength === 12 + 36 + 36 + 4)).toBe(true);
    expect(s.reportBytes).toBe(4 * 8 + 11 * 88);
    const t = await tags(port);
    expect(t.get(S1)).toEqual({ primary: 'A00001L8', alternate: 'OFFSITE-7', seq: 0 });
    expect(t.get(S2)).toEqual({ primary: 'A00002L8', alternate: '', seq: 0 });
    // Without VOLTAG no tag of either kind is reported.
    const r = await port.execute(Cdb.readElementStatus({ elementType: ElementType.storage }));
    const plain = parseElementStatus(r.data);
    expect(plain.pages[0]).toMatchObject({ pvoltag: false, avoltag: false, descriptorLength: 16 });
  });

  it('the alternate tag follows its cartridge through a move', async () => {
    const { port } = await makeLibrary({ cartridges: [{ barcode: 'A00001L8', location: 'slot 1', altBarcode: 'VAULT1' }] });
    expect((await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }))).status).toBe(GOOD);
    const t = await tags(port);
    expect(t.get(S4)).toMatchObject({ primary: 'A00001L8', alternate: 'VAULT1' });
    expect(t.has(S1)).toBe(false);
  });
});

describe('library YAML: altBarcode', () => {
  it('is validated with an error naming the field', () => {
    const bad = (altBarcode: string): string => {
      try {
        parseLibraryConfig({ ...smallLibrary, cartridges: [{ barcode: 'A00001L8', altBarcode }] }, { baseDir: '/tmp/ptpvts-test' });
      } catch (e) {
        expect(e).toBeInstanceOf(LibraryConfigError);
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(bad('HAS BLANK')).toMatch(/cartridges\[0\]\.altBarcode: an alternate volume tag is 1\.\.32 printable ASCII characters without blanks/);
    expect(bad('X*')).toMatch(/cartridges\[0\]\.altBarcode: an alternate volume tag may not contain \* or \?/);
    expect(bad('X'.repeat(33))).toMatch(/cartridges\[0\]\.altBarcode/);
  });

  it('refuses the same alternate tag on two cartridges', () => {
    expect(() =>
      parseLibraryConfig(
        { ...smallLibrary, cartridges: [{ barcode: 'A00001L8', altBarcode: 'V1' }, { barcode: 'A00002L8', altBarcode: 'v1' }] },
        { baseDir: '/tmp/ptpvts-test' },
      ),
    ).toThrow(/cartridges\[1\]\.altBarcode: duplicate alternate volume tag v1 \(first at cartridges\[0\]\)/);
  });
});

describe('SMC: SEND VOLUME TAG assert, replace and undefine', () => {
  it('asserts an alternate tag with a sequence number, which READ ELEMENT STATUS then reports', async () => {
    const { port, lib } = await makeLibrary();
    const r = await port.execute(Cdb.sendVolumeTag({ elementAddress: S2, action: A.assertAlternate, template: 'POOL-A-0002', minSequence: 3 }));
    expect(r.status).toBe(GOOD);
    const t = await tags(port);
    expect(t.get(S2)).toEqual({ primary: 'A00002L8', alternate: 'POOL-A-0002', seq: 3 });
    expect(t.get(S1)).toEqual({ primary: 'A00001L8', alternate: '', seq: 0 });
    expect(lib.model.volumeTagAssignments()).toEqual(new Map([['A00002L8', { alternate: { identifier: 'POOL-A-0002', sequence: 3 } }]]));
  });

  it('asserting an alternate tag twice is refused at the send action code; replace changes it; undefine removes it', async () => {
    const { port } = await makeLibrary();
    expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: S1, action: A.assertAlternate, template: 'FIRST' }))).status).toBe(GOOD);
    expectSense(await port.execute(Cdb.sendVolumeTag({ elementAddress: S1, action: A.assertAlternate, template: 'SECOND' })), Sense.INVALID_FIELD_IN_CDB, { inCdb: true, byte: 5, bit: 4 });
    expect((await tags(port)).get(S1)?.alternate).toBe('FIRST');
    expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: S1, action: A.replaceAlternate, template: 'SECOND' }))).status).toBe(GOOD);
    expect((await tags(port)).get(S1)?.alternate).toBe('SECOND');
    expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: S1, action: A.undefineAlternate }))).status).toBe(GOOD);
    const s = await status(port);
    expect(s.pages.some((p) => p.avoltag)).toBe(false);
    expectSense(await port.execute(Cdb.sendVolumeTag({ elementAddress: S1, action: A.undefineAlternate })), Sense.INVALID_FIELD_IN_CDB, { inCdb: true, byte: 5, bit: 4 });
  });

  it('the label is a defined primary tag: assert primary is refused, replace overrides it, undefine brings the label back', async () => {
    const { port, lib } = await makeLibrary();
    expectSense(await port.execute(Cdb.sendVolumeTag({ elementAddress: S3, action: A.assertPrimary, template: 'NEW' })), Sense.INVALID_FIELD_IN_CDB, { inCdb: true, byte: 5, bit: 4 });
    expectSense(await port.execute(Cdb.sendVolumeTag({ elementAddress: S3, action: A.undefinePrimary })), Sense.INVALID_FIELD_IN_CDB, { inCdb: true, byte: 5, bit: 4 });
    expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: S3, action: A.replacePrimary, template: 'RELABEL3' }))).status).toBe(GOOD);
    expect((await tags(port)).get(S3)?.primary).toBe('RELABEL3');
    // The library still knows the cartridge by its label.
    expect(lib.model.find('W00003LY')).toBe(S3);
    expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: S3, action: A.undefinePrimary }))).status).toBe(GOOD);
    expect((await tags(port)).get(S3)?.primary).toBe('W00003LY');
  });

  it('tags a cartridge in a drive', async () => {
    const { port } = await makeLibrary();
    expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: D1, action: A.assertAlternate, template: 'IN-DRIVE' }))).status).toBe(GOOD);
    expect((await tags(port)).get(D1)?.alternate).toBe('IN-DRIVE');
  });

  it('an empty element is MEDIUM SOURCE ELEMENT EMPTY, the transport or an unknown address INVALID ELEMENT ADDRESS, at byte 2', async () => {
    const { port } = await makeLibrary();
    expectSense(await port.execute(Cdb.sendVolumeTag({ elementAddress: S4, action: A.assertAlternate, template: 'X' })), Sense.MEDIUM_SOURCE_ELEMENT_EMPTY, { inCdb: true, byte: 2, bit: 7 });
    expectSense(await port.execute(Cdb.sendVolumeTag({ elementAddress: 1, action: A.assertAlternate, template: 'X' })), Sense.INVALID_ELEMENT_ADDRESS, { inCdb: true, byte: 2, bit: 7 });
    expectSense(await port.execute(Cdb.sendVolumeTag({ elementAddress: 0x7777, action: A.replaceAlternate, template: 'X' })), Sense.INVALID_ELEMENT_ADDRESS, { inCdb: true, byte: 2, bit: 7 });
    expectSense(await port.execute(Cdb.sendVolumeTag({ elementAddress: 0x7777, action: A.translateAll, template: '*' })), Sense.INVALID_ELEMENT_ADDRESS, { inCdb: true, byte: 2, bit: 7 });
  });

  it('reserved send action codes are refused at byte 5 bit 4, reserved CDB bits at their byte', async () => {
    const { port } = await makeLibrary();
    const params = Cdb.volumeTagTemplate({ template: 'X' });
    for (const code of [0x03, 0x04, 0x0e, 0x1f]) {
      expectSense(await port.execute({ cdb: svt(S1, code, 40), direction: 'out', dataOut: params }), Sense.INVALID_FIELD_IN_CDB, { inCdb: true, byte: 5, bit: 4 });
    }
    const r = await port.execute({ cdb: svt(S1, A.assertAlternate, 40, 0x01), direction: 'out', dataOut: params });
    expectSense(r, Sense.INVALID_FIELD_IN_CDB);
    expect(decodeSense(r.sense).fieldPointer).toMatchObject({ inCdb: true, byte: 1 });
  });

  it('a parameter list length other than 40 is refused at byte 8 (undefine also takes 0); a short Data-Out is PARAMETER LIST LENGTH ERROR', async () => {
    const { port } = await makeLibrary();
    const params = Cdb.volumeTagTemplate({ template: 'X' });
    for (const [code, len] of [[A.assertAlternate, 36], [A.replacePrimary, 0], [A.translateAll, 41], [A.undefineAlternate, 12]] as const) {
      expectSense(await port.execute({ cdb: svt(S1, code, len), direction: 'out', dataOut: new Uint8Array(len) }), Sense.INVALID_FIELD_IN_CDB, { inCdb: true, byte: 8, bit: 7 });
    }
    expectSense(await port.execute({ cdb: svt(S1, A.assertAlternate, 40), direction: 'out', dataOut: params.subarray(0, 20) }), Sense.PARAMETER_LIST_LENGTH_ERROR);
    expect((await tags(port)).get(S1)?.alternate).toBeUndefined();
  });

  it('a bad template is INVALID FIELD IN PARAMETER LIST pointing at the byte: wildcards in a tag, blanks, control characters, reserved bytes', async () => {
    const { port } = await makeLibrary();
    const send = (p: Uint8Array, code: number = A.assertAlternate): Promise<ScsiResponse> => port.execute({ cdb: svt(S1, code, 40), direction: 'out', dataOut: p });
    const withByte = (template: string, at: number, v: number): Uint8Array => {
      const p = Cdb.volumeTagTemplate({ template });
      p[at] = v;
      return p;
    };
    expectSense(await send(Cdb.volumeTagTemplate({ template: 'AB*' })), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte: 2, bit: 7 });
    expectSense(await send(Cdb.volumeTagTemplate({ template: 'A?' })), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte: 1, bit: 7 });
    expectSense(await send(Cdb.volumeTagTemplate({ template: 'AB CD' })), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte: 2, bit: 7 });
    expectSense(await send(withByte('ABC', 1, 0x07)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte: 1, bit: 7 });
    expectSense(await send(withByte('ABC', 0, 0x20)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte: 0, bit: 7 });
    expectSense(await send(new Uint8Array(40).fill(0x20, 0, 32)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte: 0, bit: 7 });
    expectSense(await send(withByte('ABC', 33, 1)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte: 33, bit: 7 });
    expectSense(await send(withByte('ABC', 36, 1)), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte: 36, bit: 7 });
    // A translate takes wildcards, but not a minimum above the maximum.
    expectSense(await send(Cdb.volumeTagTemplate({ template: 'A*', minSequence: 5, maxSequence: 4 }), A.translateAll), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte: 34, bit: 7 });
    expect((await tags(port)).get(S1)?.alternate).toBeUndefined();
  });

  it('is NOT READY while the library door is open', async () => {
    const { port, lib } = await makeLibrary();
    await lib.openDoor('library');
    expectSense(await port.execute(Cdb.sendVolumeTag({ elementAddress: S1, action: A.assertAlternate, template: 'X' })), Sense.MANUAL_INTERVENTION_REQUIRED);
    await lib.closeDoor('library');
  });

  it('a cartridge the operator takes out leaves its tags behind', async () => {
    const { port, lib } = await makeLibrary();
    expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: S1, action: A.assertAlternate, template: 'GONE' }))).status).toBe(GOOD);
    await lib.openDoor('library');
    const c = lib.removeFromStorage(S1);
    lib.insertIntoStorage(S1, c.barcode);
    await lib.closeDoor('library');
    expect(lib.model.volumeTagAssignments().size).toBe(0);
  });

  it('restored tags (the lab state) are reported as sent, and malformed ones are refused', async () => {
    const { port, lib } = await makeLibrary();
    lib.model.restoreVolumeTags('A00002L8', { primary: { identifier: 'P2', sequence: 1 }, alternate: { identifier: 'ALT2', sequence: 9 } });
    expect((await tags(port)).get(S2)).toEqual({ primary: 'P2', alternate: 'ALT2', seq: 9 });
    expect(() => lib.model.restoreVolumeTags('A00002L8', { alternate: { identifier: 'A B', sequence: 0 } })).toThrow(/A00002L8: volume tag "A B" is not 1..32 printable/);
    expect(() => lib.model.restoreVolumeTags('A00002L8', { alternate: { identifier: 'AB', sequence: 70000 } })).toThrow(/sequence number 70000/);
  });
});

describe('SMC: SEND VOLUME TAG translate and REQUEST VOLUME ELEMENT ADDRESS', () => {
  async function setUp(): Promise<MemoryPort> {
    const { port } = await makeLibrary();
    for (const [a, t, seq] of [[S1, 'POOL-A-1', 1], [S2, 'POOL-A-2', 2], [S3, 'POOL-B-1', 1], [D1, 'POOL-A-3', 7]] as const) {
      expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: a, action: A.assertAlternate, template: t, minSequence: seq }))).status).toBe(GOOD);
    }
    return port;
  }

  async function found(port: MemoryPort, o: Cdb.RequestVolumeElementAddressOptions = { volTag: true }): Promise<ReturnType<typeof parseVolumeElementAddress>> {
    const r = await port.execute(Cdb.requestVolumeElementAddress(o));
    expect(r.status).toBe(GOOD);
    return parseVolumeElementAddress(r.data);
  }

  it('finds cartridges by alternate tag with wildcards, reports the send action code and the tags, in address order', async () => {
    const port = await setUp();
    expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAlternate, template: 'POOL-A-*' }))).status).toBe(GOOD);
    const v = await found(port);
    expect(v.sendAction).toBe(A.translateAlternate);
    expect(elementsOf(v).map((e) => [e.address, e.alternateVolumeTag?.identifier, e.primaryVolumeTag?.identifier])).toEqual([
      [D1, 'POOL-A-3', 'A00004L8'],
      [S1, 'POOL-A-1', 'A00001L8'],
      [S2, 'POOL-A-2', 'A00002L8'],
    ]);
    expect(v.elementsAvailable).toBe(3);
    expect(v.firstAddress).toBe(D1);
    expect(v.pages.map((p) => [p.type, p.pvoltag, p.avoltag])).toEqual([[4, true, true], [2, true, true]]);
  });

  it('honours the sequence number range unless told to ignore it', async () => {
    const port = await setUp();
    await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAlternate, template: 'POOL-?-*', minSequence: 1, maxSequence: 2 }));
    expect(elementsOf(await found(port)).map((e) => e.address)).toEqual([S1, S2, S3]);
    await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAlternateIgnoreSequence, template: 'POOL-?-*', minSequence: 1, maxSequence: 2 }));
    expect(elementsOf(await found(port)).map((e) => e.address)).toEqual([D1, S1, S2, S3]);
  });

  it('searches primary, alternate or both as the action code says, from the starting element', async () => {
    const port = await setUp();
    await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translatePrimary, template: 'A0000?L8' }));
    expect(elementsOf(await found(port)).map((e) => e.address)).toEqual([D1, S1, S2]);
    await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAlternate, template: 'A0000?L8' }));
    expect(elementsOf(await found(port))).toEqual([]);
    // D1 by its alternate tag POOL-A-3, S3 by its label W00003LY.
    await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAll, template: '*3*' }));
    expect(elementsOf(await found(port)).map((e) => e.address)).toEqual([D1, S3]);
    await port.execute(Cdb.sendVolumeTag({ elementAddress: S2, action: A.translateAll, template: '*' }));
    expect(elementsOf(await found(port)).map((e) => e.address)).toEqual([S2, S3]);
  });

  it('selects by element type, starting address and count; a short allocation keeps the full byte count', async () => {
    const port = await setUp();
    await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAll, template: '*' }));
    expect(elementsOf(await found(port, { elementType: ElementType.storage })).map((e) => e.address)).toEqual([S1, S2, S3]);
    expect(elementsOf(await found(port, { startingAddress: S2, count: 1 })).map((e) => e.address)).toEqual([S2]);
    const all = await port.execute(Cdb.requestVolumeElementAddress({ volTag: true }));
    const short = await port.execute(Cdb.requestVolumeElementAddress({ volTag: true, allocationLength: 20 }));
    expect(short.data.length).toBe(20);
    expect(getU24(short.data, 5)).toBe(all.data.length - 8);
    expect(getU16(short.data, 2)).toBe(4);
    // Without VOLTAG the descriptors carry no tags.
    const bare = await found(port, {});
    expect(bare.pages.every((p) => !p.pvoltag && !p.avoltag && p.descriptorLength === 16)).toBe(true);
  });

  it('reports where the cartridges are now, not where they were at the translate', async () => {
    const port = await setUp();
    await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAlternate, template: 'POOL-B-1' }));
    expect((await port.execute(Cdb.moveMedium({ source: S3, destination: S4 }))).status).toBe(GOOD);
    expect(elementsOf(await found(port)).map((e) => e.address)).toEqual([S4]);
  });

  it('without a translate first (or after a reset) is COMMAND SEQUENCE ERROR; translates are per initiator', async () => {
    const { lib, port } = await makeLibrary();
    expectSense(await port.execute(Cdb.requestVolumeElementAddress()), Sense.COMMAND_SEQUENCE_ERROR);
    expect((await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAll, template: '*' }))).status).toBe(GOOD);
    const other = new MemoryPort(lib.changer);
    await other.execute(Cdb.testUnitReady());
    expectSense(await other.execute(Cdb.requestVolumeElementAddress()), Sense.COMMAND_SEQUENCE_ERROR);
    expect((await port.execute(Cdb.requestVolumeElementAddress())).status).toBe(GOOD);
    lib.model.reset();
    expectSense(await port.execute(Cdb.requestVolumeElementAddress()), Sense.COMMAND_SEQUENCE_ERROR);
  });

  it('an element type above 4 is refused at byte 1, reserved bits at their byte', async () => {
    const { port } = await makeLibrary();
    await port.execute(Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAll, template: '*' }));
    expectSense(await port.execute({ cdb: Uint8Array.of(0xb5, 0x05, 0, 0, 0, 10, 0, 0, 0x10, 0, 0, 0), direction: 'in', dataInLength: 4096 }), Sense.INVALID_FIELD_IN_CDB, { inCdb: true, byte: 1, bit: 3 });
    const r = await port.execute({ cdb: Uint8Array.of(0xb5, 0x00, 0, 0, 0, 10, 0x01, 0, 0x10, 0, 0, 0), direction: 'in', dataInLength: 4096 });
    expectSense(r, Sense.INVALID_FIELD_IN_CDB);
    expect(decodeSense(r.sense).fieldPointer).toMatchObject({ inCdb: true, byte: 6 });
  });

  it('REPORT SUPPORTED OPERATION CODES lists both commands with their CDB usage', async () => {
    const { port } = await makeLibrary();
    for (const [op, usage] of [[0xb6, [0xb6, 0, 0xff, 0xff, 0, 0x1f, 0, 0, 0xff, 0xff, 0, 0]], [0xb5, [0xb5, 0x1f, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0, 0]]] as const) {
      const r = await port.execute(Cdb.reportSupportedOperationCodes({ opcode: op, allocationLength: 64 }));
      expect(r.status).toBe(GOOD);
      expect(r.data[1]! & 0x07).toBe(3);
      expect(getU16(r.data, 2)).toBe(12);
      expect([...r.data.subarray(4, 16)].slice(0, 11)).toEqual(usage.slice(0, 11));
    }
  });
});

describe('client: SEND VOLUME TAG and REQUEST VOLUME ELEMENT ADDRESS CDBs', () => {
  it('build the SMC-3 layout', () => {
    const c = Cdb.sendVolumeTag({ elementAddress: 0x1234, action: A.assertAlternate, template: 'TAG01', minSequence: 2 });
    expect([...c.cdb]).toEqual([0xb6, 0, 0x12, 0x34, 0, 0x09, 0, 0, 0, 40, 0, 0]);
    expect(c.direction).toBe('out');
    expect(new TextDecoder().decode(c.dataOut!.subarray(0, 32))).toBe('TAG01'.padEnd(32));
    expect(getU16(c.dataOut!, 34)).toBe(2);
    expect(getU16(c.dataOut!, 38)).toBe(0);
    const u = Cdb.sendVolumeTag({ elementAddress: 5, action: A.undefinePrimary });
    expect([...u.cdb.subarray(8, 10)]).toEqual([0, 0]);
    expect(u.direction).toBe('none');
    const tr = Cdb.sendVolumeTag({ elementAddress: 0, action: A.translateAll, template: 'A*' });
    expect(getU16(tr.dataOut!, 38)).toBe(0xffff);
    const q = Cdb.requestVolumeElementAddress({ elementType: ElementType.storage, startingAddress: 0x1000, count: 3, volTag: true, allocationLength: 0x10203 });
    expect([...q.cdb]).toEqual([0xb5, 0x12, 0x10, 0x00, 0, 3, 0, 0x01, 0x02, 0x03, 0, 0]);
  });

  it('parseVolumeElementAddress reads the send action code and both tags', () => {
    const base = { full: true, except: false, access: true, asc: 0, ascq: 0, ed: false, mediumType: 1, invert: false };
    const data = buildElementStatus([
      {
        type: ElementType.storage,
        pvoltag: true,
        avoltag: true,
        elements: [{ ...base, address: 0x1000, primaryVolumeTag: { identifier: 'A00001L8', sequenceNumber: 0 }, alternateVolumeTag: { identifier: 'ALT', sequenceNumber: 7 } }],
      },
    ]);
    data[4] = 0xe2; // the top bits are reserved
    const v = parseVolumeElementAddress(data);
    expect(v.sendAction).toBe(2);
    expect(elementsOf(v)[0]).toMatchObject({ address: 0x1000, primaryVolumeTag: { identifier: 'A00001L8' }, alternateVolumeTag: { identifier: 'ALT', sequenceNumber: 7 } });
    expect(() => parseVolumeElementAddress(new Uint8Array(4))).toThrow(/REQUEST VOLUME ELEMENT ADDRESS data/);
  });

  it('refuse arguments that would make a malformed command, naming the field', () => {
    expect(() => Cdb.sendVolumeTag({ elementAddress: 1, action: 0x03 as A })).toThrow(/action must be/);
    expect(() => Cdb.sendVolumeTag({ elementAddress: 1, action: A.assertAlternate })).toThrow(/template must be given/);
    expect(() => Cdb.sendVolumeTag({ elementAddress: 1, action: A.assertAlternate, template: 'A*' })).toThrow(/template must be a volume tag without blanks/);
    expect(() => Cdb.volumeTagTemplate({ template: 'X'.repeat(33) })).toThrow(/template must be 1..32 printable/);
    expect(() => Cdb.volumeTagTemplate({ template: 'X', minSequence: -1 })).toThrow(/minSequence/);
    expect(() => Cdb.requestVolumeElementAddress({ elementType: 5 as Cdb.ElementType })).toThrow(/elementType/);
  });
});
