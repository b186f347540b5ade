/**
 * The BOT binding against scripted and hostile devices (the emulated device's own suite
 * lives in firmware-sim/front/usb-bot), device discovery, and real hardware where
 * TEST_USB_DEVICE names a device.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TransportError } from '../scsi-port.js';
import { encodeCsw } from './bot-wrappers.js';
import { listUsbDevices, openUsbBot, openUsbBotPort, parseUsbSelector, UsbUnavailableError } from './discovery.js';
import { UsbBotDevice } from './usb-bot-port.js';
import type { BotUsbDevice, UsbConfigurationInfo, UsbInResult, UsbOutResult } from './usb-device.js';

const botConfig: UsbConfigurationInfo = {
  configurationValue: 1,
  interfaces: [
    {
      interfaceNumber: 0,
      alternate: {
        alternateSetting: 0,
        interfaceClass: 8,
        interfaceSubclass: 6,
        interfaceProtocol: 0x50,
        endpoints: [
          { endpointNumber: 1, direction: 'in', type: 'bulk', packetSize: 512 },
          { endpointNumber: 2, direction: 'out', type: 'bulk', packetSize: 512 },
        ],
      },
      alternates: [],
    },
  ],
};

/** One step of a scripted device's answers to bulk-in reads. */
type Step =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'csw'; status: number; residue: number }
  | { kind: 'stall' }
  | { kind: 'babble' }
  | { kind: 'reject'; code: string };

/** A device that answers bulk-in reads from a script and accepts anything else (or fails it, when told). */
class ScriptedDevice implements BotUsbDevice {
  vendorId = 0x1234;
  productId = 0x5678;
  serialNumber = 'S1';
  opened = false;
  configuration: UsbConfigurationInfo | null = null;
  configurations = [botConfig];
  lastTag = 0;
  resets = 0;
  constructor(
    public script: Step[],
    public outFailures: Array<'stall' | 'short' | 'reject'> = [],
    public controlFails = false,
  ) {}
  async open(): Promise<void> {
    this.opened = true;
  }
  async close(): Promise<void> {
    this.opened = false;
  }
  async selectConfiguration(): Promise<void> {
    this.configuration = botConfig;
  }
  async claimInterface(): Promise<void> {}
  async releaseInterface(): Promise<void> {}
  async transferOut(_ep: number, data: Uint8Array): Promise<UsbOutResult> {
    const f = this.outFailures.shift();
    if (f === 'reject') throw Object.assign(new Error('LIBUSB_ERROR_IO'), { code: 'EIO' });
    if (f === 'stall') return { bytesWritten: 0, status: 'stall' };
    if (data.length === 31) this.lastTag = (data[4] ?? 0) | ((data[5] ?? 0) << 8) | ((data[6] ?? 0) << 16) | (((data[7] ?? 0) << 24) >>> 0);
    return { bytesWritten: f === 'short' ? Math.max(0, data.length - 1) : data.length, status: 'ok' };
  }
  async transferIn(_ep: number, length: number): Promise<UsbInResult> {
    const s = this.script.shift() ?? { kind: 'stall' };
    if (s.kind === 'stall') return { status: 'stall' };
    if (s.kind === 'babble') return { status: 'babble' };
    if (s.kind === 'reject') throw Object.assign(new Error(`transfer failed (${s.code})`), { code: s.code });
    const b = s.kind === 'csw' ? encodeCsw({ tag: this.lastTag, residue: s.residue, status: s.status }) : s.bytes.subarray(0, length);
    return { data: new DataView(b.buffer, b.byteOffset, b.byteLength), status: 'ok' };
  }
  async controlTransferOut(): Promise<UsbOutResult> {
    this.resets++;
    if (this.controlFails) throw new Error('LIBUSB_ERROR_IO');
    return { bytesWritten: 0, status: 'ok' };
  }
  async controlTransferIn(): Promise<UsbInResult> {
    return { status: 'stall' };
  }
  async clearHalt(): Promise<void> {}
  async reset(): Promise<void> {
    if (this.controlFails) throw new Error('LIBUSB_ERROR_NOT_FOUND');
  }
}

const tur = { cdb: Uint8Array.of(0, 0, 0, 0, 0, 0), direction: 'none' as const };
const inq = { cdb: Uint8Array.of(0x12, 0, 0, 0, 36, 0), direction: 'in' as const, dataInLength: 36 };

