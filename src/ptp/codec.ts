/**
 * Canonical encoding, validation and authentication of keys, commit records, ballots and
 * journal records. The canonical form is JSON with object keys sorted at every level, so
 * any VTC computes the same bytes for the same record, and its author's signature over them.
 */
import { z } from 'zod';
import { BadSignatureError, MalformedRecordError } from './errors.js';
import { fromHex, toHex } from './mac.js';
import type { RecordKeys } from './mac.js';
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
    reason: z.enum(['command', 'failure', 'election', 'override', 'return', 'supersede']),
    state: keyState,
    threshold: z.number().int().min(0).max(65535),
    election: z.object({ ...electionId, yes: nameList }).strict().nullable(),
    prevSeq: seq,
    prevMac: z.string().regex(/^([0-9a-f]{16,128})?$/),
    note: z.string().min(1).max(512).optional(),
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

export const sightingSchema = z
  .object({
    ptpId: z.string().min(1).max(64),
    observer: z.string().min(1).max(64),
    vts,
    bootId: z.string().max(128),
    imageId: z.string().max(128),
    restartedSeq: seq.nullable(),
    bothLost: z.boolean(),
    lostWithOther: z.boolean(),
    mac: hexMac,
  })
  .strict();

const recordSchema = z.union([
  z.object({ type: z.literal('key'), key: keySchema }).strict(),
  z.object({ type: z.literal('commit'), commit: commitSchema, key: keySchema }).strict(),
  z.object({ type: z.literal('sighting'), sighting: sightingSchema }).strict(),
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

/** Whose signature a record carries: a key its coordinator's, a commit its coordinator's, a ballot its voter's. */
export function authorOf(record: object): string {
  const r = record as { voter?: unknown; coordinator?: unknown; originVtc?: unknown; observer?: unknown };
  const a = 'voter' in r ? r.voter : 'coordinator' in r ? r.coordinator : 'observer' in r ? r.observer : r.originVtc;
  if (typeof a !== 'string') throw new MalformedRecordError('record names no author (voter, coordinator, observer or originVtc)');
  return a;
}

/** Verified (signature, body) pairs kept so a record relayed again is not verified again. */
const VERIFIED_CACHE = 4096;

/**
 * Signs and verifies records whose last field `mac` is their author's signature over the
 * canonical encoding of the rest. The author is the VTC the record names (see
 * {@link authorOf}), so a record signed by any other key, or with the cluster secret,
 * fails. Signatures are deterministic, so `mac` still identifies a record.
 */
export class RecordSigner {
  readonly #keys: RecordKeys;
  readonly #verified = new Map<string, string>();
  constructor(keys: RecordKeys) {
    this.#keys = keys;
  }
  /** Signs `body` as this VTC; throws if the record names another author (a programming error). */
  macOf(body: object): string {
    const author = authorOf(body);
    if (author !== this.#keys.self) throw new Error(`cannot sign a record of ${JSON.stringify(author)} as ${JSON.stringify(this.#keys.self)}`);
    return toHex(this.#keys.sign(canonicalBytes({ ...body, mac: undefined })));
  }
  sign<T extends { mac: string }>(body: Omit<T, 'mac'>): T {
    return { ...body, mac: this.macOf(body) } as T;
  }
  valid(record: { mac: string }): boolean {
    let author: string;
    try {
      author = authorOf(record);
    } catch {
      return false;
    }
    const text = canonicalJson({ ...record, mac: undefined });
    if (this.#verified.get(record.mac) === text) return true;
    const sig = fromHex(record.mac);
    if (sig === null || !this.#keys.verify(author, encoder.encode(text), sig)) return false;
    if (this.#verified.size >= VERIFIED_CACHE) this.#verified.clear();
    this.#verified.set(record.mac, text);
    return true;
  }
  /** Throws {@link BadSignatureError} when the record was not signed by the VTC it names. */
  check(record: { mac: string }, what: string): void {
    if (this.valid(record)) return;
    let author = '(none)';
    try {
      author = authorOf(record);
    } catch {
      // The schema already requires an author; the message says so if one is missing.
    }
    throw new BadSignatureError(what, author);
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
  /** Decodes and authenticates journal bytes; a commit must name the key it carries; a sighting must be signed by its observer. */
  decodeRecord(bytes: Uint8Array): JournalRecord {
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(bytes));
    } catch (e) {
      throw new MalformedRecordError('journal record is not UTF-8 JSON', e);
    }
    const r = parseWith(recordSchema, 'journal record', value) as JournalRecord;
    if (r.type === 'sighting') {
      this.check(r.sighting, `sighting of VTS ${r.sighting.vts}`);
      return r;
    }
    this.check(r.key, `shutdown key ${r.key.seq}`);
    if (r.type === 'commit') {
      this.check(r.commit, `commit record ${r.commit.seq}`);
      for (const b of r.commit.ballots ?? []) this.check(b, `ballot of ${b.voter} in commit record ${r.commit.seq}`);
      if (r.commit.keyMac !== r.key.mac || r.commit.seq !== r.key.seq) throw new MalformedRecordError(`commit record ${r.commit.seq} does not match the key it carries`);
    }
    return r;
  }
}
