/**
 * powerfs's own semantics, through the real kernel mount with plain node:fs: what each cut mode
 * keeps and loses, directory-entry durability, that a snapshot leaves the live mount alone, error
 * propagation, and a property test against an in-memory model of "durable = last fsync".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { mountPowerFs, powerFsAvailable, powerFsTempRoot, PowerFsError, type CutMode, type PowerFs } from './powerfs.js';

const avail = powerFsAvailable();
const PAGE = 4096;

/** Writes at `pos` and, if asked, fdatasyncs before closing. */
function put(path: string, data: Buffer | string, opts: { pos?: number; sync?: boolean; flag?: string } = {}): void {
  const fd = openSync(path, opts.flag ?? (existsSync(path) ? 'r+' : 'w'));
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data, 0, undefined, opts.pos ?? 0);
    if (opts.sync) fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r+');
  fdatasyncSync(fd);
  closeSync(fd);
}

function syncDir(path: string): void {
  const fd = openSync(path, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

function pageOf(buf: Buffer, p: number, len: number): Buffer {
  const out = Buffer.alloc(Math.max(0, Math.min(PAGE, len - p * PAGE)));
  if (p * PAGE < buf.length) buf.copy(out, 0, p * PAGE, Math.min(buf.length, p * PAGE + out.length));
  return out;
}

describe.skipIf(!avail.ok)(`powerfs semantics${avail.ok ? '' : ` (skipped: ${avail.why})`}`, () => {
  let fs: PowerFs;
  let snaps: string;
  let n = 0;
  let root: string;

  beforeAll(async () => {
    fs = await mountPowerFs({ name: 'self' });
    snaps = mkdtempSync(join(powerFsTempRoot(), 'ptpvts-powerfs-snaps-'));
  });
  afterAll(async () => {
    await fs?.unmount();
    if (snaps) rmSync(snaps, { recursive: true, force: true });
  });

  /** A fresh, durable directory per test, so tests do not see each other's volatile state. */
  function freshDir(): string {
    root = join(fs.mountpoint, `t${n++}`);
    mkdirSync(root);
    syncDir(fs.mountpoint);
    return root;
  }

  async function snap(mode: CutMode, seed = 1): Promise<string> {
    const dest = fs.freshDest(`s${n++}`);
    await fs.snapshot(dest, { mode, seed });
    return join(dest, root.slice(fs.mountpoint.length));
  }

  it('drop loses a write that was not fdatasynced, keeps one that was', async () => {
    const d = freshDir();
    put(join(d, 'a'), 'synced', { sync: true });
    syncDir(d);
    put(join(d, 'a'), 'SYN', { pos: 0 });
    put(join(d, 'a'), '+tail', { pos: 6 });
    const s = await snap('drop');
    expect(readFileSync(join(s, 'a'), 'utf8')).toBe('synced');
    expect(readFileSync(join(d, 'a'), 'utf8')).toBe('SYNced+tail');
    syncFile(join(d, 'a'));
    expect(readFileSync(join(await snap('drop'), 'a'), 'utf8')).toBe('SYNced+tail');
  });

  it('drop makes a created file vanish until its directory is fsynced, even if the file was', async () => {
    const d = freshDir();
    put(join(d, 'new'), 'data', { sync: true });
    expect(existsSync(join(await snap('drop'), 'new'))).toBe(false);
    syncDir(d);
    expect(readFileSync(join(await snap('drop'), 'new'), 'utf8')).toBe('data');
  });

  it('a rename without a directory fsync comes undone; the replaced file comes back', async () => {
    const d = freshDir();
    put(join(d, 'cur'), 'old', { sync: true });
    put(join(d, 'tmp'), 'new', { sync: true });
    syncDir(d);
    renameSync(join(d, 'tmp'), join(d, 'cur'));
    let s = await snap('drop');
    expect(readFileSync(join(s, 'cur'), 'utf8')).toBe('old');
    expect(readFileSync(join(s, 'tmp'), 'utf8')).toBe('new');
    expect(readdirSync(d).sort()).toEqual(['cur']);
    syncDir(d);
    s = await snap('drop');
    expect(readdirSync(s).sort()).toEqual(['cur']);
    expect(readFileSync(join(s, 'cur'), 'utf8')).toBe('new');
  });

  it('a cross-directory rename is durable only when both directories are fsynced', async () => {
    const d = freshDir();
    mkdirSync(join(d, 'x'));
    mkdirSync(join(d, 'y'));
    put(join(d, 'x', 'f'), 'f', { sync: true });
    syncDir(join(d, 'x'));
    syncDir(d);
    renameSync(join(d, 'x', 'f'), join(d, 'y', 'f'));
    syncDir(join(d, 'y'));
    let s = await snap('drop');
    expect(existsSync(join(s, 'x', 'f'))).toBe(true);
    expect(existsSync(join(s, 'y', 'f'))).toBe(false);
    syncDir(join(d, 'x'));
    s = await snap('drop');
    expect(existsSync(join(s, 'x', 'f'))).toBe(false);
    expect(readFileSync(join(s, 'y', 'f'), 'utf8')).toBe('f');
  });

  it('an unlinked file comes back with its synced data until the directory is fsynced', async () => {
    const d = freshDir();
    put(join(d, 'gone'), 'keep me', { sync: true });
    syncDir(d);
    unlinkSync(join(d, 'gone'));
    expect(readFileSync(join(await snap('drop'), 'gone'), 'utf8')).toBe('keep me');
    expect(existsSync(join(d, 'gone'))).toBe(false);
    syncDir(d);
    expect(existsSync(join(await snap('drop'), 'gone'))).toBe(false);
  });

  it('an open file unlinked, then written and fdatasynced, comes back with the synced data', async () => {
    const d = freshDir();
    put(join(d, 'f'), 'v1', { sync: true });
    syncDir(d);
    const fd = openSync(join(d, 'f'), 'r+');
    unlinkSync(join(d, 'f'));
    writeSync(fd, 'v2', 0, 'utf8');
    fdatasyncSync(fd);
    writeSync(fd, 'v3', 0, 'utf8');
    closeSync(fd);
    expect(readFileSync(join(await snap('drop'), 'f'), 'utf8')).toBe('v2');
  });

  it('rmdir and mkdir revert; a subtree under an undurable mkdir is lost with it', async () => {
    const d = freshDir();
    mkdirSync(join(d, 'old'));
    syncDir(d);
    rmdirSync(join(d, 'old'));
    mkdirSync(join(d, 'sub'));
    put(join(d, 'sub', 'f'), 'x', { sync: true });
    syncDir(join(d, 'sub'));
    const s = await snap('drop');
    expect(readdirSync(s)).toEqual(['old']);
  });

  it('hard links survive as links to one file', async () => {
    const d = freshDir();
    put(join(d, 'a'), 'same', { sync: true });
    linkSync(join(d, 'a'), join(d, 'b'));
    syncDir(d);
    const s = await snap('drop');
    expect(statSync(join(s, 'a')).ino).toBe(statSync(join(s, 'b')).ino);
    expect(readFileSync(join(s, 'b'), 'utf8')).toBe('same');
  });

  it('pages keeps a seeded subset of the unsynced 4 KiB pages, each whole', async () => {
    const d = freshDir();
    const old = Buffer.alloc(16 * PAGE, 0x11);
    put(join(d, 'p'), old, { sync: true });
    syncDir(d);
    const neu = Buffer.alloc(16 * PAGE, 0x22);
    put(join(d, 'p'), neu);
    const keptCounts = new Set<number>();
    for (let seed = 0; seed < 8; seed++) {
      const got = readFileSync(join(await snap('pages', seed), 'p'));
      expect(got.length).toBe(old.length);
      let kept = 0;
      for (let p = 0; p < 16; p++) {
        const pg = pageOf(got, p, got.length);
        const isNew = pg.equals(pageOf(neu, p, got.length));
        expect(isNew || pg.equals(pageOf(old, p, got.length))).toBe(true);
        if (isNew) kept++;
      }
      keptCounts.add(kept);
    }
    // a torn write: some cuts keep part of it, and the seed changes which part
    expect([...keptCounts].some((k) => k > 0 && k < 16)).toBe(true);
    expect(keptCounts.size).toBeGreaterThan(1);
  });

  it('pages keeps the size consistent: at least the synced size, extended only to a kept page', async () => {
    const d = freshDir();
    const base = Buffer.alloc(PAGE + 100, 0x33);
    put(join(d, 'g'), base, { sync: true });
    syncDir(d);
    const ext = Buffer.alloc(6 * PAGE + 7, 0x44);
    put(join(d, 'g'), ext, { pos: base.length });
    const cur = Buffer.concat([base, ext]);
    const sizes = new Set<number>();
    for (let seed = 0; seed < 12; seed++) {
      const got = readFileSync(join(await snap('pages', seed), 'g'));
      sizes.add(got.length);
      expect(got.length).toBeGreaterThanOrEqual(base.length);
      expect(got.length).toBeLessThanOrEqual(cur.length);
      expect(got.length === base.length || got.length === cur.length || got.length % PAGE === 0).toBe(true);
      for (let p = 0; p * PAGE < got.length; p++) {
        const pg = pageOf(got, p, got.length);
        const zeroOrOld = pageOf(base, p, got.length);
        expect(pg.equals(pageOf(cur, p, got.length)) || pg.equals(zeroOrOld)).toBe(true);
      }
    }
    expect(sizes.size).toBeGreaterThan(1);
  });

  it('pages keeps or loses a pending shrink whole: never zeroed pages inside the old data', async () => {
    const d = freshDir();
    const old = Buffer.alloc(16 * PAGE);
    for (let i = 0; i < old.length; i++) old[i] = (i % 251) + 1;
    put(join(d, 's'), old, { sync: true });
    syncDir(d);
    const cutAt = 5 * PAGE + 100;
    truncateSync(join(d, 's'), cutAt);
    const outcomes = new Set<string>();
    for (let seed = 0; seed < 16; seed++) {
      const got = readFileSync(join(await snap('pages', seed), 's'));
      if (got.length === cutAt) {
        expect(got.equals(old.subarray(0, cutAt))).toBe(true);
        outcomes.add('kept');
        continue;
      }
      // Lost: the old size and every old byte, but for the tail of the page holding the new
      // end, which the truncate zeroed in the page cache and which may have been written back.
      expect(got.length).toBe(old.length);
      expect(got.subarray(0, cutAt).equals(old.subarray(0, cutAt))).toBe(true);
      expect(got.subarray(6 * PAGE).equals(old.subarray(6 * PAGE))).toBe(true);
      const tail = got.subarray(cutAt, 6 * PAGE);
      expect(tail.equals(old.subarray(cutAt, 6 * PAGE)) || tail.every((b) => b === 0)).toBe(true);
      outcomes.add('lost');
    }
    expect([...outcomes].sort()).toEqual(['kept', 'lost']);
  });

  it('prefix keeps a prefix of the unsynced writes and of the directory operations', async () => {
    const d = freshDir();
    put(join(d, 'log'), '', { sync: true });
    syncDir(d);
    const parts = Array.from({ length: 20 }, (_, i) => `<${i}>`);
    let off = 0;
    for (const p of parts) {
      put(join(d, 'log'), p, { pos: off });
      off += p.length;
      writeFileSync(join(d, `f${parts.indexOf(p)}`), '');
    }
    const ks = new Set<number>();
    for (let seed = 0; seed < 12; seed++) {
      const s = await snap('prefix', seed);
      const text = readFileSync(join(s, 'log'), 'utf8');
      const k = parts.findIndex((_, i) => parts.slice(0, i + 1).join('') === text) + 1;
      expect(text === '' || k > 0).toBe(true);
      // writes and creates alternate, so the directory keeps the same prefix (give or take one)
      const files = readdirSync(s).filter((f) => f !== 'log');
      const m = files.length;
      expect(files.sort()).toEqual(Array.from({ length: m }, (_, i) => `f${i}`).sort());
      expect(m === k || m === k - 1).toBe(true);
      ks.add(k);
    }
    expect(ks.size).toBeGreaterThan(2);
  });

  it('a snapshot leaves the live mount as it was, and writing goes on afterwards', async () => {
    const d = freshDir();
    put(join(d, 'a'), 'durable', { sync: true });
    syncDir(d);
    put(join(d, 'a'), 'VOLATILE');
    renameSync(join(d, 'a'), join(d, 'b'));
    const before = (await fs.stats()).volatileBytes;
    await snap('drop');
    expect(readdirSync(d)).toEqual(['b']);
    expect(readFileSync(join(d, 'b'), 'utf8')).toBe('VOLATILE');
    expect((await fs.stats()).volatileBytes).toBe(before);
    put(join(d, 'b'), '!', { pos: 8, sync: true });
    syncDir(d);
    const s = await snap('drop');
    expect(readFileSync(join(s, 'b'), 'utf8')).toBe('VOLATILE!');
  });

  it('cut loses unsynced data on the mount itself, remounts, and the mount works after', async () => {
    const d = freshDir();
    put(join(d, 'a'), 'durable', { sync: true });
    put(join(d, 'b'), 'never synced dir entry', { sync: true });
    syncDir(d);
    put(join(d, 'a'), '-lost', { pos: 7 });
    writeFileSync(join(d, 'c'), 'lost');
    const report = await fs.cut({ mode: 'drop', seed: 3 });
    expect(report.lostBytes).toBeGreaterThan(0);
    expect(report.revertedDirOps).toBeGreaterThan(0);
    expect(readdirSync(d).sort()).toEqual(['a', 'b']);
    expect(readFileSync(join(d, 'a'), 'utf8')).toBe('durable');
    put(join(d, 'a'), '+after', { pos: 7, sync: true });
    expect(readFileSync(join(await snap('drop'), 'a'), 'utf8')).toBe('durable+after');
    expect((await fs.stats()).volatileFiles).toBe(0);
  });

  it('propagates ENOENT, ENOTEMPTY and injected EIO; a failed fdatasync leaves the data volatile', async () => {
    const d = freshDir();
    expect(() => openSync(join(d, 'missing'), 'r')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    mkdirSync(join(d, 'full'));
    writeFileSync(join(d, 'full', 'x'), '');
    expect(() => rmdirSync(join(d, 'full'))).toThrow(expect.objectContaining({ code: 'ENOTEMPTY' }));
    put(join(d, 'f'), 'ok', { sync: true });
    syncDir(d);
    const fd = openSync(join(d, 'f'), 'r+');
    try {
      writeSync(fd, 'XX', 0, 'utf8');
      await fs.injectError(['fsync'], 5);
      expect(() => fdatasyncSync(fd)).toThrow(expect.objectContaining({ code: 'EIO' }));
      await fs.injectError(['write'], 28);
      expect(() => writeSync(fd, 'YY', 0, 'utf8')).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    } finally {
      await fs.injectError(null);
      closeSync(fd);
    }
    expect(readFileSync(join(await snap('drop'), 'f'), 'utf8')).toBe('ok');
  });

  it('rejects bad arguments with a clear error', async () => {
    await expect(fs.snapshot(join(snaps, 'bad'), { mode: 'nope' as CutMode, seed: 1 })).rejects.toThrow(/mode must be one of/);
    await expect(fs.snapshot(join(fs.mountpoint, 'x'), { mode: 'drop', seed: 1 })).rejects.toThrow(/inside the powerfs mount/);
    const nonEmpty = join(snaps, 'nonempty');
    mkdirSync(nonEmpty);
    writeFileSync(join(nonEmpty, 'x'), '');
    await expect(fs.snapshot(nonEmpty, { mode: 'drop', seed: 1 })).rejects.toBeInstanceOf(PowerFsError);
  });

  describe('against a model where the durable state is the state at the last fsync', () => {
    interface Obj {
      cur: Buffer;
      dur: Buffer;
      /** New sizes of the truncates that shrank the file since its last sync. */
      shrinks: number[];
    }
    interface Dir {
      cur: Map<string, Obj>;
      dur: Map<string, Obj>;
    }
    const names = ['a', 'b', 'c'] as const;
    const dirs = ['', 'sub'] as const;
    type Op =
      | { t: 'create'; dir: number; name: number }
      | { t: 'write'; dir: number; name: number; off: number; len: number; byte: number }
      | { t: 'trunc'; dir: number; name: number; size: number }
      | { t: 'sync'; dir: number; name: number }
      | { t: 'unlink'; dir: number; name: number }
      | { t: 'rename'; dir: number; name: number; to: number }
      | { t: 'syncdir'; dir: number };
    const dirA = fc.integer({ min: 0, max: 1 });
    const nameA = fc.integer({ min: 0, max: 2 });
    const opA: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ t: fc.constant('create' as const), dir: dirA, name: nameA }),
      fc.record({
        t: fc.constant('write' as const),
        dir: dirA,
        name: nameA,
        off: fc.integer({ min: 0, max: 3 * PAGE + 100 }),
        len: fc.integer({ min: 1, max: 6000 }),
        byte: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({ t: fc.constant('trunc' as const), dir: dirA, name: nameA, size: fc.integer({ min: 0, max: 3 * PAGE }) }),
      fc.record({ t: fc.constant('sync' as const), dir: dirA, name: nameA }),
      fc.record({ t: fc.constant('unlink' as const), dir: dirA, name: nameA }),
      fc.record({ t: fc.constant('rename' as const), dir: dirA, name: nameA, to: nameA }),
      fc.record({ t: fc.constant('syncdir' as const), dir: dirA }),
    );

    function resize(b: Buffer, size: number): Buffer {
      if (size <= b.length) return Buffer.from(b.subarray(0, size));
      return Buffer.concat([b, Buffer.alloc(size - b.length)]);
    }

    async function runModel(ops: Op[], seed: number): Promise<void> {
      const top = freshDir();
      mkdirSync(join(top, 'sub'));
      syncDir(top);
      const model: Dir[] = dirs.map(() => ({ cur: new Map(), dur: new Map() }));
      const at = (dir: number, name: number) => join(top, dirs[dir]!, names[name]!);
      for (const op of ops) {
        const m = model[op.dir]!;
        const name = 'name' in op ? names[op.name]! : '';
        const obj = m.cur.get(name);
        switch (op.t) {
          case 'create':
            if (obj) break;
            writeFileSync(at(op.dir, op.name), '');
            m.cur.set(name, { cur: Buffer.alloc(0), dur: Buffer.alloc(0), shrinks: [] });
            break;
          case 'write': {
            if (!obj) break;
            const data = Buffer.alloc(op.len, op.byte);
            put(at(op.dir, op.name), data, { pos: op.off });
            obj.cur = resize(obj.cur, Math.max(obj.cur.length, op.off + op.len));
            data.copy(obj.cur, op.off);
            break;
          }
          case 'trunc':
            if (!obj) break;
            truncateSync(at(op.dir, op.name), op.size);
            if (op.size < obj.cur.length) obj.shrinks.push(op.size);
            obj.cur = resize(obj.cur, op.size);
            break;
          case 'sync':
            if (!obj) break;
            syncFile(at(op.dir, op.name));
            obj.dur = Buffer.from(obj.cur);
            obj.shrinks = [];
            break;
          case 'unlink':
            if (!obj) break;
            unlinkSync(at(op.dir, op.name));
            m.cur.delete(name);
            break;
          case 'rename': {
            if (!obj) break;
            renameSync(at(op.dir, op.name), at(op.dir, op.to));
            m.cur.delete(name);
            m.cur.set(names[op.to]!, obj);
            break;
          }
          case 'syncdir':
            syncDir(join(top, dirs[op.dir]!));
            m.dur = new Map(m.cur);
            break;
        }
      }
      const rel = top.slice(fs.mountpoint.length);
      for (let i = 0; i < dirs.length; i++) {
        const live = readdirSync(join(top, dirs[i]!)).filter((f) => f !== 'sub').sort();
        expect(live).toEqual([...model[i]!.cur.keys()].sort());
        for (const [nm, o] of model[i]!.cur) expect(readFileSync(join(top, dirs[i]!, nm)).equals(o.cur)).toBe(true);
      }
      const drop = join(snaps, `m${n++}`);
      await fs.snapshot(drop, { mode: 'drop', seed });
      const pages = join(snaps, `m${n++}`);
      await fs.snapshot(pages, { mode: 'pages', seed });
      for (let i = 0; i < dirs.length; i++) {
        const want = model[i]!.dur;
        for (const base of [drop, pages]) {
          const got = readdirSync(join(base, rel, dirs[i]!)).filter((f) => f !== 'sub').sort();
          expect(got).toEqual([...want.keys()].sort());
        }
        for (const [nm, o] of want) {
          expect(readFileSync(join(drop, rel, dirs[i]!, nm)).equals(o.dur)).toBe(true);
          const got = readFileSync(join(pages, rel, dirs[i]!, nm));
          // A shrink not yet synced is kept or lost whole: the synced data cut at its size.
          const floors = [o.dur, ...o.shrinks.map((t) => resize(o.dur, Math.min(t, o.dur.length)))];
          expect(got.length).toBeGreaterThanOrEqual(Math.min(...floors.map((b) => b.length)));
          expect(floors.some((b) => b.length === got.length) || got.length <= o.cur.length).toBe(true);
          for (let p = 0; p * PAGE < got.length; p++) {
            const pg = pageOf(got, p, got.length);
            expect(pg.equals(pageOf(o.cur, p, got.length)) || floors.some((b) => pg.equals(pageOf(b, p, got.length)))).toBe(true);
          }
        }
      }
      rmSync(drop, { recursive: true, force: true });
      rmSync(pages, { recursive: true, force: true });
    }

    it('random op sequences: live mount = model, drop = last-fsync state, pages = per-page mix', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opA, { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 1e9 }), runModel),
        { numRuns: Number(process.env['PTPVTS_POWERFS_RUNS'] ?? 60) },
      );
    });
  });
});
