/**
 * Phase 1, receiver side: whether this VTC acknowledges a proposed key (onPropose), making it
 * durable before it does, and the acknowledgements (with ballots) that wait for a fresh view.
 */
import type { PeerMessage } from '../messages.js';
import { thresholdMismatch } from '../rules.js';
import { otherVts } from '../types.js';
import type { ElectionId, ShutdownKey, SignedBallot, VtsName } from '../types.js';
import { idKey, phase1Election } from './state.js';
import type { AppendCont, VtcState } from './state.js';
import { holdKey, holds, syncRecords } from './chain.js';
import { addOwnBallot, checkQuorum, ownKeyDurable, unjudgedBystander } from './coordination.js';
import { castBallot, noteRound } from './election.js';
import { expectRange, judgedSeq, lostWithOtherCurrent, olderKept, sameImage } from './vts.js';

export function onPropose(vtc: VtcState, from: string, key: ShutdownKey): void {
  if (key.ptpId !== vtc.config.ptpId) return vtc.reject('other-ptp');
  vtc.auto = null;
  const nack = (reason: string): void => vtc.send(from, { t: 'nack', seq: key.seq, keyMac: key.mac, reason });
  // A key whose fate is known here (a takeover of a key that already committed or failed)
  // is not acknowledged again: its proposer gets the commit instead.
  const settled = vtc.commits.get(key.seq)?.find((c) => c.keyMac === key.mac);
  if (settled !== undefined) {
    vtc.send(from, { t: 'sync', records: [{ key, commit: settled }] });
    return nack(`key ${key.seq} already ${settled.outcome === 'done' ? 'committed' : 'failed'} here`);
  }
  if (vtc.chosen.has(key.seq) && !holds(vtc, key.seq, key.mac)) return nack(`seq ${key.seq} is already committed here`);
  if (holds(vtc, key.seq, key.mac)) return ackTo(vtc, key, [from]);
  const eff = vtc.eff;
  if (eff.seq >= key.seq) return nack(`seq ${key.seq} is taken: key ${eff.seq} is committed here`);
  if (eff.seq > key.prevSeq) {
    vtc.send(from, { t: 'sync', records: syncRecords(vtc, key.prevSeq) });
    return nack(`key ${key.seq} follows key ${key.prevSeq}, but key ${eff.seq} is committed here`);
  }
  if (eff.seq === key.prevSeq && eff.mac !== key.prevMac) return nack(`key ${key.seq} follows another key ${key.prevSeq} than the one committed here (a fork)`);
  const misfit = thresholdMismatch(key, eff.seq === key.prevSeq ? eff : { seq: key.prevSeq, threshold: key.threshold }, vtc.n);
  if (misfit !== null) {
    vtc.configWarning(`${from}: ${misfit}`);
    vtc.reject('threshold-mismatch');
    return nack(misfit);
  }
  const atPrev = vtc.keys.get(key.prevSeq);
  if (key.prevSeq > 0 && atPrev !== undefined && atPrev.size > 0 && !atPrev.has(key.prevMac)) return nack(`key ${key.seq} follows a key ${key.prevSeq} this VTC never acknowledged (a fork)`);
  // The key must extend this VTC's head: following the predecessors it holds back to the
  // head's seq must reach the head itself. (A chain of weak forced keys made in a minority
  // partition must not grow past a strong key; seed 84597.)
  if (key.prevSeq > eff.seq) {
    let seq = key.prevSeq;
    let mac = key.prevMac;
    while (seq > eff.seq) {
      const k = vtc.keys.get(seq)?.get(mac);
      if (k === undefined) break;
      seq = k.prevSeq;
      mac = k.prevMac;
    }
    if (seq > eff.seq) {
      // Behind: it cannot tell which branch the key is on, so it catches up before it acks.
      vtc.send(from, { t: 'sync-req', after: Math.min(vtc.hw, eff.seq) });
      return nack(`key ${key.seq} follows key ${seq}, which this VTC does not hold yet`);
    }
    if (seq < eff.seq || (seq === eff.seq && mac !== eff.mac)) return nack(`key ${key.seq} is built on a branch without key ${eff.seq}, the newest committed here (a fork)`);
  }
  // A key that passes over a seq whose key this VTC holds (or is making durable) without
  // a commit of that key must wait: had it committed, the new key would be built on a chain
  // without it. Quorums of more than T intersect, so this refusal is what stops two
  // branches. A held key whose commit is known is settled by the chain rule; one left
  // without a commit is resolved by a takeover (see autonomous).
  for (let j = key.prevSeq + 1; j < key.seq; j++) {
    const open = (m: string): boolean => vtc.commits.get(j)?.some((c) => c.keyMac === m) !== true;
    const skipped = [...(vtc.keys.get(j)?.values() ?? [])].some((k) => open(k.mac)) || vtc.waitingAcks.has(`${j}`);
    if (skipped) {
      vtc.send(from, { t: 'sync', records: syncRecords(vtc, key.prevSeq) });
      return nack(`key ${key.seq} passes over key ${j}, which this VTC holds and has not seen fail`);
    }
  }
  // A failure key leaving a survivor this VTC saw restart (and no key recorded on it since)
  // would place an image nobody judged on-line alone: the coordinator may have restarted
  // itself and missed the restart. Refusing fails the key (forced never goes against an
  // answer); this VTC then counts both as lost.
  // So would an operator's vts-out (forced or not) whose survivor step records on that VTS:
  // this VTC's acknowledgement then clears its own mark (judgedRecord).
  if (key.command === 'vts-out') {
    const x = key.subjects[0] ?? 'A';
    const y = otherVts(x);
    // The failure key of the last VTS in keeps it current, unless it was lost together
    // with the other: a VTC that saw that refuses, and the coordinator, taking it over,
    // leaves it out of current (seed 20176).
    if (key.reason === 'failure' && vtc.eff.status[y] === 'out' && key.current.includes(x) && lostWithOtherCurrent(vtc, x)) return nack(`bothlost:${x}: VTS ${x} restarted while the other VTS was lost too: it alone cannot stay current`);
    if (vtc.eff.status[y] === 'in' && vtc.obs[y].restarted !== null) return nack(`restarted:${y}: VTS ${y} restarted and no key has been recorded on it since: it cannot be left serving alone`);
  }
  // A return without a vote brings back a VTS in current only as the image that left: a
  // VTC that judges it another image (below the seq it confirmed, as it came back from a
  // restart) refuses, as its coordinator would have (seed 20013: the coordinator had
  // restarted, never saw the restart, and judged the image by a forked key recorded on it).
  if (key.command === 'vts-in' && key.reason === 'return') {
    const other = key.subjects.find((x) => vtc.eff.current.includes(x) && vtc.obs[x].view !== undefined && !sameImage(vtc, x));
    if (other !== undefined) return nack(`image:${other}: VTS ${other} reports last key seq ${judgedSeq(vtc, other)}, not the image that left (expected ${expectRange(vtc, other).lo}..${expectRange(vtc, other).hi})`);
  }
  // A key that records its seq on a VTS it keeps in without judging it would clear every
  // VTC's restart mark: that VTS's loss must be recorded first (seeds 3396, 3671).
  const older = olderKept(vtc, key);
  if (older !== null) return nack(`image:${older}`);
  const bystander = unjudgedBystander(vtc, key);
  if (bystander !== null) return nack(`restarted:${bystander}: VTS ${bystander} restarted and no key has been recorded on it since: its loss is recorded first`);
  const held = vtc.keys.get(key.seq);
  const inProgress = vtc.waitingAcks.get(`${key.seq}`);
  if ((held !== undefined && held.size > 0) || (inProgress !== undefined && !vtc.waitingAcks.has(key.mac))) {
    return nack(`conflict: another key holds seq ${key.seq} here`);
  }
  const waiting = vtc.waitingAcks.get(key.mac);
  if (waiting !== undefined) {
    waiting.add(from);
    return;
  }
  makeDurable(vtc, key, from);
  if (key.seq > vtc.hw + 1) vtc.send(from, { t: 'sync-req', after: vtc.hw });
}

