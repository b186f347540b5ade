/**
 * The state of one VTC's protocol engine, shared by the modules that act on it (chain,
 * proposal, coordination, election, autonomy, vts), and the plumbing they emit effects
 * through. Pending I/O is held here as data: each `append` and `vts` effect's token maps to
 * a continuation record ({@link AppendCont}, {@link OpCont}) that the engine dispatches when
 * its result comes back as an input.
 */
import { RecordSigner } from '../codec.js';
import { InvalidCommandError } from '../errors.js';
import type { PtpError } from '../errors.js';
import { ImageEvidence } from '../image-evidence.js';
import type { PeerMessage } from '../messages.js';
import { configDigest, genesisKey } from '../rules.js';
import type { CommitRecord, ElectionId, JournalRecord, ShutdownKey, SignedBallot, VtsName, VtsView } from '../types.js';
import type { VoteTallyApi } from '../../hotpath/ballots.js';
import type { CommandResult, Effect, EngineConfig, EngineDeps, EngineStats, VtsOp } from './types.js';

/**
 * What this VTC is doing in the protocol (`VtcEngine.role`): coordinating a key it proposed
 * (phases below), taking part in an election of a VTS, or following the chain as peers
 * propose and commit keys.
 */
export const ROLES = ['coordinator', 'voter', 'follower'] as const;
export type Role = (typeof ROLES)[number];

/**
 * The phases of a key this VTC coordinates: `proposing` (PROTOCOL.md phase 1: the key goes to
 * every VTC, their acknowledgements come back, with ballots when the key holds its election),
 * `applying` (phase 2: the key's steps on the VTS, one at a time), `committing` (the commit
 * record is being made durable here; the coordination ends once it is).
 */
export const COORD_PHASES = ['proposing', 'applying', 'committing'] as const;
export type CoordPhase = (typeof COORD_PHASES)[number];

/** What a step's answer counts towards: the copies the survivor of a `vts-out` has pending, or the union of both VTS's (a shutdown). */
export const STEP_TALLIES = ['survivor', 'union'] as const;
export type StepTally = (typeof STEP_TALLIES)[number];

export interface Step {
  readonly vts: VtsName;
  readonly op: VtsOp;
  readonly required: boolean;
  readonly pending?: StepTally;
}

export interface Coordination {
  /** Which coordination this is (a counter per engine): continuations name it, so one that ended is not resumed by another of the same key. */
  readonly id: number;
  readonly key: ShutdownKey;
  readonly prev: ShutdownKey;
  readonly commandId: string | null;
  readonly acks: Set<string>;
  readonly nacks: Set<string>;
  phase: CoordPhase;
  deadline: number;
  steps: Step[];
  i: number;
  readonly recorded: Set<VtsName>;
  readonly attempted: Set<VtsName>;
  pending: string[] | null;
  unionFailed: boolean;
  error: PtpError | null;
  /** Ballots that came with the acknowledgements of a key holding its election in phase 1, by voter. */
  readonly ballots: Map<string, SignedBallot>;
  /** The phase 1 election's outcome, decided as phase 2 begins: who elected the VTS, or null when not more than T did. */
  elected: string[] | null;
}

export interface Election {
  readonly id: ElectionId;
  readonly tally: VoteTallyApi;
  readonly ballots: Map<string, SignedBallot>;
  readonly startedAt: number;
  /** The newest key here when this VTC joined: only an election about it can be decided here (its threshold, its electorate). */
  readonly effMac: string;
  online: { at: number; yes: string[] } | null;
  offline: boolean;
}

export interface VtsObs {
  view: VtsView | undefined;
  /** When the request that returned `view` was issued (not when it answered). */
  at: number;
  lastOk: number;
  inSince: number | null;
  hbToken: number | null;
  /** When the newest heartbeat was issued. */
  hbIssued: number;
  /**
   * Set when a view shows another boot or image id than the view before it (the VTS
   * restarted, or is another image), with the last key seq it then reported; cleared once it
   * reports a newer key this VTC trusts (vts.ts judgedRecord): one a VTC that judged its image recorded.
   */
  restarted: { readonly seq: number } | null;
  /**
   * Set when the other VTS was seen restart while this one was not known in operation here
   * (unreachable, or never seen): both may have been lost at once, so this one counts as
   * restarted when it next answers, whatever boot it reports (seed 87866).
   */
  lostWithOther: boolean;
  /** The restart in `restarted` was seen while the other VTS, kept in by the newest key, was lost or restarted too (both lost at once, as this VTC knows). */
  bothLost: boolean;
  /** The identity last journalled (a sighting), so a VTC that restarts compares the first view it gets with it. */
  journaled: { readonly bootId: string; readonly imageId: string } | null;
  /** What the last sighting journalled said, to journal only changes. */
  sighted: string;
  /** When the newest heartbeat that found the VTS unreachable was issued. */
  lastFail: number;
}

