/**
 * What a tape drive and a medium changer client share: the SPC commands (TEST UNIT READY,
 * INQUIRY and VPD, REPORT LUNS, REPORT SUPPORTED OPERATION CODES, MODE SENSE/SELECT,
 * LOG SENSE, PREVENT ALLOW MEDIUM REMOVAL, REQUEST SENSE) over one {@link ScsiPort}.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Cdb, getU16, getU32, SenseKey } from '../scsi/index.js';
import type { Command } from '../scsi/index.js';
import { parseDeviceIdentification, parseInquiry, parseSupportedVpdPages, parseUnitSerialNumber } from '../scsi/parse-inquiry.js';
import type { Designator, InquiryData } from '../scsi/parse-inquiry.js';
import { parseLogPage } from '../scsi/parse-log.js';
import type { LogPage } from '../scsi/parse-log.js';
import { buildModeSelect, parseModeSense } from '../scsi/parse-mode.js';
import type { ModeParameters, ModeSelectParameters } from '../scsi/parse-mode.js';
import { parseReportLuns } from '../scsi/parse-report-luns.js';
import type { ReportedLun } from '../scsi/parse-report-luns.js';
import { parseAllSupportedCommands, parseOneSupportedCommand } from '../scsi/parse-supported-opcodes.js';
import type { OneCommandSupport, SupportedCommand } from '../scsi/parse-supported-opcodes.js';
import { decodeSense } from '../scsi/sense.js';
import type { ScsiPort } from '../transport/scsi-port.js';
import { issue, parseWith, run } from './command.js';
import type { CallOptions, Outcome } from './command.js';
import { SenseError } from './errors.js';
import type { DecodedSense } from './errors.js';

/** Options shared by the device clients. */
export interface DeviceOptions {
  /** Timeout for ordinary commands (ms). Unset: the port's own default. */
  readonly timeoutMs?: number;
  /** Waits `ms` (used by `waitReady`); honours `signal`. Injected by tests and simulations. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Monotonic milliseconds (used by `waitReady` deadlines). */
  readonly now?: () => number;
}

/** Options of {@link ScsiDevice.waitReady}. */
export interface WaitReadyOptions {
  /** Gives up after this long (ms, default 120 000) and throws the last NOT READY error. */
  readonly timeoutMs?: number;
  /** Pause between polls (ms, default 1000). */
  readonly intervalMs?: number;
  /** Keep polling while the device says MEDIUM NOT PRESENT (default true: a robot may be loading it). */
  readonly waitForMedium?: boolean;
  readonly signal?: AbortSignal;
}

/** Options of {@link ScsiDevice.modeSense}. */
export interface ModeSenseCallOptions extends CallOptions {
  readonly subpage?: number;
  /** 0 current (default), 1 changeable, 2 default, 3 saved. */
  readonly pageControl?: 0 | 1 | 2 | 3;
  /** DBD: leave block descriptors out. */
  readonly disableBlockDescriptors?: boolean;
  /** 6 (default) or 10-byte CDB. */
  readonly form?: 6 | 10;
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> => delay(ms, undefined, signal === undefined ? undefined : { signal });

/**
 * Base of the device clients. Every method sends one or a few commands through the port.
 *
 * Errors: CHECK CONDITION throws {@link SenseError} naming key, ASC and ASCQ; other
 * non-GOOD statuses throw `StatusError`; undecodable parameter data throws
 * `ResponseFormatError`. Timeout and cancel: each method takes `timeoutMs` and `signal`
 * and hands them to the port, whose `TransportError` (`ETIMEDOUT`, `ECANCELED`) passes
 * through unchanged; the device's state after an aborted command is unknown.
 */
export abstract class ScsiDevice {
  /** Peripheral device type, used to name opcodes in errors. */
  abstract readonly deviceType: number;
  protected readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  protected readonly now: () => number;

  constructor(
    readonly port: ScsiPort,
    protected readonly options: DeviceOptions = {},
  ) {
    this.sleep = options.sleep ?? defaultSleep;
    this.now = options.now ?? (() => performance.now());
  }

