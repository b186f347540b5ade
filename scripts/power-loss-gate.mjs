#!/usr/bin/env node
/**
 * Power-loss gate: every sync point of the project must be caught by a power-loss campaign.
 * For each sync point below: remove that one call (a no-op that still compiles), rebuild the
 * addon if it is native code, run the campaign(s) that must catch it with a reduced cut count,
 * and require a failure. Prints `sync point | campaign | caught/MISSED` and exits non-zero if any
 * required point is missed (or a campaign file is missing, or a match is no longer unique).
 *
 * By default the mutations are made in a scratch copy of the repository (node_modules linked),
 * so the working tree is never modified, even if the gate is killed. `--in-place` mutates the
 * working tree itself (one file at a time, restored on exit, SIGINT and SIGTERM).
 *
 * Usage: node scripts/power-loss-gate.mjs [--in-place] [--only ID[,ID…]] [--list] [--keep]
 * Env: PTPVTS_POWER_CUTS (default 200 here), PTPVTS_GATE_TIMEOUT_S (per campaign run, 900).
 *
 * When the grep below finds a sync point not in the list, the gate fails: add it.
 *   grep -n "fsync\|fdatasync\|\.sync()\|datasync" -r native src firmware-sim --include=*.ts --include=*.cc | grep -v test
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const KJ = 'test/power-loss/key-journal.power-loss.test.ts';
const CART = 'test/power-loss/cartridge.power-loss.test.ts';
const PART = 'test/power-loss/partitions.power-loss.test.ts';
const VTS = 'test/power-loss/vts-state.power-loss.test.ts';
const LAB = 'test/power-loss/lab-state.power-loss.test.ts';

/**
 * `match` must occur exactly once in `file`; `call` is replaced by `noop` inside it. `optional`
 * marks a call that is not a durability point (its removal cannot lose acknowledged data), with
 * the reason: it is reported, never required.
 */
