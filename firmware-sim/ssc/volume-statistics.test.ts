/**
 * Log page 17h (volume statistics): the figures tape software reads after a job, checked
 * against the cartridge, across loads, per partition, and decoded by sg3_utils' sg_logs
 * when it is installed.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { getU16, getU32 } from '../../src/scsi/bytes.js';
import { drain, expectGood, rig, type Rig } from './test-kit.js';
import { VolumeStat } from './volume-statistics.js';

const MB = 1_000_000;
const CAP = 40 * MB;
let r: Rig;

beforeEach(async () => {
  r = await rig('ibm-lto7-hh');
});
afterEach(() => r.cleanup());

interface Param {
  readonly control: number;
  readonly value: Uint8Array;
}

async function page17(): Promise<{ raw: Uint8Array; params: Map<number, Param> }> {
  const res = await r.port.execute(Cdb.logSense({ page: 0x17, allocationLength: 0xffff }));
  expectGood(res);
  const raw = res.data;
  expect(raw[0]! & 0x3f).toBe(0x17);
  const params = new Map<number, Param>();
  for (let off = 4; off < 4 + getU16(raw, 2); off += 4 + raw[off + 3]!) params.set(getU16(raw, off), { control: raw[off + 2]!, value: raw.subarray(off + 4, off + 4 + raw[off + 3]!) });
  return { raw, params };
}

const num = (p: Param | undefined): number => {
  let v = 0;
  for (const b of p?.value ?? []) v = v * 256 + b;
  return v;
};
const text = (p: Param | undefined): string => new TextDecoder().decode(p?.value).trimEnd();
/** Per-partition descriptors: partition number to counter. */
const partitions = (p: Param | undefined): Map<number, number> => {
  const out = new Map<number, number>();
  const v = p?.value ?? new Uint8Array();
  for (let o = 0; o < v.length; o += v[o]! + 1) out.set(getU16(v, o + 2), getU32(v, o + 4));
  return out;
};

async function write(blocks: number, size: number): Promise<void> {
  for (let i = 0; i < blocks; i++) {
    const data = new Uint8Array(size);
    for (let j = 0; j < size; j += 4096) data[j] = (i + j) & 0xff;
    crypto.getRandomValues(data.subarray(0, Math.min(size, 65536)));
    expectGood(await r.port.execute(Cdb.write6(data)));
  }
}

