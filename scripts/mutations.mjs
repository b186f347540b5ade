#!/usr/bin/env node
/**
 * The mutation gate (`npm run test:mutations`): each safety rule of the PtP protocol is broken
 * on purpose, one at a time, and the checks named for it must fail. A rule whose mutation no
 * check notices is a rule nothing tests. See docs/mutations.md.
 *
 * Usage: node scripts/mutations.mjs [--only ID[,ID...]] [--survey] [--with-schedules N] [--in-place] [--keep] [--list]
 *   --only      run these mutations (their checks' baseline first)
 *   --survey    run every check of a mutation, not only up to the first that catches it
 *   --with-schedules N  also run random schedules 0..N-1 after each mutation's own checks
 *   --in-place  mutate the working tree itself (default: a private copy under the OS temp dir,
 *               so people editing or testing the tree meanwhile never see a mutated file)
 *   --keep      keep the private copy and the logs (printed path)
 *   --list      print the table of mutations (markdown) and exit
 *
 * Every mutated file is copy-protected: its original bytes are kept in memory and in a backup
 * file, restored after the mutation's checks and on exit, SIGINT, SIGTERM, SIGHUP and uncaught
 * errors, and the restoration is verified by SHA-256. In place, a file someone else changed
 * while it was mutated is not overwritten: the gate stops and names the backup.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

// ------------------------------------------------------------------------------------------
// The checks. A story check runs named vitest files (optionally only the tests whose name
// matches `tests`, a regex as for `vitest -t`); a schedules check runs `count` random
// schedules from seed `from` (test/sim/mutation-schedules.test.ts). Cheapest first: the gate
// stops at the first check that fails.

const story = (file, tests, timeoutSec = 150) => ({ kind: 'story', files: [file], tests, timeoutSec });
const schedules = (from, count, timeoutSec = 240) => ({ kind: 'schedules', from, count, timeoutSec });

const CLAIMS = 'test/sim/claims.test.ts';
const STORIES = 'test/sim/safety-stories.test.ts';

/**
 * Each mutation: the rule it breaks (in words), the file, exact snippets and their
 * replacements (each snippet must occur exactly once, so the gate fails loudly when the code
 * moves), whether the addon must be rebuilt, and the checks that must catch it.
 */
