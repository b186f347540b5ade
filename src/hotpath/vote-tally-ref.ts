/**
 * Reference vote tally in plain TypeScript: the executable specification the native
 * tally is checked against (property test in vote-tally.test.ts) and the baseline of
 * bench/tally.bench.ts. Written for clarity, not speed. Rules: see `ballots.ts`.
 */
import { BALLOT_SIZE, checkBallot, checkBatch, checkElection, checkOptions, decodeBallot } from './ballots.js';
import type { Ballot, CastResult, Decision, ElectionState, Outcome, TallyStats, VoteTallyApi, VoteTallyOptions } from './ballots.js';

interface Election {
  readonly voters: Set<number>;
  yes: number;
  no: number;
  decided: Outcome | undefined;
  maxKeySeq: bigint;
}

/** JS reference vote tally. Synchronous; see {@link VoteTallyApi} for error behaviour. */
export class VoteTallyRef implements VoteTallyApi {
  readonly #electorate: number;
  readonly #threshold: number;
  readonly #window: number;
  readonly #elections = new Map<number, Election>();
  #horizon = -1;
  #accepted = 0;
  #duplicates = 0;
  #stale = 0;
  #invalid = 0;
  #decided = 0;

  constructor(options: VoteTallyOptions) {
    const o = checkOptions(options);
    this.#electorate = o.electorate;
    this.#threshold = o.threshold;
    this.#window = o.window;
  }

  castBatch(ballots: Uint8Array): Decision[] {
    checkBatch(ballots);
    const out: Decision[] = [];
    for (let i = 0; i < ballots.byteLength / BALLOT_SIZE; i++) {
      const r = this.#cast(decodeBallot(ballots, i));
      if (r.decision !== undefined) out.push(r.decision);
    }
    return out;
  }

  cast(ballot: Ballot): CastResult {
    checkBallot(ballot);
    return this.#cast(ballot);
  }

  open(election: number): boolean {
    checkElection(election);
    if (this.#isStale(election)) return false;
    this.#advance(election);
    return true;
  }

  election(election: number): ElectionState | undefined {
    checkElection(election);
    const e = this.#isStale(election) ? undefined : this.#elections.get(election);
    if (e === undefined) return undefined;
    return { election, yes: e.yes, no: e.no, decided: e.decided, maxKeySeq: e.maxKeySeq };
  }

  stats(): TallyStats {
    return {
      accepted: this.#accepted,
      duplicates: this.#duplicates,
      stale: this.#stale,
      invalid: this.#invalid,
      decided: this.#decided,
      horizon: this.#horizon,
    };
  }

  #isStale(election: number): boolean {
    return election + this.#window <= this.#horizon;
  }

  #advance(election: number): void {
    if (election <= this.#horizon) return;
    this.#horizon = election;
    // Forget stale elections now and then, so memory stays bounded by the window.
    if (this.#elections.size > 2 * this.#window) {
      for (const id of this.#elections.keys()) if (this.#isStale(id)) this.#elections.delete(id);
    }
  }

  #cast(b: Ballot): CastResult {
    if (b.voter >= this.#electorate || (b.choice !== 0 && b.choice !== 1)) {
      this.#invalid++;
      return { status: 'invalid' };
    }
    if (this.#isStale(b.election)) {
      this.#stale++;
      return { status: 'stale' };
    }
    this.#advance(b.election);
    let e = this.#elections.get(b.election);
    if (e === undefined) {
      e = { voters: new Set(), yes: 0, no: 0, decided: undefined, maxKeySeq: 0n };
      this.#elections.set(b.election, e);
    }
    if (e.voters.has(b.voter)) {
      this.#duplicates++;
      return { status: 'duplicate' };
    }
    e.voters.add(b.voter);
    this.#accepted++;
    if (b.choice === 1) e.yes++;
    else e.no++;
    if (b.keySeq > e.maxKeySeq) e.maxKeySeq = b.keySeq;
    if (e.decided !== undefined) return { status: 'accepted' };
    if (e.yes > this.#threshold) e.decided = 'online';
    else if (e.yes + e.no === this.#electorate) e.decided = 'offline';
    else return { status: 'accepted' };
    this.#decided++;
    return {
      status: 'accepted',
      decision: { election: b.election, outcome: e.decided, yes: e.yes, no: e.no, maxKeySeq: e.maxKeySeq },
    };
  }
}
