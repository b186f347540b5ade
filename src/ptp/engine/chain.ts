/**
 * The chain of keys: holding keys and commits, choosing the chain's head among them
 * (rechain), taking commits from peers and answering their sync requests (anti-entropy).
 */
import type { PeerMessage } from '../messages.js';
import { effectiveKey, genesisKey, isStrong } from '../rules.js';
import type { CommitRecord, ShutdownKey } from '../types.js';
import type { AppendCont, VtcState } from './state.js';
import { backed } from './election.js';

function lexLess(a: readonly number[], b: readonly number[], ma: string, mb: string): boolean {
  for (let i = 0; i < a.length; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return ma < mb;
}

/** This VTC's hello: its high-water mark, its newest key and the commit it follows for it. */
export function hello(vtc: VtcState): Extract<PeerMessage, { t: 'hello' }> {
  const topCommit = vtc.chosen.get(vtc.eff.seq)?.commit.mac;
  const sums = vtc.evidence.shared();
  return { t: 'hello', hi: vtc.hw, top: vtc.eff.seq, topMac: vtc.eff.mac, cfg: vtc.cfg, ...(topCommit === undefined ? {} : { topCommit }), ...(sums.length === 0 ? {} : { sums }) };
}

/**
 * After it starts, a VTC serves host I/O only once more than T VTCs (itself included) have
 * said in a hello that they hold no newer key than it does: any key committed while it
 * was down is held by more than T, and two such sets meet. A VTS that missed the same keys
 * would not fence it (seed 54224).
 */
export function caughtUp(vtc: VtcState): boolean {
  if (vtc.synced) return true;
  let n = 1;
  for (const top of vtc.peerTop.values()) if (top <= vtc.eff.seq) n++;
  if (n > vtc.eff.threshold) vtc.synced = true;
  return vtc.synced;
}

export function holds(vtc: VtcState, seq: number, mac: string): boolean {
  return vtc.keys.get(seq)?.has(mac) === true;
}

export function holdKey(vtc: VtcState, key: ShutdownKey, now: number): void {
  let m = vtc.keys.get(key.seq);
  if (m === undefined) {
    m = new Map();
    vtc.keys.set(key.seq, m);
    vtc.keySeenAt.set(key.seq, now);
  }
  m.set(key.mac, key);
  if (key.seq > vtc.maxHeld) vtc.maxHeld = key.seq;
  if (vtc.commits.get(key.seq)?.some((c) => c.keyMac === key.mac) !== true) vtc.unresolved.set(key.mac, key);
}

export function applyCommit(vtc: VtcState, key: ShutdownKey, commit: CommitRecord): void {
  holdKey(vtc, key, vtc.now);
  const list = vtc.commits.get(commit.seq) ?? [];
  if (list.some((c) => c.mac === commit.mac)) return;
  list.push(commit);
  vtc.unresolved.delete(commit.keyMac);
  vtc.commits.set(commit.seq, list);
  // An override puts its VTS back as the operator found it: what was seen of its earlier boots no longer judges it.
  if (commit.outcome === 'done' && key.reason === 'override') for (const x of key.subjects) vtc.evidence.accept(x, key.seq);
  rechain(vtc);
}

/**
 * Rebuilds the chain from seq 1: at each seq the best done commit whose key follows the
 * chain so far (strong before weak, then lowest origin and coordinator) becomes the
 * head. A key built on a fork or above a gap is held but not followed until its
 * predecessor is known.
 */
export function rechain(vtc: VtcState): void {
  const idx = (v: string): number => vtc.config.vtcs.indexOf(v);
  const genesis = genesisKey(vtc.config.ptpId, vtc.n);
  // Every done commit whose ancestry reaches genesis through done commits is a chain; the
  // chain with the most strong keys wins (strong keys cannot fork), then the longest, then
  // a fixed order, so every VTC holding the same records picks the same head.
  const best = new Map<string, { eff: ShutdownKey; strong: number; len: number; parent: string | null; commit: CommitRecord; key: ShutdownKey }>();
  vtc.chosen.clear();
  const headOf = new Map<string, { eff: ShutdownKey; strong: number; len: number }>([['', { eff: genesis, strong: 0, len: 0 }]]);
  for (let s = 1; s <= vtc.maxHeld; s++) {
    const list = vtc.commits.get(s);
    if (list === undefined) continue;
    let pick: { key: ShutdownKey; commit: CommitRecord; rank: number[] } | undefined;
    for (const c of list) {
      const k = vtc.keys.get(s)?.get(c.keyMac);
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
    if (pick !== undefined) vtc.chosen.set(s, { key: pick.key, commit: pick.commit });
  }
  let head = { eff: genesis, strong: 0, len: 0 };
  for (const h of headOf.values()) {
    if (h.strong > head.strong || (h.strong === head.strong && (h.len > head.len || (h.len === head.len && h.eff.seq > head.eff.seq) || (h.len === head.len && h.eff.seq === head.eff.seq && h.eff.mac < head.eff.mac)))) head = h;
  }
  // The chain itself is what peers sync from: put its records in `chosen` at their seqs.
  for (let m: string | null = head.eff.mac; m !== null && m !== ''; ) {
    const e = best.get(m);
    if (e === undefined) break;
    vtc.chosen.set(e.key.seq, { key: e.key, commit: e.commit });
    m = e.parent;
  }
  const headKey = head.eff;
  const hwBefore = vtc.hw;
  vtc.hw = 0;
  while (vtc.chosen.has(vtc.hw + 1)) vtc.hw++;
  // Any settled key restarts the staggered wait, so VTCs do not all retry at once.
  if (vtc.hw !== hwBefore) vtc.auto = null;
  const before = vtc.eff;
  vtc.eff = headKey;
  if (headKey.seq !== before.seq || headKey.mac !== before.mac || headKey.acks.length !== before.acks.length) {
    vtc.election = null;
    vtc.auto = null;
    vtc.effAt = vtc.now;
  }
}

/** The chain's head below `seq`, following prev links back from the current head. */
export function effBelow(vtc: VtcState, seq: number): ShutdownKey {
  let k = vtc.eff;
  while (k.seq >= seq && k.seq > 0) {
    const p = vtc.chosen.get(k.prevSeq);
    if (p === undefined) return genesisKey(vtc.config.ptpId, vtc.n);
    k = effectiveKey(p.key, p.commit);
  }
  return k;
}

export function ingestCommit(vtc: VtcState, key: ShutdownKey, commit: CommitRecord, from: string | null): void {
  if (key.ptpId !== vtc.config.ptpId || commit.ptpId !== vtc.config.ptpId) return vtc.reject('other-ptp');
  if (commit.keyMac !== key.mac || commit.seq !== key.seq) return vtc.reject('commit-key-mismatch');
  if (commit.election !== undefined && commit.election !== null && !backed(vtc, key, commit)) return vtc.reject('commit-election-unbacked');
  // A record held already asks for nothing: answering it with a request would let two
  // VTCs on different branches of a fork ask each other for the same records forever.
  if (vtc.commits.get(commit.seq)?.some((c) => c.mac === commit.mac) === true || vtc.appendingMacs.has(commit.mac)) return;
  if (from !== null && commit.ballots !== undefined && commit.ballots.length > 0) vtc.out.push({ kind: 'seen', ballots: commit.ballots.filter((b) => b.ptpId === vtc.config.ptpId && vtc.config.vtcs.includes(b.voter)) });
  // A key whose predecessor is not held here: fetch it (the fork may be deep).
  if (from !== null && key.prevSeq > 0 && vtc.commits.get(key.prevSeq)?.some((c) => c.keyMac === key.prevMac && c.outcome === 'done') !== true) vtc.send(from, { t: 'sync-req', after: key.prevSeq - 1 });
  vtc.appendingMacs.add(commit.mac);
  vtc.append({ type: 'commit', key, commit }, { kind: 'commit-durable', key, commit });
  if (from !== null && commit.seq > vtc.hw + 1) vtc.send(from, { t: 'sync-req', after: vtc.hw });
}

/** A peer's commit taken here is durable (ingestCommit): it joins the chain. */
export function commitDurable(vtc: VtcState, cont: Extract<AppendCont, { kind: 'commit-durable' }>): void {
  vtc.appendingMacs.delete(cont.commit.mac);
  applyCommit(vtc, cont.key, cont.commit);
}

export function onSyncReq(vtc: VtcState, from: string, after: number): void {
  const records = syncRecords(vtc, after);
  if (records.length > 0) vtc.send(from, { t: 'sync', records });
}

/** Every commit held at each seq after `after` (not only the chain's), so a peer on another branch gets the predecessors it lacks. */
export function syncRecords(vtc: VtcState, after: number): { key: ShutdownKey; commit: CommitRecord }[] {
  const records: { key: ShutdownKey; commit: CommitRecord }[] = [];
  for (let s = after + 1; s <= vtc.maxHeld && records.length < 64; s++) {
    const c = vtc.chosen.get(s);
    if (c !== undefined) records.push(c);
    for (const o of vtc.commits.get(s) ?? []) {
      if (records.length >= 64) break;
      if (o.mac === c?.commit.mac) continue;
      const k = vtc.keys.get(s)?.get(o.keyMac);
      if (k !== undefined) records.push({ key: k, commit: o });
    }
  }
  return records;
}

/** The lowest seq whose key a held done commit follows but no done commit of which is held here (a failed one may be a takeover's that missed it). */
export function missingPredecessor(vtc: VtcState): number | null {
  let low: number | null = null;
  for (const [s, list] of vtc.commits) {
    for (const c of list) {
      if (c.outcome !== 'done') continue;
      const k = vtc.keys.get(s)?.get(c.keyMac);
      if (k === undefined || k.prevSeq === 0) continue;
      if (vtc.commits.get(k.prevSeq)?.some((p) => p.keyMac === k.prevMac && p.outcome === 'done') === true) continue;
      if (low === null || k.prevSeq < low) low = k.prevSeq;
    }
  }
  return low;
}
