/**
 * The vote tally over the native addon: the same contract as the JS reference
 * (`vote-tally-ref.ts`), fast enough for the batch path. See `ballots.ts` for the rules.
 */
import { native } from '../native.js';
import type { NativeVoteTally } from '../native.js';
import {
  DECISION_SIZE,
  checkBallot,
  checkBatch,
  checkElection,
  checkOptions,
} from './ballots.js';
import type { Ballot, CastResult, CastStatus, Decision, ElectionState, Outcome, TallyStats, VoteTallyApi, VoteTallyOptions } from './ballots.js';

const castStatus: readonly CastStatus[] = ['accepted', 'duplicate', 'stale', 'invalid', 'accepted', 'accepted'];
const outcomeOf = (code: number): Outcome | undefined => (code === 1 ? 'online' : code === 2 ? 'offline' : undefined);

/** Native vote tally. Synchronous; see {@link VoteTallyApi} for error behaviour. */
export class VoteTally implements VoteTallyApi {
  readonly #handle: NativeVoteTally;

  constructor(options: VoteTallyOptions) {
    const o = checkOptions(options);
    this.#handle = new native.VoteTally(o.electorate, o.threshold, o.window);
  }

  castBatch(ballots: Uint8Array): Decision[] {
    checkBatch(ballots);
    const packed = this.#handle.castBatch(ballots);
    if (packed === null) return [];
    const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
    const out: Decision[] = [];
    for (let o = 0; o < packed.byteLength; o += DECISION_SIZE) {
      out.push({
        election: view.getUint32(o, true),
        outcome: view.getUint8(o + 12) === 1 ? 'online' : 'offline',
        yes: view.getUint32(o + 4, true),
        no: view.getUint32(o + 8, true),
        maxKeySeq: view.getBigUint64(o + 16, true),
      });
    }
    return out;
  }

  cast(ballot: Ballot): CastResult {
    checkBallot(ballot);
    const code = this.#handle.cast(ballot.election, ballot.voter, ballot.choice, ballot.keySeq);
    const status = castStatus[code];
    if (status === undefined) throw new Error(`native tally returned unknown cast code ${code}`);
    if (code < 4) return { status };
    const s = this.election(ballot.election);
    if (s === undefined || s.decided === undefined) throw new Error('native tally lost the election it just decided');
    return { status, decision: { election: s.election, outcome: s.decided, yes: s.yes, no: s.no, maxKeySeq: s.maxKeySeq } };
  }

  open(election: number): boolean {
    checkElection(election);
    return this.#handle.open(election);
  }

  election(election: number): ElectionState | undefined {
    checkElection(election);
    const raw = this.#handle.election(election);
    if (raw === undefined) return undefined;
    const [yes, no, decided, maxKeySeq] = raw;
    return { election, yes, no, decided: outcomeOf(decided), maxKeySeq };
  }

  stats(): TallyStats {
    return this.#handle.stats();
  }
}
