/**
 * Several tape drives streaming at once over iSCSI: the aggregate rate of `ptpvts sim serve`
 * with a library of N drives against tgtd with N tape LUNs (bs type ssc), the same client
 * (ptpvts's initiator) for both, and against N raw writers of the same bytes, in the same run.
 *
 * One measured call, for N in {2, 4} (ISCSI_DRIVES_BENCH_DRIVES): every drive at once does
 * REWIND, 128 x 256 KiB WRITE(6) with STREAM_DEPTH in flight and WRITE FILEMARKS(1); the
 * aggregate MB/s is N x 32 MiB over the wall time from the first command to the last
 * filemark's answer. Every block is different (its block number and drive number stamped in
 * its first 8 bytes), and every drive of every target is read back byte for byte before
 * timing and again after the last round, so a target that drops or mixes data cannot win.
 *
 * One iSCSI session per drive, each with its own TCP connection: a backup server drives each
 * tape drive through its own st device, and open-iscsi gives each target portal its own
 * session; it also lets both targets spread drives over their connections' own paths (tgtd's
 * per-LUN backing-store threads, ptpvts's per-connection reads) instead of serialising them
 * on one socket.
 *
 * The raw writers are N worker threads, each writing its drive's bytes to a file of its own
 * with writeSync (ftruncate to 0 first, as the emulator reallocates a cartridge rewritten
 * from BOT) and fdatasync at the filemark; measured on this machine they beat fs.promises on
 * the libuv pool (one request per block) by 20-30% at 2 writers.
 *
 * All files sit on the project's disk (bench/results/.iscsi-drives-*). Rounds alternate the
 * targets' order (ISCSI_DRIVES_BENCH_ROUNDS, 3); figures are medians, with the per-round
 * values, the load average at each round and each process's CPU use during its case.
 */
import b from 'benny';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as Cdb from '../src/scsi/cdb.js';
import { ScsiStatus } from '../src/scsi/status.js';
import { IscsiSession } from '../src/iscsi/session.js';
import { IscsiPort } from '../src/transport/iscsi/iscsi-port.js';
import { MediaChanger } from '../src/devices/media-changer.js';
import { startTgtd, tgtdUnavailable } from '../test/hil/lib/tgtd.js';
import { benchBarcode, benchLibraryYaml, median, resultsDir, serial, startSimServe, target, writeResults, type Figure, type Target } from './lib.js';

const CHUNK = 256 * 1024;
const CHUNKS = 128;
const STREAM = CHUNK * CHUNKS;
/** WRITE(6) commands kept in flight per drive (as bench/iscsi.bench.ts). ISCSI_DRIVES_BENCH_STREAM_DEPTH overrides. */
const STREAM_DEPTH = Number(process.env.ISCSI_DRIVES_BENCH_STREAM_DEPTH ?? 8);
const INITIATOR = 'iqn.2026-11.io.ptpvts:bench-drives';
/** Rounds, the targets' order alternating; each figure is the median over rounds. */
const ROUNDS = Math.max(1, Number(process.env.ISCSI_DRIVES_BENCH_ROUNDS ?? 3));
/** Drive counts measured (`1,2,4` adds the single-drive point for a scaling comparison). */
const COUNTS = (process.env.ISCSI_DRIVES_BENCH_DRIVES ?? '2,4').split(',').map((s) => Number(s.trim()));
for (const n of COUNTS) if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`ISCSI_DRIVES_BENCH_DRIVES: ${n} is not a drive count from 1 to 8`);
const MAX_DRIVES = Math.max(...COUNTS);
/** Extra Node options for the `sim serve` processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
const TARGET_NODE_ARGS = (process.env.ISCSI_DRIVES_BENCH_TARGET_NODE_ARGS ?? '').split(/\s+/u).filter(Boolean);
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const dir = mkdtempSync(join(resultsDir, '.iscsi-drives-'));

/**
 * Drive d's stream: block i is a pattern with i in bytes 0-3 and d in bytes 4-7. Each
 * stream lies in one SharedArrayBuffer so the raw writer threads write these very bytes.
 */
