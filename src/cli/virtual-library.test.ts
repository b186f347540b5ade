/**
 * The virtual library of each VTC, served over the emulator's iSCSI target on 127.0.0.1
 * and driven with the project's own iSCSI initiator, in front of a PtP system of real
 * agents and VTS processes' servers (LocalCluster): what a backup host relies on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Cdb from '../scsi/cdb.js';
import { SpaceCode } from '../scsi/cdb.js';
import { parseElementStatus } from '../scsi/parse-element-status.js';
import { parseLongPosition, parseShortPosition } from '../scsi/parse-tape.js';
import { decodeSense, Sense } from '../scsi/sense.js';
import type { SenseCode } from '../scsi/sense.js';
import { ScsiStatus } from '../scsi/status.js';
import { IscsiSession } from '../iscsi/session.js';
import { IscsiPort } from '../transport/iscsi/iscsi-port.js';
import type { ScsiResponse } from '../transport/scsi-port.js';
import { LocalCluster } from '../scenario/cluster.js';
import type { VtcAgent } from '../vtc/agent.js';
import { VolumeCatalogue } from '../vtc/host-library/catalogue.js';
import type { HostPath } from '../vtc/host-library/host-path.js';
import { serveVtcLibrary, VirtualLibrary } from './virtual-library.js';
import { VtsVolumes } from '../vtc/host-library/vts-volumes.js';

const DRIVE1 = 0x0100;
const SLOT0 = 0x1000;
const log = pino({ level: process.env.PTPVTS_LOG_LEVEL ?? 'silent' });

let dir: string;
let c: LocalCluster | null = null;
const stops: (() => Promise<void> | void)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-hostlib-'));
});
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  await c?.stop();
  c = null;
  rmSync(dir, { recursive: true, force: true });
});

const all = (cl: LocalCluster, s: string) => () => Object.values(cl.statuses()).every((x) => x === s) && cl.alive().length > 0;

async function library(cl: LocalCluster, cat: VolumeCatalogue, vtc: string): Promise<VirtualLibrary> {
  const a = cl.agent(vtc);
  const vols = new VtsVolumes({ self: a.self, vtcs: a.options.vtcs, secret: a.options.secret, vts: a.options.vts });
  const lib = await VirtualLibrary.start({ host: a, catalogue: cat, name: `${vtc}-vlib`, log, inUse: (v) => vols.holder(v) });
  stops.push(
    () => vols.close(),
    () => lib.stop(),
    // A handler that threw something other than CHECK CONDITION is a bug of the library.
    () => expect([lib.changerUnit, ...lib.drives.map((d) => d.unit)].flatMap((u) => u.bugs)).toEqual([]),
  );
  return lib;
}

interface Host {
  changer: IscsiPort;
  drive: IscsiPort;
}

async function connect(lib: VirtualLibrary, who: string): Promise<Host> {
  const p = lib.portal;
  const s = await IscsiSession.open({ host: p.host, port: p.port, initiatorName: `iqn.2026-11.io.ptpvts:${who}`, targetName: p.iqn });
  stops.push(() => s.close());
  return { changer: new IscsiPort(s, 0), drive: new IscsiPort(s, 1) };
}

const senseOf = (r: ScsiResponse): ReturnType<typeof decodeSense> => decodeSense(r.sense);
const is = (r: ScsiResponse, code: SenseCode): boolean => {
  if (r.status !== ScsiStatus.CHECK_CONDITION) return false;
  const s = senseOf(r);
  return s.key === code.key && s.asc === code.asc && s.ascq === code.ascq;
};

/** Runs a command, answering the unit attentions a load or an inventory change raise first. */
async function run(port: IscsiPort, cmd: Parameters<IscsiPort['execute']>[0]): Promise<ScsiResponse> {
  for (let i = 0; i < 4; i++) {
    const r = await port.execute(cmd);
    if (r.status === ScsiStatus.CHECK_CONDITION && senseOf(r).key === 0x06) continue;
    return r;
  }
  throw new Error('unit attentions never end');
}

