/**
 * A commit that fails part way (VolumeCache.commitData through #place): the fsync of the
 * working file, the fsync of the data directory after the rename, or the metadata write.
 *
 * A failed fsync has reported its error once and may have dropped the pages it could not
 * write: an fsync tried again succeeds on data that is not on disk. So nothing may ever
 * commit that working file: the close fails, the mount ends (a close tried again is refused,
 * the volume is free for the next mount), the file is removed, and the cache's account of
 * bytes in use comes back to what is committed, neither more (a leak that ends in
 * CacheFullError) nor less (room promised that the disk does not have).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PlatformFs } from '../platform/fs.js';
import { wrappedFs } from '../../test/kit/wrapped-fs.js';
import { buildVolume } from './volume-format.js';
import { VtsUnit } from './vts-unit.js';

const KIB = 1024;
const block = (seed: number): Uint8Array => Uint8Array.from({ length: 64 * KIB }, (_, i) => (i * 7 + seed) & 0xff);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const eio = (syscall: string): NodeJS.ErrnoException => Object.assign(new Error(`EIO: i/o error, ${syscall}`), { code: 'EIO', syscall });

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ptpvts-commit-failure-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** node:fs whose fsync of a path fails once when `fail(path)` says so (and is then cleared). */
const failingFs = (plan: { fail: ((path: string) => boolean) | null }): PlatformFs =>
  wrappedFs((path, h) => ({
    sync: () => {
      if (plan.fail?.(path) !== true) return h.sync();
      plan.fail = null;
      return Promise.reject(eio('fsync'));
    },
  }));

const cacheDir = (): string => join(root, 'cache');
const openUnit = (fs: PlatformFs): Promise<VtsUnit> => VtsUnit.open({ id: 'A', cacheDir: cacheDir(), stateDir: join(root, 'state'), fs });
const dataFiles = (): string[] => readdirSync(join(cacheDir(), 'data')).sort();

interface Ctx {
  /** The unit under test (a test that reopens it puts the new one here). */
  u: VtsUnit;
  readonly fs: PlatformFs;
  readonly plan: { fail: ((path: string) => boolean) | null };
  /** Bytes in use with V00001 committed once (one block), and the data files then. */
  readonly committed: number;
  readonly files: string[];
}

/** Runs `fn` on a unit whose V00001 was committed once; shuts the unit down after. */
async function withUnit(fn: (c: Ctx) => Promise<void>): Promise<void> {
  const plan: Ctx['plan'] = { fail: null };
  const fs = failingFs(plan);
  const u = await openUnit(fs);
  const h = await u.mount('V00001', { scratch: true });
  await u.write(h, block(1));
  await u.close(h);
  const c: Ctx = { u, fs, plan, committed: u.cache.usedBytes, files: dataFiles() };
  try {
    await fn(c);
  } finally {
    await c.u.shutdown();
  }
}

describe('a close whose commit fails', () => {
  it("whose working file's fsync fails: the close fails and the mount ends; a close tried again never commits; the volume is free; nothing stays accounted", async () => {
    await withUnit(async ({ u, plan, committed, files }) => {
      const h = await u.mount('V00001');
      for (let i = 0; i < 4; i++) await u.write(h, block(10 + i));
      plan.fail = (p) => p.endsWith('.work');
      await expect(u.close(h)).rejects.toMatchObject({ code: 'EIO' });
      expect(plan.fail, 'the working file was fsynced').toBeNull();
      // The fsync would succeed now: the close must not be tried into a commit.
      await expect(u.close(h)).rejects.toMatchObject({ code: 'EMOUNTABORTED', message: expect.stringMatching(/failed to commit \(EIO\)/) });
      await expect(u.write(h, block(20))).rejects.toMatchObject({ code: 'EMOUNTABORTED' });
      expect(u.cache.get('V00001')?.generation).toBe(1);
      expect(u.cache.get('V00001')?.sha256).toBe(sha(buildVolume([block(1)])));
      expect(u.cache.usedBytes, 'bytes in use: the committed generation only').toBe(committed);
      expect(dataFiles(), 'the working file is removed').toEqual(files);
      // Not held: the next mount takes the volume at once, and its close commits.
      const again = await u.mount('V00001');
      await u.write(again, block(30));
      expect((await u.close(again)).generation).toBe(2);
    });
  });

  it('whose data directory fsync fails after the rename: the renamed file is removed, and nothing stays accounted', async () => {
    await withUnit(async ({ u, plan, committed, files }) => {
      const h = await u.mount('V00001');
      await u.write(h, block(11));
      plan.fail = (p) => p === join(cacheDir(), 'data');
      await expect(u.close(h)).rejects.toMatchObject({ code: 'EIO' });
      expect(plan.fail, 'the data directory was fsynced').toBeNull();
      await expect(u.close(h)).rejects.toMatchObject({ code: 'EMOUNTABORTED' });
      expect(u.cache.get('V00001')?.generation).toBe(1);
      expect(u.cache.usedBytes).toBe(committed);
      expect(dataFiles()).toEqual(files);
    });
  });

  it('whose metadata write fails: the new data file stays (that metadata may be on disk), accounted once; a reopen keeps the last durable generation and removes the orphan', async () => {
    await withUnit(async (c) => {
      const { u, plan, committed, files } = c;
      const h = await u.mount('V00001');
      await u.write(h, block(12));
      plan.fail = (p) => p.includes(join(cacheDir(), 'meta', 'V00001.json'));
      await expect(u.close(h)).rejects.toMatchObject({ code: 'EIO' });
      expect(plan.fail, 'the metadata was being written').toBeNull();
      await expect(u.close(h)).rejects.toMatchObject({ code: 'EMOUNTABORTED' });
      expect(u.cache.get('V00001')?.generation).toBe(1);
      // The file is on disk and named by nothing in memory: not counted, and not counted as freed twice.
      expect(u.cache.usedBytes).toBe(committed);
      expect(dataFiles()).toHaveLength(files.length + 1);
      await u.shutdown();
      c.u = await openUnit(c.fs);
      expect(c.u.cache.get('V00001')?.generation).toBe(1);
      expect(dataFiles()).toEqual(files);
      expect(c.u.cache.usedBytes).toBe(committed);
    });
  });
});

describe('a peer copy whose commit fails', () => {
  it('is refused, leaves no file, and gives back every byte it accounted', async () => {
    await withUnit(async ({ u, plan, committed, files }) => {
      const image = buildVolume([block(5), block(6), block(7)]);
      plan.fail = (p) => p.endsWith('.work');
      const chunks = [image.subarray(0, 70_000), image.subarray(70_000)];
      await expect(u.applyCopy('V00009', chunks[Symbol.iterator]() as unknown as AsyncIterable<Uint8Array>, { generation: 2, consistent: true }, { sha256: sha(image) })).rejects.toMatchObject({ code: 'EIO' });
      expect(plan.fail).toBeNull();
      expect(u.cache.get('V00009')).toBeUndefined();
      expect(u.cache.usedBytes).toBe(committed);
      expect(dataFiles()).toEqual(files);
      // The same copy sent again is applied.
      const token = await u.applyCopy('V00009', [image][Symbol.iterator]() as unknown as AsyncIterable<Uint8Array>, { generation: 2, consistent: true }, { sha256: sha(image) });
      expect(token.generation).toBe(2);
      expect(u.cache.usedBytes).toBe(committed + image.length);
    });
  });
});
