/**
 * Safety through the production agent and VTS unit (not the simulation's model): a VTC cut
 * off from its peers must not acknowledge writes or serve reads a newer key has fenced, and
 * a restored old VTS image must not go on-line alone after both VTS lost power together.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scenario/cluster.js';
import { generationFloor } from '../ptp/volumes.js';

let dir: string;
let c: LocalCluster | null = null;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-fencing-'));
});
afterEach(async () => {
  await c?.stop();
  c = null;
  rmSync(dir, { recursive: true, force: true });
});

const all = (cl: LocalCluster, s: string, only?: string[]) => () => cl.alive().filter((a) => only === undefined || only.includes(a.self)).every((a) => cl.statuses()[a.self] === s) && cl.alive().length > 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const text = (d: Uint8Array): string => Buffer.from(d).toString('utf8');

describe('fencing through the production agent and VTS unit', () => {
  it('a VTC cut from its peers but not from the VTS neither acknowledges a write kept only on the VTS outside current nor reads a stale generation', async () => {
    c = await LocalCluster.start({ n: 4, dir, copyMode: 'deferred' });
    expect(await c.waitFor(all(c, 'online-both'), 8000)).toBe(true);
    await c.agent('vtc1').writeVolume('V00001', Buffer.from('generation 1'), { copyMode: 'immediate' });

    // vtc4 loses its peers but keeps both VTS; vtc1-3 lose A and commit a failure key for it.
    c.partition([['vtc1', 'vtc2', 'vtc3'], ['vtc4']]);
    for (const v of ['vtc1', 'vtc2', 'vtc3']) c.agent(v).cutVts('A', true);
    expect(await c.waitFor(() => ['vtc1', 'vtc2', 'vtc3'].every((v) => c!.agent(v).engine.newestKey().seq >= 1), 8000)).toBe(true);
    const k = c.agent('vtc1').engine.newestKey();
    expect([k.command, k.reason, k.current]).toEqual(['vts-out', 'failure', ['B']]);
    expect(await c.waitFor(all(c, 'online-single(B)', ['vtc1', 'vtc2', 'vtc3']), 5000)).toBe(true);
    // A never heard of the key: only the survivor fences.
    expect(c.vts.A.unit?.lastKeySeq).toBe(0);
    expect(c.vts.B.unit?.lastKeySeq).toBe(k.seq);

    // An acknowledged write through the current side: the second generation, on B only.
    await c.agent('vtc2').writeVolume('V00001', Buffer.from('generation 2'));
    expect(c.vts.B.unit?.token('V00001')).toEqual({ generation: generationFloor(k.seq), consistent: true });

    // vtc4 still holds key 0. A deferred write through it must not be acknowledged: its data
    // would sit only on A, outside current {B}.
    let acked: unknown = null;
    try {
      acked = await c.agent('vtc4').writeVolume('V00002', Buffer.from('through the cut-off VTC'));
    } catch {
      acked = null;
    }
    expect(acked).toBeNull();
    // Nor may it serve generation 1 of V00001 from A: generation 2 was acknowledged on B.
    let read: string | null = null;
    try {
      read = text((await c.agent('vtc4').readVolume('V00001')).data);
    } catch {
      read = null;
    }
    expect(read === null || read === 'generation 2').toBe(true);
  }, 30_000);

  it('both VTS lose power together and A comes back as a restored older image: it never goes on-line alone; with B back the newest data is served', async () => {
    c = await LocalCluster.start({ n: 4, dir });
    expect(await c.waitFor(all(c, 'online-both'), 8000)).toBe(true);
    await c.agent('vtc1').writeVolume('V00010', Buffer.from('old'));
    // A backup of A's disks, taken while A is idle.
    const backup = join(dir, 'backup-A');
    cpSync(join(dir, 'vts-A'), backup, { recursive: true });
    await c.agent('vtc1').command({ command: 'threshold-set', threshold: 2 });
    await c.agent('vtc1').writeVolume('V00010', Buffer.from('new'));
    expect(c.vts.A.unit?.token('V00010')).toEqual({ generation: generationFloor(c.agent('vtc1').engine.newestKey().seq), consistent: true });

    // Both lose power at once; A's disks are restored from the backup; A alone comes back.
    await Promise.all([c.crashVts('A'), c.crashVts('B')]);
    rmSync(join(dir, 'vts-A'), { recursive: true, force: true });
    cpSync(backup, join(dir, 'vts-A'), { recursive: true });
    await sleep(200);
    await c.restartVts('A');
    // Long enough for the VTCs to see B lost and A back, and to act on it.
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      expect(Object.values(c.statuses()).filter((s) => s !== 'offline' && s !== 'online-both'), 'no VTC may place the restored A on-line alone').toEqual([]);
      await sleep(50);
    }
    // Nothing read through any VTC may be the old generation.
    for (const a of c.alive()) {
      let got: string | null = null;
      try {
        got = text((await a.readVolume('V00010')).data);
      } catch {
        got = null;
      }
      expect(got === null || got === 'new', `${a.self} read "${got}"`).toBe(true);
    }
    await c.restartVts('B');
    expect(await c.waitFor(all(c, 'online-both'), 10_000)).toBe(true);
    expect(await c.waitFor(() => c!.vts.A.unit?.view().behind.length === 0 && c!.vts.B.unit?.view().behind.length === 0, 8000)).toBe(true);
    expect(text((await c.agent('vtc3').readVolume('V00010')).data)).toBe('new');
  }, 40_000);
});
