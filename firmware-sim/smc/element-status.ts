/**
 * READ ELEMENT STATUS data (SMC-3 6.11): the 8-byte element status header, then one
 * element status page per run of elements of one type in ascending address order, each
 * page a header and fixed-length element descriptors.
 *
 * Descriptor layout used for every type: bytes 0..11 (address, flags, ASC/ASCQ, the data
 * transfer element's LUN, SVALID/medium type, source address), the 36-byte primary volume
 * tag when VOLTAG is set, the 36-byte alternate volume tag when VOLTAG is set and some
 * cartridge in the library has an alternate tag (the page's AVOLTAG bit says so), then
 * the identification descriptor header (code set, identifier
 * type, length) and, for data transfer elements with DVCID, the identifier itself:
 * vendor (8) + product (16) + serial, ASCII, identifier type 1 (T10 vendor ID based).
 */
import { setAscii, setU16, setU24 } from '../../src/scsi/bytes.js';
import { Sense } from '../../src/scsi/sense.js';
import { fail } from '../engine/check.js';
import { smcMediumTypeCode } from '../library/media-types.js';
import type { ChangerModel } from './changer.js';
import { ElementKind, type ElementInfo } from './elements.js';

export interface ElementStatusRequest {
  /** 0 for all types, else an {@link ElementKind}. */
  readonly elementType: number;
  readonly volumeTags: boolean;
  readonly startingAddress: number;
  readonly count: number;
  readonly deviceIds: boolean;
  /**
   * Report alternate volume tags (AVOLTAG); only with `volumeTags`. Default: while any
   * cartridge in the library has one ({@link ChangerModel.alternateTagsInUse}).
   */
  readonly alternateTags?: boolean;
}

const HEADER = 8;
const PAGE_HEADER = 8;
const BASE = 12;
const VOLTAG = 36;
const ID_HEADER = 4;

/** The elements a request selects, in ascending address order. */
export function selectElements(model: ChangerModel, req: ElementStatusRequest): ElementInfo[] {
  const pool = req.elementType === 0 ? model.elements.all() : model.elements.ofKind(req.elementType as ElementKind);
  const from = pool.filter((e) => e.address >= req.startingAddress);
  // An address past every element of the type is an error; a type with no elements at all
  // (a library without an I/O station) simply has nothing to report.
  if (pool.length > 0 && from.length === 0) fail(Sense.INVALID_ELEMENT_ADDRESS, { fieldPointer: { inCdb: true, byte: 2, bit: 7 } });
  return from.slice(0, req.count);
}

function identifierLength(model: ChangerModel, drives: readonly ElementInfo[]): number {
  const width = Math.max(model.personality.capabilities.dvcidSerialWidth, ...drives.map((e) => model.drive(e.address)?.bay.serial.length ?? 0));
  return 24 + width;
}

function withAlternate(model: ChangerModel, req: ElementStatusRequest): boolean {
  return req.volumeTags && (req.alternateTags ?? model.alternateTagsInUse());
}

function descriptorLength(kind: ElementKind, req: ElementStatusRequest, alternate: boolean, idLen: number): number {
  return BASE + (req.volumeTags ? VOLTAG : 0) + (alternate ? VOLTAG : 0) + ID_HEADER + (kind === ElementKind.dataTransfer && req.deviceIds ? idLen : 0);
}

function setTag(b: Uint8Array, off: number, tag: { identifier: string; sequence: number } | undefined): void {
  if (!tag) return;
  setAscii(b, off, 32, tag.identifier);
  setU16(b, off + 34, tag.sequence);
}

