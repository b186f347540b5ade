/**
 * The VTC protocol engine: one VTC's side of PROTOCOL.md as a deterministic state machine
 * without I/O. Inputs are method calls carrying the current time; outputs are effects
 * (send a message, make a record durable, operate a VTS, answer a command) that a driver
 * performs and whose results it feeds back. The same engine runs under the simulation and
 * under the production agent (`agent.ts`).
 *
 * Every input is one {@link EngineInput} taken by {@link VtcEngine.step} (`tick`, `receive`,
 * `appended`, `vtsResult`, `command`, `restore` and `stop` are that call spelled out). The
 * state and the rules live in src/ptp/engine/: `state.ts` (the state, pending I/O as
 * continuation records, roles and phases), `chain.ts` (keys, commits, the chain's head,
 * anti-entropy), `proposal.ts` (phase 1 as a receiver), `coordination.ts` (a key this VTC
 * coordinates, phase 1 to its commit), `election.ts` (ballots and tallies), `autonomy.ts`
 * (automatic actions) and `vts.ts` (what this VTC knows and judges of each VTS).
 */
import { CommandConflictError, EngineStoppedError, PtpError } from './errors.js';
import { parseMessage } from './messages.js';
import type { PeerMessage } from './messages.js';
import { effectiveKey, isStrong, transition } from './rules.js';
import { formatStatus, VTS_NAMES } from './types.js';
import type { JournalRecord, Mode, PtpStatus, ShutdownKey, VtsName } from './types.js';
import { autonomous } from './engine/autonomy.js';
import { applyCommit, commitDurable, effBelow, hello, holdKey, ingestCommit, missingPredecessor, onSyncReq } from './engine/chain.js';
import { checkFree, coordinate, coordinationCommitted, onAck, phase1Timeout, shapeOf, stepDone, unjudgedBystander } from './engine/coordination.js';
import { onBallot } from './engine/election.js';
import { keyDurable, onPropose, unpark } from './engine/proposal.js';
import { VtcState } from './engine/state.js';
import type { Role } from './engine/state.js';
import type { RecordSigner } from './codec.js';
import type { Effect, EngineConfig, EngineDeps, EngineInput, EngineStats, OperatorCommand, VtsResult } from './engine/types.js';
import { currentStatus, expectRange, heartbeat, heartbeatDone, restoreSighting } from './engine/vts.js';

export { DEFAULT_TIMING, ENGINE_INPUTS } from './engine/types.js';
export type { CommandResult, Effect, EngineConfig, EngineDeps, EngineInput, EngineStats, OperatorCommand, TallyFactory, Timing, VtsOp, VtsResult } from './engine/types.js';
export { COORD_PHASES, ROLES } from './engine/state.js';
export type { CoordPhase, Role } from './engine/state.js';

// ---------------------------------------------------------------- inputs

/** Rebuilds state from the durable journal (oldest first). Call once, before any other input. */
function onRestore(vtc: VtcState, records: readonly JournalRecord[], now: number): void {
  vtc.now = now;
  vtc.wall = now;
  vtc.boot = now;
  for (const r of records) {
    if (r.type === 'sighting') {
      restoreSighting(vtc, r.sighting);
      continue;
    }
    holdKey(vtc, r.key, now);
    if (r.type === 'commit') applyCommit(vtc, r.key, r.commit);
  }
  flush(vtc);
}

/**
 * Moves this VTC's clock to `now`. Inputs arrive at least every tick; a gap longer than a
 * heartbeat timeout means this process was paused or its event loop held (a loaded host),
 * not that the VTS went silent: silence is then counted again from here.
 */
function advance(vtc: VtcState, now: number): void {
  const d = now - vtc.wall;
  vtc.wall = now;
  // A clock stepped back: this VTC's time stands still for that one input, then goes on.
  if (!(d > 0)) return;
  vtc.now += d;
  if (d > vtc.config.timing.heartbeatTimeout) vtc.resumedAt = vtc.now;
}

function onTick(vtc: VtcState, now: number): void {
  if (vtc.stopped) return;
  advance(vtc, now);
  for (const [token, op] of vtc.ops) if (op.deadline <= vtc.now) finishOp(vtc, token, { ok: false, error: 'timeout' });
  for (const x of VTS_NAMES) if (vtc.obs[x].hbToken === null) heartbeat(vtc, x);
  if (vtc.now - vtc.lastHello >= vtc.config.timing.helloInterval) {
    vtc.lastHello = vtc.now;
    vtc.broadcast(hello(vtc));
  }
  if (vtc.coord !== null && vtc.coord.phase === 'proposing' && vtc.now >= vtc.coord.deadline) phase1Timeout(vtc);
  flush(vtc);
}

