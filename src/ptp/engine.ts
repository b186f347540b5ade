/**
 * The VTC protocol engine: one VTC's side of PROTOCOL.md as a deterministic state machine
 * without I/O. Inputs are method calls carrying the current time; outputs are effects
 * (send a message, make a record durable, operate a VTS, answer a command) that a driver
 * performs and whose results it feeds back. The same engine runs under the simulation and
 * under the production agent (`agent.ts`).
 */
import { RecordSigner } from './codec.js';
import { CommandConflictError, EngineStoppedError, InvalidCommandError, NoQuorumError, PtpError, VtsUnreachableError } from './errors.js';
import type { RecordKeys } from './mac.js';
import { ImageEvidence } from './image-evidence.js';
import { parseMessage } from './messages.js';
import type { PeerMessage } from './messages.js';
import { checkThreshold, checkVts, configDigest, decideVote, deriveStatus, effectiveKey, genesisKey, isStrong, minSafeThreshold, sortVts, thresholdMismatch, transition } from './rules.js';
import type { BrokenRule, CommandShape, Transition } from './rules.js';
import { formatStatus, otherVts, VTS_NAMES } from './types.js';
import type { CommitRecord, ElectionId, JournalRecord, Mode, PtpStatus, ShutdownKey, SignedBallot, VtsName, VtsSighting, VtsView } from './types.js';
import type { VoteTallyApi, VoteTallyOptions } from '../hotpath/ballots.js';

/** Protocol timers, in the Clock's milliseconds. */
export interface Timing {
  /** How often the driver calls `tick` (heartbeats go out at every tick). */
  readonly tick: number;
  readonly heartbeatTimeout: number;
  readonly ackTimeout: number;
  readonly vtsOpTimeout: number;
  readonly returnGrace: number;
  readonly electionTimeout: number;
  /** How long an uncommitted key may sit before another VTC takes its command over. */
  readonly pendingTimeout: number;
  readonly helloInterval: number;
  readonly expediteTimeout: number;
  /** Per-rank delay before an automatic action, so the first VTC to see a change coordinates it. */
  readonly stagger: number;
}

export const DEFAULT_TIMING: Timing = {
  tick: 100,
  heartbeatTimeout: 500,
  ackTimeout: 1000,
  vtsOpTimeout: 30_000,
  returnGrace: 2000,
  electionTimeout: 2000,
  pendingTimeout: 5000,
  helloInterval: 1000,
  expediteTimeout: 10_000,
  stagger: 200,
};

export interface EngineConfig {
  readonly ptpId: string;
  /** Every configured VTC, in a fixed order shared by all: the index is the voter id. */
  readonly vtcs: readonly string[];
  readonly self: string;
  readonly timing: Timing;
}

export type TallyFactory = (options: VoteTallyOptions) => VoteTallyApi;

export interface EngineDeps {
  /** This VTC's signing key and every VTC's public key: keys, commit records and ballots are signed by their author. */
  readonly keys: RecordKeys;
  /** A vote tally per election: the native tally in production, the JS reference in simulation. */
  readonly tally: TallyFactory;
  /** Test-only: break a voting rule on purpose. */
  readonly broken?: BrokenRule;
}

/** An operation the engine asks of a VTS. Every one is idempotent for the same seq. */
export type VtsOp =
  | { readonly op: 'status' }
  /**
   * Record `seq` as the newest key seen while in operation; fence host I/O older than it.
   * `bootId`: the boot the coordinator saw when it planned the key; a VTS that restarted
   * since refuses (a key that does not judge the image must not be recorded on it).
   * `minSeq`: the newest seq the VTS confirmed recording; a VTS reporting less (an older
   * image) refuses. `start` carries both when it places a VTS the chain holds as current.
   */
  | { readonly op: 'record'; readonly seq: number; readonly mac?: string; readonly bootId?: string; readonly minSeq?: number }
  /** Leave operation per mode (MODE_POLICY), draining copies with `drainTo` first where the mode says so; records `seq`. */
  | {
      readonly op: 'stop';
      readonly seq: number;
      readonly mac?: string;
      readonly mode: Mode;
      readonly expediteTimeout: number;
      readonly drainTo: VtsName | null;
      /** The boot of the VTS the coordinator saw when it planned the key; a VTS that restarted since refuses (nothing is recorded on an unjudged image). */
      readonly bootId?: string;
      /** The newest seq the VTS confirmed recording, known to the coordinator: a VTS reporting less is an older image and refuses. */
      readonly minSeq?: number;
    }
  /**
   * Enter operation (no-op when in); records `seq`. With `seq` null it records nothing: a VTS
   * placed in operation alone and not elected keeps the last key seq it came back with, the
   * evidence every later election judges it by (recording the key would pass a restored old
   * image off as current).
   */
  | { readonly op: 'start'; readonly seq: number | null; readonly mac?: string; readonly bootId?: string; readonly minSeq?: number }
  /** Reconcile tokens with the other VTS (max generation wins, copies queued); records `seq` on both. */
  | { readonly op: 'reconcile'; readonly seq: number; readonly mac?: string };

export type VtsResult = { readonly ok: true; readonly view: VtsView } | { readonly ok: false; readonly error: string };

export type OperatorCommand =
  | { readonly command: 'vts-out'; readonly vts: string; readonly mode: Mode }
  | { readonly command: 'vts-in'; readonly vts: string }
  | { readonly command: 'ptp-shutdown'; readonly mode: Mode }
  | { readonly command: 'ptp-start' }
  /**
   * `belowHalf`: the audited override that lets T below floor(n/2) through; `mode` forced:
   * goes ahead without more than T acknowledgements (the recovery path when T = n - 1 and
   * a VTC is lost). Either needs `note`, the operator's reason, recorded in the key.
   */
  | { readonly command: 'threshold-set'; readonly threshold: number; readonly mode?: Mode; readonly belowHalf?: boolean; readonly note?: string }
  /** The audited forced override: place `vts` on-line alone without an election. */
  | { readonly command: 'override'; readonly vts: string; readonly note?: string };

export type CommandResult = { readonly ok: true; readonly seq: number; readonly key: ShutdownKey } | { readonly ok: false; readonly error: PtpError };

export type Effect =
  | { readonly kind: 'send'; readonly to: string; readonly msg: PeerMessage }
  | { readonly kind: 'append'; readonly record: JournalRecord; readonly token: number }
  | { readonly kind: 'vts'; readonly vts: VtsName; readonly op: VtsOp; readonly token: number }
  | { readonly kind: 'result'; readonly commandId: string; readonly result: CommandResult }
  | { readonly kind: 'status'; readonly status: PtpStatus; readonly seq: number }
  /** A ballot this VTC cast. */
  | { readonly kind: 'ballot'; readonly ballot: SignedBallot }
  /** Ballots of other VTCs that reached this one, authenticated (on their own, on an acknowledgement, in a commit): for status and audit. */
  | { readonly kind: 'seen'; readonly ballots: readonly SignedBallot[] };

interface Step {
  readonly vts: VtsName;
  readonly op: VtsOp;
  readonly required: boolean;
  readonly pending?: 'survivor' | 'union';
}

