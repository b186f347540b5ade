/** CRC-32C from the addon: the check value, incremental use, and every length around the interleaved lanes. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from './native.js';

function reference(b: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  it('gives the CRC-32C check value for "123456789"', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('matches a bitwise reference at every length around the three-lane blocks', () => {
    const data = Uint8Array.from({ length: 3 * 4096 * 2 + 64 }, (_, i) => (i * 131 + 7) & 0xff);
    for (const n of [0, 1, 7, 8, 9, 4095, 4096, 12287, 12288, 12289, 12295, 24576, 24583, data.length]) {
      expect(crc32c(data.subarray(0, n)), `length ${n}`).toBe(reference(data.subarray(0, n)));
    }
  });

  it('continues from a previous result exactly as over the whole buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40_000 }), fc.nat(), (b, cut) => {
        const at = b.length === 0 ? 0 : cut % (b.length + 1);
        expect(crc32c(b.subarray(at), crc32c(b.subarray(0, at)))).toBe(reference(b));
      }),
      { numRuns: 60 },
    );
  });
});
