/**
 * `ptpvts sim serve` as a lab: it shares the lab's state.json and lock with the CLI, serves
 * several libraries at once, is changed while it runs through `ptpvts sim ctl`, logs with
 * pino, exports Prometheus metrics, and the lab CLI reaches it with iscsi:// addresses.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { memoryOut } from '../../src/cli/output.js';
import { parseIscsiAddress } from '../../src/cli/lab.js';
import { controlSocketPath } from '../../src/cli/sim-control.js';
import { control } from '../../src/cli/sim-ctl.js';
import { logLevel, startSimServe, type SimServer } from '../../src/cli/sim-serve.js';
import { MediaChanger } from '../../src/devices/media-changer.js';
import { IscsiSession } from '../../src/iscsi/session.js';
import { IscsiPort } from '../../src/transport/iscsi/index.js';
import { testUnitReady } from '../../src/scsi/cdb.js';
import { decodeSense, describeSense } from '../../src/scsi/sense.js';

const yaml = (name: string, prefix: string): string => `
name: ${name}
personality: PTPVTS-LIB
timeScale: 0
mediaDir: ./media
storageSlots: 8
importExportSlots: 1
drives:
  count: 1
  personality: LTO8
cartridges:
  - { barcode: ${prefix}0001L8, location: slot 1, capacity: 8MiB }
  - { barcode: ${prefix}0002L8, location: slot 2, capacity: 8MiB }
`;

const silent = pino({ level: 'silent' });

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOut();
  const code = await main(['node', 'ptpvts', ...args], o);
  process.exitCode = undefined;
  return { code, out: o.lines.join('\n'), err: o.errors.join('\n') };
}

function stateOf(yamlPath: string): { locations: Record<string, number>; removed?: string[]; added?: Record<string, unknown> } {
  return JSON.parse(readFileSync(join(yamlPath, '..', 'state.json'), 'utf8')) as ReturnType<typeof stateOf>;
}

/** A session to the i-th library, its changer's power-on attention seen (unless `fresh`). */
async function session(server: SimServer, i = 0, fresh = false): Promise<IscsiSession> {
  const t = server.served[i]!.target;
  const s = await IscsiSession.open({ host: '127.0.0.1', port: t.port, targetName: t.iqn, initiatorName: 'iqn.2026-11.io.ptpvts:lab-test' });
  if (!fresh) await new MediaChanger(new IscsiPort(s, 0)).requestSense();
  return s;
}

/** The sense a TEST UNIT READY to the changer gets now (undefined for GOOD). */
async function tur(s: IscsiSession): Promise<string | undefined> {
  const r = await new IscsiPort(s, 0).execute({ ...testUnitReady(), timeoutMs: 10_000 });
  return r.sense && r.sense.length ? describeSense(decodeSense(r.sense)) : undefined;
}

