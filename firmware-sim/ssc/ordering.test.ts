import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { getU16, getU32 } from '../../src/scsi/bytes.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { TaskManagement } from '../engine/types.js';
import { drivePersonality } from '../personalities/drives.js';
import { drain, expectGood, pattern, rig, type Rig } from './test-kit.js';

/**
 * The drive with a one-byte buffer and no backhitch time: every WRITE waits its transfer
 * time at the top speed step (the streaming model back-pressures it), so transfers take
 * real time in proportion to their size.
 */
const base = drivePersonality('ibm-lto7-hh');
const unbufferedLto7 = { ...base, timing: { ...base.timing, bufferBytes: 1, backhitchSeconds: 0 } };

let r: Rig;
beforeEach(async () => {
  r = await rig(unbufferedLto7);
});
afterEach(() => r.cleanup());

describe('buffered mode', () => {
  it('MODE SENSE(6) and (10) report BUFFERED MODE 1 in the header, loaded or not', async () => {
    const bufferedMode = async (): Promise<number[]> => {
      const six = await r.port.execute(Cdb.modeSense6({ page: 0x00 }));
      const ten = await r.port.execute(Cdb.modeSense10({ page: 0x3f }));
      expectGood(six);
      expectGood(ten);
      return [(six.data[2]! >> 4) & 0x07, (ten.data[3]! >> 4) & 0x07];
    };
    expect(await bufferedMode()).toEqual([1, 1]);
    await r.load();
    expect(await bufferedMode()).toEqual([1, 1]);
  });
});

/** Sets the time scale so that a transfer of `bytes` takes `seconds`. */
function slowTransfers(bytes: number, seconds: number): void {
  r.lu.unit.timeScale = seconds / ((bytes / (1024 * 1024)) * r.lu.drive.personality.timing.perMiBSeconds);
}

