/**
 * Power-loss campaign for the lab CLI's `state.json`: two embedded labs on one powerfs mount
 * are worked by the production code (sessions that move cartridges, load and unload, append
 * to tape; fault injections), each saving the lab's state. At random moments a cut is taken
 * (drop, pages and prefix modes in turn) and the state is loaded from it with the production
 * loader (readState, then checkStateFitsLibrary against the YAML). It must be exactly one of
 * the lab's acknowledged states, the last one acknowledged before the cut or a later one (a
 * save in flight), never an older one, never invalid, never missing.
 *
 * PTPVTS_POWER_SEED replays a run; failures name the check, the mode and the seed.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadLibraryConfig } from '../../firmware-sim/library/index.js';
import { checkStateFitsLibrary, readState, statePath } from '../../src/cli/lab.js';
import { cutCount, mountPowerFs, powerFsAvailable, powerFsTempRoot, type CutMode, type PowerFs } from './powerfs.js';
import { LabLedger, canonical, firstSession, makeLabDurably, step } from './lab-state/writer.js';
import { rng } from './vts-state/ledger.js';

const avail = powerFsAvailable();
const MODES: readonly CutMode[] = ['drop', 'pages', 'prefix'];
const seed = Number(process.env['PTPVTS_POWER_SEED'] ?? Date.now() % 1_000_000_007);
const mounts: PowerFs[] = [];
const scratch = mkdtempSync(join(powerFsTempRoot(), 'ptpvts-lab-cuts-'));
afterAll(async () => {
  for (const m of mounts.splice(0)) await m.unmount();
  rmSync(scratch, { recursive: true, force: true });
});

/** A check that failed on one cut. The check names are what the lead's gate script matches. */
type Check = 'state-loads' | 'state-present' | 'not-older' | 'never-written' | 'fits-library';

interface CutRecord {
  readonly lab: string;
  readonly mode: CutMode;
  readonly cutSeed: number;
  /** Acknowledged states before the cut (index of the last one + 1). */
  readonly ackedBefore: number;
  /** Acknowledged states when the cut had been taken: a save in flight is at most this index. */
  readonly ackedAfter: number;
  /** Canonical text of the state loaded from the cut, or the failure. */
  readonly loaded: { ok: true; text: string } | { ok: false; check: Check; detail: string };
}

function judge(c: CutRecord, l: LabLedger): { check: Check; detail: string } | undefined {
  if (!c.loaded.ok) return c.loaded;
  const at = l.acked.indexOf(c.loaded.text);
  if (at < 0) return { check: 'never-written', detail: `the state loaded was never acknowledged: ${c.loaded.text.slice(0, 200)}` };
  if (at < c.ackedBefore - 1) return { check: 'not-older', detail: `state #${at} loaded, but #${c.ackedBefore - 1} was acknowledged before the cut` };
  if (at > c.ackedAfter) return { check: 'never-written', detail: `state #${at} loaded, but only ${c.ackedAfter} had been acknowledged once the cut was taken` };
  return undefined;
}

/** The production loader on the cut: what the next CLI command would find. */
function loadFromCut(dest: string, yamlOnMount: string, mountpoint: string): CutRecord['loaded'] {
  const yaml = join(dest, relative(mountpoint, yamlOnMount));
  if (!existsSync(statePath(yaml))) return { ok: false, check: 'state-present', detail: `${statePath(yaml)} is gone` };
  let state;
  try {
    state = readState(yaml);
  } catch (e) {
    return { ok: false, check: 'state-loads', detail: `${(e as Error).name}: ${(e as Error).message}` };
  }
  try {
    checkStateFitsLibrary(statePath(yaml), state, loadLibraryConfig({ path: yaml }));
  } catch (e) {
    return { ok: false, check: 'fits-library', detail: `${(e as Error).name}: ${(e as Error).message}` };
  }
  return { ok: true, text: canonical(state) };
}

describe.skipIf(!avail.ok)(`lab state.json across power cuts${avail.ok ? '' : ` (skipped: ${avail.why})`}`, () => {
  it('every cut loads the last acknowledged state or a later one, in all three modes', async () => {
    const fs = await mountPowerFs({ name: 'lab-state' });
    mounts.push(fs);
    const rand = rng(seed);
    const labs = ['labA', 'labB'].map((n) => new LabLedger(n, makeLabDurably(fs.mountpoint, n)));
    for (const l of labs) await firstSession(l);

    // Two writers (one per lab) interleave their sessions on the mount until the cuts are done.
    let stopped = false;
    const errors: Error[] = [];
    const writers = labs.map(async (l, i) => {
      const faults = { n: 1 };
      const r = rng(seed * 31 + i);
      try {
        while (!stopped) {
          await step(l, r, faults);
          await new Promise((res) => setImmediate(res));
        }
      } catch (e) {
        errors.push(new Error(`writer ${l.name} failed: ${(e as Error).message}`, { cause: e }));
        stopped = true;
      }
    });

    const cuts: CutRecord[] = [];
    let lost = 0;
    const total = cutCount();
    try {
      for (let i = 0; i < total && !stopped; i++) {
        await new Promise((r) => setTimeout(r, Math.floor(rand() * rand() * 30)));
        const mode = MODES[i % MODES.length]!;
        const cutSeed = seed * 7919 + i;
        const dest = join(scratch, `cut-${i}`);
        // Frozen before the cut: only these must survive it.
        const before = labs.map((l) => l.acked.length);
        const report = await fs.snapshot(dest, { mode, seed: cutSeed });
        lost += report.lostBytes + report.revertedDirOps;
        for (const [k, l] of labs.entries()) {
          cuts.push({ lab: l.name, mode, cutSeed, ackedBefore: before[k]!, ackedAfter: l.acked.length, loaded: loadFromCut(dest, l.yaml, fs.mountpoint) });
        }
        rmSync(dest, { recursive: true, force: true });
      }
    } finally {
      stopped = true;
      await Promise.all(writers);
    }

    expect(errors.map((e) => e.message)).toEqual([]);
    const byCheck = new Map<string, number>();
    const examples: string[] = [];
    for (const c of cuts) {
      const l = labs.find((x) => x.name === c.lab)!;
      const bad = judge(c, l);
      if (!bad) continue;
      const key = `${bad.check} (${c.mode})`;
      byCheck.set(key, (byCheck.get(key) ?? 0) + 1);
      if (examples.length < 8) examples.push(`[${bad.check}] ${c.lab} mode ${c.mode} seed ${c.cutSeed}: ${bad.detail}`);
    }
    const failed = [...byCheck.values()].reduce((a, b) => a + b, 0);
    const summary = `${failed} lab cut(s) failed (run seed ${seed}). ${[...byCheck].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}\n${examples.join('\n')}`;
    expect(failed, summary).toBe(0);
    // The load really ran and the cuts really lost something: else the campaign proves nothing.
    for (const l of labs) {
      expect(l.acked.length, `${l.name} saves`).toBeGreaterThan(Math.min(20, total / 5));
      expect(l.kinds.get('fault') ?? 0, `${l.name} fault saves`).toBeGreaterThan(0);
      expect(l.kinds.get('move') ?? 0, `${l.name} move saves`).toBeGreaterThan(0);
    }
    expect(lost).toBeGreaterThan(0);
    console.log(`lab-state power-loss: ${cuts.length / labs.length} cuts (seed ${seed}); saves ${labs.map((l) => `${l.name} ${l.acked.length} ${JSON.stringify(Object.fromEntries(l.kinds))}`).join(', ')}`);
  });
});
