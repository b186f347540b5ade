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
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GateError, MutationGate, ROOT, sha256 } from './lib/mutation-gate.mjs';

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
    file: 'src/ptp/engine/coordination.ts',
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
    file: 'src/ptp/engine/chain.ts',
    edits: [['  if (vtc.synced) return true;\n  let n = 1;', '  return true;\n  let n = 1;']],
    checks: [story(STORIES, 'restarted VTC serves nothing')],
  },
  {
    id: 'commit-unbacked',
    rule: 'A commit that places a VTS on-line by election is taken only with more than T signed YES ballots of that election',
    file: 'src/ptp/engine/chain.ts',
    edits: [["if (commit.election !== undefined && commit.election !== null && !backed(vtc, key, commit)) return vtc.reject('commit-election-unbacked');", '']],
    checks: [story(CLAIMS, 'signed YES ballots')],
  },
  {
    id: 'commit-backed-at-t',
    rule: 'The commit check counts more than T (not T) signed YES ballots',
    file: 'src/ptp/engine/election.ts',
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
      ["// The copier's key may have been overtaken while the bytes streamed in.\n        this.#operating(o);", "// The copier's key may have been overtaken while the bytes streamed in.\n        this.#operating();"],
    ],
    checks: [story('src/vts/fencing.test.ts', 'carry the epoch'), story('src/vtc/fencing.test.ts')],
  },
  {
    id: 'commit-retried-after-failure',
    rule: "A close whose commit failed (its working file's fsync, say) ends the mount, so no close tried again can commit: the failed fsync may have dropped what it could not write (here the mount stays, and the retry commits)",
    file: 'src/vts/vts-unit.ts',
    edits: [["          this.#markAborted(m, reason);\n          await this.#release(m);\n", "          void reason;\n"]],
    checks: [story('src/vts/commit-failure.test.ts', 'a close whose commit fails')],
  },
  {
    id: 'token-unfenced',
    rule: 'A token update (markBehind, the deferred copy of an on-line write) is fenced by the writer\'s epoch',
    file: 'src/vts/vts-unit.ts',
    edits: [['async markBehind(volser: string, generation: number, fence: Fence = {}, o: { write?: boolean } = {}): Promise<VolumeToken> {\n    this.#operating(fence);', 'async markBehind(volser: string, generation: number, fence: Fence = {}, o: { write?: boolean } = {}): Promise<VolumeToken> {\n    this.#operating();']],
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
// The addon, built apart from build/Release (which other people and processes load)

let addonDir = '';
let addonBuilt = false;

async function buildAddon(gate, work) {
  const started = Date.now();
  const first = !addonBuilt;
  if (first) {
    addonDir = join(gate.top, 'addon');
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
  const r = await gate.run('npm', ['run', '-s', first ? 'rebuild' : 'build'], { cwd: addonDir, env: process.env, timeoutSec: 600, log: gate.nextLog('addon-build') });
  if (r.code !== 0) throw new GateError(`building the addon failed (exit ${r.code}): ${r.text.trim().split('\n').slice(-8).join('\n')}`);
  addonBuilt = true;
  return (Date.now() - started) / 1000;
}

// ------------------------------------------------------------------------------------------
// Main

const checkLabel = (c) => (c.kind === 'schedules' ? `schedules ${c.from}..${c.from + c.count - 1}` : `${c.files.join(' ')}${c.tests === undefined ? '' : ` -t "${c.tests}"`}`);

const gate = new MutationGate({
  name: 'mutations',
  title: 'mutation gate',
  noun: 'mutations',
  tmpPrefix: 'ptpvts-mutations-',
  script: fileURLToPath(import.meta.url),
  mutations: MUTATIONS,
  what: (m) => m.rule,
  whatHeader: 'rule',
  // Survey aid: how many random schedules (seeds 0..N-1) each mutation needs, after its stories.
  extra: { flag: '--with-schedules', check: (n) => schedules(0, n) },
  dropEnv: ['PTPVTS_SIM', 'PTPVTS_SEED', 'PTPVTS_SIM_COUNT', 'PTPVTS_LONG', 'PTPVTS_MUTATION_SEEDS', 'PTPVTS_NATIVE'],
  checkLabel,
  vitest: (c) =>
    c.kind === 'schedules'
      ? { files: ['test/sim/mutation-schedules.test.ts'], env: { PTPVTS_MUTATION_SEEDS: `${c.from}:${c.count}` } }
      : { files: c.files, ...(c.tests === undefined ? {} : { tests: c.tests }) },
  messageOf: (text) => text.split('\n')[0],
  caughtLabel: (c, f) => (c.kind === 'schedules' ? `${checkLabel(c)}: ${f.message.replace(/^Error: /, '')}` : `${basename(f.file)} > ${f.name}`),
  hooks: {
    async prepare(g, work, env, selected) {
      if (!selected.some((m) => m.native === true)) return;
      const s = await buildAddon(g, work);
      env.PTPVTS_NATIVE = join(addonDir, 'build', 'Release', 'ptpvts.node');
      console.log(`addon built apart from build/Release for the native mutations (${s.toFixed(1)} s)`);
    },
    async afterApply(g, work, m) {
      if (m.native === true) await buildAddon(g, work);
    },
    // The restored native source is newer than the mutated object: the next build recompiles it.
    async afterRestore(g, work, m) {
      if (m.native === true) await buildAddon(g, work);
    },
  },
});

gate.start(() =>
  gate.printList(['id', 'rule', 'file', 'addon rebuild', 'checks'], (m) => [
    `\`${m.id}\``,
    `${m.rule}${m.redundant === undefined ? '' : ` (redundant: ${m.redundant})`}`,
    m.file,
    m.native === true ? 'yes' : 'no',
    m.checks.map((c) => `\`${checkLabel(c)}\``).join(', '),
  ]),
);
