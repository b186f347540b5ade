/**
 * Mode parameter lists (SPC-4 7.5): the MODE SENSE(6)/(10) answer and the MODE SELECT
 * parameter list share one layout — header, block descriptors, pages — so the parser and
 * the builder live together.
 */
import { getU16, getU24, getU32, getU64, setU16, setU24, setU32, setU64 } from './bytes.js';
import { ScsiParseError, bit, needBytes, slice, u8 } from './parse-common.js';

/** Mode block descriptor. Short (8 bytes) carries a density code; long LBA (16) does not. */
export interface BlockDescriptor {
  /** Density code (short form only; 0 in the long form). */
  readonly densityCode: number;
  readonly numberOfBlocks: bigint;
  /** Block length; for a tape drive 0 means variable-block mode. */
  readonly blockLength: number;
}

/** One mode page, body kept raw (page-specific decoders take it from here). */
export interface ModePage {
  readonly pageCode: number;
  /** Present for sub-page format pages (SPF=1). */
  readonly subpage?: number;
  /** PS: the page can be saved. */
  readonly savable: boolean;
  /** Bytes after the page header (2 bytes, or 4 for sub-page format). */
  readonly data: Uint8Array;
  /** The whole page including its header, ready to be sent back by MODE SELECT. */
  readonly raw: Uint8Array;
}

export interface ModeParameters {
  readonly form: 6 | 10;
  /** MODE DATA LENGTH as reported: the bytes available, which may exceed what arrived. */
  readonly modeDataLength: number;
  readonly mediumType: number;
  /**
   * Device-specific parameter. For tape: bit 7 WP (write protected), bits 6-4 buffered
   * mode, bits 3-0 speed. For a changer it is reserved.
   */
  readonly deviceSpecific: number;
  readonly writeProtected: boolean;
  readonly bufferedMode: number;
  readonly speed: number;
  readonly longLba: boolean;
  readonly blockDescriptors: readonly BlockDescriptor[];
  readonly pages: readonly ModePage[];
  /** True when the data was cut by the allocation length: re-read with a larger one. */
  readonly truncated: boolean;
}

/** Parses a MODE SENSE(6) or MODE SENSE(10) answer. */
export function parseModeSense(b: Uint8Array, form: 6 | 10): ModeParameters {
  const what = `MODE SENSE(${form}) data`;
  const headerLen = form === 6 ? 4 : 8;
  needBytes(b, headerLen, what);
  const modeDataLength = form === 6 ? u8(b, 0) : getU16(b, 0);
  const total = modeDataLength + (form === 6 ? 1 : 2);
  const end = Math.min(b.length, total);
  const deviceSpecific = form === 6 ? u8(b, 2) : u8(b, 3);
  const longLba = form === 10 && bit(b, 4, 0);
  const bdLen = form === 6 ? u8(b, 3) : getU16(b, 6);
  const descLen = longLba ? 16 : 8;
  const blockDescriptors: BlockDescriptor[] = [];
  const bdEnd = Math.min(end, headerLen + bdLen);
  for (let off = headerLen; off + descLen <= bdEnd; off += descLen) {
    blockDescriptors.push(
      longLba
        ? { densityCode: 0, numberOfBlocks: getU64(b, off), blockLength: getU32(b, off + 12) }
        : { densityCode: u8(b, off), numberOfBlocks: BigInt(getU24(b, off + 1)), blockLength: getU24(b, off + 5) },
    );
  }
  const pages: ModePage[] = [];
  let off = headerLen + bdLen;
  while (off + 2 <= end) {
    const spf = bit(b, off, 6);
    const hlen = spf ? 4 : 2;
    if (off + hlen > end) break;
    const plen = spf ? getU16(b, off + 2) : u8(b, off + 1);
    if (off + hlen + plen > end) break;
    pages.push({
      pageCode: u8(b, off) & 0x3f,
      ...(spf ? { subpage: u8(b, off + 1) } : {}),
      savable: bit(b, off, 7),
      data: slice(b, off + hlen, off + hlen + plen),
      raw: slice(b, off, off + hlen + plen),
    });
    off += hlen + plen;
  }
  return {
    form,
    modeDataLength,
    mediumType: u8(b, form === 6 ? 1 : 2),
    deviceSpecific,
    writeProtected: (deviceSpecific & 0x80) !== 0,
    bufferedMode: (deviceSpecific >> 4) & 7,
    speed: deviceSpecific & 0x0f,
    longLba,
    blockDescriptors,
    pages,
    truncated: b.length < total,
  };
}

/** Finds a page by code (and sub-page, 0 meaning the page_0 format). */
export function findModePage(m: ModeParameters, pageCode: number, subpage = 0): ModePage | undefined {
  return m.pages.find((p) => p.pageCode === pageCode && (p.subpage ?? 0) === subpage);
}

/** What goes into a MODE SELECT parameter list. */
export interface ModeSelectParameters {
  readonly mediumType?: number;
  /**
   * Device-specific parameter. For tape the WP bit is ignored by MODE SELECT; buffered
   * mode and speed are taken from here.
   */
  readonly deviceSpecific?: number;
  readonly blockDescriptors?: readonly BlockDescriptor[];
  readonly longLba?: boolean;
  /**
   * Pages to send, each as its full bytes (header included). PS is cleared on the way out:
   * SPC-4 makes it reserved in MODE SELECT.
   */
  readonly pages?: readonly Uint8Array[];
}

/** Builds a MODE SELECT(6) or (10) parameter list. MODE DATA LENGTH is zero, as required. */
export function buildModeSelect(p: ModeSelectParameters, form: 6 | 10): Uint8Array {
  const headerLen = form === 6 ? 4 : 8;
  const longLba = form === 10 && (p.longLba ?? false);
  if (form === 6 && p.longLba) throw new ScsiParseError('MODE SELECT(6) parameter list', 'long LBA block descriptors need MODE SELECT(10)');
  const descLen = longLba ? 16 : 8;
  const bds = p.blockDescriptors ?? [];
  const pages = p.pages ?? [];
  const bdLen = bds.length * descLen;
  const total = headerLen + bdLen + pages.reduce((n, x) => n + x.length, 0);
  if (form === 6 && total > 255) throw new ScsiParseError('MODE SELECT(6) parameter list', `${total} bytes exceed 255`);
  const b = new Uint8Array(total);
  if (form === 6) {
    b[1] = p.mediumType ?? 0;
    b[2] = (p.deviceSpecific ?? 0) & 0x7f;
    b[3] = bdLen;
  } else {
    b[2] = p.mediumType ?? 0;
    b[3] = (p.deviceSpecific ?? 0) & 0x7f;
    b[4] = longLba ? 0x01 : 0;
    setU16(b, 6, bdLen);
  }
  let off = headerLen;
  for (const d of bds) {
    if (longLba) {
      setU64(b, off, d.numberOfBlocks);
      setU32(b, off + 12, d.blockLength);
    } else {
      b[off] = d.densityCode;
      setU24(b, off + 1, Number(d.numberOfBlocks & 0xffffffn));
      setU24(b, off + 5, d.blockLength);
    }
    off += descLen;
  }
  for (const page of pages) {
    b.set(page, off);
    b[off] = (b[off] ?? 0) & 0x7f;
    off += page.length;
  }
  return b;
}
