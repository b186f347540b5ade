/**
 * The mode table (PROTOCOL.md, MODE_POLICY) as the production VTC carries it out through
 * RemoteVtsPort: real VTC agents, real VTS units, a host write in flight on VTS A while the
 * operator takes A out. Normal and expedite let it complete (new mounts refused meanwhile);
 * immediate and forced abort it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Mode, ShutdownKey } from '../ptp/types.js';
import { LocalCluster } from '../scenario/cluster.js';
import { codeOf } from './errors.js';

let dir: string;
let c: LocalCluster | null = null;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-modes-'));
});
afterEach(async () => {
  await c?.stop();
  c = null;
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const settle = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; code: string; message: string }> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (e: unknown) => ({ ok: false as const, code: codeOf(e), message: (e as Error).message }),
  );

/**
 * Mounts V00001 on A through vtc1 and writes a first block; vtc2 takes A out in `mode`;
 * `holdMs` later the host writes a second block and closes. Also tries a new mount while
 * the command runs.
 */
async function writeInFlight(mode: Mode, holdMs: number) {
  // The expedite bound is wide enough for a loaded machine; the write past it waits longer still.
  c = await LocalCluster.start({ n: 3, dir, timing: { expediteTimeout: 800 } });
  expect(await c.waitFor(() => Object.values(c!.statuses()).every((s) => s === 'online-both'), 8000)).toBe(true);
  const writer = c.agent('vtc1');
  const h = await writer.mount('V00001', { scratch: true, writable: true });
  expect(h.vts).toBe('A');
  await writer.write(h, Buffer.from('first block, '));
  const command = settle(c.agent('vtc2').command({ command: 'vts-out', vts: 'A', mode }));
  // The command reaches A (refusing new mounts) well before the host's next block.
  expect(await c.waitFor(() => c!.vts.A.unit?.refusingMounts === true || c!.vts.A.unit?.inOperation === false, 3000)).toBe(true);
  // A new mount meanwhile is refused by A (it may go to B once A is out).
  const lateMount = await settle(c.agent('vtc3').mount('V00002', { scratch: true, writable: true }));
  const lateOnA = lateMount.ok && lateMount.value.vts === 'A';
  await sleep(holdMs);
  const write = await settle(
    (async () => {
      await writer.write(h, Buffer.from('second block'));
      return writer.close(h);
    })(),
  );
  const key = await command;
  // Every VTC learns the key before the checks read through them (a VTC still on key 0 is fenced by B).
  await c.waitFor(() => c!.alive().every((a) => a.engine.newestKey().seq >= 1), 3000);
  return { write, key, lateMount, lateOnA, lastKeySeqA: c.vts.A.unit?.lastKeySeq };
}

describe('RemoteVtsPort carries out the mode table with a host write in flight (real agents and VTS units)', () => {
  it('normal: new mounts are refused, the write in flight completes, then A records the key and goes out', async () => {
    const r = await writeInFlight('normal', 300);
    expect(r.write.ok ? r.write.value.copies : r.write.message).toEqual(['A', 'B']);
    expect(r.lateMount.ok === false && r.lateMount.code).toBe('EMOUNTREFUSED');
    expect(r.key.ok && [r.key.value.mode, r.key.value.current, r.key.value.copiesPending]).toEqual(['normal', ['B'], []]);
    expect(r.lastKeySeqA).toBe(1);
    expect(c!.vts.A.unit?.inOperation).toBe(false);
    const read = await c!.agent('vtc3').readVolume('V00001');
    expect([Buffer.from(read.data).toString(), read.vts]).toEqual(['first block, second block', 'B']);
  }, 30_000);

  it('expedite: the write in flight completes within the bound', async () => {
    const r = await writeInFlight('expedite', 50);
    expect(r.write.ok ? r.write.value.copies : r.write.message).toEqual(['A', 'B']);
    expect(r.lateMount.ok === false && r.lateMount.code).toBe('EMOUNTREFUSED');
    expect(r.key.ok && [r.key.value.mode, r.key.value.current]).toEqual(['expedite', ['B']]);
    const read = await c!.agent('vtc3').readVolume('V00001');
    expect(Buffer.from(read.data).toString()).toBe('first block, second block');
  }, 30_000);

  it('expedite: a write still in flight past the bound is aborted', async () => {
    const r = await writeInFlight('expedite', 2000);
    expect(r.write.ok).toBe(false);
    expect(r.key.ok && r.key.value.mode).toBe('expedite');
    await expect(c!.agent('vtc3').readVolume('V00001')).rejects.toThrow();
  }, 30_000);

  it.each(['immediate', 'forced'] as const)('%s: the write in flight is aborted and A goes out at once', async (mode) => {
    const r = await writeInFlight(mode, 300);
    expect(r.lateOnA).toBe(false);
    expect(r.write.ok).toBe(false);
    expect(r.write.ok === false && r.write.code).toMatch(/^(EMOUNTABORTED|EVTSOUT|EFENCED)$/);
    const k = r.key.ok ? (r.key.value satisfies ShutdownKey) : null;
    expect(k?.mode).toBe(mode);
    expect(r.lastKeySeqA).toBe(1);
    // Nothing of the aborted write was committed anywhere.
    await expect(c!.agent('vtc3').readVolume('V00001')).rejects.toThrow();
  }, 30_000);
});
