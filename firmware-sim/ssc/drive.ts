/**
 * The tape drive model: medium state, logical position, block size, removal prevention,
 * counters, TapeAlert flags and faults. Command handlers (io.ts, position.ts, medium.ts,
 * attributes.ts) drive it; the robot reaches it only through {@link DriveBay}.
 */
import { Sense, sense, type SenseCode, type SenseData } from '../../src/scsi/sense.js';
import { CheckCondition } from '../engine/check.js';
import { InsertRefused, type CartridgeRef, type DriveBay } from '../engine/library-link.js';
import { hangUntilAborted, mechanicalDelay } from '../engine/timing.js';
import type { EmulatedUnit } from '../engine/unit.js';
import { Cartridge, CartridgeStateError, CartridgeWriteError } from '../media/cartridge.js';
import type { StoredAttribute } from '../media/format.js';
import type { CartridgeFileIo } from '../media/file-io.js';
import { densityOf, mediaAccess, parseMediaType, type Density, type DrivePersonality, type MediaAccess } from '../personalities/drives.js';
import { cacheAttributes, type AttributeCache } from './attributes.js';
import { Attr, asciiValue, binaryNumber, binaryValue } from './mam.js';
import { Scratch } from './codec.js';
import { DataEncryption, type EncryptionConfig } from './security.js';
import { DriveSense } from './sense-codes.js';
import { StreamingModel, type StreamingStats } from './streaming.js';

/** Where the cartridge is. `unloaded`: in the drive but not threaded (after UNLOAD with HOLD). `ejected`: at the throat, ready for the robot. */
export type MediumState = 'empty' | 'loading' | 'loaded' | 'unloaded' | 'ejected';

/** TapeAlert flag numbers (1-64) the drive raises itself. */
export const TapeAlertFlag = {
  readWarning: 1,
  writeWarning: 2,
  hardError: 3,
  media: 4,
  readFailure: 5,
  writeFailure: 6,
  writeProtect: 9,
  noRemoval: 10,
  unsupportedFormat: 12,
  readOnlyFormat: 17,
  hardwareA: 30,
} as const;

const MiB = 1024 * 1024;

/** Where the early-warning point sits for a given capacity: a 5% zone, at most 20 GB. */
export function earlyWarningPoint(capacityBytes: number): number {
  return capacityBytes - Math.min(Math.ceil(capacityBytes / 20), 20_000_000_000);
}

/**
 * Faults a test or scenario injects. Each takes effect at once and lasts until cleared
 * (or as stated); none waits.
 */
export interface DriveFaults {
  /** READ of object `n` answers MEDIUM ERROR / UNRECOVERED READ ERROR; a WRITE at position `n` answers MEDIUM ERROR / WRITE ERROR. */
  mediumErrorAt(objectNumber: number): void;
  /** Every following tape command waits until it is aborted (task management, transport timeout) or the unit is reset. */
  hang(): void;
  /** NOT READY / LOGICAL UNIT NOT READY, OFFLINE until set back online; the robot's inserts are refused. */
  setOffline(offline: boolean): void;
  /** Raises a TapeAlert flag (1-64), as the drive would on detecting the condition. */
  setTapeAlert(flag: number): void;
  /** Power cycle: commands in flight abort, POWER ON OCCURRED for every initiator, data made durable, position back at BOP. */
  powerCycle(): void;
  /** Removes every injected fault. */
  clear(): void;
}

export interface TapeDriveOptions {
  readonly personality: DrivePersonality;
  readonly serial: string;
  /** Name for traces, e.g. `lib0/drive1`. */
  readonly name?: string;
  /** Multiplier for the personality's mechanical times; 0 (the default) makes them instant. */
  readonly timeScale?: number;
  /** File system calls for the cartridge files (tests inject I/O errors); Node's fs by default. */
  readonly mediaIo?: CartridgeFileIo;
  /**
   * Data compression at power on (mode page 0Fh DCE). Off by default: a host (or Linux st's
   * `compression` option) turns it on with MODE SELECT, as with any LTO drive.
   */
  readonly compression?: boolean;
  /** A key set by the drive's configuration (library-managed encryption), kept across loads. */
  readonly encryption?: EncryptionConfig;
  /** Real time in seconds for the streaming model's device clock (tests inject one); `performance.now()` by default. */
  readonly clock?: () => number;
}

