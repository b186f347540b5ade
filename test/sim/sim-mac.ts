/**
 * A cheap keyed tag for the simulation's hot path. Not cryptographic: the simulated
 * adversary has no key and signs with a wrong one, which this tag tells apart just as
 * HMAC does; a share of schedules runs with real HMAC-SHA256 to cover that path too.
 */
import type { MacAlgorithm } from '../../src/ptp/mac.js';

export class SimMac implements MacAlgorithm {
  readonly name = 'sim-keyed-fnv';
  readonly size = 8;
  readonly #key: number;
  constructor(key: number) {
    this.#key = key >>> 0;
  }
  sign(data: Uint8Array): Uint8Array {
    let h1 = (0x811c9dc5 ^ this.#key) >>> 0;
    let h2 = (0x01000193 ^ Math.imul(this.#key, 0x9e3779b1)) >>> 0;
    for (let i = 0; i < data.length; i++) {
      const b = data[i]!;
      h1 = Math.imul(h1 ^ b, 16777619);
      h2 = Math.imul(h2 ^ b ^ (h1 >>> 15), 0x5bd1e995);
    }
    h1 = Math.imul(h1 ^ (h2 >>> 13), 0xc2b2ae35);
    h2 = Math.imul(h2 ^ (h1 >>> 16), 0x85ebca6b);
    const out = new Uint8Array(8);
    const v = new DataView(out.buffer);
    v.setUint32(0, h1 >>> 0);
    v.setUint32(4, h2 >>> 0);
    return out;
  }
}
