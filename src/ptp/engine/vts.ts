/**
 * What this VTC knows of each VTS: heartbeats, the views they return, restart marks and
 * sightings, and the judgement of a VTS's image (the expected range of its last key seq, token
 * sums) that status, keys and ballots rely on.
 */
import { deriveStatus, effectiveKey, isStrong } from '../rules.js';
import { otherVts, VTS_NAMES } from '../types.js';
import type { PtpStatus, VtsName, VtsSighting, VtsView } from '../types.js';
import type { VtcState } from './state.js';
import type { VtsResult } from './types.js';
import { caughtUp } from './chain.js';

export function currentStatus(vtc: VtcState): PtpStatus {
  if (!caughtUp(vtc)) return { kind: 'offline' };
  // A VTS the key keeps in that restarted since (it may be a restored image) serves nothing
  // until a key records the event.
  if (VTS_NAMES.some((x) => vtc.eff.status[x] === 'in' && vtc.obs[x].restarted !== null)) return { kind: 'offline' };
  // Nor from one reporting, since the newest key, a last key seq below one it confirmed
  // recording: an older image of itself (this VTC may have restarted and missed its boot).
  if (VTS_NAMES.some((x) => vtc.eff.status[x] === 'in' && vtc.obs[x].view !== undefined && vtc.obs[x].at >= vtc.effAt && vtc.obs[x].view!.lastKeySeq < expectRange(vtc, x).lo)) return { kind: 'offline' };
  // Nor from one whose disks got less far than an earlier boot of them did (a restored image).
  // (The cheap test first: without token sums in the views nothing is an older image.)
  if (VTS_NAMES.some((x) => vtc.eff.status[x] === 'in' && olderImage(vtc, x) !== null && reliedOn(vtc, x))) return { kind: 'offline' };
  return deriveStatus(vtc.eff, { A: vtc.obs.A.view, B: vtc.obs.B.view });
}

/**
 * This VTC saw VTS `x` restart and the other lost at the same time (restarted too, or not
 * known in operation when `x` was seen restarted), and no key it trusts has judged `x`
 * since: both were lost at once as far as it knows, an event only a both-lost key (current
 * empty) or both VTS returning together may follow, never an election of one alone.
 */
export function bothLostUnrecorded(vtc: VtcState, x: VtsName): boolean {
  return vtc.obs[x].restarted !== null && vtc.obs[x].bothLost;
}

/**
 * The last VTS in, `x`, was lost together with the other (bothLostUnrecorded) and reports a
 * last key seq in the expected range: its failure key leaves it out of current, as both
 * together hold every write. One reporting less than it confirmed recording is an older
 * image of the only current VTS: it keeps its membership (and so stays unelectable), or a
 * return with the other would serve what the restore lost (seed 54977: a VTC that had
 * missed the key taking A out judged "both lost" against an older key).
 */
export function lostWithOtherCurrent(vtc: VtcState, x: VtsName): boolean {
  return bothLostUnrecorded(vtc, x) && vtc.obs[x].view !== undefined && sameImage(vtc, x);
}

/** VTS `x` restarted with no key judged on it since, or reports a last key seq out of the expected range. */
export function unjudged(vtc: VtcState, x: VtsName): boolean {
  return vtc.obs[x].restarted !== null || (vtc.obs[x].view !== undefined && !sameImage(vtc, x));
}

/** Asks VTS `x` for its status; a heartbeat still in flight is superseded, not awaited. */
export function heartbeat(vtc: VtcState, x: VtsName): void {
  const o = vtc.obs[x];
  o.hbIssued = vtc.now;
  o.hbToken = vtc.startOp(x, { op: 'status' }, { kind: 'heartbeat', vts: x });
}

/** The answer to heartbeat `token` of VTS `x`, issued at `issued`. */
export function heartbeatDone(vtc: VtcState, x: VtsName, token: number, r: VtsResult, issued: number): void {
  const o = vtc.obs[x];
  if (o.hbToken === token) o.hbToken = null;
  if (r.ok) observe(vtc, r.view, issued);
  // Unreachable since: when it answers again it has returned, and returnGrace starts
  // then (a VTS powered off keeps no "in operation since" from before).
  else if (issued >= o.at) {
    o.inSince = null;
    o.lastFail = issued;
  }
}