/** An IMMED command still running after its GOOD status went back (immediate.ts). */
export interface ImmediateOperation {
  readonly initiator: string;
  readonly name: string;
  readonly controller: AbortController;
  /** True once its mechanical part began: errors from then on are deferred. */
  started: boolean;
  /** True once the command has answered GOOD and runs on in the background. */
  released: boolean;
  release(): void;
}

/** A partition layout asked for with MODE SELECT (page 11h); see {@link TapeDrive.partitionRequest}. */
export interface PartitionRequest {
  /** How it was asked: FDP, SDP, IDP or none of them (one partition). */
  readonly kind: 'fdp' | 'sdp' | 'idp' | 'one';
  /** Partitions. */
  readonly count: number;
  /** IDP: the size of each partition in bytes, `undefined` for the one that takes what the others leave. */
  readonly sizes: readonly (number | undefined)[];
}

/**
 * The partition sizes in bytes that `r` gives a cartridge of `capacity` bytes, or why it
 * cannot (with the index of the partition at fault, for a field pointer).
 * FDP and SDP divide the medium equally (the device-defined sizes); IDP takes the sizes
 * given, one of them possibly the rest.
 */
export function partitionSizes(r: PartitionRequest, capacity: number): { sizes: number[] } | { error: string; partition: number } {
  if (r.kind !== 'idp') {
    const each = Math.floor(capacity / r.count);
    return { sizes: Array.from({ length: r.count }, (_, i) => (i === r.count - 1 ? capacity - each * (r.count - 1) : each)) };
  }
  let fixed = 0;
  for (let i = 0; i < r.sizes.length; i++) {
    fixed += r.sizes[i] ?? 0;
    if (fixed > capacity) return { error: `partitions 0..${i} need ${fixed} bytes, the cartridge holds ${capacity}`, partition: i };
  }
  const rest = r.sizes.indexOf(undefined);
  if (rest >= 0 && capacity - fixed <= 0) return { error: `no room is left for partition ${rest}`, partition: rest };
  return { sizes: r.sizes.map((s) => s ?? capacity - fixed) };
}

interface LoadCounters {
  bytesWritten: number;
  bytesRead: number;
  bytesFromHost: number;
  bytesToHost: number;
}

/** The state of one drive. Handlers take it from `x.device`. */
export class TapeDrive implements DriveBay {
  readonly personality: DrivePersonality;
  readonly serial: string;
  readonly vendorProduct: string;
  /** Set once by the factory; the unit wraps this model. */
  unit!: EmulatedUnit<TapeDrive>;
  state: MediumState = 'empty';
  cartridge: CartridgeRef | undefined;
  media: Cartridge | undefined;
  access: MediaAccess = 'incompatible';
  /** Logical object number of the current position in the current partition (objectCount = EOD); the partition is the cartridge's ({@link partition}). */
  position = 0;
  /** Fixed block length from the mode block descriptor; 0 is variable-block mode. */
  blockSize = 0;
  /** Software write protect (device configuration page SWP). */
  softwareWriteProtect = false;
  readonly preventedBy = new Set<string>();
  offline = false;
  hung = false;
  readonly mediumErrors = new Set<number>();
  tapeAlert = 0n;
  counters: LoadCounters = { bytesWritten: 0, bytesRead: 0, bytesFromHost: 0, bytesToHost: 0 };
  /** Data compression enabled (mode page 0Fh DCE). */
  compression: boolean;
  private readonly compressionAtPowerOn: boolean;
  /** The buffer blocks are encoded into on their way to the cartridge (codec.ts). */
  readonly scratch = new Scratch();
  /** Data encryption parameters and key (SECURITY PROTOCOL OUT, or configuration). */
  readonly encryption: DataEncryption;
  /** The attributes of the cartridge last unloaded (READ ATTRIBUTE with CACHE set); gone at power on. */
  attributeCache: AttributeCache | undefined;
  /**
   * Partitioning asked for with MODE SELECT of the medium partition page, applied by the
   * next FORMAT MEDIUM (the page reports POFM); sized against the cartridge loaded then
   * ({@link partitionSizes}). Cleared by FORMAT MEDIUM and power on.
   */
  partitionRequest: PartitionRequest | undefined;
  /** The IMMED command running in the background, if any. */
  immediate: ImmediateOperation | undefined;
  /** Deferred errors of IMMED commands, for the initiator that sent each (reported once). */
  readonly deferredErrors = new Map<string, SenseData>();
  readonly faults: DriveFaults;
  private readonly mediaIo: CartridgeFileIo | undefined;
  /** The cartridge write failure the host has been told about (WRITE ERROR); later flushes pass over it quietly. */
  private reportedFailure: CartridgeWriteError | undefined;
  /**
   * BUFFERED MODE of the mode parameter header: 1 (the default) lets a WRITE answer once
   * its data is in the buffer, 0 makes it wait until the data is on tape.
   */
  bufferedMode = 1;
  /** The data buffer, speed matching and backhitch (streaming.ts); made the first time the time scale is above 0. */
  private stream: StreamingModel | undefined;
  private readonly realClock: () => number;
  /** Device seconds so far, and the real time they were last brought up to. */
  private deviceSeconds = 0;
  private lastRealSeconds: number | undefined;

