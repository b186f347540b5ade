/**
 * Vote tally throughput: the native tally vs its JS reference, and vs the cheapest
 * possible pass over the same buffer (a JS loop summing the choice bytes), which is the
 * floor any tally has to pay to look at every record.
 *
 * Workload: 1,048,576 ballots (16 MiB) for 64-voter elections, threshold 32, window 1024;
 * 16 elections in flight at a time with their ballots interleaved, ~60% yes, 2%
 * duplicates (replayed ballots), 1% stale (an election long gone), so decisions happen
 * about once per 64 ballots. Each measured call starts from a fresh tally.
 */
import b from 'benny';
import { VoteTally } from '../src/hotpath/vote-tally.js';
import { VoteTallyRef } from '../src/hotpath/vote-tally-ref.js';
import { BALLOT_SIZE } from '../src/hotpath/ballots.js';
import { loadavg } from 'node:os';
import { target, writeResults } from './lib.js';
import type { Figure } from './lib.js';

const BALLOTS = 1 << 20;
const options = { electorate: 64, threshold: 32, window: 1024 } as const;

function workload(): Uint8Array {
  let seed = 0x9e3779b9;
  const rnd = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const buf = new Uint8Array(BALLOTS * BALLOT_SIZE);
  const view = new DataView(buf.buffer);
  const put = (i: number, election: number, voter: number, choice: number, keySeq: bigint) => {
    const o = i * BALLOT_SIZE;
    view.setUint32(o, election, true);
    view.setUint16(o + 4, voter, true);
    view.setUint8(o + 6, choice);
    view.setBigUint64(o + 8, keySeq, true);
  };
  const group = 16;
  let i = 0;
  let base = 5000;
  while (i < BALLOTS) {
    // One group: 16 elections, every voter once each, in a shuffled interleaving.
    const order: [number, number][] = [];
    for (let e = 0; e < group; e++) for (let v = 0; v < options.electorate; v++) order.push([base + e, v]);
    for (let k = order.length - 1; k > 0; k--) {
      const j = rnd(k + 1);
      [order[k], order[j]] = [order[j]!, order[k]!];
    }
    for (const [e, v] of order) {
      if (i >= BALLOTS) break;
      const r = rnd(100);
      if (r < 2 && i > 0) {
        buf.copyWithin(i * BALLOT_SIZE, (i - 1 - rnd(Math.min(i, 50))) * BALLOT_SIZE, (i - rnd(1)) * BALLOT_SIZE);
        if (view.getUint32(i * BALLOT_SIZE, true) === 0) put(i, e, v, 1, 1n);
      } else if (r < 3) put(i, e - 4096, v, 1, 7n);
      else put(i, e, v, rnd(10) < 6 ? 1 : 0, BigInt(rnd(1 << 30)));
      i++;
    }
    base += group;
  }
  return buf;
}

const ballots = workload();
let sink = 0;

function plainSum(buf: Uint8Array): number {
  let s = 0;
  for (let o = 6; o < buf.length; o += BALLOT_SIZE) s += buf[o]!;
  return s;
}

// Correctness guard: both tallies agree on this workload before anything is timed.
{
  const a = new VoteTally(options);
  const r = new VoteTallyRef(options);
  const da = a.castBatch(ballots);
  const dr = r.castBatch(ballots);
  if (JSON.stringify(a.stats()) !== JSON.stringify(r.stats()) || da.length !== dr.length) {
    throw new Error('native and reference tallies disagree on the benchmark workload');
  }
  console.log(`workload: ${BALLOTS} ballots, ${da.length} decisions, stats ${JSON.stringify(a.stats())}`);
}

const summary = await b.suite(
  'tally',
  b.add('native tally (castBatch)', () => {
    sink += new VoteTally(options).castBatch(ballots).length;
  }),
  b.add('JS reference tally (castBatch)', () => {
    sink += new VoteTallyRef(options).castBatch(ballots).length;
  }),
  b.add('plain JS sum of choice bytes', () => {
    sink += plainSum(ballots);
  }),
  b.cycle(),
);

const rate = (name: string) => {
  const r = summary.results.find((x) => x.name === name);
  if (r === undefined) throw new Error(`missing result ${name}`);
  return { perSecond: r.ops * BALLOTS, r };
};
const native = rate('native tally (castBatch)');
const ref = rate('JS reference tally (castBatch)');
const sum = rate('plain JS sum of choice bytes');
const figure = (name: string, x: ReturnType<typeof rate>): Figure => ({
  name: `${name} (benny)`,
  value: x.perSecond,
  unit: 'ballots/s',
  detail: { callsPerSecond: x.r.ops, marginPercent: x.r.margin, samples: x.r.samples, ballotsPerCall: BALLOTS },
});

// Other work on a shared machine shifts every case measured minutes apart; the targets
// use rounds that alternate the three cases and compare them round by round.
const timed = (fn: () => void): number => {
  const t0 = performance.now();
  let calls = 0;
  while (performance.now() - t0 < 300 || calls < 2) {
    fn();
    calls++;
  }
  return (calls * BALLOTS) / ((performance.now() - t0) / 1000);
};
const rounds: { native: number; ref: number; sum: number }[] = [];
for (let r = 0; r < 7; r++) {
  rounds.push({
    native: timed(() => void (sink += new VoteTally(options).castBatch(ballots).length)),
    ref: timed(() => void (sink += new VoteTallyRef(options).castBatch(ballots).length)),
    sum: timed(() => void (sink += plainSum(ballots))),
  });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratioRef = median(rounds.map((r) => r.native / r.ref));
const ratioSum = median(rounds.map((r) => r.native / r.sum));
const byRatio = (name: string, ratio: number, required: number) => ({ ...target(name, 1, 1, required), ratio: Number(ratio.toFixed(3)), met: ratio >= required });

writeResults(
  'tally',
  [
    figure('native tally', native),
    figure('JS reference tally', ref),
    figure('plain JS sum of choice bytes', sum),
    { name: 'native tally (interleaved median)', value: median(rounds.map((r) => r.native)), unit: 'ballots/s' },
    { name: 'JS reference tally (interleaved median)', value: median(rounds.map((r) => r.ref)), unit: 'ballots/s' },
    {
      name: 'plain JS sum of choice bytes (interleaved median)',
      value: median(rounds.map((r) => r.sum)),
      unit: 'ballots/s',
      detail: { perRound: rounds.map((r) => ({ native: Math.round(r.native), ref: Math.round(r.ref), sum: Math.round(r.sum) })) },
    },
  ],
  [
    byRatio('native vs JS reference (median of per-round ratios)', ratioRef, 10),
    byRatio('native vs plain streaming sum (median of per-round ratios)', ratioSum, 0.25),
    target('native vs JS reference (benny)', native.perSecond, ref.perSecond, 10),
    target('native vs plain streaming sum (benny)', native.perSecond, sum.perSecond, 0.25),
  ],
  [
    `${BALLOTS} ballots per call, electorate ${options.electorate}, threshold ${options.threshold}, window ${options.window}; fresh tally per call`,
    `load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    `sink ${sink}`,
  ],
);
