/**
 * Elections of a VTS: ballots this VTC casts, joins and tallies, and the check that a commit
 * placing a VTS on-line by election carries more than T signed YES ballots.
 */
import { decideVote } from '../rules.js';
import type { CommitRecord, ElectionId, ShutdownKey, SignedBallot, VtsView } from '../types.js';
import { idKey, newer } from './state.js';
import type { Election, VtcState } from './state.js';
import { awaitingView } from './proposal.js';
import { bothLostUnrecorded, expectRange, judgedSeq, olderImage, seenIn } from './vts.js';
import { heardLately } from './autonomy.js';

/** How many VTCs a ballot goes to (see {@link talliers}). */
export const TALLIERS = 3;

/**
 * The VTCs that tally an election's ballots, as this VTC sees them: the one that committed
 * the key the election is about (it proposes the result: autonomy.ts ranks it first), then
 * the first VTCs in configured order heard from lately, {@link TALLIERS} in all. A tallier
 * sends its ballot to every VTC, which keeps every VTC in the same round (a ballot of a
 * newer round makes a VTC join it); every other VTC sends its ballot to the talliers only.
 * An election so costs about 2 x TALLIERS x n messages instead of n x (n - 1). Safety does
 * not rest on who tallies: the proposal carries the signed YES ballots, and every VTC checks
 * them (`backed`). Three keep an election going when one or two of them fail; should all
 * fail, the round times out and the next one's talliers are taken from who is live then.
 */
export function talliers(vtc: VtcState): string[] {
  const out: string[] = [];
  const lead = vtc.chosen.get(vtc.eff.seq)?.commit.coordinator;
  if (lead !== undefined && vtc.config.vtcs.includes(lead)) out.push(lead);
  for (const v of vtc.config.vtcs) {
    if (out.length >= TALLIERS) break;
    if (!out.includes(v) && (v === vtc.config.self || heardLately(vtc, v))) out.push(v);
  }
  return out;
}

/** Where this VTC's ballot goes: everyone from a tallier, the talliers from anyone else. */
function ballotTargets(vtc: VtcState): string[] {
  const t = talliers(vtc);
  const to = t.includes(vtc.config.self) ? vtc.config.vtcs : t;
  return to.filter((v) => v !== vtc.config.self);
}

/** The newest round this VTC knows of for the election's key and VTS. */
export function noteRound(vtc: VtcState, id: ElectionId): void {
  const rk = `${id.seq}:${id.vts}`;
  if ((vtc.rounds.get(rk) ?? -1) < id.round) vtc.rounds.set(rk, id.round);
}

/** Decides (decideVote, from this VTC's newest key and `view`), signs and records this VTC's ballot in election `id`. */
export function castBallot(vtc: VtcState, id: ElectionId, view: VtsView | undefined, starting: boolean): SignedBallot {
  const { lo, hi } = expectRange(vtc, id.vts);
  const vote = decideVote({
    key: vtc.eff,
    vts: id.vts,
    view: view === undefined ? undefined : { ...view, lastKeySeq: judgedSeq(vtc, id.vts) },
    expectLo: lo,
    expectHi: hi,
    electionSeq: id.seq,
    seenMaxKeySeq: vtc.seenMaxKeySeq,
    ...(bothLostUnrecorded(vtc, id.vts) ? { bothLost: true } : {}),
    ...(olderImage(vtc, id.vts) === null ? {} : { olderImage: olderImage(vtc, id.vts)! }),
    ...(starting ? { starting } : {}),
    ...(vtc.deps.broken === undefined ? {} : { broken: vtc.deps.broken }),
  });
  const ballot = vtc.signer.sign<SignedBallot>({ ptpId: vtc.config.ptpId, election: id, voter: vtc.config.self, keySeq: vtc.eff.seq, choice: vote.yes ? 'yes' : 'no', why: vote.why });
  vtc.stats.ballotsCast++;
  if (vtc.cast.size >= 256) vtc.cast.clear();
  vtc.cast.set(idKey(id), ballot);
  vtc.out.push({ kind: 'ballot', ballot });
  return ballot;
}

/** Every VTC tallies: a commit placing a VTS on-line by a phase 1 election must carry more than T signed YES ballots of it. */
export function backed(vtc: VtcState, key: ShutdownKey, commit: CommitRecord): boolean {
  const e = commit.election;
  if (e === undefined || e === null) return true;
  const want = idKey(e);
  const yes = new Set<string>();
  for (const b of commit.ballots ?? []) {
    if (b.choice === 'yes' && b.ptpId === vtc.config.ptpId && idKey(b.election) === want && e.yes.includes(b.voter) && vtc.config.vtcs.includes(b.voter)) yes.add(b.voter);
  }
  return key.election !== null && idKey(key.election) === want && yes.size === e.yes.length && yes.size > key.threshold;
}

