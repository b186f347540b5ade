/**
 * The tape drive model of a VTC's virtual library: a drive whose medium is a logical
 * volume of the PtP system, reached through the VTC's host path (the agent's mount, block
 * I/O and close). It knows tape semantics (records, filemarks, positions) and answers
 * with sense data ({@link SenseError}); the SCSI command set around it (CDB decoding, the
 * logical unit, the iSCSI target) is assembled where the emulator is wired in
 * (src/cli/virtual-library.ts), as DESIGN.md's boundaries want.
 *
 * - Load (robot insert or LOAD) mounts the volume read-only on a VTS holding its newest
 *   acknowledged generation; a volume never written is blank (reads end at once in EOD).
 * - The first WRITE or WRITE FILEMARKS makes the mount writable: the agent plans the write
 *   (generation, epoch, VTS per copy policy) and the drive repositions to where the host is.
 * - Unload commits the write: the agent's close, with the immediate or deferred copy of
 *   the volume's copy mode. The unload answers the commit's failure as WRITE ERROR.
 * - While the PtP system is off-line or no VTS can serve the volume, commands answer NOT
 *   READY (04/12 off-line, 04/01 otherwise) and resume when it can; a read-only mount a
 *   VTS lost (taken out, gone) is made again on another VTS at the same position.
 * - A key that takes effect while a write is mounted fences that write: the next WRITE,
 *   WRITE FILEMARKS or the unload answers MEDIUM ERROR / WRITE ERROR, and every data command
 *   after it too until the cartridge is unloaded: what the mount wrote is not acknowledged.
 * - Buffered mode (the only mode the drive reports): a WRITE answers GOOD once its block is
 *   sent to the VTS, with up to {@link WRITE_BEHIND} blocks on their way at once, so the
 *   iSCSI hop and the RPC hop overlap. Nothing is acknowledged by that GOOD (only the
 *   unload's commit acknowledges). A block the VTS fails loses the write as above, and the
 *   host hears of it as a deferred error (sense 0x71) at its next command: a WRITE, WRITE
 *   FILEMARKS (which waits for every block before it), any positioning or read, TEST UNIT
 *   READY, or the unload, which then commits nothing.
 */
import type { Logger } from 'pino';
import { Sense, SenseKey, sense } from '../../scsi/sense.js';
import type { SenseData } from '../../scsi/sense.js';
import type { CopyMode } from '../../ptp/volumes.js';
import type { CloseResult, HostHandle } from '../agent.js';
import { codeOf } from '../errors.js';
import { MAX_BODY } from '../rpc.js';
import { isBlankVolume, mountLost, notReadySense } from './host-path.js';
import type { HostPath } from './host-path.js';
import { DriveRefused, SenseError } from './sense-error.js';

/** Largest block a host may write: what one read of the VTS returns whole. */
export const MAX_BLOCK = MAX_BODY;

/**
 * WRITEs the drive keeps on their way to the VTS at once (buffered mode): enough that the
 * host's next block arrives while the VTS writes this one, few enough that little is
 * written past a failure the host has not heard of yet (it is not committed either way).
 */
export const WRITE_BEHIND = 4;

const BLOCK = 0;
const FILEMARK = 1;

/** A cartridge as the drive needs it: its label, the volser. */
export interface VirtualCartridge {
  readonly barcode: string;
}

/** Where a cartridge is in the drive. `unloaded`: unloaded, waiting for the robot (or a LOAD). */
export type VirtualDriveState = 'empty' | 'loaded' | 'unloaded';

export interface VirtualDriveOptions {
  readonly host: HostPath;
  readonly serial: string;
  /** Name for logs and traces, e.g. `vtc1/drive1`. */
  readonly name: string;
  readonly log: Logger;
  /** The copy mode of a volume's writes (from the catalogue); undefined: the VTC's default. */
  readonly copyModeOf?: (volser: string) => CopyMode | undefined;
  /** Told after a write is acknowledged (the library moves a scratch volume to private); the unload answers once it settles. */
  readonly onCommitted?: (r: CloseResult) => Promise<void> | void;
  /** WRITEs on their way to the VTS at once (default {@link WRITE_BEHIND}); 1 answers each WRITE once the VTS has its block. */
  readonly writeBehind?: number;
}

