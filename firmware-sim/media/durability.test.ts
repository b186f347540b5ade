/**
 * What the cartridge does when the file system fails it (fdatasync errors, short writes,
 * a directory fsync that fails), how it recovers a log whose unsynced pages reached the
 * disk out of order, and the cartridge-memory slot layout of format 2 with the conversion
 * of format 1 files.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/native.js';
import { Cartridge, CartridgeWriteError, checkCartridge, createCartridgeFile, nodeFileIo, type CartridgeFileIo } from './index.js';
import { writeFormat1Cartridge } from '../../test/kit/format1-cartridge.js';
import { FORMAT_VERSION, HEADER_SIZE, MAM_SLOT_OFFSETS, RECORD_HEADER_SIZE, type StoredAttribute } from './format.js';
import { powerCuts, recordingIo } from './test-file-ops.js';

const init = { mediaType: 'LTO7', barcode: 'D00001L7', capacityBytes: 1 << 30, worm: false };
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-durability-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code, errno: -5, syscall: 'fdatasync' });
}

function rootCause(e: unknown): unknown {
  let c = e;
  while (c instanceof Error && c.cause !== undefined) c = c.cause;
  return c;
}

const attr = (v: number): Map<number, StoredAttribute> => new Map([[0x0003, { format: 0, value: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, v) }]]);

describe('write and sync failures', () => {
  it.each(['sync_file_range', 'fdatasync'] as const)('a failed background writeback (%s) fails the next sync point, and the cartridge refuses writes until reopened', async (how) => {
    let reported!: () => void;
    const done = new Promise<void>((res) => (reported = res));
    // Linux reports a writeback error once per open file: the background writeback sees
    // it, the sync point's fdatasync afterwards succeeds.
    const fail = (cb: (err: NodeJS.ErrnoException | null) => void): void => {
      setImmediate(() => {
        cb(errno('EIO'));
        reported();
      });
    };
    const io: CartridgeFileIo =
      how === 'fdatasync'
        ? { ...nodeFileIo, startWriteback: undefined, fdatasync: (_fd, cb) => fail(cb) }
        : { ...nodeFileIo, startWriteback: (_fd, _offset, _length, cb) => fail(cb) };
    const p = join(dir, 'wb.cart');
    const c = Cartridge.open(p, { create: init, io });
    for (let i = 0; i < 9; i++) c.appendBlock(bytes(1 << 20, i));
    await done;
    let err: unknown;
    try {
      c.appendFilemarks(1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CartridgeWriteError);
    expect(err).toMatchObject({ name: 'CartridgeWriteError', code: 'ECARTWRITE' });
    expect(rootCause(err)).toMatchObject({ code: 'EIO' });
    expect(c.writeFailure).toBeDefined();
    expect(() => c.appendBlock(bytes(10, 1))).toThrow(CartridgeWriteError);
    expect(() => c.sync()).toThrow(CartridgeWriteError);
    expect(() => c.writeAttributes(attr(1))).toThrow(CartridgeWriteError);
    c.close();
    // Reopened, the cartridge is rebuilt from the file and takes writes again.
    const d = Cartridge.open(p);
    d.appendBlock(bytes(10, 2));
    d.appendFilemarks(1);
    d.close();
    expect(checkCartridge(p).damaged).toEqual([]);
  });

  it.each([
    ['a sync point', (c: Cartridge) => c.appendFilemarks(1)],
    ['a cartridge memory write', (c: Cartridge) => c.writeAttributes(attr(2))],
  ])('an fdatasync that fails at %s fails it, and the next (succeeding) fdatasync acknowledges nothing', (_what, act) => {
    let failNext = false;
    const io: CartridgeFileIo = {
      ...nodeFileIo,
      fdatasyncSync: (fd) => {
        if (failNext) {
          failNext = false;
          throw errno('EIO');
        }
        nodeFileIo.fdatasyncSync(fd);
      },
    };
    const c = Cartridge.open(join(dir, 'fs.cart'), { create: init, io });
    c.appendBlock(bytes(100, 1));
    failNext = true;
    expect(() => act(c)).toThrow(CartridgeWriteError);
    // The kernel would report the lost pages once; the cartridge must remember.
    expect(() => c.appendFilemarks(1)).toThrow(CartridgeWriteError);
    expect(() => c.sync()).toThrow(/refuses writes since a write failed/);
    c.close();
  });

  it('continues after short writes and short writevs, and reads back what it wrote', () => {
    const io: CartridgeFileIo = {
      ...nodeFileIo,
      writeSync: (fd, b, off, len, pos) => nodeFileIo.writeSync(fd, b, off, Math.min(len, 7), pos),
      writevSync: (fd, bufs, pos) => {
        const first = bufs[0] ?? new Uint8Array(0);
        return nodeFileIo.writeSync(fd, first, 0, Math.min(first.length, 5), pos);
      },
    };
    const p = join(dir, 'short.cart');
    const c = Cartridge.open(p, { create: init, io });
    c.appendBlock(bytes(1000, 1));
    c.appendBlock(bytes(3, 2));
    c.appendFilemarks(2);
    c.writeAttributes(attr(3));
    c.close();
    const d = Cartridge.open(p, { readOnly: true });
    expect(d.objectCount).toBe(4);
    expect(d.readBlock(0)).toEqual(bytes(1000, 1));
    expect(d.readBlock(1)).toEqual(bytes(3, 2));
    expect(d.readAttributes().get(0x0003)?.value[7]).toBe(3);
    d.close();
    expect(checkCartridge(p)).toMatchObject({ ok: true, blocks: 2, filemarks: 2 });
  });

  it('a write that makes no progress fails clearly instead of spinning', () => {
    let calls = 0;
    let zero = false;
    const io: CartridgeFileIo = {
      ...nodeFileIo,
      writeSync: (fd, b, off, len, pos) => {
        if (!zero) return nodeFileIo.writeSync(fd, b, off, len, pos);
        // A guard so the code before the fix fails instead of looping for ever.
        if (++calls > 10_000) throw new Error('still writing after 10000 calls that wrote nothing');
        return 0;
      },
      writevSync: () => 0,
    };
    const c = Cartridge.open(join(dir, 'zero.cart'), { create: init, io });
    zero = true;
    expect(() => c.appendBlock(bytes(100, 1))).toThrow(CartridgeWriteError);
    expect(() => c.appendBlock(bytes(100, 1))).toThrow(/refuses writes/);
    expect(calls).toBeLessThan(10);
    c.close();
  });

  it('creating a cartridge fsyncs the directory after the rename, and a directory fsync error is not swallowed', () => {
    const calls: string[] = [];
    let dirFd = -1;
    let dirError: string | undefined;
    const io: CartridgeFileIo = {
      ...nodeFileIo,
      openSync: (path, flags) => {
        const fd = nodeFileIo.openSync(path, flags);
        dirFd = path === dir ? fd : -1;
        calls.push(`open ${path === dir ? 'dir' : 'file'}`);
        return fd;
      },
      fsyncSync: (fd) => {
        calls.push(fd === dirFd ? 'fsync dir' : 'fsync file');
        if (fd === dirFd && dirError) throw Object.assign(new Error(`${dirError}: injected`), { code: dirError });
        nodeFileIo.fsyncSync(fd);
      },
      renameSync: (a, b) => {
        calls.push('rename');
        nodeFileIo.renameSync(a, b);
      },
    };
    const p = join(dir, 'new.cart');
    createCartridgeFile(p, init, 0, io);
    expect(dirname(p)).toBe(dir);
    expect(calls).toEqual(['open file', 'fsync file', 'rename', 'open dir', 'fsync dir']);
    // A filesystem that does not do directory fsync is fine; an I/O error is not.
    dirError = 'EINVAL';
    expect(() => createCartridgeFile(join(dir, 'b.cart'), init, 0, io)).not.toThrow();
    dirError = 'EIO';
    expect(() => createCartridgeFile(join(dir, 'c.cart'), init, 0, io)).toThrow(/EIO/);
  });
});

describe('torn tails after a power cut', () => {
  /**
   * Five 5000-byte blocks and a filemark (sync point 1), three blocks and a filemark (sync
   * point 2), then five blocks that were never synced. Returns the file image as it was
   * before any close, and the record offsets.
   */
  function image(): { file: Buffer; offs: number[]; path: string } {
    const path = join(dir, 'torn.cart');
    const c = Cartridge.open(path, { create: init });
    let k = 0;
    for (let i = 0; i < 5; i++) c.appendBlock(bytes(5000, k++));
    c.appendFilemarks(1);
    for (let i = 0; i < 3; i++) c.appendBlock(bytes(5000, k++));
    c.appendFilemarks(1);
    for (let i = 0; i < 5; i++) c.appendBlock(bytes(5000, k++));
    const file = readFileSync(path);
    const offs = Array.from({ length: c.objectCount }, (_, i) => c.object(i)?.offset ?? -1);
    c.close();
    return { file, offs, path };
  }
  /** Zeroes the 4 KiB page holding `off` (a page that never reached the disk). */
  function losePage(f: Buffer, off: number): void {
    const page = Math.floor(off / 4096) * 4096;
    f.fill(0, page, page + 4096);
  }

  it('a lost page after the last sync point with intact records behind it is a torn tail, not a mid-tape MEDIUM ERROR', () => {
    const { file, offs, path } = image();
    losePage(file, (offs[11] ?? 0) + 10);
    writeFileSync(path, file);
    const r = checkCartridge(path);
    expect(r.damaged).toEqual([]);
    expect(r.tornTailBytes).toBeGreaterThan(0);
    const c = Cartridge.open(path);
    expect(c.recovered).toBe(true);
    // Everything up to the lost page: objects 0..10 (the damage starts inside block 11's record or before).
    expect(c.objectCount).toBeLessThanOrEqual(11);
    expect(c.objectCount).toBeGreaterThanOrEqual(10);
    for (let i = 0; i < c.objectCount; i++) if (c.object(i)?.kind === 'block') c.readBlock(i);
    // The cut is made on open: nothing of the old tail is left to come back.
    expect(statSync(path).size).toBe(c.sizeOnDisk);
    c.appendBlock(bytes(10, 99));
    c.appendFilemarks(1);
    c.close();
    expect(checkCartridge(path)).toMatchObject({ ok: true, tornTailBytes: 0 });
  });

  it('a lost page before a last sync point whose fdatasync was cut short is a torn tail too', () => {
    const { file, offs, path } = image();
    // Block 7 (between sync points 1 and 2) lost; sync point 2's marker reached the disk
    // before its fdatasync returned. Nothing after sync point 1 was acknowledged.
    losePage(file, (offs[7] ?? 0) + RECORD_HEADER_SIZE + 100);
    writeFileSync(path, file.subarray(0, (offs[9] ?? 0) + 2 * RECORD_HEADER_SIZE));
    const r = checkCartridge(path);
    expect(r.damaged).toEqual([]);
    const c = Cartridge.open(path, { readOnly: true });
    expect(c.objectCount).toBeGreaterThanOrEqual(6);
    expect(c.objectCount).toBeLessThanOrEqual(7);
    expect(c.object(5)?.kind).toBe('filemark');
    c.close();
  });

  it('an overwrite torn by a power cut (some pages of the new records kept, some not) leaves no damage and no mix', () => {
    const path = join(dir, 'over.cart');
    const c = Cartridge.open(path, { create: init });
    // Old data: 40 blocks with a sync point every 5, so old sync points lie past the overwrite.
    for (let i = 0; i < 40; i++) {
      c.appendBlock(bytes(3000, i));
      if (i % 5 === 4) c.appendFilemarks(1);
    }
    const oldState = Array.from({ length: c.objectCount }, (_, i) => (c.object(i)?.kind === 'filemark' ? 'fm' : `b${c.readBlock(i)[0]}`));
    c.truncate(2);
    // What is durable now: the cut may revert any page written after this to these bytes.
    const durable = readFileSync(path);
    for (let i = 0; i < 10; i++) c.appendBlock(bytes(7000, 100 + i));
    const volatile = readFileSync(path);
    const newState = [...oldState.slice(0, 2), ...Array.from({ length: 10 }, (_, i) => `b${bytes(7000, 100 + i)[0]}`)];
    c.close();
    for (const keep of [
      (page: number) => page % 2 === 1,
      (page: number) => page % 3 === 2,
      (page: number) => page % 2 === 0,
    ]) {
      const cut = Buffer.from(volatile.length > durable.length ? volatile : durable);
      durable.copy(cut, 0);
      for (let page = 0; page * 4096 < volatile.length; page++) {
        if (keep(page)) volatile.copy(cut, page * 4096, page * 4096, Math.min(volatile.length, (page + 1) * 4096));
        else if (page * 4096 >= durable.length) cut.fill(0, page * 4096, Math.min(cut.length, (page + 1) * 4096));
      }
      writeFileSync(path, cut);
      expect(checkCartridge(path).damaged).toEqual([]);
      const d = Cartridge.open(path, { readOnly: true });
      const got = Array.from({ length: d.objectCount }, (_, i) => (d.object(i)?.kind === 'filemark' ? 'fm' : `b${d.readBlock(i)[0]}`));
      d.close();
      // The discard was acknowledged (truncate returned): what is left is a prefix of the new tape.
      expect(got.length).toBeGreaterThanOrEqual(2);
      expect(newState.slice(0, got.length)).toEqual(got);
    }
  });

  it('a power cut at any write of an overwrite, torn at any byte, leaves the old tape or a prefix of the new one: never a damaged block with the discarded records after it', () => {
    // Old tape: 15 blocks with a filemark (sync point) after every third, all durable, so
    // old sync points lie past the overwrite point. The host LOCATEs to 9 and writes two
    // blocks and a filemark. Every file operation of that overwrite is recorded; a cut
    // keeps what was synced and a prefix of the rest in order, and tears the next write at
    // any byte (a sector the disk did not finish, or, with 4 KiB pages, part of a record
    // that straddles two) or loses the next truncate but for its zeroed page.
    const path = join(dir, 'disc.cart');
    const c0 = Cartridge.open(path, { create: init });
    for (let i = 0; i < 15; i++) {
      c0.appendBlock(bytes(1500 + 97 * i, i));
      if (i % 3 === 2) c0.appendFilemarks(1);
    }
    c0.close();
    const readState = (p: string): string[] => {
      const d = Cartridge.open(p, { readOnly: true });
      try {
        return Array.from({ length: d.objectCount }, (_, i) => (d.object(i)?.kind === 'filemark' ? 'fm' : `b${d.readBlock(i).length}`));
      } finally {
        d.close();
      }
    };
    const before = readFileSync(path);
    const oldState = readState(path);
    const rec = recordingIo();
    const { io, ops } = rec;
    const c = Cartridge.open(path, { io });
    // The open itself writes nothing to a cleanly closed cartridge.
    const at = 9;
    rec.record(true);
    c.truncate(at);
    const discardAcked = ops.length;
    c.appendBlock(bytes(2222, 200));
    c.appendBlock(bytes(3333, 201));
    c.appendFilemarks(1);
    rec.record(false);
    c.close();
    const newState = [...oldState.slice(0, at), 'b2222', 'b3333', 'fm'];
    expect(readState(path)).toEqual(newState);
    expect(ops.some((o) => o.k === 'write')).toBe(true);

    // A cut at time t (ops[0..t) issued) keeps everything up to the last fdatasync before t,
    // then a prefix of the rest (p ops), the next one torn.
    let cuts = 0;
    for (const { t, n, tear, img, where } of powerCuts(before, ops, { tearBytes: 48 })) {
      const cut = join(dir, `cut-${t}-${n}-${tear}.cart`);
      writeFileSync(cut, img);
      expect(checkCartridge(cut).damaged, where).toEqual([]);
      const got = readState(cut);
      const isPrefixOf = (s: readonly string[]): boolean => got.length <= s.length && got.every((o, i) => o === s[i]);
      // Once truncate returned, the discard is acknowledged: the old records never come back.
      if (t < discardAcked) expect(isPrefixOf(oldState) || isPrefixOf(newState), where).toBe(true);
      else expect(isPrefixOf(newState) && got.length >= at, `${where}: got ${got.join(' ')}`).toBe(true);
      // What the cut left must also be writable: a drive loads it and appends.
      const w = Cartridge.open(cut);
      w.appendBlock(bytes(100, 7));
      w.appendFilemarks(1);
      w.close();
      expect(readState(cut), where).toEqual([...got, 'b100', 'fm']);
      rmSync(cut);
      cuts++;
    }
    expect(cuts).toBeGreaterThan(ops.length);
  });

  it('a second overwrite before the cut of the first is durable: a power cut that keeps only the new floor does not bring the first discard back', () => {
    // Old tape durable; LOCATE 5 + WRITE (floor 1, cut not yet durable), two blocks, then
    // LOCATE 6 + WRITE again. A power cut just before the second floor's fdatasync may keep
    // that cartridge-memory page alone (pages are written back in any order) and lose the
    // first cut and the new records: the file as at its last fdatasync, plus the new floor.
    const path = join(dir, 'two-floors.cart');
    const c0 = Cartridge.open(path, { create: init });
    for (let i = 0; i < 15; i++) {
      c0.appendBlock(bytes(1500 + i, i));
      if (i % 3 === 2) c0.appendFilemarks(1);
    }
    c0.close();
    let synced: Buffer | undefined;
    // 'before' the second overwrite: track the file as at each fdatasync; 'floor': record its writes.
    let phase: 'before' | 'floor' | 'after' = 'before';
    const slotWrites: Array<{ at: number; data: Buffer }> = [];
    const io: CartridgeFileIo = {
      ...nodeFileIo,
      writeSync: (fd, b, off, len, pos) => {
        const n = nodeFileIo.writeSync(fd, b, off, len, pos);
        if (phase === 'floor' && pos < HEADER_SIZE + 2 * 16384) slotWrites.push({ at: pos, data: Buffer.from(b.subarray(off, off + n)) });
        return n;
      },
      fdatasyncSync: (fd) => {
        nodeFileIo.fdatasyncSync(fd);
        // Up to the new floor's own write, every fdatasync moves what a power cut keeps.
        if (phase === 'before' || (phase === 'floor' && slotWrites.length === 0)) synced = readFileSync(path);
      },
    };
    const c = Cartridge.open(path, { io });
    c.truncate(5);
    c.appendBlock(bytes(900, 100));
    c.appendBlock(bytes(901, 101));
    phase = 'floor';
    c.truncate(6);
    phase = 'after';
    c.close();
    const img = Buffer.from(synced ?? Buffer.alloc(0));
    for (const w of slotWrites) w.data.copy(img, w.at);
    const cut = join(dir, 'two-floors-cut.cart');
    writeFileSync(cut, img);
    const d = Cartridge.open(cut, { readOnly: true });
    const got = Array.from({ length: d.objectCount }, (_, i) => (d.object(i)?.kind === 'filemark' ? 'fm' : `b${d.readBlock(i).length}`));
    d.close();
    // The first overwrite was acknowledged: objects 0..4 and then only what it wrote.
    expect(got).toEqual(['b1500', 'b1501', 'b1502', 'fm', 'b1503', 'b900']);
  });

  it('damage before the second-to-last sync point stays a damaged block (MEDIUM ERROR) and keeps what follows', () => {
    const { file, offs, path } = image();
    const off = (offs[2] ?? 0) + RECORD_HEADER_SIZE + 17;
    file[off] = (file[off] ?? 0) ^ 0x40;
    writeFileSync(path, file);
    const r = checkCartridge(path);
    expect(r.damaged).toHaveLength(1);
    expect(r.damaged[0]).toMatchObject({ objectNumber: 2, reason: 'bad-crc' });
    const c = Cartridge.open(path, { readOnly: true });
    expect(c.objectCount).toBe(15);
    expect(() => c.readBlock(2)).toThrow(/CRC/);
    expect(c.readBlock(14)).toEqual(bytes(5000, 12));
    c.close();
  });
});

