/**
 * CHAP with MD5 (RFC 1994) as iSCSI uses it (RFC 7143 12.1.3), and the binary value
 * encodings of iSCSI text (`0x` hex, `0b` base64).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** CHAP_A value for MD5. */
export const CHAP_MD5 = 5;

/** Credentials one side proves with: a CHAP name and its secret. */
export interface ChapCredentials {
  readonly name: string;
  readonly secret: string;
}

/** MD5(identifier || secret || challenge). */
export function chapResponse(identifier: number, secret: string | Uint8Array, challenge: Uint8Array): Buffer {
  const h = createHash('md5');
  h.update(Uint8Array.of(identifier & 0xff));
  h.update(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret);
  h.update(challenge);
  return h.digest();
}

/** Constant-time check of a received CHAP_R. */
export function chapVerify(identifier: number, secret: string, challenge: Uint8Array, response: Uint8Array): boolean {
  const want = chapResponse(identifier, secret, challenge);
  return response.length === want.length && timingSafeEqual(want, response);
}

/** A fresh challenge: 16 random bytes is what the RFC asks as a minimum for MD5. */
export function newChallenge(length = 16): Buffer {
  return randomBytes(length);
}

export function encodeBinary(b: Uint8Array): string {
  return `0x${Buffer.from(b).toString('hex')}`;
}

/** Decodes a `0x`/`0X` hex or `0b`/`0B` base64 value; undefined when malformed or longer than `max` bytes. */
export function decodeBinary(v: string, max = 1024): Buffer | undefined {
  const prefix = v.slice(0, 2).toLowerCase();
  const body = v.slice(2);
  let out: Buffer;
  if (prefix === '0x') {
    if (!/^[0-9a-fA-F]+$/.test(body)) return undefined;
    out = Buffer.from(body.length % 2 ? `0${body}` : body, 'hex');
  } else if (prefix === '0b') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return undefined;
    out = Buffer.from(body, 'base64');
  } else {
    return undefined;
  }
  return out.length === 0 || out.length > max ? undefined : out;
}