function encodeDescriptor(model: ChangerModel, e: ElementInfo, req: ElementStatusRequest, alternate: boolean, length: number, idLen: number): Uint8Array {
  const b = new Uint8Array(length);
  const o = model.occupant(e.address);
  setU16(b, 0, e.address);
  const full = o ? 0x01 : 0;
  const access = model.accessible(e) ? 0x08 : 0;
  switch (e.kind) {
    case ElementKind.transport: {
      // The gripper holds a cartridge at rest only after a failed exchange.
      const except = o ? 0x04 : 0;
      b[2] = except | full;
      if (o) {
        b[4] = Sense.MECHANICAL_POSITIONING_ERROR.asc;
        b[5] = Sense.MECHANICAL_POSITIONING_ERROR.ascq;
      }
      break;
    }
    case ElementKind.storage:
      b[2] = access | full;
      break;
    case ElementKind.importExport: {
      const inEnab = 0x20;
      const exEnab = 0x10;
      const impExp = o?.imported ? 0x02 : 0;
      b[2] = inEnab | exEnab | access | impExp | full;
      break;
    }
    case ElementKind.dataTransfer: {
      b[2] = access | full;
      const lun = model.drive(e.address)?.lun;
      if (lun !== undefined && lun >= 0 && lun <= 7) b[6] = 0x10 | lun;
      break;
    }
  }
  if (o) {
    b[9] = (o.source !== undefined ? 0x80 : 0) | smcMediumTypeCode(o.cartridge.mediaType);
    if (o.source !== undefined) setU16(b, 10, o.source);
  }
  let off = BASE;
  const tags = model.volumeTags(e.address);
  if (req.volumeTags) {
    if (o) setTag(b, off, tags?.primary);
    off += VOLTAG;
  }
  if (alternate) {
    // An element without an alternate tag reports the field as zeroes.
    setTag(b, off, tags?.alternate);
    off += VOLTAG;
  }
  if (e.kind === ElementKind.dataTransfer && req.deviceIds) {
    const bay = model.drive(e.address)?.bay;
    b[off] = 0x02;
    b[off + 1] = 0x01;
    b[off + 3] = idLen;
    const id = new Uint8Array(idLen);
    setAscii(id, 0, 24, (bay?.vendorProduct ?? '').padEnd(24, ' ').slice(0, 24));
    setAscii(id, 24, idLen - 24, bay?.serial ?? '');
    b.set(id, off + ID_HEADER);
  }
  return b;
}

/**
 * The complete READ ELEMENT STATUS data for a request, before allocation-length
 * truncation: the header's counts always describe everything selected. Throws
 * `CheckCondition` (INVALID ELEMENT ADDRESS) for a starting address past every element of
 * the requested type.
 */
export function encodeElementStatus(model: ChangerModel, req: ElementStatusRequest): Uint8Array {
  return encodeElementPages(model, selectElements(model, req), req);
}

/**
 * Element status pages for `selected` (ascending addresses) behind the 8-byte header of
 * READ ELEMENT STATUS: first address, count, byte count of the pages. REQUEST VOLUME
 * ELEMENT ADDRESS uses the same layout and puts its send action code in byte 4.
 */
export function encodeElementPages(model: ChangerModel, selected: readonly ElementInfo[], req: ElementStatusRequest): Uint8Array {
  const alternate = withAlternate(model, req);
  const idLen = identifierLength(model, model.elements.ofKind(ElementKind.dataTransfer));
  const pages: Uint8Array[] = [];
  let i = 0;
  while (i < selected.length) {
    const kind = selected[i]?.kind ?? ElementKind.storage;
    let j = i;
    while (j < selected.length && selected[j]?.kind === kind) j++;
    const run = selected.slice(i, j);
    const len = descriptorLength(kind, req, alternate, idLen);
    const page = new Uint8Array(PAGE_HEADER + len * run.length);
    page[0] = kind;
    page[1] = (req.volumeTags ? 0x80 : 0) | (alternate ? 0x40 : 0);
    setU16(page, 2, len);
    setU24(page, 5, len * run.length);
    run.forEach((e, k) => page.set(encodeDescriptor(model, e, req, alternate, len, idLen), PAGE_HEADER + k * len));
    pages.push(page);
    i = j;
  }
  const body = pages.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(HEADER + body);
  setU16(out, 0, selected[0]?.address ?? 0);
  setU16(out, 2, selected.length);
  setU24(out, 5, body);
  let off = HEADER;
  for (const p of pages) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
