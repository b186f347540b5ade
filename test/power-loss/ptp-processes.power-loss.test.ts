/**
 * Power-loss campaign for a whole PtP system of real processes (2 VTS, 4 VTCs on 127.0.0.1):
 * VTS A's disks, VTS B's disks and the VTCs' key journals each live on a powerfs mount of
 * their own (three power domains). Host writers write volumes through the VTCs (write-volume:
 * immediate and deferred copies) and record every acknowledgement. At random moments one
 * domain, both VTS, or everything loses power: its processes are SIGKILLed, its mount is cut
 * in place (drop, pages, prefix in turn), and they are restarted on what is left. Then:
 *
 * - every process starts again (a key journal that refuses to open fails the cut);
 * - the system comes back on-line with both VTS within a bound, every VTC agreeing on the
 *   newest key, no VTS reporting a key newer than theirs, the VTS in its `current` in operation;
 * - every volume read back through a VTC is the newest acknowledged attempt (or a later one
 *   never acknowledged), byte for byte; never an older one; never bytes nobody wrote; volumes
 *   never written are not found;
 * - acknowledged generations of a volume only grow, across every cut.
 *
 * A volume left mounted on a VTS by a VTC that lost power mid-write cannot be read (EVOLINUSE)
 * until that VTS restarts: counted as `stranded-mount`, an availability finding of its own that
 * fails the test after the data checks; PTPVTS_POWER_TOLERATE_STRANDED=1 lets the data checks
 * run while it is open. A restarted machine waits MIN_REBOOT_MS (cluster.ts) first.
 *
 * PTPVTS_POWER_PROCESS_CUTS sets the number of cuts (default 15, every pattern with every mode;
 * 200 with PTPVTS_LONG=1); PTPVTS_POWER_SEED replays a run. A failing cut leaves a trace (cut
 * log, ledger, statuses, every process's log tail) in a directory named by the failure message.
 * test/power-loss/ptp-processes/mutate.mjs shows which sync-point removals it catches.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../src/vtc/agent.js';
import { mountPowerFs, powerFsAvailable, powerFsTempRoot, PowerFsError, type CutMode, type CutReport, type PowerFs } from './powerfs.js';
import { DOMAINS, PowerCluster, ProcessStartError, type Domain } from './ptp-processes/cluster.js';
import { HostWriters, checkRead, rng, type Violation } from './ptp-processes/host.js';

const avail = powerFsAvailable();
const MODES: readonly CutMode[] = ['drop', 'pages', 'prefix'];
const seed = Number(process.env['PTPVTS_POWER_SEED'] ?? Date.now() % 1_000_000_007);

/** Cuts of this campaign: each restarts processes (seconds), so cutCount() would be far too many. */
function processCuts(): number {
  const env = process.env['PTPVTS_POWER_PROCESS_CUTS'];
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isSafeInteger(n) || n < 1) throw new PowerFsError('POWERFS_BAD_ARGUMENT', `PTPVTS_POWER_PROCESS_CUTS must be a positive integer, got '${env}'`);
    return n;
  }
  return process.env['PTPVTS_LONG'] === '1' ? 200 : 15;
}

const VTCS = 4;
const VOLUMES = Array.from({ length: 10 }, (_, i) => `P${String(i + 1).padStart(5, '0')}`);
const NEVER = ['Z00001', 'Z00002'];
/** Bounds on coming back: on-line at all, then on-line with both VTS. */
const ONLINE_MS = 45_000;
const BOTH_MS = 45_000;

/** Which domains lose power together: one VTS, the other, the VTCs, both VTS, everything. */
const PATTERNS: readonly (readonly Domain[])[] = [['A'], ['B'], ['vtcs'], ['A', 'B'], ['A', 'B', 'vtcs']];

