/**
 * The volume catalogue of a composite library: which logical volumes the hosts' virtual
 * libraries hold, each in the scratch or the private category (as the IBM library manager
 * keeps them), its home storage slot and, optionally, its own copy mode. One JSON file,
 * shared by the virtual libraries of every VTC of a lab and by `ptpvts volumes`; each
 * change is a read-modify-write under a lock file, made durable before it is reported.
 * The volumes' data lives on the VTS; the catalogue only says which of them hosts see.
 */
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { z } from 'zod';
import { writeJsonDurable } from '../../vts/durable.js';
import { checkVolser } from '../../vts/errors.js';
import type { CopyMode } from '../../ptp/volumes.js';

export const VolumeCategory = { scratch: 'scratch', private: 'private' } as const;
export type VolumeCategory = (typeof VolumeCategory)[keyof typeof VolumeCategory];

export interface CatalogueEntry {
  readonly volser: string;
  readonly category: VolumeCategory;
  /** Index of the volume's home storage slot in every virtual library (0 is the first slot). */
  readonly slot: number;
  /** Copy mode of the volume's writes; absent: the VTC's default. */
  readonly copyMode?: CopyMode;
  /** When it was inserted (ms since the epoch). */
  readonly insertedAt: number;
}

const entrySchema = z
  .object({
    volser: z.string().regex(/^[A-Z0-9]{1,6}$/),
    category: z.enum(['scratch', 'private']),
    slot: z.number().int().nonnegative(),
    copyMode: z.enum(['immediate', 'deferred']).optional(),
    insertedAt: z.number(),
  })
  .strict();
const fileSchema = z.object({ format: z.literal('ptpvts.catalogue/1'), slots: z.number().int().positive(), volumes: z.array(entrySchema) }).strict();
type CatalogueFile = z.infer<typeof fileSchema>;

/** A catalogue operation refused: `code` says why (EVOLEXISTS, ENOVOL, ECATFULL, EBADCAT, ECATLOCK, EBADVOLSER). */
export class CatalogueError extends Error {
  override readonly name = 'CatalogueError';
  constructor(
    readonly code: 'EVOLEXISTS' | 'ENOVOL' | 'ECATFULL' | 'EBADCAT' | 'ECATLOCK' | 'EBADVOLSER',
    message: string,
  ) {
    super(message);
  }
}

const LOCK_WAIT_MS = 5000;
/** A lock file older than this was left by a process that died holding it. */
const LOCK_STALE_MS = 30_000;

/**
 * Error: every method rejects with {@link CatalogueError} for a refused operation or a file
 * that is not a catalogue, and with the fs error otherwise. Timeout: a change waits at most
 * 5 s for the lock file (ECATLOCK). Cancel: none; a change is atomic (done or not).
 */
export class VolumeCatalogue {
  readonly path: string;
  #cache: { mtimeMs: number; size: number; file: CatalogueFile } | null = null;

  constructor(path: string) {
    this.path = path;
  }

  /** Creates the catalogue with `slots` storage slots when the file does not exist yet. */
  static async create(path: string, slots: number): Promise<VolumeCatalogue> {
    if (!Number.isInteger(slots) || slots < 1 || slots > 4000) throw new CatalogueError('EBADCAT', `a catalogue has 1..4000 slots (got ${slots})`);
    const c = new VolumeCatalogue(path);
    await c.#locked(async (f) => f ?? { format: 'ptpvts.catalogue/1', slots, volumes: [] }, true);
    return c;
  }

