/**
 * The virtual drive's write-behind in front of a real PtP system (LocalCluster: agents and
 * VTS servers over TCP on 127.0.0.1): blocks answered GOOD reach the VTS in order and
 * commit at unload; a block the VTS fails after GOOD (its mount aborted there, no key
 * involved) reaches the host as a deferred WRITE ERROR, and the unload commits nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cartridgeOf, createVirtualDriveUnit } from '../../cli/virtual-library.js';
import type { VirtualDriveUnit } from '../../cli/virtual-library.js';
import { LocalCluster } from '../../scenario/cluster.js';
import * as Cdb from '../../scsi/cdb.js';
import type { Command } from '../../scsi/cdb.js';
import { Sense } from '../../scsi/sense.js';
import { ScsiStatus } from '../../scsi/status.js';
import type { HostHandle } from '../agent.js';
import type { HostPath } from './host-path.js';

type CommandResult = Awaited<ReturnType<VirtualDriveUnit['unit']['execute']>>;

let dir: string;
let c: LocalCluster | null = null;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-writebehind-'));
});
afterEach(async () => {
  await c?.stop();
  c = null;
  rmSync(dir, { recursive: true, force: true });
});

const block = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

/** vtc1's host path, with a gate in front of its WRITEs the test opens when it wants them sent. */
async function rig() {
  c = await LocalCluster.start({ n: 3, dir: join(dir, 'ptp') });
  const cl = c;
  expect(await cl.waitFor(() => Object.values(cl.statuses()).every((s) => s === 'online-both'), 8000)).toBe(true);
  const a = cl.agent('vtc1');
  let open = true;
  const waiting: (() => void)[] = [];
  const calls: string[] = [];
  const host: HostPath = {
    self: a.self,
    engine: a.engine,
    mount: (v, o) => a.mount(v, o),
    write: async (h: HostHandle, data: Uint8Array) => {
      // HostPath's contract: the block is read only while write runs (held back, it is copied).
      const d = Uint8Array.from(data);
      if (!open) await new Promise<void>((r) => waiting.push(r));
      return a.write(h, d);
    },
    writeFilemark: (h) => a.writeFilemark(h),
    read: (h, n) => a.read(h, n),
    rewind: (h) => a.rewind(h),
    close: (h) => (calls.push(`close ${h.writable ? 'write' : 'read'}`), a.close(h)),
    abandon: (h) => (calls.push('abandon'), a.close(h).catch(() => undefined)),
  };
  const d = createVirtualDriveUnit({ host, serial: 'WB1', name: 'vtc1/wb', log: pino({ level: 'silent' }) });
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
  const gate = {
    close: () => (open = false),
    open: () => {
      open = true;
      for (const r of waiting.splice(0)) r();
    },
    waiting: () => waiting.length,
  };
  return { cl, d, run, gate, calls };
}

describe('virtual drive write-behind in front of the PtP system', () => {
  it('blocks answered before the VTS has them land in order and commit at unload', async () => {
    const { cl, d, run } = await rig();
    await d.bay.insert(cartridgeOf('V00001'));
    const blocks = Array.from({ length: 24 }, (_, i) => block(200_000 + i, i));
    const good = async (cmd: Command, what: string): Promise<CommandResult> => {
      const r = await run(cmd);
      expect(r.status, `${what}: ${JSON.stringify(r.sense)}`).toBe(ScsiStatus.GOOD);
      return r;
    };
    for (const [i, b] of blocks.entries()) await good(Cdb.write6(b), `WRITE ${i}`);
    await good(Cdb.writeFilemarks6(1), 'WRITE FILEMARKS');
    await good(Cdb.loadUnload({ load: false }), 'unload');
    expect(d.drive.stats.commits).toBe(1);
    // Read back through a fresh load: every block where it was written.
    await good(Cdb.loadUnload({ load: true }), 'load');
    for (const [i, b] of blocks.entries()) {
      const r = await good(Cdb.read6({ length: 256 * 1024, sili: true }), `READ ${i}`);
      expect(Buffer.from(r.data ?? []).equals(Buffer.from(b)), `block ${i}`).toBe(true);
    }
    expect(cl.vts.A.unit?.token('V00001')?.generation).toBeGreaterThan(0);
  }, 60_000);

  it('a WRITE the VTS fails after GOOD (its mount aborted there) is answered as a deferred WRITE ERROR, and the unload commits nothing', async () => {
    const { cl, d, run, gate, calls } = await rig();
    await d.bay.insert(cartridgeOf('V00002'));
    expect((await run(Cdb.write6(block(1000, 1)))).status).toBe(ScsiStatus.GOOD);
    expect((await run(Cdb.writeFilemarks6(1))).status).toBe(ScsiStatus.GOOD);
    // Two more blocks answered GOOD, held before the VTS.
    gate.close();
    expect((await run(Cdb.write6(block(1000, 2)))).status).toBe(ScsiStatus.GOOD);
    expect((await run(Cdb.write6(block(1000, 3)))).status).toBe(ScsiStatus.GOOD);
    expect(gate.waiting()).toBe(2);
    // The VTS loses the mount (as when it leaves operation), with no key: only the writes tell.
    const mount = cl.vts.A.unit?.activeMounts()[0];
    expect(mount?.volser).toBe('V00002');
    expect(await cl.vts.A.unit?.abortMounts('test: the VTS dropped the mount')).toBe(1);
    gate.open();
    // The drive learns of it when the VTS answers; the host at its next command after that.
    expect(await cl.waitFor(() => d.drive.stats.lost === 1, 5000)).toBe(true);
    const next = await run(Cdb.write6(block(1000, 4)));
    expect(next.status).toBe(ScsiStatus.CHECK_CONDITION);
    expect([next.sense?.key, next.sense?.asc, next.sense?.ascq, next.sense?.deferred]).toEqual([Sense.WRITE_ERROR.key, Sense.WRITE_ERROR.asc, Sense.WRITE_ERROR.ascq, true]);
    // Then the loss as a current error, until the unload, which commits nothing.
    const fm = await run(Cdb.writeFilemarks6(1));
    expect([fm.status, fm.sense?.asc, fm.sense?.deferred ?? false]).toEqual([ScsiStatus.CHECK_CONDITION, Sense.WRITE_ERROR.asc, false]);
    await run(Cdb.loadUnload({ load: false }));
    expect(calls).toEqual(['abandon']);
    expect(d.drive.stats.commits).toBe(0);
    expect(cl.vts.A.unit?.token('V00002')?.generation ?? 0).toBe(0);
    expect(cl.vts.B.unit?.token('V00002')?.generation ?? 0).toBe(0);
  }, 60_000);
});
