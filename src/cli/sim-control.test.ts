import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import * as Cdb from '../scsi/cdb.js';
import { ScsiStatus } from '../scsi/status.js';
import type { EmulatedLibrary, LibraryConfig } from '../../firmware-sim/library/index.js';
import { drivePersonality } from '../../firmware-sim/personalities/drives.js';
import { createTapeDrive, type TapeDriveUnit } from '../../firmware-sim/ssc/index.js';
import { MemoryPort } from '../../firmware-sim/front/memory-port.js';
import { LibraryControl, type ControlledLibrary, type LibraryStatus } from './sim-control.js';

let dir: string | undefined;
let drive: TapeDriveUnit | undefined;
afterEach(() => {
  drive?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
  drive = undefined;
});

/** A control over one drive; the library parts status reads are the minimum it needs. */
function control(d: TapeDriveUnit): LibraryControl {
  const library = {
    name: 'lab',
    drives: [{ lun: 1, address: 0x100, serial: d.serial, personality: 'LTO9' }],
    inventory: () => [],
    config: { importExport: [] },
  } as unknown as EmulatedLibrary;
  const lib: ControlledLibrary = {
    configPath: 'library.yaml',
    yaml: {} as LibraryConfig,
    library,
    drives: [d],
    state: { locations: {}, faults: {}, positions: {} } as unknown as ControlledLibrary['state'],
    save: () => undefined,
    target: () => ({ iqn: 'iqn.test', portal: '127.0.0.1:3260', sessions: 0 }),
  };
  return new LibraryControl(lib, pino({ level: 'silent' }));
}

describe('sim ctl status: the streaming model of each drive', () => {
  it('is absent until the drive runs with a time scale, then gives speed step, backhitches, buffer and device seconds', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-ctl-'));
    const real = { t: 0 };
    drive = createTapeDrive({ personality: drivePersonality('ibm-lto9-fh'), serial: 'SN1', clock: () => real.t });
    await drive.insert({ barcode: 'A00001L9', mediaType: 'LTO9', path: join(dir, 'a.cart'), writeProtected: false, capacityBytes: 1 << 26 });
    const port = new MemoryPort(drive);
    const c = control(drive);
    const before = (await c.run({ op: 'status' })) as LibraryStatus;
    expect(before.drives[0]?.streaming).toBeUndefined();
    drive.unit.timeScale = 1e-6;
    for (let i = 0; i < 8; i++) {
      // The first command reports the load's unit attention; the WRITE is sent again.
      let r = await port.execute(Cdb.write6(new Uint8Array(1 << 20).fill(i + 1)));
      if (r.status !== ScsiStatus.GOOD) r = await port.execute(Cdb.write6(new Uint8Array(1 << 20).fill(i + 1)));
      expect(r.status).toBe(ScsiStatus.GOOD);
    }
    const after = (await c.run({ op: 'status' })) as LibraryStatus;
    expect(after.drives[0]?.streaming).toMatchObject({ speedMBps: 408, backhitches: 0, bufferFillBytes: 8 << 20, bufferBytes: 1e9, motion: 'stopped', direction: 'write' });
    drive.unit.timeScale = 0;
    await port.close();
  });
});
