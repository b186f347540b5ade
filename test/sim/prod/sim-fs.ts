/**
 * SimFs: an in-memory {@link PlatformFs} for the deterministic simulation of the production
 * VTS code. One SimFs is one machine's disk: {@link SimFs.powerCut} takes that machine's
 * power away and leaves only what was durable (docs/power-loss.md, "Simulated filesystem").
 *
 * Durability model (stricter than ext4, like powerfs):
 * - file data and size written since the file's last `sync`/`datasync` are not durable;
 * - a name made, removed or changed (open with create, mkdir, rename, unlink, link, copyFile
 *   to a new name) is durable once its directory is opened and synced; a directory's
 *   durable entries are exactly its entries at its last sync. A rename across directories
 *   needs both synced: until then a cut may leave the file under neither name or both;
 * - a file's fsync does not make its name durable; a new directory is lost, with everything
 *   under it, until its parent is synced.
 *
 * Every operation runs when the completion hook calls it (default: in a microtask), not when
 * it is called: the simulation decides the order of concurrent operations, delays them, or
 * holds one for good (a hung disk). An operation's effect and its result happen together. A
 * power cut or a restore starts a new boot: operations of an earlier boot still held, and
 * any call on a handle of an earlier boot, never settle (their process is gone).
 */
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import type { OpenFlags, PlatformFile, PlatformFs, PlatformStat } from '../../../src/platform/fs.js';
import { SeededRandom, type Random } from '../../../src/ptp/random.js';

export type SimFsOpKind = 'open' | 'read' | 'write' | 'sync' | 'datasync' | 'fstat' | 'truncate' | 'close' | 'readFile' | 'readdir' | 'rename' | 'unlink' | 'mkdir' | 'stat' | 'copyFile' | 'link';

/** One operation, as the completion hook sees it. */
export interface SimFsOp {
  /** Increasing per SimFs, from 1. */
  readonly id: number;
  readonly kind: SimFsOpKind;
  /** The path the operation names (for a handle operation: the path it was opened with). */
  readonly path: string;
  /** Second path of rename, link and copyFile. */
  readonly to?: string;
  /** The boot the operation was issued in ({@link SimFs.boot}). */
  readonly boot: number;
}

/**
 * Decides when `op` runs: call `run()` once, now or later, or never (a hung operation).
 * `run` performs the operation and settles its promise; a second call does nothing, and a
 * call after a power cut or restore does nothing and leaves the promise pending.
 */
export type SimFsCompletion = (op: SimFsOp, run: () => void) => void;

/**
 * What a cut keeps of data not yet synced: `drop` nothing (each file as at its last sync);
 * `prefix` per file a seeded number of its unsynced writes and truncates, in order, and the
 * next one torn (a seeded byte prefix of a write survives); `pages` each page whose unsynced
 * content differs kept or lost independently (seeded), a truncate kept or not (seeded).
 * Directory entries not synced are lost in every mode.
 */
export type CutMode = 'drop' | 'prefix' | 'pages';

export interface SimFsOptions {
  /** Source of every random choice (cuts, fault probabilities). Default: SeededRandom(seed). */
  readonly random?: Random;
  /** Seed of the default random source. Default 1. */
  readonly seed?: number;
  /** Default mode of {@link SimFs.powerCut}. Default `drop`. */
  readonly mode?: CutMode;
  /** Completion hook. Default: run in a microtask (issue order). */
  readonly complete?: SimFsCompletion;
  /** Bytes of file data the disk holds; a write past it writes what fits, then fails with ENOSPC. Default unlimited. */
  readonly capacityBytes?: number;
  /** Page size of `pages` mode. Default 4096. */
  readonly pageSize?: number;
}

/** A failure to inject: matching operations fail with `code` and change nothing. */
export interface SimFsFault {
  readonly ops: readonly SimFsOpKind[];
  /** An errno code: `EIO`, `ENOSPC`, `EROFS`… */
  readonly code: string;
  /** Only operations on this path (exact), matching this pattern, or passing this test. Default any. */
  readonly path?: string | RegExp | ((path: string) => boolean);
  /** Fail this many matching operations, then stop. Default: every one until removed. */
  readonly times?: number;
  /** Each matching operation fails with this probability (drawn from the random source). Default 1. */
  readonly probability?: number;
}

