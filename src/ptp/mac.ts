/**
 * Message authentication with the cluster secret. Injected so a simulation can swap in a
 * cheaper keyed function; production uses HMAC-SHA256.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * A keyed MAC. `sign` is synchronous and pure: no timeout, no cancellation; it throws only
 * on programming errors (never on data).
 */
export interface MacAlgorithm {
  readonly name: string;
  /** Length of every tag in bytes. */
  readonly size: number;
  sign(data: Uint8Array): Uint8Array;
}

export class HmacSha256 implements MacAlgorithm {
  readonly name = 'hmac-sha256';
  readonly size = 32;
  readonly #secret: Buffer;
  constructor(secret: Uint8Array | string) {
    this.#secret = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
    if (this.#secret.length < 16) throw new RangeError('cluster secret must be at least 16 bytes');
  }
  sign(data: Uint8Array): Uint8Array {
    return createHmac('sha256', this.#secret).update(data).digest();
  }
}

/** Compares two tags without leaking where they differ. */
export function tagsEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += HEX[b];
  return s;
}
