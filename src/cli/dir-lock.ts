/**
 * One process per VTS or VTC directory: a VTS's state and cache directories and a VTC's
 * journal directory each get a lock file, taken before anything in them is opened, so that
 * a second `ptpvts vts --id A` on the same directories stops at once, naming the process
 * that has them, instead of recovering the live VTS's files under it.
 *
 * The lock file is written and fsynced under a temporary name and linked into place (see
 * takeLock in lab.ts), so a power cut never leaves it empty or half written; an empty one, or
 * a torn one naming another boot, left by an older version, is taken over at once.
 */
import { join, resolve } from 'node:path';
import { mkdirDurable } from '../vts/durable.js';
import { describeLockHolder, LabLockedError, takeLock } from './lab.js';
import type { LabLock, LabLockHolder } from './lab.js';

/** The name of the lock file inside a locked directory. */
export const DIRECTORY_LOCK_NAME = 'ptpvts.lock';

/** Another live process has the directory; nothing in it was opened. */
export class DirectoryLockedError extends Error {
  override readonly name = 'DirectoryLockedError';
  readonly code = 'EDIRLOCKED';
  constructor(
    /** What the directory is, e.g. `VTS A's state directory`. */
    readonly what: string,
    readonly dir: string,
    readonly lockFile: string,
    /** Undefined when the lock file could not be read (damaged, and written since the machine started less than 5 s ago). */
    readonly holder: LabLockHolder | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      `${what} ${dir} is in use by ${holder === undefined ? `another process (${lockFile} cannot be read)` : describeLockHolder(holder)}: stop that process first, or give this one other directories. If that process is gone for good, remove ${lockFile}`,
      options,
    );
  }
}

/**
 * Makes `dir` (durably, as the VTS and the key journal would) and takes its lock without
 * waiting. A lock left by a process that is gone, or from before the last restart, is taken
 * over. Rejects with {@link DirectoryLockedError} while a live process holds it.
 * The caller releases the lock when it stops; it is also released when the process exits.
 */
export async function lockDirectory(dir: string, what: string, command?: string): Promise<LabLock> {
  await mkdirDurable(dir);
  const file = join(dir, DIRECTORY_LOCK_NAME);
  try {
    return await takeLock(file, { timeoutMs: 0, ...(command === undefined ? {} : { command }) });
  } catch (e) {
    if (e instanceof LabLockedError) throw new DirectoryLockedError(what, dir, file, e.holder, { cause: e });
    throw e;
  }
}

/** Locks every directory in order; on a failure, gives back the locks already taken. */
export async function lockDirectories(dirs: readonly { dir: string; what: string }[], command?: string): Promise<() => void> {
  const held: LabLock[] = [];
  const release = (): void => {
    for (const l of held.reverse()) l.release();
  };
  try {
    for (const d of dirs) {
      // Two roles naming the same directory share its one lock.
      if (held.some((l) => resolve(l.file) === resolve(d.dir, DIRECTORY_LOCK_NAME))) continue;
      held.push(await lockDirectory(d.dir, d.what, command));
    }
  } catch (e) {
    release();
    throw e;
  }
  return release;
}
