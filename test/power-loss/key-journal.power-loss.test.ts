/**
 * Power-loss campaign for the key journal, on a powerfs mount (test/power-loss/powerfs.ts).
 *
 * 1. Snapshots under load: the native KeyJournal (and, in a smaller run, the JS reference)
 *    appends the numbered stream with several appends in flight (group commit) and now and
 *    then compacts; every few cuts the writer moves to a fresh directory, so creating the
 *    directory and the file is inside the cut window too. At random moments a cut is taken
 *    (drop, pages, prefix in turn) and reopened with the production open code: every
 *    acknowledged record must be there, in order and intact; nothing never appended may
 *    appear; a torn tail must never make open refuse (nor look like mid-log damage to the
 *    independent decoder).
 * 2. Cut in place, again and again: a child process recovers the journal, appends, is
 *    SIGKILLed, the power is cut on the mount itself, and the next child recovers what is
 *    left: recovery's own truncation and what it appends after it must survive the next cut.
 *
 * PTPVTS_POWER_SEED replays a run; failures name the check, the mode and the seed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, open as openFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyJournal } from '../../src/hotpath/key-journal.js';
import { KeyJournalRef } from '../../src/hotpath/key-journal-ref.js';
import { encodeRecord } from '../../src/hotpath/journal-format.js';
import { KeyJournalCorruptError } from '../../src/hotpath/journal-types.js';
import type { KeyJournalApi, KeyJournalOpenOptions } from '../../src/hotpath/journal-types.js';
import { JournalLoad } from './key-journal/load.js';
import { checkImage, checkRecords, record, rng, survivorsAfterDamage, type Violation } from './key-journal/records.js';
import { cutCount, mountPowerFs, powerFsAvailable, powerFsTempRoot, type CutMode, type PowerFs } from './powerfs.js';

const avail = powerFsAvailable();
const MODES: readonly CutMode[] = ['drop', 'pages', 'prefix'];
const seed = Number(process.env['PTPVTS_POWER_SEED'] ?? Date.now() % 1_000_000_007);
const here = dirname(fileURLToPath(import.meta.url));
const mounts: PowerFs[] = [];
const scratch = mkdtempSync(join(powerFsTempRoot(), 'ptpvts-journal-cuts-'));
afterAll(async () => {
  for (const m of mounts.splice(0)) await m.unmount();
  rmSync(scratch, { recursive: true, force: true });
});

type Opener = (path: string, o?: KeyJournalOpenOptions) => Promise<KeyJournalApi>;
type Impl = 'native' | 'native-thread-dsync' | 'reference';
const openers: Record<Impl, Opener> = {
  native: (p, o) => KeyJournal.open(p, o),
  // The alternatives bench/journal.bench.ts weighs (own writer thread, RWF_DSYNC writes): durable the same way.
  'native-thread-dsync': (p, o) => KeyJournal.open(p, { ...o, native: { writer: 'thread', sync: 'dsync' } }),
  reference: (p, o) => KeyJournalRef.open(p, o),
};

/** Violations counted per check and mode; the first few kept in full. */
class Findings {
  readonly byCheck = new Map<string, number>();
  readonly examples: string[] = [];
  failedCuts = 0;
  cuts = 0;
  /** Cuts that tore a commit group and kept records of it after the damage. */
  tornGroups = 0;
  /** Cuts taken with a failed sync holding a group volatile. */
  tearing = 0;
  /** Salvage campaign: cuts that found the journal still the damaged original. */
  original = 0;
  /** Salvage campaign: rounds run with link() failing, so the damaged file is copied aside. */
  copied = 0;
  add(mode: CutMode, cutSeed: number, vs: readonly Violation[]): void {
    this.cuts++;
    if (vs.length === 0) return;
    this.failedCuts++;
    for (const v of vs) {
      const key = `${v.check} (${mode})`;
      this.byCheck.set(key, (this.byCheck.get(key) ?? 0) + 1);
      if (this.examples.length < 8) this.examples.push(`[${v.check}] mode ${mode} seed ${cutSeed}: ${v.detail}`);
    }
  }
  summary(): string {
    const counts = [...this.byCheck].sort().map(([k, n]) => `${k}: ${n}`).join(', ');
    return `${this.failedCuts} of ${this.cuts} cut(s) failed (run seed ${seed}). ${counts}\n${this.examples.join('\n')}`;
  }
}

