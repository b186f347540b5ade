/**
 * The history checker of the production-code simulation (Jepsen style): every host write
 * and read the world issues is recorded with when it began, when it ended and what it
 * returned; {@link checkHistory} then looks for the outcomes the PtP promise forbids.
 *
 * Writes to one volume are issued one at a time (a host does not write a tape from two
 * places at once; the VTS refuses it anyway), so the order writes were issued in is the
 * order their generations must follow. Each write's data names the write, so a read says
 * exactly which write it returned.
 */
import type { VtsName } from '../../../src/ptp/types.js';

export type Outcome = 'ok' | 'fail' | 'unknown';

export interface WriteOp {
  readonly kind: 'write';
  readonly id: number;
  readonly vtc: string;
  readonly volser: string;
  readonly start: number;
  end: number | null;
  outcome: Outcome;
  /** The generation the close acknowledged. */
  generation: number | null;
  copies: readonly VtsName[];
  error: string | null;
  /** Index among the writes of this volume, in issue order (1 = first). */
  readonly index: number;
}

export interface ReadOp {
  readonly kind: 'read';
  readonly id: number;
  readonly vtc: string;
  readonly volser: string;
  readonly start: number;
  end: number | null;
  outcome: Outcome;
  /** The write whose data came back (0: a volume with no data); null when not ok. */
  wrote: number | null;
  vts: VtsName | null;
  error: string | null;
}

export type HostOp = WriteOp | ReadOp;

/** When the system-wide newest committed key changed, and what it left current. */
export interface KeyEvent {
  readonly at: number;
  readonly seq: number;
  readonly current: readonly VtsName[];
}

/** A write's data: `volser`, the write's id and the filler's length, then the filler (a short or altered copy does not pass). */
export function payloadFor(volser: string, id: number, filler: number): Uint8Array {
  const head = new TextEncoder().encode(`${volser}|w${id}|${filler}|`);
  const out = new Uint8Array(head.length + filler);
  out.set(head);
  for (let i = 0; i < filler; i++) out[head.length + i] = (id * 31 + i * 7) & 0xff;
  return out;
}

/** The write id a read's data names: 0 for no data, null for data no write of this volume made (corruption). */
export function writerOf(volser: string, data: Uint8Array): number | null {
  if (data.length === 0) return 0;
  const text = new TextDecoder().decode(data.subarray(0, Math.min(data.length, 64)));
  const m = /^([^|]+)\|w(\d+)\|(\d+)\|/.exec(text);
  if (m === null || m[1] !== volser) return null;
  const id = Number(m[2]);
  const expect = payloadFor(volser, id, Number(m[3]));
  return Buffer.from(expect).equals(Buffer.from(data)) ? id : null;
}

export interface Violation {
  readonly code: 'lost-write' | 'stale-read' | 'not-current' | 'corrupt-read' | 'engine-invariant';
  readonly message: string;
}

/** The newest key (by seq, first seen on a tie) as of time `t`. */
function keyAt(keys: readonly KeyEvent[], t: number): KeyEvent | null {
  let k: KeyEvent | null = null;
  for (const e of keys) {
    if (e.at > t) break;
    k = e;
  }
  return k;
}

/**
 * Checks a history. `finalReads`: reads made after healing, one per volume (their failure is
 * liveness, not a violation); `finalState`: per volume, the newest data generation held by a
 * VTS in current at the end (the fallback when the final read could not run).
 */
export function checkHistory(ops: readonly HostOp[], keys: readonly KeyEvent[], finalState: ReadonlyMap<string, number> | null = null): Violation[] {
  const out: Violation[] = [];
  const writes = new Map<number, WriteOp>();
  for (const o of ops) if (o.kind === 'write') writes.set(o.id, o);
  const acked = [...writes.values()].filter((w) => w.outcome === 'ok' && w.end !== null);
  for (const r of ops) {
    if (r.kind !== 'read' || r.outcome !== 'ok' || r.end === null) continue;
    if (r.wrote === null) {
      out.push({ code: 'corrupt-read', message: `read ${r.id} of ${r.volser} through ${r.vtc} returned data no write made (from VTS ${r.vts ?? '?'})` });
      continue;
    }
    // The newest write acknowledged before the read began.
    let before: WriteOp | null = null;
    for (const w of acked) if (w.volser === r.volser && (w.end ?? Infinity) < r.start && (before === null || w.index > before.index)) before = w;
    const got = r.wrote === 0 ? null : writes.get(r.wrote);
    const gotIndex = got?.index ?? 0;
    if (before !== null && gotIndex < before.index) {
      out.push({ code: 'stale-read', message: `read ${r.id} of ${r.volser} through ${r.vtc} at ${r.start} returned ${got === undefined || got === null ? 'no data' : `write ${got.id}`} from VTS ${r.vts ?? '?'}, but write ${before.id} (generation ${before.generation ?? '?'}) was acknowledged at ${before.end ?? '?'} before it began` });
    }
    // The VTS that served it must be current under the newest key at some point of the read.
    if (r.vts !== null) {
      const during = keys.filter((k) => k.at > r.start && k.at <= r.end!);
      // Before the first key the genesis is in force, and its current holds both VTS.
      const atStart: KeyEvent = keyAt(keys, r.start) ?? { seq: 0, current: ['A', 'B'], at: -Infinity };
      const cands = [atStart, ...during];
      // current {} (both VTS returning, tokens reconciled between them) excludes neither.
      if (cands.length > 0 && cands.every((k) => k.current.length > 0 && !k.current.includes(r.vts!))) {
        out.push({ code: 'not-current', message: `read ${r.id} of ${r.volser} through ${r.vtc} was served by VTS ${r.vts}, outside current of key ${cands.map((k) => `${k.seq}{${k.current.join(',')}}`).join(' / ')} all along [${r.start}, ${r.end}]` });
      }
    }
  }
  if (finalState !== null) {
    const newest = new Map<string, WriteOp>();
    for (const w of acked) {
      const b = newest.get(w.volser);
      if (b === undefined || w.index > b.index) newest.set(w.volser, w);
    }
    for (const [v, w] of newest) {
      const held = finalState.get(v) ?? 0;
      if (w.generation !== null && held < w.generation) out.push({ code: 'lost-write', message: `write ${w.id} of ${v} (generation ${w.generation}, acknowledged at ${w.end ?? '?'} with copies on ${w.copies.join(',')}) is not held by any current VTS at the end (newest there: ${held})` });
    }
  }
  return out;
}
