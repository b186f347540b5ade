/**
 * Client of a medium changer (SMC-3): element inventory with volume tags, moves and
 * exchanges, and the mode pages that describe the library's layout and abilities.
 */
import { Cdb, DeviceType, ElementType } from '../scsi/index.js';
import type { Command } from '../scsi/index.js';
import { getU24 } from '../scsi/bytes.js';
import {
  ElementTypeCode,
  parseDeviceCapabilities,
  parseElementAddressAssignment,
  parseElementStatus,
  parseTransportGeometry,
} from '../scsi/parse-element-status.js';
import type { DeviceCapabilities, ElementAddressAssignment, ElementStatus, TransportGeometry } from '../scsi/parse-element-status.js';
import { findModePage } from '../scsi/parse-mode.js';
import type { ScsiPort } from '../transport/scsi-port.js';
import type { CallOptions } from './command.js';
import { ResponseFormatError } from './errors.js';
import { ScsiDevice } from './scsi-device.js';
import type { DeviceOptions } from './scsi-device.js';

/** Options of a {@link MediaChanger}. */
export interface MediaChangerOptions extends DeviceOptions {
  /** Timeout for robot motion (MOVE, EXCHANGE, POSITION, INITIALIZE ELEMENT STATUS), ms. Default 15 min. */
  readonly motionTimeoutMs?: number;
  /** First READ ELEMENT STATUS allocation length; a longer report is fetched with a second command. */
  readonly initialAllocationLength?: number;
}

const DEFAULT_MOTION_TIMEOUT_MS = 15 * 60_000;

/** Options of READ ELEMENT STATUS. */
export interface ElementStatusOptions extends CallOptions {
  /** VOLTAG: report volume tags (default true). */
  readonly volumeTags?: boolean;
  /** DVCID: report device identifiers of data transfer elements (default false). */
  readonly deviceId?: boolean;
  /** CURDATA: answer from current data without moving the robot. */
  readonly currentData?: boolean;
}

/** The whole library by element type, in address order as reported. */
export interface Inventory {
  readonly transports: readonly ElementStatus[];
  readonly storage: readonly ElementStatus[];
  readonly importExport: readonly ElementStatus[];
  readonly dataTransfer: readonly ElementStatus[];
  readonly all: readonly ElementStatus[];
}

/**
 * A medium changer behind a {@link ScsiPort}.
 *
 * Errors: CHECK CONDITION throws `SenseError` naming key, ASC and ASCQ (e.g. ILLEGAL
 * REQUEST / MEDIUM SOURCE ELEMENT EMPTY for a move from an empty slot); other statuses
 * throw `StatusError`; malformed element status data throws `ResponseFormatError`.
 * Timeout: robot motion uses `motionTimeoutMs`, other commands `timeoutMs`; a per-call
 * `timeoutMs` wins. Timeout and cancel (`signal`) reject with the port's `TransportError`
 * unchanged; where the medium ended up is then unknown, so re-read the inventory.
 */
export class MediaChanger extends ScsiDevice {
  readonly deviceType = DeviceType.mediumChanger;

  constructor(
    port: ScsiPort,
    protected override readonly options: MediaChangerOptions = {},
  ) {
    super(port, options);
  }

  private get motion(): number {
    return this.options.motionTimeoutMs ?? DEFAULT_MOTION_TIMEOUT_MS;
  }

  private async changerPage(page: number, opts: CallOptions): Promise<Uint8Array> {
    const m = await this.modeSense(page, { ...opts, disableBlockDescriptors: true });
    const p = findModePage(m, page);
    if (!p) throw new ResponseFormatError({ commandName: 'MODE SENSE(6)' }, `mode page 0x${page.toString(16)} missing from the answer`);
    return p.data;
  }

  /** Mode page 1Dh: first address and count of each element type. */
  async elementAddressAssignment(opts: CallOptions = {}): Promise<ElementAddressAssignment> {
    const data = await this.changerPage(0x1d, opts);
    return this.parse(Cdb.modeSense6({ page: 0x1d }), data, parseElementAddressAssignment);
  }

  /** Mode page 1Eh: one entry per medium transport element. */
  async transportGeometry(opts: CallOptions = {}): Promise<TransportGeometry[]> {
    return parseTransportGeometry(await this.changerPage(0x1e, opts));
  }

