/**
 * The tape volume cache (TVC): a directory holding one data file per resident virtual
 * volume and one metadata file per volume. Metadata is the truth: a data file counts only
 * once a metadata file names it, and metadata is replaced atomically and fsynced, so an
 * acknowledged close survives a crash and an unacknowledged one leaves the previous
 * generation intact.
 *
 * ```
 * <dir>/meta/<VOLSER>.json             token, residency, tape copy
 * <dir>/data/<VOLSER>.<gen>.<nonce>.vol committed volume data (volume-format.ts)
 * <dir>/data/<VOLSER>.<nonce>.work      a mount's writes, until close
 * ```
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { nodeFs, type PlatformFile, type PlatformFs } from '../platform/fs.js';
import { EarlyWriteback, KeyedQueue, mkdirDurable, readJson, syncDir, unlinkQuiet, writeAll, writeJsonDurable } from './durable.js';
import { BadVolumeDataError, CacheFullError, checkVolser } from './errors.js';
import { RECORD_HEADER_BYTES, RecordKind, VOLUME_MAGIC, VolumeParser, recordHeader, type RecordEntry } from './volume-format.js';

/** A volume's token on this VTS (the same shape the protocol core uses). */
export interface VolumeToken {
  readonly generation: number;
  /** True when this VTS holds the data of `generation`; false while a copy from the peer is pending. */
  readonly consistent: boolean;
}

/** Where a volume's premigrated copy sits on a physical cartridge. */
export interface TapeCopy {
  readonly barcode: string;
  /** Logical object number of the copy's header block (what LOCATE takes). */
  readonly block: number;
  /** Filemarks before the header block (informative: a person can `mt fsf` to it). */
  readonly fileNumber: number;
  readonly generation: number;
  readonly bytes: number;
  readonly sha256: string;
}

/** What the cache knows of one volume. */
export interface VolumeMeta {
  readonly volser: string;
  /** Token generation: the newest generation this VTS knows of. */
  readonly generation: number;
  /** Generation of the data this VTS holds (0: none). The token is consistent when it equals `generation`. */
  readonly dataGeneration: number;
  /** Data file name under data/, or null when the data is not in cache (migrated, or none). */
  readonly dataFile: string | null;
  readonly bytes: number;
  readonly records: number;
  readonly sha256: string;
  /** The copy on tape, when one of `dataGeneration` was made. */
  readonly premigrated: TapeCopy | null;
  readonly lastAccess: number;
}

const tapeCopySchema = z.object({
  barcode: z.string().min(1),
  block: z.number().int().nonnegative(),
  fileNumber: z.number().int().nonnegative(),
  generation: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string(),
});
const metaSchema = z.object({
  volser: z.string(),
  generation: z.number().int().nonnegative(),
  dataGeneration: z.number().int().nonnegative(),
  dataFile: z.string().nullable(),
  bytes: z.number().int().nonnegative(),
  records: z.number().int().nonnegative(),
  sha256: z.string(),
  premigrated: tapeCopySchema.nullable(),
  lastAccess: z.number(),
});

export const tokenOf = (m: VolumeMeta): VolumeToken => ({ generation: m.generation, consistent: m.dataGeneration === m.generation });
export const isResident = (m: VolumeMeta): boolean => m.dataFile !== null;
/** The tape copy holds exactly the data this VTS has. */
export const isPremigrated = (m: VolumeMeta): boolean => m.premigrated !== null && m.premigrated.generation === m.dataGeneration && m.dataGeneration > 0;

/** Options of {@link VolumeCache.open}. */
export interface VolumeCacheOptions {
  readonly dir: string;
  /** Bytes of volume data the cache may hold (committed and being written). Default: unlimited. */
  readonly capacityBytes?: number;
  /** Clock for LRU order (ms). Default Date.now. */
  readonly now?: () => number;
  /** Source of the random nonces in data file names. Default node:crypto randomBytes. */
  readonly randomBytes?: (size: number) => Buffer;
  /** File system. Default node:fs. */
  readonly fs?: PlatformFs;
  readonly logger?: Logger;
}

