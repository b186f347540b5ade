/**
 * Automatic actions, taken after every input (engine.ts flush): failure keys, returns,
 * supersedes, takeovers of keys left uncommitted, and election rounds, staggered by rank.
 */
import { PtpError } from '../errors.js';
import { otherVts, VTS_NAMES } from '../types.js';
import type { ElectionId, VtsName } from '../types.js';
import { idKey, newer } from './state.js';
import type { VtcState } from './state.js';
import { effBelow } from './chain.js';
import { begin, coordinate, openAbove } from './coordination.js';
import { joinElection } from './election.js';
import { bothLostUnrecorded, currentStatus, isLost, sameImage, seenIn } from './vts.js';

/** A peer heard from within three hello intervals counts as live. */
export function heardLately(vtc: VtcState, v: string): boolean {
  return vtc.now - (vtc.lastHeard.get(v) ?? -Infinity) <= 3 * vtc.config.timing.helloInterval;
}

export function liveRank(vtc: VtcState, among?: readonly string[]): number {
  const live = vtc.config.vtcs.filter(
    (v) => (among === undefined || among.includes(v)) && (v === vtc.config.self || heardLately(vtc, v)),
  );
  return Math.max(0, live.indexOf(vtc.config.self));
}

/** True once `action` has been wanted continuously for this VTC's stagger delay. */
export function due(vtc: VtcState, action: string, rank: number): boolean {
  if (vtc.auto === null || vtc.auto.action !== action) vtc.auto = { action, since: vtc.now };
  return vtc.now - vtc.auto.since >= rank * vtc.config.timing.stagger;
}