/** What a cut did. */
export interface CutReport {
  readonly mode: CutMode;
  /** Files with data not synced at the cut. */
  readonly unsyncedFiles: number;
  /** Unsynced writes and truncates that survived whole / were lost / survived torn (prefix mode). */
  readonly keptWrites: number;
  readonly lostWrites: number;
  readonly tornWrites: number;
  /** Unsynced pages kept / lost (pages mode). */
  readonly keptPages: number;
  readonly lostPages: number;
  /** Directories whose entries were not all durable. */
  readonly revertedDirs: number;
}

/** A durable disk image ({@link SimFs.snapshot}); hard links are one object under two names. */
export type SimFsImageNode = { readonly kind: 'file'; readonly ino: number; readonly data: Uint8Array } | { readonly kind: 'dir'; readonly ino: number; readonly entries: ReadonlyMap<string, SimFsImageNode> };
export interface SimFsImage {
  readonly root: Extract<SimFsImageNode, { kind: 'dir' }>;
}

type Change = { readonly kind: 'write'; readonly at: number; readonly data: Uint8Array } | { readonly kind: 'truncate'; readonly length: number };

class FileNode {
  readonly kind = 'file';
  buf: Buffer;
  size: number;
  /** Content as of the last sync. */
  synced: Uint8Array;
  /** Writes and truncates since the last sync, in order. */
  changes: Change[] = [];
  constructor(
    readonly ino: number,
    content: Uint8Array,
  ) {
    this.buf = Buffer.from(content);
    this.size = content.length;
    this.synced = Uint8Array.from(content);
  }
  content(): Uint8Array {
    return this.buf.subarray(0, this.size);
  }
  /** Sets the size, zero-filling growth. */
  resize(n: number): void {
    if (n > this.buf.length) {
      const b = Buffer.alloc(Math.max(n, this.buf.length * 2, 256));
      this.buf.copy(b, 0, 0, this.size);
      this.buf = b;
    } else if (n > this.size) {
      this.buf.fill(0, this.size, n);
    }
    this.size = n;
  }
  write(at: number, data: Uint8Array): void {
    if (at + data.length > this.size) this.resize(at + data.length);
    this.buf.set(data, at);
    this.changes.push({ kind: 'write', at, data: Uint8Array.from(data) });
  }
  truncate(n: number): void {
    this.resize(n);
    this.changes.push({ kind: 'truncate', length: n });
  }
  sync(): void {
    this.synced = Uint8Array.from(this.content());
    this.changes = [];
  }
}

class DirNode {
  readonly kind = 'dir';
  entries = new Map<string, Node>();
  /** Entries as of the last sync of this directory. */
  durable = new Map<string, Node>();
  constructor(readonly ino: number) {}
}

type Node = FileNode | DirNode;

const MESSAGES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file already exists',
  ENOSPC: 'no space left on device',
  EIO: 'i/o error',
  EISDIR: 'illegal operation on a directory',
  ENOTDIR: 'not a directory',
  EBADF: 'bad file descriptor',
  ENOTEMPTY: 'directory not empty',
  EPERM: 'operation not permitted',
  EINVAL: 'invalid argument',
};

/** An error shaped as node:fs makes them: `code`, `errno`, `syscall`, `path` (and `dest`). */
export function simFsError(code: string, syscall: string, path?: string, dest?: string): NodeJS.ErrnoException {
  const errno = (osConstants.errno as Record<string, number | undefined>)[code];
  const where = path === undefined ? '' : dest === undefined ? ` '${path}'` : ` '${path}' -> '${dest}'`;
  const e: NodeJS.ErrnoException & { dest?: string } = new Error(`${code}: ${MESSAGES[code] ?? 'simulated failure'}, ${syscall}${where}`);
  e.code = code;
  if (errno !== undefined) e.errno = -errno;
  e.syscall = syscall;
  if (path !== undefined) e.path = path;
  if (dest !== undefined) e.dest = dest;
  return e;
}

