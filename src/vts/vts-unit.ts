/**
 * One Virtual Tape Server (a distributed library of a PtP composite library): virtual
 * volumes for hosts over the tape volume cache, tokens per volume, the VTS's status and
 * the last key seq it recorded, peer copies in and out, and premigration to a physical
 * library when one is attached.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { nodeFs, type PlatformFs } from '../platform/fs.js';
import { EarlyWriteback, mkdirDurable, readJson, syncDir, unlinkQuiet, writeAll } from './durable.js';
import { SlotFile } from './slot-file.js';
import { StateFileError } from './errors.js';
import {
  BadHandleError,
  BadVolumeDataError,
  ClosedError,
  FencedError,
  MountAbortedError,
  MountLimitError,
  MountsRefusedError,
  ReadOnlyMountError,
  RecallError,
  StaleGenerationError,
  VolumeInUseError,
  VolumeNotConsistentError,
  VolumeNotFoundError,
  VtsOutOfOperationError,
  checkVolser,
} from './errors.js';
import { Premigrator, type PremigratorOptions } from './premigration.js';
import { VolumeCache, VolumeFile, frameRecord, hashFile, isPremigrated, isResident, tokenOf, type VolumeMeta, type VolumeToken } from './volume-cache.js';
import { MAX_HOST_BLOCK, RecordKind, VolumeParser } from './volume-format.js';

/** The physical library behind a VTS: what {@link Premigrator} needs besides the VTS's name and state directory. */
export type VtsLibraryOptions = Omit<PremigratorOptions, 'vtsId' | 'stateDir' | 'logger' | 'fs'>;

/** Options of {@link VtsUnit.open}. */
export interface VtsUnitOptions {
  /** The VTS's name: `A`, `B`, or any. */
  readonly id: string;
  /** Directory of the tape volume cache. */
  readonly cacheDir: string;
  /** Directory of the VTS's own state (status, last key seq, cartridge states). */
  readonly stateDir: string;
  /** Cache capacity in bytes; premigrated volumes are evicted (LRU) to stay under it. Default unlimited. */
  readonly cacheCapacityBytes?: number;
  /** Virtual drives: most volumes mounted at once. Default 16. */
  readonly maxMounts?: number;
  /** Physical library for premigration and recall. Without one, volumes stay in cache. */
  readonly library?: VtsLibraryOptions;
  /** Queue a volume for premigration at every close and at open. Default true with a library. */
  readonly autoPremigrate?: boolean;
  /** Status of a VTS that has no state file yet. Default in operation. */
  readonly initiallyInOperation?: boolean;
  /** Clock (ms) for the cache's LRU order. Default Date.now. The VTS has no timer of its own (retry waits: `library.sleep`). */
  readonly now?: () => number;
  /** Source of random identities (image id, boot id, data file nonces). Default node:crypto randomBytes. */
  readonly randomBytes?: (size: number) => Buffer;
  /** File system of both directories. Default node:fs. */
  readonly fs?: PlatformFs;
  readonly logger?: Logger;
}

/** An active mount. Opaque: pass it back to the host operations. */
export interface MountHandle {
  readonly id: number;
  readonly volser: string;
  readonly writable: boolean;
}

/**
 * The writer's epoch: the seq and MAC of the newest key it holds. Host I/O, token updates and
 * copies carrying one are refused with {@link FencedError} when this VTS recorded a newer key,
 * or another key with the same seq (a fork).
 */
export interface Fence {
  readonly epoch?: number;
  readonly epochMac?: string;
  /** The boot of this VTS the writer knows: refused when the VTS has restarted since (it may be a restored image). */
  readonly bootId?: string;
  /** The newest key seq the writer knows this VTS confirmed recording: refused when it reports less (an older image of itself). */
  readonly minSeq?: number;
}

export interface MountOptions extends Fence {
  /** Scratch mount: the volume is presented empty (created if new) and its old data is discarded at close. */
  readonly scratch?: boolean;
  /** Default true; a read-only mount refuses writes. */
  readonly writable?: boolean;
  /** The caller's epoch (newest key seq it knows): refused when older than this VTS's last key seq. */
  readonly epoch?: number;
  /** MAC of the caller's newest key: refused when the VTS recorded another key with the same seq. */
  readonly epochMac?: string;
}

export interface CloseOptions extends Fence {
  /** Generation of the new data, as the VTC planned it. Default: the current generation + 1. */
  readonly generation?: number;
  readonly epoch?: number;
  readonly epochMac?: string;
  /**
   * The sha256 the mount's data must have: a VTC that wrote the same blocks to both VTS
   * commits the second with the first's hash, as a copy carries the source's. A mount whose
   * data differs is refused with BadVolumeDataError (the mount stays: abandon it).
   */
  readonly sha256?: string;
}

/** One READ from a mounted volume, with tape semantics. */
export type HostRead =
  | { readonly kind: 'block'; readonly data: Uint8Array; readonly length: number; readonly truncated: boolean }
  | { readonly kind: 'filemark' }
  | { readonly kind: 'eod' };

/** A volume as {@link VtsUnit.volumes} lists it. */
export interface VolumeInfo {
  readonly volser: string;
  readonly token: VolumeToken;
  readonly dataGeneration: number;
  readonly bytes: number;
  readonly resident: boolean;
  readonly premigrated: boolean;
  readonly mounted: boolean;
}

