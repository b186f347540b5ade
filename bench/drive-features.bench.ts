/**
 * The emulated drive's compression and encryption against the same drive with both off,
 * in one run: 256 KiB WRITE(6) streams to an emulated cartridge with
 *
 * - both off (the baseline),
 * - compression on (mode page 0Fh DCE), compressible data (text-like records),
 * - compression on, random data (the drive finds it incompressible and stores it as is),
 * - encryption on (SECURITY PROTOCOL OUT, AES-256-GCM), random data.
 *
 * One measured call is REWIND, 128 WRITE(6) of 256 KiB (32 MiB) and WRITE FILEMARKS, whose
 * sync point makes the data durable, as in bench/emulator.bench.ts. The cases run in
 * alternating rounds (baseline, compressible, random, encrypted, baseline, ...), each call
 * after a 100 ms pause so what the previous case left (garbage, writeback) is not charged
 * to the next; medians are compared. Targets: encryption
 * >= 0.7x and compression of random data >= 0.8x of the baseline.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import * as Cdb from '../src/scsi/cdb.js';
import { ScsiStatus } from '../src/scsi/status.js';
import { median, target, writeResults, type Figure, openBenchDrive } from './lib.js';

const CHUNK = 256 * 1024;
const CHUNKS = 128;
const STREAM = CHUNK * CHUNKS;
const ROUNDS = 16;

const { dir, lab, port } = await openBenchDrive('drive-features');

// Data: random bytes, and text-like records (a backup catalogue compresses well).
const random = randomBytes(CHUNK);
const line = (i: number): string => `/srv/data/projects/p${i % 97}/file-${i}.dat 2026-11-${(i % 28) + 1} ${(i * 7919) % 100000} bytes owner=backup mode=0644\n`;
let text = '';
for (let i = 0; text.length < CHUNK; i++) text += line(i);
const compressible = Buffer.from(text).subarray(0, CHUNK);

async function must(p: Promise<{ status: number; sense?: Uint8Array }>): Promise<void> {
  const r = await p;
  if (r.status !== ScsiStatus.GOOD) throw new Error(`command failed with status 0x${r.status.toString(16)} sense ${Buffer.from(r.sense ?? []).toString('hex')}`);
}

async function setCompression(on: boolean): Promise<void> {
  const cur = await port.execute(Cdb.modeSense6({ page: 0x0f, disableBlockDescriptors: true }));
  const page = Uint8Array.from(cur.data.subarray(4));
  page[2] = ((page[2] ?? 0) & 0x7f) | (on ? 0x80 : 0);
  const params = new Uint8Array(4 + page.length);
  params.set(page, 4);
  await must(port.execute(Cdb.modeSelect6(params)));
}

const KEY = randomBytes(32);
async function setEncryption(on: boolean): Promise<void> {
  const p = new Uint8Array(20 + (on ? 32 : 0));
  p[1] = 0x10;
  p[3] = p.length - 4;
  p[4] = 0x40;
  p[6] = on ? 2 : 0;
  p[7] = on ? 3 : 0;
  p[8] = on ? 1 : 0;
  p[19] = on ? 32 : 0;
  if (on) p.set(KEY, 20);
  const cdb = Uint8Array.of(0xb5, 0x20, 0x00, 0x10, 0, 0, 0, 0, 0, p.length, 0, 0);
  await must(port.execute({ cdb, direction: 'out', dataOut: p }));
}

type Case = 'baseline' | 'compressible' | 'random' | 'encrypted';
const setup: Record<Case, { compression: boolean; encryption: boolean; data: Uint8Array }> = {
  baseline: { compression: false, encryption: false, data: random },
  compressible: { compression: true, encryption: false, data: compressible },
  random: { compression: true, encryption: false, data: random },
  encrypted: { compression: false, encryption: true, data: random },
};

let storedLast = 0;
async function stream(c: Case): Promise<number> {
  const s = setup[c];
  await setCompression(s.compression);
  await setEncryption(s.encryption);
  const write6 = Cdb.write6(s.data);
  // Each case starts from a quiet process: what the previous case left (deflate's garbage,
  // writeback) is not charged to this one.
  await new Promise((res) => setTimeout(res, 100));
  const t = performance.now();
  await must(port.execute(Cdb.rewind()));
  for (let i = 0; i < CHUNKS; i++) await must(port.execute(write6));
  await must(port.execute(Cdb.writeFilemarks6(1)));
  const ms = performance.now() - t;
  storedLast = lab.emulated!.drives[0]!.drive.media!.dataBytes;
  return ms;
}

const cases: Case[] = ['baseline', 'compressible', 'random', 'encrypted'];
// Every path works (and is warm) before anything is timed.
for (const c of cases) await stream(c);
const times: Record<Case, number[]> = { baseline: [], compressible: [], random: [], encrypted: [] };
const stored: Record<Case, number> = { baseline: 0, compressible: 0, random: 0, encrypted: 0 };
for (let r = 0; r < ROUNDS; r++) {
  for (const c of cases) {
    times[c].push(await stream(c));
    stored[c] = storedLast;
  }
}
// The stream reads back as written (a check, not timed).
await setCompression(true);
await setEncryption(true);
await must(port.execute(Cdb.rewind()));
const back = await port.execute(Cdb.read6({ length: CHUNK }));
if (back.status !== ScsiStatus.GOOD || !Buffer.from(back.data).equals(Buffer.from(random))) throw new Error('the encrypted stream does not read back as written');

const mbs = (c: Case): number => STREAM / 1e6 / (median(times[c]) / 1000);
const figures: Figure[] = cases.map((c) => ({
  name: `256 KiB WRITE(6), ${c === 'baseline' ? 'compression and encryption off' : c === 'compressible' ? 'compression on, compressible data' : c === 'random' ? 'compression on, random data' : 'encryption on (AES-256-GCM), random data'}`,
  value: mbs(c),
  unit: 'MB/s',
  detail: { medianOfRounds: ROUNDS, bytesPerCall: STREAM, storedBytesPerCall: stored[c], storedRatio: Number((stored[c] / STREAM).toFixed(4)) },
}));
writeResults(
  'drive-features',
  figures,
  [
    target('encryption on vs both off (alternating rounds, medians)', mbs('encrypted'), mbs('baseline'), 0.7),
    target('compression on, random data vs both off', mbs('random'), mbs('baseline'), 0.8),
  ],
  [
    `${CHUNKS} x ${CHUNK} bytes per call on ${dir}, REWIND + WRITE(6)s + WRITE FILEMARKS (sync point) per call`,
    `compression on, compressible data: ${(mbs('compressible') / mbs('baseline')).toFixed(3)}x the baseline, stored ${(stored.compressible / STREAM).toFixed(4)} of the host bytes (not a target)`,
    'compression is deflate (node:zlib, raw, level 3) after a 4 KiB sample says the block shrinks; encryption is AES-256-GCM (node:crypto) with a fresh nonce per block',
  ],
);

await port.close();
await lab.close();
rmSync(dir, { recursive: true, force: true });
