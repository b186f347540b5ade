/**
 * Key journal durability throughput, on the same disk (the OS temp directory):
 * - one writer: native durable appends, one awaited at a time, against the floor the
 *   issue names, a raw loop of fs.writeSync + fs.fdatasyncSync into a preallocated file
 *   (the journal preallocates too, so neither sync has a file size to commit). That loop
 *   is synchronous: no framing, no thread hand-off, and the event loop blocked
 *   throughout. The journal is asynchronous: its write and fdatasync run on the libuv
 *   threadpool, so each append pays a round trip between threads (hand-off to a worker,
 *   completion back to the event loop) that the raw loop does not. Beside the floor: the
 *   same raw loop through an O_DSYNC descriptor (one write that syncs, the raw form of
 *   RWF_DSYNC); the journal's alternatives, measured in the same rounds: a thread of its
 *   own instead of the threadpool, pwritev2(RWF_DSYNC) instead of pwrite + fdatasync, and
 *   both (native/key_journal.cc, docs/key-journal.md); the raw loop through fs/promises
 *   (asynchronous, two threadpool round trips per record), what Node code would
 *   otherwise pay; the raw loop into a growing file, the floor without preallocation;
 * - 64 writers: 64 independent async loops each appending and awaiting, sharing
 *   fdatasync calls through group commit, vs the raw loop into a growing file.
 * Records are 64 bytes of payload (the journal adds its 8-byte header; the raw loops
 * write the 64 bytes alone). benny times the single-writer cases one after the other;
 * the targets come from interleaved timed rounds of all cases (see below), since benny
 * measures one function at a time, not 64 loops racing each other.
 */
import b from 'benny';
import { closeSync, constants, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { open as openHandle } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyJournal } from '../src/hotpath/key-journal.js';
import { median, target, writeResults } from './lib.js';
import type { Target } from './lib.js';

/** A target whose ratio is already computed (the median of per-round ratios). */
function ratioTarget(name: string, ratio: number, required: number): Target {
  return { name, ratio: Number(ratio.toFixed(3)), required, met: ratio >= required };
}

/** Share of the last minute some task waited for a CPU (Linux PSI), or 'n/a'. */
function cpuPressure(): string {
  try {
    const m = /avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? `${m[1]!}%` : 'n/a';
  } catch {
    return 'n/a';
  }
}

const cpusCount = availableParallelism();
const dir = mkdtempSync(join(tmpdir(), 'ptpvts-bench-journal-'));
const record = new Uint8Array(64).fill(0x5a);
const WRITERS = 64;

const PREALLOC = 64 << 20;
/**
 * A file of `PREALLOC` zero bytes, written and synced: later writes into it change no size.
 * `dsync`: the returned descriptor is reopened with O_DSYNC, so each write returns durable.
 */
function preallocated(name: string, dsync = false): number {
  const fd = openSync(join(dir, name), 'w+');
  const zeros = new Uint8Array(1 << 20);
  for (let off = 0; off < PREALLOC; off += zeros.length) writeSync(fd, zeros, 0, zeros.length, off);
  fdatasyncSync(fd);
  if (!dsync) return fd;
  closeSync(fd);
  return openSync(join(dir, name), constants.O_RDWR | constants.O_DSYNC);
}

const rawFd = openSync(join(dir, 'raw.bin'), 'w');
const bennyPreFd = preallocated('raw-prealloc-benny.bin');
let bennyPreOffset = 0;
const single = await KeyJournal.open(join(dir, 'single.journal'));

const summary = await b.suite(
  'journal',
  b.configure({ cases: { minTime: 2, maxTime: 4 } }),
  b.add('raw fs write + fdatasync', () => {
    writeSync(rawFd, record);
    fdatasyncSync(rawFd);
  }),
  b.add('raw write + fdatasync into a preallocated file', () => {
    writeSync(bennyPreFd, record, 0, record.length, bennyPreOffset);
    bennyPreOffset = (bennyPreOffset + record.length) % PREALLOC;
    fdatasyncSync(bennyPreFd);
  }),
  b.add('native journal, one writer', async () => {
    await single.append(record);
  }),
  b.cycle(),
);
closeSync(rawFd);
closeSync(bennyPreFd);
await single.close();

const ops = (name: string) => {
  const r = summary.results.find((x) => x.name === name);
  if (r === undefined) throw new Error(`missing result ${name}`);
  return r;
};
const raw = ops('raw fs write + fdatasync');
const rawPreBenny = ops('raw write + fdatasync into a preallocated file');
const one = ops('native journal, one writer');