/** A volume's committed data, streamed out for a peer copy. */
export interface VolumeExport {
  readonly volser: string;
  readonly token: VolumeToken;
  readonly bytes: number;
  readonly records: number;
  readonly sha256: string;
  /** The volume's bytes (volume-format.ts), in chunks; iterate once. The file stays readable even if the volume changes meanwhile. */
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Releases the export without reading it (reading to the end releases it too). */
  release(): Promise<void>;
}

/** What the protocol core sees of this VTS (the shape of src/ptp VtsView). */
export interface VtsStatusView {
  readonly name: string;
  readonly inOperation: boolean;
  readonly lastKeySeq: number;
  readonly behind: readonly string[];
  /** MAC of the key recorded as lastKeySeq ('' when none or not given). */
  readonly lastKeyMac: string;
  /** Random identity of these disks, made once when the state file is created: a restore carries it, another image does not. */
  readonly imageId: string;
  /** Random per open: a VTS seen with a new boot id has been down (and may be a restored image). */
  readonly bootId: string;
  /** Sum of every volume's token generation: never goes down (generations only move forward, volumes are never removed), so a restored older image reports less. */
  readonly tokenSum: number;
}

export interface PremigrationStatus {
  readonly queued: readonly string[];
  readonly running: readonly string[];
  readonly failed: ReadonlyMap<string, Error>;
}

interface Mount {
  readonly handle: MountHandle;
  readonly scratch: boolean;
  committed: VolumeFile | null;
  work: VolumeFile | null;
  pos: number;
  modified: boolean;
  aborted: string | null;
  chain: Promise<unknown>;
}

// imageId and lastKeyMac are optional for state files written before they existed.
const stateSchema = z.object({ id: z.string(), lastKeySeq: z.number().int().nonnegative(), inOperation: z.boolean(), lastKeyMac: z.string().max(256).optional(), imageId: z.string().max(64).optional() });
const newImageId = (random: (size: number) => Buffer): string => random(12).toString('hex');

/** How many aborted mounts a VTS remembers the reason of (see VtsUnit.#abortedHandles). */
export const ABORTED_HANDLES_KEPT = 4096;

/**
 * A VTS. Every host operation rejects with {@link VtsOutOfOperationError} while the VTS
 * is out of operation, and with {@link MountAbortedError} once its mount was aborted.
 * Operations on one mount run in order; operations on different mounts run concurrently.
 *
 * Timeout: host operations have none of their own (they are local file work), except a
 * mount that recalls from tape, bounded by the device clients' timeouts. Cancel: a host
 * operation cannot be cancelled; {@link abortMounts} ends mounts and discards what they
 * wrote. Error: file system errors reject unchanged; the acknowledged state on disk is
 * then the one before the call.
 */
export class VtsUnit {
  readonly id: string;
  readonly cache: VolumeCache;
  readonly premigrator: Premigrator | undefined;
  readonly maxMounts: number;
  readonly #log: Logger;
  readonly #state: SlotFile;
  readonly #autoPremigrate: boolean;
  #inOperation: boolean;
  #lastKeySeq: number;
  #lastKeyMac: string;
  readonly #imageId: string;
  readonly #bootId: string;
  readonly #fs: PlatformFs;
  #refuse = false;
  #closed = false;
  #nextHandle = 1;
  readonly #mounts = new Map<number, Mount>();
  /** Volumes held by a mount, a copy in or a recall: one holder at a time. */
  readonly #busy = new Set<string>();
  /** Volumes a host mount is being set up for (busy, not yet in the mounts). */
  readonly #mounting = new Set<string>();
  readonly #pmQueue: string[] = [];
  readonly #pmRunning = new Set<string>();
  readonly #pmFailed = new Map<string, Error>();
  #pmIdle: (() => void)[] = [];

  private constructor(o: VtsUnitOptions, cache: VolumeCache, premigrator: Premigrator | undefined, stateFile: SlotFile, state: z.infer<typeof stateSchema>, log: Logger) {
    this.id = o.id;
    this.cache = cache;
    this.premigrator = premigrator;
    this.maxMounts = o.maxMounts ?? 16;
    this.#log = log;
    this.#state = stateFile;
    this.#autoPremigrate = o.autoPremigrate ?? premigrator !== undefined;
    this.#inOperation = state.inOperation;
    this.#lastKeySeq = state.lastKeySeq;
    this.#lastKeyMac = state.lastKeyMac ?? '';
    const random = o.randomBytes ?? randomBytes;
    this.#imageId = state.imageId ?? newImageId(random);
    this.#bootId = random(8).toString('hex');
    this.#fs = o.fs ?? nodeFs;
  }

