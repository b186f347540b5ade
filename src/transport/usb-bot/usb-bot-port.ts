/**
 * {@link ScsiPort} over USB Mass Storage Bulk-Only Transport: USB tape drives and
 * autoloaders. One {@link UsbBotDevice} owns the claimed interface and runs one command at
 * a time (BOT has no queueing); a {@link UsbBotPort} per LUN shares it.
 *
 * BOT has no autosense: a CSW with status "failed" is followed by REQUEST SENSE on the
 * same LUN, inside the same turn on the wire, and the command resolves with CHECK
 * CONDITION and those sense bytes. BOT also carries no SCSI status byte, so BUSY,
 * RESERVATION CONFLICT and TASK ABORTED all surface as CHECK CONDITION with whatever sense
 * the device then reports (usually NO SENSE).
 */
import { TransportError, validateRequest } from '../scsi-port.js';
import type { ScsiPort, ScsiRequest, ScsiResponse } from '../scsi-port.js';
import {
  BOT_MAX_CDB,
  BOT_MAX_LUN,
  BotFramingError,
  BotRequest,
  CSW_LENGTH,
  CBW_LENGTH,
  CswStatus,
  MassStorage,
  decodeCsw,
  encodeCbw,
} from './bot-wrappers.js';
import { bytesOf, isStallError, isTimeoutError } from './usb-device.js';
import type { BotUsbDevice, UsbControlSetup, UsbInResult, UsbOutResult } from './usb-device.js';

const GOOD = 0x00;
const CHECK_CONDITION = 0x02;
const REQUEST_SENSE_LENGTH = 252;

export interface UsbBotOptions {
  /**
   * Timeout for requests that carry none, in ms; default 300 000. It covers the whole
   * command: waiting for the wire, CBW, data, CSW and the REQUEST SENSE of a failure.
   */
  readonly defaultTimeoutMs?: number;
  /** Bound on each reset recovery step (control request, clear halts), in ms; default 5 000. */
  readonly recoveryTimeoutMs?: number;
  /** Interface to use when the device has several BOT interfaces; default: the first. */
  readonly interfaceNumber?: number;
  /** Prefix of port addresses; default `usb:vvvv:pppp[:serial]`. */
  readonly name?: string;
}

/** Counters for tests and logs. */
export interface UsbBotStats {
  commands: number;
  /** Bulk endpoint stalls cleared during data or status stages. */
  stalls: number;
  /** Reset recoveries performed (class reset + clear halts, or a port reset). */
  resetRecoveries: number;
  portResets: number;
  /** REQUEST SENSE commands issued after a failed CSW. */
  senseFetches: number;
}

interface Endpoints {
  readonly interfaceNumber: number;
  readonly bulkIn: number;
  readonly bulkOut: number;
}

