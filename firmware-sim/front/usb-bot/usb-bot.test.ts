/**
 * The BOT binding over the emulated USB device: the three stages, sense through REQUEST
 * SENSE, and every recovery path the binding has (stalls, bad CSWs, phase errors,
 * timeouts, cancellation, unplugging).
 */
import { describe, expect, it } from 'vitest';
import * as Cdb from '../../../src/scsi/cdb.js';
import { decodeSense, isSense, Sense } from '../../../src/scsi/sense.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { TransportError } from '../../../src/transport/scsi-port.js';
import type { ScsiPort, ScsiResponse } from '../../../src/transport/scsi-port.js';
import { CswStatus, decodeCsw, encodeCbw } from '../../../src/transport/usb-bot/bot-wrappers.js';
import { bytesOf } from '../../../src/transport/usb-bot/usb-device.js';
import { UsbBotDevice } from '../../../src/transport/usb-bot/usb-bot-port.js';
import { MemoryPort } from '../memory-port.js';
import { BUMP, HANG, PUT, counterUnit } from './counter-unit.fixture.js';
import { EmulatedUsbDevice, emulatedUsbBot, emulatedUsbPort } from './index.js';

const raw = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);

async function cleared(port: ScsiPort): Promise<void> {
  const r = await port.execute(Cdb.testUnitReady());
  expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
  expect(isSense(decodeSense(r.sense), Sense.POWER_ON_RESET)).toBe(true);
}

const bump = (n: number): Parameters<ScsiPort['execute']>[0] => ({ cdb: raw(BUMP, 0, 0, 0, n, 0), direction: 'in', dataInLength: 1 });

