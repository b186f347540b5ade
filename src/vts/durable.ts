/**
 * Durable small files: write to a temporary name, fsync it, rename over the old one and
 * fsync the directory, so that after a crash a reader finds either the old or the new
 * content, never a torn one. Also the pieces every durable writer of the VTS shares: a
 * write that never stops short, a directory made durably, and one-at-a-time writes per key.
 * Each function takes the file system last (default node:fs), so a simulation can run them
 * over one that loses what was not synced.
 */
import { randomBytes } from 'node:crypto';
import { writebackUnsupported } from '../native.js';
import { nodeFs, type PlatformFile, type PlatformFs } from '../platform/fs.js';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { z } from 'zod';
import { StateFileError } from './errors.js';

/** A write stopped making progress (the device wrote nothing of what was left). */
export class ShortWriteError extends Error {
  override readonly name = 'ShortWriteError';
  readonly code = 'ESHORTWRITE';
  constructor(
    readonly what: string,
    readonly written: number,
    readonly wanted: number,
    options?: { cause?: unknown },
  ) {
    super(`${what}: write stopped after ${written} of ${wanted} bytes`, options);
  }
}

/** Anything with a positional write that may write less than asked (FileHandle, or a descriptor wrapped). */
export interface PositionalWriter {
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
}

/**
 * Writes all of `data` at `position`, writing again from where a short write stopped (a
 * write may legally take fewer bytes: a signal, a full quota, some FUSE and network file
 * systems). Rejects with {@link ShortWriteError} when a write takes no byte at all, and
 * with the fs error otherwise; the file then holds an unknown prefix of `data`.
 */
export async function writeAll(h: PositionalWriter, data: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await h.write(data, done, data.length - done, position + done);
    if (!(bytesWritten > 0)) throw new ShortWriteError(what, done, data.length);
    done += bytesWritten;
  }
}

/** Bytes appended between two early writebacks of a file being written ({@link EarlyWriteback}). */
export const EARLY_WRITEBACK_BYTES = 1 << 20;
/** Bytes appended between two background fdatasyncs of a file being written ({@link EarlyWriteback}). */
export const EARLY_DATASYNC_BYTES = 4 << 20;

/**
 * The early writeback of a file being appended, so that the fsync making it durable waits
 * for about the last few MiB instead of everything written since the file was opened.
 * Every {@link EARLY_WRITEBACK_BYTES} appended start one step on the thread pool, one at a
 * time, each covering whatever was appended since the last:
 *
 * - an fdatasync once {@link EARLY_DATASYNC_BYTES} were appended since the last one
 *   started: it also empties the device's volatile write cache, which the final fsync
 *   would otherwise flush whole (on a virtual disk, about 50 ms per 64 MiB however early
 *   the pages were written);
 * - otherwise the range just appended is started with {@link PlatformFile.startWriteback}
 *   (sync_file_range), so the pages are on their way to the device before the fdatasync.
 *
 * It makes nothing acknowledged that the writer's own fsync does not, and changes nothing a
 * crash leaves: a crash may keep more of an unacknowledged file, never less of an
 * acknowledged one.
 *
 * Errors: a range the file system refuses (EINVAL, ENOSYS, EOPNOTSUPP, ESPIPE) turns the
 * ranges off (the fdatasyncs go on); any other error is kept and {@link settle} throws it.
 * The fdatasync runs on the writer's own descriptor and takes the kernel's one report of a
 * writeback error on it, so the writer must call {@link settle} before it trusts its own
 * fsync (or, having closed the descriptor, before it commits the file on another).
 * The writer waits for {@link settle} or {@link drain} before it closes the descriptor, so
 * no step runs on a closed or reused one.
 */
export class EarlyWriteback {
  #unflushed = 0;
  #sinceSync = 0;
  #inFlight: Promise<void> | null = null;
  #error: unknown = null;
  #noRanges: boolean;
  /** Ranges and fdatasyncs started so far (for tests and figures). */
  readonly started = { ranges: 0, datasyncs: 0 };

  constructor(
    private readonly file: PlatformFile,
    private readonly every = EARLY_WRITEBACK_BYTES,
    private readonly syncEvery = EARLY_DATASYNC_BYTES,
  ) {
    this.#noRanges = file.startWriteback === undefined;
  }

