/**
 * An emulated USB mass storage device speaking Bulk-Only Transport, behind the same
 * WebUSB-style device contract the real `usb` package offers ({@link BotUsbDevice}).
 * CBWs become `LogicalUnit.execute` calls; the device keeps the sense of a failed command
 * until the host's REQUEST SENSE, as BOT devices must (no autosense on the wire).
 *
 * The wire is modelled at transfer granularity: a transfer the device cannot take or
 * give yet (a CSW while the command runs, a CBW while a command is in progress) waits,
 * as a NAKed endpoint does, until the state changes or the transfer's timeout runs out.
 */
import { Sense, encodeSense, sense as makeSense } from '../../../src/scsi/sense.js';
import type { SenseData } from '../../../src/scsi/sense.js';
import {
  BotFramingError,
  BotRequest,
  CSW_LENGTH,
  CswStatus,
  MassStorage,
  decodeCbw,
  encodeCsw,
} from '../../../src/transport/usb-bot/bot-wrappers.js';
import type { CommandBlockWrapper } from '../../../src/transport/usb-bot/bot-wrappers.js';
import type {
  BotUsbDevice,
  UsbConfigurationInfo,
  UsbControlSetup,
  UsbDirection,
  UsbInResult,
  UsbOutResult,
} from '../../../src/transport/usb-bot/usb-device.js';
import type { LogicalUnit } from '../../engine/types.js';

const GOOD = 0x00;
const CONDITION_MET = 0x04;
const REQUEST_SENSE = 0x03;
const BULK_IN = 1;
const BULK_OUT = 2;

/** Defects an injected fault can put into the next CSW. */
export const CswDefect = {
  /** Signature other than USBS. */
  signature: 'signature',
  /** Tag of another CBW. */
  tag: 'tag',
  /** Status 2, phase error. */
  phaseError: 'phase-error',
  /** Residue larger than the expected length. */
  residue: 'residue',
  /** Only 12 of the 13 bytes. */
  truncated: 'truncated',
} as const;
export type CswDefect = (typeof CswDefect)[keyof typeof CswDefect];

/** One-shot faults; each applies to the next place it can and is then used up. */
export type UsbFault =
  /** The next data stage (in or out) stalls its bulk endpoint instead of moving data. */
  | { readonly kind: 'stall-data' }
  /** The next Data-In stage sends only `bytes` bytes; the CSW residue says so truthfully. */
  | { readonly kind: 'short-data'; readonly bytes: number }
  /** The next CSW carries `defect`. */
  | { readonly kind: 'bad-csw'; readonly defect: CswDefect }
  /** The next CSW is never sent: the host's status stage waits until it gives up. */
  | { readonly kind: 'no-csw' };

export interface EmulatedUsbDeviceOptions {
  /** LUN -> unit; LUN 0 must exist. At most 16 LUNs (BOT's four bits). */
  readonly luns: ReadonlyMap<number, LogicalUnit>;
  readonly vendorId?: number;
  readonly productId?: number;
  readonly serialNumber?: string;
  readonly productName?: string;
  /** Stall Get Max LUN, as single-LUN devices may; the host then assumes LUN 0 only. */
  readonly stallGetMaxLun?: boolean;
  /** I_T nexus name the units see. Default: `usb-host-<n>`. */
  readonly initiator?: string;
}

/** Counters for tests. */
export interface EmulatedUsbStats {
  cbws: number;
  invalidCbws: number;
  massStorageResets: number;
  portResets: number;
  clearHalts: number;
}

interface Job {
  readonly cbw: CommandBlockWrapper;
  stage: 'out' | 'exec' | 'in' | 'status';
  readonly ctl: AbortController;
  outChunks: Uint8Array[];
  outGot: number;
  data: Uint8Array;
  sent: number;
  cswStatus: number;
  residue: number;
}

