/**
 * Power-loss campaign for the VTS unit's durable state: the tape volume cache (volume data and
 * metadata), the two-slot state file, and small files replaced with writeDurable /
 * writeJsonDurable, written by the production code under load on a powerfs mount. At random
 * moments a cut is taken (drop, pages and prefix modes in turn); each is reopened with the
 * production open/recovery code and checked against what was acknowledged before the cut.
 *
 * PTPVTS_POWER_SEED replays a run; failures name the check, the mode and the seed.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { mkdirDurable, readJson, writeJsonDurable } from '../../src/vts/durable.js';
import { SlotFile } from '../../src/vts/slot-file.js';
import { VolumeCache } from '../../src/vts/volume-cache.js';
import { VtsUnit } from '../../src/vts/vts-unit.js';
import { cutCount, mountPowerFs, powerFsAvailable, powerFsTempRoot, type CutMode, type PowerFs } from './powerfs.js';
import { SeriesLedger, VolumeLedger, checkSeries, checkVolume, rng, type Violation } from './vts-state/ledger.js';
import { Load, behindLoop, blobLoop, blobValue, commitLoop, copyLoop, docLoop, docValue, hostLoop, keyLoop, libraryLoop, slotLoop, slotPayload } from './vts-state/load.js';
import { openEmbeddedLab } from '../../src/cli/lab.js';
import { Premigrator } from '../../src/vts/premigration.js';
import type { TapeDrive } from '../../src/devices/tape-drive.js';
import { writeFileSync } from 'node:fs';

const avail = powerFsAvailable();
const MODES: readonly CutMode[] = ['drop', 'pages', 'prefix'];
const seed = Number(process.env['PTPVTS_POWER_SEED'] ?? Date.now() % 1_000_000_007);
const mounts: PowerFs[] = [];
/** Time for a campaign of `cutCount()` cuts: a cut with its check takes ~0.2 s here, long runs take hours. */
const budgetMs = Math.max(600_000, cutCount() * 400);
const scratch = mkdtempSync(join(powerFsTempRoot(), 'ptpvts-vts-cuts-'));
afterAll(async () => {
  for (const m of mounts.splice(0)) await m.unmount();
  rmSync(scratch, { recursive: true, force: true });
});

/** Violations of a campaign, counted per check and mode; the first few are kept in full. */
class Findings {
  readonly byCheck = new Map<string, number>();
  readonly examples: string[] = [];
  failedCuts = 0;
  add(mode: CutMode, cutSeed: number, vs: readonly Violation[]): void {
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
    return `${this.failedCuts} cut(s) failed (run seed ${seed}). ${counts}\n${this.examples.join('\n')}`;
  }
}

/** Takes `cuts` snapshots at random moments while `load` runs, checking each with `check`. */
async function campaign(fs: PowerFs, load: Load, cuts: number, rand: () => number, check: (dest: string) => Promise<Violation[]>, freeze: () => void): Promise<Findings> {
  const f = new Findings();
  try {
    for (let i = 0; i < cuts && !load.stopped; i++) {
      await new Promise((r) => setTimeout(r, Math.floor(rand() * rand() * 25)));
      const mode = MODES[i % MODES.length] ?? 'drop';
      const cutSeed = seed * 7919 + i;
      const dest = join(scratch, `cut-${i}`);
      freeze();
      await fs.snapshot(dest, { mode, seed: cutSeed });
      let vs: Violation[];
      try {
        vs = await check(dest);
      } catch (e) {
        vs = [{ check: 'opens', detail: `reopening failed: ${(e as Error).name}: ${(e as Error).message}` }];
      }
      f.add(mode, cutSeed, vs);
      rmSync(dest, { recursive: true, force: true });
      // Enough to name what broke; the rest of the budget would only repeat it.
      if (f.failedCuts >= 30) break;
    }
  } finally {
    await load.stop();
  }
  return f;
}

const docSchema = z.object({ k: z.number(), n: z.number().int(), pad: z.string() });

