/**
 * The virtual drive's write-behind (buffered mode), over an in-memory host path whose
 * WRITEs the test lets land or fail one by one: GOOD before the VTS has a block, a few
 * blocks on their way at once, WRITE FILEMARKS and the unload waiting for them, and a block
 * the VTS fails reaching the host as a deferred error at its next command, with nothing
 * committed. What the host sees is taken from the SCSI unit, as an initiator gets it.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { cartridgeOf, createVirtualDriveUnit } from '../../cli/virtual-library.js';
import type { VirtualDriveUnit } from '../../cli/virtual-library.js';
import * as Cdb from '../../scsi/cdb.js';
import type { Command } from '../../scsi/cdb.js';
import { Sense } from '../../scsi/sense.js';
import type { SenseCode } from '../../scsi/sense.js';
import { ScsiStatus } from '../../scsi/status.js';
import type { CloseResult, HostHandle } from '../agent.js';
import { RemoteError } from '../errors.js';
import type { HostPath } from './host-path.js';
import { WRITE_BEHIND } from './volume-drive.js';

type Rec = Uint8Array | 'fm';
/** What the SCSI unit answers a command, as an initiator gets it. */
type CommandResult = Awaited<ReturnType<VirtualDriveUnit['unit']['execute']>>;

interface HeldWrite {
  readonly data: Uint8Array;
  land(): void;
  fail(e: Error): void;
}

/** Volumes in memory; every WRITE waits in `held` until the test lands or fails it (in order, as the VTS takes them). */
function heldHost() {
  const mounts = new Map<number, { volser: string; recs: Rec[]; writable: boolean }>();
  const volumes = new Map<string, Rec[]>();
  const held: HeldWrite[] = [];
  let epoch = 0;
  let next = 1;
  const stats = { commits: 0, abandons: 0, writesSent: 0 };
  const m = (h: HostHandle) => {
    const x = mounts.get(h.id);
    if (x === undefined) return Promise.reject(new RemoteError('EBADHANDLE', 'BadHandleError', `no mount ${h.id}`));
    return Promise.resolve(x);
  };
  const host: HostPath = {
    self: 'vtc1',
    engine: { writeContext: () => ({ status: { kind: 'online-both' }, epoch, epochMac: '', boots: {}, minSeqs: { A: 0, B: 0 } }) } as unknown as HostPath['engine'],
    mount(volser: string, o: { scratch?: boolean; writable?: boolean } = {}): Promise<HostHandle> {
      const h: HostHandle = { id: next++, volser, vts: 'A', writable: o.writable !== false };
      mounts.set(h.id, { volser, recs: o.scratch === true ? [] : [...(volumes.get(volser) ?? [])], writable: h.writable });
      return Promise.resolve(h);
    },
    write(h: HostHandle, data: Uint8Array): Promise<void> {
      stats.writesSent++;
      // HostPath's contract: the block is read only while write runs (kept, it is copied).
      const d = Uint8Array.from(data);
      return new Promise((resolve, reject) => {
        held.push({
          data: d,
          land: () => {
            void m(h).then((x) => {
              x.recs.push(Uint8Array.from(d));
              resolve();
            }, reject);
          },
          fail: reject,
        });
      });
    },
    async writeFilemark(h: HostHandle): Promise<void> {
      (await m(h)).recs.push('fm');
    },
    read: () => Promise.resolve({ kind: 'eod' as const }),
    rewind: async (h: HostHandle) => {
      await m(h);
    },
    async close(h: HostHandle): Promise<CloseResult> {
      const x = await m(h);
      mounts.delete(h.id);
      if (x.writable) {
        volumes.set(x.volser, x.recs);
        stats.commits++;
      }
      return { volser: x.volser, generation: 1, copyMode: 'immediate', copies: ['A'], queued: [] };
    },
    abandon(h: HostHandle): Promise<unknown> {
      stats.abandons++;
      mounts.delete(h.id);
      return Promise.resolve();
    },
  };
  return { host, volumes, held, stats, newKey: () => epoch++ };
}