const streams = Array.from({ length: MAX_DRIVES }, (_, d) => {
  const buf = Buffer.from(new SharedArrayBuffer(STREAM));
  for (let i = 0; i < STREAM; i += 4) buf.writeUInt32LE(((i % CHUNK) * 2654435761 + d * 40503) >>> 0, i);
  for (let i = 0; i < CHUNKS; i++) {
    buf.writeUInt32BE(i, i * CHUNK);
    buf.writeUInt32BE(d, i * CHUNK + 4);
  }
  return buf;
});
/** Block i of drive d, in an ordinary (not shared) buffer as a client's write would be. */
const blocks = streams.map((s) => Array.from({ length: CHUNKS }, (_, i) => Buffer.from(s.subarray(i * CHUNK, (i + 1) * CHUNK))));
const writes = blocks.map((bs) => bs.map((blk) => Cdb.write6(blk)));
const read6 = Cdb.read6({ length: CHUNK });

type Answer = Awaited<ReturnType<IscsiPort['execute']>>;

function describe(r: Answer): string {
  return `status 0x${r.status.toString(16)}${r.sense?.length ? `, sense ${Buffer.from(r.sense).toString('hex')}` : ''}`;
}

/** Throws on anything but GOOD: a CHECK CONDITION ends the run, never a figure. */
function good(r: Answer, what: string): void {
  if (r.status !== ScsiStatus.GOOD) throw new Error(`${what} failed with ${describe(r)}`);
}

/** Takes the unit attentions a new I_T nexus (and a cartridge move) leaves, then insists on GOOD. */
async function settle(port: IscsiPort): Promise<void> {
  let last: Answer | undefined;
  for (let i = 0; i < 8; i++) {
    last = await port.execute(Cdb.testUnitReady());
    if (last.status === ScsiStatus.GOOD) return;
    await port.execute(Cdb.requestSense());
  }
  throw new Error(`${port.address}: TEST UNIT READY still answers ${describe(last!)}`);
}

/**
 * Issues `n` commands in order, at most STREAM_DEPTH in flight; `check(i, r)` sees each
 * answer. After the first failure no command is issued, and it is thrown once every command
 * in flight has settled: nothing is left running against a session about to be closed.
 */
async function pipeline(n: number, issue: (i: number) => Promise<Answer>, check: (i: number, r: Answer) => void): Promise<void> {
  const inFlight: Array<Promise<void>> = [];
  let failure: { error: unknown } | undefined;
  for (let i = 0; i < n && !failure; i++) {
    inFlight.push(
      issue(i)
        .then((r) => check(i, r))
        .catch((error: unknown) => {
          failure ??= { error };
        }),
    );
    if (inFlight.length >= STREAM_DEPTH) await inFlight.shift();
  }
  await Promise.all(inFlight);
  if (failure) throw failure.error;
}

