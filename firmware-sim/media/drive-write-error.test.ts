/**
 * Cartridge write failures as a host sees them through the emulated drive: the command
 * whose sync point cannot be made durable answers CHECK CONDITION, MEDIUM ERROR / WRITE
 * ERROR (0Ch/00h), nothing after it is acknowledged, and the cartridge takes writes again
 * once it has been unloaded and loaded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { Sense } from '../../src/scsi/sense.js';
import type { CartridgeRef } from '../engine/library-link.js';
import { MemoryPort } from '../front/memory-port.js';
import { drivePersonality } from '../personalities/drives.js';
import { createTapeDrive, TapeAlertFlag, type TapeDriveUnit } from '../ssc/index.js';
import { drain, expectGood, expectSense, pattern } from '../ssc/test-kit.js';
import { checkCartridge, nodeFileIo, type CartridgeFileIo } from './index.js';

const MiB = 1 << 20;
let dir: string;
let lu: TapeDriveUnit;
let port: MemoryPort;
/** Switches of the injected file system. */
let faults: { failSyncs: number; writebackError: string | undefined; writebackDone: Promise<void> | undefined };

function eio(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

const io: CartridgeFileIo = {
  ...nodeFileIo,
  fdatasyncSync(fd) {
    if (faults.failSyncs > 0) {
      faults.failSyncs--;
      throw eio('EIO');
    }
    nodeFileIo.fdatasyncSync(fd);
  },
  fdatasync(fd, cb) {
    // A sync point's fdatasync runs on the thread pool: it fails as the synchronous one would.
    if (faults.failSyncs > 0) {
      faults.failSyncs--;
      setImmediate(() => cb(eio('EIO')));
      return;
    }
    if (!failWriteback(cb)) nodeFileIo.fdatasync(fd, cb);
  },
  startWriteback(fd, offset, length, cb) {
    if (!failWriteback(cb)) nodeFileIo.startWriteback!(fd, offset, length, cb);
  },
};

/** Fails this background writeback if a test asked for it (true: it was failed). */
function failWriteback(cb: (err: NodeJS.ErrnoException | null) => void): boolean {
  const code = faults.writebackError;
  if (!code) return false;
  faults.writebackDone = new Promise((res) =>
    setImmediate(() => {
      // Linux reports a writeback error once per open file, to whichever call comes first.
      faults.writebackError = undefined;
      cb(eio(code));
      res();
    }),
  );
  return true;
}

let cartridge: CartridgeRef;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-write-error-'));
  faults = { failSyncs: 0, writebackError: undefined, writebackDone: undefined };
  lu = createTapeDrive({ personality: drivePersonality('ibm-lto7-hh'), serial: 'WE1', mediaIo: io });
  port = new MemoryPort(lu);
  await drain(port);
  cartridge = { barcode: 'W00001L7', mediaType: 'LTO7', path: join(dir, 'w.cart'), writeProtected: false, capacityBytes: 1 << 30 };
  await lu.insert(cartridge);
  await drain(port);
});
afterEach(() => {
  lu.close();
  // A handler that threw anything but CHECK CONDITION is recorded as an emulator bug.
  expect(lu.unit.bugs).toEqual([]);
  rmSync(dir, { recursive: true, force: true });
});

async function reload(): Promise<void> {
  expectGood(await port.execute(Cdb.loadUnload({ load: false, hold: true })));
  expectGood(await port.execute(Cdb.loadUnload({ load: true })));
  await drain(port);
}

describe('cartridge write errors through the drive', () => {
  it('a background writeback error fails the next WRITE FILEMARKS with WRITE ERROR; the filemark is not acknowledged', async () => {
    faults.writebackError = 'EIO';
    // 9 MiB buffered: the drive starts writing back in the background after the first.
    for (let i = 0; i < 9; i++) expectGood(await port.execute(Cdb.write6(pattern(MiB, i))));
    expect(faults.writebackDone).toBeDefined();
    await faults.writebackDone;
    expectSense(await port.execute(Cdb.writeFilemarks6(1)), Sense.WRITE_ERROR, { information: 1 });
    // The position did not move past a filemark the host was never promised.
    expect(lu.drive.position).toBe(9);
    // Further writes, flushes and attribute writes are refused until the cartridge is reloaded.
    expectSense(await port.execute(Cdb.write6(pattern(10, 1))), Sense.WRITE_ERROR);
    expectSense(await port.execute(Cdb.writeFilemarks6(0)), Sense.WRITE_ERROR);
    // Reads and positioning still work (the host may read back what it has).
    expectGood(await port.execute(Cdb.rewind()));
    const ta = await port.execute(Cdb.logSense({ page: 0x2e }));
    expect([TapeAlertFlag.hardError, TapeAlertFlag.media, TapeAlertFlag.writeFailure].map((f) => ta.data[4 + (f - 1) * 5 + 4])).toEqual([1, 1, 1]);
    await reload();
    expectGood(await port.execute(Cdb.write6(pattern(10, 2))));
    expectGood(await port.execute(Cdb.writeFilemarks6(1)));
  });

  it('a failed fdatasync at WRITE FILEMARKS answers WRITE ERROR, and so does the next one although its fdatasync would succeed', async () => {
    expectGood(await port.execute(Cdb.write6(pattern(100, 1))));
    faults.failSyncs = 1;
    expectSense(await port.execute(Cdb.writeFilemarks6(1)), Sense.WRITE_ERROR, { information: 1 });
    expect(faults.failSyncs).toBe(0);
    expectSense(await port.execute(Cdb.writeFilemarks6(1)), Sense.WRITE_ERROR);
    expectSense(await port.execute(Cdb.write6(pattern(100, 2))), Sense.WRITE_ERROR);
    await reload();
    expectGood(await port.execute(Cdb.write6(pattern(100, 3))));
    expectGood(await port.execute(Cdb.writeFilemarks6(1)));
  });

  it('a failed flush on REWIND answers WRITE ERROR once, then the rewind works', async () => {
    expectGood(await port.execute(Cdb.write6(pattern(100, 1))));
    faults.failSyncs = 1;
    expectSense(await port.execute(Cdb.rewind()), Sense.WRITE_ERROR);
    expectGood(await port.execute(Cdb.rewind()));
    expectSense(await port.execute(Cdb.write6(pattern(100, 2))), Sense.WRITE_ERROR);
  });

  it('a failure found at unload still unloads, reports WRITE ERROR, and the reloaded cartridge is consistent', async () => {
    expectGood(await port.execute(Cdb.write6(pattern(100, 1))));
    faults.failSyncs = 1;
    expectSense(await port.execute(Cdb.loadUnload({ load: false, hold: true })), Sense.WRITE_ERROR);
    expect(lu.drive.state).toBe('unloaded');
    expectGood(await port.execute(Cdb.loadUnload({ load: true })));
    await drain(port);
    expectGood(await port.execute(Cdb.write6(pattern(100, 2))));
    expectGood(await port.execute(Cdb.writeFilemarks6(1)));
    lu.close();
    expect(checkCartridge(cartridge.path).damaged).toEqual([]);
  });
});