/**
 * One volume file opened for record access: a committed file read-only, or a working
 * file a mount writes. Keeps the record index in memory.
 *
 * A working file also keeps the SHA-256 of its bytes as they are written (and as they are
 * read when it is opened), so its commit need not read the whole file again to hash it
 * ({@link VolumeFile.sha256}). The hash covers exactly the bytes this object wrote or read,
 * in file order; anything that could leave the file otherwise (a truncation, a failed
 * append) drops it, and the commit then hashes the file as before. Nothing of it is kept
 * on disk: a working file does not outlive its process (only a commit makes it data), and
 * the commit stores the hash in the volume's metadata, durably, as it always did.
 */
export class VolumeFile {
  /** SHA-256 of bytes [0, `hashed`) of the file, or null once they may differ from the file. */
  #hash: Hash | null;
  #hashed: number;
  /** A working file's early writeback: its commit's fsync waits for about the last MiB. */
  readonly #writeback: EarlyWriteback | null;

  private constructor(
    readonly path: string,
    private readonly fh: PlatformFile,
    readonly entries: RecordEntry[],
    private size: number,
    readonly writable: boolean,
    hash: Hash | null,
  ) {
    this.#hash = hash;
    this.#hashed = hash === null ? 0 : size;
    this.#writeback = writable ? new EarlyWriteback(fh) : null;
  }

  /** Opens and indexes a volume file. Rejects with {@link BadVolumeDataError} when it is malformed. */
  static async open(path: string, writable: boolean, fs: PlatformFs = nodeFs): Promise<VolumeFile> {
    const fh = await fs.open(path, writable ? 'r+' : 'r');
    try {
      const parser = new VolumeParser({ index: true });
      // A working file (a copy's, a recall's, a prefix for a write) is hashed as it is indexed.
      const hash = writable ? createHash('sha256') : null;
      const buf = Buffer.alloc(1 << 20);
      let pos = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        parser.push(buf.subarray(0, bytesRead));
        hash?.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      parser.end();
      return new VolumeFile(path, fh, parser.entries ?? [], pos, writable, hash);
    } catch (e) {
      await fh.close();
      throw e instanceof BadVolumeDataError ? new BadVolumeDataError(`${path}: ${e.message}`, { cause: e }) : e;
    }
  }

  /**
   * A working file its writer has just written whole through `fh` (a peer copy), with the
   * index and the running hash made as it was written: nothing is read back. `hash` covers
   * bytes [0, `size`) of the file.
   */
  static adopt(path: string, fh: PlatformFile, entries: RecordEntry[], size: number, hash: Hash): VolumeFile {
    return new VolumeFile(path, fh, entries, size, true, hash);
  }

  /** Creates an empty working volume (magic only). */
  static async create(path: string, fs: PlatformFs = nodeFs): Promise<VolumeFile> {
    const fh = await fs.open(path, 'wx+');
    try {
      await writeAll(fh, VOLUME_MAGIC, 0, path);
    } catch (e) {
      await fh.close();
      throw e;
    }
    return new VolumeFile(path, fh, [], VOLUME_MAGIC.length, true, createHash('sha256').update(VOLUME_MAGIC));
  }

  get bytes(): number {
    return this.size;
  }

  get records(): number {
    return this.entries.length;
  }

