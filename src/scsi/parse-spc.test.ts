import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildReportLuns, decodeLun, parseReportLuns } from './parse-report-luns.js';
import { buildAllSupportedCommands, parseAllSupportedCommands, parseOneSupportedCommand } from './parse-supported-opcodes.js';

describe('REPORT LUNS', () => {
  it('decodes peripheral and flat addressed LUNs', () => {
    const b = Uint8Array.from([0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
    const r = parseReportLuns(b);
    expect(r.luns.map((l) => l.lun)).toEqual([0, 1, 0x12c]);
    expect(r.luns[2]?.addressMethod).toBe(1);
    expect(r.truncated).toBe(false);
  });
  it('leaves multi-level LUNs undecoded', () => {
    expect(decodeLun(Uint8Array.from([0, 1, 0, 2, 0, 0, 0, 0])).lun).toBeUndefined();
  });
  it('reports truncation and round-trips', () => {
    expect(parseReportLuns(Uint8Array.from([0, 0, 0, 16, 0, 0, 0, 0])).truncated).toBe(true);
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 0x3fff }), { maxLength: 10 }), (luns) => {
        expect(parseReportLuns(buildReportLuns(luns)).luns.map((l) => l.lun)).toEqual(luns);
      }),
    );
  });
});

describe('REPORT SUPPORTED OPERATION CODES', () => {
  it('all-commands format without timeouts', () => {
    const b = Uint8Array.from([0, 0, 0, 16, 0x00, 0, 0, 0, 0, 0x00, 0, 6, 0xa3, 0, 0x00, 0x0c, 0, 0x01, 0, 12]);
    expect(parseAllSupportedCommands(b).commands).toEqual([
      { opcode: 0x00, cdbLength: 6 },
      { opcode: 0xa3, serviceAction: 0x0c, cdbLength: 12 },
    ]);
  });
  it('all-commands format with timeouts descriptors', () => {
    const b = Uint8Array.from([0, 0, 0, 20, 0x01, 0, 0, 0, 0, 0x02, 0, 6, 0, 0x0a, 0, 0, 0, 0, 0, 60, 0, 0, 0x0e, 0x10]);
    expect(parseAllSupportedCommands(b).commands).toEqual([{ opcode: 0x01, cdbLength: 6, timeouts: { commandSpecific: 0, nominalSeconds: 60, recommendedSeconds: 3600 } }]);
  });
  it('one-command format', () => {
    const b = Uint8Array.from([0, 0x83, 0, 6, 0x08, 0x03, 0xff, 0xff, 0xff, 0x07, 0, 0x0a, 0, 0, 0, 0, 0, 10, 0, 0, 0, 100]);
    const r = parseOneSupportedCommand(b);
    expect(r).toMatchObject({ support: 3, supported: true, timeouts: { nominalSeconds: 10, recommendedSeconds: 100 } });
    expect([...r.cdbUsage]).toEqual([0x08, 0x03, 0xff, 0xff, 0xff, 0x07]);
    expect(parseOneSupportedCommand(Uint8Array.from([0, 0x01, 0, 0])).supported).toBe(false);
  });
  it('round-trips', () => {
    const cmd = fc.record({ opcode: fc.nat({ max: 255 }), serviceAction: fc.option(fc.nat({ max: 0xffff }), { nil: undefined }), cdbLength: fc.constantFrom(6, 10, 12, 16) });
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 8 }), fc.boolean(), (cmds, rctd) => {
        const clean = cmds.map((c) => (c.serviceAction === undefined ? { opcode: c.opcode, cdbLength: c.cdbLength } : c));
        const got = parseAllSupportedCommands(buildAllSupportedCommands(clean, rctd)).commands;
        expect(got).toEqual(clean.map((c) => (rctd ? { ...c, timeouts: { commandSpecific: 0, nominalSeconds: 0, recommendedSeconds: 0 } } : c)));
      }),
    );
  });
});