describe('commands carried out in order', () => {
  it('pipelined WRITE(6)s of different sizes land and complete in the order sent, with real transfer times', async () => {
    await r.load({ capacityBytes: 64 << 20 });
    // Transfer times proportional to size (300 kB about 40 ms): unordered, the small blocks would finish first.
    slowTransfers(300_000, 0.04);
    const sizes = [300_000, 10, 200_000, 1, 100_000, 5000, 70_000, 3];
    const done: number[] = [];
    const writes = sizes.map((n, i) => r.port.execute(Cdb.write6(pattern(n, i))).then((res) => {
      expectGood(res);
      done.push(i);
    }));
    await Promise.all(writes);
    expect(done).toEqual(sizes.map((_, i) => i));
    r.lu.unit.timeScale = 0;
    expectGood(await r.port.execute(Cdb.writeFilemarks6(1)));
    expectGood(await r.port.execute(Cdb.rewind()));
    const reads = sizes.map((n) => r.port.execute(Cdb.read6({ length: n })));
    const got = await Promise.all(reads);
    got.forEach((res, i) => {
      expectGood(res);
      expect(Buffer.from(res.data).equals(Buffer.from(pattern(sizes[i]!, i))), `block ${i}`).toBe(true);
    });
  });

  it('READ POSITION queued behind WRITEs reports the position after them', async () => {
    await r.load();
    slowTransfers(100_000, 0.01);
    const w = [1, 2, 3].map((i) => r.port.execute(Cdb.write6(pattern(100_000, i))));
    const pos = r.port.execute(Cdb.readPosition());
    for (const x of await Promise.all(w)) expectGood(x);
    expect(getU32((await pos).data, 4)).toBe(3);
  });

  it('READ POSITION queued behind a slow REWIND reports BOP: it waits for the rewind to end', async () => {
    await r.load({ capacityBytes: 1_000_000 });
    for (let i = 0; i < 9; i++) expectGood(await r.port.execute(Cdb.write6(pattern(100_000, i))));
    r.lu.unit.timeScale = 0.0006; // a rewind over 90% of the tape (about 79 s) -> about 50 ms
    const rewinding = r.port.execute(Cdb.rewind());
    const pos = r.port.execute(Cdb.readPosition());
    expectGood(await rewinding);
    r.lu.unit.timeScale = 0;
    expect(getU32((await pos).data, 4)).toBe(0);
  });

  it('INQUIRY and TEST UNIT READY overtake a hung command; the command behind it runs once the hung one is aborted', async () => {
    await r.load();
    r.lu.faults.hang();
    const cancel = new AbortController();
    const hung = r.port.execute({ ...Cdb.write6(pattern(10, 1)), signal: cancel.signal });
    const queued = r.port.execute(Cdb.write6(pattern(10, 2)));
    await new Promise((res) => setTimeout(res, 10));
    expectGood(await r.port.execute(Cdb.inquiry()));
    expectGood(await r.port.execute(Cdb.testUnitReady()));
    expect(r.lu.unit.inFlight()).toBe(2);
    // The fault goes; the queued WRITE never entered the hang, so it runs when its turn comes.
    r.lu.faults.clear();
    cancel.abort();
    await expect(hung).rejects.toMatchObject({ code: 'ECANCELED' });
    expectGood(await queued);
    expect(r.lu.drive.media?.objectCount).toBe(1);
    expectGood(await r.port.execute(Cdb.rewind()));
    expect((await r.port.execute(Cdb.read6({ length: 10 }))).data).toEqual(pattern(10, 2));
  });

  it('a LOGICAL UNIT RESET aborts the hung command and those waiting behind it', async () => {
    await r.load();
    r.lu.faults.hang();
    const hung = r.port.execute(Cdb.write6(pattern(10, 1)));
    const queued = r.port.execute(Cdb.write6(pattern(10, 2)));
    await new Promise((res) => setTimeout(res, 10));
    r.lu.faults.clear();
    r.lu.taskManagement(TaskManagement.logicalUnitReset, r.port.initiator);
    expect((await hung).status).toBe(ScsiStatus.TASK_ABORTED);
    expect((await queued).status).toBe(ScsiStatus.TASK_ABORTED);
    await drain(r.port);
    expect(r.lu.drive.media?.objectCount).toBe(0);
  });

  it('a command aborted while it waits for its turn answers at once and never runs', async () => {
    await r.load();
    r.lu.faults.hang();
    const hung = r.port.execute(Cdb.write6(pattern(10, 1)));
    const cancel = new AbortController();
    const queued = r.port.execute({ ...Cdb.write6(pattern(10, 2)), signal: cancel.signal });
    await new Promise((res) => setTimeout(res, 10));
    cancel.abort();
    await expect(queued).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(r.lu.unit.inFlight()).toBe(1);
    r.lu.faults.clear();
    r.lu.taskManagement(TaskManagement.logicalUnitReset, r.port.initiator);
    expect((await hung).status).toBe(ScsiStatus.TASK_ABORTED);
    await drain(r.port);
    expectGood(await r.port.execute(Cdb.rewind()));
    expect((await r.port.execute(Cdb.readPosition())).status).toBe(ScsiStatus.GOOD);
    // Neither write reached the tape.
    expect(r.lu.drive.media?.objectCount).toBe(0);
  });
});

describe('Data-Out buffers are not kept after the command', () => {
  it('WRITE ATTRIBUTE stores a copy of the values', async () => {
    await r.load();
    const value = Buffer.from('ACME    ');
    const params = Uint8Array.from([0, 0, 0, 5 + value.length, 0x08, 0x00, 0x01, 0, value.length, ...value]);
    expectGood(await r.port.execute(Cdb.writeAttribute(params)));
    params.fill(0xee);
    const back = await r.port.execute(Cdb.readAttribute({ firstAttribute: 0x0800 }));
    expectGood(back);
    expect(getU16(back.data, 4)).toBe(0x0800);
    expect(Buffer.from(back.data.subarray(9, 9 + value.length)).toString()).toBe('ACME    ');
  });

  it('MODE SELECT stores a copy of the pages', async () => {
    await r.load();
    const dc = await r.port.execute(Cdb.modeSense6({ page: 0x0f, disableBlockDescriptors: true }));
    const page = Uint8Array.from(dc.data.subarray(4));
    const params = new Uint8Array(4 + page.length);
    params.set(page, 4);
    expectGood(await r.port.execute(Cdb.modeSelect6(params)));
    const before = (await r.port.execute(Cdb.modeSense6({ page: 0x0f, disableBlockDescriptors: true }))).data;
    params.fill(0xff);
    const after = (await r.port.execute(Cdb.modeSense6({ page: 0x0f, disableBlockDescriptors: true }))).data;
    expect(after).toEqual(before);
  });
});
