/**
 * `ptpvts sim serve LIBRARY --serial`: the same library served over iSCSI and as a robot
 * console on a pseudo-terminal; the serial robot client moves a cartridge through the tty
 * and the iSCSI side sees the move.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimServe, type SimServer } from '../../src/cli/sim-serve.js';
import { serialConsoleExtension } from '../../src/cli/serial-extension.js';
import { memoryOut } from '../../src/cli/output.js';
import { SerialRobot } from '../../src/transport/serial-robot/index.js';
import { openIscsiPort } from '../../src/transport/iscsi/index.js';
import { MediaChanger } from '../../src/devices/media-changer.js';

const YAML = `
name: serial0
personality: PTPVTS-LIB
timeScale: 0
mediaDir: ./media
storageSlots: 6
drives:
  count: 1
  personality: LTO8
cartridges:
  - { barcode: R00001L8, location: slot 1, capacity: 8MiB }
`;

describe('sim serve with --serial', () => {
  let dir: string;
  let server: SimServer;
  const out = memoryOut();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-serial-serve-'));
    writeFileSync(join(dir, 'library.yaml'), YAML);
    server = await startSimServe({ libraryPath: join(dir, 'library.yaml'), portal: '127.0.0.1:0', logLevel: 'silent', extensions: [serialConsoleExtension], cliOptions: { serial: true }, out });
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the tty path, and a move made on the console shows on iSCSI', async () => {
    const line = out.lines.find((l) => /robot console .* is on \/dev\/pts\/\d+/.test(l));
    expect(line, out.lines.join('\n')).toBeDefined();
    const tty = /(\/dev\/pts\/\d+)/.exec(line!)![1]!;
    const robot = await SerialRobot.open(tty);
    try {
      await robot.move(0x1000, 0x1005);
    } finally {
      await robot.close();
    }
    const port = await openIscsiPort({ host: '127.0.0.1', port: server.target.port, targetName: server.target.iqn, initiatorName: 'iqn.2026-11.io.ptpvts:serial-test', lun: 0 });
    try {
      const changer = new MediaChanger(port);
      await changer.requestSense();
      const found = await changer.findByBarcode('R00001L8');
      expect(found?.address).toBe(0x1005);
    } finally {
      await port.close();
    }
  });
});