const FLAGS: Record<OpenFlags, { read: boolean; write: boolean; create: boolean; excl: boolean; trunc: boolean; append: boolean }> = {
  r: { read: true, write: false, create: false, excl: false, trunc: false, append: false },
  'r+': { read: true, write: true, create: false, excl: false, trunc: false, append: false },
  w: { read: false, write: true, create: true, excl: false, trunc: true, append: false },
  'w+': { read: true, write: true, create: true, excl: false, trunc: true, append: false },
  wx: { read: false, write: true, create: true, excl: true, trunc: false, append: false },
  'wx+': { read: true, write: true, create: true, excl: true, trunc: false, append: false },
  'a+': { read: true, write: true, create: true, excl: false, trunc: false, append: true },
};

const statOf = (n: Node): PlatformStat => ({ size: n.kind === 'file' ? n.size : 4096, ino: n.ino, isFile: () => n.kind === 'file', isDirectory: () => n.kind === 'dir' });
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

class SimFile implements PlatformFile {
  #closed = false;
  constructor(
    private readonly fs: SimFs,
    private readonly node: Node,
    readonly path: string,
    private readonly mode: (typeof FLAGS)[OpenFlags],
    readonly boot: number,
  ) {}

  #file(syscall: string, write: boolean): FileNode {
    if (this.#closed) throw simFsError('EBADF', syscall);
    if (write ? !this.mode.write : !this.mode.read && syscall === 'read') throw simFsError('EBADF', syscall);
    if (this.node.kind === 'dir') throw simFsError('EISDIR', syscall);
    return this.node;
  }

  #op<T>(kind: SimFsOpKind, fn: () => T): Promise<T> {
    return this.boot === this.fs.boot ? this.fs.op(kind, this.path, undefined, fn) : never<T>();
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return this.#op('read', () => {
      const f = this.#file('read', false);
      const n = Math.max(0, Math.min(length, f.size - position));
      buffer.set(f.buf.subarray(position, position + n), offset);
      return { bytesRead: n };
    });
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }> {
    return this.#op('write', () => {
      const f = this.#file('write', true);
      const at = this.mode.append ? f.size : position;
      // What fits: overwriting takes no space, growing takes what is free.
      const n = at + length <= f.size ? length : Math.min(length, Math.max(0, f.size + this.fs.free() - at));
      if (n <= 0 && length > 0) throw simFsError('ENOSPC', 'write');
      f.write(at, buffer.subarray(offset, offset + n));
      return { bytesWritten: n };
    });
  }

  sync(): Promise<void> {
    return this.#op('sync', () => this.#sync('fsync'));
  }

  datasync(): Promise<void> {
    return this.#op('datasync', () => this.#sync('fdatasync'));
  }

  #sync(syscall: string): void {
    if (this.#closed) throw simFsError('EBADF', syscall);
    if (this.node.kind === 'dir') this.node.durable = new Map(this.node.entries);
    else this.node.sync();
  }

  stat(): Promise<PlatformStat> {
    return this.#op('fstat', () => {
      if (this.#closed) throw simFsError('EBADF', 'fstat');
      return statOf(this.node);
    });
  }

  truncate(length: number): Promise<void> {
    return this.#op('truncate', () => {
      const f = this.#file('ftruncate', true);
      if (!Number.isInteger(length) || length < 0) throw simFsError('EINVAL', 'ftruncate');
      if (length - f.size > this.fs.free()) throw simFsError('ENOSPC', 'ftruncate');
      f.truncate(length);
    });
  }

  close(): Promise<void> {
    return this.#op('close', () => {
      if (this.#closed) return;
      this.#closed = true;
      this.fs.closed(this);
    });
  }

  /** The node, for capacity accounting of open unlinked files. */
  get target(): Node {
    return this.node;
  }
}

export class SimFs implements PlatformFs {
  #root: DirNode;
  #nextIno = 2;
  #boot = 0;
  #opSeq = 0;
  readonly #random: Random;
  readonly #mode: CutMode;
  readonly #complete: SimFsCompletion;
  readonly #capacity: number;
  readonly #pageSize: number;
  readonly #faults: { fault: SimFsFault; left: number }[] = [];
  readonly #open = new Set<SimFile>();