  constructor(o: TapeDriveOptions) {
    this.personality = o.personality;
    this.mediaIo = o.mediaIo;
    this.serial = o.serial;
    this.vendorProduct = `${o.personality.vendor.padEnd(8)}${o.personality.product.padEnd(16)}`;
    this.compressionAtPowerOn = (o.compression ?? false) && o.personality.features.compression;
    this.compression = this.compressionAtPowerOn;
    if (o.encryption && !o.personality.features.encryption) throw new RangeError(`drive personality '${o.personality.id}' has no encryption; an encryption key cannot be configured`);
    this.encryption = new DataEncryption(o.encryption);
    this.realClock = o.clock ?? ((): number => performance.now() / 1000);
    this.faults = {
      mediumErrorAt: (n) => void this.mediumErrors.add(n),
      hang: () => void (this.hung = true),
      setOffline: (off) => void (this.offline = off),
      setTapeAlert: (flag) => this.raiseTapeAlert(flag),
      powerCycle: () => this.unit.powerCycle(),
      clear: () => {
        this.mediumErrors.clear();
        this.hung = false;
        this.offline = false;
      },
    };
  }

  private get timeScale(): number {
    return this.unit.timeScale;
  }

  delay(seconds: number, signal: AbortSignal): Promise<void> {
    // An IMMED command answers GOOD when its mechanical part begins, and runs on.
    const op = this.immediate;
    if (op && op.controller.signal === signal) {
      op.started = true;
      if (this.waits(seconds)) op.release();
    }
    return mechanicalDelay(seconds, this.timeScale, signal);
  }

  /** Sets (or with `undefined` clears) the configured key, as a management interface does; it stays across power-on. */
  configureEncryption(c: EncryptionConfig | undefined): void {
    if (c && !this.personality.features.encryption) throw new RangeError(`drive personality '${this.personality.id}' has no encryption`);
    this.encryption.setConfig(c);
  }

  /** True when a mechanical delay of `seconds` actually waits (time scale above 0). */
  waits(seconds: number): boolean {
    return seconds * this.timeScale > 0;
  }

  // ------------------------------------------------------------------ streaming

  /**
   * Device time: real time divided by the time scale (0.01 runs the drive 100 times fast),
   * accumulated so that a time scale changed on the way applies from then on.
   */
  private deviceNow(): number {
    const real = this.realClock();
    if (this.lastRealSeconds !== undefined && this.timeScale > 0) this.deviceSeconds += Math.max(0, real - this.lastRealSeconds) / this.timeScale;
    this.lastRealSeconds = real;
    return this.deviceSeconds;
  }

  private streaming(): StreamingModel {
    if (!this.stream) {
      const t = this.personality.timing;
      this.stream = new StreamingModel({ stepsBytesPerSecond: t.speedStepsMBps.map((s) => s * 1e6), bufferBytes: t.bufferBytes, backhitchSeconds: t.backhitchSeconds }, () => this.deviceNow());
    }
    return this.stream;
  }

