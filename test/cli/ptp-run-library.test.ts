/**
 * `ptpvts ptp run` as hosts meet it: the whole system in one process serves each VTC's
 * virtual library on its portal (here the topology's `library` addresses on free ports),
 * prints portal and IQN, seeds the shared catalogue with ten scratch volumes, and stops
 * everything on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { afterEach, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { IscsiSession } from '../../src/iscsi/session.js';
import { IscsiPort } from '../../src/transport/iscsi/iscsi-port.js';
import { VolumeCatalogue } from '../../src/vtc/host-library/catalogue.js';
import { freePort, writeTestTopology } from './fixtures/ptp-system.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsx = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const runner = join(root, 'test', 'cli', 'fixtures', 'ptpvts-runner.ts');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('ptp run serves a virtual library per VTC (changer LUN 0, tape drives LUN 1-2), ten scratch volumes, and stops on SIGTERM', async () => {
  const { dir, file } = await writeTestTopology('run-lib');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const doc = parse(readFileSync(file, 'utf8')) as { vtcs: { library?: string }[] };
  for (const v of doc.vtcs) v.library = `127.0.0.1:${await freePort()}`;
  writeFileSync(file, stringify(doc));

  const child = spawn(process.execPath, ['--import', tsx, runner, 'ptp', 'run', '-t', file, '--log-level', 'warn'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  cleanups.push(() => child.kill('SIGKILL'));

  const deadline = Date.now() + 45_000;
  while (!/Volume catalogue: /.test(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`ptp run did not come up:\n${out}\n${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const portals = [...out.matchAll(/VTC (\S+)'s virtual library: portal ([\d.]+):(\d+), target (\S+) /g)].map((m) => ({ vtc: m[1]!, host: m[2]!, port: Number(m[3]), iqn: m[4]! }));
  expect(portals.map((p) => p.vtc)).toEqual(['vtc1', 'vtc2']);
  expect(portals.map((p) => `${p.host}:${p.port}`)).toEqual(doc.vtcs.map((v) => v.library));

  const cat = new VolumeCatalogue(join(dir, 'catalogue.json'));
  expect((await cat.list()).filter((e) => e.category === 'scratch')).toHaveLength(10);

  for (const p of portals) {
    const s = await IscsiSession.open({ host: p.host, port: p.port, initiatorName: 'iqn.2026-11.io.ptpvts:run-test', targetName: p.iqn });
    try {
      const types: number[] = [];
      for (const lun of [0, 1, 2]) {
        const r = await new IscsiPort(s, lun).execute({ cdb: Cdb.inquiry({ allocationLength: 96 }).cdb, direction: 'in', dataInLength: 96 });
        expect(r.status).toBe(ScsiStatus.GOOD);
        types.push(r.data[0]! & 0x1f);
      }
      // SMC medium changer, then two SSC sequential-access drives.
      expect(types).toEqual([0x08, 0x01, 0x01]);
    } finally {
      await s.close();
    }
  }

  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(out).toMatch(/PtP system run-lib stopped\./);
}, 90_000);
