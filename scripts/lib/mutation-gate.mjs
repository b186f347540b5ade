/**
 * What the mutation gates share (scripts/mutations.mjs for the engine's safety rules,
 * scripts/prod-mutations.mjs for the production host path): arguments, a private copy of the
 * tree, copy-protected mutated files, checks run as vitest with a JSON report, the baseline,
 * and the table. A gate gives its mutations, how a check runs, and optional hooks.
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

export const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

export class GateError extends Error {
  name = 'GateError';
  code = 'EMUTATION_GATE';
}

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

export function pad(s, n) {
  s = String(s);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n);
}

function clip(s, n) {
  s = String(s);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/**
 * One gate's run. `spec`:
 * - `name` (messages), `title` (first line), `noun` ("mutations" in the last line), `tmpPrefix`;
 * - `script` (the gate's own file: --help prints its header), `mutations` (`{id, file, edits, checks}`
 *   and the text `what(m)` returns), `whatHeader` (its column);
 * - `extra`: `{flag, help, check(n)}`, a flag adding `check(n)` to every mutation's checks;
 * - `dropEnv`: variables a check must not inherit;
 * - `checkLabel(c)`, `vitest(c)` → `{files, tests?, env?}`, `messageOf(text)` (a failure's
 *   verdict), `caughtLabel(c, failed)`;
 * - `hooks`: `prepare(gate, work, env, selected)`, `afterApply(gate, work, m)`, `afterRestore(gate, work, m)`.
 */
export class MutationGate {
  backupDir = '';
  top = '';
  running = null;
  #live = new Map();
  #logSeq = 0;

  constructor(spec) {
    this.spec = spec;
  }

  fail(message) {
    console.error(`${this.spec.name}: ${message}`);
    process.exit(2);
  }

  /** A new numbered log file under the backup directory. */
  nextLog(stem) {
    return join(this.backupDir, `${stem}-${++this.#logSeq}.txt`);
  }

