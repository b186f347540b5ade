/**
 * The emulator in process: TEST UNIT READY commands/s through the in-process port, and
 * 256 KiB WRITE(6) streaming to an emulated cartridge compared with a raw `fs` write of
 * the same bytes to the same disk, in the same run.
 *
 * One measured call streams 32 MiB: the emulator path is REWIND, 128 WRITE(6) of 256 KiB
 * (variable blocks, CRC32C per block) and WRITE FILEMARKS, whose sync point makes the data
 * durable (fdatasync); the raw path truncates the file, writes the same 128 chunks with
 * fs.writeSync and calls fdatasync once, so both pay for durability once per call.
 */
import b from 'benny';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { defaultLibraryYaml } from '../src/cli/default-lab.js';
import { openEmbeddedLab } from '../src/cli/lab.js';
import { loadCartridge } from '../src/cli/ops.js';
import * as Cdb from '../src/scsi/cdb.js';
import { ScsiStatus } from '../src/scsi/status.js';
import { MemoryPort } from '../firmware-sim/front/memory-port.js';
import { target, writeResults, type Figure } from './lib.js';

const CHUNK = 256 * 1024;
const CHUNKS = 128;
const STREAM = CHUNK * CHUNKS;

// bench/results sits on the project's disk; the cartridge and the raw file go beside it.
const dir = mkdtempSync(join(process.cwd(), 'bench', 'results', '.emulator-'));
const yaml = join(dir, 'library.yaml');
writeFileSync(yaml, defaultLibraryYaml('bench').replace(/capacity: 64MiB/g, 'capacity: 4GiB'));
const lab = await openEmbeddedLab(yaml, { persist: false });
await loadCartridge(lab, 'LAB001L8', 1);
// Commands go straight to the drive's logical unit through its own in-process port.
const port = new MemoryPort(lab.emulated!.library.luns().get(1)!);
await port.execute(Cdb.requestSense()); // takes this initiator's power-on unit attention

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

function rawStream(): void {
  const fd = openSync(rawPath, 'w');
  try {
    for (let i = 0; i < CHUNKS; i++) writeSync(fd, chunk);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// Both paths work before anything is timed.
await emulatorStream();
rawStream();

const turSummary = await b.suite('emulator-tur', b.add('TEST UNIT READY (in process)', async () => must(port.execute(tur))), b.cycle());
const streamSummary = await b.suite(
  'emulator-stream',
  b.add('emulated cartridge: 128 x 256 KiB WRITE(6) + filemark', async () => emulatorStream()),
  b.add('raw fs write of the same bytes + fdatasync', () => rawStream()),
  b.cycle(),
);

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
  { name: '256 KiB WRITE(6) to an emulated cartridge', value: mb(emu.ops), unit: 'MB/s', detail: { marginPercent: emu.margin, samples: emu.samples, bytesPerCall: STREAM, durable: 'fdatasync at the filemark ending each call' } },
  { name: 'raw fs write of the same bytes', value: mb(raw.ops), unit: 'MB/s', detail: { marginPercent: raw.margin, samples: raw.samples, bytesPerCall: STREAM, durable: 'fdatasync once per call' } },
];
writeResults('emulator', figures, [target('emulated WRITE(6) vs raw write', mb(emu.ops), mb(raw.ops), 0.8)], [
  `${CHUNKS} x ${CHUNK} bytes per call on ${dir}`,
  'both paths make their data durable once per call (cartridge: sync point at the filemark; raw: fdatasync)',
]);

await port.close();
await lab.close();
rmSync(dir, { recursive: true, force: true });
