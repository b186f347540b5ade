/**
 * Shared helpers for benchmark suites: benny for the timing, and one JSON result file per
 * suite in bench/results/ carrying the date, machine and Node version beside the figures,
 * and each target as measured against its same-run baseline.
 */
import { spawn } from 'node:child_process';
import { writeFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, totalmem, hostname, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultLibraryYaml } from '../src/cli/default-lab.js';
import { openEmbeddedLab, type Lab } from '../src/cli/lab.js';
import { NODE_FLAGS } from '../src/node-flags.js';
import { loadCartridge } from '../src/cli/ops.js';
import * as Cdb from '../src/scsi/cdb.js';
import { MemoryPort } from '../firmware-sim/front/memory-port.js';

export const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');

export interface Figure {
  /** What was measured, e.g. `native tally`. */
  name: string;
  /** The value, in `unit`. */
  value: number;
  unit: string;
  /** Extra detail (samples, margin, sync policy...). */
  detail?: Record<string, unknown>;
}

export interface Target {
  /** e.g. `native vs JS reference`. */
  name: string;
  /** measured ratio (subject / baseline), higher is better unless stated. */
  ratio: number;
  /** required ratio. */
  required: number;
  met: boolean;
  /** Set when the ratio must stay at or below `required` (a latency against its floor). */
  lowerIsBetter?: boolean;
}

export function target(name: string, subject: number, baseline: number, required: number): Target {
  const ratio = baseline === 0 ? Infinity : subject / baseline;
  return { name, ratio: Number(ratio.toFixed(3)), required, met: ratio >= required };
}

export function machine(): Record<string, unknown> {
  const c = cpus();
  return {
    date: new Date().toISOString(),
    host: hostname(),
    kernel: release(),
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
}

/** Writes bench/results/<suite>.json and prints a one-screen summary. */
export function writeResults(suite: string, figures: Figure[], targets: Target[], notes: string[] = []): string {
  mkdirSync(resultsDir, { recursive: true });
  const path = join(resultsDir, `${suite}.json`);
  const doc = { suite, machine: machine(), figures, targets, notes };
  writeFileSync(path, JSON.stringify(doc, null, 2) + '\n');
  console.log(`\n${suite}:`);
  for (const f of figures) console.log(`  ${f.name}: ${formatNumber(f.value)} ${f.unit}`);
  for (const t of targets) console.log(`  target ${t.name}: ${t.ratio}x (need ${t.lowerIsBetter === true ? '<=' : '>='} ${t.required}x) ${t.met ? 'MET' : 'NOT MET'}`);
  for (const n of notes) console.log(`  note: ${n}`);
  console.log(`  -> ${path}`);
  return path;
}

export function formatNumber(v: number): string {
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(3);
}

/**
 * benny calls an async case once more, without awaiting it, to learn its type; queueing the
 * calls of a case keeps that extra call from overlapping a timed one (two streams
 * interleaved on one tape would measure nonsense and scramble the cartridge).
 */
/** Median of `xs` (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

export function serial(fn: () => Promise<void>): () => Promise<void> {
  let last: Promise<void> = Promise.resolve();
  return () => (last = last.then(fn));
}

/**
 * An embedded lab for a drive benchmark, in a new directory under bench/results (the
 * project's disk, as a user's would be): 4 GiB cartridges, LAB001L8 loaded in drive 1, and
 * an in-process port to that drive's logical unit with its power-on unit attention taken.
 * The caller closes the lab and removes `dir`.
 */
export async function openBenchDrive(tag: string): Promise<{ dir: string; lab: Lab; port: MemoryPort }> {
  const dir = mkdtempSync(join(resultsDir, `.${tag}-`));
  const yaml = join(dir, 'library.yaml');
  writeFileSync(yaml, defaultLibraryYaml('bench').replace(/capacity: 64MiB/g, 'capacity: 4GiB'));
  const lab = await openEmbeddedLab(yaml, { persist: false });
  await loadCartridge(lab, 'LAB001L8', 1);
  const port = new MemoryPort(lab.emulated!.library.luns().get(1)!);
  await port.execute(Cdb.requestSense());
  return { dir, lab, port };
}

/** A library of one LTO-8 drive holding an 8 GiB cartridge (BEN001L8), no timing model: what `sim serve` serves as a benchmark's baseline drive. */
export const BENCH_DRIVE_LIBRARY_YAML = benchLibraryYaml(1);

/**
 * A library of `drives` LTO-8 drives, drive k holding the cartridge BEN00kL8 (`capacity`
 * each), no timing model: the multi-drive counterpart of {@link BENCH_DRIVE_LIBRARY_YAML}.
 */
export function benchLibraryYaml(drives: number, capacity = '8GiB'): string {
  if (!Number.isInteger(drives) || drives < 1 || drives > 9) throw new Error(`benchLibraryYaml: ${drives} drives (1 to 9 supported)`);
  const cartridges = Array.from({ length: drives }, (_, i) => `  - barcode: ${benchBarcode(i + 1)}
    capacity: ${capacity}
    location: drive ${i + 1}
`).join('');
  return `name: bench
personality: PTPVTS-LIB
timeScale: 0
mediaDir: ./media
storageSlots: ${Math.max(4, drives)}
drives:
  count: ${drives}
  personality: LTO8
cartridges:
${cartridges}`;
}

/** Barcode of the cartridge loaded in bench drive `drive` (1-based): BEN001L8, BEN002L8... */
export function benchBarcode(drive: number): string {
  return `BEN${String(drive).padStart(3, '0')}L8`;
}

/** A `ptpvts sim serve` process serving one library, as {@link startSimServe} returns it. */
export interface SimServe {
  readonly host: string;
  readonly port: number;
  readonly iqn: string;
  readonly pid: number;
  /** SIGTERM, then waits for a clean exit (throws when the exit code is not 0). */
  stop(): Promise<void>;
}

/**
 * `ptpvts sim serve <yaml> --portal 127.0.0.1:0` in a process of its own, as a user runs it
 * (and as tgtd runs): the target never shares an event loop with the client being measured.
 * It starts with the Node options an installed ptpvts has (src/node-flags.ts).
 * `nodeArgs` are extra Node options for that process (e.g. `--cpu-prof`, which needs the
 * clean SIGTERM exit `stop()` asks for).
 */
export async function startSimServe(yaml: string, nodeArgs: readonly string[] = []): Promise<SimServe> {
  const runner = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'interop', 'fixtures', 'sim-serve-runner.ts');
  const child = spawn(process.execPath, [...NODE_FLAGS, ...nodeArgs, '--import', 'tsx', runner, 'sim', 'serve', yaml, '--portal', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  const found = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /iSCSI target (\S+) on portal (\S+):(\d+)\./u.exec(out);
      if (m) resolve(m);
    });
    void exited.then((code) => reject(new Error(`ptpvts sim serve exited (${code}) before serving:\n${out}`)));
  });
  const [, iqn, host, portNo] = found;
  return {
    host: host!,
    port: Number(portNo),
    iqn: iqn!,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`ptpvts sim serve exited with ${code}`);
    },
  };
}
