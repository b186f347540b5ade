/**
 * Reference key journal on node:fs: the same format and contract as the native journal,
 * one write+fdatasync per append, no group commit, no preallocation. It is the yardstick for tests and
 * the fallback where the addon cannot be built. It also holds what both journals share
 * on node:fs: making a new directory durable, and salvaging a journal with mid-log damage.
 */
import { dirname, resolve } from 'node:path';
import { nodeFs, readWholeFile, type PlatformFile, type PlatformFs } from '../platform/fs.js';
import { decodeJournal, encodeRecord, scanJournal } from './journal-format.js';
import type { JournalScan } from './journal-format.js';
import { KeyJournalCorruptError, KeyJournalError, checkRecord } from './journal-types.js';
import type { AppendResult, KeyJournalApi, KeyJournalOpenOptions, RecoveryReport, SalvageReport } from './journal-types.js';

/** Options of {@link KeyJournalRef.open}: the shared ones, and the file system (default node:fs). */
export interface KeyJournalRefOpenOptions extends KeyJournalOpenOptions {
  readonly fs?: PlatformFs;
}

async function syncDir(dir: string, fs: PlatformFs): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(path: string, fs: PlatformFs): Promise<void> {
  await syncDir(dirname(path), fs);
}

/** Writes all of `data` at `position`: a regular file may take fewer bytes than asked (a signal, a size limit). */
async function writeAll(file: PlatformFile, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    if (bytesWritten === 0) throw new KeyJournalError('EIO', `key journal write made no progress at offset ${position + done}`);
    done += bytesWritten;
  }
}

async function readAllAt(file: PlatformFile, into: Uint8Array): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await file.read(into, done, into.length - done, done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * Creates `dir` and any missing parents, each made durable by an fsync of its parent, so
 * a power cut cannot take the journal's directory away after an append was acknowledged.
 */
export async function makeDurableDirectory(dir: string, fs: PlatformFs = nodeFs): Promise<void> {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    const exists = await fs.stat(d).then(
      (st) => {
        if (!st.isDirectory()) throw new KeyJournalError('ENOTDIR', `key journal directory ${d} is not a directory`, { path: d });
        return true;
      },
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return false;
        throw e;
      },
    );
    if (exists || dirname(d) === d) break;
    missing.unshift(d);
  }
  for (const d of missing) {
    await fs.mkdir(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    await syncDir(dirname(d), fs);
  }
}

function corruptError(path: string, scan: JournalScan): KeyJournalCorruptError {
  const first = scan.damage[0]!;
  return new KeyJournalCorruptError(path, { offset: first.offset, recordsBefore: first.firstLostSeq, recordsAfter: scan.recordsAfterDamage, damage: scan.damage });
}

