/**
 * What a VTC knows of how far each run of a VTS's disks got, to tell a restored older image
 * from the VTS that left (docs/protocol-notes.md, "A restored image that no key tells apart").
 *
 * A VTS reports the sum of its volumes' token generations (`tokenSum` in its view). Token
 * generations only move forward and volumes are never removed from a VTS, so the sum of a
 * genuine VTS never goes down, across restarts included. A restore brings back the disks as
 * they were, image id included: the same image, reporting a sum below one seen of it in an
 * earlier boot, is an older copy of it, whatever key seq it reports. Within one boot nothing
 * is lost, so evidence from the current boot never judges it (a view older than a peer's is
 * only late, not older).
 *
 * VTCs share what they saw in their hellos, so a VTC that never reached the VTS while it
 * took writes knows as much as the one that did. The evidence is memory only: a VTC that
 * restarts learns it again from its peers.
 */
import type { VtsName } from './types.js';

/** The largest token sum seen of one boot of one VTS image, with the key seq it was seen under. */
export interface SumSighting {
  readonly vts: VtsName;
  readonly imageId: string;
  readonly bootId: string;
  readonly sum: number;
  /** Seq of the newest key of the VTC that saw it, when it saw it: an override at a higher seq discards it. */
  readonly seq: number;
}

/** Boots remembered per VTS (the lowest sums go first). */
const MAX_BOOTS = 8;
/** Sightings per VTS that a hello carries (the highest sums). */
export const SUMS_PER_HELLO = 3;

export class ImageEvidence {
  readonly #by: Record<VtsName, Map<string, SumSighting>> = { A: new Map(), B: new Map() };
  /** Per VTS: sightings under a key seq below this were discarded by an override. */
  readonly #acceptedAt: Record<VtsName, number> = { A: 0, B: 0 };

  /** Takes a sighting in (own view or a peer's hello); true when it raised what is known. */
  note(s: SumSighting): boolean {
    if (s.imageId === '' || s.bootId === '' || !Number.isSafeInteger(s.sum) || s.sum < 0 || s.seq < this.#acceptedAt[s.vts]) return false;
    const m = this.#by[s.vts];
    const id = `${s.imageId}\u0000${s.bootId}`;
    const old = m.get(id);
    if (old !== undefined && old.sum >= s.sum) return false;
    m.set(id, old === undefined ? s : { ...s, seq: Math.max(s.seq, old.seq) });
    if (m.size > MAX_BOOTS) {
      let low: [string, SumSighting] | undefined;
      for (const e of m) if (low === undefined || e[1].sum < low[1].sum) low = e;
      if (low !== undefined) m.delete(low[0]);
    }
    return true;
  }

  /** The largest sum seen of image `imageId` of VTS `vts` in a boot other than `bootId` (0 when none). */
  floor(vts: VtsName, imageId: string, bootId: string): number {
    let f = 0;
    for (const s of this.#by[vts].values()) if (s.imageId === imageId && s.bootId !== bootId && s.sum > f) f = s.sum;
    return f;
  }

  /**
   * An override at key `seq` put VTS `vts` back as the operator found it: what was seen of it
   * before is discarded, here and when a peer's hello still carries it.
   */
  accept(vts: VtsName, seq: number): void {
    if (seq <= this.#acceptedAt[vts]) return;
    this.#acceptedAt[vts] = seq;
    for (const [id, s] of this.#by[vts]) if (s.seq < seq) this.#by[vts].delete(id);
  }

  /** What a hello carries: per VTS, the sightings with the highest sums. */
  shared(): SumSighting[] {
    const out: SumSighting[] = [];
    for (const vts of ['A', 'B'] as const) out.push(...[...this.#by[vts].values()].sort((a, b) => b.sum - a.sum).slice(0, SUMS_PER_HELLO));
    return out;
  }
}