  async #read(): Promise<CatalogueFile | null> {
    let text: string;
    let st;
    try {
      st = await stat(this.path);
      if (this.#cache !== null && this.#cache.mtimeMs === st.mtimeMs && this.#cache.size === st.size) return this.#cache.file;
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CatalogueError('EBADCAT', `${this.path} is not JSON`);
    }
    const r = fileSchema.safeParse(parsed);
    if (!r.success) throw new CatalogueError('EBADCAT', `${this.path} is not a volume catalogue: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    this.#cache = { mtimeMs: st.mtimeMs, size: st.size, file: r.data };
    return r.data;
  }

  async #file(): Promise<CatalogueFile> {
    const f = await this.#read();
    if (f === null) throw new CatalogueError('EBADCAT', `no volume catalogue at ${this.path} (a virtual library creates it)`);
    return f;
  }

  /** Runs `fn` on the file under the lock and writes back what it returns (unless unchanged). */
  async #locked<T extends CatalogueFile | null>(fn: (f: CatalogueFile | null) => Promise<T> | T, allowMissing = false): Promise<T> {
    const lock = `${this.path}.lock`;
    const end = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const h = await open(lock, 'wx');
        await h.close();
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > LOCK_STALE_MS) await unlink(lock).catch(() => undefined);
        else if (Date.now() > end) throw new CatalogueError('ECATLOCK', `${lock} is held by another process for more than ${LOCK_WAIT_MS} ms`);
        else await new Promise((r) => setTimeout(r, 20));
      }
    }
    try {
      this.#cache = null;
      const before = await this.#read();
      if (before === null && !allowMissing) throw new CatalogueError('EBADCAT', `no volume catalogue at ${this.path} (a virtual library creates it)`);
      const after = await fn(before);
      if (after !== null && after !== before) {
        await writeJsonDurable(this.path, after);
        this.#cache = null;
      }
      return after;
    } finally {
      await unlink(lock).catch(() => undefined);
    }
  }

  /** Number of storage slots of every virtual library using this catalogue. */
  async slots(): Promise<number> {
    return (await this.#file()).slots;
  }

  /** Every volume, by home slot. */
  async list(): Promise<CatalogueEntry[]> {
    return [...(await this.#file()).volumes].sort((a, b) => a.slot - b.slot);
  }

  async get(volser: string): Promise<CatalogueEntry | undefined> {
    return (await this.#file()).volumes.find((v) => v.volser === volser);
  }

  /** A stamp that changes whenever the file does (a virtual library re-reads it then). */
  async version(): Promise<string> {
    const st = await stat(this.path).catch(() => null);
    return st === null ? 'missing' : `${st.mtimeMs}:${st.size}`;
  }

  /**
   * Inserts volumes (each into the lowest free home slot), in the scratch category unless
   * told. Rejects with EVOLEXISTS (already in), ECATFULL (no free slot), EBADVOLSER.
   */
  async insert(volsers: readonly string[], o: { category?: VolumeCategory; copyMode?: CopyMode } = {}): Promise<CatalogueEntry[]> {
    for (const v of volsers) {
      try {
        checkVolser(v);
      } catch {
        throw new CatalogueError('EBADVOLSER', `volser ${JSON.stringify(v)} is not 1 to 6 characters A-Z, 0-9`);
      }
    }
    if (new Set(volsers).size !== volsers.length) throw new CatalogueError('EVOLEXISTS', `a volser is named twice: ${volsers.join(' ')}`);
    const added: CatalogueEntry[] = [];
    await this.#locked((f) => {
      const file = f as CatalogueFile;
      const used = new Set(file.volumes.map((v) => v.slot));
      const vols = [...file.volumes];
      for (const volser of volsers) {
        if (vols.some((v) => v.volser === volser)) throw new CatalogueError('EVOLEXISTS', `volume ${volser} is already in the catalogue`);
        let slot = 0;
        while (used.has(slot)) slot++;
        if (slot >= file.slots) throw new CatalogueError('ECATFULL', `no free slot for ${volser}: all ${file.slots} slots hold a volume`);
        used.add(slot);
        const e: CatalogueEntry = { volser, category: o.category ?? 'scratch', slot, insertedAt: Date.now(), ...(o.copyMode === undefined ? {} : { copyMode: o.copyMode }) };
        vols.push(e);
        added.push(e);
      }
      return { ...file, volumes: vols };
    });
    return added;
  }

  /** Removes a volume from the catalogue (its data stays on the VTS). Rejects with ENOVOL. */
  async eject(volser: string): Promise<CatalogueEntry> {
    let gone: CatalogueEntry | undefined;
    await this.#locked((f) => {
      const file = f as CatalogueFile;
      gone = file.volumes.find((v) => v.volser === volser);
      if (gone === undefined) throw new CatalogueError('ENOVOL', `volume ${volser} is not in the catalogue`);
      return { ...file, volumes: file.volumes.filter((v) => v.volser !== volser) };
    });
    return gone as CatalogueEntry;
  }

  /** Moves a volume to `category`. Rejects with ENOVOL. */
  async setCategory(volser: string, category: VolumeCategory): Promise<CatalogueEntry> {
    let out: CatalogueEntry | undefined;
    await this.#locked((f) => {
      const file = f as CatalogueFile;
      const e = file.volumes.find((v) => v.volser === volser);
      if (e === undefined) throw new CatalogueError('ENOVOL', `volume ${volser} is not in the catalogue`);
      out = { ...e, category };
      if (e.category === category) return file;
      return { ...file, volumes: file.volumes.map((v) => (v.volser === volser ? (out as CatalogueEntry) : v)) };
    });
    return out as CatalogueEntry;
  }
}
