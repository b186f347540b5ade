/**
 * The part of the `usb` package's WebUSB-style device API that Bulk-Only Transport
 * needs, as a types-only contract. A real `usb` 3.x `UsbDevice` satisfies it, and so does
 * the emulated device in firmware-sim, so one binding runs over both.
 *
 * Timeouts: node-usb takes an extra trailing `timeout` argument (ms) on every transfer
 * that plain WebUSB lacks; the binding always passes it. A transfer that runs out of time
 * rejects (the error's message or code says so, see {@link isTimeoutError}). WebUSB has no
 * way to cancel a submitted transfer: the binding gives up on it and relies on the
 * per-transfer timeout to end it.
 *
 * Stalls come back as a resolved result with `status: 'stall'` (node-usb also raises some
 * as errors; {@link isStallError} recognises those). Any other rejection is a failure of
 * the device or the bus (unplugged, no permission).
 */

export type UsbTransferStatus = 'ok' | 'stall' | 'babble';
export type UsbDirection = 'in' | 'out';

export interface UsbInResult {
  readonly data?: DataView | undefined;
  readonly status: UsbTransferStatus;
}

export interface UsbOutResult {
  readonly bytesWritten: number;
  readonly status: UsbTransferStatus;
}

export interface UsbControlSetup {
  readonly requestType: 'standard' | 'class' | 'vendor';
  readonly recipient: 'device' | 'interface' | 'endpoint' | 'other';
  readonly request: number;
  readonly value: number;
  readonly index: number;
}

export interface UsbEndpointInfo {
  readonly endpointNumber: number;
  readonly direction: UsbDirection;
  readonly type: 'bulk' | 'interrupt' | 'isochronous';
  readonly packetSize: number;
}

export interface UsbAlternateInfo {
  readonly alternateSetting: number;
  readonly interfaceClass: number;
  readonly interfaceSubclass: number;
  readonly interfaceProtocol: number;
  readonly endpoints: readonly UsbEndpointInfo[];
}

export interface UsbInterfaceInfo {
  readonly interfaceNumber: number;
  readonly alternate: UsbAlternateInfo;
  readonly alternates: readonly UsbAlternateInfo[];
}

export interface UsbConfigurationInfo {
  readonly configurationValue: number;
  readonly interfaces: readonly UsbInterfaceInfo[];
}

/**
 * A USB device as the BOT binding drives it. Every method may reject when the device is
 * gone; the binding turns that into `TransportError` `ECONNRESET`.
 */
export interface BotUsbDevice {
  readonly vendorId: number;
  readonly productId: number;
  readonly serialNumber?: string | null | undefined;
  readonly manufacturerName?: string | null | undefined;
  readonly productName?: string | null | undefined;
  readonly opened: boolean;
  readonly configuration?: UsbConfigurationInfo | null | undefined;
  readonly configurations: readonly UsbConfigurationInfo[];
  open(): Promise<void>;
  close(): Promise<void>;
  selectConfiguration(configurationValue: number): Promise<void>;
  claimInterface(interfaceNumber: number): Promise<void>;
  releaseInterface(interfaceNumber: number): Promise<void>;
  /** Linux only, on real devices: the kernel's usb-storage driver holds the interface otherwise. */
  detachKernelDriver?(interfaceNumber: number): Promise<void>;
  transferOut(endpointNumber: number, data: Uint8Array, timeoutMs?: number): Promise<UsbOutResult>;
  transferIn(endpointNumber: number, length: number, timeoutMs?: number): Promise<UsbInResult>;
  controlTransferOut(setup: UsbControlSetup, data?: Uint8Array, timeoutMs?: number): Promise<UsbOutResult>;
  controlTransferIn(setup: UsbControlSetup, length: number, timeoutMs?: number): Promise<UsbInResult>;
  clearHalt(direction: UsbDirection, endpointNumber: number): Promise<void>;
  /** USB port reset: the last resort when reset recovery itself fails. */
  reset(): Promise<void>;
}

/** Whether a rejected transfer ran out of time (node-usb and the emulator both say so in code or message). */
export function isTimeoutError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  if (e?.code === 'ETIMEDOUT' || e?.code === 'LIBUSB_ERROR_TIMEOUT') return true;
  return typeof e?.message === 'string' && /time(d)? ?out/iu.test(e.message);
}

/** Whether a rejected transfer was a stall reported as an error rather than a status. */
export function isStallError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  if (e?.code === 'EPIPE' || e?.code === 'LIBUSB_ERROR_PIPE') return true;
  return typeof e?.message === 'string' && /\bstall|\bpipe error/iu.test(e.message);
}

/** The bytes of an IN result, respecting the view's offset (node-usb hands back views). */
export function bytesOf(result: UsbInResult): Uint8Array {
  const v = result.data;
  if (!v) return new Uint8Array(0);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
}
