import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFs } from '../platform/fs.js';
import type { PlatformFs } from '../platform/fs.js';
import { VolumeCache, type TapeCopy, type VolumeMeta } from './volume-cache.js';
import { RecordKind, buildVolume } from './volume-format.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ptpvts-cache-'));
  dirs.push(d);
  return d;
}

/** Commits `blocks` as generation `gen` of `volser` through a working file, as a host close does. */
async function commit(cache: VolumeCache, volser: string, gen: number, blocks: Uint8Array[]): Promise<VolumeMeta> {
  const f = await cache.newWork(volser);
  for (const b of blocks) await f.append(RecordKind.block, b);
  return cache.commitData(volser, f, gen);
}

const copyOf = (m: VolumeMeta): TapeCopy => ({ barcode: 'PV0001L8', block: 7, fileNumber: 3, generation: m.dataGeneration, bytes: m.bytes, sha256: m.sha256 });
/** What must agree between memory and disk (the access stamp is memory-first by design). */
const durablePart = (m: VolumeMeta | undefined): unknown => (m === undefined ? undefined : { ...m, lastAccess: 0 });

describe('VolumeCache metadata writes', () => {
  it('concurrent token, tape copy and behind marks on one volume: disk ends as memory, with every change', async () => {
    for (let run = 0; run < 40; run++) {
      const dir = tempDir();
      const cache = await VolumeCache.open({ dir });
      const base = await commit(cache, 'V00001', 4, [Buffer.from(`run ${run}`)]);
      // As the VTS does: premigration completing while markBehind raises the token twice.
      await Promise.all([cache.setPremigrated('V00001', copyOf(base)), cache.setGeneration('V00001', 5), cache.setGeneration('V00001', 6), cache.setPremigrated('V00001', copyOf(base))]);
      const mem = cache.get('V00001');
      expect(mem?.generation, `run ${run}: newest token in memory`).toBe(6);
      expect(mem?.premigrated, `run ${run}: tape copy in memory`).toEqual(copyOf(base));
      const again = await VolumeCache.open({ dir });
      expect(durablePart(again.get('V00001')), `run ${run}: reopened metadata`).toEqual(durablePart(mem));
      expect(readdirSync(join(dir, 'meta'))).toEqual(['V00001.json']);
    }
  });

  it('a token raise that lost the race to a newer one never lowers the generation', async () => {
    const cache = await VolumeCache.open({ dir: tempDir() });
    await commit(cache, 'V00002', 1, [Buffer.from('x')]);
    await Promise.all([cache.setGeneration('V00002', 9), cache.setGeneration('V00002', 3)]);
    expect(cache.get('V00002')?.generation).toBe(9);
  });

  it('open removes temporary files of interrupted metadata writes, whatever their name', async () => {
    const dir = tempDir();
    const cache = await VolumeCache.open({ dir });
    await commit(cache, 'V00003', 1, [Buffer.from('abc')]);
    writeFileSync(join(dir, 'meta', 'V00003.json.tmp'), '{"torn');
    writeFileSync(join(dir, 'meta', 'V00003.json.4242.7.0badc0de.tmp'), '{"torn');
    const again = await VolumeCache.open({ dir });
    expect(again.get('V00003')?.dataGeneration).toBe(1);
    expect(readdirSync(join(dir, 'meta'))).toEqual(['V00003.json']);
  });

  it('a committed volume reopens with the bytes and checksum acknowledged', async () => {
    const dir = tempDir();
    const cache = await VolumeCache.open({ dir });
    const blocks = [Buffer.alloc(70_000, 1), Buffer.from('tail')];
    const m = await commit(cache, 'V00004', 2, blocks);
    const want = buildVolume(blocks);
    expect(m.bytes).toBe(want.length);
    expect(m.sha256).toBe(createHash('sha256').update(want).digest('hex'));
    const again = await VolumeCache.open({ dir });
    expect(durablePart(again.get('V00004'))).toEqual(durablePart(m));
  });
});

