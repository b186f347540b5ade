import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  buildBlockLimits,
  buildDensitySupport,
  buildLongPosition,
  buildShortPosition,
  parseBlockLimits,
  parseDensitySupport,
  parseLongPosition,
  parseMediumTypeSupport,
  parseShortPosition,
} from './parse-tape.js';
import type { DensityDescriptor } from './parse-tape.js';

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

describe('READ BLOCK LIMITS', () => {
  it('decodes granularity, max and min', () => {
    expect(parseBlockLimits(Uint8Array.from([0x02, 0x80, 0x00, 0x00, 0x00, 0x01]))).toEqual({ granularity: 2, maxBlockLength: 0x800000, minBlockLength: 1 });
  });
  it('round-trips', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 0xffffff }), fc.integer({ min: 0, max: 0xffff }), (g, max, min) => {
        const l = { granularity: g, maxBlockLength: max, minBlockLength: min };
        expect(parseBlockLimits(buildBlockLimits(l))).toEqual(l);
      }),
    );
  });
});

describe('READ POSITION', () => {
  it('short form as a drive sends it at BOP of partition 1', () => {
    const b = new Uint8Array(20);
    b[0] = 0x80; // BOP
    b[1] = 1;
    b[7] = 0; // block 0
    b[11] = 0;
    b[15] = 3; // 3 objects buffered
    b[16] = 0; b[17] = 0; b[18] = 0x30; b[19] = 0x00;
    expect(parseShortPosition(b)).toMatchObject({ bop: true, eop: false, partition: 1, block: 0, objectsInBuffer: 3, bytesInBuffer: 0x3000 });
  });

  it('short form flags', () => {
    const b = new Uint8Array(20);
    b[0] = 0x40 | 0x20 | 0x10 | 0x04 | 0x02 | 0x01;
    b.set([0x12, 0x34, 0x56, 0x78], 4);
    const p = parseShortPosition(b);
    expect(p).toMatchObject({ eop: true, locu: true, bycu: true, lolu: true, perr: true, bpew: true, block: 0x12345678 });
  });

  it('long form carries 64-bit block and file number', () => {
    const b = new Uint8Array(32);
    b[0] = 0x01;
    b[7] = 2; // partition 2
    b.set([0, 0, 0, 1, 0, 0, 0, 5], 8);
    b.set([0, 0, 0, 0, 0, 0, 0, 9], 16);
    expect(parseLongPosition(b)).toMatchObject({ form: 'long', bpew: true, partition: 2, block: 0x100000005n, fileNumber: 9n });
  });

  it('rejects short answers', () => {
    expect(() => parseShortPosition(new Uint8Array(19))).toThrow(/need at least 20/);
    expect(() => parseLongPosition(new Uint8Array(20))).toThrow(/need at least 32/);
  });

  it('round-trips both forms', () => {
    const bool = fc.boolean();
    fc.assert(
      fc.property(
        fc.record({ bop: bool, eop: bool, locu: bool, bycu: bool, lolu: bool, perr: bool, bpew: bool, partition: fc.integer({ min: 0, max: 255 }), block: fc.nat({ max: 0xffffffff }), lastBlock: fc.nat({ max: 0xffffffff }), objectsInBuffer: fc.nat({ max: 0xffffff }), bytesInBuffer: fc.nat({ max: 0xffffffff }) }),
        (p) => {
          expect(parseShortPosition(buildShortPosition(p))).toEqual({ form: 'short', ...p });
        },
      ),
    );
    fc.assert(
      fc.property(
        fc.record({ bop: bool, eop: bool, mpu: bool, lonu: bool, bpew: bool, partition: fc.nat({ max: 0xffffffff }), block: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fileNumber: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
        (p) => {
          expect(parseLongPosition(buildLongPosition(p))).toEqual({ form: 'long', ...p });
        },
      ),
    );
  });
});

describe('REPORT DENSITY SUPPORT', () => {
  it('decodes a hand-built LTO-9 density descriptor', () => {
    const d = new Uint8Array(52);
    d[0] = 0x60;
    d[1] = 0x60;
    d[2] = 0xa1; // WRTOK, DEFLT, DLV
    d[3] = 0x00; d[4] = 0x31;
    d.set([0x00, 0x54, 0x4a], 5); // bits per mm
    d.set([0x00, 0x7f], 8); // 12.7 mm
    d.set([0x22, 0x00], 10);
    d.set([0x01, 0x0d, 0x05, 0x40], 12); // 17 630 528 MB
    d.set(ascii('LTO-CVE '), 16);
    d.set(ascii('U-832   '), 24);
    d.set(ascii('Ultrium 9/16T       '), 32);
    const b = Uint8Array.from([0x00, 54, 0, 0, ...d]);
    const [x] = parseDensitySupport(b);
    expect(x).toMatchObject({ primaryDensityCode: 0x60, writeOk: true, dup: false, defaultDensity: true, dlv: true, bitsPerMm: 0x544a, mediaWidth: 127, tracks: 0x2200, capacityMb: 0x010d0540, assigningOrganization: 'LTO-CVE', densityName: 'U-832', description: 'Ultrium 9/16T' });
  });

  it('round-trips through the builder', () => {
    const arb: fc.Arbitrary<DensityDescriptor> = fc.record({
      primaryDensityCode: fc.integer({ min: 0, max: 255 }),
      secondaryDensityCode: fc.integer({ min: 0, max: 255 }),
      writeOk: fc.boolean(),
      dup: fc.boolean(),
      defaultDensity: fc.boolean(),
      dlv: fc.boolean(),
      bitsPerMm: fc.nat({ max: 0xffffff }),
      mediaWidth: fc.nat({ max: 0xffff }),
      tracks: fc.nat({ max: 0xffff }),
      capacityMb: fc.nat({ max: 0xffffffff }),
      assigningOrganization: fc.stringMatching(/^[A-Z0-9-]{0,8}$/),
      densityName: fc.stringMatching(/^[A-Z0-9-]{0,8}$/),
      description: fc.stringMatching(/^[A-Za-z0-9/ -]{0,19}[A-Za-z0-9]$|^$/),
    });
    fc.assert(fc.property(fc.array(arb, { maxLength: 4 }), (ds) => {
      expect(parseDensitySupport(buildDensitySupport(ds))).toEqual(ds);
    }));
  });

  it('decodes medium type descriptors', () => {
    const d = new Uint8Array(56);
    d[0] = 0x78; // medium type
    d[2] = 0; d[3] = 52;
    d[4] = 2;
    d[5] = 0x5e; d[6] = 0x60;
    d.set([0x00, 0x7f], 14);
    d.set([0x04, 0x00], 16);
    d.set(ascii('LTO-CVE '), 20);
    d.set(ascii('LTO-9   '), 28);
    d.set(ascii('Ultrium 9           '), 36);
    const b = Uint8Array.from([0x00, 58, 0, 0, ...d]);
    expect(parseMediumTypeSupport(b)).toEqual([{ mediumType: 0x78, primaryDensityCodes: [0x5e, 0x60], mediaWidth: 127, mediumLength: 1024, assigningOrganization: 'LTO-CVE', mediumTypeName: 'LTO-9', description: 'Ultrium 9' }]);
  });
});