  /** Mode page 1Fh: which element types store media and which moves and exchanges are possible. */
  async deviceCapabilities(opts: CallOptions = {}): Promise<DeviceCapabilities> {
    const data = await this.changerPage(0x1f, opts);
    return this.parse(Cdb.modeSense6({ page: 0x1f }), data, parseDeviceCapabilities);
  }

  /**
   * READ ELEMENT STATUS for `count` elements of `type` from address `start` (type 0: all
   * types). When the report is longer than the first allocation, the command is issued
   * again with the byte count the device reported.
   */
  async elementStatus(type: ElementType, start = 0, count = 0xffff, o: ElementStatusOptions = {}): Promise<ElementStatus[]> {
    const build = (n: number): Command =>
      Cdb.readElementStatus({
        elementType: type,
        startingAddress: start,
        count,
        volTag: o.volumeTags ?? true,
        ...(o.deviceId ? { deviceId: true } : {}),
        ...(o.currentData ? { currentData: true } : {}),
        allocationLength: n,
      });
    const first = this.options.initialAllocationLength ?? 4096;
    const { command, data } = await this.runSized(build, first, (d) => (d.length >= 8 ? 8 + getU24(d, 5) : undefined), 0xffffff, o);
    const parsed = this.parse(command, data, parseElementStatus);
    return parsed.pages.flatMap((p) => p.elements);
  }

  /** Every element of every type, with volume tags. */
  async inventory(o: ElementStatusOptions = {}): Promise<Inventory> {
    const all = await this.elementStatus(ElementType.all, 0, 0xffff, o);
    const of = (t: number): ElementStatus[] => all.filter((e) => e.type === t);
    return {
      transports: of(ElementTypeCode.mediumTransport),
      storage: of(ElementTypeCode.storage),
      importExport: of(ElementTypeCode.importExport),
      dataTransfer: of(ElementTypeCode.dataTransfer),
      all,
    };
  }

  /**
   * The element holding the cartridge whose primary (or alternate) volume tag is
   * `barcode`, or undefined. Pass an inventory to search it instead of reading a new one.
   */
  async findByBarcode(barcode: string, o: ElementStatusOptions & { inventory?: Inventory } = {}): Promise<ElementStatus | undefined> {
    const inv = o.inventory ?? (await this.inventory(o));
    const want = barcode.trimEnd();
    return inv.all.find((e) => e.full && (e.primaryVolumeTag?.identifier === want || e.alternateVolumeTag?.identifier === want));
  }

  /** MOVE MEDIUM from `source` to `destination` (transport 0: the library's default). */
  async move(source: number, destination: number, o: CallOptions & { transport?: number; invert?: boolean } = {}): Promise<void> {
    await this.run(Cdb.moveMedium({ source, destination, transport: o.transport ?? 0, ...(o.invert ? { invert: true } : {}) }), o, this.motion);
  }

  /**
   * EXCHANGE MEDIUM: the medium in `source` goes to `firstDestination`, and the medium
   * that was there goes to `secondDestination` (which may equal `source`).
   */
  async exchange(source: number, firstDestination: number, secondDestination: number, o: CallOptions & { transport?: number } = {}): Promise<void> {
    await this.run(Cdb.exchangeMedium({ source, firstDestination, secondDestination, transport: o.transport ?? 0 }), o, this.motion);
  }

  /**
   * INITIALIZE ELEMENT STATUS (the library re-scans everything), or, given `start` and
   * `count`, INITIALIZE ELEMENT STATUS WITH RANGE; `fast` skips barcode re-reads where the
   * device allows it.
   */
  async initializeElementStatus(o: CallOptions & { start?: number; count?: number; fast?: boolean } = {}): Promise<void> {
    const command =
      o.start === undefined && o.count === undefined
        ? Cdb.initializeElementStatus()
        : Cdb.initializeElementStatusWithRange({ start: o.start ?? 0, count: o.count ?? 0xffff, ...(o.fast ? { fast: true } : {}) });
    await this.run(command, o, this.motion);
  }

  /** POSITION TO ELEMENT: moves the transport in front of `destination`. */
  async positionToElement(destination: number, o: CallOptions & { transport?: number } = {}): Promise<void> {
    await this.run(Cdb.positionToElement({ destination, transport: o.transport ?? 0 }), o, this.motion);
  }
}
