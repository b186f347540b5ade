/**
 * Sync points whose fdatasync runs on the thread pool (Cartridge.syncAsync): what may run
 * while one is in flight, the order of markers, and failures, which must leave the
 * cartridge exactly as a failed synchronous sync point does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cartridge, CartridgeStateError, CartridgeWriteError, checkCartridge, nodeFileIo, type CartridgeFileIo } from './index.js';

const init = { mediaType: 'LTO7', barcode: 'S00001L7', capacityBytes: 1 << 30, worm: false };
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-async-sync-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

/**
 * Node's fs, with every asynchronous fdatasync held until the test releases it (with an
 * error or not); `log` records the file calls in the order they were made and returned.
 */
function heldIo(): { io: CartridgeFileIo; log: string[]; held: { release(err?: string): void }[]; syncCalls: number } {
  const log: string[] = [];
  const held: { release(err?: string): void }[] = [];
  const state = { io: undefined as unknown as CartridgeFileIo, log, held, syncCalls: 0 };
  state.io = {
    ...nodeFileIo,
    // The background writeback as an fdatasync every 8 MiB (held here like a sync point's);
    // its form with sync_file_range is tested on its own below.
    startWriteback: undefined,
    writevSync: (fd, bufs, pos) => {
      log.push(`write@${pos}`);
      return nodeFileIo.writevSync(fd, bufs, pos);
    },
    writeSync: (fd, b, off, len, pos) => {
      log.push(`write@${pos}`);
      return nodeFileIo.writeSync(fd, b, off, len, pos);
    },
    fdatasyncSync: (fd) => {
      state.syncCalls++;
      nodeFileIo.fdatasyncSync(fd);
    },
    fdatasync: (fd, cb) => {
      log.push('fdatasync started');
      held.push({
        release: (err) => {
          if (err) {
            log.push('fdatasync failed');
            cb(Object.assign(new Error(`${err}: injected`), { code: err }));
            return;
          }
          nodeFileIo.fdatasync(fd, (e) => {
            log.push('fdatasync returned');
            cb(e);
          });
        },
      });
    },
  };
  return state;
}

