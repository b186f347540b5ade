/**
 * The early writeback of a VTS's working files (EarlyWriteback in durable.ts): ranges and
 * background fdatasyncs started as a mount or a peer copy writes, so the commit's fsync
 * waits for the last MiB or so; a failure of any of them fails the commit; a file system
 * that refuses the range call loses only the head start. And the commit does not wait for
 * the old generation's data file to be removed.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeFs, type PlatformFile, type PlatformFs } from '../platform/fs.js';
import { wrappedFs } from '../../test/kit/wrapped-fs.js';
import { EARLY_DATASYNC_BYTES, EARLY_WRITEBACK_BYTES, EarlyWriteback } from './durable.js';
import { VolumeCache } from './volume-cache.js';
import { VtsUnit } from './vts-unit.js';
import { RecordKind, buildVolume } from './volume-format.js';

const KIB = 1024;
const MIB = 1 << 20;

/** What the fake file was asked to do, and how to answer. */
interface Script {
  calls: string[];
  /** Held steps: resolve or reject them to finish the step. */
  held: { what: string; resolve: () => void; reject: (e: Error) => void }[];
  hold: boolean;
  closed: boolean;
}

/** A file whose writes succeed at once and whose ranges and fdatasyncs are scripted. */
function fakeFile(s: Script, withRanges = true): PlatformFile {
  const step = (what: string): Promise<void> => {
    s.calls.push(what);
    if (!s.hold) return Promise.resolve();
    return new Promise<void>((resolve, reject) => s.held.push({ what, resolve, reject }));
  };
  const f: PlatformFile = {
    read: () => Promise.resolve({ bytesRead: 0 }),
    write: (_b, _o, length) => Promise.resolve({ bytesWritten: length }),
    sync: () => step('fsync'),
    datasync: () => step('fdatasync'),
    stat: () => Promise.reject(new Error('not used')),
    truncate: () => Promise.resolve(),
    close: () => {
      s.closed = true;
      return Promise.resolve();
    },
  };
  if (withRanges) f.startWriteback = (offset, length) => step(`range ${offset}+${length}`);
  return f;
}