const SYNC_POINTS = [
  // native key journal (native/key_journal.cc)
  { id: 'kj-native-dir-fsync', file: 'native/key_journal.cc', match: 'if (fsync(dfd) != 0) {', call: 'fsync(dfd)', noop: '0', campaigns: [KJ] },
  { id: 'kj-native-truncate-sync', file: 'native/key_journal.cc', match: 'return fail_.set(errno, "ftruncate", path_);\n      if (fdatasync(fd_) != 0)', call: 'fdatasync(fd_)', noop: '0', campaigns: [KJ] },
  { id: 'kj-native-append-sync', file: 'native/key_journal.cc', match: '    if (fdatasync(fd_) != 0) fail_.set(errno, "fdatasync", path_);', call: 'fdatasync(fd_)', noop: '0', campaigns: [KJ] },
  { id: 'kj-native-compact-sync', file: 'native/key_journal.cc', match: 'if (ok && fdatasync(nfd) != 0) {', call: 'fdatasync(nfd)', noop: '0', campaigns: [KJ] },
  // JS reference key journal (src/hotpath/key-journal-ref.ts)
  { id: 'kj-ref-dir-fsync', file: 'src/hotpath/key-journal-ref.ts', match: 'await handle.sync();', call: 'handle.sync()', noop: 'Promise.resolve()', campaigns: [KJ] },
  { id: 'kj-ref-copy-sync', file: 'src/hotpath/key-journal-ref.ts', match: 'await copy.datasync();', call: 'copy.datasync()', noop: 'Promise.resolve()', campaigns: [KJ] },
  { id: 'kj-ref-rewrite-sync', file: 'src/hotpath/key-journal-ref.ts', match: 'encodeRecord(r))), 0);\n    await tmp.datasync();', call: 'tmp.datasync()', noop: 'Promise.resolve()', campaigns: [KJ] },
  { id: 'kj-ref-truncate-sync', file: 'src/hotpath/key-journal-ref.ts', match: 'await file.truncate(validBytes);\n        await file.datasync();', call: 'file.datasync()', noop: 'Promise.resolve()', campaigns: [KJ] },
  { id: 'kj-ref-append-sync', file: 'src/hotpath/key-journal-ref.ts', match: 'await writeAll(file, framed, offset);\n        await file.datasync();', call: 'file.datasync()', noop: 'Promise.resolve()', campaigns: [KJ] },
  { id: 'kj-ref-compact-sync', file: 'src/hotpath/key-journal-ref.ts', match: 'size += framed.length;\n        }\n        await tmp.datasync();', call: 'tmp.datasync()', noop: 'Promise.resolve()', campaigns: [KJ] },
  // cartridge files (firmware-sim/media/cartridge.ts) and the drive's use of them
  { id: 'cart-dir-fsync', file: 'firmware-sim/media/cartridge.ts', match: "const fd = io.openSync(dirname(path), 'r');\n  try {\n    io.fsyncSync(fd);", call: 'io.fsyncSync(fd);', noop: 'void fd;', campaigns: [CART] },
  { id: 'cart-create-fsync', file: 'firmware-sim/media/cartridge.ts', match: 'io.ftruncateSync(fd, LOG_OFFSET);\n      io.fsyncSync(fd);', call: 'io.fsyncSync(fd);', noop: 'void fd;', campaigns: [CART] },
  { id: 'cart-torn-tail-sync', file: 'firmware-sim/media/cartridge.ts', match: 'io.ftruncateSync(this.fd, scan.endOfLog);\n          io.fdatasyncSync(this.fd);', call: 'io.fdatasyncSync(this.fd);', noop: 'void this.fd;', campaigns: [CART], optional: 'the open bumps the generation past every record in the tail, so a tail back after a cut is stale to the scan; the next sync point makes the cut durable' },
  { id: 'cart-upgrade-header-sync', file: 'firmware-sim/media/cartridge.ts', match: 'encodeHeader(header).subarray(0, HEADER_USED), 0);\n      this.io.fdatasyncSync(this.fd);', call: 'this.io.fdatasyncSync(this.fd);', noop: 'void this.fd;', campaigns: [CART] },
  {
    id: 'cart-early-writeback',
    file: 'firmware-sim/media/cartridge.ts',
    match: 'else this.io.fdatasync(fd, done);',
    call: 'this.io.fdatasync(fd,',
    noop: '((_fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => setImmediate(cb, null))(fd,',
    campaigns: [CART],
    optional: 'background writeback between sync points (its fdatasync form, for a file I/O without sync_file_range); acknowledged data is covered by the sync-point fdatasync',
  },
  {
    id: 'cart-early-writeback-range',
    file: 'firmware-sim/media/cartridge.ts',
    match: 'if (range) this.io.startWriteback!(fd, Math.max(0, this.appendOffset - length), length, done);',
    call: 'this.io.startWriteback!(fd,',
    noop: '((_fd: number, _offset: number, _length: number, cb: (e: NodeJS.ErrnoException | null) => void) => setImmediate(cb, null))(fd,',
    campaigns: [CART],
    optional: 'sync_file_range only starts writeback and makes nothing durable; acknowledged data is covered by the sync-point fdatasync',
  },
  // The sync points a drive waits for off the event loop (Cartridge.syncAsync, cartridge memory
  // and the close): one fdatasync on the thread pool serves them all.
  {
    id: 'cart-async-sync-point',
    file: 'firmware-sim/media/cartridge.ts',
    match: 'const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => this.io.fdatasync(fd, resolve));',
    call: 'this.io.fdatasync(fd, resolve)',
    noop: 'resolve(null)',
    // The partitions campaign's sync points are the synchronous ones (cart-sync-point); it does not see this one go.
    campaigns: [CART],
  },
  { id: 'cart-sync-point', file: 'firmware-sim/media/cartridge.ts', match: "this.guarded('fdatasync at a sync point', () => this.io.fdatasyncSync(this.fd));", call: 'this.io.fdatasyncSync(this.fd)', noop: 'undefined', campaigns: [CART, PART] },
  { id: 'cart-mam-sync', file: 'firmware-sim/media/cartridge.ts', match: 'MAM_SLOT_OFFSETS[seq % 2] ?? HEADER_SIZE);\n      this.io.fdatasyncSync(this.fd);', call: 'this.io.fdatasyncSync(this.fd);', noop: 'void this.fd;', campaigns: [CART, PART] },
  {
    id: 'cart-floor-cut-sync',
    file: 'firmware-sim/media/cartridge.ts',
    match: "if (this.cutUnsynced) this.guarded('making the last cut durable before a new floor', () => this.io.fdatasyncSync(this.fd));",
    call: 'this.io.fdatasyncSync(this.fd)',
    noop: 'undefined',
    campaigns: [CART],
    optional: 'needs two overwrites without a sync point between and a cut that keeps the second floor alone: durability.test.ts (a second overwrite before the cut of the first is durable) fails without it',
  },
  {
    id: 'cart-partitioned-header-sync',
    file: 'firmware-sim/media/cartridge.ts',
    match: 'encodeHeader(header).subarray(0, HEADER_USED), 0);\n        this.io.fdatasyncSync(this.fd);',
    call: 'this.io.fdatasyncSync(this.fd);',
    noop: 'void this.fd;',
    campaigns: [PART],
    optional: 'this build reads a layout whatever the header version says; the version 3 mark keeps builds without partitions from reading the file as one partition',
  },
  {
    id: 'cart-format-cut-sync',
    file: 'firmware-sim/media/cartridge.ts',
    match: 'this.io.ftruncateSync(this.fd, LOG_OFFSET);\n      this.io.fdatasyncSync(this.fd);',
    call: 'this.io.fdatasyncSync(this.fd);',
    noop: 'void this.fd;',
    campaigns: [PART],
    optional: "the format's floor already makes every record before it stale; the sync keeps a later floor (a one-partition overwrite) from ever standing over a cut not yet durable",
  },
  {
    // WRITE FILEMARKS, REWIND and unload wait for cart-async-sync-point; this synchronous flush
    // is the power-on reset's and process shutdown's, which answer no host.
    id: 'drive-flush-now-sync',
    file: 'firmware-sim/ssc/drive.ts',
    match: 'try {\n      m.sync();',
    call: 'm.sync();',
    noop: 'void m;',
    campaigns: [CART],
    optional: 'the power-on reset and process shutdown flush answer no host: nothing acknowledged rests on it (the acknowledged sync points are cart-async-sync-point)',
  },
  // VTS unit state (src/vts)
  { id: 'vts-slot-file-sync', file: 'src/vts/slot-file.ts', match: 'await fd.datasync();', call: 'fd.datasync()', noop: 'Promise.resolve()', campaigns: [VTS] },
  { id: 'vts-durable-dir-fsync', file: 'src/vts/durable.ts', match: "const h = await fs.open(dir, 'r');\n  try {\n    await h.sync();", call: 'h.sync()', noop: 'Promise.resolve()', campaigns: [VTS] },
  { id: 'vts-durable-file-fsync', file: 'src/vts/durable.ts', match: 'await writeAll(h, bytes, 0, tmp);\n      await h.sync();', call: 'h.sync()', noop: 'Promise.resolve()', campaigns: [VTS] },
  {
    id: 'vts-early-datasync',
    file: 'src/vts/durable.ts',
    match: 'step = this.file.datasync();',
    call: 'this.file.datasync()',
    noop: 'Promise.resolve()',
    campaigns: [VTS],
    optional: "background fdatasync while a working file is written, a head start for the commit's fsync; nothing is acknowledged before that fsync (vts-cache-file-sync)",
  },
  {
    id: 'vts-early-writeback-range',
    file: 'src/vts/durable.ts',
    match: 'step = this.file.startWriteback!(end - n, n);',
    call: 'this.file.startWriteback!(end - n, n)',
    noop: 'Promise.resolve()',
    campaigns: [VTS],
    optional: 'sync_file_range only starts writeback and makes nothing durable',
  },
  { id: 'vts-cache-file-sync', file: 'src/vts/volume-cache.ts', match: 'await this.fh.sync();', call: 'this.fh.sync()', noop: 'Promise.resolve()', campaigns: [VTS] },
  // A new generation's data (a close, a peer copy, a recall) is placed by VolumeCache.#place.
  { id: 'vts-cache-commit-sync', file: 'src/vts/volume-cache.ts', match: 'let at = f.path;\n    try {\n      await f.sync();', call: 'f.sync()', noop: 'Promise.resolve()', campaigns: [VTS] },
  // lab CLI state (src/cli/lab.ts)
  { id: 'lab-dir-fsync', file: 'src/cli/lab.ts', match: "const fd = openSync(dir, 'r');\n  try {\n    fsyncSync(fd);", call: 'fsyncSync(fd);', noop: 'void fd;', campaigns: [LAB] },
  { id: 'lab-file-fsync', file: 'src/cli/lab.ts', match: 'bytes.length - off);\n    fsyncSync(fd);', call: 'fsyncSync(fd);', noop: 'void fd;', campaigns: [LAB] },
];

