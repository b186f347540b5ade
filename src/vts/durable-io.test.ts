/**
 * The VTS's durable writers over a file system that takes short writes and whose fsyncs are
 * recorded: `node:fs` and `node:fs/promises` are wrapped for this file only.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type * as FsPromises from 'node:fs/promises';
import type * as Fs from 'node:fs';

const io = vi.hoisted(() => ({ maxWrite: Number.POSITIVE_INFINITY, shortWrites: 0, synced: [] as string[], ops: [] as string[] }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof FsPromises>();
  const open = async (path: string, ...rest: unknown[]): Promise<unknown> => {
    const h = await (real.open as (...a: unknown[]) => Promise<FsPromises.FileHandle>)(path, ...rest);
    return new Proxy(h, {
      get(t, p) {
        if (p === 'write') {
          return (buf: Uint8Array, off: number, len: number, pos: number) => {
            if (len > io.maxWrite) io.shortWrites++;
            return t.write(buf, off, Math.min(len, io.maxWrite), pos);
          };
        }
        if (p === 'sync') return async () => {
          await t.sync();
          io.synced.push(String(path));
          io.ops.push(`sync ${String(path)}`);
        };
        const v: unknown = Reflect.get(t, p, t);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  };
  const unlink = async (path: string): Promise<void> => {
    await real.unlink(path);
    io.ops.push(`unlink ${path}`);
  };
  return { ...real, open, unlink, default: { ...real, open, unlink } };
});

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof Fs>();
  const { promisify } = await import('node:util');
  type Cb = (err: Error | null, n?: number) => void;
  const write = (fd: number, buf: Uint8Array, off: number, len: number, pos: number, cb: Cb): void => {
    if (len > io.maxWrite) io.shortWrites++;
    real.write(fd, buf, off, Math.min(len, io.maxWrite), pos, cb);
  };
  Object.defineProperty(write, promisify.custom, {
    value: (fd: number, buf: Uint8Array, off: number, len: number, pos: number) =>
      new Promise((resolve, reject) => write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve({ bytesWritten: n, buffer: buf })))),
  });
  return { ...real, write, default: { ...real, write } };
});

const { VolumeCache } = await import('./volume-cache.js');
const { SlotFile } = await import('./slot-file.js');
const { VtsUnit } = await import('./vts-unit.js');
const { RecordKind, buildVolume } = await import('./volume-format.js');
const { mkdirDurable, writeDurable } = await import('./durable.js');

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ptpvts-durable-io-'));
  io.maxWrite = Number.POSITIVE_INFINITY;
  io.shortWrites = 0;
  io.synced = [];
  io.ops = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const block = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

describe('short writes', () => {
  it('a volume written in records larger than each write takes commits whole', async () => {
    const dir = join(root, 'cache');
    const cache = await VolumeCache.open({ dir });
    io.maxWrite = 1000;
    const blocks = [block(5000, 1), block(3, 2), block(64 * 1024 + 17, 3)];
    const f = await cache.newWork('V00001');
    for (const b of blocks) await f.append(RecordKind.block, b);
    await f.append(RecordKind.filemark, new Uint8Array(0));
    const m = await cache.commitData('V00001', f, 1);
    io.maxWrite = Number.POSITIVE_INFINITY;
    expect(io.shortWrites).toBeGreaterThan(0);
    const want = buildVolume([...blocks, 'filemark']);
    const again = await VolumeCache.open({ dir });
    const meta = again.get('V00001');
    expect(meta?.dataFile, 'the reopened cache still holds the data').not.toBeNull();
    expect(meta?.sha256).toBe(sha(want));
    expect(sha(readFileSync(again.dataPath(meta!)!))).toBe(sha(want));
    expect(m.bytes).toBe(want.length);
  });

  it('a state record save larger than each write is saved whole', async () => {
    const path = join(root, 'state.bin');
    const a = await SlotFile.open(path, () => Buffer.from('first'));
    io.maxWrite = 700;
    const big = Buffer.from('y'.repeat(3000));
    await a.file.save(big);
    await a.file.close();
    io.maxWrite = Number.POSITIVE_INFINITY;
    expect(io.shortWrites).toBeGreaterThan(0);
    const b = await SlotFile.open(path, () => Buffer.from('never used'));
    await b.file.close();
    expect(Buffer.from(b.payload).toString()).toBe(big.toString());
  });

  it('a small state file replaced durably is written whole', async () => {
    io.maxWrite = 10;
    const text = JSON.stringify({ cartridges: { PV0001L8: { state: 'filling', copies: 3 } } });
    await writeDurable(join(root, 'cartridges.json'), text);
    io.maxWrite = Number.POSITIVE_INFINITY;
    expect(io.shortWrites).toBeGreaterThan(0);
    expect(readFileSync(join(root, 'cartridges.json'), 'utf8')).toBe(text);
  });

  it('a peer copy arriving in chunks larger than each write is installed whole', async () => {
    const vts = await VtsUnit.open({ id: 'A', cacheDir: join(root, 'cache'), stateDir: join(root, 'state') });
    const image = buildVolume([block(9000, 4), 'filemark', block(100, 5)]);
    io.maxWrite = 512;
    await vts.applyCopy('V00002', [image.subarray(0, 4000), image.subarray(4000)][Symbol.iterator]() as unknown as AsyncIterable<Uint8Array>, { generation: 3, consistent: true }, { sha256: sha(image) });
    io.maxWrite = Number.POSITIVE_INFINITY;
    expect(io.shortWrites).toBeGreaterThan(0);
    await vts.shutdown();
    const again = await VolumeCache.open({ dir: join(root, 'cache') });
    const meta = again.get('V00002');
    expect(meta?.dataGeneration).toBe(3);
    expect(sha(readFileSync(again.dataPath(meta!)!))).toBe(sha(image));
  });
});

describe('directories made for the VTS are durable before it reports anything durable', () => {
  it('mkdirDurable fsyncs the parent of every directory it makes', async () => {
    await mkdirDurable(join(root, 'a', 'b', 'c'));
    expect(new Set(io.synced)).toEqual(new Set([root, join(root, 'a'), join(root, 'a', 'b')]));
  });

  it('a new cache directory, its meta/ and data/ are recorded in their parents when open resolves', async () => {
    const dir = join(root, 'new', 'cache');
    await VolumeCache.open({ dir });
    expect(io.synced).toEqual(expect.arrayContaining([root, join(root, 'new'), dir]));
  });

  it('a new state directory and its state file are recorded in their parents when the VTS opens', async () => {
    const stateDir = join(root, 'vts', 'state');
    const vts = await VtsUnit.open({ id: 'A', cacheDir: join(root, 'vts', 'cache'), stateDir });
    await vts.shutdown();
    expect(io.synced).toEqual(expect.arrayContaining([root, join(root, 'vts'), stateDir, dirname(stateDir)]));
  });

  it('a state file of the older format, carried over and removed, stays removed (its unlink is synced)', async () => {
    const stateDir = join(root, 'state');
    await mkdirDurable(stateDir);
    const legacy = join(stateDir, 'vts-state.json');
    writeFileSync(legacy, JSON.stringify({ id: 'A', lastKeySeq: 7, inOperation: true }));
    const vts = await VtsUnit.open({ id: 'A', cacheDir: join(root, 'cache'), stateDir });
    expect(vts.lastKeySeq).toBe(7);
    await vts.shutdown();
    const removed = io.ops.indexOf(`unlink ${legacy}`);
    expect(removed).toBeGreaterThanOrEqual(0);
    expect(io.ops.slice(removed)).toContain(`sync ${stateDir}`);
  });
});
