/**
 * The drive features backup software relies on: READ BLOCK LIMITS with MLOI, READ(16),
 * WRITE(16), VERIFY(6), IMMED with deferred errors, data compression (mode page 0Fh, log
 * pages 1Bh/32h, capacity) and AES-256-GCM encryption (SECURITY PROTOCOL IN/OUT).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getU16, getU32, getU64, setU16, setU32, setU64 } from '../../src/scsi/bytes.js';
import * as Cdb from '../../src/scsi/cdb.js';
import { decodeSense, Sense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { MemoryPort } from '../front/memory-port.js';
import { drivePersonality } from '../personalities/drives.js';
import { decodeBlock, encodeBlock, ENVELOPE_MAGIC, inspectBlock } from './codec.js';
import { createTapeDrive, DriveSense } from './index.js';
import { cdb, drain, expectGood, expectSense, pattern, raw, rig, type Rig } from './test-kit.js';

let r: Rig;
beforeEach(async () => {
  r = await rig();
});
afterEach(() => {
  r.lu.unit.timeScale = 0;
  r.cleanup();
});

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const OTHER_KEY = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);

function read16(loi: number, length: number, o: { partition?: number; sili?: boolean } = {}): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = 0x88;
  b[1] = o.sili ? 0x02 : 0;
  b[3] = o.partition ?? 0;
  setU64(b, 4, loi);
  b[12] = length >> 16;
  b[13] = (length >> 8) & 0xff;
  b[14] = length & 0xff;
  return b;
}

function write16(loi: number, length: number): Uint8Array {
  const b = read16(loi, length);
  b[0] = 0x8a;
  return b;
}

function verify6(o: { length: number; vte?: boolean; bytcmp?: boolean; fixed?: boolean }): Uint8Array {
  return raw(0x13, (o.vte ? 0x20 : 0) | (o.bytcmp ? 0x02 : 0) | (o.fixed ? 0x01 : 0), o.length >> 16, (o.length >> 8) & 0xff, o.length & 0xff, 0);
}

function spin(protocol: number, page: number, alloc = 8192): Uint8Array {
  const b = new Uint8Array(12);
  b[0] = 0xa2;
  b[1] = protocol;
  setU16(b, 2, page);
  setU32(b, 6, alloc);
  return b;
}

function spout(params: Uint8Array): Uint8Array {
  const b = new Uint8Array(12);
  b[0] = 0xb5;
  b[1] = 0x20;
  setU16(b, 2, 0x0010);
  setU32(b, 6, params.length);
  return b;
}

/** A set data encryption page (SSC-4 8.5.3.2). */
function setDataEncryption(o: { encrypt: number; decrypt: number; key?: Uint8Array; keyLength?: number; ukad?: Uint8Array; akad?: Uint8Array; ckod?: boolean }): Uint8Array {
  const key = o.key ?? new Uint8Array(0);
  const kads: Uint8Array[] = [];
  for (const [type, v] of [[0, o.ukad], [1, o.akad]] as const) {
    if (!v) continue;
    const d = new Uint8Array(4 + v.length);
    d[0] = type;
    setU16(d, 2, v.length);
    d.set(v, 4);
    kads.push(d);
  }
  const kadLen = kads.reduce((n, k) => n + k.length, 0);
  const b = new Uint8Array(20 + key.length + kadLen);
  setU16(b, 0, 0x0010);
  setU16(b, 2, b.length - 4);
  b[4] = 0x40; // SCOPE: all I_T nexus
  b[5] = o.ckod ? 0x04 : 0;
  b[6] = o.encrypt;
  b[7] = o.decrypt;
  b[8] = o.encrypt || o.decrypt ? 0x01 : 0;
  setU16(b, 18, o.keyLength ?? key.length);
  b.set(key, 20);
  let off = 20 + key.length;
  for (const k of kads) {
    b.set(k, off);
    off += k.length;
  }
  return b;
}

async function setEncryption(port: MemoryPort, o: Parameters<typeof setDataEncryption>[0]): Promise<void> {
  const p = setDataEncryption(o);
  expectGood(await cdb(port, spout(p), 0, p));
}

async function setCompression(on: boolean): Promise<void> {
  const cur = await r.port.execute(Cdb.modeSense6({ page: 0x0f, disableBlockDescriptors: true }));
  const page = Uint8Array.from(cur.data.subarray(4));
  page[2] = ((page[2] ?? 0) & 0x7f) | (on ? 0x80 : 0);
  const params = new Uint8Array(4 + page.length);
  params.set(page, 4);
  expectGood(await r.port.execute(Cdb.modeSelect6(params)));
}