// Where the damaged file goes: a hard link keeps it byte for byte under the new name while
// the journal's name still points at it, so no crash can leave the journal missing.
async function keepAside(path: string, wanted: string, fs: PlatformFs): Promise<string> {
  const ino = (await fs.stat(path)).ino;
  for (let n = 0; ; n++) {
    const dest = n === 0 ? wanted : `${wanted}-${n}`;
    try {
      await fs.link(path, dest);
      return dest;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        // A salvage that crashed after linking left the same file here already.
        if ((await fs.stat(dest)).ino === ino) return dest;
        continue;
      }
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS' && code !== 'EMLINK') throw e;
      // No hard links here: a synced copy does the same job.
      try {
        await fs.copyFile(path, dest, { exclusive: true });
      } catch (ce) {
        if ((ce as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw ce;
      }
      const copy = await fs.open(dest, 'r+');
      try {
        await copy.datasync();
      } finally {
        await copy.close();
      }
      return dest;
    }
  }
}

/**
 * Salvages a journal with mid-log damage: writes the valid records, in order and each
 * plain, to `<path>.salvage` and syncs it; keeps the damaged file as
 * `<path>.corrupt-<offset of the first damage>` (linked or copied, then the directory
 * synced); renames the salvaged file over the journal (the open that follows syncs the
 * directory before it resolves). A crash at
 * any point leaves either the damaged journal (salvaged again at the next open) or the
 * salvaged one, and the damaged copy is never deleted. Returns null when there is no
 * mid-log damage (nothing is changed then).
 */
export async function salvageJournal(path: string, fs: PlatformFs = nodeFs): Promise<SalvageReport | null> {
  const scan = scanJournal(new Uint8Array(await fs.readFile(path)));
  const first = scan.damage[0];
  if (first === undefined) return null;
  const tmpPath = `${path}.salvage`;
  const tmp = await fs.open(tmpPath, 'w');
  try {
    await writeAll(tmp, Buffer.concat(scan.records.map((r) => encodeRecord(r))), 0);
    await tmp.datasync();
  } finally {
    await tmp.close();
  }
  const movedTo = await keepAside(path, `${path}.corrupt-${first.offset}`, fs);
  // The copy must be durable before the rename can be: POSIX does not order the two.
  await syncDirectory(path, fs);
  // The rename is made durable by the open that follows, which syncs the directory before it resolves.
  await fs.rename(tmpPath, path);
  return { movedTo, damage: scan.damage, keptRecords: scan.records.length };
}

/**
 * The open sequence both journals share: optional durable directory creation, the
 * implementation's own open, and on mid-log damage either the refusal or a salvage and a
 * second open of the salvaged file. `fs` (default node:fs) is the one directory creation and
 * salvage use; `openOnce` brings its own.
 */
export async function openWithOptions<J>(path: string, options: KeyJournalOpenOptions | undefined, openOnce: () => Promise<J>, withSalvage: (j: J, s: SalvageReport) => J, fs: PlatformFs = nodeFs): Promise<J> {
  if (typeof path !== 'string' || path.length === 0) throw new KeyJournalError('EINVAL', 'key journal open: path must be a non-empty string');
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new KeyJournalError('EINVAL', 'key journal open: options must be an object');
  try {
    if (options?.createDirectory === true) await makeDurableDirectory(dirname(path), fs);
  } catch (err) {
    throw KeyJournalError.from(err, `open of ${path} (creating its directory)`);
  }
  try {
    return await openOnce();
  } catch (err) {
    if (!(err instanceof KeyJournalCorruptError) || options?.salvage !== true) throw err;
    let report: SalvageReport | null;
    try {
      report = await salvageJournal(path, fs);
    } catch (e) {
      throw KeyJournalError.from(e, `salvage of ${path}`);
    }
    const j = await openOnce();
    return report === null ? j : withSalvage(j, report);
  }
}

/** JS reference journal. Error, timeout and cancellation rules: see {@link KeyJournalApi}. */
export class KeyJournalRef implements KeyJournalApi {
  readonly path: string;
  readonly recovery: RecoveryReport;
  readonly #fs: PlatformFs;
  #file: PlatformFile | undefined;
  #recovered: readonly Uint8Array[];
  #tail: number;
  #seq: number;
  #broken: unknown;
  // Operations run one after another, in call order.
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(path: string, file: PlatformFile | undefined, recovered: readonly Uint8Array[], report: RecoveryReport, fs: PlatformFs) {
    this.path = path;
    this.#fs = fs;
    this.#file = file;
    this.#recovered = recovered;
    this.recovery = report;
    this.#tail = report.validBytes;
    this.#seq = recovered.length;
  }

  /**
   * Opens (creating if needed) and recovers the journal at `path`: a torn tail is cut off
   * before this resolves; mid-log damage is refused with {@link KeyJournalCorruptError},
   * or salvaged with `options.salvage`. Other failures reject with {@link KeyJournalError}
   * carrying the OS code. `options.fs` is the file system (default node:fs).
   */
  static open(path: string, options?: KeyJournalRefOpenOptions): Promise<KeyJournalRef> {
    const fs = options?.fs ?? nodeFs;
    return openWithOptions(
      path,
      options,
      () => KeyJournalRef.#openOnce(path, fs),
      (j, salvage) => {
        const k = new KeyJournalRef(path, j.#file, j.#recovered, { ...j.recovery, salvage }, fs);
        j.#file = undefined;
        return k;
      },
      fs,
    );
  }

  static async #openOnce(path: string, fs: PlatformFs): Promise<KeyJournalRef> {
    let file: PlatformFile | undefined;
    try {
      file = await fs.open(path, 'a+');
      await file.close();
      file = await fs.open(path, 'r+');
      const bytes = new Uint8Array(await readWholeFile(file));
      const scan = scanJournal(bytes);
      if (scan.damage.length > 0) throw corruptError(path, scan);
      const validBytes = scan.keepBytes;
      if (validBytes < bytes.length) {
        await file.truncate(validBytes);
        await file.datasync();
      }
      await fs.unlink(`${path}.compact`).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      // The file may be new, and so may its directory: both entries must be durable
      // before an append is acknowledged.
      await syncDirectory(path, fs);
      await syncDir(dirname(resolve(dirname(path))), fs);
      return new KeyJournalRef(path, file, scan.records.map((r) => r.slice()), { records: scan.records.length, validBytes, truncatedBytes: scan.tornBytes }, fs);
    } catch (err) {
      await file?.close().catch(() => undefined);
      throw KeyJournalError.from(err, `open of ${path}`);
    }
  }

  records(): readonly Uint8Array[] {
    return this.#recovered;
  }

  #run<T>(what: string, op: (file: PlatformFile) => Promise<T>): Promise<T> {
    const next = this.#chain.then(async () => {
      const file = this.#file;
      if (file === undefined) throw new KeyJournalError('ECLOSED', `key journal ${what}: the journal is closed`);
      try {
        return await op(file);
      } catch (err) {
        throw KeyJournalError.from(err, what);
      }
    });
    this.#chain = next.catch(() => undefined);
    return next;
  }

  append(record: Uint8Array): Promise<AppendResult> {
    try {
      checkRecord(record, 'KeyJournalRef.append');
    } catch (err) {
      return Promise.reject(err);
    }
    const framed = encodeRecord(record);
    return this.#run('append', async (file) => {
      if (this.#broken !== undefined) throw this.#broken;
      const offset = this.#tail;
      try {
        await writeAll(file, framed, offset);
        await file.datasync();
      } catch (err) {
        this.#broken = err;
        throw err;
      }
      this.#tail += framed.length;
      return { offset, seq: this.#seq++ };
    });
  }

  readAll(): Promise<Uint8Array[]> {
    return this.#run('readAll', async (file) => {
      const buf = new Uint8Array(this.#tail);
      const got = await readAllAt(file, buf);
      const d = decodeJournal(buf);
      if (got !== buf.length || d.validBytes !== buf.length) throw new KeyJournalError('EIO', 'key journal readAll: the file changed under the journal');
      return d.records;
    });
  }

  compact(records: readonly Uint8Array[]): Promise<void> {
    try {
      for (const r of records) checkRecord(r, 'KeyJournalRef.compact');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#run('compact', async (file) => {
      if (this.#broken !== undefined) throw this.#broken;
      const tmpPath = `${this.path}.compact`;
      const tmp = await this.#fs.open(tmpPath, 'w+');
      let size = 0;
      try {
        for (const r of records) {
          const framed = encodeRecord(r);
          await writeAll(tmp, framed, size);
          size += framed.length;
        }
        await tmp.datasync();
        await this.#fs.rename(tmpPath, this.path);
      } catch (err) {
        await tmp.close();
        await this.#fs.unlink(tmpPath).catch(() => undefined);
        throw err;
      }
      await file.close();
      this.#file = tmp;
      this.#tail = size;
      this.#seq = records.length;
      await syncDirectory(this.path, this.#fs);
    });
  }

  async close(): Promise<void> {
    await this.#chain;
    const file = this.#file;
    this.#file = undefined;
    await file?.close();
  }
}
