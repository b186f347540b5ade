/**
 * Power-loss campaign for emulated tape cartridge files (firmware-sim/media): a worker
 * thread drives an emulated LTO-7 drive whose cartridges live on a powerfs mount, with the
 * SCSI commands hosts use (WRITE(6), WRITE FILEMARKS, LOCATE + ERASE, LOCATE + WRITE over
 * old data, WRITE ATTRIBUTE, LOAD/UNLOAD, robot removal and insertion of new cartridges).
 * At random moments a cut is taken (drop, pages and prefix modes in turn); each cartridge
 * file it leaves is opened with the production recovery code and the media check, and
 * compared with the workload's model (cartridge/check.ts):
 *
 * - opens: the file opens (header readable, recovery does not fail);
 * - mid-tape-damage / medium-error: no damaged record where a torn tail should be;
 * - acknowledged-lost: every object before the last acknowledged sync point is there;
 * - never-written / content: what reads back is a state the tape was in, intact;
 * - attribute: the host's cartridge-memory attribute is the last acknowledged value or one in flight;
 * - cartridge-lost: a cartridge created (and loaded) before the cut still exists;
 * - format1-mix / format1-mam-lost: a cartridge inserted in format version 1 (half of the
 *   new ones) is converted to version 2 by the drive's load; after a cut it is a whole
 *   version 1 file (its records and cartridge memory exactly) or a version 2 one that kept
 *   them, never a version 1 header over what only the converted cartridge wrote.
 *
 * PTPVTS_POWER_SEED replays a run's workload; failures name the check, the mode and the seed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { cutCount, cutRandom, mountPowerFs, powerFsAvailable, powerFsTempRoot, startCampaignWriter, type CutMode, type PowerFs } from './powerfs.js';
import { checkCut, type Violation } from './cartridge/check.js';
import { Script, Slot } from './cartridge/script.js';

const avail = powerFsAvailable();
const MODES: readonly CutMode[] = ['drop', 'pages', 'prefix'];
const seed = Number(process.env['PTPVTS_POWER_SEED'] ?? Date.now() % 1_000_000_007);
const mounts: PowerFs[] = [];
const scratch = mkdtempSync(join(powerFsTempRoot(), 'ptpvts-cart-cuts-'));
// Bundled to plain JS for the worker thread; under node_modules/.cache because the addon
// loader finds its build from the package root above it.
const bundle = fileURLToPath(new URL(`../../node_modules/.cache/ptpvts-cart-writer-${process.pid}.mjs`, import.meta.url));
afterAll(async () => {
  for (const m of mounts.splice(0)) await m.unmount();
  rmSync(scratch, { recursive: true, force: true });
  rmSync(bundle, { force: true });
});

/** Violations counted per check and mode; the first few kept in full. */
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

describe.skipIf(!avail.ok)(`cartridge files across power cuts${avail.ok ? '' : ` (skipped: ${avail.why})`}`, () => {
  it('writes, filemarks, overwrites, erases, attributes, reloads, new and format 1 cartridges through the drive', async () => {
    await build({ entryPoints: [fileURLToPath(new URL('./cartridge/writer.ts', import.meta.url))], bundle: true, platform: 'node', format: 'esm', outfile: bundle, logLevel: 'error' });
    const fs = await mountPowerFs({ name: 'cartridge' });
    mounts.push(fs);
    const shared = new SharedArrayBuffer(Slot.length * 4);
    const sh = new Int32Array(shared);
    // -2: not even the first cartridge is loaded yet; -1: it is, no op done.
    sh[Slot.op] = -1;
    sh[Slot.done] = -2;
    const { worker, finished } = startCampaignWriter(bundle, { dir: fs.mountpoint, seed, shared });
    const rand = cutRandom(seed);
    const fresh = new Script(seed);
    const base = new Script(seed);
    const findings = new Findings();
    let lost = 0;
    const cuts = cutCount();
    let writerDone: { ops?: number; error?: string } | undefined;
    void finished.then((r) => (writerDone = r));
    try {
      for (let i = 0; i < cuts && !writerDone; i++) {
        await new Promise((r) => setTimeout(r, Math.floor(rand() * rand() * 30)));
        if (i % 8 === 3) {
          // One cut in eight waits for a cartridge being created and loaded: a short window
          // that random cuts alone would seldom hit.
          const until = Date.now() + 300;
          while (!Atomics.load(sh, Slot.creating) && Date.now() < until) await new Promise((r) => setImmediate(r));
        } else if (i % 8 === 5) {
          // And one in eight for an overwrite or erase whose discard of the old records is
          // written but not yet durable (a torn write there must not bring old records back).
          const until = Date.now() + 300;
          while (Atomics.load(sh, Slot.discarding) !== 2 && Date.now() < until) await new Promise((r) => setImmediate(r));
        } else if (i % 8 === 7) {
          // And one in eight for a format 1 cartridge's rewritten header not yet durable,
          // preferably once a later write came in too (every mode in turn: 8 and 3 are coprime).
          let until = Date.now() + 300;
          while (!Atomics.load(sh, Slot.converting) && Date.now() < until) await new Promise((r) => setImmediate(r));
          until = Date.now() + 5;
          while (Atomics.load(sh, Slot.converting) === 1 && Date.now() < until) await new Promise((r) => setImmediate(r));
        }
        const mode = MODES[i % MODES.length] ?? 'drop';
        const cutSeed = seed * 7919 + i;
        const dest = join(scratch, `cut-${i}`);
        // What the writer had finished before the cut: only that must survive.
        const done = Atomics.load(sh, Slot.done);
        while (base.index < done) base.step();
        const acked = done >= -1 ? base.clone() : undefined;
        const report = await fs.snapshot(dest, { mode, seed: cutSeed });
        lost += report.lostBytes;
        const end = Math.max(Atomics.load(sh, Slot.op), done);
        let vs: Violation[];
        try {
          vs = checkCut(dest, acked, fresh, end);
        } catch (e) {
          vs = [{ check: 'check-failed', detail: `${(e as Error).name}: ${(e as Error).message}` }];
        }
        findings.add(mode, cutSeed, vs);
        rmSync(dest, { recursive: true, force: true });
        if (findings.failedCuts >= 30) break;
      }
    } finally {
      Atomics.store(sh, Slot.stop, 1);
    }
    const result = await finished;
    await worker.terminate();
    console.log(`cartridge campaign: seed ${seed}, ${cuts} cuts, ${result.ops ?? 0} ops, ${base.current + 1} cartridges, ${lost} unsynced bytes lost by the cuts`);
    expect(result.error, 'writer').toBeUndefined();
    expect(findings.failedCuts, findings.summary()).toBe(0);
    // The load really ran and cuts really lost unsynced data: else the campaign proves nothing.
    expect(result.ops ?? 0).toBeGreaterThan(cuts);
    expect(lost).toBeGreaterThan(0);
  });
});
