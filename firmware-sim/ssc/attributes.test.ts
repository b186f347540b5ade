/**
 * The cartridge memory as LTFS uses it: the host attributes it writes and reads back, per
 * partition volume coherency information, value checks with field pointers, the service
 * actions, the CACHE bit, and persistence across unloads and a restart of the process.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { getU16, getU32, setU16 } from '../../src/scsi/bytes.js';
import { Sense } from '../../src/scsi/sense.js';
import type { Command } from '../../src/scsi/cdb.js';
import { MemoryPort } from '../front/memory-port.js';
import { Cartridge, PARTITION_ATTRIBUTES_BASE } from '../media/cartridge.js';
import { drivePersonality } from '../personalities/drives.js';
import { cartridgeAttributes } from './attributes.js';
import { createTapeDrive } from './index.js';
import { Attr, parseVolumeCoherency } from './mam.js';
import { drain, expectGood, expectSense, rig, type Rig } from './test-kit.js';

let r: Rig;
beforeEach(async () => {
  r = await rig();
});
afterEach(() => r.cleanup());

const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];

/** One attribute of a WRITE ATTRIBUTE list. */
function attr(id: number, format: number, value: readonly number[]): number[] {
  return [id >> 8, id & 0xff, format, value.length >> 8, value.length & 0xff, ...value];
}

/** A WRITE ATTRIBUTE parameter list of the given attributes. */
function list(...attrs: number[][]): Uint8Array {
  const body = attrs.flat();
  const b = new Uint8Array(4 + body.length);
  b[0] = body.length >>> 24;
  b[1] = (body.length >> 16) & 0xff;
  b[2] = (body.length >> 8) & 0xff;
  b[3] = body.length & 0xff;
  b.set(body, 4);
  return b;
}

/** LTFS's volume coherency information: an 8-byte change reference, count, set id, and "LTFS", UUID, version. */
function ltfsVci(o: { changeRef: number; count: number; uuid: string; version?: number }): number[] {
  const b = new Uint8Array(70);
  const v = new DataView(b.buffer);
  b[0] = 8;
  v.setBigUint64(1, BigInt(o.changeRef));
  v.setBigUint64(9, BigInt(o.count));
  v.setBigUint64(17, 0x1122334455667788n);
  setU16(b, 25, 43);
  b.set(ascii('LTFS'), 27);
  b[31] = 0;
  b.set(ascii(o.uuid), 32);
  b[68] = 0;
  b[69] = o.version ?? 1;
  return [...b];
}

const UUID = '7c4f3b0e-2a6d-4f1b-9c3e-5d8a1b2c3d4e';
const GUID = Array.from({ length: 36 }, (_, i) => (i * 13 + 5) & 0xff);

/** Every attribute LTFS writes, as it writes them. */
const ltfsAttributes = (): number[][] => [
  attr(Attr.APPLICATION_VENDOR, 1, ascii('IBM     ')),
  attr(Attr.APPLICATION_NAME, 1, ascii('LTFS'.padEnd(32))),
  attr(Attr.APPLICATION_VERSION, 1, ascii('2.4.5.1 ')),
  attr(Attr.USER_MEDIUM_TEXT_LABEL, 2, ascii('weekly archive')),
  attr(Attr.DATE_TIME_LAST_WRITTEN, 1, ascii('202612070153')),
  attr(Attr.TEXT_LOCALIZATION_IDENTIFIER, 0, [0x81]),
  attr(Attr.BARCODE, 1, ascii('A00001L7'.padEnd(32))),
  attr(Attr.OWNING_HOST_TEXTUAL_NAME, 2, ascii('backup01.example')),
  attr(Attr.MEDIA_POOL, 2, ascii('pool-a')),
  attr(Attr.APPLICATION_FORMAT_VERSION, 1, ascii('2.4.0'.padEnd(16))),
  attr(Attr.VOLUME_COHERENCY_INFORMATION, 0, ltfsVci({ changeRef: 5, count: 3, uuid: UUID })),
  attr(Attr.MEDIUM_GUID, 0, GUID),
  attr(Attr.MEDIA_POOL_GUID, 0, GUID.map((x) => x ^ 0xff)),
];

