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
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MutationGate } from './lib/mutation-gate.mjs';

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
    edits: [['async markBehind(volser: string, generation: number, fence: Fence = {}, o: { write?: boolean } = {}): Promise<VolumeToken> {\n    this.#operating(fence);', 'async markBehind(volser: string, generation: number, fence: Fence = {}, o: { write?: boolean } = {}): Promise<VolumeToken> {\n    this.#operating();']],
    checks: [story("during a deferred write's commit on A")],
  },
  {
    id: 'agent-token-update-unfenced',
    mechanism: "The agent's close sends the write's epoch with the token update that follows the commit (HostRouter.close, deferred copies)",
    file: 'src/vtc/host-router.ts',
    edits: [['await this.#d.clients[t.vts].markBehind(h.volser, plan.generation, fenceFor(m, t.vts), true);', 'await this.#d.clients[t.vts].markBehind(h.volser, plan.generation, undefined, true);']],
    checks: [story("during a deferred write's commit on A")],
  },
  {
    id: 'unit-mark-behind-for-write-unchecked',
    mechanism: "A deferred write's mark on the other VTS is refused while a host has the volume mounted there or when that VTS knows the generation already (VtsUnit.markBehind, write)",
    file: 'src/vts/vts-unit.ts',
    edits: [['    if (o.write === true) {\n', '    if (o.write === false) {\n']],
    checks: [story('marking behind for a host write', 'src/vts/fencing.test.ts'), story('seed 268', 'test/sim/prod/prod-sim.test.ts')],
  },
  {
    id: 'router-orphans-forgotten',
    mechanism: 'The host router abandons again the VTS mounts whose close, abandon or mount call failed, until the VTS answers (HostRouter orphans)',
    file: 'src/vtc/host-router.ts',
    edits: [['    this.#orphans.set(`${x}:${h}`, { vts: x, h, boot });', '    void [x, h, boot];']],
    checks: [story('mount whose answer the VTC never got', 'test/sim/prod/stories.test.ts'), story('seeds 354 and 444', 'test/sim/prod/prod-sim.test.ts')],
  },
  {
    id: 'cache-commit-no-fsync',
    mechanism: 'The volume cache fsyncs the data of a new generation before the rename that commits it (VolumeCache.commitData, through #place)',
    file: 'src/vts/volume-cache.ts',
    edits: [['    let at = f.path;\n    try {\n      await f.sync();', '    let at = f.path;\n    try {']],
    checks: [story('both VTS lose power just after acknowledged writes')],
  },
  {
    id: 'cache-commit-no-dirsync',
    mechanism: "The volume cache fsyncs the data directory after the rename, so the committed file's name survives a power cut (VolumeCache.commitData, through #place)",
    file: 'src/vts/volume-cache.ts',
    edits: [['      at = join(this.#dataDir, name);\n      await syncDir(this.#dataDir, this.#fs);', '      at = join(this.#dataDir, name);']],
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
  {
    id: 'engine-fork-not-superseded',
    mechanism: 'A VTC that sees a VTS in operation holding another key of its newest seq commits a key that supersedes it (engine autonomy.ts autonomous, reason supersede)',
    file: 'src/ptp/engine/autonomy.ts',
    edits: [['  if (forked.length > 0) {', '  if (forked.length > 0 && false) {']],
    checks: [story('seed 554', 'test/sim/prod/prod-sim.test.ts')],
  },
  {
    id: 'engine-older-image-unjudged',
    mechanism: "A VTS reporting a token sum below what an earlier boot of its image held is an older image: not served, not elected, not kept in by a key (engine vts.ts olderImage)",
    file: 'src/ptp/engine/vts.ts',
    edits: [['  return v.tokenSum < floor ? `VTS', '  return v.tokenSum < floor && false ? `VTS']],
    checks: [story('seeds 252 and 602', 'test/sim/prod/prod-sim.test.ts')],
  },
  {
    id: 'evidence-not-shared',
    mechanism: "VTCs share in their hellos how far each boot of a VTS image got, so one that never reached it while it took writes judges a restore too (hello sums)",
    file: 'src/ptp/engine.ts',
    edits: [['      for (const s of msg.sums ?? []) vtc.evidence.note(s);\n', '']],
    checks: [story('token sums in the hellos')],
  },
  {
    id: 'frame-run-unbound',
    mechanism: "A frame bound to the receiver's run is accepted whatever the clocks say, so skew against a peer's start costs one refused frame (FrameCodec)",
    file: 'src/net/frame.ts',
    edits: [['    const bound = v.getBigUint64(29) === this.#run;', '    const bound = false;']],
    // Seeds 670 and 1425 found the skew; after the host path's write-behind and copy
    // read-ahead moved their schedules only seed 11 of them still meets it.
    checks: [story('seeds 11, 670 and 1425', 'test/sim/prod/prod-sim.test.ts'), story('RPC frames bound to the server run', 'src/vtc/rpc-run.test.ts')],
  },
  {
    id: 'tee-commit-unfenced',
    mechanism: "The tee's commit on the secondary VTS carries the write's fence, so a key recorded there after the primary's commit refuses it (HostRouter #commitTee)",
    file: 'src/vtc/host-router.ts',
    edits: [['const r = await this.#d.clients[t.vts].close(t.h, { generation, sha256, ...fenceFor(m, t.vts) });', 'const r = await this.#d.clients[t.vts].close(t.h, { generation, sha256 });']],
    checks: [story('a key recorded on the secondary between the two commits', 'src/vtc/host-library/tee.test.ts')],
  },
  {
    id: 'tee-secondary-before-primary',
    mechanism: 'The tee commits the secondary only after the primary committed: a write the primary refused never becomes a generation on the secondary (HostRouter close)',
    file: 'src/vtc/host-router.ts',
    edits: [["      if (tee !== null) this.#dropTee(m, tee, 'the primary did not commit');", '      if (tee !== null) await this.#d.clients[tee.vts].close(tee.h, { generation: plan.generation, ...fenceFor(m, tee.vts) }).catch(() => undefined);']],
    checks: [story('a primary that refuses its commit', 'src/vtc/host-library/tee.test.ts')],
  },
  {
    id: 'unit-close-hash-unchecked',
    mechanism: "A VTS commits a teed write only when its data has the primary's hash (VtsUnit.close sha256)",
    file: 'src/vts/vts-unit.ts',
    edits: [['if (sha !== o.sha256) throw', 'if (sha !== o.sha256 && false) throw']],
    checks: [story('a write closed with the hash of the same blocks written on another VTS', 'src/vts/vts-unit.test.ts')],
  },
];

