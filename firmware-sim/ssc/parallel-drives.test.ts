/**
 * Drives of one process share the event loop: a drive waiting for its disk must not stall
 * another drive. Drive 1's cartridge sits on a "slow disk" (every fdatasync takes a
 * second, on the thread pool or on the loop alike); drive 2's commands must answer while
 * drive 1's WRITE FILEMARKS waits for it, and a failed fdatasync must still fail it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { Sense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { checkCartridge, nodeFileIo, type CartridgeFileIo } from '../media/index.js';
import { drain, expectGood, expectSense, pattern, rig, type Rig } from './test-kit.js';

const SLOW_MS = 1000;
/** How long drive 2's commands may take while drive 1 waits for its disk. */
const BOUND_MS = 300;

/** Node's fs, with every fdatasync (thread pool or synchronous) taking {@link SLOW_MS} while `slow` is set. */
function slowDisk(): { io: CartridgeFileIo; slow: boolean; syncs: number; loopSyncs: number } {
  const s = { io: undefined as unknown as CartridgeFileIo, slow: false, syncs: 0, loopSyncs: 0 };
  const blocked = new Int32Array(new SharedArrayBuffer(4));
  s.io = {
    ...nodeFileIo,
    fdatasyncSync: (fd) => {
      if (s.slow) {
        s.syncs++;
        s.loopSyncs++;
        // A disk that takes a second blocks the calling thread for a second.
        Atomics.wait(blocked, 0, 0, SLOW_MS);
      }
      nodeFileIo.fdatasyncSync(fd);
    },
    fdatasync: (fd, cb) => {
      if (!s.slow) return nodeFileIo.fdatasync(fd, cb);
      s.syncs++;
      setTimeout(() => nodeFileIo.fdatasync(fd, cb), SLOW_MS);
    },
  };
  return s;
}