async function rig(writeBehind?: number) {
  const x = heldHost();
  const d = createVirtualDriveUnit({ host: x.host, serial: 'T1', name: 'test/drive1', log: pino({ level: 'silent' }), ...(writeBehind === undefined ? {} : { writeBehind }) });
  await d.bay.insert(cartridgeOf('V00001'));
  const send = async (c: Command): Promise<CommandResult> =>
    d.unit.execute({ initiator: 'h1', cdb: c.cdb, dataInLength: c.dataInLength ?? 0, signal: new AbortController().signal, ...(c.dataOut === undefined ? {} : { dataOut: c.dataOut }) });
  const run = async (c: Command): Promise<CommandResult> => {
    for (;;) {
      const r = await send(c);
      // The load's NOT READY TO READY CHANGE.
      if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === 0x06) continue;
      expect(d.unit.bugs).toEqual([]);
      return r;
    }
  };
  expect((await run(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
  return { ...x, run, drive: d.bay };
}

const block = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
const write = (seed: number): Command => Cdb.write6(block(1000, seed));
/** True once `p` has settled, after the pending callbacks have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return done;
}
const isCheck = (r: CommandResult, code: SenseCode, deferred: boolean): boolean =>
  r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === code.key && r.sense.asc === code.asc && r.sense.ascq === code.ascq && (r.sense.deferred === true) === deferred;

describe('virtual drive write-behind (buffered mode)', { timeout: 10_000 }, () => {
  it('answers WRITE before the VTS has the block, keeps a few on their way, and WRITE FILEMARKS and the unload wait for them', async () => {
    const { run, held, volumes, stats } = await rig();
    for (let i = 0; i < WRITE_BEHIND - 1; i++) expect((await run(write(i))).status).toBe(ScsiStatus.GOOD);
    expect(held.length).toBe(WRITE_BEHIND - 1);
    // One more fills the window: it is sent, and answered once a block before it lands.
    const fourth = run(write(WRITE_BEHIND - 1));
    expect(await settled(fourth)).toBe(false);
    expect(held.length).toBe(WRITE_BEHIND);
    held[0]?.land();
    expect((await fourth).status).toBe(ScsiStatus.GOOD);
    // The host's buffer is not what goes on: reusing it after GOOD changes nothing sent.
    const data = block(1000, 99);
    const w = Cdb.write6(data);
    const fifth = run(w);
    held[1]?.land();
    expect((await fifth).status).toBe(ScsiStatus.GOOD);
    data.fill(0);
    // WRITE FILEMARKS is the sync point: answered only once every block is on the VTS.
    const fm = run(Cdb.writeFilemarks6(1));
    expect(await settled(fm)).toBe(false);
    for (const h of held.slice(2)) h.land();
    expect((await fm).status).toBe(ScsiStatus.GOOD);
    expect((await run(write(7))).status).toBe(ScsiStatus.GOOD);
    const unload = run(Cdb.loadUnload({ load: false }));
    expect(await settled(unload)).toBe(false);
    expect(stats.commits).toBe(0);
    held.at(-1)?.land();
    expect((await unload).status).toBe(ScsiStatus.GOOD);
    expect(stats.commits).toBe(1);
    const recs = volumes.get('V00001') ?? [];
    expect(recs.map((r) => (r === 'fm' ? 'fm' : r[0]))).toEqual([0, 1, 2, 3, 99, 'fm', 7]);
    expect(recs[4]).toEqual(block(1000, 99));
  });

  it('a WRITE the VTS fails after GOOD: the next WRITE answers a deferred WRITE ERROR, later commands WRITE ERROR, and the unload commits nothing', async () => {
    const { run, held, stats } = await rig();
    expect((await run(write(1))).status).toBe(ScsiStatus.GOOD);
    expect((await run(write(2))).status).toBe(ScsiStatus.GOOD);
    held[0]?.fail(new RemoteError('EIO', 'Error', 'disk full'));
    held[1]?.fail(new RemoteError('EBADHANDLE', 'BadHandleError', 'the mount was ended'));
    await settled(Promise.resolve());
    const sentBefore = stats.writesSent;
    const next = await run(write(3));
    expect(isCheck(next, Sense.WRITE_ERROR, true)).toBe(true);
    expect(stats.writesSent).toBe(sentBefore);
    // Told once as deferred; every data command after it answers the loss as a current error.
    expect(isCheck(await run(write(4)), Sense.WRITE_ERROR, false)).toBe(true);
    expect(isCheck(await run(Cdb.writeFilemarks6(1)), Sense.WRITE_ERROR, false)).toBe(true);
    expect(stats.abandons).toBe(1);
    await run(Cdb.loadUnload({ load: false }));
    expect(stats.commits).toBe(0);
  });

  for (const [name, cmd] of [
    ['WRITE FILEMARKS', Cdb.writeFilemarks6(1)],
    ['WRITE FILEMARKS(0), the flush', Cdb.writeFilemarks6(0)],
    ['TEST UNIT READY', Cdb.testUnitReady()],
    ['REWIND', Cdb.rewind()],
  ] as const) {
    it(`a WRITE failed behind is answered at ${name} as a deferred WRITE ERROR`, async () => {
      const { run, held, stats } = await rig();
      expect((await run(write(1))).status).toBe(ScsiStatus.GOOD);
      expect((await run(write(2))).status).toBe(ScsiStatus.GOOD);
      held[0]?.land();
      const r = run(cmd);
      expect(await settled(r)).toBe(false);
      held[1]?.fail(new RemoteError('EIO', 'Error', 'disk gone'));
      expect(isCheck(await r, Sense.WRITE_ERROR, true)).toBe(true);
      expect((await run(Cdb.loadUnload({ load: false }))).status).toBe(ScsiStatus.GOOD);
      expect(stats.commits).toBe(0);
    });
  }

  it('a WRITE failed behind and found at the unload: the unload answers the deferred WRITE ERROR and commits nothing', async () => {
    const { run, held, stats } = await rig();
    expect((await run(write(1))).status).toBe(ScsiStatus.GOOD);
    const fm = run(Cdb.writeFilemarks6(1));
    expect(held.length).toBe(1);
    held[0]?.land();
    expect((await fm).status).toBe(ScsiStatus.GOOD);
    expect((await run(write(2))).status).toBe(ScsiStatus.GOOD);
    const unload = run(Cdb.loadUnload({ load: false }));
    expect(await settled(unload)).toBe(false);
    held[1]?.fail(new RemoteError('EFENCED', 'FencedError', 'a newer key fences this write'));
    expect(isCheck(await unload, Sense.WRITE_ERROR, true)).toBe(true);
    expect(stats.commits).toBe(0);
    expect(stats.abandons).toBe(1);
  });

  it('a key taking effect with blocks on their way fences the write: the next WRITE answers WRITE ERROR, the unload commits nothing', async () => {
    const { run, held, stats, newKey } = await rig();
    expect((await run(write(1))).status).toBe(ScsiStatus.GOOD);
    newKey();
    const sent = stats.writesSent;
    expect(isCheck(await run(write(2)), Sense.WRITE_ERROR, false)).toBe(true);
    expect(stats.writesSent).toBe(sent);
    held[0]?.land();
    expect((await run(Cdb.loadUnload({ load: false }))).status).toBe(ScsiStatus.GOOD);
    expect(stats.commits).toBe(0);
  });

  it('writeBehind 1 answers each WRITE only once the VTS has its block, and its failure at once', async () => {
    const { run, held, stats } = await rig(1);
    const w = run(write(1));
    expect(await settled(w)).toBe(false);
    held[0]?.land();
    expect((await w).status).toBe(ScsiStatus.GOOD);
    const w2 = run(write(2));
    await settled(w2);
    held[1]?.fail(new RemoteError('EIO', 'Error', 'disk gone'));
    expect(isCheck(await w2, Sense.WRITE_ERROR, false)).toBe(true);
    await run(Cdb.loadUnload({ load: false }));
    expect(stats.commits).toBe(0);
  });
});