/**
 * Appends `key` and holds it once durable, then acknowledges it to every VTC that proposed
 * it meanwhile (`from` first, if any). Until then another key for its seq is refused here.
 */
export function makeDurable(vtc: VtcState, key: ShutdownKey, from: string | null, coordination: number | null = null): void {
  vtc.waitingAcks.set(key.mac, new Set(from === null ? [] : [from]));
  vtc.waitingAcks.set(`${key.seq}`, new Set());
  vtc.append({ type: 'key', key }, { kind: 'key-durable', key, coordination });
}

/** The key of a `key-durable` continuation is durable (makeDurable): held, acknowledged, and counted by its coordination here, if any. */
export function keyDurable(vtc: VtcState, cont: Extract<AppendCont, { kind: 'key-durable' }>): void {
  const key = cont.key;
  holdKey(vtc, key, vtc.now);
  const to = vtc.waitingAcks.get(key.mac) ?? new Set<string>();
  vtc.waitingAcks.delete(key.mac);
  vtc.waitingAcks.delete(`${key.seq}`);
  if (to.size > 0) ackTo(vtc, key, to);
  if (cont.coordination !== null) ownKeyDurable(vtc, cont.coordination);
}

/**
 * Acknowledges `key` to `to`, with this VTC's ballot when the key holds its election in
 * phase 1. A ballot that would only say "no view of the VTS since my newest key" while
 * the heartbeat that key set off may still answer waits for it (see unpark): a VTC that
 * has just caught up would otherwise vote NO for want of evidence.
 */
