import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scenario/cluster.js';

let dir: string;
let c: LocalCluster | null = null;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-agent-'));
});
afterEach(async () => {
  await c?.stop();
  c = null;
  rmSync(dir, { recursive: true, force: true });
});

const all = (cl: LocalCluster, s: string) => () => Object.values(cl.statuses()).every((x) => x === s) && cl.alive().length > 0;
const agreeOn = (cl: LocalCluster, seq: number) => () => cl.alive().every((a) => a.engine.newestKey().seq >= seq);

describe('VTC agents over loopback TCP (4 VTCs, 2 VTS)', () => {
  it('claim 1: A out, B takes writes, B out; A back alone stays off-line (4 NO); B back: on-line with both and B\'s data on A', async () => {
    c = await LocalCluster.start({ n: 4, dir });
    expect(await c.waitFor(all(c, 'online-both'), 8000)).toBe(true);
    const w1 = await c.agent('vtc1').writeVolume('V00001', Buffer.from('both'));
    expect(w1.copies).toEqual(['A', 'B']);

    const k1 = await c.agent('vtc2').command({ command: 'vts-out', vts: 'A', mode: 'normal' });
    expect(k1.current).toEqual(['B']);
    expect(await c.waitFor(all(c, 'online-single(B)'), 5000)).toBe(true);
    const w2 = await c.agent('vtc3').writeVolume('V00002', Buffer.from('B only'));
    expect(w2.copies).toEqual(['B']);

    await c.agent('vtc3').command({ command: 'vts-out', vts: 'B', mode: 'normal' });
    expect(await c.waitFor(all(c, 'offline'), 5000)).toBe(true);
    await c.waitFor(agreeOn(c, 2), 3000);
    await c.agent('vtc1').command({ command: 'vts-in', vts: 'A' });
    expect(
      await c.waitFor(() => {
        const e = c!.agent('vtc4').status().lastElection;
        return e !== null && e.id.vts === 'A' && e.ballots.length === 4;
      }, 5000),
    ).toBe(true);
    const e = c.agent('vtc4').status().lastElection!;
    expect(e.ballots.every((b) => b.choice === 'no')).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(Object.values(c.statuses())).toEqual(['offline', 'offline', 'offline', 'offline']);
    await expect(c.agent('vtc2').readVolume('V00002')).rejects.toMatchObject({ code: 'EVTC_OFFLINE' });

    await c.waitFor(agreeOn(c, 3), 3000);
    await c.agent('vtc4').command({ command: 'vts-in', vts: 'B' });
    expect(await c.waitFor(all(c, 'online-both'), 8000)).toBe(true);
    // Resync by tokens: A gets B's newer volume, so reading from A (the preferred VTS) works.
    expect(await c.waitFor(() => c!.vts.A.unit?.view().behind.length === 0, 5000)).toBe(true);
    const r = await c.agent('vtc1').readVolume('V00002');
    expect(Buffer.from(r.data).toString()).toBe('B only');
    expect(r.vts).toBe('A');
  });

  it('claim 7: both out together, both back: on-line with both and no ballot cast', async () => {
    c = await LocalCluster.start({ n: 4, dir });
    expect(await c.waitFor(all(c, 'online-both'), 8000)).toBe(true);
    await c.agent('vtc1').writeVolume('V00007', Buffer.from('seven'));
    const k = await c.agent('vtc2').command({ command: 'ptp-shutdown', mode: 'normal' });
    expect(k.current).toEqual(['A', 'B']);
    expect(await c.waitFor(all(c, 'offline'), 5000)).toBe(true);
    expect(c.vts.A.unit?.inOperation).toBe(false);
    expect(c.vts.B.unit?.inOperation).toBe(false);
    await c.waitFor(agreeOn(c, 1), 3000);
    const before = c.events.filter((e) => e.kind === 'ballot').length;
    await c.agent('vtc3').command({ command: 'ptp-start' });
    expect(await c.waitFor(all(c, 'online-both'), 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(c.events.filter((e) => e.kind === 'ballot').length).toBe(before);
    expect(Buffer.from((await c.agent('vtc4').readVolume('V00007')).data).toString()).toBe('seven');
  });

  it('deferred copies: the close is acknowledged with the copy queued, and the queue brings the other VTS up to date', async () => {
    c = await LocalCluster.start({ n: 4, dir, copyMode: 'deferred' });
    expect(await c.waitFor(all(c, 'online-both'), 8000)).toBe(true);
    for (const a of c.alive()) a.copies.paused = true;
    const w = await c.agent('vtc1').writeVolume('V00100', Buffer.from('deferred'));
    expect(w.copies).toEqual(['A']);
    expect(w.queued).toEqual(['B']);
    expect(c.vts.B.unit?.view().behind).toEqual(['V00100']);
    for (const a of c.alive()) a.copies.paused = false;
    expect(await c.waitFor(() => c!.vts.B.unit?.view().behind.length === 0, 5000)).toBe(true);
    expect(c.vts.B.unit?.token('V00100')).toEqual({ generation: 1, consistent: true });
  });

  it('a crashed VTC restarts from its key journal and learns the keys it missed', async () => {
    c = await LocalCluster.start({ n: 4, dir });
    expect(await c.waitFor(all(c, 'online-both'), 8000)).toBe(true);
    await c.agent('vtc1').command({ command: 'threshold-set', threshold: 1, belowHalf: true, note: 'test: a low threshold the restarted VTC must learn' });
    await c.waitFor(agreeOn(c, 1), 3000);
    await c.crashVtc('vtc4');
    await c.agent('vtc1').command({ command: 'vts-out', vts: 'A', mode: 'expedite' });
    await c.restartVtc('vtc4');
    expect(await c.waitFor(() => c!.agent('vtc4').engine.newestKey().seq === 2, 5000)).toBe(true);
    expect(c.agent('vtc4').engine.threshold()).toBe(1);
    expect(await c.waitFor(all(c, 'online-single(B)'), 5000)).toBe(true);
  });
});