/** Decodes an ATTRIBUTE VALUES answer: id to [format byte, value]. */
function values(data: Uint8Array): Map<number, { flags: number; value: Uint8Array }> {
  const m = new Map<number, { flags: number; value: Uint8Array }>();
  const end = 4 + getU32(data, 0);
  for (let off = 4; off < end; ) {
    const n = getU16(data, off + 3);
    m.set(getU16(data, off), { flags: data[off + 2] ?? 0, value: data.slice(off + 5, off + 5 + n) });
    off += 5 + n;
  }
  return m;
}

/** Decodes an ATTRIBUTE LIST or SUPPORTED ATTRIBUTES answer. */
function ids(data: Uint8Array): number[] {
  const out: number[] = [];
  for (let off = 4; off < 4 + getU32(data, 0); off += 2) out.push(getU16(data, off));
  return out;
}

function withCache(c: Command): Command {
  const cdb = Uint8Array.from(c.cdb);
  cdb[14] = (cdb[14] ?? 0) | 0x01;
  return { ...c, cdb };
}

const text = (v: Uint8Array | undefined): string => Buffer.from(v ?? []).toString('latin1');

describe('cartridge memory for LTFS', () => {
  it('stores every LTFS attribute, reads it back as written, and keeps it across unload/load and a process restart', async () => {
    const c = await r.load();
    expectGood(await r.port.execute(Cdb.writeAttribute(list(...ltfsAttributes()))));
    const check = (a: ReturnType<typeof values>): void => {
      expect(text(a.get(Attr.APPLICATION_VENDOR)?.value)).toBe('IBM     ');
      expect(text(a.get(Attr.APPLICATION_NAME)?.value).trimEnd()).toBe('LTFS');
      expect(text(a.get(Attr.APPLICATION_VERSION)?.value)).toBe('2.4.5.1 ');
      // Text is NUL padded to its length, ASCII space padded.
      expect(a.get(Attr.USER_MEDIUM_TEXT_LABEL)?.value.length).toBe(160);
      expect(text(a.get(Attr.USER_MEDIUM_TEXT_LABEL)?.value).replace(/\0+$/u, '')).toBe('weekly archive');
      expect(a.get(Attr.USER_MEDIUM_TEXT_LABEL)?.flags).toBe(0x02);
      expect(text(a.get(Attr.DATE_TIME_LAST_WRITTEN)?.value)).toBe('202612070153');
      expect([...(a.get(Attr.TEXT_LOCALIZATION_IDENTIFIER)?.value ?? [])]).toEqual([0x81]);
      expect(text(a.get(Attr.BARCODE)?.value).trimEnd()).toBe('A00001L7');
      expect(text(a.get(Attr.OWNING_HOST_TEXTUAL_NAME)?.value).replace(/\0+$/u, '')).toBe('backup01.example');
      expect(text(a.get(Attr.MEDIA_POOL)?.value).replace(/\0+$/u, '')).toBe('pool-a');
      expect(text(a.get(Attr.APPLICATION_FORMAT_VERSION)?.value).trimEnd()).toBe('2.4.0');
      expect([...(a.get(Attr.MEDIUM_GUID)?.value ?? [])]).toEqual(GUID);
      expect([...(a.get(Attr.MEDIA_POOL_GUID)?.value ?? [])]).toEqual(GUID.map((x) => x ^ 0xff));
      const vci = a.get(Attr.VOLUME_COHERENCY_INFORMATION);
      expect(vci?.flags).toBe(0x00); // writable, binary
      const parsed = parseVolumeCoherency(vci?.value ?? new Uint8Array(0));
      expect('reason' in parsed ? parsed.reason : parsed.ltfs).toEqual({ volumeUuid: UUID, version: 1 });
      expect('coherencyCount' in parsed && parsed.coherencyCount).toBe(3n);
    };
    check(values((await r.port.execute(Cdb.readAttribute({ firstAttribute: 0x0800 }))).data));
    await r.lu.unloadForRobot();
    r.lu.remove();
    await r.lu.insert(c);
    await drain(r.port);
    check(values((await r.port.execute(Cdb.readAttribute({ firstAttribute: 0x0800 }))).data));
    // A new process: another drive model opens the same cartridge file.
    r.lu.close();
    const lu = createTapeDrive({ personality: drivePersonality('ibm-lto7-hh'), serial: 'RESTART1' });
    try {
      const port = new MemoryPort(lu);
      await drain(port);
      await lu.insert(c);
      await drain(port);
      check(values((await port.execute(Cdb.readAttribute({ firstAttribute: 0x0800 }))).data));
    } finally {
      lu.close();
    }
  });

  it('a zero-length value deletes an attribute; a later write replaces the earlier one', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.writeAttribute(list(...ltfsAttributes()))));
    expectGood(await r.port.execute(Cdb.writeAttribute(list(attr(Attr.MEDIA_POOL, 2, []), attr(Attr.VOLUME_COHERENCY_INFORMATION, 0, ltfsVci({ changeRef: 6, count: 4, uuid: UUID }))))));
    const a = values((await r.port.execute(Cdb.readAttribute({ firstAttribute: 0x0800 }))).data);
    expect(a.has(Attr.MEDIA_POOL)).toBe(false);
    const vci = parseVolumeCoherency(a.get(Attr.VOLUME_COHERENCY_INFORMATION)?.value ?? new Uint8Array(0));
    expect('coherencyCount' in vci && vci.coherencyCount).toBe(4n);
  });

  it('volume coherency information belongs to the partition named; partition 1 is refused while the tape has one', async () => {
    const c = await r.load();
    expectGood(await r.port.execute(Cdb.writeAttribute(list(attr(Attr.VOLUME_COHERENCY_INFORMATION, 0, ltfsVci({ changeRef: 9, count: 1, uuid: UUID }))), { partition: 0 })));
    const p0 = values((await r.port.execute(Cdb.readAttribute({ partition: 0, firstAttribute: Attr.VOLUME_COHERENCY_INFORMATION }))).data);
    expect(p0.get(Attr.VOLUME_COHERENCY_INFORMATION)?.value.length).toBe(70);
    expectSense(await r.port.execute(Cdb.readAttribute({ partition: 1 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 7, bit: 7 } });
    expectSense(await r.port.execute(Cdb.readAttribute({ partition: 1, serviceAction: 1 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 7, bit: 7 } });
    expectSense(await r.port.execute(Cdb.writeAttribute(list(attr(Attr.VOLUME_COHERENCY_INFORMATION, 0, ltfsVci({ changeRef: 9, count: 2, uuid: UUID }))), { partition: 1 })), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 7, bit: 7 } });

    // The store itself is by partition number: what partition 1 holds (written as a
    // partitioned tape will) is its own, and partition 0's medium-wide attributes show in it.
    await r.lu.unloadForRobot();
    r.lu.remove();
    const m = Cartridge.open(c.path);
    try {
      m.writeAttributes(new Map([[Attr.VOLUME_COHERENCY_INFORMATION, { format: 0, value: Uint8Array.from(ltfsVci({ changeRef: 9, count: 7, uuid: UUID })) }]]), 1);
    } finally {
      m.close();
    }
    await r.lu.insert(c);
    await drain(r.port);
    const media = r.lu.drive.media!;
    const count = (p: number): bigint | undefined => {
      const v = cartridgeAttributes(r.lu.drive, media, p).find((a) => a.id === Attr.VOLUME_COHERENCY_INFORMATION)?.value;
      const parsed = v ? parseVolumeCoherency(v) : undefined;
      return parsed && 'coherencyCount' in parsed ? parsed.coherencyCount : undefined;
    };
    expect(count(0)).toBe(1n);
    expect(count(1)).toBe(7n);
    expect(cartridgeAttributes(r.lu.drive, media, 1).find((a) => a.id === Attr.LOAD_COUNT)).toBeDefined();
    // The drive's own records of the load left partition 1's attributes alone.
    expect(media.readAttributes(1).size).toBe(1);
    // Hosts never see the container the partition's attributes are kept in.
    const listed = ids((await r.port.execute(Cdb.readAttribute({ serviceAction: 1 }))).data);
    expect(listed.filter((id) => id >= 0x1800)).toEqual([]);
  });

  it('refuses values that break the attribute rules, pointing at the field, and applies nothing of a refused list', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.writeAttribute(list(attr(Attr.APPLICATION_VENDOR, 1, ascii('KEEP'))))));
    const refused = async (bad: number[], byte: number, bit: number): Promise<void> => {
      // A good attribute first: it must not be applied when the second is refused.
      const good = attr(Attr.APPLICATION_VENDOR, 1, ascii('CHANGED'));
      expectSense(await r.port.execute(Cdb.writeAttribute(list(good, bad))), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 4 + good.length + byte, bit } });
    };
    await refused(attr(Attr.APPLICATION_NAME, 1, [...ascii('LT'), 0x00, ...ascii('FS')]), 5 + 2, 7); // not printable ASCII
    await refused(attr(Attr.APPLICATION_VENDOR, 1, ascii('TOO LONG!')), 3, 7); // 9 bytes in 8
    await refused(attr(Attr.APPLICATION_NAME, 0, ascii('LTFS')), 2, 1); // binary, not ASCII
    await refused(attr(Attr.DATE_TIME_LAST_WRITTEN, 1, ascii('202613070153')), 5 + 4, 7); // month 13
    await refused(attr(Attr.DATE_TIME_LAST_WRITTEN, 1, ascii('2026120701')), 5, 7); // 10 characters
    await refused(attr(Attr.DATE_TIME_LAST_WRITTEN, 1, ascii('2026-12-0701')), 5 + 4, 7);
    await refused(attr(Attr.TEXT_LOCALIZATION_IDENTIFIER, 0, [0x20]), 5, 7); // reserved
    await refused(attr(Attr.MEDIUM_GUID, 0, GUID.slice(1)), 3, 7); // 35 bytes, 36 defined
    await refused(attr(Attr.MEDIA_POOL_GUID, 0, [...GUID, 0]), 3, 7);
    await refused(attr(Attr.LOAD_COUNT, 0, [0, 0, 0, 0, 0, 0, 0, 9]), 0, 7); // read-only
    await refused(attr(Attr.REMAINING_CAPACITY, 0, [0, 0, 0, 0, 0, 0, 0, 9]), 0, 7);
    await refused(attr(0x0c00, 0, [1]), 0, 7); // device vendor specific: not the host's
    await refused(attr(0x1800, 0, [1]), 0, 7); // reserved
    // Volume coherency information whose lengths do not add up, or whose LTFS part is not LTFS's.
    const vci = ltfsVci({ changeRef: 1, count: 1, uuid: UUID });
    const short = [...vci.slice(0, 25), 0, 44, ...vci.slice(27)];
    await refused(attr(Attr.VOLUME_COHERENCY_INFORMATION, 0, short), 5 + 25, 7);
    await refused(attr(Attr.VOLUME_COHERENCY_INFORMATION, 0, [200, ...vci.slice(1)]), 5, 7);
    const badUuid = [...vci];
    badUuid.splice(32, 36, ...ascii(UUID.replace(/-/gu, 'x')));
    await refused(attr(Attr.VOLUME_COHERENCY_INFORMATION, 0, badUuid), 5 + 32, 7);
    const a = values((await r.port.execute(Cdb.readAttribute({ firstAttribute: 0x0800 }))).data);
    expect(text(a.get(Attr.APPLICATION_VENDOR)?.value)).toBe('KEEP    ');
    expect(a.has(Attr.VOLUME_COHERENCY_INFORMATION)).toBe(false);
    expect(a.has(Attr.APPLICATION_NAME)).toBe(false);
  });

  it('other applications\' volume coherency information is taken when its lengths add up', async () => {
    await r.load();
    const own = [4, 1, 2, 3, 4, ...new Array<number>(16).fill(0), 0, 3, 0xaa, 0xbb, 0xcc];
    expectGood(await r.port.execute(Cdb.writeAttribute(list(attr(Attr.VOLUME_COHERENCY_INFORMATION, 0, own)))));
    const a = values((await r.port.execute(Cdb.readAttribute({ firstAttribute: Attr.VOLUME_COHERENCY_INFORMATION }))).data);
    expect([...(a.get(Attr.VOLUME_COHERENCY_INFORMATION)?.value ?? [])]).toEqual(own);
  });

  it('keeps the internal log floor (FF00h) and partition containers hidden and refused', async () => {
    await r.load();
    for (const id of [0xff00, PARTITION_ATTRIBUTES_BASE + 1]) {
      expectSense(await r.port.execute(Cdb.writeAttribute(list(attr(id, 0, new Array<number>(12).fill(0))))), Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: 4, bit: 7 } });
    }
    const supported = ids((await r.port.execute(Cdb.readAttribute({ serviceAction: 5 }))).data);
    const listed = ids((await r.port.execute(Cdb.readAttribute({ serviceAction: 1 }))).data);
    const all = values((await r.port.execute(Cdb.readAttribute())).data);
    for (const id of [0xff00, PARTITION_ATTRIBUTES_BASE + 1]) {
      expect(supported).not.toContain(id);
      expect(listed).not.toContain(id);
      expect(all.has(id)).toBe(false);
    }
    expect((await r.port.execute(Cdb.readAttribute({ firstAttribute: 0xff00 }))).data.subarray(0, 4)).toEqual(Uint8Array.of(0, 0, 0, 0));
  });

  it('service actions: attribute list, supported attributes, volume and partition lists, first attribute', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.writeAttribute(list(...ltfsAttributes()))));
    const supported = ids((await r.port.execute(Cdb.readAttribute({ serviceAction: 5 }))).data);
    for (const id of [0x0800, 0x0801, 0x0802, 0x0803, 0x0804, 0x0805, 0x0806, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x080c, 0x0820, 0x0821]) expect(supported, id.toString(16)).toContain(id);
    expect(supported).toEqual([...supported].sort((x, y) => x - y));
    expect(ids((await r.port.execute(Cdb.readAttribute({ serviceAction: 5, firstAttribute: 0x080c }))).data)).toEqual([0x080c, 0x0820, 0x0821]);
    const listed = ids((await r.port.execute(Cdb.readAttribute({ serviceAction: 1, firstAttribute: 0x0800 }))).data);
    expect(listed).toEqual([0x0800, 0x0801, 0x0802, 0x0803, 0x0804, 0x0805, 0x0806, 0x0807, 0x0808, 0x080b, 0x080c, 0x0820, 0x0821]);
    const fromVci = values((await r.port.execute(Cdb.readAttribute({ firstAttribute: 0x080c }))).data);
    expect([...fromVci.keys()]).toEqual([0x080c, 0x0820, 0x0821]);
    expect([...(await r.port.execute(Cdb.readAttribute({ serviceAction: 2 }))).data]).toEqual([0, 2, 0, 1]);
    expect([...(await r.port.execute(Cdb.readAttribute({ serviceAction: 3 }))).data]).toEqual([0, 2, 0, 1]);
    // One logical volume: volume 1 is refused.
    const c = Cdb.readAttribute();
    const cdb = Uint8Array.from(c.cdb);
    cdb[5] = 1;
    expectSense(await r.port.execute({ ...c, cdb }), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 5, bit: 7 } });
    // A short allocation length cuts the answer; the length field still says it all.
    const cut = await r.port.execute(Cdb.readAttribute({ firstAttribute: 0x0800, allocationLength: 16 }));
    expect(cut.data.length).toBe(16);
    expect(getU32(cut.data, 0)).toBeGreaterThan(400);
  });

  it('CACHE: the last cartridge\'s attributes answer once it has left; without CACHE, or after power on, NOT READY', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.writeAttribute(list(attr(Attr.USER_MEDIUM_TEXT_LABEL, 2, ascii('cached')), attr(Attr.VOLUME_COHERENCY_INFORMATION, 0, ltfsVci({ changeRef: 2, count: 8, uuid: UUID }))))));
    await r.lu.unloadForRobot();
    const cached = await r.port.execute(withCache(Cdb.readAttribute({ firstAttribute: 0x0800 })));
    expectGood(cached);
    const a = values(cached.data);
    expect(text(a.get(Attr.USER_MEDIUM_TEXT_LABEL)?.value).replace(/\0+$/u, '')).toBe('cached');
    expect(a.get(Attr.VOLUME_COHERENCY_INFORMATION)?.value.length).toBe(70);
    expect(ids((await r.port.execute(withCache(Cdb.readAttribute({ serviceAction: 1 })))).data)).toContain(Attr.LOAD_COUNT);
    expectSense(await r.port.execute(withCache(Cdb.readAttribute({ partition: 1 }))), Sense.INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byte: 7, bit: 7 } });
    expectSense(await r.port.execute(Cdb.readAttribute()), Sense.INITIALIZING_COMMAND_REQUIRED);
    r.lu.remove();
    expectGood(await r.port.execute(withCache(Cdb.readAttribute())));
    r.lu.faults.powerCycle();
    await drain(r.port);
    expectSense(await r.port.execute(withCache(Cdb.readAttribute())), Sense.MEDIUM_NOT_PRESENT);
  });
});