class UsbTransferError extends Error {
  override readonly name = 'UsbTransferError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let nextHost = 1;

function isHeld(status: number): boolean {
  return status !== GOOD && status !== CONDITION_MET;
}

export class EmulatedUsbDevice implements BotUsbDevice {
  readonly vendorId: number;
  readonly productId: number;
  readonly serialNumber: string | null;
  readonly manufacturerName = 'PTPVTS';
  readonly productName: string;
  readonly configurations: readonly UsbConfigurationInfo[];
  readonly initiator: string;
  readonly stats: EmulatedUsbStats = { cbws: 0, invalidCbws: 0, massStorageResets: 0, portResets: 0, clearHalts: 0 };
  private isOpen = false;
  private selected: UsbConfigurationInfo | null = null;
  private claimed = false;
  private gone = false;
  private job: Job | undefined;
  private readonly halted = { in: false, out: false };
  /** After an invalid CBW both endpoints stay stalled until a Bulk-Only Mass Storage Reset (BOT 6.6.1). */
  private resetNeeded = false;
  private readonly held = new Map<number, SenseData>();
  private readonly faults: UsbFault[] = [];
  private waiters = new Set<() => void>();
  /** Bumped when the host flushes a pipe (clear halt, resets): transfers waiting on it end, as a host controller cancels them. */
  private readonly generation = { in: 0, out: 0 };

  constructor(private readonly options: EmulatedUsbDeviceOptions) {
    if (!options.luns.has(0)) throw new RangeError('an emulated USB device needs a LUN 0');
    for (const lun of options.luns.keys()) if (!Number.isInteger(lun) || lun < 0 || lun > 15) throw new RangeError(`LUN ${lun} is outside 0..15`);
    this.vendorId = options.vendorId ?? 0x1d6b;
    this.productId = options.productId ?? 0x0104;
    this.serialNumber = options.serialNumber ?? null;
    this.productName = options.productName ?? `emulated ${options.luns.get(0)?.name ?? 'unit'}`;
    this.initiator = options.initiator ?? `usb-host-${nextHost++}`;
    const alternate = {
      alternateSetting: 0,
      interfaceClass: MassStorage.interfaceClass,
      interfaceSubclass: MassStorage.subclassScsi,
      interfaceProtocol: MassStorage.protocolBulkOnly,
      endpoints: [
        { endpointNumber: BULK_IN, direction: 'in', type: 'bulk', packetSize: 512 },
        { endpointNumber: BULK_OUT, direction: 'out', type: 'bulk', packetSize: 512 },
      ],
    } as const;
    this.configurations = [{ configurationValue: 1, interfaces: [{ interfaceNumber: 0, alternate, alternates: [alternate] }] }];
  }

  get opened(): boolean {
    return this.isOpen;
  }

  get configuration(): UsbConfigurationInfo | null {
    return this.selected;
  }

  // ------------------------------------------------------------------ faults

  /** Queues a one-shot fault. */
  inject(fault: UsbFault): void {
    this.faults.push(fault);
  }

  /** Faults not used yet. */
  pendingFaults(): readonly UsbFault[] {
    return [...this.faults];
  }

  private takeFault<K extends UsbFault['kind']>(kind: K): Extract<UsbFault, { kind: K }> | undefined {
    const i = this.faults.findIndex((f) => f.kind === kind);
    if (i < 0) return undefined;
    return this.faults.splice(i, 1)[0] as Extract<UsbFault, { kind: K }>;
  }

  /** The cable is pulled: every transfer in progress and every later call rejects. */
  unplug(): void {
    this.gone = true;
    this.abortJob();
    this.notify();
  }

  /** Whether the device is halted on a bulk endpoint (for tests). */
  haltState(): { in: boolean; out: boolean; resetNeeded: boolean } {
    return { ...this.halted, resetNeeded: this.resetNeeded };
  }

  // ------------------------------------------------------------------ device management

  private alive(): void {
    if (this.gone) throw new UsbTransferError('ENODEV', 'LIBUSB_ERROR_NO_DEVICE: the device has been disconnected');
  }

  async open(): Promise<void> {
    this.alive();
    this.isOpen = true;
  }

