/**
 * The virtual drive's SSC answers, command by command, over an in-memory host path (a
 * volume store with the agent's mount, block I/O and close): incorrect lengths, filemarks
 * met while spacing either way, fixed-block mode, end of data, READ POSITION, the load and
 * unload cycle. The PtP system behind the real host path is in virtual-library.test.ts.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { CommandResult } from '../../firmware-sim/engine/types.js';
import * as Cdb from '../scsi/cdb.js';
import { SpaceCode } from '../scsi/cdb.js';
import type { Command } from '../scsi/cdb.js';
import { buildModeSelect } from '../scsi/parse-mode.js';
import { parseLongPosition, parseShortPosition } from '../scsi/parse-tape.js';
import { Sense } from '../scsi/sense.js';
import type { SenseCode } from '../scsi/sense.js';
import { ScsiStatus } from '../scsi/status.js';
import type { CloseResult, HostHandle } from '../vtc/agent.js';
import type { HostPath } from '../vtc/host-library/host-path.js';
import { NO_GENERATION_REASON } from '../vtc/host-library/host-path.js';
import { PtpOfflineError } from '../vtc/errors.js';
import { cartridgeOf, createVirtualDriveUnit } from './virtual-library.js';

type Rec = Uint8Array | 'fm';

/** Volumes in memory behind the agent's host API: a writable mount works on a copy, committed at close. */
function memoryHost(): HostPath & { volumes: Map<string, Rec[]>; commits: number } {
  const mounts = new Map<number, { volser: string; recs: Rec[]; pos: number; writable: boolean }>();
  let next = 1;
  const volumes = new Map<string, Rec[]>();
  const m = (h: HostHandle) => {
    const x = mounts.get(h.id);
    if (x === undefined) throw new Error(`no mount ${h.id}`);
    return x;
  };
  const host = {
    self: 'vtc1',
    volumes,
    commits: 0,
    engine: { writeContext: () => ({ status: { kind: 'online-both' }, epoch: 0, epochMac: '', boots: {}, minSeqs: { A: 0, B: 0 } }) } as unknown as HostPath['engine'],
    mount(volser: string, o: { scratch?: boolean; writable?: boolean } = {}): Promise<HostHandle> {
      const v = volumes.get(volser);
      if (o.writable === false && v === undefined) return Promise.reject(new PtpOfflineError(`${volser}: ${NO_GENERATION_REASON}`));
      const h: HostHandle = { id: next++, volser, vts: 'A', writable: o.writable !== false };
      mounts.set(h.id, { volser, recs: o.scratch === true ? [] : [...(v ?? [])], pos: 0, writable: h.writable });
      return Promise.resolve(h);
    },
    write(h: HostHandle, d: Uint8Array): Promise<void> {
      const x = m(h);
      x.recs.length = x.pos;
      x.recs.push(Uint8Array.from(d));
      x.pos++;
      return Promise.resolve();
    },
    writeFilemark(h: HostHandle): Promise<void> {
      const x = m(h);
      x.recs.length = x.pos;
      x.recs.push('fm');
      x.pos++;
      return Promise.resolve();
    },
    read(h: HostHandle, max: number) {
      const x = m(h);
      const r = x.recs[x.pos];
      if (r === undefined) return Promise.resolve({ kind: 'eod' as const });
      x.pos++;
      if (r === 'fm') return Promise.resolve({ kind: 'filemark' as const });
      return Promise.resolve({ kind: 'block' as const, data: r.subarray(0, max), truncated: r.length > max });
    },
    rewind(h: HostHandle): Promise<void> {
      m(h).pos = 0;
      return Promise.resolve();
    },
    close(h: HostHandle): Promise<CloseResult> {
      const x = m(h);
      mounts.delete(h.id);
      if (x.writable) {
        volumes.set(x.volser, x.recs);
        host.commits++;
      }
      return Promise.resolve({ volser: x.volser, generation: 1, copyMode: 'immediate', copies: ['A'], queued: [] });
    },
  };
  return host;
}

async function rig(): Promise<{ run: (c: Command) => Promise<CommandResult>; host: ReturnType<typeof memoryHost> }> {
  const host = memoryHost();
  const d = createVirtualDriveUnit({ host, serial: 'T1', name: 'test/drive1', log: pino({ level: 'silent' }) });
  await d.bay.insert(cartridgeOf('V00001'));
  const run = async (c: Command): Promise<CommandResult> => {
    for (;;) {
      const r = await d.unit.execute({ initiator: 'h1', cdb: c.cdb, dataInLength: c.dataInLength ?? 0, signal: new AbortController().signal, ...(c.dataOut === undefined ? {} : { dataOut: c.dataOut }) });
      // The load's NOT READY TO READY CHANGE.
      if (r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === 0x06) continue;
      expect(d.unit.bugs).toEqual([]);
      return r;
    }
  };
  return { run, host };
}

const is = (r: CommandResult, code: SenseCode): boolean => r.status === ScsiStatus.CHECK_CONDITION && r.sense?.key === code.key && r.sense.asc === code.asc && r.sense.ascq === code.ascq;
const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i + seed) & 0xff);
const pos = async (run: (c: Command) => Promise<CommandResult>): Promise<number> => parseShortPosition((await run(Cdb.readPosition())).data ?? new Uint8Array(20)).block;

