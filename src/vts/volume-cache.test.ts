import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