/** The mounted volume as the drive tracks it. */
interface Medium {
  readonly volser: string;
  handle: HostHandle | null;
  /** The PtP system holds no generation of it: nothing to mount for reading. */
  blank: boolean;
  /** Position: records (blocks and filemarks) from the beginning. */
  pos: number;
  /** Kind of each record before the furthest position seen (blocks, filemarks). */
  kinds: number[];
  /** The key the write was planned under; a newer one fences it. */
  epoch: number;
  /** Set once the write is lost: every data command answers it until unload. */
  lost: SenseData | null;
  /** Blocks sent to the VTS whose WRITE the host was already answered (write-behind); each settles, never rejects. */
  readonly behind: Set<Promise<void>>;
  /** A loss found by a block behind, not yet told to the host: its next command answers it (a deferred error). */
  deferred: SenseData | null;
}

export const writeError = (information?: number): SenseData => sense(Sense.WRITE_ERROR, information === undefined ? {} : { information });

/**
 * The drive model: the medium, the position, and the host path. Its robot side (hasMedium,
 * insert, readyForRemoval, unloadForRobot, remove) has the shape of the emulator's DriveBay,
 * refusing with {@link DriveRefused}. Every host operation rejects with {@link SenseError}
 * (the sense a host sees) or, for a bug, anything else.
 */
export class VirtualDrive<C extends VirtualCartridge = VirtualCartridge> {
  readonly serial: string;
  readonly vendorProduct: string;
  readonly name: string;
  readonly #o: VirtualDriveOptions;
  readonly log: Logger;
  /** Told when a cartridge is loaded by the robot (the unit raises NOT READY TO READY CHANGE). */
  onLoaded: (() => void) | undefined = undefined;
  /**
   * Told when the loaded medium becomes ready after the drive answered NOT READY (the unit
   * raises NOT READY TO READY CHANGE: Linux's st resets its position state on it, so a tar
   * started while the PtP system was off-line does not read with the last cartridge's).
   */
  onBecameReady: (() => void) | undefined = undefined;
  /** The loaded medium was found NOT READY since it was loaded or last found ready. */
  #notReadyAnswered = false;
  state: VirtualDriveState = 'empty';
  cartridge: C | undefined;
  medium: Medium | undefined;
  /** Fixed block length (MODE SELECT); 0 is variable-block mode. */
  blockSize = 0;
  readonly preventedBy = new Set<string>();
  #mounting: Promise<void> | null = null;
  /** Commits and losses, for tests and status. */
  readonly stats = { mounts: 0, remounts: 0, commits: 0, lost: 0 };

  constructor(o: VirtualDriveOptions) {
    this.#o = o;
    this.serial = o.serial;
    this.name = o.name;
    this.log = o.log.child({ drive: o.name });
    this.vendorProduct = `${'PTPVTS'.padEnd(8)}${'VIRTUAL TAPE'.padEnd(16)}`;
  }

  get host(): HostPath {
    return this.#o.host;
  }

  /** The volume loaded, or undefined. */
  get volser(): string | undefined {
    return this.state === 'empty' ? undefined : this.cartridge?.barcode;
  }

  // ------------------------------------------------------------------ readiness and mounts

  /** Why a command cannot run now; undefined when the medium is loaded (mounted or not). */
  stateSense(): SenseData | undefined {
    if (this.state === 'empty') return sense(Sense.MEDIUM_NOT_PRESENT);
    if (this.state === 'unloaded') return sense(Sense.INITIALIZING_COMMAND_REQUIRED);
    return undefined;
  }

