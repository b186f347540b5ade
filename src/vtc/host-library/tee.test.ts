/**
 * Immediate copy written to both VTS as the host writes (the tee), in front of a real PtP
 * system (LocalCluster: agents and VTS servers over TCP on 127.0.0.1), through a virtual
 * drive: the unload commits the primary, then the same generation on the secondary with the
 * primary's hash, and no copy runs; a secondary that fails part way leaves the unload to the
 * copy, as without the tee; a primary that refuses its commit leaves nothing new anywhere.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cartridgeOf, createVirtualDriveUnit } from '../../cli/virtual-library.js';
import type { VirtualDriveUnit } from '../../cli/virtual-library.js';
import { LocalCluster } from '../../scenario/cluster.js';
import * as Cdb from '../../scsi/cdb.js';
import type { Command } from '../../scsi/cdb.js';
import { Sense } from '../../scsi/sense.js';
import { ScsiStatus } from '../../scsi/status.js';
import type { VtsUnit } from '../../vts/vts-unit.js';
import type { VtsName } from '../../ptp/types.js';

type CommandResult = Awaited<ReturnType<VirtualDriveUnit['unit']['execute']>>;

let dir: string;
let c: LocalCluster | null = null;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-tee-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await c?.stop();
  c = null;
  rmSync(dir, { recursive: true, force: true });
});

const block = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 29 + seed) & 0xff);

/** vtc1's virtual drive (copy mode immediate, the VTC's default), and counts of the copy work each VTS does. */
async function rig() {
  c = await LocalCluster.start({ n: 3, dir: join(dir, 'ptp') });
  const cl = c;
  expect(await cl.waitFor(() => Object.values(cl.statuses()).every((s) => s === 'online-both'), 8000)).toBe(true);
  const a = cl.agent('vtc1');
  const unit = (x: VtsName): VtsUnit => {
    const u = cl.vts[x].unit;
    if (u === null) throw new Error(`VTS ${x} is not running`);
    return u;
  };
  const copies = { exports: 0, applied: 0 };
  for (const x of ['A', 'B'] as const) {
    const u = unit(x);
    const exportVolume = u.exportVolume.bind(u);
    vi.spyOn(u, 'exportVolume').mockImplementation((...args) => (copies.exports++, exportVolume(...args)));
    const applyCopy = u.applyCopy.bind(u);
    vi.spyOn(u, 'applyCopy').mockImplementation((...args) => (copies.applied++, applyCopy(...args)));
  }
  const d = createVirtualDriveUnit({ host: a, serial: 'TEE1', name: 'vtc1/tee', log: pino({ level: 'silent' }) });
  const run = async (cmd: Command): Promise<CommandResult> => {
    for (let tries = 0; ; tries++) {
      const r = await d.unit.execute({ initiator: 'h1', cdb: cmd.cdb, dataInLength: cmd.dataInLength ?? 0, signal: new AbortController().signal, ...(cmd.dataOut === undefined ? {} : { dataOut: cmd.dataOut }) });
      if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === 0x06) continue;
      // IN PROCESS OF BECOMING READY (vtc1 still settling after the start): a host retries.
      if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === 0x02 && r.sense.asc === 0x04 && r.sense.ascq === 0x01 && tries < 100) {
        await new Promise((res) => setTimeout(res, 50));
        continue;
      }
      expect(d.unit.bugs).toEqual([]);
      return r;
    }
  };
  const good = async (cmd: Command, what: string): Promise<CommandResult> => {
    const r = await run(cmd);
    expect(r.status, `${what}: ${JSON.stringify(r.sense)}`).toBe(ScsiStatus.GOOD);
    return r;
  };
  /** What each VTS holds of a volume: token, data generation, size and hash. */
  const facts = (x: VtsName, volser: string) => {
    const m = unit(x).cache.get(volser);
    return m === undefined ? undefined : { generation: m.generation, dataGeneration: m.dataGeneration, bytes: m.bytes, records: m.records, sha256: m.sha256 };
  };
  return { cl, a, d, run, good, unit, copies, facts };
}

