/**
 * REPORT SUPPORTED OPERATION CODES parameter data (SPC-4 6.35): the all-commands format
 * (with or without command timeouts descriptors) and the one-command format.
 */
import { getU16, getU32, setU16, setU32 } from './bytes.js';
import { ScsiParseError, bit, needBytes, slice, u8 } from './parse-common.js';

/** Command timeouts descriptor (SPC-4 6.35.4), seconds; 0 means not specified. */
export interface CommandTimeouts {
  readonly commandSpecific: number;
  readonly nominalSeconds: number;
  readonly recommendedSeconds: number;
}

export interface SupportedCommand {
  readonly opcode: number;
  /** Present when SERVACTV is set. */
  readonly serviceAction?: number;
  readonly cdbLength: number;
  readonly timeouts?: CommandTimeouts;
}

function parseTimeouts(b: Uint8Array, off: number, what: string): CommandTimeouts {
  const len = getU16(b, off);
  if (len < 0x0a) throw new ScsiParseError(what, `command timeouts descriptor length ${len} is below 10`);
  return { commandSpecific: u8(b, off + 3), nominalSeconds: getU32(b, off + 4), recommendedSeconds: getU32(b, off + 8) };
}

/** All-commands format (REPORTING OPTIONS 000b). */
export function parseAllSupportedCommands(b: Uint8Array): { commands: SupportedCommand[]; truncated: boolean } {
  const what = 'REPORT SUPPORTED OPERATION CODES data';
  needBytes(b, 4, what);
  const total = 4 + getU32(b, 0);
  const end = Math.min(b.length, total);
  const commands: SupportedCommand[] = [];
  let off = 4;
  while (off + 8 <= end) {
    const ctdp = bit(b, off + 5, 1);
    const size = 8 + (ctdp ? 12 : 0);
    if (off + size > end) break;
    commands.push({
      opcode: u8(b, off),
      ...(bit(b, off + 5, 0) ? { serviceAction: getU16(b, off + 2) } : {}),
      cdbLength: getU16(b, off + 6),
      ...(ctdp ? { timeouts: parseTimeouts(b, off + 8, what) } : {}),
    });
    off += size;
  }
  return { commands, truncated: b.length < total };
}

/** SUPPORT field of the one-command format (SPC-4 table 307). */
export const CommandSupport = {
  notAvailable: 0,
  notSupported: 1,
  supportedStandard: 3,
  supportedVendor: 5,
} as const;

export interface OneCommandSupport {
  readonly support: number;
  /** True for SUPPORT 011b and 101b. */
  readonly supported: boolean;
  /** CDB USAGE DATA: opcode first, then a mask of the bits the device looks at. */
  readonly cdbUsage: Uint8Array;
  readonly timeouts?: CommandTimeouts;
}

/** One-command format (REPORTING OPTIONS 001b, 010b or 011b). */
export function parseOneSupportedCommand(b: Uint8Array): OneCommandSupport {
  const what = 'REPORT SUPPORTED OPERATION CODES one-command data';
  needBytes(b, 4, what);
  const support = u8(b, 1) & 7;
  const ctdp = bit(b, 1, 7);
  const size = getU16(b, 2);
  return {
    support,
    supported: support === CommandSupport.supportedStandard || support === CommandSupport.supportedVendor,
    cdbUsage: slice(b, 4, 4 + size),
    ...(ctdp && b.length >= 4 + size + 12 ? { timeouts: parseTimeouts(b, 4 + size, what) } : {}),
  };
}

/** Builds all-commands format data; timeouts descriptors go out when `rctd` is set. */
export function buildAllSupportedCommands(cmds: readonly SupportedCommand[], rctd: boolean): Uint8Array {
  const size = 8 + (rctd ? 12 : 0);
  const b = new Uint8Array(4 + cmds.length * size);
  setU32(b, 0, cmds.length * size);
  cmds.forEach((c, i) => {
    const o = 4 + i * size;
    b[o] = c.opcode;
    if (c.serviceAction !== undefined) setU16(b, o + 2, c.serviceAction);
    b[o + 5] = (rctd ? 0x02 : 0) | (c.serviceAction !== undefined ? 0x01 : 0);
    setU16(b, o + 6, c.cdbLength);
    if (rctd) {
      setU16(b, o + 8, 0x0a);
      b[o + 11] = c.timeouts?.commandSpecific ?? 0;
      setU32(b, o + 12, c.timeouts?.nominalSeconds ?? 0);
      setU32(b, o + 16, c.timeouts?.recommendedSeconds ?? 0);
    }
  });
  return b;
}