async function snapshotCampaign(impl: Impl, cuts: number): Promise<{ f: Findings; acked: number; compactions: number; runs: number }> {
  const fs = await mountPowerFs({ name: `key-journal-${impl}` });
  mounts.push(fs);
  const open = openers[impl];
  const rand = rng(seed ^ (impl === 'native' ? 0x5eed : impl === 'reference' ? 0x4ef : 0x7d5));
  const f = new Findings();
  let totalAcked = 0;
  let compactions = 0;
  let runs = 0;
  let load: JournalLoad | null = null;
  let rel = '';
  try {
    let fresh = true;
    for (let i = 0; i < cuts; i++) {
      if (load === null || fresh || i % 12 === 0) {
        fresh = false;
        if (load !== null) {
          await load.stop();
          totalAcked += load.acked;
          compactions += load.compactions;
          await load.journal.close().catch(() => undefined);
          await rm(join(fs.mountpoint, `run-${runs - 1}`), { recursive: true, force: true });
        }
        // A fresh directory, so its creation and the file's are in the window: two levels
        // deep made by the open (createDirectory), or one level made by a plain mkdir, as
        // an operator or an older version would leave it (open must sync it in its parent).
        const own = runs % 2 === 0;
        rel = own ? join(`run-${runs}`, 'vtc', 'keys.journal') : join(`run-${runs}`, 'keys.journal');
        runs++;
        if (!own) await mkdir(join(fs.mountpoint, dirname(rel)));
        const j = await open(join(fs.mountpoint, rel), own ? { createDirectory: true } : {});
        load = new JournalLoad(j, 0, impl === 'reference' ? 3 : 8, rand, 0.005);
      }
      await new Promise((r) => setTimeout(r, Math.floor(rand() * rand() * 30)));
      const mode = MODES[i % MODES.length] ?? 'drop';
      const cutSeed = seed * 7919 + i;
      const dest = join(scratch, `cut-${impl}-${i}`);
      // A sync returns in microseconds here, so a cut rarely lands inside one. A third of the
      // cuts make the sync fail instead: the group being written stays volatile (and is
      // never acknowledged), so the cut tears it for certain. That journal is then retired.
      const tear = rand() < 0.35;
      const vs: Violation[] = [];
      for (const e of load.errors.splice(0)) vs.push({ check: 'opens', detail: `the writer failed: ${e}` });
      if (tear) {
        await fs.injectError(['fsync'], 5);
        for (let w = 0; w < 2000 && load.errors.length === 0; w++) await new Promise((r) => setTimeout(r, 1));
        f.tearing++;
        fresh = true;
      }
      // Some cuts land right after a compaction, before anything else is written.
      const held = !tear && rand() < 0.15;
      if (held) {
        try {
          await load.holdAfterCompaction();
        } catch (e) {
          vs.push({ check: 'opens', detail: `compaction failed: ${(e as Error).message}` });
        }
      }
      const acked = load.acked;
      await fs.snapshot(dest, { mode, seed: cutSeed });
      if (held) load.release();
      if (tear) await fs.injectError(null);
      const issued = load.issued;
      const path = join(dest, rel);
      const image = existsSync(path) ? new Uint8Array(readFileSync(path)) : null;
      vs.push(...checkImage(image));
      if (survivorsAfterDamage(image)) f.tornGroups++;
      try {
        const k = await open(path, { createDirectory: true });
        vs.push(...checkRecords(k.records(), acked, issued));
        await k.close();
      } catch (e) {
        vs.push({ check: 'opens', detail: `reopening failed: ${(e as Error).name}: ${(e as Error).message}` });
      }
      if (tear) load.errors.splice(0);
      f.add(mode, cutSeed, vs);
      rmSync(dest, { recursive: true, force: true });
      if (f.failedCuts >= 30) break;
    }
  } finally {
    if (load !== null) {
      await load.stop();
      totalAcked += load.acked;
      compactions += load.compactions;
      await load.journal.close().catch(() => undefined);
    }
  }
  return { f, acked: totalAcked, compactions, runs };
}

