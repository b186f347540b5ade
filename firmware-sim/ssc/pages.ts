/**
 * The drive's mode pages (read-write error recovery 01h, data compression 0Fh, device
 * configuration 10h, medium partition 11h, informational exceptions 1Ch; control 0Ah comes
 * from SPC), its log pages (sequential-access device 0Ch, TapeAlert 2Eh, tape capacity
 * 31h), and the mode header hooks (block descriptor, WP bit).
 */
import { getU24, setU16, setU24 } from '../../src/scsi/bytes.js';
import { invalidParamField } from '../engine/check.js';
import { counter, type LogParameter } from '../engine/log-pages.js';
import { StoredModePage, type ModePage } from '../engine/mode-pages.js';
import type { EmulatedUnit, UnitHooks } from '../engine/unit.js';
import { earlyWarningPoint, type TapeDrive } from './drive.js';
import { takeDeferredError } from './immediate.js';

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
  unit.modePages.add(
    new StoredModePage(
      0x11,
      page(0x11, 0x0a, (b) => {
        b[2] = p.features.maxPartitions - 1;
        b[3] = 0; // one partition defined
        b[4] = 0x18; // PSUM 11b (units in PARTITION UNITS)
        b[5] = 0x03; // medium format recognition: format and partition recognition
        b[6] = 9; // partition units 10^9 bytes
      }),
      mask(0x0a, {}),
    ),
  );
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
  unit.logPages.add({
    page: 0x31,
    subpage: 0,
    name: 'tape capacity',
    parameters: (): LogParameter[] => {
      const m = d.media;
      const cap = m?.header.capacityBytes ?? 0;
      return [
        { code: 1, control: 0x03, value: counter(Math.floor(Math.max(0, cap - (m?.dataBytes ?? 0)) / MiB), 4) },
        { code: 2, control: 0x03, value: counter(0, 4) },
        { code: 3, control: 0x03, value: counter(Math.floor(cap / MiB), 4) },
        { code: 4, control: 0x03, value: counter(0, 4) },
      ];
    },
  });
}

/** Mode header hooks: WP and buffered mode, the block descriptor, and MODE SELECT of it. */
export function driveHooks(d: TapeDrive): UnitHooks {
  return {
    notReady: () => d.notReady(),
    deviceSpecificParameter: () => (d.state === 'loaded' && (d.writeProtected() || d.access === 'read-only') ? 0x80 : 0) | 0x10,
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
