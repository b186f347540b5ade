/**
 * Premigration and recall through a physical library: closed virtual volumes are copied
 * to cartridges the VTS owns, and copied back into the cache when a host mounts a volume
 * that was evicted. Works over any MediaChanger and TapeDrive clients (emulator, iSCSI,
 * SG_IO), never over anything library-specific.
 *
 * On a cartridge (docs/vts.md):
 *
 * ```
 * file 0:  label block "PTPVTSCL" + JSON {barcode, vts}      filemark
 * file n:  header block "PTPVTSVH" + JSON {volser, generation, bytes, sha256, blockSize}
 *          data blocks (the volume's bytes, blockSize each, last one shorter)  filemark
 * ```
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import type { Inventory, MediaChanger } from '../devices/media-changer.js';

/**
 * The robotics premigration needs: an inventory and a move. A MediaChanger (SCSI over any
 * binding) has them, and so has the serial robot client (src/transport/serial-robot).
 */
export interface Robotics {
  inventory(): Promise<Inventory>;
  move(source: number, destination: number): Promise<void>;
}
import type { TapeDrive } from '../devices/tape-drive.js';
import { SenseError, VolumeOverflowError } from '../devices/errors.js';
import type { ElementStatus } from '../scsi/parse-element-status.js';
import { SenseKey } from '../scsi/index.js';
import { nodeFs, type PlatformFs } from '../platform/fs.js';
import { readJson, removeTempFiles, unlinkQuiet, writeAll, writeJsonDurable } from './durable.js';
import { BadVolumeDataError, ClosedError, NoCartridgeError, PremigrationError, RecallError } from './errors.js';
import type { TapeCopy } from './volume-cache.js';

/** What the VTS knows of one of its cartridges. */
export const CartridgeState = {
  /** Never written by this VTS (or blank). */
  scratch: 'scratch',
  /** Holds volumes and takes more. */
  filling: 'filling',
  /** Past early warning: read only from now on. */
  full: 'full',
  /** A write failed on it: kept for reading what it holds, never written again. */
  failed: 'failed',
  /** Write protected. */
  readOnly: 'read-only',
  /** Holds data that is not this VTS's: never written. */
  foreign: 'foreign',
} as const;
export type CartridgeState = (typeof CartridgeState)[keyof typeof CartridgeState];

export interface CartridgeInfo {
  readonly state: CartridgeState;
  /** Volume copies written to it by this VTS. */
  readonly copies: number;
  readonly lastError?: string;
}