// 64 writers, each a loop: append, await, repeat, for `ms` milliseconds.
async function concurrentRate(journal: KeyJournal, ms: number): Promise<number> {
  let done = 0;
  let stop = false;
  const writer = async () => {
    while (!stop) {
      await journal.append(record);
      done++;
    }
  };
  const t0 = performance.now();
  const loops = Array.from({ length: WRITERS }, writer);
  await new Promise((r) => setTimeout(r, ms));
  stop = true;
  const count = done;
  const elapsed = (performance.now() - t0) / 1000;
  await Promise.all(loops);
  return count / elapsed;
}

async function loopRate(ms: number, op: () => unknown): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) {
    await op();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

// The disk's sync latency drifts a lot on shared virtual machines, so the targets come
// from short interleaved rounds of every case, compared round by round, rather than from
// cases measured minutes apart; odd rounds run the cases in reverse order, so no case
// always follows the same neighbour (the 64 writers leave the disk busiest).
const ROUNDS = 15;
const ROUND_MS = 300;
const loadStart = loadavg()[0]!;
const pressureStart = cpuPressure();
const rawFd2 = openSync(join(dir, 'raw-rounds.bin'), 'w');
const oneJ = await KeyJournal.open(join(dir, 'one-rounds.journal'));
// The alternatives the defaults (libuv threadpool, pwrite + fdatasync) are weighed against.
const alternatives = {
  onePoolDsync: await KeyJournal.open(join(dir, 'one-pool-dsync.journal'), { native: { writer: 'threadpool', sync: 'dsync' } }),
  oneThreadFdatasync: await KeyJournal.open(join(dir, 'one-thread-fdatasync.journal'), { native: { writer: 'thread', sync: 'fdatasync' } }),
  oneThreadDsync: await KeyJournal.open(join(dir, 'one-thread-dsync.journal'), { native: { writer: 'thread', sync: 'dsync' } }),
  oneThreadSpin: await KeyJournal.open(join(dir, 'one-thread-spin.journal'), { native: { writer: 'thread', sync: 'fdatasync', poll: 'spin' } }),
};
const shared = await KeyJournal.open(join(dir, 'shared.journal'));
const rawAsync = await openHandle(join(dir, 'raw-async.bin'), 'w');
// The journal's own strategy applied to the raw loops (the floor the target is measured
// against): writes into zero-filled space leave the file size alone.
const rawPreFd = preallocated('raw-prealloc.bin');
let rawPreOffset = 0;
const rawPreDsyncFd = preallocated('raw-prealloc-dsync.bin', true);
let rawPreDsyncOffset = 0;
closeSync(preallocated('raw-prealloc-async.bin'));
const rawPreAsync = await openHandle(join(dir, 'raw-prealloc-async.bin'), 'r+');
let rawPreAsyncOffset = 0;
type Round = {
  raw: number;
  rawAsync: number;
  rawPre: number;
  rawPreDsync: number;
  rawPreAsync: number;
  one: number;
  onePoolDsync: number;
  oneThreadFdatasync: number;
  oneThreadDsync: number;
  oneThreadSpin: number;
  many: number;
};
const cases: [keyof Round, () => Promise<number>][] = [
  [
    'raw',
    () =>
      loopRate(ROUND_MS, () => {
        writeSync(rawFd2, record);
        fdatasyncSync(rawFd2);
      }),
  ],
  [
    'rawAsync',
    () =>
      loopRate(ROUND_MS, async () => {
        await rawAsync.write(record);
        await rawAsync.datasync();
      }),
  ],
  [
    'rawPre',
    () =>
      loopRate(ROUND_MS, () => {
        writeSync(rawPreFd, record, 0, record.length, rawPreOffset);
        rawPreOffset = (rawPreOffset + record.length) % PREALLOC;
        fdatasyncSync(rawPreFd);
      }),
  ],
  [
    'rawPreDsync',
    () =>
      loopRate(ROUND_MS, () => {
        writeSync(rawPreDsyncFd, record, 0, record.length, rawPreDsyncOffset);
        rawPreDsyncOffset = (rawPreDsyncOffset + record.length) % PREALLOC;
      }),
  ],
  [
    'rawPreAsync',
    () =>
      loopRate(ROUND_MS, async () => {
        const at = rawPreAsyncOffset;
        rawPreAsyncOffset = (rawPreAsyncOffset + record.length) % PREALLOC;
        await rawPreAsync.write(record, 0, record.length, at);
        await rawPreAsync.datasync();
      }),
  ],
  ['one', () => loopRate(ROUND_MS, () => oneJ.append(record))],
  ...Object.entries(alternatives).map(([name, j]): [keyof Round, () => Promise<number>] => [name as keyof Round, () => loopRate(ROUND_MS, () => j.append(record))]),
  ['many', () => concurrentRate(shared, ROUND_MS)],
];
const rounds: Round[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const round: Partial<Round> = {};
  for (const [name, run] of r % 2 === 0 ? cases : [...cases].reverse()) round[name] = await run();
  rounds.push(round as Round);
}
closeSync(rawFd2);
closeSync(rawPreFd);
closeSync(rawPreDsyncFd);
for (const j of Object.values(alternatives)) await j.close();
await rawAsync.close();
await rawPreAsync.close();
await oneJ.close();
const stats = shared.stats();
await shared.close();
rmSync(dir, { recursive: true, force: true });

const medRaw = median(rounds.map((r) => r.raw));
const medOne = median(rounds.map((r) => r.one));
const medRawAsync = median(rounds.map((r) => r.rawAsync));
const medRawPre = median(rounds.map((r) => r.rawPre));
const medRawPreAsync = median(rounds.map((r) => r.rawPreAsync));
const medRawPreDsync = median(rounds.map((r) => r.rawPreDsync));
const medAlt = (k: keyof typeof alternatives) => median(rounds.map((r) => r[k]));
// The target is read from quiet rounds only: a round whose synchronous floor ran below
// QUIET_SHARE of the run's best is one where other processes held the disk or the cores,
// and there the ratio measures the scheduler (the blocked loop then often loses to any
// asynchronous case by 2x or more), not the journal. Fewer than MIN_QUIET such rounds: the
// target is reported as not met, since it could not be measured.
const QUIET_SHARE = 0.7;
const MIN_QUIET = 5;
const bestRawPre = Math.max(...rounds.map((r) => r.rawPre));
const quiet = rounds.filter((r) => r.rawPre >= QUIET_SHARE * bestRawPre);
const measurable = quiet.length >= MIN_QUIET;
/** Median over the quiet rounds (all rounds when too few are quiet) of a case's ratio to the floor. */
const vsFloor = (k: keyof Round) => median((measurable ? quiet : rounds).map((r) => r[k] / r.rawPre));
const ratioOnePre = measurable ? median(quiet.map((r) => r.one / r.rawPre)) : median(rounds.map((r) => r.one / r.rawPre));
const ratioOnePreAsync = median(rounds.map((r) => r.one / r.rawPreAsync));
const ratioOneAsync = median(rounds.map((r) => r.one / r.rawAsync));
const medMany = median(rounds.map((r) => r.many));
const ratioOne = median(rounds.map((r) => r.one / r.raw));
const ratioMany = median(rounds.map((r) => r.many / r.raw));
const perRound = rounds.map((r) => ({
  raw: Math.round(r.raw),
  rawAsync: Math.round(r.rawAsync),
  rawPrealloc: Math.round(r.rawPre),
  rawPreallocDsync: Math.round(r.rawPreDsync),
  rawPreallocAsync: Math.round(r.rawPreAsync),
  one: Math.round(r.one),
  onePoolDsync: Math.round(r.onePoolDsync),
  oneThreadFdatasync: Math.round(r.oneThreadFdatasync),
  oneThreadDsync: Math.round(r.oneThreadDsync),
  oneThreadSpin: Math.round(r.oneThreadSpin),
  many: Math.round(r.many),
  quiet: r.rawPre >= QUIET_SHARE * bestRawPre,
}));

writeResults(
  'journal',
  [
    { name: 'raw fs write + fdatasync loop (benny)', value: raw.ops, unit: 'appends/s', detail: { marginPercent: raw.margin, samples: raw.samples } },
    { name: 'raw write + fdatasync into a preallocated file (benny)', value: rawPreBenny.ops, unit: 'appends/s', detail: { marginPercent: rawPreBenny.margin, samples: rawPreBenny.samples } },
    { name: 'native journal, one writer (benny)', value: one.ops, unit: 'appends/s', detail: { marginPercent: one.margin, samples: one.samples } },
    { name: 'raw fs write + fdatasync loop (interleaved median)', value: medRaw, unit: 'appends/s', detail: { perRound } },
    { name: 'raw fs/promises write + datasync loop (interleaved median)', value: medRawAsync, unit: 'appends/s' },
    { name: 'raw write + fdatasync into a preallocated file (interleaved median)', value: medRawPre, unit: 'appends/s' },
    { name: 'raw write through an O_DSYNC descriptor into a preallocated file (interleaved median)', value: medRawPreDsync, unit: 'appends/s' },
    { name: 'raw fs/promises write + datasync into a preallocated file (interleaved median)', value: medRawPreAsync, unit: 'appends/s' },
    { name: 'native journal, one writer (interleaved median)', value: medOne, unit: 'appends/s' },
    { name: 'native journal, one writer, libuv threadpool + RWF_DSYNC (interleaved median)', value: medAlt('onePoolDsync'), unit: 'appends/s' },
    { name: 'native journal, one writer, own thread + pwrite + fdatasync (interleaved median)', value: medAlt('oneThreadFdatasync'), unit: 'appends/s' },
    { name: 'native journal, one writer, own thread + RWF_DSYNC (interleaved median)', value: medAlt('oneThreadDsync'), unit: 'appends/s' },
    { name: 'native journal, one writer, own thread polling (spin) + pwrite + fdatasync (interleaved median)', value: medAlt('oneThreadSpin'), unit: 'appends/s' },
    {
      name: `native journal, ${WRITERS} concurrent writers (interleaved median)`,
      value: medMany,
      unit: 'appends/s',
      detail: { meanRecordsPerFdatasync: Number((stats.appends / stats.syncs).toFixed(1)) },
    },
  ],
  [
    {
      ...ratioTarget(
        measurable
          ? `one writer vs raw write + fdatasync loop into a preallocated file (median of per-round ratios, ${String(quiet.length)} quiet rounds of ${String(ROUNDS)})`
          : `one writer vs raw write + fdatasync loop into a preallocated file (median of all rounds; only ${String(quiet.length)} quiet, not measurable)`,
        ratioOnePre,
        0.95,
      ),
      ...(measurable ? {} : { met: false }),
    },
    ratioTarget('one writer vs raw loop into a growing file (median of per-round ratios)', ratioOne, 0.9),
    ratioTarget('raw O_DSYNC loop vs the floor (same rounds; informational)', vsFloor('rawPreDsync'), 0.95),
    ratioTarget('one writer, libuv threadpool + RWF_DSYNC, vs the floor (alternative; informational)', vsFloor('onePoolDsync'), 0.95),
    ratioTarget('one writer, own thread + pwrite + fdatasync, vs the floor (alternative; informational)', vsFloor('oneThreadFdatasync'), 0.95),
    ratioTarget('one writer, own thread + RWF_DSYNC, vs the floor (alternative; informational)', vsFloor('oneThreadDsync'), 0.95),
    ratioTarget('one writer, own thread polling (spin) + pwrite + fdatasync, vs the floor (alternative; informational)', vsFloor('oneThreadSpin'), 0.95),
    ratioTarget(`${WRITERS} writers vs raw loop into a growing file (median of per-round ratios)`, ratioMany, 20),
    ratioTarget('one writer vs fs/promises loop into a preallocated file (asynchronous both sides; informational)', ratioOnePreAsync, 0.95),
    ratioTarget('one writer vs fs/promises loop into a growing file (informational)', ratioOneAsync, 0.9),
    target('one writer vs raw loop into a preallocated file (benny, cases run one after the other; informational)', one.ops, rawPreBenny.ops, 0.95),
  ],
  [
    `64-byte records, files in ${tmpdir()}; every acknowledged append is fdatasync'd`,
    `${ROUNDS} interleaved rounds of ${ROUND_MS} ms per case, every other round in reverse order`,
    'the raw loops run synchronously on the main thread (event loop blocked); the journal runs write + fdatasync on the libuv threadpool and pays one round trip between threads per append (the alternatives: a thread of its own, RWF_DSYNC, both)',
    `quiet rounds: the synchronous preallocated loop at >= ${String(QUIET_SHARE)} of its best round (${String(Math.round(bestRawPre))} appends/s); ${String(quiet.length)} of ${String(ROUNDS)}`,
    `load average ${loadStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end; CPU pressure (some, avg60) ${pressureStart} at the start, ${cpuPressure()} at the end, on ${String(cpusCount)} cores: hand-offs cost more when the cores are busy, the synchronous loop has none`,
  ],
);