  /**
   * The SHA-256 (hex) of the file's bytes, as written and read through this object; null
   * when it does not know them all (truncated, an append failed): hash the file then.
   */
  sha256(): string | null {
    if (this.#hash === null || this.#hashed !== this.size) return null;
    return this.#hash.copy().digest('hex');
  }

  /** Byte offset where record `i` begins (the file size when `i` is past the end). */
  offsetOf(i: number): number {
    return this.entries[i]?.offset ?? this.size;
  }

  async readRecord(i: number, max: number): Promise<{ kind: RecordKind; data: Uint8Array; length: number }> {
    const e = this.entries[i];
    if (!e) throw new RangeError(`record ${i} past end of data`);
    if (e.kind === RecordKind.filemark) return { kind: e.kind, data: new Uint8Array(0), length: 0 };
    const n = Math.min(max, e.length);
    const data = Buffer.alloc(n);
    const { bytesRead } = await this.fh.read(data, 0, n, e.offset + RECORD_HEADER_BYTES);
    if (bytesRead !== n) throw new BadVolumeDataError(`${this.path}: short read of record ${i}`);
    return { kind: e.kind, data, length: e.length };
  }

  /** Drops records from `i` on (tape semantics: a write ends the data at the new record). */
  async truncateTo(i: number): Promise<void> {
    if (i >= this.entries.length) return;
    const off = this.offsetOf(i);
    // A running hash cannot be wound back: the commit hashes the file instead.
    this.#hash = null;
    this.#writeback?.truncated();
    await this.fh.truncate(off);
    this.entries.length = i;
    this.size = off;
  }

  /** Appends one record. Rejects with the fs error or ShortWriteError; the record then does not count (the next append overwrites it). */
  append(kind: RecordKind, data: Uint8Array): Promise<void> {
    return this.appendRecord(frameRecord(kind, data));
  }

  /**
   * Appends one record made by {@link frameRecord} (header and data in one buffer, written
   * with one write). The buffer is read until the promise settles.
   */
  async appendRecord(buf: Uint8Array): Promise<void> {
    const kind = buf[0] as RecordKind;
    const length = buf.length - RECORD_HEADER_BYTES;
    try {
      await writeAll(this.fh, buf, this.size, this.path);
    } catch (e) {
      // Part of it may be on disk past `size`: the hash no longer speaks for the file.
      this.#hash = null;
      throw e;
    }
    this.#hash?.update(buf);
    this.#hashed += buf.length;
    this.entries.push({ kind, offset: this.size, length });
    this.size += buf.length;
    this.#writeback?.appended(this.size, buf.length);
  }

  /** fsync. Rejects with the error an early writeback of this file reported, if one did: a page may not have reached the disk. */
  async sync(): Promise<void> {
    await this.#writeback?.settle();
    await this.fh.sync();
  }

  async close(): Promise<void> {
    // A range in flight runs on this descriptor: never close it under the range.
    await this.#writeback?.drain();
    await this.fh.close().catch(() => undefined);
  }
}

/**
 * A record as it goes to disk: header and data joined in a new buffer (a copy of `data`,
 * which the caller may reuse at once).
 */
export function frameRecord(kind: RecordKind, data: Uint8Array): Buffer {
  const head = recordHeader(kind, data.length);
  return data.length ? Buffer.concat([head, data]) : head;
}

/** Streams a file's bytes and returns their SHA-256 and length. */
export async function hashFile(path: string, fs: PlatformFs = nodeFs): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of fs.readStream(path)) {
    h.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: h.digest('hex'), bytes };
}

/**
 * The tape volume cache. Methods reject with the fs error on I/O failure; the on-disk
 * state is then the one before the call (metadata is replaced atomically). No method has
 * a timeout or can be cancelled: each is a short run of local file operations.
 */
export class VolumeCache {
  readonly dir: string;
  readonly capacityBytes: number;
  readonly #metaDir: string;
  readonly #dataDir: string;
  readonly #now: () => number;
  readonly #random: (size: number) => Buffer;
  readonly #fs: PlatformFs;
  readonly #log: Logger;
  readonly #meta = new Map<string, VolumeMeta>();
  /**
   * Metadata changes of one volume run one at a time, each reading the state the previous
   * one left: two writers racing would otherwise leave on disk whichever renamed last, not
   * the newest state, and each would drop the other's change in memory.
   */
  readonly #metaQueue = new KeyedQueue();
  /** Volumes that must stay resident (mounted, being premigrated or exported). */
  readonly #pins = new Map<string, number>();
  #workBytes = 0;
  #lastTick = 0;
  /** Removals of replaced generations' data files still running ({@link idle}). */
  readonly #removing = new Set<Promise<void>>();

  private constructor(o: VolumeCacheOptions) {
    this.dir = o.dir;
    this.capacityBytes = o.capacityBytes ?? Number.POSITIVE_INFINITY;
    this.#metaDir = join(o.dir, 'meta');
    this.#dataDir = join(o.dir, 'data');
    this.#now = o.now ?? Date.now;
    this.#random = o.randomBytes ?? randomBytes;
    this.#fs = o.fs ?? nodeFs;
    this.#log = (o.logger ?? pino({ level: 'silent' })).child({ component: 'vts-cache' });
  }

