/** SimFs: what a power cut keeps, images, injected failures, and the completion hook. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeAll } from '../../../src/vts/durable.js';
import { SimFs, type CutMode, type SimFsOp } from './sim-fs.js';

const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString());
const bytes = (s: string): Buffer => Buffer.from(s);

async function put(fs: SimFs, path: string, data: string, o: { sync?: boolean; flags?: 'w' | 'wx' | 'r+'; at?: number } = {}): Promise<void> {
  const h = await fs.open(path, o.flags ?? 'w');
  await writeAll(h, bytes(data), o.at ?? 0, path);
  if (o.sync) await h.datasync();
  await h.close();
}

async function syncDir(fs: SimFs, dir: string): Promise<void> {
  const h = await fs.open(dir, 'r');
  await h.sync();
  await h.close();
}

/** A directory /d made durable, for the tests that start from one. */
async function withDir(o: ConstructorParameters<typeof SimFs>[0] = {}): Promise<SimFs> {
  const fs = new SimFs(o);
  await fs.mkdir('/d');
  await syncDir(fs, '/');
  return fs;
}

describe('what a power cut keeps (drop mode)', () => {
  it('keeps data synced by datasync or sync, loses data written after it, size included', async () => {
    const fs = await withDir();
    await put(fs, '/d/f', 'hello', { sync: true });
    await syncDir(fs, '/d');
    const h = await fs.open('/d/f', 'r+');
    await writeAll(h, bytes(' world'), 5, '/d/f');
    expect(text(fs.files().get('/d/f'))).toBe('hello world');
    const r = fs.powerCut();
    expect(text(fs.files().get('/d/f'))).toBe('hello');
    expect(r).toMatchObject({ mode: 'drop', unsyncedFiles: 1, lostWrites: 1 });
  });

  it('a new file synced but its directory not is gone; with the directory synced it stays', async () => {
    const fs = await withDir();
    await put(fs, '/d/lost', 'x', { sync: true });
    await put(fs, '/d/kept', 'y', { sync: true });
    await syncDir(fs, '/d');
    await put(fs, '/d/late', 'z', { sync: true });
    fs.powerCut();
    expect([...fs.files().keys()]).toEqual(['/d/lost', '/d/kept']);
    expect(text(fs.files().get('/d/kept'))).toBe('y');
  });

  it('a file named durably but never synced comes back empty', async () => {
    const fs = await withDir();
    await put(fs, '/d/f', 'data');
    await syncDir(fs, '/d');
    fs.powerCut();
    expect(text(fs.files().get('/d/f'))).toBe('');
  });

  it('an unsynced rename comes undone (the replaced file is back); a synced one holds', async () => {
    const fs = await withDir();
    await put(fs, '/d/a', 'old', { sync: true });
    await put(fs, '/d/a.tmp', 'new', { sync: true });
    await syncDir(fs, '/d');
    await fs.rename('/d/a.tmp', '/d/a');
    expect(text(fs.files().get('/d/a'))).toBe('new');
    fs.powerCut();
    expect(text(fs.files().get('/d/a'))).toBe('old');
    expect(text(fs.files().get('/d/a.tmp'))).toBe('new');
    await fs.rename('/d/a.tmp', '/d/a');
    await syncDir(fs, '/d');
    fs.powerCut();
    expect([...fs.files()].map(([p, b]) => [p, text(b)])).toEqual([['/d/a', 'new']]);
  });

  it('an unsynced unlink comes undone with the synced data', async () => {
    const fs = await withDir();
    await put(fs, '/d/f', 'v1', { sync: true });
    await syncDir(fs, '/d');
    const h = await fs.open('/d/f', 'r+');
    await writeAll(h, bytes('v2'), 0, '/d/f');
    await fs.unlink('/d/f');
    expect(fs.files().has('/d/f')).toBe(false);
    fs.powerCut();
    expect(text(fs.files().get('/d/f'))).toBe('v1');
  });

  it('a new directory is lost with everything under it until its parent is synced', async () => {
    const fs = new SimFs();
    expect(await fs.mkdir('/a/b/c', { recursive: true })).toBe('/a');
    await put(fs, '/a/b/c/f', 'x', { sync: true });
    await syncDir(fs, '/a/b/c');
    await syncDir(fs, '/a/b');
    await syncDir(fs, '/a');
    fs.powerCut();
    expect(fs.files().size).toBe(0);
    await expect(fs.stat('/a')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await fs.mkdir('/a/b/c', { recursive: true })).toBe('/a');
    expect(await fs.mkdir('/a/b/c', { recursive: true })).toBeUndefined();
    await put(fs, '/a/b/c/f', 'x', { sync: true });
    for (const d of ['/a/b/c', '/a/b', '/a', '/']) await syncDir(fs, d);
    fs.powerCut();
    expect(text(fs.files().get('/a/b/c/f'))).toBe('x');
  });

  it('a hard link is one file under two names; the link is durable with its directory', async () => {
    const fs = await withDir();
    await put(fs, '/d/f', 'one', { sync: true });
    await syncDir(fs, '/d');
    await fs.link('/d/f', '/d/g');
    expect((await fs.stat('/d/f')).ino).toBe((await fs.stat('/d/g')).ino);
    await expect(fs.link('/d/f', '/d/g')).rejects.toMatchObject({ code: 'EEXIST' });
    fs.powerCut();
    expect(fs.files().has('/d/g')).toBe(false);
    await fs.link('/d/f', '/d/g');
    await syncDir(fs, '/d');
    fs.powerCut();
    const ino = (await fs.stat('/d/f')).ino;
    expect((await fs.stat('/d/g')).ino, 'still one file after the cut').toBe(ino);
    await put(fs, '/d/g', 'two', { flags: 'r+' });
    expect(text(fs.files().get('/d/f'))).toBe('two');
  });
});

