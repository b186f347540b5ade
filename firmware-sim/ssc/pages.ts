/**
 * The drive's mode pages (read-write error recovery 01h, data compression 0Fh, device
 * configuration 10h, medium partition 11h, informational exceptions 1Ch; control 0Ah comes
 * from SPC), its log pages (sequential-access device 0Ch, TapeAlert 2Eh, tape capacity
 * 31h), and the mode header hooks (block descriptor, WP bit).
 */
import { getU16, getU24, setU16, setU24 } from '../../src/scsi/bytes.js';
import { invalidParamField } from '../engine/check.js';
import { counter, type LogParameter } from '../engine/log-pages.js';
import { StoredModePage, type ModePage } from '../engine/mode-pages.js';
import type { EmulatedUnit, UnitHooks } from '../engine/unit.js';
import { earlyWarningPoint, partitionSizes, type PartitionRequest, type TapeDrive } from './drive.js';
import { takeDeferredError } from './immediate.js';
import { volumeStatisticsParameters } from './volume-statistics.js';

const MiB = 1024 * 1024;

function page(code: number, len: number, init: (b: Uint8Array) => void): Uint8Array {
  const b = new Uint8Array(2 + len);
  b[0] = code;
  b[1] = len;
  init(b);
  return b;
}

/**
 * Data compression page (0Fh): DCE is the drive's compression switch, so the page reads
 * it from the drive (a power-on puts the default back there) and MODE SELECT sets it.
 */
class DataCompressionPage implements ModePage {
  readonly page = 0x0f;
  readonly subpage = 0;
  constructor(
    private readonly d: TapeDrive,
    private readonly initial: boolean,
  ) {}
  private bytes(dce: boolean): Uint8Array {
    const can = this.d.personality.features.compression;
    return page(0x0f, 0x0e, (b) => {
      b[2] = (dce ? 0x80 : 0) | (can ? 0x40 : 0); // DCE, DCC
      b[3] = 0x80; // DDE: decompression always on
      // COMPRESSION and DECOMPRESSION ALGORITHM: 1 (the drive's own, deflate here).
      b[7] = can ? 0x01 : 0x00;
      b[11] = can ? 0x01 : 0x00;
    });
  }
  current(): Uint8Array {
    return this.bytes(this.d.compression);
  }
  defaults(): Uint8Array {
    return this.bytes(this.initial);
  }
  changeable(): Uint8Array {
    return mask(0x0e, this.d.personality.features.compression ? { 2: 0x80 } : {});
  }
  select(values: Uint8Array): void {
    this.d.compression = ((values[2] ?? 0) & 0x80) !== 0;
  }
}

/**
 * Data compression counters: SSC's data compression log page (1Bh) and the IBM LTO page
 * 32h carry the same parameters. Ratios are x100; byte counts come as whole MiB plus the
 * signed remainder, the MiB rounded to nearest as the LTO references describe.
 */
function compressionParameters(d: TapeDrive): LogParameter[] {
  const c = d.counters;
  const ratio = (host: number, medium: number): number => (medium === 0 ? 100 : Math.min(0xffff, Math.round((host / medium) * 100)));
  const pair = (code: number, bytes: number): LogParameter[] => {
    const mb = Math.round(bytes / MiB);
    const rest = bytes - mb * MiB;
    const r = new Uint8Array(4);
    new DataView(r.buffer).setInt32(0, rest);
    return [
      { code, control: 0x00, value: counter(mb, 4) },
      { code: code + 1, control: 0x00, value: r },
    ];
  };
  return [
    { code: 0x0000, control: 0x00, value: counter(ratio(c.bytesToHost, c.bytesRead), 2) },
    { code: 0x0001, control: 0x00, value: counter(ratio(c.bytesFromHost, c.bytesWritten), 2) },
    ...pair(0x0002, c.bytesToHost),
    ...pair(0x0004, c.bytesRead),
    ...pair(0x0006, c.bytesFromHost),
    ...pair(0x0008, c.bytesWritten),
  ];
}

/** Medium partition page (11h) bits of byte 4. */
const FDP = 0x80;
const SDP = 0x40;
const IDP = 0x20;
const POFM = 0x04;
/** A partition size descriptor of FFFFh: that partition takes what the others leave. */
const REST = 0xffff;