  /** Opts with the class default timeout filled in. */
  protected callOpts(opts: CallOptions, fallbackTimeoutMs?: number): CallOptions {
    const timeoutMs = opts.timeoutMs ?? fallbackTimeoutMs ?? this.options.timeoutMs;
    return { ...(opts.signal ? { signal: opts.signal } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
  }

  /** Runs a command and returns its data; errors as in the class doc. */
  protected run(command: Command, opts: CallOptions = {}, fallbackTimeoutMs?: number): Promise<Uint8Array> {
    return run(this.port, command, this.deviceType, this.callOpts(opts, fallbackTimeoutMs));
  }

  /** Runs a command and hands back CHECK CONDITION as data, for commands whose sense is a result. */
  protected issue(command: Command, opts: CallOptions = {}, fallbackTimeoutMs?: number): Promise<Outcome> {
    return issue(this.port, command, this.deviceType, this.callOpts(opts, fallbackTimeoutMs));
  }

  protected parse<T>(command: Command, data: Uint8Array, parser: (b: Uint8Array) => T): T {
    return parseWith(command, this.deviceType, data, parser);
  }

  /**
   * Runs a Data-In command, and when the answer says more was available than the
   * allocation length let through, runs it once more with the length it asked for.
   */
  protected async runSized(build: (allocationLength: number) => Command, first: number, needed: (data: Uint8Array) => number | undefined, max: number, opts: CallOptions): Promise<{ command: Command; data: Uint8Array }> {
    let command = build(first);
    let data = await this.run(command, opts);
    const want = needed(data);
    if (want !== undefined && want > data.length && want > first) {
      command = build(Math.min(want, max));
      data = await this.run(command, opts);
    }
    return { command, data };
  }

  /** TEST UNIT READY. Resolves when ready; NOT READY and UNIT ATTENTION throw {@link SenseError}. */
  async testUnitReady(opts: CallOptions = {}): Promise<void> {
    await this.run(Cdb.testUnitReady(), opts);
  }

  /**
   * Polls TEST UNIT READY until the unit is ready. UNIT ATTENTION is consumed and polled
   * again at once; NOT READY is polled again after `intervalMs`, except MANUAL
   * INTERVENTION REQUIRED, which throws at once. At the deadline the last NOT READY
   * {@link SenseError} is thrown. Cancel: `signal` stops the wait and the pending command.
   */
  async waitReady(o: WaitReadyOptions = {}): Promise<void> {
    const deadline = this.now() + (o.timeoutMs ?? 120_000);
    const interval = o.intervalMs ?? 1000;
    const callOpts: CallOptions = o.signal ? { signal: o.signal } : {};
    let attentions = 0;
    for (;;) {
      try {
        await this.testUnitReady(callOpts);
        return;
      } catch (e) {
        if (!(e instanceof SenseError)) throw e;
        // A unit reports one attention per condition; a bounded count keeps a broken one from spinning us.
        if (e.key === SenseKey.UNIT_ATTENTION && ++attentions < 32) continue;
        const manual = e.key === SenseKey.NOT_READY && e.asc === 0x04 && e.ascq === 0x03;
        const noMedium = e.key === SenseKey.NOT_READY && e.asc === 0x3a;
        if (e.key !== SenseKey.NOT_READY || manual || (noMedium && o.waitForMedium === false)) throw e;
        if (this.now() + interval > deadline) throw e;
        await this.sleep(interval, o.signal);
      }
    }
  }

  /** REQUEST SENSE: the sense the device holds for this initiator (NO SENSE when none). */
  async requestSense(opts: CallOptions = {}): Promise<DecodedSense> {
    const command = Cdb.requestSense();
    const data = await this.run(command, opts);
    return this.parse(command, data, decodeSense);
  }

  /** Standard INQUIRY data. */
  async inquiry(opts: CallOptions = {}): Promise<InquiryData> {
    const { command, data } = await this.runSized((n) => Cdb.inquiry({ allocationLength: n }), 96, (d) => (d.length >= 5 ? (d[4] ?? 0) + 5 : undefined), 255, opts);
    return this.parse(command, data, parseInquiry);
  }

  /** Raw bytes of a VPD page (header included), re-read whole when the first answer was cut. */
  async vpdPage(page: number, opts: CallOptions = {}): Promise<Uint8Array> {
    const need = (d: Uint8Array): number | undefined => (d.length >= 4 ? getU16(d, 2) + 4 : undefined);
    const { data } = await this.runSized((n) => Cdb.inquiry({ page, allocationLength: n }), 255, need, 0xffff, opts);
    return data;
  }

  /** VPD 00h: supported VPD page codes. */
  async supportedVpdPages(opts: CallOptions = {}): Promise<number[]> {
    return this.parse(Cdb.inquiry({ page: 0 }), await this.vpdPage(0x00, opts), parseSupportedVpdPages);
  }

  /** VPD 80h: unit serial number. */
  async unitSerialNumber(opts: CallOptions = {}): Promise<string> {
    return this.parse(Cdb.inquiry({ page: 0x80 }), await this.vpdPage(0x80, opts), parseUnitSerialNumber);
  }

  /** VPD 83h: device identification designators. */
  async deviceIdentification(opts: CallOptions = {}): Promise<Designator[]> {
    return this.parse(Cdb.inquiry({ page: 0x83 }), await this.vpdPage(0x83, opts), parseDeviceIdentification);
  }

  /** REPORT LUNS (select report 0: all LUNs with logical units). */
  async reportLuns(opts: CallOptions = {}): Promise<ReportedLun[]> {
    const need = (d: Uint8Array): number | undefined => (d.length >= 4 ? getU32(d, 0) + 8 : undefined);
    const { command, data } = await this.runSized((n) => Cdb.reportLuns({ allocationLength: n }), 256, need, 0x100000, opts);
    return this.parse(command, data, (b) => parseReportLuns(b).luns);
  }

  /** REPORT SUPPORTED OPERATION CODES, all-commands format; `timeouts` asks for RCTD descriptors. */
  async supportedOperationCodes(o: CallOptions & { timeouts?: boolean } = {}): Promise<SupportedCommand[]> {
    const need = (d: Uint8Array): number | undefined => (d.length >= 4 ? getU32(d, 0) + 4 : undefined);
    const { command, data } = await this.runSized((n) => Cdb.reportSupportedOperationCodes({ allocationLength: n, ...(o.timeouts ? { timeouts: true } : {}) }), 4096, need, 0x100000, o);
    return this.parse(command, data, (b) => parseAllSupportedCommands(b).commands);
  }

  /** REPORT SUPPORTED OPERATION CODES, one-command format. */
  async commandSupport(opcode: number, o: CallOptions & { serviceAction?: number; timeouts?: boolean } = {}): Promise<OneCommandSupport> {
    const command = Cdb.reportSupportedOperationCodes({ opcode, allocationLength: 64, ...(o.serviceAction !== undefined ? { serviceAction: o.serviceAction } : {}), ...(o.timeouts ? { timeouts: true } : {}) });
    return this.parse(command, await this.run(command, o), parseOneSupportedCommand);
  }

  /** MODE SENSE(6) or (10) of one page (0x3F: all), re-read whole when cut by the allocation length. */
  async modeSense(page: number, o: ModeSenseCallOptions = {}): Promise<ModeParameters> {
    const form = o.form ?? 6;
    const base = { page, ...(o.subpage !== undefined ? { subpage: o.subpage } : {}), ...(o.pageControl !== undefined ? { pageControl: o.pageControl } : {}), ...(o.disableBlockDescriptors ? { disableBlockDescriptors: true } : {}) };
    const build = (n: number): Command => (form === 6 ? Cdb.modeSense6({ ...base, allocationLength: n }) : Cdb.modeSense10({ ...base, allocationLength: n }));
    const need = (d: Uint8Array): number | undefined => (form === 6 ? (d.length >= 1 ? (d[0] ?? 0) + 1 : undefined) : d.length >= 2 ? getU16(d, 0) + 2 : undefined);
    const { command, data } = await this.runSized(build, form === 6 ? 255 : 1024, need, form === 6 ? 255 : 0xffff, o);
    return this.parse(command, data, (b) => parseModeSense(b, form));
  }

  /** MODE SELECT(6) or (10) with PF=1; `save` sets SP. */
  async modeSelect(params: ModeSelectParameters, o: CallOptions & { form?: 6 | 10; save?: boolean } = {}): Promise<void> {
    const form = o.form ?? 6;
    const list = buildModeSelect(params, form);
    const opts = { pageFormat: true, ...(o.save ? { savePages: true } : {}) };
    await this.run(form === 6 ? Cdb.modeSelect6(list, opts) : Cdb.modeSelect10(list, opts), o);
  }

  /** LOG SENSE of one page (cumulative values unless `pageControl` says otherwise). */
  async logSense(page: number, o: CallOptions & { subpage?: number; pageControl?: 0 | 1 | 2 | 3 } = {}): Promise<LogPage> {
    const command = Cdb.logSense({ page, ...(o.subpage !== undefined ? { subpage: o.subpage } : {}), ...(o.pageControl !== undefined ? { pageControl: o.pageControl } : {}) });
    return this.parse(command, await this.run(command, o), (b) => parseLogPage(b, page));
  }

  /** PREVENT ALLOW MEDIUM REMOVAL with PREVENT=1: the drive keeps its cartridge, the library locks its doors. */
  async preventRemoval(opts: CallOptions = {}): Promise<void> {
    await this.run(Cdb.preventAllowMediumRemoval(true), opts);
  }

  /** PREVENT ALLOW MEDIUM REMOVAL with PREVENT=0. */
  async allowRemoval(opts: CallOptions = {}): Promise<void> {
    await this.run(Cdb.preventAllowMediumRemoval(false), opts);
  }
}
