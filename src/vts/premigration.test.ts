import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openEmbeddedLab, type Lab } from '../cli/lab.js';
import { MediaChanger } from '../devices/media-changer.js';
import { TapeDrive } from '../devices/tape-drive.js';
import { IscsiSession } from '../iscsi/session.js';
import { IscsiPort } from '../transport/iscsi/iscsi-port.js';
// eslint-disable-next-line no-restricted-imports -- a test may serve the emulator over iSCSI; the VTS code under test does not import it.
import { startIscsiTarget } from '../../firmware-sim/front/iscsi-target/target.js';
import { CartridgeState } from './premigration.js';
// eslint-disable-next-line no-restricted-imports -- a test may serve the emulator's robot console; the VTS code under test does not import it.
import { serveSerialConsole } from '../../firmware-sim/front/serial-console/index.js';
import { SerialRobot } from '../transport/serial-robot/index.js';
import { VtsUnit, type VtsLibraryOptions } from './vts-unit.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vts-lib-'));
  cleanups.push(async () => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function lab(dir: string, cartridges: { barcode: string; capacity: string }[]): Promise<Lab> {
  const yaml = [
    'name: vtslib',
    'personality: IBM-TS3200',
    'timeScale: 0',
    'mediaDir: media',
    'storageSlots: 12',
    'drives:',
    '  count: 2',
    '  personality: LTO8',
    'cartridges:',
    ...cartridges.map((c, i) => `  - { barcode: ${c.barcode}, location: slot ${i + 1}, capacity: ${c.capacity} }`),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'library.yaml'), yaml);
  const l = await openEmbeddedLab(join(dir, 'library.yaml'), { persist: false });
  cleanups.push(() => l.close());
  return l;
}

