/**
 * iSCSI over loopback, ptpvts's target against tgtd with the same client (ptpvts's
 * initiator, same session options) in the same run:
 *
 * - TEST UNIT READY commands/s at queue depth 1 and 16 (one measured call = 256 commands
 *   kept 16 in flight);
 * - 256 KiB WRITE(6) and READ(6) MB/s to a loaded tape LUN (one measured call = REWIND,
 *   128 blocks kept STREAM_DEPTH in flight, and for writes WRITE FILEMARKS(1): 32 MiB),
 *   every block different and every read checked to be the block written at its place;
 * - a raw fs write of the same bytes to the same disk, made durable once per call as our
 *   target makes a cartridge durable at the filemark.
 *
 * Cartridge files of both targets sit on the project's disk (bench/results/.iscsi-*).
 * Every suite runs ISCSI_BENCH_ROUNDS times (3), the targets' order alternating; figures are
 * medians. Run under `taskset -c 0` the client and both targets share one CPU, and the
 * results go to bench/results/iscsi-one-cpu.json.
 */
import b from 'benny';
import { execFileSync } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import * as Cdb from '../src/scsi/cdb.js';
import { ScsiStatus } from '../src/scsi/status.js';
import { IscsiSession } from '../src/iscsi/session.js';
import { IscsiPort } from '../src/transport/iscsi/iscsi-port.js';
import { MediaChanger } from '../src/devices/media-changer.js';
import { startTgtd, tgtdUnavailable } from '../test/hil/lib/tgtd.js';
import { median, serial, startSimServe, target, writeResults, type Figure, type Target, BENCH_DRIVE_LIBRARY_YAML } from './lib.js';

const CHUNK = 256 * 1024;
const CHUNKS = 128;
const STREAM = CHUNK * CHUNKS;
const TURS_PER_CALL = 256;
/** Tape WRITE(6)/READ(6) commands kept in flight (the same for both targets). ISCSI_BENCH_STREAM_DEPTH overrides. */
const STREAM_DEPTH = Number(process.env.ISCSI_BENCH_STREAM_DEPTH ?? 8);
const INITIATOR = 'iqn.2026-11.io.ptpvts:bench';
/**
 * Rounds of every suite, the targets' order alternating from round to round; each figure is
 * the median over rounds. On a shared two-core machine one pass puts each target in a
 * different few seconds of background load; ISCSI_BENCH_ROUNDS overrides.
 */
