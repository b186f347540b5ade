/**
 * Authentication primitives. Two kinds of secret, with different jobs:
 *
 * - the cluster secret (a {@link MacAlgorithm}, HMAC-SHA256) seals frames between the
 *   members of a PtP system: it proves a frame came from *some* member and was not altered
 *   or replayed, but every member holds it, so it proves nothing about *which* one;
 * - each VTC's own Ed25519 key ({@link RecordKeys}) signs the records that say who did
 *   what: the keys it coordinates, its commit records and its ballots. Only that VTC holds
 *   the private key; everyone verifies with the public keys listed in the topology.
 *
 * Both are injected, so a simulation can swap in cheaper keyed functions.
 */
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, timingSafeEqual, verify as edVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

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

/**
 * Signatures that name their author. `sign` signs as `self` (throws when this holder has
 * no private key: a programming error); `verify` answers false for a signer it has no
 * public key of, and never throws for data. Both are synchronous and deterministic (the
 * same record signed twice gives the same bytes: records are identified by their tag).
 */
export interface RecordKeys {
  readonly name: string;
  /** The identity whose private key this holder has, or null (verify only). */
  readonly self: string | null;
  sign(data: Uint8Array): Uint8Array;
  verify(signer: string, data: Uint8Array, signature: Uint8Array): boolean;
}

/** Thrown for a key that cannot be read or is not an Ed25519 key. */
export class KeyFormatError extends Error {
  override readonly name = 'KeyFormatError';
  readonly code = 'EKEY_FORMAT';
  constructor(what: string, message: string, cause?: unknown) {
    super(`${what}: ${message}`, cause === undefined ? undefined : { cause });
  }
}

/** Base64url of the 32 raw bytes: the form public keys take in the topology. */
export const PUBLIC_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Reads a public key as written in the topology (base64url of the 32 raw bytes). */
export function importPublicKey(text: string, what = 'public key'): KeyObject {
  if (!PUBLIC_KEY_PATTERN.test(text)) throw new KeyFormatError(what, 'expected 43 base64url characters (an Ed25519 public key)');
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: text }, format: 'jwk' });
  } catch (e) {
    throw new KeyFormatError(what, 'not a valid Ed25519 public key', e);
  }
}

export function exportPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new KeyFormatError('public key', 'not an Ed25519 key');
  return jwk.x;
}

/** Reads a private key file's text (PKCS#8 PEM, as `ptpvts keys generate` and openssl write it). */
export function importPrivateKey(pem: string, what = 'private key'): KeyObject {
  let k: KeyObject;
  try {
    k = createPrivateKey({ key: pem, format: 'pem' });
  } catch (e) {
    throw new KeyFormatError(what, 'not a PEM private key', e);
  }
  if (k.asymmetricKeyType !== 'ed25519') throw new KeyFormatError(what, `an ${k.asymmetricKeyType ?? 'unknown'} key; expected Ed25519`);
  return k;
}

export function exportPrivateKey(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * An Ed25519 key pair from a 32-byte seed: reproducible keys for simulations that replay a
 * seed. Never for production keys (use {@link generateKeyPair}).
 */
export function keyPairFromSeed(seed: Uint8Array): { privateKey: KeyObject; publicKey: KeyObject } {
  if (seed.length !== 32) throw new RangeError('an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

export function generateKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

/** Ed25519 signatures (node:crypto): about 50 µs to sign and 115 µs to verify on one core. */
export class Ed25519Keys implements RecordKeys {
  readonly name = 'ed25519';
  readonly self: string | null;
  readonly #private: KeyObject | null;
  readonly #public: ReadonlyMap<string, KeyObject>;

  /** `publicKeys`: every identity that may sign; `own`: this holder's identity and private key. */
  constructor(publicKeys: ReadonlyMap<string, KeyObject>, own?: { readonly id: string; readonly privateKey: KeyObject }) {
    this.#public = publicKeys;
    this.self = own?.id ?? null;
    this.#private = own?.privateKey ?? null;
    if (own !== undefined) {
      const pub = publicKeys.get(own.id);
      if (pub === undefined) throw new KeyFormatError(own.id, 'has a private key but no public key in the list');
      if (exportPublicKey(createPublicKey(own.privateKey)) !== exportPublicKey(pub)) throw new KeyFormatError(own.id, 'the private key does not match the public key listed for it');
    }
  }

  sign(data: Uint8Array): Uint8Array {
    if (this.#private === null) throw new Error('this key holder can only verify');
    return edSign(null, data, this.#private);
  }

  verify(signer: string, data: Uint8Array, signature: Uint8Array): boolean {
    const pub = this.#public.get(signer);
    if (pub === undefined || signature.length !== 64) return false;
    return edVerify(null, data, pub, signature);
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

/** Parses lower-case hex; null when it is not hex of whole bytes. */
export function fromHex(s: string): Uint8Array | null {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) return null;
  return Buffer.from(s, 'hex');
}

/** Key pairs of every VTC and of the operator, in memory (in-process clusters and tests; processes read the topology's key files). */
export interface Keyring {
  readonly publicKeys: ReadonlyMap<string, KeyObject>;
  readonly privateKeys: ReadonlyMap<string, KeyObject>;
  readonly operator: { readonly publicKey: KeyObject; readonly privateKey: KeyObject };
}

export function generateKeyring(vtcs: readonly string[]): Keyring {
  const pairs = vtcs.map((id) => [id, generateKeyPair()] as const);
  return {
    publicKeys: new Map(pairs.map(([id, p]) => [id, p.publicKey])),
    privateKeys: new Map(pairs.map(([id, p]) => [id, p.privateKey])),
    operator: generateKeyPair(),
  };
}

/** The keys VTC `id` runs with: its own private key and every VTC's public key. */
export function vtcKeys(ring: Keyring, id: string): Ed25519Keys {
  const privateKey = ring.privateKeys.get(id);
  if (privateKey === undefined) throw new KeyFormatError(id, 'no private key in the keyring');
  return new Ed25519Keys(ring.publicKeys, { id, privateKey });
}
