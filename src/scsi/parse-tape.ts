/**
 * Parameter data of the stream commands (SSC-4): READ BLOCK LIMITS (7.4), READ POSITION
 * short and long forms (7.5), REPORT DENSITY SUPPORT (6.10).
 */
import { getAscii, getU16, getU24, getU32, getU64, setU16, setU24, setU32, setU64, setAscii } from './bytes.js';
import { ScsiParseError, bit, needBytes, u8 } from './parse-common.js';

/** READ BLOCK LIMITS: what block lengths the drive accepts. */
export interface BlockLimits {
  /** Supported fixed block lengths are multiples of 2^granularity. */
  readonly granularity: number;
  /** 0 means no limit is reported. */
  readonly maxBlockLength: number;
  readonly minBlockLength: number;
}

export function parseBlockLimits(b: Uint8Array): BlockLimits {
  needBytes(b, 6, 'READ BLOCK LIMITS data');
  return { granularity: u8(b, 0) & 0x1f, maxBlockLength: getU24(b, 1), minBlockLength: getU16(b, 4) };
}

/** Builds READ BLOCK LIMITS data (used by tests and fakes). */
export function buildBlockLimits(l: BlockLimits): Uint8Array {
  const b = new Uint8Array(6);
  b[0] = l.granularity & 0x1f;
  setU24(b, 1, l.maxBlockLength);
  setU16(b, 4, l.minBlockLength);
  return b;
}

/** READ POSITION short form (20 bytes, service action 00h). */
export interface ShortPosition {
  readonly form: 'short';
  /** Beginning of partition. */
  readonly bop: boolean;
  /** Between early warning and the end of partition. */
  readonly eop: boolean;
  /** LOCU: the logical object count in the buffer is unknown. */
  readonly locu: boolean;
  /** BYCU: the byte count in the buffer is unknown. */
  readonly bycu: boolean;
  /** LOLU: the location fields are unknown (e.g. after a positioning error). */
  readonly lolu: boolean;
  /** PERR: a field overflowed its size; use the long form. */
  readonly perr: boolean;
  /** BPEW: beyond programmable early warning. */
  readonly bpew: boolean;
  readonly partition: number;
  /** First logical object location: the next block to be transferred (the host's position). */
  readonly block: number;
  /** Last logical object location: the next block the medium will see (after the buffer). */
  readonly lastBlock: number;
  readonly objectsInBuffer: number;
  readonly bytesInBuffer: number;
}

export function parseShortPosition(b: Uint8Array): ShortPosition {
  needBytes(b, 20, 'READ POSITION short form');
  return {
    form: 'short',
    bop: bit(b, 0, 7),
    eop: bit(b, 0, 6),
    locu: bit(b, 0, 5),
    bycu: bit(b, 0, 4),
    lolu: bit(b, 0, 2),
    perr: bit(b, 0, 1),
    bpew: bit(b, 0, 0),
    partition: u8(b, 1),
    block: getU32(b, 4),
    lastBlock: getU32(b, 8),
    objectsInBuffer: getU24(b, 13),
    bytesInBuffer: getU32(b, 16),
  };
}

/** READ POSITION long form (32 bytes, service action 06h). */
export interface LongPosition {
  readonly form: 'long';
  readonly bop: boolean;
  readonly eop: boolean;
  /** MPU: the position is unknown. */
  readonly mpu: boolean;
  /** LONU: the logical object number is unknown. */
  readonly lonu: boolean;
  readonly bpew: boolean;
  readonly partition: number;
  /** Logical object number (block address). */
  readonly block: bigint;
  /** Logical file identifier: filemarks between BOP and the position. */
  readonly fileNumber: bigint;
}

export function parseLongPosition(b: Uint8Array): LongPosition {
  needBytes(b, 32, 'READ POSITION long form');
  return {
    form: 'long',
    bop: bit(b, 0, 7),
    eop: bit(b, 0, 6),
    mpu: bit(b, 0, 3),
    lonu: bit(b, 0, 2),
    bpew: bit(b, 0, 0),
    partition: getU32(b, 4),
    block: getU64(b, 8),
    fileNumber: getU64(b, 16),
  };
}

/** Builders for the two forms, for fakes and round-trip tests. */
export function buildShortPosition(p: Omit<ShortPosition, 'form'>): Uint8Array {
  const b = new Uint8Array(20);
  b[0] = (p.bop ? 0x80 : 0) | (p.eop ? 0x40 : 0) | (p.locu ? 0x20 : 0) | (p.bycu ? 0x10 : 0) | (p.lolu ? 0x04 : 0) | (p.perr ? 0x02 : 0) | (p.bpew ? 0x01 : 0);
  b[1] = p.partition;
  setU32(b, 4, p.block);
  setU32(b, 8, p.lastBlock);
  setU24(b, 13, p.objectsInBuffer);
  setU32(b, 16, p.bytesInBuffer);
  return b;
}

export function buildLongPosition(p: Omit<LongPosition, 'form'>): Uint8Array {
  const b = new Uint8Array(32);
  b[0] = (p.bop ? 0x80 : 0) | (p.eop ? 0x40 : 0) | (p.mpu ? 0x08 : 0) | (p.lonu ? 0x04 : 0) | (p.bpew ? 0x01 : 0);
  setU32(b, 4, p.partition);
  setU64(b, 8, p.block);
  setU64(b, 16, p.fileNumber);
  return b;
}