function cartridgeBytes(): Buffer {
  r.lu.drive.flush();
  return readFileSync(r.lu.drive.cartridge!.path);
}

/** Log page parameters by code. */
async function logParams(page: number): Promise<Map<number, Uint8Array>> {
  const res = await r.port.execute(Cdb.logSense({ page, allocationLength: 4096 }));
  expectGood(res);
  const m = new Map<number, Uint8Array>();
  for (let off = 4; off < res.data.length; ) {
    const len = res.data[off + 3] ?? 0;
    m.set(getU16(res.data, off), res.data.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return m;
}

const compressible = (n: number): Uint8Array => Buffer.from('backup catalogue entry 0042; '.repeat(Math.ceil(n / 29))).subarray(0, n);

describe('READ BLOCK LIMITS', () => {
  it('answers 6 bytes without MLOI, as sg_read_block_limits decodes them', async () => {
    const res = await cdb(r.port, raw(0x05, 0, 0, 0, 0, 0), 6);
    expectGood(res);
    expect(res.data).toHaveLength(6);
    expect((res.data[0] ?? 0) & 0x1f).toBe(0); // granularity
    expect(getU32(res.data, 0) & 0xffffff).toBe(0x800000);
    expect(getU16(res.data, 4)).toBe(1);
  });

  it('with MLOI (SSC-4) answers 20 bytes, the maximum logical object identifier at bytes 12..19', async () => {
    const res = await cdb(r.port, raw(0x05, 0x01, 0, 0, 0, 0), 20);
    expectGood(res);
    expect(res.data).toHaveLength(20);
    expect(getU64(res.data, 12)).toBe(0xffffffffn);
    expect([...res.data.subarray(0, 12)].every((x) => x === 0)).toBe(true);
  });

  it('an SSC-3 drive (LTO-5) refuses MLOI as a reserved bit', async () => {
    const lu = createTapeDrive({ personality: drivePersonality('ibm-lto5-hh'), serial: 'L5' });
    const port = new MemoryPort(lu);
    await drain(port);
    const s = expectSense(await cdb(port, raw(0x05, 0x01, 0, 0, 0, 0), 20), Sense.INVALID_FIELD_IN_CDB);
    expect(s.fieldPointer).toEqual({ inCdb: true, byte: 1, bit: 0 });
    expectGood(await cdb(port, raw(0x05, 0, 0, 0, 0, 0), 6));
    lu.close();
  });
});

describe('READ(16), WRITE(16), VERIFY(6)', () => {
  it('WRITE(16) and READ(16) locate to the logical object given before transferring', async () => {
    await r.load();
    const blocks = [pattern(100, 1), pattern(200, 2), pattern(300, 3)];
    for (const [i, b] of blocks.entries()) expectGood(await cdb(r.port, write16(i, b.length), 0, b));
    expect(r.lu.drive.position).toBe(3);
    const second = await cdb(r.port, read16(1, 200), 200);
    expectGood(second);
    expect(second.data).toEqual(blocks[1]);
    expect(r.lu.drive.position).toBe(2);
    // Writing at object 1 overwrites from there: EOD moves to 2.
    const replacement = pattern(50, 9);
    expectGood(await cdb(r.port, write16(1, 50), 0, replacement));
    expect(r.lu.drive.media?.objectCount).toBe(2);
    const back = await cdb(r.port, read16(1, 50), 50);
    expect(back.data).toEqual(replacement);
  });

  it('READ(16) beyond end of data answers BLANK CHECK at end of data; another partition is refused', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.write6(pattern(10, 1))));
    expectSense(await cdb(r.port, read16(5, 10), 10), Sense.END_OF_DATA_DETECTED);
    expect(r.lu.drive.position).toBe(1);
    const s = expectSense(await cdb(r.port, read16(0, 10, { partition: 1 }), 10), Sense.INVALID_FIELD_IN_CDB);
    expect(s.fieldPointer).toMatchObject({ inCdb: true, byte: 3 });
  });

  it('VERIFY(6) checks a block without transferring it; BYTCMP finds a difference; VTE verifies to end of data', async () => {
    await r.load();
    const a = pattern(500, 1);
    expectGood(await r.port.execute(Cdb.write6(a)));
    expectGood(await r.port.execute(Cdb.writeFilemarks6(1)));
    expectGood(await r.port.execute(Cdb.write6(pattern(700, 2))));
    expectGood(await r.port.execute(Cdb.rewind()));
    const v = await cdb(r.port, verify6({ length: 500 }));
    expectGood(v);
    expect(r.lu.drive.position).toBe(1);
    expectGood(await r.port.execute(Cdb.rewind()));
    expectGood(await cdb(r.port, verify6({ length: 500, bytcmp: true }), 0, a));
    expectGood(await r.port.execute(Cdb.rewind()));
    const wrong = Uint8Array.from(a);
    wrong[123] = (wrong[123] ?? 0) ^ 0xff;
    const s = expectSense(await cdb(r.port, verify6({ length: 500, bytcmp: true }), 0, wrong), DriveSense.MISCOMPARE_DURING_VERIFY);
    expect(s.information).toBe(500 - 123);
    expectGood(await r.port.execute(Cdb.rewind()));
    expectGood(await cdb(r.port, verify6({ length: 0, vte: true })));
    expect(r.lu.drive.position).toBe(3);
    // VTE with a length is a contradiction.
    expectSense(await cdb(r.port, verify6({ length: 5, vte: true })), Sense.INVALID_FIELD_IN_CDB);
  });

  it('REPORT SUPPORTED OPERATION CODES lists the new commands', async () => {
    const all = await r.port.execute(Cdb.reportSupportedOperationCodes({ allocationLength: 8192 }));
    const n = getU32(all.data, 0) / 8;
    const ops = new Set(Array.from({ length: n }, (_, i) => all.data[4 + 8 * i]));
    for (const op of [0x05, 0x13, 0x80, 0x88, 0x8a, 0x91, 0xa2, 0xb5]) expect(ops.has(op), `opcode 0x${op.toString(16)}`).toBe(true);
    const rbl = await r.port.execute(Cdb.reportSupportedOperationCodes({ opcode: 0x05, allocationLength: 64 }));
    expect(rbl.data[5]).toBe(0x01); // the MLOI bit is in the CDB usage data
  });
});

