import { describe, expect, it } from 'vitest';
import { Sense, SenseKey, SpaceCode } from '../scsi/index.js';
import { asciiAttribute, AttributeId, buildWriteAttributeList } from '../scsi/parse-attribute.js';
import { buildLogPage } from '../scsi/parse-log.js';
import { buildBlockLimits, buildLongPosition, buildShortPosition } from '../scsi/parse-tape.js';
import { TransportError } from '../transport/scsi-port.js';
import { ResponseFormatError, SenseError, StatusError, VolumeOverflowError } from './errors.js';
import { TapeDrive } from './tape-drive.js';

import { FakePort } from '../../test/kit/scripted-port.js';

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

function drive(port: FakePort, opts: ConstructorParameters<typeof TapeDrive>[1] = {}): TapeDrive {
  return new TapeDrive(port, { sleep: async () => {}, ...opts });
}

describe('TapeDrive: error mapping', () => {
  it('maps CHECK CONDITION to SenseError with names, flags and command', async () => {
    const port = new FakePort().on(0x01, { sense: { ...Sense.MEDIUM_NOT_PRESENT } });
    const err = await drive(port).rewind().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SenseError);
    const e = err as SenseError;
    expect(e.name).toBe('SenseError');
    expect(e.code).toBe('ESENSE');
    expect(e.message).toBe('NOT READY / MEDIUM NOT PRESENT (REWIND)');
    expect(e).toMatchObject({ key: 2, asc: 0x3a, ascq: 0, keyName: 'NOT READY', ascName: 'MEDIUM NOT PRESENT', commandName: 'REWIND', opcode: 0x01, filemark: false, eom: false, ili: false });
    expect(e.is(Sense.MEDIUM_NOT_PRESENT)).toBe(true);
  });

  it('carries the field pointer of ILLEGAL REQUEST, from descriptor sense too', async () => {
    const port = new FakePort().on(0x2b, { sense: { ...Sense.INVALID_FIELD_IN_CDB, fieldPointer: { inCdb: true, byte: 1, bit: 1 } }, format: 'descriptor' });
    const e = (await drive(port).locate(5).catch((x: unknown) => x)) as SenseError;
    expect(e.message).toBe('ILLEGAL REQUEST / INVALID FIELD IN CDB (LOCATE(10))');
    expect(e.fieldPointer).toEqual({ inCdb: true, byte: 1, bit: 1 });
    expect(e.sense.format).toBe('descriptor');
  });

  it('maps BUSY and RESERVATION CONFLICT to StatusError', async () => {
    const port = new FakePort().on(0x00, [{ status: 0x08 }, { status: 0x18 }]);
    const t = drive(port);
    await expect(t.testUnitReady()).rejects.toMatchObject({ name: 'StatusError', code: 'EBUSY', statusName: 'BUSY', commandName: 'TEST UNIT READY' });
    const e = await t.testUnitReady().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StatusError);
    expect(e).toMatchObject({ code: 'ERESERVATION', message: 'RESERVATION CONFLICT (TEST UNIT READY)' });
  });

  it('passes TransportError through unchanged (timeout, cancel)', async () => {
    const te = new TransportError('ETIMEDOUT', 'timed out');
    const port = new FakePort().on(0x01, te);
    await expect(drive(port).rewind()).rejects.toBe(te);
  });

  it('fetches sense with REQUEST SENSE when the port has no autosense', async () => {
    const port = new FakePort().on(0x01, { status: 0x02 });
    const { encodeSense } = await import('../scsi/index.js');
    port.on(0x03, { data: encodeSense({ ...Sense.WRITE_PROTECTED }) });
    const e = (await drive(port).rewind().catch((x: unknown) => x)) as SenseError;
    expect(e.message).toBe('DATA PROTECT / WRITE PROTECTED (REWIND)');
  });

  it('undecodable sense becomes StatusError with the cause', async () => {
    const port: FakePort = new FakePort();
    port.execute = async (req) => ({ status: 2, data: new Uint8Array(0), sense: Uint8Array.from([0x00, 1, 2]), residual: req.dataInLength ?? 0 });
    const e = (await drive(port).rewind().catch((x: unknown) => x)) as StatusError;
    expect(e).toBeInstanceOf(StatusError);
    expect(e.cause).toBeInstanceOf(Error);
  });

  it('hands timeouts to the port: motion default, per-call override', async () => {
    const port = new FakePort();
    const t = drive(port, { timeoutMs: 5000, motionTimeoutMs: 60_000 });
    await t.rewind();
    await t.rewind({ timeoutMs: 10 });
    await t.testUnitReady();
    expect(port.requests.map((r) => r.timeoutMs)).toEqual([60_000, 10, 5000]);
  });

  it('malformed parameter data becomes ResponseFormatError', async () => {
    const port = new FakePort().on(0x34, { data: new Uint8Array(10) });
    await expect(drive(port).position({ form: 'short' })).rejects.toBeInstanceOf(ResponseFormatError);
  });
});