describe('cartridge memory, format 2', () => {
  it('a damaged sequence number cannot make an older image win (the sequence is under the slot CRC)', () => {
    const p = join(dir, 'mam.cart');
    const c = Cartridge.open(p, { create: init });
    c.writeAttributes(attr(1)); // sequence 1, slot B
    c.writeAttributes(attr(2)); // sequence 2, slot A
    c.writeAttributes(attr(3)); // sequence 3, slot B
    c.close();
    const f = readFileSync(p);
    // A flipped high bit in slot A's sequence: 2 becomes 0x80000002.
    const seqAt = (MAM_SLOT_OFFSETS[0] ?? 0) + 4;
    f[seqAt] = (f[seqAt] ?? 0) ^ 0x80;
    writeFileSync(p, f);
    const d = Cartridge.open(p, { readOnly: true });
    expect(d.readAttributes().get(0x0003)?.value[7]).toBe(3);
    d.close();
    expect(checkCartridge(p).mamSlotsValid).toBe(1);
  });
});

describe('format 1 files', () => {
  /** A format 1 cartridge with an empty log; each slot holds attribute 0x0003 ending in `value`. */
  function v1File(path: string, slots: { seq: number; value: number }[]): void {
    const attrs = (value: number): Map<number, StoredAttribute> => new Map([[0x0003, { format: 0, value: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, value]) }]]);
    writeFormat1Cartridge(path, { mediaType: 'LTO7', barcode: 'OLD001L7', capacityBytes: init.capacityBytes, createdMs: 1_700_000_000_000, slots: slots.map((s) => ({ seq: s.seq, attrs: attrs(s.value) })) });
    const c = Cartridge.open(path, { readOnly: true });
    expect(c.header.version).toBe(1);
    c.close();
  }

  it('reads a format 1 file read-only without changing it, and converts it when opened for writing', () => {
    const p = join(dir, 'old.cart');
    v1File(p, [
      { seq: 6, value: 6 },
      { seq: 7, value: 7 },
    ]);
    const before = readFileSync(p);
    const r = Cartridge.open(p, { readOnly: true });
    expect(r.readAttributes().get(0x0003)?.value[7]).toBe(7);
    r.close();
    expect(readFileSync(p).equals(before)).toBe(true);
    expect(checkCartridge(p)).toMatchObject({ mamSlotsValid: 2, header: { version: 1 } });

    const c = Cartridge.open(p);
    expect(c.header.version).toBe(FORMAT_VERSION);
    expect(c.readAttributes().get(0x0003)?.value[7]).toBe(7);
    c.appendBlock(bytes(10, 1));
    c.appendFilemarks(1);
    c.close();
    const f = readFileSync(p);
    expect(f.readUInt16BE(8)).toBe(2);
    for (const at of MAM_SLOT_OFFSETS) expect(f.toString('ascii', at, at + 4)).toBe('MAM2');
    expect(checkCartridge(p)).toMatchObject({ ok: true, mamSlotsValid: 2, header: { version: 2, barcode: 'OLD001L7' } });
    const d = Cartridge.open(p, { readOnly: true });
    expect(d.readAttributes().get(0x0003)?.value[7]).toBe(7);
    expect(d.readBlock(0)).toEqual(bytes(10, 1));
    d.close();
  });

  it('a crash at any write of the conversion (whole or torn) leaves the newest image, and the next open converts', () => {
    // The conversion makes three writes (slot, slot, header), each followed by fdatasync.
    for (let failAt = 1; failAt <= 3; failAt++) {
      // The header is 128 bytes inside the first sector (and page): written whole or not
      // at all, so only the slot writes are torn here.
      for (const torn of failAt === 3 ? [false] : [false, true]) {
        const p = join(dir, `conv-${failAt}-${torn}.cart`);
        v1File(p, [
          { seq: 6, value: 6 },
          { seq: 7, value: 7 },
        ]);
        let writes = 0;
        const io: CartridgeFileIo = {
          ...nodeFileIo,
          writeSync: (fd, b, off, len, pos) => {
            if (++writes === failAt) {
              // The process dies inside this write: a torn one leaves half of it.
              if (torn) nodeFileIo.writeSync(fd, b, off, Math.floor(len / 2), pos);
              throw new Error('killed');
            }
            return nodeFileIo.writeSync(fd, b, off, len, pos);
          },
        };
        expect(() => Cartridge.open(p, { io })).toThrow(CartridgeWriteError);
        const mid = Cartridge.open(p, { readOnly: true });
        expect(mid.readAttributes().get(0x0003)?.value[7], `crash at write ${failAt}${torn ? ' (torn)' : ''}`).toBe(7);
        mid.close();
        const c = Cartridge.open(p);
        expect(c.header.version).toBe(2);
        expect(c.readAttributes().get(0x0003)?.value[7]).toBe(7);
        c.close();
        expect(checkCartridge(p)).toMatchObject({ mamSlotsValid: 2, header: { version: 2 } });
      }
    }
  });

  it('a format 2 file ignores format 1 slots', () => {
    const p = join(dir, 'mixed.cart');
    v1File(p, [{ seq: 9, value: 9 }]);
    const c = Cartridge.open(p);
    c.close();
    const q = join(dir, 'mixed2.cart');
    copyFileSync(p, q);
    const f = readFileSync(q);
    // Put a format 1 slot with a higher sequence back into slot A of the converted file.
    const body = Buffer.from([0x00, 0x03, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 99]);
    const at = MAM_SLOT_OFFSETS[0] ?? HEADER_SIZE;
    f.fill(0, at, at + 64);
    f.write('MAM1', at, 'ascii');
    f.writeUInt32BE(1000, at + 4);
    f.writeUInt32BE(body.length, at + 8);
    f.writeUInt32BE(crc32c(body), at + 12);
    body.copy(f, at + 16);
    writeFileSync(q, f);
    const d = Cartridge.open(q, { readOnly: true });
    expect(d.readAttributes().get(0x0003)?.value[7]).toBe(9);
    d.close();
  });
});