describe('IMMED and deferred errors', () => {
  it('REWIND with IMMED answers at once, the drive is busy until it is done, then at BOP', async () => {
    await r.load({ capacityBytes: 100_000 });
    for (let i = 0; i < 9; i++) expectGood(await r.port.execute(Cdb.write6(pattern(10_000, i))));
    r.lu.unit.timeScale = 0.002; // ~88 s full rewind -> ~160 ms here
    const t0 = Date.now();
    expectGood(await r.port.execute(Cdb.rewind({ immediate: true })));
    expect(Date.now() - t0).toBeLessThan(60);
    expectSense(await r.port.execute(Cdb.testUnitReady()), DriveSense.OPERATION_IN_PROGRESS);
    expectSense(await r.port.execute(Cdb.read6({ length: 10 })), DriveSense.OPERATION_IN_PROGRESS);
    const rs = await r.port.execute(Cdb.requestSense({ allocationLength: 18 }));
    expect([rs.data[2]! & 0x0f, rs.data[12], rs.data[13]]).toEqual([0x02, 0x04, 0x07]);
    await expect.poll(async () => (await r.port.execute(Cdb.testUnitReady())).status, { timeout: 2000, interval: 10 }).toBe(ScsiStatus.GOOD);
    expect(r.lu.drive.position).toBe(0);
  });

  it('LOCATE with IMMED beyond end of data answers GOOD; the next command reports the deferred BLANK CHECK', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.write6(pattern(10, 1))));
    expectGood(await r.port.execute(Cdb.locate10(50, { immediate: true })));
    const next = await r.port.execute(Cdb.testUnitReady());
    const s = expectSense(next, Sense.END_OF_DATA_DETECTED);
    expect(s.deferred).toBe(true);
    expect(next.sense[0]! & 0x7f).toBe(0x71);
    // Reported once; the position is at end of data.
    expectGood(await r.port.execute(Cdb.testUnitReady()));
    expect(r.lu.drive.position).toBe(1);
  });

  it('a deferred error goes to the initiator that sent the command, and REQUEST SENSE returns it', async () => {
    await r.load();
    const other = new MemoryPort(r.lu, { initiator: 'other' });
    await drain(other);
    expectGood(await r.port.execute(Cdb.locate10(99, { immediate: true })));
    expectGood(await other.execute(Cdb.testUnitReady()));
    const rs = await r.port.execute(Cdb.requestSense({ allocationLength: 18 }));
    expect(rs.data[0]! & 0x7f).toBe(0x71);
    expect([rs.data[2]! & 0x0f, rs.data[12], rs.data[13]]).toEqual([0x08, 0x00, 0x05]);
    expectGood(await r.port.execute(Cdb.testUnitReady()));
    await other.close();
  });

  it('a CDB error of an IMMED command is reported at once, not deferred', async () => {
    await r.load();
    const s = expectSense(await r.port.execute(Cdb.locate16(5, { partition: 1, immediate: true })), Sense.INVALID_FIELD_IN_CDB);
    expect(s.deferred ?? false).toBe(false);
    expectGood(await r.port.execute(Cdb.testUnitReady()));
  });

  it('LOAD with IMMED answers before the tape is threaded; TEST UNIT READY says BECOMING READY', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.loadUnload({ load: false, hold: true })));
    r.lu.unit.timeScale = 0.02; // 6 s threading -> 120 ms
    expectGood(await r.port.execute(Cdb.loadUnload({ load: true, immediate: true })));
    expectSense(await r.port.execute(Cdb.testUnitReady()), Sense.BECOMING_READY);
    await expect.poll(async () => (await r.port.execute(Cdb.testUnitReady())).status, { timeout: 3000, interval: 10 }).toBe(ScsiStatus.GOOD);
  });

  it('a LOGICAL UNIT RESET stops the background operation and drops its error', async () => {
    await r.load({ capacityBytes: 100_000 });
    for (let i = 0; i < 9; i++) expectGood(await r.port.execute(Cdb.write6(pattern(10_000, i))));
    expectGood(await r.port.execute(Cdb.rewind()));
    r.lu.unit.timeScale = 1; // a locate across 90% of the tape: about 108 s
    expectGood(await r.port.execute(Cdb.locate10(9, { immediate: true })));
    expect(r.lu.drive.immediate?.released).toBe(true);
    r.lu.taskManagement('lu-reset', r.port.initiator);
    await new Promise((res) => setTimeout(res, 5));
    expect(r.lu.drive.immediate).toBeUndefined();
    r.lu.unit.timeScale = 0;
    expectSense(await r.port.execute(Cdb.testUnitReady()), Sense.BUS_DEVICE_RESET);
    expectGood(await r.port.execute(Cdb.testUnitReady()));
    // It stopped where it was: the position never moved.
    expect(r.lu.drive.position).toBe(0);
  });
});

