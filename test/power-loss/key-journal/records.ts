/**
 * The numbered record stream of the key journal power-loss campaign, and the check every
 * cut is held to. Record i carries its number first, then a pattern, with lengths from 8
 * bytes to about 3 KiB so commit groups straddle 4 KiB pages in many ways.
 */
import { decodeJournal, HEADER_SIZE, scanJournal } from '../../../src/hotpath/journal-format.js';

export function record(i: number): Uint8Array {
  const len = 8 + (Math.imul(i + 1, 2654435761) >>> 0) % 3000;
  const r = new Uint8Array(len);
  const v = new DataView(r.buffer);
  v.setUint32(0, i, true);
  v.setUint32(4, len, true);
  for (let k = 8; k < len; k++) r[k] = (i * 13 + k) & 0xff;
  return r;
}

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One broken promise of the journal, named by the check it failed. */
export interface Violation {
  readonly check: 'opens' | 'torn-tail-refused' | 'acked-lost' | 'intact' | 'never-appended' | 'recovery-undone';
  readonly detail: string;
}

/**
 * What a reopened journal must hold: records 0..n-1 of the stream, in order and intact,
 * with n at least `acked` (every acknowledged record; acknowledgements come in order) and
 * at most `issued` (nothing never appended).
 */
export function checkRecords(recs: readonly Uint8Array[], acked: number, issued: number): Violation[] {
  const out: Violation[] = [];
  if (recs.length < acked) out.push({ check: 'acked-lost', detail: `${recs.length} record(s) after the cut, ${acked} had been acknowledged` });
  if (recs.length > issued) out.push({ check: 'never-appended', detail: `${recs.length} record(s) after the cut, only ${issued} were ever appended` });
  for (let k = 0; k < recs.length; k++) {
    if (!Buffer.from(recs[k]!).equals(Buffer.from(record(k)))) {
      const n = recs[k]!.length >= 4 ? new DataView(recs[k]!.buffer, recs[k]!.byteOffset).getUint32(0, true) : -1;
      out.push({ check: 'intact', detail: `record ${k} is not what was appended (it carries number ${n}, ${recs[k]!.length} bytes)` });
      break;
    }
  }
  return out;
}

/** The independent decoder's view of the image: a power cut must never look like mid-log damage. */
export function checkImage(image: Uint8Array | null): Violation[] {
  if (image === null) return [];
  const s = scanJournal(image);
  if (s.damage.length === 0) return [];
  const d = s.damage[0]!;
  return [{ check: 'torn-tail-refused', detail: `the decoder sees mid-log damage at ${d.offset} (+${d.length} bytes) with ${s.recordsAfterDamage} record(s) after it (header ${HEADER_SIZE} bytes)` }];
}

/**
 * True when a valid record follows the first damaged one: a cut that tore a commit group
 * in the middle (a lost page) and kept later records of it. Rule "any valid record after
 * damage is corruption" would refuse these; the continuation flag is what tells them apart.
 */
export function survivorsAfterDamage(image: Uint8Array | null): boolean {
  if (image === null) return false;
  const p = decodeJournal(image).validBytes;
  for (let q = p + 1; q + HEADER_SIZE < image.length; q++) if (decodeJournal(image.subarray(q)).records.length > 0) return true;
  return false;
}
