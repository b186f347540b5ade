import { describe, expect, it } from 'vitest';
import { densityOf, drivePersonalities, drivePersonality, inLibrary, knownDensities, LtoDensity, mediaAccess } from './drives.js';

const gens = [5, 6, 7, 8, 9] as const;
const media = ['LTO3', 'LTO4', 'LTO5', 'LTO6', 'LTO7', 'LTO7-M8', 'LTO8', 'LTO9'] as const;

/** Expected access per drive generation, from IBM's published LTO compatibility table. */
const matrix: Record<(typeof gens)[number], Record<(typeof media)[number], 'rw' | 'ro' | '-'>> = {
  5: { LTO3: 'ro', LTO4: 'rw', LTO5: 'rw', LTO6: '-', LTO7: '-', 'LTO7-M8': '-', LTO8: '-', LTO9: '-' },
  6: { LTO3: '-', LTO4: 'ro', LTO5: 'rw', LTO6: 'rw', LTO7: '-', 'LTO7-M8': '-', LTO8: '-', LTO9: '-' },
  7: { LTO3: '-', LTO4: '-', LTO5: 'ro', LTO6: 'rw', LTO7: 'rw', 'LTO7-M8': '-', LTO8: '-', LTO9: '-' },
  8: { LTO3: '-', LTO4: '-', LTO5: '-', LTO6: '-', LTO7: 'rw', 'LTO7-M8': 'rw', LTO8: 'rw', LTO9: '-' },
  9: { LTO3: '-', LTO4: '-', LTO5: '-', LTO6: '-', LTO7: '-', 'LTO7-M8': '-', LTO8: 'rw', LTO9: 'rw' },
};
const name = { rw: 'read-write', ro: 'read-only', '-': 'incompatible' } as const;

describe('drive personalities', () => {
  it('has full- and half-height IBM LTO-5..9 drives with distinct ids', () => {
    expect(drivePersonalities).toHaveLength(10);
    expect(new Set(drivePersonalities.map((p) => p.id)).size).toBe(10);
    for (const p of drivePersonalities) {
      expect(p.vendor).toBe('IBM');
      expect(p.product.length).toBeLessThanOrEqual(16);
      expect(p.revision).toHaveLength(4);
    }
    expect(drivePersonality('ibm-lto7-hh').product).toBe('ULT3580-HH7');
    expect(inLibrary(drivePersonality('ibm-lto8-fh')).product).toBe('ULTRIUM-TD8');
    expect(() => drivePersonality('hp-lto7')).toThrow(/known/);
  });

  it('uses the T10 density codes', () => {
    expect([LtoDensity.LTO5.code, LtoDensity.LTO6.code, LtoDensity.LTO7.code, LtoDensity.LTO7_M8.code, LtoDensity.LTO8.code, LtoDensity.LTO9.code]).toEqual([0x58, 0x5a, 0x5c, 0x5d, 0x5e, 0x60]);
    expect(densityOf('LTO8-WORM')?.code).toBe(0x5e);
    expect(densityOf('DLT4')).toBeUndefined();
  });

  it.each(gens)('LTO-%i follows the compatibility matrix', (g) => {
    const p = drivePersonality(`ibm-lto${g}-fh`);
    for (const m of media) {
      expect(mediaAccess(p, m), `${m} in LTO-${g}`).toBe(name[matrix[g][m]]);
      if (m !== 'LTO7-M8') expect(mediaAccess(p, `${m}-WORM`)).toBe(name[matrix[g][m]]);
    }
    expect(knownDensities(p)[0]?.mediaType).toBe(`LTO${g}`);
  });

  it('gives every drive a timing model', () => {
    for (const p of drivePersonalities) {
      expect(p.timing.perMiBSeconds).toBeGreaterThan(0);
      expect(p.timing.rewindSeconds).toBeGreaterThan(p.timing.threadSeconds);
    }
  });

  it('streams at the published speed steps: the native rate is the top step, the lowest is at least 40 MB/s', () => {
    // Native rates (MB/s) and step counts: IBM's speed matching tables for LTO-7..9, the
    // published 40..native range split into 10 MB/s steps for LTO-5 and LTO-6.
    const expected: Record<string, [number, number]> = {
      'ibm-lto5-fh': [140, 11],
      'ibm-lto5-hh': [140, 11],
      'ibm-lto6-fh': [160, 13],
      'ibm-lto6-hh': [160, 13],
      'ibm-lto7-fh': [306, 12],
      'ibm-lto7-hh': [306, 12],
      'ibm-lto8-fh': [365, 12],
      'ibm-lto8-hh': [306.4, 9],
      'ibm-lto9-fh': [408, 12],
      'ibm-lto9-hh': [284, 6],
    };
    for (const p of drivePersonalities) {
      const steps = p.timing.speedStepsMBps;
      expect([steps[0], steps.length], p.id).toEqual(expected[p.id]);
      expect(steps.every((s, i) => i === 0 || s < (steps[i - 1] ?? 0)), `${p.id} fastest first`).toBe(true);
      expect(steps[steps.length - 1]).toBeGreaterThanOrEqual(40);
      // The native transfer time is the top step's.
      expect(p.timing.perMiBSeconds).toBeCloseTo(1.048576 / (steps[0] ?? 1), 12);
      expect(p.timing.bufferBytes).toBe(p.generation >= 7 ? 1e9 : 512e6);
      expect(p.timing.backhitchSeconds).toBeGreaterThan(0);
    }
  });
});