  async close(): Promise<void> {
    this.abortJob();
    this.isOpen = false;
    this.claimed = false;
    this.notify();
  }

  async selectConfiguration(value: number): Promise<void> {
    this.alive();
    const c = this.configurations.find((x) => x.configurationValue === value);
    if (!c) throw new UsbTransferError('EINVAL', `no configuration ${value}`);
    this.selected = c;
  }

  async claimInterface(n: number): Promise<void> {
    this.alive();
    if (!this.isOpen) throw new UsbTransferError('EACCES', 'the device is not open');
    if (n !== 0) throw new UsbTransferError('EINVAL', `no interface ${n}`);
    this.claimed = true;
  }

  async releaseInterface(_n: number): Promise<void> {
    this.claimed = false;
  }

  private usable(): void {
    this.alive();
    if (!this.isOpen || !this.claimed) throw new UsbTransferError('EACCES', 'the interface is not claimed');
  }

  async reset(): Promise<void> {
    this.alive();
    this.stats.portResets++;
    this.flush('in');
    this.flush('out');
    this.abortJob();
    this.halted.in = false;
    this.halted.out = false;
    this.resetNeeded = false;
    this.held.clear();
    this.notify();
  }

  async clearHalt(direction: UsbDirection, endpointNumber: number): Promise<void> {
    this.usable();
    if ((direction === 'in' && endpointNumber !== BULK_IN) || (direction === 'out' && endpointNumber !== BULK_OUT)) {
      throw new UsbTransferError('EINVAL', `no bulk-${direction} endpoint ${endpointNumber}`);
    }
    this.stats.clearHalts++;
    this.flush(direction);
    if (!this.resetNeeded) this.halted[direction] = false;
    this.notify();
  }

  async controlTransferOut(setup: UsbControlSetup, _data?: Uint8Array, _timeoutMs?: number): Promise<UsbOutResult> {
    this.usable();
    if (setup.requestType === 'class' && setup.recipient === 'interface' && setup.request === BotRequest.reset && setup.index === 0 && setup.value === 0) {
      // Readies the interface for a CBW; halts stay as they are until the host clears them (BOT 3.1).
      this.stats.massStorageResets++;
      this.flush('in');
      this.flush('out');
      this.abortJob();
      this.resetNeeded = false;
      this.notify();
      return { bytesWritten: 0, status: 'ok' };
    }
    return { bytesWritten: 0, status: 'stall' };
  }

  async controlTransferIn(setup: UsbControlSetup, length: number, _timeoutMs?: number): Promise<UsbInResult> {
    this.usable();
    if (setup.requestType === 'class' && setup.recipient === 'interface' && setup.request === BotRequest.getMaxLun && setup.index === 0 && length >= 1) {
      if (this.options.stallGetMaxLun) return { status: 'stall' };
      const max = Math.max(...this.options.luns.keys());
      return { data: new DataView(Uint8Array.of(max).buffer), status: 'ok' };
    }
    return { status: 'stall' };
  }

  // ------------------------------------------------------------------ bulk pipes

  private notify(): void {
    const w = this.waiters;
    this.waiters = new Set();
    for (const f of w) f();
  }

