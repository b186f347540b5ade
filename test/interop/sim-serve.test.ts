/**
 * `ptpvts sim serve` as a user runs it: a process of its own serving a library YAML over
 * iSCSI, reached by the ptpvts initiator, stopped with SIGTERM.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IscsiSession } from '../../src/iscsi/session.js';
import { IscsiPort } from '../../src/transport/iscsi/index.js';
import { MediaChanger } from '../../src/devices/media-changer.js';
import { TapeDrive } from '../../src/devices/tape-drive.js';
import { DeviceType } from '../../src/scsi/index.js';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const YAML = `
name: serve0
personality: PTPVTS-LIB
timeScale: 0
mediaDir: ./media
storageSlots: 6
drives:
  count: 1
  personality: LTO8
  serials: ["SERVEDRV01"]
cartridges:
  - barcode: S00001L8
    capacity: 8MiB
`;

interface Served {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function serve(args: string[], cwd = projectRoot): Served {
  const tsx = pathToFileURL(join(projectRoot, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs')).href;
  const child = spawn(process.execPath, ['--import', tsx, join(projectRoot, 'test', 'interop', 'fixtures', 'sim-serve-runner.ts'), 'sim', 'serve', ...args], { cwd });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function until<T>(what: string, ms: number, fn: () => T | undefined, s: Served): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end || s.child.exitCode !== null) throw new Error(`no ${what}; stdout:\n${s.stdout()}\nstderr:\n${s.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('ptpvts sim serve', () => {
  let dir: string;
  let served: Served | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-serve-'));
    writeFileSync(join(dir, 'library.yaml'), YAML);
  });
  afterAll(async () => {
    if (served && served.child.exitCode === null && served.child.signalCode === null) {
      served.child.kill('SIGKILL');
      await served.exit;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the changer on LUN 0 and the drive on LUN 1, says where, and exits 0 on SIGTERM with the port closed', async () => {
    const s = (served = serve([join(dir, 'library.yaml'), '--portal', '127.0.0.1:0']));
    const [, iqn, host, port] = await until('portal sentence', 30_000, () => /iSCSI target (\S+) on portal (\S+):(\d+)\./u.exec(s.stdout()) ?? undefined, s);
    // The LUN sentences follow the portal sentence, possibly in a later chunk of output.
    await until('LUN sentences', 10_000, () => (/LUN 1 is tape drive/u.test(s.stdout()) ? true : undefined), s);
    expect(s.stdout()).toMatch(/LUN 0 is the medium changer .* 6 storage slots, 0 import\/export slots and 1 drives\./u);
    expect(s.stdout()).toMatch(/LUN 1 is tape drive 1 \(LTO8, serial SERVEDRV01\) at element address 0x\w+\./u);

    const session = await IscsiSession.open({ host: host!, port: Number(port), initiatorName: 'iqn.2026-11.org.ptpvts:serve-test', targetName: iqn! });
    try {
      const changer = new MediaChanger(new IscsiPort(session, 0));
      const drive = new TapeDrive(new IscsiPort(session, 1));
      expect((await changer.inquiry()).deviceType).toBe(DeviceType.mediumChanger);
      const q = await drive.inquiry();
      expect(q.deviceType).toBe(DeviceType.sequentialAccess);
      expect((await drive.unitSerialNumber()).trim()).toBe('SERVEDRV01');
    } finally {
      await session.close();
    }

    s.child.kill('SIGTERM');
    const { code, signal } = await s.exit;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // stderr carries the log (JSON lines, info by default): the login and logout, no errors.
    const logs = s.stderr().trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; initiator?: string });
    expect(logs.filter((l) => l.level > 30)).toEqual([]);
    expect(logs.find((l) => l.msg === 'initiator logged in')?.initiator).toBe('iqn.2026-11.org.ptpvts:serve-test');
    expect(logs.some((l) => l.msg === 'initiator logged out')).toBe(true);
    expect(s.stdout()).toMatch(/Received SIGTERM: stopping the target and closing the library\.\nStopped\.\n$/u);
    expect(await portOpen(host!, Number(port))).toBe(false);
  });

  it('with no library file serves the lab\'s (ptpvts-lab/library.yaml, made on first use) and saves its state.json at SIGTERM', async () => {
    const cwd = join(dir, 'fresh');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(cwd);
    const s = (served = serve(['--portal', '127.0.0.1:0'], cwd));
    await until('portal sentence', 30_000, () => /Serving library lab0 as iSCSI target iqn\.2026-11\.io\.ptpvts:lab0 on portal/u.exec(s.stdout()) ?? undefined, s);
    expect(s.stderr()).toContain(`Made a default emulated library in ${join(cwd, 'ptpvts-lab', 'library.yaml')}.`);
    await until('control sentence', 10_000, () => (/sim ctl/u.test(s.stdout()) ? true : undefined), s);
    s.child.kill('SIGTERM');
    expect((await s.exit).code).toBe(0);
    expect(existsSync(join(cwd, 'ptpvts-lab', 'state.json'))).toBe(true);
    expect(existsSync(join(cwd, 'ptpvts-lab', 'lab.lock'))).toBe(false);
  });

  it('refuses a CHAP user without a secret before opening anything', async () => {
    const s = serve([join(dir, 'library.yaml'), '--portal', '127.0.0.1:0', '--chap-user', 'alice']);
    const { code } = await s.exit;
    expect(code).toBe(1);
    expect(s.stderr()).toContain('--chap-user and --chap-secret go together');
  });

  it('makes initiators log in with CHAP when --chap-user and --chap-secret are given', async () => {
    const s = (served = serve([join(dir, 'library.yaml'), '--portal', '127.0.0.1:0', '--chap-user', 'alice', '--chap-secret', 'secret-12chars']));
    const [, iqn, host, port] = await until('portal sentence', 30_000, () => /iSCSI target (\S+) on portal (\S+):(\d+)\./u.exec(s.stdout()) ?? undefined, s);
    // The CHAP sentence is a second write and may arrive after the portal sentence was read.
    await until('CHAP sentence', 30_000, () => (s.stdout().includes('Initiators must log in with CHAP as alice.') ? true : undefined), s);
    const base = { host: host!, port: Number(port), initiatorName: 'iqn.2026-11.org.ptpvts:serve-test', targetName: iqn! };
    await expect(IscsiSession.open(base)).rejects.toThrow();
    const session = await IscsiSession.open({ ...base, chap: { name: 'alice', secret: 'secret-12chars' } });
    await session.close();
    s.child.kill('SIGINT');
    expect((await s.exit).code).toBe(0);
  });
});
