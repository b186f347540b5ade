/**
 * Medium changer parameter data (SMC-3): READ ELEMENT STATUS (6.11), REQUEST VOLUME
 * ELEMENT ADDRESS (6.7) and the element
 * address assignment (1Dh), transport geometry (1Eh) and device capabilities (1Fh) mode
 * pages (7.3). Builders sit beside the parsers for fakes and round-trip tests.
 */
import { getAscii, getU16, getU24, setAscii, setU16, setU24 } from './bytes.js';
import { ScsiParseError, bit, needBytes, u8 } from './parse-common.js';
import { parseDesignator } from './parse-inquiry.js';
import type { Designator } from './parse-inquiry.js';

/** Element type codes as they appear in element status pages (SMC-3 table 12). */
export const ElementTypeCode = {
  mediumTransport: 1,
  storage: 2,
  importExport: 3,
  dataTransfer: 4,
} as const;
export type ElementTypeCode = (typeof ElementTypeCode)[keyof typeof ElementTypeCode];

const typeNames: Record<number, string> = { 1: 'medium transport', 2: 'storage', 3: 'import/export', 4: 'data transfer' };

export function elementTypeName(t: number): string {
  return typeNames[t] ?? `element type ${t}`;
}

/** A volume tag: PRIMARY (or ALTERNATE) VOLUME TAG INFORMATION, 36 bytes. */
export interface VolumeTag {
  /** VOLUME IDENTIFIER (the barcode), trailing spaces trimmed. */
  readonly identifier: string;
  readonly sequenceNumber: number;
}

/** One element descriptor, every type's flags folded into one shape. */
export interface ElementStatus {
  readonly type: ElementTypeCode;
  readonly address: number;
  /** A unit of media is present. */
  readonly full: boolean;
  /** The element is in an abnormal state; ASC/ASCQ say why. */
  readonly except: boolean;
  /** ACCESS: the transport can reach the element (not reported for transports: true). */
  readonly access: boolean;
  /** Import/export only: IMPEXP — the medium was placed by an operator (import). */
  readonly impExp?: boolean;
  /** Import/export only: OIR — operator intervention required to use the element. */
  readonly oir?: boolean;
  /** Import/export only: CMC — the element is a conveyor (no own storage). */
  readonly cmc?: boolean;
  /** Import/export only: INENAB/EXENAB — the element can import / export. */
  readonly inEnab?: boolean;
  readonly exEnab?: boolean;
  readonly asc: number;
  readonly ascq: number;
  /** Data transfer only: the SCSI address fields (NOT BUS, ID VALID, LU VALID...). */
  readonly scsiAddress?: { readonly notBus: boolean; readonly idValid: boolean; readonly luValid: boolean; readonly lun: number; readonly busAddress: number };
  /** ED: the medium is disabled; MEDIUM TYPE: 0 unspecified, 1 data, 2 cleaning, 3 diagnostic, 4 WORM. */
  readonly ed: boolean;
  readonly mediumType: number;
  /** SVALID set: the element the medium last came from. */
  readonly sourceAddress?: number;
  /** INVERT: the medium was inverted on its way here. */
  readonly invert: boolean;
  readonly primaryVolumeTag?: VolumeTag;
  readonly alternateVolumeTag?: VolumeTag;
  /** The identifier (DVCID) — for a data transfer element, the drive's device identifier. */
  readonly identifier?: Designator;
}

export interface ElementStatusPage {
  readonly type: ElementTypeCode;
  readonly pvoltag: boolean;
  readonly avoltag: boolean;
  readonly descriptorLength: number;
  readonly byteCount: number;
  readonly elements: readonly ElementStatus[];
}

export interface ElementStatusData {
  readonly firstAddress: number;
  /** NUMBER OF ELEMENTS AVAILABLE. */
  readonly elementsAvailable: number;
  /**
   * BYTE COUNT OF REPORT AVAILABLE: page bytes after the 8-byte header, not adjusted to
   * the allocation length. `8 + reportBytes` is the allocation that gets the whole report.
   */
  readonly reportBytes: number;
  readonly pages: readonly ElementStatusPage[];
  readonly truncated: boolean;
}

function volumeTag(b: Uint8Array, off: number): VolumeTag {
  return { identifier: getAscii(b, off, 32).trimEnd(), sequenceNumber: getU16(b, off + 34) };
}

