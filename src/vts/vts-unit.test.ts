import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BadHandleError,
  BadVolumeDataError,
  CacheFullError,
  FencedError,
  MountAbortedError,
  MountLimitError,
  MountsRefusedError,
  StaleGenerationError,
  VolumeInUseError,
  VolumeNotConsistentError,
  VolumeNotFoundError,
  VtsOutOfOperationError,
} from './errors.js';
import { ABORTED_HANDLES_KEPT, VtsUnit, type MountHandle, type VtsUnitOptions } from './vts-unit.js';
import { VolumeParser, buildVolume } from './volume-format.js';

const dirs: string[] = [];
const units: VtsUnit[] = [];
afterEach(async () => {
  for (const u of units.splice(0)) await u.shutdown().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vts-'));
  dirs.push(d);
  return d;
}

async function openVts(dir: string, o: Partial<VtsUnitOptions> = {}): Promise<VtsUnit> {
  const u = await VtsUnit.open({ id: 'A', cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state'), ...o });
  units.push(u);
  return u;
}

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 7) & 0xff);

async function writeVolume(u: VtsUnit, volser: string, records: (Uint8Array | 'fm')[], o: { scratch?: boolean } = { scratch: true }): Promise<{ h: MountHandle }> {
  const h = await u.mount(volser, o);
  for (const r of records) await (r === 'fm' ? u.writeFilemark(h) : u.write(h, r));
  return { h };
}

async function readAll(u: VtsUnit, h: MountHandle): Promise<(Uint8Array | 'fm')[]> {
  const out: (Uint8Array | 'fm')[] = [];
  for (;;) {
    const r = await u.read(h, 8 << 20);
    if (r.kind === 'eod') return out;
    out.push(r.kind === 'filemark' ? 'fm' : r.data);
  }
}

const digest = (recs: readonly (Uint8Array | 'fm')[]): string[] => recs.map((r) => (r === 'fm' ? 'fm' : createHash('sha256').update(r).digest('hex')));

describe('VtsUnit host I/O', () => {
  it('writes, closes, mounts again and reads back blocks and filemarks', async () => {
    const u = await openVts(tempDir());
    const recs = [bytes(80, 1), bytes(32768, 2), 'fm' as const, bytes(1, 3), 'fm' as const];
    const { h } = await writeVolume(u, 'V00001', recs);
    expect(await u.close(h)).toEqual({ generation: 1, consistent: true });
    const h2 = await u.mount('V00001');
    expect(await readAll(u, h2)).toEqual(recs.map((r) => (r === 'fm' ? 'fm' : Buffer.from(r))));
    // A short READ cuts the block and says so, as a tape does.
    await u.rewind(h2);
    const r = await u.read(h2, 10);
    expect(r).toMatchObject({ kind: 'block', length: 80, truncated: true });
    expect(await u.close(h2)).toEqual({ generation: 1, consistent: true });
    expect(u.volumes()).toMatchObject([{ volser: 'V00001', resident: true, premigrated: false, mounted: false }]);
  });

  it('rewrites from a position (tape semantics) and reads its own writes before close', async () => {
    const u = await openVts(tempDir());
    await u.close((await writeVolume(u, 'V00002', [bytes(10, 1), bytes(10, 2), bytes(10, 3)])).h);
    const h = await u.mount('V00002');
    await u.read(h, 100);
    await u.write(h, bytes(5, 9));
    await u.rewind(h);
    expect(await readAll(u, h)).toEqual([Buffer.from(bytes(10, 1)), Buffer.from(bytes(5, 9))]);
    await u.close(h);
    const h2 = await u.mount('V00002');
    expect(await readAll(u, h2)).toEqual([Buffer.from(bytes(10, 1)), Buffer.from(bytes(5, 9))]);
    await u.close(h2);
  });

  it('increases the token at every close that wrote, takes the VTC generation, refuses a stale one', async () => {
    const u = await openVts(tempDir());
    const gens: number[] = [];
    for (let i = 0; i < 3; i++) gens.push((await u.close((await writeVolume(u, 'V00003', [bytes(100, i)])).h)).generation);
    expect(gens).toEqual([1, 2, 3]);
    const ro = await u.mount('V00003');
    expect((await u.close(ro)).generation).toBe(3);
    const { h } = await writeVolume(u, 'V00003', [bytes(4, 4)]);
    await expect(u.close(h, { generation: 2 })).rejects.toBeInstanceOf(StaleGenerationError);
    expect(await u.close(h, { generation: 10 })).toEqual({ generation: 10, consistent: true });
    expect(u.tokens()).toEqual(new Map([['V00003', { generation: 10, consistent: true }]]));
  });

  it('refuses every host operation while out of operation, with a typed error', async () => {
    const u = await openVts(tempDir());
    await u.close((await writeVolume(u, 'V00004', [bytes(10, 1)])).h);
    const h = await u.mount('V00004');
    await u.setOutOfOperation({ seq: 5 });
    expect(u.activeMounts()).toEqual([]);
    await expect(u.mount('V00004')).rejects.toBeInstanceOf(VtsOutOfOperationError);
    await expect(u.read(h, 10)).rejects.toBeInstanceOf(VtsOutOfOperationError);
    await expect(u.write(h, bytes(1, 1))).rejects.toBeInstanceOf(VtsOutOfOperationError);
    await expect(u.close(h)).rejects.toBeInstanceOf(VtsOutOfOperationError);
    await expect(u.exportVolume('V00004')).rejects.toBeInstanceOf(VtsOutOfOperationError);
    await expect(u.recordKey(6)).rejects.toBeInstanceOf(VtsOutOfOperationError);
    expect(u.view()).toMatchObject({ name: 'A', inOperation: false, lastKeySeq: 5, behind: [] });
    await u.setInOperation({ seq: 7 });
    const h2 = await u.mount('V00004');
    expect(await readAll(u, h2)).toEqual([Buffer.from(bytes(10, 1))]);
  });

  it('keeps lastKeySeq and status across a restart, and only moves keys forward', async () => {
    const dir = tempDir();
    const u = await openVts(dir);
    expect(u.lastKeySeq).toBe(0);
    expect(await u.recordKey(3)).toBe(3);
    expect(await u.recordKey(2)).toBe(3);
    await u.recordKey(41);
    await u.setOutOfOperation({ seq: 42 });
    await u.shutdown();
    const again = await openVts(dir);
    expect(again.lastKeySeq).toBe(42);
    expect(again.inOperation).toBe(false);
  });

  it('keeps lastKeySeq and status after a crash (no shutdown), and carries over a state file of the JSON format', async () => {
    const dir = tempDir();
    const u = await openVts(dir);
    await u.recordKey(7);
    await u.setOutOfOperation({ seq: 8 });
    // No shutdown: what was acknowledged is what the next open finds.
    const again = await VtsUnit.open({ id: 'A', cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state') });
    units.push(again);
    expect([again.lastKeySeq, again.inOperation]).toEqual([8, false]);

    const old = tempDir();
    mkdirSync(join(old, 'state'), { recursive: true });
    writeFileSync(join(old, 'state', 'vts-state.json'), JSON.stringify({ id: 'A', lastKeySeq: 12, inOperation: false }));
    const carried = await openVts(old);
    expect([carried.lastKeySeq, carried.inOperation]).toEqual([12, false]);
    expect(existsSync(join(old, 'state', 'vts-state.json'))).toBe(false);
    await carried.setInOperation({ seq: 13 });
    await carried.shutdown();
    const reopened = await openVts(old);
    expect([reopened.lastKeySeq, reopened.inOperation]).toEqual([13, true]);
  });

  it('enforces the mount limit, refuses new mounts on demand, and one mount per volume', async () => {
    const u = await openVts(tempDir(), { maxMounts: 2 });
    const a = await u.mount('A1', { scratch: true });
    await expect(u.mount('A1', { scratch: true })).rejects.toBeInstanceOf(VolumeInUseError);
    await u.mount('A2', { scratch: true });
    await expect(u.mount('A3', { scratch: true })).rejects.toBeInstanceOf(MountLimitError);
    await u.close(a);
    await expect(u.mount('NOPE')).rejects.toBeInstanceOf(VolumeNotFoundError);
    u.refuseNewMounts(true);
    await expect(u.mount('A3', { scratch: true })).rejects.toBeInstanceOf(MountsRefusedError);
    expect(u.activeMounts().map((m) => m.volser)).toEqual(['A2']);
  });

  it('remembers why the newest aborted mounts ended, and only so many of them', async () => {
    const u = await openVts(tempDir());
    const handles = [];
    for (let i = 0; i <= ABORTED_HANDLES_KEPT; i++) {
      handles.push(await u.mount('V00006', { scratch: true }));
      await u.abortMounts(`failover ${i}`);
    }
    await expect(u.close(handles.at(-1)!)).rejects.toMatchObject({ code: 'EMOUNTABORTED', message: expect.stringContaining(`failover ${ABORTED_HANDLES_KEPT}`) });
    await expect(u.close(handles[1]!)).rejects.toMatchObject({ code: 'EMOUNTABORTED', message: expect.stringContaining('failover 1') });
    await expect(u.close(handles[0]!)).rejects.toBeInstanceOf(BadHandleError);
    await u.shutdown();
  });

  it('aborts active mounts during a write: hosts get errors, the previous generation stays', async () => {
    const u = await openVts(tempDir());
    await u.close((await writeVolume(u, 'V00005', [bytes(100, 1)])).h);
    const h = await u.mount('V00005', { scratch: true });
    const writes = Array.from({ length: 20 }, (_, i) => u.write(h, bytes(256 * 1024, i)));
    const settled = Promise.allSettled(writes);
    expect(await u.abortMounts('immediate vts-out')).toBe(1);
    const results = await settled;
    expect(results.some((r) => r.status === 'rejected' && r.reason instanceof MountAbortedError)).toBe(true);
    await expect(u.close(h)).rejects.toBeInstanceOf(MountAbortedError);
    expect(u.activeMounts()).toEqual([]);
    expect(u.token('V00005')).toEqual({ generation: 1, consistent: true });
    const h2 = await u.mount('V00005');
    expect(await readAll(u, h2)).toEqual([Buffer.from(bytes(100, 1))]);
    await u.close(h2);
    expect(readdirSync(join(u.cache.dir, 'data')).filter((n) => n.endsWith('.work'))).toEqual([]);
  });

  it('abandons a mount whose host write failed: nothing committed, the old generation stays, the volume is free', async () => {
    const u = await openVts(tempDir());
    const h = await u.mount('AB1', { scratch: true });
    await u.write(h, bytes(10, 1));
    expect((await u.close(h)).generation).toBe(1);
    const w = await u.mount('AB1', { scratch: true });
    await u.write(w, bytes(20, 2));
    await u.abandon(w);
    expect(u.activeMounts()).toHaveLength(0);
    expect(u.token('AB1')?.generation).toBe(1);
    await expect(u.write(w, bytes(1, 3))).rejects.toThrow(/not an active mount/);
    await u.abandon(w); // already gone: a no-op
    const r = await u.mount('AB1');
    const got = await u.read(r, 1000);
    expect(got).toMatchObject({ kind: 'block', length: 10 });
    await u.close(r);
  });

  // A VTC whose close timed out abandons the mount (host-router.ts, until the VTS answers)
  // while that close may still run on the VTS: the abandon waits behind the close, and must
  // not release the volume a second time, which took another holder's pin with it (here an
  // export to the peer).
  it('an abandon queued behind the close that ended the mount releases nothing more', async () => {
    const u = await openVts(tempDir());
    const h = await u.mount('AB2', { scratch: true });
    await u.write(h, bytes(10, 1));
    await u.close(h);
    const w = await u.mount('AB2', { scratch: true });
    await u.write(w, bytes(20, 2));
    const x = await u.exportVolume('AB2');
    const closing = u.close(w);
    const abandoning = u.abandon(w);
    expect((await closing).generation).toBe(2);
    await abandoning;
    expect(u.activeMounts()).toHaveLength(0);
    // The export still holds the volume in cache; the close's release was the only one.
    expect(u.cache.isPinned('AB2')).toBe(true);
    await x.release();
    expect(u.cache.isPinned('AB2')).toBe(false);
  });

  it('fences a VTC whose epoch is older than the last key seq', async () => {
    const u = await openVts(tempDir());
    await u.recordKey(9);
    await expect(u.mount('F1', { scratch: true, epoch: 8 })).rejects.toBeInstanceOf(FencedError);
    const h = await u.mount('F1', { scratch: true, epoch: 9 });
    await u.write(h, bytes(3, 3));
    await u.recordKey(10);
    // The fenced close ends the mount: what it wrote is discarded, nothing is committed, and
    // the volume is free for the next writer (a held volume would refuse every later mount).
    await expect(u.close(h, { epoch: 9 })).rejects.toBeInstanceOf(FencedError);
    await expect(u.close(h, { epoch: 10 })).rejects.toThrow(/not an active mount/);
    expect(u.activeMounts()).toHaveLength(0);
    expect(u.token('F1')).toBeUndefined();
    const again = await u.mount('F1', { scratch: true, epoch: 10 });
    await u.write(again, bytes(3, 4));
    expect((await u.close(again, { epoch: 10 })).generation).toBe(1);
    // A read mount fenced at close is released as well.
    const r = await u.mount('F1', { epoch: 10 });
    await u.recordKey(11);
    await expect(u.close(r, { epoch: 10 })).rejects.toBeInstanceOf(FencedError);
    expect(u.activeMounts()).toHaveLength(0);
    await u.close(await u.mount('F1', { epoch: 11 }), { epoch: 11 });
  });
});

describe('VtsUnit crash safety', () => {
  it('keeps a volume whose close was acknowledged, and drops an unacknowledged rewrite, after reopening without shutdown', async () => {
    const dir = tempDir();
    const u = await openVts(dir);
    const acked = [bytes(5000, 1), 'fm' as const, bytes(7, 2)];
    await u.close((await writeVolume(u, 'C00001', acked)).h);
    // Rewrite in progress, never closed: the crash loses it and nothing else.
    const { h } = await writeVolume(u, 'C00001', [bytes(9999, 3)]);
    await writeVolume(u, 'C00002', [bytes(10, 4)]);
    void h;
    // Debris a crash can leave: a torn metadata temp file and an orphan data file.
    writeFileSync(join(dir, 'cache', 'meta', 'C00001.json.tmp'), '{"torn":');
    writeFileSync(join(dir, 'cache', 'data', 'C00001.9.deadbeef.vol'), 'junk');
    units.splice(units.indexOf(u), 1);
    const again = await openVts(dir);
    expect(again.token('C00001')).toEqual({ generation: 1, consistent: true });
    expect(again.token('C00002')).toBeUndefined();
    const h2 = await again.mount('C00001');
    expect(await readAll(again, h2)).toEqual(acked.map((r) => (r === 'fm' ? 'fm' : Buffer.from(r))));
    expect(readdirSync(join(dir, 'cache', 'data'))).toHaveLength(1);
    expect(readdirSync(join(dir, 'cache', 'meta'))).toEqual(['C00001.json']);
  });
});

describe('VtsUnit peer copies', () => {
  it('exports a volume and applies it on another VTS with the same bytes and token', async () => {
    const a = await openVts(tempDir());
    const b = await openVts(tempDir(), { id: 'B' });
    const recs = [bytes(300_000, 1), 'fm' as const, bytes(2_000_000, 2), bytes(5, 3), 'fm' as const];
    await a.close((await writeVolume(a, 'P00001', recs)).h, { generation: 4 });
    await b.markBehind('P00001', 4);
    expect(b.view().behind).toEqual(['P00001']);
    await expect(b.mount('P00001')).rejects.toBeInstanceOf(VolumeNotConsistentError);
    const ex = await a.exportVolume('P00001');
    expect(await b.applyCopy('P00001', ex.chunks, ex.token, { sha256: ex.sha256 })).toEqual({ generation: 4, consistent: true });
    expect(b.view().behind).toEqual([]);
    const h = await b.mount('P00001');
    // Digests: a deep compare of megabyte arrays is slow.
    expect(digest(await readAll(b, h))).toEqual(digest(recs));
    await b.close(h);
    // The same copy again is a no-op; an older one is refused.
    const ex2 = await a.exportVolume('P00001');
    expect(await b.applyCopy('P00001', ex2.chunks, ex2.token, { sha256: ex2.sha256 })).toEqual({ generation: 4, consistent: true });
    await expect(b.applyCopy('P00001', buildVolume([bytes(1, 1)]), { generation: 3, consistent: true })).rejects.toBeInstanceOf(StaleGenerationError);
  });

  it('rejects malformed or mismatching copy data and leaves nothing behind', async () => {
    const u = await openVts(tempDir());
    await expect(u.applyCopy('BAD001', Buffer.from('not a volume at all'), { generation: 1, consistent: true })).rejects.toBeInstanceOf(BadVolumeDataError);
    const good = buildVolume([bytes(100, 1)]);
    await expect(u.applyCopy('BAD001', good.subarray(0, good.length - 3), { generation: 1, consistent: true })).rejects.toBeInstanceOf(BadVolumeDataError);
    await expect(u.applyCopy('BAD001', good, { generation: 1, consistent: true }, { sha256: '00' })).rejects.toBeInstanceOf(BadVolumeDataError);
    expect(u.token('BAD001')).toBeUndefined();
    expect(readdirSync(join(u.cache.dir, 'data'))).toEqual([]);
  });

  it('a write closed with the hash of the same blocks written on another VTS (a tee) ends as a copy would: same token, bytes and hash; other data is refused and nothing is committed', async () => {
    const a = await openVts(tempDir());
    const b = await openVts(tempDir(), { id: 'B' });
    const c = await openVts(tempDir(), { id: 'C' });
    const recs = [bytes(300_000, 1), 'fm' as const, bytes(70_000, 2), 'fm' as const];
    await a.close((await writeVolume(a, 'TEE001', recs)).h, { generation: 5 });
    const sha = a.cache.get('TEE001')?.sha256 ?? '';
    // B: the tee, the same blocks, closed with A's generation and hash.
    await b.close((await writeVolume(b, 'TEE001', recs)).h, { generation: 5, sha256: sha });
    // C: the copy of A.
    const ex = await a.exportVolume('TEE001');
    await c.applyCopy('TEE001', ex.chunks, ex.token, { sha256: ex.sha256 });
    const facts = (u: VtsUnit) => {
      const m = u.cache.get('TEE001');
      return { token: u.token('TEE001'), dataGeneration: m?.dataGeneration, bytes: m?.bytes, records: m?.records, sha256: m?.sha256, behind: u.view().behind };
    };
    expect(facts(b)).toEqual(facts(a));
    expect(facts(c)).toEqual(facts(b));
    // Other data under that hash is refused, the mount stays until abandoned, nothing changes.
    const { h } = await writeVolume(b, 'TEE001', [bytes(300_000, 1), 'fm']);
    await expect(b.close(h, { generation: 6, sha256: sha })).rejects.toBeInstanceOf(BadVolumeDataError);
    await b.abandon(h);
    expect(facts(b)).toEqual(facts(a));
    expect(b.volumes()).toMatchObject([{ volser: 'TEE001', mounted: false }]);
  });

  it('a block buffer the caller reuses as soon as write() returns does not change what is stored', async () => {
    const u = await openVts(tempDir());
    const h = await u.mount('REUSE1', { scratch: true });
    // One buffer for every block, refilled right after each write() call, the writes unawaited
    // (queued behind each other on the mount, as the RPC server queues a VTC's writes).
    const buf = new Uint8Array(65_536);
    const expected: Uint8Array[] = [];
    const sent: Promise<void>[] = [];
    for (let i = 0; i < 16; i++) {
      buf.set(bytes(buf.length, i));
      expected.push(bytes(buf.length, i));
      sent.push(u.write(h, buf));
      buf.fill(0xee);
    }
    await Promise.all(sent);
    await u.close(h);
    const r = await u.mount('REUSE1');
    expect(digest(await readAll(u, r))).toEqual(digest(expected));
    await u.close(r);
  });

  it('refuses to grow past the cache capacity when nothing is premigrated', async () => {
    const u = await openVts(tempDir(), { cacheCapacityBytes: 100_000 });
    const h = await u.mount('CAP001', { scratch: true });
    await u.write(h, bytes(60_000, 1));
    await expect(u.write(h, bytes(60_000, 2))).rejects.toBeInstanceOf(CacheFullError);
  });
});

describe('volume format', () => {
  it('parses any record sequence back however the bytes are chunked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant('filemark' as const), fc.uint8Array({ minLength: 1, maxLength: 300 })), { maxLength: 20 }),
        fc.integer({ min: 1, max: 64 }),
        (recs, chunk) => {
          const img = buildVolume(recs);
          const p = new VolumeParser({ index: true });
          for (let i = 0; i < img.length; i += chunk) p.push(img.subarray(i, i + chunk));
          p.end();
          expect(p.records).toBe(recs.length);
          expect(p.entries?.map((e) => e.length)).toEqual(recs.map((r) => (r === 'filemark' ? 0 : r.length)));
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('VtsUnit token sum', () => {
  it('reports the sum of its token generations, which writes, marks and restarts never lower', async () => {
    const dir = tempDir();
    const u = await openVts(dir);
    expect(u.view().tokenSum).toBe(0);
    await u.close((await writeVolume(u, 'V00001', [bytes(10, 1)])).h);
    await u.close((await writeVolume(u, 'V00002', [bytes(10, 2)])).h);
    await u.close((await writeVolume(u, 'V00001', [bytes(10, 3)], {})).h);
    expect(u.view().tokenSum).toBe(2 + 1);
    await u.markBehind('V00002', 7);
    expect(u.view().tokenSum).toBe(2 + 7);
    const before = u.view();
    await u.shutdown();
    units.splice(units.indexOf(u), 1);
    const again = await openVts(dir);
    // Same disks: the same image and sum, a new boot.
    expect(again.view().tokenSum).toBe(before.tokenSum);
    expect(again.view().imageId).toBe(before.imageId);
    expect(again.view().bootId).not.toBe(before.bootId);
  });
});