describe('VolumeCache commit hash', () => {
  /** The node file system, counting whole-file hash reads (readStream) and failing the writes `failWrite` says to. */
  function countingFs(): { fs: PlatformFs; reads: string[]; failWrite: { on: boolean } } {
    const reads: string[] = [];
    const failWrite = { on: false };
    const fs: PlatformFs = {
      ...nodeFs,
      readStream: (path) => {
        reads.push(path);
        return nodeFs.readStream(path);
      },
      open: async (path, flags) => {
        const f = await nodeFs.open(path, flags);
        return {
          read: (b, o, l, at) => f.read(b, o, l, at),
          write: (b, o, l, at) => {
            if (!failWrite.on) return f.write(b, o, l, at);
            // A torn write: half of it reaches the file, then the device fails.
            return f.write(b, o, Math.floor(l / 2), at).then(() => Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' })));
          },
          sync: () => f.sync(),
          datasync: () => f.datasync(),
          stat: () => f.stat(),
          truncate: (n) => f.truncate(n),
          close: () => f.close(),
        };
      },
    };
    return { fs, reads, failWrite };
  }
  const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
  const dataFile = (dir: string, m: VolumeMeta): Buffer => readFileSync(join(dir, 'data', m.dataFile ?? ''));

  it('a written volume is hashed as it is written: the commit reads nothing back, and its checksum is the file\'s, after a restart too', async () => {
    const dir = tempDir();
    const { fs, reads } = countingFs();
    const cache = await VolumeCache.open({ dir, fs });
    const blocks = [Buffer.alloc(300_000, 3), Buffer.from('b'), Buffer.alloc(70_000, 9)];
    const f = await cache.newWork('V00010');
    for (const b of blocks) await f.append(RecordKind.block, b);
    await f.append(RecordKind.filemark, new Uint8Array(0));
    const m = await cache.commitData('V00010', f, 1);
    expect(reads).toEqual([]);
    expect(m.sha256).toBe(sha(dataFile(dir, m)));
    expect(m.sha256).toBe(sha(buildVolume([...blocks, 'filemark'] as never)));
    const again = await VolumeCache.open({ dir });
    expect(again.get('V00010')?.sha256).toBe(sha(dataFile(dir, m)));
  });

  it('a write after the beginning (a prefix of the committed data copied in) is hashed from the prefix it read on', async () => {
    const dir = tempDir();
    const { fs, reads } = countingFs();
    const cache = await VolumeCache.open({ dir, fs });
    const first = await commit(cache, 'V00011', 1, [Buffer.alloc(100_000, 1), Buffer.alloc(5, 2), Buffer.alloc(7, 3)]);
    reads.length = 0;
    const cut = buildVolume([Buffer.alloc(100_000, 1)]).length;
    const f = await cache.newWork('V00011', { path: join(dir, 'data', first.dataFile ?? ''), bytes: cut });
    await f.append(RecordKind.block, Buffer.alloc(9, 4));
    const m = await cache.commitData('V00011', f, 2);
    expect(reads).toEqual([]);
    expect(m.sha256).toBe(sha(dataFile(dir, m)));
    expect(m.sha256).toBe(sha(buildVolume([Buffer.alloc(100_000, 1), Buffer.alloc(9, 4)])));
  });

  it('a truncated working file, or one an append failed on, is hashed by reading it at commit', async () => {
    const dir = tempDir();
    const { fs, reads, failWrite } = countingFs();
    const cache = await VolumeCache.open({ dir, fs });
    const f = await cache.newWork('V00012');
    for (const b of [Buffer.alloc(1000, 1), Buffer.alloc(2000, 2), Buffer.alloc(3000, 3)]) await f.append(RecordKind.block, b);
    await f.truncateTo(1);
    await f.append(RecordKind.block, Buffer.alloc(10, 7));
    const m = await cache.commitData('V00012', f, 1);
    expect(reads.length).toBe(1);
    expect(m.sha256).toBe(sha(dataFile(dir, m)));
    expect(m.sha256).toBe(sha(buildVolume([Buffer.alloc(1000, 1), Buffer.alloc(10, 7)])));
    // A torn append: the file holds more than the records; the commit hashes what is there.
    reads.length = 0;
    const g = await cache.newWork('V00013');
    await g.append(RecordKind.block, Buffer.alloc(500, 5));
    failWrite.on = true;
    await expect(g.append(RecordKind.block, Buffer.alloc(4000, 6))).rejects.toThrow(/EIO/);
    failWrite.on = false;
    expect(g.sha256()).toBeNull();
    const n = await cache.commitData('V00013', g, 1);
    expect(reads.length).toBe(1);
    expect(n.sha256).toBe(sha(dataFile(dir, n)));
  });

  it('a peer copy adopted whole is hashed as it is indexed: its commit reads nothing back', async () => {
    const dir = tempDir();
    const { fs, reads } = countingFs();
    const cache = await VolumeCache.open({ dir, fs });
    const bytes = buildVolume([Buffer.alloc(200_000, 8), Buffer.from('end')]);
    const path = cache.workPath('V00014');
    writeFileSync(path, bytes);
    const f = await cache.adoptWork(path);
    const m = await cache.commitData('V00014', f, 3);
    expect(reads).toEqual([]);
    expect(m.sha256).toBe(sha(bytes));
    expect(m.sha256).toBe(sha(dataFile(dir, m)));
  });
});