export const MUTATIONS = [
  {
    id: 'phase1-election-ge',
    rule: 'An operator vts-in places a VTS on-line alone only if more than T VTCs elected it (engine, phase 1 election)',
    file: 'src/ptp/engine.ts',
    edits: [['c.elected = yes.length > c.prev.threshold ? yes : null;', 'c.elected = yes.length >= c.prev.threshold ? yes : null;']],
    checks: [story(CLAIMS, 'claim 18'), story(CLAIMS, 'on-line exactly when YES > T')],
  },
  {
    id: 'tally-js-ge',
    rule: 'An autonomous election goes on-line only when more than T YES ballots are counted (JS tally the engine uses in simulation)',
    file: 'src/hotpath/vote-tally-ref.ts',
    edits: [["if (e.yes > this.#threshold) e.decided = 'online';", "if (e.yes >= this.#threshold) e.decided = 'online';"]],
    checks: [story(CLAIMS, 'claim 18'), story(CLAIMS, 'on-line exactly when YES > T')],
  },
  {
    id: 'tally-native-ge',
    rule: 'The native tally (what the production agent counts with) decides on-line only when more than T voted YES',
    file: 'native/vote_tally.cc',
    native: true,
    edits: [
      [
        'if (s.decided != kUndecided || (s.yes <= threshold_ && s.yes + s.no != n_)) return kAccepted;\n    s.decided = s.yes > threshold_ ? kOnline : kOffline;',
        'if (s.decided != kUndecided || (s.yes < threshold_ && s.yes + s.no != n_)) return kAccepted;\n    s.decided = s.yes >= threshold_ ? kOnline : kOffline;',
      ],
    ],
    checks: [story('src/hotpath/vote-tally.test.ts', '^native vote tally')],
  },
  {
    id: 'no-keyseq-rule',
    rule: 'A VTC votes NO when a ballot it has seen carries a newer keySeq than its own newest key (it missed a key)',
    file: 'src/ptp/rules.ts',
    edits: [["  if (v.seenMaxKeySeq > v.key.seq) return { yes: false, why: `a ballot carries key ${v.seenMaxKeySeq}, newer than ${v.key.seq} here` };\n", '']],
    redundant: 'with T >= floor(n/2) the VTCs that missed a key are at most n - T - 1 <= T and cannot elect alone; it matters under the audited `threshold set T --force-below-half`',
    checks: [story(STORIES, 'newer keySeq')],
  },
  {
    id: 'no-election-seq-rule',
    rule: 'A VTC votes YES only in an election about its own newest key (one that lacks the commits of newer keys decides from an older current)',
    file: 'src/ptp/rules.ts',
    edits: [['  if (v.electionSeq !== v.key.seq) return { yes: false, why: `election is about key ${v.electionSeq}, newest here is ${v.key.seq}` };\n', '']],
    checks: [story(STORIES, 'own newest key')],
  },
  {
    id: 'no-last-key-seq-check',
    rule: 'A VTC votes NO for a VTS reporting a last key seq outside [newest seq it confirmed recording, newest seq held] (a restored older image)',
    file: 'src/ptp/rules.ts',
    edits: [['if (v.view.lastKeySeq < v.expectLo || v.view.lastKeySeq > v.expectHi) {', 'if (false) {']],
    checks: [story(CLAIMS, 'restored old image')],
  },
  {
    id: 'weak-keys-strong',
    rule: 'A forced key that not more than T VTCs hold is weak: the status it gives is off-line until an election',
    file: 'src/ptp/rules.ts',
    edits: [["return key.seq === 0 || key.mode !== 'forced' || key.acks.length > key.threshold;", 'return true;']],
    checks: [story(CLAIMS, 'n = 2, T = 0 is refused'), story(CLAIMS, 'T = n - 1')],
  },
  {
    id: 'weak-keys-strong-at-t',
    rule: 'A forced key is strong only when more than T (not T) VTCs hold it',
    file: 'src/ptp/rules.ts',
    edits: [["return key.seq === 0 || key.mode !== 'forced' || key.acks.length > key.threshold;", "return key.seq === 0 || key.mode !== 'forced' || key.acks.length >= key.threshold;"]],
    checks: [story(CLAIMS, 'n = 2, T = 0 is refused'), story(CLAIMS, 'T = n - 1')],
  },
  {
    id: 'no-catch-up',
    rule: 'A VTC that (re)starts serves, votes and acknowledges only once more than T VTCs said they hold no newer key',
    file: 'src/ptp/engine.ts',
    edits: [['    if (this.#synced) return true;\n    let n = 1;', '    return true;\n    let n = 1;']],
    checks: [story(STORIES, 'restarted VTC serves nothing')],
  },
  {
    id: 'commit-unbacked',
    rule: 'A commit that places a VTS on-line by election is taken only with more than T signed YES ballots of that election',
    file: 'src/ptp/engine.ts',
    edits: [["if (commit.election !== undefined && commit.election !== null && !this.#backed(key, commit)) return this.#reject('commit-election-unbacked');", '']],
    checks: [story(CLAIMS, 'signed YES ballots')],
  },
  {
    id: 'commit-backed-at-t',
    rule: 'The commit check counts more than T (not T) signed YES ballots',
    file: 'src/ptp/engine.ts',
    edits: [['yes.size === e.yes.length && yes.size > key.threshold;', 'yes.size === e.yes.length && yes.size >= key.threshold;']],
    checks: [story(CLAIMS, 'signed YES ballots')],
  },
  {
    id: 'vts-fence-lags-one',
    rule: 'A VTS refuses host I/O, token updates and copies whose epoch is older than its last key seq (here: one key older passes)',
    file: 'src/vts/vts-unit.ts',
    edits: [['if (epoch < this.#lastKeySeq) throw new FencedError(epoch, this.#lastKeySeq);', 'if (epoch + 1 < this.#lastKeySeq) throw new FencedError(epoch, this.#lastKeySeq);']],
    checks: [story('src/vts/vts-unit.test.ts', 'fences a VTC'), story('src/vts/fencing.test.ts', 'carry the epoch'), story('src/vtc/fencing.test.ts')],
  },
  {
    id: 'vts-fence-skipped',
    rule: 'A VTS compares the epoch of every host operation, token update and copy with its last key seq at all',
    file: 'src/vts/vts-unit.ts',
    edits: [['if (epoch < this.#lastKeySeq) throw new FencedError(epoch, this.#lastKeySeq);', '']],
    checks: [story('src/vts/vts-unit.test.ts', 'fences a VTC'), story('src/vts/fencing.test.ts', 'carry the epoch'), story('src/vtc/fencing.test.ts')],
  },
  {
    id: 'vts-fence-no-fork',
    rule: 'A VTS refuses an epoch with its last key seq but another key MAC (a forked branch)',
    file: 'src/vts/vts-unit.ts',
    edits: [["if (epoch === this.#lastKeySeq && epochMac !== undefined && this.#lastKeyMac !== '' && epochMac !== this.#lastKeyMac) throw", "if (false) throw"]],
    checks: [story('src/vts/fencing.test.ts', 'forked branches')],
  },
  {
    id: 'copy-unfenced',
    rule: 'A peer copy installs data on a VTS only under an epoch that VTS admits (fenced copy operations)',
    file: 'src/vts/vts-unit.ts',
    edits: [
      ['o: { sha256?: string } & Fence = {}): Promise<VolumeToken> {\n    this.#operating(o);', 'o: { sha256?: string } & Fence = {}): Promise<VolumeToken> {\n    this.#operating();'],
      ["// The copier's key may have been overtaken while the bytes streamed in.\n      this.#operating(o);", "// The copier's key may have been overtaken while the bytes streamed in.\n      this.#operating();"],
    ],
    checks: [story('src/vts/fencing.test.ts', 'carry the epoch'), story('src/vtc/fencing.test.ts')],
  },
  {
    id: 'token-unfenced',
    rule: 'A token update (markBehind, the deferred copy of an on-line write) is fenced by the writer\'s epoch',
    file: 'src/vts/vts-unit.ts',
    edits: [['async markBehind(volser: string, generation: number, fence: Fence = {}): Promise<VolumeToken> {\n    this.#operating(fence);', 'async markBehind(volser: string, generation: number, fence: Fence = {}): Promise<VolumeToken> {\n    this.#operating();']],
    checks: [story('src/vts/fencing.test.ts', 'carry the epoch'), story('src/vtc/fencing.test.ts')],
  },
  {
    id: 'reads-not-generation-aware',
    rule: 'A read is served only by a VTS holding the newest generation either VTS reports (never an older one whose token reads consistent)',
    file: 'src/ptp/volumes.ts',
    edits: [['return t !== undefined && t.consistent && t.generation === g && t.dataGeneration === g && g > 0;', 'return t !== undefined && t.consistent && t.dataGeneration > 0;']],
    checks: [story(STORIES, 'older generation never serves'), story('src/vtc/fencing.test.ts')],
  },
];