/**
 * What to do once an `append` effect's record is durable (the `appended` input), by kind.
 * Each carries what it acts on; none holds a closure.
 */
export type AppendCont =
  /**
   * A key made durable here (proposal.ts makeDurable): it is held, and acknowledged to every
   * VTC that proposed it meanwhile. `coordination`: the id of this VTC's own coordination of
   * the key, which then counts its own acknowledgement if it is still proposing it.
   */
  | { readonly kind: 'key-durable'; readonly key: ShutdownKey; readonly coordination: number | null }
  /** A peer's commit taken here (chain.ts ingestCommit): applied to the chain. */
  | { readonly kind: 'commit-durable'; readonly key: ShutdownKey; readonly commit: CommitRecord }
  /**
   * The commit of a key this VTC coordinated (coordination.ts commitKey): applied, the
   * coordination `coordination` ends if it is still the current one, and its command (if
   * any) is answered with `outcome` (and `error` when it failed).
   */
  | { readonly kind: 'coordination-committed'; readonly coordination: number; readonly key: ShutdownKey; readonly commit: CommitRecord; readonly commandId: string | null; readonly outcome: 'done' | 'failed'; readonly error: PtpError | null }
  /** A sighting of a VTS: nothing waits for it. */
  | { readonly kind: 'sighting' };

/** What a `vts` effect's answer (the `vts-result` input, or its timeout) goes to, by kind. */
export type OpCont =
  /** A heartbeat (status) of VTS `vts`. */
  | { readonly kind: 'heartbeat'; readonly vts: VtsName }
  /**
   * Step `step` of coordination `coordination`; `vouched`: the boot and image the survivor
   * was vouched for as the step was issued (a survivor step), to compare with its answer.
   */
  | { readonly kind: 'step'; readonly coordination: number; readonly step: Step; readonly vouched: { readonly bootId: string; readonly imageId: string } | null };

export const idKey = (e: ElectionId): string => `${e.seq}:${e.vts}:${e.round}`;
/**
 * Decided here: an operator's `vts-in X` while the other VTS is out holds the election on
 * placing X on-line in its own phase 1. Its proposal names the election (with no YES yet);
 * each VTC's acknowledgement carries its ballot; the commit says who elected X, if more than
 * T did, and the key then places X on-line alone. One key instead of a key, a round of
 * ballots and an election key.
 */
export const phase1Election = (k: ShutdownKey): ShutdownKey['election'] => (k.command === 'vts-in' && k.reason === 'command' ? k.election : null);
export const newer = (a: ElectionId, b: ElectionId): boolean =>
  a.seq !== b.seq ? a.seq > b.seq : a.round !== b.round ? a.round > b.round : a.vts > b.vts;

/** One VTC's protocol state, and the plumbing that emits its effects. */
export class VtcState {
  readonly config: EngineConfig;
  readonly deps: EngineDeps;
  readonly signer: RecordSigner;
  readonly n: number;
  readonly index: number;
  out: Effect[] = [];
  stopped = false;
  boot = 0;
  /** When this VTC last resumed after its inputs stopped for longer than a heartbeat timeout (a paused process, a held event loop). */
  resumedAt = -Infinity;
  /**
   * This VTC's own time: it moves by the forward steps of the times its inputs carry and
   * never back, so a wall clock stepped back (NTP) neither runs timeouts backwards nor makes
   * "since the key" comparisons fail for as long as the step. Keys are dated with `wall`.
   */
  now = 0;
  /** The time the last input carried (the wall clock), as given. */
  wall = 0;