export function joinElection(vtc: VtcState, id: ElectionId): void {
  noteRound(vtc, id);
  const known = vtc.joined.get(idKey(id));
  if (known !== undefined && known.effMac === vtc.eff.mac) {
    // Rejoining keeps the ballots already counted in that round.
    vtc.election = known;
    const again = vtc.ballotBuffer.get(idKey(id)) ?? [];
    vtc.ballotBuffer.clear();
    for (const b of again) tally(vtc, known, b);
    return;
  }
  let startedAt = vtc.roundStarted.get(idKey(id));
  if (startedAt === undefined) {
    if (vtc.roundStarted.size >= 256) vtc.roundStarted.clear();
    startedAt = vtc.now;
    vtc.roundStarted.set(idKey(id), startedAt);
  }
  const e: Election = {
    id,
    tally: vtc.deps.tally({ electorate: vtc.n, threshold: vtc.eff.threshold, window: 1 }),
    ballots: new Map(),
    startedAt,
    effMac: vtc.eff.mac,
    online: null,
    offline: false,
  };
  vtc.election = e;
  if (vtc.joined.size >= 64) vtc.joined.clear();
  vtc.joined.set(idKey(id), e);
  // Rejoining an election (a ballot arrived after this VTC left it) recasts nothing: its
  // ballot stands, and a second broadcast would let VTCs answer each other without end.
  const cast = vtc.cast.get(idKey(id));
  if (cast !== undefined) {
    tally(vtc, e, cast);
    const again = vtc.ballotBuffer.get(idKey(id)) ?? [];
    vtc.ballotBuffer.clear();
    for (const b of again) tally(vtc, e, b);
    return;
  }
  const ballot = castBallot(vtc, id, seenIn(vtc, id.vts) ? vtc.obs[id.vts].view : undefined, false);
  for (const v of ballotTargets(vtc)) vtc.send(v, { t: 'ballot', ballot });
  tally(vtc, e, ballot);
  const buffered = vtc.ballotBuffer.get(idKey(id)) ?? [];
  vtc.ballotBuffer.clear();
  for (const b of buffered) tally(vtc, e, b);
}

export function onBallot(vtc: VtcState, from: string, b: SignedBallot): void {
  if (b.ptpId !== vtc.config.ptpId) return vtc.reject('other-ptp');
  if (b.voter !== from) return vtc.reject('ballot-voter-mismatch');
  vtc.out.push({ kind: 'seen', ballots: [b] });
  // Each voter's latest ballot counts: a VTC that left a fork stops holding the others back.
  vtc.voterKeySeq.set(b.voter, b.keySeq);
  vtc.seenMaxKeySeq = Math.max(0, ...vtc.voterKeySeq.values());
  if (b.keySeq > vtc.eff.seq) vtc.send(from, { t: 'sync-req', after: vtc.hw });
  if (b.election.seq < vtc.eff.seq) {
    // An election about a key older than this VTC's newest: its caller missed a key. Answer
    // it once, NO with the newer keySeq (which makes it sync), and take no part: joining
    // would let two VTCs answer each other's ballots without end.
    const k = idKey(b.election);
    if (vtc.answered.has(k)) return;
    if (vtc.answered.size >= 256) vtc.answered.clear();
    vtc.answered.add(k);
    const no = vtc.signer.sign<SignedBallot>({ ptpId: vtc.config.ptpId, election: b.election, voter: vtc.config.self, keySeq: vtc.eff.seq, choice: 'no', why: `election is about key ${b.election.seq}, newest here is ${vtc.eff.seq}` });
    vtc.stats.ballotsCast++;
    vtc.out.push({ kind: 'ballot', ballot: no });
    return vtc.send(from, { t: 'ballot', ballot: no });
  }
  const e = vtc.election;
  if (e !== null && idKey(e.id) === idKey(b.election)) return tally(vtc, e, b);
  if (e !== null && !newer(b.election, e.id)) return vtc.reject('stale-ballot');
  // A newer election: take part once it is one this VTC can vote in, with its own decision.
  if (vtc.coord === null && vtc.maxHeld === vtc.hw) {
    const buf = vtc.ballotBuffer.get(idKey(b.election)) ?? [];
    buf.push(b);
    vtc.ballotBuffer.clear();
    vtc.ballotBuffer.set(idKey(b.election), buf);
    // Without a view of the VTS newer than the key, this VTC would vote NO for want of
    // evidence: it votes once the heartbeat the key triggered has answered.
    if (b.election.seq === vtc.eff.seq && awaitingView(vtc, b.election.vts)) {
      vtc.pendingJoin = b.election;
      return;
    }
    joinElection(vtc, b.election);
  }
}

export function tally(vtc: VtcState, e: Election, b: SignedBallot): void {
  const voter = vtc.config.vtcs.indexOf(b.voter);
  if (voter < 0) return vtc.reject('unknown-voter');
  if (e.ballots.has(b.voter)) return;
  e.ballots.set(b.voter, b);
  const r = e.tally.cast({ election: 0, voter, choice: b.choice === 'yes' ? 1 : 0, keySeq: BigInt(b.keySeq) });
  // A VTC behind the key the election is about counts ballots but decides nothing: the
  // threshold it would apply is an older key's.
  if (r.decision === undefined || e.id.seq !== vtc.eff.seq || e.effMac !== vtc.eff.mac) return;
  if (r.decision.outcome === 'online') {
    const yes = [...e.ballots.values()].filter((x) => x.choice === 'yes').map((x) => x.voter);
    yes.sort(vtc.byIndex);
    e.online = { at: vtc.now, yes };
  } else e.offline = true;
}
