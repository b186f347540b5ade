import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { Sense, SenseKey } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { MoveVetoed, type MoveEvent } from '../smc/index.js';
import { loadLibraryConfig, parseLibraryConfig } from './config.js';
import { createFakeDrive, fakeDriveFactory } from './fake-drive.js';
import { createLibrary } from './library.js';
import { hasSense, makeLibrary, senseOf } from './test-kit.js';

const S1 = 0x1000;
const S4 = 0x1003;
const D2 = 0x101;

describe('library: assembly', () => {
  it('builds the example library: changer at LUN 0, drives after, cartridges in place', async () => {
    const config = loadLibraryConfig(join(import.meta.dirname, '../../examples/library.yaml'), { baseDir: mkdtempSync(join(tmpdir(), 'libex-')) });
    const lib = await createLibrary(config, { driveFactory: fakeDriveFactory, timeScale: 0 });
    expect([...lib.luns().keys()]).toEqual([0, 1, 2]);
    expect(lib.luns().get(0)).toBe(lib.changer);
    expect(lib.changer.deviceType).toBe(0x08);
    expect(lib.drives[0]?.bay.hasMedium()).toBe(true);
    expect(lib.inventory()).toHaveLength(10);
    expect(lib.inventory().find((e) => e.barcode === 'S00001L8')).toMatchObject({ address: 0x100, kind: 'drive' });
    expect(lib.inventory().find((e) => e.barcode === 'E00001L8')).toMatchObject({ address: 0x10, kind: 'import-export' });
    await lib.close();
  });

  it('with the real tape drives: a cartridge moved into a drive makes it ready, and comes back out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'libdrv-'));
    const config = parseLibraryConfig(
      { name: 'real', personality: 'IBM-TS3100', timeScale: 0, storageSlots: 4, drives: { count: 1, personality: 'LTO8' }, cartridges: [{ barcode: 'R00001L8', capacity: '8MiB' }] },
      { baseDir: dir },
    );
    const lib = await createLibrary(config);
    try {
      const { MemoryPort } = await import('../front/memory-port.js');
      const changer = new MemoryPort(lib.changer);
      const drive = new MemoryPort(lib.luns().get(1)!);
      await changer.execute(Cdb.testUnitReady());
      await drive.execute(Cdb.testUnitReady());
      const inq = await drive.execute(Cdb.inquiry());
      expect(Buffer.from(inq.data.subarray(16, 32)).toString().trim()).toBe('ULTRIUM-HH8');
      expect(hasSense(await drive.execute(Cdb.testUnitReady()), Sense.MEDIUM_NOT_PRESENT)).toBe(true);
      expect((await changer.execute(Cdb.moveMedium({ source: S1, destination: 0x100 }))).status).toBe(ScsiStatus.GOOD);
      let tur = await drive.execute(Cdb.testUnitReady());
      if (tur.status !== ScsiStatus.GOOD) tur = await drive.execute(Cdb.testUnitReady()); // medium-changed attention first
      expect(tur.status).toBe(ScsiStatus.GOOD);
      const s = await import('./test-kit.js').then((k) => k.elementStatus(changer, { elementType: 4, deviceId: true }));
      expect(s.elements[0]).toMatchObject({ full: true, barcode: 'R00001L8' });
      expect(s.elements[0]?.identifier).toBe(`IBM     ULTRIUM-HH8     ${config.drives[0]!.serial}`);
      expect((await changer.execute(Cdb.moveMedium({ source: 0x100, destination: S4 }))).status).toBe(ScsiStatus.GOOD);
      expect(lib.model.inventory()).toEqual(new Map([[S4, 'R00001L8']]));
      expect(lib.drives[0]?.bay.hasMedium()).toBe(false);
    } finally {
      await lib.close();
    }
  });

  it('fails when a drive refuses its initial cartridge, naming the cause', async () => {
    const config = parseLibraryConfig({ name: 'x', personality: 'PTPVTS-LIB', storageSlots: 2, drives: { count: 1, personality: 'LTO8' }, cartridges: [{ barcode: 'A00001L8', location: 'drive 1' }] });
    const factory: typeof fakeDriveFactory = (spec) => {
      const d = createFakeDrive(spec.name, spec.serial);
      d.bay.offline = true;
      return d;
    };
    await expect(createLibrary(config, { driveFactory: factory })).rejects.toMatchObject({ message: /offline/, cause: { name: 'InsertRefused' } });
  });

  it('REPORT LUNS from a drive LU lists the whole target', async () => {
    const { lib } = await makeLibrary();
    const { MemoryPort } = await import('../front/memory-port.js');
    const p = new MemoryPort(lib.drives[1]!.unit);
    const r = await p.execute(Cdb.reportLuns());
    expect(r.data[3]).toBe(24);
  });
});

