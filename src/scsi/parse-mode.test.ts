import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildModeSelect, findModePage, parseModeSense } from './parse-mode.js';

describe('parseModeSense', () => {
  it('MODE SENSE(6) from a write-protected tape in buffered mode with a device configuration page', () => {
    const page10 = [0x90, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00];
    const body = [0x00, 0x90, 0x08, ...[0x5e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00], ...page10];
    const b = Uint8Array.from([body.length, ...body]);
    const m = parseModeSense(b, 6);
    expect(m).toMatchObject({ form: 6, mediumType: 0, writeProtected: true, bufferedMode: 1, speed: 0, truncated: false });
    expect(m.blockDescriptors).toEqual([{ densityCode: 0x5e, numberOfBlocks: 0n, blockLength: 1024 }]);
    expect(m.pages).toHaveLength(1);
    const p = findModePage(m, 0x10);
    expect(p?.savable).toBe(true);
    expect(p?.data.length).toBe(14);
    expect(p?.raw[0]).toBe(0x90);
  });

  it('MODE SENSE(10) with a long LBA descriptor and a sub-page format page', () => {
    const bd = [0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00];
    const sub = [0x40 | 0x0a, 0x01, 0x00, 0x02, 0xaa, 0xbb];
    const rest = [0x00, 0x10, 0x01, 0x00, 0x00, 0x10, ...bd, ...sub];
    const len = rest.length;
    const b = Uint8Array.from([len >> 8, len & 0xff, ...rest]);
    const m = parseModeSense(b, 10);
    expect(m.longLba).toBe(true);
    expect(m.deviceSpecific).toBe(0x10);
    expect(m.blockDescriptors).toEqual([{ densityCode: 0, numberOfBlocks: 0x1000n, blockLength: 0x200 }]);
    expect(findModePage(m, 0x0a, 1)?.data).toEqual(Uint8Array.from([0xaa, 0xbb]));
  });

  it('reports truncation when the allocation length cut the answer', () => {
    const b = Uint8Array.from([40, 0, 0, 0, 0x1d, 0x12, 0, 0]);
    const m = parseModeSense(b, 6);
    expect(m.truncated).toBe(true);
    expect(m.pages).toEqual([]);
  });

  it('round-trips a MODE SELECT list through MODE SENSE parsing', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<6 | 10>(6, 10),
        fc.integer({ min: 0, max: 0x7f }),
        fc.array(fc.record({ densityCode: fc.integer({ min: 0, max: 255 }), numberOfBlocks: fc.bigInt({ min: 0n, max: 0xffffffn }), blockLength: fc.nat({ max: 0xffffff }) }), { maxLength: 2 }),
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 20 }), { maxLength: 3 }),
        (form, dsp, bds, bodies) => {
          const pages = bodies.map((x, i) => Uint8Array.from([0x01 + i, x.length, ...x]));
          const list = buildModeSelect({ deviceSpecific: dsp, blockDescriptors: bds, pages }, form);
          // Fill MODE DATA LENGTH as MODE SENSE would, then parse back.
          const sensed = list.slice();
          if (form === 6) sensed[0] = list.length - 1;
          else {
            sensed[0] = (list.length - 2) >> 8;
            sensed[1] = (list.length - 2) & 0xff;
          }
          const m = parseModeSense(sensed, form);
          expect(m.blockDescriptors).toEqual(bds);
          expect(m.deviceSpecific).toBe(dsp);
          expect(m.pages.map((p) => [...p.raw])).toEqual(pages.map((p) => [...p]));
        },
      ),
    );
  });

  it('clears PS and refuses long LBA in the 6-byte form', () => {
    const list = buildModeSelect({ pages: [Uint8Array.from([0x90, 0x00])] }, 6);
    expect([...list]).toEqual([0, 0, 0, 0, 0x10, 0x00]);
    expect(() => buildModeSelect({ longLba: true }, 6)).toThrow(/MODE SELECT\(10\)/);
  });
});