  /**
   * Device seconds a READ or WRITE of `storedBytes` (as on tape, after compression) waits
   * in the streaming model. Only asked with a time scale above 0: at 0 nothing is modelled.
   */
  transferSeconds(kind: 'read' | 'write', storedBytes: number): number {
    const s = this.streaming();
    return kind === 'read' ? s.read(storedBytes) : s.write(storedBytes, this.bufferedMode !== 0);
  }

  /**
   * Before the tape moves (and for WRITE FILEMARKS with IMMED 0): waits until the buffer's
   * data is on tape, a reposition included when the tape stood still. Undefined when there
   * is nothing to wait for (always with time scale 0). Not an IMMED release point: SSC has
   * buffered data written before an IMMED REWIND, LOCATE or UNLOAD answers.
   */
  settleBuffer(signal: AbortSignal): Promise<void> | undefined {
    if (!(this.timeScale > 0) || !this.stream) return undefined;
    const seconds = this.stream.flush();
    return seconds > 0 ? mechanicalDelay(seconds, this.timeScale, signal) : undefined;
  }

  /** After the tape moved (load, locate, space, rewind, format): it stands where the next transfer starts. */
  tapeMoved(): void {
    this.stream?.positioned();
  }

  /** The streaming model's figures, once it has run (time scale above 0 since power on). */
  streamingStats(): StreamingStats | undefined {
    return this.stream?.stats();
  }

  raiseTapeAlert(flag: number): void {
    if (!Number.isInteger(flag) || flag < 1 || flag > 64) throw new RangeError(`TapeAlert flag must be 1..64 (got ${flag})`);
    this.tapeAlert |= 1n << BigInt(flag - 1);
  }

  // ------------------------------------------------------------------ readiness

  /** Why TEST UNIT READY fails, or undefined when a medium is loaded and usable. */
  notReady(): SenseData | undefined {
    if (this.offline) return sense(Sense.NOT_READY_OFFLINE);
    if (this.immediate?.released && this.state === 'loaded') return sense(DriveSense.OPERATION_IN_PROGRESS);
    switch (this.state) {
      case 'empty':
        return sense(Sense.MEDIUM_NOT_PRESENT);
      case 'loading':
        return sense(Sense.BECOMING_READY);
      case 'unloaded':
      case 'ejected':
        return sense(Sense.INITIALIZING_COMMAND_REQUIRED);
      default:
        return undefined;
    }
  }

  /**
   * The common gate of tape commands: a hung drive never answers; an offline drive or one
   * without a loaded tape is NOT READY. `medium` commands also need a readable format.
   */
  async ready(signal: AbortSignal, medium = true): Promise<Cartridge> {
    if (this.hung) await hangUntilAborted(signal);
    return this.readyNow(medium);
  }

  /** {@link ready} for a drive that is not hung: the cartridge, or CHECK CONDITION thrown. */
  readyNow(medium = true): Cartridge {
    const why = this.notReady();
    if (why) throw new CheckCondition(why);
    const m = this.media;
    if (!m) throw new CheckCondition(sense(Sense.MEDIUM_NOT_PRESENT));
    if (medium && this.access === 'incompatible') {
      this.raiseTapeAlert(TapeAlertFlag.unsupportedFormat);
      throw new CheckCondition(sense(Sense.INCOMPATIBLE_MEDIUM_INSTALLED));
    }
    return m;
  }

  /**
   * Answers a failed cartridge write or sync: MEDIUM ERROR / WRITE ERROR with the TapeAlert
   * flags a drive raises, `information` being the residue of the command. The cartridge
   * refuses writes from then on, until it is unloaded and loaded again. Anything other
   * than a {@link CartridgeWriteError} is rethrown unchanged.
   */
  mediaWriteFailed(e: unknown, information?: number): never {
    if (!(e instanceof CartridgeWriteError)) throw e;
    this.raiseTapeAlert(TapeAlertFlag.hardError);
    this.raiseTapeAlert(TapeAlertFlag.media);
    this.raiseTapeAlert(TapeAlertFlag.writeFailure);
    const f = this.media?.writeFailure;
    if (f) this.reportedFailure = f;
    throw new CheckCondition(sense(Sense.WRITE_ERROR, information === undefined ? {} : { information }));
  }