export function ackTo(vtc: VtcState, key: ShutdownKey, to: Iterable<string>): void {
  if (ballotPending(vtc, key)) {
    const parked = vtc.parkedAcks.get(key.mac) ?? { key, to: new Set<string>() };
    for (const p of to) parked.to.add(p);
    vtc.parkedAcks.set(key.mac, parked);
    return;
  }
  const ballot = phase1Ballot(vtc, key);
  const ack: PeerMessage = ballot === undefined ? { t: 'ack', seq: key.seq, keyMac: key.mac } : { t: 'ack', seq: key.seq, keyMac: key.mac, ballot };
  for (const p of to) vtc.send(p, ack);
}

/** True while this VTC's ballot in `key`'s phase 1 election waits for a view of the VTS newer than its newest key. */
export function ballotPending(vtc: VtcState, key: ShutdownKey): boolean {
  const e = phase1Election(key);
  return e !== null && !vtc.cast.has(idKey(e)) && awaitingView(vtc, e.vts);
}

/** The view of `x` predates the newest key, and the heartbeat that key set off may still answer. */
export function awaitingView(vtc: VtcState, x: VtsName): boolean {
  return vtc.obs[x].at < vtc.effAt && vtc.now - vtc.effAt < vtc.config.timing.heartbeatTimeout;
}

/** Sends the acknowledgements (and adds the coordinator's own ballot) that waited for a fresh view. */
export function unpark(vtc: VtcState): void {
  for (const [mac, p] of vtc.parkedAcks) {
    if (ballotPending(vtc, p.key)) continue;
    vtc.parkedAcks.delete(mac);
    ackTo(vtc, p.key, p.to);
  }
  const c = vtc.coord;
  if (c !== null && c.phase === 'proposing' && !c.ballots.has(vtc.config.self) && addOwnBallot(vtc, c)) checkQuorum(vtc, c);
}

/**
 * This VTC's ballot in the election `key` holds in its phase 1, decided like any ballot
 * from its own newest key and its own view of the VTS (which must have answered since
 * that key, but need not be in operation: the key starts it). Cast once per election.
 */
export function phase1Ballot(vtc: VtcState, key: ShutdownKey): SignedBallot | undefined {
  const e = phase1Election(key);
  if (e === null) return undefined;
  const id: ElectionId = { seq: e.seq, vts: e.vts, round: e.round };
  const cast = vtc.cast.get(idKey(id));
  if (cast !== undefined) return cast;
  noteRound(vtc, id);
  const o = vtc.obs[id.vts];
  const fresh = o.at >= vtc.effAt && vtc.now - o.at <= vtc.config.timing.heartbeatTimeout;
  return castBallot(vtc, id, fresh ? o.view : undefined, true);
}
