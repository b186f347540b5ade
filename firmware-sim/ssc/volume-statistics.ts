/**
 * Log page 17h, Volume Statistics (SSC-4 8.2.x): what the drive knows of the loaded volume,
 * the page tape management software reads after a job (Proxmox Backup Server's volume
 * statistics, `sg_logs -p 0x17`). Every figure comes from the cartridge (its memory and its
 * records) and this load's counters; what an emulated tape has no physical counterpart for
 * (data sets, retries, head passes, tape lot, mount times) is left out rather than
 * invented: a host reads the parameters present.
 *
 * Units: SSC-4 counts this page's sizes in megabytes of 10^6 bytes (the MAM attributes count
 * MiB, SPC-4), so the lifetime figures are converted from the cartridge memory's MiB.
 */
import { counter, type LogParameter } from '../engine/log-pages.js';
import { cartridgeAttributes } from './attributes.js';
import { earlyWarningPoint, type TapeDrive } from './drive.js';
import { Attr, binaryNumber, type AttributeValue } from './mam.js';

const MB = 1_000_000;
const MiB = 1024 * 1024;

/** Parameter codes of the page (SSC-4 table "Volume Statistics log parameter codes"). */
export const VolumeStat = {
  PAGE_VALID: 0x0000,
  THREAD_COUNT: 0x0001,
  LAST_MOUNT_MB_WRITTEN: 0x000e,
  LAST_MOUNT_MB_READ: 0x000f,
  LIFETIME_MB_WRITTEN: 0x0010,
  LIFETIME_MB_READ: 0x0011,
  LAST_LOAD_WRITE_COMPRESSION: 0x0012,
  LAST_LOAD_READ_COMPRESSION: 0x0013,
  TOTAL_NATIVE_CAPACITY: 0x0016,
  TOTAL_USED_NATIVE_CAPACITY: 0x0017,
  VOLUME_SERIAL_NUMBER: 0x0040,
  VOLUME_BARCODE: 0x0042,
  VOLUME_MANUFACTURER: 0x0043,
  VOLUME_PERSONALITY: 0x0045,
  WRITE_PROTECT: 0x0080,
  WORM: 0x0081,
  PARTITION_NATIVE_CAPACITY: 0x0202,
  PARTITION_USED_NATIVE_CAPACITY: 0x0203,
  PARTITION_REMAINING_TO_EW: 0x0204,
} as const;

/** Control bytes: a binary value (FORMAT AND LINKING 11b) and an ASCII string (01b). */
const BINARY = 0x03;
const ASCII = 0x01;

const enc = new TextEncoder();

/**
 * An ASCII parameter value: the string, padded with spaces to a multiple of 4 bytes as SPC-4
 * asks of ASCII format log parameters.
 */
function ascii(s: string): Uint8Array {
  const bytes = enc.encode(s.replace(/[^\x20-\x7e]/g, ' '));
  const b = new Uint8Array(Math.max(4, Math.ceil(bytes.length / 4) * 4)).fill(0x20);
  b.set(bytes);
  return b;
}

/** The trimmed ASCII value of a cartridge attribute, or '' when the cartridge has none. */
function attrText(attrs: readonly AttributeValue[], id: number): string {
  const a = attrs.find((x) => x.id === id);
  return a ? new TextDecoder().decode(a.value).replace(/[\0 ]+$/, '') : '';
}

/**
 * A per-partition parameter (SSC-4 "volume statistics partition record descriptor"): for
 * each partition, a descriptor of length, partition number and a 4-byte counter.
 */
function perPartition(values: readonly number[]): Uint8Array {
  const b = new Uint8Array(values.length * 8);
  values.forEach((v, p) => {
    const o = p * 8;
    b[o] = 7; // descriptor length after this byte
    b[o + 2] = p >> 8;
    b[o + 3] = p & 0xff;
    b.set(counter(Math.min(v, 0xffffffff), 4), o + 4);
  });
  return b;
}

/** Host bytes per 100 stored bytes, as a compression ratio times 100 (0 with nothing moved). */
function ratio100(host: number, stored: number): number {
  return stored === 0 ? 0 : Math.min(0xffff, Math.round((host * 100) / stored));
}