/** A view of a VTS, dated by when it was asked for: an answer to an older request never replaces a newer one. */
export function observe(vtc: VtcState, view: VtsView, issued: number): void {
  const o = vtc.obs[view.name];
  if (issued < o.at) return;
  // A VTS that restarted (or is another image) may have lost, or never had, what it held:
  // it counts as lost until a key records the event (see isLost).
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
    const y = vtc.obs[otherVts(view.name)];
    // Judged against this VTC's newest key only while the VTS reports no newer one: one that
    // recorded a key this VTC has not learned shows the chain moved on without it, and the
    // other's loss may already be recorded there (seed 526: a failure key of A, then B's
    // power cycle, looked like both lost to a VTC that had missed the key).
    if (vtc.eff.status[otherVts(view.name)] === 'in' && vtc.eff.status[view.name] === 'in' && view.lastKeySeq <= vtc.eff.seq) {
      if (y.restarted !== null) o.bothLost = y.bothLost = true;
      // Not known in operation: seen out of operation or unreachable since this VTC started,
      // not merely unheard yet (a VTC that just restarted has asked nothing; seed 64477).
      else if (y.inSince === null && (y.view !== undefined || y.lastFail >= vtc.boot)) {
        o.bothLost = true;
        y.lostWithOther = true;
      }
    }
  } else if (o.lostWithOther && o.restarted === null) {
    // Unless a key this VTC trusts was recorded on it since it was last seen: whoever
    // recorded it judged this boot (seed 56772: B was only cut from this VTC, and the
    // failure key of A, acknowledged here, had recorded on B meanwhile).
    if (!(view.lastKeySeq > (o.view?.lastKeySeq ?? -1) && judgedRecord(vtc, view))) {
      o.restarted = { seq: view.lastKeySeq };
      o.bothLost = true;
    }
  } else if (o.restarted !== null && view.lastKeySeq > o.restarted.seq && judgedRecord(vtc, view)) {
    o.restarted = null;
    o.bothLost = false;
  }
  o.lostWithOther = false;
  o.view = view;
  o.at = issued;
  if (view.tokenSum !== undefined && view.imageId !== undefined && view.bootId !== undefined) vtc.evidence.note({ vts: view.name, imageId: view.imageId, bootId: view.bootId, sum: view.tokenSum, seq: vtc.eff.seq });
  noteSighting(vtc, view.name);
  noteSighting(vtc, otherVts(view.name));
  if (view.inOperation) {
    o.lastOk = issued;
    if (o.inSince === null) o.inSince = issued;
  } else {
    o.inSince = null;
  }
}

/** Journals what this VTC holds of VTS `x`'s identity and restart marks, when it changed. */
export function noteSighting(vtc: VtcState, x: VtsName): void {
  const o = vtc.obs[x];
  const id = o.view !== undefined ? { bootId: o.view.bootId ?? '', imageId: o.view.imageId ?? '' } : o.journaled;
  if (id === null) return;
  const body = { ptpId: vtc.config.ptpId, observer: vtc.config.self, vts: x, bootId: id.bootId, imageId: id.imageId, restartedSeq: o.restarted?.seq ?? null, bothLost: o.bothLost, lostWithOther: o.lostWithOther };
  const state = JSON.stringify(body);
  if (state === o.sighted) return;
  o.sighted = state;
  o.journaled = id;
  vtc.append({ type: 'sighting', sighting: vtc.signer.sign<VtsSighting>(body) }, { kind: 'sighting' });
}