export function autonomous(vtc: VtcState): void {
  if (vtc.coord !== null || vtc.now < vtc.backoffUntil) return;
  const eff = vtc.eff;
  const t = vtc.config.timing;
  if (vtc.maxHeld > vtc.hw) {
    vtc.election = null;
    const seen = vtc.keySeenAt.get(vtc.maxHeld) ?? vtc.now;
    if (vtc.hw === vtc.maxHeld - 1 && vtc.now - seen >= t.pendingTimeout && due(vtc, `takeover:${vtc.maxHeld}`, liveRank(vtc))) takeover(vtc);
    return;
  }
  // A key below the head that was never committed (its coordinator failed, and another key
  // settled its seq) blocks keys that pass over it: take it over, so it commits or fails.
  for (const k of vtc.unresolved.values()) {
    if (k.seq > vtc.hw || vtc.now - (vtc.keySeenAt.get(k.seq) ?? vtc.now) < t.pendingTimeout) continue;
    // Each holder resolves its own: staggering would let a stream of other proposals (each
    // resets the wait) starve it.
    begin(vtc, k, effBelow(vtc, k.seq), null);
    return;
  }
  if (openAbove(vtc) !== null) return;
  for (const x of VTS_NAMES) {
    // A VTC that sees neither VTS cannot fence the survivor; one that sees it coordinates instead.
    // The survivor must not be lost itself (restarted since the key): that is both lost at once, below.
    if (eff.status[x] === 'in' && isLost(vtc, x) && (eff.status[otherVts(x)] === 'out' || (seenIn(vtc, otherVts(x)) && !isLost(vtc, otherVts(x))))) {
      // The last VTS in, lost together with the other: whether it leaves current depends on
      // the seq it reports, so a view older than the newest key (which may have recorded on
      // it) is asked again first, for at most a heartbeat timeout (seed 83922: a stale view
      // below the seq just recorded kept the VTS current, and this VTC voted NO for ever).
      if (eff.status[otherVts(x)] === 'out' && bothLostUnrecorded(vtc, x) && vtc.obs[x].at < vtc.effAt && vtc.now - vtc.effAt < t.heartbeatTimeout) return;
      // A restart this VTC saw before the newest key put x in says nothing of x now: that
      // key's coordinator judged x's boot and recorded it there. Ask x again first, for at
      // most a heartbeat timeout (a vts-in of a restarted VTS was followed at once by a
      // failure key for it, and the system flapped off-line and back).
      if (vtc.obs[x].restarted !== null && vtc.obs[x].at < vtc.effAt && vtc.now - vtc.effAt < t.heartbeatTimeout) return;
      if (due(vtc, `fail:${eff.seq}:${x}`, liveRank(vtc))) coordinate(vtc, { command: 'vts-out', subjects: [x], reason: 'failure' }, 'forced', null, null);
      return;
    }
  }
  // Both lost at once (power): recorded before either may serve again, as a forced
  // shutdown whose pending copies are unknown (current empty), so one VTS back alone is
  // not elected and both back come on-line together by a return key, without a vote.
  if (eff.status.A === 'in' && eff.status.B === 'in' && isLost(vtc, 'A') && isLost(vtc, 'B')) {
    if (due(vtc, `fail:${eff.seq}:AB`, liveRank(vtc))) coordinate(vtc, { command: 'ptp-shutdown', subjects: ['A', 'B'], reason: 'failure' }, 'forced', null, null);
    return;
  }
  const back = VTS_NAMES.filter((x) => eff.status[x] === 'out' && seenIn(vtc, x));
  const graceOver = (x: VtsName): boolean => vtc.now - (vtc.obs[x].inSince ?? vtc.now) >= t.returnGrace;
  if (back.length > 0) {
    const others = VTS_NAMES.filter((x) => !back.includes(x));
    // A returning VTS in current must be the image that left: a last key seq below the newest
    // it confirmed recording is an older image, and a return without a vote would serve it.
    const genuine = back.every((x) => !eff.current.includes(x) || sameImage(vtc, x));
    if (genuine && others.every((y) => eff.status[y] === 'in' || seenIn(vtc, y))) {
      const subjects = VTS_NAMES.filter((x) => eff.status[x] === 'out');
      if (due(vtc, `return:${eff.seq}:${subjects.join('')}`, liveRank(vtc))) coordinate(vtc, { command: 'vts-in', subjects, reason: 'return' }, 'normal', null, null);
      return;
    }
  }
  // A VTS in operation that holds another key of the chain's newest seq (a weak forced key
  // of a VTC that was cut off, recorded there first: a VTS keeps the first key of a seq)
  // refuses every fenced write and copy of this chain as a fork, for ever (seed 554). A key
  // with a higher seq, committed by a quorum like any other, records over it.
  const forked = VTS_NAMES.filter((x) => {
    const o = vtc.obs[x];
    return eff.status[x] === 'in' && o.restarted === null && o.view !== undefined && o.at >= vtc.effAt && o.view.inOperation && o.view.lastKeySeq === eff.seq && o.view.lastKeyMac !== undefined && o.view.lastKeyMac !== '' && o.view.lastKeyMac !== eff.mac;
  });
  if (forked.length > 0) {
    if (due(vtc, `supersede:${eff.seq}:${forked.join('')}`, liveRank(vtc))) coordinate(vtc, { command: 'vts-in', subjects: forked, reason: 'supersede' }, 'normal', null, null);
    return;
  }
  const status = currentStatus(vtc);
  if (status.kind !== 'offline') {
    vtc.election = null;
    return;
  }
  const pj = vtc.pendingJoin;
  if (pj !== null) {
    if (pj.seq !== eff.seq || (vtc.election !== null && !newer(pj, vtc.election.id))) vtc.pendingJoin = null;
    else if (vtc.obs[pj.vts].at >= vtc.effAt || vtc.now - vtc.effAt >= t.heartbeatTimeout) {
      vtc.pendingJoin = null;
      joinElection(vtc, pj);
      return;
    }
  }
  const up = VTS_NAMES.filter((x) => seenIn(vtc, x));
  const x = up[0];
  if (up.length !== 1 || x === undefined || !graceOver(x)) return;
  const e = vtc.election;
  if (e !== null && e.online !== null && e.id.vts === x && e.id.seq === eff.seq) {
    // The VTC that committed the key the election is about records the decision (every VTC
    // names the same one); the others stand by, in order, in case it cannot.
    const lead = vtc.chosen.get(eff.seq)?.commit.coordinator;
    const yesRank = e.online.yes.indexOf(vtc.config.self);
    const rank = lead === vtc.config.self ? 0 : 1 + (yesRank >= 0 ? yesRank : e.online.yes.length + liveRank(vtc));
    if (due(vtc, `elect:${idKey(e.id)}`, rank)) {
      try {
        coordinate(vtc, { command: 'vts-in', subjects: [x], reason: 'election', ...(vtc.deps.broken === 'yes-without-key-checks' ? { unchecked: true } : {}) }, 'normal', null, { ...e.id, yes: e.online.yes });
      } catch (err) {
        if (!(err instanceof PtpError)) throw err;
        vtc.election = null;
      }
    }
    return;
  }
  const rk = `${eff.seq}:${x}`;
  const last = vtc.rounds.get(rk);
  const timedOut = (startedAt: number): boolean => vtc.now - startedAt >= t.electionTimeout + liveRank(vtc) * t.stagger;
  if (e === null || e.id.vts !== x || e.id.seq !== eff.seq) {
    // Back to the round this VTC is in, unless it has run out: a new round for every lapse
    // (a key in flight, a status change) would scatter the VTCs over different rounds.
    const lastId: ElectionId | null = last === undefined ? null : { seq: eff.seq, vts: x, round: last };
    const started = lastId === null ? undefined : vtc.roundStarted.get(idKey(lastId));
    if (lastId !== null && started !== undefined && !timedOut(started)) joinElection(vtc, lastId);
    else joinElection(vtc, { seq: eff.seq, vts: x, round: (last ?? -1) + 1 });
  } else if (timedOut(e.startedAt)) {
    joinElection(vtc, { seq: eff.seq, vts: x, round: (last ?? -1) + 1 });
  }
}

export function takeover(vtc: VtcState): void {
  const held = vtc.keys.get(vtc.maxHeld);
  if (held === undefined || held.size === 0) return;
  const key = [...held.values()].sort((a, b) => vtc.config.vtcs.indexOf(a.originVtc) - vtc.config.vtcs.indexOf(b.originVtc) || (a.mac < b.mac ? -1 : 1))[0];
  if (key === undefined) return;
  begin(vtc, key, vtc.eff, null);
}