describe('data compression', () => {
  it('is off by default; with DCE set, blocks are stored compressed, read back whole, and counted compressed', async () => {
    const c = await r.load({ capacityBytes: 1 << 20 });
    const page = await r.port.execute(Cdb.modeSense6({ page: 0x0f, disableBlockDescriptors: true }));
    expect((page.data[6] ?? 0) & 0xc0).toBe(0x40); // DCC, not DCE
    await setCompression(true);
    const data = compressible(256 * 1024);
    expectGood(await r.port.execute(Cdb.write6(data)));
    const stored = r.lu.drive.media!.dataBytes;
    expect(stored).toBeLessThan(data.length / 10);
    // The cartridge file holds no run of the plain text.
    expect(cartridgeBytes().includes(Buffer.from(data.subarray(0, 200)))).toBe(false);
    expectGood(await r.port.execute(Cdb.rewind()));
    const back = await r.port.execute(Cdb.read6({ length: data.length }));
    expectGood(back);
    expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
    void c;
  });

  it('fits more than the native capacity of compressible data, and stores random data as it is', async () => {
    await r.load({ capacityBytes: 1 << 20 });
    await setCompression(true);
    for (let i = 0; i < 12; i++) expectGood(await r.port.execute(Cdb.write6(compressible(256 * 1024))));
    expect(r.lu.drive.media!.dataBytes).toBeLessThan(1 << 20);
    const before = r.lu.drive.media!.dataBytes;
    const noise = randomBytes(64 * 1024);
    expectGood(await r.port.execute(Cdb.write6(noise)));
    expect(r.lu.drive.media!.dataBytes - before).toBe(noise.length);
  });

  it('the data compression log pages (1Bh and IBM 32h) report the bytes in and out and the ratio', async () => {
    await r.load();
    await setCompression(true);
    expectGood(await r.port.execute(Cdb.write6(compressible(200_000))));
    expectGood(await r.port.execute(Cdb.rewind()));
    expectGood(await r.port.execute(Cdb.read6({ length: 200_000 })));
    for (const code of [0x1b, 0x32]) {
      const p = await logParams(code);
      const medium = r.lu.drive.media!.dataBytes;
      expect(getU16(p.get(0x0001)!, 0)).toBe(Math.round((200_000 / medium) * 100));
      expect(getU16(p.get(0x0000)!, 0)).toBe(Math.round((200_000 / medium) * 100));
      // MiB + remainder pairs: bytes from the host and to the medium.
      const bytes = (code2: number): number => getU32(p.get(code2)!, 0) * 1048576 + new DataView(p.get(code2 + 1)!.buffer, p.get(code2 + 1)!.byteOffset).getInt32(0);
      expect(bytes(0x0006)).toBe(200_000);
      expect(bytes(0x0008)).toBe(medium);
      expect(bytes(0x0002)).toBe(200_000);
      expect(bytes(0x0004)).toBe(medium);
    }
  });

  it('DCE is back to its default after a power cycle', async () => {
    await r.load();
    await setCompression(true);
    expect(r.lu.drive.compression).toBe(true);
    r.lu.faults.powerCycle();
    await drain(r.port);
    expect(r.lu.drive.compression).toBe(false);
  });
});