describe('TapeDrive: reads', () => {
  it('a full block is GOOD', async () => {
    const port = new FakePort().on(0x08, { data: Uint8Array.from([1, 2, 3, 4]) });
    const r = await drive(port).read(4);
    expect(port.cdbs[0]).toEqual([0x08, 0x00, 0, 0, 4, 0]);
    expect(r).toMatchObject({ residue: 0, filemark: false, eod: false, ili: false, blockLength: 4 });
    expect([...r.data]).toEqual([1, 2, 3, 4]);
  });

  it('a filemark is a result, not an error', async () => {
    const port = new FakePort().on(0x08, { sense: { ...Sense.FILEMARK_DETECTED, filemark: true, information: 65536 } });
    const r = await drive(port).read(65536);
    expect(r).toMatchObject({ filemark: true, eod: false, residue: 65536 });
    expect(r.data.length).toBe(0);
  });

  it('end of data (BLANK CHECK) is a result with eod', async () => {
    const port = new FakePort().on(0x08, { sense: { ...Sense.END_OF_DATA_DETECTED, information: 512 } });
    expect(await drive(port).read(512)).toMatchObject({ eod: true, filemark: false, residue: 512 });
  });

  it('a short block sets ili and trims data; a long block gives a negative residue', async () => {
    const port = new FakePort().on(0x08, [
      { sense: { ...Sense.NO_ADDITIONAL_SENSE, ili: true, information: 6 }, data: Uint8Array.from([9, 9, 9, 9, 0, 0, 0, 0, 0, 0]) },
      { sense: { ...Sense.NO_ADDITIONAL_SENSE, ili: true, information: -4 }, data: Uint8Array.from([1, 2]) },
    ]);
    const t = drive(port);
    const short = await t.read(10);
    expect(short).toMatchObject({ ili: true, residue: 6, blockLength: 4 });
    expect([...short.data]).toEqual([9, 9, 9, 9]);
    const long = await t.read(2);
    expect(long).toMatchObject({ ili: true, residue: -4, blockLength: 6 });
    expect(long.data.length).toBe(2);
  });

  it('fixed mode: a filemark after some blocks returns those blocks', async () => {
    const port = new FakePort().on(0x08, { sense: { ...Sense.FILEMARK_DETECTED, filemark: true, information: 2 }, data: new Uint8Array(3 * 512).fill(7) });
    const r = await drive(port).readBlocks(3, { blockSize: 512 });
    expect(port.cdbs[0]).toEqual([0x08, 0x01, 0, 0, 3, 0]);
    expect(port.requests[0]?.dataInLength).toBe(1536);
    expect(r.data.length).toBe(512);
    expect(r).toMatchObject({ filemark: true, residue: 2 });
  });

  it('a medium error still throws SenseError', async () => {
    const port = new FakePort().on(0x08, { sense: { ...Sense.UNRECOVERED_READ_ERROR } });
    await expect(drive(port).read(10)).rejects.toMatchObject({ keyName: 'MEDIUM ERROR', ascName: 'UNRECOVERED READ ERROR', commandName: 'READ(6)' });
  });

  it('fixed mode without a known block size is refused before sending', async () => {
    const port = new FakePort();
    await expect(drive(port).readBlocks(1)).rejects.toBeInstanceOf(RangeError);
    expect(port.requests).toHaveLength(0);
  });
});