/** Finds the BOT interface and its two bulk endpoints in the active (or first) configuration. */
export function findBotEndpoints(device: BotUsbDevice, interfaceNumber?: number): (Endpoints & { configurationValue: number }) | undefined {
  const configs = device.configuration ? [device.configuration, ...device.configurations] : device.configurations;
  for (const config of configs) {
    for (const iface of config.interfaces) {
      if (interfaceNumber !== undefined && iface.interfaceNumber !== interfaceNumber) continue;
      for (const alt of [iface.alternate, ...iface.alternates]) {
        if (alt.interfaceClass !== MassStorage.interfaceClass || alt.interfaceProtocol !== MassStorage.protocolBulkOnly) continue;
        const bulkIn = alt.endpoints.find((e) => e.type === 'bulk' && e.direction === 'in');
        const bulkOut = alt.endpoints.find((e) => e.type === 'bulk' && e.direction === 'out');
        if (bulkIn && bulkOut) {
          return { configurationValue: config.configurationValue, interfaceNumber: iface.interfaceNumber, bulkIn: bulkIn.endpointNumber, bulkOut: bulkOut.endpointNumber };
        }
      }
    }
  }
  return undefined;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

/** Rejects with the signal's reason as soon as it aborts; the losing promise's rejection is swallowed. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(new TransportError('ETIMEDOUT', `${what} did not finish within ${ms} ms`)), ms);
  return raceAbort(p, ac.signal).finally(() => clearTimeout(t));
}

/** A failure that needs reset recovery before the command rejects (BOT 5.3.4). */
class NeedsRecovery extends Error {
  override readonly name = 'NeedsRecovery';
  constructor(readonly error: TransportError) {
    super(error.message, { cause: error });
  }
}

/**
 * A claimed BOT interface. Commands from all its ports run one at a time in arrival order.
 *
 * Timeout and cancellation: the command is abandoned at once on the wire (WebUSB cannot
 * cancel a transfer; each transfer carries the command's remaining time), reset recovery
 * runs (Bulk-Only Mass Storage Reset, then clear halt on Bulk-In and Bulk-Out, or a port
 * reset when that fails) and only then does the promise reject with `ETIMEDOUT` or
 * `ECANCELED`, so the next command finds the device ready for a CBW. A command cancelled
 * while still waiting for its turn never reaches the device.
 *
 * Errors: a phase error, a CSW that is not valid and meaningful, or a refused CBW reject
 * with `EPROTO` after reset recovery; a device that vanished rejects with `ECONNRESET`. A
 * stall during the data stage is cleared and the CSW still read (the command resolves).
 */
export class UsbBotDevice {
  readonly address: string;
  readonly stats: UsbBotStats = { commands: 0, stalls: 0, resetRecoveries: 0, portResets: 0, senseFetches: 0 };
  private tag = 1;
  private closed = false;
  private needsRecovery = false;
  private chain: Promise<unknown> = Promise.resolve();
  /** The last bulk transfer submitted; an abandoned one must end before the pipe is reused. */
  private lastTransfer: Promise<unknown> = Promise.resolve();
  private readonly ports = new Set<UsbBotPort>();
  private readonly defaultTimeoutMs: number;
  private readonly recoveryTimeoutMs: number;

  private constructor(
    readonly device: BotUsbDevice,
    private readonly ep: Endpoints,
    /** Highest LUN from Get Max LUN (0 when the device stalls the request). */
    readonly maxLun: number,
    options: UsbBotOptions,
  ) {
    const serial = device.serialNumber ? `:${device.serialNumber}` : '';
    this.address = options.name ?? `usb:${hex4(device.vendorId)}:${hex4(device.productId)}${serial}`;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 300_000;
    this.recoveryTimeoutMs = options.recoveryTimeoutMs ?? 5_000;
  }

  /**
   * Opens `device`, selects the configuration holding its BOT interface, detaches a
   * kernel driver where the platform has one, claims the interface and asks Get Max LUN.
   * Rejects with `TransportError` `ENODEV` when the device has no BOT interface, or with
   * the device's own error code when opening or claiming fails (the device is closed
   * again).
   */
  static async open(device: BotUsbDevice, options: UsbBotOptions = {}): Promise<UsbBotDevice> {
    const found = findBotEndpoints(device, options.interfaceNumber);
    const id = `${hex4(device.vendorId)}:${hex4(device.productId)}`;
    if (!found) throw new TransportError('ENODEV', `USB device ${id} has no Bulk-Only mass storage interface${options.interfaceNumber === undefined ? '' : ` numbered ${options.interfaceNumber}`}`);
    const opened = !device.opened;
    try {
      if (!device.opened) await device.open();
      if (device.configuration?.configurationValue !== found.configurationValue) await device.selectConfiguration(found.configurationValue);
      if (device.detachKernelDriver) {
        // Not attached, or not Linux: nothing to detach, which is the state we want.
        await device.detachKernelDriver(found.interfaceNumber).catch(() => undefined);
      }
      await device.claimInterface(found.interfaceNumber);
    } catch (err) {
      if (opened) await device.close().catch(() => undefined);
      throw asTransportError(err, `USB device ${id}: cannot open and claim interface ${found.interfaceNumber}`);
    }
    const maxLun = await getMaxLun(device, found.interfaceNumber, options.recoveryTimeoutMs ?? 5_000);
    return new UsbBotDevice(device, found, maxLun, options);
  }

  /** A port to one LUN. Throws `ENOENT` when the LUN is above Get Max LUN. */
  port(lun: number, options: { closesDevice?: boolean } = {}): UsbBotPort {
    if (!Number.isInteger(lun) || lun < 0 || lun > this.maxLun) {
      throw new TransportError('ENOENT', `${this.address} has LUNs 0..${this.maxLun}, not ${lun}`);
    }
    const p = new UsbBotPort(this, lun, options.closesDevice ?? false);
    this.ports.add(p);
    return p;
  }

  /** @internal */
  forget(port: UsbBotPort): void {
    this.ports.delete(port);
  }

  /** Whether the device is closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Executes a request on `lun`. `abort` is the port's own signal (close). See the class
   * doc for timeout, cancellation and error rules.
   */
  async execute(lun: number, request: ScsiRequest, address: string, portSignal: AbortSignal): Promise<ScsiResponse> {
    if (this.closed || portSignal.aborted) throw new TransportError('ECLOSED', `${address} is closed`);
    validateRequest(request);
    if (request.cdb.length > BOT_MAX_CDB) {
      throw new TransportError('EINVAL', `request.cdb is ${request.cdb.length} bytes; Bulk-Only Transport carries at most ${BOT_MAX_CDB}`);
    }
    const timeoutMs = request.timeoutMs ?? this.defaultTimeoutMs;
    const started = process.hrtime.bigint();
    const deadline = Date.now() + timeoutMs;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new TransportError('ETIMEDOUT', `${address}: command timed out after ${timeoutMs} ms`)), timeoutMs);
    const onCancel = (): void => ctl.abort(new TransportError('ECANCELED', `${address}: command cancelled`));
    const onClose = (): void => ctl.abort(new TransportError('ECLOSED', `${address} closed with the command in flight`));
    if (request.signal?.aborted) onCancel();
    request.signal?.addEventListener('abort', onCancel, { once: true });
    portSignal.addEventListener('abort', onClose, { once: true });
    let release: (() => void) | undefined;
    try {
      const turn = this.turn();
      release = await raceAbort(turn, ctl.signal).catch((e: unknown) => {
        // Gave up while queued: pass the wire on as soon as it would have been ours.
        void turn.then((r) => r());
        throw e;
      });
      if (this.closed) throw new TransportError('ECLOSED', `${address} is closed`);
      if (this.needsRecovery) await this.recover().catch((e: unknown) => {
        throw new TransportError('ECONNRESET', `${address}: the device did not recover from an earlier failure`, { cause: e });
      });
      this.stats.commands++;
      try {
        const r = await raceAbort(this.run(lun, request, deadline), ctl.signal);
        return { ...r, durationNs: process.hrtime.bigint() - started };
      } catch (err) {
        if (ctl.signal.aborted) {
          // The command was abandoned mid-protocol: put the interface back to "expecting a CBW".
          this.needsRecovery = true;
          if (!this.closed) await this.recover().catch(() => undefined);
          throw ctl.signal.reason as Error;
        }
        if (err instanceof NeedsRecovery) {
          this.needsRecovery = true;
          const failed = await this.recover().then(() => undefined, (e: unknown) => e);
          if (failed === undefined) throw err.error;
          throw new TransportError(err.error.code, `${err.error.message}; reset recovery failed as well`, { cause: err.error });
        }
        throw err;
      }
    } catch (err) {
      if (err instanceof TransportError) throw err;
      throw asTransportError(err, address);
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onCancel);
      portSignal.removeEventListener('abort', onClose);
      release?.();
    }
  }

  /** Waits for the wire; resolves with the function that hands it to the next command. */
  private turn(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const ready = this.chain.then(() => release);
    this.chain = this.chain.then(() => mine);
    return ready;
  }

  private nextTag(): number {
    const t = this.tag;
    this.tag = this.tag >= 0xffffffff ? 1 : this.tag + 1;
    return t;
  }

  private remaining(deadline: number): number {
    return Math.max(1, deadline - Date.now());
  }

  /** Runs one transfer, sorting its rejection: timeout, stall-as-error, or a lost device. */
  private async transfer<T extends UsbInResult | UsbOutResult>(p: Promise<T>, what: string): Promise<T | 'stall'> {
    this.lastTransfer = p.catch(() => undefined);
    try {
      const r = await p;
      return r.status === 'stall' ? 'stall' : r;
    } catch (err) {
      if (isStallError(err)) return 'stall';
      if (isTimeoutError(err)) throw new NeedsRecovery(new TransportError('ETIMEDOUT', `${this.address}: ${what} timed out`, { cause: err }));
      throw new TransportError('ECONNRESET', `${this.address}: ${what} failed: ${errorText(err)}`, { cause: err });
    }
  }

  private protocol(message: string, cause?: unknown): NeedsRecovery {
    return new NeedsRecovery(new TransportError('EPROTO', `${this.address}: ${message}`, cause === undefined ? undefined : { cause }));
  }

  private async clearHalt(direction: 'in' | 'out'): Promise<void> {
    this.stats.stalls++;
    const ep = direction === 'in' ? this.ep.bulkIn : this.ep.bulkOut;
    try {
      await withTimeout(this.device.clearHalt(direction, ep), this.recoveryTimeoutMs, `clear halt on bulk-${direction}`);
    } catch (err) {
      throw this.protocol(`clearing the halt on bulk-${direction} failed`, err);
    }
  }

  /** One command through the three BOT stages, plus REQUEST SENSE when the CSW says failed. */
  private async run(lun: number, request: ScsiRequest, deadline: number): Promise<ScsiResponse> {
    const first = await this.wire(lun, request.cdb, request.direction, request.dataOut, request.dataInLength ?? 0, deadline);
    if (first.csw === CswStatus.passed) return { status: GOOD, data: first.data, sense: new Uint8Array(0), residual: first.residual };
    this.stats.senseFetches++;
    const rsCdb = Uint8Array.of(0x03, 0, 0, 0, REQUEST_SENSE_LENGTH, 0);
    const rs = await this.wire(lun, rsCdb, 'in', undefined, REQUEST_SENSE_LENGTH, deadline);
    const sense = rs.csw === CswStatus.passed ? rs.data : new Uint8Array(0);
    return { status: CHECK_CONDITION, data: first.data, sense, residual: first.residual };
  }

  private async wire(
    lun: number,
    cdb: Uint8Array,
    direction: ScsiRequest['direction'],
    dataOut: Uint8Array | undefined,
    dataInLength: number,
    deadline: number,
  ): Promise<{ csw: number; data: Uint8Array; residual: number }> {
    const expected = direction === 'in' ? dataInLength : direction === 'out' ? (dataOut?.length ?? 0) : 0;
    const tag = this.nextTag();
    const cbw = encodeCbw({ tag, dataTransferLength: expected, dataIn: direction === 'in', lun, cdb });
    const sent = await this.transfer(this.device.transferOut(this.ep.bulkOut, cbw, this.remaining(deadline)), 'sending the CBW');
    if (sent === 'stall' || sent.bytesWritten !== CBW_LENGTH) throw this.protocol('the device refused the CBW');

    let data: Uint8Array = new Uint8Array(0);
    if (expected > 0 && direction === 'in') {
      const r = await this.transfer(this.device.transferIn(this.ep.bulkIn, expected, this.remaining(deadline)), 'the Data-In stage');
      if (r === 'stall') await this.clearHalt('in');
      else if (r.status === 'babble') throw this.protocol('the device sent more data than asked for (babble)');
      else data = bytesOf(r).subarray(0, expected);
    } else if (expected > 0 && direction === 'out' && dataOut) {
      const r = await this.transfer(this.device.transferOut(this.ep.bulkOut, dataOut, this.remaining(deadline)), 'the Data-Out stage');
      if (r === 'stall') await this.clearHalt('out');
    }

    const csw = await this.readCsw(tag, expected, deadline);
    if (csw.status === CswStatus.phaseError) throw this.protocol('the device reported a phase error');
    const residual = direction === 'in' ? expected - data.length : Math.min(csw.residue, expected);
    return { csw: csw.status, data, residual };
  }

  /** Status stage: a stalled Bulk-In gets one clear halt and one more try (BOT 6.7.2). */
  private async readCsw(tag: number, expected: number, deadline: number): Promise<{ status: number; residue: number }> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.transfer(this.device.transferIn(this.ep.bulkIn, CSW_LENGTH, this.remaining(deadline)), 'the status stage');
      if (r === 'stall') {
        if (attempt > 0) throw this.protocol('the status stage stalled twice');
        await this.clearHalt('in');
        continue;
      }
      try {
        return decodeCsw(bytesOf(r), { tag, dataTransferLength: expected });
      } catch (err) {
        if (err instanceof BotFramingError) throw this.protocol(`invalid CSW: ${err.message}`, err);
        throw err;
      }
    }
  }

  /**
   * Reset recovery (BOT 5.3.4): Bulk-Only Mass Storage Reset, then clear halt on
   * Bulk-In and Bulk-Out. When that fails, a USB port reset and a fresh claim. Rejects
   * when both fail; the next command tries again first.
   */
  async recover(): Promise<void> {
    const t = this.recoveryTimeoutMs;
    const setup: UsbControlSetup = { requestType: 'class', recipient: 'interface', request: BotRequest.reset, value: 0, index: this.ep.interfaceNumber };
    try {
      const r = await withTimeout(this.device.controlTransferOut(setup, undefined, t), t, 'Bulk-Only Mass Storage Reset');
      if (r.status !== 'ok') throw new Error(`Bulk-Only Mass Storage Reset ended with ${r.status}`);
      await withTimeout(this.device.clearHalt('in', this.ep.bulkIn), t, 'clear halt on bulk-in');
      await withTimeout(this.device.clearHalt('out', this.ep.bulkOut), t, 'clear halt on bulk-out');
      // An abandoned transfer still queued would take the next command's data or CSW;
      // the pipe flush normally ends it, and its own timeout bounds it otherwise.
      await withTimeout(this.lastTransfer, t, 'the abandoned transfer').catch(() => undefined);
      this.stats.resetRecoveries++;
      this.needsRecovery = false;
      return;
    } catch (first) {
      try {
        await withTimeout(this.device.reset(), t, 'USB port reset');
        await withTimeout(this.device.claimInterface(this.ep.interfaceNumber), t, 'claiming the interface again').catch(() => undefined);
        this.stats.portResets++;
        this.stats.resetRecoveries++;
        this.needsRecovery = false;
      } catch (second) {
        this.needsRecovery = true;
        throw new TransportError('ECONNRESET', `${this.address}: reset recovery failed (${errorText(first)}), and so did a port reset (${errorText(second)})`, { cause: second });
      }
    }
  }

  /** Closes every port (commands in flight reject `ECLOSED`), releases the interface and closes the device. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of [...this.ports]) await p.close();
    await this.device.releaseInterface(this.ep.interfaceNumber).catch(() => undefined);
    await this.device.close().catch(() => undefined);
  }
}

async function getMaxLun(device: BotUsbDevice, interfaceNumber: number, timeoutMs: number): Promise<number> {
  const setup: UsbControlSetup = { requestType: 'class', recipient: 'interface', request: BotRequest.getMaxLun, value: 0, index: interfaceNumber };
  try {
    const r = await withTimeout(device.controlTransferIn(setup, 1, timeoutMs), timeoutMs, 'Get Max LUN');
    const b = bytesOf(r);
    // Single-LUN devices may stall Get Max LUN (BOT 3.2); that means LUN 0 only.
    if (r.status !== 'ok' || b.length < 1) return 0;
    return Math.min(b[0] ?? 0, BOT_MAX_LUN);
  } catch {
    return 0;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function asTransportError(err: unknown, what: string): TransportError {
  if (err instanceof TransportError) return err;
  const code = typeof (err as { code?: unknown } | undefined)?.code === 'string' ? (err as { code: string }).code : 'EIO';
  return new TransportError(code, `${what}: ${errorText(err)}`, { cause: err });
}

/**
 * One LUN of a {@link UsbBotDevice}. Timeout, cancellation and errors as documented on
 * {@link UsbBotDevice}; after `close()` commands reject with `ECLOSED`. Closing a port
 * leaves the device open for its other ports unless the port was made with
 * `closesDevice`.
 */
export class UsbBotPort implements ScsiPort {
  readonly address: string;
  private readonly closing = new AbortController();

  constructor(
    readonly device: UsbBotDevice,
    readonly lun: number,
    private readonly closesDevice: boolean,
  ) {
    this.address = `${device.address}/lun${lun}`;
  }

  execute(request: ScsiRequest): Promise<ScsiResponse> {
    return this.device.execute(this.lun, request, this.address, this.closing.signal);
  }

  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    this.device.forget(this);
    if (this.closesDevice) await this.device.close();
  }
}