describe('torn and partial writes (prefix and pages modes)', () => {
  it('prefix mode keeps, per file, synced data plus a seeded prefix of the unsynced writes, the next one torn', async () => {
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 60; seed++) {
      const fs = await withDir({ seed, mode: 'prefix' });
      await put(fs, '/d/j', 'AAAA', { sync: true });
      await syncDir(fs, '/d');
      const h = await fs.open('/d/j', 'r+');
      await writeAll(h, bytes('BBBB'), 4, '/d/j');
      await writeAll(h, bytes('CCCC'), 8, '/d/j');
      fs.powerCut();
      const got = text(fs.files().get('/d/j'))!;
      expect('AAAABBBBCCCC'.startsWith(got), `seed ${seed}: ${got}`).toBe(true);
      expect(got.length).toBeGreaterThanOrEqual(4);
      outcomes.add(got);
    }
    // Whole writes kept, none kept, and torn ones (a length not on a write boundary) all occur.
    expect(outcomes).toContain('AAAA');
    expect(outcomes).toContain('AAAABBBBCCCC');
    expect([...outcomes].some((o) => o.length % 4 !== 0)).toBe(true);
  });

  it('pages mode keeps or loses each unsynced page on its own; synced pages never change', async () => {
    const seen = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      const fs = await withDir({ seed, mode: 'pages', pageSize: 4 });
      await put(fs, '/d/p', 'aaaabbbbcccc', { sync: true });
      await syncDir(fs, '/d');
      await put(fs, '/d/p', 'AAAA', { flags: 'r+', at: 0 });
      await put(fs, '/d/p', 'CCCC', { flags: 'r+', at: 8 });
      fs.powerCut();
      const got = text(fs.files().get('/d/p'))!;
      expect(got).toMatch(/^(aaaa|AAAA)bbbb(cccc|CCCC)$/);
      seen.add(got);
    }
    expect(seen.size).toBe(4);
  });

  it('the same seed makes the same cut', async () => {
    const run = async (): Promise<string> => {
      const fs = await withDir({ seed: 7, mode: 'prefix' });
      await put(fs, '/d/x', 'synced', { sync: true });
      await syncDir(fs, '/d');
      await put(fs, '/d/x', '0123456789abcdef', { flags: 'r+' });
      fs.powerCut();
      return text(fs.files().get('/d/x'))!;
    };
    expect(await run()).toBe(await run());
  });
});