/**
 * Medium partition page (11h, SSC-4 8.3.4). MAXIMUM ADDITIONAL PARTITIONS follows the LTO
 * generation (1 for LTO-5 and LTO-6, 3 from LTO-7 on). POFM is set, as on LTO drives: a
 * MODE SELECT only records the layout asked for (checked at once, against the loaded
 * cartridge's capacity if there is one) and FORMAT MEDIUM applies it. MODE SENSE reports
 * the loaded tape's real layout (sizes rounded down to the units last selected), or,
 * without a tape, what was asked for. Sizes are taken in megabytes (PSUM 10b) or in
 * 10^PARTITION UNITS bytes (PSUM 11b, the default with units of 10^9); byte and kilobyte
 * units cannot describe an LTO partition in 16 bits and are refused. The page takes as
 * many size descriptors as a host sends (a shorter page than MODE SENSE returns, as
 * Linux st sends, included).
 */
class MediumPartitionPage implements ModePage {
  readonly page = 0x11;
  readonly subpage = 0;
  /** PSUM and PARTITION UNITS last selected: the units sizes are reported in. */
  private psum = 3;
  private units = 9;
  constructor(private readonly d: TapeDrive) {}

  private get max(): number {
    return this.d.personality.features.maxPartitions;
  }

  private get unitBytes(): number {
    return this.psum === 2 ? 1_000_000 : 10 ** this.units;
  }

  private bytes(sizes: readonly (number | undefined)[], flags: number): Uint8Array {
    return page(0x11, 6 + 2 * this.max, (b) => {
      b[2] = this.max - 1;
      b[3] = Math.max(0, sizes.length - 1);
      b[4] = flags | (this.psum << 3) | POFM;
      b[5] = 0x03; // medium format recognition: format and partition recognition
      b[6] = this.units;
      sizes.slice(0, this.max).forEach((s, i) => setU16(b, 8 + 2 * i, s === undefined ? REST : Math.min(0xfffe, Math.floor(s / this.unitBytes))));
    });
  }

  current(): Uint8Array {
    const m = this.d.state === 'loaded' ? this.d.media : undefined;
    if (m) return this.bytes(m.partitionSizes, m.partitionCount > 1 ? IDP : 0);
    const r = this.d.partitionRequest;
    if (r) return this.bytes(r.kind === 'idp' ? r.sizes : new Array<number>(r.count).fill(0), r.kind === 'fdp' ? FDP : r.kind === 'sdp' ? SDP : r.kind === 'idp' ? IDP : 0);
    return this.bytes([0], 0);
  }
  defaults(): Uint8Array {
    return this.bytes([0], 0);
  }
  changeable(): Uint8Array {
    const bits: Record<number, number> = { 3: 0xff, 4: FDP | SDP | IDP | 0x18, 6: 0x0f };
    for (let i = 8; i < 8 + 2 * this.max; i++) bits[i] = 0xff;
    return mask(6 + 2 * this.max, bits);
  }
  acceptsLength(length: number): boolean {
    // Header and the six fixed bytes, then whole descriptors, no more than the drive has partitions.
    return length >= 8 && length <= 8 + 2 * this.max && length % 2 === 0;
  }
  select(v: Uint8Array): void {
    const descriptors = ((v[1] ?? 0) - 6) / 2;
    const additional = v[3] ?? 0;
    if (additional > this.max - 1) invalidParamField(3, 7);
    const flags = v[4] ?? 0;
    const kinds = [FDP, SDP, IDP].filter((k) => (flags & k) !== 0);
    // One way of partitioning at a time.
    if (kinds.length > 1) invalidParamField(4, 7);
    const psum = (flags >> 3) & 0x03;
    if (psum < 2) invalidParamField(4, 4);
    const units = (v[6] ?? 0) & 0x0f;
    const unitBytes = psum === 2 ? 1_000_000 : 10 ** units;
    let r: PartitionRequest;
    if (kinds[0] === FDP) r = { kind: 'fdp', count: Math.min(2, this.max), sizes: [] };
    else if (kinds[0] === SDP) r = { kind: 'sdp', count: additional + 1, sizes: [] };
    else if (kinds[0] === IDP) {
      const count = additional + 1;
      // Every partition defined needs its descriptor.
      if (descriptors < count) invalidParamField(1, 7);
      const sizes: (number | undefined)[] = [];
      for (let i = 0; i < count; i++) {
        const s = getU16(v, 8 + 2 * i);
        if (s === REST) {
          // Only one partition can take the rest.
          if (sizes.includes(undefined)) invalidParamField(8 + 2 * i, 7);
          sizes.push(undefined);
        } else {
          if (s === 0) invalidParamField(8 + 2 * i, 7);
          sizes.push(s * unitBytes);
        }
      }
      // Without FFFFh every size is as given; what they leave of the medium stays unused.
      r = { kind: 'idp', count, sizes };
    } else {
      // None of FDP, SDP and IDP: no partitioning asked for, unless partitions are.
      if (additional !== 0) invalidParamField(3, 7);
      r = { kind: 'one', count: 1, sizes: [undefined] };
    }
    const m = this.d.state === 'loaded' ? this.d.media : undefined;
    if (m) {
      const fit = partitionSizes(r, m.header.capacityBytes);
      if ('error' in fit) invalidParamField(r.kind === 'idp' ? 8 + 2 * fit.partition : 3, 7);
    }
    this.psum = psum;
    this.units = units;
    this.d.partitionRequest = r;
  }
}

