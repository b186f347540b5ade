/**
 * Host I/O as the protocol sees it: per-volume tokens `{generation, consistent}` on each
 * VTS, the two copy modes, and the rules that plan a write, reconcile tokens and list
 * pending copies. Pure functions over plain maps, shared by the VTS unit and the simulation.
 */
import type { PtpStatus, VtsName } from './types.js';
import { otherVts } from './types.js';

export interface Token {
  readonly generation: number;
  /** True when this VTS holds the data of `generation`; false while the copy is pending. */
  readonly consistent: boolean;
}

export const CopyMode = { immediate: 'immediate', deferred: 'deferred' } as const;
export type CopyMode = (typeof CopyMode)[keyof typeof CopyMode];

/** One VTS's copy of a volume: its token and the generation of the data it really holds (0: none). */
export interface VolumeCopy {
  generation: number;
  consistent: boolean;
  dataGen: number;
}

export type WriteTarget = { readonly vts: VtsName; readonly data: boolean };
export type WritePlan =
  | { readonly ok: true; readonly generation: number; readonly epoch: number; readonly targets: readonly WriteTarget[] }
  | { readonly ok: false; readonly reason: string };

/**
 * Whether a write planned under key `planEpoch` may still be acknowledged: no newer key took
 * effect meanwhile, or the newer one is on-line and holds every VTS the data went to as
 * current. (A forced shutdown that could not reach a VTS does not fence the write there.)
 */
export function writeStillCurrent(planEpoch: number, dataOn: readonly VtsName[], now: { readonly status: PtpStatus; readonly epoch: number }, current: readonly VtsName[]): boolean {
  return now.epoch === planEpoch || (now.status.kind !== 'offline' && dataOn.every((v) => current.includes(v)));
}

/**
 * Generations per volume one key may span. A write planned under key `e` takes a generation
 * of at least `e * GENERATIONS_PER_KEY + 1`, so generations order writes by (key, count):
 * a write committed on one VTS under key `e` whose copy or token update was then refused
 * (the other VTS recorded key `e + 1` in between) keeps a generation below every write
 * planned under a newer key. Without the floor the survivor could acknowledge the same
 * generation number with other data, and a later reconcile (newest generation wins) could
 * not tell the unacknowledged copy from the acknowledged one. 2^24 writes of one volume under
 * one key, and keys up to seq 2^29, stay within exact integers.
 */
export const GENERATIONS_PER_KEY = 2 ** 24;

/** The lowest generation a write planned under key `epoch` may take. */
export function generationFloor(epoch: number): number {
  return epoch * GENERATIONS_PER_KEY + 1;
}

/**
 * Plans a host write (mount, write, close) under the VTC's status. Every target must
 * accept it with the same epoch at close time, or the write fails and is not acknowledged.
 * In on-line with both, the token goes to both VTS even when the data goes to one
 * (deferred copy), so each VTS knows what it lacks: that is what copiesPending counts.
 */
export function planWrite(args: {
  readonly status: PtpStatus;
  readonly epoch: number;
  readonly copyMode: CopyMode;
  readonly primary: VtsName;
  readonly tokens: { readonly A?: Token | undefined; readonly B?: Token | undefined };
}): WritePlan {
  const { status, epoch, copyMode, tokens } = args;
  const gen = (t: Token | undefined): number => t?.generation ?? 0;
  switch (status.kind) {
    case 'offline':
      return { ok: false, reason: 'PtP system is off-line' };
    case 'online-single': {
      const x = status.vts;
      if (tokens[x] === undefined) return { ok: false, reason: `VTS ${x} unreachable` };
      return { ok: true, generation: Math.max(gen(tokens[x]) + 1, generationFloor(epoch)), epoch, targets: [{ vts: x, data: true }] };
    }
    case 'online-both':
    case 'resync': {
      if (tokens.A === undefined || tokens.B === undefined) return { ok: false, reason: 'a VTS is unreachable' };
      const g = Math.max(gen(tokens.A) + 1, gen(tokens.B) + 1, generationFloor(epoch));
      if (copyMode === 'immediate') return { ok: true, generation: g, epoch, targets: [{ vts: 'A', data: true }, { vts: 'B', data: true }] };
      const p = args.primary;
      return { ok: true, generation: g, epoch, targets: [{ vts: p, data: true }, { vts: otherVts(p), data: false }] };
    }
  }
}

