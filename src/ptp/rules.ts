/**
 * The decision rules of PROTOCOL.md as pure functions: thresholds, how a command changes
 * status / current / state, the mode table, the vote, and the PtP status a VTC derives.
 */
import { InvalidCommandError, InvalidThresholdError, UnknownVtsError, UnsafeThresholdError } from './errors.js';
import { otherVts } from './types.js';
import type { CommitRecord, Command, KeyReason, KeyState, Mode, PtpStatus, ShutdownKey, StatusPair, VtsName, VtsView } from './types.js';

export const defaultThreshold = (n: number): number => Math.floor(n / 2);

/**
 * The lowest threshold that keeps quorums intersecting: two groups of more than T VTCs
 * share a VTC only when 2(T + 1) > n, that is T >= floor(n/2). Below it two halves of a
 * partition can each commit a different key at the same seq (split brain).
 */
export const minSafeThreshold = (n: number): number => Math.floor(n / 2);

/**
 * Returns T when `0 <= T < n` and, unless `belowHalf` (the operator's audited override),
 * `T >= floor(n/2)`. Throws {@link InvalidThresholdError} or {@link UnsafeThresholdError}.
 */
export function checkThreshold(threshold: unknown, n: number, o: { readonly belowHalf?: boolean } = {}): number {
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 0 || threshold >= n) {
    throw new InvalidThresholdError(threshold, n);
  }
  if (threshold < minSafeThreshold(n) && o.belowHalf !== true) throw new UnsafeThresholdError(threshold, n, minSafeThreshold(n));
  return threshold;
}

/**
 * Why a key that carries `threshold` does not fit the VTC configuration here (n VTCs)
 * after `prev`, or null when it fits. Every VTC checks every key it acknowledges, so a
 * VTC configured with another VTC list (another default threshold) or a key setting an
 * unsafe threshold without the audited override is refused by the quorum, not only by
 * the coordinator (decided here).
 */
export function thresholdMismatch(key: Pick<ShutdownKey, 'seq' | 'command' | 'reason' | 'threshold'>, prev: Pick<ShutdownKey, 'seq' | 'threshold'>, n: number): string | null {
  if (key.threshold >= n) return `key ${key.seq} carries threshold ${key.threshold}, but ${n} VTCs are configured here (0 <= T < ${n}): do the VTCs share one topology?`;
  if (key.command === 'threshold-set') {
    if (key.threshold < minSafeThreshold(n) && key.reason !== 'override') return `key ${key.seq} sets threshold ${key.threshold} below ${minSafeThreshold(n)} (floor(n/2), n = ${n}) without the audited override`;
    return null;
  }
  if (key.threshold !== prev.threshold) return `key ${key.seq} carries threshold ${key.threshold}, but key ${prev.seq} it follows has ${prev.threshold} here: do the VTCs share one topology?`;
  return null;
}

/**
 * A short fingerprint of the configuration every VTC must share: the PtP id and the VTC
 * list in order (the voter ids, the electorate, the default threshold). Not a secret and
 * not a MAC (frames are authenticated already): it only lets a VTC see that a peer was
 * configured with another list. FNV-1a, twice with different offsets.
 */
export function configDigest(ptpId: string, vtcs: readonly string[]): string {
  const text = `${ptpId}\n${vtcs.length}\n${vtcs.join('\n')}`;
  const fnv = (basis: number): string => {
    let h = basis >>> 0;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h.toString(16).padStart(8, '0');
  };
  return fnv(0x811c9dc5) + fnv(0x050c5d1f);
}

export function checkVts(name: unknown): VtsName {
  if (name === 'A' || name === 'B') return name;
  throw new UnknownVtsError(name);
}

/**
 * What each mode does on the VTS (PROTOCOL.md, execution modes). Data, so the VTS unit,
 * the simulation and the docs all read the same table.
 */
export const MODE_POLICY = {
  normal: { newMounts: 'refused', activeMounts: 'complete', pendingCopies: 'drain', unreachable: 'fail' },
  expedite: { newMounts: 'refused', activeMounts: 'complete-until-bound', pendingCopies: 'drain-until-bound', unreachable: 'fail' },
  immediate: { newMounts: 'refused', activeMounts: 'abort', pendingCopies: 'leave', unreachable: 'fail' },
  forced: { newMounts: 'refused', activeMounts: 'abort', pendingCopies: 'leave', unreachable: 'proceed' },
} as const satisfies Record<Mode, { newMounts: string; activeMounts: string; pendingCopies: string; unreachable: string }>;
export type ModePolicy = (typeof MODE_POLICY)[Mode];

/** The key a PtP system starts from (seq 0, never stored): both in, in sync, on-line. */
export function genesisKey(ptpId: string, n: number): ShutdownKey {
  return {
    ptpId,
    seq: 0,
    issuedAt: 0,
    originVtc: '',
    command: 'ptp-start',
    subjects: ['A', 'B'],
    status: { A: 'in', B: 'in' },
    current: ['A', 'B'],
    mode: 'normal',
    copiesPending: [],
    acks: [],
    reason: 'command',
    state: { kind: 'online-both' },
    threshold: defaultThreshold(n),
    election: null,
    prevSeq: 0,
    prevMac: '',
    mac: '',
  };
}