  /**
   * Refuses a write for the reasons a drive refuses one, in the order a drive checks them;
   * `residue` is the INFORMATION of a WRITE ERROR from an earlier failed write or sync.
   */
  checkWritable(m: Cartridge, at: number, residue?: number): void {
    const failed = m.writeFailure;
    if (failed) this.mediaWriteFailed(failed, residue);
    if (this.access === 'read-only') {
      this.raiseTapeAlert(TapeAlertFlag.readOnlyFormat);
      this.fail(Sense.CANNOT_WRITE_MEDIUM_INCOMPATIBLE_FORMAT);
    }
    if (this.writeProtected()) {
      this.raiseTapeAlert(TapeAlertFlag.writeProtect);
      this.fail(Sense.WRITE_PROTECTED);
    }
    if (this.wormOverwrite(m, at)) this.fail(Sense.WORM_OVERWRITE_ATTEMPTED);
  }

  /** WORM media take appends at EOD only; trailing filemarks may be overwritten (as LTO WORM allows). */
  wormOverwrite(m: Cartridge, at: number): boolean {
    if (!m.header.worm) return false;
    for (let i = at; i < m.objectCount; i++) if (m.object(i)?.kind !== 'filemark') return true;
    return false;
  }

  writeProtected(): boolean {
    return (this.cartridge?.writeProtected ?? false) || this.softwareWriteProtect;
  }

  fail(code: SenseCode, extra: Omit<SenseData, 'key' | 'asc' | 'ascq'> = {}): never {
    throw new CheckCondition(sense(code, extra));
  }

  /** The density of the loaded medium, if known. */
  mediumDensity(): Density | undefined {
    return this.cartridge ? densityOf(this.cartridge.mediaType) : undefined;
  }

  capacity(): number {
    return this.media?.header.capacityBytes ?? 0;
  }

  /** The current partition (0 without a cartridge). */
  get partition(): number {
    return this.media?.partition ?? 0;
  }

  /**
   * Moves to BOP of partition `p` when it is not the current one (LOCATE with CP,
   * READ(16)/WRITE(16), REWIND): what was written is flushed first, as a drive empties its
   * buffer before it leaves a partition. The caller then positions inside it.
   */
  changePartition(m: Cartridge, p: number): Promise<void> | undefined {
    if (p === m.partition) return undefined;
    const flushing = this.flush();
    const change = (): void => {
      m.selectPartition(p);
      this.position = 0;
    };
    if (flushing) return flushing.then(change);
    change();
    return undefined;
  }

  /** Beyond the early-warning point of the current partition (READ POSITION EOP bit, write warnings). */
  pastEarlyWarning(m: Cartridge): boolean {
    return m.dataBytesBefore(this.position) >= earlyWarningPoint(m.partitionCapacity);
  }

  // ------------------------------------------------------------------ loading

  private openCartridge(c: CartridgeRef): Cartridge {
    const { worm } = parseMediaType(c.mediaType);
    return Cartridge.open(c.path, { create: { mediaType: c.mediaType, barcode: c.barcode, capacityBytes: c.capacityBytes, worm }, ...(this.mediaIo ? { io: this.mediaIo } : {}) });
  }