describe('encryption', () => {
  it('SECURITY PROTOCOL IN lists protocol 20h and its pages, and reports AES-256-GCM capabilities', async () => {
    const sp = await cdb(r.port, spin(0x00, 0x0000), 8192);
    expectGood(sp);
    expect([...sp.data.subarray(8, 8 + getU16(sp.data, 6))]).toEqual([0x00, 0x20]);
    const inSupport = await cdb(r.port, spin(0x20, 0x0000), 8192);
    const pages = Array.from({ length: getU16(inSupport.data, 2) / 2 }, (_, i) => getU16(inSupport.data, 4 + 2 * i));
    expect(pages).toEqual([0x0000, 0x0001, 0x0010, 0x0011, 0x0020, 0x0021]);
    const caps = await cdb(r.port, spin(0x20, 0x0010), 8192);
    expect(getU16(caps.data, 0)).toBe(0x0010);
    expect(getU16(caps.data, 2)).toBe(0x28);
    const alg = caps.data.subarray(20);
    expect(alg[0]).toBe(0x01);
    expect(getU16(alg, 2)).toBe(0x14);
    expect(getU16(alg, 10)).toBe(32);
    expect(getU32(alg, 20)).toBe(0x00010014);
    expectSense(await cdb(r.port, spin(0x20, 0x0099), 8192), Sense.INVALID_FIELD_IN_CDB);
  });

  it('with a key set, blocks are written encrypted (no plain text, no key on the cartridge) and read back', async () => {
    await r.load();
    await setEncryption(r.port, { encrypt: 2, decrypt: 3, key: KEY, ukad: Buffer.from('key-2026-01') });
    const data = pattern(4096, 5);
    expectGood(await r.port.execute(Cdb.write6(data)));
    const file = cartridgeBytes();
    expect(file.includes(Buffer.from(data.subarray(100, 300)))).toBe(false);
    expect(file.includes(Buffer.from(KEY))).toBe(false);
    expect(file.includes(Buffer.from('key-2026-01'))).toBe(true); // the U-KAD is stored, in the clear
    const status = await cdb(r.port, spin(0x20, 0x0020), 8192);
    expect([status.data[5], status.data[6], status.data[7]]).toEqual([2, 3, 1]);
    expect(getU32(status.data, 8)).toBeGreaterThan(0);
    expectGood(await r.port.execute(Cdb.rewind()));
    const nb = await cdb(r.port, spin(0x20, 0x0021), 8192);
    expect(getU64(nb.data, 4)).toBe(0n);
    expect((nb.data[12] ?? 0) & 0x0f).toBe(5);
    const back = await r.port.execute(Cdb.read6({ length: 4096 }));
    expectGood(back);
    expect(back.data).toEqual(data);
  });

  it('reading an encrypted block without decryption answers DATA PROTECT 74/01 and stays before it', async () => {
    await r.load();
    await setEncryption(r.port, { encrypt: 2, decrypt: 2, key: KEY });
    expectGood(await r.port.execute(Cdb.write6(pattern(1000, 1))));
    await setEncryption(r.port, { encrypt: 0, decrypt: 0 });
    expectGood(await r.port.execute(Cdb.rewind()));
    const s = expectSense(await r.port.execute(Cdb.read6({ length: 1000 })), DriveSense.UNABLE_TO_DECRYPT_DATA);
    expect(s.information).toBe(1000);
    expect(r.lu.drive.position).toBe(0);
    const nb = await cdb(r.port, spin(0x20, 0x0021), 8192);
    expect((nb.data[12] ?? 0) & 0x0f).toBe(6);
    // With the wrong key: INCORRECT DATA ENCRYPTION KEY; with the right one it reads.
    await setEncryption(r.port, { encrypt: 0, decrypt: 2, key: OTHER_KEY });
    expectSense(await r.port.execute(Cdb.read6({ length: 1000 })), DriveSense.INCORRECT_DATA_ENCRYPTION_KEY);
    await setEncryption(r.port, { encrypt: 0, decrypt: 2, key: KEY });
    expectGood(await r.port.execute(Cdb.read6({ length: 1000 })));
  });

  it('a block sealed in two GCM segments reads back; swapped segments do not authenticate', () => {
    const data = randomBytes(300_000);
    const payload = Uint8Array.from(encodeBlock(data, { compress: false, encrypt: { key: KEY, akad: Buffer.from('seg') } }, undefined, 2).payload);
    expect((payload[9] ?? 0) >> 4).toBe(1); // two segments
    // Exchange the two halves of the body and their tags: each tag still matches its bytes,
    // but not the nonce of the place it now sits in.
    const info = inspectBlock(payload);
    const at = 28 + 32 + 3;
    const half = 150_000;
    const swapped = Uint8Array.from(payload);
    swapped.set(payload.subarray(at + half, at + 2 * half), at);
    swapped.set(payload.subarray(at, at + half), at + half);
    swapped.set(payload.subarray(44, 60), 28);
    swapped.set(payload.subarray(28, 44), 44);
    expect(() => decodeBlock(swapped, info, KEY)).toThrow(/authenticate/);
    expect(Buffer.from(decodeBlock(payload, info, KEY)).equals(data)).toBe(true);
  });

  it('the drive seals a large block in two GCM segments (on two threads), a small one in one; both read back', async () => {
    await r.load();
    await setEncryption(r.port, { encrypt: 2, decrypt: 3, key: KEY });
    const big = randomBytes(256 * 1024);
    const small = randomBytes(1000);
    expectGood(await r.port.execute(Cdb.write6(big)));
    expectGood(await r.port.execute(Cdb.write6(small)));
    const m = r.lu.drive.media!;
    expect((m.readBlock(0)[9] ?? 0) >> 4).toBe(1);
    expect((m.readBlock(1)[9] ?? 0) >> 4).toBe(0);
    expectGood(await r.port.execute(Cdb.rewind()));
    expect(Buffer.from((await r.port.execute(Cdb.read6({ length: big.length }))).data).equals(big)).toBe(true);
    expect(Buffer.from((await r.port.execute(Cdb.read6({ length: small.length }))).data).equals(small)).toBe(true);
  });

  it('DECRYPT refuses a plain block (74/02); MIXED reads it', async () => {
    await r.load();
    expectGood(await r.port.execute(Cdb.write6(pattern(300, 1))));
    expectGood(await r.port.execute(Cdb.rewind()));
    await setEncryption(r.port, { encrypt: 0, decrypt: 2, key: KEY });
    expectSense(await r.port.execute(Cdb.read6({ length: 300 })), DriveSense.UNENCRYPTED_DATA_WHILE_DECRYPTING);
    await setEncryption(r.port, { encrypt: 0, decrypt: 3, key: KEY });
    expectGood(await r.port.execute(Cdb.read6({ length: 300 })));
  });

  it('compression and encryption together: compressed, then encrypted, and read back', async () => {
    await r.load();
    await setCompression(true);
    await setEncryption(r.port, { encrypt: 2, decrypt: 2, key: KEY, akad: Buffer.from('A-KAD') });
    const data = compressible(100_000);
    expectGood(await r.port.execute(Cdb.write6(data)));
    expect(r.lu.drive.media!.dataBytes).toBeLessThan(10_000);
    expectGood(await r.port.execute(Cdb.rewind()));
    const back = await r.port.execute(Cdb.read6({ length: 100_000 }));
    expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
  });

  it('the other initiators are told (2Ah/11h); the key is gone after a power cycle', async () => {
    await r.load();
    const other = new MemoryPort(r.lu, { initiator: 'other' });
    await drain(other);
    await setEncryption(r.port, { encrypt: 2, decrypt: 2, key: KEY });
    expectSense(await other.execute(Cdb.testUnitReady()), DriveSense.DATA_ENCRYPTION_PARAMETERS_CHANGED_BY_ANOTHER_I_T_NEXUS);
    expectGood(await r.port.execute(Cdb.testUnitReady()));
    r.lu.faults.powerCycle();
    await drain(r.port);
    const st = await cdb(r.port, spin(0x20, 0x0020), 8192);
    expect([st.data[5], st.data[6]]).toEqual([0, 0]);
    await other.close();
  });

  it('refuses a bad set data encryption page, naming the field', async () => {
    const short = setDataEncryption({ encrypt: 2, decrypt: 2, key: KEY.subarray(0, 16) });
    const s = expectSense(await cdb(r.port, spout(short), 0, short), Sense.INVALID_FIELD_IN_PARAMETER_LIST);
    expect(s.fieldPointer).toMatchObject({ inCdb: false, byte: 18 });
    const raw6 = setDataEncryption({ encrypt: 2, decrypt: 1, key: KEY });
    expect(expectSense(await cdb(r.port, spout(raw6), 0, raw6), Sense.INVALID_FIELD_IN_PARAMETER_LIST).fieldPointer).toMatchObject({ byte: 7 });
    const longKad = setDataEncryption({ encrypt: 2, decrypt: 2, key: KEY, akad: new Uint8Array(13) });
    expect(expectSense(await cdb(r.port, spout(longKad), 0, longKad), Sense.INVALID_FIELD_IN_PARAMETER_LIST).fieldPointer).toMatchObject({ byte: 20 + 32 + 2 });
  });

  it('a key from the drive configuration encrypts without a host, and survives a power cycle', async () => {
    const lu = createTapeDrive({ personality: drivePersonality('ibm-lto7-hh'), serial: 'CFG', encryption: { key: KEY, ukad: Buffer.from('lib') } });
    const port = new MemoryPort(lu);
    await drain(port);
    await lu.insert(r.cartridge({ barcode: 'K00001L7' }));
    await drain(port);
    expectGood(await port.execute(Cdb.write6(pattern(500, 3))));
    lu.faults.powerCycle();
    await drain(port);
    const back = await port.execute(Cdb.read6({ length: 500 }));
    expectGood(back);
    expect(back.data).toEqual(pattern(500, 3));
    expect(inspectBlock(lu.drive.media!.readBlock(0)).encrypted).toBe(true);
    lu.close();
    expect(() => createTapeDrive({ personality: drivePersonality('ibm-lto7-hh'), serial: 'X', encryption: { key: new Uint8Array(16) } })).toThrow(/32 bytes/);
  });
});

