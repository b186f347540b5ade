/**
 * `usb` and `serialport` are optional: an installation without them works, and using a USB
 * or serial device then says which package is missing and how to install it.
 */
import { describe, expect, it, vi } from 'vitest';

vi.mock('serialport', () => {
  throw new Error("Cannot find package 'serialport'");
});
vi.mock('usb', () => {
  throw new Error("Cannot find package 'usb'");
});

describe('optional device packages absent', () => {
  it('a serial robot names the missing serialport package', async () => {
    const { SerialRobot } = await import('../../src/transport/serial-robot/serial-robot.js');
    const e = (await SerialRobot.open('/dev/ttyS9').catch((err: unknown) => err)) as Error & { code?: string };
    expect(e).toMatchObject({ name: 'SerialRobotError', code: 'ENOSERIALPORT' });
    expect(e.message).toMatch(/^cannot open \/dev\/ttyS9: the optional package serialport is not installed .*install it with `npm install serialport`$/);
  });

  it('USB listing names the missing usb package', async () => {
    const { listUsbDevices } = await import('../../src/transport/usb-bot/discovery.js');
    const e = (await listUsbDevices().catch((err: unknown) => err)) as Error & { code?: string };
    expect(e).toMatchObject({ name: 'UsbUnavailableError', code: 'ENOUSB' });
    expect(e.message).toMatch(/the optional package usb is not installed .*install it with `npm install usb`$/);
  });
});
