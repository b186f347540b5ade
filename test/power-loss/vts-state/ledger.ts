/**
 * What a VTS-state campaign wrote: every write attempted (recorded before the production
 * call) and every write acknowledged (recorded after the production call resolved). A cut is
 * checked against the acknowledgements frozen just before it and the attempts as they stand
 * when it is checked: acknowledged must be there, and whatever is there must have been attempted.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TapeCopy, VolumeMeta } from '../../../src/vts/volume-cache.js';

export const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

/** Deterministic bytes of a given length (content is checked by hash, so it must be reproducible). */
export function bytesOf(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Small deterministic PRNG, so a failing run can be replayed from its seed. */
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

/** Acknowledged state of one volume at one instant. */
export interface VolumeAcks {
  readonly data: number;
  readonly token: number;
  /** Generations whose tape copy was acknowledged as recorded. */
  readonly copied: ReadonlySet<number>;
}

/** One virtual volume's attempts and acknowledgements. */
export class VolumeLedger {
  #next = 0;
  /** Commit attempts by generation. */
  readonly commits = new Map<number, { sha256: string; bytes: number }>();
  /** Token-only raises attempted. */
  readonly tokens = new Set<number>();
  /** Tape copies attempted, by generation. */
  readonly copies = new Map<number, TapeCopy[]>();
  #ackData = 0;
  #ackToken = 0;
  readonly #ackCopied = new Set<number>();

  constructor(readonly volser: string) {}

  /** Generations only move forward, commits and token raises alike (as a VTC plans them). */
  nextGeneration(): number {
    return ++this.#next;
  }

  attemptCommit(gen: number, image: Uint8Array): void {
    this.commits.set(gen, { sha256: sha256(image), bytes: image.length });
  }

  ackCommit(gen: number): void {
    this.#ackData = Math.max(this.#ackData, gen);
    this.#ackToken = Math.max(this.#ackToken, gen);
  }

  attemptToken(gen: number): void {
    this.tokens.add(gen);
  }

  ackToken(gen: number): void {
    this.#ackToken = Math.max(this.#ackToken, gen);
  }

  attemptCopy(copy: TapeCopy): void {
    const l = this.copies.get(copy.generation) ?? [];
    l.push(copy);
    this.copies.set(copy.generation, l);
  }

  ackCopy(copy: TapeCopy): void {
    this.#ackCopied.add(copy.generation);
  }

  freeze(): VolumeAcks {
    return { data: this.#ackData, token: this.#ackToken, copied: new Set(this.#ackCopied) };
  }
}

/** A value written whole again and again (slot-file saves, durable files), numbered 1, 2, ... */
export class SeriesLedger {
  attempted = 0;
  acked = 0;
  constructor(readonly name: string) {}
  freeze(): number {
    return this.acked;
  }
}

/** A failed check: which property, on which item. The campaign counts them per check and cut mode. */
export interface Violation {
  readonly check: string;
  readonly detail: string;
}

/**
 * Checks one volume as the reopened cache has it against what was acknowledged before the cut.
 * `dataPath` is where the reopened cache says its data is.
 */
export function checkVolume(l: VolumeLedger, acks: VolumeAcks, m: VolumeMeta | undefined, dataPath: string | null, o: { copiesByPremigrator?: boolean } = {}): Violation[] {
  const out: Violation[] = [];
  const v = l.volser;
  if (m === undefined) {
    if (acks.token > 0 || acks.data > 0) out.push({ check: 'volume-acked', detail: `${v}: gone, though generation ${acks.token} (data ${acks.data}) was acknowledged` });
    return out;
  }
  if (m.generation < acks.token) out.push({ check: 'token-not-older', detail: `${v}: token generation ${m.generation} older than acknowledged ${acks.token}` });
  if (!l.commits.has(m.generation) && !l.tokens.has(m.generation)) out.push({ check: 'never-written', detail: `${v}: token generation ${m.generation} was never written` });
  if (m.dataGeneration < acks.data) out.push({ check: 'commit-acked', detail: `${v}: data generation ${m.dataGeneration} older than acknowledged commit ${acks.data}` });
  if (m.dataGeneration > m.generation) out.push({ check: 'never-written', detail: `${v}: data generation ${m.dataGeneration} above token ${m.generation}` });
  if (m.dataGeneration > 0) {
    const c = l.commits.get(m.dataGeneration);
    if (!c) out.push({ check: 'never-written', detail: `${v}: data generation ${m.dataGeneration} was never committed` });
    else if (c.sha256 !== m.sha256 || c.bytes !== m.bytes) out.push({ check: 'commit-content', detail: `${v}: generation ${m.dataGeneration} metadata names ${m.bytes} bytes ${m.sha256.slice(0, 12)}, the commit wrote ${c.bytes} bytes ${c.sha256.slice(0, 12)}` });
    const migrated = m.premigrated !== null && m.premigrated.generation === m.dataGeneration;
    if (dataPath === null && !(o.copiesByPremigrator && migrated)) out.push({ check: 'commit-acked', detail: `${v}: generation ${m.dataGeneration} has no data in cache and no tape copy` });
    else if (dataPath !== null) {
      let data: Buffer | undefined;
      try {
        data = readFileSync(dataPath);
      } catch (e) {
        out.push({ check: 'commit-content', detail: `${v}: data file ${dataPath} unreadable (${(e as Error).message})` });
      }
      if (data !== undefined && (data.length !== m.bytes || sha256(data) !== m.sha256)) out.push({ check: 'commit-content', detail: `${v}: data file holds ${data.length} bytes ${sha256(data).slice(0, 12)}, metadata says ${m.bytes} bytes ${m.sha256.slice(0, 12)}` });
    }
  }
  if (m.premigrated !== null) {
    // The premigrator makes its own copies: they must at least describe the data committed.
    const p = m.premigrated;
    const known = o.copiesByPremigrator ? l.commits.get(p.generation)?.sha256 === p.sha256 && l.commits.get(p.generation)?.bytes === p.bytes : (l.copies.get(p.generation) ?? []).some((c) => JSON.stringify(c) === JSON.stringify(p));
    if (!known) out.push({ check: 'never-written', detail: `${v}: tape copy ${JSON.stringify(m.premigrated)} was never recorded` });
    if (m.premigrated.generation !== m.dataGeneration) out.push({ check: 'never-written', detail: `${v}: tape copy of generation ${m.premigrated.generation} on data generation ${m.dataGeneration}` });
  } else if (acks.copied.has(m.dataGeneration) && m.dataGeneration > 0) {
    out.push({ check: 'copy-acked', detail: `${v}: tape copy of generation ${m.dataGeneration} was acknowledged and is gone` });
  }
  return out;
}

/** Checks one numbered series: the value found is numbered at least as acknowledged, at most as attempted, and is exactly what that number wrote. */
export function checkSeries(l: SeriesLedger, acked: number, found: number | undefined, exact: boolean, what: string): Violation[] {
  if (found === undefined) return acked > 0 ? [{ check: `${what}-acked`, detail: `${l.name}: gone, though save ${acked} was acknowledged` }] : [];
  const out: Violation[] = [];
  if (found < acked) out.push({ check: `${what}-acked`, detail: `${l.name}: holds save ${found}, older than acknowledged ${acked}` });
  if (found > l.attempted || found < 0) out.push({ check: 'never-written', detail: `${l.name}: holds save ${found}, never written (last attempted ${l.attempted})` });
  if (!exact) out.push({ check: `${what}-content`, detail: `${l.name}: save ${found} does not hold what save ${found} wrote` });
  return out;
}
