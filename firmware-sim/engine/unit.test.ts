/**
 * The engine's shared rules, on a small example device: how a unit is assembled, and
 * what every unit does before and around its handlers.
 */
import { describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { decodeSense, isSense, Sense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { getU16, getU32 } from '../../src/scsi/bytes.js';
import type { ScsiResponse } from '../../src/transport/scsi-port.js';
import { installSpc, spcCommands } from '../spc/index.js';
import { MemoryPort } from '../front/memory-port.js';
import { DispatchTable, fail, hangUntilAborted, usage, type CommandSpec } from './index.js';
import { EmulatedUnit } from './unit.js';
import { encodeLogPage, counter } from './log-pages.js';
import { StoredModePage } from './mode-pages.js';
import { TaskManagement } from './types.js';

/** A toy device: a counter with a command to bump it, one that hangs, and one with a bug. */
interface Counter {
  value: number;
  ready: boolean;
}

const BUMP = 0xc0;
const HANG = 0xc1;
const BUGGY = 0xc2;

function makeUnit(): EmulatedUnit<Counter> {
  const own: CommandSpec<Counter>[] = [
    { opcode: BUMP, name: 'BUMP', usage: usage(6, { 4: 0xff }), handler: (x) => { x.device.value += x.cdb[4] ?? 0; return Uint8Array.of(x.device.value); } },
    { opcode: HANG, name: 'HANG', usage: usage(6), handler: (x) => hangUntilAborted(x.signal) },
    { opcode: BUGGY, name: 'BUGGY', usage: usage(6), handler: () => { throw new TypeError('oops'); } },
  ];
  const device: Counter = { value: 0, ready: true };
  const unit = new EmulatedUnit<Counter>({
    name: 'test/counter',
    deviceType: 0x01,
    identity: { vendor: 'PTPVTS', product: 'COUNTER', revision: '0001', serial: 'C0FFEE01' },
    table: new DispatchTable<Counter>([...spcCommands<Counter>(), ...own]),
    device,
    hooks: { notReady: () => (device.ready ? undefined : { key: 2, asc: 0x3a, ascq: 0 }) },
  });
  installSpc(unit);
  unit.modePages.add(new StoredModePage(0x10, Uint8Array.of(0x10, 0x02, 0x00, 0x05), Uint8Array.of(0, 0, 0xff, 0x00)));
  unit.logPages.add({ page: 0x0c, subpage: 0, name: 'counter', parameters: () => [{ code: 0, control: 0x03, value: counter(device.value, 4) }] });
  return unit;
}

const raw = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);

async function cmd(port: MemoryPort, cdb: Uint8Array, dataInLength = 255, dataOut?: Uint8Array): Promise<ScsiResponse> {
  return port.execute(dataOut ? { cdb, direction: 'out', dataOut } : { cdb, direction: 'in', dataInLength });
}

async function cleared(port: MemoryPort): Promise<void> {
  // The power-on unit attention is pending for every new initiator.
  const r = await port.execute(Cdb.testUnitReady());
  expect(isSense(decodeSense(r.sense), Sense.POWER_ON_RESET)).toBe(true);
}

describe('engine: shared command rules', () => {
  it('reports the power-on unit attention once per initiator, then runs commands', async () => {
    const unit = makeUnit();
    const a = new MemoryPort(unit);
    const b = new MemoryPort(unit);
    await cleared(a);
    expect((await a.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
    await cleared(b);
    expect(unit.bugs).toEqual([]);
  });

  it('answers INQUIRY and REPORT LUNS without clearing a unit attention', async () => {
    const unit = makeUnit();
    const p = new MemoryPort(unit);
    const inq = await p.execute(Cdb.inquiry());
    expect(inq.status).toBe(ScsiStatus.GOOD);
    expect(Buffer.from(inq.data.subarray(8, 16)).toString().trim()).toBe('PTPVTS');
    expect((await p.execute(Cdb.reportLuns())).status).toBe(ScsiStatus.GOOD);
    await cleared(p);
  });

  it('REQUEST SENSE reports a pending unit attention and clears it', async () => {
    const p = new MemoryPort(makeUnit());
    const rs = await p.execute(Cdb.requestSense());
    expect(isSense(decodeSense(rs.data), Sense.POWER_ON_RESET)).toBe(true);
    expect((await p.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
    const again = await p.execute(Cdb.requestSense());
    expect(isSense(decodeSense(again.data), Sense.NO_ADDITIONAL_SENSE)).toBe(true);
  });

  it('answers an unknown opcode with INVALID COMMAND OPERATION CODE pointing at byte 0', async () => {
    const p = new MemoryPort(makeUnit());
    await cleared(p);
    const r = await cmd(p, raw(0xd7, 0, 0, 0, 0, 0));
    expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
    const s = decodeSense(r.sense);
    expect(isSense(s, Sense.INVALID_COMMAND_OPERATION_CODE)).toBe(true);
    expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 0 });
  });

  it('refuses reserved bits with INVALID FIELD IN CDB naming the byte and bit', async () => {
    const p = new MemoryPort(makeUnit());
    await cleared(p);
    const r = await cmd(p, raw(BUMP, 0x20, 0, 0, 1, 0));
    const s = decodeSense(r.sense);
    expect(isSense(s, Sense.INVALID_FIELD_IN_CDB)).toBe(true);
    expect(s.fieldPointer).toEqual({ inCdb: true, byte: 1, bit: 5 });
    const ctl = decodeSense((await cmd(p, raw(BUMP, 0, 0, 0, 1, 0x04))).sense);
    expect(ctl.fieldPointer).toEqual({ inCdb: true, byte: 5, bit: 2 });
  });

  it('refuses a CDB shorter than its command', async () => {
    const p = new MemoryPort(makeUnit());
    await cleared(p);
    const r = await cmd(p, raw(0x5a, 0, 0x3f, 0, 0, 0)); // MODE SENSE(10) cut to 6 bytes
    expect(isSense(decodeSense(r.sense), Sense.INVALID_FIELD_IN_CDB)).toBe(true);
  });

  it('turns a handler bug into INTERNAL TARGET FAILURE and records it', async () => {
    const unit = makeUnit();
    const p = new MemoryPort(unit);
    await cleared(p);
    const r = await cmd(p, raw(BUGGY, 0, 0, 0, 0, 0));
    expect(isSense(decodeSense(r.sense), Sense.INTERNAL_TARGET_FAILURE)).toBe(true);
    expect(unit.bugs).toHaveLength(1);
    expect(unit.bugs[0]?.command).toBe('BUGGY');
  });

  it('returns the result itself when the handler answered at once, a promise when it waits', async () => {
    const unit = makeUnit();
    const ctx = (cdb: Uint8Array, signal = new AbortController().signal): Parameters<typeof unit.execute>[0] => ({ initiator: 'i1', cdb, dataInLength: 255, signal });
    const ua = unit.execute(ctx(Cdb.testUnitReady().cdb));
    expect(ua).not.toBeInstanceOf(Promise);
    expect((ua as { status: number }).status).toBe(ScsiStatus.CHECK_CONDITION);
    const bump = unit.execute(ctx(raw(BUMP, 0, 0, 0, 3, 0)));
    expect(bump).not.toBeInstanceOf(Promise);
    expect(bump).toMatchObject({ status: ScsiStatus.GOOD, data: Uint8Array.of(3) });
    const seen: number[] = [];
    unit.observe((_name, _cdb, r) => seen.push(r.status));
    const ac = new AbortController();
    const hung = unit.execute(ctx(raw(HANG, 0, 0, 0, 0, 0), ac.signal));
    expect(hung).toBeInstanceOf(Promise);
    expect(seen).toEqual([]);
    ac.abort();
    expect(await hung).toEqual({ status: ScsiStatus.TASK_ABORTED });
    expect(seen).toEqual([ScsiStatus.TASK_ABORTED]);
  });

  it('on an ordered unit, a command behind a waiting one waits (a promise); one that overtakes answers at once', async () => {
    const device: Counter = { value: 0, ready: true };
    let release: () => void = () => undefined;
    const unit = new EmulatedUnit<Counter>({
      name: 'test/ordered', deviceType: 0x01, device, ordered: true,
      identity: { vendor: 'PTPVTS', product: 'COUNTER', revision: '0001', serial: 'C0FFEE02' },
      table: new DispatchTable<Counter>([
        ...spcCommands<Counter>(),
        { opcode: BUMP, name: 'BUMP', usage: usage(6, { 4: 0xff }), handler: (x) => { x.device.value += x.cdb[4] ?? 0; return Uint8Array.of(x.device.value); } },
        { opcode: HANG, name: 'SLOW', usage: usage(6), handler: () => new Promise<undefined>((r) => (release = () => r(undefined))) },
      ]),
    });
    installSpc(unit);
    const ctx = (cdb: Uint8Array): Parameters<typeof unit.execute>[0] => ({ initiator: 'i1', cdb, dataInLength: 255, signal: new AbortController().signal });
    unit.execute(ctx(Cdb.testUnitReady().cdb));
    const slow = unit.execute(ctx(raw(HANG, 0, 0, 0, 0, 0)));
    expect(slow).toBeInstanceOf(Promise);
    const behind = unit.execute(ctx(raw(BUMP, 0, 0, 0, 5, 0)));
    expect(behind).toBeInstanceOf(Promise);
    expect(unit.execute(ctx(Cdb.testUnitReady().cdb))).toEqual({ status: ScsiStatus.GOOD });
    expect(device.value).toBe(0);
    release();
    expect(await slow).toEqual({ status: ScsiStatus.GOOD });
    expect(await behind).toMatchObject({ status: ScsiStatus.GOOD, data: Uint8Array.of(5) });
    // Once the queue is empty, commands answer at once again.
    await new Promise((r) => setTimeout(r, 0));
    expect(unit.execute(ctx(raw(BUMP, 0, 0, 0, 1, 0)))).toMatchObject({ status: ScsiStatus.GOOD, data: Uint8Array.of(6) });
  });

  it('a hung command completes with TASK ABORTED after a LOGICAL UNIT RESET, and the reset is reported', async () => {
    const unit = makeUnit();
    const p = new MemoryPort(unit);
    await cleared(p);
    const hung = cmd(p, raw(HANG, 0, 0, 0, 0, 0));
    await new Promise((r) => setTimeout(r, 5));
    expect(unit.inFlight()).toBe(1);
    unit.taskManagement(TaskManagement.logicalUnitReset, p.initiator);
    expect((await hung).status).toBe(ScsiStatus.TASK_ABORTED);
    const after = await p.execute(Cdb.testUnitReady());
    expect(isSense(decodeSense(after.sense), Sense.BUS_DEVICE_RESET)).toBe(true);
  });

  it('the memory port times out and cancels a hung command, and refuses after close', async () => {
    const unit = makeUnit();
    const p = new MemoryPort(unit);
    await cleared(p);
    await expect(p.execute({ cdb: raw(HANG, 0, 0, 0, 0, 0), direction: 'none', timeoutMs: 20 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    const ac = new AbortController();
    const pending = p.execute({ cdb: raw(HANG, 0, 0, 0, 0, 0), direction: 'none', signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ECANCELED' });
    await new Promise((r) => setTimeout(r, 1));
    expect(unit.inFlight()).toBe(0);
    await p.close();
    await expect(p.execute(Cdb.testUnitReady())).rejects.toMatchObject({ code: 'ECLOSED' });
    await expect(p.execute({ cdb: raw(0), direction: 'none' })).rejects.toMatchObject({ code: 'ECLOSED' });
  });

  it('validates requests before they reach the unit', async () => {
    const p = new MemoryPort(makeUnit());
    await expect(p.execute({ cdb: raw(0, 0), direction: 'none' })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(p.execute({ cdb: raw(0, 0, 0, 0, 0, 0), direction: 'in' })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('cuts Data-In to the expected length and reports the residual', async () => {
    const p = new MemoryPort(makeUnit());
    await cleared(p);
    const r = await p.execute({ ...Cdb.inquiry({ allocationLength: 96 }), dataInLength: 10 });
    expect(r.data).toHaveLength(10);
    expect(r.residual).toBe(0);
    const full = await p.execute({ ...Cdb.inquiry({ allocationLength: 200 }), dataInLength: 200 });
    expect(full.data).toHaveLength(96);
    expect(full.residual).toBe(104);
  });
});

describe('engine: SPC commands from the table', () => {
  it('INQUIRY VPD 00h lists 80h and 83h; an unknown page is refused', async () => {
    const p = new MemoryPort(makeUnit());
    const r = await p.execute(Cdb.inquiry({ page: 0x00 }));
    expect([...r.data.subarray(4)]).toEqual([0x00, 0x80, 0x83]);
    const sn = await p.execute(Cdb.inquiry({ page: 0x80 }));
    expect(Buffer.from(sn.data.subarray(4)).toString()).toBe('C0FFEE01');
    const id = await p.execute(Cdb.inquiry({ page: 0x83 }));
    expect(id.data[4]).toBe(0x02); // ASCII T10 vendor designator first
    const bad = await p.execute(Cdb.inquiry({ page: 0xc7 }));
    expect(decodeSense(bad.sense).fieldPointer).toMatchObject({ inCdb: true, byte: 2 });
  });

  it('REPORT LUNS refuses an allocation length under 16', async () => {
    const p = new MemoryPort(makeUnit());
    const r = await p.execute({ cdb: raw(0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0), direction: 'in', dataInLength: 8 });
    expect(decodeSense(r.sense).fieldPointer).toMatchObject({ inCdb: true, byte: 6 });
  });

  it('MODE SELECT of D_SENSE switches sense to descriptor format and tells the other initiators', async () => {
    const unit = makeUnit();
    const a = new MemoryPort(unit);
    const b = new MemoryPort(unit);
    await cleared(a);
    await cleared(b);
    const sensed = await a.execute(Cdb.modeSense6({ page: 0x0a, allocationLength: 255 }));
    const page = Uint8Array.from(sensed.data.subarray(4, 16));
    page[2] = (page[2] ?? 0) | 0x04;
    const params = new Uint8Array(4 + page.length);
    params.set(page, 4);
    expect((await a.execute(Cdb.modeSelect6(params))).status).toBe(ScsiStatus.GOOD);
    const r = await a.execute({ cdb: raw(0xd7, 0, 0, 0, 0, 0), direction: 'none' });
    expect(r.sense[0]).toBe(0x72);
    const other = await b.execute(Cdb.testUnitReady());
    expect(isSense(decodeSense(other.sense), Sense.MODE_PARAMETERS_CHANGED)).toBe(true);
    // The initiator that changed them is not told.
    expect((await a.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
  });

  it('MODE SELECT refuses a change to a bit that is not changeable, pointing into the parameter list', async () => {
    const p = new MemoryPort(makeUnit());
    await cleared(p);
    const params = raw(0, 0, 0, 0, 0x10, 0x02, 0x07, 0x01);
    const r = await p.execute(Cdb.modeSelect6(params));
    const s = decodeSense(r.sense);
    expect(isSense(s, Sense.INVALID_FIELD_IN_PARAMETER_LIST)).toBe(true);
    expect(s.fieldPointer).toEqual({ inCdb: false, byte: 7, bit: 2 });
    const ok = await p.execute(Cdb.modeSelect6(raw(0, 0, 0, 0, 0x10, 0x02, 0x07, 0x05)));
    expect(ok.status).toBe(ScsiStatus.GOOD);
    const back = await p.execute(Cdb.modeSense6({ page: 0x10, allocationLength: 255 }));
    expect(back.data[6]).toBe(0x07);
  });

  it('MODE SENSE of page 00h answers the header alone, as Linux st asks at open', async () => {
    const p = new MemoryPort(makeUnit());
    await cleared(p);
    const r = await p.execute({ cdb: raw(0x1a, 0, 0, 0, 0x0c, 0), direction: 'in', dataInLength: 12 });
    expect(r.status).toBe(ScsiStatus.GOOD);
    expect([...r.data]).toEqual([3, 0, 0, 0]);
  });

  it('MODE SENSE changeable values show the mask; saved values are refused', async () => {
    const p = new MemoryPort(makeUnit());
    await cleared(p);
    const r = await p.execute(Cdb.modeSense10({ page: 0x10, pageControl: 1, allocationLength: 255 }));
    expect([...r.data.subarray(8)]).toEqual([0x10, 0x02, 0xff, 0x00]);
    const saved = await p.execute(Cdb.modeSense6({ page: 0x10, pageControl: 3, allocationLength: 255 }));
    expect(isSense(decodeSense(saved.sense), Sense.SAVING_PARAMETERS_NOT_SUPPORTED)).toBe(true);
  });

  it('LOG SENSE lists supported pages and returns a page; an unknown page is refused', async () => {
    const unit = makeUnit();
    const p = new MemoryPort(unit);
    await cleared(p);
    const sup = await p.execute(Cdb.logSense({ page: 0x00, allocationLength: 255 }));
    expect([...sup.data.subarray(4)]).toEqual([0x00, 0x0c]);
    unit.device.value = 9;
    const pg = await p.execute(Cdb.logSense({ page: 0x0c, allocationLength: 255 }));
    expect([...pg.data]).toEqual([...encodeLogPage(0x0c, 0, [{ code: 0, control: 0x03, value: counter(9, 4) }])]);
    const bad = await p.execute(Cdb.logSense({ page: 0x33, allocationLength: 255 }));
    expect(isSense(decodeSense(bad.sense), Sense.INVALID_FIELD_IN_CDB)).toBe(true);
  });

  it('REPORT SUPPORTED OPERATION CODES lists exactly the dispatch table', async () => {
    const unit = makeUnit();
    const p = new MemoryPort(unit);
    await cleared(p);
    const all = await p.execute(Cdb.reportSupportedOperationCodes({ allocationLength: 4096 }));
    const n = getU32(all.data, 0) / 8;
    expect(n).toBe(unit.table.all().length);
    const ops = Array.from({ length: n }, (_, i) => all.data[4 + 8 * i]);
    expect(ops).toContain(BUMP);
    const one = await p.execute(Cdb.reportSupportedOperationCodes({ opcode: BUMP, allocationLength: 64 }));
    expect(one.data[1]! & 0x07).toBe(0x03);
    expect(getU16(one.data, 2)).toBe(6);
    expect([...one.data.subarray(4, 10)]).toEqual([BUMP, 0, 0, 0, 0xff, 0]);
    const none = await p.execute(Cdb.reportSupportedOperationCodes({ opcode: 0xd7, allocationLength: 64 }));
    expect(none.data[1]! & 0x07).toBe(0x01);
  });

  it('TEST UNIT READY reports what the device says is wrong', async () => {
    const unit = makeUnit();
    const p = new MemoryPort(unit);
    await cleared(p);
    unit.device.ready = false;
    const r = await p.execute(Cdb.testUnitReady());
    expect(isSense(decodeSense(r.sense), Sense.MEDIUM_NOT_PRESENT)).toBe(true);
  });

  it('a handler can throw a catalogued condition', async () => {
    const unit = new EmulatedUnit<null>({
      name: 't', deviceType: 1, device: null,
      identity: { vendor: 'X', product: 'Y', revision: '1', serial: '1' },
      table: new DispatchTable<null>([{ opcode: 0xc0, name: 'X', usage: usage(6), handler: () => fail(Sense.WRITE_PROTECTED) }]),
    });
    const p = new MemoryPort(unit);
    const first = await p.execute({ cdb: raw(0xc0, 0, 0, 0, 0, 0), direction: 'none' });
    expect(isSense(decodeSense(first.sense), Sense.POWER_ON_RESET)).toBe(true);
    const r = await p.execute({ cdb: raw(0xc0, 0, 0, 0, 0, 0), direction: 'none' });
    expect(isSense(decodeSense(r.sense), Sense.WRITE_PROTECTED)).toBe(true);
  });
});
