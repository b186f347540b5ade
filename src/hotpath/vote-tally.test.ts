import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VoteTally } from './vote-tally.js';
import { VoteTallyRef } from './vote-tally-ref.js';
import { BALLOT_SIZE, encodeBallots } from './ballots.js';
import type { Ballot, VoteTallyApi, VoteTallyOptions } from './ballots.js';

const impls = [
  ['native', (o: VoteTallyOptions): VoteTallyApi => new VoteTally(o)],
  ['reference', (o: VoteTallyOptions): VoteTallyApi => new VoteTallyRef(o)],
] as const;

const yes = (election: number, voter: number, keySeq = 1n): Ballot => ({ election, voter, choice: 1, keySeq });
const no = (election: number, voter: number, keySeq = 1n): Ballot => ({ election, voter, choice: 0, keySeq });

describe.each(impls)('%s vote tally', (_name, make) => {
  it('decides online once yes exceeds the threshold, and reports it once', () => {
    const t = make({ electorate: 5, threshold: 2 });
    expect(t.cast(yes(7, 0))).toEqual({ status: 'accepted' });
    expect(t.cast(no(7, 1))).toEqual({ status: 'accepted' });
    expect(t.cast(yes(7, 2, 9n))).toEqual({ status: 'accepted' });
    const third = t.cast(yes(7, 3, 4n));
    expect(third).toEqual({ status: 'accepted', decision: { election: 7, outcome: 'online', yes: 3, no: 1, maxKeySeq: 9n } });
    expect(t.cast(yes(7, 4))).toEqual({ status: 'accepted' });
    expect(t.election(7)).toEqual({ election: 7, yes: 4, no: 1, decided: 'online', maxKeySeq: 9n });
    expect(t.stats()).toMatchObject({ accepted: 5, decided: 1 });
  });

  it('decides offline only when every voter has voted and yes <= threshold', () => {
    const t = make({ electorate: 3, threshold: 1 });
    expect(t.cast(yes(1, 0)).decision).toBeUndefined();
    expect(t.cast(no(1, 1)).decision).toBeUndefined();
    expect(t.cast(no(1, 2)).decision).toEqual({ election: 1, outcome: 'offline', yes: 1, no: 2, maxKeySeq: 1n });
  });

  it('threshold equal to the electorate can never pass', () => {
    const t = make({ electorate: 2, threshold: 2 });
    t.cast(yes(0, 0));
    expect(t.cast(yes(0, 1)).decision?.outcome).toBe('offline');
  });

  it('counts duplicates, whatever their choice, and ignores them', () => {
    const t = make({ electorate: 3, threshold: 1 });
    t.cast(yes(1, 0));
    expect(t.cast(no(1, 0))).toEqual({ status: 'duplicate' });
    expect(t.cast(yes(1, 0))).toEqual({ status: 'duplicate' });
    expect(t.election(1)).toMatchObject({ yes: 1, no: 0 });
    expect(t.stats()).toMatchObject({ accepted: 1, duplicates: 2 });
  });

  it('rejects ballots for an election older than the newest one seen (window 1)', () => {
    const t = make({ electorate: 3, threshold: 1 });
    t.cast(yes(4, 0));
    t.cast(yes(5, 0));
    expect(t.cast(yes(4, 1))).toEqual({ status: 'stale' });
    expect(t.election(4)).toBeUndefined();
    expect(t.open(3)).toBe(false);
    expect(t.open(9)).toBe(true);
    expect(t.cast(yes(5, 1))).toEqual({ status: 'stale' });
    expect(t.stats()).toMatchObject({ stale: 2, horizon: 9 });
  });

  it('keeps the newest `window` elections open at once', () => {
    const t = make({ electorate: 2, threshold: 1, window: 3 });
    t.cast(yes(10, 0));
    t.cast(yes(12, 0));
    expect(t.cast(yes(10, 1)).decision?.outcome).toBe('online');
    t.cast(yes(13, 0));
    expect(t.cast(yes(10, 1))).toEqual({ status: 'stale' });
    expect(t.election(11)).toBeUndefined();
    expect(t.election(12)).toMatchObject({ yes: 1 });
  });

  it('counts out-of-range voters and bad choices as invalid without moving the horizon', () => {
    const t = make({ electorate: 2, threshold: 0 });
    expect(t.cast(yes(50, 2))).toEqual({ status: 'invalid' });
    expect(t.cast({ election: 50, voter: 0, choice: 7, keySeq: 0n })).toEqual({ status: 'invalid' });
    expect(t.stats()).toMatchObject({ invalid: 2, horizon: -1 });
  });

  it('tallies a packed batch and returns its decisions in order', () => {
    const t = make({ electorate: 3, threshold: 1, window: 4 });
    const batch = encodeBallots([yes(1, 0), yes(2, 0), yes(2, 1, 5n), yes(1, 0), no(1, 1), no(1, 2), yes(2, 2)]);
    expect(t.castBatch(batch)).toEqual([
      { election: 2, outcome: 'online', yes: 2, no: 0, maxKeySeq: 5n },
      { election: 1, outcome: 'offline', yes: 1, no: 2, maxKeySeq: 1n },
    ]);
    expect(t.castBatch(new Uint8Array(0))).toEqual([]);
    expect(t.stats()).toMatchObject({ accepted: 6, duplicates: 1, decided: 2 });
  });

  it('reads records in place from a view into a larger buffer', () => {
    const t = make({ electorate: 1, threshold: 0 });
    const inner = encodeBallots([yes(3, 0)]);
    const outer = new Uint8Array(inner.length + 5);
    outer.set(inner, 5);
    expect(t.castBatch(outer.subarray(5))).toHaveLength(1);
  });

  it('rejects malformed arguments with TypeError/RangeError and changes nothing', () => {
    expect(() => make({ electorate: 0, threshold: 0 })).toThrow(RangeError);
    expect(() => make({ electorate: 65537, threshold: 0 })).toThrow(RangeError);
    expect(() => make({ electorate: 3, threshold: -1 })).toThrow(RangeError);
    expect(() => make({ electorate: 3, threshold: 1, window: 0 })).toThrow(RangeError);
    const t = make({ electorate: 3, threshold: 1 });
    expect(() => t.castBatch(new Uint8Array(BALLOT_SIZE + 1))).toThrow(RangeError);
    expect(() => t.castBatch([1, 2] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => t.cast({ election: -1, voter: 0, choice: 1, keySeq: 0n })).toThrow(RangeError);
    expect(() => t.cast({ election: 1, voter: 70000, choice: 1, keySeq: 0n })).toThrow(RangeError);
    expect(() => t.cast({ election: 1, voter: 0, choice: 1, keySeq: -1n })).toThrow(RangeError);
    expect(() => t.cast({ election: 1, voter: 0, choice: 1, keySeq: 1 as unknown as bigint })).toThrow(TypeError);
    expect(() => t.open(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => t.castBatch('x' as unknown as Uint8Array)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => t.open(2 ** 32)).toThrow(RangeError);
    expect(t.stats()).toEqual({ accepted: 0, duplicates: 0, stale: 0, invalid: 0, decided: 0, horizon: -1 });
  });
});

it('native tally rejects a window x electorate too large to hold', () => {
  expect(() => new VoteTally({ electorate: 65536, threshold: 1, window: 2 ** 20 })).toThrow(RangeError);
});

describe('native tally equals the JS reference', () => {
  const setup = fc.record({
    electorate: fc.integer({ min: 1, max: 9 }),
    threshold: fc.integer({ min: 0, max: 10 }),
    window: fc.integer({ min: 1, max: 5 }),
  });
  // Elections drift upward with jumps back, so stale ballots and window expiry happen.
  const stream = (electorate: number) =>
    fc.array(
      fc.record({
        step: fc.integer({ min: -4, max: 3 }),
        voter: fc.integer({ min: 0, max: electorate + 1 }),
        choice: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 1 }) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 255 }) }),
        keySeq: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        open: fc.integer({ min: 0, max: 30 }),
      }),
      { maxLength: 300 },
    );
  const toBallots = (base: number, steps: { step: number; voter: number; choice: number; keySeq: bigint }[]): Ballot[] => {
    let e = base;
    return steps.map((s) => {
      e = Math.min(0xffffffff, Math.max(0, e + (s.step > 1 ? s.step - 1 : s.step < -2 ? s.step : 0)));
      return { election: e, voter: s.voter, choice: s.choice, keySeq: s.keySeq };
    });
  };

  it('single-ballot API: same status, decisions, states and counters', () => {
    fc.assert(
      fc.property(
        setup.chain((o) => fc.tuple(fc.constant(o), stream(o.electorate), fc.constantFrom(0, 1000, 0xffffffff - 40))),
        ([o, steps, base]) => {
          const a = new VoteTally(o);
          const b = new VoteTallyRef(o);
          const ballots = toBallots(base, steps);
          ballots.forEach((ballot, i) => {
            if (steps[i]!.open === 0) expect(a.open(ballot.election + 2)).toBe(b.open(ballot.election + 2));
            expect(a.cast(ballot)).toEqual(b.cast(ballot));
          });
          expect(a.stats()).toEqual(b.stats());
          for (let e = base - 2; e < base + 40; e++) {
            if (e >= 0 && e <= 0xffffffff) expect(a.election(e)).toEqual(b.election(e));
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('batch API, split at random points: same decisions and counters', () => {
    fc.assert(
      fc.property(
        setup.chain((o) => fc.tuple(fc.constant(o), stream(o.electorate), fc.array(fc.nat(300), { maxLength: 4 }))),
        ([o, steps, cuts]) => {
          const ballots = toBallots(100, steps);
          const buf = encodeBallots(ballots);
          const bounds = [...new Set([0, ...cuts.map((c) => Math.min(c, ballots.length)), ballots.length])].sort((x, y) => x - y);
          const a = new VoteTally(o);
          const b = new VoteTallyRef(o);
          const single = new VoteTallyRef(o);
          const expected = ballots.flatMap((x) => single.cast(x).decision ?? []);
          const got: unknown[] = [];
          for (let i = 1; i < bounds.length; i++) {
            const part = buf.subarray(bounds[i - 1]! * BALLOT_SIZE, bounds[i]! * BALLOT_SIZE);
            const da = a.castBatch(part);
            expect(da).toEqual(b.castBatch(part));
            got.push(...da);
          }
          expect(got).toEqual(expected);
          expect(a.stats()).toEqual(b.stats());
          expect(a.stats()).toEqual(single.stats());
        },
      ),
      { numRuns: 400 },
    );
  });
});