  /**
   * The loaded medium, mounted for reading when it has data: or CHECK CONDITION (NOT READY).
   * Every block written behind is settled first, and a write they lost is answered now, as a
   * deferred error.
   */
  async ready(): Promise<Medium> {
    const m = await this.#ready();
    await this.#settle(m);
    return m;
  }

  /** Waits for every block written behind; throws the deferred error one of them left, once. */
  async #settle(m: Medium): Promise<void> {
    while (m.behind.size > 0) await Promise.race(m.behind);
    this.#tellDeferred(m);
  }

  #tellDeferred(m: Medium): void {
    const d = m.deferred;
    if (d === null) return;
    m.deferred = null;
    throw new SenseError(d);
  }

  async #ready(): Promise<Medium> {
    const why = this.stateSense();
    if (why !== undefined) throw new SenseError(why);
    const m = this.medium as Medium;
    if (this.host.engine.writeContext().status.kind === 'offline') {
      this.#notReadyAnswered = true;
      throw new SenseError(sense(Sense.NOT_READY_OFFLINE));
    }
    if (m.handle === null && !m.blank && m.lost === null) {
      // One mount at a time: a TEST UNIT READY and a command both finding no mount share it.
      this.#mounting ??= this.#mountForRead(m).finally(() => (this.#mounting = null));
      try {
        await this.#mounting;
      } catch (e) {
        if (e instanceof SenseError && e.sense.key === SenseKey.NOT_READY) this.#notReadyAnswered = true;
        throw e;
      }
    }
    if (this.#notReadyAnswered && this.medium === m) {
      this.#notReadyAnswered = false;
      this.onBecameReady?.();
    }
    return m;
  }

  /** Mounts `m` read-only and moves to its position; a blank volume mounts nothing. */
  async #mountForRead(m: Medium): Promise<void> {
    let h: HostHandle;
    try {
      h = await this.host.mount(m.volser, { writable: false });
    } catch (e) {
      if (isBlankVolume(e)) {
        if (m.pos > 0) throw new SenseError(sense(Sense.SEQUENTIAL_POSITIONING_ERROR));
        m.blank = true;
        return;
      }
      this.log.info({ volser: m.volser, err: e }, 'volume cannot be mounted now: NOT READY');
      throw new SenseError(notReadySense(e));
    }
    this.stats.mounts++;
    if (this.medium !== m) {
      // Unloaded meanwhile (the robot took the cartridge out): the mount is not wanted.
      await this.host.close(h).catch(() => undefined);
      throw new SenseError(sense(Sense.MEDIUM_NOT_PRESENT));
    }
    m.handle = h;
    const target = m.pos;
    m.pos = 0;
    try {
      await this.#skipTo(m, target);
    } catch (e) {
      // The mount is there but not where the host was: make it again next time.
      await this.host.close(h).catch(() => undefined);
      m.handle = null;
      m.pos = target;
      if (e instanceof SenseError) throw e;
      throw new SenseError(notReadySense(e));
    }
    this.log.debug({ volser: m.volser, vts: h.vts, pos: target }, 'mounted for reading');
  }

  /**
   * Runs `fn` on the mount; a read-only mount the VTS lost is made again (another VTS if
   * need be) at the same position and `fn` runs once more. A writable mount's loss loses
   * the write.
   */
  async #io<T>(m: Medium, fn: (h: HostHandle) => Promise<T>): Promise<T> {
    const h = m.handle;
    if (h === null) throw new Error('no mount');
    try {
      return await fn(h);
    } catch (e) {
      if (e instanceof SenseError) throw e;
      if (h.writable) this.#lose(m, e, 'I/O of the write failed');
      if (!mountLost(e)) this.#readFailed(m, e);
      this.log.warn({ volser: m.volser, vts: h.vts, err: e }, 'read mount lost: mounting again');
      m.handle = null;
      await this.host.close(h).catch(() => undefined);
      this.stats.remounts++;
      await this.ready();
      const again = m.handle as HostHandle | null;
      if (again === null) throw new SenseError(sense(Sense.BECOMING_READY));
      try {
        return await fn(again);
      } catch (e2) {
        if (e2 instanceof SenseError) throw e2;
        this.#readFailed(m, e2);
      }
    }
  }

  /** A read the VTS failed: bad volume data is a MEDIUM ERROR, anything else NOT READY (the host retries). */
  #readFailed(m: Medium, e: unknown): never {
    const code = codeOf(e);
    this.log.warn({ volser: m.volser, err: e, code }, 'read failed');
    throw new SenseError(code === 'EBADVOLDATA' || code === 'ERECALL' ? sense(Sense.UNRECOVERED_READ_ERROR) : notReadySense(e));
  }

  /** The write is lost: the host is told now and at every data command until unload. */
  #lose(m: Medium, e: unknown, why: string, information?: number): never {
    const h = m.handle;
    m.lost = writeError(information);
    m.handle = null;
    this.stats.lost++;
    this.log.error({ volser: m.volser, err: e, why }, 'write lost: WRITE ERROR until the cartridge is unloaded');
    // Ends the mount; a fenced VTS refuses the commit, and nothing of this write is acknowledged.
    if (h !== null) void this.#drop(h);
    throw new SenseError(m.lost);
  }

  /** Ready for a write at the current position: the mount made writable, the fence checked. */
  async writable(): Promise<{ m: Medium; h: HostHandle }> {
    // Not ready(): the blocks behind may stay on their way while the next one is sent.
    const m = await this.#ready();
    this.#tellDeferred(m);
    if (m.lost !== null) throw new SenseError(m.lost);
    const ctx = this.host.engine.writeContext();
    if (m.handle?.writable === true) {
      if (ctx.epoch !== m.epoch) this.#lose(m, null, `key ${ctx.epoch} took effect after the write was planned under key ${m.epoch}`);
      return { m, h: m.handle };
    }
    const at = m.pos;
    if (m.handle !== null) {
      await this.host.close(m.handle).catch(() => undefined);
      m.handle = null;
    }
    let h: HostHandle;
    try {
      m.epoch = ctx.epoch;
      const copyMode = this.#o.copyModeOf?.(m.volser);
      h = await this.host.mount(m.volser, { writable: true, scratch: m.blank || at === 0, ...(copyMode === undefined ? {} : { copyMode }) });
    } catch (e) {
      this.log.info({ volser: m.volser, err: e }, 'volume cannot be mounted for writing now: NOT READY');
      throw new SenseError(notReadySense(e));
    }
    this.stats.mounts++;
    if (this.medium !== m) {
      await this.#drop(h);
      throw new SenseError(sense(Sense.MEDIUM_NOT_PRESENT));
    }
    m.handle = h;
    m.pos = 0;
    if (at > 0) {
      try {
        await this.#skipTo(m, at);
      } catch (e) {
        this.#lose(m, e, 'could not move the write mount to the host position');
      }
    }
    this.log.debug({ volser: m.volser, vts: h.vts, pos: at, epoch: m.epoch }, 'mounted for writing');
    return { m, h };
  }

  /** Moves forward by reading (1 byte of each block) until `target` or end of data. Returns false at EOD. */
  async #skipTo(m: Medium, target: number): Promise<boolean> {
    while (m.pos < target) {
      const h = m.handle as HostHandle;
      const r = await this.host.read(h, 1);
      if (r.kind === 'eod') return false;
      this.#passed(m, r.kind === 'filemark' ? FILEMARK : BLOCK);
    }
    return true;
  }

  #passed(m: Medium, kind: number): void {
    if (m.kinds.length > m.pos) {
      if (m.kinds[m.pos] !== kind) m.kinds.length = m.pos;
    }
    if (m.kinds.length === m.pos) m.kinds.push(kind);
    m.pos++;
  }

  #wrote(m: Medium, kind: number): void {
    m.kinds.length = m.pos;
    m.kinds.push(kind);
    m.pos++;
  }

  /** Reads the next record with the whole block. */
  async readRecord(m: Medium): Promise<{ kind: 'block'; data: Uint8Array } | { kind: 'filemark' } | { kind: 'eod' }> {
    if (m.lost !== null) throw new SenseError(m.lost);
    if (m.blank && m.handle === null) return { kind: 'eod' };
    const r = await this.#io(m, (h) => this.host.read(h, MAX_BLOCK));
    if (r.kind === 'eod') return r;
    this.#passed(m, r.kind === 'filemark' ? FILEMARK : BLOCK);
    return r.kind === 'filemark' ? { kind: 'filemark' } : { kind: 'block', data: r.data };
  }

  /** Skips the next record (1 byte of a block crosses the network). */
  async skipRecord(m: Medium): Promise<'block' | 'filemark' | 'eod'> {
    if (m.lost !== null) throw new SenseError(m.lost);
    if (m.blank && m.handle === null) return 'eod';
    const r = await this.#io(m, (h) => this.host.read(h, 1));
    if (r.kind === 'eod') return 'eod';
    this.#passed(m, r.kind === 'filemark' ? FILEMARK : BLOCK);
    return r.kind;
  }

  async writeBlock(data: Uint8Array, residue: number): Promise<void> {
    const { m, h } = await this.writable();
    const depth = Math.max(1, this.#o.writeBehind ?? WRITE_BEHIND);
    if (depth === 1) {
      try {
        await this.host.write(h, data);
      } catch (e) {
        this.#lose(m, e, 'WRITE failed on the VTS', residue);
      }
      this.#wrote(m, BLOCK);
      return;
    }
    // The host's buffer (the target's pooled Data-Out) is reused once the WRITE is answered,
    // with the block maybe still on its way: the host path reads it only while `write` runs
    // (RpcClient.call seals it into its frame, or copies it while the connection is set up).
    const block = data;
    // The blocks reach the VTS in the order sent: one RPC connection carries them in order and
    // the VTS queues each on the mount as its frame arrives (VtsUnit's per-mount chain). A
    // block whose connection drops fails, and one sent after the drop goes only once the
    // blocks before it were answered or failed: no two successful blocks can swap places,
    // and one failed block keeps the mount from being committed.
    const sent: Promise<void> = this.host.write(h, block).then(
      () => undefined,
      (e: unknown) => this.#lostBehind(m, h, e),
    );
    m.behind.add(sent);
    void sent.finally(() => m.behind.delete(sent));
    this.#wrote(m, BLOCK);
    while (m.behind.size >= depth) await Promise.race(m.behind);
    // A block before this one failed: this WRITE is where the host hears of it.
    this.#tellDeferred(m);
  }

  /** A block written behind failed: the write is lost, and the host's next command is told (deferred error). */
  #lostBehind(m: Medium, h: HostHandle, e: unknown): void {
    // Blocks behind the first failure fail too (the mount is being ended): one loss.
    if (m.lost !== null || m.handle !== h) return;
    m.lost = writeError();
    m.deferred = { ...m.lost, deferred: true };
    m.handle = null;
    this.stats.lost++;
    this.log.error({ volser: m.volser, err: e, code: codeOf(e) }, 'a WRITE answered before the VTS had it failed there: write lost, the host is told at its next command (deferred error), WRITE ERROR until the cartridge is unloaded');
    void this.#drop(h);
  }

  async writeFilemarks(count: number): Promise<void> {
    const { m, h } = await this.writable();
    for (let i = 0; i < count; i++) {
      try {
        await this.host.writeFilemark(h);
      } catch (e) {
        this.#lose(m, e, 'WRITE FILEMARKS failed on the VTS', count - i);
      }
      this.#wrote(m, FILEMARK);
    }
  }

  /** Back to the beginning. */
  async rewind(): Promise<void> {
    const m = await this.ready();
    if (m.lost !== null) {
      m.pos = 0;
      return;
    }
    if (m.handle !== null) await this.#io(m, (h) => this.host.rewind(h));
    m.pos = 0;
  }

  /** Positions at record `target` (rewinding when it is behind). Returns false when end of data came first. */
  async seek(target: number): Promise<boolean> {
    const m = await this.ready();
    if (m.lost !== null) throw new SenseError(m.lost);
    if (target === m.pos) return true;
    if (m.blank && m.handle === null) return target === 0;
    if (target < m.pos) {
      await this.#io(m, (h) => this.host.rewind(h));
      m.pos = 0;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#skipTo(m, target);
      } catch (e) {
        if (e instanceof SenseError) throw e;
        const h = m.handle;
        if (h === null || h.writable) this.#lose(m, e, 'could not position the write mount');
        if (!mountLost(e) || attempt >= 3) this.#readFailed(m, e);
        // The read mount went away under the skip: mount again and go on from where it was.
        m.handle = null;
        await this.host.close(h).catch(() => undefined);
        this.stats.remounts++;
        await this.ready();
      }
    }
  }

  // ------------------------------------------------------------------ load and unload

  #newMedium(volser: string): Medium {
    return { volser, handle: null, blank: false, pos: 0, kinds: [], epoch: 0, lost: null, behind: new Set(), deferred: null };
  }

  /** Threads the cartridge: mounts it now when the PtP system can (else at the first command). */
  async load(): Promise<void> {
    const c = this.cartridge;
    if (c === undefined) throw new SenseError(sense(Sense.MEDIUM_NOT_PRESENT));
    if (this.state !== 'loaded') {
      this.medium = this.#newMedium(c.barcode);
      this.state = 'loaded';
    }
    await this.ready();
  }

  /**
   * Unthreads: commits a write (its copy per copy mode), ends a read mount. The cartridge
   * is out of the drive's hands either way; a commit that failed rejects with WRITE ERROR.
   */
  async unload(): Promise<void> {
    const m = this.medium;
    // Every block written behind is on the VTS, or the write is lost, before anything is committed.
    if (m !== undefined) while (m.behind.size > 0) await Promise.race(m.behind);
    this.medium = undefined;
    this.state = this.cartridge === undefined ? 'empty' : 'unloaded';
    if (m === undefined) return;
    // Lost by a block behind, and the host not told yet: the unload answers it; nothing is committed.
    if (m.handle === null) this.#tellDeferred(m);
    if (m.handle === null) return;
    const h = m.handle;
    m.handle = null;
    if (!h.writable) {
      await this.host.close(h).catch((e: unknown) => this.log.warn({ volser: m.volser, err: e }, 'closing a read mount failed'));
      return;
    }
    const epoch = this.host.engine.writeContext().epoch;
    let r: CloseResult;
    try {
      if (epoch !== m.epoch) throw new Error(`key ${epoch} took effect after the write was planned under key ${m.epoch}`);
      r = await this.host.close(h);
    } catch (e) {
      if (epoch !== m.epoch) await this.#drop(h);
      this.stats.lost++;
      this.log.error({ volser: m.volser, err: e, code: codeOf(e) }, 'commit at unload failed: the write is not acknowledged');
      throw new SenseError(writeError());
    }
    this.stats.commits++;
    this.log.info({ volser: m.volser, generation: r.generation, copies: r.copies, queued: r.queued }, 'volume committed at unload');
    try {
      await this.#o.onCommitted?.(r);
    } catch (e) {
      this.log.error({ volser: m.volser, err: e }, 'after the commit: the library could not record it');
    }
  }

  // ------------------------------------------------------------------ DriveBay

  hasMedium(): boolean {
    return this.state !== 'empty';
  }

  async insert(c: C): Promise<void> {
    if (this.state !== 'empty') throw new DriveRefused('full', `drive ${this.serial} already holds ${this.cartridge?.barcode ?? 'a cartridge'}`);
    this.cartridge = c;
    this.medium = this.#newMedium(c.barcode);
    this.state = 'loaded';
    this.#notReadyAnswered = false;
    try {
      await this.ready();
    } catch (e) {
      // Loaded all the same: the drive answers NOT READY until the PtP system can serve it.
      if (!(e instanceof SenseError)) throw e;
    }
    this.onLoaded?.();
  }

  readyForRemoval(): boolean {
    return this.state === 'unloaded';
  }

  async unloadForRobot(): Promise<void> {
    if (this.state !== 'loaded') return;
    if (this.preventedBy.size > 0) throw new DriveRefused('removal-prevented', `medium removal is prevented on drive ${this.serial}`);
    try {
      await this.unload();
    } catch (e) {
      // No host to tell: the log says it (and the write was never acknowledged).
      if (!(e instanceof SenseError)) throw e;
    }
  }

  remove(): C {
    const c = this.cartridge;
    if (c === undefined || this.state !== 'unloaded') throw new DriveRefused('not-unloaded', `drive ${this.serial} has not unloaded its cartridge`);
    this.cartridge = undefined;
    this.state = 'empty';
    return c;
  }

  /**
   * Ends a write that is not to be acknowledged: the host path's abandon when it has one;
   * else its close, which the VTS refuses once it recorded the key that fenced the write
   * (and which ends the mount either way, so the volume is not left held).
   */
  async #drop(h: HostHandle): Promise<void> {
    const abandon = this.host.abandon;
    await (abandon !== undefined ? abandon.call(this.host, h) : this.host.close(h)).catch(() => undefined);
  }

  /**
   * Process shutdown: ends the mount without committing (the host never unloaded). A
   * write is abandoned when the host path can; otherwise it is left to the VTS, which
   * abandons a mount of a VTC run that is gone.
   */
  async close(): Promise<void> {
    const h = this.medium?.handle;
    if (this.medium !== undefined) this.medium.handle = null;
    if (h === null || h === undefined) return;
    if (!h.writable) await this.host.close(h).catch(() => undefined);
    else if (this.host.abandon !== undefined) await this.#drop(h);
  }

  // ------------------------------------------------------------------ SSC semantics

  /**
   * READ in variable-block mode: one block, cut to `count` bytes. A shorter block is GOOD
   * under SILI and an incorrect length (ILI) otherwise; a longer one always is. A filemark
   * or end of data ends it with their sense, INFORMATION being `count`.
   */
  async readVariable(count: number, sili: boolean): Promise<{ data: Uint8Array; sense?: SenseData }> {
    const m = await this.ready();
    const r = await this.readRecord(m);
    if (r.kind === 'eod') throw new SenseError(sense(Sense.END_OF_DATA_DETECTED, { information: count }));
    if (r.kind === 'filemark') throw new SenseError(sense(Sense.FILEMARK_DETECTED, { filemark: true, information: count }));
    const block = r.data;
    if (block.length === count) return { data: block };
    const data = block.length > count ? block.subarray(0, count) : block;
    if (block.length < count && sili) return { data };
    return { data, sense: sense(Sense.NO_ADDITIONAL_SENSE, { ili: true, information: count - block.length }) };
  }

  /** READ in fixed-block mode: `count` blocks of the block size; what was read before a stop goes with the sense. */
  async readFixed(count: number): Promise<Uint8Array> {
    const m = await this.ready();
    const got: Uint8Array[] = [];
    for (let done = 0; done < count; done++) {
      const residue = count - done;
      const partial = got.length > 0 ? Buffer.concat(got) : undefined;
      const r = await this.readRecord(m);
      if (r.kind === 'eod') throw new SenseError(sense(Sense.END_OF_DATA_DETECTED, { information: residue }), partial);
      if (r.kind === 'filemark') throw new SenseError(sense(Sense.FILEMARK_DETECTED, { filemark: true, information: residue }), partial);
      if (r.data.length !== this.blockSize) throw new SenseError(sense(Sense.NO_ADDITIONAL_SENSE, { ili: true, information: residue }), partial);
      got.push(r.data);
    }
    return Buffer.concat(got);
  }

  /** WRITE of `blocks` blocks of `size` bytes from `data`; `fixed` says how residues count. */
  async write(data: Uint8Array, size: number, blocks: number, fixed: boolean): Promise<void> {
    await this.#ready();
    if (data.length < size * blocks) throw new SenseError(sense(Sense.DATA_PHASE_ERROR));
    for (let i = 0; i < blocks; i++) await this.writeBlock(data.subarray(i * size, (i + 1) * size), fixed ? blocks - i : size);
  }

  /** WRITE FILEMARKS; 0 is a flush (every block written behind is on the VTS first; a lost write says so). */
  async filemarks(count: number): Promise<void> {
    const m = await this.ready();
    if (count === 0) {
      if (m.lost !== null) throw new SenseError(m.lost);
      return;
    }
    await this.writeFilemarks(count);
  }

  /**
   * SPACE over blocks or filemarks (negative counts towards the beginning), or to end of
   * data. Stops as SSC-4 says: at a filemark met while spacing over blocks (on its far side
   * going forward, its near side going back), at end of data, at the beginning.
   */
  async space(what: 'blocks' | 'filemarks' | 'eod', count: number): Promise<void> {
    const m = await this.ready();
    if (m.lost !== null) throw new SenseError(m.lost);
    if (what === 'eod') {
      while ((await this.skipRecord(m)) !== 'eod');
      return;
    }
    const blocks = what === 'blocks';
    if (count > 0) {
      let left = count;
      while (left > 0) {
        const k = await this.skipRecord(m);
        if (k === 'eod') throw new SenseError(sense(Sense.END_OF_DATA_DETECTED, { information: left }));
        if (k === 'filemark') {
          if (blocks) throw new SenseError(sense(Sense.FILEMARK_DETECTED, { filemark: true, information: left }));
          left--;
        } else if (blocks) left--;
      }
      return;
    }
    // Backwards: the kinds of the records before the position are known (passed to get here).
    let left = -count;
    let p = m.pos;
    while (left > 0) {
      if (p === 0) {
        await this.seek(0);
        throw new SenseError(sense(Sense.BEGINNING_OF_PARTITION_MEDIUM_DETECTED, { eom: true, information: left }));
      }
      if (m.kinds[p - 1] === FILEMARK) {
        if (blocks) {
          await this.seek(p - 1);
          throw new SenseError(sense(Sense.FILEMARK_DETECTED, { filemark: true, information: left }));
        }
        left--;
      } else if (blocks) left--;
      p--;
    }
    await this.seek(p);
  }

  /** LOCATE to logical object `target`; past end of data it stops there with BLANK CHECK / END-OF-DATA. */
  async locate(target: number): Promise<void> {
    if (!(await this.seek(target))) throw new SenseError(sense(Sense.END_OF_DATA_DETECTED));
  }

  /** READ POSITION's facts: the position and the filemarks before it. Needs no mount. */
  position(): { readonly pos: number; readonly filemarks: number } {
    const why = this.stateSense();
    if (why !== undefined) throw new SenseError(why);
    const m = this.medium;
    const pos = m?.pos ?? 0;
    return { pos, filemarks: (m?.kinds ?? []).slice(0, pos).filter((k) => k === FILEMARK).length };
  }

  /** LOAD UNLOAD: load the cartridge present, or unload (committing a write). */
  async loadUnload(load: boolean): Promise<void> {
    if (load) {
      if (this.state === 'empty') throw new SenseError(sense(Sense.MEDIUM_NOT_PRESENT));
      await this.load();
      return;
    }
    if (this.state !== 'loaded') return;
    if (this.preventedBy.size > 0) throw new SenseError(sense(Sense.MEDIUM_REMOVAL_PREVENTED));
    await this.unload();
  }
}

