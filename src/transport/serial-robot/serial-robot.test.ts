/**
 * The serial robot client against a scripted robot on an in-memory line (the emulated
 * console's own suite, over a pseudo-terminal and serialport's mock binding, is in
 * firmware-sim/front/serial-console), and against real hardware where TEST_SERIAL_PORT
 * names a port.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatData, formatErr, formatOk, parseRequest } from './protocol.js';
import { SerialRobot, SerialRobotError } from './serial-robot.js';

/** A robot that answers each request line with what `answer` returns. */
function scripted(answer: (tag: string, verb: string) => string[]): { robot: SerialRobot; line: Duplex } {
  const ends: { client?: Duplex } = {};
  const robotEnd = new Duplex({
    read() {},
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString('latin1').split(/\r\n/u).filter(Boolean)) {
        const r = parseRequest(l);
        if ('request' in r) for (const out of answer(r.request.tag, r.request.verb)) ends.client?.push(`${out}\r\n`);
      }
      cb();
    },
  });
  const client = new Duplex({
    read() {},
    write(chunk: Buffer, _e, cb) {
      robotEnd.write(chunk);
      cb();
    },
  });
  ends.client = client;
  return { robot: new SerialRobot(client, { commandTimeoutMs: 500 }), line: client };
}

describe('SerialRobot', () => {
  it('collects DATA lines up to the OK and maps them to MediaChanger shapes', async () => {
    const { robot } = scripted((tag) => [formatData(tag, '1 TRANSPORT EMPTY'), formatData(tag, '4096 SLOT FULL ABC123L8 SRC=16'), formatData(tag, '16 IE EMPTY NOACCESS'), formatOk(tag, '3')]);
    const inv = await robot.inventory();
    expect(inv.storage[0]).toMatchObject({ type: 2, address: 4096, full: true, primaryVolumeTag: { identifier: 'ABC123L8' }, sourceAddress: 16 });
    expect(inv.importExport[0]).toMatchObject({ access: false });
    expect(inv.transports).toHaveLength(1);
  });

  it('an INV whose count disagrees with its lines is EPROTO', async () => {
    const { robot } = scripted((tag) => [formatData(tag, '1 TRANSPORT EMPTY'), formatOk(tag, '2')]);
    await expect(robot.inventory()).rejects.toMatchObject({ code: 'EPROTO' });
  });

  it('turns ERR replies into SerialRobotError with the robot\'s code and number', async () => {
    const { robot } = scripted((tag) => [formatErr(tag, 'DESTINATION_FULL', 'slot 4097 is full')]);
    const e = await robot.move(1, 2).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SerialRobotError);
    expect(e).toMatchObject({ name: 'SerialRobotError', code: 'DESTINATION_FULL', robotCode: 22, message: expect.stringMatching(/slot 4097 is full/u) });
  });

  it('answers arriving out of order still reach their requests', async () => {
    const held: string[] = [];
    const { robot } = scripted((tag, verb) => {
      if (verb === 'MOVE') {
        held.push(tag);
        return [];
      }
      return [formatOk(tag, 'READY=YES ROBOT=BUSY DOOR=CLOSED'), ...held.splice(0).map((t) => formatOk(t, 'MOVED'))];
    });
    const moving = robot.move(1, 2);
    await new Promise((r) => setTimeout(r, 5));
    expect(await robot.status()).toMatchObject({ robotBusy: true });
    await moving;
  });

  it('a silent robot times out; an erroring line rejects everything pending with ECONNRESET', async () => {
    const { robot, line } = scripted(() => []);
    await expect(robot.ping({ timeoutMs: 20 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    const p = robot.ping();
    line.emit('error', new Error('EIO'));
    await expect(p).rejects.toMatchObject({ code: 'ECONNRESET', cause: expect.any(Error) });
    await expect(robot.status()).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('opening a port that does not exist fails plainly', async () => {
    await expect(SerialRobot.open('/dev/ptpvts-no-such-port')).rejects.toMatchObject({ code: 'ECONNRESET', message: expect.stringMatching(/cannot open \/dev\/ptpvts-no-such-port/u) });
  });
});

const hw = process.env['TEST_SERIAL_PORT'];

describe.skipIf(!hw)('SerialRobot on real hardware (needs TEST_SERIAL_PORT=/dev/ttyXXX)', () => {
  it('handshakes and reads the status', async () => {
    const robot = await SerialRobot.open(hw as string, { baudRate: Number(process.env['TEST_SERIAL_BAUD'] ?? 9600) });
    try {
      expect(await robot.status()).toHaveProperty('ready');
    } finally {
      await robot.close();
    }
  });
});
