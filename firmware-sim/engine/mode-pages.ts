/**
 * Mode pages of a unit (SPC-4 7.5). Each page keeps current, default and changeable
 * values; MODE SELECT may only change bits the changeable mask allows, and a page can
 * veto values it cannot honour.
 */
import { CheckCondition } from './check.js';
import { Sense, sense } from '../../src/scsi/sense.js';

export interface ModePage {
  readonly page: number;
  /** 0 for a page_0 format page. */
  readonly subpage: number;
  /** Current values, whole page including its code and length bytes. */
  current(): Uint8Array;
  /** Bits MODE SELECT may change (same layout). */
  changeable(): Uint8Array;
  defaults(): Uint8Array;
  /**
   * Applies new values (already checked against the changeable mask). Throws
   * `CheckCondition` (INVALID FIELD IN PARAMETER LIST, with `offset` added to byte
   * pointers by the caller) to refuse a value.
   */
  select(values: Uint8Array): void;
  /**
   * A page whose length varies (the medium partition page holds as many size descriptors
   * as a host sends) says which lengths, header included, it takes besides its current
   * one. Bytes past the current page then compare with zero under a zero mask.
   */
  acceptsLength?(length: number): boolean;
}

/** A page held as bytes, with an optional hook that sees (and may refuse) new values. */
export class StoredModePage implements ModePage {
  private values: Uint8Array;
  private readonly mask: Uint8Array;
  private readonly initial: Uint8Array;

  constructor(
    readonly page: number,
    values: Uint8Array,
    mask: Uint8Array,
    private readonly onSelect?: (values: Uint8Array) => void,
    readonly subpage = 0,
  ) {
    if (values.length !== mask.length) throw new Error(`mode page 0x${page.toString(16)}: mask and values differ in length`);
    this.values = Uint8Array.from(values);
    this.mask = Uint8Array.from(mask);
    this.initial = Uint8Array.from(values);
  }

  current(): Uint8Array {
    return this.values;
  }
  changeable(): Uint8Array {
    return this.mask;
  }
  defaults(): Uint8Array {
    return this.initial;
  }
  select(values: Uint8Array): void {
    this.onSelect?.(values);
    this.values = Uint8Array.from(values);
  }
  /** Lets the device model update a value the host reads (e.g. a counter). */
  set(offset: number, byte: number): void {
    this.values[offset] = byte;
  }
}

/** Header byte 0 for a page: page code, plus SPF for subpage format. */
export function modePageHeader(page: number, subpage: number, length: number): Uint8Array {
  if (subpage === 0) {
    const b = new Uint8Array(2 + length);
    b[0] = page & 0x3f;
    b[1] = length;
    return b;
  }
  const b = new Uint8Array(4 + length);
  b[0] = 0x40 | (page & 0x3f);
  b[1] = subpage;
  b[2] = length >> 8;
  b[3] = length & 0xff;
  return b;
}

export class ModePages {
  private readonly pages = new Map<number, ModePage>();

  add(p: ModePage): this {
    this.pages.set((p.page << 8) | p.subpage, p);
    return this;
  }
  get(page: number, subpage = 0): ModePage | undefined {
    return this.pages.get((page << 8) | subpage);
  }
  /** In page order, as MODE SENSE with page 0x3F returns them. */
  all(): ModePage[] {
    return [...this.pages.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
  }

  /**
   * Checks and applies a MODE SELECT page list (the parameter data after the header and
   * block descriptors). `base` is the offset of `list` in the parameter data, for field
   * pointers. Nothing is applied unless every page is valid.
   */
  selectAll(list: Uint8Array, base: number): void {
    const todo: Array<[ModePage, Uint8Array, number]> = [];
    let off = 0;
    while (off < list.length) {
      const b0 = list[off] ?? 0;
      const spf = (b0 & 0x40) !== 0;
      const hdr = spf ? 4 : 2;
      if (off + hdr > list.length) throw new CheckCondition(sense(Sense.PARAMETER_LIST_LENGTH_ERROR));
      const pageCode = b0 & 0x3f;
      const sub = spf ? (list[off + 1] ?? 0) : 0;
      const len = spf ? ((list[off + 2] ?? 0) << 8) | (list[off + 3] ?? 0) : (list[off + 1] ?? 0);
      const page = this.get(pageCode, sub);
      if (!page) throw new CheckCondition(sense(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: base + off, bit: 5 } }));
      if (off + hdr + len > list.length) throw new CheckCondition(sense(Sense.PARAMETER_LIST_LENGTH_ERROR));
      const cur = page.current();
      if (hdr + len !== cur.length && !(page.acceptsLength?.(hdr + len) ?? false)) {
        throw new CheckCondition(sense(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: base + off + (spf ? 2 : 1), bit: 7 } }));
      }
      const next = Uint8Array.from(list.subarray(off, off + hdr + len));
      next[0] = cur[0] ?? 0; // PS bit is reserved in MODE SELECT; keep the page code byte as stored
      const mask = page.changeable();
      for (let i = hdr; i < next.length; i++) {
        const diff = ((next[i] ?? 0) ^ (cur[i] ?? 0)) & ~(mask[i] ?? 0) & 0xff;
        if (diff) {
          throw new CheckCondition(sense(Sense.INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byte: base + off + i, bit: 31 - Math.clz32(diff) } }));
        }
      }
      todo.push([page, next, base + off]);
      off += hdr + len;
    }
    for (const [page, next, at] of todo) {
      try {
        page.select(next);
      } catch (e) {
        if (e instanceof CheckCondition && e.sense.fieldPointer && !e.sense.fieldPointer.inCdb) {
          throw new CheckCondition({ ...e.sense, fieldPointer: { ...e.sense.fieldPointer, byte: e.sense.fieldPointer.byte + at } });
        }
        throw e;
      }
    }
  }
}