  readonly keys = new Map<number, Map<string, ShutdownKey>>();
  readonly commits = new Map<number, CommitRecord[]>();
  readonly chosen = new Map<number, { key: ShutdownKey; commit: CommitRecord }>();
  eff: ShutdownKey;
  effAt = -Infinity;
  hw = 0;
  maxHeld = 0;
  readonly keySeenAt = new Map<number, number>();
  /** Records asked to be made durable, by token, with what to do once they are. */
  readonly appending = new Map<number, { readonly record: JournalRecord; readonly cont: AppendCont }>();
  readonly appendingMacs = new Set<string>();
  readonly waitingAcks = new Map<string, Set<string>>();
  nextToken = 1;
  /** The id of the next coordination this VTC begins. */
  nextCoordId = 1;
  /** VTS operations in flight, by token: when they time out, when they were issued, and what their answer goes to. */
  readonly ops = new Map<number, { readonly deadline: number; readonly issued: number; readonly cont: OpCont }>();
  readonly obs: Record<VtsName, VtsObs> = {
    A: { view: undefined, at: -Infinity, lastOk: -Infinity, inSince: null, hbToken: null, hbIssued: -Infinity, restarted: null, lostWithOther: false, bothLost: false, journaled: null, sighted: '', lastFail: -Infinity },
    B: { view: undefined, at: -Infinity, lastOk: -Infinity, inSince: null, hbToken: null, hbIssued: -Infinity, restarted: null, lostWithOther: false, bothLost: false, journaled: null, sighted: '', lastFail: -Infinity },
  };
  readonly lastHeard = new Map<string, number>();
  /** How far each boot of each VTS image got (token sums), own and peers': a restored older image reports less. */
  readonly evidence = new ImageEvidence();
  lastHello = -Infinity;
  coord: Coordination | null = null;
  election: Election | null = null;
  readonly rounds = new Map<string, number>();
  readonly ballotBuffer = new Map<string, SignedBallot[]>();
  readonly answered = new Set<string>();
  /** After a key this VTC coordinated failed, automatic actions wait (longer for later VTCs) so two do not collide again. */
  backoffUntil = -Infinity;
  /** An election a peer called that this VTC joins once its own view of the VTS is fresh. */
  pendingJoin: ElectionId | null = null;
  /** When this VTC first joined each election round. */
  readonly roundStarted = new Map<string, number>();
  readonly joined = new Map<string, Election>();
  readonly peerTop = new Map<string, number>();
  synced = false;
  /** Keys held here without a commit of their own, by key MAC. */
  readonly unresolved = new Map<string, ShutdownKey>();
  readonly cast = new Map<string, SignedBallot>();
  /** Acknowledgements held back until this VTC's view of the VTS a key's phase 1 election is about is newer than its newest key, by key MAC. */
  readonly parkedAcks = new Map<string, { key: ShutdownKey; to: Set<string> }>();
  seenMaxKeySeq = 0;
  readonly voterKeySeq = new Map<string, number>();
  auto: { action: string; since: number } | null = null;
  lastStatus = '';
  readonly stats: EngineStats = { rejected: 0, rejectedReasons: {}, ballotsCast: 0, keysCoordinated: 0 };
  readonly cfg: string;
  readonly misconfigured = new Set<string>();
  readonly configWarnings: string[] = [];

  constructor(config: EngineConfig, deps: EngineDeps) {
    this.config = config;
    this.deps = deps;
    this.signer = new RecordSigner(deps.keys);
    this.n = config.vtcs.length;
    this.index = config.vtcs.indexOf(config.self);
    if (this.index < 0) throw new InvalidCommandError(`VTC ${config.self} is not in the configured VTC list`);
    if (new Set(config.vtcs).size !== this.n || this.n < 2) throw new InvalidCommandError('the VTC list needs at least two distinct names');
    this.eff = genesisKey(config.ptpId, this.n);
    this.cfg = configDigest(config.ptpId, config.vtcs);
  }

  /** Orders VTC names as configured. */
  readonly byIndex = (a: string, b: string): number => this.config.vtcs.indexOf(a) - this.config.vtcs.indexOf(b);

  send(to: string, msg: PeerMessage): void {
    this.out.push({ kind: 'send', to, msg });
  }
  broadcast(msg: PeerMessage): void {
    for (const v of this.config.vtcs) if (v !== this.config.self) this.out.push({ kind: 'send', to: v, msg });
  }
  result(commandId: string, result: CommandResult): void {
    this.out.push({ kind: 'result', commandId, result });
  }
  reject(reason: string): void {
    this.stats.rejected++;
    this.stats.rejectedReasons[reason] = (this.stats.rejectedReasons[reason] ?? 0) + 1;
  }
  configWarning(text: string): void {
    if (this.configWarnings.includes(text)) return;
    if (this.configWarnings.length >= 16) this.configWarnings.shift();
    this.configWarnings.push(text);
  }

  /** Asks for `record` to be made durable; `cont` runs once it is (the `appended` input). */
  append(record: JournalRecord, cont: AppendCont): void {
    const token = this.nextToken++;
    this.appending.set(token, { record, cont });
    this.out.push({ kind: 'append', record, token });
  }

  /** Asks VTS `vts` for `op`; its answer (or a timeout) goes to `cont`. Returns the token. */
  startOp(vts: VtsName, op: VtsOp, cont: OpCont, timeoutMs?: number): number {
    const token = this.nextToken++;
    const timeout = timeoutMs ?? (op.op === 'status' ? this.config.timing.heartbeatTimeout : this.config.timing.vtsOpTimeout);
    this.ops.set(token, { deadline: this.now + timeout, issued: this.now, cont });
    this.out.push({ kind: 'vts', vts, op, token });
    return token;
  }
}