describe('drives in one process', () => {
  const rigs: Rig[] = [];
  afterEach(async () => {
    for (const r of rigs) {
      await r.lu.drive.media?.whenSynced();
      r.cleanup();
    }
    rigs.length = 0;
  });

  it("a slow disk under one drive's WRITE FILEMARKS does not stall another drive's TEST UNIT READY, WRITE and READ", async () => {
    const disk = slowDisk();
    const d1 = await rig('ibm-lto7-hh', { mediaIo: disk.io });
    const d2 = await rig('ibm-lto7-hh');
    rigs.push(d1, d2);
    await d1.load({ capacityBytes: 64 << 20 });
    await d2.load({ barcode: 'B00002L7', capacityBytes: 64 << 20 });
    // Drive 2 has a block to read back.
    expectGood(await d2.port.execute(Cdb.write6(pattern(64 << 10, 1))));
    expectGood(await d2.port.execute(Cdb.writeFilemarks6(1)));
    expectGood(await d2.port.execute(Cdb.rewind()));
    expectGood(await d1.port.execute(Cdb.write6(pattern(256 << 10, 2))));

    disk.slow = true;
    const t0 = performance.now();
    let filemarkDone = false;
    const filemark = d1.port.execute(Cdb.writeFilemarks6(1)).then((r) => {
      filemarkDone = true;
      return r;
    });
    const answered: Record<string, number> = {};
    const timed = async (name: string, run: () => Promise<void>): Promise<void> => {
      await run();
      answered[name] = performance.now() - t0;
    };
    await timed('TEST UNIT READY', async () => expectGood(await d2.port.execute(Cdb.testUnitReady())));
    await timed('READ', async () => {
      const r = await d2.port.execute(Cdb.read6({ length: 64 << 10 }));
      expectGood(r);
      expect(Buffer.from(r.data).equals(Buffer.from(pattern(64 << 10, 1)))).toBe(true);
    });
    // Past the filemark: at end of data, where a WRITE appends.
    expectGood(await d2.port.execute(Cdb.space6(1, 1)));
    await timed('WRITE', async () => expectGood(await d2.port.execute(Cdb.write6(pattern(256 << 10, 3)))));
    for (const [name, ms] of Object.entries(answered)) expect(ms, `drive 2's ${name} answered after ${ms.toFixed(0)} ms`).toBeLessThan(BOUND_MS);
    expect(filemarkDone, 'drive 1 is still waiting for its disk').toBe(false);
    expect(disk.syncs).toBe(1);
    // Drive 1's filemark answers once its fdatasync returned.
    expectGood(await filemark);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(SLOW_MS - 5);
    disk.slow = false;
    expect(d1.lu.drive.position).toBe(2);
  });

  it("an unload on a slow disk (sync point, cartridge memory, EOD) does not stall another drive", async () => {
    const disk = slowDisk();
    const d1 = await rig('ibm-lto7-hh', { mediaIo: disk.io });
    const d2 = await rig('ibm-lto7-hh');
    rigs.push(d1, d2);
    const c = await d1.load({ capacityBytes: 64 << 20 });
    await d2.load({ barcode: 'B00002L7', capacityBytes: 64 << 20 });
    expectGood(await d1.port.execute(Cdb.write6(pattern(4096, 1))));
    disk.slow = true;
    let unloaded = false;
    const unload = d1.port.execute(Cdb.loadUnload({ load: false, hold: true })).then((r) => {
      unloaded = true;
      return r;
    });
    // Drive 2 keeps working all through the unload's three fdatasyncs (about 3 s).
    let slowest = 0;
    let commands = 0;
    for (let i = 0; !unloaded; i++) {
      // A 10 ms pause and a command: a stalled loop shows in either.
      const t = performance.now();
      await new Promise((r) => setTimeout(r, 10));
      expectGood(await d2.port.execute(i % 2 ? Cdb.testUnitReady() : Cdb.write6(pattern(4096, i))));
      slowest = Math.max(slowest, performance.now() - t);
      commands++;
    }
    expect(slowest, `drive 2's slowest pause and command took ${slowest.toFixed(0)} ms`).toBeLessThan(BOUND_MS);
    expect(commands).toBeGreaterThan(20);
    expectGood(await unload);
    disk.slow = false;
    // Every fdatasync of the unload ran on the thread pool.
    expect(disk.loopSyncs).toBe(0);
    expect(disk.syncs).toBeGreaterThanOrEqual(3);
    const report = checkCartridge(c.path);
    expect([report.blocks, report.cleanEod, report.damaged.length]).toEqual([1, true, 0]);
  });

  it('a power cycle and an unload while a sync point waits for the disk: they queue behind it, and the cartridge is whole', async () => {
    const disk = slowDisk();
    const d1 = await rig('ibm-lto7-hh', { mediaIo: disk.io });
    rigs.push(d1);
    const c = await d1.load({ capacityBytes: 64 << 20 });
    expectGood(await d1.port.execute(Cdb.write6(pattern(4096, 1))));
    disk.slow = true;
    const filemark = d1.port.execute(Cdb.writeFilemarks6(1));
    await new Promise((r) => setTimeout(r, 20));
    expect(d1.lu.drive.media?.syncInFlight).toBe(true);
    // The power cycle's flush cannot fdatasync on the loop now: it queues behind the sync point.
    d1.lu.unit.powerCycle();
    expect((await filemark).status).toBe(ScsiStatus.TASK_ABORTED);
    disk.slow = false;
    await drain(d1.port);
    // Power on leaves the tape at BOP: to end of data, and on from there.
    expectGood(await d1.port.execute(Cdb.space6(3)));
    expectGood(await d1.port.execute(Cdb.write6(pattern(4096, 2))));
    expectGood(await d1.port.execute(Cdb.loadUnload({ load: false, hold: true })));
    expect(d1.lu.drive.state).toBe('unloaded');
    const report = checkCartridge(c.path);
    expect(report.damaged).toEqual([]);
    expect([report.blocks, report.filemarks, report.cleanEod]).toEqual([2, 1, true]);
  });

  it('a failed fdatasync on the thread pool fails WRITE FILEMARKS with WRITE ERROR as before, and nothing later is acknowledged', async () => {
    let failNext = false;
    let asyncFailures = 0;
    const io: CartridgeFileIo = {
      ...nodeFileIo,
      fdatasync: (fd, cb) => {
        if (!failNext) return nodeFileIo.fdatasync(fd, cb);
        failNext = false;
        asyncFailures++;
        setTimeout(() => cb(Object.assign(new Error('EIO: injected'), { code: 'EIO' })), 50);
      },
    };
    const d1 = await rig('ibm-lto7-hh', { mediaIo: io });
    const d2 = await rig('ibm-lto7-hh');
    rigs.push(d1, d2);
    await d1.load({ capacityBytes: 64 << 20 });
    await d2.load({ barcode: 'B00002L7', capacityBytes: 64 << 20 });
    expectGood(await d1.port.execute(Cdb.write6(pattern(1000, 1))));
    failNext = true;
    const filemark = d1.port.execute(Cdb.writeFilemarks6(2));
    // The other drive works on meanwhile, and is not touched by the failure.
    expectGood(await d2.port.execute(Cdb.write6(pattern(1000, 2))));
    expectGood(await d2.port.execute(Cdb.writeFilemarks6(1)));
    expectSense(await filemark, Sense.WRITE_ERROR, { information: 2 });
    expect(asyncFailures).toBe(1);
    // The filemarks were not acknowledged: the position stays before them.
    expect(d1.lu.drive.position).toBe(1);
    // Nothing later is acknowledged: writes and sync points are refused until a reload.
    expectSense(await d1.port.execute(Cdb.write6(pattern(1000, 3))), Sense.WRITE_ERROR);
    expectSense(await d1.port.execute(Cdb.writeFilemarks6(1)), Sense.WRITE_ERROR);
    expectGood(await d2.port.execute(Cdb.write6(pattern(1000, 4))));
  });
});