function parseDescriptor(b: Uint8Array, off: number, len: number, page: Pick<ElementStatusPage, 'type' | 'pvoltag' | 'avoltag'>): ElementStatus {
  const type = page.type;
  const flags = u8(b, off + 2);
  let tagOff = off + 12;
  const primary = page.pvoltag && tagOff + 36 <= off + len ? volumeTag(b, tagOff) : undefined;
  if (page.pvoltag) tagOff += 36;
  const alternate = page.avoltag && tagOff + 36 <= off + len ? volumeTag(b, tagOff) : undefined;
  if (page.avoltag) tagOff += 36;
  let identifier: Designator | undefined;
  if (tagOff + 4 <= off + len && u8(b, tagOff + 3) > 0) {
    const d = parseDesignator(b, tagOff);
    if (d.next <= off + len) identifier = d.designator;
  }
  const b6 = u8(b, off + 6);
  const b9 = u8(b, off + 9);
  return {
    type,
    address: getU16(b, off),
    full: (flags & 0x01) !== 0,
    except: (flags & 0x04) !== 0,
    access: type === ElementTypeCode.mediumTransport ? true : (flags & 0x08) !== 0,
    ...(type === ElementTypeCode.importExport
      ? { impExp: (flags & 0x02) !== 0, exEnab: (flags & 0x10) !== 0, inEnab: (flags & 0x20) !== 0, cmc: (flags & 0x40) !== 0, oir: (flags & 0x80) !== 0 }
      : {}),
    asc: u8(b, off + 4),
    ascq: u8(b, off + 5),
    ...(type === ElementTypeCode.dataTransfer
      ? { scsiAddress: { notBus: (b6 & 0x80) !== 0, idValid: (b6 & 0x20) !== 0, luValid: (b6 & 0x10) !== 0, lun: b6 & 7, busAddress: u8(b, off + 7) } }
      : {}),
    ed: (b9 & 0x08) !== 0,
    mediumType: b9 & 7,
    invert: (b9 & 0x40) !== 0,
    ...((b9 & 0x80) !== 0 ? { sourceAddress: getU16(b, off + 10) } : {}),
    ...(primary ? { primaryVolumeTag: primary } : {}),
    ...(alternate ? { alternateVolumeTag: alternate } : {}),
    ...(identifier ? { identifier } : {}),
  };
}

/** Parses READ ELEMENT STATUS data; pages and descriptors cut short are dropped. */
export function parseElementStatus(b: Uint8Array): ElementStatusData {
  needBytes(b, 8, 'READ ELEMENT STATUS data');
  const reportBytes = getU24(b, 5);
  const end = Math.min(b.length, 8 + reportBytes);
  const pages: ElementStatusPage[] = [];
  let off = 8;
  while (off + 8 <= end) {
    const type = u8(b, off) & 0x0f;
    if (type < 1 || type > 4) throw new ScsiParseError('READ ELEMENT STATUS data', `element type code ${type} at byte ${off}`);
    const descriptorLength = getU16(b, off + 2);
    const byteCount = getU24(b, off + 5);
    const head = { type: type as ElementTypeCode, pvoltag: bit(b, off + 1, 7), avoltag: bit(b, off + 1, 6) };
    if (descriptorLength < 12 && byteCount > 0) throw new ScsiParseError('READ ELEMENT STATUS data', `element descriptor length ${descriptorLength} is below 12`);
    const pageEnd = Math.min(end, off + 8 + byteCount);
    const elements: ElementStatus[] = [];
    for (let d = off + 8; d + descriptorLength <= pageEnd && descriptorLength > 0; d += descriptorLength) {
      elements.push(parseDescriptor(b, d, descriptorLength, head));
    }
    pages.push({ ...head, descriptorLength, byteCount, elements });
    off += 8 + byteCount;
  }
  return { firstAddress: getU16(b, 0), elementsAvailable: getU16(b, 2), reportBytes, pages, truncated: b.length < 8 + reportBytes };
}

/** REQUEST VOLUME ELEMENT ADDRESS data (SMC-3 6.7): element status pages plus the send action code. */
export interface VolumeElementAddressData extends ElementStatusData {
  /** SEND ACTION CODE of the translate this report answers (byte 4, bits 4..0). */
  readonly sendAction: number;
}

/**
 * Parses REQUEST VOLUME ELEMENT ADDRESS data: the header of READ ELEMENT STATUS data with
 * the send action code in byte 4, then the same element status pages (volume tags, primary
 * and alternate, as the page headers say).
 */