/** Runs `fn` on every drive at once; throws the first failure once every drive has settled. */
async function everyDrive(ports: readonly IscsiPort[], fn: (port: IscsiPort, d: number) => Promise<void>): Promise<void> {
  const settled = await Promise.allSettled(ports.map((p, d) => fn(p, d)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function writeStream(port: IscsiPort, d: number): Promise<void> {
  good(await port.execute(Cdb.rewind()), `${port.address}: REWIND`);
  await pipeline(CHUNKS, (i) => port.execute(writes[d]![i]!), (i, r) => good(r, `${port.address}: WRITE ${i}`));
  good(await port.execute(Cdb.writeFilemarks6(1)), `${port.address}: WRITE FILEMARKS`);
}

/** Reads drive d's stream back and compares every byte with what was written. */
async function verifyStream(port: IscsiPort, d: number): Promise<void> {
  good(await port.execute(Cdb.rewind()), `${port.address}: REWIND`);
  await pipeline(
    CHUNKS,
    () => port.execute(read6),
    (i, r) => {
      good(r, `${port.address}: READ ${i}`);
      const data = r.data;
      if (data?.length !== CHUNK) throw new Error(`${port.address}: READ ${i}: ${data?.length} bytes, expected ${CHUNK}`);
      if (!Buffer.from(data.buffer, data.byteOffset, data.length).equals(blocks[d]![i]!)) {
        const got = Buffer.from(data.buffer, data.byteOffset, 8);
        throw new Error(`${port.address}: READ ${i} is not block ${i} of drive ${d + 1} as written (it starts with block ${got.readUInt32BE(0)} of drive ${got.readUInt32BE(4) + 1})`);
      }
    },
  );
}

/** CPU seconds (user + system, all threads) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: state is field 3, utime 14 and stime 15 (proc(5)).
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function negotiated(s: IscsiSession): string {
  const p = s.params;
  const k = (n: number): string => `${n / 1024} KiB`;
  return `MaxRecvDataSegmentLength ${k(p.targetMaxRecvDataSegmentLength)} (target) / ${k(p.initiatorMaxRecvDataSegmentLength)} (initiator), FirstBurstLength ${k(p.firstBurstLength)}, MaxBurstLength ${k(p.maxBurstLength)}, ImmediateData ${p.immediateData ? 'Yes' : 'No'}, InitialR2T ${p.initialR2T ? 'Yes' : 'No'}`;
}

interface Subject {
  /** `ptpvts`, `tgtd` or `raw`. */
  kind: string;
  drives: number;
  /** The process doing the target's work (for CPU accounting), none for the raw writers (this process). */
  pid?: number;
  negotiated?: string;
  /** One measured call: every drive's stream at once. */
  write(): Promise<void>;
  /** Reads every drive back and compares it with what was written. */
  verify(): Promise<void>;
  close(): Promise<void>;
}

/** One session per drive, on LUNs `luns`; closes what it opened when a login fails. */
async function openDriveSessions(host: string, port: number, iqn: string, luns: readonly number[]): Promise<{ sessions: IscsiSession[]; ports: IscsiPort[] }> {
  const sessions: IscsiSession[] = [];
  try {
    for (const _ of luns) sessions.push(await IscsiSession.open({ host, port, initiatorName: INITIATOR, targetName: iqn, queueDepth: 16 }));
    const ports = luns.map((lun, i) => new IscsiPort(sessions[i]!, lun));
    for (const p of ports) await settle(p);
    return { sessions, ports };
  } catch (e) {
    for (const s of sessions) await s.close().catch(() => undefined);
    throw e;
  }
}

function iscsiSubject(kind: string, drives: number, pid: number, sessions: IscsiSession[], ports: IscsiPort[], stop: () => Promise<void>): Subject {
  return {
    kind,
    drives,
    pid,
    negotiated: negotiated(sessions[0]!),
    write: () => everyDrive(ports, writeStream),
    verify: () => everyDrive(ports, verifyStream),
    async close() {
      for (const s of sessions) await s.close().catch(() => undefined);
      await stop();
    },
  };
}

/** `ptpvts sim serve` with a library of `n` drives, drive k holding cartridge k, in its own process. */
async function ptpvtsSubject(n: number): Promise<Subject> {
  const libDir = mkdtempSync(join(dir, `ptpvts-${n}-`));
  const yaml = join(libDir, 'library.yaml');
  writeFileSync(yaml, benchLibraryYaml(n, '4GiB'));
  const sim = await startSimServe(yaml, TARGET_NODE_ARGS);
  try {
    // The changer is LUN 0, drive k is LUN k.
    const { sessions, ports } = await openDriveSessions(sim.host, sim.port, sim.iqn, Array.from({ length: n }, (_, i) => i + 1));
    return iscsiSubject('ptpvts', n, sim.pid, sessions, ports, () => sim.stop());
  } catch (e) {
    await sim.stop().catch(() => undefined);
    throw e;
  }
}

/** tgtd with `n` tape LUNs (ssc backing store, files on the project's disk), a cartridge moved into each. */
async function tgtdSubject(n: number): Promise<Subject> {
  const barcodes = Array.from({ length: n }, (_, i) => benchBarcode(i + 1));
  const lib = await startTgtd({ drives: n, barcodes, tapeMB: 2048, parentDir: dir, iqn: `iqn.2026-11.org.ptpvts:tgtd-${n}` });
  try {
    const control = await IscsiSession.open({ host: lib.host, port: lib.port, initiatorName: INITIATOR, targetName: lib.iqn, queueDepth: 16 });
    try {
      const changer = new MediaChanger(new IscsiPort(control, lib.changerLun));
      await changer.testUnitReady().catch(() => undefined);
      for (let d = 0; d < n; d++) await changer.move(lib.elements.slots[d]!, lib.elements.drives[d]!);
    } finally {
      await control.close();
    }
    const { sessions, ports } = await openDriveSessions(lib.host, lib.port, lib.iqn, lib.driveLuns);
    return iscsiSubject('tgtd', n, lib.pid, sessions, ports, () => lib.stop());
  } catch (e) {
    await lib.stop().catch(() => undefined);
    throw e;
  }
}

/**
 * A raw writer thread: on each message, ftruncate its file to 0, write the blocks in order
 * with writeSync, fdatasync, and answer. Plain JavaScript, evaluated as the worker's script.
 */
const RAW_WRITER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const fd = fs.openSync(workerData.path, 'w+');
const stream = Buffer.from(workerData.stream);
const chunk = workerData.chunk;
parentPort.on('message', (m) => {
  if (m === 'close') {
    fs.closeSync(fd);
    parentPort.close();
    return;
  }
  try {
    fs.ftruncateSync(fd, 0);
    for (let pos = 0; pos < stream.length; pos += chunk) {
      const n = fs.writeSync(fd, stream, pos, chunk, pos);
      if (n !== chunk) throw new Error('short write: ' + n + ' of ' + chunk + ' bytes at ' + pos);
    }
    fs.fdatasyncSync(fd);
    parentPort.postMessage({ ok: true });
  } catch (e) {
    parentPort.postMessage({ ok: false, error: String(e) });
  }
});
`;

function rawSubject(n: number): Subject {
  const paths = Array.from({ length: n }, (_, d) => join(dir, `raw-${n}-${d + 1}.bin`));
  const workers = paths.map((path, d) => new Worker(RAW_WRITER, { eval: true, workerData: { path, stream: streams[d]!.buffer, chunk: CHUNK } }));
  const once = (w: Worker, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(new Error(`${what}: ${e.message}`));
      w.once('error', onError);
      w.once('message', (m: { ok: boolean; error?: string }) => {
        w.off('error', onError);
        if (m.ok) resolve();
        else reject(new Error(`${what}: ${m.error}`));
      });
      w.postMessage('go');
    });
  return {
    kind: 'raw',
    drives: n,
    write: async () => {
      const settled = await Promise.allSettled(workers.map((w, d) => once(w, `raw writer ${d + 1} of ${n}`)));
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    verify: async () => {
      for (const [d, path] of paths.entries()) {
        if (!readFileSync(path).equals(streams[d]!)) throw new Error(`${path} does not hold drive ${d + 1}'s stream as written`);
      }
    },
    async close() {
      for (const w of workers) {
        const gone = new Promise((resolve) => w.once('exit', resolve));
        w.postMessage('close');
        await gone;
      }
    },
  };
}

