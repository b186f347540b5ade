/**
 * The robot console of an emulated library, driven by the serial robot client over an
 * in-memory line, over a real pseudo-terminal, and over serialport's mock binding.
 */
import { Duplex } from 'node:stream';
import { SerialPortMock } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../../src/scsi/cdb.js';
import { SerialRobot, SerialRobotError, withChecksum } from '../../../src/transport/serial-robot/index.js';
import { MemoryPort } from '../memory-port.js';
import { makeLibrary } from '../../library/test-kit.js';
import { RobotConsole, serveSerialConsole } from './index.js';

const TRANSPORT = 1;
const IE = 16;
const DRIVE0 = 256;
const DRIVE1 = 257;
const SLOT = (n: number): number => 4095 + n;

/** Two connected in-memory streams, like the two ends of a null-modem cable. */
function linePair(): [Duplex, Duplex] {
  const ends: { a?: Duplex; b?: Duplex } = {};
  const make = (peer: () => Duplex | undefined): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer()?.push(chunk);
        cb();
      },
      final(cb) {
        peer()?.push(null);
        cb();
      },
    });
  const a = make(() => ends.b);
  const b = make(() => ends.a);
  ends.a = a;
  ends.b = b;
  return [a, b];
}

/** Raw view of the console for tests that type at it directly. */
function rawLine(stream: Duplex): { send(s: string): void; next(pred: (l: string) => boolean, ms?: number): Promise<string>; lines: string[] } {
  const lines: string[] = [];
  let buf = '';
  const waiters: Array<() => void> = [];
  stream.on('data', (c: Buffer) => {
    buf += c.toString('latin1');
    const parts = buf.split(/\r\n/u);
    buf = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  return {
    lines,
    send: (s) => stream.write(s),
    next: async (pred, ms = 2000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = lines.findIndex(pred);
        if (i >= 0) return lines.splice(i, 1)[0] as string;
        if (Date.now() > deadline) throw new Error(`no line matched; saw ${JSON.stringify(lines)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 20);
        });
      }
    },
  };
}

async function setup(input = {}): Promise<{ robot: SerialRobot; console: RobotConsole; lib: Awaited<ReturnType<typeof makeLibrary>>['lib']; far: Duplex; near: Duplex }> {
  const { lib } = await makeLibrary(input);
  const [near, far] = linePair();
  const console = new RobotConsole(lib, far);
  const robot = new SerialRobot(near, { commandTimeoutMs: 2000, motionTimeoutMs: 5000 });
  return { robot, console, lib, far, near };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('serial robot console over an in-memory line', () => {
  it('answers PING, STATUS and INV with the library\'s real state', async () => {
    const { robot } = await setup();
    expect(await robot.ping()).toBe('tlib');
    expect(await robot.status()).toEqual({ ready: true, robotBusy: false, doorOpen: false });
    const inv = await robot.inventory();
    expect(inv.transports.map((e) => e.address)).toEqual([TRANSPORT]);
    expect(inv.importExport.map((e) => e.address)).toEqual([IE, IE + 1]);
    expect(inv.dataTransfer.map((e) => [e.address, e.full, e.primaryVolumeTag?.identifier])).toEqual([
      [DRIVE0, true, 'A00004L8'],
      [DRIVE1, false, undefined],
    ]);
    expect(inv.storage.filter((e) => e.full).map((e) => e.primaryVolumeTag?.identifier)).toEqual(['A00001L8', 'A00002L8', 'W00003LY']);
    expect((await robot.findByBarcode('W00003LY'))?.address).toBe(SLOT(3));
  });

  it('moves and exchanges through the changer, exactly as MOVE MEDIUM does', async () => {
    const { robot, lib } = await setup();
    await robot.move(SLOT(1), DRIVE1);
    expect(lib.model.occupant(DRIVE1)?.cartridge.barcode).toBe('A00001L8');
    await robot.exchange(SLOT(2), SLOT(3), SLOT(2));
    expect(lib.model.occupant(SLOT(2))?.cartridge.barcode).toBe('W00003LY');
    expect(lib.model.occupant(SLOT(3))?.cartridge.barcode).toBe('A00002L8');
    const inv = await robot.inventory();
    expect(inv.dataTransfer.find((e) => e.address === DRIVE1)?.sourceAddress).toBe(SLOT(1));
  });

  it.each([
    ['SOURCE_EMPTY', 21, (r: SerialRobot) => r.move(SLOT(5), SLOT(6))],
    ['DESTINATION_FULL', 22, (r: SerialRobot) => r.move(SLOT(1), SLOT(2))],
    ['INVALID_ADDRESS', 20, (r: SerialRobot) => r.move(SLOT(1), 9999)],
    ['INVALID_ADDRESS', 20, (r: SerialRobot) => r.exchange(SLOT(1), SLOT(1), SLOT(2))],
  ] as const)('fails with %s (%i) and moves nothing', async (code, num, act) => {
    const { robot, lib } = await setup();
    const before = JSON.stringify(lib.inventory());
    const e = await act(robot).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SerialRobotError);
    expect(e).toMatchObject({ name: 'SerialRobotError', code, robotCode: num });
    expect(JSON.stringify(lib.inventory())).toBe(before);
  });

  it('reports a robot jam, and the next move works', async () => {
    const { robot, lib } = await setup();
    lib.faults.jamNextMoves(1);
    await expect(robot.move(SLOT(1), SLOT(5))).rejects.toMatchObject({ code: 'ROBOT_JAM', robotCode: 40 });
    expect(lib.model.occupant(SLOT(1))).toBeDefined();
    await robot.move(SLOT(1), SLOT(5));
    expect(lib.model.occupant(SLOT(5))?.cartridge.barcode).toBe('A00001L8');
  });

  it('opens and closes the door; a locked door says DOOR_LOCKED; moves into an open station say DOOR_OPEN', async () => {
    const { robot, lib } = await setup();
    const host = new MemoryPort(lib.changer);
    await host.execute(Cdb.testUnitReady());
    expect((await host.execute(Cdb.preventAllowMediumRemoval(true))).status).toBe(0);
    await expect(robot.door('open')).rejects.toMatchObject({ code: 'DOOR_LOCKED', robotCode: 30 });
    await host.execute(Cdb.preventAllowMediumRemoval(false));
    await robot.door('open');
    expect((await robot.status()).doorOpen).toBe(true);
    await expect(robot.move(SLOT(1), IE)).rejects.toMatchObject({ code: 'DOOR_OPEN' });
    await robot.door('close');
    // Closing raised a unit attention for the console's own initiator; it absorbs it.
    await robot.move(SLOT(1), IE);
    expect((await robot.status()).doorOpen).toBe(false);
    expect(lib.model.occupant(IE)?.cartridge.barcode).toBe('A00001L8');
  });

  it('answers BUSY to a second motion and STATUS at once while the robot moves', async () => {
    const { robot, lib } = await setup();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const off = lib.onMove(() => held);
    const moving = robot.move(SLOT(1), SLOT(4));
    await new Promise((r) => setTimeout(r, 20));
    expect(await robot.status()).toMatchObject({ robotBusy: true });
    await expect(robot.move(SLOT(2), SLOT(5))).rejects.toMatchObject({ code: 'BUSY', robotCode: 41 });
    release();
    await moving;
    off();
    expect(lib.model.occupant(SLOT(4))?.cartridge.barcode).toBe('A00001L8');
    expect(lib.model.occupant(SLOT(5))).toBeUndefined();
  });

  it('refuses garbage, truncated, over-long and unknown lines with clear errors and leaves the robot as it was', async () => {
    const { lib } = await makeLibrary();
    const [near2, far2] = linePair();
    const c2 = new RobotConsole(lib, far2);
    const raw = rawLine(near2);
    const before = JSON.stringify(lib.inventory());
    raw.send('\x00\xff\x13garbage\r\n');
    expect(await raw.next((l) => l.startsWith('0 ERR 10 SYNTAX'))).toMatch(/printable ASCII/u);
    raw.send('MOVE 4096 4099\r\n');
    expect(await raw.next((l) => l.startsWith('0 ERR 10 SYNTAX'))).toMatch(/tag/u);
    raw.send('7 MOVE 4096\n');
    expect(await raw.next((l) => l.startsWith('7 ERR 10 SYNTAX'))).toMatch(/2 argument/u);
    raw.send('8 FLY 1 2\r');
    expect(await raw.next((l) => l.startsWith('8 ERR 11 UNKNOWN_COMMAND'))).toBeTruthy();
    raw.send(`9 MOVE 4096 4099 ${'x'.repeat(200)}\r\n`);
    expect(await raw.next((l) => l.startsWith('9 ERR 12 LINE_TOO_LONG'))).toBeTruthy();
    raw.send('10 MOVE 4096 4099*00\r\n');
    expect(await raw.next((l) => l.startsWith('0 ERR 13 CHECKSUM'))).toBeTruthy();
    raw.send('11 MOVE 4096 0x1003 4\r\n');
    expect(await raw.next((l) => l.startsWith('11 ERR 10 SYNTAX'))).toBeTruthy();
    raw.send('12 MOVE 4096 70000\r\n');
    expect(await raw.next((l) => l.startsWith('12 ERR 10 SYNTAX'))).toBeTruthy();
    raw.send('13 MOVE 4096 ');
    raw.send('\r\n');
    expect(await raw.next((l) => l.startsWith('13 ERR 10 SYNTAX'))).toBeTruthy();
    expect(JSON.stringify(lib.inventory())).toBe(before);
    expect(c2.stats.executed).toBe(0);
    // Still in a known state: STATUS and INV tell the truth, and a typed command works (no checksum needed).
    raw.send('20 status\r\n');
    expect(await raw.next((l) => l.startsWith('20 OK'))).toMatch(/^20 OK READY=YES ROBOT=IDLE DOOR=CLOSED\*[0-9A-F]{2}$/u);
    raw.send('21 INV\r\n');
    expect(await raw.next((l) => l.startsWith('21 OK'))).toMatch(/^21 OK 11\*/u);
    expect(raw.lines.filter((l) => l.startsWith('21 DATA')).join('\n')).toContain('4096 SLOT FULL A00001L8');
    raw.send('22 MOVE 0x1000 4099\r\n');
    expect(await raw.next((l) => l.startsWith('22 '))).toMatch(/^22 OK MOVED 4096 4099/u);
    c2.stop();
  });

  it('the client ignores line noise and stray replies and still matches answers to requests', async () => {
    const { robot, far } = await setup();
    far.write('\x07\x00noise\r\n');
    far.write('5 OK forged*00\r\n');
    far.write(`${withChecksum('999 OK stray')}\r\n`);
    far.write(`${'z'.repeat(300)}\r\n`);
    expect(await robot.ping()).toBe('tlib');
    expect(robot.stats.garbage).toBe(3);
    expect(robot.stats.stray).toBe(1);
    expect((await robot.inventoryLines()).length).toBe(11);
  });

  it('a cable pulled mid-command rejects the pending commands and every later one with ECONNRESET', async () => {
    const { robot, lib, near, console } = await setup();
    let release!: () => void;
    lib.onMove(() => new Promise<void>((r) => (release = r)));
    const moving = robot.move(SLOT(1), SLOT(4));
    const status = robot.status();
    await status;
    await new Promise((r) => setTimeout(r, 10));
    near.destroy();
    await expect(moving).rejects.toMatchObject({ code: 'ECONNRESET', message: expect.stringMatching(/unknown effect/u) });
    await expect(robot.ping()).rejects.toMatchObject({ code: 'ECONNRESET' });
    release();
    await new Promise((r) => setTimeout(r, 10));
    // The motion finished in the library; the state is known there.
    expect(lib.model.occupant(SLOT(4))?.cartridge.barcode).toBe('A00001L8');
    expect(console.robotBusy).toBe(false);
  });

  it('times out and cancels, counting the late answer as stray', async () => {
    const { robot, lib } = await setup();
    let release!: () => void;
    lib.onMove(() => new Promise<void>((r) => (release = r)));
    await expect(robot.move(SLOT(1), SLOT(4), { timeoutMs: 30 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    release();
    await expect.poll(() => robot.stats.stray).toBe(1);
    const ac = new AbortController();
    const p = robot.move(SLOT(2), SLOT(5), { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'ECANCELED' });
    await new Promise((r) => setTimeout(r, 10));
    release();
    await robot.close();
    await expect(robot.ping()).rejects.toMatchObject({ code: 'ECLOSED' });
  });
});

let ptyAvailable = true;
try {
  const { openPty } = await import('../../../src/transport/pty/index.js');
  const p = openPty();
  await p.close();
} catch {
  ptyAvailable = false;
}

describe.skipIf(!ptyAvailable)('serial robot console on a real pseudo-terminal (needs the native openpty)', () => {
  it('serves a library on a tty path that SerialRobot.open drives', async () => {
    const { lib } = await makeLibrary();
    const served = serveSerialConsole(lib);
    cleanups.push(() => served.stop());
    expect(served.ttyPath).toMatch(/^\/dev\/pts\/\d+$/u);
    const robot = await SerialRobot.open(served.ttyPath, { commandTimeoutMs: 3000 });
    cleanups.push(() => robot.close());
    expect((await robot.inventoryLines()).length).toBe(11);
    await robot.move(SLOT(1), DRIVE1);
    expect(lib.model.occupant(DRIVE1)?.cartridge.barcode).toBe('A00001L8');
    await expect(robot.move(SLOT(1), DRIVE1)).rejects.toMatchObject({ code: 'SOURCE_EMPTY' });
    expect(await robot.status()).toMatchObject({ ready: true });
  });

  it('survives a client that writes garbage, closes and reopens; stop() ends the line for clients', async () => {
    const { lib } = await makeLibrary();
    const served = serveSerialConsole(lib);
    cleanups.push(() => served.stop());
    const first = await SerialRobot.open(served.ttyPath, { commandTimeoutMs: 3000 });
    (first as unknown as { stream: Duplex }).stream.write('\x01\x02 junk with no end');
    await first.close();
    const second = await SerialRobot.open(served.ttyPath, { commandTimeoutMs: 3000 });
    cleanups.push(() => second.close());
    expect(await second.ping()).toBe('tlib');
    let release!: () => void;
    lib.onMove(() => new Promise<void>((r) => (release = r)));
    const moving = second.move(SLOT(1), SLOT(4));
    await new Promise((r) => setTimeout(r, 30));
    await served.stop();
    release();
    await expect(moving).rejects.toBeInstanceOf(SerialRobotError);
    await expect(moving).rejects.toMatchObject({ code: expect.stringMatching(/ECONNRESET|ETIMEDOUT/u) });
  });
});

describe('serial robot console behind serialport\'s mock binding', () => {
  it('drives the console through a SerialPortMock, noise included', async () => {
    const { lib } = await makeLibrary();
    SerialPortMock.binding.createPort('/dev/ROBOT0', { echo: false, record: false });
    cleanups.push(() => SerialPortMock.binding.reset());
    const port = new SerialPortMock({ path: '/dev/ROBOT0', baudRate: 9600, autoOpen: false });
    await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
    // The robot's side of the wire: what the client writes goes to the console, what the console writes is emitted as received data.
    const [consoleSide, wire] = linePair();
    const binding = port.port as unknown as { write(b: Buffer): Promise<void>; emitData(d: Buffer | string): void };
    const origWrite = binding.write.bind(binding);
    binding.write = async (b: Buffer) => {
      await origWrite(b);
      wire.write(b);
    };
    wire.on('data', (d: Buffer) => binding.emitData(d));
    const console = new RobotConsole(lib, consoleSide);
    const robot = new SerialRobot(port, { commandTimeoutMs: 2000 }, 'serial:/dev/ROBOT0');
    expect(await robot.handshake()).toBe('tlib');
    binding.emitData('##line noise##\r\n');
    await robot.move(SLOT(2), SLOT(6));
    expect(lib.model.occupant(SLOT(6))?.cartridge.barcode).toBe('A00002L8');
    expect(robot.stats.garbage).toBe(1);
    await expect(robot.move(SLOT(2), SLOT(6))).rejects.toMatchObject({ code: 'SOURCE_EMPTY' });
    // Cable pulled: the port's reads fail; serialport reports a disconnect.
    const pending = robot.inventoryLines({ timeoutMs: 5000 });
    wire.removeAllListeners('data');
    port.destroy(Object.assign(new Error('EIO: cable pulled'), { disconnected: true }));
    await expect(pending).rejects.toMatchObject({ code: 'ECONNRESET' });
    console.stop();
  });
});

const hwPort = process.env['TEST_SERIAL_PORT'];

describe.skipIf(!hwPort)('serial robot on real hardware (needs TEST_SERIAL_PORT=/dev/ttyXXX)', () => {
  it('answers PING, STATUS and INV', async () => {
    const robot = await SerialRobot.open(hwPort as string, { baudRate: Number(process.env['TEST_SERIAL_BAUD'] ?? 9600), commandTimeoutMs: 10_000 });
    try {
      expect(typeof (await robot.ping())).toBe('string');
      expect(await robot.status()).toHaveProperty('ready');
      expect((await robot.inventory()).all.length).toBeGreaterThan(0);
    } finally {
      await robot.close();
    }
  });
});