/** A message from an authenticated peer; its content is still untrusted and is validated here. */
function onReceive(vtc: VtcState, from: string, value: unknown, now: number): void {
  if (vtc.stopped) return;
  advance(vtc, now);
  if (!vtc.config.vtcs.includes(from) || from === vtc.config.self) return vtc.reject('unknown-sender');
  let msg: PeerMessage;
  try {
    msg = parseMessage(value, vtc.signer);
  } catch (e) {
    return vtc.reject(e instanceof PtpError ? e.code : 'malformed');
  }
  // A peer configured with another VTC list counts voters, electorate and default threshold
  // differently: it is reported and takes no part until its configuration matches.
  if (msg.t === 'hello' && msg.cfg !== undefined) {
    if (msg.cfg !== vtc.cfg) {
      if (!vtc.misconfigured.has(from)) vtc.configWarning(`${from}: its configuration digest ${msg.cfg} differs from ${vtc.cfg} here (PtP id and VTC list in order): every VTC must share one topology`);
      vtc.misconfigured.add(from);
    } else vtc.misconfigured.delete(from);
  }
  if (vtc.misconfigured.has(from)) return vtc.reject('config-mismatch');
  vtc.lastHeard.set(from, vtc.now);
  switch (msg.t) {
    case 'propose':
      onPropose(vtc, from, msg.key);
      break;
    case 'ack':
      onAck(vtc, from, msg.seq, msg.keyMac, true, msg.ballot);
      break;
    case 'nack': {
      // A peer saw the survivor restart: this VTC takes that knowledge over, so it counts
      // both VTS as lost rather than proposing the same failure key again (seed 580).
      const r = /^(restarted|bothlost):([AB]):/.exec(msg.reason);
      const o = r === null ? undefined : vtc.obs[r[2] as VtsName];
      if (o !== undefined && o.restarted === null && o.view !== undefined) o.restarted = { seq: o.view.lastKeySeq };
      if (o !== undefined && o.restarted !== null && r?.[1] === 'bothlost') o.bothLost = true;
      onAck(vtc, from, msg.seq, msg.keyMac, false);
      break;
    }
    case 'commit':
      ingestCommit(vtc, msg.key, msg.commit, from);
      break;
    case 'ballot':
      onBallot(vtc, from, msg.ballot);
      break;
    case 'hello': {
      // The first hello from a peer gets one back at once, so a VTC that just started learns quickly whether it is behind.
      if (!vtc.peerTop.has(from)) vtc.send(from, hello(vtc));
      vtc.peerTop.set(from, msg.top);
      for (const s of msg.sums ?? []) vtc.evidence.note(s);
      // A peer with a newer done key may hold a commit that beats one of this VTC's failed ones at the same seq.
      let after: number | null = null;
      if (msg.top > vtc.eff.seq || msg.hi > vtc.hw) after = msg.top > vtc.eff.seq ? vtc.eff.seq : vtc.hw;
      else if (msg.topMac !== vtc.eff.mac && msg.top > 0) after = Math.max(0, Math.min(msg.top, vtc.eff.seq) - 1);
      // The same newest key under another commit (a takeover committed it again where the
      // first commit had not arrived): fetch it, so both follow the same one (seed 88605).
      else if (msg.topCommit !== undefined && msg.top === vtc.eff.seq && msg.top > 0 && vtc.commits.get(msg.top)?.some((c) => c.mac === msg.topCommit) !== true) after = msg.top - 1;
      // A held commit whose key's predecessor never arrived (its sync was lost): ask again,
      // at the pace of hellos, so two VTCs without it cannot ask each other without end.
      const gap = missingPredecessor(vtc);
      if (gap !== null) after = Math.min(after ?? Infinity, gap - 1);
      if (after !== null) vtc.send(from, { t: 'sync-req', after });
      break;
    }
    case 'sync-req':
      onSyncReq(vtc, from, msg.after);
      break;
    case 'sync':
      for (const r of msg.records) ingestCommit(vtc, r.key, r.commit, from);
      break;
  }
  flush(vtc);
}