describe('UsbBotDevice over scripted devices', () => {
  it('assumes LUN 0 when Get Max LUN stalls and names the device in its address', async () => {
    const host = await UsbBotDevice.open(new ScriptedDevice([]));
    expect(host.maxLun).toBe(0);
    expect(host.port(0).address).toBe('usb:1234:5678:S1/lun0');
    await host.close();
  });

  it('refuses a device without a Bulk-Only interface', async () => {
    const d = new ScriptedDevice([]);
    d.configurations = [{ configurationValue: 1, interfaces: [] }];
    await expect(UsbBotDevice.open(d)).rejects.toMatchObject({ code: 'ENODEV' });
  });

  it('retries a stalled status stage once after clearing the halt', async () => {
    const host = await UsbBotDevice.open(new ScriptedDevice([{ kind: 'stall' }, { kind: 'csw', status: 0, residue: 0 }]));
    expect((await host.port(0).execute(tur)).status).toBe(0);
    expect(host.stats.stalls).toBe(1);
    await host.close();
  });

  it('a status stage that stalls twice is a protocol error', async () => {
    const d = new ScriptedDevice([{ kind: 'stall' }, { kind: 'stall' }]);
    const host = await UsbBotDevice.open(d);
    await expect(host.port(0).execute(tur)).rejects.toMatchObject({ code: 'EPROTO' });
    expect(d.resets).toBe(1);
    await host.close();
  });

  it('a refused or short CBW is a protocol error', async () => {
    const host = await UsbBotDevice.open(new ScriptedDevice([], ['stall', 'short']));
    await expect(host.port(0).execute(tur)).rejects.toMatchObject({ code: 'EPROTO' });
    await expect(host.port(0).execute(tur)).rejects.toMatchObject({ code: 'EPROTO' });
    await host.close();
  });

  it('a failing bus is ECONNRESET; when recovery fails too, the next command says so', async () => {
    const host = await UsbBotDevice.open(new ScriptedDevice([{ kind: 'reject', code: 'ENODEV' }], [], true));
    await expect(host.port(0).execute(inq)).rejects.toMatchObject({ code: 'ECONNRESET' });
    const d2 = new ScriptedDevice([{ kind: 'reject', code: 'ETIMEDOUT' }], [], true);
    const host2 = await UsbBotDevice.open(d2);
    const e = await host2.port(0).execute(inq).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ETIMEDOUT', message: expect.stringMatching(/reset recovery failed/u) });
    await expect(host2.port(0).execute(tur)).rejects.toMatchObject({ code: 'ECONNRESET' });
    await host.close();
    await host2.close();
  });

  it('a failed CSW followed by a failing REQUEST SENSE resolves CHECK CONDITION with empty sense', async () => {
    const host = await UsbBotDevice.open(new ScriptedDevice([{ kind: 'csw', status: 1, residue: 0 }, { kind: 'bytes', bytes: new Uint8Array(0) }, { kind: 'csw', status: 1, residue: 252 }]));
    const r = await host.port(0).execute(tur);
    expect(r.status).toBe(2);
    expect(r.sense).toHaveLength(0);
    await host.close();
  });

  it('survives thousands of hostile devices: every command resolves or rejects with a TransportError', async () => {
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
      fc.record({ kind: fc.constant('csw' as const), status: fc.integer({ min: 0, max: 4 }), residue: fc.nat({ max: 300 }) }),
      fc.constant({ kind: 'stall' as const }),
      fc.constant({ kind: 'babble' as const }),
      fc.record({ kind: fc.constant('reject' as const), code: fc.constantFrom('ETIMEDOUT', 'EPIPE', 'ENODEV', 'EIO') }),
    );
    const req = fc.oneof(
      fc.constant(tur),
      fc.constant(inq),
      fc.record({ cdb: fc.constant(Uint8Array.of(0x15, 0x10, 0, 0, 8, 0)), direction: fc.constant('out' as const), dataOut: fc.uint8Array({ maxLength: 64 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 8 }), fc.array(fc.constantFrom('stall' as const, 'short' as const, 'reject' as const), { maxLength: 2 }), fc.array(req, { minLength: 1, maxLength: 3 }), async (script, outs, reqs) => {
        const host = await UsbBotDevice.open(new ScriptedDevice(script, outs), { recoveryTimeoutMs: 100 });
        const port = host.port(0);
        for (const r of reqs) {
          try {
            const res = await port.execute({ ...r, timeoutMs: 1000 });
            expect(res.residual).toBeGreaterThanOrEqual(0);
            if (r.direction === 'in') expect(res.data.length + res.residual).toBe(r.dataInLength);
          } catch (e) {
            expect(e).toBeInstanceOf(TransportError);
          }
        }
        await host.close();
      }),
      { numRuns: 2000 },
    );
  });
});

