/**
 * The vote tally's contract and wire layout, shared by the native tally
 * (`vote-tally.ts`) and its JS reference (`vote-tally-ref.ts`).
 *
 * Semantics, identical in both:
 * - A ballot is (election, voter, choice, keySeq). `voter >= electorate` or a choice
 *   other than 0 (no) / 1 (yes) makes it invalid: counted, otherwise ignored, and it
 *   does not advance the election horizon.
 * - Elections are numbered by a u32 sequence per PtP domain. With a window `W`, ballots
 *   for election `E` are stale once an election `>= E + W` has been seen (by a ballot or
 *   by `open`). With the default `W = 1`, any newer election makes older ones stale. A
 *   stale election's state is forgotten, which bounds memory to `W` elections.
 * - One ballot per voter per election; later ones are duplicates (counted, ignored,
 *   whatever their choice).
 * - Decision, reported exactly once: `online` as soon as `yes > threshold`; `offline` as
 *   soon as all `electorate` voters have voted and `yes <= threshold`. Ballots after the
 *   decision are still counted into yes/no but never report the decision again.
 */

/** Bytes per ballot record in a batch buffer. */
export const BALLOT_SIZE = 16;
/** Bytes per packed decision returned by the native batch call. */
export const DECISION_SIZE = 24;
export const MAX_ELECTORATE = 65536;
export const MAX_WINDOW = 2 ** 20;

export const Choice = { no: 0, yes: 1 } as const;
export type Choice = (typeof Choice)[keyof typeof Choice];

export const Outcome = { online: 'online', offline: 'offline' } as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export const CastStatus = {
  accepted: 'accepted',
  duplicate: 'duplicate',
  stale: 'stale',
  invalid: 'invalid',
} as const;
export type CastStatus = (typeof CastStatus)[keyof typeof CastStatus];

/** One ballot. In a batch buffer: u32 election, u16 voter, u8 choice, u8 pad, u64 keySeq (LE). */
export interface Ballot {
  readonly election: number;
  readonly voter: number;
  /** 0 no, 1 yes; any other byte value (0..255) is an invalid ballot. */
  readonly choice: number;
  /** The voter's key sequence; the tally reports the highest one per election. */
  readonly keySeq: bigint;
}

export interface Decision {
  readonly election: number;
  readonly outcome: Outcome;
  /** Yes and no counts at the moment of the decision. */
  readonly yes: number;
  readonly no: number;
  /** Highest keySeq among the election's accepted ballots so far. */
  readonly maxKeySeq: bigint;
}

export interface CastResult {
  readonly status: CastStatus;
  /** Present only on the ballot that decided the election. */
  readonly decision?: Decision;
}

export interface ElectionState {
  readonly election: number;
  readonly yes: number;
  readonly no: number;
  readonly decided: Outcome | undefined;
  readonly maxKeySeq: bigint;
}

export interface TallyStats {
  readonly accepted: number;
  readonly duplicates: number;
  readonly stale: number;
  readonly invalid: number;
  /** Elections decided so far. */
  readonly decided: number;
  /** Highest election seen, -1 before any. */
  readonly horizon: number;
}

export interface VoteTallyOptions {
  /** Number of voters, 1..65536; voter ids are 0..electorate-1. */
  readonly electorate: number;
  /** Agreement threshold: an election passes (online) when yes > threshold. */
  readonly threshold: number;
  /** How many of the newest elections stay open at once, 1..2^20 (default 1). */
  readonly window?: number;
}

/**
 * A vote tally. Every call is synchronous and in memory: there is no timeout or
 * cancellation. Malformed arguments (a buffer whose length is not a multiple of
 * {@link BALLOT_SIZE}, numbers out of their field's range) throw `TypeError` (code
 * `ERR_INVALID_ARG_TYPE`) or `RangeError` (code `ERR_OUT_OF_RANGE`) and change nothing; ballots that are well-formed but invalid for this
 * electorate are counted, never thrown.
 */
