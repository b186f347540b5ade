#!/usr/bin/env node
/**
 * The production-code mutation gate (`npm run test:prod-mutations`): each safety mechanism of
 * the code users run (VtsUnit's fences and durability, the agent's close path and read
 * selection, the volume cache's fsync) is broken on purpose, one at a time, and the
 * production-code simulation (test/sim/prod: real VtcAgent, VtsServer and VtsUnit over a
 * simulated clock, network and filesystem, judged by the history checker) must fail. A
 * mechanism whose mutation nothing notices is a mechanism nothing tests. See docs/mutations.md,
 * "Production-code mutations".
 *
 * Usage: node scripts/prod-mutations.mjs [--only ID[,ID...]] [--survey] [--with-seeds N] [--in-place] [--keep] [--list]
 *   --only        run these mutations (their checks' baseline first)
 *   --survey      run every check of a mutation, not only up to the first that catches it
 *   --with-seeds N  also run production schedules 1..N after each mutation's own checks
 *   --in-place    mutate the working tree itself (default: a private copy under the OS temp dir,
 *                 so people editing or testing the tree meanwhile never see a mutated file)
 *   --keep        keep the private copy and the logs (printed path)
 *   --list        print the table of mutations (markdown) and exit
 *
 * Every mutated file is copy-protected: its original bytes are kept in memory and in a backup
 * file, put back after the mutation's checks (try/finally) and on exit, SIGINT, SIGTERM,
 * SIGHUP and uncaught errors, and the restoration is verified by SHA-256. In place, a file
 * someone else changed while it was mutated is not overwritten: the gate stops and names the
 * backup.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

// ------------------------------------------------------------------------------------------
// The checks, cheapest first (the gate stops at the first that fails). A story check runs the
// tests of a vitest file whose name matches `tests` (a regex, as `vitest -t`); a seeds check
// runs production schedules `from`..`from + count - 1` (test/sim/prod/prod-sim.test.ts, which
// fails on a history violation or on a schedule that does not come back on-line).

const STORIES = 'test/sim/prod/mutation-stories.test.ts';
const story = (tests, file = STORIES, timeoutSec = 120) => ({ kind: 'story', file, tests, timeoutSec });
const seeds = (from, count, timeoutSec = 300) => ({ kind: 'seeds', from, count, timeoutSec });

/**
 * Each mutation: the mechanism it breaks (in words), the file, exact snippets and their
 * replacements (each snippet must occur exactly once, so the gate fails loudly when the code
 * moves), and the checks that must catch it.
 */