describe('library: operator actions', () => {
  it('refuses actions behind a closed door, full stations, duplicate and bad barcodes', async () => {
    const { lib } = await makeLibrary();
    expect(() => lib.insertIntoImportExport('N00001L8')).toThrow(expect.objectContaining({ code: 'door-closed' }));
    await lib.openDoor();
    expect(() => lib.insertIntoImportExport('A00001L8')).toThrow(expect.objectContaining({ code: 'duplicate-barcode' }));
    expect(() => lib.insertIntoImportExport('BAD CODE', { mediaType: 'LTO8' })).toThrow(expect.objectContaining({ code: 'invalid-cartridge' }));
    expect(() => lib.insertIntoImportExport('N00001L7', { mediaType: 'LTO8' })).toThrow(expect.objectContaining({ code: 'invalid-cartridge' }));
    expect(() => lib.insertIntoImportExport('FREEFORM')).toThrow(/media type/);
    expect(lib.insertIntoImportExport('FREEFORM', { mediaType: 'LTO9', capacityBytes: 1024 })).toBe(0x10);
    expect(lib.insertIntoImportExport('N00002L8')).toBe(0x11);
    expect(() => lib.insertIntoImportExport('N00003L8')).toThrow(expect.objectContaining({ code: 'element-full' }));
    expect(() => lib.removeFromImportExport(S1)).toThrow(expect.objectContaining({ code: 'no-such-element' }));
    const c = lib.removeFromImportExport(0x10);
    expect(c).toMatchObject({ barcode: 'FREEFORM', mediaType: 'LTO9', capacityBytes: 1024, writeProtected: false });
    expect(c.path).toBe('/tmp/ptpvts-test/media/FREEFORM.tape');
    expect(() => lib.removeFromImportExport(0x10)).toThrow(expect.objectContaining({ code: 'element-empty' }));
    expect(() => lib.insertIntoStorage(S4, 'Z00001L8')).toThrow(expect.objectContaining({ code: 'door-closed' }));
  });

  it('the door waits for a robot move in progress', async () => {
    const { lib, port } = await makeLibrary();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    lib.onMove(() => gate);
    const move = port.execute(Cdb.moveMedium({ source: S1, destination: 0x10 }));
    await new Promise((r) => setTimeout(r, 5));
    let opened = false;
    const door = lib.openDoor().then(() => (opened = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(opened).toBe(false);
    release();
    expect((await move).status).toBe(ScsiStatus.GOOD);
    await door;
    expect(lib.removeFromImportExport(0x10).barcode).toBe('A00001L8');
  });
});

describe('library: move hook', () => {
  it('calls the callback with each move, exchange legs included', async () => {
    const events: MoveEvent[] = [];
    const { port } = await makeLibrary({}, { moveHook: (e) => void events.push(e) });
    await port.execute(Cdb.moveMedium({ source: S1, destination: D2 }));
    await port.execute(Cdb.exchangeMedium({ source: D2, firstDestination: 0x1001, secondDestination: S1 }));
    expect(events.map((e) => [e.operation, e.source, e.destination, e.barcode, e.sourceKind, e.destinationKind])).toEqual([
      ['move', S1, D2, 'A00001L8', 2, 4],
      ['exchange-1', D2, 0x1001, 'A00001L8', 4, 2],
      ['exchange-2', 0x1001, S1, 'A00002L8', 2, 2],
    ]);
  });

  it('a vetoing callback fails the move and nothing moves; MoveVetoed chooses the sense', async () => {
    const { port, lib } = await makeLibrary();
    const off = lib.onMove(async () => {
      throw new Error('rig says no');
    });
    const r = await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }));
    expect(hasSense(r, Sense.MECHANICAL_POSITIONING_ERROR)).toBe(true);
    expect(lib.model.occupant(S1)).toBeDefined();
    off();
    lib.onMove(() => {
      throw new MoveVetoed('not today', { key: SenseKey.NOT_READY, asc: 0x04, ascq: 0x03 });
    });
    const v = await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }));
    expect(senseOf(v)).toMatchObject({ key: SenseKey.NOT_READY, asc: 0x04, ascq: 0x03 });
    expect(lib.changer.bugs).toEqual([]);
  });

  it('runs the external command with the move in its environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'movehook-'));
    const log = join(dir, 'moves.log');
    const { port } = await makeLibrary({ robot: { moveHook: `echo "$PTPVTS_BARCODE $PTPVTS_MOVE_SOURCE $PTPVTS_MOVE_DEST $PTPVTS_MOVE_SOURCE_TYPE $PTPVTS_MOVE_DEST_TYPE $PTPVTS_LIBRARY" >> '${log}'` } });
    expect((await port.execute(Cdb.moveMedium({ source: S1, destination: D2 }))).status).toBe(ScsiStatus.GOOD);
    expect((await port.execute(Cdb.moveMedium({ source: D2, destination: S4 }))).status).toBe(ScsiStatus.GOOD);
    expect(readFileSync(log, 'utf8')).toBe(`A00001L8 4096 257 storage drive tlib\nA00001L8 257 4099 drive storage tlib\n`);
  });

  it('a non-zero exit fails the move with HARDWARE ERROR', async () => {
    const { port, lib } = await makeLibrary({ robot: { moveHook: ['sh', '-c', 'exit 3'] } });
    const r = await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }));
    expect(senseOf(r)?.key).toBe(SenseKey.HARDWARE_ERROR);
    expect(hasSense(r, Sense.MECHANICAL_POSITIONING_ERROR)).toBe(true);
    expect(lib.model.occupant(S1)).toBeDefined();
  });

  it('a hook command that hangs is killed at its timeout', async () => {
    const { port, lib } = await makeLibrary({ robot: { moveHook: { command: 'sleep 30', timeoutSeconds: 0.2 } } });
    const t0 = Date.now();
    const r = await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(senseOf(r)?.key).toBe(SenseKey.HARDWARE_ERROR);
    expect(lib.model.occupant(S4)).toBeUndefined();
  });

  it('aborting the command kills the hook command', async () => {
    const { port, lib } = await makeLibrary({ robot: { moveHook: { command: 'sleep 30', timeoutSeconds: 60 } } });
    const ac = new AbortController();
    const p = port.execute({ ...Cdb.moveMedium({ source: S1, destination: S4 }), signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toMatchObject({ code: 'ECANCELED' });
    // The robot is free again: the next move goes through the (still hanging) hook, so jam it instead.
    lib.faults.jamNextMoves(1);
    const next = await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }));
    expect(hasSense(next, Sense.MECHANICAL_POSITIONING_ERROR)).toBe(true);
  });
});