function mask(len: number, bits: Record<number, number>): Uint8Array {
  const b = new Uint8Array(2 + len);
  for (const [i, v] of Object.entries(bits)) b[Number(i)] = v;
  return b;
}

export function installDrivePages(unit: EmulatedUnit<TapeDrive>, compressionDefault = false): void {
  const d = unit.device;
  const p = d.personality;
  unit.modePages.add(
    new StoredModePage(
      0x01,
      page(0x01, 0x0a, (b) => {
        b[3] = 0x0f; // read retry count
        b[8] = 0x0f; // write retry count
      }),
      mask(0x0a, { 2: 0x04 }), // PER: post recovered errors
    ),
  );
  unit.modePages.add(new DataCompressionPage(d, compressionDefault));
  unit.modePages.add(
    new StoredModePage(
      0x10,
      page(0x10, 0x0e, (b) => {
        b[8] = 0x00;
        b[10] = 0x18; // EOD defined: format-defined; SEW
        b[14] = p.features.compression ? 0x01 : 0x00;
      }),
      mask(0x0e, { 10: 0x04, 14: 0xff }), // SWP, SELECT DATA COMPRESSION ALGORITHM
      (v) => {
        d.softwareWriteProtect = ((v[10] ?? 0) & 0x04) !== 0;
      },
    ),
  );
  unit.modePages.add(new MediumPartitionPage(d));
  unit.modePages.add(
    new StoredModePage(
      0x1c,
      page(0x1c, 0x0a, (b) => {
        b[3] = 0x03; // MRIE: conditionally generate recovered error
      }),
      mask(0x0a, { 2: 0x0c, 3: 0x0f }), // DEXCPT, TEST, MRIE
    ),
  );

  unit.logPages.add({
    page: 0x0c,
    subpage: 0,
    name: 'sequential-access device',
    parameters: (): LogParameter[] => {
      const m = d.media;
      const cap = m?.header.capacityBytes ?? 0;
      return [
        { code: 0x0000, control: 0x03, value: counter(d.counters.bytesFromHost) },
        { code: 0x0001, control: 0x03, value: counter(d.counters.bytesWritten) },
        { code: 0x0002, control: 0x03, value: counter(d.counters.bytesRead) },
        { code: 0x0003, control: 0x03, value: counter(d.counters.bytesToHost) },
        { code: 0x0004, control: 0x03, value: counter(Math.floor((m?.dataBytes ?? 0) / 1_000_000), 4) },
        { code: 0x0005, control: 0x03, value: counter(Math.floor(earlyWarningPoint(cap) / 1_000_000), 4) },
        { code: 0x0006, control: 0x03, value: counter(Math.floor((cap - earlyWarningPoint(cap)) / 1_000_000), 4) },
        { code: 0x0007, control: 0x03, value: counter(Math.floor((m?.dataBytesBefore(d.position) ?? 0) / 1_000_000), 4) },
        { code: 0x0008, control: 0x03, value: counter(0, 4) },
        { code: 0x0100, control: 0x03, value: counter(0, 8) },
      ];
    },
    reset: () => {
      d.counters = { bytesWritten: 0, bytesRead: 0, bytesFromHost: 0, bytesToHost: 0 };
    },
  });
  if (p.features.compression) {
    const reset = (): void => {
      d.counters = { bytesWritten: 0, bytesRead: 0, bytesFromHost: 0, bytesToHost: 0 };
    };
    unit.logPages.add({ page: 0x1b, subpage: 0, name: 'data compression', parameters: () => compressionParameters(d), reset });
    unit.logPages.add({ page: 0x32, subpage: 0, name: 'data compression (IBM)', parameters: () => compressionParameters(d), reset });
  }
  if (p.features.tapeAlert) {
    unit.logPages.add({
      page: 0x2e,
      subpage: 0,
      name: 'TapeAlert',
      // TapeAlert (SSC-3 annex): reading the page clears the flags it reported.
      parameters: (): LogParameter[] => {
        const flags = d.tapeAlert;
        d.tapeAlert = 0n;
        return Array.from({ length: 64 }, (_, i) => ({ code: i + 1, control: 0x03, value: Uint8Array.of(flags & (1n << BigInt(i)) ? 1 : 0) }));
      },
    });
  }
  unit.logPages.add({ page: 0x17, subpage: 0, name: 'volume statistics', parameters: () => volumeStatisticsParameters(d) });
  unit.logPages.add({
    page: 0x31,
    subpage: 0,
    name: 'tape capacity',
    // Main partition (0) and alternate partition (1): remaining, then maximum, in MiB.
    parameters: (): LogParameter[] => {
      const m = d.media;
      const max = (p: number): number => m?.partitionSizes[p] ?? 0;
      const remaining = (p: number): number => Math.max(0, max(p) - (m?.dataBytesOf(p) ?? 0));
      return [
        { code: 1, control: 0x03, value: counter(Math.floor(remaining(0) / MiB), 4) },
        { code: 2, control: 0x03, value: counter(Math.floor(remaining(1) / MiB), 4) },
        { code: 3, control: 0x03, value: counter(Math.floor(max(0) / MiB), 4) },
        { code: 4, control: 0x03, value: counter(Math.floor(max(1) / MiB), 4) },
      ];
    },
  });
}