/** The record of `append` effect `token` is durable. */
function onAppended(vtc: VtcState, token: number, now: number): void {
  if (vtc.stopped) return;
  advance(vtc, now);
  const a = vtc.appending.get(token);
  if (a === undefined) return;
  vtc.appending.delete(token);
  const cont = a.cont;
  switch (cont.kind) {
    case 'key-durable':
      keyDurable(vtc, cont);
      break;
    case 'commit-durable':
      commitDurable(vtc, cont);
      break;
    case 'coordination-committed':
      coordinationCommitted(vtc, cont);
      break;
    case 'sighting':
      break;
  }
  flush(vtc);
}

/** A VTS operation finished (or failed: unreachable, refused). Late results after the op timed out are ignored. */
function onVtsResult(vtc: VtcState, token: number, result: VtsResult, now: number): void {
  if (vtc.stopped) return;
  advance(vtc, now);
  finishOp(vtc, token, result);
  flush(vtc);
}

/**
 * An operator command taken by this VTC, which coordinates it. The answer comes as a
 * `result` effect with the same id: errors are {@link PtpError} subclasses (invalid
 * threshold, unknown VTS, conflicting command in flight, no quorum, VTS unreachable).
 */
function onCommand(vtc: VtcState, commandId: string, cmd: OperatorCommand, now: number): void {
  advance(vtc, now);
  if (vtc.stopped) return vtc.result(commandId, { ok: false, error: new EngineStoppedError() });
  try {
    const shape = shapeOf(vtc, cmd);
    checkFree(vtc);
    transition(vtc.eff, shape, []);
    const unjudged = unjudgedBystander(vtc, shape);
    if (unjudged !== null) throw new CommandConflictError(`VTS ${unjudged} restarted and no key has been recorded on it since: its loss is recorded first (a failure key), retry the command then`);
    const mode: Mode = cmd.command === 'vts-out' || cmd.command === 'ptp-shutdown' ? cmd.mode : cmd.command === 'override' ? 'forced' : cmd.command === 'threshold-set' ? (cmd.mode ?? 'normal') : 'normal';
    coordinate(vtc, shape, mode, commandId, null);
  } catch (e) {
    if (!(e instanceof PtpError)) throw e;
    vtc.result(commandId, { ok: false, error: e });
  }
  flush(vtc);
}

/** The VTC stops (crash or shutdown): pending commands fail, nothing more is emitted. */
function onStop(vtc: VtcState): void {
  if (vtc.coord?.commandId != null) vtc.out.push({ kind: 'result', commandId: vtc.coord.commandId, result: { ok: false, error: new EngineStoppedError() } });
  vtc.stopped = true;
}

/** Hands the answer to VTS operation `token` (or its timeout) to what waits for it; an operation already finished is ignored. */
function finishOp(vtc: VtcState, token: number, r: VtsResult): void {
  const op = vtc.ops.get(token);
  if (op === undefined) return;
  vtc.ops.delete(token);
  const cont = op.cont;
  switch (cont.kind) {
    case 'heartbeat':
      return heartbeatDone(vtc, cont.vts, token, r, op.issued);
    case 'step':
      return stepDone(vtc, cont, r, op.issued);
  }
}

/**
 * Runs after every input: automatic actions are taken as soon as their cause arrives (a
 * VTS seen back, a ballot that decides), not at the next tick, and a new key asks both
 * VTS for a view newer than itself at once.
 */
function flush(vtc: VtcState): void {
  if (!vtc.stopped) {
    if (vtc.parkedAcks.size > 0 || vtc.coord !== null) unpark(vtc);
    autonomous(vtc);
    for (const x of VTS_NAMES) if (vtc.obs[x].hbIssued < vtc.effAt) heartbeat(vtc, x);
  }
  const s = currentStatus(vtc);
  const k = `${formatStatus(s)}@${vtc.eff.seq}`;
  if (k !== vtc.lastStatus) {
    vtc.lastStatus = k;
    vtc.out.push({ kind: 'status', status: s, seq: vtc.eff.seq });
  }
}

/** One VTC's protocol state machine. Not thread-safe by design: a driver feeds it one input at a time. */
export class VtcEngine {
  readonly config: EngineConfig;
  readonly #s: VtcState;

  constructor(config: EngineConfig, deps: EngineDeps) {
    this.config = config;
    this.#s = new VtcState(config, deps);
  }