const SYNC_RE = /fsync|fdatasync|\.sync\(\)|datasync/;
const SCAN_DIRS = ['native', 'src', 'firmware-sim'];

function parseArgs(argv) {
  const o = { inPlace: false, only: null, list: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--in-place') o.inPlace = true;
    else if (a === '--list') o.list = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--only' && argv[i + 1]) o.only = new Set(argv[++i].split(','));
    else if (a.startsWith('--only=')) o.only = new Set(a.slice(7).split(','));
    else throw new Error(`power-loss-gate: unknown argument '${a}' (use --in-place, --only ID,…, --list, --keep)`);
  }
  return o;
}

function countOccurrences(text, needle) {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) n++;
  return n;
}

/**
 * Lines the grep finds that are not sync points themselves: declarations and wrappers whose
 * callers are listed above. Exact trimmed line text per file.
 */
const NOT_SYNC_POINTS = {
  'src/platform/fs.ts': [
    'datasync(): Promise<void>;',
    'const fsyncP = promisify(fsync);',
    'const fdatasyncP = promisify(fdatasync);',
    "return this.#with('fsync', (fd) => fsyncP(fd));",
    'datasync(): Promise<void> {',
    "return this.#with('fdatasync', (fd) => fdatasyncP(fd));",
  ],
  'src/cli/lab.ts': [],
  // The virtual library re-reading the volume catalogue (its changer's view), not an fsync.
  'src/cli/virtual-library.ts': ["await this.sync().catch((e: unknown) => this.log.warn({ err: e }, 'catalogue could not be read: the changer answers from what it had'));"],
  'src/vts/volume-cache.ts': ['async sync(): Promise<void> {'],
  'firmware-sim/media/cartridge.ts': [
    'function fsyncDir(io: CartridgeFileIo, path: string): void {',
    'fsyncDir(io, path);', // its only caller; the fsync inside is cart-dir-fsync
    'this.sync();',
    // fdatasyncAsync and its callers: the fdatasync inside is cart-async-sync-point.
    'private async fdatasyncAsync(what: string): Promise<void> {',
    "await this.fdatasyncAsync('fdatasync at a sync point');",
    "await this.fdatasyncAsync('writing cartridge memory');",
    "if (this.syncing) throw new CartridgeStateError(`${what} on ${this.path} cannot start while a sync point's fdatasync is in flight; wait for whenSynced()`);",
  ],
  // The journal's sync option being parsed, and its fallback when RWF_DSYNC is refused.
  'native/key_journal.cc': [
    'else throw Napi::TypeError::New(info.Env(), "new KeyJournal(path, options): options.sync must be \'fdatasync\' or \'dsync\'");',
    'if (t.dsyncUnsupported_) sync_ = SyncMode::kFdatasync;',
  ],
  'firmware-sim/media/file-io.ts': [
    'fsyncSync(fd: number): void;',
    'fdatasyncSync(fd: number): void;',
    'fdatasync(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void;',
    'fsyncSync: (fd) => fsyncSync(fd),',
    'fdatasyncSync: (fd) => fdatasyncSync(fd),',
    'fdatasync: (fd, callback) => fdatasync(fd, callback),',
  ],
};