/** A volume to premigrate: its committed cache file and what identifies the data. */
export interface PremigrationSource {
  readonly volser: string;
  readonly generation: number;
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

/** Options of {@link Premigrator.open}. */
export interface PremigratorOptions {
  /** Name of the VTS, written in cartridge labels so another VTS's cartridges are never overwritten. */
  readonly vtsId: string;
  readonly changer: Robotics | MediaChanger;
  /** Drives in data transfer element order: `drives[i]` is the i-th data transfer element of the changer. */
  readonly drives: readonly TapeDrive[];
  /** Cartridges this VTS owns: a list of barcodes, or a predicate. Others are never touched. */
  readonly cartridges: readonly string[] | ((barcode: string) => boolean);
  /** Directory for `cartridges.json` (cartridge states survive restarts). */
  readonly stateDir: string;
  /** Tape block size for volume data. Default 256 KiB. */
  readonly blockSize?: number;
  /** Attempts per premigration or recall, each on another cartridge (write) or drive (read). Default 3. */
  readonly maxAttempts?: number;
  /** Attempts per robot move (a jam is often transient). Default 3. */
  readonly moveAttempts?: number;
  /** Pause between retries, ms. Default 500. */
  readonly retryDelayMs?: number;
  /** How long a loaded drive may take to become ready, ms. Default 120 000. */
  readonly readyTimeoutMs?: number;
  /** Injected wait (tests make retries instant; a simulation runs it on its clock). Default setTimeout. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** File system of the state directory and the cache files. Default node:fs. */
  readonly fs?: PlatformFs;
  readonly logger?: Logger;
}

const LABEL_MAGIC = 'PTPVTSCL';
const HEADER_MAGIC = 'PTPVTSVH';
const HEADER_MAX = 64 * 1024;

const labelSchema = z.object({ barcode: z.string(), vts: z.string() });
const headerSchema = z.object({
  volser: z.string(),
  generation: z.number().int(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string(),
  blockSize: z.number().int().positive(),
  vts: z.string(),
});
type VolumeHeader = z.infer<typeof headerSchema>;
const stateSchema = z.object({
  cartridges: z.record(z.string(), z.object({ state: z.enum(Object.values(CartridgeState) as [CartridgeState, ...CartridgeState[]]), copies: z.number().int().nonnegative(), lastError: z.string().optional() })),
});

function encodeTagged(magic: string, value: unknown): Buffer {
  return Buffer.concat([Buffer.from(magic, 'ascii'), Buffer.from(JSON.stringify(value), 'utf8')]);
}

function decodeTagged<T>(magic: string, block: Uint8Array, schema: z.ZodType<T>): T | undefined {
  const b = Buffer.from(block.buffer, block.byteOffset, block.length);
  if (b.length < magic.length || b.subarray(0, magic.length).toString('ascii') !== magic) return undefined;
  try {
    const r = schema.safeParse(JSON.parse(b.subarray(magic.length).toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

const isSense = (e: unknown, key: number): e is SenseError => e instanceof SenseError && e.key === key;
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const barcodeOf = (e: ElementStatus): string | undefined => e.primaryVolumeTag?.identifier.trim() || undefined;

/** A failed attempt, with what it says about the cartridge and the drive. */
class AttemptError extends Error {
  override readonly name = 'AttemptError';
  constructor(
    readonly verdict: { cartridge?: CartridgeState; avoidDrive?: boolean; fatal?: boolean },
    cause: unknown,
  ) {
    super(message(cause), { cause });
  }
}

interface DriveSlot {
  readonly index: number;
  readonly drive: TapeDrive;
  busy: boolean;
}

/** Counts of work done, for status and tests. */
export interface PremigratorStats {
  premigrated: number;
  recalled: number;
  failedAttempts: number;
  robotRetries: number;
}

/**
 * Writes volumes to cartridges and reads them back. At most one job per drive runs at a
 * time; further jobs wait for a drive, recalls ahead of premigrations (a host waits on a
 * recall). Robot motions are serialised.
 *
 * Errors: a job that fails on every attempt rejects with {@link PremigrationError} or
 * {@link RecallError} whose `cause` is the last device error (a `SenseError` naming key and
 * ASC, or the port's `TransportError`). Each attempt returns the cartridge to its slot, or,
 * when the robot cannot, leaves it in the drive, where the next job on that drive returns
 * it first. Timeout: each device command has its client's timeout; a drive that does not
 * become ready within `readyTimeoutMs` fails the attempt. Cancel: not supported: a job
 * runs to its end; {@link Premigrator.close} lets running jobs finish and rejects waiting
 * ones with `ClosedError`.
 */
export class Premigrator {
  readonly stats: PremigratorStats = { premigrated: 0, recalled: 0, failedAttempts: 0, robotRetries: 0 };
  readonly #o: PremigratorOptions;
  readonly #log: Logger;
  readonly #owned: (barcode: string) => boolean;
  readonly #slots: DriveSlot[];
  readonly #waiters: { recall: boolean; avoid: ReadonlySet<number>; resolve: (s: DriveSlot) => void; reject: (e: Error) => void }[] = [];
  readonly #cartBusy = new Set<string>();
  /** Those waiting for a busy cartridge (see {@link #cartReleased}). */
  readonly #releaseWaiters: Array<() => void> = [];
  readonly #carts = new Map<string, CartridgeInfo>();
  readonly #statePath: string;
  readonly #fs: PlatformFs;
  #robot: Promise<unknown> = Promise.resolve();
  /** Writes of cartridges.json, one at a time, so the last on disk is the newest state (two drives finish together). */
  #stateTail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(o: PremigratorOptions) {
    this.#o = o;
    this.#log = (o.logger ?? pino({ level: 'silent' })).child({ component: 'vts-premigration', vts: o.vtsId });
    const c = o.cartridges;
    const list = typeof c === 'function' ? undefined : new Set(c.map((b) => b.trim()));
    this.#owned = typeof c === 'function' ? c : (b) => list?.has(b) ?? false;
    this.#slots = o.drives.map((drive, index) => ({ index, drive, busy: false }));
    this.#statePath = join(o.stateDir, 'cartridges.json');
    this.#fs = o.fs ?? nodeFs;
    if (this.#slots.length === 0) throw new RangeError('a premigrator needs at least one drive');
  }

  /** Loads cartridge states from `stateDir`. Rejects with StateFileError when the file is corrupt. */
  static async open(o: PremigratorOptions): Promise<Premigrator> {
    const p = new Premigrator(o);
    await removeTempFiles(p.#statePath, p.#fs);
    const st = await readJson(p.#statePath, stateSchema, p.#fs);
    for (const [b, info] of Object.entries(st?.cartridges ?? {})) p.#carts.set(b, info);
    return p;
  }

  get driveCount(): number {
    return this.#slots.length;
  }

  get blockSize(): number {
    return this.#o.blockSize ?? 256 * 1024;
  }

  /** Cartridge states (only cartridges this VTS has used or examined). */
  cartridges(): ReadonlyMap<string, CartridgeInfo> {
    return new Map(this.#carts);
  }

  /** Lets running jobs finish; jobs waiting for a drive reject with ClosedError. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.reject(new ClosedError('premigrator'));
  }

  async #setCart(barcode: string, change: Partial<CartridgeInfo>): Promise<void> {
    const old = this.#carts.get(barcode) ?? { state: CartridgeState.scratch, copies: 0 };
    this.#carts.set(barcode, { ...old, ...change });
    // Each write takes the states as they are when its turn comes, not when it was asked for.
    const write = (): Promise<void> => writeJsonDurable(this.#statePath, { cartridges: Object.fromEntries(this.#carts) }, this.#fs);
    const run = this.#stateTail.then(write, write);
    this.#stateTail = run.catch(() => undefined);
    await run;
  }

  #sleep(ms: number): Promise<void> {
    return this.#o.sleep ? this.#o.sleep(ms) : new Promise((r) => setTimeout(r, ms));
  }

  // ------------------------------------------------------------------ drives and robot

  #acquire(recall: boolean, avoid: ReadonlySet<number>): Promise<DriveSlot> {
    if (this.#closed) return Promise.reject(new ClosedError('premigrator'));
    const free = this.#slots.filter((s) => !s.busy);
    const pick = free.find((s) => !avoid.has(s.index)) ?? (avoid.size >= this.#slots.length ? free[0] : undefined);
    if (pick) {
      pick.busy = true;
      return Promise.resolve(pick);
    }
    return new Promise((resolve, reject) => {
      const w = { recall, avoid, resolve, reject };
      // Recalls go ahead of premigrations: a host is waiting on them.
      const at = recall ? this.#waiters.findIndex((x) => !x.recall) : -1;
      if (at < 0) this.#waiters.push(w);
      else this.#waiters.splice(at, 0, w);
    });
  }

  #release(slot: DriveSlot): void {
    const w = this.#waiters.shift();
    if (w) w.resolve(slot);
    else slot.busy = false;
  }

  /** Runs robot work one at a time: the changer has one transport. */
  #withRobot<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#robot.then(fn, fn);
    this.#robot = run.catch(() => undefined);
    return run;
  }

  async #move(source: number, destination: number): Promise<void> {
    const attempts = this.#o.moveAttempts ?? 3;
    for (let i = 1; ; i++) {
      try {
        await this.#withRobot(() => this.#o.changer.move(source, destination));
        return;
      } catch (e) {
        // A unit attention says something changed (e.g. inventory), not that the move is wrong.
        const retriable = isSense(e, SenseKey.HARDWARE_ERROR) || isSense(e, SenseKey.UNIT_ATTENTION) || isSense(e, SenseKey.NOT_READY);
        if (!retriable || i >= attempts) throw e;
        this.stats.robotRetries++;
        this.#log.warn({ source, destination, attempt: i, err: message(e) }, 'robot move failed; retrying');
        await this.#sleep(this.#o.retryDelayMs ?? 500);
      }
    }
  }

  #inventory(): Promise<Inventory> {
    return this.#withRobot(() => this.#o.changer.inventory());
  }

  /** Empties a drive left holding a cartridge (by an earlier failed return, or by someone else). */
  async #clearDrive(slot: DriveSlot): Promise<void> {
    const inv = await this.#inventory();
    const el = inv.dataTransfer[slot.index];
    if (!el) throw new RangeError(`the changer has no data transfer element ${slot.index + 1}`);
    if (!el.full) return;
    await slot.drive.unload().catch((e: unknown) => this.#log.warn({ drive: slot.index + 1, err: message(e) }, 'unload before clearing drive failed'));
    const home = inv.storage.find((s) => s.address === el.sourceAddress && !s.full) ?? inv.storage.find((s) => !s.full);
    if (!home) throw new NoCartridgeError(`drive ${slot.index + 1} holds a cartridge and no storage slot is free`);
    this.#log.warn({ drive: slot.index + 1, barcode: barcodeOf(el), to: home.address }, 'returning a cartridge left in a drive');
    await this.#move(el.address, home.address);
  }

  /**
   * Mounts `barcode` in the drive of `slot`, runs `work`, then unloads and returns the
   * cartridge to its slot whatever happened. A failed return is logged and left for
   * the next job on that drive ({@link #clearDrive}).
   */
  async #onDrive<T>(slot: DriveSlot, barcode: string, work: (d: TapeDrive) => Promise<T>): Promise<T> {
    await this.#clearDrive(slot);
    const inv = await this.#inventory();
    const el = inv.all.find((e) => e.full && barcodeOf(e) === barcode);
    const driveEl = inv.dataTransfer[slot.index];
    if (!el || !driveEl) throw new NoCartridgeError(`cartridge ${barcode} is not in the library`);
    if (el.type === driveEl.type) throw new AttemptError({}, new Error(`cartridge ${barcode} is in drive element ${el.address}`));
    const home = el.address;
    await this.#move(home, driveEl.address);
    try {
      await slot.drive.waitReady({ timeoutMs: this.#o.readyTimeoutMs ?? 120_000, intervalMs: 200 });
      const mode = await slot.drive.blockMode();
      if (mode.blockSize !== 0) await slot.drive.setBlockSize(0);
      return await work(slot.drive);
    } finally {
      try {
        await slot.drive.unload().catch(async (e: unknown) => {
          // A unit attention can sit in front of the unload; one more try consumes it.
          if (!isSense(e, SenseKey.UNIT_ATTENTION)) throw e;
          await slot.drive.unload();
        });
        await this.#move(driveEl.address, home);
      } catch (e) {
        this.#log.error({ barcode, drive: slot.index + 1, err: message(e) }, 'could not return cartridge to its slot; the next job on this drive will');
      }
    }
  }

  // ------------------------------------------------------------------ premigration

  /**
   * The first candidate cartridge, waiting while every writable one is busy with another
   * copy: volumes queued together share a cartridge one after the other instead of the later
   * ones failing for want of one. Undefined when no owned cartridge is writable at all.
   */
  async #freeCandidate(exclude: ReadonlySet<string>): Promise<string | undefined> {
    for (;;) {
      const [free] = await this.#candidates(exclude);
      if (free !== undefined && !this.#cartBusy.has(free)) return free;
      // A cartridge busy with another copy is in a drive, not in its slot.
      if (free === undefined && ![...this.#cartBusy].some((b) => this.#owned(b) && this.#writable(b) && !exclude.has(b))) return undefined;
      await this.#cartReleased();
    }
  }

  /** Resolves when a copy or recall lets go of a cartridge. */
  #cartReleased(): Promise<void> {
    return new Promise((resolve) => this.#releaseWaiters.push(resolve));
  }

  #releaseCart(barcode: string): void {
    this.#cartBusy.delete(barcode);
    const waiters = this.#releaseWaiters.splice(0);
    for (const w of waiters) w();
  }

  /** A cartridge that may take another copy: new, or filling. */
  #writable(b: string): boolean {
    const s = this.#carts.get(b)?.state ?? CartridgeState.scratch;
    return s === CartridgeState.scratch || s === CartridgeState.filling;
  }

  /** Owned, writable cartridges in their slots and not in use, filling ones first so cartridges fill one by one. */
  async #candidates(exclude: ReadonlySet<string>): Promise<string[]> {
    const inv = await this.#inventory();
    const rank = (b: string): number => (this.#carts.get(b)?.state === CartridgeState.filling ? 0 : 1);
    return inv.storage
      .filter((e) => e.full)
      .map(barcodeOf)
      .filter((b): b is string => b !== undefined && this.#owned(b) && this.#writable(b) && !exclude.has(b) && !this.#cartBusy.has(b))
      .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  }

  /**
   * Copies one volume to a cartridge. Resolves with where the copy is. On a failed
   * attempt the cartridge is marked by what failed (full, failed, read-only, foreign)
   * and the next attempt takes another cartridge, on another drive after a drive fault.
   */
  async premigrate(src: PremigrationSource): Promise<TapeCopy> {
    const attempts = this.#o.maxAttempts ?? 3;
    const triedCarts = new Set<string>();
    const avoid = new Set<number>();
    let last: unknown;
    for (let i = 1; i <= attempts; i++) {
      const slot = await this.#acquire(false, avoid);
      let barcode: string | undefined;
      try {
        barcode = await this.#freeCandidate(triedCarts);
        if (barcode === undefined) throw new NoCartridgeError(`no writable cartridge left for ${src.volser} (owned cartridges are full, failed, protected or busy)`);
        this.#cartBusy.add(barcode);
        const bc = barcode;
        const copy = await this.#onDrive(slot, bc, (d) => this.#writeCopy(d, bc, src));
        this.stats.premigrated++;
        this.#log.info({ volser: src.volser, generation: src.generation, barcode: bc, block: copy.block, drive: slot.index + 1 }, 'premigrated');
        return copy;
      } catch (e) {
        // Running out of cartridges after a failure: the failure is the news, not the shortage.
        if (e instanceof NoCartridgeError) {
          last ??= e;
          break;
        }
        last = e instanceof AttemptError ? e.cause : e;
        this.stats.failedAttempts++;
        // Only a verdict on the cartridge rules it out: a robot or drive fault says nothing about it.
        if (barcode !== undefined && e instanceof AttemptError && e.verdict.cartridge) triedCarts.add(barcode);
        if (e instanceof AttemptError && e.verdict.avoidDrive) avoid.add(slot.index);
        if (e instanceof AttemptError && barcode !== undefined && e.verdict.cartridge) await this.#setCart(barcode, { state: e.verdict.cartridge, lastError: message(last) });
        this.#log.warn({ volser: src.volser, barcode, drive: slot.index + 1, attempt: i, err: message(last) }, 'premigration attempt failed');
        if (i < attempts) await this.#sleep(this.#o.retryDelayMs ?? 500);
      } finally {
        if (barcode !== undefined) this.#releaseCart(barcode);
        this.#release(slot);
      }
    }
    throw new PremigrationError(src.volser, message(last), { cause: last });
  }

  /** Positions at end of data of an owned cartridge, labelling a blank one; returns where the next file starts. */
  async #prepareAppend(d: TapeDrive, barcode: string): Promise<{ block: number; fileNumber: number }> {
    await d.rewind();
    const first = await d.read(HEADER_MAX, { sili: true });
    if (first.eod) {
      await d.rewind();
      await d.writeBlock(encodeTagged(LABEL_MAGIC, { barcode, vts: this.#o.vtsId }));
      await d.writeFilemarks(1);
    } else {
      const label = first.filemark ? undefined : decodeTagged(LABEL_MAGIC, first.data, labelSchema);
      if (!label || label.barcode !== barcode || label.vts !== this.#o.vtsId) {
        throw new AttemptError({ cartridge: CartridgeState.foreign }, new Error(`cartridge ${barcode} holds data that is not VTS ${this.#o.vtsId}'s`));
      }
      await d.spaceToEndOfData();
    }
    const pos = await d.position();
    if (pos.unknown || pos.fileNumber === undefined) throw new AttemptError({}, new Error(`drive does not know its position on ${barcode}`));
    if (pos.bpew || pos.eop) throw new AttemptError({ cartridge: CartridgeState.full }, new Error(`cartridge ${barcode} is past early warning`));
    return { block: pos.block, fileNumber: pos.fileNumber };
  }

  async #writeCopy(d: TapeDrive, barcode: string, src: PremigrationSource): Promise<TapeCopy> {
    let earlyWarning = false;
    try {
      const at = await this.#prepareAppend(d, barcode);
      const bs = this.blockSize;
      const header: VolumeHeader = { volser: src.volser, generation: src.generation, bytes: src.bytes, sha256: src.sha256, blockSize: bs, vts: this.#o.vtsId };
      // Every write must run: `||=` would skip the call once early warning was seen.
      earlyWarning = (await d.writeBlock(encodeTagged(HEADER_MAGIC, header))).earlyWarning || earlyWarning;
      const fh = await this.#fs.open(src.path, 'r');
      const hash = createHash('sha256');
      let done = 0;
      try {
        const buf = Buffer.alloc(bs);
        while (done < src.bytes) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(bs, src.bytes - done), done);
          if (bytesRead === 0) throw new AttemptError({ fatal: true }, new BadVolumeDataError(`${src.path} is shorter than ${src.bytes} bytes`));
          const chunk = buf.subarray(0, bytesRead);
          hash.update(chunk);
          // Past early warning SSC lets the current file finish; only VOLUME OVERFLOW stops it.
          earlyWarning = (await d.writeBlock(chunk)).earlyWarning || earlyWarning;
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
      if (hash.digest('hex') !== src.sha256) throw new AttemptError({ fatal: true }, new BadVolumeDataError(`${src.volser}: cache file changed while premigrating`));
      earlyWarning = (await d.writeFilemarks(1)).earlyWarning || earlyWarning;
      // The position must show every object written; a mismatch means the copy is not whole.
      const blocks = Math.ceil(src.bytes / bs);
      const end = await d.position();
      if (end.block !== at.block + blocks + 2) throw new AttemptError({ cartridge: CartridgeState.failed }, new Error(`after writing ${src.volser} the drive is at block ${end.block}, expected ${at.block + blocks + 2}`));
      const info = this.#carts.get(barcode);
      await this.#setCart(barcode, { state: earlyWarning ? CartridgeState.full : CartridgeState.filling, copies: (info?.copies ?? 0) + 1 });
      if (earlyWarning) this.#log.info({ barcode }, 'cartridge reached early warning; marked full');
      return { barcode, block: at.block, fileNumber: at.fileNumber, generation: src.generation, bytes: src.bytes, sha256: src.sha256 };
    } catch (e) {
      throw classifyWrite(e);
    }
  }

  // ------------------------------------------------------------------ recall

  /**
   * Reads a volume copy back into `destPath` (created; removed again on failure), after
   * checking the header names `volser` at `copy.generation`, and the bytes against the
   * recorded SHA-256. A failed attempt is retried on another drive. The file is not made
   * durable here: the caller fsyncs it before it names it anywhere.
   */
  async recall(volser: string, copy: TapeCopy, destPath: string): Promise<void> {
    const attempts = this.#o.maxAttempts ?? 3;
    const avoid = new Set<number>();
    let last: unknown;
    for (let i = 1; i <= attempts; i++) {
      const slot = await this.#acquire(true, avoid);
      let holding = false;
      try {
        while (this.#cartBusy.has(copy.barcode)) await this.#cartReleased();
        this.#cartBusy.add(copy.barcode);
        holding = true;
        await this.#onDrive(slot, copy.barcode, (d) => this.#readCopy(d, volser, copy, destPath));
        this.stats.recalled++;
        this.#log.info({ volser, generation: copy.generation, barcode: copy.barcode, drive: slot.index + 1 }, 'recalled');
        return;
      } catch (e) {
        await unlinkQuiet(destPath, this.#fs);
        last = e instanceof AttemptError ? e.cause : e;
        this.stats.failedAttempts++;
        avoid.add(slot.index);
        this.#log.warn({ volser, barcode: copy.barcode, drive: slot.index + 1, attempt: i, err: message(last) }, 'recall attempt failed');
        if (e instanceof AttemptError && e.verdict.fatal) break;
        if (e instanceof NoCartridgeError) break;
        if (i < attempts) await this.#sleep(this.#o.retryDelayMs ?? 500);
      } finally {
        if (holding) this.#releaseCart(copy.barcode);
        this.#release(slot);
      }
    }
    throw new RecallError(volser, message(last), { cause: last });
  }

  async #readCopy(d: TapeDrive, volser: string, copy: TapeCopy, destPath: string): Promise<void> {
    await d.locate(copy.block);
    const h = await d.read(HEADER_MAX, { sili: true });
    const header = h.filemark || h.eod ? undefined : decodeTagged(HEADER_MAGIC, h.data, headerSchema);
    if (!header) throw new AttemptError({ fatal: true }, new BadVolumeDataError(`no volume header at block ${copy.block} of ${copy.barcode}`));
    if (header.volser !== volser || header.generation !== copy.generation || header.sha256 !== copy.sha256) {
      throw new AttemptError({ fatal: true }, new BadVolumeDataError(`block ${copy.block} of ${copy.barcode} holds ${header.volser} generation ${header.generation}, not ${volser} generation ${copy.generation}`));
    }
    const fh = await this.#fs.open(destPath, 'wx');
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for (;;) {
        const r = await d.read(header.blockSize, { sili: true });
        if (r.data.length) {
          await writeAll(fh, r.data, bytes, destPath);
          hash.update(r.data);
          bytes += r.data.length;
        }
        if (r.filemark) break;
        if (r.eod) throw new AttemptError({ fatal: true }, new BadVolumeDataError(`copy of ${volser} on ${copy.barcode} ends without a filemark`));
        if (bytes > header.bytes) break;
      }
      // No fsync here: the file only becomes cache data through VolumeCache.installRecalled,
      // which fsyncs this same inode before renaming it in; a cut before that finds a work file.
    } finally {
      await fh.close();
    }
    const sha = hash.digest('hex');
    if (bytes !== header.bytes || sha !== header.sha256) {
      throw new AttemptError({ fatal: true }, new BadVolumeDataError(`copy of ${volser} on ${copy.barcode}: ${bytes} bytes sha256 ${sha}, expected ${header.bytes} bytes sha256 ${header.sha256}`));
    }
  }
}

/** What a write failure says about the cartridge and the drive. */
function classifyWrite(e: unknown): unknown {
  if (e instanceof AttemptError || e instanceof NoCartridgeError) return e;
  if (e instanceof VolumeOverflowError) return new AttemptError({ cartridge: CartridgeState.full }, e);
  if (isSense(e, SenseKey.DATA_PROTECT)) return new AttemptError({ cartridge: CartridgeState.readOnly }, e);
  // The medium or the drive may be at fault; neither is trusted for the next attempt.
  if (isSense(e, SenseKey.MEDIUM_ERROR)) return new AttemptError({ cartridge: CartridgeState.failed, avoidDrive: true }, e);
  if (isSense(e, SenseKey.HARDWARE_ERROR)) return new AttemptError({ avoidDrive: true }, e);
  if (isSense(e, SenseKey.ILLEGAL_REQUEST) && e.asc === 0x30) return new AttemptError({ cartridge: CartridgeState.failed }, e);
  return new AttemptError({}, e);
}