// ------------------------------------------------------------------ run

const label = (s: Subject): string => (s.kind === 'raw' ? `raw: ${s.drives} concurrent writers (worker threads, write + fdatasync)` : `${s.kind}: ${s.drives} drives, 256 KiB WRITE(6) + filemark over iSCSI`);

const subjects: Subject[] = [];
try {
  const why = tgtdUnavailable();
  for (const n of COUNTS) {
    subjects.push(await ptpvtsSubject(n));
    if (!why) subjects.push(await tgtdSubject(n));
    subjects.push(rawSubject(n));
  }
  const startLoad = loadavg();

  // Every path works and holds every byte in place before anything is timed.
  for (const s of subjects) {
    await s.write();
    await s.verify();
  }

  interface Sample {
    mbps: number;
    margin: number;
    samples: number;
    /** CPU use of the target's process during the case, % of one CPU. */
    targetCpu?: number;
    /** CPU use of this process (the client, or the raw writers) during the case, % of one CPU. */
    clientCpu: number;
  }
  const perRound = new Map<Subject, Sample[]>();
  const roundLoads: string[] = [];
  let failure: unknown;
  for (let round = 0; round < ROUNDS; round++) {
    roundLoads.push(loadavg().map((l) => l.toFixed(2)).join(' '));
    for (const n of COUNTS) {
      const mine = subjects.filter((s) => s.drives === n);
      if (round % 2 === 1) mine.reverse();
      for (const s of mine) {
        // Dirty pages left by the previous case are written back first, not during this one.
        execFileSync('sync');
        // A failing call must not reject: benny starts one call it never awaits, and its
        // rejection would end the process before the targets are stopped. The first error is
        // kept (later calls do nothing) and thrown once the suite is over.
        const fn = serial(async () => {
          if (failure !== undefined) return;
          try {
            await s.write();
          } catch (e) {
            failure = e;
          }
        });
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        const target0 = s.pid === undefined ? 0 : cpuSeconds(s.pid);
        const summary = await b.suite(`iscsi-drives ${label(s)}, round ${round + 1} of ${ROUNDS}`, b.add(label(s), fn), b.cycle());
        const wall = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        if (failure !== undefined) throw new Error(`${label(s)}, round ${round + 1}: ${failure instanceof Error ? failure.message : String(failure)}`, { cause: failure });
        const r = summary.results[0];
        if (!r || !(r.details.mean > 0)) throw new Error(`${label(s)}: no timed calls`);
        const list = perRound.get(s) ?? [];
        list.push({
          // benny rounds ops/s to a few digits; the mean time per call gives the unrounded rate.
          mbps: (s.drives * STREAM) / r.details.mean / 1e6,
          margin: r.margin,
          samples: r.samples,
          targetCpu: s.pid === undefined ? undefined : Math.round(((cpuSeconds(s.pid) - target0) / wall) * 100),
          clientCpu: Math.round(((cpu.user + cpu.system) / 1e6 / wall) * 100),
        });
        perRound.set(s, list);
      }
    }
  }

  // After the last timed call, every drive still holds exactly its own stream.
  for (const s of subjects) await s.verify();

  const figures: Figure[] = [];
  const value = new Map<string, number>();
  for (const s of subjects) {
    const list = perRound.get(s)!;
    const v = median(list.map((x) => x.mbps));
    value.set(`${s.kind}:${s.drives}`, v);
    figures.push({
      name: s.kind === 'raw' ? `raw: ${s.drives} concurrent writers of the same bytes, aggregate` : `${s.kind}: ${s.drives} drive${s.drives === 1 ? '' : 's'}, 256 KiB WRITE(6), aggregate`,
      value: v,
      unit: 'MB/s',
      detail: {
        statistic: `median of ${ROUNDS} rounds`,
        roundsMBps: list.map((x) => Math.round(x.mbps)),
        marginPercent: Math.max(...list.map((x) => x.margin)),
        samples: list.reduce((a, x) => a + x.samples, 0),
        bytesPerCall: s.drives * STREAM,
        ...(s.pid === undefined ? {} : { targetCpuPercentOfOneCpu: list.map((x) => x.targetCpu) }),
        clientCpuPercentOfOneCpu: list.map((x) => x.clientCpu),
        synced: s.kind === 'tgtd' ? 'never (tgtd does not sync tape writes)' : s.kind === 'ptpvts' ? 'fdatasync at the filemark ending each drive\'s call' : 'fdatasync at the end of each writer\'s stream (its filemark)',
      },
    });
  }

  const targets: Target[] = [];
  for (const n of COUNTS) {
    if (!why) targets.push(target(`ptpvts vs tgtd, ${n} drives streaming 256 KiB WRITE(6), aggregate`, value.get(`ptpvts:${n}`)!, value.get(`tgtd:${n}`)!, 1.0));
    targets.push(target(`ptpvts vs ${n} raw writers of the same bytes, ${n} drives, aggregate`, value.get(`ptpvts:${n}`)!, value.get(`raw:${n}`)!, 0.8));
  }

  const notes = [
    "same client for both targets: ptpvts's initiator, one session (one TCP connection) per drive as a backup server opens one st device per drive, queue depth 16, no digests, each target's own default negotiation",
    ...[...new Set(subjects.filter((s) => s.negotiated).map((s) => `negotiated with ${s.kind}: ${s.negotiated}`))],
    'each target runs in a process of its own: tgtd (tape LUNs with the ssc backing store), and `ptpvts sim serve` (node --import tsx) with a library of as many LTO-8 drives, one per drive count',
    `one call: every drive at once does REWIND, ${CHUNKS} x ${CHUNK}-byte variable blocks with ${STREAM_DEPTH} WRITE(6) in flight, WRITE FILEMARKS(1); aggregate MB/s = drives x ${STREAM} bytes / wall time from the first command to the last filemark's answer`,
    'raw writers: one worker thread per drive (writeSync per block after ftruncate to 0, fdatasync at the end), started together; same wall-time definition (worker threads beat fs.promises on the libuv pool here)',
    'every block differs (block and drive number in its first 8 bytes); every drive of every target was read back and compared byte for byte before timing and after the last round',
    `every case ran ${ROUNDS} times, the targets' order alternating between rounds; each figure is the median over rounds (per-round values in detail), with the CPU use of the target process and of this process (client or raw writers) during each case`,
    `load average at start: ${startLoad.map((l) => l.toFixed(2)).join(' ')}; at each round: ${roundLoads.join(' | ')} (figures on a shared machine move by ±30% between runs)`,
    `files on the project's disk: ${dir}`,
  ];
  if (why) notes.push(`tgtd comparison not run: ${why}`);
  writeResults('iscsi-drives', figures, targets, notes);
} finally {
  for (const s of subjects) await s.close().catch((e: unknown) => console.error(`closing ${label(s)}: ${String(e)}`));
  rmSync(dir, { recursive: true, force: true });
}
