/**
 * The emulator in process: TEST UNIT READY commands/s through the in-process port, and
 * 256 KiB WRITE(6) streaming to an emulated cartridge compared with a raw `fs` write of
 * the same bytes to the same disk, in the same run.
 *
 * One measured call streams 32 MiB from the beginning of the medium: the emulator path is
 * REWIND, 128 WRITE(6) of 256 KiB (variable blocks, CRC32C per block; the first write cuts
 * off what the last call wrote, as on tape) and WRITE FILEMARKS, whose sync point makes the
 * data durable (fdatasync). The raw path does the same to a plain file: ftruncate to 0,
 * the same 128 chunks with fs.writeSync, one fdatasync. Both pay for the cut and for
 * durability once per call, and neither file grows past 32 MiB.
 */
import b from 'benny';
import { closeSync, fdatasyncSync, ftruncateSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import * as Cdb from '../src/scsi/cdb.js';
import { ScsiStatus } from '../src/scsi/status.js';
import { serial, target, writeResults, type Figure, openBenchDrive } from './lib.js';

const CHUNK = 256 * 1024;
const CHUNKS = 128;
const STREAM = CHUNK * CHUNKS;

// bench/results sits on the project's disk; the cartridge and the raw file go beside it.
const { dir, lab, port } = await openBenchDrive('emulator');

const chunk = Buffer.alloc(CHUNK);
for (let i = 0; i < CHUNK; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
const write6 = Cdb.write6(chunk);
const tur = Cdb.testUnitReady();
const rawPath = join(dir, 'raw.bin');

async function must(p: Promise<{ status: number }>): Promise<void> {
  const r = await p;
  if (r.status !== ScsiStatus.GOOD) throw new Error(`command failed with status 0x${r.status.toString(16)}`);
}

async function emulatorStream(): Promise<void> {
  await must(port.execute(Cdb.rewind()));
  for (let i = 0; i < CHUNKS; i++) await must(port.execute(write6));
  await must(port.execute(Cdb.writeFilemarks6(1)));
}

const rawFd = openSync(rawPath, 'w');
function rawStream(): void {
  ftruncateSync(rawFd, 0);
  for (let i = 0; i < CHUNKS; i++) writeSync(rawFd, chunk, 0, chunk.length, i * CHUNK);
  fdatasyncSync(rawFd);
}

// Both paths work before anything is timed.
await emulatorStream();
rawStream();

const turSummary = await b.suite('emulator-tur', b.add('TEST UNIT READY (in process)', serial(() => must(port.execute(tur)))), b.cycle());
const streamSummary = await b.suite(
  'emulator-stream',
  b.add('emulated cartridge: 128 x 256 KiB WRITE(6) + filemark', serial(() => emulatorStream())),
  b.add('raw fs write of the same bytes + fdatasync', () => rawStream()),
  b.cycle(),
);

// The stream target comes from alternating rounds (emulator, raw, emulator, raw, ...), so
// the background writeback one path leaves behind lands on both alike; benny's own figures
// for the two cases, measured one after the other, are kept beside it.
const ROUNDS = 24;
const emuTimes: number[] = [];
const rawTimes: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  let t = performance.now();
  await emulatorStream();
  emuTimes.push(performance.now() - t);
  t = performance.now();
  rawStream();
  rawTimes.push(performance.now() - t);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const emuMBs = STREAM / 1e6 / (median(emuTimes) / 1000);
const rawMBs = STREAM / 1e6 / (median(rawTimes) / 1000);

const find = (s: typeof turSummary, name: string) => {
  const r = s.results.find((x) => x.name === name);
  if (!r) throw new Error(`missing result ${name}`);
  return r;
};
const turR = find(turSummary, 'TEST UNIT READY (in process)');
const emu = find(streamSummary, 'emulated cartridge: 128 x 256 KiB WRITE(6) + filemark');
const raw = find(streamSummary, 'raw fs write of the same bytes + fdatasync');
const mb = (ops: number): number => (ops * STREAM) / 1e6;
const figures: Figure[] = [
  { name: 'TEST UNIT READY in process', value: turR.ops, unit: 'commands/s', detail: { marginPercent: turR.margin, samples: turR.samples } },
  { name: '256 KiB WRITE(6) to an emulated cartridge', value: emuMBs, unit: 'MB/s', detail: { medianOfRounds: ROUNDS, bennyMBs: mb(emu.ops), bennyMarginPercent: emu.margin, bytesPerCall: STREAM, durable: 'fdatasync at the filemark ending each call' } },
  { name: 'raw fs write of the same bytes', value: rawMBs, unit: 'MB/s', detail: { medianOfRounds: ROUNDS, bennyMBs: mb(raw.ops), bennyMarginPercent: raw.margin, bytesPerCall: STREAM, durable: 'fdatasync once per call' } },
];
writeResults('emulator', figures, [target('emulated WRITE(6) vs raw write (alternating rounds, medians)', emuMBs, rawMBs, 0.8)], [
  `${CHUNKS} x ${CHUNK} bytes per call on ${dir}`,
  'both paths rewrite from the start and make their data durable once per call (cartridge: sync point at the filemark; raw: ftruncate, writes, fdatasync); async cases are queued so benny never overlaps two calls',
]);

closeSync(rawFd);
await port.close();
await lab.close();
rmSync(dir, { recursive: true, force: true });