// ------------------------------------------------------------------------------------------
// Main

/** The checker's verdict in a failure message: the first violation code and its text, or the first line. */
function firstViolation(message) {
  const seed = /seed (\d+) n=\d+: \[([a-z-]+)\] ([^\n]*)/.exec(message);
  if (seed !== null) return `seed ${seed[1]}: ${seed[2]}: ${seed[3]}`;
  const checker = /history checker: \[([a-z-]+)\] ([^\n]*?)(?:; \[|: expected |\n|$)/.exec(message);
  if (checker !== null) return `${checker[1]}: ${checker[2]}`;
  return message.split('\n')[0];
}

const checkLabel = (c) => (c.kind === 'seeds' ? `prod schedules ${c.from}..${c.from + c.count - 1}` : `${basename(c.file)} -t "${c.tests}"`);

const gate = new MutationGate({
  name: 'prod-mutations',
  title: 'production mutation gate',
  noun: 'production mutations',
  tmpPrefix: 'ptpvts-prod-mutations-',
  script: fileURLToPath(import.meta.url),
  mutations: MUTATIONS,
  what: (m) => m.mechanism,
  whatHeader: 'mechanism',
  extra: { flag: '--with-seeds', check: (n) => seeds(1, n, 900) },
  dropEnv: ['PTPVTS_SIM', 'PTPVTS_SEED', 'PTPVTS_PROD_SEEDS', 'PTPVTS_PROD_FROM', 'PTPVTS_PROD_LIVENESS', 'PTPVTS_LONG'],
  checkLabel,
  vitest: (c) =>
    c.kind === 'seeds'
      ? { files: ['test/sim/prod/prod-sim.test.ts'], tests: 'random schedules', env: { PTPVTS_PROD_FROM: String(c.from), PTPVTS_PROD_SEEDS: String(c.count) } }
      : { files: [c.file], tests: c.tests },
  messageOf: firstViolation,
  caughtLabel: (c, f) => (c.kind === 'seeds' ? checkLabel(c) : `${basename(c.file)} > ${f.name}`),
});

gate.start(() => gate.printList(['id', 'mechanism', 'file', 'checks'], (m) => [`\`${m.id}\``, m.mechanism, m.file, m.checks.map((c) => `\`${checkLabel(c)}\``).join(', ')]));