/** Production lines the grep finds that neither an entry nor NOT_SYNC_POINTS accounts for. */
function uncovered(root) {
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        walk(p);
        continue;
      }
      if (!/\.(ts|cc)$/.test(e.name) || /test|fixture/.test(e.name)) continue;
      const rel = relative(root, p);
      const text = readFileSync(p, 'utf8');
      const ranges = SYNC_POINTS.filter((s) => s.file === rel)
        .map((s) => [text.indexOf(s.match), s.match.length])
        .filter(([at]) => at >= 0)
        .map(([at, len]) => [at, at + len]);
      const ignore = NOT_SYNC_POINTS[rel] ?? [];
      let off = 0;
      for (const line of text.split('\n')) {
        const t = line.trim();
        const start = off;
        off += line.length + 1;
        if (!SYNC_RE.test(t) || /^(\/\/|\*|\/\*|import )/.test(t) || !/\(/.test(t)) continue;
        if (/^(fail\.|fail_\.|return fail)/.test(t) || /"f(data)?sync"/.test(t) && !/\bf(data)?sync\(/.test(t.replace(/"[^"]*"/g, ''))) continue;
        if (ignore.includes(t)) continue;
        if (ranges.some(([a, b]) => a < start + line.length && start < b)) continue;
        out.push(`${rel}: ${t}`);
      }
    }
  };
  for (const d of SCAN_DIRS) walk(join(root, d));
  return out;
}

function run(cmd, args, cwd, env, timeoutS) {
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 64 << 20 });
  return { status: r.status, signal: r.signal, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, error: r.error };
}