describe('block envelope', () => {
  it('a plain block that begins with the envelope magic is stored in an envelope and reads back as written', () => {
    const data = new Uint8Array(100);
    data.set(ENVELOPE_MAGIC, 0);
    data[8] = 1;
    const { payload } = encodeBlock(data, { compress: false });
    expect(payload).not.toBe(data);
    const info = inspectBlock(payload);
    expect(info.enveloped).toBe(true);
    expect(decodeBlock(payload, info)).toEqual(data);
  });

  it('a block neither compressed nor encrypted is stored as it came, without a copy', () => {
    const data = randomBytes(5000);
    expect(encodeBlock(data, { compress: true }).payload).toBe(data);
    expect(inspectBlock(data).enveloped).toBe(false);
  });

  it('a tampered encrypted body fails authentication', () => {
    const { payload } = encodeBlock(pattern(1000, 1), { compress: false, encrypt: { key: KEY } });
    const info = inspectBlock(payload);
    const bad = Uint8Array.from(payload);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
    expect(() => decodeBlock(bad, info, KEY)).toThrow(/authenticate/);
    expect(decodeBlock(payload, info, KEY)).toEqual(pattern(1000, 1));
  });
});

describe('sense of the new conditions', () => {
  it('encodes a deferred error with response code 71h', () => {
    expect(decodeSense(Uint8Array.of(0x71, 0, 0x08, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x00, 0x05, 0, 0, 0, 0)).deferred).toBe(true);
  });
});
