/**
 * The file system the VTS and the JS key journal run on. Production passes nothing and gets
 * {@link nodeFs} (node:fs); a simulation passes its own implementation, which decides when
 * each operation completes and what a power cut keeps (test/sim/prod/sim-fs.ts).
 *
 * Errors: every operation rejects with the OS error as node:fs reports it, a
 * `NodeJS.ErrnoException` whose `code` says what failed (`ENOENT`, `EEXIST`, `ENOSPC`,
 * `EIO`, `EISDIR`, `ENOTDIR`, `EBADF`…). Callers branch on `code` only, never on the message.
 */
import { close, constants, createReadStream, fdatasync, fstat, fsync, ftruncate, open as openFd, read, write } from 'node:fs';
import { copyFile, link, mkdir, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { promisify } from 'node:util';
import { startWriteback } from '../native.js';

/** What the callers read of a stat: sizes, identity and type. */
export interface PlatformStat {
  readonly size: number;
  /** Inode number: two names with the same `ino` (on one file system) are one file. */
  readonly ino: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

/**
 * Open flags, with node:fs meanings: `r` read (a directory may be opened `r` to sync it),
 * `r+` read/write, `w`/`w+` create or truncate, `wx`/`wx+` create and fail with EEXIST when
 * the name exists, `a+` create if missing, read, and append every write at the end.
 */
export type OpenFlags = 'r' | 'r+' | 'w' | 'w+' | 'wx' | 'wx+' | 'a+';

/**
 * An open file (or directory, for {@link PlatformFile.sync}). Reads and writes are positional
 * and may transfer fewer bytes than asked (callers loop: `writeAll` in src/vts/durable.ts).
 *
 * Lifetime: a handle holds its descriptor until {@link close}; nothing closes it behind the
 * owner's back (with {@link nodeFs} it wraps a plain descriptor, not a node:fs FileHandle,
 * which the garbage collector closes once unreferenced: a VTS left open must keep its files).
 * An operation after close rejects with EBADF.
 */
export interface PlatformFile {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  /** fsync: data, size and the file's own metadata are durable. Not its name: sync the directory for that. */
  sync(): Promise<void>;
  /** fdatasync: data and size are durable. */
  datasync(): Promise<void>;
  stat(): Promise<PlatformStat>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional: starts writing bytes [offset, offset + length) of the file to the disk and
   * does not wait for them (sync_file_range with SYNC_FILE_RANGE_WRITE), a head start for
   * the next {@link sync}. It makes nothing durable. Resolves once the writeback was
   * started; rejects with the OS error: EINVAL, ENOSYS, EOPNOTSUPP or ESPIPE where the file
   * system refuses it, EIO when a page could not be written. A file system without it (or
   * node:fs with an addon built before the call) leaves it out.
   */
  startWriteback?(offset: number, length: number): Promise<void>;
}

/** The file operations src/vts and src/hotpath/key-journal-ref.ts use; nothing more. */
export interface PlatformFs {
  open(path: string, flags: OpenFlags): Promise<PlatformFile>;
  readFile(path: string): Promise<Buffer>;
  /** Names in `path` (no `.` or `..`), in no promised order. */
  readdir(path: string): Promise<string[]>;
  /** Atomic replace of `to` (same file system). Durable once both directories are synced. */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /**
   * Makes a directory. Without `recursive`: EEXIST when the name exists, ENOENT when the parent
   * is missing; resolves undefined. With it: makes missing parents too and resolves with the
   * first directory it made, or undefined when `path` already existed.
   */
  mkdir(path: string, options?: { readonly recursive?: boolean }): Promise<string | undefined>;
  stat(path: string): Promise<PlatformStat>;
  /** Copies the content into a new (or truncated) file; with `exclusive`, EEXIST when `to` exists. Not synced. */
  copyFile(from: string, to: string, options?: { readonly exclusive?: boolean }): Promise<void>;
  /** Hard link: a second name for the same file. EEXIST when `to` exists. */
  link(existing: string, to: string): Promise<void>;
  /** The file's bytes in order, in chunks (for hashing a large file without holding it). Iterate once. */
  readStream(path: string): AsyncIterable<Uint8Array>;
}

/** Reads a whole open file from offset 0 (reads until one returns no byte). */
export async function readWholeFile(file: PlatformFile): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const buf = Buffer.alloc(64 * 1024);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await file.read(buf, got, buf.length - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    chunks.push(buf.subarray(0, got));
    pos += got;
    if (got < buf.length) return Buffer.concat(chunks);
  }
}

const openP = promisify(openFd);
const readP = promisify(read);
const writeP = promisify(write);
const fsyncP = promisify(fsync);
const fdatasyncP = promisify(fdatasync);
const fstatP = promisify(fstat);
const ftruncateP = promisify(ftruncate);
const closeP = promisify(close);

/** The error node:fs gives for an operation on a closed descriptor. */
function closedError(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EBADF: bad file descriptor, ${syscall}`), { code: 'EBADF', errno: -osConstants.errno.EBADF, syscall });
}

/** A plain descriptor behind the {@link PlatformFile} shape. */
class NodeFile implements PlatformFile {
  #fd: number;
  constructor(fd: number) {
    this.#fd = fd;
  }
  /** The descriptor, or a rejection when closed (node:fs would throw a RangeError on -1). */
  #with<T>(syscall: string, fn: (fd: number) => Promise<T>): Promise<T> {
    return this.#fd < 0 ? Promise.reject(closedError(syscall)) : fn(this.#fd);
  }
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return this.#with('read', (fd) => readP(fd, buffer, offset, length, position));
  }
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }> {
    return this.#with('write', (fd) => writeP(fd, buffer, offset, length, position));
  }
  sync(): Promise<void> {
    return this.#with('fsync', (fd) => fsyncP(fd));
  }
  datasync(): Promise<void> {
    return this.#with('fdatasync', (fd) => fdatasyncP(fd));
  }
  stat(): Promise<PlatformStat> {
    return this.#with('fstat', (fd) => fstatP(fd));
  }
  truncate(length: number): Promise<void> {
    return this.#with('ftruncate', (fd) => ftruncateP(fd, length));
  }
  /** Undefined with an addon built before the call existed: no ranges then. */
  readonly startWriteback =
    startWriteback === undefined
      ? undefined
      : (offset: number, length: number): Promise<void> =>
          this.#with('sync_file_range', (fd) => new Promise<void>((resolve, reject) => startWriteback!(fd, offset, length, (err) => (err ? reject(err) : resolve()))));
  async close(): Promise<void> {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    await closeP(fd);
  }
}

/** The real file system (node:fs). */
export const nodeFs: PlatformFs = {
  open: async (path, flags) => new NodeFile(await openP(path, flags)),
  readFile: (path) => readFile(path),
  readdir: (path) => readdir(path),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  mkdir: (path, options) => mkdir(path, { recursive: options?.recursive === true }),
  stat: (path) => stat(path),
  copyFile: (from, to, options) => copyFile(from, to, options?.exclusive === true ? constants.COPYFILE_EXCL : 0),
  link: (existing, to) => link(existing, to),
  readStream: (path) => createReadStream(path) as AsyncIterable<Buffer>,
};