export const MUTATIONS = [
  {
    id: 'unit-epoch-fence',
    mechanism: 'A VTS refuses host I/O, token updates and copies from a writer whose epoch is older than the last key seq it recorded (VtsUnit #operating)',
    file: 'src/vts/vts-unit.ts',
    edits: [['if (epoch < this.#lastKeySeq) throw new FencedError(epoch, this.#lastKeySeq);', '']],
    checks: [story('cut-off VTC after a failure key it missed: site A')],
  },
  {
    id: 'server-tokens-unfenced',
    mechanism: "A VTS gives its tokens to a reader only under an epoch it admits, so a VTC that missed a key learns it is behind (VtsServer 'tokens')",
    file: 'src/vtc/vts-server.ts',
    edits: [['        if (p.epoch !== undefined) u.checkFence(fenceOf(p));\n', '']],
    checks: [story('cut-off VTC reads after a failure key it missed')],
  },
  {
    id: 'unit-token-update-unfenced',
    mechanism: "A token update (markBehind, the deferred copy of a write) is fenced by the writer's epoch on the VTS (VtsUnit.markBehind)",
    file: 'src/vts/vts-unit.ts',
    edits: [['async markBehind(volser: string, generation: number, fence: Fence = {}): Promise<VolumeToken> {\n    this.#operating(fence);', 'async markBehind(volser: string, generation: number, fence: Fence = {}): Promise<VolumeToken> {\n    this.#operating();']],
    checks: [story("during a deferred write's commit on A")],
  },
  {
    id: 'agent-token-update-unfenced',
    mechanism: "The agent's close sends the write's epoch with the token update that follows the commit (HostRouter.close, deferred copies)",
    file: 'src/vtc/host-router.ts',
    edits: [['await this.#d.clients[t.vts].markBehind(h.volser, plan.generation, fenceFor(m, t.vts));', 'await this.#d.clients[t.vts].markBehind(h.volser, plan.generation);']],
    checks: [story("during a deferred write's commit on A")],
  },
  {
    id: 'cache-commit-no-fsync',
    mechanism: 'The volume cache fsyncs the data of a new generation before the rename that commits it (VolumeCache.commitData)',
    file: 'src/vts/volume-cache.ts',
    edits: [['async commitData(volser: string, f: VolumeFile, generation: number): Promise<VolumeMeta> {\n    await f.sync();', 'async commitData(volser: string, f: VolumeFile, generation: number): Promise<VolumeMeta> {']],
    checks: [story('both VTS lose power just after acknowledged writes')],
  },
  {
    id: 'cache-commit-no-dirsync',
    mechanism: "The volume cache fsyncs the data directory after the rename, so the committed file's name survives a power cut (VolumeCache.commitData)",
    file: 'src/vts/volume-cache.ts',
    edits: [['    await this.#fs.rename(f.path, join(this.#dataDir, name));\n    await syncDir(this.#dataDir, this.#fs);\n    this.accountWork(-bytes);', '    await this.#fs.rename(f.path, join(this.#dataDir, name));\n    this.accountWork(-bytes);']],
    checks: [story('both VTS lose power just after acknowledged writes')],
  },
  {
    id: 'unit-key-record-not-durable',
    mechanism: 'A VTS answers a record of a key seq only once it is durable (VtsUnit.recordKey; here kept in memory only)',
    file: 'src/vts/vts-unit.ts',
    edits: [['    if (seq > this.#lastKeySeq) await this.#changeState(true, seq, mac);', '    if (seq > this.#lastKeySeq) {\n      this.#lastKeySeq = seq;\n      this.#lastKeyMac = mac;\n    }']],
    checks: [story('the survivor loses power after recording a key')],
  },
  {
    id: 'port-reconcile-no-behind',
    mechanism: 'When a VTS comes back in, the reconcile marks it behind on every volume the other holds newer, before it counts as current (RemoteVtsPort reconcile)',
    file: 'src/vtc/vts-port.ts',
    edits: [['      if ((a?.generation ?? 0) < g) await this.#clients[x].markBehind(v, g);\n      if ((b?.generation ?? 0) < g) await this.#clients[y].markBehind(v, g);\n', '']],
    checks: [story('a VTS put back in is marked behind')],
  },
  {
    id: 'port-judge-skipped',
    mechanism: "A key's record or start is refused by a VTS that restarted since the key was planned or reports less than it confirmed recording (RemoteVtsPort #judge)",
    file: 'src/vtc/vts-port.ts',
    edits: [
      [
        "    if (op.bootId !== undefined && v.bootId !== undefined && v.bootId !== op.bootId) throw new Error(`VTS ${this.name} restarted (boot ${v.bootId}) since the key judged boot ${op.bootId}`);\n    if (op.minSeq !== undefined && v.lastKeySeq < op.minSeq) throw",
        '    if (false) throw',
      ],
    ],
    checks: [story('reaches a restored older image of A')],
  },
  {
    id: 'reads-not-generation-aware',
    mechanism: 'The agent reads from a VTS holding the newest generation either VTS reports, never from one whose token reads consistent at an older one (planRead, used by VtcAgent.mount)',
    file: 'src/ptp/volumes.ts',
    edits: [['return t !== undefined && t.consistent && t.generation === g && t.dataGeneration === g && g > 0;', 'return t !== undefined && t.consistent && t.dataGeneration > 0;']],
    checks: [story('restore nobody can tell apart')],
  },
];

// ------------------------------------------------------------------------------------------
// Arguments

function parseArgs(argv) {
  const o = { only: null, survey: false, inPlace: false, keep: false, list: false, withSeeds: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only' || a.startsWith('--only=')) {
      const v = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (v === undefined || v.startsWith('--') || v === '') fail('--only needs a mutation id (or ids separated by commas)');
      o.only = v.split(',').filter((s) => s !== '');
    } else if (a === '--survey') o.survey = true;
    else if (a === '--with-seeds') {
      o.withSeeds = Number(argv[++i]);
      if (!Number.isInteger(o.withSeeds) || o.withSeeds <= 0) fail('--with-seeds needs a whole number of schedules (e.g. --with-seeds 40)');
    } else if (a === '--in-place') o.inPlace = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--list') o.list = true;
    else if (a === '--help' || a === '-h') {
      const lines = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
      console.log(lines.slice(2, lines.indexOf(' */')).map((l) => l.replace(/^ \* ?/, '')).join('\n'));
      process.exit(0);
    } else fail(`unknown argument ${JSON.stringify(a)} (try --help)`);
  }
  if (o.only !== null) {
    const known = new Set(MUTATIONS.map((m) => m.id));
    const bad = o.only.filter((id) => !known.has(id));
    if (bad.length > 0) fail(`unknown mutation id ${bad.join(', ')}; known: ${[...known].join(', ')}`);
  }
  return o;
}