describe('library: faults', () => {
  it('power cycle reaches the drives too', async () => {
    const { lib } = await makeLibrary();
    const { MemoryPort } = await import('../front/memory-port.js');
    const p = new MemoryPort(lib.drives[0]!.unit);
    await p.execute(Cdb.testUnitReady());
    await lib.faults.powerCycle();
    expect(hasSense(await p.execute(Cdb.testUnitReady()), Sense.POWER_ON_OCCURRED)).toBe(true);
  });

  it('the changer is NOT READY (becoming ready) while it recalibrates', async () => {
    const { lib, port } = await makeLibrary();
    lib.model.timeScale = 0.002; // 30 s personality power-on -> 60 ms
    const cycling = lib.faults.powerCycle();
    await port.execute(Cdb.testUnitReady()); // POWER ON OCCURRED
    expect(hasSense(await port.execute(Cdb.testUnitReady()), Sense.BECOMING_READY)).toBe(true);
    await cycling;
    expect((await port.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
  });

  it('clear() drops pending jams', async () => {
    const { lib, port } = await makeLibrary();
    lib.faults.jamNextMoves(5);
    lib.faults.clear();
    expect((await port.execute(Cdb.moveMedium({ source: S1, destination: S4 }))).status).toBe(ScsiStatus.GOOD);
  });
});