/** The key as committed: acks, final copiesPending, current and state come from the commit record. */
export function effectiveKey(key: ShutdownKey, commit: CommitRecord): ShutdownKey {
  const k = { ...key, acks: commit.acks, copiesPending: commit.copiesPending, current: commit.current, state: commit.state };
  return commit.election === undefined ? k : { ...k, election: commit.election };
}

/** A forced key that fewer than T+1 VTCs hold does not let the PtP system on-line by itself (decided here). */
export function isStrong(key: ShutdownKey): boolean {
  return key.seq === 0 || key.mode !== 'forced' || key.acks.length > key.threshold;
}

export interface CommandShape {
  readonly command: Command;
  readonly subjects: readonly VtsName[];
  readonly reason: KeyReason;
  readonly threshold?: number;
  /** Test-only (with a BrokenRule): skip the check that an elected VTS is current. */
  readonly unchecked?: boolean;
  /** The operator's reason for an override, recorded in the key. */
  readonly note?: string;
}

export interface Transition {
  readonly status: StatusPair;
  readonly current: readonly VtsName[];
  readonly state: KeyState;
  readonly threshold: number;
}

const sortVts = (l: Iterable<VtsName>): VtsName[] => [...new Set(l)].sort();

/**
 * How a command changes the PtP system, given the previous effective key and the volumes
 * pending on the subjects (null: unknown, because the survivor could not be asked).
 * `current` is computed, never guessed (PROTOCOL.md "Shutdown key"). Throws
 * {@link InvalidCommandError} when the command does not apply to the previous status.
 */
export function transition(prev: ShutdownKey, c: CommandShape, pending: readonly string[] | null): Transition {
  const drained = pending !== null && pending.length === 0;
  const T = prev.threshold;
  switch (c.command) {
    case 'vts-out': {
      const x = c.subjects[0];
      if (x === undefined || c.subjects.length !== 1) throw new InvalidCommandError('vts-out names exactly one VTS');
      if (prev.status[x] === 'out') throw new InvalidCommandError(`VTS ${x} is already out of operation (key ${prev.seq})`);
      const y = otherVts(x);
      const status = { ...prev.status, [x]: 'out' } as StatusPair;
      if (prev.status[y] === 'in' && prev.state.kind === 'online-both') {
        return drained
          ? { status, current: [y], state: { kind: 'online-single', vts: y }, threshold: T }
          : { status, current: [], state: { kind: 'offline' }, threshold: T };
      }
      // The last VTS to go out keeps its membership; an off-line system took no writes since.
      // Unless it was lost together with the other while both were current (pending null: its
      // copies are unknown): neither alone then holds every write, only both together do.
      if (pending === null) return { status, current: prev.current.filter((v) => v !== x), state: { kind: 'offline' }, threshold: T };
      return { status, current: prev.current, state: { kind: 'offline' }, threshold: T };
    }
    case 'ptp-shutdown': {
      if (prev.status.A === 'out' && prev.status.B === 'out') throw new InvalidCommandError('both VTS are already out of operation');
      const status: StatusPair = { A: 'out', B: 'out' };
      if (prev.state.kind === 'online-both') return { status, current: drained ? ['A', 'B'] : [], state: { kind: 'offline' }, threshold: T };
      return { status, current: prev.current, state: { kind: 'offline' }, threshold: T };
    }
    case 'vts-in': {
      const x = c.subjects[0];
      if (x === undefined) throw new InvalidCommandError('vts-in names a VTS');
      const status = { ...prev.status } as { A: 'in' | 'out'; B: 'in' | 'out' };
      // A key that only supersedes a forked key recorded on VTS already in changes nothing
      // else: it records a newer seq there, so fences of the chain's keys pass again.
      if (c.reason === 'supersede') {
        for (const s of c.subjects) if (prev.status[s] !== 'in') throw new InvalidCommandError(`VTS ${s} is not in operation (key ${prev.seq}): there is no recorded key of it to supersede`);
        return { status: { ...prev.status }, current: prev.current, state: prev.state, threshold: T };
      }
      for (const s of c.subjects) status[s] = 'in';
      if (c.reason === 'election' || c.reason === 'override') {
        const y = otherVts(x);
        if (prev.status[y] === 'in') throw new InvalidCommandError(`VTS ${y} is in operation: placing ${x} on-line alone needs ${y} out`);
        if (c.reason === 'election' && c.unchecked !== true && !prev.current.includes(x)) throw new InvalidCommandError(`VTS ${x} is not current in key ${prev.seq}`);
        return { status, current: [x], state: { kind: 'online-single', vts: x }, threshold: T };
      }
      if (status.A === 'in' && status.B === 'in') {
        // Phase 2 reconciles the tokens before the key commits, so both hold every write between them.
        return { status, current: ['A', 'B'], state: { kind: 'online-both' }, threshold: T };
      }
      if (prev.status[x] === 'in') throw new InvalidCommandError(`VTS ${x} is already in operation (key ${prev.seq})`);
      // One VTS back alone: on-line only after an election (claims 1, 8).
      return { status, current: prev.current, state: { kind: 'offline' }, threshold: T };
    }
    case 'ptp-start':
      return { status: { A: 'in', B: 'in' }, current: ['A', 'B'], state: { kind: 'online-both' }, threshold: T };
    case 'threshold-set':
      return { status: prev.status, current: prev.current, state: prev.state, threshold: c.threshold ?? T };
  }
}

