/**
 * Power-loss campaign for partitioned cartridge files: a worker thread formats one
 * cartridge file on a powerfs mount into 1 to 4 partitions again and again, writes blocks
 * and filemarks in one partition after another, overwrites inside a partition and
 * reloads (partitions/script.ts). At random moments (and, one cut in four, during a FORMAT
 * MEDIUM) a cut is taken in the drop, pages and prefix modes; the file it leaves is opened
 * with the production recovery code and checked:
 *
 * - opens / damage: it opens, and the media check finds no damaged record;
 * - content: every block reads back as written (its uid and bytes);
 * - mixed: the partitions and their objects are exactly one state the tape was in (the
 *   layout before a format with its data, or the new layout with a state of its data),
 *   never one layout with another's records;
 * - acknowledged-lost: that state is no older than what the finished ops acknowledged
 *   (a format, a filemark, a discard, a partition change, a reload).
 *
 * PTPVTS_POWER_SEED replays a run's workload; PTPVTS_POWER_CUTS sets the number of cuts.
 */
import { rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { Cartridge, checkCartridge } from '../../firmware-sim/media/index.js';
import { cutCount, cutRandom, mountPowerFs, powerFsAvailable, powerFsTempRoot, startCampaignWriter, type CutMode, type PowerFs } from './powerfs.js';
import { blockBytes, CAPACITY, Script, Slot } from './partitions/script.js';

const avail = powerFsAvailable();
const MODES: readonly CutMode[] = ['drop', 'pages', 'prefix'];
const seed = Number(process.env['PTPVTS_POWER_SEED'] ?? Date.now() % 1_000_000_007);
const mounts: PowerFs[] = [];
const scratch = mkdtempSync(join(powerFsTempRoot(), 'ptpvts-part-cuts-'));
const bundle = fileURLToPath(new URL(`../../node_modules/.cache/ptpvts-part-writer-${process.pid}.mjs`, import.meta.url));
afterAll(async () => {
  for (const m of mounts.splice(0)) await m.unmount();
  rmSync(scratch, { recursive: true, force: true });
  rmSync(bundle, { force: true });
});

/** The state a cut file holds, as the script writes states; throws a described error on bad content. */
function stateOf(path: string): string {
  const c = Cartridge.open(path, { readOnly: true });
  try {
    const parts: string[][] = [];
    for (let p = 0; p < c.partitionCount; p++) {
      c.selectPartition(p);
      const objs: string[] = [];
      for (let i = 0; i < c.objectCount; i++) {
        if (c.object(i)?.kind === 'filemark') {
          objs.push('fm');
          continue;
        }
        const b = c.readBlock(i);
        const v = new DataView(b.buffer, b.byteOffset, b.length);
        const uid = b.length >= 8 ? v.getUint32(0) : -1;
        const want = blockBytes(uid, v.getUint32(4));
        if (b.length !== want.length || !b.every((x, j) => x === want[j])) throw new Error(`content: partition ${p} object ${i} (uid ${uid}) does not read back as written`);
        objs.push(`b${uid}`);
      }
      parts.push(objs);
    }
    return JSON.stringify(parts);
  } finally {
    c.close();
  }
}

describe.skipIf(!avail.ok)(`partitioned cartridge files across power cuts${avail.ok ? '' : ` (skipped: ${avail.why})`}`, () => {
  it('FORMAT MEDIUM into partitions, writes and overwrites in each, reloads: never a mixed layout, nothing acknowledged lost', async () => {
    await build({ entryPoints: [fileURLToPath(new URL('./partitions/writer.ts', import.meta.url))], bundle: true, platform: 'node', format: 'esm', outfile: bundle, logLevel: 'error' });
    const fs = await mountPowerFs({ name: 'partitions' });
    mounts.push(fs);
    const path = join(fs.mountpoint, 'P00001L8.cart');
    Cartridge.open(path, { create: { mediaType: 'LTO8', barcode: 'P00001L8', capacityBytes: CAPACITY, worm: false } }).close();
    const shared = new SharedArrayBuffer(Slot.length * 4);
    const sh = new Int32Array(shared);
    sh[Slot.op] = -1;
    sh[Slot.done] = -1;
    const { worker, finished } = startCampaignWriter(bundle, { path, seed, shared });
    const rand = cutRandom(seed);
    const script = new Script(seed);
    const failures: string[] = [];
    const byCheck = new Map<string, number>();
    let lost = 0;
    let formatCuts = 0;
    let layouts = new Set<number>();
    const cuts = cutCount();
    let writerDone: { ops?: number; error?: string } | undefined;
    void finished.then((r) => (writerDone = r));
    try {
      for (let i = 0; i < cuts && !writerDone; i++) {
        await new Promise((r) => setTimeout(r, Math.floor(rand() * rand() * 20)));
        if (i % 4 === 1) {
          // One cut in four waits for a FORMAT MEDIUM under way.
          const until = Date.now() + 400;
          while (!Atomics.load(sh, Slot.formatting) && Date.now() < until) await new Promise((r) => setImmediate(r));
        }
        const mode = MODES[i % MODES.length] ?? 'drop';
        const cutSeed = seed * 7919 + i;
        const dest = join(scratch, `cut-${i}`);
        const done = Atomics.load(sh, Slot.done);
        const during = Atomics.load(sh, Slot.formatting) === 1;
        const report = await fs.snapshot(dest, { mode, seed: cutSeed });
        lost += report.lostBytes;
        const started = Math.max(Atomics.load(sh, Slot.op), done);
        if (during) formatCuts++;
        script.upTo(Math.max(started, 0));
        const lo = done >= 0 ? (script.acked[done] ?? 0) : 0;
        const hi = started >= 0 ? (script.last[started] ?? 0) : 0;
        const where = `cut ${i} (${mode}, seed ${cutSeed}) after op ${done}, op ${started} (${script.ops[started]?.k ?? 'none'}) started`;
        const fail = (check: string, detail: string): void => {
          byCheck.set(check, (byCheck.get(check) ?? 0) + 1);
          if (failures.length < 8) failures.push(`[${check}] ${where}: ${detail}`);
        };
        const file = join(dest, 'P00001L8.cart');
        try {
          const r = checkCartridge(file);
          if (r.damaged.length > 0) fail('damage', `${r.damaged.length} damaged record(s), first ${JSON.stringify(r.damaged[0])}`);
          layouts.add(r.partitions.length);
          const got = stateOf(file);
          let at = -1;
          for (let j = hi; j >= 0; j--) {
            if (script.states[j] === got) {
              at = j;
              break;
            }
          }
          if (at < 0) fail('mixed', `${got} is no state the tape was in (states ${lo}..${hi}: ${script.states.slice(Math.max(lo, hi - 3), hi + 1).join(' | ')})`);
          else if (at < lo) fail('acknowledged-lost', `${got} is state ${at}, older than the acknowledged state ${lo} ${script.states[lo]}`);
        } catch (e) {
          fail((e as Error).message.startsWith('content:') ? 'content' : 'opens', `${(e as Error).name}: ${(e as Error).message}`);
        }
        rmSync(dest, { recursive: true, force: true });
        if (failures.length >= 8) break;
      }
    } finally {
      Atomics.store(sh, Slot.stop, 1);
    }
    const result = await finished;
    await worker.terminate();
    console.log(`partitions campaign: seed ${seed}, ${cuts} cuts (${formatCuts} during a FORMAT MEDIUM), ${result.ops ?? 0} ops, layouts of ${[...layouts].sort().join(', ')} partitions seen, ${lost} unsynced bytes lost by the cuts`);
    expect(result.error, 'writer').toBeUndefined();
    expect(failures, `${[...byCheck].map(([k, n]) => `${k}: ${n}`).join(', ')} (run seed ${seed})\n${failures.join('\n')}`).toEqual([]);
    // The load really ran, formats were cut, and cuts lost unsynced data: else the campaign proves nothing.
    expect(result.ops ?? 0).toBeGreaterThan(cuts);
    expect(formatCuts).toBeGreaterThan(0);
    expect(layouts.size).toBeGreaterThan(1);
    expect(lost).toBeGreaterThan(0);
    layouts = new Set();
  });
});