/** Mode header hooks: WP and buffered mode, the block descriptor, and MODE SELECT of it. */
export function driveHooks(d: TapeDrive): UnitHooks {
  return {
    notReady: () => d.notReady(),
    deviceSpecificParameter: () => (d.state === 'loaded' && (d.writeProtected() || d.access === 'read-only') ? 0x80 : 0) | (d.bufferedMode << 4),
    blockDescriptors: () => {
      const b = new Uint8Array(8);
      b[0] = d.state === 'loaded' ? (d.mediumDensity()?.code ?? 0) : 0;
      setU24(b, 5, d.blockSize);
      return b;
    },
    selectBlockDescriptor: (bd) => {
      const code = bd[0] ?? 0;
      const known = [...d.personality.writeDensities, ...d.personality.readOnlyDensities].some((x) => x.code === code);
      // 00h keeps the default, 7Fh means "no change"; any density the drive knows is accepted.
      if (code !== 0 && code !== 0x7f && !known) invalidParamField(0, 7);
      if (getU24(bd, 1) !== 0) invalidParamField(1, 7);
      const size = getU24(bd, 5);
      if (size !== 0 && (size < d.personality.minBlockLength || size > d.personality.maxBlockLength)) invalidParamField(5, 7);
      d.blockSize = size;
    },
    vpdPages: () => {
      // B0h sequential-access device capabilities: WORM support.
      const b0 = new Uint8Array(8);
      b0[0] = 0x01;
      b0[1] = 0xb0;
      setU16(b0, 2, 4);
      b0[4] = d.personality.features.worm ? 0x01 : 0;
      // B1h manufacturer-assigned serial number, as LTO drives report it beside 80h.
      const serial = new TextEncoder().encode(d.serial);
      const b1 = new Uint8Array(4 + serial.length);
      b1[0] = 0x01;
      b1[1] = 0xb1;
      setU16(b1, 2, serial.length);
      b1.set(serial, 4);
      return new Map([[0xb0, b0], [0xb1, b1]]);
    },
    onReset: (kind) => d.onReset(kind),
    deferredError: (initiator) => (d.deferredErrors.size ? takeDeferredError(d, initiator) : undefined),
  };
}