function makeScratch() {
  const dir = mkdtempSync(join(tmpdir(), 'ptpvts-gate-'));
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
  const opts = parseArgs(process.argv.slice(2));
  const points = SYNC_POINTS.filter((s) => !opts.only || opts.only.has(s.id));
  if (opts.only && points.length !== opts.only.size) {
    throw new Error(`power-loss-gate: unknown id in --only (known: ${SYNC_POINTS.map((s) => s.id).join(', ')})`);
  }
  const problems = [];
  for (const s of opts.list ? SYNC_POINTS : points) {
    const n = countOccurrences(readFileSync(join(repo, s.file), 'utf8'), s.match);
    if (n !== 1) problems.push(`${s.id}: the match occurs ${n} times in ${s.file}; update SYNC_POINTS`);
    if (!s.match.includes(s.call)) problems.push(`${s.id}: call '${s.call}' is not inside its match`);
  }
  // With --only, an unlisted sync call elsewhere is reported but does not stop the run.
  for (const l of uncovered(repo)) {
    if (opts.only) console.warn(`power-loss-gate: warning: sync call not in the gate's list: ${l}`);
    else problems.push(`sync call not in the gate's list: ${l}`);
  }
  if (opts.list) {
    for (const s of SYNC_POINTS) console.log(`${s.id.padEnd(26)} ${s.file.padEnd(34)} ${s.campaigns.map((c) => c.split('/').pop()).join(', ')}${s.optional ? ' (optional)' : ''}`);
    for (const p of problems) console.log(`PROBLEM: ${p}`);
    return problems.length ? 1 : 0;
  }
  if (problems.length) {
    for (const p of problems) console.error(`power-loss-gate: ${p}`);
    return 2;
  }

  const cuts = process.env.PTPVTS_POWER_CUTS || '200';
  const timeoutS = Number(process.env.PTPVTS_GATE_TIMEOUT_S || 900);
  const work = opts.inPlace ? repo : makeScratch();
  console.log(`power-loss gate: ${points.length} sync points, ${cuts} cuts per campaign, working in ${work}`);

  let restore = null;
  const onSignal = (sig) => {
    if (restore) restore();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const rebuild = () => run('npm', ['run', 'build:native', '--silent'], work, {}, 1200);
  const rows = [];
  try {
    // Each campaign must pass unmutated first, or a "caught" would mean nothing.
    const campaigns = [...new Set(points.flatMap((s) => s.campaigns))];
    const baseline = new Map();
    for (const c of campaigns) {
      if (!existsSync(join(work, c))) {
        baseline.set(c, 'missing');
        continue;
      }
      const r = run('npx', ['vitest', 'run', '--config', 'vitest.power-loss.config.ts', c], work, { PTPVTS_POWER_CUTS: cuts }, timeoutS);
      const skipped = /skipped/.test(r.out) && !/\d+ passed/.test(r.out);
      baseline.set(c, r.status === 0 && !skipped ? 'ok' : skipped ? 'skipped' : 'fails');
      console.log(`baseline ${c}: ${baseline.get(c)}`);
    }
    for (const s of points) {
      const path = join(work, s.file);
      const original = readFileSync(path, 'utf8');
      const native = s.file.startsWith('native/');
      restore = () => {
        writeFileSync(path, original);
        restore = null;
      };
      try {
        writeFileSync(path, original.replace(s.match, s.match.replace(s.call, s.noop)));
        let buildFailed = false;
        if (native) {
          const b = rebuild();
          if (b.status !== 0) {
            buildFailed = true;
            console.error(`${s.id}: the mutated addon does not build:\n${b.out.slice(-2000)}`);
          }
        }
        for (const c of s.campaigns) {
          let verdict;
          const base = baseline.get(c);
          if (base !== 'ok') verdict = `NO CAMPAIGN (${base})`;
          else if (buildFailed) verdict = 'BUILD FAILED';
          else {
            const t0 = Date.now();
            const r = run('npx', ['vitest', 'run', '--config', 'vitest.power-loss.config.ts', c], work, { PTPVTS_POWER_CUTS: cuts }, timeoutS);
            const secs = ((Date.now() - t0) / 1000).toFixed(0);
            if (r.signal || r.error) verdict = `TIMEOUT (${secs} s)`;
            else verdict = r.status !== 0 ? 'caught' : 'MISSED';
            if (r.status !== 0) {
              const why = r.out.split('\n').find((l) => /AssertionError|Error:|expected/.test(l));
              if (why) verdict += ` — ${why.trim().slice(0, 100)}`;
            }
            verdict += ` (${secs} s)`;
          }
          rows.push({ s, c, verdict });
          console.log(`${s.id} | ${c.split('/').pop()} | ${verdict}`);
        }
      } finally {
        if (restore) restore();
        if (native) {
          const b = rebuild();
          if (b.status !== 0) console.error(`rebuilding the restored addon failed:\n${b.out.slice(-2000)}`);
        }
      }
    }
  } finally {
    if (!opts.inPlace && !opts.keep) rmSync(work, { recursive: true, force: true });
  }

  const w = Math.max(...rows.map((r) => `${r.s.file} (${r.s.id})`.length), 10);
  console.log(`\n${'sync point'.padEnd(w)} | ${'campaign'.padEnd(36)} | result`);
  console.log(`${'-'.repeat(w)}-|-${'-'.repeat(36)}-|-------`);
  for (const r of rows) {
    console.log(`${`${r.s.file} (${r.s.id})`.padEnd(w)} | ${r.c.split('/').pop().padEnd(36)} | ${r.verdict}${r.s.optional ? ` [optional: ${r.s.optional}]` : ''}`);
  }
  const required = points.filter((s) => !s.optional);
  const caught = required.filter((s) => rows.some((r) => r.s === s && r.verdict.startsWith('caught')));
  console.log(`\n${caught.length} of ${required.length} sync points caught${points.length > required.length ? ` (${points.length - required.length} optional not counted)` : ''}`);
  return caught.length === required.length ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
}
