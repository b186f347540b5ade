/**
 * INQUIRY parameter data (SPC-4 6.6.2) and the vital product data pages ptpvts reads:
 * 00h supported pages, 80h unit serial number, 83h device identification (SPC-4 7.8),
 * and for sequential-access devices B0h device capabilities and B1h manufacturer-assigned
 * serial number (SSC-4 8.4).
 */
import { getAscii, getU16, getU64, toHex } from './bytes.js';
import { ScsiParseError, bit, needBytes, slice, u8, getUtf8 } from './parse-common.js';

/** Standard INQUIRY data, the fields a client acts on. */
export interface InquiryData {
  /** 0 connected, 1 supported but not connected, 3 not supported at this LUN. */
  readonly peripheralQualifier: number;
  readonly deviceType: number;
  /** RMB: the medium is removable. */
  readonly removable: boolean;
  /** VERSION: the SPC standard claimed (6 = SPC-4, 7 = SPC-5). */
  readonly version: number;
  readonly normaca: boolean;
  readonly hisup: boolean;
  readonly responseDataFormat: number;
  readonly additionalLength: number;
  readonly sccs: boolean;
  readonly acc: boolean;
  readonly tpgs: number;
  readonly thirdPartyCopy: boolean;
  readonly protect: boolean;
  readonly encserv: boolean;
  readonly multip: boolean;
  /** MCHNGR: an attached medium changer is addressed through this LU (obsolete in SPC-4). */
  readonly mchngr: boolean;
  readonly cmdque: boolean;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  /** Bytes 36..55, vendor specific (tape drives often put their serial number here). */
  readonly vendorSpecific: Uint8Array;
  /** Version descriptors (bytes 58..73), zero entries dropped. */
  readonly versionDescriptors: readonly number[];
}

export function parseInquiry(b: Uint8Array): InquiryData {
  needBytes(b, 5, 'INQUIRY data');
  const descriptors: number[] = [];
  for (let off = 58; off + 2 <= Math.min(b.length, 74); off += 2) {
    const v = getU16(b, off);
    if (v !== 0) descriptors.push(v);
  }
  return {
    peripheralQualifier: u8(b, 0) >> 5,
    deviceType: u8(b, 0) & 0x1f,
    removable: bit(b, 1, 7),
    version: u8(b, 2),
    normaca: bit(b, 3, 5),
    hisup: bit(b, 3, 4),
    responseDataFormat: u8(b, 3) & 0x0f,
    additionalLength: u8(b, 4),
    sccs: bit(b, 5, 7),
    acc: bit(b, 5, 6),
    tpgs: (u8(b, 5) >> 4) & 3,
    thirdPartyCopy: bit(b, 5, 3),
    protect: bit(b, 5, 0),
    encserv: bit(b, 6, 6),
    multip: bit(b, 6, 4),
    mchngr: bit(b, 6, 3),
    cmdque: bit(b, 7, 1),
    vendor: getAscii(b, 8, 8).trim(),
    product: getAscii(b, 16, 16).trim(),
    revision: getAscii(b, 32, 4).trim(),
    vendorSpecific: slice(b, 36, 56),
    versionDescriptors: descriptors,
  };
}

/** The four-byte header every VPD page starts with. */
export interface VpdHeader {
  readonly peripheralQualifier: number;
  readonly deviceType: number;
  readonly pageCode: number;
  readonly pageLength: number;
}