class GateError extends Error {
  name = 'GateError';
}

function fail(message) {
  console.error(`prod-mutations: ${message}`);
  process.exit(2);
}

// ------------------------------------------------------------------------------------------
// Copy-protected files

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** Files mutated right now, by absolute path: restored by `restoreAll` whatever happens. */
const live = new Map();
let backupDir = '';

function applyMutation(work, m) {
  const path = join(work, m.file);
  const original = readFileSync(path);
  let text = original.toString('utf8');
  for (const [find, replace] of m.edits) {
    const count = text.split(find).length - 1;
    if (count !== 1) throw new GateError(`mutation ${m.id}: the snippet occurs ${count} times in ${m.file} (must be exactly once; has the code moved?):\n    ${find.split('\n').join('\n    ')}`);
    text = text.replace(find, () => replace);
  }
  const mutated = Buffer.from(text, 'utf8');
  const backup = join(backupDir, `${m.id}.${basename(m.file)}.orig`);
  writeFileSync(backup, original);
  live.set(path, { original, originalHash: sha256(original), mutatedHash: sha256(mutated), backup, id: m.id });
  writeFileSync(path, mutated);
  if (sha256(readFileSync(path)) !== sha256(mutated)) throw new GateError(`mutation ${m.id}: ${m.file} does not read back as written`);
}

/** Puts the original bytes back and proves it by hash; never overwrites a file someone changed meanwhile. */
function restore(path) {
  const f = live.get(path);
  if (f === undefined) return;
  live.delete(path);
  const now = sha256(readFileSync(path));
  if (now !== f.originalHash && now !== f.mutatedHash) {
    throw new GateError(`${path} changed while mutation ${f.id} was applied (by someone else?): left as it is; its original is in ${f.backup}`);
  }
  writeFileSync(path, f.original);
  if (sha256(readFileSync(path)) !== f.originalHash) throw new GateError(`${path} could not be restored (hash differs); its original is in ${f.backup}`);
}

function restoreAll() {
  const errors = [];
  for (const path of [...live.keys()]) {
    try {
      restore(path);
    } catch (e) {
      errors.push(e);
    }
  }
  return errors;
}

// ------------------------------------------------------------------------------------------
// Running checks

let running = null;

