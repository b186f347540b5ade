/**
 * Protocol vocabulary of PROTOCOL.md: VTS names, commands, modes, states, the shutdown
 * key, its commit record and the ballot. Plain data only, so every record can be encoded
 * canonically and authenticated.
 */

export const VtsName = { A: 'A', B: 'B' } as const;
export type VtsName = (typeof VtsName)[keyof typeof VtsName];
export const VTS_NAMES: readonly VtsName[] = ['A', 'B'];
export const otherVts = (x: VtsName): VtsName => (x === 'A' ? 'B' : 'A');

export const Command = {
  vtsOut: 'vts-out',
  vtsIn: 'vts-in',
  ptpShutdown: 'ptp-shutdown',
  ptpStart: 'ptp-start',
  thresholdSet: 'threshold-set',
} as const;
export type Command = (typeof Command)[keyof typeof Command];

export const Mode = { normal: 'normal', expedite: 'expedite', immediate: 'immediate', forced: 'forced' } as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

/**
 * Why a key exists: an operator command, a detected VTS loss, an election, an audited
 * override, VTS that came back, or a VTS holding another key of the chain's newest seq (a
 * fork recorded there) that a key with a higher seq supersedes.
 */
export const KeyReason = {
  command: 'command',
  failure: 'failure',
  election: 'election',
  override: 'override',
  return: 'return',
  supersede: 'supersede',
} as const;
export type KeyReason = (typeof KeyReason)[keyof typeof KeyReason];

export const VtsStatus = { in: 'in', out: 'out' } as const;
export type VtsStatus = (typeof VtsStatus)[keyof typeof VtsStatus];
export type StatusPair = { readonly A: VtsStatus; readonly B: VtsStatus };

/** PtP status. `resync` is online (both in operation) while the returning VTS catches up by tokens. */
export const PtpStatusKind = {
  onlineBoth: 'online-both',
  onlineSingle: 'online-single',
  offline: 'offline',
  resync: 'resync',
} as const;
export type PtpStatusKind = (typeof PtpStatusKind)[keyof typeof PtpStatusKind];
export type PtpStatus =
  | { readonly kind: 'online-both' }
  | { readonly kind: 'online-single'; readonly vts: VtsName }
  | { readonly kind: 'offline' }
  | { readonly kind: 'resync'; readonly from: VtsName; readonly to: VtsName };

export const formatStatus = (s: PtpStatus): string =>
  s.kind === 'online-single' ? `online-single(${s.vts})` : s.kind === 'resync' ? `resync(${s.from}->${s.to})` : s.kind;

/** The PtP state a key puts the system in (resync is derived at run time, never stored). */
export type KeyState = { readonly kind: 'online-both' } | { readonly kind: 'online-single'; readonly vts: VtsName } | { readonly kind: 'offline' };

/** Identity of one election: the key seq it is about, the VTS, and the round (re-held elections get a new round). */
export interface ElectionId {
  readonly seq: number;
  readonly vts: VtsName;
  readonly round: number;
}

/**
 * The shutdown key (PROTOCOL.md table). `acks` and the final `copiesPending` are only
 * known after phase 1 / phase 2: the key as proposed carries the coordinator's estimate,
 * and {@link CommitRecord} carries the final values; {@link effectiveKey} merges them.
 */
export interface ShutdownKey {
  readonly ptpId: string;
  readonly seq: number;
  readonly issuedAt: number;
  readonly originVtc: string;
  readonly command: Command;
  readonly subjects: readonly VtsName[];
  readonly status: StatusPair;
  readonly current: readonly VtsName[];
  readonly mode: Mode;
  /** Volumes whose only current copy is on a subject VTS; null when the survivor could not be asked. */
  readonly copiesPending: readonly string[] | null;
  readonly acks: readonly string[];
  /** Decided here: why the key exists, the state it puts the PtP in, and the threshold in force after it. */
  readonly reason: KeyReason;
  readonly state: KeyState;
  readonly threshold: number;
  /** Set for election keys: the election that placed the VTS on-line and who elected it. */
  readonly election: (ElectionId & { readonly yes: readonly string[] }) | null;
  /** Decided here: the key this one follows (seq and MAC), so a key built on a fork is refused. */
  readonly prevSeq: number;
  readonly prevMac: string;
  /** Decided here: the operator's reason, on keys that override a safety rule (reason `override`). */
  readonly note?: string;
  readonly mac: string;
}