const mounts: PowerFs[] = [];
let cluster: PowerCluster | undefined;
const work = mkdtempSync(join(powerFsTempRoot(), 'ptpvts-ptp-processes-'));
afterAll(async () => {
  await cluster?.stop();
  for (const m of mounts.splice(0)) await m.unmount();
  rmSync(work, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface CutLog {
  i: number;
  domains: string;
  mode: CutMode;
  seed: number;
  reports?: Record<string, CutReport>;
  restartMs?: number;
  onlineMs?: number;
  bothMs?: number;
  state?: string;
  acked?: number;
  violations?: Violation[];
}

const brief = (s: AgentStatus | Error): string => (s instanceof Error ? `error ${(s as { code?: string }).code ?? s.name}: ${s.message.slice(0, 160)}` : `${s.ptp} key ${s.keySeq} current {${(s.keys.at(-1)?.current ?? ['A', 'B']).join(',')}} A:${s.vts.A === null ? 'no answer' : `${s.vts.A.inOperation ? 'in' : 'out'}@${s.vts.A.lastKeySeq}`} B:${s.vts.B === null ? 'no answer' : `${s.vts.B.inOperation ? 'in' : 'out'}@${s.vts.B.lastKeySeq}`}`);

/**
 * On-line with both VTS in operation (`online-both`, or `resync` while one catches up on
 * volumes written with deferred copies), on-line with one, or off-line. `resync` is derived
 * by each VTC from its own views, so VTCs may differ on it for a moment.
 */
const stateClass = (ptp: string): string => (ptp === 'online-both' || ptp.startsWith('resync') ? 'both' : ptp.startsWith('online-single') ? ptp : 'offline');

/**
 * Waits until every VTC answers, all on-line with the same newest key whose `current` VTS they
 * see in operation; then (up to BOTH_MS more) for on-line with both. Resolves with the times
 * and the last statuses; `online`/`both` false when the bound passed.
 */
async function waitOnline(c: PowerCluster): Promise<{ online: boolean; both: boolean; onlineMs: number; bothMs: number; last: Map<string, AgentStatus | Error> }> {
  const t0 = Date.now();
  let onlineAt: number | undefined;
  let last = new Map<string, AgentStatus | Error>();
  while (true) {
    last = await c.statuses();
    const ss = [...last.values()];
    const ok = ss.length === c.vtcs.length && ss.every((s): s is AgentStatus => !(s instanceof Error));
    if (ok) {
      const seqs = new Set(ss.map((s) => s.keySeq));
      const agreed = seqs.size === 1 && new Set(ss.map((s) => stateClass(s.ptp))).size === 1;
      const s = ss[0]!;
      const current = s.keySeq === 0 ? ['A', 'B'] : (s.keys.at(-1)?.seq === s.keySeq ? s.keys.at(-1)!.current : []);
      const serving = current.length > 0 && current.every((x) => ss.every((v) => v.vts[x as 'A' | 'B']?.inOperation === true));
      // A VTS that recorded a key no VTC holds fences every VTC: the VTCs lost a key they acknowledged.
      const behind = ss.some((v) => (['A', 'B'] as const).some((x) => (v.vts[x]?.lastKeySeq ?? 0) > v.keySeq));
      if (behind) {
        if (Date.now() - t0 > ONLINE_MS) return { online: false, both: false, onlineMs: -1, bothMs: -1, last };
        await sleep(150);
        continue;
      }
      if (agreed && stateClass(s.ptp) !== 'offline' && serving) {
        onlineAt ??= Date.now();
        if (stateClass(s.ptp) === 'both') return { online: true, both: true, onlineMs: onlineAt - t0, bothMs: Date.now() - t0, last };
      }
    }
    if (onlineAt === undefined && Date.now() - t0 > ONLINE_MS) return { online: false, both: false, onlineMs: -1, bothMs: -1, last };
    if (onlineAt !== undefined && Date.now() - onlineAt > BOTH_MS) return { online: true, both: false, onlineMs: onlineAt - t0, bothMs: -1, last };
    await sleep(150);
  }
}

/** Reads every volume back (writers paused), each through another VTC; transient refusals are retried a little. */
async function verify(c: PowerCluster, w: HostWriters, round: number): Promise<Violation[]> {
  const out: Violation[] = [...w.regressions.splice(0)];
  const up = c.running();
  const read = async (volser: string, via: string, tries = 4): Promise<{ data: Uint8Array; vts: string } | Error> => {
    let err: Error | undefined;
    for (let t = 0; t < tries; t++) {
      try {
        return await c.clients.get(via)!.readVolume(volser);
      } catch (e) {
        err = e as Error;
        const code = (e as { code?: string }).code ?? '';
        // Not there is an answer; anything else (off-line for a moment, a timeout) gets another try.
        if (code === 'ENOVOLUME' || code === 'EVOLINUSE') break;
        await sleep(300);
      }
    }
    return err!;
  };
  await Promise.all(
    w.ledgers.map(async (l, i) => {
      const via = up[(round + i) % up.length]!;
      out.push(...checkRead(l, via, await read(l.volser, via)));
    }),
  );
  for (const [i, v] of NEVER.entries()) {
    const via = up[(round + i) % up.length]!;
    const r = await read(v, via, 1);
    if (!(r instanceof Error)) out.push({ check: 'never-written', detail: `${v} was never written, yet VTC ${via} read ${r.data.length} bytes of it from VTS ${r.vts}` });
  }
  return out;
}

describe.skipIf(!avail.ok)(`a PtP system of processes across power cuts${avail.ok ? '' : ` (skipped: ${avail.why})`}`, () => {
  it('acknowledged volumes survive power cuts of a VTS, both VTS, the VTCs, or everything; the system comes back on-line', async () => {
    const rand = rng(seed);
    const cuts = processCuts();
    for (const d of DOMAINS) mounts.push(await mountPowerFs({ name: `ptp-${d}` }));
    const byDomain = { A: mounts[0]!, B: mounts[1]!, vtcs: mounts[2]! };
    const t0 = Date.now();
    cluster = await PowerCluster.start({ n: VTCS, dir: join(work, 'config'), mounts: byDomain });
    const c = cluster;
    const first = await waitOnline(c);
    expect(first.both, `the system never came on-line with both VTS: ${[...first.last].map(([v, s]) => `${v}: ${brief(s)}`).join('; ')}`).toBe(true);
    const startMs = Date.now() - t0;

    const writers = new HostWriters(VOLUMES, 3, c.clients, () => c.running(), rand, 48 * 1024);
    writers.start();
    const log: CutLog[] = [];
    const failures: string[] = [];
    const strandedLines: string[] = [];
    let strandedCuts = 0;
    let traceDir: string | undefined;
    const campaignStart = Date.now();
    try {
      for (let i = 0; i < cuts; i++) {
        await sleep(400 + Math.floor(rand() * 2500));
        // Patterns (5) and modes (3) in turn: 15 cuts take every pair once.
        const ds = PATTERNS[i % PATTERNS.length]!;
        const mode = MODES[i % MODES.length]!;
        const cutSeed = seed * 7919 + i * 3;
        const entry: CutLog = { i, domains: ds.join('+'), mode, seed: cutSeed };
        log.push(entry);
        const vs: Violation[] = [];
        const tCut = Date.now();
        try {
          entry.reports = await c.powerLoss(ds, mode, cutSeed);
        } catch (e) {
          vs.push({ check: e instanceof ProcessStartError ? 'restart' : 'cut', detail: `${(e as Error).name}: ${(e as Error).message.slice(0, 1500)}` });
        }
        entry.restartMs = Date.now() - tCut;
        let state = '';
        if (vs.length === 0) {
          const back = await waitOnline(c);
          entry.onlineMs = back.onlineMs;
          entry.bothMs = back.bothMs;
          state = [...back.last].map(([v, s]) => `${v}: ${brief(s)}`).join('; ');
          entry.state = state;
          if (!back.online) vs.push({ check: 'online', detail: `not on-line (all VTCs agreeing, no VTS ahead of their newest key, a VTS in current in operation) within ${ONLINE_MS} ms of the restart: ${state}` });
          else if (!back.both) vs.push({ check: 'online-both', detail: `on-line, but not with both VTS within ${BOTH_MS} ms more: ${state}` });
        }
        await writers.pause();
        if (vs.length === 0) vs.push(...(await verify(c, writers, i)));
        entry.acked = writers.acked;
        const stranded = vs.filter((v) => v.check === 'stranded-mount');
        const hard = vs.filter((v) => v.check !== 'stranded-mount');
        if (stranded.length > 0) {
          strandedCuts++;
          strandedLines.push(...stranded.slice(0, 2).map((v) => `cut ${i} (${entry.domains}, ${mode}, seed ${cutSeed}): ${v.detail.slice(0, 300)}`));
        }
        if (vs.length > 0) {
          entry.violations = vs;
          traceDir ??= mkdtempSync(join(tmpdir(), `ptpvts-ptp-processes-trace-${seed}-`));
          const file = join(traceDir, `cut-${i}.json`);
          if (hard.length > 0 || strandedCuts <= 2) {
            writeFileSync(file, JSON.stringify({ seed, cut: entry, cuts: log, statuses: Object.fromEntries([...(await c.statuses())].map(([v, s]) => [v, s instanceof Error ? s.message : s])), ledger: writers.ledgers.map((l) => ({ volser: l.volser, gens: l.gens, attempts: [...l.attempts.values()].slice(-6) })), logs: c.logs() }, null, 2));
            if (stranded.length > 0 && strandedCuts <= 2) strandedLines.push(`  trace: ${file}`);
          }
          if (hard.length > 0) {
            failures.push(...hard.map((v) => `[${v.check}] cut ${i} (${entry.domains}, ${mode}, seed ${cutSeed}): ${v.detail.slice(0, 600)}`));
            failures.push(`  trace: ${file}`);
            // A system that did not come back makes later cuts meaningless; wrong data is named already.
            break;
          }
        }
        writers.resume();
      }
    } finally {
      await writers.stop();
    }
    const campaignMs = Date.now() - campaignStart;
    const done = log.length;
    const summary = {
      seed,
      vtcs: VTCS,
      cuts: done,
      byPattern: Object.fromEntries(PATTERNS.map((p) => [p.join('+'), log.filter((e) => e.domains === p.join('+')).length])),
      attempted: writers.attempted,
      acknowledged: writers.acked,
      startMs,
      msPerCut: Math.round(campaignMs / Math.max(1, done)),
      medianRestartMs: median(log.map((e) => e.restartMs ?? 0)),
      medianOnlineBothMs: median(log.filter((e) => (e.bothMs ?? -1) >= 0).map((e) => e.bothMs!)),
      maxOnlineBothMs: Math.max(0, ...log.map((e) => e.bothMs ?? 0)),
      writeErrors: Object.fromEntries(writers.errors),
      cutsWithStrandedMounts: strandedCuts,
    };
    console.log(`ptp-processes power-loss campaign: ${JSON.stringify(summary)}`);
    console.log(log.map((e) => `cut ${e.i} ${e.domains} ${e.mode}: restarted in ${e.restartMs} ms, on-line after ${e.onlineMs ?? '-'} ms, with both after ${e.bothMs ?? '-'} ms; ${e.acked ?? '-'} acknowledged so far`).join('\n'));
    expect(failures, `${failures.length} problem line(s), run seed ${seed}:\n${failures.join('\n')}`).toEqual([]);
    // The load really ran: else the campaign proves nothing.
    expect(writers.acked).toBeGreaterThan(cuts * 2);
    // Availability rather than data: a volume held on a VTS by a mount of a VTC that lost power
    // mid-write stays unreadable (EVOLINUSE) until that VTS restarts. A finding of its own;
    // PTPVTS_POWER_TOLERATE_STRANDED=1 runs the data checks while it is open.
    if (process.env['PTPVTS_POWER_TOLERATE_STRANDED'] !== '1') {
      expect(strandedCuts, `${strandedCuts} cut(s) left acknowledged volumes unreadable behind a mount of a VTC that lost power mid-write (run seed ${seed}):\n${strandedLines.join('\n')}`).toBe(0);
    }
  }, 60_000 + processCuts() * 60_000);
});

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