export { sortVts };

/** The PtP status a VTC derives from its newest committed key and what the VTS report. */
export function deriveStatus(key: ShutdownKey, views: { readonly A?: VtsView | undefined; readonly B?: VtsView | undefined }): PtpStatus {
  if (!isStrong(key)) return { kind: 'offline' };
  const s = key.state;
  if (s.kind !== 'online-both') return s;
  for (const to of ['A', 'B'] as const) {
    const from = otherVts(to);
    const vt = views[to];
    const vf = views[from];
    if (vt !== undefined && vf !== undefined && vt.behind.length > 0 && vf.behind.length === 0) return { kind: 'resync', from, to };
  }
  return s;
}

export const isOnline = (s: PtpStatus): boolean => s.kind !== 'offline';

/** Test-only switches that break a voting rule on purpose, to prove the invariant checker catches it. */
export const BrokenRule = {
  none: 'none',
  yesWithoutKeyChecks: 'yes-without-key-checks',
  yesWithoutKeySeqCheck: 'yes-without-keyseq-check',
} as const;
export type BrokenRule = (typeof BrokenRule)[keyof typeof BrokenRule];

export interface VoteInput {
  readonly key: ShutdownKey;
  readonly vts: VtsName;
  readonly view: VtsView | undefined;
  /** Range of last key seq this VTC expects the VTS to report: [newest confirmed record, newest key held]. */
  readonly expectLo: number;
  readonly expectHi: number;
  readonly electionSeq: number;
  /** Highest keySeq on any ballot this VTC has seen. */
  readonly seenMaxKeySeq: number;
  /** The ballot rides on the key that starts the VTS (decided here): it must answer, not yet be in operation. */
  readonly starting?: boolean;
  /**
   * This VTC saw the VTS restart while the other was lost too (both lost at once) and no key
   * it trusts has judged the VTS since: a restored image of one of two VTS that were both
   * current reports an expected seq, and only the other's tokens tell what it lacks.
   */
  readonly bothLost?: boolean;
  /** Why the VTS is an older image of itself by its token sum (ImageEvidence), when it is. */
  readonly olderImage?: string;
  readonly broken?: BrokenRule;
}

/**
 * A VTC's own decision (PROTOCOL.md vote step 2). YES only if the VTS is in `current` of
 * this VTC's newest key, reports a last key seq this VTC expects (the same VTS, not an
 * old image), holds no token it knows to be behind (decided here), the election is about
 * this VTC's newest key, and no ballot seen carries a newer keySeq.
 */
export function decideVote(v: VoteInput): { yes: boolean; why: string } {
  if (v.view === undefined || (!v.view.inOperation && v.starting !== true)) {
    return { yes: false, why: v.starting === true ? `${v.vts} has not answered here since key ${v.key.seq}` : `${v.vts} is not in operation as seen here` };
  }
  if (v.view.behind.length > 0) return { yes: false, why: `${v.vts} reports ${v.view.behind.length} volume(s) behind the other VTS` };
  if (v.broken === 'yes-without-key-checks') return { yes: true, why: 'broken rule: no key checks' };
  if (!v.key.current.includes(v.vts)) return { yes: false, why: `${v.vts} is not in current {${v.key.current.join(',')}} of key ${v.key.seq}` };
  if (v.view.lastKeySeq < v.expectLo || v.view.lastKeySeq > v.expectHi) {
    return { yes: false, why: `${v.vts} reports last key seq ${v.view.lastKeySeq}, expected ${v.expectLo}..${v.expectHi}` };
  }
  if (v.olderImage !== undefined) return { yes: false, why: v.olderImage };
  if (v.bothLost === true) return { yes: false, why: `${v.vts} restarted while the other VTS was lost too, as seen here, and no key has judged it since` };
  if (v.broken === 'yes-without-keyseq-check') return { yes: true, why: 'broken rule: no keySeq check' };
  if (v.electionSeq !== v.key.seq) return { yes: false, why: `election is about key ${v.electionSeq}, newest here is ${v.key.seq}` };
  if (v.seenMaxKeySeq > v.key.seq) return { yes: false, why: `a ballot carries key ${v.seenMaxKeySeq}, newer than ${v.key.seq} here` };
  return { yes: true, why: 'current, same last key seq, newest key' };
}
