#!/usr/bin/env node
/**
 * Shows that the processes campaign catches a removed sync point: copies the repository to a
 * scratch directory (node_modules linked, as scripts/power-loss-gate.mjs does; the working tree
 * is never modified), removes one sync call there, rebuilds the addon if it is native code,
 * runs test/power-loss/ptp-processes.power-loss.test.ts there, and prints whether it failed
 * and which checks fired. Stranded mounts (a known availability finding) are tolerated there,
 * so a "caught" is always a data or recovery check.
 *
 * Usage: node test/power-loss/ptp-processes/mutate.mjs [--list] [--keep] ID[,ID…]
 * Env: PTPVTS_POWER_PROCESS_CUTS (default 20 here), PTPVTS_POWER_SEED, PTPVTS_GATE_TIMEOUT_S (900).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const CAMPAIGN = 'test/power-loss/ptp-processes.power-loss.test.ts';

/** `match` must occur once in `file`; `call` inside it becomes `noop`. Ids follow the gate's. */
const MUTATIONS = [
  { id: 'vts-slot-file-sync', file: 'src/vts/slot-file.ts', match: 'await datasyncP(fd);', call: 'datasyncP(fd)', noop: 'Promise.resolve()' },
  { id: 'kj-native-append-sync', file: 'native/key_journal.cc', match: '    if (fdatasync(fd_) != 0) fail_.set(errno, "fdatasync", path_);', call: 'fdatasync(fd_)', noop: '0' },
  { id: 'vts-cache-commit-sync', file: 'src/vts/volume-cache.ts', match: 'let at = f.path;\n    try {\n      await f.sync();', call: 'f.sync()', noop: 'Promise.resolve()' },
  { id: 'vts-durable-dir-fsync', file: 'src/vts/durable.ts', match: "const h = await open(dir, 'r');\n  try {\n    await h.sync();", call: 'h.sync()', noop: 'Promise.resolve()' },
  { id: 'vts-cache-file-sync', file: 'src/vts/volume-cache.ts', match: 'await this.fh.sync();', call: 'this.fh.sync()', noop: 'Promise.resolve()' },
];

function run(cmd, args, cwd, env, timeoutS) {
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 64 << 20 });
  return { status: r.status, signal: r.signal, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function scratchCopy() {
  const dir = mkdtempSync(join(tmpdir(), 'ptpvts-ptp-mutate-'));
  for (const e of readdirSync(repo)) {
    if (['node_modules', '.git', 'dist', 'build'].includes(e)) continue;
    cpSync(join(repo, e), join(dir, e), { recursive: true });
  }
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  const addon = join(repo, 'build', 'Release', 'ptpvts.node');
  if (existsSync(addon)) {
    mkdirSync(join(dir, 'build', 'Release'), { recursive: true });
    copyFileSync(addon, join(dir, 'build', 'Release', 'ptpvts.node'));
  }
  return dir;
}

function main() {
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const m of MUTATIONS) console.log(`${m.id.padEnd(24)} ${m.file}`);
    return 0;
  }
  const keep = args.includes('--keep');
  const ids = args.filter((a) => !a.startsWith('--')).flatMap((a) => a.split(','));
  const chosen = ids.map((id) => {
    const m = MUTATIONS.find((x) => x.id === id);
    if (m === undefined) throw new Error(`mutate: unknown mutation '${id}' (known: ${MUTATIONS.map((x) => x.id).join(', ')})`);
    return m;
  });
  if (chosen.length === 0) throw new Error('mutate: name at least one mutation id (--list shows them)');
  const cuts = process.env.PTPVTS_POWER_PROCESS_CUTS || '20';
  const timeoutS = Number(process.env.PTPVTS_GATE_TIMEOUT_S || 900);
  let failedAny = false;
  for (const m of chosen) {
    const work = scratchCopy();
    try {
      const path = join(work, m.file);
      const text = readFileSync(path, 'utf8');
      const n = text.split(m.match).length - 1;
      if (n !== 1) throw new Error(`mutate: ${m.id}: the match occurs ${n} times in ${m.file}`);
      writeFileSync(path, text.replace(m.match, m.match.replace(m.call, m.noop)));
      if (m.file.startsWith('native/')) {
        const b = run('npm', ['run', 'build:native', '--silent'], work, {}, 1200);
        if (b.status !== 0) throw new Error(`mutate: ${m.id}: the mutated addon does not build:\n${b.out.slice(-2000)}`);
      }
      const t0 = Date.now();
      const r = run('npx', ['vitest', 'run', '--config', 'vitest.power-loss.config.ts', CAMPAIGN], work, { PTPVTS_POWER_PROCESS_CUTS: cuts, PTPVTS_POWER_TOLERATE_STRANDED: '1' }, timeoutS);
      const secs = ((Date.now() - t0) / 1000).toFixed(0);
      const checks = [...new Set([...r.out.matchAll(/^\[([a-z-]+)\] cut \d+[^\n]*/gm)].map((x) => x[0].slice(0, 400)))];
      const summary = r.out.split('\n').find((l) => l.startsWith('ptp-processes power-loss campaign:'));
      const verdict = r.signal ? `TIMEOUT (${secs} s)` : r.status !== 0 ? `caught (${secs} s)` : `MISSED (${secs} s)`;
      if (r.status === 0) failedAny = true;
      console.log(`${m.id} | ${verdict}`);
      if (summary) console.log(`  ${summary}`);
      for (const c of checks.slice(0, 6)) console.log(`  ${c}`);
      if (r.status !== 0 && checks.length === 0) console.log(r.out.split('\n').filter((l) => /Error|expected|cut\(s\)/.test(l)).slice(0, 8).map((l) => `  ${l.trim().slice(0, 400)}`).join('\n'));
    } finally {
      if (!keep) rmSync(work, { recursive: true, force: true });
      else console.log(`  kept ${work}`);
    }
  }
  return failedAny ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
}