describe.skipIf(!avail.ok)(`VTS durable state across power cuts${avail.ok ? '' : ` (skipped: ${avail.why})`}`, () => {
  it('cache commits, token raises and tape copies on shared volumes, slot-file saves and durable files', async () => {
    const fs = await mountPowerFs({ name: 'vts-state' });
    mounts.push(fs);
    const rand = rng(seed);
    const cacheDir = join(fs.mountpoint, 'vts', 'cache');
    const stateDir = join(fs.mountpoint, 'vts', 'state');
    const cache = await VolumeCache.open({ dir: cacheDir });
    // SlotFile makes its file, not its directory: VtsUnit.open makes that, the same way.
    await mkdirDurable(stateDir);
    const { file: slot } = await SlotFile.open(join(stateDir, 'vts-state.bin'), () => slotPayload(0));
    const volumes = ['V00001', 'V00002', 'V00003'].map((v) => new VolumeLedger(v));
    const slotL = new SeriesLedger('vts-state.bin');
    const docs = [0, 1].map((k) => ({ k, path: join(stateDir, `doc-${k}.json`), l: new SeriesLedger(`doc-${k}.json`) }));
    const blobs = [0, 1].map((k) => ({ k, path: join(stateDir, `blob-${k}.bin`), l: new SeriesLedger(`blob-${k}.bin`) }));

    const load = new Load();
    for (const l of volumes) {
      load.spawn(`commit ${l.volser}`, commitLoop(cache, l, rand));
      // The same volume's metadata from three writers at once, as markBehind and premigration do.
      load.spawn(`behind ${l.volser}`, behindLoop(cache, l));
      load.spawn(`copy ${l.volser}`, copyLoop(cache, l));
    }
    load.spawn('slot', slotLoop(slot, slotL));
    for (const d of docs) load.spawn(d.l.name, docLoop(d.path, d.k, d.l));
    for (const b of blobs) load.spawn(b.l.name, blobLoop(b.path, b.k, b.l));

    let acks: { volumes: ReturnType<VolumeLedger['freeze']>[]; slot: number; docs: number[]; blobs: number[] } | undefined;
    const freeze = (): void => {
      acks = { volumes: volumes.map((l) => l.freeze()), slot: slotL.freeze(), docs: docs.map((d) => d.l.freeze()), blobs: blobs.map((b) => b.l.freeze()) };
    };
    const check = async (dest: string): Promise<Violation[]> => {
      const a = acks!;
      const out: Violation[] = [];
      const c = await VolumeCache.open({ dir: join(dest, 'vts', 'cache') }).catch((e: Error) => {
        out.push({ check: 'cache-opens', detail: `${e.name}: ${e.message}` });
        return undefined;
      });
      if (c) {
        volumes.forEach((l, i) => {
          const m = c.get(l.volser);
          out.push(...checkVolume(l, a.volumes[i]!, m, m ? c.dataPath(m) : null));
        });
        for (const m of c.list()) if (!volumes.some((l) => l.volser === m.volser)) out.push({ check: 'never-written', detail: `volume ${m.volser} was never written` });
      }
      const slotPath = join(dest, 'vts', 'state', 'vts-state.bin');
      const opened = await SlotFile.open(slotPath, () => slotPayload(-1)).catch((e: Error) => {
        out.push({ check: 'slot-opens', detail: `${e.name}: ${e.message}` });
        return undefined;
      });
      if (opened) {
        await opened.file.close();
        const n = (JSON.parse(new TextDecoder().decode(opened.payload)) as { n: number }).n;
        // -1: the file was not there at all and open made it afresh.
        const found = n === -1 ? undefined : n;
        out.push(...checkSeries(slotL, a.slot, found, found === undefined || Buffer.from(opened.payload).equals(Buffer.from(slotPayload(n))), 'slot'));
      }
      for (const [i, d] of docs.entries()) {
        const doc = await readJson(join(dest, 'vts', 'state', `doc-${d.k}.json`), docSchema).catch((e: Error) => {
          out.push({ check: 'doc-opens', detail: `${d.l.name}: ${e.message}` });
          return null;
        });
        if (doc !== null) out.push(...checkSeries(d.l, a.docs[i]!, doc?.n, doc === undefined || JSON.stringify(doc) === JSON.stringify(docValue(d.k, doc.n)), 'doc'));
      }
      for (const [i, b] of blobs.entries()) {
        let bytes: Buffer | undefined;
        try {
          bytes = readFileSync(join(dest, 'vts', 'state', `blob-${b.k}.bin`));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
        const n = bytes === undefined ? undefined : bytes.length >= 4 ? bytes.readUInt32LE(0) : -1;
        out.push(...checkSeries(b.l, a.blobs[i]!, n, bytes === undefined || (n !== undefined && n >= 0 && bytes.equals(blobValue(b.k, n))), 'blob'));
      }
      return out;
    };

    const cuts = cutCount();
    const findings = await campaign(fs, load, cuts, rand, check, freeze);
    await slot.close();
    expect(load.errors.map((e) => e.message)).toEqual([]);
    expect(findings.failedCuts, findings.summary()).toBe(0);
    // The load really ran and the cuts really lost something: else the campaign proves nothing.
    expect(volumes.every((l) => l.freeze().data > 3 && l.tokens.size > 3)).toBe(true);
    expect(slotL.acked).toBeGreaterThan(3);
  }, budgetMs);

  it('a VTS carried over from the older state file, under host writes, behind marks and keys', async () => {
    const fs = await mountPowerFs({ name: 'vts-unit' });
    mounts.push(fs);
    const rand = rng(seed + 1);
    const stateDir = join(fs.mountpoint, 'state');
    mkdirSync(stateDir);
    const LEGACY_SEQ = 7;
    await writeJsonDurable(join(stateDir, 'vts-state.json'), { id: 'A', lastKeySeq: LEGACY_SEQ, inOperation: true });
    const opts = (root: string) => ({ id: 'A', cacheDir: join(root, 'cache'), stateDir: join(root, 'state') });
    const vts = await VtsUnit.open(opts(fs.mountpoint));
    // H00003 writes volumes of 4 to 6 MiB: its working files' early writeback runs under the cuts.
    const hosts = ['H00001', 'H00002', 'H00003'].map((v) => new VolumeLedger(v));
    const behind = new VolumeLedger('B00001');
    const keys = new SeriesLedger('last key seq');
    const load = new Load();
    for (const l of hosts) load.spawn(`host ${l.volser}`, hostLoop(vts, l, rand, l.volser === 'H00003'));
    load.spawn('markBehind', async () => {
      const gen = behind.nextGeneration();
      behind.attemptToken(gen);
      await vts.markBehind(behind.volser, gen);
      behind.ackToken(gen);
    });
    load.spawn('keys', keyLoop(vts, keys, LEGACY_SEQ));

    let acks: { hosts: ReturnType<VolumeLedger['freeze']>[]; behind: ReturnType<VolumeLedger['freeze']>; keys: number } | undefined;
    const freeze = (): void => {
      acks = { hosts: hosts.map((l) => l.freeze()), behind: behind.freeze(), keys: keys.freeze() };
    };
    const check = async (dest: string): Promise<Violation[]> => {
      const a = acks!;
      const out: Violation[] = [];
      const u = await VtsUnit.open(opts(dest));
      try {
        const seq = u.lastKeySeq - LEGACY_SEQ;
        out.push(...checkSeries(keys, a.keys, seq, true, 'keyseq'));
        if (!u.inOperation) out.push({ check: 'keyseq', detail: 'the VTS came back out of operation' });
        hosts.forEach((l, i) => {
          const m = u.cache.get(l.volser);
          out.push(...checkVolume(l, a.hosts[i]!, m, m ? u.cache.dataPath(m) : null));
        });
        const b = u.cache.get(behind.volser);
        out.push(...checkVolume(behind, a.behind, b, b ? u.cache.dataPath(b) : null));
      } finally {
        await u.shutdown();
      }
      return out;
    };
    const findings = await campaign(fs, load, Math.max(1, Math.ceil(cutCount() / 2)), rand, check, freeze);
    await vts.shutdown();
    expect(load.errors.map((e) => e.message)).toEqual([]);
    expect(findings.failedCuts, findings.summary()).toBe(0);
    expect(keys.acked).toBeGreaterThan(3);
    expect(hosts.every((l) => l.freeze().data > 2)).toBe(true);
  }, budgetMs);

  it('a VTS with a library: premigration, eviction and recall while hosts write', async () => {
    const fs = await mountPowerFs({ name: 'vts-library' });
    mounts.push(fs);
    const rand = rng(seed + 2);
    // The library's own media lives off the power-cut mount: only the VTS's disks lose power here.
    const labDir = mkdtempSync(join(scratch, 'lab-'));
    writeFileSync(join(labDir, 'library.yaml'), ['name: plab', 'personality: IBM-TS3200', 'timeScale: 0', 'mediaDir: media', 'storageSlots: 8', 'drives:', '  count: 2', '  personality: LTO8', 'cartridges:', '  - { barcode: PLA001L8, location: slot 1, capacity: 64MiB }', '  - { barcode: PLA002L8, location: slot 2, capacity: 64MiB }', ''].join('\n'));
    const lab = await openEmbeddedLab(join(labDir, 'library.yaml'), { persist: false });
    const library = { changer: lab.changer, drives: lab.drives, cartridges: ['PLA001L8', 'PLA002L8'], retryDelayMs: 0, sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 5))), blockSize: 16 * 1024 };
    const vts = await VtsUnit.open({ id: 'A', cacheDir: join(fs.mountpoint, 'cache'), stateDir: join(fs.mountpoint, 'state'), library });
    const vols = ['L00001', 'L00002', 'L00003'].map((v) => new VolumeLedger(v));
    const load = new Load();
    for (const l of vols) load.spawn(`library ${l.volser}`, libraryLoop(vts, l, rand));
    let acks: ReturnType<VolumeLedger['freeze']>[] = [];
    const freeze = (): void => {
      acks = vols.map((l) => l.freeze());
    };
    const check = async (dest: string): Promise<Violation[]> => {
      const out: Violation[] = [];
      // Reopened without the library: a check must not move the live library's cartridges.
      const u = await VtsUnit.open({ id: 'A', cacheDir: join(dest, 'cache'), stateDir: join(dest, 'state') });
      try {
        vols.forEach((l, i) => {
          const m = u.cache.get(l.volser);
          out.push(...checkVolume(l, acks[i]!, m, m ? u.cache.dataPath(m) : null, { copiesByPremigrator: true }));
        });
      } finally {
        await u.shutdown();
      }
      await Premigrator.open({ vtsId: 'A', stateDir: join(dest, 'state'), changer: lab.changer, drives: [{} as TapeDrive], cartridges: [] }).catch((e: Error) => {
        out.push({ check: 'cartridges-opens', detail: `${e.name}: ${e.message}` });
      });
      return out;
    };
    const cuts = Math.max(1, Math.ceil(cutCount() / 4));
    let findings: Findings;
    try {
      findings = await campaign(fs, load, cuts, rand, check, freeze);
    } finally {
      await vts.shutdown();
      await lab.close();
    }
    expect(load.errors.map((e) => e.message)).toEqual([]);
    expect(findings.failedCuts, findings.summary()).toBe(0);
    const stats = vts.premigrator!.stats;
    // Premigration, eviction and recall all happened under the cuts.
    expect(stats.premigrated).toBeGreaterThan(2);
    expect(stats.recalled).toBeGreaterThan(0);
  }, budgetMs);
});
