/** REPORT LUNS parameter data (SPC-4 6.33) and the LUN addressing methods of SAM-5 4.7. */
import { getU16, getU32, setU32, toHex } from './bytes.js';
import { needBytes, slice, u8 } from './parse-common.js';

export interface ReportedLun {
  /** The eight LUN bytes as hex, exactly as reported. */
  readonly raw: string;
  /** Addressing method (bits 7-6 of byte 0): 0 peripheral, 1 flat, 2 logical unit, 3 extended. */
  readonly addressMethod: number;
  /**
   * The LUN as a number for the single-level peripheral (bus 0) and flat methods, which is
   * what every port ptpvts talks to uses; undefined for other forms.
   */
  readonly lun?: number;
}

export function decodeLun(b: Uint8Array): ReportedLun {
  const method = u8(b, 0) >> 6;
  const restZero = b.subarray(2, 8).every((x) => x === 0);
  let lun: number | undefined;
  if (restZero && method === 0 && (u8(b, 0) & 0x3f) === 0) lun = u8(b, 1);
  else if (restZero && method === 1) lun = getU16(b, 0) & 0x3fff;
  return { raw: toHex(b), addressMethod: method, ...(lun !== undefined ? { lun } : {}) };
}

/** Encodes a single-level LUN: peripheral method below 256, flat method up to 16383. */
export function encodeLun(lun: number): Uint8Array {
  const b = new Uint8Array(8);
  if (lun < 256) b[1] = lun;
  else {
    b[0] = 0x40 | ((lun >> 8) & 0x3f);
    b[1] = lun & 0xff;
  }
  return b;
}

/** The LUN inventory; `listLength` beyond what arrived means the answer was cut. */
export function parseReportLuns(b: Uint8Array): { listLength: number; luns: ReportedLun[]; truncated: boolean } {
  needBytes(b, 8, 'REPORT LUNS data');
  const listLength = getU32(b, 0);
  const end = Math.min(b.length, 8 + listLength);
  const luns: ReportedLun[] = [];
  for (let off = 8; off + 8 <= end; off += 8) luns.push(decodeLun(slice(b, off, off + 8)));
  return { listLength, luns, truncated: b.length < 8 + listLength };
}

/** Builds REPORT LUNS data from single-level LUN numbers. */
export function buildReportLuns(luns: readonly number[]): Uint8Array {
  const b = new Uint8Array(8 + 8 * luns.length);
  setU32(b, 0, 8 * luns.length);
  luns.forEach((l, i) => b.set(encodeLun(l), 8 + 8 * i));
  return b;
}