describe('USB BOT: commands through the emulated device', () => {
  it('fetches sense with REQUEST SENSE after a failed CSW and resolves CHECK CONDITION', async () => {
    const { port, host } = await emulatedUsbBot(counterUnit());
    await cleared(port);
    expect(host.stats.senseFetches).toBe(1);
    const ok = await port.execute(Cdb.testUnitReady());
    expect(ok).toMatchObject({ status: ScsiStatus.GOOD, residual: 0 });
    expect(ok.sense).toHaveLength(0);
    expect(ok.durationNs).toBeTypeOf('bigint');
    const bad = await port.execute({ cdb: raw(0xd7, 0, 0, 0, 0, 0), direction: 'none' });
    expect(isSense(decodeSense(bad.sense), Sense.INVALID_COMMAND_OPERATION_CODE)).toBe(true);
    await port.close();
  });

  it('returns the same Data-In and residual as the memory port', async () => {
    const unit = counterUnit();
    const usb = await emulatedUsbPort(unit);
    const mem = new MemoryPort(unit);
    for (const p of [usb, mem]) await cleared(p);
    const a = await usb.execute({ ...Cdb.inquiry({ allocationLength: 200 }), dataInLength: 200 });
    const b = await mem.execute({ ...Cdb.inquiry({ allocationLength: 200 }), dataInLength: 200 });
    expect([...a.data]).toEqual([...b.data]);
    expect(a.residual).toBe(104);
    expect(b.residual).toBe(104);
    const cut = await usb.execute({ ...Cdb.inquiry({ allocationLength: 96 }), dataInLength: 10 });
    expect(cut.data).toHaveLength(10);
    expect(cut.residual).toBe(0);
    expect([...(await usb.execute(bump(3))).data]).toEqual([3]);
    await usb.close();
  });

  it('carries Data-Out to the unit', async () => {
    const unit = counterUnit();
    const port = await emulatedUsbPort(unit);
    await cleared(port);
    const payload = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
    const r = await port.execute({ cdb: raw(PUT, 0, 0, 0, 0, 0), direction: 'out', dataOut: payload });
    expect(r.status).toBe(ScsiStatus.GOOD);
    expect([...(unit.device.lastOut ?? [])]).toEqual([...payload]);
    const ms = await port.execute(Cdb.modeSelect6(raw(0, 0, 0, 0, 0x10, 0x02, 0x07, 0x05)));
    expect(ms.status).toBe(ScsiStatus.GOOD);
    await port.close();
  });

  it('keeps held sense per LUN and reports sense in the unit\'s D_SENSE format', async () => {
    const unit = counterUnit();
    const port = await emulatedUsbPort(unit);
    await cleared(port);
    const sensed = await port.execute(Cdb.modeSense6({ page: 0x0a, allocationLength: 255 }));
    const page = Uint8Array.from(sensed.data.subarray(4, 16));
    page[2] = (page[2] ?? 0) | 0x04;
    const params = new Uint8Array(4 + page.length);
    params.set(page, 4);
    expect((await port.execute(Cdb.modeSelect6(params))).status).toBe(ScsiStatus.GOOD);
    const r = await port.execute({ cdb: raw(0xd7, 0, 0, 0, 0, 0), direction: 'none' });
    expect(r.sense[0]).toBe(0x72);
    await port.close();
  });

  it('refuses a CDB longer than 16 bytes and bad requests before touching the wire', async () => {
    const { port, emulated } = await emulatedUsbBot(counterUnit());
    const cbws = emulated.stats.cbws;
    await expect(port.execute({ cdb: new Uint8Array(32).fill(0x7f), direction: 'none' })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(port.execute({ cdb: raw(0, 0), direction: 'none' })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(emulated.stats.cbws).toBe(cbws);
    await port.close();
  });

  it('serves several LUNs of a target and refuses LUNs above Get Max LUN', async () => {
    const a = counterUnit('t/a', 'A1');
    const b = counterUnit('t/b', 'B2');
    const target = { name: 't', luns: () => new Map([[0, a], [1, b]]) };
    const { host } = await emulatedUsbBot(target);
    expect(host.maxLun).toBe(1);
    const p1 = host.port(1);
    await cleared(p1);
    const sn = await p1.execute(Cdb.inquiry({ page: 0x80 }));
    expect(Buffer.from(sn.data.subarray(4)).toString()).toBe('B2');
    expect(() => host.port(2)).toThrow(TransportError);
    await host.close();
    await expect(p1.execute(Cdb.testUnitReady())).rejects.toMatchObject({ code: 'ECLOSED' });

    const single = await emulatedUsbBot(target, { stallGetMaxLun: true });
    expect(single.host.maxLun).toBe(0);
    await single.port.close();
  });
});

describe('USB BOT: faults and recovery', () => {
  it('clears a stalled Data-In, reads the CSW and resolves with the full residual', async () => {
    const { port, host, emulated } = await emulatedUsbBot(counterUnit());
    await cleared(port);
    emulated.inject({ kind: 'stall-data' });
    const r = await port.execute(Cdb.inquiry({ allocationLength: 96 }));
    expect(r.status).toBe(ScsiStatus.GOOD);
    expect(r.data).toHaveLength(0);
    expect(r.residual).toBe(96);
    expect(host.stats.stalls).toBe(1);
    expect(host.stats.resetRecoveries).toBe(0);
    expect((await port.execute(Cdb.inquiry({ allocationLength: 96 }))).data).toHaveLength(96);
    await port.close();
  });

  it('a stalled Data-Out ends in CHECK CONDITION / DATA PHASE ERROR and the unit never sees the command', async () => {
    const unit = counterUnit();
    const { port, emulated } = await emulatedUsbBot(unit);
    await cleared(port);
    emulated.inject({ kind: 'stall-data' });
    const r = await port.execute({ cdb: raw(PUT, 0, 0, 0, 0, 0), direction: 'out', dataOut: raw(1, 2, 3) });
    expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
    expect(isSense(decodeSense(r.sense), Sense.DATA_PHASE_ERROR)).toBe(true);
    expect(r.residual).toBe(3);
    expect(unit.device.lastOut).toBeUndefined();
    expect((await port.execute({ cdb: raw(PUT, 0, 0, 0, 0, 0), direction: 'out', dataOut: raw(9) })).status).toBe(ScsiStatus.GOOD);
    await port.close();
  });

  it('reports a short Data-In as residual', async () => {
    const { port, emulated } = await emulatedUsbBot(counterUnit());
    await cleared(port);
    emulated.inject({ kind: 'short-data', bytes: 5 });
    const r = await port.execute(Cdb.inquiry({ allocationLength: 96 }));
    expect(r.data).toHaveLength(5);
    expect(r.residual).toBe(91);
    await port.close();
  });

  it.each(['signature', 'tag', 'truncated', 'residue'] as const)('rejects EPROTO after reset recovery on a CSW with a bad %s, then works', async (defect) => {
    const { port, host, emulated } = await emulatedUsbBot(counterUnit());
    await cleared(port);
    emulated.inject({ kind: 'bad-csw', defect });
    const err = await port.execute(bump(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: 'EPROTO', name: 'TransportError' });
    expect(String((err as Error).message)).toMatch(/invalid CSW/u);
    expect(host.stats.resetRecoveries).toBe(1);
    expect(emulated.stats.massStorageResets).toBe(1);
    expect(emulated.stats.clearHalts).toBeGreaterThanOrEqual(2);
    expect([...(await port.execute(bump(1))).data]).toEqual([2]);
    await port.close();
  });

  it('a phase error rejects EPROTO after reset recovery', async () => {
    const { port, host, emulated } = await emulatedUsbBot(counterUnit());
    await cleared(port);
    emulated.inject({ kind: 'bad-csw', defect: 'phase-error' });
    await expect(port.execute(Cdb.testUnitReady())).rejects.toMatchObject({ code: 'EPROTO', message: expect.stringMatching(/phase error/u) });
    expect(host.stats.resetRecoveries).toBe(1);
    expect((await port.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
    await port.close();
  });

  it('times out a hung command with reset recovery, aborting it in the unit', async () => {
    const unit = counterUnit();
    const { port, host } = await emulatedUsbBot(unit);
    await cleared(port);
    const t0 = Date.now();
    await expect(port.execute({ cdb: raw(HANG, 0, 0, 0, 0, 0), direction: 'none', timeoutMs: 60 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(host.stats.resetRecoveries).toBe(1);
    await new Promise((r) => setTimeout(r, 5));
    expect(unit.inFlight()).toBe(0);
    expect((await port.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
    await port.close();
  });

  it('times out when the CSW never comes', async () => {
    const { port, emulated } = await emulatedUsbBot(counterUnit());
    await cleared(port);
    emulated.inject({ kind: 'no-csw' });
    await expect(port.execute({ ...Cdb.testUnitReady(), timeoutMs: 50 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect((await port.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
    await port.close();
  });

  it('cancels a running command (ECANCELED) and a queued one without sending it', async () => {
    const unit = counterUnit();
    const { port, emulated } = await emulatedUsbBot(unit);
    await cleared(port);
    const running = new AbortController();
    const queued = new AbortController();
    const a = port.execute({ cdb: raw(HANG, 0, 0, 0, 0, 0), direction: 'none', signal: running.signal });
    const b = port.execute({ ...bump(1), signal: queued.signal });
    await new Promise((r) => setTimeout(r, 10));
    const cbws = emulated.stats.cbws;
    queued.abort();
    await expect(b).rejects.toMatchObject({ code: 'ECANCELED' });
    running.abort();
    await expect(a).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(emulated.stats.cbws).toBe(cbws);
    expect(unit.device.value).toBe(0);
    const pre = new AbortController();
    pre.abort();
    await expect(port.execute({ ...Cdb.testUnitReady(), signal: pre.signal })).rejects.toMatchObject({ code: 'ECANCELED' });
    expect((await port.execute(bump(1))).data[0]).toBe(1);
    await port.close();
  });

  it('runs commands from several ports one at a time in order', async () => {
    const unit = counterUnit();
    const { host, port } = await emulatedUsbBot(unit);
    await cleared(port);
    const other = host.port(0);
    const results = await Promise.all([port.execute(bump(1)), other.execute(bump(2)), port.execute(bump(3))]);
    expect(results.map((r: ScsiResponse) => r.data[0])).toEqual([1, 3, 6]);
    await other.close();
    expect((await port.execute(bump(0))).data[0]).toBe(6);
    await port.close();
  });

  it('rejects ECLOSED for a command in flight at close, and after', async () => {
    const { port } = await emulatedUsbBot(counterUnit());
    await cleared(port);
    const pending = port.execute({ cdb: raw(HANG, 0, 0, 0, 0, 0), direction: 'none' });
    await new Promise((r) => setTimeout(r, 5));
    await port.close();
    await expect(pending).rejects.toMatchObject({ code: 'ECLOSED' });
    await expect(port.execute(Cdb.testUnitReady())).rejects.toMatchObject({ code: 'ECLOSED' });
    await port.close();
  });

  it('an unplugged device rejects ECONNRESET, in flight and after', async () => {
    const { port, emulated } = await emulatedUsbBot(counterUnit());
    await cleared(port);
    const pending = port.execute({ cdb: raw(HANG, 0, 0, 0, 0, 0), direction: 'none', timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 5));
    emulated.unplug();
    await expect(pending).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(port.execute(Cdb.testUnitReady())).rejects.toMatchObject({ code: 'ECONNRESET' });
    await port.close();
  });
});

describe('emulated USB device: the device side of BOT', () => {
  async function openRaw(): Promise<EmulatedUsbDevice> {
    const dev = new EmulatedUsbDevice({ luns: new Map([[0, counterUnit()]]) });
    await dev.open();
    await dev.selectConfiguration(1);
    await dev.claimInterface(0);
    return dev;
  }

  it('answers a CBW for a LUN it lacks with a failed CSW and LOGICAL UNIT NOT SUPPORTED', async () => {
    const dev = await openRaw();
    await dev.transferOut(2, encodeCbw({ tag: 7, dataTransferLength: 0, dataIn: false, lun: 3, cdb: raw(0, 0, 0, 0, 0, 0) }));
    const csw = decodeCsw(bytesOf(await dev.transferIn(1, 13)), { tag: 7, dataTransferLength: 0 });
    expect(csw.status).toBe(CswStatus.failed);
    await dev.transferOut(2, encodeCbw({ tag: 8, dataTransferLength: 18, dataIn: true, lun: 3, cdb: raw(3, 0, 0, 0, 18, 0) }));
    // No unit at LUN 3, so REQUEST SENSE fails too and the held sense stays held.
    await dev.transferIn(1, 18);
    expect(decodeCsw(bytesOf(await dev.transferIn(1, 13)), { tag: 8, dataTransferLength: 18 }).status).toBe(CswStatus.failed);
  });

  it('stalls both pipes after an invalid CBW until a Bulk-Only Mass Storage Reset', async () => {
    const dev = await openRaw();
    expect((await dev.transferOut(2, raw(1, 2, 3))).status).toBe('ok');
    expect((await dev.transferIn(1, 13)).status).toBe('stall');
    await dev.clearHalt('in', 1);
    expect(dev.haltState()).toMatchObject({ in: true, out: true, resetNeeded: true });
    expect((await dev.controlTransferOut({ requestType: 'class', recipient: 'interface', request: 0xff, value: 0, index: 0 })).status).toBe('ok');
    await dev.clearHalt('in', 1);
    await dev.clearHalt('out', 2);
    expect(dev.haltState()).toEqual({ in: false, out: false, resetNeeded: false });
    await dev.transferOut(2, encodeCbw({ tag: 1, dataTransferLength: 0, dataIn: false, lun: 0, cdb: raw(0, 0, 0, 0, 0, 0) }));
    expect(bytesOf(await dev.transferIn(1, 13))).toHaveLength(13);
  });

  it('NAKs a status read with nothing to say until the transfer times out', async () => {
    const dev = await openRaw();
    await expect(dev.transferIn(1, 13, 30)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await expect(UsbBotDevice.open(dev)).resolves.toBeInstanceOf(UsbBotDevice);
  });
});