/** Lets the event loop turn until `cond` holds (a released fdatasync runs on the thread pool). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(cond()).toBe(true);
}

describe('sync points off the event loop', () => {
  it('answers only once the fdatasync returned; appends and reads go on meanwhile, cuts and loop fdatasyncs are refused', async () => {
    const h = heldIo();
    const p = join(dir, 'a.cart');
    const c = Cartridge.open(p, { create: init, io: h.io });
    c.appendBlock(bytes(1000, 1));
    let done = false;
    const sync = c.appendFilemarksAsync(1).then(() => (done = true));
    await until(() => h.held.length === 1);
    expect(c.syncInFlight).toBe(true);
    expect(c.synced).toBe(false);
    // Appends lie past the marker, whose offset is fixed: they proceed.
    c.appendBlock(bytes(2000, 2));
    expect(Buffer.from(c.readBlock(0)).equals(Buffer.from(bytes(1000, 1)))).toBe(true);
    expect(Buffer.from(c.readBlock(2)).equals(Buffer.from(bytes(2000, 2)))).toBe(true);
    // Anything that would fdatasync the same open file on the loop, or cut it, waits.
    expect(() => c.sync()).toThrow(CartridgeStateError);
    expect(() => c.truncate(1)).toThrow(CartridgeStateError);
    expect(() => c.writeAttributes(new Map())).toThrow(CartridgeStateError);
    expect(() => c.close()).toThrow(CartridgeStateError);
    expect(h.syncCalls).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    h.held[0]?.release();
    await sync;
    expect(c.syncInFlight).toBe(false);
    // The block appended during the flight is not covered by that sync point: still dirty.
    expect(c.synced).toBe(false);
    const next = c.syncAsync();
    await until(() => h.held.length === 2);
    h.held[1]?.release();
    await next;
    expect(c.synced).toBe(true);
    await c.whenSynced();
    c.close();
    const r = checkCartridge(p);
    expect(r.damaged).toEqual([]);
    const d = Cartridge.open(p);
    expect([d.object(0)?.kind, d.object(1)?.kind, d.object(2)?.kind, d.objectCount]).toEqual(['block', 'filemark', 'block', 3]);
    d.close();
  });

  it('queues a second sync point: its marker is written only after the first fdatasync returned', async () => {
    const h = heldIo();
    const c = Cartridge.open(join(dir, 'b.cart'), { create: init, io: h.io });
    c.appendBlock(bytes(100, 1));
    const first = c.appendFilemarksAsync(1);
    await until(() => h.held.length === 1);
    c.appendBlock(bytes(100, 2));
    const second = c.appendFilemarksAsync(1);
    const writesBefore = h.log.filter((l) => l.startsWith('write')).length;
    await new Promise((r) => setTimeout(r, 20));
    // The second filemark is in the file, its marker is not: it waits for the first sync.
    expect(h.log.filter((l) => l.startsWith('write')).length).toBe(writesBefore);
    expect(h.held.length).toBe(1);
    h.held[0]?.release();
    await first;
    await until(() => h.held.length === 2);
    const returned = h.log.indexOf('fdatasync returned');
    expect(returned).toBeGreaterThan(-1);
    // Every write before the first fdatasync returned was there before; the marker came after.
    expect(h.log.slice(0, returned).filter((l) => l.startsWith('write')).length).toBe(writesBefore);
    expect(h.log.slice(returned).filter((l) => l.startsWith('write')).length).toBe(1);
    h.held[1]?.release();
    await second;
    c.close();
  });

  it('a failed fdatasync fails its sync point and every later one although their fdatasyncs would succeed; the cartridge refuses writes until reopened', async () => {
    const h = heldIo();
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init, io: h.io });
    c.appendBlock(bytes(500, 1));
    const first = c.appendFilemarksAsync(1);
    await until(() => h.held.length === 1);
    // Acknowledged as buffered (not durable) during the flight, as a WRITE before any sync point is.
    c.appendBlock(bytes(500, 2));
    const second = c.syncAsync();
    h.held[0]?.release('EIO');
    await expect(first).rejects.toBeInstanceOf(CartridgeWriteError);
    await expect(first).rejects.toMatchObject({ code: 'ECARTWRITE', cause: { code: 'EIO' } });
    // Queued behind it, the second never writes its marker or reaches the disk: refused.
    await expect(second).rejects.toBeInstanceOf(CartridgeWriteError);
    expect(h.held.length).toBe(1);
    expect(c.writeFailure).toBeDefined();
    expect(() => c.appendBlock(bytes(10, 3))).toThrow(CartridgeWriteError);
    await expect(c.syncAsync()).rejects.toBeInstanceOf(CartridgeWriteError);
    c.close();
    const d = Cartridge.open(p);
    d.appendBlock(bytes(10, 4));
    await d.appendFilemarksAsync(1);
    d.close();
    expect(checkCartridge(p).damaged).toEqual([]);
  });

  it('cartridge memory and the close make their fdatasyncs on the thread pool too; a failed one keeps the old attributes and fails the cartridge', async () => {
    const h = heldIo();
    const p = join(dir, 'e.cart');
    const c = Cartridge.open(p, { create: init, io: h.io });
    const value = (v: number): Map<number, { format: number; value: Uint8Array }> => new Map([[0x0800, { format: 1, value: new TextEncoder().encode(`VENDOR${v}`.padEnd(8)) }]]);
    const w1 = c.writeAttributeSetsAsync(new Map([[0, value(1)]]));
    await until(() => h.held.length === 1);
    // Not durable yet: reads report the attributes as they were.
    expect(c.readAttributes().has(0x0800)).toBe(false);
    h.held[0]?.release();
    await w1;
    expect(c.readAttributes().get(0x0800)?.value).toEqual(value(1).get(0x0800)?.value);
    c.appendBlock(bytes(100, 1));
    const closing = c.closeAsync();
    await until(() => h.held.length === 2);
    h.held[1]?.release();
    await until(() => h.held.length === 3);
    h.held[2]?.release();
    await closing;
    expect(c.closed).toBe(true);
    expect(h.syncCalls).toBe(0);
    const r = checkCartridge(p);
    expect([r.blocks, r.cleanEod, r.damaged.length]).toEqual([1, true, 0]);

    const h2 = heldIo();
    const d = Cartridge.open(p, { io: h2.io });
    expect(d.readAttributes().get(0x0800)?.value).toEqual(value(1).get(0x0800)?.value);
    const w2 = d.writeAttributeSetsAsync(new Map([[0, value(2)]]));
    await until(() => h2.held.length === 1);
    h2.held[0]?.release('EIO');
    await expect(w2).rejects.toBeInstanceOf(CartridgeWriteError);
    expect(d.readAttributes().get(0x0800)?.value).toEqual(value(1).get(0x0800)?.value);
    expect(() => d.appendBlock(bytes(10, 2))).toThrow(CartridgeWriteError);
    await d.closeAsync();
    expect(d.closed).toBe(true);
  });

  it('a background writeback that fails while a sync point is in flight fails that sync point even though its own fdatasync succeeded', async () => {
    const h = heldIo();
    const c = Cartridge.open(join(dir, 'd.cart'), { create: init, io: h.io });
    // 9 MiB: the background writeback starts after 8 (its fdatasync is held first).
    for (let i = 0; i < 9; i++) c.appendBlock(bytes(1 << 20, i));
    expect(h.held.length).toBe(1);
    const sync = c.syncAsync();
    await until(() => h.held.length === 2);
    h.held[0]?.release('EIO');
    h.held[1]?.release();
    await expect(sync).rejects.toBeInstanceOf(CartridgeWriteError);
    await c.whenSynced();
    c.close();
  });

  it('with sync_file_range the background writeback starts each MiB as it is appended, one range at a time, the next covering what piled up meanwhile; it makes nothing durable and its failure fails the next sync point', async () => {
    const ranges: { offset: number; length: number; release(err?: string): void }[] = [];
    let syncs = 0;
    const io: CartridgeFileIo = {
      ...nodeFileIo,
      fdatasyncSync: (fd) => {
        syncs++;
        nodeFileIo.fdatasyncSync(fd);
      },
      startWriteback: (fd, offset, length, cb) => {
        ranges.push({
          offset,
          length,
          release: (err) => (err ? setImmediate(() => cb(Object.assign(new Error(`${err}: injected`), { code: err }))) : nodeFileIo.startWriteback!(fd, offset, length, cb)),
        });
      },
    };
    const c = Cartridge.open(join(dir, 'r.cart'), { create: init, io });
    const start = c.sizeOnDisk;
    const block = 256 * 1024;
    // Three blocks and a bit under a MiB: nothing yet.
    for (let i = 0; i < 3; i++) c.appendBlock(bytes(block, i));
    expect(ranges).toHaveLength(0);
    c.appendBlock(bytes(block, 3));
    expect(ranges).toHaveLength(1);
    const first = ranges[0]!;
    expect(first.offset).toBe(start);
    expect(first.offset + first.length).toBe(c.sizeOnDisk);
    // While it runs, nothing more starts: 2 MiB pile up for the next.
    for (let i = 4; i < 12; i++) c.appendBlock(bytes(block, i));
    expect(ranges).toHaveLength(1);
    first.release();
    // The next append after it returned starts the next range.
    let appended = 12;
    await until(() => {
      if (ranges.length === 1) c.appendBlock(bytes(block, appended++));
      return ranges.length === 2;
    });
    const second = ranges[1]!;
    expect(second.offset).toBe(first.offset + first.length);
    expect(second.offset + second.length).toBe(c.sizeOnDisk);
    // It made nothing durable and took no fdatasync: the sync point does.
    expect(syncs).toBe(0);
    second.release('EIO');
    await until(() => c.writeFailure !== undefined);
    expect(() => c.sync()).toThrow(CartridgeWriteError);
    c.close();
  });

  it('a file system that refuses sync_file_range (EINVAL) loses only the head start: no failure, and the early writeback is an fdatasync every 8 MiB from then on', async () => {
    let ranges = 0;
    let fdatasyncs = 0;
    let refused: Promise<void> | undefined;
    const io: CartridgeFileIo = {
      ...nodeFileIo,
      startWriteback: (_fd, _offset, _length, cb) => {
        ranges++;
        refused = new Promise((res) =>
          setImmediate(() => {
            cb(Object.assign(new Error('EINVAL: injected'), { code: 'EINVAL' }));
            res();
          }),
        );
      },
      fdatasync: (fd, cb) => {
        fdatasyncs++;
        nodeFileIo.fdatasync(fd, cb);
      },
    };
    const c = Cartridge.open(join(dir, 'e.cart'), { create: init, io });
    c.appendBlock(bytes(1 << 20, 0));
    expect(ranges).toBe(1);
    await refused;
    expect(c.writeFailure).toBeUndefined();
    // No more ranges; 8 MiB later the fdatasync form starts.
    for (let i = 0; i < 8; i++) c.appendBlock(bytes(1 << 20, 1 + i));
    expect(ranges).toBe(1);
    expect(fdatasyncs).toBe(1);
    await c.appendFilemarksAsync(1);
    expect(c.writeFailure).toBeUndefined();
    c.close();
    expect(checkCartridge(join(dir, 'e.cart')).damaged).toEqual([]);
  });
});
