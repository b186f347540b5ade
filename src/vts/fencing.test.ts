/**
 * The VTS unit's fence: host I/O, token updates and copies carry the writer's epoch (seq and
 * MAC of its newest key) and the boot of the VTS it knows; the VTS refuses an older key,
 * another key with the same seq (a fork), and a caller that has not seen it restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FencedError, StaleGenerationError, VolumeInUseError } from './errors.js';
import { VtsUnit } from './vts-unit.js';
import { buildVolume } from './volume-format.js';

const dirs: string[] = [];
const units: VtsUnit[] = [];
afterEach(async () => {
  for (const u of units.splice(0)) await u.shutdown().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function openVts(dir: string): Promise<VtsUnit> {
  const u = await VtsUnit.open({ id: 'A', cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state') });
  units.push(u);
  return u;
}
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vts-fence-'));
  dirs.push(d);
  return d;
}

describe('VTS fence', () => {
  it('two keys with the same seq (forked branches) do not pass each other\'s fence', async () => {
    const u = await openVts(tempDir());
    await u.recordKey(5, 'mac-of-branch-1');
    await expect(u.mount('F00001', { scratch: true, epoch: 5, epochMac: 'mac-of-branch-2' })).rejects.toBeInstanceOf(FencedError);
    await expect(u.markBehind('F00001', 3, { epoch: 5, epochMac: 'mac-of-branch-2' })).rejects.toBeInstanceOf(FencedError);
    await expect(u.applyCopy('F00001', buildVolume([Uint8Array.of(1, 2, 3)]), { generation: 1, consistent: true }, { epoch: 5, epochMac: 'mac-of-branch-2' })).rejects.toBeInstanceOf(FencedError);
    expect(() => u.checkFence({ epoch: 5, epochMac: 'mac-of-branch-2' })).toThrow(FencedError);
    // The same key passes, and a newer one.
    const h = await u.mount('F00001', { scratch: true, epoch: 5, epochMac: 'mac-of-branch-1' });
    await u.write(h, Uint8Array.of(9));
    expect(await u.close(h, { epoch: 6, epochMac: 'anything' })).toEqual({ generation: 1, consistent: true });
  });

  it('token updates and copies carry the epoch: an older one is refused and changes nothing', async () => {
    const u = await openVts(tempDir());
    await u.recordKey(2, 'k2');
    await expect(u.markBehind('F00002', 4, { epoch: 1, epochMac: 'k1' })).rejects.toBeInstanceOf(FencedError);
    await expect(u.applyCopy('F00002', buildVolume([Uint8Array.of(1)]), { generation: 1, consistent: true }, { epoch: 1, epochMac: 'k1' })).rejects.toBeInstanceOf(FencedError);
    expect(u.token('F00002')).toBeUndefined();
    expect(await u.markBehind('F00002', 4, { epoch: 2, epochMac: 'k2' })).toEqual({ generation: 4, consistent: false });
  });

  it('a key recorded while a close waits is still a fence: nothing is committed', async () => {
    const u = await openVts(tempDir());
    const h = await u.mount('F00003', { scratch: true, epoch: 0 });
    await u.write(h, new Uint8Array(1 << 16));
    const closing = u.close(h, { epoch: 0 }).then(
      () => null,
      (e: unknown) => e,
    );
    await u.recordKey(1, 'k1');
    expect(await closing).toBeInstanceOf(FencedError);
    expect(u.token('F00003')?.generation ?? 0).toBe(0);
    // The mount ended: the volume is free again.
    await u.abandon(await u.mount('F00003', { scratch: true, epoch: 1, epochMac: 'k1' }));
  });

  it('the image id survives a restart, the boot id does not; a caller that has not seen the restart is fenced', async () => {
    const dir = tempDir();
    const u = await openVts(dir);
    const v1 = u.view();
    expect(v1.imageId).toMatch(/^[0-9a-f]{24}$/);
    await u.shutdown();
    const u2 = await openVts(dir);
    const v2 = u2.view();
    expect(v2.imageId).toBe(v1.imageId);
    expect(v2.bootId).not.toBe(v1.bootId);
    await expect(u2.mount('F00004', { scratch: true, epoch: 0, bootId: v1.bootId })).rejects.toBeInstanceOf(FencedError);
    await u2.abandon(await u2.mount('F00004', { scratch: true, epoch: 0, bootId: v2.bootId }));
  });

  it('the MAC of the last key is durable with its seq', async () => {
    const dir = tempDir();
    const u = await openVts(dir);
    await u.recordKey(3, 'k3');
    await u.shutdown();
    const u2 = await openVts(dir);
    expect([u2.view().lastKeySeq, u2.view().lastKeyMac]).toEqual([3, 'k3']);
    expect(() => u2.checkFence({ epoch: 3, epochMac: 'other' })).toThrow(FencedError);
  });
});

describe('marking behind for a host write on the peer', () => {
  // A deferred write commits on one VTS and marks the other behind at its generation; that
  // mark must leave the other VTS unable to hold different data of that generation. A write
  // through another VTC, mounted on this VTS, committed the same generation here while the
  // mark said yes (production simulation seed 268: the acknowledged write read back stale).
  it('is refused while a host has the volume mounted here, or when this VTS knows the generation already', async () => {
    const u = await openVts(tempDir());
    const h0 = await u.mount('M00001', { scratch: true });
    await u.write(h0, Uint8Array.of(1));
    expect(await u.close(h0, { generation: 3 })).toEqual({ generation: 3, consistent: true });
    // A host write in progress here: its close may commit generation 4 at any time.
    const h = await u.mount('M00001', { writable: true });
    await u.write(h, Uint8Array.of(2));
    await expect(u.markBehind('M00001', 4, {}, { write: true })).rejects.toBeInstanceOf(VolumeInUseError);
    expect(await u.close(h, { generation: 4 })).toEqual({ generation: 4, consistent: true });
    // It committed 4 here: the peer's write of 4 is another write, not to be acknowledged.
    await expect(u.markBehind('M00001', 4, {}, { write: true })).rejects.toBeInstanceOf(StaleGenerationError);
    await expect(u.markBehind('M00001', 3, {}, { write: true })).rejects.toBeInstanceOf(StaleGenerationError);
    // A newer generation is marked, and marking it again (a retry) is the same mark.
    expect(await u.markBehind('M00001', 5, {}, { write: true })).toEqual({ generation: 5, consistent: false });
    expect(await u.markBehind('M00001', 5, {}, { write: true })).toEqual({ generation: 5, consistent: false });
    // Behind at 5, this VTS can no longer commit 5 from a host of its own.
    await expect(u.mount('M00001', { writable: true })).rejects.toThrow(/this VTS holds generation/u);
    // Without `write` (resync's reconcile), an older or equal generation is still just ignored.
    expect(await u.markBehind('M00001', 4)).toEqual({ generation: 5, consistent: false });
  });
});
