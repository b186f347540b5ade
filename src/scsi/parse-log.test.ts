import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildLogPage, logParameterValue, parseLogPage, parseSupportedLogPages, parseTapeAlert, tapeAlertName } from './parse-log.js';

describe('LOG SENSE', () => {
  it('parses a write error counters page with mixed parameter widths', () => {
    const b = Uint8Array.from([0x02, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x02, 0x02, 0x00, 0x05, 0x00, 0x06, 0x00, 0x03, 0x00, 0x10, 0x00]);
    const p = parseLogPage(b, 0x02);
    expect(p.parameters.map((x) => [x.code, logParameterValue(x)])).toEqual([
      [0x0000, 5n],
      [0x0006, 0x1000n],
    ]);
    expect(p.parameters[0]?.formatAndLinking).toBe(2);
    expect(p.truncated).toBe(false);
  });

  it('rejects another page than asked for', () => {
    expect(() => parseLogPage(Uint8Array.from([0x03, 0, 0, 0]), 0x02)).toThrow(/page code 0x3/);
  });

  it('round-trips through the builder', () => {
    const param = fc.record({ code: fc.nat({ max: 0xffff }), du: fc.boolean(), tsd: fc.boolean(), etc: fc.boolean(), tmc: fc.integer({ min: 0, max: 3 }), formatAndLinking: fc.integer({ min: 0, max: 3 }), value: fc.uint8Array({ maxLength: 12 }) });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x3f }), fc.nat({ max: 255 }), fc.boolean(), fc.boolean(), fc.array(param, { maxLength: 6 }), (pageCode, subpage, ds, spf, parameters) => {
        const parsed = parseLogPage(buildLogPage({ pageCode, subpage, ds, spf, parameters }));
        expect(parsed).toMatchObject({ pageCode, subpage, ds, spf, parameters, truncated: false });
      }),
    );
  });

  it('supported pages, with and without sub-pages', () => {
    expect(parseSupportedLogPages(Uint8Array.from([0, 0, 0, 3, 0x00, 0x02, 0x2e]))).toEqual([
      { pageCode: 0, subpage: 0 },
      { pageCode: 2, subpage: 0 },
      { pageCode: 0x2e, subpage: 0 },
    ]);
    expect(parseSupportedLogPages(Uint8Array.from([0x40, 0xff, 0, 4, 0x00, 0xff, 0x0d, 0x01]))).toEqual([
      { pageCode: 0, subpage: 0xff },
      { pageCode: 0x0d, subpage: 1 },
    ]);
  });

  it('TapeAlert page: set flags with names, clear ones skipped', () => {
    const params: number[] = [];
    for (let f = 1; f <= 64; f++) params.push(0x00, f, 0x03, 0x01, f === 20 || f === 4 || f === 62 ? 0x01 : 0x00);
    const b = Uint8Array.from([0x2e, 0x00, (params.length >> 8) & 0xff, params.length & 0xff, ...params]);
    expect(parseTapeAlert(b)).toEqual([
      { flag: 4, name: 'Media' },
      { flag: 20, name: 'Clean now' },
      { flag: 62, name: 'TapeAlert flag 62' },
    ]);
    expect(tapeAlertName(60)).toBe('WORM medium - overwrite attempted');
  });
});