describe('images', () => {
  it('restore puts back an older durable image; handles of the old boot never settle', async () => {
    const fs = await withDir();
    await put(fs, '/d/state', 'seq 1', { sync: true });
    await syncDir(fs, '/d');
    const old = fs.snapshot();
    await put(fs, '/d/state', 'seq 2', { sync: true });
    const h = await fs.open('/d/state', 'r');
    fs.restore(old);
    expect(fs.boot).toBe(1);
    expect(text(fs.files().get('/d/state'))).toBe('seq 1');
    let settled = false;
    void h.read(Buffer.alloc(5), 0, 5, 0).then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 5));
    expect(settled).toBe(false);
    // The image is a copy: later writes do not reach it.
    await put(fs, '/d/state', 'seq 3', { sync: true });
    fs.restore(old);
    expect(text(fs.files().get('/d/state'))).toBe('seq 1');
  });

  it('refuses to restore what is not an image', () => {
    expect(() => new SimFs().restore({} as never)).toThrow(/not a SimFs image/);
  });
});

describe('injected failures and a full disk', () => {
  it('fails matching operations with the code, changing nothing, for `times` operations', async () => {
    const fs = await withDir();
    await put(fs, '/d/f', 'ok', { sync: true });
    await syncDir(fs, '/d');
    const remove = fs.inject({ ops: ['write'], code: 'ENOSPC', path: '/d/f', times: 1 });
    const h = await fs.open('/d/f', 'r+');
    await expect(h.write(bytes('zz'), 0, 2, 0)).rejects.toMatchObject({ code: 'ENOSPC', syscall: 'write', path: '/d/f' });
    expect(text(fs.files().get('/d/f'))).toBe('ok');
    await h.write(bytes('zz'), 0, 2, 0);
    remove();
    fs.inject({ ops: ['datasync'], code: 'EIO', path: /\/d\// });
    await expect(h.datasync()).rejects.toMatchObject({ code: 'EIO' });
    fs.powerCut();
    expect(text(fs.files().get('/d/f')), 'a failed datasync made nothing durable').toBe('ok');
  });

  it('a disk of fixed capacity takes what fits, then ENOSPC; freed space is usable again', async () => {
    const fs = await withDir({ capacityBytes: 10 });
    const h = await fs.open('/d/f', 'w');
    expect(await h.write(bytes('0123456789abc'), 0, 13, 0)).toEqual({ bytesWritten: 10 });
    await expect(h.write(bytes('x'), 0, 1, 10)).rejects.toMatchObject({ code: 'ENOSPC' });
    await expect(writeAll(h, bytes('abcdefghijkl'), 0, '/d/f')).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(await h.write(bytes('ABCDEFGHIJ'), 0, 10, 0)).toEqual({ bytesWritten: 10 });
    await h.truncate(4);
    await h.close();
    await put(fs, '/d/g', '1234');
    await expect(fs.copyFile('/d/g', '/d/h')).rejects.toMatchObject({ code: 'ENOSPC' });
    await fs.unlink('/d/f');
    await fs.copyFile('/d/g', '/d/h');
    expect(fs.usedBytes()).toBe(8);
  });

  it('refuses a fault that names nothing or no errno', () => {
    const fs = new SimFs();
    expect(() => fs.inject({ ops: [], code: 'EIO' })).toThrow(/ops/);
    expect(() => fs.inject({ ops: ['write'], code: 'disk full' })).toThrow(/errno/);
  });
});

describe('errors as node:fs gives them', () => {
  it('carries code, syscall and path', async () => {
    const fs = await withDir();
    await expect(fs.open('/d/none', 'r')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open', path: '/d/none' });
    await expect(fs.readFile('/d/none')).rejects.toMatchObject({ code: 'ENOENT' });
    await put(fs, '/d/f', 'x');
    await expect(fs.open('/d/f', 'wx')).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(fs.open('/d', 'r+')).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(fs.unlink('/d')).rejects.toMatchObject({ code: 'EISDIR' });
    await expect(fs.mkdir('/d')).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(fs.mkdir('/d/f/g', { recursive: true })).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(fs.readdir('/d/f')).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(fs.rename('/d/none', '/d/x')).rejects.toMatchObject({ code: 'ENOENT', dest: '/d/x' });
    await expect(fs.copyFile('/d/f', '/d/f2', { exclusive: true })).resolves.toBeUndefined();
    await expect(fs.copyFile('/d/f', '/d/f2', { exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' });
    const h = await fs.open('/d/f', 'r');
    await expect(h.write(bytes('y'), 0, 1, 0)).rejects.toMatchObject({ code: 'EBADF' });
    await h.close();
    await expect(h.read(Buffer.alloc(1), 0, 1, 0)).rejects.toMatchObject({ code: 'EBADF' });
    await expect(fs.open('relative/path', 'r')).rejects.toThrow(/must be absolute/);
    expect(() => new SimFs({ capacityBytes: -1 })).toThrow(/capacityBytes/);
  });

  it('appends at the end with a+ and streams a file in order', async () => {
    const fs = await withDir();
    await put(fs, '/d/a', 'head');
    const h = await fs.open('/d/a', 'a+');
    await h.write(bytes('-tail'), 0, 5, 0);
    await h.close();
    const big = Buffer.alloc(200_000, 7);
    await put(fs, '/d/big', big.toString('latin1'));
    const chunks: Uint8Array[] = [];
    for await (const c of fs.readStream('/d/big')) chunks.push(c);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(big)).toBe(true);
    expect(text(await fs.readFile('/d/a'))).toBe('head-tail');
    expect(await fs.readdir('/d')).toEqual(['a', 'big']);
  });
});

describe('the completion hook', () => {
  it('lets the caller reorder, hold and release operations; held ones of a dead boot never run', async () => {
    const held: { op: SimFsOp; run: () => void }[] = [];
    const fs = new SimFs({ complete: (op, run) => held.push({ op, run }) });
    const drain = async (): Promise<void> => {
      while (held.length) {
        // Last issued runs first: the reverse of issue order.
        held.pop()!.run();
        await new Promise((r) => setImmediate(r));
      }
    };
    const made = fs.mkdir('/d');
    await drain();
    await made;
    const a = fs.open('/d/a', 'w');
    const b = fs.open('/d/b', 'w');
    expect(held.map((h) => h.op.kind)).toEqual(['open', 'open']);
    await drain();
    await Promise.all([a, b]);
    expect(await (async () => {
      const p = fs.readdir('/d');
      await drain();
      return p;
    })()).toEqual(['b', 'a']);
    // A hung write: never released before the cut, so it never happens and never settles.
    const h = await a;
    let settled = false;
    void h.write(bytes('lost'), 0, 4, 0).finally(() => (settled = true));
    const hung = held.pop()!;
    expect(hung.op).toMatchObject({ kind: 'write', path: '/d/a', boot: 0 });
    fs.powerCut();
    hung.run();
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    expect(fs.files().size).toBe(0);
  });
});

// ------------------------------------------------------------------ property: SimFs against a model of durable state

type Cmd =
  | { k: 'write'; f: number; at: number; data: string }
  | { k: 'create'; f: number }
  | { k: 'sync'; f: number }
  | { k: 'truncate'; f: number; n: number }
  | { k: 'rename'; f: number; g: number }
  | { k: 'unlink'; f: number }
  | { k: 'link'; f: number; g: number }
  | { k: 'syncDir' }
  | { k: 'cut'; mode: CutMode };

const NAMES = ['a', 'b', 'c', 'd'];
const file = fc.integer({ min: 0, max: NAMES.length - 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ k: fc.constant('write' as const), f: file, at: fc.integer({ min: 0, max: 12 }), data: fc.string({ minLength: 1, maxLength: 8 }) }),
  fc.record({ k: fc.constant('create' as const), f: file }),
  fc.record({ k: fc.constant('sync' as const), f: file }),
  fc.record({ k: fc.constant('truncate' as const), f: file, n: fc.integer({ min: 0, max: 16 }) }),
  fc.record({ k: fc.constant('rename' as const), f: file, g: file }),
  fc.record({ k: fc.constant('unlink' as const), f: file }),
  fc.record({ k: fc.constant('link' as const), f: file, g: file }),
  fc.record({ k: fc.constant('syncDir' as const) }),
  fc.record({ k: fc.constant('cut' as const), mode: fc.constantFrom<CutMode>('drop', 'prefix', 'pages') }),
);

/**
 * The model: one directory; names point at inode numbers; each inode has its current and its
 * synced content; the directory has its current and its synced entries. A drop cut keeps the
 * synced entries, each with its synced content. Prefix and pages cuts may keep more of the
 * data, so after one the model takes the file system's content for the inodes that had
 * unsynced data, and checks only that their synced ones were untouched and names are exact.
 */
class Model {
  names = new Map<string, number>();
  syncedNames = new Map<string, number>();
  data = new Map<number, Buffer>();
  synced = new Map<number, Buffer>();
  next = 1;
  view(): Map<string, string> {
    return new Map([...this.names].map(([n, i]) => [`/d/${n}`, this.data.get(i)!.toString('latin1')]));
  }
}

const latin = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array(0)).toString('latin1');

async function step(fs: SimFs, m: Model, c: Cmd): Promise<void> {
  const name = (i: number): string => NAMES[i]!;
  const path = (i: number): string => `/d/${name(i)}`;
  switch (c.k) {
    case 'create': {
      if (m.names.has(name(c.f))) return;
      await (await fs.open(path(c.f), 'wx')).close();
      const ino = m.next++;
      m.names.set(name(c.f), ino);
      m.data.set(ino, Buffer.alloc(0));
      m.synced.set(ino, Buffer.alloc(0));
      return;
    }
    case 'write': {
      const ino = m.names.get(name(c.f));
      if (ino === undefined) return;
      const b = Buffer.from(c.data, 'latin1');
      const h = await fs.open(path(c.f), 'r+');
      await writeAll(h, b, c.at, path(c.f));
      await h.close();
      const cur = m.data.get(ino)!;
      const out = Buffer.alloc(Math.max(cur.length, c.at + b.length));
      cur.copy(out);
      b.copy(out, c.at);
      m.data.set(ino, out);
      return;
    }
    case 'truncate': {
      const ino = m.names.get(name(c.f));
      if (ino === undefined) return;
      const h = await fs.open(path(c.f), 'r+');
      await h.truncate(c.n);
      await h.close();
      const cur = m.data.get(ino)!;
      const out = Buffer.alloc(c.n);
      cur.copy(out, 0, 0, Math.min(c.n, cur.length));
      m.data.set(ino, out);
      return;
    }
    case 'sync': {
      const ino = m.names.get(name(c.f));
      if (ino === undefined) return;
      const h = await fs.open(path(c.f), 'r');
      await h.sync();
      await h.close();
      m.synced.set(ino, Buffer.from(m.data.get(ino)!));
      return;
    }
    case 'rename': {
      const ino = m.names.get(name(c.f));
      if (ino === undefined) return;
      await fs.rename(path(c.f), path(c.g));
      if (c.f !== c.g && m.names.get(name(c.g)) !== ino) {
        m.names.delete(name(c.f));
        m.names.set(name(c.g), ino);
      }
      return;
    }
    case 'unlink': {
      if (!m.names.has(name(c.f))) return;
      await fs.unlink(path(c.f));
      m.names.delete(name(c.f));
      return;
    }
    case 'link': {
      const ino = m.names.get(name(c.f));
      if (ino === undefined || m.names.has(name(c.g))) return;
      await fs.link(path(c.f), path(c.g));
      m.names.set(name(c.g), ino);
      return;
    }
    case 'syncDir':
      await syncDir(fs, '/d');
      m.syncedNames = new Map(m.names);
      return;
    case 'cut': {
      const unsynced = new Set([...m.data.keys()].filter((i) => !m.data.get(i)!.equals(m.synced.get(i)!)));
      fs.powerCut({ mode: c.mode });
      m.names = new Map(m.syncedNames);
      const got = fs.files();
      expect([...got.keys()].sort()).toEqual([...m.names.keys()].map((n) => `/d/${n}`).sort());
      for (const [n, ino] of m.names) {
        const now = Buffer.from(got.get(`/d/${n}`)!);
        if (c.mode === 'drop' || !unsynced.has(ino)) expect(latin(now), `${n} after a ${c.mode} cut`).toBe(latin(m.synced.get(ino)));
        m.data.set(ino, now);
        m.synced.set(ino, Buffer.from(now));
      }
      return;
    }
  }
}

describe('property: SimFs against a model of durable state', () => {
  it('the current view and what every cut keeps match the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { maxLength: 40 }), fc.integer({ min: 1, max: 1 << 30 }), async (cmds, seed) => {
        const fs = await withDir({ seed });
        const m = new Model();
        for (const c of cmds) {
          await step(fs, m, c);
          const view = new Map([...fs.files()].map(([p, b]) => [p, latin(b)]));
          expect(view).toEqual(m.view());
        }
        // A final drop cut: exactly the synced names with their synced data.
        await step(fs, m, { k: 'cut', mode: 'drop' });
      }),
      { numRuns: 300 },
    );
  });
});