const ROUNDS = Math.max(1, Number(process.env.ISCSI_BENCH_ROUNDS ?? 3));
/** The CPUs this process (and every target it starts) may run on: `taskset -c 0 npm run bench -- iscsi` puts client and targets on one CPU. */
function cpusAllowed(): string {
  try {
    return /Cpus_allowed_list:\s*(\S+)/u.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const dir = mkdtempSync(join(process.cwd(), 'bench', 'results', '.iscsi-'));
const chunk = Buffer.alloc(CHUNK);
for (let i = 0; i < CHUNK; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
/** Block i of a stream: the pattern with i in its first 4 bytes, so order shows on read-back. */
const blocks = Array.from({ length: CHUNKS }, (_, i) => {
  const b = Buffer.from(chunk);
  b.writeUInt32BE(i, 0);
  return b;
});
const writes = blocks.map((b) => Cdb.write6(b));
const read6 = Cdb.read6({ length: CHUNK });
const tur = Cdb.testUnitReady();

async function must(p: Promise<{ status: number; data?: Uint8Array; sense?: Uint8Array }>, length?: number): Promise<void> {
  const r = await p;
  if (r.status !== ScsiStatus.GOOD) throw new Error(`command failed with status 0x${r.status.toString(16)}${r.sense?.length ? `, sense ${Buffer.from(r.sense).toString('hex')}` : ''}`);
  if (length !== undefined && r.data?.length !== length) throw new Error(`read ${r.data?.length} bytes, expected ${length}`);
}

function negotiated(s: IscsiSession): string {
  const p = s.params;
  const k = (n: number): string => `${n / 1024} KiB`;
  return `MaxRecvDataSegmentLength ${k(p.targetMaxRecvDataSegmentLength)} (target) / ${k(p.initiatorMaxRecvDataSegmentLength)} (initiator), FirstBurstLength ${k(p.firstBurstLength)}, MaxBurstLength ${k(p.maxBurstLength)}, ImmediateData ${p.immediateData ? 'Yes' : 'No'}, InitialR2T ${p.initialR2T ? 'Yes' : 'No'}`;
}

interface Subject {
  name: string;
  port: IscsiPort;
  /** What the session negotiated with this target. */
  negotiated: string;
  close(): Promise<void>;
}

// ------------------------------------------------------------------ ptpvts target

/** `ptpvts sim serve` in a process of its own ({@link startSimServe}). */
async function ptpvtsSubject(): Promise<Subject> {
  const yaml = join(dir, 'library.yaml');
  writeFileSync(yaml, BENCH_DRIVE_LIBRARY_YAML);
  // ISCSI_BENCH_TARGET_NODE_ARGS: extra Node options for the target process (e.g. --cpu-prof).
  const sim = await startSimServe(yaml, (process.env.ISCSI_BENCH_TARGET_NODE_ARGS ?? '').split(/\s+/u).filter(Boolean));
  const session = await IscsiSession.open({ host: sim.host, port: sim.port, initiatorName: INITIATOR, targetName: sim.iqn, queueDepth: 16 }).catch(async (e: unknown) => {
    await sim.stop().catch(() => undefined);
    throw e;
  });
  const port = new IscsiPort(session, 1);
  await port.execute(Cdb.requestSense());
  return {
    name: 'ptpvts',
    port,
    negotiated: negotiated(session),
    async close() {
      await session.close();
      await sim.stop();
    },
  };
}

// ------------------------------------------------------------------ tgtd

async function tgtdSubject(): Promise<Subject> {
  const lib = await startTgtd({ drives: 1, barcodes: ['BEN001L8'], tapeMB: 2048, parentDir: dir });
  const session = await IscsiSession.open({ host: lib.host, port: lib.port, initiatorName: INITIATOR, targetName: lib.iqn, queueDepth: 16 }).catch(async (e: unknown) => {
    await lib.stop().catch(() => undefined);
    throw e;
  });
  try {
    const changer = new MediaChanger(new IscsiPort(session, lib.changerLun));
    await changer.testUnitReady().catch(() => undefined);
    await changer.move(lib.elements.slots[0]!, lib.elements.drives[0]!);
    const port = new IscsiPort(session, lib.driveLuns[0]!);
    await port.execute(Cdb.requestSense());
    await port.execute(tur);
    return {
      name: 'tgtd',
      port,
      negotiated: negotiated(session),
      async close() {
        await session.close();
        await lib.stop();
      },
    };
  } catch (e) {
    await session.close();
    await lib.stop();
    throw e;
  }
}

// ------------------------------------------------------------------ workloads

async function turDepth16(port: IscsiPort): Promise<void> {
  let left = TURS_PER_CALL;
  const worker = async (): Promise<void> => {
    while (left-- > 0) await must(port.execute(tur));
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

/** Issues `n` commands in order, at most STREAM_DEPTH in flight; `check(i, r)` sees each answer. */
async function pipeline(n: number, issue: (i: number) => ReturnType<IscsiPort['execute']>, check: (i: number, r: Awaited<ReturnType<IscsiPort['execute']>>) => void): Promise<void> {
  const inFlight: Array<Promise<void>> = [];
  for (let i = 0; i < n; i++) {
    inFlight.push(issue(i).then((r) => check(i, r)));
    if (inFlight.length >= STREAM_DEPTH) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

function good(r: { status: number; sense?: Uint8Array }, what: string): void {
  if (r.status !== ScsiStatus.GOOD) throw new Error(`${what} failed with status 0x${r.status.toString(16)}${r.sense?.length ? `, sense ${Buffer.from(r.sense).toString('hex')}` : ''}`);
}

async function writeStream(port: IscsiPort): Promise<void> {
  await must(port.execute(Cdb.rewind()));
  await pipeline(CHUNKS, (i) => port.execute(writes[i]!), (i, r) => good(r, `${port.address}: WRITE ${i}`));
  await must(port.execute(Cdb.writeFilemarks6(1)));
}

/** `full`: compare every byte with what was written (else the block number and length). */
async function readStream(port: IscsiPort, full = false): Promise<void> {
  await must(port.execute(Cdb.rewind()));
  await pipeline(
    CHUNKS,
    () => port.execute(read6),
    (i, r) => {
      good(r, `${port.address}: READ ${i}`);
      const d = r.data;
      if (d?.length !== CHUNK) throw new Error(`${port.address}: READ ${i}: ${d?.length} bytes, expected ${CHUNK}`);
      const same = full ? Buffer.from(d.buffer, d.byteOffset, d.length).equals(blocks[i]!) : Buffer.from(d.buffer, d.byteOffset, 4).readUInt32BE(0) === i;
      if (!same) throw new Error(`${port.address}: READ ${i} does not return block ${i} as written (pipelined commands out of order?)`);
    },
  );
}

const rawPath = join(dir, 'raw.bin');
function rawStream(): void {
  const fd = openSync(rawPath, 'w');
  try {
    for (let i = 0; i < CHUNKS; i++) writeSync(fd, blocks[i]!);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// ------------------------------------------------------------------ run

const subjects: Subject[] = [];
try {
  subjects.push(await ptpvtsSubject());
  const why = tgtdUnavailable();
  if (!why) subjects.push(await tgtdSubject());
  const notes: string[] = [
    "same client for both targets: ptpvts's initiator, queue depth 16, no digests, each target's own default negotiation",
    ...subjects.map((s) => `negotiated with ${s.name}: ${s.negotiated}`),
    'each target runs in a process of its own: tgtd, and `ptpvts sim serve` (node --import tsx)',
    `every suite ran ${ROUNDS} times, the two targets' order alternating between rounds; each figure is the median over rounds (per-round values in detail)`,
    `CPUs allowed to the client and both targets: ${cpusAllowed()} (with two CPUs, whether the scheduler puts client and target on the same one moves TEST UNIT READY at queue depth 1 by 2-4x for both targets; \`taskset -c 0 npm run bench -- iscsi\` pins all three to one CPU and measures the software path alone)`,
  `load average when the run started: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (figures on a shared machine move by ±30% between runs)`,
    `tape streams: REWIND, ${CHUNKS} x ${CHUNK}-byte variable blocks (and WRITE FILEMARKS(1) for writes) per call, ${STREAM_DEPTH} WRITE(6)/READ(6) in flight (same for both targets; the drives report buffered mode 1), cartridge files on ${dir}`,
    'every stream is read back and compared byte for byte with what was written before timing starts (both targets); timed reads check each block number',
    'durability: the ptpvts drive makes the cartridge durable at the filemark ending each write call (fdatasync); tgtd never syncs tape writes (they stay in the page cache); the raw write calls fdatasync once per call',
  ];
  if (why) notes.push(`tgtd comparison not run: ${why}`);

  // Every path works (and the cartridges hold a full stream) before anything is timed.
  for (const s of subjects) {
    await writeStream(s.port);
    await readStream(s.port, true);
  }
  rawStream();

  const cases = subjects.flatMap((s) => [
    { suite: 'tur1', name: `${s.name}: TEST UNIT READY, queue depth 1`, fn: serial(() => must(s.port.execute(tur))) },
    { suite: 'tur16', name: `${s.name}: ${TURS_PER_CALL} TEST UNIT READY, queue depth 16`, fn: serial(() => turDepth16(s.port)) },
    { suite: 'write', name: `${s.name}: ${CHUNKS} x 256 KiB WRITE(6) + filemark`, fn: serial(() => writeStream(s.port)) },
    { suite: 'read', name: `${s.name}: ${CHUNKS} x 256 KiB READ(6)`, fn: serial(() => readStream(s.port)) },
  ]);
  const perRound = new Map<string, { ops: number; margin: number; samples: number }[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const suite of ['tur1', 'tur16', 'write', 'read']) {
      // Dirty pages left by the previous suite are written back first, not during the next.
      execFileSync('sync');
      const mine = cases.filter((c) => c.suite === suite);
      if (round % 2 === 1) mine.reverse();
      const extra = suite === 'write' ? [b.add('raw fs write of the same bytes + fdatasync', () => rawStream())] : [];
      const summary = await b.suite(`iscsi-${suite} round ${round + 1} of ${ROUNDS}`, ...mine.map((c) => b.add(c.name, async () => c.fn())), ...extra, b.cycle());
      // benny's summary rounds ops/s to a few distinct digits (about 7% steps for a 32 MiB
      // stream); the mean time per call gives the unrounded rate.
      for (const r of summary.results) {
        const list = perRound.get(r.name) ?? [];
        list.push({ ops: r.details.mean > 0 ? 1 / r.details.mean : r.ops, margin: r.margin, samples: r.samples });
        perRound.set(r.name, list);
      }
    }
  }
  const ops = new Map<string, { ops: number; margin: number; samples: number; rounds: number[] }>();
  for (const [name, list] of perRound) {
    ops.set(name, { ops: median(list.map((x) => x.ops)), margin: Math.max(...list.map((x) => x.margin)), samples: list.reduce((a, x) => a + x.samples, 0), rounds: list.map((x) => x.ops) });
  }

  const get = (name: string) => {
    const r = ops.get(name);
    if (!r) throw new Error(`missing result ${name}`);
    return r;
  };
  const mb = (o: number): number => (o * STREAM) / 1e6;
  const figures: Figure[] = [];
  const value = new Map<string, number>();
  for (const s of subjects) {
    const t1 = get(`${s.name}: TEST UNIT READY, queue depth 1`);
    const t16 = get(`${s.name}: ${TURS_PER_CALL} TEST UNIT READY, queue depth 16`);
    const w = get(`${s.name}: ${CHUNKS} x 256 KiB WRITE(6) + filemark`);
    const r = get(`${s.name}: ${CHUNKS} x 256 KiB READ(6)`);
    const add = (key: string, f: Figure): void => {
      figures.push(f);
      value.set(`${s.name}:${key}`, f.value);
    };
    add('tur1', { name: `${s.name}: TEST UNIT READY, queue depth 1`, value: t1.ops, unit: 'commands/s', detail: { statistic: `median of ${ROUNDS} rounds`, rounds: t1.rounds.map(Math.round), marginPercent: t1.margin, samples: t1.samples } });
    add('tur16', { name: `${s.name}: TEST UNIT READY, queue depth 16`, value: t16.ops * TURS_PER_CALL, unit: 'commands/s', detail: { statistic: `median of ${ROUNDS} rounds`, rounds: t16.rounds.map((x) => Math.round(x * TURS_PER_CALL)), marginPercent: t16.margin, samples: t16.samples, commandsPerCall: TURS_PER_CALL } });
    add('write', {
      name: `${s.name}: 256 KiB WRITE(6) to a tape LUN`,
      value: mb(w.ops),
      unit: 'MB/s',
      detail: { statistic: `median of ${ROUNDS} rounds`, roundsMBps: w.rounds.map((x) => Math.round(mb(x))), marginPercent: w.margin, samples: w.samples, bytesPerCall: STREAM, synced: s.name === 'ptpvts' ? 'fdatasync at the filemark ending each call' : 'never (tgtd does not sync tape writes)' },
    });
    add('read', { name: `${s.name}: 256 KiB READ(6) from a tape LUN`, value: mb(r.ops), unit: 'MB/s', detail: { statistic: `median of ${ROUNDS} rounds`, roundsMBps: r.rounds.map((x) => Math.round(mb(x))), marginPercent: r.margin, samples: r.samples, bytesPerCall: STREAM } });
  }
  const raw = get('raw fs write of the same bytes + fdatasync');
  figures.push({ name: 'raw fs write of the same bytes', value: mb(raw.ops), unit: 'MB/s', detail: { statistic: `median of ${ROUNDS} rounds`, roundsMBps: raw.rounds.map((x) => Math.round(mb(x))), marginPercent: raw.margin, samples: raw.samples, bytesPerCall: STREAM, synced: 'fdatasync once per call' } });

  const targets: Target[] = [];
  if (subjects.some((s) => s.name === 'tgtd')) {
    for (const [key, label] of [
      ['tur1', 'TEST UNIT READY queue depth 1'],
      ['tur16', 'TEST UNIT READY queue depth 16'],
      ['write', '256 KiB WRITE(6)'],
      ['read', '256 KiB READ(6)'],
    ] as const) {
      targets.push(target(`ptpvts vs tgtd, ${label}`, value.get(`ptpvts:${key}`)!, value.get(`tgtd:${key}`)!, 1.0));
    }
  }
  targets.push(target('ptpvts WRITE(6) over iSCSI vs raw write', value.get('ptpvts:write')!, mb(raw.ops), 0.8));
  // Pinned to one CPU (taskset -c N) the results go to a file of their own, beside the usual run.
  writeResults(/^\d+$/u.test(cpusAllowed()) ? 'iscsi-one-cpu' : 'iscsi', figures, targets, notes);
} finally {
  for (const s of subjects) await s.close().catch((e: unknown) => console.error(`closing ${s.name}: ${String(e)}`));
  rmSync(dir, { recursive: true, force: true });
}
