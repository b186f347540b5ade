/**
 * The vote path's signature cost: a ballot signed by its voter's Ed25519 key and verified
 * with its public key, against the HMAC-SHA256 tag with the shared cluster secret it
 * replaced (same records, same canonical encoding). Then one election as each VTC pays for
 * it: sign its own ballot, verify the n-1 others, and take the commit that carries all n
 * ballots (the commit's ballots were verified on arrival, so they hit the signer's cache).
 */
import { createHmac } from 'node:crypto';
import { RecordSigner } from '../src/ptp/codec.js';
import { generateKeyring, tagsEqual, vtcKeys } from '../src/ptp/mac.js';
import type { RecordKeys } from '../src/ptp/mac.js';
import type { CommitRecord, SignedBallot } from '../src/ptp/types.js';
import { median, writeResults } from './lib.js';
import type { Figure } from './lib.js';

/** The scheme before per-VTC keys: one shared secret, so any member could tag any record. */
class SharedSecretKeys implements RecordKeys {
  readonly name = 'hmac-shared';
  readonly self: string;
  constructor(self: string) {
    this.self = self;
  }
  sign(d: Uint8Array): Uint8Array {
    return createHmac('sha256', 'benchmark cluster secret 0123').update(d).digest();
  }
  verify(_s: string, d: Uint8Array, sig: Uint8Array): boolean {
    return tagsEqual(this.sign(d), sig);
  }
}

const ballot = (voter: string, round: number) => ({ ptpId: 'bench', election: { seq: 41, vts: 'B' as const, round }, voter, keySeq: 41, choice: 'yes' as const, why: 'B is current in key 41 and reports last key seq 41' });

function perOp(fn: (i: number) => void, ops: number): number {
  const runs: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) fn(r * ops + i);
    runs.push(Number(process.hrtime.bigint() - t) / 1000 / ops);
  }
  return median(runs);
}

/** CPU of one election at one VTC (µs, median of 200): sign its ballot, verify the n-1 others, take the commit carrying all n. */
function electionCost(n: number, keys: (id: string) => RecordKeys): number {
  const ids = Array.from({ length: n }, (_, i) => `vtc${i}`);
  const signers = ids.map((id) => new RecordSigner(keys(id)));
  const us = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1000;
  const costs: number[] = [];
  for (let round = 0; round < 200; round++) {
    const t0 = process.hrtime.bigint();
    const ballots = signers.map((s, i) => s.sign<SignedBallot>(ballot(ids[i]!, round)));
    const sign = us(t0) / n;
    const me = signers[1]!;
    const t1 = process.hrtime.bigint();
    for (const b of ballots) if (b.voter !== 'vtc1') me.parseBallot(b);
    const verify = us(t1);
    const commit = signers[0]!.sign<CommitRecord>({ ptpId: 'bench', seq: 42, keyMac: 'ab'.repeat(32), coordinator: 'vtc0', outcome: 'done', error: null, acks: ids, copiesPending: [], current: ['B'], state: { kind: 'online-single', vts: 'B' }, recorded: ['B'], attempted: ['B'], ballots, election: { seq: 41, vts: 'B', round, yes: ids } });
    const t2 = process.hrtime.bigint();
    me.parseCommit(commit);
    costs.push(sign + verify + us(t2));
  }
  return median(costs);
}

const ring = generateKeyring(Array.from({ length: 32 }, (_, i) => `vtc${i}`));
const ed = (id: string): RecordKeys => vtcKeys(ring, id);
const hm = (id: string): RecordKeys => new SharedSecretKeys(id);
const figures: Figure[] = [];
for (const [name, keys] of [
  ['ed25519', ed],
  ['hmac shared secret (before)', hm],
] as const) {
  const s = new RecordSigner(keys('vtc3'));
  figures.push({ name: `${name}: sign a ballot`, value: perOp((i) => s.sign(ballot('vtc3', i)), 400), unit: 'µs' });
  const signed = Array.from({ length: 7 * 400 }, (_, i) => s.sign<SignedBallot>(ballot('vtc3', i)));
  // A fresh signer per pass: nothing cached, every ballot verified.
  let v = new RecordSigner(keys('vtc5'));
  figures.push({ name: `${name}: verify a ballot`, value: perOp((i) => (i % 400 === 0 ? (v = new RecordSigner(keys('vtc5'))) : v).parseBallot(signed[i]!), 400), unit: 'µs' });
  for (const n of [4, 8, 32]) figures.push({ name: `${name}: one election at one VTC, n = ${n}`, value: electionCost(n, keys), unit: 'µs', detail: { what: 'sign own ballot + verify n-1 ballots + take the commit with n ballots' } });
}
writeResults('signatures', figures, [], ['Election figures count only signature and encoding work; network and journal costs are in the recovery suite.']);