  get signer(): RecordSigner {
    return this.#s.signer;
  }
  get stats(): EngineStats {
    return this.#s.stats;
  }

  // ---------------------------------------------------------------- inputs

  /** Takes one input (the only way the engine's state changes); its effects wait in {@link takeEffects}. */
  step(input: EngineInput): void {
    const s = this.#s;
    switch (input.kind) {
      case 'restore':
        return onRestore(s, input.records, input.now);
      case 'tick':
        return onTick(s, input.now);
      case 'receive':
        return onReceive(s, input.from, input.value, input.now);
      case 'appended':
        return onAppended(s, input.token, input.now);
      case 'vts-result':
        return onVtsResult(s, input.token, input.result, input.now);
      case 'command':
        return onCommand(s, input.commandId, input.command, input.now);
      case 'stop':
        return onStop(s);
    }
  }

  /** Rebuilds state from the durable journal (oldest first). Call once, before any other input. */
  restore(records: readonly JournalRecord[], now: number): void {
    this.step({ kind: 'restore', records, now });
  }
  tick(now: number): void {
    this.step({ kind: 'tick', now });
  }
  /** A message from an authenticated peer; its content is still untrusted and is validated here. */
  receive(from: string, value: unknown, now: number): void {
    this.step({ kind: 'receive', from, value, now });
  }
  /** The record of `append` effect `token` is durable. */
  appended(token: number, now: number): void {
    this.step({ kind: 'appended', token, now });
  }
  /** A VTS operation finished (or failed: unreachable, refused). Late results after the op timed out are ignored. */
  vtsResult(token: number, result: VtsResult, now: number): void {
    this.step({ kind: 'vts-result', token, result, now });
  }
  /**
   * An operator command taken by this VTC, which coordinates it. The answer comes as a
   * `result` effect with the same id: errors are {@link PtpError} subclasses (invalid
   * threshold, unknown VTS, conflicting command in flight, no quorum, VTS unreachable).
   */
  command(commandId: string, cmd: OperatorCommand, now: number): void {
    this.step({ kind: 'command', commandId, command: cmd, now });
  }
  /** The VTC stops (crash or shutdown): pending commands fail, nothing more is emitted. */
  stop(): void {
    this.step({ kind: 'stop' });
  }

  // ---------------------------------------------------------------- queries