export const Outcome = { done: 'done', failed: 'failed' } as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** Phase 2 result for one key: final copiesPending/current/state, who acked phase 1, which VTS recorded the seq. */
export interface CommitRecord {
  readonly ptpId: string;
  readonly seq: number;
  /** MAC of the key this record commits: binds the record to exactly one key. */
  readonly keyMac: string;
  readonly coordinator: string;
  readonly outcome: Outcome;
  readonly error: string | null;
  readonly acks: readonly string[];
  readonly copiesPending: readonly string[] | null;
  readonly current: readonly VtsName[];
  readonly state: KeyState;
  /** VTS that confirmed recording the seq, and VTS it was attempted on (confirmation may be lost). */
  readonly recorded: readonly VtsName[];
  readonly attempted: readonly VtsName[];
  /**
   * Decided here: a `vts-in` of one VTS while the other is out holds the election in its own
   * phase 1 (each acknowledgement carries the VTC's ballot). The commit carries every ballot
   * the coordinator received, and the election that placed the VTS on-line (null when not
   * more than T elected it). Absent on every other commit.
   */
  readonly ballots?: readonly SignedBallot[];
  readonly election?: (ElectionId & { readonly yes: readonly string[] }) | null;
  readonly mac: string;
}

export const Choice = { no: 'no', yes: 'yes' } as const;
export type Choice = (typeof Choice)[keyof typeof Choice];

/** A signed ballot `{ptpId, election: (seq, X), voter, keySeq, choice}`; `round` is decided here. */
export interface SignedBallot {
  readonly ptpId: string;
  readonly election: ElectionId;
  readonly voter: string;
  readonly keySeq: number;
  readonly choice: Choice;
  /** Why the voter chose so (audit); not part of the decision. */
  readonly why: string;
  readonly mac: string;
}

/**
 * What a VTC last judged of a VTS's identity (decided here): the boot and image it saw and
 * whether it holds the VTS as restarted with no trusted key recorded since (`restartedSeq`,
 * the last key seq it then reported) and lost together with the other (`bothLost`).
 * Journalled whenever it changes, so a VTC that restarts still knows a VTS restart it saw:
 * kept in memory only, that evidence died with the VTC (seed 97888). Signed by `observer`.
 */
export interface VtsSighting {
  readonly ptpId: string;
  readonly observer: string;
  readonly vts: VtsName;
  readonly bootId: string;
  readonly imageId: string;
  readonly restartedSeq: number | null;
  readonly bothLost: boolean;
  /** The other VTS was seen restart while this one was unreachable: it counts as restarted when it answers. */
  readonly lostWithOther: boolean;
  readonly mac: string;
}

/** A journal record: a key made durable in phase 1, a commit record made durable in phase 2, or a VTS sighting. */
export type JournalRecord =
  | { readonly type: 'key'; readonly key: ShutdownKey }
  | { readonly type: 'commit'; readonly commit: CommitRecord; readonly key: ShutdownKey }
  | { readonly type: 'sighting'; readonly sighting: VtsSighting };

/** What a VTS reports about itself (heartbeat reply and every operation reply). */
export interface VtsView {
  readonly name: VtsName;
  readonly inOperation: boolean;
  /** Seq of the newest key recorded while in operation. */
  readonly lastKeySeq: number;
  /** Token summary: volumes whose token on this VTS is not consistent (a newer copy lives on the other VTS). */
  readonly behind: readonly string[];
  /**
   * Decided here: MAC of the key recorded as `lastKeySeq` (empty when none or unknown), so
   * the fence tells two keys with the same seq on forked branches apart.
   */
  readonly lastKeyMac?: string;
  /** Decided here: random identity of this VTS's disks, made once when they are first set up. */
  readonly imageId?: string;
  /**
   * Decided here: random per start of the VTS process. A VTS seen with a new boot id has been
   * down (it may be a restored image): the VTCs treat it as lost until a key records it.
   */
  readonly bootId?: string;
  /**
   * Decided here: the sum of the token generations of every volume on the VTS. Generations
   * only move forward and volumes are never removed, so it never goes down on a genuine VTS;
   * an image reporting less than an earlier boot of it is a restored older copy.
   */
  readonly tokenSum?: number;
}
