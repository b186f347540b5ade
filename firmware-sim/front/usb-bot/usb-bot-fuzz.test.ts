/**
 * Fuzzing both ends: random bytes and random transfer sequences at the emulated device,
 * and random commands with random faults through the binding. Neither side may throw
 * anything but its documented errors, and the device must always come back after reset
 * recovery.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { TransportError } from '../../../src/transport/scsi-port.js';
import { CswStatus, decodeCsw, encodeCbw } from '../../../src/transport/usb-bot/bot-wrappers.js';
import { bytesOf } from '../../../src/transport/usb-bot/usb-device.js';
import { counterUnit } from './counter-unit.fixture.js';
import { CswDefect, EmulatedUsbDevice, emulatedUsbBot } from './index.js';
import type { UsbFault } from './index.js';

type Op =
  | { op: 'out'; bytes: Uint8Array }
  | { op: 'cbw'; tag: number; len: number; dataIn: boolean; lun: number; cdb: Uint8Array }
  | { op: 'in'; length: number }
  | { op: 'clear'; dir: 'in' | 'out' }
  | { op: 'reset' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('out' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({
    op: fc.constant('cbw' as const),
    tag: fc.nat({ max: 0xffffffff }),
    len: fc.nat({ max: 600 }),
    dataIn: fc.boolean(),
    lun: fc.integer({ min: 0, max: 2 }),
    cdb: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.constantFrom(Uint8Array.of(0x12, 0, 0, 0, 96, 0), Uint8Array.of(3, 0, 0, 0, 252, 0), Uint8Array.of(0, 0, 0, 0, 0, 0))),
  }),
  fc.record({ op: fc.constant('in' as const), length: fc.nat({ max: 600 }) }),
  fc.record({ op: fc.constant('clear' as const), dir: fc.constantFrom('in' as const, 'out' as const) }),
  fc.constant({ op: 'reset' as const }),
);

const BOMS_RESET = { requestType: 'class', recipient: 'interface', request: 0xff, value: 0, index: 0 } as const;

describe('fuzzing the emulated USB device', () => {
  it('random CBWs, garbage and transfers never crash it, and reset recovery always brings it back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 12 }), async (ops) => {
        const dev = new EmulatedUsbDevice({ luns: new Map([[0, counterUnit()]]) });
        await dev.open();
        await dev.selectConfiguration(1);
        await dev.claimInterface(0);
        for (const o of ops) {
          try {
            if (o.op === 'out') await dev.transferOut(2, o.bytes, 5);
            else if (o.op === 'cbw') await dev.transferOut(2, encodeCbw({ tag: o.tag, dataTransferLength: o.len, dataIn: o.dataIn, lun: o.lun, cdb: o.cdb }), 5);
            else if (o.op === 'in') await dev.transferIn(1, o.length, 5);
            else if (o.op === 'clear') await dev.clearHalt(o.dir, o.dir === 'in' ? 1 : 2);
            else await dev.controlTransferOut(BOMS_RESET);
          } catch (e) {
            expect((e as { code?: string }).code).toBe('ETIMEDOUT');
          }
        }
        await dev.controlTransferOut(BOMS_RESET);
        await dev.clearHalt('in', 1);
        await dev.clearHalt('out', 2);
        await dev.transferOut(2, encodeCbw({ tag: 42, dataTransferLength: 0, dataIn: false, lun: 0, cdb: Uint8Array.of(0x12, 0, 0, 0, 0, 0) }), 1000);
        const csw = decodeCsw(bytesOf(await dev.transferIn(1, 13, 1000)), { tag: 42, dataTransferLength: 0 });
        expect(csw.status).toBe(CswStatus.passed);
      }),
      { numRuns: 1500 },
    );
  });

  it('random commands with random faults through the binding resolve or reject with TransportError, and the next INQUIRY works', async () => {
    const faultArb: fc.Arbitrary<UsbFault> = fc.oneof(
      fc.constant({ kind: 'stall-data' as const }),
      fc.record({ kind: fc.constant('short-data' as const), bytes: fc.nat({ max: 100 }) }),
      fc.record({ kind: fc.constant('bad-csw' as const), defect: fc.constantFrom(...Object.values(CswDefect)) }),
    );
    const cdbArb = fc.oneof(fc.uint8Array({ minLength: 6, maxLength: 16 }), fc.constantFrom(Uint8Array.of(0x12, 0, 0, 0, 96, 0), Uint8Array.of(0x1a, 0, 0x3f, 0, 255, 0)));
    const reqArb = fc.record({ cdb: cdbArb, direction: fc.constantFrom('none' as const, 'in' as const, 'out' as const), len: fc.nat({ max: 300 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(faultArb, { maxLength: 3 }), fc.array(reqArb, { minLength: 1, maxLength: 4 }), async (faults, reqs) => {
        const { port, emulated } = await emulatedUsbBot(counterUnit());
        for (const f of faults) emulated.inject(f);
        for (const r of reqs) {
          const req = r.direction === 'in' ? { cdb: r.cdb, direction: r.direction, dataInLength: r.len } : r.direction === 'out' ? { cdb: r.cdb, direction: r.direction, dataOut: new Uint8Array(r.len) } : { cdb: r.cdb, direction: r.direction };
          try {
            const res = await port.execute({ ...req, timeoutMs: 2000 });
            expect(res.residual).toBeGreaterThanOrEqual(0);
          } catch (e) {
            expect(e).toBeInstanceOf(TransportError);
            expect(['EPROTO', 'ETIMEDOUT']).toContain((e as TransportError).code);
          }
        }
        const drain = emulated.pendingFaults().length;
        for (let i = 0; i < drain + 1; i++) await port.execute({ cdb: Uint8Array.of(0x12, 0, 0, 0, 96, 0), direction: 'in', dataInLength: 96 }).catch(() => undefined);
        const ok = await port.execute({ cdb: Uint8Array.of(0x12, 0, 0, 0, 96, 0), direction: 'in', dataInLength: 96 });
        expect(ok.status).toBe(ScsiStatus.GOOD);
        expect(ok.data).toHaveLength(96);
        await port.close();
      }),
      { numRuns: 1000 },
    );
  });
});
