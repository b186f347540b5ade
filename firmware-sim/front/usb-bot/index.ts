/**
 * The USB front of the emulator: emulated Bulk-Only devices, and the factory the
 * conformance suite uses to reach an emulated unit through the real BOT binding.
 */
import { UsbBotDevice } from '../../../src/transport/usb-bot/usb-bot-port.js';
import type { UsbBotOptions, UsbBotPort } from '../../../src/transport/usb-bot/usb-bot-port.js';
import type { EmulatedTarget, LogicalUnit } from '../../engine/types.js';
import { EmulatedUsbDevice } from './emulated-usb-device.js';
import type { EmulatedUsbDeviceOptions } from './emulated-usb-device.js';

export { CswDefect, EmulatedUsbDevice } from './emulated-usb-device.js';
export type { EmulatedUsbDeviceOptions, EmulatedUsbStats, UsbFault } from './emulated-usb-device.js';

export interface EmulatedUsbPortOptions extends UsbBotOptions, Omit<EmulatedUsbDeviceOptions, 'luns'> {
  /** LUN the port addresses; default 0. */
  readonly lun?: number;
}

/** An emulated device, the binding's view of it, and a port to one of its LUNs. */
export interface EmulatedUsbBot {
  readonly emulated: EmulatedUsbDevice;
  readonly host: UsbBotDevice;
  /** Closing it closes `host` as well. */
  readonly port: UsbBotPort;
}

function lunsOf(what: LogicalUnit | EmulatedTarget): ReadonlyMap<number, LogicalUnit> {
  return 'luns' in what && typeof what.luns === 'function' ? what.luns() : new Map([[0, what as LogicalUnit]]);
}

/**
 * Puts `what` (one unit as LUN 0, or a target's LUNs) behind an emulated USB device and
 * opens it with the BOT binding. Rejects as `UsbBotDevice.open` does.
 */
export async function emulatedUsbBot(what: LogicalUnit | EmulatedTarget, opts: EmulatedUsbPortOptions = {}): Promise<EmulatedUsbBot> {
  const emulated = new EmulatedUsbDevice({ ...opts, luns: lunsOf(what) });
  const host = await UsbBotDevice.open(emulated, opts);
  const port = host.port(opts.lun ?? 0, { closesDevice: true });
  return { emulated, host, port };
}

/** A {@link UsbBotPort} over an emulated device around `unit`: the factory of the conformance suite. */
export async function emulatedUsbPort(what: LogicalUnit | EmulatedTarget, opts: EmulatedUsbPortOptions = {}): Promise<UsbBotPort> {
  return (await emulatedUsbBot(what, opts)).port;
}