interface Coordination {
  readonly key: ShutdownKey;
  readonly prev: ShutdownKey;
  readonly commandId: string | null;
  readonly acks: Set<string>;
  readonly nacks: Set<string>;
  phase: 1 | 2 | 3;
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

interface Election {
  readonly id: ElectionId;
  readonly tally: VoteTallyApi;
  readonly ballots: Map<string, SignedBallot>;
  readonly startedAt: number;
  /** The newest key here when this VTC joined: only an election about it can be decided here (its threshold, its electorate). */
  readonly effMac: string;
  online: { at: number; yes: string[] } | null;
  offline: boolean;
}

interface VtsObs {
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
   * reports a newer key this VTC trusts (#judgedRecord): one a VTC that judged its image recorded.
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

export interface EngineStats {
  rejected: number;
  rejectedReasons: Record<string, number>;
  ballotsCast: number;
  keysCoordinated: number;
}

function lexLess(a: readonly number[], b: readonly number[], ma: string, mb: string): boolean {
  for (let i = 0; i < a.length; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return ma < mb;
}

const idKey = (e: ElectionId): string => `${e.seq}:${e.vts}:${e.round}`;
/**
 * Decided here: an operator's `vts-in X` while the other VTS is out holds the election on
 * placing X on-line in its own phase 1. Its proposal names the election (with no YES yet);
 * each VTC's acknowledgement carries its ballot; the commit says who elected X, if more than
 * T did, and the key then places X on-line alone. One key instead of a key, a round of
 * ballots and an election key.
 */
const phase1Election = (k: ShutdownKey): ShutdownKey['election'] => (k.command === 'vts-in' && k.reason === 'command' ? k.election : null);
/** The operator's reason for an override, checked: required when `required`, at most 512 characters. */
function noteOf(note: unknown, required: boolean): { note?: string } {
  if (note === undefined || note === '') {
    if (required) throw new InvalidCommandError('an override (forced mode, or a threshold below floor(n/2)) needs the operator\'s reason: it is recorded in its key');
    return {};
  }
  if (typeof note !== 'string' || note.length > 512) throw new InvalidCommandError('the reason of an override is a text of at most 512 characters');
  return { note };
}

/** The transition, or the PtpError saying why it does not apply. */
function tryTransition(prev: ShutdownKey, shape: CommandShape, pending: readonly string[] | null): Transition | PtpError {
  try {
    return transition(prev, shape, pending);
  } catch (e) {
    if (!(e instanceof PtpError)) throw e;
    return e;
  }
}
const newer = (a: ElectionId, b: ElectionId): boolean =>
  a.seq !== b.seq ? a.seq > b.seq : a.round !== b.round ? a.round > b.round : a.vts > b.vts;

/** One VTC's protocol state machine. Not thread-safe by design: a driver feeds it one input at a time. */
export class VtcEngine {
  readonly config: EngineConfig;
  readonly #deps: EngineDeps;
  readonly #signer: RecordSigner;
  readonly #n: number;
  readonly #index: number;
  #out: Effect[] = [];
  #stopped = false;
  #boot = 0;
  /** When this VTC last resumed after its inputs stopped for longer than a heartbeat timeout (a paused process, a held event loop). */
  #resumedAt = -Infinity;
  /**
   * This VTC's own time: it moves by the forward steps of the times its inputs carry and
   * never back, so a wall clock stepped back (NTP) neither runs timeouts backwards nor makes
   * "since the key" comparisons fail for as long as the step. Keys are dated with {@link #wall}.
   */
  #now = 0;
  /** The time the last input carried (the wall clock), as given. */
  #wall = 0;

  readonly #keys = new Map<number, Map<string, ShutdownKey>>();
  readonly #commits = new Map<number, CommitRecord[]>();
  readonly #chosen = new Map<number, { key: ShutdownKey; commit: CommitRecord }>();
  #eff: ShutdownKey;
  #effAt = -Infinity;
  #hw = 0;
  #maxHeld = 0;
  readonly #keySeenAt = new Map<number, number>();
  readonly #appending = new Map<number, { record: JournalRecord; then: () => void }>();
  readonly #appendingMacs = new Set<string>();
  readonly #waitingAcks = new Map<string, Set<string>>();
  #nextToken = 1;
  readonly #ops = new Map<number, { deadline: number; issued: number; done: (r: VtsResult, issued: number) => void }>();
  readonly #obs: Record<VtsName, VtsObs> = {
    A: { view: undefined, at: -Infinity, lastOk: -Infinity, inSince: null, hbToken: null, hbIssued: -Infinity, restarted: null, lostWithOther: false, bothLost: false, journaled: null, sighted: '', lastFail: -Infinity },
    B: { view: undefined, at: -Infinity, lastOk: -Infinity, inSince: null, hbToken: null, hbIssued: -Infinity, restarted: null, lostWithOther: false, bothLost: false, journaled: null, sighted: '', lastFail: -Infinity },
  };
  readonly #lastHeard = new Map<string, number>();
  /** How far each boot of each VTS image got (token sums), own and peers': a restored older image reports less. */
  readonly #evidence = new ImageEvidence();
  #lastHello = -Infinity;
  #coord: Coordination | null = null;
  #election: Election | null = null;
  readonly #rounds = new Map<string, number>();
  readonly #ballotBuffer = new Map<string, SignedBallot[]>();
  readonly #answered = new Set<string>();
  /** After a key this VTC coordinated failed, automatic actions wait (longer for later VTCs) so two do not collide again. */
  #backoffUntil = -Infinity;
  /** An election a peer called that this VTC joins once its own view of the VTS is fresh. */
  #pendingJoin: ElectionId | null = null;
  /** When this VTC first joined each election round. */
  readonly #roundStarted = new Map<string, number>();
  readonly #joined = new Map<string, Election>();
  readonly #peerTop = new Map<string, number>();
  #synced = false;
  /** Keys held here without a commit of their own, by key MAC. */
  readonly #unresolved = new Map<string, ShutdownKey>();
  readonly #cast = new Map<string, SignedBallot>();
  /** Acknowledgements held back until this VTC's view of the VTS a key's phase 1 election is about is newer than its newest key, by key MAC. */
  readonly #parkedAcks = new Map<string, { key: ShutdownKey; to: Set<string> }>();
  #seenMaxKeySeq = 0;
  readonly #voterKeySeq = new Map<string, number>();
  #auto: { action: string; since: number } | null = null;
  #lastStatus = '';
  readonly stats: EngineStats = { rejected: 0, rejectedReasons: {}, ballotsCast: 0, keysCoordinated: 0 };
  readonly #cfg: string;
  readonly #misconfigured = new Set<string>();
  readonly #configWarnings: string[] = [];

  constructor(config: EngineConfig, deps: EngineDeps) {
    this.config = config;
    this.#deps = deps;
    this.#signer = new RecordSigner(deps.keys);
    this.#n = config.vtcs.length;
    this.#index = config.vtcs.indexOf(config.self);
    if (this.#index < 0) throw new InvalidCommandError(`VTC ${config.self} is not in the configured VTC list`);
    if (new Set(config.vtcs).size !== this.#n || this.#n < 2) throw new InvalidCommandError('the VTC list needs at least two distinct names');
    this.#eff = genesisKey(config.ptpId, this.#n);
    this.#cfg = configDigest(config.ptpId, config.vtcs);
  }

  get signer(): RecordSigner {
    return this.#signer;
  }

  // ---------------------------------------------------------------- inputs

  /** Rebuilds state from the durable journal (oldest first). Call once, before any other input. */
  restore(records: readonly JournalRecord[], now: number): void {
    this.#now = now;
    this.#wall = now;
    this.#boot = now;
    for (const r of records) {
      if (r.type === 'sighting') {
        this.#restoreSighting(r.sighting);
        continue;
      }
      this.#holdKey(r.key, now);
      if (r.type === 'commit') this.#applyCommit(r.key, r.commit);
    }
    this.#flush();
  }

  /**
   * Moves this VTC's clock to `now`. Inputs arrive at least every tick; a gap longer than a
   * heartbeat timeout means this process was paused or its event loop held (a loaded host),
   * not that the VTS went silent: silence is then counted again from here.
   */
  #advance(now: number): void {
    const d = now - this.#wall;
    this.#wall = now;
    // A clock stepped back: this VTC's time stands still for that one input, then goes on.
    if (!(d > 0)) return;
    this.#now += d;
    if (d > this.config.timing.heartbeatTimeout) this.#resumedAt = this.#now;
  }

  tick(now: number): void {
    if (this.#stopped) return;
    this.#advance(now);
    for (const [token, op] of this.#ops) if (op.deadline <= this.#now) this.#finishOp(token, { ok: false, error: 'timeout' });
    for (const x of VTS_NAMES) if (this.#obs[x].hbToken === null) this.#heartbeat(x);
    if (this.#now - this.#lastHello >= this.config.timing.helloInterval) {
      this.#lastHello = this.#now;
      this.#broadcast(this.#hello());
    }
    if (this.#coord !== null && this.#coord.phase === 1 && this.#now >= this.#coord.deadline) this.#phase1Timeout();
    this.#flush();
  }

  /** A message from an authenticated peer; its content is still untrusted and is validated here. */
  receive(from: string, value: unknown, now: number): void {
    if (this.#stopped) return;
    this.#advance(now);
    if (!this.config.vtcs.includes(from) || from === this.config.self) return this.#reject('unknown-sender');
    let msg: PeerMessage;
    try {
      msg = parseMessage(value, this.#signer);
    } catch (e) {
      return this.#reject(e instanceof PtpError ? e.code : 'malformed');
    }
    // A peer configured with another VTC list counts voters, electorate and default threshold
    // differently: it is reported and takes no part until its configuration matches.
    if (msg.t === 'hello' && msg.cfg !== undefined) {
      if (msg.cfg !== this.#cfg) {
        if (!this.#misconfigured.has(from)) this.#configWarning(`${from}: its configuration digest ${msg.cfg} differs from ${this.#cfg} here (PtP id and VTC list in order): every VTC must share one topology`);
        this.#misconfigured.add(from);
      } else this.#misconfigured.delete(from);
    }
    if (this.#misconfigured.has(from)) return this.#reject('config-mismatch');
    this.#lastHeard.set(from, this.#now);
    switch (msg.t) {
      case 'propose':
        this.#onPropose(from, msg.key);
        break;
      case 'ack':
        this.#onAck(from, msg.seq, msg.keyMac, true, msg.ballot);
        break;
      case 'nack': {
        // A peer saw the survivor restart: this VTC takes that knowledge over, so it counts
        // both VTS as lost rather than proposing the same failure key again (seed 580).
        const r = /^(restarted|bothlost):([AB]):/.exec(msg.reason);
        const o = r === null ? undefined : this.#obs[r[2] as VtsName];
        if (o !== undefined && o.restarted === null && o.view !== undefined) o.restarted = { seq: o.view.lastKeySeq };
        if (o !== undefined && o.restarted !== null && r?.[1] === 'bothlost') o.bothLost = true;
        this.#onAck(from, msg.seq, msg.keyMac, false);
        break;
      }
      case 'commit':
        this.#ingestCommit(msg.key, msg.commit, from);
        break;
      case 'ballot':
        this.#onBallot(from, msg.ballot);
        break;
      case 'hello': {
        // The first hello from a peer gets one back at once, so a VTC that just started learns quickly whether it is behind.
        if (!this.#peerTop.has(from)) this.#send(from, this.#hello());
        this.#peerTop.set(from, msg.top);
        for (const s of msg.sums ?? []) this.#evidence.note(s);
        // A peer with a newer done key may hold a commit that beats one of this VTC's failed ones at the same seq.
        let after: number | null = null;
        if (msg.top > this.#eff.seq || msg.hi > this.#hw) after = msg.top > this.#eff.seq ? this.#eff.seq : this.#hw;
        else if (msg.topMac !== this.#eff.mac && msg.top > 0) after = Math.max(0, Math.min(msg.top, this.#eff.seq) - 1);
        // The same newest key under another commit (a takeover committed it again where the
        // first commit had not arrived): fetch it, so both follow the same one (seed 88605).
        else if (msg.topCommit !== undefined && msg.top === this.#eff.seq && msg.top > 0 && this.#commits.get(msg.top)?.some((c) => c.mac === msg.topCommit) !== true) after = msg.top - 1;
        // A held commit whose key's predecessor never arrived (its sync was lost): ask again,
        // at the pace of hellos, so two VTCs without it cannot ask each other without end.
        const gap = this.#missingPredecessor();
        if (gap !== null) after = Math.min(after ?? Infinity, gap - 1);
        if (after !== null) this.#send(from, { t: 'sync-req', after });
        break;
      }
      case 'sync-req':
        this.#onSyncReq(from, msg.after);
        break;
      case 'sync':
        for (const r of msg.records) this.#ingestCommit(r.key, r.commit, from);
        break;
    }
    this.#flush();
  }

  /** This VTC's hello: its high-water mark, its newest key and the commit it follows for it. */
  #hello(): Extract<PeerMessage, { t: 'hello' }> {
    const topCommit = this.#chosen.get(this.#eff.seq)?.commit.mac;
    const sums = this.#evidence.shared();
    return { t: 'hello', hi: this.#hw, top: this.#eff.seq, topMac: this.#eff.mac, cfg: this.#cfg, ...(topCommit === undefined ? {} : { topCommit }), ...(sums.length === 0 ? {} : { sums }) };
  }

  /** The record of `append` effect `token` is durable. */
  appended(token: number, now: number): void {
    if (this.#stopped) return;
    this.#advance(now);
    const a = this.#appending.get(token);
    if (a === undefined) return;
    this.#appending.delete(token);
    a.then();
    this.#flush();
  }

  /** A VTS operation finished (or failed: unreachable, refused). Late results after the op timed out are ignored. */
  vtsResult(token: number, result: VtsResult, now: number): void {
    if (this.#stopped) return;
    this.#advance(now);
    this.#finishOp(token, result);
    this.#flush();
  }

  /**
   * An operator command taken by this VTC, which coordinates it. The answer comes as a
   * `result` effect with the same id: errors are {@link PtpError} subclasses (invalid
   * threshold, unknown VTS, conflicting command in flight, no quorum, VTS unreachable).
   */
  command(commandId: string, cmd: OperatorCommand, now: number): void {
    this.#advance(now);
    if (this.#stopped) return this.#result(commandId, { ok: false, error: new EngineStoppedError() });
    try {
      const shape = this.#shapeOf(cmd);
      this.#checkFree();
      transition(this.#eff, shape, []);
      const unjudged = this.#unjudgedBystander(shape);
      if (unjudged !== null) throw new CommandConflictError(`VTS ${unjudged} restarted and no key has been recorded on it since: its loss is recorded first (a failure key), retry the command then`);
      const mode: Mode = cmd.command === 'vts-out' || cmd.command === 'ptp-shutdown' ? cmd.mode : cmd.command === 'override' ? 'forced' : cmd.command === 'threshold-set' ? (cmd.mode ?? 'normal') : 'normal';
      this.#coordinate(shape, mode, commandId, null);
    } catch (e) {
      if (!(e instanceof PtpError)) throw e;
      this.#result(commandId, { ok: false, error: e });
    }
    this.#flush();
  }

  /** The VTC stops (crash or shutdown): pending commands fail, nothing more is emitted. */
  stop(): void {
    if (this.#coord?.commandId != null) this.#out.push({ kind: 'result', commandId: this.#coord.commandId, result: { ok: false, error: new EngineStoppedError() } });
    this.#stopped = true;
  }

  // ---------------------------------------------------------------- queries

  takeEffects(): Effect[] {
    const e = this.#out;
    this.#out = [];
    return e;
  }
  /** Newest committed key as this VTC knows it (acks, copiesPending, current from its commit record). */
  newestKey(): ShutdownKey {
    return this.#eff;
  }
  /** Newest key of the chain that more than T VTCs held (a forced key with fewer acks is skipped). */
  newestStrongKey(): ShutdownKey {
    let k = this.#eff;
    while (!isStrong(k)) k = this.#effBelow(k.seq);
    return k;
  }
  status(): PtpStatus {
    if (!this.#caughtUp()) return { kind: 'offline' };
    // A VTS the key keeps in that restarted since (it may be a restored image) serves nothing
    // until a key records the event.
    if (VTS_NAMES.some((x) => this.#eff.status[x] === 'in' && this.#obs[x].restarted !== null)) return { kind: 'offline' };
    // Nor from one reporting, since the newest key, a last key seq below one it confirmed
    // recording: an older image of itself (this VTC may have restarted and missed its boot).
    if (VTS_NAMES.some((x) => this.#eff.status[x] === 'in' && this.#obs[x].view !== undefined && this.#obs[x].at >= this.#effAt && this.#obs[x].view!.lastKeySeq < this.#expectRange(x).lo)) return { kind: 'offline' };
    // Nor from one whose disks got less far than an earlier boot of them did (a restored image).
    if (VTS_NAMES.some((x) => this.#eff.status[x] === 'in' && this.#reliedOn(x) && this.#olderImage(x) !== null)) return { kind: 'offline' };
    return deriveStatus(this.#eff, { A: this.#obs.A.view, B: this.#obs.B.view });
  }
  threshold(): number {
    return this.#eff.threshold;
  }
  /**
   * What host I/O may do now: the status, and the epoch every VTS fences host I/O, token
   * updates and copies with: the newest key's seq and MAC (two keys with one seq on forked
   * branches do not pass each other's fences).
   */
  writeContext(): {
    readonly status: PtpStatus;
    readonly epoch: number;
    readonly epochMac: string;
    readonly boots: Readonly<Partial<Record<VtsName, string>>>;
    /** Per VTS, the newest seq it confirmed recording: a VTS reporting less is an older image of itself, and refuses. */
    readonly minSeqs: Readonly<Record<VtsName, number>>;
  } {
    // The boot of each VTS this VTC knows: a VTS that restarted since refuses the I/O, so none
    // reaches a restored image before this VTC has seen the restart (and gone off-line for it).
    const boots: Partial<Record<VtsName, string>> = {};
    for (const x of VTS_NAMES) {
      const b = this.#obs[x].view?.bootId;
      if (b !== undefined) boots[x] = b;
    }
    return { status: this.status(), epoch: this.#eff.seq, epochMac: this.#eff.mac, boots, minSeqs: { A: this.#expectRange('A').lo, B: this.#expectRange('B').lo } };
  }

  /**
   * After it starts, a VTC serves host I/O only once more than T VTCs (itself included) have
   * said in a hello that they hold no newer key than it does: any key committed while it
   * was down is held by more than T, and two such sets meet. A VTS that missed the same keys
   * would not fence it (seed 54224).
   */
  #caughtUp(): boolean {
    if (this.#synced) return true;
    let n = 1;
    for (const top of this.#peerTop.values()) if (top <= this.#eff.seq) n++;
    if (n > this.#eff.threshold) this.#synced = true;
    return this.#synced;
  }
  /** Committed (effective) keys, for anti-entropy checks and audits. */
  committedKeys(): ShutdownKey[] {
    return [...this.#chosen.values()].filter((c) => c.commit.outcome === 'done').map((c) => effectiveKey(c.key, c.commit)).sort((a, b) => a.seq - b.seq);
  }
  heldSeqs(): { hw: number; maxHeld: number; newest: number } {
    return { hw: this.#hw, maxHeld: this.#maxHeld, newest: this.#eff.seq };
  }
  inFlight(): boolean {
    return this.#coord !== null;
  }

  /**
   * What must hold between any two inputs (the simulation checks it after every step; an
   * empty list when all hold): the newest key is the head of a done commit held here, the
   * high-water marks are ordered, the status never claims more than the newest key allows,
   * a restart mark that is cleared carries no "both lost", and a key left unresolved has no
   * commit here.
   */
  invariants(): string[] {
    const out: string[] = [];
    const eff = this.#eff;
    if (eff.seq > 0) {
      const c = this.#chosen.get(eff.seq);
      if (c === undefined || c.key.mac !== eff.mac || c.commit.outcome !== 'done') out.push(`newest key ${eff.seq} is not the key of a done commit held here`);
    }
    if (eff.seq > this.#maxHeld || this.#hw > this.#maxHeld) out.push(`newest key ${eff.seq} or high-water mark ${this.#hw} above the newest key held (${this.#maxHeld})`);
    const s = this.status();
    if (s.kind === 'online-single' && (!eff.current.includes(s.vts) || !isStrong(eff))) out.push(`${formatStatus(s)} outside current {${eff.current.join(',')}} of key ${eff.seq}, or on a weak key`);
    if ((s.kind === 'online-both' || s.kind === 'resync') && (eff.state.kind !== 'online-both' || !isStrong(eff))) out.push(`${formatStatus(s)} while key ${eff.seq} says ${eff.state.kind}`);
    for (const x of VTS_NAMES) if (this.#obs[x].restarted === null && this.#obs[x].bothLost) out.push(`VTS ${x} marked both lost without a restart mark`);
    for (const k of this.#unresolved.values()) if (this.#commits.get(k.seq)?.some((c) => c.keyMac === k.mac) === true) out.push(`key ${k.seq} is held as unresolved but has a commit here`);
    return out;
  }
  /** Peers or keys found not to fit this VTC's configuration (another VTC list, a threshold that does not follow), newest last; at most 16. */
  configWarnings(): readonly string[] {
    return this.#configWarnings;
  }
  #configWarning(text: string): void {
    if (this.#configWarnings.includes(text)) return;
    if (this.#configWarnings.length >= 16) this.#configWarnings.shift();
    this.#configWarnings.push(text);
  }

  // ---------------------------------------------------------------- journal and keys

  #append(record: JournalRecord, then: () => void): void {
    const token = this.#nextToken++;
    this.#appending.set(token, { record, then });
    this.#out.push({ kind: 'append', record, token });
  }

  #holds(seq: number, mac: string): boolean {
    return this.#keys.get(seq)?.has(mac) === true;
  }

  #holdKey(key: ShutdownKey, now: number): void {
    let m = this.#keys.get(key.seq);
    if (m === undefined) {
      m = new Map();
      this.#keys.set(key.seq, m);
      this.#keySeenAt.set(key.seq, now);
    }
    m.set(key.mac, key);
    if (key.seq > this.#maxHeld) this.#maxHeld = key.seq;
    if (this.#commits.get(key.seq)?.some((c) => c.keyMac === key.mac) !== true) this.#unresolved.set(key.mac, key);
  }

  #applyCommit(key: ShutdownKey, commit: CommitRecord): void {
    this.#holdKey(key, this.#now);
    const list = this.#commits.get(commit.seq) ?? [];
    if (list.some((c) => c.mac === commit.mac)) return;
    list.push(commit);
    this.#unresolved.delete(commit.keyMac);
    this.#commits.set(commit.seq, list);
    // An override puts its VTS back as the operator found it: what was seen of its earlier boots no longer judges it.
    if (commit.outcome === 'done' && key.reason === 'override') for (const x of key.subjects) this.#evidence.accept(x, key.seq);
    this.#rechain();
  }

  /**
   * Rebuilds the chain from seq 1: at each seq the best done commit whose key follows the
   * chain so far (strong before weak, then lowest origin and coordinator) becomes the
   * head. A key built on a fork or above a gap is held but not followed until its
   * predecessor is known.
   */
  #rechain(): void {
    const idx = (v: string): number => this.config.vtcs.indexOf(v);
    const genesis = genesisKey(this.config.ptpId, this.#n);
    // Every done commit whose ancestry reaches genesis through done commits is a chain; the
    // chain with the most strong keys wins (strong keys cannot fork), then the longest, then
    // a fixed order, so every VTC holding the same records picks the same head.
    const best = new Map<string, { eff: ShutdownKey; strong: number; len: number; parent: string | null; commit: CommitRecord; key: ShutdownKey }>();
    this.#chosen.clear();
    const headOf = new Map<string, { eff: ShutdownKey; strong: number; len: number }>([['', { eff: genesis, strong: 0, len: 0 }]]);
    for (let s = 1; s <= this.#maxHeld; s++) {
      const list = this.#commits.get(s);
      if (list === undefined) continue;
      let pick: { key: ShutdownKey; commit: CommitRecord; rank: number[] } | undefined;
      for (const c of list) {
        const k = this.#keys.get(s)?.get(c.keyMac);
        if (k === undefined) continue;
        const parent = headOf.get(k.prevMac);
        const linked = parent !== undefined && parent.eff.seq === k.prevSeq;
        const eff = effectiveKey(k, c);
        const strong = isStrong(eff);
        if (c.outcome === 'done' && linked && parent !== undefined) {
          const prevBest = headOf.get(k.mac);
          const cand = { eff, strong: parent.strong + (strong ? 1 : 0), len: parent.len + 1 };
          // Two done commits of one key (a takeover committed it again, weak, where the first had
          // not arrived): the strong one, then the first coordinator's (seed 88605).
          const other = best.get(k.mac);
          const otherStrong = other === undefined ? false : isStrong(effectiveKey(k, other.commit));
          if (prevBest === undefined || other === undefined || (strong && !otherStrong) || (strong === otherStrong && idx(c.coordinator) < idx(other.commit.coordinator))) {
            headOf.set(k.mac, cand);
            best.set(k.mac, { ...cand, parent: k.prevMac, commit: c, key: k });
          }
        }
        const rank = [c.outcome === 'done' && linked ? 0 : 1, strong ? 0 : 1, idx(k.originVtc), idx(c.coordinator)];
        if (pick === undefined || lexLess(rank, pick.rank, c.mac, pick.commit.mac)) pick = { key: k, commit: c, rank };
      }
      if (pick !== undefined) this.#chosen.set(s, { key: pick.key, commit: pick.commit });
    }
    let head = { eff: genesis, strong: 0, len: 0 };
    for (const h of headOf.values()) {
      if (h.strong > head.strong || (h.strong === head.strong && (h.len > head.len || (h.len === head.len && h.eff.seq > head.eff.seq) || (h.len === head.len && h.eff.seq === head.eff.seq && h.eff.mac < head.eff.mac)))) head = h;
    }
    // The chain itself is what peers sync from: put its records in `chosen` at their seqs.
    for (let m: string | null = head.eff.mac; m !== null && m !== ''; ) {
      const e = best.get(m);
      if (e === undefined) break;
      this.#chosen.set(e.key.seq, { key: e.key, commit: e.commit });
      m = e.parent;
    }
    const headKey = head.eff;
    const hwBefore = this.#hw;
    this.#hw = 0;
    while (this.#chosen.has(this.#hw + 1)) this.#hw++;
    // Any settled key restarts the staggered wait, so VTCs do not all retry at once.
    if (this.#hw !== hwBefore) this.#auto = null;
    const before = this.#eff;
    this.#eff = headKey;
    if (headKey.seq !== before.seq || headKey.mac !== before.mac || headKey.acks.length !== before.acks.length) {
      this.#election = null;
      this.#auto = null;
      this.#effAt = this.#now;
    }
  }

  /** The chain's head below `seq`, following prev links back from the current head. */
  #effBelow(seq: number): ShutdownKey {
    let k = this.#eff;
    while (k.seq >= seq && k.seq > 0) {
      const p = this.#chosen.get(k.prevSeq);
      if (p === undefined) return genesisKey(this.config.ptpId, this.#n);
      k = effectiveKey(p.key, p.commit);
    }
    return k;
  }

  #ingestCommit(key: ShutdownKey, commit: CommitRecord, from: string | null): void {
    if (key.ptpId !== this.config.ptpId || commit.ptpId !== this.config.ptpId) return this.#reject('other-ptp');
    if (commit.keyMac !== key.mac || commit.seq !== key.seq) return this.#reject('commit-key-mismatch');
    if (commit.election !== undefined && commit.election !== null && !this.#backed(key, commit)) return this.#reject('commit-election-unbacked');
    // A record held already asks for nothing: answering it with a request would let two
    // VTCs on different branches of a fork ask each other for the same records forever.
    if (this.#commits.get(commit.seq)?.some((c) => c.mac === commit.mac) === true || this.#appendingMacs.has(commit.mac)) return;
    if (from !== null && commit.ballots !== undefined && commit.ballots.length > 0) this.#out.push({ kind: 'seen', ballots: commit.ballots.filter((b) => b.ptpId === this.config.ptpId && this.config.vtcs.includes(b.voter)) });
    // A key whose predecessor is not held here: fetch it (the fork may be deep).
    if (from !== null && key.prevSeq > 0 && this.#commits.get(key.prevSeq)?.some((c) => c.keyMac === key.prevMac && c.outcome === 'done') !== true) this.#send(from, { t: 'sync-req', after: key.prevSeq - 1 });
    this.#appendingMacs.add(commit.mac);
    this.#append({ type: 'commit', key, commit }, () => {
      this.#appendingMacs.delete(commit.mac);
      this.#applyCommit(key, commit);
    });
    if (from !== null && commit.seq > this.#hw + 1) this.#send(from, { t: 'sync-req', after: this.#hw });
  }

  #onSyncReq(from: string, after: number): void {
    const records = this.#syncRecords(after);
    if (records.length > 0) this.#send(from, { t: 'sync', records });
  }

  /** Every commit held at each seq after `after` (not only the chain's), so a peer on another branch gets the predecessors it lacks. */
  #syncRecords(after: number): { key: ShutdownKey; commit: CommitRecord }[] {
    const records: { key: ShutdownKey; commit: CommitRecord }[] = [];
    for (let s = after + 1; s <= this.#maxHeld && records.length < 64; s++) {
      const c = this.#chosen.get(s);
      if (c !== undefined) records.push(c);
      for (const o of this.#commits.get(s) ?? []) {
        if (records.length >= 64) break;
        if (o.mac === c?.commit.mac) continue;
        const k = this.#keys.get(s)?.get(o.keyMac);
        if (k !== undefined) records.push({ key: k, commit: o });
      }
    }
    return records;
  }

  /** The lowest seq whose key a held done commit follows but no done commit of which is held here (a failed one may be a takeover's that missed it). */
  #missingPredecessor(): number | null {
    let low: number | null = null;
    for (const [s, list] of this.#commits) {
      for (const c of list) {
        if (c.outcome !== 'done') continue;
        const k = this.#keys.get(s)?.get(c.keyMac);
        if (k === undefined || k.prevSeq === 0) continue;
        if (this.#commits.get(k.prevSeq)?.some((p) => p.keyMac === k.prevMac && p.outcome === 'done') === true) continue;
        if (low === null || k.prevSeq < low) low = k.prevSeq;
      }
    }
    return low;
  }

  // ---------------------------------------------------------------- phase 1, receiver side

  #onPropose(from: string, key: ShutdownKey): void {
    if (key.ptpId !== this.config.ptpId) return this.#reject('other-ptp');
    this.#auto = null;
    const nack = (reason: string): void => this.#send(from, { t: 'nack', seq: key.seq, keyMac: key.mac, reason });
    // A key whose fate is known here (a takeover of a key that already committed or failed)
    // is not acknowledged again: its proposer gets the commit instead.
    const settled = this.#commits.get(key.seq)?.find((c) => c.keyMac === key.mac);
    if (settled !== undefined) {
      this.#send(from, { t: 'sync', records: [{ key, commit: settled }] });
      return nack(`key ${key.seq} already ${settled.outcome === 'done' ? 'committed' : 'failed'} here`);
    }
    if (this.#chosen.has(key.seq) && !this.#holds(key.seq, key.mac)) return nack(`seq ${key.seq} is already committed here`);
    if (this.#holds(key.seq, key.mac)) return this.#ackTo(key, [from]);
    const eff = this.#eff;
    if (eff.seq >= key.seq) return nack(`seq ${key.seq} is taken: key ${eff.seq} is committed here`);
    if (eff.seq > key.prevSeq) {
      this.#send(from, { t: 'sync', records: this.#syncRecords(key.prevSeq) });
      return nack(`key ${key.seq} follows key ${key.prevSeq}, but key ${eff.seq} is committed here`);
    }
    if (eff.seq === key.prevSeq && eff.mac !== key.prevMac) return nack(`key ${key.seq} follows another key ${key.prevSeq} than the one committed here (a fork)`);
    const misfit = thresholdMismatch(key, eff.seq === key.prevSeq ? eff : { seq: key.prevSeq, threshold: key.threshold }, this.#n);
    if (misfit !== null) {
      this.#configWarning(`${from}: ${misfit}`);
      this.#reject('threshold-mismatch');
      return nack(misfit);
    }
    const atPrev = this.#keys.get(key.prevSeq);
    if (key.prevSeq > 0 && atPrev !== undefined && atPrev.size > 0 && !atPrev.has(key.prevMac)) return nack(`key ${key.seq} follows a key ${key.prevSeq} this VTC never acknowledged (a fork)`);
    // The key must extend this VTC's head: following the predecessors it holds back to the
    // head's seq must reach the head itself. (A chain of weak forced keys made in a minority
    // partition must not grow past a strong key; seed 84597.)
    if (key.prevSeq > eff.seq) {
      let seq = key.prevSeq;
      let mac = key.prevMac;
      while (seq > eff.seq) {
        const k = this.#keys.get(seq)?.get(mac);
        if (k === undefined) break;
        seq = k.prevSeq;
        mac = k.prevMac;
      }
      if (seq > eff.seq) {
        // Behind: it cannot tell which branch the key is on, so it catches up before it acks.
        this.#send(from, { t: 'sync-req', after: Math.min(this.#hw, eff.seq) });
        return nack(`key ${key.seq} follows key ${seq}, which this VTC does not hold yet`);
      }
      if (seq < eff.seq || (seq === eff.seq && mac !== eff.mac)) return nack(`key ${key.seq} is built on a branch without key ${eff.seq}, the newest committed here (a fork)`);
    }
    // A key that passes over a seq whose key this VTC holds (or is making durable) without
    // a commit of that key must wait: had it committed, the new key would be built on a chain
    // without it. Quorums of more than T intersect, so this refusal is what stops two
    // branches. A held key whose commit is known is settled by the chain rule; one left
    // without a commit is resolved by a takeover (see #autonomous).
    for (let j = key.prevSeq + 1; j < key.seq; j++) {
      const open = (m: string): boolean => this.#commits.get(j)?.some((c) => c.keyMac === m) !== true;
      const skipped = [...(this.#keys.get(j)?.values() ?? [])].some((k) => open(k.mac)) || this.#waitingAcks.has(`${j}`);
      if (skipped) {
        this.#send(from, { t: 'sync', records: this.#syncRecords(key.prevSeq) });
        return nack(`key ${key.seq} passes over key ${j}, which this VTC holds and has not seen fail`);
      }
    }
    // A failure key leaving a survivor this VTC saw restart (and no key recorded on it since)
    // would place an image nobody judged on-line alone: the coordinator may have restarted
    // itself and missed the restart. Refusing fails the key (forced never goes against an
    // answer); this VTC then counts both as lost.
    // So would an operator's vts-out (forced or not) whose survivor step records on that VTS:
    // this VTC's acknowledgement then clears its own mark (#judgedRecord).
    if (key.command === 'vts-out') {
      const x = key.subjects[0] ?? 'A';
      const y = otherVts(x);
      // The failure key of the last VTS in keeps it current, unless it was lost together
      // with the other: a VTC that saw that refuses, and the coordinator, taking it over,
      // leaves it out of current (seed 20176).
      if (key.reason === 'failure' && this.#eff.status[y] === 'out' && key.current.includes(x) && this.#lostWithOtherCurrent(x)) return nack(`bothlost:${x}: VTS ${x} restarted while the other VTS was lost too: it alone cannot stay current`);
      if (this.#eff.status[y] === 'in' && this.#obs[y].restarted !== null) return nack(`restarted:${y}: VTS ${y} restarted and no key has been recorded on it since: it cannot be left serving alone`);
    }
    // A return without a vote brings back a VTS in current only as the image that left: a
    // VTC that judges it another image (below the seq it confirmed, as it came back from a
    // restart) refuses, as its coordinator would have (seed 20013: the coordinator had
    // restarted, never saw the restart, and judged the image by a forked key recorded on it).
    if (key.command === 'vts-in' && key.reason === 'return') {
      const other = key.subjects.find((x) => this.#eff.current.includes(x) && this.#obs[x].view !== undefined && !this.#sameImage(x));
      if (other !== undefined) return nack(`image:${other}: VTS ${other} reports last key seq ${this.#judgedSeq(other)}, not the image that left (expected ${this.#expectRange(other).lo}..${this.#expectRange(other).hi})`);
    }
    // A key that records its seq on a VTS it keeps in without judging it would clear every
    // VTC's restart mark: that VTS's loss must be recorded first (seeds 3396, 3671).
    const older = this.#olderKept(key);
    if (older !== null) return nack(`image:${older}`);
    const bystander = this.#unjudgedBystander(key);
    if (bystander !== null) return nack(`restarted:${bystander}: VTS ${bystander} restarted and no key has been recorded on it since: its loss is recorded first`);
    const held = this.#keys.get(key.seq);
    const inProgress = this.#waitingAcks.get(`${key.seq}`);
    if ((held !== undefined && held.size > 0) || (inProgress !== undefined && !this.#waitingAcks.has(key.mac))) {
      return nack(`conflict: another key holds seq ${key.seq} here`);
    }
    const waiting = this.#waitingAcks.get(key.mac);
    if (waiting !== undefined) {
      waiting.add(from);
      return;
    }
    this.#makeDurable(key, from);
    if (key.seq > this.#hw + 1) this.#send(from, { t: 'sync-req', after: this.#hw });
  }

  // ---------------------------------------------------------------- coordination

  #shapeOf(cmd: OperatorCommand): CommandShape {
    switch (cmd.command) {
      case 'vts-out':
        return { command: 'vts-out', subjects: [checkVts(cmd.vts)], reason: 'command' };
      case 'vts-in':
        return { command: 'vts-in', subjects: [checkVts(cmd.vts)], reason: 'command' };
      case 'override':
        return { command: 'vts-in', subjects: [checkVts(cmd.vts)], reason: 'override', ...noteOf(cmd.note, false) };
      case 'ptp-shutdown':
        return { command: 'ptp-shutdown', subjects: ['A', 'B'], reason: 'command' };
      case 'ptp-start':
        return { command: 'ptp-start', subjects: ['A', 'B'], reason: 'command' };
      case 'threshold-set': {
        const threshold = checkThreshold(cmd.threshold, this.#n, { belowHalf: cmd.belowHalf === true });
        if (cmd.mode !== undefined && cmd.mode !== 'normal' && cmd.mode !== 'forced') throw new InvalidCommandError(`threshold-set runs in normal or forced mode, not ${String(cmd.mode)}`);
        // Either override of a safety rule is audited: a key of its own, with reason override and the operator's note.
        const override = cmd.mode === 'forced' || threshold < minSafeThreshold(this.#n);
        return { command: 'threshold-set', subjects: [], reason: override ? 'override' : 'command', threshold, ...noteOf(cmd.note, override) };
      }
      default:
        throw new InvalidCommandError(`unknown command ${JSON.stringify((cmd as { command?: unknown }).command)}`);
    }
  }

  /** Throws when a command cannot start now: one status change at a time per PtP system. */
  #checkFree(): void {
    if (this.#coord !== null) throw new CommandConflictError(`key ${this.#coord.key.seq} (${this.#coord.key.command}) is in flight from this VTC`);
    if (this.#maxHeld > this.#hw) throw new CommandConflictError(`key ${this.#maxHeld} is in flight and not yet committed`);
    const open = this.#openAbove();
    if (open !== null) throw new CommandConflictError(`key ${open} is held here without a commit: a new key would pass over it`);
  }

  /**
   * A key this VTC holds (or is making durable) above its chain's head without a commit of
   * it. A key coordinated now would be built on the head and pass over it, and the
   * coordinator's own acknowledgement must obey the rule its peers apply (#onPropose): had
   * the held key committed, the two would fork the chain with two strong keys, quorums
   * meeting only in this VTC (seed 3565). The held key is taken over after pendingTimeout.
   */
  #openAbove(): number | null {
    for (const k of this.#unresolved.values()) if (k.seq > this.#eff.seq) return k.seq;
    for (const w of this.#waitingAcks.keys()) if (/^\d+$/.test(w) && Number(w) > this.#eff.seq) return Number(w);
    return null;
  }

  #coordinate(shape: CommandShape, mode: Mode, commandId: string | null, election: ShutdownKey['election']): void {
    const prev = this.#eff;
    const x = shape.subjects[0];
    if (shape.command === 'vts-in' && shape.reason === 'command' && shape.subjects.length === 1 && x !== undefined && prev.status[x] === 'out' && prev.status[otherVts(x)] === 'out') {
      const rk = `${prev.seq}:${x}`;
      const round = (this.#rounds.get(rk) ?? -1) + 1;
      this.#rounds.set(rk, round);
      election = { seq: prev.seq, vts: x, round, yes: [] };
    }
    const estimate = this.#estimatePending(prev, shape);
    const t = transition(prev, shape, estimate);
    // A key that would leave an older image of a VTS in operation is not made: only an override puts it back (its peers would refuse it too).
    const older = this.#olderKept({ status: t.status, reason: shape.reason, subjects: shape.subjects });
    if (older !== null) {
      if (commandId === null) return;
      throw new CommandConflictError(`${older}; only an override puts it back in operation`);
    }
    const key = this.#signer.sign<ShutdownKey>({
      ptpId: this.config.ptpId,
      seq: this.#maxHeld + 1,
      issuedAt: this.#wall,
      originVtc: this.config.self,
      command: shape.command,
      subjects: sortVts(shape.subjects),
      status: t.status,
      current: sortVts(t.current),
      mode,
      copiesPending: estimate,
      acks: [],
      reason: shape.reason,
      state: t.state,
      threshold: t.threshold,
      election,
      prevSeq: prev.seq,
      prevMac: prev.mac,
      ...(shape.note === undefined ? {} : { note: shape.note }),
    });
    this.stats.keysCoordinated++;
    this.#begin(key, prev, commandId);
  }

  #estimatePending(prev: ShutdownKey, shape: CommandShape): string[] | null {
    if (shape.command !== 'vts-out') return [];
    const x = shape.subjects[0] ?? 'A';
    const y = otherVts(x);
    // The last VTS in, lost by a failure this VTC saw together with the other's loss: its
    // copies are unknown, and the key leaves it out of current (rules.ts transition; seed 20176).
    if (prev.status[y] !== 'in') return shape.reason === 'failure' && this.#lostWithOtherCurrent(x) ? null : [];
    return this.#obs[y].view?.behind.slice() ?? null;
  }

  #begin(key: ShutdownKey, prev: ShutdownKey, commandId: string | null): void {
    const c: Coordination = {
      key,
      prev,
      commandId,
      acks: new Set(),
      nacks: new Set(),
      phase: 1,
      deadline: this.#now + this.config.timing.ackTimeout,
      steps: this.#stepsFor(key, prev),
      i: 0,
      recorded: new Set(),
      attempted: new Set(),
      // The last VTS in going out has no survivor step to count copies: an unknown (null)
      // estimate stands (both lost at once), so the commit leaves it out of current too.
      pending: key.command === 'vts-out' && key.copiesPending === null && prev.status[otherVts(key.subjects[0] ?? 'A')] === 'out' ? null : [],
      unionFailed: false,
      error: null,
      ballots: new Map(),
      elected: null,
    };
    this.#coord = c;
    this.#addOwnBallot(c);
    if (this.#holds(key.seq, key.mac)) {
      c.acks.add(this.config.self);
      this.#broadcast({ t: 'propose', key });
      return this.#checkQuorum(c);
    }
    // The key goes to the peers while it is made durable here: the coordinator's own append
    // and theirs overlap. Its own acknowledgement counts once it is durable, and meanwhile
    // a conflicting proposal for the same seq is refused as if the key were held.
    this.#broadcast({ t: 'propose', key });
    this.#makeDurable(key, null, () => {
      if (this.#coord !== c || c.phase !== 1) return;
      c.acks.add(this.config.self);
      this.#checkQuorum(c);
    });
  }

  /**
   * Appends `key` and holds it once durable, then acknowledges it to every VTC that proposed
   * it meanwhile (`from` first, if any). Until then another key for its seq is refused here.
   */
  #makeDurable(key: ShutdownKey, from: string | null, then?: () => void): void {
    this.#waitingAcks.set(key.mac, new Set(from === null ? [] : [from]));
    this.#waitingAcks.set(`${key.seq}`, new Set());
    this.#append({ type: 'key', key }, () => {
      this.#holdKey(key, this.#now);
      const to = this.#waitingAcks.get(key.mac) ?? new Set<string>();
      this.#waitingAcks.delete(key.mac);
      this.#waitingAcks.delete(`${key.seq}`);
      if (to.size > 0) this.#ackTo(key, to);
      then?.();
    });
  }

  #stepsFor(key: ShutdownKey, prev: ShutdownKey): Step[] {
    const forced = key.mode === 'forced';
    const s = key.seq;
    switch (key.command) {
      case 'vts-out': {
        const x = key.subjects[0] ?? 'A';
        const y = otherVts(x);
        const yIn = prev.status[y] === 'in';
        const steps: Step[] = this.#unvouchedSubject(key, x) ? [] : [{ vts: x, op: { op: 'stop', seq: s, mac: key.mac, mode: key.mode, expediteTimeout: this.config.timing.expediteTimeout, drainTo: yIn ? y : null, ...this.#bootOf(key, x) }, required: !forced }];
        // The survivor is not the subject: without it nothing counts the pending copies or fences old writers, so even forced needs it.
        // The survivor is judged as it records: one that restarted since the plan, or reports less
        // than the seq it confirmed (a restored image), refuses, and the key fails (seed 6735).
        if (yIn) steps.push({ vts: y, op: { op: 'record', seq: s, mac: key.mac, ...this.#bootOf(key, y) }, required: true, pending: 'survivor' });
        return steps;
      }
      case 'ptp-shutdown': {
        const ins = VTS_NAMES.filter((v) => prev.status[v] === 'in' && !this.#unvouchedSubject(key, v));
        return ins.map((v, i) => ({
          vts: v,
          op: { op: 'stop', seq: s, mac: key.mac, mode: key.mode, expediteTimeout: this.config.timing.expediteTimeout, drainTo: i === 0 && ins.length === 2 ? otherVts(v) : null, ...this.#bootOf(key, v) },
          required: !forced,
          pending: 'union',
        }));
      }
      case 'vts-in':
      case 'ptp-start': {
        const steps: Step[] = [];
        for (const v of VTS_NAMES) {
          // A start records the seq too: a VTS the chain holds as current carries the boot and
          // seq judged here, so a restored image of it (reporting less than it confirmed) is not
          // passed off as current with the key (seed 57724). One outside current gets its
          // tokens reconciled as behind, whatever image it is.
          if (key.subjects.includes(v)) steps.push({ vts: v, op: { op: 'start', seq: s, mac: key.mac, ...(prev.current.includes(v) ? this.#bootOf(key, v) : {}) }, required: !forced });
          // The boot judged here goes with the record: a VTS that restarted since refuses it (seed 3671).
          else if (key.status[v] === 'in') steps.push({ vts: v, op: { op: 'record', seq: s, mac: key.mac, ...this.#bootOf(key, v) }, required: !forced });
        }
        if (key.status.A === 'in' && key.status.B === 'in') steps.push({ vts: 'A', op: { op: 'reconcile', seq: s, mac: key.mac }, required: true });
        return steps;
      }
      case 'threshold-set':
        // A threshold judges no VTS: recorded on a VTS that restarted unjudged (maybe a
        // restored image) it would clear every VTC's restart mark, and a later failure key of
        // the other VTS would vouch for the image (seed 3396). Such a VTS, or one this VTC has
        // not seen, is left out; the boot seen here goes with the record, so a VTS that
        // restarts after this plan refuses it.
        return VTS_NAMES.filter((v) => prev.status[v] === 'in' && this.#obs[v].view !== undefined && this.#obs[v].restarted === null && this.#sameImage(v)).map((v) => ({
          vts: v,
          op: { op: 'record', seq: s, mac: key.mac, ...this.#bootOf(key, v) },
          required: false,
        }));
    }
  }

  /**
   * * A failure key does not stop (and so does not record its seq on) a VTS that restarted
   * with no key recorded on it since, or reports a last key seq out of the expected range: recording it
   * would let a restored old image report the newest seq and pass later elections, as a VTS
   * not elected is started without recording (decided here). Left in operation, it comes
   * back through the return or election rules, which judge its image.
   */
  /**
   * What a stop or record carries to judge the VTS at the moment it acts: the boot this VTC
   * saw when it planned the key, and the newest seq the VTS confirmed recording. A VTC that
   * has not seen the VTS since it restarted itself knows no boot, but an older image still
   * reports less than that seq (seed 52780: a failure key planned with no view stopped a
   * restored image and recorded its seq there, and the image then passed the election).
   */
  #bootOf(key: ShutdownKey, x: VtsName): { bootId?: string; minSeq: number } {
    const b = this.#obs[x].view?.bootId;
    const minSeq = this.#expectRange(x).lo;
    return b !== undefined ? { bootId: b, minSeq } : { minSeq };
  }

  /**
   * A VTS that a threshold-set, vts-in or ptp-start keeps in (in by the newest key, named or
   * not: a vts-in of a VTS already in only starts it again) while this VTC saw it restart
   * with no key recorded on it since. Such a key would record its seq there without judging
   * the image (a restored one may lack acknowledged writes), clear every VTC's restart mark,
   * and let a later failure key of the other VTS leave it serving alone (seeds 3671, 11210).
   * Its loss is recorded first, by a failure key.
   */
  #unjudgedBystander(shape: Pick<CommandShape, 'command'>): VtsName | null {
    if (shape.command !== 'threshold-set' && shape.command !== 'vts-in' && shape.command !== 'ptp-start') return null;
    for (const y of VTS_NAMES) if (this.#eff.status[y] === 'in' && this.#obs[y].restarted !== null) return y;
    return null;
  }

  #unvouchedSubject(key: ShutdownKey, x: VtsName): boolean {
    if (key.reason !== 'failure' && key.mode !== 'forced') return false;
    // A VTS that restarts after this check is caught by the VTS itself: the stop carries the
    // boot judged here (#bootOf), and a restarted VTS refuses it.
    return this.#unjudged(x);
  }

  /**
   * This VTC saw VTS `x` restart and the other lost at the same time (restarted too, or not
   * known in operation when `x` was seen restarted), and no key it trusts has judged `x`
   * since: both were lost at once as far as it knows, an event only a both-lost key (current
   * empty) or both VTS returning together may follow, never an election of one alone.
   */
  #bothLostUnrecorded(x: VtsName): boolean {
    return this.#obs[x].restarted !== null && this.#obs[x].bothLost;
  }

  /**
   * The last VTS in, `x`, was lost together with the other (#bothLostUnrecorded) and reports a
   * last key seq in the expected range: its failure key leaves it out of current, as both
   * together hold every write. One reporting less than it confirmed recording is an older
   * image of the only current VTS: it keeps its membership (and so stays unelectable), or a
   * return with the other would serve what the restore lost (seed 54977: a VTC that had
   * missed the key taking A out judged "both lost" against an older key).
   */
  #lostWithOtherCurrent(x: VtsName): boolean {
    return this.#bothLostUnrecorded(x) && this.#obs[x].view !== undefined && this.#sameImage(x);
  }

  /** VTS `x` restarted with no key judged on it since, or reports a last key seq out of the expected range. */
  #unjudged(x: VtsName): boolean {
    return this.#obs[x].restarted !== null || (this.#obs[x].view !== undefined && !this.#sameImage(x));
  }

  #onAck(from: string, seq: number, keyMac: string, ok: boolean, ballot?: SignedBallot): void {
    if (!ok && seq > this.#hw) this.#send(from, { t: 'sync-req', after: Math.min(this.#hw, this.#eff.seq) });
    const c = this.#coord;
    if (c === null || c.key.seq !== seq || c.key.mac !== keyMac) return;
    if (ok) c.acks.add(from);
    else c.nacks.add(from);
    const e = phase1Election(c.key);
    if (ok && ballot !== undefined && e !== null) {
      if (ballot.voter !== from || ballot.ptpId !== this.config.ptpId || idKey(ballot.election) !== idKey(e)) this.#reject('ack-ballot-mismatch');
      else {
        c.ballots.set(from, ballot);
        this.#out.push({ kind: 'seen', ballots: [ballot] });
      }
    }
    if (c.phase !== 1) return;
    if (!ok) {
      // Forced goes ahead without answers, never against one: a VTC holding another key for
      // this seq (or a newer chain) proves the key would fork the history.
      c.error = new CommandConflictError(`key ${c.key.seq} conflicts with the keys held by ${from}: retry the command`);
      this.#send(from, { t: 'sync-req', after: Math.max(0, Math.min(this.#hw, c.key.prevSeq) - 1) });
      return this.#commit(c, 'failed');
    }
    this.#checkQuorum(c);
  }

  #checkQuorum(c: Coordination): void {
    const T = c.prev.threshold;
    if (c.key.mode !== 'forced' && c.acks.size > T) {
      // A key holding an election goes ahead once more than T elected the VTS, or every VTC heard from lately has answered.
      if (phase1Election(c.key) !== null && this.#yes(c).length <= T && this.#awaitBallots(c)) return;
      return this.#phase2(c);
    }
    if (c.key.mode === 'forced' && c.acks.size + c.nacks.size >= this.#n) return this.#phase2(c);
    if (c.key.mode !== 'forced' && this.#n - c.nacks.size <= T) {
      c.error = new CommandConflictError(`key ${c.key.seq} was refused by ${c.nacks.size} VTC(s) holding a conflicting key: retry the command`);
      this.#commit(c, 'failed');
    }
  }

  #phase1Timeout(): void {
    const c = this.#coord;
    if (c === null) return;
    if (c.key.mode === 'forced' || c.acks.size > c.prev.threshold) return this.#phase2(c);
    c.error = new NoQuorumError(c.key.seq, c.acks.size, c.prev.threshold);
    this.#commit(c, 'failed');
  }

  #phase2(c: Coordination): void {
    c.phase = 2;
    if (phase1Election(c.key) !== null) {
      const yes = this.#yes(c);
      c.elected = yes.length > c.prev.threshold ? yes : null;
      if (c.elected === null) c.steps = c.steps.map((st) => (st.op.op === 'start' ? { ...st, op: { op: 'start', seq: null } } : st));
    }
    this.#nextStep(c);
  }

  /** Who elected the VTS in the election a key holds in phase 1, in configured order. */
  #yes(c: Coordination): string[] {
    return [...c.ballots.values()].filter((b) => b.choice === 'yes').map((b) => b.voter).sort(this.#byIndex);
  }

  #nextStep(c: Coordination): void {
    if (this.#coord !== c) return;
    const step = c.steps[c.i];
    if (step === undefined) return this.#commit(c, 'done');
    c.attempted.add(step.vts);
    if (step.op.op === 'reconcile') c.attempted.add(otherVts(step.vts));
    const vouched = step.pending === 'survivor' ? this.#vouch(step.vts) : null;
    // The stop of the VTS a failure key takes out is best effort (not required): the VTS was
    // judged lost, and a powered-off host answers nothing, so it is given a heartbeat timeout,
    // not a drain's vtsOpTimeout, before the survivor records the key (writes waited 30 s).
    const bestEffortStop = !step.required && step.op.op === 'stop' && c.key.reason === 'failure' && c.key.subjects.includes(step.vts);
    this.#vts(step.vts, step.op, (r, issued) => {
      if (this.#coord !== c) return;
      if (r.ok) {
        this.#observe(r.view, issued);
        if (r.view.lastKeySeq >= c.key.seq) c.recorded.add(step.vts);
        if (step.op.op === 'reconcile') c.recorded.add(otherVts(step.vts));
        // A survivor this VTC cannot vouch for (restarted, another image, a last key seq out of
        // the expected range) is treated as one that could not be asked: current becomes empty,
        // so it serves alone only after an election (or with the other VTS back).
        const same = vouched !== null && (r.view.bootId ?? '') === vouched.bootId && (r.view.imageId ?? '') === vouched.imageId;
        if (step.pending === 'survivor') c.pending = same ? r.view.behind.slice() : null;
        if (step.pending === 'union') c.pending = [...new Set([...(c.pending ?? []), ...r.view.behind])].sort();
        // Both VTS lost at once: whatever they report after coming back (one may be a restored
        // image) cannot show that either holds every write, so current becomes empty.
        if (step.pending === 'union' && c.key.reason === 'failure') c.unionFailed = true;
      } else {
        if (step.pending === 'survivor') c.pending = null;
        if (step.pending === 'union') c.unionFailed = true;
        if (step.required) {
          c.error = new VtsUnreachableError(step.vts, c.key.seq, r.error);
          return this.#commit(c, 'failed');
        }
      }
      c.i++;
      this.#nextStep(c);
    }, bestEffortStop ? this.config.timing.heartbeatTimeout : undefined);
  }

  #commit(c: Coordination, outcome: 'done' | 'failed'): void {
    c.phase = 3;
    // A takeover that learned the key already committed elsewhere adds no failure to it.
    if (outcome === 'failed' && c.commandId === null && this.#commits.get(c.key.seq)?.some((x) => x.keyMac === c.key.mac && x.outcome === 'done') === true) {
      this.#coord = null;
      return;
    }
    // Both VTS lost at once: current is empty whatever phase 2 did, also when it asked
    // neither VTS (both restarted unjudged, so neither is stopped; seed 5726).
    const bothLost = c.key.command === 'ptp-shutdown' && c.key.reason === 'failure';
    let pending: readonly string[] | null = c.unionFailed || bothLost ? null : c.pending;
    let current = c.prev.current;
    let state = c.prev.state;
    const folded = phase1Election(c.key);
    const ballots = [...c.ballots.values()].sort((a, b) => this.#byIndex(a.voter, b.voter));
    let elected = folded === null ? null : c.elected;
    if (outcome === 'done') {
      const chosen = this.#chosen.get(c.key.seq);
      if (chosen !== undefined && chosen.key.mac !== c.key.mac && chosen.commit.outcome === 'done') {
        outcome = 'failed';
        c.error = new CommandConflictError(`key ${c.key.seq} from ${chosen.key.originVtc} was committed first`);
      } else {
        const shape: CommandShape = { command: c.key.command, subjects: c.key.subjects, reason: c.key.reason, threshold: c.key.threshold, ...(this.#deps.broken === 'yes-without-key-checks' ? { unchecked: true } : {}) };
        // Another key may have committed below this one while it was in flight (forced keys do not wait for
        // a quorum): the outcome is computed on the chain as it is now, and refused if it no longer applies.
        // More than T elected the VTS in phase 1: the key places it on-line alone, if the chain
        // below still allows an election (else it only brings the VTS back, off-line).
        const below = this.#effBelow(c.key.seq);
        let t = elected === null ? null : tryTransition(below, { ...shape, reason: 'election' }, pending);
        if (t === null || t instanceof PtpError) {
          elected = null;
          t = tryTransition(below, shape, pending);
        }
        if (!(t instanceof PtpError) && (t.status.A !== c.key.status.A || t.status.B !== c.key.status.B)) {
          // The key's status was computed from another predecessor than the chain below it now:
          // its commit would pair that status with another key's current and state.
          t = new CommandConflictError(`key ${c.key.seq} was built on key ${c.key.prevSeq}, but key ${below.seq} is committed below it now`);
        }
        if (t instanceof PtpError) {
          outcome = 'failed';
          c.error = t;
        } else {
          current = sortVts(t.current);
          state = t.state;
        }
      }
    }
    if (outcome === 'failed') {
      pending = c.key.copiesPending;
      this.#backoffUntil = this.#now + (1 + this.#index) * this.config.timing.stagger;
    }
    const commit = this.#signer.sign<CommitRecord>({
      ptpId: this.config.ptpId,
      seq: c.key.seq,
      keyMac: c.key.mac,
      coordinator: this.config.self,
      outcome,
      error: c.error?.message ?? null,
      acks: [...c.acks].sort(this.#byIndex),
      copiesPending: pending,
      current,
      state,
      recorded: sortVts(c.recorded),
      attempted: sortVts(c.attempted),
      ...(folded === null ? {} : { ballots, election: outcome === 'done' && elected !== null ? { seq: folded.seq, vts: folded.vts, round: folded.round, yes: elected } : null }),
    });
    this.#appendingMacs.add(commit.mac);
    // Peers make the commit durable while this VTC does; it applies it once its own copy is.
    this.#broadcast({ t: 'commit', key: c.key, commit });
    this.#append({ type: 'commit', key: c.key, commit }, () => {
      this.#appendingMacs.delete(commit.mac);
      this.#applyCommit(c.key, commit);
      if (this.#coord === c) this.#coord = null;
      if (c.commandId !== null) {
        this.#result(c.commandId, outcome === 'done' ? { ok: true, seq: c.key.seq, key: effectiveKey(c.key, commit) } : { ok: false, error: c.error ?? new CommandConflictError(`key ${c.key.seq} failed`) });
      }
    });
  }

  /**
   * Acknowledges `key` to `to`, with this VTC's ballot when the key holds its election in
   * phase 1. A ballot that would only say "no view of the VTS since my newest key" while
   * the heartbeat that key set off may still answer waits for it (see #unpark): a VTC that
   * has just caught up would otherwise vote NO for want of evidence.
   */
  #ackTo(key: ShutdownKey, to: Iterable<string>): void {
    if (this.#ballotPending(key)) {
      const parked = this.#parkedAcks.get(key.mac) ?? { key, to: new Set<string>() };
      for (const p of to) parked.to.add(p);
      this.#parkedAcks.set(key.mac, parked);
      return;
    }
    const ballot = this.#phase1Ballot(key);
    const ack: PeerMessage = ballot === undefined ? { t: 'ack', seq: key.seq, keyMac: key.mac } : { t: 'ack', seq: key.seq, keyMac: key.mac, ballot };
    for (const p of to) this.#send(p, ack);
  }

  /** True while this VTC's ballot in `key`'s phase 1 election waits for a view of the VTS newer than its newest key. */
  #ballotPending(key: ShutdownKey): boolean {
    const e = phase1Election(key);
    return e !== null && !this.#cast.has(idKey(e)) && this.#awaitingView(e.vts);
  }

  /** The view of `x` predates the newest key, and the heartbeat that key set off may still answer. */
  #awaitingView(x: VtsName): boolean {
    return this.#obs[x].at < this.#effAt && this.#now - this.#effAt < this.config.timing.heartbeatTimeout;
  }

  /** Sends the acknowledgements (and adds the coordinator's own ballot) that waited for a fresh view. */
  #unpark(): void {
    for (const [mac, p] of this.#parkedAcks) {
      if (this.#ballotPending(p.key)) continue;
      this.#parkedAcks.delete(mac);
      this.#ackTo(p.key, p.to);
    }
    const c = this.#coord;
    if (c !== null && c.phase === 1 && !c.ballots.has(this.config.self) && this.#addOwnBallot(c)) this.#checkQuorum(c);
  }

  /** Adds the coordinator's own ballot to the election its key holds in phase 1, once it can be decided; true if added. */
  #addOwnBallot(c: Coordination): boolean {
    if (this.#ballotPending(c.key)) return false;
    const own = this.#phase1Ballot(c.key);
    if (own === undefined) return false;
    c.ballots.set(this.config.self, own);
    return true;
  }

  /**
   * This VTC's ballot in the election `key` holds in its phase 1, decided like any ballot
   * from its own newest key and its own view of the VTS (which must have answered since
   * that key, but need not be in operation: the key starts it). Cast once per election.
   */
  #phase1Ballot(key: ShutdownKey): SignedBallot | undefined {
    const e = phase1Election(key);
    if (e === null) return undefined;
    const id: ElectionId = { seq: e.seq, vts: e.vts, round: e.round };
    const cast = this.#cast.get(idKey(id));
    if (cast !== undefined) return cast;
    this.#noteRound(id);
    const o = this.#obs[id.vts];
    const fresh = o.at >= this.#effAt && this.#now - o.at <= this.config.timing.heartbeatTimeout;
    return this.#castBallot(id, fresh ? o.view : undefined, true);
  }

  /** The newest round this VTC knows of for the election's key and VTS. */
  #noteRound(id: ElectionId): void {
    const rk = `${id.seq}:${id.vts}`;
    if ((this.#rounds.get(rk) ?? -1) < id.round) this.#rounds.set(rk, id.round);
  }

  /** Decides (decideVote, from this VTC's newest key and `view`), signs and records this VTC's ballot in election `id`. */
  #castBallot(id: ElectionId, view: VtsView | undefined, starting: boolean): SignedBallot {
    const { lo, hi } = this.#expectRange(id.vts);
    const vote = decideVote({
      key: this.#eff,
      vts: id.vts,
      view: view === undefined ? undefined : { ...view, lastKeySeq: this.#judgedSeq(id.vts) },
      expectLo: lo,
      expectHi: hi,
      electionSeq: id.seq,
      seenMaxKeySeq: this.#seenMaxKeySeq,
      ...(this.#bothLostUnrecorded(id.vts) ? { bothLost: true } : {}),
      ...(this.#olderImage(id.vts) === null ? {} : { olderImage: this.#olderImage(id.vts)! }),
      ...(starting ? { starting } : {}),
      ...(this.#deps.broken === undefined ? {} : { broken: this.#deps.broken }),
    });
    const ballot = this.#signer.sign<SignedBallot>({ ptpId: this.config.ptpId, election: id, voter: this.config.self, keySeq: this.#eff.seq, choice: vote.yes ? 'yes' : 'no', why: vote.why });
    this.stats.ballotsCast++;
    if (this.#cast.size >= 256) this.#cast.clear();
    this.#cast.set(idKey(id), ballot);
    this.#out.push({ kind: 'ballot', ballot });
    return ballot;
  }

  /** True while a VTC heard from lately has not answered the key and the phase 1 deadline has not passed. */
  #awaitBallots(c: Coordination): boolean {
    if (phase1Election(c.key) === null || this.#now >= c.deadline) return false;
    if (!c.ballots.has(this.config.self)) return true;
    return this.config.vtcs.some((v) => v !== this.config.self && this.#heardLately(v) && !c.acks.has(v) && !c.nacks.has(v));
  }

  /** Every VTC tallies: a commit placing a VTS on-line by a phase 1 election must carry more than T signed YES ballots of it. */
  #backed(key: ShutdownKey, commit: CommitRecord): boolean {
    const e = commit.election;
    if (e === undefined || e === null) return true;
    const want = idKey(e);
    const yes = new Set<string>();
    for (const b of commit.ballots ?? []) {
      if (b.choice === 'yes' && b.ptpId === this.config.ptpId && idKey(b.election) === want && e.yes.includes(b.voter) && this.config.vtcs.includes(b.voter)) yes.add(b.voter);
    }
    return key.election !== null && idKey(key.election) === want && yes.size === e.yes.length && yes.size > key.threshold;
  }

  // ---------------------------------------------------------------- VTS

  #vts(vts: VtsName, op: VtsOp, done: (r: VtsResult, issued: number) => void, timeoutMs?: number): number {
    const token = this.#nextToken++;
    const timeout = timeoutMs ?? (op.op === 'status' ? this.config.timing.heartbeatTimeout : this.config.timing.vtsOpTimeout);
    this.#ops.set(token, { deadline: this.#now + timeout, issued: this.#now, done });
    this.#out.push({ kind: 'vts', vts, op, token });
    return token;
  }

  #finishOp(token: number, r: VtsResult): void {
    const op = this.#ops.get(token);
    if (op === undefined) return;
    this.#ops.delete(token);
    op.done(r, op.issued);
  }

  /** Asks VTS `x` for its status; a heartbeat still in flight is superseded, not awaited. */
  #heartbeat(x: VtsName): void {
    const o = this.#obs[x];
    o.hbIssued = this.#now;
    const token: number = this.#vts(x, { op: 'status' }, (r, issued) => {
      if (o.hbToken === token) o.hbToken = null;
      if (r.ok) this.#observe(r.view, issued);
      // Unreachable since: when it answers again it has returned, and returnGrace starts
      // then (a VTS powered off keeps no "in operation since" from before).
      else if (issued >= o.at) {
        o.inSince = null;
        o.lastFail = issued;
      }
    });
    o.hbToken = token;
  }

  /** A view of a VTS, dated by when it was asked for: an answer to an older request never replaces a newer one. */
  #observe(view: VtsView, issued: number): void {
    const o = this.#obs[view.name];
    if (issued < o.at) return;
    // A VTS that restarted (or is another image) may have lost, or never had, what it held:
    // it counts as lost until a key records the event (see #lost).
    // The identity seen before: the last view, or after this VTC restarted, the last sighting
    // it journalled (seed 97888: the restart evidence died with the VTC that saw it).
    const before = o.view !== undefined ? { bootId: o.view.bootId ?? '', imageId: o.view.imageId ?? '' } : o.journaled;
    if (before !== null && ((view.bootId ?? '') !== before.bootId || (view.imageId ?? '') !== before.imageId)) {
      // A VTS restarting again before any key judged it stays as unjudged as it was (seed 20119).
      o.bothLost = o.restarted !== null && o.bothLost;
      o.restarted = { seq: view.lastKeySeq };
      // Both lost at once, as far as this VTC can tell: the other VTS, kept in by the newest
      // key, had restarted too (no key judged it since) or was not known in operation when
      // this one was seen restarted; the latter counts as restarted when it answers again.
      const y = this.#obs[otherVts(view.name)];
      // Judged against this VTC's newest key only while the VTS reports no newer one: one that
      // recorded a key this VTC has not learned shows the chain moved on without it, and the
      // other's loss may already be recorded there (seed 526: a failure key of A, then B's
      // power cycle, looked like both lost to a VTC that had missed the key).
      if (this.#eff.status[otherVts(view.name)] === 'in' && this.#eff.status[view.name] === 'in' && view.lastKeySeq <= this.#eff.seq) {
        if (y.restarted !== null) o.bothLost = y.bothLost = true;
        // Not known in operation: seen out of operation or unreachable since this VTC started,
        // not merely unheard yet (a VTC that just restarted has asked nothing; seed 64477).
        else if (y.inSince === null && (y.view !== undefined || y.lastFail >= this.#boot)) {
          o.bothLost = true;
          y.lostWithOther = true;
        }
      }
    } else if (o.lostWithOther && o.restarted === null) {
      // Unless a key this VTC trusts was recorded on it since it was last seen: whoever
      // recorded it judged this boot (seed 56772: B was only cut from this VTC, and the
      // failure key of A, acknowledged here, had recorded on B meanwhile).
      if (!(view.lastKeySeq > (o.view?.lastKeySeq ?? -1) && this.#judgedRecord(view))) {
        o.restarted = { seq: view.lastKeySeq };
        o.bothLost = true;
      }
    } else if (o.restarted !== null && view.lastKeySeq > o.restarted.seq && this.#judgedRecord(view)) {
      o.restarted = null;
      o.bothLost = false;
    }
    o.lostWithOther = false;
    o.view = view;
    o.at = issued;
    if (view.tokenSum !== undefined && view.imageId !== undefined && view.bootId !== undefined) this.#evidence.note({ vts: view.name, imageId: view.imageId, bootId: view.bootId, sum: view.tokenSum, seq: this.#eff.seq });
    this.#noteSighting(view.name);
    this.#noteSighting(otherVts(view.name));
    if (view.inOperation) {
      o.lastOk = issued;
      if (o.inSince === null) o.inSince = issued;
    } else {
      o.inSince = null;
    }
  }

  /** Journals what this VTC holds of VTS `x`'s identity and restart marks, when it changed. */
  #noteSighting(x: VtsName): void {
    const o = this.#obs[x];
    const id = o.view !== undefined ? { bootId: o.view.bootId ?? '', imageId: o.view.imageId ?? '' } : o.journaled;
    if (id === null) return;
    const body = { ptpId: this.config.ptpId, observer: this.config.self, vts: x, bootId: id.bootId, imageId: id.imageId, restartedSeq: o.restarted?.seq ?? null, bothLost: o.bothLost, lostWithOther: o.lostWithOther };
    const state = JSON.stringify(body);
    if (state === o.sighted) return;
    o.sighted = state;
    o.journaled = id;
    this.#append({ type: 'sighting', sighting: this.#signer.sign<VtsSighting>(body) }, () => undefined);
  }

  /** Takes a journalled sighting back after a restart (the last one of each VTS wins). */
  #restoreSighting(r: VtsSighting): void {
    if (r.ptpId !== this.config.ptpId || r.observer !== this.config.self) return;
    const o = this.#obs[r.vts];
    o.journaled = { bootId: r.bootId, imageId: r.imageId };
    o.restarted = r.restartedSeq === null ? null : { seq: r.restartedSeq };
    o.bothLost = r.bothLost;
    o.lostWithOther = r.lostWithOther;
    o.sighted = JSON.stringify({ ptpId: r.ptpId, observer: r.observer, vts: r.vts, bootId: r.bootId, imageId: r.imageId, restartedSeq: r.restartedSeq, bothLost: r.bothLost, lostWithOther: r.lostWithOther });
  }

  /**
   * Whether the key a VTS reports as its last (seq and MAC) clears this VTC's restart mark on
   * it: a key held here with a done commit that is strong (more than T VTCs held it, so it
   * went through the nacks of the VTCs that saw the restart) or that this VTC acknowledged
   * itself (so it judged it with the mark in mind; a key held without a commit yet was
   * acknowledged here). A weak forced key of a VTC that restarted
   * itself, or was cut off, records its seq on an image it cannot judge (it never saw the old
   * boot); clearing the marks on it let the VTCs that saw the restart elect or serve a
   * restored image (seeds 20119, 66024). The mark then stays until such a key records.
   */
  #judgedRecord(view: VtsView): boolean {
    const key = this.#keys.get(view.lastKeySeq)?.get(view.lastKeyMac ?? '');
    if (key === undefined) return false;
    // A key that takes the VTS out stops it whatever image it is: that judges nothing.
    if (key.command === 'ptp-shutdown' || (key.command === 'vts-out' && key.subjects.includes(view.name))) return false;
    // Held without a commit yet: this VTC acknowledged it (a key is held only so, or with its
    // commit), as a return key's own records reach the VTS before its commit arrives.
    if (this.#unresolved.has(key.mac)) return true;
    const commit = this.#commits.get(key.seq)?.find((c) => c.keyMac === key.mac && c.outcome === 'done');
    if (commit === undefined) return false;
    return isStrong(effectiveKey(key, commit)) || commit.acks.includes(this.config.self);
  }

  /**
   * In operation by a view that is recent and newer than the newest key: asked for after
   * the key took effect here, or showing the VTS has recorded a key that keeps it in. A heartbeat answered
   * just before a key took the VTS out must not make it look back when the key lands.
   */
  #seenIn(x: VtsName): boolean {
    const o = this.#obs[x];
    return (
      o.view !== undefined &&
      o.view.inOperation &&
      this.#now - o.lastOk <= this.config.timing.heartbeatTimeout &&
      // A VTS the newest key put in (or left in) that has recorded it is past the key; one
      // the key took out must be asked again (it records the key before it drains and stops).
      (o.at >= this.#effAt || (this.#eff.status[x] === 'in' && o.view.lastKeySeq >= this.#eff.seq))
    );
  }

  /** Only evidence newer than the newest key counts: a view taken before a key started the VTS says nothing. */
  #lost(x: VtsName): boolean {
    const o = this.#obs[x];
    if (o.view !== undefined && !o.view.inOperation && o.at > this.#effAt) return true;
    // Restarted and no key recorded on it since: a power loss shorter than the heartbeat
    // timeout, or a restored image, is a loss all the same (both restarting: both lost at once).
    if (o.restarted !== null) return true;
    return this.#now - Math.max(o.lastOk, this.#boot, this.#effAt, this.#resumedAt) > this.config.timing.heartbeatTimeout;
  }

  // ---------------------------------------------------------------- autonomous actions

  /** A peer heard from within three hello intervals counts as live. */
  #heardLately(v: string): boolean {
    return this.#now - (this.#lastHeard.get(v) ?? -Infinity) <= 3 * this.config.timing.helloInterval;
  }

  /** Orders VTC names as configured. */
  readonly #byIndex = (a: string, b: string): number => this.config.vtcs.indexOf(a) - this.config.vtcs.indexOf(b);

  #rank(among?: readonly string[]): number {
    const live = this.config.vtcs.filter(
      (v) => (among === undefined || among.includes(v)) && (v === this.config.self || this.#heardLately(v)),
    );
    return Math.max(0, live.indexOf(this.config.self));
  }

  /** True once `action` has been wanted continuously for this VTC's stagger delay. */
  #due(action: string, rank: number): boolean {
    if (this.#auto === null || this.#auto.action !== action) this.#auto = { action, since: this.#now };
    return this.#now - this.#auto.since >= rank * this.config.timing.stagger;
  }

  #autonomous(): void {
    if (this.#coord !== null || this.#now < this.#backoffUntil) return;
    const eff = this.#eff;
    const t = this.config.timing;
    if (this.#maxHeld > this.#hw) {
      this.#election = null;
      const seen = this.#keySeenAt.get(this.#maxHeld) ?? this.#now;
      if (this.#hw === this.#maxHeld - 1 && this.#now - seen >= t.pendingTimeout && this.#due(`takeover:${this.#maxHeld}`, this.#rank())) this.#takeover();
      return;
    }
    // A key below the head that was never committed (its coordinator failed, and another key
    // settled its seq) blocks keys that pass over it: take it over, so it commits or fails.
    for (const k of this.#unresolved.values()) {
      if (k.seq > this.#hw || this.#now - (this.#keySeenAt.get(k.seq) ?? this.#now) < t.pendingTimeout) continue;
      // Each holder resolves its own: staggering would let a stream of other proposals (each
      // resets the wait) starve it.
      this.#begin(k, this.#effBelow(k.seq), null);
      return;
    }
    if (this.#openAbove() !== null) return;
    for (const x of VTS_NAMES) {
      // A VTC that sees neither VTS cannot fence the survivor; one that sees it coordinates instead.
      // The survivor must not be lost itself (restarted since the key): that is both lost at once, below.
      if (eff.status[x] === 'in' && this.#lost(x) && (eff.status[otherVts(x)] === 'out' || (this.#seenIn(otherVts(x)) && !this.#lost(otherVts(x))))) {
        // The last VTS in, lost together with the other: whether it leaves current depends on
        // the seq it reports, so a view older than the newest key (which may have recorded on
        // it) is asked again first, for at most a heartbeat timeout (seed 83922: a stale view
        // below the seq just recorded kept the VTS current, and this VTC voted NO for ever).
        if (eff.status[otherVts(x)] === 'out' && this.#bothLostUnrecorded(x) && this.#obs[x].at < this.#effAt && this.#now - this.#effAt < t.heartbeatTimeout) return;
        // A restart this VTC saw before the newest key put x in says nothing of x now: that
        // key's coordinator judged x's boot and recorded it there. Ask x again first, for at
        // most a heartbeat timeout (a vts-in of a restarted VTS was followed at once by a
        // failure key for it, and the system flapped off-line and back).
        if (this.#obs[x].restarted !== null && this.#obs[x].at < this.#effAt && this.#now - this.#effAt < t.heartbeatTimeout) return;
        if (this.#due(`fail:${eff.seq}:${x}`, this.#rank())) this.#coordinate({ command: 'vts-out', subjects: [x], reason: 'failure' }, 'forced', null, null);
        return;
      }
    }
    // Both lost at once (power): recorded before either may serve again, as a forced
    // shutdown whose pending copies are unknown (current empty), so one VTS back alone is
    // not elected and both back come on-line together by a return key, without a vote.
    if (eff.status.A === 'in' && eff.status.B === 'in' && this.#lost('A') && this.#lost('B')) {
      if (this.#due(`fail:${eff.seq}:AB`, this.#rank())) this.#coordinate({ command: 'ptp-shutdown', subjects: ['A', 'B'], reason: 'failure' }, 'forced', null, null);
      return;
    }
    const back = VTS_NAMES.filter((x) => eff.status[x] === 'out' && this.#seenIn(x));
    const graceOver = (x: VtsName): boolean => this.#now - (this.#obs[x].inSince ?? this.#now) >= t.returnGrace;
    if (back.length > 0) {
      const others = VTS_NAMES.filter((x) => !back.includes(x));
      // A returning VTS in current must be the image that left: a last key seq below the newest
      // it confirmed recording is an older image, and a return without a vote would serve it.
      const genuine = back.every((x) => !eff.current.includes(x) || this.#sameImage(x));
      if (genuine && others.every((y) => eff.status[y] === 'in' || this.#seenIn(y))) {
        const subjects = VTS_NAMES.filter((x) => eff.status[x] === 'out');
        if (this.#due(`return:${eff.seq}:${subjects.join('')}`, this.#rank())) this.#coordinate({ command: 'vts-in', subjects, reason: 'return' }, 'normal', null, null);
        return;
      }
    }
    // A VTS in operation that holds another key of the chain's newest seq (a weak forced key
    // of a VTC that was cut off, recorded there first: a VTS keeps the first key of a seq)
    // refuses every fenced write and copy of this chain as a fork, for ever (seed 554). A key
    // with a higher seq, committed by a quorum like any other, records over it.
    const forked = VTS_NAMES.filter((x) => {
      const o = this.#obs[x];
      return eff.status[x] === 'in' && o.restarted === null && o.view !== undefined && o.at >= this.#effAt && o.view.inOperation && o.view.lastKeySeq === eff.seq && o.view.lastKeyMac !== undefined && o.view.lastKeyMac !== '' && o.view.lastKeyMac !== eff.mac;
    });
    if (forked.length > 0) {
      if (this.#due(`supersede:${eff.seq}:${forked.join('')}`, this.#rank())) this.#coordinate({ command: 'vts-in', subjects: forked, reason: 'supersede' }, 'normal', null, null);
      return;
    }
    const status = this.status();
    if (status.kind !== 'offline') {
      this.#election = null;
      return;
    }
    const pj = this.#pendingJoin;
    if (pj !== null) {
      if (pj.seq !== eff.seq || (this.#election !== null && !newer(pj, this.#election.id))) this.#pendingJoin = null;
      else if (this.#obs[pj.vts].at >= this.#effAt || this.#now - this.#effAt >= t.heartbeatTimeout) {
        this.#pendingJoin = null;
        this.#join(pj);
        return;
      }
    }
    const up = VTS_NAMES.filter((x) => this.#seenIn(x));
    const x = up[0];
    if (up.length !== 1 || x === undefined || !graceOver(x)) return;
    const e = this.#election;
    if (e !== null && e.online !== null && e.id.vts === x && e.id.seq === eff.seq) {
      // The VTC that committed the key the election is about records the decision (every VTC
      // names the same one); the others stand by, in order, in case it cannot.
      const lead = this.#chosen.get(eff.seq)?.commit.coordinator;
      const yesRank = e.online.yes.indexOf(this.config.self);
      const rank = lead === this.config.self ? 0 : 1 + (yesRank >= 0 ? yesRank : e.online.yes.length + this.#rank());
      if (this.#due(`elect:${idKey(e.id)}`, rank)) {
        try {
          this.#coordinate({ command: 'vts-in', subjects: [x], reason: 'election', ...(this.#deps.broken === 'yes-without-key-checks' ? { unchecked: true } : {}) }, 'normal', null, { ...e.id, yes: e.online.yes });
        } catch (err) {
          if (!(err instanceof PtpError)) throw err;
          this.#election = null;
        }
      }
      return;
    }
    const rk = `${eff.seq}:${x}`;
    const last = this.#rounds.get(rk);
    const timedOut = (startedAt: number): boolean => this.#now - startedAt >= t.electionTimeout + this.#rank() * t.stagger;
    if (e === null || e.id.vts !== x || e.id.seq !== eff.seq) {
      // Back to the round this VTC is in, unless it has run out: a new round for every lapse
      // (a key in flight, a status change) would scatter the VTCs over different rounds.
      const lastId: ElectionId | null = last === undefined ? null : { seq: eff.seq, vts: x, round: last };
      const started = lastId === null ? undefined : this.#roundStarted.get(idKey(lastId));
      if (lastId !== null && started !== undefined && !timedOut(started)) this.#join(lastId);
      else this.#join({ seq: eff.seq, vts: x, round: (last ?? -1) + 1 });
    } else if (timedOut(e.startedAt)) {
      this.#join({ seq: eff.seq, vts: x, round: (last ?? -1) + 1 });
    }
  }

  #takeover(): void {
    const held = this.#keys.get(this.#maxHeld);
    if (held === undefined || held.size === 0) return;
    const key = [...held.values()].sort((a, b) => this.config.vtcs.indexOf(a.originVtc) - this.config.vtcs.indexOf(b.originVtc) || (a.mac < b.mac ? -1 : 1))[0];
    if (key === undefined) return;
    this.#begin(key, this.#eff, null);
  }

  // ---------------------------------------------------------------- elections

  #join(id: ElectionId): void {
    this.#noteRound(id);
    const known = this.#joined.get(idKey(id));
    if (known !== undefined && known.effMac === this.#eff.mac) {
      // Rejoining keeps the ballots already counted in that round.
      this.#election = known;
      const again = this.#ballotBuffer.get(idKey(id)) ?? [];
      this.#ballotBuffer.clear();
      for (const b of again) this.#tally(known, b);
      return;
    }
    let startedAt = this.#roundStarted.get(idKey(id));
    if (startedAt === undefined) {
      if (this.#roundStarted.size >= 256) this.#roundStarted.clear();
      startedAt = this.#now;
      this.#roundStarted.set(idKey(id), startedAt);
    }
    const e: Election = {
      id,
      tally: this.#deps.tally({ electorate: this.#n, threshold: this.#eff.threshold, window: 1 }),
      ballots: new Map(),
      startedAt,
      effMac: this.#eff.mac,
      online: null,
      offline: false,
    };
    this.#election = e;
    if (this.#joined.size >= 64) this.#joined.clear();
    this.#joined.set(idKey(id), e);
    // Rejoining an election (a ballot arrived after this VTC left it) recasts nothing: its
    // ballot stands, and a second broadcast would let VTCs answer each other without end.
    const cast = this.#cast.get(idKey(id));
    if (cast !== undefined) {
      this.#tally(e, cast);
      const again = this.#ballotBuffer.get(idKey(id)) ?? [];
      this.#ballotBuffer.clear();
      for (const b of again) this.#tally(e, b);
      return;
    }
    const ballot = this.#castBallot(id, this.#seenIn(id.vts) ? this.#obs[id.vts].view : undefined, false);
    this.#broadcast({ t: 'ballot', ballot });
    this.#tally(e, ballot);
    const buffered = this.#ballotBuffer.get(idKey(id)) ?? [];
    this.#ballotBuffer.clear();
    for (const b of buffered) this.#tally(e, b);
  }

  /**
   * Whether this VTC can vouch that VTS `y` is the same image that recorded the keys it
   * holds, so a failure key may leave it serving alone: seen in operation, not restarted
   * without a key recorded on it since, and reporting a last key seq in the range an election expects.
   * Returns the boot and image ids to compare with its answer, or null.
   */
  #vouch(y: VtsName): { bootId: string; imageId: string } | null {
    const o = this.#obs[y];
    const v = o.view;
    if (v === undefined || !v.inOperation || o.restarted !== null) return null;
    const { lo, hi } = this.#expectRange(y);
    if (v.lastKeySeq < lo || v.lastKeySeq > hi) return null;
    return { bootId: v.bootId ?? '', imageId: v.imageId ?? '' };
  }

  /**
   * What this VTC holds of each VTS's restarts: restarted with no trusted key recorded since
   * (`restartedSeq`, the last key seq it reported then; null: none) and seen lost together
   * with the other (`bothLost`). Kept across a restart of this VTC by its journal (sightings).
   */
  restartMarks(): Record<VtsName, { readonly restartedSeq: number | null; readonly bothLost: boolean }> {
    const of = (x: VtsName): { restartedSeq: number | null; bothLost: boolean } => ({ restartedSeq: this.#obs[x].restarted?.seq ?? null, bothLost: this.#obs[x].restarted !== null && this.#obs[x].bothLost });
    return { A: of('A'), B: of('B') };
  }

  /**
   * The newest seq VTS `x` confirmed recording, as this VTC knows it (a done or chosen commit
   * naming it in `recorded`): the lowest last key seq it accepts from `x` as the same image.
   */
  confirmedSeq(x: VtsName): number {
    return this.#expectRange(x).lo;
  }

  /** The VTS reports a last key seq in the range an election expects of it (not an older image). */
  #sameImage(x: VtsName): boolean {
    const v = this.#obs[x].view;
    const { lo, hi } = this.#expectRange(x);
    const seq = this.#judgedSeq(x);
    return v !== undefined && seq >= lo && seq <= hi && this.#olderImage(x) === null;
  }

  /**
   * Why VTS `x` is an older image of itself by its token sum (null when it is not, or this VTC
   * cannot tell): the view reports less than an earlier boot of the same image was seen
   * holding, here or by a peer (ImageEvidence). Keys, boot and image ids cannot show this: a
   * restore brings back the image id and, when the key that followed never recorded on the
   * VTS, the same last key seq (seeds 252, 602, 737, 1503).
   */
  #olderImage(x: VtsName): string | null {
    const v = this.#obs[x].view;
    if (v?.tokenSum === undefined || v.imageId === undefined || v.bootId === undefined) return null;
    const floor = this.#evidence.floor(x, v.imageId, v.bootId);
    return v.tokenSum < floor ? `VTS ${x} reports token generations summing to ${v.tokenSum}, below ${floor} seen of its image before it restarted: an older image` : null;
  }

  /**
   * A VTS that key (or command) `k` leaves in operation, other than one it overrides, that is
   * an older image of itself and whose data the chain relies on (#reliedOn).
   */
  #olderKept(k: { readonly status: Readonly<Record<VtsName, 'in' | 'out'>>; readonly reason: string; readonly subjects: readonly VtsName[] }): string | null {
    for (const x of VTS_NAMES) {
      if (k.status[x] !== 'in' || (k.reason === 'override' && k.subjects.includes(x)) || !this.#reliedOn(x, k.status)) continue;
      const why = this.#olderImage(x);
      if (why !== null) return why;
    }
    return null;
  }

  /**
   * The chain relies on VTS `x`'s data, as VTS `status` (the newest key's, or a key's being
   * made) leave them: `x` was current (in the newest key that names any VTS current, for
   * current empty after both were lost), and the other VTS cannot stand for it: the other
   * was not current with it, is not in operation, or is an older image too. One outside
   * current is reconciled as behind on everything, whatever image it is. One current with
   * a genuine other is not relied on: every write acknowledged while both were current left
   * its generation on both (the data, or the other's token marked behind), so the reconcile
   * takes each volume's newest generation from either side, and a write only the restore
   * destroyed reads as unavailable, never stale (src/vtc/fencing.test.ts).
   */
  #reliedOn(x: VtsName, status: Readonly<Record<VtsName, 'in' | 'out'>> = this.#eff.status): boolean {
    const cur = this.#lastCurrent();
    if (!cur.includes(x)) return false;
    const y = otherVts(x);
    return !(cur.includes(y) && status[y] === 'in' && this.#obs[y].view !== undefined && this.#olderImage(y) === null);
  }

  /** `current` of the newest key that names any VTS current (all of them before the first key). */
  #lastCurrent(): readonly VtsName[] {
    if (this.#eff.current.length > 0) return this.#eff.current;
    for (let seq = this.#eff.seq - 1; seq > 0; seq--) {
      const c = this.#chosen.get(seq);
      if (c !== undefined && c.commit.outcome === 'done' && c.commit.current.length > 0) return c.commit.current;
    }
    return VTS_NAMES;
  }

  /**
   * The last key seq VTS `x` is judged by: what it reports, unless this VTC saw it restart and
   * no key it trusts (#judgedRecord) has been recorded on it since, and the key it reports is
   * not the one this VTC's chain holds at that seq (the range's lower bound comes from that
   * chain); then what it reported when it came back. A weak key of another branch (a forced
   * key of a VTC that restarted or was cut off) recorded on a restored image must not lift it
   * into the expected range: in seed
   * 20013 a forked forced `vts-out` recorded its seq 1 on an image of seq 0, which every VTC
   * then elected. The MAC is not compared in general: a genuine VTS may have recorded a
   * losing fork's key (that made 13 seeds of 0..4000 lose liveness).
   */
  #judgedSeq(x: VtsName): number {
    const o = this.#obs[x];
    const reported = o.view?.lastKeySeq ?? 0;
    if (o.restarted === null || this.#chosen.get(reported)?.key.mac === o.view?.lastKeyMac) return reported;
    return Math.min(reported, o.restarted.seq);
  }

  /** [newest seq the VTS confirmed recording, newest key seq held here]: a VTS outside it is another image. */
  #expectRange(x: VtsName): { lo: number; hi: number } {
    let lo = 0;
    for (const { commit } of this.#chosen.values()) if (commit.recorded.includes(x) && commit.seq > lo) lo = commit.seq;
    return { lo, hi: this.#maxHeld };
  }

  #onBallot(from: string, b: SignedBallot): void {
    if (b.ptpId !== this.config.ptpId) return this.#reject('other-ptp');
    if (b.voter !== from) return this.#reject('ballot-voter-mismatch');
    this.#out.push({ kind: 'seen', ballots: [b] });
    // Each voter's latest ballot counts: a VTC that left a fork stops holding the others back.
    this.#voterKeySeq.set(b.voter, b.keySeq);
    this.#seenMaxKeySeq = Math.max(0, ...this.#voterKeySeq.values());
    if (b.keySeq > this.#eff.seq) this.#send(from, { t: 'sync-req', after: this.#hw });
    if (b.election.seq < this.#eff.seq) {
      // An election about a key older than this VTC's newest: its caller missed a key. Answer
      // it once, NO with the newer keySeq (which makes it sync), and take no part: joining
      // would let two VTCs answer each other's ballots without end.
      const k = idKey(b.election);
      if (this.#answered.has(k)) return;
      if (this.#answered.size >= 256) this.#answered.clear();
      this.#answered.add(k);
      const no = this.#signer.sign<SignedBallot>({ ptpId: this.config.ptpId, election: b.election, voter: this.config.self, keySeq: this.#eff.seq, choice: 'no', why: `election is about key ${b.election.seq}, newest here is ${this.#eff.seq}` });
      this.stats.ballotsCast++;
      this.#out.push({ kind: 'ballot', ballot: no });
      return this.#send(from, { t: 'ballot', ballot: no });
    }
    const e = this.#election;
    if (e !== null && idKey(e.id) === idKey(b.election)) return this.#tally(e, b);
    if (e !== null && !newer(b.election, e.id)) return this.#reject('stale-ballot');
    // A newer election: take part once it is one this VTC can vote in, with its own decision.
    if (this.#coord === null && this.#maxHeld === this.#hw) {
      const buf = this.#ballotBuffer.get(idKey(b.election)) ?? [];
      buf.push(b);
      this.#ballotBuffer.clear();
      this.#ballotBuffer.set(idKey(b.election), buf);
      // Without a view of the VTS newer than the key, this VTC would vote NO for want of
      // evidence: it votes once the heartbeat the key triggered has answered.
      if (b.election.seq === this.#eff.seq && this.#awaitingView(b.election.vts)) {
        this.#pendingJoin = b.election;
        return;
      }
      this.#join(b.election);
    }
  }

  #tally(e: Election, b: SignedBallot): void {
    const voter = this.config.vtcs.indexOf(b.voter);
    if (voter < 0) return this.#reject('unknown-voter');
    if (e.ballots.has(b.voter)) return;
    e.ballots.set(b.voter, b);
    const r = e.tally.cast({ election: 0, voter, choice: b.choice === 'yes' ? 1 : 0, keySeq: BigInt(b.keySeq) });
    // A VTC behind the key the election is about counts ballots but decides nothing: the
    // threshold it would apply is an older key's.
    if (r.decision === undefined || e.id.seq !== this.#eff.seq || e.effMac !== this.#eff.mac) return;
    if (r.decision.outcome === 'online') {
      const yes = [...e.ballots.values()].filter((x) => x.choice === 'yes').map((x) => x.voter);
      yes.sort(this.#byIndex);
      e.online = { at: this.#now, yes };
    } else e.offline = true;
  }

  // ---------------------------------------------------------------- plumbing

  #send(to: string, msg: PeerMessage): void {
    this.#out.push({ kind: 'send', to, msg });
  }
  #broadcast(msg: PeerMessage): void {
    for (const v of this.config.vtcs) if (v !== this.config.self) this.#out.push({ kind: 'send', to: v, msg });
  }
  #result(commandId: string, result: CommandResult): void {
    this.#out.push({ kind: 'result', commandId, result });
  }
  #reject(reason: string): void {
    this.stats.rejected++;
    this.stats.rejectedReasons[reason] = (this.stats.rejectedReasons[reason] ?? 0) + 1;
  }
  /**
   * Runs after every input: automatic actions are taken as soon as their cause arrives (a
   * VTS seen back, a ballot that decides), not at the next tick, and a new key asks both
   * VTS for a view newer than itself at once.
   */
  #flush(): void {
    if (!this.#stopped) {
      if (this.#parkedAcks.size > 0 || this.#coord !== null) this.#unpark();
      this.#autonomous();
      for (const x of VTS_NAMES) if (this.#obs[x].hbIssued < this.#effAt) this.#heartbeat(x);
    }
    const s = this.status();
    const k = `${formatStatus(s)}@${this.#eff.seq}`;
    if (k !== this.#lastStatus) {
      this.#lastStatus = k;
      this.#out.push({ kind: 'status', status: s, seq: this.#eff.seq });
    }
  }
}

