/**
 * The file system calls a cartridge makes, as one replaceable object: production uses
 * Node's fs; tests hand in a facade that fails an fdatasync, shortens a write or refuses a
 * directory fsync, to show what the cartridge does about it.
 */
import { startWriteback } from '../../src/native.js';
import { closeSync, fdatasync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync, unlinkSync, writeSync, writevSync } from 'node:fs';

/**
 * The subset of `node:fs` a cartridge uses. Every synchronous call throws Node's fs error
 * (with `code`, `errno`, `syscall`) on failure; `fdatasync` reports it to its callback.
 * None of them waits for anything but the kernel or can be cancelled.
 */
export interface CartridgeFileIo {
  openSync(path: string, flags: string): number;
  closeSync(fd: number): void;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Returns the bytes written, which may be fewer than asked. */
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Returns the bytes written, which may be fewer than the buffers hold. */
  writevSync(fd: number, buffers: readonly Uint8Array[], position: number): number;
  fstatSize(fd: number): number;
  ftruncateSync(fd: number, length: number): void;
  fsyncSync(fd: number): void;
  fdatasyncSync(fd: number): void;
  /** Runs on the thread pool; the callback gets the error the kernel reported, if any. */
  fdatasync(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  /**
   * Starts writeback of a range on the thread pool (sync_file_range, write only): makes
   * nothing durable, only shortens the next fdatasync. Optional: without it the cartridge
   * starts early writeback with an fdatasync every few MiB instead.
   */
  startWriteback?(fd: number, offset: number, length: number, callback: (err: NodeJS.ErrnoException | null) => void): void;
}

export const nodeFileIo: CartridgeFileIo = {
  openSync: (path, flags) => openSync(path, flags),
  closeSync: (fd) => closeSync(fd),
  readSync: (fd, buffer, offset, length, position) => readSync(fd, buffer, offset, length, position),
  writeSync: (fd, buffer, offset, length, position) => writeSync(fd, buffer, offset, length, position),
  writevSync: (fd, buffers, position) => writevSync(fd, buffers as Uint8Array[], position),
  fstatSize: (fd) => fstatSync(fd).size,
  ftruncateSync: (fd, length) => ftruncateSync(fd, length),
  fsyncSync: (fd) => fsyncSync(fd),
  fdatasyncSync: (fd) => fdatasyncSync(fd),
  fdatasync: (fd, callback) => fdatasync(fd, callback),
  renameSync: (from, to) => renameSync(from, to),
  unlinkSync: (path) => unlinkSync(path),
  // Undefined with an addon built before the call existed: the fdatasync form then.
  startWriteback,
};
