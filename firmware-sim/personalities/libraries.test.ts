import { describe, expect, it } from 'vitest';
import { checkPersonality, libraryPersonality, libraryPersonalityIds, LibraryPersonalities } from './libraries.js';

describe('library personalities', () => {
  it.each(libraryPersonalityIds)('%s is sound: ranges fit and do not overlap, INQUIRY strings fit', (id) => {
    const p = LibraryPersonalities[id];
    expect(checkPersonality(p)).toEqual([]);
    expect(p.timing.moveSeconds).toBeGreaterThan(0);
    expect(p.capabilities.dvcidSerialWidth).toBeGreaterThan(0);
  });

  it('uses the IBM TS3100/TS3200 element addressing', () => {
    for (const id of ['IBM-TS3100', 'IBM-TS3200'] as const) {
      expect(LibraryPersonalities[id].addressing).toEqual({ transport: 0x0001, importExport: 0x0010, dataTransfer: 0x0100, storage: 0x1000 });
    }
    expect(LibraryPersonalities['IBM-TS3100'].limits).toEqual({ storage: 23, importExport: 1, dataTransfer: 2 });
    expect(LibraryPersonalities['IBM-TS3200'].limits).toEqual({ storage: 45, importExport: 3, dataTransfer: 4 });
    expect(LibraryPersonalities['IBM-TS3100'].capabilities.exchange).toBe(false);
    expect(LibraryPersonalities['PTPVTS-LIB'].capabilities.exchange).toBe(true);
  });

  it('looks personalities up by id only', () => {
    expect(libraryPersonality('IBM-TS3100')?.product).toBe('3573-TL');
    expect(libraryPersonality('toString')).toBeUndefined();
    expect(libraryPersonality('nope')).toBeUndefined();
  });

  it('finds overlapping ranges and long strings', () => {
    const bad = { ...LibraryPersonalities['PTPVTS-LIB'], id: 'bad', vendor: 'VERYLONGVENDOR', addressing: { transport: 1, importExport: 0x10, dataTransfer: 0x20, storage: 0xfff0 } };
    const problems = checkPersonality(bad);
    expect(problems.some((p) => /importExport and dataTransfer address ranges overlap/.test(p))).toBe(true);
    expect(problems.some((p) => /storage elements run past/.test(p))).toBe(true);
    expect(problems.some((p) => /vendor longer/.test(p))).toBe(true);
  });
});