const newScript = (): Script => ({ calls: [], held: [], hold: false, closed: false });
const osError = (code: string, syscall: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: ${syscall}`), { code, syscall });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('EarlyWriteback', () => {
  it('starts a range at each MiB over exactly what was appended, one at a time, and an fdatasync every 4 MiB', async () => {
    expect(EARLY_WRITEBACK_BYTES).toBe(MIB);
    expect(EARLY_DATASYNC_BYTES).toBe(4 * MIB);
    const s = newScript();
    const wb = new EarlyWriteback(fakeFile(s));
    let end = 0;
    const append = (n: number): void => {
      end += n;
      wb.appended(end, n);
    };
    for (let i = 0; i < 4; i++) append(256 * KIB);
    expect(s.calls).toEqual([`range 0+${MIB}`]);
    await wb.settle();
    // One in flight at a time: what piles up meanwhile goes with the next.
    s.hold = true;
    for (let i = 0; i < 4; i++) append(256 * KIB);
    expect(s.calls).toEqual([`range 0+${MIB}`, `range ${MIB}+${MIB}`]);
    for (let i = 0; i < 8; i++) append(256 * KIB);
    expect(s.calls, 'nothing new starts while a step is in flight').toHaveLength(2);
    s.held.shift()!.resolve();
    await tick();
    append(1); // 4 MiB + 1 byte since the start: this one is an fdatasync
    expect(s.calls).toEqual([`range 0+${MIB}`, `range ${MIB}+${MIB}`, 'fdatasync']);
    s.held.shift()!.resolve();
    await tick();
    for (let i = 0; i < 4; i++) append(256 * KIB);
    expect(s.calls.at(-1), 'the next range covers exactly what was appended since the last step').toBe(`range ${4 * MIB + 1}+${MIB}`);
    s.held.shift()!.resolve();
    await wb.settle();
    expect(wb.started).toEqual({ ranges: 3, datasyncs: 1 });
  });

  it('a range that fails with EIO is kept and thrown by settle, after the step in flight finished', async () => {
    const s = newScript();
    s.hold = true;
    const wb = new EarlyWriteback(fakeFile(s));
    wb.appended(MIB, MIB);
    const settled = wb.settle();
    let done = false;
    void settled.catch(() => (done = true));
    await tick();
    expect(done).toBe(false);
    s.held.shift()!.reject(osError('EIO', 'sync_file_range'));
    await expect(settled).rejects.toMatchObject({ code: 'EIO' });
    await expect(wb.settle(), 'the error stays').rejects.toMatchObject({ code: 'EIO' });
  });

  it('a background fdatasync that fails is kept too: it took the descriptor\'s one report of the error', async () => {
    const s = newScript();
    const wb = new EarlyWriteback(fakeFile(s, false));
    s.hold = true;
    wb.appended(4 * MIB, 4 * MIB);
    expect(s.calls).toEqual(['fdatasync']);
    s.held.shift()!.reject(osError('EIO', 'fdatasync'));
    await expect(wb.settle()).rejects.toMatchObject({ code: 'EIO', syscall: 'fdatasync' });
  });

  it.each(['EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'ESPIPE'])('a file system refusing the range call (%s) loses only the head start: no error, no more ranges, fdatasyncs go on', async (code) => {
    const s = newScript();
    s.hold = true;
    const wb = new EarlyWriteback(fakeFile(s));
    wb.appended(MIB, MIB);
    s.held.shift()!.reject(osError(code, 'sync_file_range'));
    await wb.settle();
    s.hold = false;
    wb.appended(2 * MIB, MIB);
    wb.appended(3 * MIB, MIB);
    expect(s.calls).toEqual([`range 0+${MIB}`]);
    wb.appended(4 * MIB, MIB);
    expect(s.calls).toEqual([`range 0+${MIB}`, 'fdatasync']);
    await wb.settle();
  });

  it('a file without the range call gets the fdatasyncs alone', async () => {
    const s = newScript();
    const wb = new EarlyWriteback(fakeFile(s, false));
    for (let i = 1; i <= 8; i++) {
      wb.appended(i * MIB, MIB);
      await tick();
    }
    expect(s.calls).toEqual(['fdatasync', 'fdatasync']);
  });
});

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ptpvts-early-wb-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** node:fs with the working files' ranges, fdatasyncs and unlinks scripted. */
function scriptedFs(o: { range?: (path: string) => Promise<void> | undefined; datasync?: (path: string) => Promise<void> | undefined; unlink?: (path: string) => Promise<void> | undefined; log: string[] }): PlatformFs {
  const logged = <T>(what: string, path: string, call: () => T): T => {
    o.log.push(`${what} ${path}`);
    return call();
  };
  return {
    ...wrappedFs((path, h) => ({
      read: (b, off, len, pos) => logged('read', path, () => h.read(b, off, len, pos)),
      sync: () => logged('fsync', path, () => h.sync()),
      datasync: () => logged('fdatasync', path, () => o.datasync?.(path) ?? h.datasync()),
      close: () => logged('close', path, () => h.close()),
      startWriteback: (offset, length) => logged('range', path, () => o.range?.(path) ?? h.startWriteback!(offset, length)),
    })),
    unlink: (path) => logged('unlink', path, () => o.unlink?.(path) ?? nodeFs.unlink(path)),
  };
}

/** A VTS on `fs` in this test's directory. */
const openUnit = (fs: PlatformFs): Promise<VtsUnit> => VtsUnit.open({ id: 'A', cacheDir: join(root, 'cache'), stateDir: join(root, 'state'), fs });
/** node:fs whose fdatasyncs of working files fail with EIO. */
const failingWorkDatasync = (log: string[]): PlatformFs => scriptedFs({ log, datasync: (p) => (p.endsWith('.work') ? Promise.reject(osError('EIO', 'fdatasync')) : undefined) });

const block = (seed: number): Uint8Array => Uint8Array.from({ length: 256 * KIB }, (_, i) => (i * 7 + seed) & 0xff);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('a VTS working file written with the early writeback', () => {
  it('node:fs starts a range on a real file, and refuses one on a closed handle with EBADF', async () => {
    const path = join(root, 'f');
    closeSync(openSync(path, 'w'));
    const h = await nodeFs.open(path, 'r+');
    await h.write(Buffer.alloc(MIB, 1), 0, MIB, 0);
    await h.startWriteback!(0, MIB);
    await h.close();
    await expect(h.startWriteback!(0, MIB)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('a mount writing 6 MiB starts ranges and an fdatasync before its close, and the close commits every byte', async () => {
    const log: string[] = [];
    const u = await openUnit(scriptedFs({ log }));
    try {
      const h = await u.mount('V00001', { scratch: true });
      const blocks = Array.from({ length: 24 }, (_, i) => block(i));
      for (const b of blocks) await u.write(h, b);
      const beforeClose = log.length;
      await u.close(h);
      const work = log.filter((l) => l.endsWith('.work'));
      expect(work.filter((l) => l.startsWith('range ')).length).toBeGreaterThanOrEqual(2);
      expect(log.slice(0, beforeClose).some((l) => l.startsWith('fdatasync ') && l.endsWith('.work')), 'an fdatasync ran while the mount wrote').toBe(true);
      expect(u.cache.get('V00001')?.sha256).toBe(sha(buildVolume(blocks)));
    } finally {
      await u.shutdown();
    }
  });

  it('a range that failed fails the close: nothing is committed, the volume keeps its generation', async () => {
    const log: string[] = [];
    let fail = false;
    const fs = scriptedFs({ log, range: () => (fail ? Promise.reject(osError('EIO', 'sync_file_range')) : undefined) });
    const u = await openUnit(fs);
    try {
      const first = await u.mount('V00001', { scratch: true });
      await u.write(first, block(1));
      const token = await u.close(first);
      fail = true;
      const h = await u.mount('V00001');
      for (let i = 0; i < 8; i++) await u.write(h, block(10 + i));
      await expect(u.close(h)).rejects.toMatchObject({ code: 'EIO' });
      expect(u.cache.get('V00001')?.generation).toBe(token.generation);
      expect(u.cache.get('V00001')?.sha256).toBe(sha(buildVolume([block(1)])));
    } finally {
      await u.shutdown();
    }
  });

  it('a background fdatasync that failed fails the close', async () => {
    const u = await openUnit(failingWorkDatasync([]));
    try {
      const h = await u.mount('V00002', { scratch: true });
      for (let i = 0; i < 20; i++) await u.write(h, block(i));
      await expect(u.close(h)).rejects.toMatchObject({ code: 'EIO' });
      expect(u.cache.get('V00002')?.dataGeneration ?? 0).toBe(0);
    } finally {
      await u.shutdown();
    }
  });

  it('a peer copy whose early writeback failed is refused, and the volume is left as it was', async () => {
    const u = await openUnit(failingWorkDatasync([]));
    try {
      const image = buildVolume(Array.from({ length: 24 }, (_, i) => block(i)));
      const chunks = Array.from({ length: Math.ceil(image.length / MIB) }, (_, i) => image.subarray(i * MIB, (i + 1) * MIB));
      await expect(u.applyCopy('V00003', chunks[Symbol.iterator]() as unknown as AsyncIterable<Uint8Array>, { generation: 2, consistent: true }, { sha256: sha(image) })).rejects.toMatchObject({ code: 'EIO' });
      expect(u.cache.get('V00003')).toBeUndefined();
      expect(readdirSync(join(root, 'cache', 'data'))).toEqual([]);
    } finally {
      await u.shutdown();
    }
  });

  it('a working file is not closed under a range in flight', async () => {
    const log: string[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const cache = await VolumeCache.open({ dir: join(root, 'cache'), fs: scriptedFs({ log, range: () => held }) });
    const f = await cache.newWork('V00004');
    for (let i = 0; i < 4; i++) await f.append(RecordKind.block, block(i));
    expect(log.some((l) => l.startsWith('range '))).toBe(true);
    const closing = cache.discardWork(f);
    await tick();
    await tick();
    const closedWork = (): boolean => log.includes(`close ${f.path}`);
    expect(closedWork(), 'closed while the range ran').toBe(false);
    release();
    await closing;
    expect(closedWork()).toBe(true);
  });
});

describe('a peer copy', () => {
  it('is committed as it was written: indexed and hashed as it streamed in, fsynced on the descriptor that wrote it, never read back', async () => {
    const log: string[] = [];
    const u = await openUnit(scriptedFs({ log }));
    try {
      const blocks = Array.from({ length: 10 }, (_, i) => block(i));
      const image = buildVolume([...blocks.slice(0, 5), 'filemark', ...blocks.slice(5)]);
      const chunks = Array.from({ length: Math.ceil(image.length / (300 * KIB)) }, (_, i) => image.subarray(i * 300 * KIB, (i + 1) * 300 * KIB));
      const token = await u.applyCopy('V00007', chunks[Symbol.iterator]() as unknown as AsyncIterable<Uint8Array>, { generation: 4, consistent: true }, { sha256: sha(image) });
      expect(token).toEqual({ generation: 4, consistent: true });
      const work = log.find((l) => l.startsWith('fsync ') && l.endsWith('.work'))!.slice('fsync '.length);
      expect(log.filter((l) => l === `read ${work}`), 'the working file was read back').toEqual([]);
      expect(log.filter((l) => l.endsWith(work)).map((l) => l.split(' ')[0]), 'one descriptor wrote, synced and closed it').toEqual(expect.arrayContaining(['fsync', 'close']));
      const m = u.cache.get('V00007')!;
      expect(m).toMatchObject({ dataGeneration: 4, bytes: image.length, records: 11, sha256: sha(image) });
      // Read back through a mount: the index made as the copy streamed in is the file's.
      const h = await u.mount('V00007');
      const seen: string[] = [];
      for (;;) {
        const r = await u.read(h, MIB);
        if (r.kind === 'eod') break;
        seen.push(r.kind === 'filemark' ? 'fm' : sha(r.data));
      }
      await u.close(h);
      expect(seen).toEqual([...blocks.slice(0, 5).map(sha), 'fm', ...blocks.slice(5).map(sha)]);
    } finally {
      await u.shutdown();
    }
  });
});

describe('the old generation\'s data file', () => {
  it('is removed after the commit is answered, not before: the close does not wait for the unlink', async () => {
    const log: string[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    let holdUnlink = false;
    const fs = scriptedFs({ log, unlink: (p) => (holdUnlink && p.endsWith('.vol') ? held.then(() => nodeFs.unlink(p)) : undefined) });
    const u = await openUnit(fs);
    try {
      const a = await u.mount('V00005', { scratch: true });
      await u.write(a, block(1));
      await u.close(a);
      const old = u.cache.dataPath(u.cache.get('V00005')!)!;
      holdUnlink = true;
      const b = await u.mount('V00005');
      await u.write(b, block(2));
      const token = await u.close(b);
      expect(token.generation).toBe(2);
      expect(existsSync(old), 'the old file is still being removed').toBe(true);
      let idle = false;
      const waiting = u.cache.idle().then(() => (idle = true));
      await tick();
      expect(idle).toBe(false);
      release();
      await waiting;
      expect(existsSync(old)).toBe(false);
      expect(readdirSync(join(root, 'cache', 'data'))).toEqual([u.cache.get('V00005')!.dataFile]);
    } finally {
      release();
      await u.shutdown();
    }
  });

  it('an unlink that fails leaves the commit standing, and the next open removes the file', async () => {
    const log: string[] = [];
    let failUnlink = false;
    const fs = scriptedFs({ log, unlink: (p) => (failUnlink && p.endsWith('.vol') ? Promise.reject(osError('EIO', 'unlink')) : undefined) });
    const u = await openUnit(fs);
    const a = await u.mount('V00006', { scratch: true });
    await u.write(a, block(1));
    await u.close(a);
    failUnlink = true;
    const b = await u.mount('V00006');
    await u.write(b, block(2));
    await expect(u.close(b)).resolves.toMatchObject({ generation: 2 });
    await u.shutdown();
    expect(readdirSync(join(root, 'cache', 'data'))).toHaveLength(2);
    const again = await VolumeCache.open({ dir: join(root, 'cache') });
    expect(readdirSync(join(root, 'cache', 'data'))).toEqual([again.get('V00006')!.dataFile]);
    expect(again.get('V00006')?.sha256).toBe(sha(buildVolume([block(2)])));
  });
});