describe('log page 17h (volume statistics)', () => {
  it('is listed, and without a cartridge says only that it is not valid', async () => {
    const list = await r.port.execute(Cdb.logSense({ page: 0 }));
    expectGood(list);
    expect([...list.data.subarray(4)]).toContain(0x17);
    const { params } = await page17();
    expect([...params.keys()]).toEqual([VolumeStat.PAGE_VALID]);
    expect(num(params.get(VolumeStat.PAGE_VALID))).toBe(0);
  });

  it('reports the loaded volume: mounts, this mount and lifetime megabytes, capacity, identity', async () => {
    await r.load({ capacityBytes: CAP, barcode: 'VS0001L7' });
    await write(6, 1 << 20);
    let { params } = await page17();
    expect(num(params.get(VolumeStat.PAGE_VALID))).toBe(1);
    expect(num(params.get(VolumeStat.THREAD_COUNT))).toBe(1);
    const stored = r.lu.drive.counters.bytesWritten;
    expect(stored).toBeGreaterThan(5 * MB);
    expect(num(params.get(VolumeStat.LAST_MOUNT_MB_WRITTEN))).toBe(Math.floor(stored / MB));
    expect(num(params.get(VolumeStat.TOTAL_NATIVE_CAPACITY))).toBe(CAP / MB);
    expect(num(params.get(VolumeStat.TOTAL_USED_NATIVE_CAPACITY))).toBe(Math.floor(stored / MB));
    expect(num(params.get(VolumeStat.LAST_LOAD_WRITE_COMPRESSION))).toBe(Math.round(((6 << 20) * 100) / stored));
    expect(text(params.get(VolumeStat.VOLUME_BARCODE))).toBe('VS0001L7');
    expect(text(params.get(VolumeStat.VOLUME_PERSONALITY))).toBe('Ultrium-7');
    expect(text(params.get(VolumeStat.VOLUME_MANUFACTURER))).toBe('PTPVTS');
    expect(text(params.get(VolumeStat.VOLUME_SERIAL_NUMBER))).toMatch(/^VS0001L7/);
    expect(params.get(VolumeStat.VOLUME_BARCODE)!.control).toBe(0x01); // ASCII format
    expect(params.get(VolumeStat.VOLUME_BARCODE)!.value.length % 4).toBe(0);
    expect(num(params.get(VolumeStat.WRITE_PROTECT))).toBe(0);
    expect(num(params.get(VolumeStat.WORM))).toBe(0);
    expect(partitions(params.get(VolumeStat.PARTITION_NATIVE_CAPACITY))).toEqual(new Map([[0, CAP / MB]]));
    expect(partitions(params.get(VolumeStat.PARTITION_USED_NATIVE_CAPACITY))).toEqual(new Map([[0, Math.floor(stored / MB)]]));

    // A second load: the mount count goes up, this mount starts at 0, the lifetime keeps the first.
    expectGood(await r.port.execute(Cdb.loadUnload({ load: false })));
    expectGood(await r.port.execute(Cdb.loadUnload({ load: true })));
    await drain(r.port);
    ({ params } = await page17());
    expect(num(params.get(VolumeStat.THREAD_COUNT))).toBe(2);
    expect(num(params.get(VolumeStat.LAST_MOUNT_MB_WRITTEN))).toBe(0);
    expect(num(params.get(VolumeStat.LIFETIME_MB_WRITTEN))).toBe(Math.floor((Math.floor(stored / (1 << 20)) * (1 << 20)) / MB));
    for (let i = 0; i < 6; i++) expectGood(await r.port.execute(Cdb.read6({ length: 1 << 20 })));
    ({ params } = await page17());
    expect(num(params.get(VolumeStat.LAST_MOUNT_MB_READ))).toBe(Math.floor(r.lu.drive.counters.bytesRead / MB));
    expect(num(params.get(VolumeStat.LAST_MOUNT_MB_READ))).toBeGreaterThan(4);
  });

  it('gives each partition its capacity, use and room before early warning', async () => {
    await r.load({ capacityBytes: CAP, barcode: 'VS0002L7' });
    // Two partitions: 10 MB and the rest (IDP, sizes in MB).
    const sense = await r.port.execute(Cdb.modeSense6({ page: 0x11, disableBlockDescriptors: true }));
    expectGood(sense);
    const page = Uint8Array.from(sense.data.subarray(4, 4 + 2 + sense.data[5]!));
    page[3] = 1;
    page[4] = 0x20 | (2 << 3) | (page[4]! & 0x04); // IDP, PSUM = MB
    page[8] = 0;
    page[9] = 10;
    page[10] = 0xff;
    page[11] = 0xff;
    const params = new Uint8Array(4 + page.length);
    params.set(page, 4);
    expectGood(await r.port.execute(Cdb.modeSelect6(params)));
    expectGood(await r.port.execute(Cdb.formatMedium(2)));
    expectGood(await r.port.execute(Cdb.locate16(0n, { partition: 1 })));
    await write(3, 1 << 20);
    const p = (await page17()).params;
    const cap = partitions(p.get(VolumeStat.PARTITION_NATIVE_CAPACITY));
    expect(cap.get(0)).toBe(10);
    expect(cap.get(1)).toBe(CAP / MB - 10);
    const used = partitions(p.get(VolumeStat.PARTITION_USED_NATIVE_CAPACITY));
    expect(used.get(0)).toBe(0);
    expect(used.get(1)).toBe(Math.floor(r.lu.drive.counters.bytesWritten / MB));
    const room = partitions(p.get(VolumeStat.PARTITION_REMAINING_TO_EW));
    expect(room.get(1)!).toBeLessThan(CAP / MB - 10 - used.get(1)!);
    expect(room.get(0)!).toBeLessThanOrEqual(10);
  });

  const sgLogs = spawnSync('sg_logs', ['--version'], { encoding: 'utf8' });
  it.skipIf(sgLogs.error !== undefined)('decodes in sg3_utils sg_logs as SSC-4 volume statistics (skips visibly without sg3-utils)', async () => {
    await r.load({ capacityBytes: CAP, barcode: 'VS0003L7' });
    await write(2, 1 << 20);
    const { raw } = await page17();
    const file = join(r.dir, 'page17.hex');
    writeFileSync(file, [...raw].map((b) => b.toString(16).padStart(2, '0')).join(' ') + '\n');
    const out = spawnSync('sg_logs', ['--pdt=1', `--in=${file}`], { encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/Volume statistics page/i);
    expect(out.stdout).toMatch(/Page valid: 1/);
    expect(out.stdout).toMatch(/Thread count: 1/);
    expect(out.stdout).toMatch(/Volume barcode: VS0003L7/);
    expect(out.stdout).toMatch(/Volume personality: Ultrium-7/);
    expect(out.stdout).toMatch(/Total native capacity.*: 40/);
    expect(out.stdout).not.toMatch(/Reserved parameter code/);
    expect(out.stdout).toMatch(/partition number: 0, partition record data counter: 40/);
  });
});