const bytes = (n: number, seed: number): Uint8Array => {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
};
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function openVts(dir: string, library: VtsLibraryOptions, o: { cacheCapacityBytes?: number } = {}): Promise<VtsUnit> {
  const u = await VtsUnit.open({ id: 'A', cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state'), library, ...o });
  cleanups.push(() => u.shutdown());
  return u;
}

const fast = { retryDelayMs: 0, sleep: async () => undefined, blockSize: 64 * 1024 } as const;

/** Writes one volume of `blocks` host blocks of `size` bytes plus a filemark; returns the blocks' digests. */
async function writeVolume(u: VtsUnit, volser: string, blocks: number, size: number, seed: number): Promise<string[]> {
  const h = await u.mount(volser, { scratch: true });
  const out: string[] = [];
  for (let i = 0; i < blocks; i++) {
    const b = bytes(size, seed * 1000 + i);
    out.push(sha(b));
    await u.write(h, b);
  }
  await u.writeFilemark(h);
  out.push('fm');
  await u.close(h);
  return out;
}

async function readVolume(u: VtsUnit, volser: string): Promise<string[]> {
  const h = await u.mount(volser);
  const out: string[] = [];
  for (;;) {
    const r = await u.read(h, 1 << 20);
    if (r.kind === 'eod') break;
    out.push(r.kind === 'filemark' ? 'fm' : sha(r.data));
  }
  await u.close(h);
  return out;
}

async function slotsFull(l: Lab): Promise<{ drivesEmpty: boolean; barcodes: string[] }> {
  const inv = await l.changer.inventory();
  return {
    drivesEmpty: inv.dataTransfer.every((d) => !d.full),
    barcodes: inv.storage.filter((s) => s.full).map((s) => s.primaryVolumeTag?.identifier.trim() ?? '?').sort(),
  };
}

describe('premigration and recall over an emulated library', () => {
  it('premigrates several volumes, evicts them, recalls them with identical bytes, and returns every cartridge', async () => {
    const dir = tempDir();
    const l = await lab(dir, [{ barcode: 'VTA001L8', capacity: '16MiB' }, { barcode: 'VTA002L8', capacity: '16MiB' }, { barcode: 'OTH001L8', capacity: '16MiB' }]);
    const u = await openVts(dir, { changer: l.changer, drives: l.drives, cartridges: ['VTA001L8', 'VTA002L8'], ...fast });
    const want = new Map<string, string[]>();
    for (let i = 0; i < 5; i++) want.set(`PM000${i}`, await writeVolume(u, `PM000${i}`, 3 + i, 50_000 + i * 1000, i + 1));
    await u.whenPremigrationIdle();
    expect(u.premigrationStatus().failed.size).toBe(0);
    expect(u.volumes().every((v) => v.premigrated)).toBe(true);
    for (const v of want.keys()) expect(await u.evict(v)).toBe(true);
    expect(u.volumes().every((v) => !v.resident)).toBe(true);
    expect(u.cache.usedBytes).toBe(0);
    for (const [v, d] of want) expect(await readVolume(u, v)).toEqual(d);
    expect(u.premigrator?.stats.recalled).toBe(5);
    expect(await slotsFull(l)).toEqual({ drivesEmpty: true, barcodes: ['OTH001L8', 'VTA001L8', 'VTA002L8'] });
    // The foreign cartridge was never touched.
    expect(u.premigrator?.cartridges().has('OTH001L8')).toBe(false);
  });

  it('works with a serial robot as the library robotics (the console on a pseudo-terminal)', async () => {
    const dir = tempDir();
    const l = await lab(dir, [{ barcode: 'SER001L8', capacity: '16MiB' }]);
    const served = serveSerialConsole(l.emulated!.library);
    const robot = await SerialRobot.open(served.ttyPath);
    try {
      const u = await openVts(dir, { changer: robot, drives: l.drives, cartridges: ['SER001L8'], ...fast });
      const want = await writeVolume(u, 'SER000', 3, 40_000, 9);
      await u.whenPremigrationIdle();
      expect(u.premigrationStatus().failed.size).toBe(0);
      expect(await u.evict('SER000')).toBe(true);
      expect(await readVolume(u, 'SER000')).toEqual(want);
      expect(await slotsFull(l)).toEqual({ drivesEmpty: true, barcodes: ['SER001L8'] });
      await u.shutdown();
    } finally {
      await robot.close();
      await served.stop();
    }
  });

  it('evicts premigrated volumes least recently used first when the cache fills, and recalls on mount', async () => {
    const dir = tempDir();
    const l = await lab(dir, [{ barcode: 'VTA001L8', capacity: '16MiB' }]);
    const u = await openVts(dir, { changer: l.changer, drives: l.drives, cartridges: ['VTA001L8'], ...fast }, { cacheCapacityBytes: 750_000 });
    const a = await writeVolume(u, 'LRU001', 4, 100_000, 1);
    await writeVolume(u, 'LRU002', 2, 100_000, 2);
    await u.whenPremigrationIdle();
    expect(await readVolume(u, 'LRU001')).toEqual(a);
    await writeVolume(u, 'LRU003', 3, 100_000, 3);
    // LRU002 was used least recently: it went first.
    const res = new Map(u.volumes().map((v) => [v.volser, v.resident]));
    expect(res.get('LRU002')).toBe(false);
    expect(res.get('LRU001')).toBe(true);
    await u.whenPremigrationIdle();
    expect((await readVolume(u, 'LRU002')).length).toBe(3);
  });

  it('moves on to the next cartridge when one reaches early warning or overflows', async () => {
    const dir = tempDir();
    const l = await lab(dir, [{ barcode: 'SML001L8', capacity: '1MiB' }, { barcode: 'SML002L8', capacity: '1MiB' }, { barcode: 'SML003L8', capacity: '1MiB' }]);
    const u = await openVts(dir, { changer: l.changer, drives: [l.drives[0]!], cartridges: ['SML001L8', 'SML002L8', 'SML003L8'], ...fast });
    const want = new Map<string, string[]>();
    for (let i = 0; i < 4; i++) want.set(`FUL00${i}`, await writeVolume(u, `FUL00${i}`, 4, 100_000, i + 10));
    await u.whenPremigrationIdle();
    expect(u.premigrationStatus().failed.size).toBe(0);
    const carts = u.premigrator!.cartridges();
    // Past early warning the copy in progress is finished, and the cartridge is full.
    expect(carts.get('SML001L8')?.state).toBe(CartridgeState.full);
    const used = new Set(u.volumes().map((v) => u.cache.get(v.volser)?.premigrated?.barcode));
    expect(used.size).toBeGreaterThan(1);
    for (const v of want.keys()) await u.evict(v);
    for (const [v, d] of want) expect(await readVolume(u, v)).toEqual(d);
  });

  it('retries a robot jam, and reports a premigration that keeps failing without losing the volume', async () => {
    const dir = tempDir();
    const l = await lab(dir, [{ barcode: 'VTA001L8', capacity: '16MiB' }]);
    const u = await openVts(dir, { changer: l.changer, drives: l.drives, cartridges: ['VTA001L8'], ...fast, maxAttempts: 2 });
    l.emulated!.library.faults.jamNextMoves(2);
    const a = await writeVolume(u, 'JAM001', 3, 30_000, 1);
    await u.whenPremigrationIdle();
    expect(u.volumes()[0]?.premigrated).toBe(true);
    expect(u.premigrator!.stats.robotRetries).toBe(2);
    l.emulated!.library.faults.jamNextMoves(100);
    const b = await writeVolume(u, 'JAM002', 2, 30_000, 2);
    await u.whenPremigrationIdle();
    const failed = u.premigrationStatus().failed.get('JAM002');
    expect(failed?.name).toBe('PremigrationError');
    expect(String((failed?.cause as Error | undefined)?.message)).toMatch(/HARDWARE ERROR/);
    expect(u.volumes().find((v) => v.volser === 'JAM002')).toMatchObject({ resident: true, premigrated: false });
    l.emulated!.library.faults.clear();
    u.retryFailedPremigrations();
    await u.whenPremigrationIdle();
    expect(u.volumes().every((v) => v.premigrated)).toBe(true);
    for (const v of ['JAM001', 'JAM002']) await u.evict(v);
    expect(await readVolume(u, 'JAM001')).toEqual(a);
    expect(await readVolume(u, 'JAM002')).toEqual(b);
    expect((await slotsFull(l)).drivesEmpty).toBe(true);
  });

  it('takes another cartridge on another drive after a medium error, and loses nothing', async () => {
    const dir = tempDir();
    const l = await lab(dir, [{ barcode: 'VTA001L8', capacity: '16MiB' }, { barcode: 'VTA002L8', capacity: '16MiB' }]);
    // Object 2 is where the first volume header goes on a fresh cartridge (label, filemark, header).
    l.emulated!.drives[0]!.faults.mediumErrorAt(2);
    const u = await openVts(dir, { changer: l.changer, drives: l.drives, cartridges: ['VTA001L8', 'VTA002L8'], ...fast });
    const a = await writeVolume(u, 'MED001', 3, 40_000, 5);
    await u.whenPremigrationIdle();
    expect(u.premigrationStatus().failed.size).toBe(0);
    const carts = u.premigrator!.cartridges();
    expect(carts.get('VTA001L8')?.state).toBe(CartridgeState.failed);
    expect(u.cache.get('MED001')?.premigrated?.barcode).toBe('VTA002L8');
    await u.evict('MED001');
    expect(await readVolume(u, 'MED001')).toEqual(a);
    expect(await slotsFull(l)).toEqual({ drivesEmpty: true, barcodes: ['VTA001L8', 'VTA002L8'] });
  });

  it('runs unchanged over an iSCSI-attached library', async () => {
    const dir = tempDir();
    const l = await lab(dir, [{ barcode: 'ISC001L8', capacity: '16MiB' }]);
    const target = await startIscsiTarget({ target: l.emulated!.library, host: '127.0.0.1', port: 0 });
    cleanups.push(() => target.stop());
    const session = await IscsiSession.open({ host: target.host, port: target.port, initiatorName: 'iqn.2026-11.io.ptpvts:vts-a', targetName: target.iqn });
    cleanups.push(() => session.close());
    const changer = new MediaChanger(new IscsiPort(session, 0));
    const drives = [new TapeDrive(new IscsiPort(session, 1)), new TapeDrive(new IscsiPort(session, 2))];
    for (const d of [changer, ...drives]) await d.requestSense().catch(() => undefined);
    const u = await openVts(dir, { changer, drives, cartridges: ['ISC001L8'], ...fast });
    const a = await writeVolume(u, 'ISC001', 4, 70_000, 9);
    await u.whenPremigrationIdle();
    expect(u.premigrationStatus().failed.size).toBe(0);
    await u.evict('ISC001');
    expect(await readVolume(u, 'ISC001')).toEqual(a);
  });
});