describe('virtual drive SSC semantics', () => {
  it('variable blocks: incorrect lengths, filemarks and end of data as SSC reports them', async () => {
    const { run, host } = await rig();
    for (const n of [100, 200, 300]) expect((await run(Cdb.write6(bytes(n, n)))).status).toBe(ScsiStatus.GOOD);
    expect((await run(Cdb.writeFilemarks6(1))).status).toBe(ScsiStatus.GOOD);
    expect((await run(Cdb.write6(bytes(50, 1)))).status).toBe(ScsiStatus.GOOD);
    expect((await run(Cdb.rewind())).status).toBe(ScsiStatus.GOOD);

    const short = await run(Cdb.read6({ length: 150 }));
    expect(is(short, Sense.NO_ADDITIONAL_SENSE) && short.sense?.ili === true).toBe(true);
    expect(short.sense?.information).toBe(50);
    expect(short.data).toEqual(bytes(100, 100));
    const long = await run(Cdb.read6({ length: 150 }));
    expect(long.sense?.ili).toBe(true);
    expect(long.sense?.information).toBe(-50);
    expect(long.data).toEqual(bytes(200, 200).subarray(0, 150));
    const sili = await run(Cdb.read6({ length: 1000, sili: true }));
    expect(sili.status).toBe(ScsiStatus.GOOD);
    expect(sili.data).toEqual(bytes(300, 300));
    const fm = await run(Cdb.read6({ length: 1000, sili: true }));
    expect(is(fm, Sense.FILEMARK_DETECTED) && fm.sense?.filemark === true && fm.sense.information === 1000).toBe(true);
    expect(await pos(run)).toBe(4);
    expect((await run(Cdb.read6({ length: 50 }))).data).toEqual(bytes(50, 1));
    expect(is(await run(Cdb.read6({ length: 50 })), Sense.END_OF_DATA_DETECTED)).toBe(true);

    // SPACE over blocks stops at a filemark: forward on its far side, backward on its near side.
    await run(Cdb.rewind());
    const fwd = await run(Cdb.space6(SpaceCode.blocks, 5));
    expect(is(fwd, Sense.FILEMARK_DETECTED) && fwd.sense?.information === 2).toBe(true);
    expect(await pos(run)).toBe(4);
    await run(Cdb.space6(SpaceCode.endOfData));
    expect(await pos(run)).toBe(5);
    const back = await run(Cdb.space6(SpaceCode.blocks, -3));
    expect(is(back, Sense.FILEMARK_DETECTED) && back.sense?.information === 2).toBe(true);
    expect(await pos(run)).toBe(3);
    expect((await run(Cdb.space6(SpaceCode.blocks, -2))).status).toBe(ScsiStatus.GOOD);
    expect(await pos(run)).toBe(1);
    await run(Cdb.space6(SpaceCode.endOfData));
    expect((await run(Cdb.space6(SpaceCode.filemarks, -1))).status).toBe(ScsiStatus.GOOD);
    expect(await pos(run)).toBe(3);
    const eod = await run(Cdb.space6(SpaceCode.filemarks, 2));
    expect(is(eod, Sense.END_OF_DATA_DETECTED) && eod.sense?.information === 1).toBe(true);
    expect(is(await run(Cdb.locate10(9)), Sense.END_OF_DATA_DETECTED)).toBe(true);
    expect(parseLongPosition((await run(Cdb.readPosition('long'))).data ?? new Uint8Array(32))).toMatchObject({ block: 5n, fileNumber: 1n });

    // Unload commits what was written; the volume reads back after a new load.
    expect(host.commits).toBe(0);
    expect((await run(Cdb.loadUnload({ load: false }))).status).toBe(ScsiStatus.GOOD);
    expect(host.commits).toBe(1);
    expect(is(await run(Cdb.read6({ length: 50, sili: true })), Sense.INITIALIZING_COMMAND_REQUIRED)).toBe(true);
    expect((await run(Cdb.loadUnload({ load: true }))).status).toBe(ScsiStatus.GOOD);
    expect((await run(Cdb.read6({ length: 100 }))).data).toEqual(bytes(100, 100));
  });

  it('fixed blocks after MODE SELECT: counts in blocks, what was read before a filemark comes with the sense', async () => {
    const { run } = await rig();
    expect((await run(Cdb.modeSelect6(buildModeSelect({ blockDescriptors: [{ densityCode: 0, numberOfBlocks: 0n, blockLength: 512 }] }, 6)))).status).toBe(ScsiStatus.GOOD);
    const four = Uint8Array.from({ length: 2048 }, (_, i) => i & 0xff);
    expect((await run(Cdb.write6(four, { fixed: true, blockSize: 512 }))).status).toBe(ScsiStatus.GOOD);
    await run(Cdb.writeFilemarks6(1));
    expect(await pos(run)).toBe(5);
    await run(Cdb.rewind());
    expect(Buffer.from((await run(Cdb.read6({ length: 2, fixed: true, blockSize: 512 }))).data ?? [])).toEqual(Buffer.from(four.subarray(0, 1024)));
    const r = await run(Cdb.read6({ length: 3, fixed: true, blockSize: 512 }));
    expect(is(r, Sense.FILEMARK_DETECTED) && r.sense?.information === 1).toBe(true);
    expect(Buffer.from(r.data ?? [])).toEqual(Buffer.from(four.subarray(1024, 2048)));
    // A block larger than one VTS read cannot be written.
    expect(is(await run(Cdb.write6(new Uint8Array(256 * 1024 + 1))), Sense.INVALID_FIELD_IN_CDB)).toBe(true);
  });
});