function run(cmd, args, { cwd, env, timeoutSec, log }) {
  return new Promise((resolve) => {
    const out = [];
    const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    running = child;
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => out.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutSec * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running = null;
      const text = Buffer.concat(out).toString('utf8');
      if (log !== undefined) writeFileSync(log, text);
      resolve({ code, signal, timedOut, text });
    });
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

const checkKey = (c) => JSON.stringify(c);
const checkLabel = (c) => (c.kind === 'seeds' ? `prod schedules ${c.from}..${c.from + c.count - 1}` : `${basename(c.file)} -t "${c.tests}"`);

let logSeq = 0;

/**
 * Runs one check. Returns `pass` (every selected test passed, at least one ran), `fail` (at
 * least one test failed), `error` (no test failed, yet the run did not pass: a file that does
 * not load, a pattern matching nothing) or `timeout`.
 */
async function runCheck(work, c, env) {
  const started = Date.now();
  const json = join(backupDir, `report-${++logSeq}.json`);
  const log = join(backupDir, `log-${logSeq}.txt`);
  const file = c.kind === 'seeds' ? 'test/sim/prod/prod-sim.test.ts' : c.file;
  const tests = c.kind === 'seeds' ? 'random schedules' : c.tests;
  const args = ['run', file, '--reporter=json', `--outputFile=${json}`, '-t', tests];
  const runEnv = { ...env, ...(c.kind === 'seeds' ? { PTPVTS_PROD_FROM: String(c.from), PTPVTS_PROD_SEEDS: String(c.count) } : {}) };
  rmSync(json, { force: true });
  const r = await run(join(work, 'node_modules', '.bin', 'vitest'), args, { cwd: work, env: runEnv, timeoutSec: c.timeoutSec, log });
  const seconds = (Date.now() - started) / 1000;
  if (r.timedOut) return { status: 'timeout', seconds, failed: [], log, detail: `no answer within ${c.timeoutSec} s` };
  let report;
  try {
    report = JSON.parse(readFileSync(json, 'utf8'));
  } catch {
    return { status: 'error', seconds, failed: [], log, detail: `vitest wrote no report (exit ${r.code}): ${r.text.trim().split('\n').slice(-5).join(' | ')}` };
  }
  const failed = [];
  let passed = 0;
  for (const f of report.testResults ?? []) {
    for (const t of f.assertionResults ?? []) {
      if (t.status === 'failed') failed.push({ name: t.title ?? t.fullName, message: firstViolation(String(t.failureMessages?.[0] ?? '')) });
      else if (t.status === 'passed') passed++;
    }
  }
  if (failed.length > 0) return { status: 'fail', seconds, failed, log };
  const suiteErrors = (report.testResults ?? []).filter((f) => f.status === 'failed').map((f) => String(f.message ?? '').split('\n')[0]);
  if (suiteErrors.length > 0 || r.code !== 0) return { status: 'error', seconds, failed, log, detail: suiteErrors[0] ?? `vitest exited ${r.code}` };
  if (passed === 0) return { status: 'error', seconds, failed, log, detail: 'no test ran (does the pattern still match a test name?)' };
  return { status: 'pass', seconds, failed, log, passed };
}

/** The checker's verdict in a failure message: the first violation code and its text, or the first line. */
function firstViolation(message) {
  const seed = /seed (\d+) n=\d+: \[([a-z-]+)\] ([^\n]*)/.exec(message);
  if (seed !== null) return `seed ${seed[1]}: ${seed[2]}: ${seed[3]}`;
  const checker = /history checker: \[([a-z-]+)\] ([^\n]*?)(?:; \[|: expected |\n|$)/.exec(message);
  if (checker !== null) return `${checker[1]}: ${checker[2]}`;
  return message.split('\n')[0];
}

// ------------------------------------------------------------------------------------------
// Main

function setUpWork(o) {
  const top = mkdtempSync(join(tmpdir(), 'ptpvts-prod-mutations-'));
  backupDir = join(top, 'backups');
  mkdirSync(backupDir);
  if (o.inPlace) return { top, work: ROOT };
  const work = join(top, 'tree');
  const skip = new Set(['node_modules', 'build', 'dist', '.git', '.vitest-tmp', 'ptpvts-lab', 'ptpvts-demo']);
  // Only directories, regular files and links: a running process's socket or FIFO in the tree
  // (a benchmark's, say) cannot be copied and is nothing the checks read.
  const copyable = (p) => {
    try {
      const st = lstatSync(p);
      return st.isDirectory() || st.isFile() || st.isSymbolicLink();
    } catch {
      return false; // Gone meanwhile.
    }
  };
  try {
    cpSync(ROOT, work, { recursive: true, filter: (p) => !(dirname(p) === ROOT && (skip.has(basename(p)) || basename(p).endsWith('.log'))) && copyable(p) });
  } catch (e) {
    rmSync(top, { recursive: true, force: true });
    throw new GateError(`copying the tree to ${work} failed: ${e instanceof Error ? e.message : String(e)} (--in-place mutates the tree itself instead)`);
  }
  symlinkSync(join(ROOT, 'node_modules'), join(work, 'node_modules'));
  if (existsSync(join(ROOT, 'build'))) symlinkSync(join(ROOT, 'build'), join(work, 'build'));
  return { top, work };
}

function clip(s, n) {
  s = String(s);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function pad(s, n) {
  s = String(s);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n);
}

function printList() {
  console.log('| id | mechanism | file | checks |');
  console.log('|---|---|---|---|');
  for (const m of MUTATIONS) console.log(`| \`${m.id}\` | ${m.mechanism} | ${m.file} | ${m.checks.map((c) => `\`${checkLabel(c)}\``).join(', ')} |`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.list) return printList();
  let selected = o.only === null ? MUTATIONS : MUTATIONS.filter((m) => o.only.includes(m.id));
  if (o.withSeeds > 0) selected = selected.map((m) => ({ ...m, checks: [...m.checks, seeds(1, o.withSeeds, 900)] }));
  const t0 = Date.now();
  const { top, work } = setUpWork(o);
  const cleanup = () => {
    const errors = restoreAll();
    if (!o.keep && errors.length === 0) rmSync(top, { recursive: true, force: true });
    return errors;
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (running !== null) killGroup(running);
      const errors = cleanup();
      for (const e of errors) console.error(`prod-mutations: ${e.message}`);
      console.error(`prod-mutations: stopped by ${sig}; ${errors.length === 0 ? 'every mutated file restored' : 'RESTORATION FAILED'}`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('exit', () => {
    for (const e of restoreAll()) console.error(`prod-mutations: ${e.message}`);
  });

  console.log(`production mutation gate: ${selected.length} mutation(s), working in ${o.inPlace ? `${work} (in place)` : `a copy of the tree, ${work}`}`);
  const env = { ...process.env, FORCE_COLOR: '0' };
  for (const k of ['PTPVTS_SIM', 'PTPVTS_SEED', 'PTPVTS_PROD_SEEDS', 'PTPVTS_PROD_FROM', 'PTPVTS_PROD_LIVENESS', 'PTPVTS_LONG']) delete env[k];

  // The baseline: every check, unmutated, must pass. A gate over a red baseline proves nothing.
  const checks = new Map();
  for (const m of selected) for (const c of m.checks) checks.set(checkKey(c), c);
  const tb = Date.now();
  let red = 0;
  for (const c of checks.values()) {
    const r = await runCheck(work, c, env);
    console.log(`baseline ${r.status === 'pass' ? 'pass' : r.status.toUpperCase()} ${pad(checkLabel(c), 72)} ${r.seconds.toFixed(1)} s`);
    if (r.status !== 'pass') {
      red++;
      for (const f of r.failed.slice(0, 5)) console.log(`    failed: ${f.name}: ${f.message}`);
      if (r.detail !== undefined) console.log(`    ${r.detail}`);
      console.log(`    log: ${r.log}`);
    }
  }
  const baselineSeconds = (Date.now() - tb) / 1000;
  if (red > 0) {
    o.keep = true;
    console.log(`\nbaseline is red: ${red} of ${checks.size} check(s) fail without any mutation (logs kept in ${top}); no mutation was run`);
    cleanup();
    process.exit(1);
  }
  console.log(`baseline: ${checks.size} check(s) pass (${baselineSeconds.toFixed(1)} s)\n`);

  const rows = [];
  for (const m of selected) {
    const started = Date.now();
    const row = { id: m.id, mechanism: m.mechanism, caughtBy: [], why: [], errors: [], seconds: 0 };
    try {
      applyMutation(work, m);
      for (const c of m.checks) {
        const r = await runCheck(work, c, env);
        if (r.status === 'fail') {
          row.caughtBy.push(c.kind === 'seeds' ? checkLabel(c) : `${basename(c.file)} > ${r.failed[0].name}`);
          row.why.push(r.failed[0].message);
          if (!o.survey) break;
        } else if (r.status !== 'pass') row.errors.push(`${checkLabel(c)}: ${r.status}${r.detail === undefined ? '' : ` (${r.detail})`}; log ${r.log}`);
      }
    } catch (e) {
      if (!(e instanceof GateError)) throw e;
      row.errors.push(e.message);
    } finally {
      restore(join(work, m.file));
    }
    row.seconds = (Date.now() - started) / 1000;
    rows.push(row);
    console.log(`${row.caughtBy.length > 0 ? 'caught ' : 'MISSED '} ${pad(m.id, 28)} ${row.seconds.toFixed(1)} s  ${row.caughtBy[0] ?? row.errors[0] ?? 'every check passed with the mutation'}`);
    for (const [i, by] of row.caughtBy.entries()) console.log(`        ${i === 0 ? '' : `also ${by}\n        `}why: ${clip(row.why[i] ?? '', 220)}`);
    for (const e of row.errors) if (e !== row.errors[0] || row.caughtBy.length > 0) console.log(`        note: ${e}`);
  }

  const caught = rows.filter((r) => r.caughtBy.length > 0).length;
  console.log(`\n${pad('mutation', 28)}| ${pad('mechanism', 60)} | ${pad('caught by', 74)} | seconds`);
  console.log(`${'-'.repeat(28)}|${'-'.repeat(62)}|${'-'.repeat(76)}|--------`);
  for (const r of rows) console.log(`${pad(r.id, 28)}| ${pad(r.mechanism, 60)} | ${pad(r.caughtBy.length === 0 ? 'NOTHING' : r.caughtBy.join('; '), 74)} | ${r.seconds.toFixed(1)}`);
  const total = (Date.now() - t0) / 1000;
  const errors = cleanup();
  for (const e of errors) console.error(`prod-mutations: ${e.message}`);
  console.log(`\nbaseline ${baselineSeconds.toFixed(1)} s, total ${total.toFixed(1)} s${o.keep ? `; logs in ${top}` : ''}`);
  console.log(`${caught} of ${rows.length} production mutations caught`);
  process.exit(caught === rows.length && errors.length === 0 ? 0 : 1);
}

main().catch((e) => {
  for (const err of restoreAll()) console.error(`prod-mutations: ${err.message}`);
  console.error(`prod-mutations: ${e instanceof GateError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