/** The page's parameters: only PAGE VALID (0) without a cartridge loaded. */
export function volumeStatisticsParameters(d: TapeDrive): LogParameter[] {
  const m = d.state === 'loaded' ? d.media : undefined;
  if (!m) return [{ code: VolumeStat.PAGE_VALID, control: BINARY, value: Uint8Array.of(0) }];
  const attrs = cartridgeAttributes(d, m, 0);
  const num = (id: number): number => binaryNumber(attrs.find((a) => a.id === id)?.value);
  const c = d.counters;
  const sizes = m.partitionSizes;
  const used = sizes.map((_, p) => m.dataBytesOf(p));
  const personality = d.mediumDensity()?.mediaType.replace(/^LTO(\d+)(.*)$/, 'Ultrium-$1$2') ?? '';
  const params: LogParameter[] = [
    { code: VolumeStat.PAGE_VALID, control: BINARY, value: Uint8Array.of(1) },
    { code: VolumeStat.THREAD_COUNT, control: BINARY, value: counter(num(Attr.LOAD_COUNT), 4) },
    { code: VolumeStat.LAST_MOUNT_MB_WRITTEN, control: BINARY, value: counter(Math.floor(c.bytesWritten / MB), 4) },
    { code: VolumeStat.LAST_MOUNT_MB_READ, control: BINARY, value: counter(Math.floor(c.bytesRead / MB), 4) },
    { code: VolumeStat.LIFETIME_MB_WRITTEN, control: BINARY, value: counter(Math.floor((num(Attr.TOTAL_MB_WRITTEN_LIFETIME) * MiB) / MB), 4) },
    { code: VolumeStat.LIFETIME_MB_READ, control: BINARY, value: counter(Math.floor((num(Attr.TOTAL_MB_READ_LIFETIME) * MiB) / MB), 4) },
    { code: VolumeStat.LAST_LOAD_WRITE_COMPRESSION, control: BINARY, value: counter(ratio100(c.bytesFromHost, c.bytesWritten), 2) },
    { code: VolumeStat.LAST_LOAD_READ_COMPRESSION, control: BINARY, value: counter(ratio100(c.bytesToHost, c.bytesRead), 2) },
    { code: VolumeStat.TOTAL_NATIVE_CAPACITY, control: BINARY, value: counter(Math.floor(sizes.reduce((a, b) => a + b, 0) / MB), 4) },
    { code: VolumeStat.TOTAL_USED_NATIVE_CAPACITY, control: BINARY, value: counter(Math.floor(m.dataBytes / MB), 4) },
    { code: VolumeStat.VOLUME_SERIAL_NUMBER, control: ASCII, value: ascii(attrText(attrs, Attr.MEDIUM_SERIAL_NUMBER)) },
    { code: VolumeStat.VOLUME_BARCODE, control: ASCII, value: ascii(m.header.barcode) },
    { code: VolumeStat.VOLUME_MANUFACTURER, control: ASCII, value: ascii(attrText(attrs, Attr.MEDIUM_MANUFACTURER)) },
    { code: VolumeStat.VOLUME_PERSONALITY, control: ASCII, value: ascii(personality) },
    { code: VolumeStat.WRITE_PROTECT, control: BINARY, value: Uint8Array.of(d.writeProtected() ? 1 : 0) },
    { code: VolumeStat.WORM, control: BINARY, value: Uint8Array.of(m.header.worm ? 1 : 0) },
    { code: VolumeStat.PARTITION_NATIVE_CAPACITY, control: BINARY, value: perPartition(sizes.map((s) => Math.floor(s / MB))) },
    { code: VolumeStat.PARTITION_USED_NATIVE_CAPACITY, control: BINARY, value: perPartition(used.map((u) => Math.floor(u / MB))) },
    {
      code: VolumeStat.PARTITION_REMAINING_TO_EW,
      control: BINARY,
      value: perPartition(sizes.map((s, p) => Math.floor(Math.max(0, earlyWarningPoint(s) - (used[p] ?? 0)) / MB))),
    },
  ];
  return params;
}