  /** Threads the cartridge: opens its file, updates cartridge memory, BOP, MEDIUM MAY HAVE CHANGED. */
  async thread(signal: AbortSignal, seconds: number, initiator?: string): Promise<void> {
    const c = this.cartridge;
    if (!c) throw new CheckCondition(sense(Sense.MEDIUM_NOT_PRESENT));
    this.state = 'loading';
    try {
      await this.delay(seconds, signal);
    } catch (e) {
      this.state = 'unloaded';
      throw e;
    }
    const m = this.media ?? this.openCartridge(c);
    this.media = m;
    this.access = mediaAccess(this.personality, c.mediaType);
    // BOP of partition 0.
    m.selectPartition(0);
    this.position = 0;
    this.tapeMoved();
    this.counters = { bytesWritten: 0, bytesRead: 0, bytesFromHost: 0, bytesToHost: 0 };
    try {
      await this.recordLoad(m, c);
    } catch (e) {
      // The tape still loads: it reads, and refuses writes with WRITE ERROR.
      if (!(e instanceof CartridgeWriteError)) throw e;
      this.raiseTapeAlert(TapeAlertFlag.writeFailure);
    }
    this.state = 'loaded';
    if (this.access === 'read-only') this.raiseTapeAlert(TapeAlertFlag.readOnlyFormat);
    // The host that asked for the load knows; everyone else is told the medium may have changed.
    this.unit.raise(Sense.NOT_READY_TO_READY_CHANGE, initiator);
  }

  private async recordLoad(m: Cartridge, c: CartridgeRef): Promise<void> {
    if (m.readOnly) return;
    const attrs = m.readAttributes();
    const set = (id: number, format: number, value: Uint8Array): void => void attrs.set(id, { format, value });
    if (!attrs.has(Attr.MEDIUM_SERIAL_NUMBER)) {
      const d = new Date(m.header.createdMs);
      const ymd = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
      set(Attr.MEDIUM_MANUFACTURER, 1, asciiValue('PTPVTS', 8));
      set(Attr.MEDIUM_SERIAL_NUMBER, 1, asciiValue(`${m.header.barcode}${m.header.createdMs.toString(16).toUpperCase()}`, 32));
      set(Attr.MEDIUM_MANUFACTURE_DATE, 1, asciiValue(ymd, 8));
      set(Attr.BARCODE, 1, asciiValue(c.barcode, 32));
    }
    const loads = binaryNumber(attrs.get(Attr.LOAD_COUNT)?.value) + 1;
    set(Attr.LOAD_COUNT, 0, binaryValue(loads, 8));
    const history = [Attr.DEVICE_AT_LAST_LOAD, Attr.DEVICE_AT_LOAD_MINUS_1, Attr.DEVICE_AT_LOAD_MINUS_2, Attr.DEVICE_AT_LOAD_MINUS_3];
    for (let i = history.length - 1; i > 0; i--) {
      const prev = attrs.get(history[i - 1] ?? 0);
      if (prev) set(history[i] ?? 0, 1, prev.value);
    }
    set(Attr.DEVICE_AT_LAST_LOAD, 1, asciiValue(`${this.personality.vendor.padEnd(8)}${this.serial}`, 40));
    set(Attr.TOTAL_MB_WRITTEN_THIS_LOAD, 0, binaryValue(0, 8));
    set(Attr.TOTAL_MB_READ_THIS_LOAD, 0, binaryValue(0, 8));
    await m.writeAttributeSetsAsync(new Map([[0, attrs]]));
  }

  /** Adds this load's transfer counts to the cartridge memory (its fdatasync on the loop: for the synchronous paths). */
  private recordUsage(m: Cartridge): void {
    if (m.readOnly) return;
    m.writeAttributes(this.usageAttributes(m));
  }

  /** The cartridge memory with this load's transfer counts added. */
  private usageAttributes(m: Cartridge): Map<number, StoredAttribute> {
    const attrs = m.readAttributes();
    const mbW = Math.floor(this.counters.bytesWritten / MiB);
    const mbR = Math.floor(this.counters.bytesRead / MiB);
    const add = (id: number, v: number): void => void attrs.set(id, { format: 0, value: binaryValue(binaryNumber(attrs.get(id)?.value) + v, 8) });
    add(Attr.TOTAL_MB_WRITTEN_LIFETIME, mbW - binaryNumber(attrs.get(Attr.TOTAL_MB_WRITTEN_THIS_LOAD)?.value));
    add(Attr.TOTAL_MB_READ_LIFETIME, mbR - binaryNumber(attrs.get(Attr.TOTAL_MB_READ_THIS_LOAD)?.value));
    attrs.set(Attr.TOTAL_MB_WRITTEN_THIS_LOAD, { format: 0, value: binaryValue(mbW, 8) });
    attrs.set(Attr.TOTAL_MB_READ_THIS_LOAD, { format: 0, value: binaryValue(mbR, 8) });
    return attrs;
  }