export interface VoteTallyApi {
  /** Tallies a packed batch of ballots in order; returns the decisions it caused, in order. */
  castBatch(ballots: Uint8Array): Decision[];
  cast(ballot: Ballot): CastResult;
  /** Marks an election as seen (advancing the horizon); false when it is already stale. */
  open(election: number): boolean;
  /** The state of a live election, or undefined when never seen or stale. */
  election(election: number): ElectionState | undefined;
  stats(): TallyStats;
}

/** Argument errors carry Node's codes, as Node's own argument checks do. */
function outOfRange(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'ERR_OUT_OF_RANGE' });
}
function badType(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' });
}

export function checkOptions(options: VoteTallyOptions): Required<VoteTallyOptions> {
  const { electorate, threshold } = options;
  const window = options.window ?? 1;
  if (!Number.isInteger(electorate) || electorate < 1 || electorate > MAX_ELECTORATE) {
    throw outOfRange(`electorate must be an integer 1..${MAX_ELECTORATE} (got ${String(electorate)})`);
  }
  if (!Number.isInteger(threshold) || threshold < 0 || threshold > 0xffffffff) {
    throw outOfRange(`threshold must be an integer 0..2^32-1 (got ${String(threshold)})`);
  }
  if (!Number.isInteger(window) || window < 1 || window > MAX_WINDOW) {
    throw outOfRange(`window must be an integer 1..${MAX_WINDOW} (got ${String(window)})`);
  }
  return { electorate, threshold, window };
}

export function checkElection(election: number): void {
  if (!Number.isInteger(election) || election < 0 || election > 0xffffffff) {
    throw outOfRange(`election must be an integer 0..2^32-1 (got ${String(election)})`);
  }
}

/** Throws for a ballot that cannot be encoded; validity for the electorate is not checked. */
export function checkBallot(b: Ballot): void {
  checkElection(b.election);
  if (!Number.isInteger(b.voter) || b.voter < 0 || b.voter > 0xffff) {
    throw outOfRange(`voter must be an integer 0..65535 (got ${String(b.voter)})`);
  }
  if (!Number.isInteger(b.choice) || b.choice < 0 || b.choice > 0xff) {
    throw outOfRange(`choice must be an integer 0..255 (got ${String(b.choice)})`);
  }
  if (typeof b.keySeq !== 'bigint') throw badType(`keySeq must be a bigint (got ${typeof b.keySeq})`);
  if (b.keySeq < 0n || b.keySeq > 0xffffffffffffffffn) {
    throw outOfRange(`keySeq must be a bigint 0..2^64-1 (got ${String(b.keySeq)})`);
  }
}

export function checkBatch(ballots: Uint8Array): void {
  if (!(ballots instanceof Uint8Array)) throw badType('ballots must be a Uint8Array');
  if (ballots.byteLength % BALLOT_SIZE !== 0) {
    throw outOfRange(`ballots length ${ballots.byteLength} is not a multiple of ${BALLOT_SIZE}`);
  }
}

/** Packs ballots into the batch layout. */
export function encodeBallots(ballots: readonly Ballot[]): Uint8Array {
  const out = new Uint8Array(ballots.length * BALLOT_SIZE);
  const view = new DataView(out.buffer);
  ballots.forEach((b, i) => {
    checkBallot(b);
    const o = i * BALLOT_SIZE;
    view.setUint32(o, b.election, true);
    view.setUint16(o + 4, b.voter, true);
    view.setUint8(o + 6, b.choice);
    view.setBigUint64(o + 8, b.keySeq, true);
  });
  return out;
}

/** Reads ballot `index` back out of a batch buffer. */
export function decodeBallot(buf: Uint8Array, index: number): Ballot {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const o = index * BALLOT_SIZE;
  return {
    election: view.getUint32(o, true),
    voter: view.getUint16(o + 4, true),
    choice: view.getUint8(o + 6),
    keySeq: view.getBigUint64(o + 8, true),
  };
}