async function good(port: IscsiPort, cmd: Parameters<IscsiPort['execute']>[0], what: string): Promise<ScsiResponse> {
  const r = await run(port, cmd);
  if (r.status !== ScsiStatus.GOOD) {
    const s = r.status === ScsiStatus.CHECK_CONDITION ? senseOf(r) : null;
    throw new Error(`${what}: status ${r.status}${s ? ` sense ${s.key.toString(16)}/${s.asc.toString(16)}/${s.ascq.toString(16)}` : ''}`);
  }
  return r;
}

async function slotOf(h: Host, volser: string): Promise<number> {
  const r = await good(h.changer, Cdb.readElementStatus({ volTag: true }), 'READ ELEMENT STATUS');
  for (const p of parseElementStatus(r.data).pages) for (const e of p.elements) if (e.full && e.primaryVolumeTag?.identifier === volser) return e.address;
  throw new Error(`${volser} is in no element`);
}

async function loadVolume(h: Host, volser: string): Promise<number> {
  const from = await slotOf(h, volser);
  await good(h.changer, Cdb.moveMedium({ source: from, destination: DRIVE1 }), `MOVE ${volser} to the drive`);
  return from;
}

async function unloadVolume(h: Host, home: number): Promise<void> {
  await good(h.drive, Cdb.loadUnload({ load: false }), 'UNLOAD');
  await good(h.changer, Cdb.moveMedium({ source: DRIVE1, destination: home }), 'MOVE back to the slot');
}

const block = (n: number, seed: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed * 101) & 0xff;
  return b;
};
const FILE1 = [block(10240, 1), block(10240, 2), block(3000, 3)];
const FILE2 = [block(65536, 4), block(512, 5)];

async function writeTwoFiles(h: Host): Promise<void> {
  for (const b of FILE1) await good(h.drive, Cdb.write6(b), 'WRITE file 1');
  await good(h.drive, Cdb.writeFilemarks6(1), 'WRITE FILEMARKS');
  for (const b of FILE2) await good(h.drive, Cdb.write6(b), 'WRITE file 2');
  await good(h.drive, Cdb.writeFilemarks6(1), 'WRITE FILEMARKS');
}

async function readFile(h: Host): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (;;) {
    const r = await run(h.drive, Cdb.read6({ length: 256 * 1024, sili: true }));
    if (r.status === ScsiStatus.GOOD) {
      out.push(Buffer.from(r.data));
      continue;
    }
    if (is(r, Sense.FILEMARK_DETECTED)) return out;
    throw new Error(`READ ended with status ${r.status} sense ${JSON.stringify(senseOf(r))}`);
  }
}

async function readBoth(h: Host): Promise<void> {
  await good(h.drive, Cdb.rewind(), 'REWIND');
  expect(await readFile(h)).toEqual(FILE1);
  expect(await readFile(h)).toEqual(FILE2);
  const eod = await run(h.drive, Cdb.read6({ length: 1024, sili: true }));
  expect(is(eod, Sense.END_OF_DATA_DETECTED), 'READ past the last filemark answers BLANK CHECK / END-OF-DATA').toBe(true);
}

async function startSystem(n = 3): Promise<{ cat: VolumeCatalogue }> {
  c = await LocalCluster.start({ n, dir: join(dir, 'ptp') });
  expect(await c.waitFor(all(c, 'online-both'), 8000)).toBe(true);
  const cat = await VolumeCatalogue.create(join(dir, 'catalogue.json'), 16);
  await cat.insert(['V00001', 'V00002', 'V00003']);
  return { cat };
}

