/**
 * The SG_IO binding against the real kernel. This machine class (CI, containers) has no
 * SCSI devices, so these check how opening fails; a real unit is exercised only where
 * TEST_SG_DEVICE names one (shown as skipped otherwise).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SgioPort } from './sgio-port.js';
import { TransportError } from '../scsi-port.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-sg-'));
  chmodSync(dir, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function openError(path: string): Promise<TransportError> {
  const err = await SgioPort.open(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TransportError);
  return err as TransportError;
}

describe('SgioPort.open on this machine', () => {
  it('rejects a missing path with ENOENT from open()', async () => {
    const err = await openError(join(dir, 'sg99'));
    expect(err).toMatchObject({ code: 'ENOENT', errno: 2, syscall: 'open' });
    expect(err.cause).toBeInstanceOf(Error);
    expect((err.cause as { code?: string }).code).toBe('ENOENT');
  });

  it('rejects a regular file with ENOTTY (it does not answer SG_GET_VERSION_NUM)', async () => {
    const f = join(dir, 'plain');
    writeFileSync(f, 'not a device');
    expect(await openError(f)).toMatchObject({ code: 'ENOTTY', errno: 25, syscall: 'ioctl' });
  });

  it('rejects /dev/null with ENOTTY', async () => {
    expect(await openError('/dev/null')).toMatchObject({ code: 'ENOTTY', syscall: 'ioctl' });
  });

  it('rejects an empty path with EINVAL', async () => {
    expect(await openError('')).toMatchObject({ code: 'EINVAL' });
  });

  // Root ignores file modes, so the open runs in a child dropped to nobody via setpriv.
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  const isRoot = process.getuid?.() === 0;
  it.skipIf(isRoot && setpriv === undefined)('rejects an unreadable node with EACCES (as an unprivileged user)', () => {
    const f = join(dir, 'locked');
    writeFileSync(f, '');
    chmodSync(f, 0);
    const addon = process.env['PTPVTS_NATIVE'] ?? join(process.cwd(), 'build', 'Release', 'ptpvts.node');
    const script = `require(${JSON.stringify(addon)}).sgOpen(${JSON.stringify(f)}).then(() => console.log('opened'), (e) => console.log(JSON.stringify({ code: e.code, errno: e.errno, syscall: e.syscall })))`;
    const argv = isRoot ? [setpriv!, '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script] : [process.execPath, '-e', script];
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ code: 'EACCES', errno: 13, syscall: 'open' });
  });
});

const device = process.env['TEST_SG_DEVICE'];
describe.skipIf(device === undefined)('SgioPort on TEST_SG_DEVICE', () => {
  it('answers INQUIRY with GOOD status and standard data', async () => {
    const p = await SgioPort.open(device!);
    try {
      const r = await p.execute({ cdb: Uint8Array.of(0x12, 0, 0, 0, 96, 0), direction: 'in', dataInLength: 96, timeoutMs: 10_000 });
      expect(r.status).toBe(0);
      expect(r.data.length).toBeGreaterThanOrEqual(36);
    } finally {
      await p.close();
    }
  });
});
