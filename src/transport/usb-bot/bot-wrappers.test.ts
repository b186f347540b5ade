import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BotFramingError, CBW_LENGTH, CSW_LENGTH, CswStatus, decodeCbw, decodeCsw, encodeCbw, encodeCsw } from './bot-wrappers.js';

const cbwArb = fc.record({
  tag: fc.nat({ max: 0xffffffff }),
  dataTransferLength: fc.nat({ max: 0xffffffff }),
  dataIn: fc.boolean(),
  lun: fc.integer({ min: 0, max: 15 }),
  cdb: fc.uint8Array({ minLength: 1, maxLength: 16 }),
});

describe('BOT wrappers', () => {
  it('lays out a CBW as BOT 5.1 says, little-endian', () => {
    const b = encodeCbw({ tag: 0x11223344, dataTransferLength: 0x24, dataIn: true, lun: 2, cdb: Uint8Array.of(0x12, 0, 0, 0, 0x24, 0) });
    expect(b).toHaveLength(CBW_LENGTH);
    expect([...b.subarray(0, 15)]).toEqual([0x55, 0x53, 0x42, 0x43, 0x44, 0x33, 0x22, 0x11, 0x24, 0, 0, 0, 0x80, 2, 6]);
    expect(b[15]).toBe(0x12);
  });

  it('lays out a CSW and checks it the way a host must', () => {
    const b = encodeCsw({ tag: 5, residue: 3, status: CswStatus.failed });
    expect([...b]).toEqual([0x55, 0x53, 0x42, 0x53, 5, 0, 0, 0, 3, 0, 0, 0, 1]);
    expect(decodeCsw(b, { tag: 5, dataTransferLength: 3 })).toEqual({ tag: 5, residue: 3, status: 1 });
    expect(() => decodeCsw(b, { tag: 6, dataTransferLength: 3 })).toThrow(/tag/u);
    expect(() => decodeCsw(b, { tag: 5, dataTransferLength: 2 })).toThrow(/residue/u);
    expect(() => decodeCsw(b.subarray(0, 12), { tag: 5, dataTransferLength: 3 })).toThrow(/12 bytes/u);
    const phase = encodeCsw({ tag: 5, residue: 99, status: CswStatus.phaseError });
    expect(decodeCsw(phase, { tag: 5, dataTransferLength: 0 }).status).toBe(CswStatus.phaseError);
    expect(() => decodeCsw(encodeCsw({ tag: 5, residue: 0, status: 3 }), { tag: 5, dataTransferLength: 0 })).toThrow(/reserved/u);
  });

  it('refuses to build wrappers that cannot exist', () => {
    expect(() => encodeCbw({ tag: 1, dataTransferLength: 0, dataIn: false, lun: 16, cdb: Uint8Array.of(0) })).toThrow(BotFramingError);
    expect(() => encodeCbw({ tag: 1, dataTransferLength: 0, dataIn: false, lun: 0, cdb: new Uint8Array(17) })).toThrow(BotFramingError);
    expect(() => encodeCbw({ tag: -1, dataTransferLength: 0, dataIn: false, lun: 0, cdb: Uint8Array.of(0) })).toThrow(BotFramingError);
  });

  it('round-trips any CBW and CSW', () => {
    fc.assert(
      fc.property(cbwArb, (w) => {
        expect(decodeCbw(encodeCbw(w))).toEqual(w);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 1 }), (tag, residue, status) => {
        expect(decodeCsw(encodeCsw({ tag, residue, status }), { tag, dataTransferLength: residue })).toEqual({ tag, residue, status });
      }),
      { numRuns: 2000 },
    );
  });

  it('decoding arbitrary bytes either succeeds or throws BotFramingError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (b, tag, len) => {
        for (const f of [() => decodeCbw(b), () => decodeCsw(b, { tag, dataTransferLength: len })]) {
          try {
            f();
          } catch (e) {
            expect(e).toBeInstanceOf(BotFramingError);
          }
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('accepts only wrappers of the exact size with the right signature', () => {
    fc.assert(
      fc.property(cbwArb, fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 255 }), (w, byte, flip) => {
        const b = encodeCbw(w);
        const bad = Uint8Array.from(b);
        bad[byte % 4] = (bad[byte % 4] ?? 0) ^ flip;
        expect(() => decodeCbw(bad)).toThrow(BotFramingError);
        expect(() => decodeCbw(b.subarray(0, byte))).toThrow(BotFramingError);
        const csw = encodeCsw({ tag: w.tag, residue: 0, status: 0 });
        expect(() => decodeCsw(csw.subarray(0, Math.min(byte, CSW_LENGTH - 1)), { tag: w.tag, dataTransferLength: 0 })).toThrow(BotFramingError);
      }),
      { numRuns: 2000 },
    );
  });
});
