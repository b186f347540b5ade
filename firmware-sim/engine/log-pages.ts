/**
 * Log pages of a unit (SPC-4 7.3). A page is a list of parameters computed on demand; LOG
 * SENSE assembles the page, honouring the parameter pointer and allocation length.
 */

export interface LogParameter {
  readonly code: number;
  /** Control byte (DU, TSD, ETC, TMC, FORMAT AND LINKING); 0x03 = binary list, 0x02 = bounded counter... */
  readonly control: number;
  readonly value: Uint8Array;
}

export interface LogPage {
  readonly page: number;
  readonly subpage: number;
  /** Human name for traces. */
  readonly name: string;
  parameters(): LogParameter[];
  /** LOG SELECT with PCR: reset counters. Optional. */
  reset?(): void;
}

/** Encodes a log page: 4-byte header then parameters in code order. */
export function encodeLogPage(page: number, subpage: number, params: LogParameter[]): Uint8Array {
  const sorted = [...params].sort((a, b) => a.code - b.code);
  const len = sorted.reduce((n, p) => n + 4 + p.value.length, 0);
  const b = new Uint8Array(4 + len);
  b[0] = (page & 0x3f) | (subpage ? 0x40 : 0);
  b[1] = subpage;
  b[2] = len >> 8;
  b[3] = len & 0xff;
  let off = 4;
  for (const p of sorted) {
    b[off] = p.code >> 8;
    b[off + 1] = p.code & 0xff;
    b[off + 2] = p.control;
    b[off + 3] = p.value.length;
    b.set(p.value, off + 4);
    off += 4 + p.value.length;
  }
  return b;
}

/** Big-endian unsigned value of `width` bytes, for counters. */
export function counter(value: number | bigint, width = 8): Uint8Array {
  const b = new Uint8Array(width);
  let v = BigInt(value);
  for (let i = width - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

export class LogPages {
  private readonly pages = new Map<number, LogPage>();
  add(p: LogPage): this {
    this.pages.set((p.page << 8) | p.subpage, p);
    return this;
  }
  get(page: number, subpage = 0): LogPage | undefined {
    return this.pages.get((page << 8) | subpage);
  }
  all(): LogPage[] {
    return [...this.pages.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
  }
}