  parseArgs(argv) {
    const { extra, mutations } = this.spec;
    const o = { only: null, survey: false, inPlace: false, keep: false, list: false, extra: 0 };
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (a === '--only' || a.startsWith('--only=')) {
        const v = a === '--only' ? argv[++i] : a.slice('--only='.length);
        if (v === undefined || v.startsWith('--') || v === '') this.fail('--only needs a mutation id (or ids separated by commas)');
        o.only = v.split(',').filter((s) => s !== '');
      } else if (a === '--survey') o.survey = true;
      else if (a === extra.flag) {
        o.extra = Number(argv[++i]);
        if (!Number.isInteger(o.extra) || o.extra <= 0) this.fail(`${extra.flag} needs a whole number of schedules (e.g. ${extra.flag} 40)`);
      } else if (a === '--in-place') o.inPlace = true;
      else if (a === '--keep') o.keep = true;
      else if (a === '--list') o.list = true;
      else if (a === '--help' || a === '-h') {
        const lines = readFileSync(this.spec.script, 'utf8').split('\n');
        console.log(lines.slice(2, lines.indexOf(' */')).map((l) => l.replace(/^ \* ?/, '')).join('\n'));
        process.exit(0);
      } else this.fail(`unknown argument ${JSON.stringify(a)} (try --help)`);
    }
    if (o.only !== null) {
      const known = new Set(mutations.map((m) => m.id));
      const bad = o.only.filter((id) => !known.has(id));
      if (bad.length > 0) this.fail(`unknown mutation id ${bad.join(', ')}; known: ${[...known].join(', ')}`);
    }
    return o;
  }

  // ---------------------------------------------------------------------------- files

  apply(work, m) {
    const path = join(work, m.file);
    const original = readFileSync(path);
    let text = original.toString('utf8');
    for (const [find, replace] of m.edits) {
      const count = text.split(find).length - 1;
      if (count !== 1) throw new GateError(`mutation ${m.id}: the snippet occurs ${count} times in ${m.file} (must be exactly once; has the code moved?):\n    ${find.split('\n').join('\n    ')}`);
      text = text.replace(find, () => replace);
    }
    const mutated = Buffer.from(text, 'utf8');
    const backup = join(this.backupDir, `${m.id}.${basename(m.file)}.orig`);
    writeFileSync(backup, original);
    this.#live.set(path, { original, originalHash: sha256(original), mutatedHash: sha256(mutated), backup, id: m.id });
    writeFileSync(path, mutated);
    if (sha256(readFileSync(path)) !== sha256(mutated)) throw new GateError(`mutation ${m.id}: ${m.file} does not read back as written`);
  }

  /** Puts the original bytes back and proves it by hash; never overwrites a file someone changed meanwhile. */
  restore(path) {
    const f = this.#live.get(path);
    if (f === undefined) return;
    this.#live.delete(path);
    const now = sha256(readFileSync(path));
    if (now !== f.originalHash && now !== f.mutatedHash) {
      throw new GateError(`${path} changed while mutation ${f.id} was applied (by someone else?): left as it is; its original is in ${f.backup}`);
    }
    writeFileSync(path, f.original);
    if (sha256(readFileSync(path)) !== f.originalHash) throw new GateError(`${path} could not be restored (hash differs); its original is in ${f.backup}`);
  }

  restoreAll() {
    const errors = [];
    for (const path of [...this.#live.keys()]) {
      try {
        this.restore(path);
      } catch (e) {
        errors.push(e);
      }
    }
    return errors;
  }

  /** The tree the mutations are made in: the working tree (`inPlace`) or a private copy of it. */
  setUpWork(inPlace) {
    this.top = mkdtempSync(join(tmpdir(), this.spec.tmpPrefix));
    this.backupDir = join(this.top, 'backups');
    mkdirSync(this.backupDir);
    if (inPlace) return ROOT;
    const work = join(this.top, 'tree');
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
      rmSync(this.top, { recursive: true, force: true });
      throw new GateError(`copying the tree to ${work} failed: ${e instanceof Error ? e.message : String(e)} (--in-place mutates the tree itself instead)`);
    }
    symlinkSync(join(ROOT, 'node_modules'), join(work, 'node_modules'));
    if (existsSync(join(ROOT, 'build'))) symlinkSync(join(ROOT, 'build'), join(work, 'build'));
    return work;
  }

  // ---------------------------------------------------------------------------- processes

  run(cmd, args, { cwd, env, timeoutSec, log }) {
    return new Promise((resolve) => {
      const out = [];
      const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      this.running = child;
      child.stdout.on('data', (d) => out.push(d));
      child.stderr.on('data', (d) => out.push(d));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child);
      }, timeoutSec * 1000);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.running = null;
        const text = Buffer.concat(out).toString('utf8');
        if (log !== undefined) writeFileSync(log, text);
        resolve({ code, signal, timedOut, text });
      });
    });
  }

  /**
   * Runs one check. Returns `pass` (every selected test passed, at least one ran), `fail` (at
   * least one test failed: the names), `error` (no test failed, yet the run did not pass: a
   * file that does not load, a pattern matching nothing) or `timeout`.
   */
  async runCheck(work, c, env) {
    const started = Date.now();
    const log = this.nextLog('log');
    const json = log.replace(/log-(\d+)\.txt$/, 'report-$1.json');
    const v = this.spec.vitest(c);
    const args = ['run', ...v.files, '--reporter=json', `--outputFile=${json}`, ...(v.tests === undefined ? [] : ['-t', v.tests])];
    rmSync(json, { force: true });
    const r = await this.run(join(work, 'node_modules', '.bin', 'vitest'), args, { cwd: work, env: { ...env, ...v.env }, timeoutSec: c.timeoutSec, log });
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
        if (t.status === 'failed') failed.push({ file: file.name.slice(work.length + 1), name: t.title ?? t.fullName, message: this.spec.messageOf(String(t.failureMessages?.[0] ?? '')) });
        else if (t.status === 'passed') passed++;
      }
    }
    if (failed.length > 0) return { status: 'fail', seconds, failed, log };
    const suiteErrors = (report.testResults ?? []).filter((f) => f.status === 'failed').map((f) => String(f.message ?? '').split('\n')[0]);
    if (suiteErrors.length > 0 || r.code !== 0) return { status: 'error', seconds, failed, log, detail: suiteErrors[0] ?? `vitest exited ${r.code}` };
    if (passed === 0) return { status: 'error', seconds, failed, log, detail: 'no test ran (does the pattern still match a test name?)' };
    return { status: 'pass', seconds, failed, log, passed };
  }

  // ---------------------------------------------------------------------------- the run

  printList(columns, row) {
    console.log(`| ${columns.join(' | ')} |`);
    console.log(`|${columns.map(() => '---').join('|')}|`);
    for (const m of this.spec.mutations) console.log(`| ${row(m).join(' | ')} |`);
  }

  async main(argv, list) {
    const spec = this.spec;
    const hooks = spec.hooks ?? {};
    const o = this.parseArgs(argv);
    if (o.list) return list();
    let selected = o.only === null ? spec.mutations : spec.mutations.filter((m) => o.only.includes(m.id));
    if (o.extra > 0) selected = selected.map((m) => ({ ...m, checks: [...m.checks, spec.extra.check(o.extra)] }));
    const t0 = Date.now();
    const work = this.setUpWork(o.inPlace);
    const cleanup = () => {
      const errors = this.restoreAll();
      if (!o.keep && errors.length === 0) rmSync(this.top, { recursive: true, force: true });
      return errors;
    };
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.on(sig, () => {
        if (this.running !== null) killGroup(this.running);
        const errors = cleanup();
        for (const e of errors) console.error(`${spec.name}: ${e.message}`);
        console.error(`${spec.name}: stopped by ${sig}; ${errors.length === 0 ? 'every mutated file restored' : 'RESTORATION FAILED'}`);
        process.exit(sig === 'SIGINT' ? 130 : 143);
      });
    }
    process.on('exit', () => {
      for (const e of this.restoreAll()) console.error(`${spec.name}: ${e.message}`);
    });

    console.log(`${spec.title}: ${selected.length} mutation(s), working in ${o.inPlace ? `${work} (in place)` : `a copy of the tree, ${work}`}`);
    const env = { ...process.env, FORCE_COLOR: '0' };
    for (const k of spec.dropEnv) delete env[k];
    await hooks.prepare?.(this, work, env, selected);

    // The baseline: every check, unmutated, must pass. A gate over a red baseline proves nothing.
    const checks = new Map();
    for (const m of selected) for (const c of m.checks) checks.set(JSON.stringify(c), c);
    const tb = Date.now();
    let red = 0;
    for (const c of checks.values()) {
      const r = await this.runCheck(work, c, env);
      console.log(`baseline ${r.status === 'pass' ? 'pass' : r.status.toUpperCase()} ${pad(spec.checkLabel(c), 72)} ${r.seconds.toFixed(1)} s`);
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
      console.log(`\nbaseline is red: ${red} of ${checks.size} check(s) fail without any mutation (logs kept in ${this.top}); no mutation was run`);
      cleanup();
      process.exit(1);
    }
    console.log(`baseline: ${checks.size} check(s) pass (${baselineSeconds.toFixed(1)} s)\n`);

    const rows = [];
    for (const m of selected) {
      const started = Date.now();
      const row = { id: m.id, what: spec.what(m), caughtBy: [], why: [], errors: [], seconds: 0 };
      try {
        this.apply(work, m);
        await hooks.afterApply?.(this, work, m);
        for (const c of m.checks) {
          const r = await this.runCheck(work, c, env);
          if (r.status === 'fail') {
            row.caughtBy.push(spec.caughtLabel(c, r.failed[0]));
            row.why.push(r.failed[0].message);
            if (!o.survey) break;
          } else if (r.status !== 'pass') row.errors.push(`${spec.checkLabel(c)}: ${r.status}${r.detail === undefined ? '' : ` (${r.detail})`}; log ${r.log}`);
        }
      } catch (e) {
        if (!(e instanceof GateError)) throw e;
        row.errors.push(e.message);
      } finally {
        this.restore(join(work, m.file));
        await hooks.afterRestore?.(this, work, m);
      }
      row.seconds = (Date.now() - started) / 1000;
      rows.push(row);
      console.log(`${row.caughtBy.length > 0 ? 'caught ' : 'MISSED '} ${pad(m.id, 28)} ${row.seconds.toFixed(1)} s  ${row.caughtBy[0] ?? row.errors[0] ?? 'every check passed with the mutation'}`);
      for (const [i, by] of row.caughtBy.entries()) console.log(`        ${i === 0 ? '' : `also ${by}\n        `}why: ${clip(row.why[i] ?? '', 220)}`);
      for (const e of row.errors) if (e !== row.errors[0] || row.caughtBy.length > 0) console.log(`        note: ${e}`);
    }

    const caught = rows.filter((r) => r.caughtBy.length > 0).length;
    console.log(`\n${pad('mutation', 28)}| ${pad(spec.whatHeader, 60)} | ${pad('caught by', 74)} | seconds`);
    console.log(`${'-'.repeat(28)}|${'-'.repeat(62)}|${'-'.repeat(76)}|--------`);
    for (const r of rows) console.log(`${pad(r.id, 28)}| ${pad(r.what, 60)} | ${pad(r.caughtBy.length === 0 ? 'NOTHING' : r.caughtBy.join('; '), 74)} | ${r.seconds.toFixed(1)}`);
    const total = (Date.now() - t0) / 1000;
    const errors = cleanup();
    for (const e of errors) console.error(`${spec.name}: ${e.message}`);
    console.log(`\nbaseline ${baselineSeconds.toFixed(1)} s, total ${total.toFixed(1)} s${o.keep ? `; logs in ${this.top}` : ''}`);
    console.log(`${caught} of ${rows.length} ${spec.noun} caught`);
    process.exit(caught === rows.length && errors.length === 0 ? 0 : 1);
  }

  /** Runs `main`, restoring every mutated file whatever it throws. */
  start(list) {
    this.main(process.argv.slice(2), list).catch((e) => {
      for (const err of this.restoreAll()) console.error(`${this.spec.name}: ${err.message}`);
      console.error(`${this.spec.name}: ${e instanceof GateError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exit(1);
    });
  }
}

export function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
