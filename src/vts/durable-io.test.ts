/**
 * The VTS's durable writers over a file system that takes short writes and whose fsyncs are
 * recorded: node:fs behind a wrapper passed as each writer's `fs`.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeFs, type PlatformFile, type PlatformFs } from '../platform/fs.js';
import { VolumeCache } from './volume-cache.js';
import { SlotFile } from './slot-file.js';
import { VtsUnit } from './vts-unit.js';
import { RecordKind, buildVolume } from './volume-format.js';
import { mkdirDurable, writeDurable } from './durable.js';

const io = { maxWrite: Number.POSITIVE_INFINITY, shortWrites: 0, synced: [] as string[], ops: [] as string[] };

/** node:fs, with every write cut to `io.maxWrite` bytes and every fsync and unlink recorded. */
const fs: PlatformFs = {
  ...nodeFs,
  open: async (path, flags) => {
    const h = await nodeFs.open(path, flags);
    const wrapped: PlatformFile = {
      read: (buf, off, len, pos) => h.read(buf, off, len, pos),
      write: (buf, off, len, pos) => {
        if (len > io.maxWrite) io.shortWrites++;
        return h.write(buf, off, Math.min(len, io.maxWrite), pos);
      },
      sync: async () => {
        await h.sync();
        io.synced.push(path);
        io.ops.push(`sync ${path}`);
      },
      datasync: () => h.datasync(),
      stat: () => h.stat(),
      truncate: (n) => h.truncate(n),
      close: () => h.close(),
    };
    return wrapped;
  },
  unlink: async (path) => {
    await nodeFs.unlink(path);
    io.ops.push(`unlink ${path}`);
  },
};

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
    const cache = await VolumeCache.open({ dir, fs });
    io.maxWrite = 1000;
    const blocks = [block(5000, 1), block(3, 2), block(64 * 1024 + 17, 3)];
    const f = await cache.newWork('V00001');
    for (const b of blocks) await f.append(RecordKind.block, b);
    await f.append(RecordKind.filemark, new Uint8Array(0));
    const m = await cache.commitData('V00001', f, 1);
    io.maxWrite = Number.POSITIVE_INFINITY;
    expect(io.shortWrites).toBeGreaterThan(0);
    const want = buildVolume([...blocks, 'filemark']);
    const again = await VolumeCache.open({ dir, fs });
    const meta = again.get('V00001');
    expect(meta?.dataFile, 'the reopened cache still holds the data').not.toBeNull();
    expect(meta?.sha256).toBe(sha(want));
    expect(sha(readFileSync(again.dataPath(meta!)!))).toBe(sha(want));
    expect(m.bytes).toBe(want.length);
  });

  it('a state record save larger than each write is saved whole', async () => {
    const path = join(root, 'state.bin');
    const a = await SlotFile.open(path, () => Buffer.from('first'), fs);
    io.maxWrite = 700;
    const big = Buffer.from('y'.repeat(3000));
    await a.file.save(big);
    await a.file.close();
    io.maxWrite = Number.POSITIVE_INFINITY;
    expect(io.shortWrites).toBeGreaterThan(0);
    const b = await SlotFile.open(path, () => Buffer.from('never used'), fs);
    await b.file.close();
    expect(Buffer.from(b.payload).toString()).toBe(big.toString());
  });

  it('a small state file replaced durably is written whole', async () => {
    io.maxWrite = 10;
    const text = JSON.stringify({ cartridges: { PV0001L8: { state: 'filling', copies: 3 } } });
    await writeDurable(join(root, 'cartridges.json'), text, fs);
    io.maxWrite = Number.POSITIVE_INFINITY;
    expect(io.shortWrites).toBeGreaterThan(0);
    expect(readFileSync(join(root, 'cartridges.json'), 'utf8')).toBe(text);
  });

  it('a peer copy arriving in chunks larger than each write is installed whole', async () => {
    const vts = await VtsUnit.open({ id: 'A', cacheDir: join(root, 'cache'), stateDir: join(root, 'state'), fs });
    const image = buildVolume([block(9000, 4), 'filemark', block(100, 5)]);
    io.maxWrite = 512;
    await vts.applyCopy('V00002', [image.subarray(0, 4000), image.subarray(4000)][Symbol.iterator]() as unknown as AsyncIterable<Uint8Array>, { generation: 3, consistent: true }, { sha256: sha(image) });
    io.maxWrite = Number.POSITIVE_INFINITY;
    expect(io.shortWrites).toBeGreaterThan(0);
    await vts.shutdown();
    const again = await VolumeCache.open({ dir: join(root, 'cache'), fs });
    const meta = again.get('V00002');
    expect(meta?.dataGeneration).toBe(3);
    expect(sha(readFileSync(again.dataPath(meta!)!))).toBe(sha(image));
  });
});

describe('directories made for the VTS are durable before it reports anything durable', () => {
  it('mkdirDurable fsyncs the parent of every directory it makes', async () => {
    await mkdirDurable(join(root, 'a', 'b', 'c'), fs);
    expect(new Set(io.synced)).toEqual(new Set([root, join(root, 'a'), join(root, 'a', 'b')]));
  });

  it('a new cache directory, its meta/ and data/ are recorded in their parents when open resolves', async () => {
    const dir = join(root, 'new', 'cache');
    await VolumeCache.open({ dir, fs });
    expect(io.synced).toEqual(expect.arrayContaining([root, join(root, 'new'), dir]));
  });

  it('a new state directory and its state file are recorded in their parents when the VTS opens', async () => {
    const stateDir = join(root, 'vts', 'state');
    const vts = await VtsUnit.open({ id: 'A', cacheDir: join(root, 'vts', 'cache'), stateDir, fs });
    await vts.shutdown();
    expect(io.synced).toEqual(expect.arrayContaining([root, join(root, 'vts'), stateDir, dirname(stateDir)]));
  });

  it('a state file of the older format, carried over and removed, stays removed (its unlink is synced)', async () => {
    const stateDir = join(root, 'state');
    await mkdirDurable(stateDir, fs);
    const legacy = join(stateDir, 'vts-state.json');
    writeFileSync(legacy, JSON.stringify({ id: 'A', lastKeySeq: 7, inOperation: true }));
    const vts = await VtsUnit.open({ id: 'A', cacheDir: join(root, 'cache'), stateDir, fs });
    expect(vts.lastKeySeq).toBe(7);
    await vts.shutdown();
    const removed = io.ops.indexOf(`unlink ${legacy}`);
    expect(removed).toBeGreaterThanOrEqual(0);
    expect(io.ops.slice(removed)).toContain(`sync ${stateDir}`);
  });
});
