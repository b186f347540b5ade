/**
 * Shared helpers for benchmark suites: benny for the timing, and one JSON result file per
 * suite in bench/results/ carrying the date, machine and Node version beside the figures,
 * and each target as measured against its same-run baseline.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, hostname, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  for (const t of targets) console.log(`  target ${t.name}: ${t.ratio}x (need >= ${t.required}x) ${t.met ? 'MET' : 'NOT MET'}`);
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