  /**
   * Opens a VTS from its directories, creating them for a new one. After a crash the
   * cache recovers (see {@link VolumeCache.open}); status and last key seq are those last
   * made durable. Closed volumes without a current tape copy are queued for premigration.
   */
  static async open(o: VtsUnitOptions): Promise<VtsUnit> {
    const log = (o.logger ?? pino({ level: 'silent' })).child({ component: 'vts', vts: o.id });
    const fs = o.fs ?? nodeFs;
    const random = o.randomBytes ?? randomBytes;
    await mkdirDurable(o.stateDir, fs);
    const cache = await VolumeCache.open({ dir: o.cacheDir, ...(o.cacheCapacityBytes === undefined ? {} : { capacityBytes: o.cacheCapacityBytes }), ...(o.now ? { now: o.now } : {}), randomBytes: random, fs, logger: log });
    const premigrator = o.library ? await Premigrator.open({ ...o.library, vtsId: o.id, stateDir: o.stateDir, fs, logger: log }) : undefined;
    // Status and last key seq live in a two-slot file (one data flush per save). A state
    // file of the earlier JSON format is carried over once, then removed.
    const legacy = join(o.stateDir, 'vts-state.json');
    const statePath = join(o.stateDir, 'vts-state.bin');
    const encode = (v: z.infer<typeof stateSchema>): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
    const { file, payload } = await SlotFile.open(statePath, () => encode({ id: o.id, lastKeySeq: 0, inOperation: o.initiallyInOperation ?? true, imageId: newImageId(random) }), fs);
    let state: z.infer<typeof stateSchema>;
    try {
      const fresh = JSON.parse(new TextDecoder().decode(payload)) as unknown;
      const r = stateSchema.safeParse(fresh);
      if (!r.success) throw new StateFileError(statePath, r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
      state = r.data;
    } catch (e) {
      await file.close();
      throw e instanceof StateFileError ? e : new StateFileError(statePath, 'state is not valid JSON', { cause: e });
    }
    const carried = await readJson(legacy, stateSchema, fs);
    if (carried !== undefined) {
      state = carried;
      await file.save(encode(state));
      await unlinkQuiet(legacy, fs);
      // Else a power cut brings the old file back, and the next open carries an older state over the newer.
      await syncDir(o.stateDir, fs);
    }
    const vts = new VtsUnit(o, cache, premigrator, file, state, log);
    // A state file from before image ids gets one now, durably, so it stays the same.
    if (state.imageId === undefined) await vts.#saveState();
    if (vts.#autoPremigrate) for (const m of cache.list()) if (isResident(m) && !isPremigrated(m) && m.dataGeneration > 0) vts.#enqueue(m.volser);
    log.info({ inOperation: state.inOperation, lastKeySeq: state.lastKeySeq, volumes: cache.list().length }, 'VTS opened');
    return vts;
  }

  // ------------------------------------------------------------------ status and keys

  get inOperation(): boolean {
    return this.#inOperation;
  }

  /** Seq of the newest key recorded while in operation (durable). */
  get lastKeySeq(): number {
    return this.#lastKeySeq;
  }

  async #saveState(): Promise<void> {
    await this.#state.save(new TextEncoder().encode(JSON.stringify({ id: this.id, lastKeySeq: this.#lastKeySeq, inOperation: this.#inOperation, lastKeyMac: this.#lastKeyMac, imageId: this.#imageId })));
  }

  /**
   * Sets status and last key, then saves; when the save fails, memory goes back to what
   * the disk holds and the error is thrown: the VTS never acts on a status a restart
   * would not find.
   */
  async #changeState(inOperation: boolean, seq: number, mac: string): Promise<void> {
    const prev = { inOperation: this.#inOperation, seq: this.#lastKeySeq, mac: this.#lastKeyMac };
    this.#inOperation = inOperation;
    this.#lastKeySeq = seq;
    this.#lastKeyMac = mac;
    try {
      await this.#saveState();
    } catch (e) {
      this.#inOperation = prev.inOperation;
      this.#lastKeySeq = prev.seq;
      this.#lastKeyMac = prev.mac;
      throw e;
    }
  }

  /**
   * Records `seq` as the newest key seen; resolves once durable. Keys only move forward:
   * an older seq is ignored. Rejects with {@link VtsOutOfOperationError} when out of
   * operation, because an out VTS must keep reporting the key that took it out.
   */
  async recordKey(seq: number, mac = ''): Promise<number> {
    this.#open();
    if (!this.#inOperation) throw new VtsOutOfOperationError(this.id);
    if (!Number.isInteger(seq) || seq < 0) throw new RangeError(`key seq must be a non-negative integer (got ${seq})`);
    if (seq > this.#lastKeySeq) await this.#changeState(true, seq, mac);
    return this.#lastKeySeq;
  }

  /** Refuses with {@link FencedError} (or VtsOutOfOperationError) what `fence` would refuse on a host operation; for a VTC that checks a VTS it will not write to. */
  checkFence(fence: Fence): void {
    this.#operating(fence);
  }

  /** Enters operation, recording `seq` (the key of the command) first when given. Resolves once durable. */
  async setInOperation(o: { seq?: number; mac?: string } = {}): Promise<void> {
    this.#open();
    const newer = o.seq !== undefined && o.seq > this.#lastKeySeq;
    await this.#changeState(true, newer ? o.seq! : this.#lastKeySeq, newer ? (o.mac ?? '') : this.#lastKeyMac);
    this.#log.info({ lastKeySeq: this.#lastKeySeq }, 'in operation');
  }

  /**
   * Leaves operation, recording `seq` (the key that takes it out) first when given.
   * Mounts still active are aborted (the VTC drains them first in normal and expedite
   * modes). Resolves once the status is durable.
   */
  async setOutOfOperation(o: { seq?: number; mac?: string; reason?: string } = {}): Promise<void> {
    this.#open();
    // A key older than the last one recorded here, or another key of the same seq (a fork made
    // by a VTC that was cut off), must not take a serving VTS out: the newer key decided otherwise.
    if (this.#inOperation && o.seq !== undefined) {
      if (o.seq < this.#lastKeySeq) throw new FencedError(o.seq, this.#lastKeySeq);
      if (o.seq === this.#lastKeySeq && o.mac !== undefined && o.mac !== '' && this.#lastKeyMac !== '' && o.mac !== this.#lastKeyMac) {
        throw new FencedError(o.seq, this.#lastKeySeq, `key ${o.seq} is not the key ${o.seq} VTS ${this.id} recorded (a forked key)`);
      }
    }
    const newer = o.seq !== undefined && o.seq > this.#lastKeySeq;
    await this.#changeState(false, newer ? o.seq! : this.#lastKeySeq, newer ? (o.mac ?? '') : this.#lastKeyMac);
    await this.abortMounts(o.reason ?? `VTS ${this.id} went out of operation`);
    this.#log.info({ lastKeySeq: this.#lastKeySeq, reason: o.reason }, 'out of operation');
  }

  /** Refuse (true) or accept again (false) new mounts; active mounts go on. */
  refuseNewMounts(refuse: boolean): void {
    this.#refuse = refuse;
  }

  get refusingMounts(): boolean {
    return this.#refuse;
  }

  /** What the protocol core reads: status, last key seq, and the volumes this VTS is behind on. */
  view(): VtsStatusView {
    // One pass over the volumes (a view answers every heartbeat).
    const behind: string[] = [];
    let tokenSum = 0;
    for (const m of this.cache.list()) {
      if (m.dataGeneration !== m.generation) behind.push(m.volser);
      tokenSum += m.generation;
    }
    return { name: this.id, inOperation: this.#inOperation, lastKeySeq: this.#lastKeySeq, behind, lastKeyMac: this.#lastKeyMac, imageId: this.#imageId, bootId: this.#bootId, tokenSum };
  }

  #open(): void {
    if (this.#closed) throw new ClosedError(`VTS ${this.id}`);
  }

  /** Open and in operation, and `fence` (if any) not older than the newest key recorded here, nor another key with its seq. */
  #operating(fence: Fence = {}): void {
    this.#open();
    if (!this.#inOperation) throw new VtsOutOfOperationError(this.id);
    const { epoch, epochMac, bootId, minSeq } = fence;
    if (minSeq !== undefined && this.#lastKeySeq < minSeq) throw new FencedError(epoch ?? 0, this.#lastKeySeq, `VTS ${this.id} reports last key seq ${this.#lastKeySeq}, below ${minSeq} which it confirmed recording: an older image of itself`);
    if (bootId !== undefined && bootId !== this.#bootId) throw new FencedError(epoch ?? 0, this.#lastKeySeq, `VTS ${this.id} restarted since the caller last saw it (boot ${bootId}, now ${this.#bootId})`);
    if (epoch === undefined) return;
    if (epoch < this.#lastKeySeq) throw new FencedError(epoch, this.#lastKeySeq);
    // Same seq, another key: the writer is on a forked branch of the chain.
    if (epoch === this.#lastKeySeq && epochMac !== undefined && this.#lastKeyMac !== '' && epochMac !== this.#lastKeyMac) throw new FencedError(epoch, this.#lastKeySeq, 'another key with the same seq was recorded here (a fork)');
  }

  // ------------------------------------------------------------------ tokens and volumes

  token(volser: string): VolumeToken | undefined {
    const m = this.cache.get(volser);
    return m ? tokenOf(m) : undefined;
  }

  /** Token summary: every volume's token. */
  tokens(): Map<string, VolumeToken> {
    return new Map(this.cache.list().map((m) => [m.volser, tokenOf(m)]));
  }

  volumes(): VolumeInfo[] {
    return this.cache.list().map((m) => ({
      volser: m.volser,
      token: tokenOf(m),
      dataGeneration: m.dataGeneration,
      bytes: m.bytes,
      resident: isResident(m),
      premigrated: isPremigrated(m),
      mounted: this.#busy.has(m.volser),
    }));
  }

  /**
   * Marks this VTS behind on `volser`: its token moves to `generation` while its data stays
   * older (a deferred copy from the peer is pending). Idempotent; an older generation is
   * ignored. Resolves once durable.
   *
   * `o.write`: the mark acknowledges a host write committed on the peer at `generation`,
   * so it must leave this VTS unable to hold other data of that generation. Refused with
   * VolumeInUseError while a host has the volume mounted here (a write of it here could
   * commit that generation after the mark; a peer copy in progress cannot, it carries a
   * generation the peer already had), and with StaleGenerationError when this
   * VTS already knows `generation` or newer other than as this very mark (another write got
   * there first). Without either check a deferred write was acknowledged while a write
   * through another VTC, mounted here, committed different data under the same generation.
   */
  async markBehind(volser: string, generation: number, fence: Fence = {}, o: { write?: boolean } = {}): Promise<VolumeToken> {
    this.#operating(fence);
    checkVolser(volser);
    const m = this.cache.get(volser);
    if (o.write === true) {
      if (this.#hostMounted(volser)) throw new VolumeInUseError(volser, 'is mounted here: its generation cannot be held for a write on the peer');
      if (m && (m.generation > generation || m.dataGeneration >= generation)) throw new StaleGenerationError(volser, generation, m.generation);
    }
    if (m && generation <= m.generation) return tokenOf(m);
    return tokenOf(await this.cache.setGeneration(volser, generation));
  }

  // ------------------------------------------------------------------ host I/O

  /** A host has `volser` mounted here, or a mount of it is being set up. */
  #hostMounted(volser: string): boolean {
    if (this.#mounting.has(volser)) return true;
    for (const m of this.#mounts.values()) if (m.handle.volser === volser) return true;
    return false;
  }

  activeMounts(): MountHandle[] {
    return [...this.#mounts.values()].map((m) => m.handle);
  }

  /**
   * Mounts a volume on a virtual drive. A volume no longer in cache is recalled from tape
   * first. Rejects with VtsOutOfOperationError, MountsRefusedError, MountLimitError,
   * VolumeNotFoundError (not scratch and unknown), VolumeInUseError,
   * VolumeNotConsistentError (this VTS is behind), FencedError, or RecallError.
   */
  async mount(volser: string, o: MountOptions = {}): Promise<MountHandle> {
    this.#operating(o);
    checkVolser(volser);
    if (this.#refuse) throw new MountsRefusedError(this.id);
    if (this.#mounts.size + this.#pendingMounts >= this.maxMounts) throw new MountLimitError(this.maxMounts);
    if (this.#busy.has(volser)) throw new VolumeInUseError(volser);
    const scratch = o.scratch ?? false;
    const meta = this.cache.get(volser);
    if (!scratch) {
      if (!meta || meta.dataGeneration === 0) throw meta ? new VolumeNotConsistentError(volser, meta.generation, 0) : new VolumeNotFoundError(volser);
      if (meta.dataGeneration !== meta.generation) throw new VolumeNotConsistentError(volser, meta.generation, meta.dataGeneration);
    }
    this.#busy.add(volser);
    this.#mounting.add(volser);
    this.cache.pin(volser);
    this.#pendingMounts++;
    let committed: VolumeFile | null = null;
    try {
      if (!scratch && meta) {
        const resident = isResident(meta) ? meta : await this.#recall(meta);
        const path = this.cache.dataPath(resident);
        if (!path) throw new RecallError(volser, 'volume has no data in cache after recall');
        committed = await VolumeFile.open(path, false, this.#fs);
      }
      this.#operating(o);
      if (this.#refuse) throw new MountsRefusedError(this.id);
    } catch (e) {
      await committed?.close();
      this.#busy.delete(volser);
      this.cache.unpin(volser);
      throw e;
    } finally {
      this.#pendingMounts--;
      this.#mounting.delete(volser);
    }
    this.cache.touch(volser);
    const handle: MountHandle = { id: this.#nextHandle++, volser, writable: o.writable ?? true };
    this.#mounts.set(handle.id, { handle, scratch, committed, work: null, pos: 0, modified: scratch, aborted: null, chain: Promise.resolve() });
    this.#log.debug({ volser, handle: handle.id, scratch }, 'mounted');
    return handle;
  }

  #pendingMounts = 0;
  /**
   * Handles of aborted mounts, so a host's later operations say why rather than "bad handle":
   * the newest {@link ABORTED_HANDLES_KEPT}, so a VTS that runs for months through many
   * failovers does not keep every one (an older handle gets BadHandleError).
   */
  readonly #abortedHandles = new Map<number, string>();

  /** Marks `m` aborted: its pending and later operations get MountAbortedError saying `reason`. */
  #markAborted(m: Mount, reason: string): void {
    m.aborted = reason;
    this.#abortedHandles.set(m.handle.id, reason);
    if (this.#abortedHandles.size > ABORTED_HANDLES_KEPT) this.#abortedHandles.delete(this.#abortedHandles.keys().next().value!);
  }

  #mount(h: MountHandle): Mount {
    const m = this.#mounts.get(h.id);
    const aborted = this.#abortedHandles.get(h.id);
    if (!m && aborted !== undefined) throw new MountAbortedError(h.volser, aborted);
    if (!m || m.handle !== h) throw new BadHandleError(`handle ${h.id} (${h.volser}) is not an active mount of VTS ${this.id}`);
    return m;
  }

  /** Runs one operation of a mount after the previous ones; an abort meanwhile turns its result into MountAbortedError. */
  async #run<T>(h: MountHandle, fn: (m: Mount) => Promise<T>, fence: Fence = {}): Promise<T> {
    this.#operating(fence);
    const m = this.#mount(h);
    const step = m.chain.then(async () => {
      if (m.aborted !== null) throw new MountAbortedError(m.handle.volser, m.aborted);
      const r = await fn(m);
      if (m.aborted !== null) throw new MountAbortedError(m.handle.volser, m.aborted);
      return r;
    });
    m.chain = step.catch(() => undefined);
    return step;
  }

  async #writable(m: Mount): Promise<VolumeFile> {
    if (!m.handle.writable) throw new ReadOnlyMountError(m.handle.volser);
    if (!m.work) {
      const c = m.committed;
      m.work = c && m.pos > 0 ? await this.cache.newWork(m.handle.volser, { path: c.path, bytes: c.offsetOf(m.pos) }) : await this.cache.newWork(m.handle.volser);
    }
    if (m.pos < m.work.records) {
      const before = m.work.bytes;
      await m.work.truncateTo(m.pos);
      this.cache.accountWork(m.work.bytes - before);
    }
    m.modified = true;
    return m.work;
  }

  /** Appends a record made by frameRecord. */
  async #append(m: Mount, record: Uint8Array): Promise<void> {
    const f = await this.#writable(m);
    await this.cache.ensureSpace(record.length);
    await f.appendRecord(record);
    this.cache.accountWork(record.length);
    m.pos++;
  }

  /**
   * Writes one host block (1 byte to 8 MiB) at the current position; what followed it is
   * gone (tape semantics). The caller may reuse `data` once this returns: the record is
   * framed (header and data joined, the one copy the disk write needs anyway) before the
   * write is queued behind the mount's earlier operations.
   */
  write(h: MountHandle, data: Uint8Array): Promise<void> {
    if (data.length === 0 || data.length > MAX_HOST_BLOCK) return Promise.reject(new RangeError(`a block is 1..${MAX_HOST_BLOCK} bytes (got ${data.length})`));
    const record = frameRecord(RecordKind.block, data);
    return this.#run(h, (m) => this.#append(m, record));
  }

  /** Writes one tape mark at the current position. */
  writeFilemark(h: MountHandle): Promise<void> {
    return this.#run(h, (m) => this.#append(m, frameRecord(RecordKind.filemark, new Uint8Array(0))));
  }

  /** Reads the next record: a block (cut to `max` bytes, `truncated` then true), a filemark, or end of data. */
  read(h: MountHandle, max: number): Promise<HostRead> {
    return this.#run(h, async (m): Promise<HostRead> => {
      const f = m.work ?? (m.scratch ? null : m.committed);
      if (!f || m.pos >= f.records) return { kind: 'eod' };
      const r = await f.readRecord(m.pos, max);
      m.pos++;
      if (r.kind === RecordKind.filemark) return { kind: 'filemark' };
      return { kind: 'block', data: r.data, length: r.length, truncated: r.length > r.data.length };
    });
  }

  rewind(h: MountHandle): Promise<void> {
    return this.#run(h, async (m) => {
      m.pos = 0;
    });
  }

  /** Current record number (0 at the beginning). */
  position(h: MountHandle): number {
    return this.#mount(h).pos;
  }

  /**
   * Closes a mount. When the mount wrote (or was a scratch mount), the data becomes the
   * volume's new generation and the promise resolves only once that is durable: that is
   * the acknowledgement a host may rely on. Resolves with the volume's token. Rejects
   * with StaleGenerationError (the mount stays active: close again with a newer
   * generation), FencedError, MountAbortedError or VtsOutOfOperationError.
   */
  close(h: MountHandle, o: CloseOptions = {}): Promise<VolumeToken> {
    try {
      this.#operating(o);
    } catch (e) {
      // A close refused by the fence (or because the VTS left operation) still ends the
      // mount: nothing it wrote is committed, and the volume must not stay held for good.
      return this.abandon(h).then(() => Promise.reject(e as Error));
    }
    return this.#run(h, async (m) => {
      const volser = m.handle.volser;
      const meta = this.cache.get(volser);
      let token: VolumeToken;
      if (m.modified) {
        const current = meta?.generation ?? 0;
        const gen = o.generation ?? current + 1;
        if (gen <= current) throw new StaleGenerationError(volser, gen, current);
        m.work ??= await this.cache.newWork(volser);
        if (o.sha256 !== undefined) {
          const sha = m.work.sha256() ?? (await hashFile(m.work.path, this.#fs)).sha256;
          if (sha !== o.sha256) throw new BadVolumeDataError(`${volser}: the mount's data has sha256 ${sha}, expected ${o.sha256}`);
        }
        // A key recorded while the close waited its turn fences it still: nothing is committed,
        // and the mount ends (the volume must not stay held).
        try {
          this.#operating(o);
        } catch (e) {
          await this.#release(m);
          throw e;
        }
        // The cache takes the working file over, committed or not. A commit that failed ends
        // the mount: its fsync may have dropped what it could not write, so nothing it wrote
        // may be committed by a close tried again (which would start an empty file and
        // commit that instead); the host must write the volume again.
        const work = m.work;
        m.work = null;
        let committed: VolumeMeta;
        try {
          committed = await this.cache.commitData(volser, work, gen);
        } catch (e) {
          const reason = `its close failed to commit (${(e as { code?: string }).code ?? (e as Error).message}); nothing it wrote since the mount is kept`;
          this.#markAborted(m, reason);
          await this.#release(m);
          this.#log.error({ err: e, volser, generation: gen }, 'close failed to commit: mount ended');
          throw e;
        }
        token = tokenOf(committed);
        this.#log.info({ volser, generation: gen, bytes: committed.bytes }, 'closed, new generation committed');
        if (this.#autoPremigrate) this.#enqueue(volser);
      } else {
        if (!meta) throw new VolumeNotFoundError(volser);
        // The access stamp (LRU order for eviction) is kept in memory and written with the
        // volume's next metadata write: a crash only makes the order a little stale. Two
        // fsyncs per read close made every reader wait on the disk, for seconds while
        // premigration kept it busy.
        this.cache.touch(volser);
        token = tokenOf(meta);
      }
      await this.#release(m);
      return token;
    }, o);
  }

  /**
   * Ends a mount without committing it (a host write failed part way): what it wrote since
   * the mount is discarded, the previous generation stays, and the volume is free again.
   * Resolves once done; an unknown or already ended handle is a no-op.
   */
  async abandon(h: MountHandle): Promise<void> {
    const m = this.#mounts.get(h.id);
    if (m === undefined) return;
    const step = m.chain.then(() => this.#release(m));
    m.chain = step.catch(() => undefined);
    await step.catch(() => undefined);
  }

  async #release(m: Mount): Promise<void> {
    // Once only: an abandon or an abort queued behind the close that already ended the mount
    // must not unpin the volume again, nor free it from whoever holds it since.
    if (this.#mounts.get(m.handle.id) !== m) return;
    this.#mounts.delete(m.handle.id);
    await m.committed?.close();
    if (m.work) await this.cache.discardWork(m.work);
    m.committed = null;
    m.work = null;
    this.#busy.delete(m.handle.volser);
    this.cache.unpin(m.handle.volser);
  }

  /**
   * Aborts every active mount: hosts get MountAbortedError on their pending and later
   * operations, and data written since the mount is discarded (the previous generation
   * stays). Resolves with the number aborted, once they are cleaned up.
   */
  async abortMounts(reason: string): Promise<number> {
    const all = [...this.#mounts.values()];
    for (const m of all) this.#markAborted(m, reason);
    await Promise.all(all.map(async (m) => {
      await m.chain;
      await this.#release(m);
    }));
    if (all.length) this.#log.warn({ count: all.length, reason }, 'mounts aborted');
    return all.length;
  }

  // ------------------------------------------------------------------ peer copies

  /**
   * Streams a volume's committed data and token out, for a copy to the peer VTS (recalled
   * first when not in cache), in chunks of at most `chunkBytes` (an RPC server passes what
   * one reply frame carries). Rejects with VolumeNotFoundError, VolumeNotConsistentError
   * (nothing current to give), VtsOutOfOperationError or RecallError.
   */
  async exportVolume(volser: string, chunkBytes = 1 << 20): Promise<VolumeExport> {
    this.#operating();
    checkVolser(volser);
    let meta = this.cache.get(volser);
    if (!meta || meta.dataGeneration === 0) throw new VolumeNotFoundError(volser);
    if (meta.dataGeneration !== meta.generation) throw new VolumeNotConsistentError(volser, meta.generation, meta.dataGeneration);
    this.cache.pin(volser);
    let fh;
    try {
      if (!isResident(meta)) meta = await this.#recall(meta);
      const path = this.cache.dataPath(meta);
      if (!path) throw new RecallError(volser, 'volume has no data in cache after recall');
      fh = await this.#fs.open(path, 'r');
    } catch (e) {
      this.cache.unpin(volser);
      throw e;
    }
    this.cache.touch(volser);
    const handle = fh;
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      this.cache.unpin(volser);
      await handle.close().catch(() => undefined);
    };
    const total = meta.bytes;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      try {
        let pos = 0;
        while (pos < total) {
          const buf = Buffer.alloc(Math.min(chunkBytes, total - pos));
          const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) throw new BadVolumeDataError(`${volser}: cache file shorter than ${total} bytes`);
          pos += bytesRead;
          yield buf.subarray(0, bytesRead);
        }
      } finally {
        await release();
      }
    }
    return { volser, token: tokenOf(meta), bytes: meta.bytes, records: meta.records, sha256: meta.sha256, chunks: chunks(), release };
  }

  /**
   * Installs a copy from the peer as the data of `token.generation`, with the token made
   * consistent. The bytes are checked as they arrive (format, and `sha256` when given);
   * nothing changes unless the whole copy is durable. Idempotent for the same generation
   * and checksum. Rejects with StaleGenerationError (this VTS already knows newer),
   * VolumeInUseError (mounted), BadVolumeDataError, CacheFullError or VtsOutOfOperationError.
   */
  async applyCopy(volser: string, data: AsyncIterable<Uint8Array> | Uint8Array, token: VolumeToken, o: { sha256?: string } & Fence = {}): Promise<VolumeToken> {
    this.#operating(o);
    checkVolser(volser);
    const meta = this.cache.get(volser);
    if (meta && meta.dataGeneration === token.generation && (o.sha256 === undefined || o.sha256 === meta.sha256) && meta.dataGeneration > 0) return tokenOf(meta);
    if (meta && (token.generation < meta.generation || token.generation <= meta.dataGeneration)) throw new StaleGenerationError(volser, token.generation, meta.generation);
    if (this.#busy.has(volser)) throw new VolumeInUseError(volser, 'is mounted or being copied');
    this.#busy.add(volser);
    const path = this.cache.workPath(volser);
    let accounted = 0;
    try {
      const fh = await this.#fs.open(path, 'wx+');
      // Indexed and hashed as it streams in: the file is committed as written, never read back.
      const parser = new VolumeParser({ index: true });
      const hash = createHash('sha256');
      // Started as the copy streams in, so the commit's fsync waits for about the last MiB.
      const writeback = new EarlyWriteback(fh);
      let f: VolumeFile;
      try {
        const source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = data instanceof Uint8Array ? [data] : data;
        for await (const chunk of source) {
          parser.push(chunk);
          hash.update(chunk);
          await this.cache.ensureSpace(chunk.length);
          this.cache.accountWork(chunk.length);
          accounted += chunk.length;
          await writeAll(fh, chunk, parser.bytes - chunk.length, path);
          writeback.appended(parser.bytes, chunk.length);
        }
        parser.end();
        await writeback.settle();
        const sha = hash.copy().digest('hex');
        if (o.sha256 !== undefined && sha !== o.sha256) throw new BadVolumeDataError(`copy of ${volser}: sha256 ${sha}, expected ${o.sha256}`);
        // The copier's key may have been overtaken while the bytes streamed in.
        this.#operating(o);
        this.cache.accountWork(-accounted);
        accounted = 0;
        f = this.cache.adoptWritten(path, fh, parser.entries ?? [], parser.bytes, hash);
      } catch (e) {
        await writeback.drain();
        await fh.close();
        throw e;
      }
      // commitData fsyncs the file (on the descriptor that wrote it) before the rename that
      // makes it the volume's data: nothing is acknowledged before that. It takes the file
      // over, committed or not (closed, unaccounted, removed when the commit failed).
      const committed = await this.cache.commitData(volser, f, token.generation);
      this.#log.info({ volser, generation: token.generation, bytes: committed.bytes }, 'peer copy applied');
      if (this.#autoPremigrate) this.#enqueue(volser);
      return tokenOf(committed);
    } catch (e) {
      this.cache.accountWork(-accounted);
      await unlinkQuiet(path, this.#fs);
      throw e;
    } finally {
      this.#busy.delete(volser);
    }
  }

  // ------------------------------------------------------------------ premigration and recall

  async #recall(meta: VolumeMeta): Promise<VolumeMeta> {
    const copy = meta.premigrated;
    if (!this.premigrator || !copy || !isPremigrated(meta)) throw new RecallError(meta.volser, 'not in cache and no tape copy of the current data');
    await this.cache.ensureSpace(meta.bytes);
    const path = this.cache.workPath(meta.volser);
    await this.premigrator.recall(meta.volser, copy, path);
    const f = await this.cache.adoptWork(path);
    return this.cache.installRecalled(meta.volser, f, copy);
  }

  /** Evicts a premigrated volume from the cache now; false when it is not premigrated or is in use. */
  evict(volser: string): Promise<boolean> {
    return this.cache.evict(volser);
  }

  /** Queues volumes (default: every resident one without a current tape copy) for premigration. */
  premigrate(volsers?: readonly string[]): void {
    this.#open();
    if (!this.premigrator) return;
    const list = volsers ?? this.cache.list().filter((m) => isResident(m) && !isPremigrated(m) && m.dataGeneration > 0).map((m) => m.volser);
    for (const v of list) this.#enqueue(v);
  }

  /** Queues again every volume whose premigration failed. */
  retryFailedPremigrations(): void {
    const failed = [...this.#pmFailed.keys()];
    this.#pmFailed.clear();
    this.premigrate(failed);
  }

  premigrationStatus(): PremigrationStatus {
    return { queued: [...this.#pmQueue], running: [...this.#pmRunning], failed: new Map(this.#pmFailed) };
  }

  /** Resolves when no premigration is queued or running (failures are in {@link premigrationStatus}). */
  whenPremigrationIdle(): Promise<void> {
    if (this.#pmQueue.length === 0 && this.#pmRunning.size === 0) return Promise.resolve();
    return new Promise((r) => this.#pmIdle.push(r));
  }

  #enqueue(volser: string): void {
    if (!this.premigrator || this.#closed) return;
    if (!this.#pmQueue.includes(volser)) this.#pmQueue.push(volser);
    this.#pump();
  }

  #pump(): void {
    const p = this.premigrator;
    if (!p) return;
    while (this.#pmRunning.size < p.driveCount && !this.#closed) {
      const i = this.#pmQueue.findIndex((v) => !this.#pmRunning.has(v));
      if (i < 0) break;
      const [volser] = this.#pmQueue.splice(i, 1);
      if (volser === undefined) break;
      this.#pmRunning.add(volser);
      void this.#premigrateOne(p, volser).finally(() => {
        this.#pmRunning.delete(volser);
        this.#pump();
        if (this.#pmQueue.length === 0 && this.#pmRunning.size === 0) for (const r of this.#pmIdle.splice(0)) r();
      });
    }
    if (this.#pmQueue.length === 0 && this.#pmRunning.size === 0) for (const r of this.#pmIdle.splice(0)) r();
  }

  async #premigrateOne(p: Premigrator, volser: string): Promise<void> {
    const meta = this.cache.get(volser);
    const path = meta ? this.cache.dataPath(meta) : null;
    if (!meta || !path || isPremigrated(meta) || meta.dataGeneration === 0) return;
    this.cache.pin(volser);
    try {
      const copy = await p.premigrate({ volser, generation: meta.dataGeneration, path, bytes: meta.bytes, sha256: meta.sha256 });
      const recorded = await this.cache.setPremigrated(volser, copy);
      this.#pmFailed.delete(volser);
      if (!recorded) this.#log.info({ volser }, 'volume changed while premigrating; the copy is superseded');
    } catch (e) {
      const now = this.cache.get(volser);
      // A volume rewritten meanwhile was queued again by its close; this failure is moot.
      if (now && now.dataGeneration !== meta.dataGeneration) return;
      this.#pmFailed.set(volser, e as Error);
      this.#log.error({ volser, err: (e as Error).message }, 'premigration failed; the volume stays in cache');
    } finally {
      this.cache.unpin(volser);
    }
  }

  /**
   * Shuts the VTS down cleanly: mounts are aborted, queued premigrations dropped (they are
   * queued again at the next open), running ones finish. Status stays as it was.
   */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    await this.abortMounts(`VTS ${this.id} shutting down`);
    this.#pmQueue.length = 0;
    await this.whenPremigrationIdle();
    await this.cache.idle();
    this.#closed = true;
    this.premigrator?.close();
    await this.#state.close();
  }
}
