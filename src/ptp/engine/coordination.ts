/**
 * Coordinating a key: from an operator command or an automatic action to a signed key, its
 * phase 1 (acknowledgements, a quorum), its phase 2 (steps on the VTS) and its commit.
 */
import { CommandConflictError, InvalidCommandError, NoQuorumError, PtpError, VtsUnreachableError } from '../errors.js';
import { checkThreshold, checkVts, effectiveKey, minSafeThreshold, sortVts, transition } from '../rules.js';
import type { CommandShape, Transition } from '../rules.js';
import { otherVts, VTS_NAMES } from '../types.js';
import type { CommitRecord, Mode, ShutdownKey, SignedBallot, VtsName } from '../types.js';
import { idKey, phase1Election } from './state.js';
import type { AppendCont, Coordination, OpCont, Step, VtcState } from './state.js';
import type { OperatorCommand, VtsResult } from './types.js';
import { heardLately } from './autonomy.js';
import { applyCommit, effBelow, holds } from './chain.js';
import { ballotPending, makeDurable, phase1Ballot } from './proposal.js';
import { expectRange, lostWithOtherCurrent, observe, olderKept, sameImage, unjudged, vouch } from './vts.js';

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

export function shapeOf(vtc: VtcState, cmd: OperatorCommand): CommandShape {
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
      const threshold = checkThreshold(cmd.threshold, vtc.n, { belowHalf: cmd.belowHalf === true });
      if (cmd.mode !== undefined && cmd.mode !== 'normal' && cmd.mode !== 'forced') throw new InvalidCommandError(`threshold-set runs in normal or forced mode, not ${String(cmd.mode)}`);
      // Either override of a safety rule is audited: a key of its own, with reason override and the operator's note.
      const override = cmd.mode === 'forced' || threshold < minSafeThreshold(vtc.n);
      return { command: 'threshold-set', subjects: [], reason: override ? 'override' : 'command', threshold, ...noteOf(cmd.note, override) };
    }
    default:
      throw new InvalidCommandError(`unknown command ${JSON.stringify((cmd as { command?: unknown }).command)}`);
  }
}

/** Throws when a command cannot start now: one status change at a time per PtP system. */
export function checkFree(vtc: VtcState): void {
  if (vtc.coord !== null) throw new CommandConflictError(`key ${vtc.coord.key.seq} (${vtc.coord.key.command}) is in flight from this VTC`);
  if (vtc.maxHeld > vtc.hw) throw new CommandConflictError(`key ${vtc.maxHeld} is in flight and not yet committed`);
  const open = openAbove(vtc);
  if (open !== null) throw new CommandConflictError(`key ${open} is held here without a commit: a new key would pass over it`);
}

/**
 * A key this VTC holds (or is making durable) above its chain's head without a commit of
 * it. A key coordinated now would be built on the head and pass over it, and the
 * coordinator's own acknowledgement must obey the rule its peers apply (onPropose): had
 * the held key committed, the two would fork the chain with two strong keys, quorums
 * meeting only in this VTC (seed 3565). The held key is taken over after pendingTimeout.
 */
export function openAbove(vtc: VtcState): number | null {
  for (const k of vtc.unresolved.values()) if (k.seq > vtc.eff.seq) return k.seq;
  for (const w of vtc.waitingAcks.keys()) if (/^\d+$/.test(w) && Number(w) > vtc.eff.seq) return Number(w);
  return null;
}