/** Takes a journalled sighting back after a restart (the last one of each VTS wins). */
export function restoreSighting(vtc: VtcState, r: VtsSighting): void {
  if (r.ptpId !== vtc.config.ptpId || r.observer !== vtc.config.self) return;
  const o = vtc.obs[r.vts];
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
export function judgedRecord(vtc: VtcState, view: VtsView): boolean {
  const key = vtc.keys.get(view.lastKeySeq)?.get(view.lastKeyMac ?? '');
  if (key === undefined) return false;
  // A key that takes the VTS out stops it whatever image it is: that judges nothing.
  if (key.command === 'ptp-shutdown' || (key.command === 'vts-out' && key.subjects.includes(view.name))) return false;
  // Held without a commit yet: this VTC acknowledged it (a key is held only so, or with its
  // commit), as a return key's own records reach the VTS before its commit arrives.
  if (vtc.unresolved.has(key.mac)) return true;
  const commit = vtc.commits.get(key.seq)?.find((c) => c.keyMac === key.mac && c.outcome === 'done');
  if (commit === undefined) return false;
  return isStrong(effectiveKey(key, commit)) || commit.acks.includes(vtc.config.self);
}

/**
 * In operation by a view that is recent and newer than the newest key: asked for after
 * the key took effect here, or showing the VTS has recorded a key that keeps it in. A heartbeat answered
 * just before a key took the VTS out must not make it look back when the key lands.
 */
export function seenIn(vtc: VtcState, x: VtsName): boolean {
  const o = vtc.obs[x];
  return (
    o.view !== undefined &&
    o.view.inOperation &&
    vtc.now - o.lastOk <= vtc.config.timing.heartbeatTimeout &&
    // A VTS the newest key put in (or left in) that has recorded it is past the key; one
    // the key took out must be asked again (it records the key before it drains and stops).
    (o.at >= vtc.effAt || (vtc.eff.status[x] === 'in' && o.view.lastKeySeq >= vtc.eff.seq))
  );
}

/** Only evidence newer than the newest key counts: a view taken before a key started the VTS says nothing. */
export function isLost(vtc: VtcState, x: VtsName): boolean {
  const o = vtc.obs[x];
  if (o.view !== undefined && !o.view.inOperation && o.at > vtc.effAt) return true;
  // Restarted and no key recorded on it since: a power loss shorter than the heartbeat
  // timeout, or a restored image, is a loss all the same (both restarting: both lost at once).
  if (o.restarted !== null) return true;
  return vtc.now - Math.max(o.lastOk, vtc.boot, vtc.effAt, vtc.resumedAt) > vtc.config.timing.heartbeatTimeout;
}

/**
 * Whether this VTC can vouch that VTS `y` is the same image that recorded the keys it
 * holds, so a failure key may leave it serving alone: seen in operation, not restarted
 * without a key recorded on it since, and reporting a last key seq in the range an election expects.
 * Returns the boot and image ids to compare with its answer, or null.
 */
export function vouch(vtc: VtcState, y: VtsName): { bootId: string; imageId: string } | null {
  const o = vtc.obs[y];
  const v = o.view;
  if (v === undefined || !v.inOperation || o.restarted !== null) return null;
  const { lo, hi } = expectRange(vtc, y);
  if (v.lastKeySeq < lo || v.lastKeySeq > hi) return null;
  return { bootId: v.bootId ?? '', imageId: v.imageId ?? '' };
}

/** The VTS reports a last key seq in the range an election expects of it (not an older image). */
export function sameImage(vtc: VtcState, x: VtsName): boolean {
  const v = vtc.obs[x].view;
  const { lo, hi } = expectRange(vtc, x);
  const seq = judgedSeq(vtc, x);
  return v !== undefined && seq >= lo && seq <= hi && olderImage(vtc, x) === null;
}

/**
 * Why VTS `x` is an older image of itself by its token sum (null when it is not, or this VTC
 * cannot tell): the view reports less than an earlier boot of the same image was seen
 * holding, here or by a peer (ImageEvidence). Keys, boot and image ids cannot show this: a
 * restore brings back the image id and, when the key that followed never recorded on the
 * VTS, the same last key seq (seeds 252, 602, 737, 1503).
 */
export function olderImage(vtc: VtcState, x: VtsName): string | null {
  const v = vtc.obs[x].view;
  if (v?.tokenSum === undefined || v.imageId === undefined || v.bootId === undefined) return null;
  const floor = vtc.evidence.floor(x, v.imageId, v.bootId);
  return v.tokenSum < floor ? `VTS ${x} reports token generations summing to ${v.tokenSum}, below ${floor} seen of its image before it restarted: an older image` : null;
}

/**
 * A VTS that key (or command) `k` leaves in operation, other than one it overrides, that is
 * an older image of itself and whose data the chain relies on (reliedOn).
 */
export function olderKept(vtc: VtcState, k: { readonly status: Readonly<Record<VtsName, 'in' | 'out'>>; readonly reason: string; readonly subjects: readonly VtsName[] }): string | null {
  for (const x of VTS_NAMES) {
    if (k.status[x] !== 'in' || (k.reason === 'override' && k.subjects.includes(x))) continue;
    const why = olderImage(vtc, x);
    if (why !== null && reliedOn(vtc, x, k.status)) return why;
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
export function reliedOn(vtc: VtcState, x: VtsName, status: Readonly<Record<VtsName, 'in' | 'out'>> = vtc.eff.status): boolean {
  const cur = lastCurrent(vtc);
  if (!cur.includes(x)) return false;
  const y = otherVts(x);
  return !(cur.includes(y) && status[y] === 'in' && vtc.obs[y].view !== undefined && olderImage(vtc, y) === null);
}

/** `current` of the newest key that names any VTS current (all of them before the first key). */
export function lastCurrent(vtc: VtcState): readonly VtsName[] {
  if (vtc.eff.current.length > 0) return vtc.eff.current;
  for (let seq = vtc.eff.seq - 1; seq > 0; seq--) {
    const c = vtc.chosen.get(seq);
    if (c !== undefined && c.commit.outcome === 'done' && c.commit.current.length > 0) return c.commit.current;
  }
  return VTS_NAMES;
}

/**
 * The last key seq VTS `x` is judged by: what it reports, unless this VTC saw it restart and
 * no key it trusts (judgedRecord) has been recorded on it since, and the key it reports is
 * not the one this VTC's chain holds at that seq (the range's lower bound comes from that
 * chain); then what it reported when it came back. A weak key of another branch (a forced
 * key of a VTC that restarted or was cut off) recorded on a restored image must not lift it
 * into the expected range: in seed
 * 20013 a forked forced `vts-out` recorded its seq 1 on an image of seq 0, which every VTC
 * then elected. The MAC is not compared in general: a genuine VTS may have recorded a
 * losing fork's key (that made 13 seeds of 0..4000 lose liveness).
 */
export function judgedSeq(vtc: VtcState, x: VtsName): number {
  const o = vtc.obs[x];
  const reported = o.view?.lastKeySeq ?? 0;
  if (o.restarted === null || vtc.chosen.get(reported)?.key.mac === o.view?.lastKeyMac) return reported;
  return Math.min(reported, o.restarted.seq);
}

/** [newest seq the VTS confirmed recording, newest key seq held here]: a VTS outside it is another image. */
export function expectRange(vtc: VtcState, x: VtsName): { lo: number; hi: number } {
  let lo = 0;
  for (const { commit } of vtc.chosen.values()) if (commit.recorded.includes(x) && commit.seq > lo) lo = commit.seq;
  return { lo, hi: vtc.maxHeld };
}
