/**
 * LOG SENSE pages (SPC-4 7.3): a generic log parameter list parser, the supported pages
 * page (00h), and the TapeAlert page (2Eh, SSC-4 8.2.3) with the flag names of the
 * TapeAlert specification for tape drives.
 */
import { getU16, setU16 } from './bytes.js';
import { ScsiParseError, bit, needBytes, slice, u8 } from './parse-common.js';

export interface LogParameter {
  readonly code: number;
  /** DU: disable update. */
  readonly du: boolean;
  /** TSD: target save disable. */
  readonly tsd: boolean;
  /** ETC: enable threshold comparison. */
  readonly etc: boolean;
  /** TMC: threshold met criteria. */
  readonly tmc: number;
  /** FORMAT AND LINKING: 0 bounded data counter, 1 ASCII list, 2 unbounded counter, 3 binary list. */
  readonly formatAndLinking: number;
  readonly value: Uint8Array;
}

export interface LogPage {
  readonly pageCode: number;
  readonly subpage: number;
  /** DS: disable save. */
  readonly ds: boolean;
  /** SPF: sub-page format. */
  readonly spf: boolean;
  /** PAGE LENGTH as reported (may exceed what arrived). */
  readonly pageLength: number;
  readonly parameters: readonly LogParameter[];
  /** The answer was cut by the allocation length. */
  readonly truncated: boolean;
}

export function parseLogPage(b: Uint8Array, expectPage?: number): LogPage {
  needBytes(b, 4, 'LOG SENSE data');
  const pageCode = u8(b, 0) & 0x3f;
  if (expectPage !== undefined && pageCode !== expectPage) {
    throw new ScsiParseError('LOG SENSE data', `page code 0x${pageCode.toString(16)} where 0x${expectPage.toString(16)} was asked for`);
  }
  const pageLength = getU16(b, 2);
  const end = Math.min(b.length, 4 + pageLength);
  const parameters: LogParameter[] = [];
  let off = 4;
  while (off + 4 <= end) {
    const len = u8(b, off + 3);
    if (off + 4 + len > end) break;
    const ctl = u8(b, off + 2);
    parameters.push({
      code: getU16(b, off),
      du: (ctl & 0x80) !== 0,
      tsd: (ctl & 0x20) !== 0,
      etc: (ctl & 0x10) !== 0,
      tmc: (ctl >> 2) & 3,
      formatAndLinking: ctl & 3,
      value: slice(b, off + 4, off + 4 + len),
    });
    off += 4 + len;
  }
  return { pageCode, subpage: u8(b, 1), ds: bit(b, 0, 7), spf: bit(b, 0, 6), pageLength, parameters, truncated: b.length < 4 + pageLength };
}

/** A parameter value as an unsigned integer (counters are big-endian, any width up to 8). */
export function logParameterValue(p: LogParameter): bigint {
  let v = 0n;
  for (const x of p.value.subarray(0, 8)) v = (v << 8n) | BigInt(x);
  return v;
}

/** Builds a log page from parameters, for fakes and round-trip tests. */
export function buildLogPage(page: Omit<LogPage, 'pageLength' | 'truncated'>): Uint8Array {
  const len = page.parameters.reduce((n, p) => n + 4 + p.value.length, 0);
  const b = new Uint8Array(4 + len);
  b[0] = (page.ds ? 0x80 : 0) | (page.spf ? 0x40 : 0) | (page.pageCode & 0x3f);
  b[1] = page.subpage;
  setU16(b, 2, len);
  let off = 4;
  for (const p of page.parameters) {
    setU16(b, off, p.code);
    b[off + 2] = (p.du ? 0x80 : 0) | (p.tsd ? 0x20 : 0) | (p.etc ? 0x10 : 0) | ((p.tmc & 3) << 2) | (p.formatAndLinking & 3);
    b[off + 3] = p.value.length;
    b.set(p.value, off + 4);
    off += 4 + p.value.length;
  }
  return b;
}