export type ReadPlan = { readonly ok: true; readonly generation: number; readonly holders: readonly VtsName[] } | { readonly ok: false; readonly reason: string };

/**
 * Where a host read may be served from (decided here). The tokens are the ones each VTS gave
 * under the reader's epoch (a VTS that fenced the reader gives none, and the read is refused
 * by the caller). In on-line with both the reader must hear from both: a VTS outside
 * `current` of a key the reader missed may still answer, and only the other one (which
 * recorded that key) fences it. The read goes to a VTS holding the newest generation either
 * reports, never to one whose data is older, even if its own token says consistent (a
 * restored image, or a VTS that missed writes).
 */
export function planRead(args: {
  readonly status: PtpStatus;
  readonly tokens: { readonly A?: (Token & { readonly dataGeneration: number }) | undefined; readonly B?: (Token & { readonly dataGeneration: number }) | undefined };
}): ReadPlan {
  const { status, tokens } = args;
  let allowed: VtsName[];
  switch (status.kind) {
    case 'offline':
      return { ok: false, reason: 'PtP system is off-line' };
    case 'online-single':
      allowed = [status.vts];
      if (tokens[status.vts] === undefined) return { ok: false, reason: `VTS ${status.vts} unreachable` };
      break;
    default:
      if (tokens.A === undefined || tokens.B === undefined) return { ok: false, reason: 'a VTS is unreachable: a read must hear from both to know the newest generation' };
      allowed = ['A', 'B'];
  }
  const g = Math.max(0, ...allowed.map((x) => tokens[x]?.generation ?? 0));
  const holders = allowed.filter((x) => {
    const t = tokens[x];
    return t !== undefined && t.consistent && t.generation === g && t.dataGeneration === g && g > 0;
  });
  if (holders.length === 0) return { ok: false, reason: g === 0 ? 'no VTS in service holds the volume' : `no VTS in service holds generation ${g}, the newest known` };
  return { ok: true, generation: g, holders };
}

/** Applies a planned write to one VTS's volume map (the caller has checked fencing and operation). */
export function applyWrite(vols: Map<string, VolumeCopy>, volser: string, generation: number, data: boolean): void {
  const c = vols.get(volser);
  if (data) vols.set(volser, { generation, consistent: true, dataGen: generation });
  else vols.set(volser, { generation, consistent: false, dataGen: c?.dataGen ?? 0 });
}

/** Tokens after a return: the newest generation wins on both sides; a side holding older data is marked behind. */
export function reconcileTokens(a: Map<string, VolumeCopy>, b: Map<string, VolumeCopy>): void {
  for (const v of new Set([...a.keys(), ...b.keys()])) {
    const ca = a.get(v) ?? { generation: 0, consistent: true, dataGen: 0 };
    const cb = b.get(v) ?? { generation: 0, consistent: true, dataGen: 0 };
    const g = Math.max(ca.generation, cb.generation);
    a.set(v, { generation: g, consistent: ca.dataGen === g, dataGen: ca.dataGen });
    b.set(v, { generation: g, consistent: cb.dataGen === g, dataGen: cb.dataGen });
  }
}

/** Volumes this VTS knows it lacks (token not consistent), sorted. */
export function behindList(vols: Map<string, VolumeCopy>): string[] {
  const out: string[] = [];
  for (const [v, c] of vols) if (!c.consistent) out.push(v);
  return out.sort();
}

/** Copies one volume from `from` to `to` when `to` is behind and `from` holds that generation; true if copied. */
export function copyVolume(from: Map<string, VolumeCopy>, to: Map<string, VolumeCopy>, volser: string): boolean {
  const s = from.get(volser);
  const d = to.get(volser);
  if (s === undefined || d === undefined || d.consistent || !s.consistent || s.dataGen < d.generation) return false;
  to.set(volser, { generation: s.generation, consistent: true, dataGen: s.dataGen });
  return true;
}
