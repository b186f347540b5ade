/**
 * Durable small files: write to a temporary name, fsync it, rename over the old one and
 * fsync the directory, so that after a crash a reader finds either the old or the new
 * content, never a torn one.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { z } from 'zod';
import { StateFileError } from './errors.js';

/** fsync a directory so a rename or unlink inside it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Replaces `path` with `data` atomically and durably. Rejects with the fs error; the old content then stays. */
export async function writeDurable(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const h = await open(tmp, 'w');
  try {
    await h.writeFile(data);
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
}

export async function writeJsonDurable(path: string, value: unknown): Promise<void> {
  await writeDurable(path, JSON.stringify(value, null, 1) + '\n');
}

/** Reads and validates a JSON state file; undefined when it does not exist. */
export async function readJson<T>(path: string, schema: z.ZodType<T>): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
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
export async function unlinkQuiet(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