/** Page 00h: supported log pages. Sub-page 0xFF lists (page, subpage) pairs instead. */
export function parseSupportedLogPages(b: Uint8Array): { pageCode: number; subpage: number }[] {
  needBytes(b, 4, 'LOG SENSE supported pages');
  const withSub = u8(b, 1) === 0xff;
  const body = slice(b, 4, 4 + getU16(b, 2));
  const out: { pageCode: number; subpage: number }[] = [];
  if (withSub) {
    for (let i = 0; i + 2 <= body.length; i += 2) out.push({ pageCode: u8(body, i) & 0x3f, subpage: u8(body, i + 1) });
  } else {
    for (const x of body) out.push({ pageCode: x & 0x3f, subpage: 0 });
  }
  return out;
}

export const LogPageCode = {
  supportedPages: 0x00,
  writeErrorCounter: 0x02,
  readErrorCounter: 0x03,
  sequentialAccessDevice: 0x0c,
  temperature: 0x0d,
  deviceStatistics: 0x14,
  tapeAlert: 0x2e,
} as const;

/** TapeAlert flag names (flags 1..64) for tape drives; reserved and obsolete flags omitted. */
export const TapeAlertFlag: Readonly<Record<number, string>> = Object.freeze({
  1: 'Read warning',
  2: 'Write warning',
  3: 'Hard error',
  4: 'Media',
  5: 'Read failure',
  6: 'Write failure',
  7: 'Media life',
  8: 'Not data grade',
  9: 'Write protect',
  10: 'No removal',
  11: 'Cleaning media',
  12: 'Unsupported format',
  13: 'Recoverable mechanical cartridge failure',
  14: 'Unrecoverable mechanical cartridge failure',
  15: 'Memory chip in cartridge failure',
  16: 'Forced eject',
  17: 'Read only format',
  18: 'Tape directory corrupted on load',
  19: 'Nearing media life',
  20: 'Clean now',
  21: 'Clean periodic',
  22: 'Expired cleaning media',
  23: 'Invalid cleaning tape',
  24: 'Retension requested',
  25: 'Dual-port interface error',
  26: 'Cooling fan failure',
  27: 'Power supply failure',
  28: 'Power consumption',
  29: 'Drive maintenance',
  30: 'Hardware A',
  31: 'Hardware B',
  32: 'Interface',
  33: 'Eject media',
  34: 'Microcode update fail',
  35: 'Drive humidity',
  36: 'Drive temperature',
  37: 'Drive voltage',
  38: 'Predictive failure',
  39: 'Diagnostics required',
  49: 'Diminished native capacity',
  50: 'Lost statistics',
  51: 'Tape directory invalid at unload',
  52: 'Tape system area write failure',
  53: 'Tape system area read failure',
  54: 'No start of data',
  55: 'Loading or threading failure',
  56: 'Unrecoverable unload failure',
  57: 'Automation interface failure',
  58: 'Microcode failure',
  59: 'WORM medium - integrity check failed',
  60: 'WORM medium - overwrite attempted',
});

/** Name of a TapeAlert flag, `TapeAlert flag N` when reserved or obsolete. */
export function tapeAlertName(flag: number): string {
  return TapeAlertFlag[flag] ?? `TapeAlert flag ${flag}`;
}

export interface TapeAlert {
  readonly flag: number;
  readonly name: string;
}

/** The TapeAlert flags that are set on a page 2Eh answer, in flag order. */
export function parseTapeAlert(b: Uint8Array): TapeAlert[] {
  const page = parseLogPage(b, LogPageCode.tapeAlert);
  return page.parameters
    .filter((p) => p.code >= 1 && p.code <= 64 && ((p.value[0] ?? 0) & 0x01) !== 0)
    .map((p) => ({ flag: p.code, name: tapeAlertName(p.code) }))
    .sort((a, z) => a.flag - z.flag);
}
