/**
 * Canonical encoding, validation and authentication of keys, commit records, ballots and
 * journal records. The canonical form is JSON with object keys sorted at every level, so
 * any VTC computes the same bytes (and the same MAC) for the same record.
 */
import { z } from 'zod';
import { BadMacError, MalformedRecordError } from './errors.js';
import { tagsEqual, toHex } from './mac.js';
import type { MacAlgorithm } from './mac.js';
import type { CommitRecord, JournalRecord, ShutdownKey, SignedBallot } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** JSON with sorted object keys; rejects values JSON cannot carry exactly. */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new MalformedRecordError(`cannot encode non-finite number ${value}`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new MalformedRecordError(`cannot encode a ${typeof value}`);
  }
}

export const canonicalBytes = (value: unknown): Uint8Array => encoder.encode(canonicalJson(value));

const vts = z.enum(['A', 'B']);
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const vtsList = z.array(vts).max(2).refine((l) => new Set(l).size === l.length, 'duplicate VTS');
const nameList = z.array(z.string().min(1).max(64)).max(65536);
const volList = z.array(z.string().min(1).max(64)).max(1_000_000);
const hexMac = z.string().regex(/^[0-9a-f]{16,128}$/);
const keyState = z.union([
  z.object({ kind: z.literal('online-both') }).strict(),
  z.object({ kind: z.literal('online-single'), vts }).strict(),
  z.object({ kind: z.literal('offline') }).strict(),
]);
const electionId = { seq, vts, round: z.number().int().min(0).max(0xffffffff) };

export const keySchema = z
  .object({
    ptpId: z.string().min(1).max(64),
    seq: seq.min(1),
    issuedAt: z.number().finite(),
    originVtc: z.string().min(1).max(64),
    command: z.enum(['vts-out', 'vts-in', 'ptp-shutdown', 'ptp-start', 'threshold-set']),
    subjects: vtsList,
    status: z.object({ A: z.enum(['in', 'out']), B: z.enum(['in', 'out']) }).strict(),
    current: vtsList,
    mode: z.enum(['normal', 'expedite', 'immediate', 'forced']),
    copiesPending: volList.nullable(),
    acks: nameList,
    reason: z.enum(['command', 'failure', 'election', 'override', 'return']),
    state: keyState,
    threshold: z.number().int().min(0).max(65535),
    election: z.object({ ...electionId, yes: nameList }).strict().nullable(),
    prevSeq: seq,
    prevMac: z.string().regex(/^([0-9a-f]{16,128})?$/),
    mac: hexMac,
  })
  .strict();

export const ballotSchema = z
  .object({
    ptpId: z.string().min(1).max(64),
    election: z.object(electionId).strict(),
    voter: z.string().min(1).max(64),
    keySeq: seq,
    choice: z.enum(['yes', 'no']),
    why: z.string().max(1024),
    mac: hexMac,
  })
  .strict();

export const commitSchema = z
  .object({
    ptpId: z.string().min(1).max(64),
    seq: seq.min(1),
    keyMac: hexMac,
    coordinator: z.string().min(1).max(64),
    outcome: z.enum(['done', 'failed']),
    error: z.string().max(4096).nullable(),
    acks: nameList,
    copiesPending: volList.nullable(),
    current: vtsList,
    state: keyState,
    recorded: vtsList,
    attempted: vtsList,
    ballots: z.array(ballotSchema).max(65536).optional(),
    election: z.object({ ...electionId, yes: nameList }).strict().nullable().optional(),
    mac: hexMac,
  })
  .strict();

const recordSchema = z.union([
  z.object({ type: z.literal('key'), key: keySchema }).strict(),
  z.object({ type: z.literal('commit'), commit: commitSchema, key: keySchema }).strict(),
]);

function describe(err: z.ZodError): string {
  return err.issues
    .slice(0, 4)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Validates the shape of an untrusted value; throws {@link MalformedRecordError} naming the bad fields. */
export function parseWith<T>(schema: z.ZodType<T>, what: string, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new MalformedRecordError(`malformed ${what}: ${describe(r.error)}`, r.error);
  return r.data;
}

/** Signs and verifies records whose last field is `mac` over the canonical encoding of the rest. */
export class RecordSigner {
  readonly #mac: MacAlgorithm;
  constructor(mac: MacAlgorithm) {
    this.#mac = mac;
  }
  macOf(body: object): string {
    return toHex(this.#mac.sign(canonicalBytes({ ...body, mac: undefined })));
  }
  sign<T extends { mac: string }>(body: Omit<T, 'mac'>): T {
    return { ...body, mac: this.macOf(body) } as T;
  }
  valid(record: { mac: string }): boolean {
    const expect = this.macOf(record);
    return expect.length === record.mac.length && tagsEqual(encoder.encode(expect), encoder.encode(record.mac));
  }
  /** Throws {@link BadMacError} when the record was not signed with the cluster secret. */
  check(record: { mac: string }, what: string): void {
    if (!this.valid(record)) throw new BadMacError(what);
  }

  parseKey(value: unknown): ShutdownKey {
    const k = parseWith(keySchema, 'shutdown key', value) as ShutdownKey;
    this.check(k, `shutdown key ${k.seq}`);
    return k;
  }
  parseCommit(value: unknown): CommitRecord {
    const c = parseWith(commitSchema, 'commit record', value) as CommitRecord;
    this.check(c, `commit record ${c.seq}`);
    for (const b of c.ballots ?? []) this.check(b, `ballot of ${b.voter} in commit record ${c.seq}`);
    return c;
  }
  parseBallot(value: unknown): SignedBallot {
    const b = parseWith(ballotSchema, 'ballot', value) as SignedBallot;
    this.check(b, `ballot of ${b.voter}`);
    return b;
  }

  /** Journal bytes of a record (canonical JSON; the journal adds its own CRC). */
  encodeRecord(r: JournalRecord): Uint8Array {
    return canonicalBytes(r);
  }
  /** Decodes and authenticates journal bytes; a commit must name the key it carries. */
  decodeRecord(bytes: Uint8Array): JournalRecord {
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(bytes));
    } catch (e) {
      throw new MalformedRecordError('journal record is not UTF-8 JSON', e);
    }
    const r = parseWith(recordSchema, 'journal record', value) as JournalRecord;
    this.check(r.key, `shutdown key ${r.key.seq}`);
    if (r.type === 'commit') {
      this.check(r.commit, `commit record ${r.commit.seq}`);
      for (const b of r.commit.ballots ?? []) this.check(b, `ballot of ${b.voter} in commit record ${r.commit.seq}`);
      if (r.commit.keyMac !== r.key.mac || r.commit.seq !== r.key.seq) throw new MalformedRecordError(`commit record ${r.commit.seq} does not match the key it carries`);
    }
    return r;
  }
}