  /**
   * Makes everything written durable (a sync point). With `usage`, the load's usage
   * counters also go to cartridge memory: drives write it when the cartridge leaves
   * (unload, power loss), not at every filemark, and READ ATTRIBUTE reports live values
   * meanwhile, so filemarks cost one fdatasync rather than two. Undefined when there is
   * nothing to wait for; else a promise that resolves once it is durable (the fdatasync
   * runs on the thread pool) or rejects with CHECK CONDITION, WRITE ERROR. A failure not
   * yet reported is thrown at once.
   */
  flush(usage = false): Promise<void> | undefined {
    const m = this.media;
    if (!m || m.readOnly || m.closed) return undefined;
    // Told once: the host may still rewind and read what did reach the tape.
    if (m.writeFailure && m.writeFailure === this.reportedFailure) return undefined;
    if (m.writeFailure) this.mediaWriteFailed(m.writeFailure);
    // Nothing to wait for: no promise, so a command that needs no sync answers at once.
    if (m.synced && !usage) return undefined;
    return this.flushAsync(m, usage);
  }

  /**
   * {@link flush} when there is something to make durable: the sync point's fdatasync runs
   * on the thread pool (Cartridge.syncAsync) while the event loop serves the other drives.
   */
  private async flushAsync(m: Cartridge, usage: boolean): Promise<void> {
    try {
      await m.syncAsync();
      if (usage && !m.readOnly) await m.writeAttributeSetsAsync(new Map([[0, this.usageAttributes(m)]]));
    } catch (e) {
      // Closed meanwhile (an unload on another path): its own sync points made everything
      // durable, or found the failure and told that path.
      if (e instanceof CartridgeStateError && m.closed) return;
      this.mediaWriteFailed(e);
    }
  }

  /**
   * {@link flush}, for callers that must stay synchronous (LU reset hooks, process
   * shutdown): the fdatasync runs on the event loop. Only when no sync point is in flight;
   * otherwise {@link flush} is taken, its promise returned.
   */
  private flushNow(usage: boolean): Promise<void> | undefined {
    const m = this.media;
    if (!m || m.readOnly || m.closed || m.syncInFlight) return this.flush(usage);
    if (m.writeFailure && m.writeFailure === this.reportedFailure) return undefined;
    try {
      m.sync();
      if (usage) this.recordUsage(m);
    } catch (e) {
      this.mediaWriteFailed(e);
    }
    return undefined;
  }

  /** Unthreads: flushes, closes the file, and (unless `hold`) presents the cartridge to the robot. */
  async unthread(signal: AbortSignal, hold: boolean): Promise<void> {
    const m = this.media;
    // A write failure found on the way out still lets the tape go (reloading it is how it
    // recovers); the command then reports the error.
    let failed: unknown;
    if (m) {
      const settling = this.settleBuffer(signal);
      if (settling) await settling;
      try {
        await this.flush(true);
      } catch (e) {
        failed = e;
      }
      this.attributeCache = cacheAttributes(this, m);
      await this.delay(this.personality.timing.unloadSeconds, signal);
      try {
        // Its sync points and EOD marker, with the fdatasyncs on the thread pool.
        await m.closeAsync();
      } catch (e) {
        failed ??= e;
      }
    }
    this.media = undefined;
    this.position = 0;
    this.state = hold ? 'unloaded' : 'ejected';
    this.encryption.onDemount();
    // TapeAlert flags tied to the cartridge go with it.
    this.tapeAlert &= ~((1n << BigInt(TapeAlertFlag.readOnlyFormat - 1)) | (1n << BigInt(TapeAlertFlag.unsupportedFormat - 1)) | (1n << BigInt(TapeAlertFlag.writeProtect - 1)));
    if (failed instanceof CheckCondition) throw failed;
    if (failed !== undefined) this.mediaWriteFailed(failed);
  }

  // ------------------------------------------------------------------ DriveBay

  hasMedium(): boolean {
    return this.state !== 'empty';
  }