  constructor(o: SimFsOptions = {}) {
    this.#random = o.random ?? new SeededRandom(o.seed ?? 1);
    this.#mode = o.mode ?? 'drop';
    this.#complete = o.complete ?? ((_op, run) => queueMicrotask(run));
    this.#capacity = o.capacityBytes ?? Number.POSITIVE_INFINITY;
    this.#pageSize = o.pageSize ?? 4096;
    if (!(this.#capacity >= 0)) throw new RangeError(`SimFs: capacityBytes must be a non-negative number (got ${o.capacityBytes})`);
    if (!Number.isInteger(this.#pageSize) || this.#pageSize <= 0) throw new RangeError(`SimFs: pageSize must be a positive integer (got ${o.pageSize})`);
    this.#root = new DirNode(1);
  }

  /** Boots so far: 0 at creation, one more at each power cut and restore. */
  get boot(): number {
    return this.#boot;
  }

  /**
   * The file system as one run of a process sees it: bound to the current boot, so that once
   * the power is cut, whatever the dead process still calls (a path operation as much as one
   * on an open handle) never settles and changes nothing. Give each process run its own view;
   * the SimFs itself always acts in the current boot.
   */
  view(): PlatformFs {
    const boot = this.#boot;
    const live = <T>(call: () => Promise<T>): Promise<T> => (boot === this.#boot ? call() : never<T>());
    return {
      open: (path, flags) => live(() => this.open(path, flags)),
      readFile: (path) => live(() => this.readFile(path)),
      readdir: (path) => live(() => this.readdir(path)),
      rename: (from, to) => live(() => this.rename(from, to)),
      unlink: (path) => live(() => this.unlink(path)),
      mkdir: (path, options) => live(() => this.mkdir(path, options)),
      stat: (path) => live(() => this.stat(path)),
      copyFile: (from, to, options) => live(() => this.copyFile(from, to, options)),
      link: (existing, to) => live(() => this.link(existing, to)),
      readStream: (path) => (boot === this.#boot ? this.readStream(path) : { [Symbol.asyncIterator]: () => ({ next: () => never<IteratorResult<Uint8Array>>() }) }),
    };
  }

  // ------------------------------------------------------------------ machinery

  /** Issues one operation through the completion hook. Internal (SimFile uses it). */
  op<T>(kind: SimFsOpKind, path: string, to: string | undefined, fn: () => T): Promise<T> {
    const op: SimFsOp = { id: ++this.#opSeq, kind, path, boot: this.#boot, ...(to === undefined ? {} : { to }) };
    return new Promise<T>((resolve, reject) => {
      let ran = false;
      this.#complete(op, () => {
        if (ran || op.boot !== this.#boot) return;
        ran = true;
        try {
          this.#injected(op);
          resolve(fn());
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  }

  #injected(op: SimFsOp): void {
    for (let i = 0; i < this.#faults.length; i++) {
      const f = this.#faults[i]!;
      if (!f.fault.ops.includes(op.kind)) continue;
      const p = f.fault.path;
      if (p !== undefined && !(typeof p === 'string' ? op.path === p || op.to === p : p instanceof RegExp ? p.test(op.path) || (op.to !== undefined && p.test(op.to)) : p(op.path) || (op.to !== undefined && p(op.to)))) continue;
      if (f.fault.probability !== undefined && !(this.#random.next() < f.fault.probability)) continue;
      if (--f.left <= 0) this.#faults.splice(i, 1);
      throw simFsError(f.fault.code, op.kind, op.path, op.to);
    }
  }

  /**
   * Makes matching operations fail (checked when an operation runs, before it changes
   * anything). Returns a function that removes the fault. Faults are checked in the order
   * they were added; the first match fails the operation.
   */
  inject(fault: SimFsFault): () => void {
    if (fault.ops.length === 0) throw new RangeError('SimFs.inject: ops must name at least one operation kind');
    if (!/^E[A-Z0-9]+$/.test(fault.code)) throw new RangeError(`SimFs.inject: code must be an errno name such as EIO (got '${fault.code}')`);
    if (fault.times !== undefined && !(Number.isInteger(fault.times) && fault.times > 0)) throw new RangeError(`SimFs.inject: times must be a positive integer (got ${fault.times})`);
    const entry = { fault, left: fault.times ?? Number.POSITIVE_INFINITY };
    this.#faults.push(entry);
    return () => {
      const i = this.#faults.indexOf(entry);
      if (i >= 0) this.#faults.splice(i, 1);
    };
  }

  /** Bytes of file data the disk can still take. Internal. */
  free(): number {
    return this.#capacity === Number.POSITIVE_INFINITY ? this.#capacity : Math.max(0, this.#capacity - this.usedBytes());
  }

  /** Bytes of file data on the disk now (files reachable by a name or held open). */
  usedBytes(): number {
    const seen = new Set<FileNode>();
    const walk = (d: DirNode): void => {
      for (const n of d.entries.values()) {
        if (n.kind === 'dir') walk(n);
        else seen.add(n);
      }
    };
    walk(this.#root);
    for (const h of this.#open) if (h.target.kind === 'file') seen.add(h.target);
    let n = 0;
    for (const f of seen) n += f.size;
    return n;
  }

  /** Forgets a closed handle. Internal. */
  closed(h: SimFile): void {
    this.#open.delete(h);
  }

  #abs(path: string, syscall: string): string {
    if (typeof path !== 'string' || !path.startsWith('/')) throw new TypeError(`SimFs ${syscall}: path must be absolute (got ${JSON.stringify(path)})`);
    const p = posix.normalize(path);
    return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
  }

  #lookup(path: string, syscall: string, dest?: string): Node {
    let n: Node = this.#root;
    for (const part of path.split('/').filter(Boolean)) {
      if (n.kind !== 'dir') throw simFsError('ENOTDIR', syscall, path, dest);
      const next: Node | undefined = n.entries.get(part);
      if (next === undefined) throw simFsError('ENOENT', syscall, path, dest);
      n = next;
    }
    return n;
  }

  #find(path: string, syscall: string): Node | undefined {
    try {
      return this.#lookup(path, syscall);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** The directory holding `path` and the last name. */
  #parent(path: string, syscall: string, dest?: string): { dir: DirNode; name: string } {
    if (path === '/') throw simFsError('EPERM', syscall, path, dest);
    const dir = this.#lookup(posix.dirname(path), syscall, dest);
    if (dir.kind !== 'dir') throw simFsError('ENOTDIR', syscall, path, dest);
    return { dir, name: posix.basename(path) };
  }

  #file(path: string, syscall: string): FileNode {
    const n = this.#lookup(path, syscall);
    if (n.kind === 'dir') throw simFsError('EISDIR', syscall, path);
    return n;
  }

  // ------------------------------------------------------------------ PlatformFs
  // (async: a bad argument rejects, as node:fs/promises does, rather than throwing)

  async open(path: string, flags: OpenFlags): Promise<PlatformFile> {
    const p = this.#abs(path, 'open');
    const mode = FLAGS[flags];
    if (mode === undefined) throw new TypeError(`SimFs open: unsupported flags ${JSON.stringify(flags)}`);
    return this.op('open', p, undefined, () => {
      let n = this.#find(p, 'open');
      if (n !== undefined && mode.excl) throw simFsError('EEXIST', 'open', p);
      if (n === undefined) {
        if (!mode.create) throw simFsError('ENOENT', 'open', p);
        const { dir, name } = this.#parent(p, 'open');
        n = new FileNode(this.#nextIno++, new Uint8Array(0));
        dir.entries.set(name, n);
      } else if (n.kind === 'dir' && mode.write) {
        throw simFsError('EISDIR', 'open', p);
      } else if (n.kind === 'file' && mode.trunc && n.size > 0) {
        n.truncate(0);
      }
      const h = new SimFile(this, n, p, mode, this.#boot);
      this.#open.add(h);
      return h;
    });
  }

  async readFile(path: string): Promise<Buffer> {
    const p = this.#abs(path, 'readFile');
    return this.op('readFile', p, undefined, () => Buffer.from(this.#file(p, 'open').content()));
  }

  async readdir(path: string): Promise<string[]> {
    const p = this.#abs(path, 'readdir');
    return this.op('readdir', p, undefined, () => {
      const n = this.#lookup(p, 'scandir');
      if (n.kind !== 'dir') throw simFsError('ENOTDIR', 'scandir', p);
      return [...n.entries.keys()];
    });
  }

  async rename(from: string, to: string): Promise<void> {
    const a = this.#abs(from, 'rename');
    const b = this.#abs(to, 'rename');
    return this.op('rename', a, b, () => {
      const src = this.#parent(a, 'rename', b);
      const n = src.dir.entries.get(src.name);
      if (n === undefined) throw simFsError('ENOENT', 'rename', a, b);
      const dst = this.#parent(b, 'rename', b);
      const old = dst.dir.entries.get(dst.name);
      if (old === n) return;
      if (n.kind === 'dir' && (b + '/').startsWith(a + '/')) throw simFsError('EINVAL', 'rename', a, b);
      if (old !== undefined) {
        if (old.kind === 'dir' && n.kind === 'file') throw simFsError('EISDIR', 'rename', a, b);
        if (old.kind === 'file' && n.kind === 'dir') throw simFsError('ENOTDIR', 'rename', a, b);
        if (old.kind === 'dir' && old.entries.size > 0) throw simFsError('ENOTEMPTY', 'rename', a, b);
      }
      src.dir.entries.delete(src.name);
      dst.dir.entries.set(dst.name, n);
    });
  }

  async unlink(path: string): Promise<void> {
    const p = this.#abs(path, 'unlink');
    return this.op('unlink', p, undefined, () => {
      const { dir, name } = this.#parent(p, 'unlink');
      const n = dir.entries.get(name);
      if (n === undefined) throw simFsError('ENOENT', 'unlink', p);
      if (n.kind === 'dir') throw simFsError('EISDIR', 'unlink', p);
      dir.entries.delete(name);
    });
  }

  async mkdir(path: string, options?: { readonly recursive?: boolean }): Promise<string | undefined> {
    const p = this.#abs(path, 'mkdir');
    return this.op('mkdir', p, undefined, () => {
      if (options?.recursive !== true) {
        if (this.#find(p, 'mkdir') !== undefined) throw simFsError('EEXIST', 'mkdir', p);
        const { dir, name } = this.#parent(p, 'mkdir');
        dir.entries.set(name, new DirNode(this.#nextIno++));
        return undefined;
      }
      let d: DirNode = this.#root;
      let first: string | undefined;
      let at = '';
      const parts = p.split('/').filter(Boolean);
      for (const [i, part] of parts.entries()) {
        at += '/' + part;
        const n = d.entries.get(part);
        if (n === undefined) {
          const made = new DirNode(this.#nextIno++);
          d.entries.set(part, made);
          first ??= at;
          d = made;
        } else if (n.kind === 'dir') {
          d = n;
        } else {
          throw simFsError(i === parts.length - 1 ? 'EEXIST' : 'ENOTDIR', 'mkdir', p);
        }
      }
      return first;
    });
  }

  async stat(path: string): Promise<PlatformStat> {
    const p = this.#abs(path, 'stat');
    return this.op('stat', p, undefined, () => statOf(this.#lookup(p, 'stat')));
  }

  async copyFile(from: string, to: string, options?: { readonly exclusive?: boolean }): Promise<void> {
    const a = this.#abs(from, 'copyfile');
    const b = this.#abs(to, 'copyfile');
    return this.op('copyFile', a, b, () => {
      const src = this.#lookup(a, 'copyfile', b);
      if (src.kind === 'dir') throw simFsError('EISDIR', 'copyfile', a, b);
      const data = Uint8Array.from(src.content());
      const { dir, name } = this.#parent(b, 'copyfile', b);
      const old = dir.entries.get(name);
      if (old !== undefined && options?.exclusive === true) throw simFsError('EEXIST', 'copyfile', a, b);
      if (old?.kind === 'dir') throw simFsError('EISDIR', 'copyfile', a, b);
      const dest = old ?? new FileNode(this.#nextIno++, new Uint8Array(0));
      if (data.length - dest.size > this.free()) throw simFsError('ENOSPC', 'copyfile', a, b);
      if (dest.size > 0) dest.truncate(0);
      if (data.length > 0) dest.write(0, data);
      if (old === undefined) dir.entries.set(name, dest);
    });
  }

  async link(existing: string, to: string): Promise<void> {
    const a = this.#abs(existing, 'link');
    const b = this.#abs(to, 'link');
    return this.op('link', a, b, () => {
      const n = this.#lookup(a, 'link', b);
      if (n.kind === 'dir') throw simFsError('EPERM', 'link', a, b);
      const { dir, name } = this.#parent(b, 'link', b);
      if (dir.entries.has(name)) throw simFsError('EEXIST', 'link', a, b);
      dir.entries.set(name, n);
    });
  }

  async *readStream(path: string): AsyncGenerator<Uint8Array> {
    const h = await this.open(path, 'r');
    try {
      let pos = 0;
      for (;;) {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await h.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) return;
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await h.close();
    }
  }

  // ------------------------------------------------------------------ power, images, inspection

  /**
   * Cuts the power: the disk keeps what was durable (and, by `mode`, some of what was not);
   * a new boot starts. Operations held by the completion hook, and open handles, are of the
   * old boot: they never settle. Open the production objects again to go on.
   */
  powerCut(o: { readonly mode?: CutMode } = {}): CutReport {
    const mode = o.mode ?? this.#mode;
    const r = { mode, unsyncedFiles: 0, keptWrites: 0, lostWrites: 0, tornWrites: 0, keptPages: 0, lostPages: 0, revertedDirs: 0 };
    const pick = (f: FileNode): Uint8Array => {
      if (f.changes.length === 0) return f.synced;
      r.unsyncedFiles++;
      if (mode === 'drop') {
        r.lostWrites += f.changes.length;
        return f.synced;
      }
      if (mode === 'prefix') return this.#prefix(f, r);
      return this.#pages(f, r);
    };
    this.#root = this.#rebuild(this.#root, pick, r);
    this.#newBoot();
    return r;
  }

  #prefix(f: FileNode, r: { keptWrites: number; lostWrites: number; tornWrites: number }): Uint8Array {
    const n = f.changes.length;
    const k = this.#random.int(n + 1);
    const out = new FileNode(0, f.synced);
    for (let i = 0; i < k; i++) applyChange(out, f.changes[i]!);
    r.keptWrites += k;
    const next = f.changes[k];
    if (next?.kind === 'write' && next.data.length > 1) {
      const keep = this.#random.int(next.data.length);
      if (keep > 0) {
        applyChange(out, { kind: 'write', at: next.at, data: next.data.subarray(0, keep) });
        r.tornWrites++;
        r.lostWrites += n - k - 1;
        return Uint8Array.from(out.content());
      }
    }
    r.lostWrites += n - k;
    return Uint8Array.from(out.content());
  }

  #pages(f: FileNode, r: { keptPages: number; lostPages: number; keptWrites: number; lostWrites: number }): Uint8Array {
    const cur = f.content();
    const old = f.synced;
    const ps = this.#pageSize;
    let size = old.length;
    if (cur.length < old.length) {
      if (this.#random.next() < 0.5) {
        size = cur.length;
        r.keptWrites++;
      } else r.lostWrites++;
    }
    const out = Buffer.alloc(Math.max(old.length, cur.length));
    out.set(old.subarray(0, Math.min(size, old.length)));
    for (let at = 0; at < Math.max(old.length, cur.length); at += ps) {
      const c = cur.subarray(Math.min(at, cur.length), Math.min(at + ps, cur.length));
      const s = old.subarray(Math.min(at, old.length), Math.min(at + ps, old.length));
      if (Buffer.compare(c, s) === 0) continue;
      if (this.#random.next() < 0.5) {
        r.keptPages++;
        out.fill(0, at, Math.min(at + ps, out.length));
        out.set(c, at);
        if (c.length > 0) size = Math.max(size, at + c.length);
      } else {
        r.lostPages++;
      }
    }
    return Uint8Array.from(out.subarray(0, size));
  }

  /** A new tree holding the durable entries of `root`, each file with `pick(file)` as its content. */
  #rebuild(root: DirNode, pick: (f: FileNode) => Uint8Array, r?: { revertedDirs: number }): DirNode {
    const made = new Map<Node, Node>();
    const copy = (n: Node): Node => {
      const had = made.get(n);
      if (had !== undefined) return had;
      if (n.kind === 'file') {
        const f = new FileNode(n.ino, pick(n));
        made.set(n, f);
        return f;
      }
      const d = new DirNode(n.ino);
      made.set(n, d);
      if (r !== undefined && !sameEntries(n.entries, n.durable)) r.revertedDirs++;
      for (const [name, c] of n.durable) d.entries.set(name, copy(c));
      d.durable = new Map(d.entries);
      return d;
    };
    return copy(root) as DirNode;
  }

  #newBoot(): void {
    this.#boot++;
    this.#open.clear();
  }

  /** The durable state now (what a `drop` cut would leave), as an image to {@link restore} later. */
  snapshot(): SimFsImage {
    const made = new Map<Node, SimFsImageNode>();
    const copy = (n: Node): SimFsImageNode => {
      const had = made.get(n);
      if (had !== undefined) return had;
      if (n.kind === 'file') {
        const f = { kind: 'file' as const, ino: n.ino, data: Uint8Array.from(n.synced) };
        made.set(n, f);
        return f;
      }
      const entries = new Map<string, SimFsImageNode>();
      const d = { kind: 'dir' as const, ino: n.ino, entries };
      made.set(n, d);
      for (const [name, c] of n.durable) entries.set(name, copy(c));
      return d;
    };
    return { root: copy(this.#root) as SimFsImage['root'] };
  }

  /**
   * Replaces the whole disk with `image` (a VTS restored from an older backup), as after a
   * power cut: a new boot starts and everything of the old one is gone.
   */
  restore(image: SimFsImage): void {
    const made = new Map<SimFsImageNode, Node>();
    const copy = (n: SimFsImageNode): Node => {
      const had = made.get(n);
      if (had !== undefined) return had;
      this.#nextIno = Math.max(this.#nextIno, n.ino + 1);
      if (n.kind === 'file') {
        const f = new FileNode(n.ino, n.data);
        made.set(n, f);
        return f;
      }
      const d = new DirNode(n.ino);
      made.set(n, d);
      for (const [name, c] of n.entries) d.entries.set(name, copy(c));
      d.durable = new Map(d.entries);
      return d;
    };
    if (image?.root?.kind !== 'dir') throw new TypeError('SimFs.restore: not a SimFs image (its root must be a directory)');
    this.#root = copy(image.root) as DirNode;
    this.#newBoot();
  }

  /** Every file now, path to content (inspection for tests; not an operation, not scheduled). */
  files(): Map<string, Uint8Array> {
    return listFiles(this.#root, (d) => d.entries, (f) => Uint8Array.from(f.content()));
  }

  /** Every file a `drop` cut would leave now, path to content. */
  durableFiles(): Map<string, Uint8Array> {
    return listFiles(this.#root, (d) => d.durable, (f) => Uint8Array.from(f.synced));
  }
}

function applyChange(f: FileNode, c: Change): void {
  if (c.kind === 'write') f.write(c.at, c.data);
  else f.truncate(c.length);
}

function sameEntries(a: ReadonlyMap<string, Node>, b: ReadonlyMap<string, Node>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function listFiles(root: DirNode, entries: (d: DirNode) => ReadonlyMap<string, Node>, content: (f: FileNode) => Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (d: DirNode, at: string): void => {
    for (const [name, n] of entries(d)) {
      const p = `${at}/${name}`;
      if (n.kind === 'dir') walk(n, p);
      else out.set(p, content(n));
    }
  };
  walk(root, '');
  return out;
}