  takeEffects(): Effect[] {
    const s = this.#s;
    const e = s.out;
    s.out = [];
    return e;
  }
  /** Newest committed key as this VTC knows it (acks, copiesPending, current from its commit record). */
  newestKey(): ShutdownKey {
    return this.#s.eff;
  }
  /** Newest key of the chain that more than T VTCs held (a forced key with fewer acks is skipped). */
  newestStrongKey(): ShutdownKey {
    let k = this.#s.eff;
    while (!isStrong(k)) k = effBelow(this.#s, k.seq);
    return k;
  }
  status(): PtpStatus {
    return currentStatus(this.#s);
  }
  threshold(): number {
    return this.#s.eff.threshold;
  }
  /** What this VTC is doing: coordinating a key, taking part in an election, or following. */
  role(): Role {
    return this.#s.coord !== null ? 'coordinator' : this.#s.election !== null ? 'voter' : 'follower';
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
    const s = this.#s;
    // The boot of each VTS this VTC knows: a VTS that restarted since refuses the I/O, so none
    // reaches a restored image before this VTC has seen the restart (and gone off-line for it).
    const boots: Partial<Record<VtsName, string>> = {};
    for (const x of VTS_NAMES) {
      const b = s.obs[x].view?.bootId;
      if (b !== undefined) boots[x] = b;
    }
    return { status: this.status(), epoch: s.eff.seq, epochMac: s.eff.mac, boots, minSeqs: { A: expectRange(s, 'A').lo, B: expectRange(s, 'B').lo } };
  }

  /** Committed (effective) keys, for anti-entropy checks and audits. */
  committedKeys(): ShutdownKey[] {
    return [...this.#s.chosen.values()].filter((c) => c.commit.outcome === 'done').map((c) => effectiveKey(c.key, c.commit)).sort((a, b) => a.seq - b.seq);
  }
  heldSeqs(): { hw: number; maxHeld: number; newest: number } {
    return { hw: this.#s.hw, maxHeld: this.#s.maxHeld, newest: this.#s.eff.seq };
  }
  inFlight(): boolean {
    return this.#s.coord !== null;
  }

  /**
   * What must hold between any two inputs (the simulation checks it after every step; an
   * empty list when all hold): the newest key is the head of a done commit held here, the
   * high-water marks are ordered, the status never claims more than the newest key allows,
   * a restart mark that is cleared carries no "both lost", a key left unresolved has no
   * commit here, and the pending I/O held as data matches the state that waits for it: a
   * coordination has one step in flight exactly while it applies its key and its commit
   * record on the way to the journal while it commits, and a heartbeat waited for is in flight.
   */
  invariants(): string[] {
    const vtc = this.#s;
    const out: string[] = [];
    const eff = vtc.eff;
    if (eff.seq > 0) {
      const c = vtc.chosen.get(eff.seq);
      if (c === undefined || c.key.mac !== eff.mac || c.commit.outcome !== 'done') out.push(`newest key ${eff.seq} is not the key of a done commit held here`);
    }
    if (eff.seq > vtc.maxHeld || vtc.hw > vtc.maxHeld) out.push(`newest key ${eff.seq} or high-water mark ${vtc.hw} above the newest key held (${vtc.maxHeld})`);
    const s = currentStatus(vtc);
    if (s.kind === 'online-single' && (!eff.current.includes(s.vts) || !isStrong(eff))) out.push(`${formatStatus(s)} outside current {${eff.current.join(',')}} of key ${eff.seq}, or on a weak key`);
    if ((s.kind === 'online-both' || s.kind === 'resync') && (eff.state.kind !== 'online-both' || !isStrong(eff))) out.push(`${formatStatus(s)} while key ${eff.seq} says ${eff.state.kind}`);
    for (const x of VTS_NAMES) if (vtc.obs[x].restarted === null && vtc.obs[x].bothLost) out.push(`VTS ${x} marked both lost without a restart mark`);
    for (const k of vtc.unresolved.values()) if (vtc.commits.get(k.seq)?.some((c) => c.keyMac === k.mac) === true) out.push(`key ${k.seq} is held as unresolved but has a commit here`);
    const c = vtc.coord;
    if (c !== null) {
      let steps = 0;
      for (const op of vtc.ops.values()) if (op.cont.kind === 'step' && op.cont.coordination === c.id) steps++;
      if (steps !== (c.phase === 'applying' ? 1 : 0)) out.push(`the coordination of key ${c.key.seq} is ${c.phase} with ${steps} step(s) in flight`);
      if (c.phase === 'committing' && ![...vtc.appending.values()].some((a) => a.cont.kind === 'coordination-committed' && a.cont.coordination === c.id)) out.push(`the coordination of key ${c.key.seq} is committing, but no commit of it is being made durable`);
    }
    for (const x of VTS_NAMES) {
      const t = vtc.obs[x].hbToken;
      const op = t === null ? undefined : vtc.ops.get(t);
      if (t !== null && (op === undefined || op.cont.kind !== 'heartbeat' || op.cont.vts !== x)) out.push(`the heartbeat of VTS ${x} waited for (token ${t}) is not in flight`);
    }
    return out;
  }
  /** Peers or keys found not to fit this VTC's configuration (another VTC list, a threshold that does not follow), newest last; at most 16. */
  configWarnings(): readonly string[] {
    return this.#s.configWarnings;
  }

  /**
   * What this VTC holds of each VTS's restarts: restarted with no trusted key recorded since
   * (`restartedSeq`, the last key seq it reported then; null: none) and seen lost together
   * with the other (`bothLost`). Kept across a restart of this VTC by its journal (sightings).
   */
  restartMarks(): Record<VtsName, { readonly restartedSeq: number | null; readonly bothLost: boolean }> {
    const of = (x: VtsName): { restartedSeq: number | null; bothLost: boolean } => ({ restartedSeq: this.#s.obs[x].restarted?.seq ?? null, bothLost: this.#s.obs[x].restarted !== null && this.#s.obs[x].bothLost });
    return { A: of('A'), B: of('B') };
  }

  /**
   * The newest seq VTS `x` confirmed recording, as this VTC knows it (a done or chosen commit
   * naming it in `recorded`): the lowest last key seq it accepts from `x` as the same image.
   */
  confirmedSeq(x: VtsName): number {
    return expectRange(this.#s, x).lo;
  }
}