  async insert(cartridge: CartridgeRef): Promise<void> {
    if (this.offline) throw new InsertRefused('offline', `drive ${this.serial} is offline`);
    if (this.state !== 'empty') throw new InsertRefused('full', `drive ${this.serial} already holds ${this.cartridge?.barcode ?? 'a cartridge'}`);
    this.cartridge = cartridge;
    this.state = 'unloaded';
    try {
      await this.thread(new AbortController().signal, this.personality.timing.loadSeconds);
    } catch (e) {
      this.cartridge = undefined;
      this.media?.close();
      this.media = undefined;
      this.state = 'empty';
      throw e;
    }
  }

  readyForRemoval(): boolean {
    return this.state === 'ejected';
  }

  async unloadForRobot(): Promise<void> {
    if (this.state === 'empty' || this.state === 'ejected') return;
    if (this.preventedBy.size > 0) {
      this.raiseTapeAlert(TapeAlertFlag.noRemoval);
      throw new InsertRefused('removal-prevented', `medium removal is prevented on drive ${this.serial}`);
    }
    try {
      await this.unthread(new AbortController().signal, false);
    } catch (e) {
      // The cartridge is out either way; a robot move has no host to report a WRITE ERROR
      // to, and the TapeAlert flags (hard error, write failure) record it.
      if (!(e instanceof CheckCondition)) throw e;
    }
  }

  remove(): CartridgeRef {
    const c = this.cartridge;
    if (!c || this.state !== 'ejected') throw new InsertRefused('not-unloaded', `drive ${this.serial} has not unloaded its cartridge`);
    this.cartridge = undefined;
    this.state = 'empty';
    this.access = 'incompatible';
    return c;
  }

  // ------------------------------------------------------------------ resets

  /** LU reset, target reset or power on (engine hook). */
  onReset(kind: 'lu-reset' | 'target-reset' | 'power-on'): void {
    this.hung = false;
    this.preventedBy.clear();
    // An IMMED operation in the background stops where it is; its error, if any, is lost.
    this.immediate?.controller.abort();
    this.immediate = undefined;
    this.deferredErrors.clear();
    if (kind === 'power-on') {
      if (this.media && !this.media.closed && !this.media.readOnly) {
        // Power on reports POWER ON OCCURRED; the failed cartridge refuses the next write.
        try {
          // With a sync point in flight (a WRITE FILEMARKS the reset cut short) this one
          // queues behind it; nobody waits for it, so anything but WRITE ERROR is a bug.
          this.flushNow(true)?.catch((e: unknown) => {
            if (!(e instanceof CheckCondition)) this.unit.bugs.push({ command: 'power-on flush', cdb: '', error: e });
          });
        } catch (e) {
          if (!(e instanceof CheckCondition)) throw e;
        }
      }
      // The drive re-threads a cartridge it finds at power on: position is back at BOP 0.
      this.position = 0;
      if (this.media && !this.media.closed) this.media.selectPartition(0);
      this.partitionRequest = undefined;
      this.blockSize = 0;
      this.bufferedMode = 1;
      // What the buffer held was made durable above; the tape stands at BOP.
      this.tapeMoved();
      this.softwareWriteProtect = false;
      this.offline = false;
      this.compression = this.compressionAtPowerOn;
      this.encryption.onPowerOn();
      this.attributeCache = undefined;
    }
  }

  /**
   * Flushes and closes the cartridge (process shutdown); the drive keeps its state
   * otherwise. Synchronous, unless a sync point is in flight: then it waits for it (its
   * descriptor is in use on the thread pool) and the promise resolves once the file closed.
   */
  close(): void | Promise<void> {
    const m = this.media;
    if (!m || m.closed) return;
    if (m.syncInFlight) return m.whenSynced().then(() => this.close());
    // Process shutdown has no host to answer: a write failure is left as it is (the file
    // keeps what reached the disk), and the file is closed either way.
    let failed: unknown;
    try {
      void this.flushNow(true);
    } catch (e) {
      if (!(e instanceof CheckCondition)) failed = e;
    }
    try {
      m.close();
    } catch (e) {
      if (!(e instanceof CartridgeWriteError)) failed ??= e;
    }
    if (failed !== undefined) throw failed;
  }
}