  /**
   * Opens (creating if needed) the cache and recovers from a crash: leftover temporary and
   * working files are removed, data files no metadata names are removed, and metadata
   * whose data file vanished is marked not resident (migrated when a tape copy exists).
   */
  static async open(o: VolumeCacheOptions): Promise<VolumeCache> {
    const c = new VolumeCache(o);
    // A directory entry is as volatile as a file's: metadata fsynced into a meta/ the cache
    // directory never recorded is lost with it.
    await mkdirDurable(c.#metaDir, c.#fs);
    await mkdirDurable(c.#dataDir, c.#fs);
    await c.#recover();
    return c;
  }

  async #recover(): Promise<void> {
    const fs = this.#fs;
    for (const name of await fs.readdir(this.#metaDir)) {
      if (!name.endsWith('.json')) {
        await unlinkQuiet(join(this.#metaDir, name), fs);
        continue;
      }
      const m = await readJson(join(this.#metaDir, name), metaSchema, fs);
      if (m) this.#meta.set(m.volser, m);
    }
    const referenced = new Set([...this.#meta.values()].map((m) => m.dataFile).filter((f): f is string => f !== null));
    for (const name of await fs.readdir(this.#dataDir)) {
      if (referenced.has(name)) continue;
      this.#log.info({ file: name }, 'removing data file no committed volume names (interrupted write or eviction)');
      await unlinkQuiet(join(this.#dataDir, name), fs);
    }
    for (const m of [...this.#meta.values()]) {
      if (m.dataFile === null) continue;
      const size = await fs.stat(join(this.#dataDir, m.dataFile)).then((s) => s.size, () => -1);
      if (size === m.bytes) continue;
      this.#log.error({ volser: m.volser, file: m.dataFile, size, expected: m.bytes }, 'volume data file missing or wrong size');
      const lost = { ...m, dataFile: null };
      await this.#locked(m.volser, () => this.#writeMeta(isPremigrated(m) ? lost : { ...lost, dataGeneration: 0, premigrated: null }));
    }
    await syncDir(this.#dataDir, fs);
  }

  /** Monotonic access stamp: wall time, forced to increase so LRU order is total. */
  #stamp(): number {
    this.#lastTick = Math.max(this.#now(), this.#lastTick + 1);
    return this.#lastTick;
  }

  /** Runs a read-modify-write of `volser`'s metadata after those already queued for it. */
  #locked<T>(volser: string, fn: () => Promise<T>): Promise<T> {
    return this.#metaQueue.run(volser, fn);
  }

  /** Only inside {@link #locked}. */
  async #writeMeta(m: VolumeMeta): Promise<void> {
    await writeJsonDurable(join(this.#metaDir, `${m.volser}.json`), m, this.#fs);
    // A read close may have stamped the volume meanwhile (memory only, by design): keep the newer stamp.
    const cur = this.#meta.get(m.volser);
    this.#meta.set(m.volser, cur !== undefined && cur.lastAccess > m.lastAccess ? { ...m, lastAccess: cur.lastAccess } : m);
  }

  get(volser: string): VolumeMeta | undefined {
    return this.#meta.get(volser);
  }

  list(): VolumeMeta[] {
    return [...this.#meta.values()].sort((a, b) => (a.volser < b.volser ? -1 : a.volser > b.volser ? 1 : 0));
  }

  /** Bytes of resident committed data plus data being written. */
  get usedBytes(): number {
    let n = this.#workBytes;
    for (const m of this.#meta.values()) if (m.dataFile !== null) n += m.bytes;
    return n;
  }

  dataPath(m: VolumeMeta): string | null {
    return m.dataFile === null ? null : join(this.#dataDir, m.dataFile);
  }

  pin(volser: string): void {
    this.#pins.set(volser, (this.#pins.get(volser) ?? 0) + 1);
  }

  unpin(volser: string): void {
    const n = (this.#pins.get(volser) ?? 0) - 1;
    if (n <= 0) this.#pins.delete(volser);
    else this.#pins.set(volser, n);
  }

  isPinned(volser: string): boolean {
    return this.#pins.has(volser);
  }

  /** Records an access for LRU (memory only; persisted with the next metadata write). */
  touch(volser: string): void {
    const m = this.#meta.get(volser);
    if (m) this.#meta.set(volser, { ...m, lastAccess: this.#stamp() });
  }

  /**
   * Makes room for `bytes` more by evicting premigrated, unpinned volumes, least recently
   * used first. Rejects with {@link CacheFullError} when not enough can be evicted.
   */
  async ensureSpace(bytes: number): Promise<void> {
    if (this.usedBytes + bytes <= this.capacityBytes) return;
    const candidates = [...this.#meta.values()].filter((m) => isResident(m) && isPremigrated(m) && !this.#pins.has(m.volser)).sort((a, b) => a.lastAccess - b.lastAccess);
    for (const m of candidates) {
      if (this.usedBytes + bytes <= this.capacityBytes) break;
      await this.evict(m.volser);
    }
    if (this.usedBytes + bytes > this.capacityBytes) throw new CacheFullError(this.usedBytes + bytes - this.capacityBytes, this.capacityBytes);
  }

  /** Accounts bytes a working file grew (positive) or released (negative). */
  accountWork(delta: number): void {
    this.#workBytes = Math.max(0, this.#workBytes + delta);
  }

  /**
   * Removes a volume's data from the cache, keeping its tape copy. Only a premigrated,
   * unpinned volume can be evicted; returns false otherwise.
   */
  evict(volser: string): Promise<boolean> {
    return this.#locked(volser, async () => {
      const m = this.#meta.get(volser);
      if (!m || !isResident(m) || !isPremigrated(m) || this.#pins.has(volser)) return false;
      const path = this.dataPath(m);
      // Metadata first: a crash between the two leaves an orphan file, which open() removes.
      await this.#writeMeta({ ...m, dataFile: null });
      if (path) await unlinkQuiet(path, this.#fs);
      this.#log.info({ volser, bytes: m.bytes, barcode: m.premigrated?.barcode }, 'evicted from cache');
      return true;
    });
  }

  /** A fresh working file for `volser`; `prefixOf`, when given, is copied into it first up to `prefixBytes`. */
  async newWork(volser: string, prefixOf?: { path: string; bytes: number }): Promise<VolumeFile> {
    checkVolser(volser);
    const path = join(this.#dataDir, `${volser}.${this.#random(6).toString('hex')}.work`);
    if (!prefixOf) {
      const f = await VolumeFile.create(path, this.#fs);
      this.accountWork(f.bytes);
      return f;
    }
    await this.ensureSpace(prefixOf.bytes);
    await this.#fs.copyFile(prefixOf.path, path);
    const h = await this.#fs.open(path, 'r+');
    try {
      await h.truncate(prefixOf.bytes);
    } finally {
      await h.close();
    }
    const f = await VolumeFile.open(path, true, this.#fs);
    this.accountWork(f.bytes);
    return f;
  }

  /** A fresh path for data arriving whole (a recall), in the data directory so a rename commits it. */
  workPath(volser: string): string {
    return join(this.#dataDir, `${checkVolser(volser)}.${this.#random(6).toString('hex')}.work`);
  }

  /** Opens a complete working file written by someone else (a recall) and accounts its bytes. */
  async adoptWork(path: string): Promise<VolumeFile> {
    const f = await VolumeFile.open(path, true, this.#fs);
    this.accountWork(f.bytes);
    return f;
  }

  /** Takes a working file written whole through `fh`, indexed and hashed as it was ({@link VolumeFile.adopt}), and accounts its bytes. */
  adoptWritten(path: string, fh: PlatformFile, entries: RecordEntry[], size: number, hash: Hash): VolumeFile {
    const f = VolumeFile.adopt(path, fh, entries, size, hash);
    this.accountWork(f.bytes);
    return f;
  }

  /** Discards a working file (a mount aborted or closed without writing), found at `path` (a commit may have renamed it). */
  async discardWork(f: VolumeFile, path = f.path): Promise<void> {
    await f.close();
    this.accountWork(-f.bytes);
    await unlinkQuiet(path, this.#fs);
  }

  /**
   * Commits a working file as the data of `generation`: the file is fsynced and renamed,
   * then the metadata names it, then the previous data file is removed. Resolves only once
   * all of that is durable: that is the moment a close may be acknowledged.
   *
   * Takes `f` over, whether the commit succeeds or not: its descriptor is closed and its
   * bytes leave the working account exactly once. When the commit fails before the metadata
   * write, the file is removed: a failed fsync has already reported the error (and may have
   * dropped the pages it could not write), so an fsync tried again would succeed on data
   * that is not on disk, and nothing may ever commit this file. When the metadata write
   * itself fails, the file stays, since that metadata may be on disk already; {@link open}
   * removes it later if nothing names it.
   */
  async commitData(volser: string, f: VolumeFile, generation: number): Promise<VolumeMeta> {
    const bytes = f.bytes;
    const records = f.records;
    // Hashed as it was written or read in, when it was all along; else read again.
    let sha256 = f.sha256();
    if (sha256 === null) {
      try {
        sha256 = (await hashFile(f.path, this.#fs)).sha256;
      } catch (e) {
        await this.discardWork(f);
        throw e;
      }
    }
    const name = await this.#place(volser, f, generation);
    return this.#locked(volser, async () => {
      const old = this.#meta.get(volser);
      const meta: VolumeMeta = {
        volser,
        generation: Math.max(generation, old?.generation ?? 0),
        dataGeneration: generation,
        dataFile: name,
        bytes,
        records,
        sha256,
        premigrated: null,
        lastAccess: this.#stamp(),
      };
      await this.#writeMeta(meta);
      const oldPath = old ? this.dataPath(old) : null;
      if (oldPath) this.#removeLater(oldPath);
      return meta;
    });
  }

  /**
   * Makes working file `f` durable under a new data file name of `generation` and returns
   * that name: fsync, close, rename, directory fsync. Its bytes leave the working account
   * either way; on failure it is closed and removed, whichever name it had by then.
   */
  async #place(volser: string, f: VolumeFile, generation: number): Promise<string> {
    const name = `${volser}.${generation}.${this.#random(6).toString('hex')}.vol`;
    let at = f.path;
    try {
      await f.sync();
      await f.close();
      await this.#fs.rename(f.path, join(this.#dataDir, name));
      at = join(this.#dataDir, name);
      await syncDir(this.#dataDir, this.#fs);
    } catch (e) {
      await this.discardWork(f, at).catch((err: unknown) => this.#log.warn({ err, file: at }, 'could not remove a working file whose commit failed (removed at the next open)'));
      throw e;
    }
    this.accountWork(-f.bytes);
    return name;
  }

  /**
   * Removes the data file of a generation just replaced, without the commit waiting for it:
   * the commit is durable once the metadata names the new file, and freeing a large file's
   * extents takes ext4 about 20 ms per 64 MiB, which the host's unload would otherwise wait
   * for. A crash before the removal leaves a file no metadata names, which {@link open}
   * removes. Data file names are never reused (a random part in each), so nothing can
   * take the name meanwhile. {@link idle} waits for the removals.
   */
  #removeLater(path: string): void {
    const p: Promise<void> = unlinkQuiet(path, this.#fs)
      .catch((err: unknown) => this.#log.warn({ err, file: path }, 'could not remove the data file of a replaced generation (removed at the next open)'))
      .finally(() => this.#removing.delete(p));
    this.#removing.add(p);
  }

  /** Resolves once the data files of replaced generations are removed. */
  async idle(): Promise<void> {
    while (this.#removing.size > 0) await Promise.all([...this.#removing]);
  }

  /**
   * Writes a token-only change (the data stays): used to mark this VTS behind. The token
   * only moves forward: a raise that lost a race to a newer one leaves the newer in place.
   */
  async setGeneration(volser: string, generation: number): Promise<VolumeMeta> {
    checkVolser(volser);
    return this.#locked(volser, async () => {
      const old = this.#meta.get(volser);
      if (old && old.generation >= generation) return old;
      const meta: VolumeMeta = old
        ? { ...old, generation }
        : { volser, generation, dataGeneration: 0, dataFile: null, bytes: 0, records: 0, sha256: '', premigrated: null, lastAccess: this.#stamp() };
      await this.#writeMeta(meta);
      return meta;
    });
  }

  /** Records the tape copy of a volume (ignored when the volume moved on to a newer generation meanwhile). */
  setPremigrated(volser: string, copy: TapeCopy): Promise<boolean> {
    return this.#locked(volser, async () => {
      const m = this.#meta.get(volser);
      if (!m || m.dataGeneration !== copy.generation || m.sha256 !== copy.sha256) return false;
      await this.#writeMeta({ ...m, premigrated: copy });
      return true;
    });
  }

  /** Installs recalled data (a verified file already in the data directory's work name) for a migrated volume. Takes `f` over as {@link commitData} does. */
  installRecalled(volser: string, f: VolumeFile, copy: TapeCopy): Promise<VolumeMeta> {
    return this.#locked(volser, async () => {
      const m = this.#meta.get(volser);
      if (!m || m.dataGeneration !== copy.generation) {
        await this.discardWork(f);
        throw new BadVolumeDataError(`recalled generation ${copy.generation} of ${volser} is no longer the cached one`);
      }
      const name = await this.#place(volser, f, copy.generation);
      const meta: VolumeMeta = { ...m, dataFile: name, lastAccess: this.#stamp() };
      await this.#writeMeta(meta);
      return meta;
    });
  }
}