interface ChildRun {
  recovered: number;
  /** File length the child's recovery kept. */
  kept: number;
  acked: number;
  problems: string[];
}

function runChild(impl: 'native' | 'reference', path: string, childSeed: number, killAfterMs: number, hold: boolean): Promise<ChildRun> {
  const p = spawn(process.execPath, ['--import', 'tsx', join(here, 'key-journal', 'cut-child.ts'), impl, path, String(childSeed), hold ? 'hold' : 'append'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buffered = '';
  let stderr = '';
  const run: ChildRun = { recovered: -1, kept: -1, acked: -1, problems: [] };
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('R ')) {
          const [n, kept] = line.slice(2).split(' ');
          run.recovered = Number(n);
          run.kept = Number(kept);
          timer = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
        } else if (line.startsWith('A ')) run.acked = Number(line.slice(2));
        else if (line.startsWith('X ')) {
          run.problems.push(line.slice(2));
          p.kill('SIGKILL');
        }
      }
    });
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (c: string) => (stderr += c));
    p.on('close', (_code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && run.problems.length === 0) run.problems.push(`opens the writer exited by itself: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      resolve(run);
    });
  });
}

async function cutInPlaceCampaign(impl: 'native' | 'reference', rounds: number): Promise<{ f: Findings; recovered: number }> {
  const fs = await mountPowerFs({ name: `key-journal-inplace-${impl}` });
  mounts.push(fs);
  const rand = rng(seed ^ 0xc07);
  const f = new Findings();
  const path = join(fs.mountpoint, 'vtc', 'keys.journal');
  // Records every later recovery must return: acknowledged ones, and ones a recovery returned
  // (after a cut in place everything on the mount is durable).
  let floor = 0;
  let lastMode: CutMode = 'drop';
  let lastSeed = 0;
  for (let i = 0; i <= rounds; i++) {
    // Every fourth child only recovers (the cut modes rotate through them): the cut must
    // then find the file exactly as recovery left it.
    const hold = i % 4 === 3 && i < rounds;
    // Give that recovery a torn tail to cut for certain: a record cut short, made durable.
    if (hold && existsSync(path)) {
      const torn = encodeRecord(record(1_000_000 + i)).subarray(0, 20);
      const fh = await openFile(path, 'a');
      await fh.write(torn);
      await fh.sync();
      await fh.close();
    }
    const run = await runChild(impl, path, seed + i, i === rounds ? 0 : hold ? 20 : Math.floor(rand() * 60), hold);
    const vs: Violation[] = run.problems.map((p) => {
      const [check, ...rest] = p.split(' ');
      return { check: (check ?? 'opens') as Violation['check'], detail: rest.join(' ') };
    });
    if (i > 0) {
      if (run.recovered >= 0 && run.recovered < floor) vs.push({ check: 'acked-lost', detail: `recovered ${run.recovered} record(s), ${floor} were acknowledged or recovered before the cut` });
      f.add(lastMode, lastSeed, vs);
    }
    if (i === rounds) break;
    floor = Math.max(floor, run.recovered, run.acked);
    lastMode = MODES[i % MODES.length] ?? 'drop';
    lastSeed = seed * 104729 + i;
    await fs.cut({ mode: lastMode, seed: lastSeed });
    if (hold && run.kept >= 0 && existsSync(path) && statSync(path).size !== run.kept) {
      f.add(lastMode, lastSeed, [{ check: 'recovery-undone', detail: `recovery cut the journal to ${run.kept} bytes, after the cut it has ${statSync(path).size}` }]);
      f.cuts--;
    }
    if (f.failedCuts >= 10) break;
  }
  return { f, recovered: floor };
}

/** Writes `bytes` to `path` and makes file and entry durable (the damaged journal is old news). */
async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  const f = await openFile(path, 'w');
  await f.write(bytes, 0, bytes.length, 0);
  await f.sync();
  await f.close();
  const d = await openFile(dirname(path), 'r');
  await d.sync();
  await d.close();
}

/**
 * Salvage under power cuts: a journal with a damaged record 2 is salvaged while a cut is
 * taken at a random moment. Whatever the cut leaves, no valid record is lost: the journal
 * is either the damaged original (refused, or salvaged again) or the salvaged file, and
 * then the damaged copy sits at `<path>.corrupt-<offset>` byte for byte. Every other round
 * link() fails with EPERM, as on a filesystem without hard links, so the damaged file is
 * kept aside by the synced copy instead of a link; some of those cuts wait for the salvage
 * to resolve, and then the salvaged journal and the whole copy must both be there.
 */
async function salvageCampaign(impl: 'native' | 'reference', rounds: number): Promise<Findings> {
  const fs = await mountPowerFs({ name: `key-journal-salvage-${impl}` });
  mounts.push(fs);
  const open = openers[impl];
  const rand = rng(seed ^ 0x5a1);
  const f = new Findings();
  const valid = Array.from({ length: 40 }, (_, i) => record(i));
  const framed = valid.map((r) => encodeRecord(r));
  const damagedAt = framed[0]!.length;
  const bytes = Buffer.concat(framed);
  bytes[damagedAt + 8 + 3] = bytes[damagedAt + 8 + 3]! ^ 0x10;
  const kept = valid.filter((_, i) => i !== 1);
  for (let i = 0; i < rounds; i++) {
    const mode = MODES[i % MODES.length] ?? 'drop';
    const cutSeed = seed * 31 + i;
    const rel = join(`s-${i}`, 'keys.journal');
    await mkdir(join(fs.mountpoint, `s-${i}`));
    const d0 = await openFile(fs.mountpoint, 'r');
    await d0.sync();
    await d0.close();
    await writeSynced(join(fs.mountpoint, rel), bytes);
    const copy = i % 2 === 1;
    if (copy) {
      await fs.injectError(['link'], 1 /* EPERM */);
      f.copied++;
    }
    let resolved = false;
    const salvaging = open(join(fs.mountpoint, rel), { salvage: true }).then((k) => {
      resolved = true;
      return k;
    });
    const vs: Violation[] = [];
    if (copy && rand() < 0.3) {
      try {
        await salvaging;
      } catch {
        // Reported below, with the other rounds' failures.
      }
    } else await new Promise((r) => setTimeout(r, Math.floor(rand() * (copy ? 8 : 4))));
    const dest = join(scratch, `salvage-${impl}-${i}`);
    // Read before the cut: the salvage may resolve while the snapshot is being taken.
    const resolvedBeforeCut = resolved;
    await fs.snapshot(dest, { mode, seed: cutSeed });
    try {
      const k = await salvaging;
      if (copy && k.recovery.salvage === undefined) vs.push({ check: 'opens', detail: 'salvage with link() failing reported no salvage' });
      await k.close();
    } catch (e) {
      vs.push({ check: 'opens', detail: `salvage${copy ? ' with link() failing' : ''} failed: ${(e as Error).name}: ${(e as Error).message}` });
    } finally {
      if (copy) await fs.injectError(null);
    }
    const path = join(dest, rel);
    const moved = `${path}.corrupt-${damagedAt}`;
    const image = existsSync(path) ? readFileSync(path) : null;
    if (image === null) vs.push({ check: 'acked-lost', detail: 'the journal is gone' });
    else if (image.equals(bytes)) {
      f.original++;
      if (resolvedBeforeCut) vs.push({ check: 'acked-lost', detail: 'the salvage had resolved before the cut, but the cut found the damaged original back' });
    } else {
      // Salvaged: the damaged copy must be there, whole.
      if (!existsSync(moved) || !readFileSync(moved).equals(bytes)) vs.push({ check: 'acked-lost', detail: 'the journal was replaced but the damaged copy is missing or differs' });
    }
    try {
      const k = await open(path, { salvage: true });
      if (k.records().length !== kept.length || k.records().some((r, n) => !Buffer.from(r).equals(Buffer.from(kept[n]!)))) vs.push({ check: 'acked-lost', detail: `after the cut, salvage gives ${k.records().length} record(s), not the ${kept.length} valid ones` });
      await k.close();
    } catch (e) {
      vs.push({ check: 'opens', detail: `${(e as Error).name}: ${(e as Error).message}${e instanceof KeyJournalCorruptError ? ' (salvage refused)' : ''}` });
    }
    f.add(mode, cutSeed, vs);
    rmSync(dest, { recursive: true, force: true });
    if (f.failedCuts >= 10) break;
  }
  return f;
}

describe.skipIf(!avail.ok)(`key journal across power cuts${avail.ok ? '' : ` (skipped: ${avail.why})`}`, () => {
  it(`native journal: ${cutCount()} snapshots under group-committed appends and compactions`, async () => {
    const { f, acked, compactions, runs } = await snapshotCampaign('native', cutCount());
    console.log(`key journal (native): ${f.cuts} cuts over ${runs} journals, ${acked} appends acknowledged, ${compactions} compactions, ${f.tearing} taken during a failed sync, ${f.tornGroups} torn groups with records kept after the damage; ${f.failedCuts} failed`);
    expect(f.failedCuts, f.summary()).toBe(0);
  });

  it(`native journal on its own writer thread with RWF_DSYNC writes (an opt-in alternative): ${Math.max(30, Math.floor(cutCount() / 33))} snapshots`, async () => {
    const { f, acked, compactions, runs } = await snapshotCampaign('native-thread-dsync', Math.max(30, Math.floor(cutCount() / 33)));
    console.log(`key journal (native, thread + RWF_DSYNC): ${f.cuts} cuts over ${runs} journals, ${acked} appends acknowledged, ${compactions} compactions, ${f.tearing} taken during a failed sync; ${f.failedCuts} failed`);
    expect(f.failedCuts, f.summary()).toBe(0);
  });

  it(`reference journal: ${Math.max(30, Math.floor(cutCount() / 4))} snapshots`, async () => {
    const { f, acked, compactions, runs } = await snapshotCampaign('reference', Math.max(30, Math.floor(cutCount() / 4)));
    console.log(`key journal (reference): ${f.cuts} cuts over ${runs} journals, ${acked} appends acknowledged, ${compactions} compactions, ${f.tearing} taken during a failed sync; ${f.failedCuts} failed`);
    expect(f.failedCuts, f.summary()).toBe(0);
  });

  it.each(['native', 'reference'] as const)(`%s journal: ${Math.max(30, Math.floor(cutCount() / 4))} cuts during a salvage`, async (impl) => {
    const f = await salvageCampaign(impl, Math.max(30, Math.floor(cutCount() / 4)));
    console.log(`key journal salvage (${impl}): ${f.cuts} cuts (${f.copied} with link() failing, so the damaged file was copied aside), ${f.original} found the damaged original, the rest the salvaged journal; ${f.failedCuts} failed`);
    expect(f.failedCuts, f.summary()).toBe(0);
  });

  it.each(['native', 'reference'] as const)(`%s journal: ${Math.max(12, Math.floor(cutCount() / 10))} cuts in place, each recovered, appended to and cut again`, async (impl) => {
    const { f, recovered } = await cutInPlaceCampaign(impl, Math.max(12, Math.floor(cutCount() / 10)));
    console.log(`key journal (${impl}, cut in place): ${f.cuts} cuts, ${recovered} records at the end; ${f.failedCuts} failed`);
    expect(f.failedCuts, f.summary()).toBe(0);
  });
});