describe('TapeDrive: writes and early warning', () => {
  it('GOOD write', async () => {
    const port = new FakePort();
    const r = await drive(port).writeBlock(new Uint8Array(300));
    expect(port.cdbs[0]).toEqual([0x0a, 0x00, 0x00, 0x01, 0x2c, 0x00]);
    expect(port.requests[0]?.direction).toBe('out');
    expect(r).toEqual({ written: 300, earlyWarning: false, programmableEarlyWarning: false, recovered: false });
  });

  it('NO SENSE + EOM is early warning, not an error (ASC 0000 and 0002)', async () => {
    const port = new FakePort().on(0x0a, [{ sense: { ...Sense.NO_ADDITIONAL_SENSE, eom: true } }, { sense: { ...Sense.END_OF_PARTITION_MEDIUM_DETECTED, eom: true, information: 0 } }]);
    const t = drive(port);
    expect(await t.writeBlock(new Uint8Array(10))).toMatchObject({ written: 10, earlyWarning: true });
    expect(await t.writeBlock(new Uint8Array(10))).toMatchObject({ written: 10, earlyWarning: true });
  });

  it('programmable early warning is reported', async () => {
    const port = new FakePort().on(0x0a, { sense: { ...Sense.PROGRAMMABLE_EARLY_WARNING } });
    expect(await drive(port).writeBlock(new Uint8Array(1))).toMatchObject({ earlyWarning: false, programmableEarlyWarning: true });
  });

  it('fixed-mode early warning with residue counts blocks written', async () => {
    const port = new FakePort().on(0x0a, { sense: { ...Sense.NO_ADDITIONAL_SENSE, eom: true, information: 1 } });
    const r = await drive(port).writeBlocks(new Uint8Array(4 * 512), { blockSize: 512 });
    expect(port.cdbs[0]).toEqual([0x0a, 0x01, 0, 0, 4, 0]);
    expect(r).toMatchObject({ written: 3 * 512, earlyWarning: true });
  });

  it('VOLUME OVERFLOW is a typed error with the residue', async () => {
    const port = new FakePort().on(0x0a, { sense: { ...Sense.VOLUME_OVERFLOW_EOM, eom: true, information: 100 } });
    const e = await drive(port).writeBlock(new Uint8Array(100)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VolumeOverflowError);
    expect(e).toBeInstanceOf(SenseError);
    expect(e).toMatchObject({ name: 'VolumeOverflowError', code: 'EVOLOVERFLOW', notWritten: 100, key: SenseKey.VOLUME_OVERFLOW, message: 'VOLUME OVERFLOW / END-OF-PARTITION/MEDIUM DETECTED (WRITE(6))' });
  });

  it('WRITE ERROR and WRITE PROTECTED throw SenseError', async () => {
    const port = new FakePort().on(0x0a, [{ sense: { ...Sense.WRITE_ERROR } }, { sense: { ...Sense.WRITE_PROTECTED } }]);
    const t = drive(port);
    await expect(t.writeBlock(new Uint8Array(1))).rejects.toThrow('MEDIUM ERROR / WRITE ERROR (WRITE(6))');
    await expect(t.writeBlock(new Uint8Array(1))).rejects.toThrow('DATA PROTECT / WRITE PROTECTED (WRITE(6))');
  });

  it('write filemarks reports early warning too', async () => {
    const port = new FakePort().on(0x10, { sense: { ...Sense.NO_ADDITIONAL_SENSE, eom: true } });
    expect(await drive(port).writeFilemarks(2)).toMatchObject({ written: 2, earlyWarning: true });
    expect(port.cdbs[0]).toEqual([0x10, 0, 0, 0, 2, 0]);
  });
});