describe('immediate copy teed to both VTS as the host writes', () => {
  it('the unload commits the new generation on both VTS with the same hash, and no copy runs', async () => {
    const { a, d, good, unit, copies, facts } = await rig();
    await d.bay.insert(cartridgeOf('V00011'));
    const blocks = Array.from({ length: 40 }, (_, i) => block(150_000 + i * 1000, i));
    for (const [i, b] of blocks.entries()) await good(Cdb.write6(b), `WRITE ${i}`);
    await good(Cdb.writeFilemarks6(1), 'WRITE FILEMARKS');
    // Both VTS hold the volume mounted while the host writes.
    expect(unit('A').activeMounts().map((m) => m.volser)).toEqual(['V00011']);
    expect(unit('B').activeMounts().map((m) => m.volser)).toEqual(['V00011']);
    await good(Cdb.loadUnload({ load: false }), 'unload');
    expect(d.drive.stats.commits).toBe(1);
    const onA = facts('A', 'V00011');
    expect(onA?.generation).toBeGreaterThan(0);
    expect(onA?.dataGeneration).toBe(onA?.generation);
    expect(facts('B', 'V00011')).toEqual(onA);
    expect(copies).toEqual({ exports: 0, applied: 0 });
    expect(a.host.teeStats).toMatchObject({ teed: 1, dropped: 0, committed: 1 });
    expect(unit('A').activeMounts()).toEqual([]);
    expect(unit('B').activeMounts()).toEqual([]);
    // Read back from B alone (A out of the reader's way): every block where it was written.
    const h = await unit('B').mount('V00011');
    for (const [i, b] of blocks.entries()) {
      const r = await unit('B').read(h, 256 * 1024);
      expect(r.kind === 'block' && Buffer.from(r.data).equals(Buffer.from(b)), `block ${i} on B`).toBe(true);
    }
    await unit('B').close(h);
  }, 60_000);

  it('a secondary that fails part way drops the tee: the unload copies as without it, and B ends with A\'s generation and hash', async () => {
    const { a, d, good, unit, copies, facts } = await rig();
    await d.bay.insert(cartridgeOf('V00012'));
    for (let i = 0; i < 10; i++) await good(Cdb.write6(block(100_000, i)), `WRITE ${i}`);
    // B loses the tee's mount (as when its disk fails the write); A goes on.
    expect(await unit('B').abortMounts('test: B dropped the mount')).toBe(1);
    for (let i = 10; i < 20; i++) await good(Cdb.write6(block(100_000, i)), `WRITE ${i}`);
    await good(Cdb.writeFilemarks6(1), 'WRITE FILEMARKS');
    await good(Cdb.loadUnload({ load: false }), 'unload');
    expect(a.host.teeStats).toMatchObject({ teed: 1, dropped: 1, committed: 0 });
    expect(copies).toEqual({ exports: 1, applied: 1 });
    const onA = facts('A', 'V00012');
    expect(onA?.records).toBe(21);
    expect(facts('B', 'V00012')).toEqual(onA);
    expect(unit('B').activeMounts()).toEqual([]);
  }, 60_000);

  it('a secondary that fails part way and a copy that fails too: the unload answers WRITE ERROR, and B holds nothing of the write', async () => {
    const { a, d, good, run, unit, facts } = await rig();
    await d.bay.insert(cartridgeOf('V00013'));
    for (let i = 0; i < 6; i++) await good(Cdb.write6(block(50_000, i)), `WRITE ${i}`);
    expect(await unit('B').abortMounts('test: B dropped the mount')).toBe(1);
    vi.mocked(unit('B').applyCopy).mockRejectedValueOnce(Object.assign(new Error('test: B cannot take the copy'), { code: 'EIO' }));
    await good(Cdb.writeFilemarks6(1), 'WRITE FILEMARKS');
    const r = await run(Cdb.loadUnload({ load: false }));
    expect([r.status, r.sense?.key, r.sense?.asc, r.sense?.ascq]).toEqual([ScsiStatus.CHECK_CONDITION, Sense.WRITE_ERROR.key, Sense.WRITE_ERROR.asc, Sense.WRITE_ERROR.ascq]);
    expect(a.host.teeStats).toMatchObject({ dropped: 1, committed: 0 });
    expect(facts('B', 'V00013')).toBeUndefined();
  }, 60_000);

  it('a key recorded on the secondary between the two commits fences the secondary\'s: B does not take the generation, and the unload answers WRITE ERROR', async () => {
    const { a, d, good, run, unit, copies, facts } = await rig();
    await d.bay.insert(cartridgeOf('V00015'));
    for (let i = 0; i < 6; i++) await good(Cdb.write6(block(50_000, i)), `WRITE ${i}`);
    await good(Cdb.writeFilemarks6(1), 'WRITE FILEMARKS');
    const ua = unit('A');
    const ub = unit('B');
    const close = ua.close.bind(ua);
    // Once A has committed, B records a newer key (as when the other VTCs decided something
    // while this VTC closed): the write's fence on B is now stale.
    vi.spyOn(ua, 'close').mockImplementationOnce(async (h, o) => {
      const token = await close(h, o);
      await ub.recordKey(ub.lastKeySeq + 1, 'test: a newer key');
      return token;
    });
    const r = await run(Cdb.loadUnload({ load: false }));
    expect([r.status, r.sense?.key, r.sense?.asc]).toEqual([ScsiStatus.CHECK_CONDITION, Sense.WRITE_ERROR.key, Sense.WRITE_ERROR.asc]);
    expect(facts('A', 'V00015')?.records).toBe(7);
    // B refused the tee's commit and then the copy, both under the stale fence.
    expect(facts('B', 'V00015')).toBeUndefined();
    expect(a.host.teeStats).toMatchObject({ teed: 1, dropped: 1, committed: 0 });
    // The copy was tried after the tee's commit was refused, and refused in its turn.
    expect(copies.applied).toBe(1);
    expect(await c!.waitFor(() => ub.activeMounts().length === 0, 5000)).toBe(true);
  }, 60_000);

  it('a primary that refuses its commit leaves the secondary without the new generation: the unload answers WRITE ERROR', async () => {
    const { a, d, good, run, unit, facts } = await rig();
    await d.bay.insert(cartridgeOf('V00014'));
    for (let i = 0; i < 6; i++) await good(Cdb.write6(block(50_000, i)), `WRITE ${i}`);
    await good(Cdb.writeFilemarks6(1), 'WRITE FILEMARKS');
    const ua = unit('A');
    // A refuses the commit (as a key recorded there after the write was planned would), ending the mount.
    vi.spyOn(ua, 'close').mockImplementationOnce(async (h) => {
      await ua.abandon(h);
      throw Object.assign(new Error('test: A refuses the commit'), { code: 'EIO' });
    });
    const r = await run(Cdb.loadUnload({ load: false }));
    expect([r.status, r.sense?.key, r.sense?.asc]).toEqual([ScsiStatus.CHECK_CONDITION, Sense.WRITE_ERROR.key, Sense.WRITE_ERROR.asc]);
    expect(facts('A', 'V00014')).toBeUndefined();
    expect(facts('B', 'V00014')).toBeUndefined();
    expect(a.host.teeStats).toMatchObject({ teed: 1, committed: 0 });
    // Nothing stays held: the secondary's mount was abandoned.
    expect(await c!.waitFor(() => unit('B').activeMounts().length === 0, 5000)).toBe(true);
  }, 60_000);
});