/** One density support data block descriptor (REPORT DENSITY SUPPORT, MEDIUM TYPE=0). */
export interface DensityDescriptor {
  readonly primaryDensityCode: number;
  readonly secondaryDensityCode: number;
  /** WRTOK: the drive can write this density (on the mounted medium when MEDIA=1). */
  readonly writeOk: boolean;
  /** DUP: the density is reported more than once (under another code). */
  readonly dup: boolean;
  /** DEFLT: the default density. */
  readonly defaultDensity: boolean;
  /** DLV: descriptor length valid (the length field of SSC-4 holds 49). */
  readonly dlv: boolean;
  readonly bitsPerMm: number;
  /** Media width in tenths of millimetres. */
  readonly mediaWidth: number;
  readonly tracks: number;
  /** Capacity in megabytes (10^6 bytes). */
  readonly capacityMb: number;
  readonly assigningOrganization: string;
  readonly densityName: string;
  readonly description: string;
}

/** One medium type descriptor (REPORT DENSITY SUPPORT, MEDIUM TYPE=1). */
export interface MediumTypeDescriptor {
  readonly mediumType: number;
  readonly primaryDensityCodes: readonly number[];
  readonly mediaWidth: number;
  readonly mediumLength: number;
  readonly assigningOrganization: string;
  readonly mediumTypeName: string;
  readonly description: string;
}

const DENSITY_DESCRIPTOR_LENGTH = 52;

/** REPORT DENSITY SUPPORT with MEDIUM TYPE=0: density descriptors. */
export function parseDensitySupport(b: Uint8Array): DensityDescriptor[] {
  needBytes(b, 4, 'REPORT DENSITY SUPPORT data');
  const end = Math.min(b.length, 2 + getU16(b, 0));
  const out: DensityDescriptor[] = [];
  for (let off = 4; off + DENSITY_DESCRIPTOR_LENGTH <= end; off += DENSITY_DESCRIPTOR_LENGTH) {
    out.push({
      primaryDensityCode: u8(b, off),
      secondaryDensityCode: u8(b, off + 1),
      writeOk: bit(b, off + 2, 7),
      dup: bit(b, off + 2, 6),
      defaultDensity: bit(b, off + 2, 5),
      dlv: bit(b, off + 2, 0),
      bitsPerMm: getU24(b, off + 5),
      mediaWidth: getU16(b, off + 8),
      tracks: getU16(b, off + 10),
      capacityMb: getU32(b, off + 12),
      assigningOrganization: getAscii(b, off + 16, 8),
      densityName: getAscii(b, off + 24, 8),
      description: getAscii(b, off + 32, 20),
    });
  }
  return out;
}

/** REPORT DENSITY SUPPORT with MEDIUM TYPE=1: medium type descriptors (variable length). */
export function parseMediumTypeSupport(b: Uint8Array): MediumTypeDescriptor[] {
  needBytes(b, 4, 'REPORT DENSITY SUPPORT data');
  const end = Math.min(b.length, 2 + getU16(b, 0));
  const out: MediumTypeDescriptor[] = [];
  let off = 4;
  while (off + 4 <= end) {
    const len = getU16(b, off + 2);
    if (len < 52 || off + 4 + len > end) {
      if (len < 52 && off + 4 + len <= end) throw new ScsiParseError('REPORT DENSITY SUPPORT medium type descriptor', `descriptor length ${len} is below 52`);
      break;
    }
    const n = Math.min(9, u8(b, off + 4));
    const codes: number[] = [];
    for (let i = 0; i < n; i++) codes.push(u8(b, off + 5 + i));
    out.push({
      mediumType: u8(b, off),
      primaryDensityCodes: codes,
      mediaWidth: getU16(b, off + 14),
      mediumLength: getU16(b, off + 16),
      assigningOrganization: getAscii(b, off + 20, 8),
      mediumTypeName: getAscii(b, off + 28, 8),
      description: getAscii(b, off + 36, 20),
    });
    off += 4 + len;
  }
  return out;
}

/** Builds REPORT DENSITY SUPPORT (MEDIUM TYPE=0) data, for fakes and tests. */
export function buildDensitySupport(ds: readonly DensityDescriptor[]): Uint8Array {
  const b = new Uint8Array(4 + ds.length * DENSITY_DESCRIPTOR_LENGTH);
  setU16(b, 0, b.length - 2);
  ds.forEach((d, i) => {
    const off = 4 + i * DENSITY_DESCRIPTOR_LENGTH;
    b[off] = d.primaryDensityCode;
    b[off + 1] = d.secondaryDensityCode;
    b[off + 2] = (d.writeOk ? 0x80 : 0) | (d.dup ? 0x40 : 0) | (d.defaultDensity ? 0x20 : 0) | (d.dlv ? 0x01 : 0);
    if (d.dlv) setU16(b, off + 3, DENSITY_DESCRIPTOR_LENGTH - 3);
    setU24(b, off + 5, d.bitsPerMm);
    setU16(b, off + 8, d.mediaWidth);
    setU16(b, off + 10, d.tracks);
    setU32(b, off + 12, d.capacityMb);
    setAscii(b, off + 16, 8, d.assigningOrganization);
    setAscii(b, off + 24, 8, d.densityName);
    setAscii(b, off + 32, 20, d.description);
  });
  return b;
}