export function parseVolumeElementAddress(b: Uint8Array): VolumeElementAddressData {
  needBytes(b, 8, 'REQUEST VOLUME ELEMENT ADDRESS data');
  return { ...parseElementStatus(b), sendAction: u8(b, 4) & 0x1f };
}

/** Every element descriptor of element status data, in report order. */
export function elementsOf(d: ElementStatusData): ElementStatus[] {
  return d.pages.flatMap((p) => p.elements);
}

/** What a fake needs to describe one element when building element status data. */
export type ElementStatusInput = Omit<ElementStatus, 'type'>;

/**
 * Builds READ ELEMENT STATUS data with one page per group, in order. Descriptor length
 * is 12, plus 36 per volume tag, plus the identifier (padded to a multiple of 4) when
 * `withIdentifier` is set. Meant for fakes and round-trip tests.
 */
export function buildElementStatus(
  groups: readonly { type: ElementTypeCode; elements: readonly ElementStatusInput[]; pvoltag?: boolean; avoltag?: boolean; identifierLength?: number }[],
): Uint8Array {
  const parts: Uint8Array[] = [];
  let first = 0xffff;
  let count = 0;
  for (const g of groups) {
    const idLen = g.identifierLength ?? 0;
    const dlen = 12 + (g.pvoltag ? 36 : 0) + (g.avoltag ? 36 : 0) + (idLen > 0 ? 4 + Math.ceil(idLen / 4) * 4 : 0);
    const page = new Uint8Array(8 + dlen * g.elements.length);
    page[0] = g.type;
    page[1] = (g.pvoltag ? 0x80 : 0) | (g.avoltag ? 0x40 : 0);
    setU16(page, 2, dlen);
    setU24(page, 5, dlen * g.elements.length);
    g.elements.forEach((e, i) => {
      const o = 8 + i * dlen;
      first = Math.min(first, e.address);
      count++;
      setU16(page, o, e.address);
      page[o + 2] =
        (e.full ? 0x01 : 0) | (e.impExp ? 0x02 : 0) | (e.except ? 0x04 : 0) | (e.access && g.type !== ElementTypeCode.mediumTransport ? 0x08 : 0) |
        (e.exEnab ? 0x10 : 0) | (e.inEnab ? 0x20 : 0) | (e.cmc ? 0x40 : 0) | (e.oir ? 0x80 : 0);
      page[o + 4] = e.asc;
      page[o + 5] = e.ascq;
      if (e.scsiAddress) {
        const a = e.scsiAddress;
        page[o + 6] = (a.notBus ? 0x80 : 0) | (a.idValid ? 0x20 : 0) | (a.luValid ? 0x10 : 0) | (a.lun & 7);
        page[o + 7] = a.busAddress;
      }
      page[o + 9] = (e.sourceAddress !== undefined ? 0x80 : 0) | (e.invert ? 0x40 : 0) | (e.ed ? 0x08 : 0) | (e.mediumType & 7);
      if (e.sourceAddress !== undefined) setU16(page, o + 10, e.sourceAddress);
      let t = o + 12;
      for (const [on, tag] of [[g.pvoltag, e.primaryVolumeTag], [g.avoltag, e.alternateVolumeTag]] as const) {
        if (!on) continue;
        if (tag) {
          setAscii(page, t, 32, tag.identifier);
          setU16(page, t + 34, tag.sequenceNumber);
        }
        t += 36;
      }
      if (idLen > 0 && e.identifier) {
        const d = e.identifier;
        page[t] = ((d.protocolIdentifier & 0x0f) << 4) | (d.codeSet & 0x0f);
        page[t + 1] = (d.piv ? 0x80 : 0) | ((d.association & 3) << 4) | (d.designatorType & 0x0f);
        const room = Math.ceil(idLen / 4) * 4;
        const value = d.designator.subarray(0, room);
        page[t + 3] = value.length;
        page.set(value, t + 4);
      }
    });
    parts.push(page);
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const b = new Uint8Array(8 + total);
  setU16(b, 0, count ? first : 0);
  setU16(b, 2, count);
  setU24(b, 5, total);
  let off = 8;
  for (const p of parts) {
    b.set(p, off);
    off += p.length;
  }
  return b;
}

/** Mode page 1Dh: where each element type's addresses begin and how many there are. */
export interface ElementAddressAssignment {
  readonly firstTransport: number;
  readonly transportCount: number;
  readonly firstStorage: number;
  readonly storageCount: number;
  readonly firstImportExport: number;
  readonly importExportCount: number;
  readonly firstDataTransfer: number;
  readonly dataTransferCount: number;
}

/** Parses the body (after the 2-byte page header) of mode page 1Dh. */
export function parseElementAddressAssignment(data: Uint8Array): ElementAddressAssignment {
  needBytes(data, 16, 'element address assignment mode page');
  return {
    firstTransport: getU16(data, 0),
    transportCount: getU16(data, 2),
    firstStorage: getU16(data, 4),
    storageCount: getU16(data, 6),
    firstImportExport: getU16(data, 8),
    importExportCount: getU16(data, 10),
    firstDataTransfer: getU16(data, 12),
    dataTransferCount: getU16(data, 14),
  };
}

/** Builds mode page 1Dh whole (header included). */
export function buildElementAddressAssignment(a: ElementAddressAssignment): Uint8Array {
  const b = new Uint8Array(20);
  b[0] = 0x1d;
  b[1] = 0x12;
  const v = [a.firstTransport, a.transportCount, a.firstStorage, a.storageCount, a.firstImportExport, a.importExportCount, a.firstDataTransfer, a.dataTransferCount];
  v.forEach((x, i) => setU16(b, 2 + i * 2, x));
  return b;
}

/** Mode page 1Eh: one entry per medium transport element. */
export interface TransportGeometry {
  /** ROTATE: the transport can flip the medium (two-sided media). */
  readonly rotate: boolean;
  readonly memberNumber: number;
}

export function parseTransportGeometry(data: Uint8Array): TransportGeometry[] {
  const out: TransportGeometry[] = [];
  for (let i = 0; i + 2 <= data.length; i += 2) out.push({ rotate: bit(data, i, 0), memberNumber: u8(data, i + 1) });
  return out;
}

/** Which element types the `from` type can move to or exchange with. */
export interface ElementTypeSet {
  readonly transport: boolean;
  readonly storage: boolean;
  readonly importExport: boolean;
  readonly dataTransfer: boolean;
}

/** Mode page 1Fh: device capabilities. */
export interface DeviceCapabilities {
  /** STORxx: element types that can store media. */
  readonly canStore: ElementTypeSet;
  /** MOVE MEDIUM from the keyed type to the types set. */
  readonly moveFrom: { readonly transport: ElementTypeSet; readonly storage: ElementTypeSet; readonly importExport: ElementTypeSet; readonly dataTransfer: ElementTypeSet };
  /** EXCHANGE MEDIUM between the keyed type and the types set. */
  readonly exchangeWith: { readonly transport: ElementTypeSet; readonly storage: ElementTypeSet; readonly importExport: ElementTypeSet; readonly dataTransfer: ElementTypeSet };
}

function typeSet(x: number): ElementTypeSet {
  return { transport: (x & 1) !== 0, storage: (x & 2) !== 0, importExport: (x & 4) !== 0, dataTransfer: (x & 8) !== 0 };
}

export function parseDeviceCapabilities(data: Uint8Array): DeviceCapabilities {
  needBytes(data, 14, 'device capabilities mode page');
  const row = (o: number): DeviceCapabilities['moveFrom'] => ({
    transport: typeSet(u8(data, o)),
    storage: typeSet(u8(data, o + 1)),
    importExport: typeSet(u8(data, o + 2)),
    dataTransfer: typeSet(u8(data, o + 3)),
  });
  // Body offsets: page byte N is body byte N-2.
  return { canStore: typeSet(u8(data, 0)), moveFrom: row(2), exchangeWith: row(10) };
}

function setBits(s: ElementTypeSet): number {
  return (s.transport ? 1 : 0) | (s.storage ? 2 : 0) | (s.importExport ? 4 : 0) | (s.dataTransfer ? 8 : 0);
}

/** Builds mode page 1Fh whole (header included). */
export function buildDeviceCapabilities(c: DeviceCapabilities): Uint8Array {
  const b = new Uint8Array(20);
  b[0] = 0x1f;
  b[1] = 0x12;
  b[2] = setBits(c.canStore);
  const rows = [c.moveFrom, c.exchangeWith];
  rows.forEach((r, i) => {
    const o = i === 0 ? 4 : 12;
    b[o] = setBits(r.transport);
    b[o + 1] = setBits(r.storage);
    b[o + 2] = setBits(r.importExport);
    b[o + 3] = setBits(r.dataTransfer);
  });
  return b;
}