export function coordinate(vtc: VtcState, shape: CommandShape, mode: Mode, commandId: string | null, election: ShutdownKey['election']): void {
  const prev = vtc.eff;
  const x = shape.subjects[0];
  if (shape.command === 'vts-in' && shape.reason === 'command' && shape.subjects.length === 1 && x !== undefined && prev.status[x] === 'out' && prev.status[otherVts(x)] === 'out') {
    const rk = `${prev.seq}:${x}`;
    const round = (vtc.rounds.get(rk) ?? -1) + 1;
    vtc.rounds.set(rk, round);
    election = { seq: prev.seq, vts: x, round, yes: [] };
  }
  const estimate = estimatePending(vtc, prev, shape);
  const t = transition(prev, shape, estimate);
  // A key that would leave an older image of a VTS in operation is not made: only an override puts it back (its peers would refuse it too).
  const older = olderKept(vtc, { status: t.status, reason: shape.reason, subjects: shape.subjects });
  if (older !== null) {
    if (commandId === null) return;
    throw new CommandConflictError(`${older}; only an override puts it back in operation`);
  }
  const key = vtc.signer.sign<ShutdownKey>({
    ptpId: vtc.config.ptpId,
    seq: vtc.maxHeld + 1,
    issuedAt: vtc.wall,
    originVtc: vtc.config.self,
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
  vtc.stats.keysCoordinated++;
  begin(vtc, key, prev, commandId);
}

export function estimatePending(vtc: VtcState, prev: ShutdownKey, shape: CommandShape): string[] | null {
  if (shape.command !== 'vts-out') return [];
  const x = shape.subjects[0] ?? 'A';
  const y = otherVts(x);
  // The last VTS in, lost by a failure this VTC saw together with the other's loss: its
  // copies are unknown, and the key leaves it out of current (rules.ts transition; seed 20176).
  if (prev.status[y] !== 'in') return shape.reason === 'failure' && lostWithOtherCurrent(vtc, x) ? null : [];
  return vtc.obs[y].view?.behind.slice() ?? null;
}

export function begin(vtc: VtcState, key: ShutdownKey, prev: ShutdownKey, commandId: string | null): void {
  const c: Coordination = {
    id: vtc.nextCoordId++,
    key,
    prev,
    commandId,
    acks: new Set(),
    nacks: new Set(),
    phase: 'proposing',
    deadline: vtc.now + vtc.config.timing.ackTimeout,
    steps: stepsFor(vtc, key, prev),
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
  vtc.coord = c;
  addOwnBallot(vtc, c);
  if (holds(vtc, key.seq, key.mac)) {
    c.acks.add(vtc.config.self);
    vtc.broadcast({ t: 'propose', key });
    return checkQuorum(vtc, c);
  }
  // The key goes to the peers while it is made durable here: the coordinator's own append
  // and theirs overlap. Its own acknowledgement counts once it is durable, and meanwhile
  // a conflicting proposal for the same seq is refused as if the key were held.
  vtc.broadcast({ t: 'propose', key });
  makeDurable(vtc, key, null, c.id);
}

/** The coordinator's own key is durable here (proposal.ts keyDurable): its own acknowledgement counts, if coordination `id` is still proposing it. */
export function ownKeyDurable(vtc: VtcState, id: number): void {
  const c = vtc.coord;
  if (c === null || c.id !== id || c.phase !== 'proposing') return;
  c.acks.add(vtc.config.self);
  checkQuorum(vtc, c);
}

export function stepsFor(vtc: VtcState, key: ShutdownKey, prev: ShutdownKey): Step[] {
  const forced = key.mode === 'forced';
  const s = key.seq;
  switch (key.command) {
    case 'vts-out': {
      const x = key.subjects[0] ?? 'A';
      const y = otherVts(x);
      const yIn = prev.status[y] === 'in';
      const steps: Step[] = unvouchedSubject(vtc, key, x) ? [] : [{ vts: x, op: { op: 'stop', seq: s, mac: key.mac, mode: key.mode, expediteTimeout: vtc.config.timing.expediteTimeout, drainTo: yIn ? y : null, ...bootOf(vtc, key, x) }, required: !forced }];
      // The survivor is not the subject: without it nothing counts the pending copies or fences old writers, so even forced needs it.
      // The survivor is judged as it records: one that restarted since the plan, or reports less
      // than the seq it confirmed (a restored image), refuses, and the key fails (seed 6735).
      if (yIn) steps.push({ vts: y, op: { op: 'record', seq: s, mac: key.mac, ...bootOf(vtc, key, y) }, required: true, pending: 'survivor' });
      return steps;
    }
    case 'ptp-shutdown': {
      const ins = VTS_NAMES.filter((v) => prev.status[v] === 'in' && !unvouchedSubject(vtc, key, v));
      return ins.map((v, i) => ({
        vts: v,
        op: { op: 'stop', seq: s, mac: key.mac, mode: key.mode, expediteTimeout: vtc.config.timing.expediteTimeout, drainTo: i === 0 && ins.length === 2 ? otherVts(v) : null, ...bootOf(vtc, key, v) },
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
        if (key.subjects.includes(v)) steps.push({ vts: v, op: { op: 'start', seq: s, mac: key.mac, ...(prev.current.includes(v) ? bootOf(vtc, key, v) : {}) }, required: !forced });
        // The boot judged here goes with the record: a VTS that restarted since refuses it (seed 3671).
        else if (key.status[v] === 'in') steps.push({ vts: v, op: { op: 'record', seq: s, mac: key.mac, ...bootOf(vtc, key, v) }, required: !forced });
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
      return VTS_NAMES.filter((v) => prev.status[v] === 'in' && vtc.obs[v].view !== undefined && vtc.obs[v].restarted === null && sameImage(vtc, v)).map((v) => ({
        vts: v,
        op: { op: 'record', seq: s, mac: key.mac, ...bootOf(vtc, key, v) },
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
export function bootOf(vtc: VtcState, key: ShutdownKey, x: VtsName): { bootId?: string; minSeq: number } {
  const b = vtc.obs[x].view?.bootId;
  const minSeq = expectRange(vtc, x).lo;
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
export function unjudgedBystander(vtc: VtcState, shape: Pick<CommandShape, 'command'>): VtsName | null {
  if (shape.command !== 'threshold-set' && shape.command !== 'vts-in' && shape.command !== 'ptp-start') return null;
  for (const y of VTS_NAMES) if (vtc.eff.status[y] === 'in' && vtc.obs[y].restarted !== null) return y;
  return null;
}

export function unvouchedSubject(vtc: VtcState, key: ShutdownKey, x: VtsName): boolean {
  if (key.reason !== 'failure' && key.mode !== 'forced') return false;
  // A VTS that restarts after this check is caught by the VTS itself: the stop carries the
  // boot judged here (bootOf), and a restarted VTS refuses it.
  return unjudged(vtc, x);
}

export function onAck(vtc: VtcState, from: string, seq: number, keyMac: string, ok: boolean, ballot?: SignedBallot): void {
  if (!ok && seq > vtc.hw) vtc.send(from, { t: 'sync-req', after: Math.min(vtc.hw, vtc.eff.seq) });
  const c = vtc.coord;
  if (c === null || c.key.seq !== seq || c.key.mac !== keyMac) return;
  if (ok) c.acks.add(from);
  else c.nacks.add(from);
  const e = phase1Election(c.key);
  if (ok && ballot !== undefined && e !== null) {
    if (ballot.voter !== from || ballot.ptpId !== vtc.config.ptpId || idKey(ballot.election) !== idKey(e)) vtc.reject('ack-ballot-mismatch');
    else {
      c.ballots.set(from, ballot);
      vtc.out.push({ kind: 'seen', ballots: [ballot] });
    }
  }
  if (c.phase !== 'proposing') return;
  if (!ok) {
    // Forced goes ahead without answers, never against one: a VTC holding another key for
    // this seq (or a newer chain) proves the key would fork the history.
    c.error = new CommandConflictError(`key ${c.key.seq} conflicts with the keys held by ${from}: retry the command`);
    vtc.send(from, { t: 'sync-req', after: Math.max(0, Math.min(vtc.hw, c.key.prevSeq) - 1) });
    return commitKey(vtc, c, 'failed');
  }
  checkQuorum(vtc, c);
}

export function checkQuorum(vtc: VtcState, c: Coordination): void {
  const T = c.prev.threshold;
  if (c.key.mode !== 'forced' && c.acks.size > T) {
    // A key holding an election goes ahead once more than T elected the VTS, or every VTC heard from lately has answered.
    if (phase1Election(c.key) !== null && electedBy(vtc, c).length <= T && awaitBallots(vtc, c)) return;
    return phase2(vtc, c);
  }
  if (c.key.mode === 'forced' && c.acks.size + c.nacks.size >= vtc.n) return phase2(vtc, c);
  if (c.key.mode !== 'forced' && vtc.n - c.nacks.size <= T) {
    c.error = new CommandConflictError(`key ${c.key.seq} was refused by ${c.nacks.size} VTC(s) holding a conflicting key: retry the command`);
    commitKey(vtc, c, 'failed');
  }
}

export function phase1Timeout(vtc: VtcState): void {
  const c = vtc.coord;
  if (c === null) return;
  if (c.key.mode === 'forced' || c.acks.size > c.prev.threshold) return phase2(vtc, c);
  c.error = new NoQuorumError(c.key.seq, c.acks.size, c.prev.threshold);
  commitKey(vtc, c, 'failed');
}

export function phase2(vtc: VtcState, c: Coordination): void {
  c.phase = 'applying';
  if (phase1Election(c.key) !== null) {
    const yes = electedBy(vtc, c);
    c.elected = yes.length > c.prev.threshold ? yes : null;
    if (c.elected === null) c.steps = c.steps.map((st) => (st.op.op === 'start' ? { ...st, op: { op: 'start', seq: null } } : st));
  }
  nextStep(vtc, c);
}

/** Who elected the VTS in the election a key holds in phase 1, in configured order. */
export function electedBy(vtc: VtcState, c: Coordination): string[] {
  return [...c.ballots.values()].filter((b) => b.choice === 'yes').map((b) => b.voter).sort(vtc.byIndex);
}

export function nextStep(vtc: VtcState, c: Coordination): void {
  if (vtc.coord !== c) return;
  const step = c.steps[c.i];
  if (step === undefined) return commitKey(vtc, c, 'done');
  c.attempted.add(step.vts);
  if (step.op.op === 'reconcile') c.attempted.add(otherVts(step.vts));
  const vouched = step.pending === 'survivor' ? vouch(vtc, step.vts) : null;
  // The stop of the VTS a failure key takes out is best effort (not required): the VTS was
  // judged lost, and a powered-off host answers nothing, so it is given a heartbeat timeout,
  // not a drain's vtsOpTimeout, before the survivor records the key (writes waited 30 s).
  const bestEffortStop = !step.required && step.op.op === 'stop' && c.key.reason === 'failure' && c.key.subjects.includes(step.vts);
  vtc.startOp(step.vts, step.op, { kind: 'step', coordination: c.id, step, vouched }, bestEffortStop ? vtc.config.timing.heartbeatTimeout : undefined);
}

/** The answer to step `cont.step` of coordination `cont.coordination` (nextStep), issued at `issued`; ignored once that coordination is no longer the current one. */
export function stepDone(vtc: VtcState, cont: Extract<OpCont, { kind: 'step' }>, r: VtsResult, issued: number): void {
  const c = vtc.coord;
  if (c === null || c.id !== cont.coordination) return;
  const { step, vouched } = cont;
  if (r.ok) {
    observe(vtc, r.view, issued);
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
      return commitKey(vtc, c, 'failed');
    }
  }
  c.i++;
  nextStep(vtc, c);
}

export function commitKey(vtc: VtcState, c: Coordination, outcome: 'done' | 'failed'): void {
  c.phase = 'committing';
  // A takeover that learned the key already committed elsewhere adds no failure to it.
  if (outcome === 'failed' && c.commandId === null && vtc.commits.get(c.key.seq)?.some((x) => x.keyMac === c.key.mac && x.outcome === 'done') === true) {
    vtc.coord = null;
    return;
  }
  // Both VTS lost at once: current is empty whatever phase 2 did, also when it asked
  // neither VTS (both restarted unjudged, so neither is stopped; seed 5726).
  const bothLost = c.key.command === 'ptp-shutdown' && c.key.reason === 'failure';
  let pending: readonly string[] | null = c.unionFailed || bothLost ? null : c.pending;
  let current = c.prev.current;
  let state = c.prev.state;
  const folded = phase1Election(c.key);
  const ballots = [...c.ballots.values()].sort((a, b) => vtc.byIndex(a.voter, b.voter));
  let elected = folded === null ? null : c.elected;
  if (outcome === 'done') {
    const chosen = vtc.chosen.get(c.key.seq);
    if (chosen !== undefined && chosen.key.mac !== c.key.mac && chosen.commit.outcome === 'done') {
      outcome = 'failed';
      c.error = new CommandConflictError(`key ${c.key.seq} from ${chosen.key.originVtc} was committed first`);
    } else {
      const shape: CommandShape = { command: c.key.command, subjects: c.key.subjects, reason: c.key.reason, threshold: c.key.threshold, ...(vtc.deps.broken === 'yes-without-key-checks' ? { unchecked: true } : {}) };
      // Another key may have committed below this one while it was in flight (forced keys do not wait for
      // a quorum): the outcome is computed on the chain as it is now, and refused if it no longer applies.
      // More than T elected the VTS in phase 1: the key places it on-line alone, if the chain
      // below still allows an election (else it only brings the VTS back, off-line).
      const below = effBelow(vtc, c.key.seq);
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
    vtc.backoffUntil = vtc.now + (1 + vtc.index) * vtc.config.timing.stagger;
  }
  const commit = vtc.signer.sign<CommitRecord>({
    ptpId: vtc.config.ptpId,
    seq: c.key.seq,
    keyMac: c.key.mac,
    coordinator: vtc.config.self,
    outcome,
    error: c.error?.message ?? null,
    acks: [...c.acks].sort(vtc.byIndex),
    copiesPending: pending,
    current,
    state,
    recorded: sortVts(c.recorded),
    attempted: sortVts(c.attempted),
    ...(folded === null ? {} : { ballots, election: outcome === 'done' && elected !== null ? { seq: folded.seq, vts: folded.vts, round: folded.round, yes: elected } : null }),
  });
  vtc.appendingMacs.add(commit.mac);
  // Peers make the commit durable while this VTC does; it applies it once its own copy is.
  vtc.broadcast({ t: 'commit', key: c.key, commit });
  vtc.append({ type: 'commit', key: c.key, commit }, { kind: 'coordination-committed', coordination: c.id, key: c.key, commit, commandId: c.commandId, outcome, error: c.error });
}

/** This VTC's commit of a key it coordinated is durable (commitKey): applied, the coordination ends, and its command is answered. */
export function coordinationCommitted(vtc: VtcState, cont: Extract<AppendCont, { kind: 'coordination-committed' }>): void {
  const { key, commit, commandId, outcome } = cont;
  vtc.appendingMacs.delete(commit.mac);
  applyCommit(vtc, key, commit);
  if (vtc.coord !== null && vtc.coord.id === cont.coordination) vtc.coord = null;
  if (commandId !== null) {
    vtc.result(commandId, outcome === 'done' ? { ok: true, seq: key.seq, key: effectiveKey(key, commit) } : { ok: false, error: cont.error ?? new CommandConflictError(`key ${key.seq} failed`) });
  }
}

/** Adds the coordinator's own ballot to the election its key holds in phase 1, once it can be decided; true if added. */
export function addOwnBallot(vtc: VtcState, c: Coordination): boolean {
  if (ballotPending(vtc, c.key)) return false;
  const own = phase1Ballot(vtc, c.key);
  if (own === undefined) return false;
  c.ballots.set(vtc.config.self, own);
  return true;
}

/** True while a VTC heard from lately has not answered the key and the phase 1 deadline has not passed. */
export function awaitBallots(vtc: VtcState, c: Coordination): boolean {
  if (phase1Election(c.key) === null || vtc.now >= c.deadline) return false;
  if (!c.ballots.has(vtc.config.self)) return true;
  return vtc.config.vtcs.some((v) => v !== vtc.config.self && heardLately(vtc, v) && !c.acks.has(v) && !c.nacks.has(v));
}
