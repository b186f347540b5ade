/**
 * Durable small files: write to a temporary name, fsync it, rename over the old one and
 * fsync the directory, so that after a crash a reader finds either the old or the new
 * content, never a torn one. Also the pieces every durable writer of the VTS shares: a
 * write that never stops short, a directory made durably, and one-at-a-time writes per key.
 * Each function takes the file system last (default node:fs), so a simulation can run them
 * over one that loses what was not synced.
 */
import { randomBytes } from 'node:crypto';
import { nodeFs, type PlatformFs } from '../platform/fs.js';
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
