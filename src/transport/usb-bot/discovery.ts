/**
 * Finding and opening real USB mass storage devices through the `usb` package (3.x,
 * WebUSB-style). The package is loaded on first use, so importing this module costs
 * nothing on machines that never touch USB.
 */
import { TransportError } from '../scsi-port.js';
import { findBotEndpoints, UsbBotDevice } from './usb-bot-port.js';
import type { UsbBotOptions, UsbBotPort } from './usb-bot-port.js';
import type { BotUsbDevice } from './usb-device.js';
import type * as UsbModule from 'usb';

/**
 * USB cannot be used on this machine: no USB subsystem (no `/sys/bus/usb`), or the
 * `usb` package failed to load or to list devices. `cause` holds the original error.
 */
export class UsbUnavailableError extends Error {
  override readonly name = 'UsbUnavailableError';
  readonly code = 'ENOUSB';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface UsbDeviceInfo {
  readonly vendorId: number;
  readonly productId: number;
  readonly serialNumber?: string;
  readonly manufacturer?: string;
  readonly product?: string;
  /** Whether the device has a Bulk-Only mass storage interface this binding can drive. */
  readonly bulkOnly: boolean;
  /** The device itself, for {@link UsbBotDevice.open}. */
  readonly device: BotUsbDevice;
}

/** Which device to open; every given field must match. */
export interface UsbSelector {
  readonly vendorId?: number;
  readonly productId?: number;
  readonly serialNumber?: string;
}

/** Lists devices the way the `usb` package sees them; injected by tests. */
export type UsbLister = () => Promise<readonly BotUsbDevice[]>;

const defaultLister: UsbLister = async () => {
  let mod: typeof UsbModule;
  try {
    mod = await import('usb');
  } catch (err) {
    throw new UsbUnavailableError(`the optional package usb is not installed or cannot be loaded here (${String((err as Error).message ?? err)}); install it with \`npm install usb\``, { cause: err });
  }
  const webusb = new mod.WebUSB({ allowAllDevices: true });
  // The package's device type is the W3C one plus node-usb's timeout arguments, which is what BotUsbDevice describes.
  return (await webusb.getDevices()) as unknown as BotUsbDevice[];
};

function describeListingFailure(err: unknown): UsbUnavailableError {
  if (err instanceof UsbUnavailableError) return err;
  const text = err instanceof Error ? err.message : String(err);
  if (/\/sys\/bus\/usb|not found|errno 2\b|ENOENT/iu.test(text)) {
    return new UsbUnavailableError(`this machine has no USB subsystem (${text})`, { cause: err });
  }
  return new UsbUnavailableError(`USB devices cannot be listed on this machine (${text})`, { cause: err });
}

/**
 * Lists the USB devices of this machine. Rejects with {@link UsbUnavailableError} when
 * the machine has no USB subsystem or listing fails; never hangs on a missing bus.
 */
export async function listUsbDevices(lister: UsbLister = defaultLister): Promise<UsbDeviceInfo[]> {
  let devices: readonly BotUsbDevice[];
  try {
    devices = await lister();
  } catch (err) {
    throw describeListingFailure(err);
  }
  return devices.map((d) => ({
    vendorId: d.vendorId,
    productId: d.productId,
    ...(d.serialNumber ? { serialNumber: d.serialNumber } : {}),
    ...(d.manufacturerName ? { manufacturer: d.manufacturerName } : {}),
    ...(d.productName ? { product: d.productName } : {}),
    bulkOnly: findBotEndpoints(d) !== undefined,
    device: d,
  }));
}

function matches(d: UsbDeviceInfo, s: UsbSelector): boolean {
  return (
    (s.vendorId === undefined || d.vendorId === s.vendorId) &&
    (s.productId === undefined || d.productId === s.productId) &&
    (s.serialNumber === undefined || d.serialNumber === s.serialNumber)
  );
}

function label(d: UsbDeviceInfo): string {
  const id = `${d.vendorId.toString(16).padStart(4, '0')}:${d.productId.toString(16).padStart(4, '0')}`;
  return `${id}${d.serialNumber ? ` serial ${d.serialNumber}` : ''}${d.product ? ` (${d.product})` : ''}`;
}

/**
 * Opens the one Bulk-Only device matching `selector`. Rejects with
 * {@link UsbUnavailableError} when USB is unavailable, `TransportError` `ENOENT` when
 * nothing matches, and `EINVAL` when several match (the message lists them: add a serial
 * number).
 */
export async function openUsbBot(selector: UsbSelector, options: UsbBotOptions & { lister?: UsbLister } = {}): Promise<UsbBotDevice> {
  const all = await listUsbDevices(options.lister);
  const candidates = all.filter((d) => d.bulkOnly && matches(d, selector));
  if (candidates.length === 0) {
    const seen = all.filter((d) => d.bulkOnly).map(label);
    throw new TransportError('ENOENT', `no USB Bulk-Only device matches ${JSON.stringify(selector)}${seen.length ? ` (found: ${seen.join('; ')})` : ' (none attached)'}`);
  }
  if (candidates.length > 1) {
    throw new TransportError('EINVAL', `${candidates.length} USB Bulk-Only devices match ${JSON.stringify(selector)}: ${candidates.map(label).join('; ')}`);
  }
  return UsbBotDevice.open((candidates[0] as UsbDeviceInfo).device, options);
}

/**
 * Parses a selector written as `vvvv:pppp`, `vvvv:pppp:serial` or `serial=XYZ` (hex ids),
 * the form `TEST_USB_DEVICE` and the CLI use. Throws `TransportError` `EINVAL`.
 */
export function parseUsbSelector(text: string): UsbSelector {
  const t = text.trim();
  const bySerial = /^serial=(.+)$/u.exec(t);
  if (bySerial) return { serialNumber: bySerial[1] as string };
  const m = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})(?::(.+))?$/iu.exec(t);
  if (!m) throw new TransportError('EINVAL', `USB device "${text}" is not vvvv:pppp[:serial] or serial=...`);
  return { vendorId: parseInt(m[1] as string, 16), productId: parseInt(m[2] as string, 16), ...(m[3] ? { serialNumber: m[3] } : {}) };
}

/** Opens the device named by a selector string and returns the port to `lun`; the port's close closes the device. */
export async function openUsbBotPort(selector: string | UsbSelector, lun = 0, options: UsbBotOptions & { lister?: UsbLister } = {}): Promise<UsbBotPort> {
  const dev = await openUsbBot(typeof selector === 'string' ? parseUsbSelector(selector) : selector, options);
  try {
    return dev.port(lun, { closesDevice: true });
  } catch (err) {
    await dev.close();
    throw err;
  }
}
