/** Messages between VTCs, and their validation (records inside are also MAC-checked). */
import { z } from 'zod';
import { parseWith } from './codec.js';
import type { RecordSigner } from './codec.js';
import { SUMS_PER_HELLO } from './image-evidence.js';
import type { SumSighting } from './image-evidence.js';
import type { CommitRecord, ShutdownKey, SignedBallot } from './types.js';

export type PeerMessage =
  | { readonly t: 'propose'; readonly key: ShutdownKey }
  | { readonly t: 'ack'; readonly seq: number; readonly keyMac: string; readonly ballot?: SignedBallot }
  | { readonly t: 'nack'; readonly seq: number; readonly keyMac: string; readonly reason: string }
  | { readonly t: 'commit'; readonly key: ShutdownKey; readonly commit: CommitRecord }
  | { readonly t: 'ballot'; readonly ballot: SignedBallot }
  /** `cfg`: the sender's configuration digest (rules.ts configDigest), so a VTC configured with another VTC list is noticed. */
  | { readonly t: 'hello'; readonly hi: number; readonly top: number; readonly topMac: string; readonly cfg?: string; readonly topCommit?: string; readonly sums?: readonly SumSighting[] }
  | { readonly t: 'sync-req'; readonly after: number }
  | { readonly t: 'sync'; readonly records: readonly { readonly key: ShutdownKey; readonly commit: CommitRecord }[] };

const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const mac = z.string().max(256);
const sumSighting = z.object({ vts: z.enum(['A', 'B']), imageId: z.string().min(1).max(128), bootId: z.string().min(1).max(128), sum: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), seq }).strict();
const envelope = z.union([
  z.object({ t: z.literal('propose'), key: z.unknown() }).strict(),
  z.object({ t: z.literal('ack'), seq, keyMac: mac, ballot: z.unknown().optional() }).strict(),
  z.object({ t: z.literal('nack'), seq, keyMac: mac, reason: z.string().max(1024) }).strict(),
  z.object({ t: z.literal('commit'), key: z.unknown(), commit: z.unknown() }).strict(),
  z.object({ t: z.literal('ballot'), ballot: z.unknown() }).strict(),
  z.object({ t: z.literal('hello'), hi: seq, top: seq, topMac: mac, cfg: z.string().max(64).optional(), topCommit: mac.optional(), sums: z.array(sumSighting).max(2 * SUMS_PER_HELLO).optional() }).strict(),
  z.object({ t: z.literal('sync-req'), after: seq }).strict(),
  z.object({ t: z.literal('sync'), records: z.array(z.object({ key: z.unknown(), commit: z.unknown() }).strict()).max(256) }).strict(),
]);

/**
 * Validates an untrusted message and authenticates the records it carries. Throws
 * MalformedRecordError or BadMacError; the caller counts and drops.
 */
export function parseMessage(value: unknown, signer: RecordSigner): PeerMessage {
  const m = parseWith(envelope, 'peer message', value);
  switch (m.t) {
    case 'propose':
      return { t: 'propose', key: signer.parseKey(m.key) };
    case 'commit':
      return { t: 'commit', key: signer.parseKey(m.key), commit: signer.parseCommit(m.commit) };
    case 'ballot':
      return { t: 'ballot', ballot: signer.parseBallot(m.ballot) };
    case 'ack':
      return m.ballot === undefined ? { t: 'ack', seq: m.seq, keyMac: m.keyMac } : { t: 'ack', seq: m.seq, keyMac: m.keyMac, ballot: signer.parseBallot(m.ballot) };
    case 'sync':
      return { t: 'sync', records: m.records.map((r) => ({ key: signer.parseKey(r.key), commit: signer.parseCommit(r.commit) })) };
    default:
      return m;
  }
}
