/**
 * The simulation's keys. The adversary it models holds the cluster secret (it can seal
 * frames every member accepts: a compromised VTS, or a stolen config) but no VTC's private
 * key, so whatever it signs as a VTC must be refused.
 *
 * Most schedules use cheap keyed tags (not cryptographic: the simulated parties are
 * honest code, and the adversary signs with keys it holds, which these tags tell apart
 * just as real signatures do); a share runs with real HMAC-SHA256 frames and real Ed25519
 * records, from keys derived from the seed so a replay signs the same bytes.
 */
import { createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { RecordSigner } from '../../src/ptp/codec.js';
import { Ed25519Keys, keyPairFromSeed, tagsEqual } from '../../src/ptp/mac.js';
import type { MacAlgorithm, RecordKeys } from '../../src/ptp/mac.js';
import type { CommitRecord, ShutdownKey, SignedBallot } from '../../src/ptp/types.js';

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

/** Per-VTC keyed tags: the signer's own key makes the tag, the verifier recomputes it with the key of the VTC named. */
class SimRecordKeys implements RecordKeys {
  readonly name = 'sim-per-vtc';
  readonly self: string | null;
  readonly #macs: ReadonlyMap<string, SimMac>;
  constructor(macs: ReadonlyMap<string, SimMac>, self: string | null) {
    this.#macs = macs;
    this.self = self;
  }
  sign(data: Uint8Array): Uint8Array {
    const m = this.self === null ? undefined : this.#macs.get(this.self);
    if (m === undefined) throw new Error('this key holder can only verify');
    return m.sign(data);
  }
  verify(signer: string, data: Uint8Array, signature: Uint8Array): boolean {
    const m = this.#macs.get(signer);
    return m !== undefined && tagsEqual(m.sign(data), signature);
  }
}

/** Signs as any VTC it likes, with a key that is not that VTC's (the adversary's tool). */
class ForgingKeys implements RecordKeys {
  readonly name = 'forger';
  readonly self: string;
  readonly #with: MacAlgorithm;
  constructor(as: string, withMac: MacAlgorithm) {
    this.self = as;
    this.#with = withMac;
  }
  sign(data: Uint8Array): Uint8Array {
    return this.#with.sign(data);
  }
  verify(): boolean {
    return false;
  }
}

/** Every VTC's signing keys for one simulated PtP system. */
export class SimKeyring {
  readonly #real: ReadonlyMap<string, { privateKey: KeyObject; publicKey: KeyObject }> | null;
  readonly #macs: ReadonlyMap<string, SimMac>;
  readonly #cache = new Map<string, RecordKeys>();

  /** `real`: Ed25519 from keys derived from the seed; otherwise per-VTC keyed tags. */
  constructor(seed: number, names: readonly string[], real: boolean) {
    this.#macs = new Map(names.map((n, i) => [n, new SimMac(Math.imul(seed ^ 0x7a3c_51e9, 0x01000193) ^ Math.imul(i + 1, 0x9e3779b1))]));
    this.#real = real ? new Map(names.map((n) => [n, keyPairFromSeed(createHash('sha256').update(`ptpvts sim ${seed} ${n}`).digest())])) : null;
  }

  /** The keys VTC `name` runs with: its own private key, everyone's public key. */
  forVtc(name: string): RecordKeys {
    let k = this.#cache.get(name);
    if (k === undefined) {
      const real = this.#real;
      if (real === null) k = new SimRecordKeys(this.#macs, name);
      else {
        const own = real.get(name);
        k = new Ed25519Keys(new Map([...real].map(([n, p]) => [n, p.publicKey])), own === undefined ? undefined : { id: name, privateKey: own.privateKey });
      }
      this.#cache.set(name, k);
    }
    return k;
  }

  /** Verify only (the checker's view of journals). */
  verifier(): RecordKeys {
    return this.forVtc('(checker)');
  }

  /** What the adversary signs with when it claims to be `as`: a key it holds (the cluster secret, or one of its own). */
  forger(as: string, withMac: MacAlgorithm): RecordKeys {
    return new ForgingKeys(as, withMac);
  }
}

/**
 * What the adversary with the cluster secret sends as VTC `as` (its `n`th try), signed with
 * `keys` (not `as`'s private key): a YES ballot, a proposed key, or a key with a done commit
 * that would take A out and put B on-line alone. Any of them taken would break an invariant
 * (a key no VTC made committed, an election without real YES ballots).
 */
export function forgedMessage(n: number, as: string, names: readonly string[], newest: ShutdownKey, now: number, keys: RecordKeys): unknown {
  const signer = new RecordSigner(keys);
  const e = newest;
  if (n % 3 === 0) return { t: 'ballot', ballot: signer.sign<SignedBallot>({ ptpId: e.ptpId, election: { seq: e.seq, vts: 'A', round: 0 }, voter: as, keySeq: 1e6, choice: 'yes', why: 'forged' }) };
  const key = signer.sign<ShutdownKey>({
    ...e,
    seq: e.seq + 1,
    issuedAt: now,
    originVtc: as,
    command: 'vts-out',
    subjects: ['A'],
    status: { A: 'out', B: 'in' },
    current: ['B'],
    mode: 'forced',
    copiesPending: [],
    acks: [...names],
    reason: 'command',
    state: { kind: 'online-single', vts: 'B' },
    election: null,
    prevSeq: e.seq,
    prevMac: e.mac,
  });
  if (n % 3 === 1) return { t: 'propose', key };
  const commit = signer.sign<CommitRecord>({ ptpId: e.ptpId, seq: key.seq, keyMac: key.mac, coordinator: as, outcome: 'done', error: null, acks: [...names], copiesPending: [], current: ['B'], state: { kind: 'online-single', vts: 'B' }, recorded: ['B'], attempted: ['B'] });
  return { t: 'commit', key, commit };
}