  /** `length` bytes were just appended, ending at offset `end`. */
  appended(end: number, length: number): void {
    this.#unflushed += length;
    this.#sinceSync += length;
    if (this.#unflushed < this.every || this.#inFlight !== null) return;
    const n = Math.min(this.#unflushed, end);
    this.#unflushed = 0;
    const range = this.#sinceSync < this.syncEvery;
    if (range && this.#noRanges) return;
    let step: Promise<void>;
    if (range) {
      this.started.ranges++;
      step = this.file.startWriteback!(end - n, n);
    } else {
      this.#sinceSync = 0;
      this.started.datasyncs++;
      step = this.file.datasync();
    }
    this.#inFlight = step.then(
      () => {
        this.#inFlight = null;
      },
      (e: unknown) => {
        this.#inFlight = null;
        // A file system without sync_file_range: the ranges' head start is lost, no more.
        if (range && writebackUnsupported(e as NodeJS.ErrnoException | null)) this.#noRanges = true;
        else this.#error ??= e;
      },
    );
  }

  /** The file was cut back: what was counted as appended may be gone. */
  truncated(): void {
    this.#unflushed = 0;
  }

  /** Waits for the step in flight; then throws the first error a step reported, if any. */
  async settle(): Promise<void> {
    if (this.#inFlight !== null) await this.#inFlight;
    if (this.#error !== null) throw this.#error;
  }

  /** Waits for the step in flight, ignoring its outcome (before a close that fails anyway, or cleans up). */
  async drain(): Promise<void> {
    if (this.#inFlight !== null) await this.#inFlight;
  }
}

/** fsync a directory so a rename, create or unlink inside it survives a crash. */
export async function syncDir(dir: string, fs: PlatformFs = nodeFs): Promise<void> {
  const h = await fs.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * mkdir -p that survives a crash: every directory it creates is fsynced into its parent
 * (a new directory's entry is as volatile as a new file's), and so is `dir` when it was
 * already there. Resolves once durable.
 */
export async function mkdirDurable(dir: string, fs: PlatformFs = nodeFs): Promise<void> {
  const first = await fs.mkdir(dir, { recursive: true });
  // Found existing: it may still be one an earlier run made and crashed before syncing.
  if (first === undefined) return syncDir(dirname(resolve(dir)), fs);
  // Created: `first` and each directory below it down to `dir`; each one's parent gets the sync.
  let d = resolve(first);
  const created = [d];
  for (const part of relative(d, resolve(dir)).split(sep).filter(Boolean)) created.push((d = join(d, part)));
  for (const c of created) await syncDir(dirname(c), fs);
}

let tmpSerial = 0;
/** A temporary name no other writer (in this process or another) picks for the same file. */
const tmpName = (path: string): string => `${path}.${process.pid}.${++tmpSerial}.${randomBytes(4).toString('hex')}.tmp`;

/** Replaces `path` with `data` atomically and durably. Rejects with the fs error; the old content then stays. */
export async function writeDurable(path: string, data: string | Uint8Array, fs: PlatformFs = nodeFs): Promise<void> {
  const tmp = tmpName(path);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  try {
    const h = await fs.open(tmp, 'wx');
    try {
      await writeAll(h, bytes, 0, tmp);
      await h.sync();
    } finally {
      await h.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    await unlinkQuiet(tmp, fs).catch(() => undefined);
    throw e;
  }
  await syncDir(dirname(path), fs);
}

export async function writeJsonDurable(path: string, value: unknown, fs: PlatformFs = nodeFs): Promise<void> {
  await writeDurable(path, JSON.stringify(value, null, 1) + '\n', fs);
}

/**
 * Removes temporary files {@link writeDurable} left for `path` (a crash between create and
 * rename), of this naming and of the older `<path>.tmp` one. Called at open, before anything
 * of this process writes `path`.
 */
export async function removeTempFiles(path: string, fs: PlatformFs = nodeFs): Promise<void> {
  const base = basename(path);
  let names: string[];
  try {
    names = await fs.readdir(dirname(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const n of names) if (n.startsWith(`${base}.`) && n.endsWith('.tmp')) await unlinkQuiet(join(dirname(path), n), fs);
}

/**
 * Runs async work one at a time per key, in call order; different keys run concurrently.
 * Used so that, of two writers of one file, the last to reach the disk is the last to run.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return run;
  }
}

/** Reads and validates a JSON state file; undefined when it does not exist. */
export async function readJson<T>(path: string, schema: z.ZodType<T>, fs: PlatformFs = nodeFs): Promise<T | undefined> {
  let text: string;
  try {
    text = (await fs.readFile(path)).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new StateFileError(path, 'not valid JSON', { cause: e });
  }
  const r = schema.safeParse(doc);
  if (!r.success) throw new StateFileError(path, r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '), { cause: r.error });
  return r.data;
}

/** Unlink that ignores a missing file. */
export async function unlinkQuiet(path: string, fs: PlatformFs = nodeFs): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