describe('sim serve as a lab', () => {
  let dir: string;
  let lib: string;
  let server: SimServer | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-serve-lab-'));
    mkdirSync(join(dir, 'a'));
    lib = join(dir, 'a', 'library.yaml');
    writeFileSync(lib, yaml('laba', 'AAA'));
  });
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts from the CLI’s state.json, saves moves made by initiators, and keeps other lab commands out while it runs', async () => {
    expect((await cli('move', 'slot 1', 'slot 5', '-l', lib)).code).toBe(0);
    server = await startSimServe({ libraryPath: lib, portal: '127.0.0.1:0', logger: silent, saveIntervalMs: 50, out: memoryOut() });
    const s = await session(server);
    try {
      const changer = new MediaChanger(new IscsiPort(s, 0));
      expect((await changer.findByBarcode('AAA0001L8'))?.address).toBe(0x1004);
      await changer.move(0x1004, 0x1006);
    } finally {
      await s.close();
    }
    // Saved while serving (a crash of the server would not lose it)...
    await expect.poll(() => stateOf(lib).locations['AAA0001L8'], { timeout: 5000 }).toBe(0x1006);
    // ...and the lab is the server's: a lab command fails at once, naming it and the way in.
    const t0 = Date.now();
    const busy = await cli('inventory', '-l', lib, '--lock-timeout', '20');
    expect(busy.code).toBe(1);
    expect(busy.err).toMatch(/sim serve.*sim ctl/su);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await server.stop();
    server = undefined;
    const after = await cli('inventory', '-l', lib);
    expect(after.out).toMatch(/0x1006\s+AAA0001L8/u);
  });

  it('serves several libraries, one target with its own IQN each, and refuses two in one directory', async () => {
    mkdirSync(join(dir, 'b'));
    const lib2 = join(dir, 'b', 'library.yaml');
    writeFileSync(lib2, yaml('labb', 'BBB'));
    server = await startSimServe({ libraryPaths: [lib, lib2], portal: '127.0.0.1:0', logger: silent, out: memoryOut() });
    const [a, b] = server.served;
    expect(a!.target.iqn).not.toBe(b!.target.iqn);
    for (const [i, barcode] of [[0, 'AAA0001L8'], [1, 'BBB0001L8']] as const) {
      const s = await session(server, i);
      try {
        const changer = new MediaChanger(new IscsiPort(s, 0));
        expect((await changer.findByBarcode(barcode))?.address).toBe(0x1000);
      } finally {
        await s.close();
      }
    }
    await server.stop();
    server = undefined;
    writeFileSync(join(dir, 'a', 'other.yaml'), yaml('labc', 'CCC'));
    await expect(startSimServe({ libraryPaths: [lib, join(dir, 'a', 'other.yaml')], portal: '127.0.0.1:0', logger: silent, out: memoryOut() })).rejects.toThrow(/same directory/u);
  });

  it('sim ctl: status, insert and eject through the import/export slot with unit attentions, add-cartridge, faults, reload; all kept in state.json', async () => {
    server = await startSimServe({ libraryPath: lib, portal: '127.0.0.1:0', logger: silent, out: memoryOut() });
    const sock = controlSocketPath(lib);
    const s = await session(server);
    try {
      expect(await tur(s)).toBeUndefined();

      const st = await cli('sim', 'ctl', '-l', lib, 'status', '--json');
      expect(st.code, st.err).toBe(0);
      const status = JSON.parse(st.out) as { library: string; sessions: number; elements: { barcode: string }[] };
      expect(status.library).toBe('laba');
      expect(status.sessions).toBe(1);
      expect(status.elements.map((e) => e.barcode).sort()).toEqual(['AAA0001L8', 'AAA0002L8']);

      const ins = await cli('sim', 'ctl', '-l', lib, 'insert', 'NEW001L8', '--capacity', '8MiB');
      expect(ins.out, ins.err).toMatch(/Inserted NEW001L8 into the import\/export slot/u);
      expect(await tur(s)).toBe('UNIT ATTENTION / IMPORT OR EXPORT ELEMENT ACCESSED');
      const changer = new MediaChanger(new IscsiPort(s, 0));
      const inv = await changer.inventory();
      expect(inv.importExport[0]?.full && inv.importExport[0].primaryVolumeTag?.identifier).toBe('NEW001L8');

      // The import/export slot is full (NEW001L8): eject refuses, naming why.
      const full = await cli('sim', 'ctl', '-l', lib, 'eject', 'AAA0002L8');
      expect(full.code).toBe(1);
      expect(full.err).toMatch(/no empty import\/export slot to eject AAA0002L8/u);
      expect(await changer.findByBarcode('AAA0002L8')).toBeDefined();
      await changer.move(inv.importExport[0]!.address, 0x1007);
      const ej = await cli('sim', 'ctl', '-l', lib, 'eject', 'AAA0002L8');
      expect(ej.out, ej.err).toMatch(/Ejected AAA0002L8 from 0x1001 through the import\/export slot/u);
      expect(await tur(s)).toBe('UNIT ATTENTION / IMPORT OR EXPORT ELEMENT ACCESSED');
      expect(await changer.findByBarcode('AAA0002L8')).toBeUndefined();

      await expect(control(sock, { op: 'add-cartridge', barcode: 'ADD001L8', slot: 4, capacityBytes: 8 << 20 })).resolves.toMatchObject({ address: 0x1003 });
      // the library door was opened and closed: the changer rescanned
      expect(await tur(s)).toBe('UNIT ATTENTION / NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED');
      expect((await changer.findByBarcode('ADD001L8'))?.address).toBe(0x1003);

      expect((await cli('sim', 'ctl', '-l', lib, 'fault', 'inject', '-k', 'robot-jam')).code).toBe(0);
      await expect(changer.move(0x1003, 0x1005)).rejects.toThrow(/HARDWARE ERROR/u);
      expect((await cli('sim', 'ctl', '-l', lib, 'fault', 'clear')).code).toBe(0);

      appendFileSync(lib, '  - { barcode: YML001L8, location: slot 6, capacity: 8MiB }\n');
      const rl = await cli('sim', 'ctl', '-l', lib, 'reload');
      expect(rl.out, rl.err).toMatch(/Added YML001L8 in 0x1005/u);
      expect(await tur(s)).toBe('UNIT ATTENTION / NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED');
      expect((await changer.findByBarcode('YML001L8'))?.address).toBe(0x1005);

      const bad = await cli('sim', 'ctl', '-l', lib, 'eject', 'NOPE01L8');
      expect(bad.code).toBe(1);
      expect(bad.err).toMatch(/NOPE01L8 is not in library laba/u);
    } finally {
      await s.close();
    }
    await server.stop();
    server = undefined;
    // The lab's next command sees what was done while serving.
    const inv = await cli('inventory', '-l', lib);
    expect(inv.code, inv.err).toBe(0);
    expect(inv.out).toMatch(/NEW001L8/u);
    expect(inv.out).toMatch(/ADD001L8/u);
    expect(inv.out).toMatch(/YML001L8/u);
    expect(inv.out).not.toMatch(/AAA0002L8/u);
    expect(stateOf(lib).removed).toEqual(['AAA0002L8']);
  });

  it('sim ctl with no server says so', async () => {
    const r = await cli('sim', 'ctl', '-l', lib, 'status');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no ptpvts sim serve is serving this lab/u);
  });

  it('logs logins and logouts at info, and at trace every command by name with status, sense and initiator', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    server = await startSimServe({ libraryPath: lib, portal: '127.0.0.1:0', logger: pino({ level: 'trace' }, sink), out: memoryOut() });
    const s = await session(server, 0, true);
    await tur(s);
    await new MediaChanger(new IscsiPort(s, 0)).inquiry();
    await s.close();
    await expect.poll(() => lines.some((l) => l['msg'] === 'initiator logged out')).toBe(true);
    const login = lines.find((l) => l['msg'] === 'initiator logged in');
    expect(login).toMatchObject({ level: 30, initiator: 'iqn.2026-11.io.ptpvts:lab-test', library: 'laba' });
    const commands = lines.filter((l) => l['msg'] === 'command');
    expect(commands[0]).toMatchObject({ level: 10, initiator: expect.stringContaining('iqn.2026-11.io.ptpvts:lab-test'), opcode: 'TEST UNIT READY', status: 'CHECK CONDITION', sense: expect.stringMatching(/^UNIT ATTENTION \//u) });
    expect(commands.some((c) => c['opcode'] === 'INQUIRY' && c['status'] === 'GOOD')).toBe(true);
  });

  it('--log-level and PTPVTS_LOG_LEVEL choose the level, and a bad one is named', () => {
    expect(logLevel(undefined, {})).toBe('info');
    expect(logLevel(undefined, { PTPVTS_LOG_LEVEL: 'trace' })).toBe('trace');
    expect(logLevel('warn', { PTPVTS_LOG_LEVEL: 'trace' })).toBe('warn');
    expect(() => logLevel('loud', {})).toThrow(/--log-level must be one of .*got "loud"/u);
    expect(() => logLevel(undefined, { PTPVTS_LOG_LEVEL: 'loud' })).toThrow(/PTPVTS_LOG_LEVEL/u);
  });

  it('serves Prometheus metrics: commands by opcode and status, bytes, latency, sessions, drive states', async () => {
    server = await startSimServe({ libraryPath: lib, portal: '127.0.0.1:0', logger: silent, metrics: '127.0.0.1:0', out: memoryOut() });
    const scrape = async (): Promise<string> => {
      const r = await fetch(server!.metricsUrl!);
      expect(r.status).toBe(200);
      return r.text();
    };
    const s = await session(server);
    const changer = new MediaChanger(new IscsiPort(s, 0));
    await changer.inquiry();
    await changer.move(0x1000, server.library.drives[0]!.address);
    let text = await scrape();
    expect(text).toMatch(/ptpvts_sim_commands_total\{library="laba",opcode="INQUIRY",status="GOOD"\} [1-9]/u);
    expect(text).toMatch(/ptpvts_sim_commands_total\{library="laba",opcode="MOVE MEDIUM",status="GOOD"\} 1/u);
    expect(text).toMatch(/ptpvts_sim_read_bytes_total\{library="laba"\} [1-9]/u);
    expect(text).toMatch(/ptpvts_sim_command_duration_seconds_count\{library="laba",opcode="INQUIRY"\} [1-9]/u);
    expect(text).toMatch(/ptpvts_sim_sessions\{library="laba"\} 1/u);
    expect(text).toMatch(/ptpvts_sim_drive_state\{library="laba",drive="1",state="loaded"\} 1/u);
    await s.close();
    // A session that logged out is no longer counted.
    await expect.poll(async () => /ptpvts_sim_sessions\{library="laba"\} 0/u.test(await scrape()), { timeout: 5000 }).toBe(true);
    text = await scrape();
    expect(text).toMatch(/ptpvts_sim_logins_total\{library="laba"\} 1/u);
    expect((await fetch(server.metricsUrl!.replace('/metrics', '/other'))).status).toBe(404);
  });

  it('the lab CLI drives a served library with --changer and --drive iscsi://', async () => {
    server = await startSimServe({ libraryPath: lib, portal: '127.0.0.1:0', logger: silent, out: memoryOut() });
    const t = server.target;
    const base = `iscsi://127.0.0.1:${t.port}/${t.iqn}`;
    const inv = await cli('inventory', '--changer', `${base}/0`, '--drive', `${base}/1`);
    expect(inv.code, inv.err).toBe(0);
    expect(inv.out).toMatch(/0x1000\s+AAA0001L8/u);
    const load = await cli('load', 'AAA0002L8', '--changer', `${base}/0`, '--drive', `${base}/1`);
    expect(load.code, load.err).toBe(0);
    const st = await cli('tape', 'status', '--changer', `${base}/0`, '--drive', `${base}/1`);
    expect(st.out, st.err).toMatch(/AAA0002L8|loaded|ready/iu);
    const bad = await cli('inventory', '--changer', 'iscsi://127.0.0.1/no-lun');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/device address "iscsi:\/\/127.0.0.1\/no-lun": expected iscsi:\/\/host:port\/iqn\/lun/u);
  });

  it('parses iscsi:// addresses', () => {
    expect(parseIscsiAddress('iscsi://127.0.0.1:3261/iqn.2026-11.io.ptpvts:lab0/1')).toEqual({ host: '127.0.0.1', port: 3261, iqn: 'iqn.2026-11.io.ptpvts:lab0', lun: 1 });
    expect(parseIscsiAddress('iscsi://[::1]/iqn.x:y/0')).toEqual({ host: '::1', port: 3260, iqn: 'iqn.x:y', lun: 0 });
    expect(() => parseIscsiAddress('iscsi://h:70000/iqn.x/0')).toThrow(/port 70000/u);
  });
});
