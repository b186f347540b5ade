import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listSgDevices } from './sg-list.js';
import { TransportError } from '../scsi-port.js';

let sys = '';
beforeAll(() => {
  sys = mkdtempSync(join(tmpdir(), 'ptpvts-sysfs-'));
  const devices = join(sys, 'devices', 'host0');
  const unit = (hctl: string, sg: string, files: Record<string, string | Uint8Array>, dirs: string[] = []) => {
    const d = join(devices, hctl);
    mkdirSync(d, { recursive: true });
    for (const [name, content] of Object.entries(files)) writeFileSync(join(d, name), content);
    for (const sub of dirs) mkdirSync(join(d, sub), { recursive: true });
    mkdirSync(join(sys, 'class', 'scsi_generic', sg), { recursive: true });
    symlinkSync(d, join(sys, 'class', 'scsi_generic', sg, 'device'));
  };
  const serial = Buffer.concat([Buffer.from([0x01, 0x80, 0x00, 0x0c]), Buffer.from('HU1234567890')]);
  unit('0:0:1:0', 'sg1', { type: '1\n', vendor: 'IBM     \n', model: 'ULT3580-TD8     \n', rev: 'Q3F1\n', vpd_pg80: serial }, [
    'scsi_tape/st0',
    'scsi_tape/nst0',
    'scsi_tape/nst0a',
  ]);
  unit('0:0:2:0', 'sg10', { type: '8\n', vendor: 'HP      \n', model: 'MSL G3 Series   \n', rev: 'E.00\n' }, ['scsi_changer/sch0']);
  unit('0:0:0:0', 'sg0', { type: '0\n', vendor: 'ATA     \n', model: 'disk\n' });
  // An old-style kernel: the st node appears as a "scsi_tape:nst5" entry.
  unit('1:0:0:0', 'sg5', { type: '1\n' }, ['scsi_tape:nst5', 'scsi_tape:st5']);
  // Something that is not an sg node at all.
  mkdirSync(join(sys, 'class', 'scsi_generic', 'README'), { recursive: true });
});
afterAll(() => rmSync(sys, { recursive: true, force: true }));

describe('listSgDevices', () => {
  it('reports type, identity, serial and the st / ch node of each sg device', async () => {
    expect(await listSgDevices({ sysfsRoot: sys })).toEqual([
      { name: 'sg0', path: '/dev/sg0', hctl: '0:0:0:0', kind: 'other', scsiType: 0, vendor: 'ATA', model: 'disk' },
      {
        name: 'sg1',
        path: '/dev/sg1',
        hctl: '0:0:1:0',
        kind: 'tape',
        scsiType: 1,
        vendor: 'IBM',
        model: 'ULT3580-TD8',
        rev: 'Q3F1',
        serial: 'HU1234567890',
        tapePath: '/dev/nst0',
      },
      { name: 'sg5', path: '/dev/sg5', hctl: '1:0:0:0', kind: 'tape', scsiType: 1, tapePath: '/dev/nst5' },
      { name: 'sg10', path: '/dev/sg10', hctl: '0:0:2:0', kind: 'changer', scsiType: 8, vendor: 'HP', model: 'MSL G3 Series', rev: 'E.00', changerPath: '/dev/sch0' },
    ]);
  });

  it('says plainly when the kernel has no sg layer', async () => {
    const err = await listSgDevices({ sysfsRoot: join(sys, 'nothing') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: 'ENOENT' });
    expect((err as Error).message).toContain('this kernel has no SCSI generic (sg) layer');
  });

  it.skipIf(existsSync('/sys/class/scsi_generic'))('rejects on this machine, which has no /sys/class/scsi_generic', async () => {
    await expect(listSgDevices()).rejects.toThrow(/no SCSI generic \(sg\) layer/);
  });
});
