/**
 * Crash consistency of the key journal: a child appends numbered records and prints each
 * acknowledged seq; we SIGKILL it at random moments (during recovery, compaction or
 * appends), reopen, and require exactly a prefix of what was written that includes every
 * acknowledged record. 200 kills by default, 10,000 with PTPVTS_LONG=1 (npm run
 * test:journal-long).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyJournal } from '../../src/hotpath/key-journal.js';
import { decodeJournal } from '../../src/hotpath/journal-format.js';
import { payload } from './journal-payload.mjs';

const child = join(dirname(fileURLToPath(import.meta.url)), 'journal-child.mjs');
const long = process.env['PTPVTS_LONG'] === '1';
// PTPVTS_CRASH_ITERATIONS lets the sanitizer run use fewer (slower) kills.
const iterations = long ? 10_000 : Number(process.env['PTPVTS_CRASH_ITERATIONS'] ?? 200);
const perFile = 50;

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-crash-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  /** Highest acknowledged seq, -1 when none. */
  acked: number;
  /** Records the child found at its own open, -1 when killed before that. */
  found: number;
  lines: string[];
}

async function crashOnce(path: string, rnd: () => number): Promise<Run> {
  const compact = rnd() < 0.2 ? '1' : '0';
  const concurrency = String(1 + Math.floor(rnd() * 8));
  const mode = rnd() < 0.5 ? 'staged' : 'single';
  const p = spawn(process.execPath, [child, path, compact, concurrency, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buffered = '';
  const lines: string[] = [];
  let ready: () => void = () => undefined;
  const readyP = new Promise<void>((r) => (ready = r));
  p.stdout.setEncoding('utf8');
  p.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      if (line.startsWith('R ')) ready();
    }
  });
  let stderr = '';
  p.stderr.setEncoding('utf8');
  p.stderr.on('data', (chunk: string) => (stderr += chunk));
  let exit: { code: number | null; signal: NodeJS.Signals | null } = { code: null, signal: null };
  const exited = new Promise<void>((r) =>
    p.on('close', (code, signal) => {
      exit = { code, signal };
      r();
    }),
  );
  // A quarter of the kills land anywhere from process start (often inside recovery or
  // compaction); the rest land while appends are streaming.
  if (rnd() < 0.25) await sleep(rnd() * 80);
  else {
    await Promise.race([readyP, exited]);
    await sleep(rnd() * 15);
  }
  p.kill('SIGKILL');
  await exited;
  const bad = lines.find((l) => l.startsWith('X'));
  if (bad !== undefined) throw new Error(`writer failed: ${bad}`);
  // Only our SIGKILL may end the writer; anything else means it never really ran.
  if (exit.signal !== 'SIGKILL') throw new Error(`writer exited by itself (code ${String(exit.code)}): ${stderr}`);
  const acks = lines.filter((l) => /^\d+$/.test(l)).map(Number);
  const r = lines.find((l) => l.startsWith('R '));
  return { acked: acks.length === 0 ? -1 : Math.max(...acks), found: r === undefined ? -1 : Number(r.slice(2)), lines };
}

it(`journal holds an acknowledged prefix after ${iterations} SIGKILLs`, async () => {
  let seed = 0x2545f491;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  let totalAcked = 0;
  let totalRecovered = 0;
  let truncations = 0;
  let trims = 0;
  let path = '';
  let known = 0;
  for (let i = 0; i < iterations; i++) {
    if (i % perFile === 0) {
      path = join(dir, `crash-${i / perFile}.journal`);
      known = 0;
    }
    const run = await crashOnce(path, rnd);
    const sizeBefore = existsSync(path) ? statSync(path).size : 0;
    const j = await KeyJournal.open(path);
    if (sizeBefore > j.recovery.validBytes) trims++;
    const recs = j.records();
    if (j.recovery.truncatedBytes > 0) truncations++;
    // Exactly a prefix of the numbered stream, and never shorter than what was acknowledged.
    for (let k = 0; k < recs.length; k++) {
      if (Buffer.compare(Buffer.from(recs[k]!), Buffer.from(payload(k))) !== 0) {
        throw new Error(`iteration ${i}: record ${k} is not what was written`);
      }
    }
    expect(recs.length).toBeGreaterThanOrEqual(run.acked + 1);
    expect(recs.length).toBeGreaterThanOrEqual(known);
    known = recs.length;
    if (run.found >= 0) totalAcked += Math.max(0, run.acked + 1 - run.found);
    totalRecovered += recs.length;
    await j.close();
    // What the native recovery kept must also parse cleanly with the independent decoder.
    const image = readFileSync(path);
    expect(decodeJournal(image).validBytes).toBe(statSync(path).size);
  }
  console.log(
    `journal crash test: ${iterations} SIGKILLs, ${totalAcked} appends acknowledged before a kill, ` +
      `${totalRecovered} records recovered over all reopens, ${trims} reopens cut off a tail ` +
      `(${truncations} of them with torn or corrupt bytes, the rest preallocated zeros)`,
  );
}, long ? 6 * 3600_000 : 300_000);