describe('TapeDrive: positioning', () => {
  it('space: stops at a filemark with residue', async () => {
    const port = new FakePort().on(0x11, { sense: { ...Sense.FILEMARK_DETECTED, filemark: true, information: 7 } });
    const r = await drive(port).space(SpaceCode.blocks, 10);
    expect(port.cdbs[0]).toEqual([0x11, 0x00, 0, 0, 10, 0]);
    expect(r).toMatchObject({ residue: 7, filemark: true, eod: false });
  });

  it('space backward to BOP and forward to EOD', async () => {
    const port = new FakePort().on(0x11, [{ sense: { ...Sense.BEGINNING_OF_PARTITION_MEDIUM_DETECTED, eom: true, information: -2 } }, { sense: { ...Sense.END_OF_DATA_DETECTED, information: 3 } }]);
    const t = drive(port);
    expect(await t.space(SpaceCode.filemarks, -5)).toMatchObject({ bop: true, eom: false, residue: 2 });
    expect(port.cdbs[0]).toEqual([0x11, 0x01, 0xff, 0xff, 0xfb, 0]);
    expect(await t.space(SpaceCode.filemarks, 5)).toMatchObject({ eod: true, residue: 3 });
  });

  it('space uses SPACE(16) for large counts', async () => {
    const port = new FakePort();
    await drive(port).space(SpaceCode.blocks, 0x1000000);
    expect(port.cdbs[0]?.[0]).toBe(0x91);
  });

  it('locate picks LOCATE(10) or LOCATE(16)', async () => {
    const port = new FakePort();
    const t = drive(port);
    await t.locate(0x01020304, { partition: 1 });
    await t.locate(0x100000000n);
    await t.locate(3, { destType: 1 });
    expect(port.cdbs[0]).toEqual([0x2b, 0x02, 0, 0x01, 0x02, 0x03, 0x04, 0, 1, 0]);
    expect(port.cdbs[1]?.slice(0, 12)).toEqual([0x92, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    expect(port.cdbs[2]?.[1]).toBe(0x08);
  });

  it('position long and short forms', async () => {
    const port = new FakePort().on(0x34, (req) =>
      req.cdb[1] === 0x06
        ? { data: buildLongPosition({ bop: false, eop: false, mpu: false, lonu: false, bpew: true, partition: 1, block: 42n, fileNumber: 3n }) }
        : { data: buildShortPosition({ bop: true, eop: false, locu: false, bycu: false, lolu: false, perr: false, bpew: false, partition: 0, block: 0, lastBlock: 0, objectsInBuffer: 0, bytesInBuffer: 0 }) },
    );
    const t = drive(port);
    expect(await t.position()).toEqual({ form: 'long', partition: 1, block: 42, fileNumber: 3, bop: false, eop: false, bpew: true, unknown: false });
    expect(await t.position({ form: 'short' })).toMatchObject({ form: 'short', bop: true, block: 0 });
    expect(port.cdbs.map((c) => c[1])).toEqual([0x06, 0x00]);
  });

  it('load, unload, erase and prevent/allow send the SSC bits', async () => {
    const port = new FakePort();
    const t = drive(port);
    await t.load();
    await t.unload({ hold: true });
    await t.erase({ long: true });
    await t.preventRemoval();
    await t.allowRemoval();
    expect(port.cdbs).toEqual([
      [0x1b, 0, 0, 0, 0x01, 0],
      [0x1b, 0, 0, 0, 0x08, 0],
      [0x19, 0x01, 0, 0, 0, 0],
      [0x1e, 0, 0, 0, 0x01, 0],
      [0x1e, 0, 0, 0, 0x00, 0],
    ]);
  });
});

describe('TapeDrive: identity, modes, logs, attributes', () => {
  it('inquiry and vpd pages', async () => {
    const inq = new Uint8Array(96);
    inq[0] = 0x01; inq[1] = 0x80; inq[2] = 6; inq[3] = 2; inq[4] = 91;
    inq.set(ascii('PTPVTS  LTO-EMU         0001'), 8);
    const port = new FakePort().on(0x12, (req) => {
      if ((req.cdb[1] ?? 0) & 1) {
        const page = req.cdb[2] ?? 0;
        if (page === 0x80) return { data: Uint8Array.from([1, 0x80, 0, 4, ...ascii('S123')]) };
        if (page === 0xb0) return { data: Uint8Array.from([1, 0xb0, 0, 2, 1, 0]) };
        return { data: Uint8Array.from([1, 0, 0, 3, 0, 0x80, 0xb0]) };
      }
      return { data: inq };
    });
    const t = drive(port);
    expect(await t.inquiry()).toMatchObject({ deviceType: 1, removable: true, vendor: 'PTPVTS', product: 'LTO-EMU', revision: '0001' });
    expect(await t.supportedVpdPages()).toEqual([0, 0x80, 0xb0]);
    expect(await t.unitSerialNumber()).toBe('S123');
    expect(await t.capabilities()).toEqual({ worm: true, tsmc: false });
  });

  it('read block limits', async () => {
    const port = new FakePort().on(0x05, { data: buildBlockLimits({ granularity: 0, maxBlockLength: 0x800000, minBlockLength: 1 }) });
    expect(await drive(port).readBlockLimits()).toEqual({ granularity: 0, maxBlockLength: 0x800000, minBlockLength: 1 });
  });

  it('setBlockSize keeps density and buffered mode from MODE SENSE', async () => {
    const sensed = Uint8Array.from([11, 0, 0x10, 8, 0x5e, 0, 0, 0, 0, 0, 0, 0]);
    const port = new FakePort().on(0x1a, { data: sensed });
    const t = drive(port);
    await t.setBlockSize(65536);
    const sel = port.requests[1];
    expect(port.cdbs[1]).toEqual([0x15, 0x10, 0, 0, 12, 0]);
    expect([...(sel?.dataOut ?? [])]).toEqual([0, 0, 0x10, 8, 0x5e, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
    expect(t.knownBlockSize).toBe(65536);
  });

  it('modeSense re-reads when the answer was cut (10-byte form)', async () => {
    const full = new Uint8Array(1500);
    full[0] = (1498 >> 8) & 0xff;
    full[1] = 1498 & 0xff;
    const port = new FakePort().on(0x5a, { data: full });
    const m = await drive(port).modeSense(0x3f, { form: 10 });
    expect(port.requests.map((r) => r.dataInLength)).toEqual([1024, 1500]);
    expect(m.truncated).toBe(false);
  });

  it('TapeAlert flags by name', async () => {
    const flag = (n: number, on: boolean) => ({ code: n, du: false, tsd: false, etc: false, tmc: 0, formatAndLinking: 3, value: Uint8Array.from([on ? 1 : 0]) });
    const page = buildLogPage({ pageCode: 0x2e, subpage: 0, ds: false, spf: false, parameters: [flag(1, false), flag(20, true), flag(21, true)] });
    const port = new FakePort().on(0x4d, { data: page });
    expect(await drive(port).tapeAlerts()).toEqual([
      { flag: 20, name: 'Clean now' },
      { flag: 21, name: 'Clean periodic' },
    ]);
    expect(port.cdbs[0]?.[2]).toBe(0x40 | 0x2e);
  });

  it('readAttributes re-reads when AVAILABLE DATA exceeds the first allocation', async () => {
    const attrs = Array.from({ length: 200 }, (_, i) => asciiAttribute(0x1000 + i, 'v', 32));
    const list = buildWriteAttributeList(attrs);
    const port = new FakePort().on(0x8c, { data: list });
    const got = await drive(port).readAttributes();
    expect(got).toHaveLength(200);
    expect(port.requests.map((r) => r.dataInLength)).toEqual([4096, list.length]);
  });

  it('writeAttribute sends a sorted parameter list', async () => {
    const port = new FakePort();
    await drive(port).writeAttributes([asciiAttribute(AttributeId.BARCODE, 'A00001L9'), asciiAttribute(AttributeId.APPLICATION_NAME, 'ptpvts')]);
    const r = port.requests[0];
    expect(r?.cdb[0]).toBe(0x8d);
    expect(r?.dataOut?.[4]).toBe(0x08);
    expect(r?.dataOut?.[5]).toBe(0x01);
  });

  it('waitReady polls through NOT READY and UNIT ATTENTION, gives up on manual intervention', async () => {
    const port = new FakePort().on(0x00, [{ sense: { ...Sense.POWER_ON_RESET } }, { sense: { ...Sense.BECOMING_READY } }, { sense: { ...Sense.MEDIUM_NOT_PRESENT } }, {}]);
    await drive(port).waitReady();
    expect(port.requests).toHaveLength(4);
    const p2 = new FakePort().on(0x00, { sense: { ...Sense.MANUAL_INTERVENTION_REQUIRED } });
    await expect(drive(p2).waitReady()).rejects.toMatchObject({ ascName: 'LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED' });
  });

  it('waitReady throws the last NOT READY at the deadline', async () => {
    let now = 0;
    const port = new FakePort().on(0x00, { sense: { ...Sense.BECOMING_READY } });
    const t = new TapeDrive(port, { now: () => now, sleep: async (ms) => void (now += ms) });
    await expect(t.waitReady({ timeoutMs: 5000, intervalMs: 1000 })).rejects.toMatchObject({ keyName: 'NOT READY' });
    expect(port.requests.length).toBeGreaterThanOrEqual(5);
  });
});