  /** Waits, as a NAKed transfer does, for any change of state; rejects when `timeoutMs` passes. */
  private waitChange(timeoutMs: number | undefined, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.waiters.add(done);
      if (timeoutMs !== undefined && timeoutMs > 0) {
        timer = setTimeout(() => {
          this.waiters.delete(done);
          reject(new UsbTransferError('ETIMEDOUT', `LIBUSB_ERROR_TIMEOUT: ${what} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  private flush(direction: UsbDirection): void {
    this.generation[direction]++;
  }

  private stillQueued(direction: UsbDirection, generation: number): void {
    if (this.generation[direction] !== generation) throw new UsbTransferError('EINTR', `LIBUSB_ERROR_INTERRUPTED: the bulk-${direction} transfer was cancelled by a reset of the pipe`);
  }

  private abortJob(): void {
    const j = this.job;
    this.job = undefined;
    j?.ctl.abort(new Error('Bulk-Only reset'));
  }

  async transferOut(endpointNumber: number, data: Uint8Array, timeoutMs?: number): Promise<UsbOutResult> {
    const deadline = timeoutMs ? Date.now() + timeoutMs : undefined;
    const generation = this.generation.out;
    for (;;) {
      this.usable();
      this.stillQueued('out', generation);
      if (endpointNumber !== BULK_OUT) return { bytesWritten: 0, status: 'stall' };
      if (this.halted.out) return { bytesWritten: 0, status: 'stall' };
      const job = this.job;
      if (!job) return this.receiveCbw(data);
      if (job.stage === 'out') return this.receiveData(job, data);
      await this.waitChange(deadline === undefined ? undefined : Math.max(1, deadline - Date.now()), 'bulk-out transfer');
    }
  }

  async transferIn(endpointNumber: number, length: number, timeoutMs?: number): Promise<UsbInResult> {
    const deadline = timeoutMs ? Date.now() + timeoutMs : undefined;
    const generation = this.generation.in;
    for (;;) {
      this.usable();
      this.stillQueued('in', generation);
      if (endpointNumber !== BULK_IN) return { status: 'stall' };
      if (this.halted.in) return { status: 'stall' };
      const job = this.job;
      if (job?.stage === 'in') return this.sendData(job, length);
      if (job?.stage === 'status') {
        const csw = this.statusFor(job);
        if (csw === undefined) {
          // The CSW is lost: the host waits for it until its own timeout.
        } else {
          this.job = undefined;
          this.notify();
          if (length < csw.length) return { data: new DataView(csw.buffer, 0, length), status: 'babble' };
          return { data: new DataView(csw.buffer, csw.byteOffset, csw.byteLength), status: 'ok' };
        }
      }
      await this.waitChange(deadline === undefined ? undefined : Math.max(1, deadline - Date.now()), 'bulk-in transfer');
    }
  }

  private receiveCbw(bytes: Uint8Array): UsbOutResult {
    let cbw: CommandBlockWrapper;
    try {
      cbw = decodeCbw(Uint8Array.from(bytes));
    } catch (err) {
      if (!(err instanceof BotFramingError)) throw err;
      this.stats.invalidCbws++;
      this.resetNeeded = true;
      this.halted.in = true;
      this.halted.out = true;
      this.notify();
      return { bytesWritten: bytes.length, status: 'ok' };
    }
    this.stats.cbws++;
    const job: Job = { cbw, stage: 'exec', ctl: new AbortController(), outChunks: [], outGot: 0, data: new Uint8Array(0), sent: 0, cswStatus: CswStatus.passed, residue: 0 };
    this.job = job;
    if (!cbw.dataIn && cbw.dataTransferLength > 0) job.stage = 'out';
    else this.start(job);
    this.notify();
    return { bytesWritten: bytes.length, status: 'ok' };
  }

  private receiveData(job: Job, bytes: Uint8Array): UsbOutResult {
    if (this.takeFault('stall-data')) {
      this.halted.out = true;
      this.held.set(job.cbw.lun, makeSense(Sense.DATA_PHASE_ERROR));
      job.cswStatus = CswStatus.failed;
      job.residue = job.cbw.dataTransferLength - job.outGot;
      job.stage = 'status';
      this.notify();
      return { bytesWritten: 0, status: 'stall' };
    }
    const take = Math.min(bytes.length, job.cbw.dataTransferLength - job.outGot);
    job.outChunks.push(Uint8Array.from(bytes.subarray(0, take)));
    job.outGot += take;
    if (job.outGot >= job.cbw.dataTransferLength) {
      job.stage = 'exec';
      this.start(job);
    }
    this.notify();
    return { bytesWritten: bytes.length, status: 'ok' };
  }

  private sendData(job: Job, length: number): UsbInResult {
    if (job.sent === 0 && this.takeFault('stall-data')) {
      // Halts instead of sending: the residue counts every byte not sent.
      this.halted.in = true;
      job.residue = job.cbw.dataTransferLength;
      job.stage = 'status';
      this.notify();
      return { status: 'stall' };
    }
    const chunk = job.data.slice(job.sent, job.sent + length);
    job.sent += chunk.length;
    // A short packet (or all the data) ends the data stage.
    if (job.sent >= job.data.length || chunk.length < length) job.stage = 'status';
    job.residue = job.cbw.dataTransferLength - job.sent;
    this.notify();
    return { data: new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength), status: 'ok' };
  }

  /** The CSW for `job` with any injected defect, or undefined when the fault swallows it. */
  private statusFor(job: Job): Uint8Array | undefined {
    if (this.takeFault('no-csw')) {
      job.stage = 'exec';
      return undefined;
    }
    const defect = this.takeFault('bad-csw')?.defect;
    const csw = encodeCsw({
      tag: defect === 'tag' ? (job.cbw.tag ^ 0x5a5a5a5a) >>> 0 : job.cbw.tag,
      residue: defect === 'residue' ? Math.min(0xffffffff, job.cbw.dataTransferLength + 1) : job.residue,
      status: defect === 'phase-error' ? CswStatus.phaseError : job.cswStatus,
    });
    if (defect === 'signature') csw[3] = 0x00;
    return defect === 'truncated' ? csw.slice(0, CSW_LENGTH - 1) : csw;
  }

  private start(job: Job): void {
    void this.execute(job).then(
      () => {
        if (this.job !== job) return;
        job.stage = job.cbw.dataIn && job.cbw.dataTransferLength > 0 ? 'in' : 'status';
        this.notify();
      },
      () => {
        // LogicalUnit.execute never rejects; a failure here is an emulator bug surfaced as a failed command.
        if (this.job !== job) return;
        job.cswStatus = CswStatus.failed;
        job.stage = 'status';
        this.held.set(job.cbw.lun, makeSense(Sense.INTERNAL_TARGET_FAILURE));
        this.notify();
      },
    );
  }

  private async execute(job: Job): Promise<void> {
    const { cbw } = job;
    const expectIn = cbw.dataIn ? cbw.dataTransferLength : 0;
    const unit = this.options.luns.get(cbw.lun);
    if (!unit) {
      this.held.set(cbw.lun, makeSense(Sense.LOGICAL_UNIT_NOT_SUPPORTED));
      job.cswStatus = CswStatus.failed;
      job.residue = cbw.dataTransferLength;
      return;
    }
    const held = this.held.get(cbw.lun);
    this.held.delete(cbw.lun);
    let data: Uint8Array;
    if (cbw.cdb[0] === REQUEST_SENSE && held) {
      const format = ((cbw.cdb[1] ?? 0) & 0x01) !== 0 ? 'descriptor' : unit.senseFormat(this.initiator);
      data = encodeSense(held, format).subarray(0, Math.min(cbw.cdb[4] ?? 0, expectIn));
    } else {
      const result = await unit.execute({
        initiator: this.initiator,
        cdb: Uint8Array.from(cbw.cdb),
        ...(!cbw.dataIn && cbw.dataTransferLength > 0 ? { dataOut: concat(job.outChunks, job.outGot) } : {}),
        dataInLength: expectIn,
        signal: job.ctl.signal,
      });
      if (isHeld(result.status)) {
        job.cswStatus = CswStatus.failed;
        if (result.sense) this.held.set(cbw.lun, result.sense);
      }
      data = result.data ? result.data.subarray(0, expectIn) : new Uint8Array(0);
    }
    const short = cbw.dataIn ? this.takeFault('short-data') : undefined;
    if (short) data = data.subarray(0, Math.max(0, Math.min(short.bytes, data.length)));
    job.data = Uint8Array.from(data);
    job.residue = cbw.dataIn ? cbw.dataTransferLength - job.data.length : 0;
  }
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