describe('virtual library over iSCSI in front of the PtP system', () => {
  it('writes two files with filemarks through vtc1, reads them back through vtc2, and again after VTS A is taken out', async () => {
    const { cat } = await startSystem();
    const cl = c as LocalCluster;
    const h1 = await connect(await library(cl, cat, 'vtc1'), 'host1');
    const lib2 = await library(cl, cat, 'vtc2');
    const h2 = await connect(lib2, 'host2');

    const home = await loadVolume(h1, 'V00001');
    expect(home).toBe(SLOT0);
    await good(h1.drive, Cdb.testUnitReady(), 'TEST UNIT READY');
    // A scratch volume is blank: reading answers END-OF-DATA at once.
    expect(is(await run(h1.drive, Cdb.read6({ length: 512, sili: true })), Sense.END_OF_DATA_DETECTED)).toBe(true);
    await writeTwoFiles(h1);
    const pos = parseShortPosition((await good(h1.drive, Cdb.readPosition(), 'READ POSITION')).data);
    expect(pos.block).toBe(7);

    // Positioning on the volume while it is mounted for the write.
    await good(h1.drive, Cdb.rewind(), 'REWIND');
    await good(h1.drive, Cdb.space6(SpaceCode.filemarks, 1), 'SPACE 1 filemark');
    expect(Buffer.from((await good(h1.drive, Cdb.read6({ length: 65536 }), 'READ')).data)).toEqual(FILE2[0]);
    await good(h1.drive, Cdb.locate10(1), 'LOCATE 1');
    expect(Buffer.from((await good(h1.drive, Cdb.read6({ length: 10240 }), 'READ')).data)).toEqual(FILE1[1]);
    const back = await run(h1.drive, Cdb.space6(SpaceCode.blocks, -5));
    expect(is(back, Sense.BEGINNING_OF_PARTITION_MEDIUM_DETECTED)).toBe(true);
    expect(senseOf(back).information).toBe(3);
    await good(h1.drive, Cdb.space6(SpaceCode.endOfData), 'SPACE to EOD');
    expect(parseShortPosition((await good(h1.drive, Cdb.readPosition(), 'READ POSITION')).data).block).toBe(7);
    await good(h1.drive, Cdb.space6(SpaceCode.filemarks, -1), 'SPACE back 1 filemark');
    const long = parseLongPosition((await good(h1.drive, Cdb.readPosition('long'), 'READ POSITION long')).data);
    expect(long.block).toBe(6n);
    expect(long.fileNumber).toBe(1n);

    // Unload commits (immediate copy: both VTS hold it), and the volume is private now.
    await unloadVolume(h1, home);
    expect(c!.vts.A.unit?.token('V00001')).toEqual({ generation: 1, consistent: true });
    expect(c!.vts.B.unit?.token('V00001')).toEqual({ generation: 1, consistent: true });
    expect((await cat.get('V00001'))?.category).toBe('private');

    // Another VTC's library: its host reads both files back.
    await loadVolume(h2, 'V00001');
    await readBoth(h2);
    // Mounted through vtc2: vtc1's library refuses to load it.
    const busy = await run(h1.changer, Cdb.moveMedium({ source: home, destination: DRIVE1 }));
    expect(is(busy, Sense.OPERATION_IN_PROGRESS), 'a volume mounted through another VTC is in use').toBe(true);

    const d2 = lib2.drives[0]!.drive;
    expect(d2.medium?.handle?.vts).toBe('A');

    // VTS A out (immediate: its mounts end); the drive on vtc2 mounts again on B and reads on.
    await cl.agent('vtc3').command({ command: 'vts-out', vts: 'A', mode: 'immediate' });
    expect(await cl.waitFor(all(cl, 'online-single(B)'), 5000)).toBe(true);
    await readBoth(h2);
    expect(d2.medium?.handle?.vts).toBe('B');
    expect(d2.stats.remounts).toBe(1);
    await unloadVolume(h2, home);

    // VTS A killed; through vtc1 as well, now that nobody holds it.
    await cl.crashVts('A');
    await loadVolume(h1, 'V00001');
    await readBoth(h1);
    await unloadVolume(h1, home);
  }, 60_000);

  it('answers NOT READY while the PtP system is off-line and resumes when it is back', async () => {
    const { cat } = await startSystem();
    const cl = c as LocalCluster;
    const lib = await library(cl, cat, 'vtc1');
    const h = await connect(lib, 'host1');
    const home = await loadVolume(h, 'V00002');
    await writeTwoFiles(h);
    await unloadVolume(h, home);

    await loadVolume(h, 'V00002');
    // Immediate: the drive's read mount does not hold the shutdown up (a normal one waits for hosts to unload).
    await cl.agent('vtc2').command({ command: 'ptp-shutdown', mode: 'immediate' });
    expect(await cl.waitFor(all(cl, 'offline'), 5000)).toBe(true);
    expect(is(await run(h.drive, Cdb.testUnitReady()), Sense.NOT_READY_OFFLINE)).toBe(true);
    expect(is(await run(h.drive, Cdb.read6({ length: 1024, sili: true })), Sense.NOT_READY_OFFLINE)).toBe(true);

    await cl.agent('vtc3').command({ command: 'ptp-start' });
    expect(await cl.waitFor(all(cl, 'online-both'), 8000)).toBe(true);
    expect(await cl.waitFor(() => cl.alive().every((a: VtcAgent) => a.engine.newestKey().seq >= 2), 3000)).toBe(true);
    // The TEST UNIT READY that finds the drive ready again reports the change itself (Linux's
    // st resets its position state on it; without it a tar waiting in open reads with the
    // state of the cartridge before), and only once.
    const first = await h.drive.execute(Cdb.testUnitReady());
    expect(is(first, Sense.NOT_READY_TO_READY_CHANGE), `first TEST UNIT READY on-line again: ${JSON.stringify(senseOf(first))}`).toBe(true);
    expect((await h.drive.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
    await readBoth(h);
    expect(lib.drives[0]!.drive.stats.remounts + lib.drives[0]!.drive.stats.mounts).toBeGreaterThanOrEqual(2);
    await unloadVolume(h, home);
  }, 60_000);

  it('a write fenced by a new key fails with WRITE ERROR, and nothing of it is committed', async () => {
    const { cat } = await startSystem();
    const cl = c as LocalCluster;
    // The host path with an abandon: the lost write must go there, never to a commit.
    const a = cl.agent('vtc1');
    const calls: string[] = [];
    const host: HostPath = {
      self: a.self,
      engine: a.engine,
      mount: (v, o) => a.mount(v, o),
      write: (h, d) => a.write(h, d),
      writeFilemark: (h) => a.writeFilemark(h),
      read: (h, n) => a.read(h, n),
      rewind: (h) => a.rewind(h),
      close: (h) => (calls.push(`close ${h.writable ? 'write' : 'read'}`), a.close(h)),
      // Stands in for the agent's missing abandon: a close the VTS refuses once it recorded the key.
      abandon: (h) => (calls.push('abandon'), a.close(h).catch(() => undefined)),
    };
    const lib = await VirtualLibrary.start({ host, catalogue: cat, name: 'vtc1-vlib', log });
    stops.push(() => lib.stop());
    const h = await connect(lib, 'host1');
    const home = await loadVolume(h, 'V00003');
    await good(h.drive, Cdb.write6(FILE1[0]!), 'WRITE before the key');
    // A key takes effect while the write is mounted (VTS B out: the write's copy target is
    // gone). Immediate mode: the write is teed to B, an active mount there that normal mode
    // would let run to completion (PROTOCOL.md, execution modes) while the host holds it.
    await cl.agent('vtc2').command({ command: 'vts-out', vts: 'B', mode: 'immediate' });
    expect(await cl.waitFor(() => cl.agent('vtc1').engine.newestKey().seq >= 1, 3000)).toBe(true);
    const w = await run(h.drive, Cdb.write6(FILE1[1]!));
    expect(is(w, Sense.WRITE_ERROR), 'the host sees the fenced write').toBe(true);
    expect(calls).toEqual(['abandon']);
    // Every data command after it says so too, until the cartridge is unloaded.
    expect(is(await run(h.drive, Cdb.writeFilemarks6(1)), Sense.WRITE_ERROR)).toBe(true);
    expect(is(await run(h.drive, Cdb.read6({ length: 512, sili: true })), Sense.WRITE_ERROR)).toBe(true);
    await unloadVolume(h, home);
    expect(calls).toEqual(['abandon']);
    expect(c!.vts.A.unit?.token('V00003')?.generation ?? 0).toBe(0);
    expect((await cat.get('V00003'))?.category).toBe('scratch');
    // Loaded again, the volume is what it was (blank), and takes a new write.
    await loadVolume(h, 'V00003');
    expect(is(await run(h.drive, Cdb.read6({ length: 512, sili: true })), Sense.END_OF_DATA_DETECTED)).toBe(true);
    await writeTwoFiles(h);
    await unloadVolume(h, home);
    expect(c!.vts.A.unit?.token('V00003')?.consistent).toBe(true);
    expect(c!.vts.A.unit?.token('V00003')?.generation).toBeGreaterThan(0);
    expect((await cat.get('V00003'))?.category).toBe('private');
  }, 60_000);

  it('follows the catalogue: volumes inserted appear in their home slots, volumes ejected leave (an exported one from its import/export element)', async () => {
    const { cat } = await startSystem(2);
    const cl = c as LocalCluster;
    const lib = await library(cl, cat, 'vtc1');
    const h = await connect(lib, 'host1');
    expect(await slotOf(h, 'V00003')).toBe(SLOT0 + 2);
    // The host exports V00003 to the first import/export element.
    await good(h.changer, Cdb.moveMedium({ source: SLOT0 + 2, destination: 0x0010 }), 'MOVE to import/export');
    await cat.eject('V00001');
    await cat.eject('V00003');
    // The lowest free home slot: the one V00001 left.
    await cat.insert(['V00009']);
    expect(await slotOf(h, 'V00009')).toBe(SLOT0);
    await expect(slotOf(h, 'V00001')).rejects.toThrow(/in no element/);
    await expect(slotOf(h, 'V00003')).rejects.toThrow(/in no element/);
    expect(lib.elements().filter((e) => e.volser !== null).map((e) => e.volser)).toEqual(['V00009', 'V00002']);
  }, 30_000);

  it('ptp run\'s library: a new catalogue gets ten scratch volumes, the portal wants CHAP, and a deferred-copy volume is acknowledged with its copy queued', async () => {
    c = await LocalCluster.start({ n: 2, dir: join(dir, 'ptp') });
    const cl = c;
    expect(await cl.waitFor(all(cl, 'online-both'), 8000)).toBe(true);
    const path = join(dir, 'cat.json');
    const chap = { users: { 'iqn.2026-11.io.ptpvts:host1': 'secret-of-host-1' } };
    const served = await serveVtcLibrary(cl.agent('vtc1'), { catalogue: path, listen: { host: '127.0.0.1', port: 0 }, chap, log });
    stops.push(() => served.stop());
    const cat = new VolumeCatalogue(path);
    expect((await cat.list()).map((e) => `${e.volser}:${e.category}`)).toEqual(Array.from({ length: 10 }, (_, i) => `V${String(i + 1).padStart(5, '0')}:scratch`));
    const p = served.library.portal;
    await expect(IscsiSession.open({ host: p.host, port: p.port, initiatorName: 'iqn.2026-11.io.ptpvts:host1', targetName: p.iqn })).rejects.toMatchObject({ code: 'ELOGIN' });
    const s = await IscsiSession.open({ host: p.host, port: p.port, initiatorName: 'iqn.2026-11.io.ptpvts:host1', targetName: p.iqn, chap: { name: 'iqn.2026-11.io.ptpvts:host1', secret: 'secret-of-host-1' } });
    stops.push(() => s.close());
    const h: Host = { changer: new IscsiPort(s, 0), drive: new IscsiPort(s, 1) };

    await cat.insert(['D00001'], { copyMode: 'deferred' });
    for (const a of cl.alive()) a.copies.paused = true;
    const home = await loadVolume(h, 'D00001');
    await writeTwoFiles(h);
    await unloadVolume(h, home);
    expect(cl.vts.A.unit?.token('D00001')?.consistent).toBe(true);
    expect(cl.vts.B.unit?.view().behind).toEqual(['D00001']);
    for (const a of cl.alive()) a.copies.paused = false;
    expect(await cl.waitFor(() => cl.vts.B.unit?.view().behind.length === 0, 5000)).toBe(true);
    await loadVolume(h, 'D00001');
    await readBoth(h);
    await unloadVolume(h, home);
  }, 30_000);
});