/** Reads a VPD header and returns it with the page body (clipped to what arrived). */
export function parseVpdHeader(b: Uint8Array, expectPage?: number): { header: VpdHeader; body: Uint8Array } {
  needBytes(b, 4, 'VPD page');
  const header = { peripheralQualifier: u8(b, 0) >> 5, deviceType: u8(b, 0) & 0x1f, pageCode: u8(b, 1), pageLength: getU16(b, 2) };
  if (expectPage !== undefined && header.pageCode !== expectPage) {
    throw new ScsiParseError('VPD page', `page code 0x${hex(header.pageCode)} where 0x${hex(expectPage)} was asked for`);
  }
  return { header, body: slice(b, 4, 4 + header.pageLength) };
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** VPD 00h: the page codes the device supports, in its order. */
export function parseSupportedVpdPages(b: Uint8Array): number[] {
  return [...parseVpdHeader(b, 0x00).body];
}

/** VPD 80h: the unit serial number (ASCII, trailing spaces trimmed). */
export function parseUnitSerialNumber(b: Uint8Array): string {
  const { body } = parseVpdHeader(b, 0x80);
  return getAscii(body, 0, body.length).trim();
}

/** VPD B1h of a sequential-access device: the manufacturer-assigned serial number. */
export function parseManufacturerSerialNumber(b: Uint8Array): string {
  const { body } = parseVpdHeader(b, 0xb1);
  return getAscii(body, 0, body.length).trim();
}

/** VPD B0h of a sequential-access device (SSC-4 table 93). */
export interface SequentialAccessCapabilities {
  /** The device supports write-once media. */
  readonly worm: boolean;
  /** TSMC: tape stream mirroring capable. */
  readonly tsmc: boolean;
}

export function parseSequentialAccessCapabilities(b: Uint8Array): SequentialAccessCapabilities {
  const { body } = parseVpdHeader(b, 0xb0);
  return { worm: bit(body, 0, 0), tsmc: bit(body, 0, 1) };
}

/** Code sets of a designator (SPC-4 table 591). */
export const CodeSet = { binary: 1, ascii: 2, utf8: 3 } as const;

/** Designator types (SPC-4 table 593). */
export const DesignatorType = {
  vendorSpecific: 0x0,
  t10VendorId: 0x1,
  eui64: 0x2,
  naa: 0x3,
  relativeTargetPort: 0x4,
  targetPortGroup: 0x5,
  logicalUnitGroup: 0x6,
  md5LogicalUnitId: 0x7,
  scsiNameString: 0x8,
  protocolSpecificPortId: 0x9,
  uuid: 0xa,
} as const;

/** Association of a designator (SPC-4 table 592). */
export const Association = { logicalUnit: 0, targetPort: 1, targetDevice: 2 } as const;

/** One designation descriptor of VPD 83h (also the identifier of an SMC element descriptor). */
export interface Designator {
  readonly protocolIdentifier: number;
  readonly codeSet: number;
  /** PIV: `protocolIdentifier` is meaningful. */
  readonly piv: boolean;
  readonly association: number;
  readonly designatorType: number;
  readonly designator: Uint8Array;
  /** The designator as text: ASCII/UTF-8 as is, binary as lowercase hex. */
  readonly text: string;
}

/** Decodes one designation descriptor at `off`; returns it and the offset after it. */
export function parseDesignator(b: Uint8Array, off: number): { designator: Designator; next: number } {
  const len = u8(b, off + 3);
  const value = slice(b, off + 4, off + 4 + len);
  const codeSet = u8(b, off) & 0x0f;
  return {
    designator: {
      protocolIdentifier: u8(b, off) >> 4,
      codeSet,
      piv: bit(b, off + 1, 7),
      association: (u8(b, off + 1) >> 4) & 3,
      designatorType: u8(b, off + 1) & 0x0f,
      designator: value,
      text: designatorText(codeSet, value),
    },
    next: off + 4 + len,
  };
}

function designatorText(codeSet: number, value: Uint8Array): string {
  if (codeSet === CodeSet.ascii) return getAscii(value, 0, value.length).trim();
  if (codeSet === CodeSet.utf8) return getUtf8(value);
  return toHex(value);
}

/** VPD 83h: every designation descriptor, in the device's order. */
export function parseDeviceIdentification(b: Uint8Array): Designator[] {
  const { body } = parseVpdHeader(b, 0x83);
  const out: Designator[] = [];
  let off = 0;
  while (off + 4 <= body.length) {
    const { designator, next } = parseDesignator(body, off);
    // A descriptor cut by the allocation length is dropped rather than reported short.
    if (next > body.length) break;
    out.push(designator);
    off = next;
  }
  return out;
}

/** The NAA designator of the logical unit as a 64-bit value, when the page has one. */
export function naaOf(designators: readonly Designator[]): bigint | undefined {
  const d = designators.find((x) => x.designatorType === DesignatorType.naa && x.association === Association.logicalUnit && x.designator.length >= 8);
  return d ? getU64(d.designator, 0) : undefined;
}