describe('USB discovery', () => {
  it('says plainly when the machine has no USB subsystem', async () => {
    const e = await listUsbDevices(async () => {
      throw Object.assign(new Error('getDevices error: /sys/bus/usb/devices/ not found (errno 2)'), { code: 'GenericFailure' });
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsbUnavailableError);
    expect(e).toMatchObject({ name: 'UsbUnavailableError', code: 'ENOUSB', message: expect.stringMatching(/^this machine has no USB subsystem \(/u) });
    expect((e as Error).cause).toBeInstanceOf(Error);
    const other = await listUsbDevices(async () => {
      throw new Error('LIBUSB_ERROR_ACCESS');
    }).catch((x: unknown) => x);
    expect(other).toMatchObject({ code: 'ENOUSB', message: expect.stringMatching(/cannot be listed/u) });
  });

  it('lists this machine\'s devices through the usb package, or explains why it cannot', async () => {
    try {
      const list = await listUsbDevices();
      expect(Array.isArray(list)).toBe(true);
    } catch (e) {
      expect(e).toBeInstanceOf(UsbUnavailableError);
      expect((e as Error).message).toMatch(/USB/u);
    }
  });

  it('selects by vendor/product id or serial number', async () => {
    const a = new ScriptedDevice([]);
    const b = new ScriptedDevice([]);
    b.serialNumber = 'S2';
    const c = new ScriptedDevice([]);
    c.configurations = [{ configurationValue: 1, interfaces: [] }];
    c.productId = 0x9999;
    const lister = async (): Promise<BotUsbDevice[]> => [a, b, c];
    expect((await listUsbDevices(lister)).map((d) => d.bulkOnly)).toEqual([true, true, false]);
    const host = await openUsbBot({ serialNumber: 'S2' }, { lister });
    expect(host.device).toBe(b);
    await host.close();
    await expect(openUsbBot({ vendorId: 0x1234 }, { lister })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/serial S1.*serial S2/u) });
    await expect(openUsbBot({ productId: 0x9999 }, { lister })).rejects.toMatchObject({ code: 'ENOENT' });
    const port = await openUsbBotPort('1234:5678:S1', 0, { lister });
    expect(port.address).toBe('usb:1234:5678:S1/lun0');
    await port.close();
    expect(a.opened).toBe(false);
  });

  it('parses selectors', () => {
    expect(parseUsbSelector('0bda:8153')).toEqual({ vendorId: 0x0bda, productId: 0x8153 });
    expect(parseUsbSelector('0bda:8153:XYZ')).toEqual({ vendorId: 0x0bda, productId: 0x8153, serialNumber: 'XYZ' });
    expect(parseUsbSelector('serial=ABC')).toEqual({ serialNumber: 'ABC' });
    expect(() => parseUsbSelector('nope')).toThrow(TransportError);
  });
});

const hw = process.env['TEST_USB_DEVICE'];

describe.skipIf(!hw)('USB BOT on real hardware (needs TEST_USB_DEVICE=vvvv:pppp[:serial])', () => {
  it('answers INQUIRY and TEST UNIT READY', async () => {
    const port = await openUsbBotPort(hw as string, Number(process.env['TEST_USB_LUN'] ?? 0));
    try {
      const r = await port.execute({ ...inq, timeoutMs: 10_000 });
      expect(r.status).toBe(0);
      expect(r.data.length).toBeGreaterThanOrEqual(36);
      const t = await port.execute({ ...tur, timeoutMs: 10_000 });
      expect([0, 2]).toContain(t.status);
    } finally {
      await port.close();
    }
  });
});