// ------------------------------------------------------------------------------------------
// Arguments

function parseArgs(argv) {
  const o = { only: null, survey: false, inPlace: false, keep: false, list: false, withSchedules: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) fail('--only needs a mutation id (or ids separated by commas)');
      o.only = v.split(',').filter((s) => s !== '');
    } else if (a.startsWith('--only=')) o.only = a.slice(7).split(',').filter((s) => s !== '');
    else if (a === '--survey') o.survey = true;
    else if (a === '--with-schedules') {
      o.withSchedules = Number(argv[++i]);
      if (!Number.isInteger(o.withSchedules) || o.withSchedules <= 0) fail('--with-schedules needs a whole number of schedules');
    }
    else if (a === '--in-place') o.inPlace = true;
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
  code = 'EMUTATION_GATE';
}

function fail(message) {
  console.error(`mutations: ${message}`);
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
const checkLabel = (c) => (c.kind === 'schedules' ? `schedules ${c.from}..${c.from + c.count - 1}` : `${c.files.join(' ')}${c.tests === undefined ? '' : ` -t "${c.tests}"`}`);

let logSeq = 0;

/**
 * Runs one check. Returns `pass` (every selected test passed, at least one ran), `fail` (at
 * least one test failed: the names), `error` (no test failed, yet the run did not pass: a
 * file that does not load, a pattern matching nothing) or `timeout`.
 */
async function runCheck(work, c, env) {
  const started = Date.now();
  const json = join(backupDir, `report-${++logSeq}.json`);
  const log = join(backupDir, `log-${logSeq}.txt`);
  const files = c.kind === 'schedules' ? ['test/sim/mutation-schedules.test.ts'] : c.files;
  const args = ['run', ...files, '--reporter=json', `--outputFile=${json}`, ...(c.tests === undefined ? [] : ['-t', c.tests])];
  const runEnv = { ...env, ...(c.kind === 'schedules' ? { PTPVTS_MUTATION_SEEDS: `${c.from}:${c.count}` } : {}) };
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
  for (const file of report.testResults ?? []) {
    for (const t of file.assertionResults ?? []) {
      if (t.status === 'failed') failed.push({ file: file.name.slice(work.length + 1), name: t.title ?? t.fullName, message: String(t.failureMessages?.[0] ?? '').split('\n')[0] });
      else if (t.status === 'passed') passed++;
    }
  }
  if (failed.length > 0) return { status: 'fail', seconds, failed, log };
  const suiteErrors = (report.testResults ?? []).filter((f) => f.status === 'failed').map((f) => String(f.message ?? '').split('\n')[0]);
  if (suiteErrors.length > 0 || r.code !== 0) return { status: 'error', seconds, failed, log, detail: suiteErrors[0] ?? `vitest exited ${r.code}` };
  if (passed === 0) return { status: 'error', seconds, failed, log, detail: 'no test ran (does the pattern still match a test name?)' };
  return { status: 'pass', seconds, failed, log, passed };
}

// ------------------------------------------------------------------------------------------
// The addon, built apart from build/Release (which other people and processes load)

let addonDir = '';
let addonBuilt = false;

async function buildAddon(work) {
  const started = Date.now();
  const first = !addonBuilt;
  if (first) {
    mkdirSync(addonDir, { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(addonDir, 'node_modules'));
    writeFileSync(join(addonDir, 'package.json'), JSON.stringify({ name: 'ptpvts-mutation-addon', private: true, scripts: { rebuild: 'node-gyp rebuild', build: 'node-gyp build' } }));
    cpSync(join(work, 'binding.gyp'), join(addonDir, 'binding.gyp'));
  }
  // Copy only what changed, so the incremental build recompiles only the mutated file.
  const src = join(work, 'native');
  const dst = join(addonDir, 'native');
  mkdirSync(dst, { recursive: true });
  cpSync(src, dst, {
    recursive: true,
    filter: (from) => {
      const to = join(dst, from.slice(src.length));
      if (!existsSync(to) || !from.match(/\.(cc|h|hpp|c)$/)) return true;
      return sha256(readFileSync(from)) !== sha256(readFileSync(to));
    },
  });
  const r = await run('npm', ['run', '-s', first ? 'rebuild' : 'build'], { cwd: addonDir, env: process.env, timeoutSec: 600, log: join(backupDir, `addon-build-${++logSeq}.txt`) });
  if (r.code !== 0) throw new GateError(`building the addon failed (exit ${r.code}): ${r.text.trim().split('\n').slice(-8).join('\n')}`);
  addonBuilt = true;
  return (Date.now() - started) / 1000;
}

// ------------------------------------------------------------------------------------------
// Main

function setUpWork(o) {
  const top = mkdtempSync(join(tmpdir(), 'ptpvts-mutations-'));
  backupDir = join(top, 'backups');
  addonDir = join(top, 'addon');
  mkdirSync(backupDir);
  if (o.inPlace) return { top, work: ROOT };
  const work = join(top, 'tree');
  const skip = new Set(['node_modules', 'build', 'dist', '.git', '.vitest-tmp', 'ptpvts-lab', 'ptpvts-demo']);
  cpSync(ROOT, work, { recursive: true, filter: (p) => !(dirname(p) === ROOT && skip.has(basename(p))) });
  symlinkSync(join(ROOT, 'node_modules'), join(work, 'node_modules'));
  if (existsSync(join(ROOT, 'build'))) symlinkSync(join(ROOT, 'build'), join(work, 'build'));
  return { top, work };
}

function pad(s, n) {
  s = String(s);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n);
}

function printList() {
  console.log('| id | rule | file | addon rebuild | checks |');
  console.log('|---|---|---|---|---|');
  for (const m of MUTATIONS) console.log(`| \`${m.id}\` | ${m.rule}${m.redundant === undefined ? '' : ` (redundant: ${m.redundant})`} | ${m.file} | ${m.native === true ? 'yes' : 'no'} | ${m.checks.map((c) => `\`${checkLabel(c)}\``).join(', ')} |`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.list) return printList();
  let selected = o.only === null ? MUTATIONS : MUTATIONS.filter((m) => o.only.includes(m.id));
  // Survey aid: how many random schedules (seeds 0..N-1) each mutation needs, after its stories.
  if (o.withSchedules > 0) selected = selected.map((m) => ({ ...m, checks: [...m.checks, schedules(0, o.withSchedules)] }));
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
      for (const e of errors) console.error(`mutations: ${e.message}`);
      console.error(`mutations: stopped by ${sig}; ${errors.length === 0 ? 'every mutated file restored' : 'RESTORATION FAILED'}`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('exit', () => {
    for (const e of restoreAll()) console.error(`mutations: ${e.message}`);
  });

  console.log(`mutation gate: ${selected.length} mutation(s), working in ${o.inPlace ? `${work} (in place)` : `a copy of the tree, ${work}`}`);
  const env = { ...process.env, FORCE_COLOR: '0' };
  for (const k of ['PTPVTS_SIM', 'PTPVTS_SEED', 'PTPVTS_SIM_COUNT', 'PTPVTS_LONG', 'PTPVTS_MUTATION_SEEDS', 'PTPVTS_NATIVE']) delete env[k];
  if (selected.some((m) => m.native === true)) {
    const s = await buildAddon(work);
    env.PTPVTS_NATIVE = join(addonDir, 'build', 'Release', 'ptpvts.node');
    console.log(`addon built apart from build/Release for the native mutations (${s.toFixed(1)} s)`);
  }

  // The baseline: every check, unmutated, must pass. A gate over a red baseline proves nothing.
  const checks = new Map();
  for (const m of selected) for (const c of m.checks) checks.set(checkKey(c), c);
  const tb = Date.now();
  let red = 0;
  for (const c of checks.values()) {
    const r = await runCheck(work, c, env);
    console.log(`baseline ${r.status === 'pass' ? 'pass' : r.status.toUpperCase()} ${pad(checkLabel(c), 70)} ${r.seconds.toFixed(1)} s`);
    if (r.status !== 'pass') {
      red++;
      for (const f of r.failed.slice(0, 5)) console.log(`    failed: ${f.file} > ${f.name}: ${f.message}`);
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
    const row = { id: m.id, rule: m.rule, caughtBy: [], why: [], errors: [], seconds: 0 };
    try {
      applyMutation(work, m);
      if (m.native === true) await buildAddon(work);
      for (const c of m.checks) {
        const r = await runCheck(work, c, env);
        if (r.status === 'fail') {
          const f = r.failed[0];
          row.caughtBy.push(c.kind === 'schedules' ? `${checkLabel(c)}: ${f.message.replace(/^Error: /, '')}` : `${basename(f.file)} > ${f.name}`);
          row.why.push(f.message);
          if (!o.survey) break;
        } else if (r.status !== 'pass') row.errors.push(`${checkLabel(c)}: ${r.status}${r.detail === undefined ? '' : ` (${r.detail})`}; log ${r.log}`);
      }
    } catch (e) {
      if (!(e instanceof GateError)) throw e;
      row.errors.push(e.message);
    } finally {
      restore(join(work, m.file));
      // The restored native source is newer than the mutated object: the next build recompiles it.
      if (m.native === true) await buildAddon(work);
    }
    row.seconds = (Date.now() - started) / 1000;
    rows.push(row);
    console.log(`${row.caughtBy.length > 0 ? 'caught ' : 'MISSED '} ${pad(m.id, 28)} ${row.seconds.toFixed(1)} s  ${row.caughtBy[0] ?? row.errors[0] ?? 'every check passed with the mutation'}`);
    for (const [i, by] of row.caughtBy.entries()) console.log(`        ${i === 0 ? '' : `also ${by}\n        `}failure: ${pad(row.why[i] ?? '', 200)}`);
    for (const e of row.errors) if (e !== row.errors[0] || row.caughtBy.length > 0) console.log(`        note: ${e}`);
  }

  const caught = rows.filter((r) => r.caughtBy.length > 0).length;
  console.log('\nmutation                    | rule                                                         | caught by                                                                  | seconds');
  console.log(`${'-'.repeat(28)}|${'-'.repeat(62)}|${'-'.repeat(76)}|--------`);
  for (const r of rows) {
    const by = r.caughtBy.length === 0 ? 'NOTHING' : r.caughtBy.join('; ');
    console.log(`${pad(r.id, 28)}| ${pad(r.rule, 60)} | ${pad(by, 74)} | ${r.seconds.toFixed(1)}`);
  }
  const total = (Date.now() - t0) / 1000;
  const errors = cleanup();
  for (const e of errors) console.error(`mutations: ${e.message}`);
  console.log(`\nbaseline ${baselineSeconds.toFixed(1)} s, total ${total.toFixed(1)} s${o.keep ? `; logs in ${top}` : ''}`);
  console.log(`${caught} of ${rows.length} mutations caught`);
  process.exit(caught === rows.length && errors.length === 0 ? 0 : 1);
}

main().catch((e) => {
  for (const err of restoreAll()) console.error(`mutations: ${err.message}`);
  console.error(`mutations: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
