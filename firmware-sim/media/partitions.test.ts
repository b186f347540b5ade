/**
 * Partitions in the cartridge file: FORMAT MEDIUM's layout in cartridge memory, records
 * tagged with their partition, overwrites in one partition that leave the others alone,
 * version 2 files that read as before, and power cuts at every file operation of a format
 * and of partitioned writes, which must never bring back a mix of two layouts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/native.js';
import { Cartridge, checkCartridge, formatCartridgeReport, MediaReadError } from './index.js';
import { decodeHeader, FORMAT_VERSION, HEADER_SIZE, PARTITIONED_VERSION, RECORD_HEADER_SIZE } from './format.js';
import { powerCuts, recordingIo } from './test-file-ops.js';

const init = { mediaType: 'LTO7', barcode: 'P00001L7', capacityBytes: 1 << 30, worm: false };
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-partitions-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Every partition's objects as text (`b<length>:<first byte>` or `fm`), reading every block. */
function tapeState(c: Cartridge): string[][] {
  const keep = c.partition;
  const out: string[][] = [];
  for (let p = 0; p < c.partitionCount; p++) {
    c.selectPartition(p);
    out.push(Array.from({ length: c.objectCount }, (_, i) => (c.object(i)?.kind === 'filemark' ? 'fm' : `b${c.readBlock(i).length}:${c.readBlock(i)[0]}`)));
  }
  c.selectPartition(keep);
  return out;
}

function fileState(path: string): string[][] {
  const c = Cartridge.open(path, { readOnly: true });
  try {
    return tapeState(c);
  } finally {
    c.close();
  }
}

/**
 * A version 2 cartridge file as builds before partitions wrote it, laid out byte by byte
 * here (not with this build's encoders): header, one `MAM2` cartridge memory image with a
 * host attribute and a log floor, then records whose bytes 5..7 are zero: B(100) FM sync
 * B(7) sync EOD sync.
 */
function handMadeV2(path: string): { blocks: Uint8Array[]; file: Buffer } {
  const header = Buffer.alloc(4096);
  header.write('PTPVTSCT', 0, 'ascii');
  header.writeUInt16BE(2, 8);
  header.writeUInt16BE(0, 10);
  header.writeUInt32BE(36864, 12);
  header.writeUInt32BE(16384, 16);
  header.writeBigUInt64BE(BigInt(init.capacityBytes), 20);
  header.writeBigUInt64BE(1_700_000_000_000n, 28);
  header.write('LTO7'.padEnd(16), 36, 'ascii');
  header.write('V20001L7'.padEnd(32), 52, 'ascii');
  header.writeUInt32BE(crc32c(header.subarray(0, 124)), 124);
  const attr = (id: number, format: number, value: Buffer): Buffer => Buffer.concat([Buffer.from([id >> 8, id & 0xff, format, value.length >> 8, value.length & 0xff]), value]);
  const floor = Buffer.alloc(12);
  floor.writeBigUInt64BE(36864n, 0);
  floor.writeUInt32BE(1, 8);
  const attrs = Buffer.concat([attr(0x0806, 1, Buffer.from('VOLUME02')), attr(0xff00, 0, floor)]);
  const slot = Buffer.alloc(16 + attrs.length);
  slot.writeUInt32BE(0x4d414d32, 0);
  slot.writeUInt32BE(1, 4);
  slot.writeUInt32BE(attrs.length, 8);
  attrs.copy(slot, 16);
  slot.writeUInt32BE(crc32c(attrs, crc32c(slot.subarray(0, 12))), 12);
  const slots = Buffer.alloc(2 * 16384);
  slot.copy(slots, 16384); // sequence 1 lives in slot 1 % 2
  const record = (kind: number, payload = Buffer.alloc(0)): Buffer => {
    const h = Buffer.alloc(24);
    h.writeUInt32BE(0x52454331, 0);
    h[4] = kind;
    h.writeUInt32BE(1, 8);
    h.writeUInt32BE(payload.length, 12);
    h.writeUInt32BE(payload.length ? crc32c(payload) : 0, 16);
    h.writeUInt32BE(crc32c(h.subarray(0, 20)), 20);
    return Buffer.concat([h, payload]);
  };
  const blocks = [bytes(100, 1), bytes(7, 2)];
  const file = Buffer.concat([header, slots, record(1, Buffer.from(blocks[0]!)), record(2), record(4), record(1, Buffer.from(blocks[1]!)), record(4), record(3), record(4)]);
  writeFileSync(path, file);
  return { blocks, file };
}

describe('partitions in the cartridge file', () => {
  it('a version 2 file written by an earlier build reads identically, is not rewritten by a load, and takes appends as version 2', () => {
    const path = join(dir, 'old-v2.cart');
    const { blocks, file } = handMadeV2(path);
    expect(checkCartridge(path)).toMatchObject({ ok: true, header: { version: 2, barcode: 'V20001L7' }, blocks: 2, filemarks: 1, bytes: 107, cleanEod: true, mamAttributes: 1, partitions: [{ sizeBytes: init.capacityBytes, blocks: 2, filemarks: 1 }] });
    const c = Cartridge.open(path);
    expect([c.header.version, c.partitionCount, c.partition, c.objectCount, c.recovered]).toEqual([2, 1, 0, 3, false]);
    expect(c.readBlock(0)).toEqual(blocks[0]);
    expect(c.object(1)?.kind).toBe('filemark');
    expect(c.readBlock(2)).toEqual(blocks[1]);
    expect(c.filemarksBefore(3)).toBe(1);
    expect(new TextDecoder().decode(c.readAttributes().get(0x0806)?.value)).toBe('VOLUME02');
    expect([...c.readAttributes().keys()]).toEqual([0x0806]);
    c.close();
    expect(readFileSync(path).equals(file)).toBe(true);
    const d = Cartridge.open(path);
    d.truncate(2);
    d.appendBlock(bytes(50, 3));
    d.close();
    expect(decodeHeader(readFileSync(path).subarray(0, HEADER_SIZE)).version).toBe(2);
    expect(fileState(path)).toEqual([['b100:1', 'fm', 'b50:3']]);
    // The records this build appended to it carry partition 0, as the old ones do.
    const after = readFileSync(path);
    for (let off = 36864; off + 24 <= after.length; ) {
      expect(after.readUInt32BE(off), `record at ${off}`).toBe(0x52454331);
      expect([after[off + 5], after[off + 6], after[off + 7]]).toEqual([0, 0, 0]);
      off += 24 + after.readUInt32BE(off + 12);
    }
  });

  it('a version 2 file opens, reads and appends as before: one partition, no rewrite of the file', () => {
    const path = join(dir, 'v2.cart');
    const c = Cartridge.open(path, { create: init });
    c.appendBlock(bytes(1000, 1));
    c.appendFilemarks(1);
    c.appendBlock(bytes(77, 2));
    c.writeAttributes(new Map([[0x0806, { format: 1, value: new TextEncoder().encode('VOLUME01') }]]));
    c.close();
    const before = readFileSync(path);
    expect(decodeHeader(before.subarray(0, HEADER_SIZE)).version).toBe(FORMAT_VERSION);
    expect(FORMAT_VERSION).toBe(2);
    // Opened for writing and closed without writing: byte for byte the same file.
    const d = Cartridge.open(path);
    expect(d.header.version).toBe(2);
    expect(d.partitionCount).toBe(1);
    expect(d.partitionSizes).toEqual([init.capacityBytes]);
    expect(tapeState(d)).toEqual([['b1000:1', 'fm', 'b77:2']]);
    expect(() => d.selectPartition(1)).toThrow(RangeError);
    d.close();
    expect(readFileSync(path).equals(before)).toBe(true);
    // Appending keeps it a version 2 file that older builds read.
    const e = Cartridge.open(path);
    e.appendBlock(bytes(5, 3));
    e.close();
    expect(decodeHeader(readFileSync(path).subarray(0, HEADER_SIZE)).version).toBe(2);
    expect(fileState(path)).toEqual([['b1000:1', 'fm', 'b77:2', 'b5:3']]);
    expect(checkCartridge(path)).toMatchObject({ ok: true, blocks: 3, filemarks: 1, partitions: [{ sizeBytes: init.capacityBytes, blocks: 3 }] });
  });

  it('FORMAT MEDIUM lays out partitions that keep their own data, across reopens, and the file becomes version 3', () => {
    const path = join(dir, 'p.cart');
    const c = Cartridge.open(path, { create: init });
    c.appendBlock(bytes(300, 9));
    c.appendFilemarks(1);
    c.format([100 << 20, (1 << 30) - (100 << 20)]);
    expect(c.partitionCount).toBe(2);
    expect(c.partition).toBe(0);
    expect(c.objectCount).toBe(0);
    c.appendBlock(bytes(10, 1));
    c.appendFilemarks(1);
    c.selectPartition(1);
    expect(c.objectCount).toBe(0);
    expect(c.partitionCapacity).toBe((1 << 30) - (100 << 20));
    c.appendBlock(bytes(20, 2));
    c.appendBlock(bytes(21, 3));
    c.selectPartition(0);
    c.appendBlock(bytes(11, 4));
    c.selectPartition(1);
    c.appendFilemarks(1);
    expect(c.dataBytesOf(0)).toBe(21);
    expect(c.dataBytesOf(1)).toBe(41);
    c.close();
    expect(decodeHeader(readFileSync(path).subarray(0, HEADER_SIZE)).version).toBe(PARTITIONED_VERSION);
    expect(fileState(path)).toEqual([
      ['b10:1', 'fm', 'b11:4'],
      ['b20:2', 'b21:3', 'fm'],
    ]);
    expect(checkCartridge(path)).toMatchObject({ ok: true, blocks: 4, filemarks: 2, partitions: [{ sizeBytes: 100 << 20, blocks: 2 }, { blocks: 2, filemarks: 1 }] });
    // Back to one partition: everything goes, the layout with it.
    const d = Cartridge.open(path);
    expect(d.partitionSizes).toEqual([100 << 20, (1 << 30) - (100 << 20)]);
    d.format([1 << 30]);
    d.appendBlock(bytes(4, 4));
    d.close();
    expect(fileState(path)).toEqual([['b4:4']]);
  });

  it('a write in one partition discards only that partition from the write point on', () => {
    const path = join(dir, 'ow.cart');
    const c = Cartridge.open(path, { create: init });
    c.format([1 << 28, 1 << 28]);
    for (let i = 0; i < 4; i++) c.appendBlock(bytes(50 + i, i));
    c.selectPartition(1);
    for (let i = 0; i < 3; i++) c.appendBlock(bytes(60 + i, 10 + i));
    c.selectPartition(0);
    c.truncate(2);
    c.appendBlock(bytes(99, 99));
    c.selectPartition(1);
    c.appendBlock(bytes(61, 61));
    c.close();
    const want = [
      ['b50:0', 'b51:1', 'b99:99'],
      ['b60:10', 'b61:11', 'b62:12', 'b61:61'],
    ];
    expect(fileState(path)).toEqual(want);
    expect(checkCartridge(path)).toMatchObject({ ok: true, blocks: 7, partitions: [{ blocks: 3 }, { blocks: 4 }] });
    // Overwriting again over already discarded space still reads right.
    const d = Cartridge.open(path);
    d.truncate(0);
    d.appendBlock(bytes(1, 1));
    d.close();
    expect(fileState(path)).toEqual([['b1:1'], want[1]]);
  });

  it('a default FORMAT MEDIUM keeps a version 2 file at version 2; a smaller single partition makes it version 3', () => {
    const path = join(dir, 'one.cart');
    const c = Cartridge.open(path, { create: init });
    c.appendBlock(bytes(10, 1));
    c.format([init.capacityBytes]);
    expect([c.header.version, c.objectCount]).toEqual([2, 0]);
    c.appendBlock(bytes(11, 2));
    c.format([1 << 20]);
    expect([c.header.version, c.partitionCount, c.partitionCapacity]).toEqual([3, 1, 1 << 20]);
    c.appendBlock(bytes(12, 3));
    c.close();
    const d = Cartridge.open(path, { readOnly: true });
    expect([d.header.version, d.partitionSizes]).toEqual([3, [1 << 20]]);
    expect(tapeState(d)).toEqual([['b12:3']]);
    d.close();
  });

  it('damage in the durable part of a partitioned log is named in its partition and costs one block there', () => {
    const path = join(dir, 'dmg.cart');
    const c = Cartridge.open(path, { create: init });
    c.format([1 << 28, 1 << 28]);
    for (let i = 0; i < 3; i++) c.appendBlock(bytes(200, i));
    c.appendFilemarks(1);
    c.selectPartition(1);
    for (let i = 0; i < 3; i++) c.appendBlock(bytes(300, 10 + i));
    c.appendFilemarks(1);
    c.selectPartition(0);
    c.appendBlock(bytes(200, 5));
    c.appendFilemarks(1);
    c.selectPartition(1);
    const target = c.object(1)?.offset ?? 0;
    const headerHit = c.object(2)?.offset ?? 0;
    c.close();
    const f = readFileSync(path);
    // A payload byte of partition 1's block 1, and the length field of its block 2.
    f[target + RECORD_HEADER_SIZE + 9] = (f[target + RECORD_HEADER_SIZE + 9] ?? 0) ^ 0x10;
    f[headerHit + 13] = (f[headerHit + 13] ?? 0) ^ 0x01;
    writeFileSync(path, f);
    const r = checkCartridge(path);
    expect(r.damaged).toMatchObject([
      { partition: 1, objectNumber: 1, blockNumber: 1, reason: 'bad-crc' },
      { partition: 1, objectNumber: 2, blockNumber: 1, reason: 'bad-header' },
    ]);
    expect(r.partitions).toMatchObject([{ blocks: 4, filemarks: 2 }, { blocks: 1, filemarks: 1 }]);
    expect(formatCartridgeReport(r)).toMatch(/partition 1, logical object 1, block 1/);
    const d = Cartridge.open(path);
    d.selectPartition(1);
    expect(d.readBlock(0)).toEqual(bytes(300, 10));
    expect(() => d.readBlock(1)).toThrow(MediaReadError);
    expect(d.object(3)?.kind).toBe('filemark');
    d.selectPartition(0);
    expect(d.objectCount).toBe(6);
    expect(d.readBlock(4)).toEqual(bytes(200, 5));
    d.close();
  });

  it('FORMAT MEDIUM drops the attributes of partitions the new layout lacks, in the same image', () => {
    const path = join(dir, 'attrs.cart');
    const c = Cartridge.open(path, { create: init });
    c.format([1 << 26, 1 << 26, 1 << 26]);
    const label = (t: string): Map<number, { format: number; value: Uint8Array }> => new Map([[0x0809, { format: 1, value: new TextEncoder().encode(t) }]]);
    c.writeAttributes(label('one'), 1);
    c.writeAttributes(label('two'), 2);
    c.format([1 << 26, 1 << 26]);
    expect(new TextDecoder().decode(c.readAttributes(1).get(0x0809)?.value)).toBe('one');
    expect(c.readAttributes(2).size).toBe(0);
    c.close();
    const d = Cartridge.open(path, { readOnly: true });
    expect([d.partitionCount, new TextDecoder().decode(d.readAttributes(1).get(0x0809)?.value), d.readAttributes(2).size]).toEqual([2, 'one', 0]);
    d.close();
    expect(checkCartridge(path).mamAttributes).toBe(1);
  });

  it('refuses layouts that do not fit and attributes that are the cartridge own', () => {
    const c = Cartridge.open(join(dir, 'bad.cart'), { create: init });
    expect(() => c.format([1 << 30, 1])).toThrow(/more than the cartridge holds/);
    expect(() => c.format([1, 1, 1, 1, 1])).toThrow(/1 to 4 partitions/);
    expect(() => c.format([0, 5])).toThrow(/positive/);
    expect(() => c.writeAttributes(new Map([[0xff01, { format: 0, value: Uint8Array.of(1) }]]))).toThrow(/partition layout/);
    c.close();
  });

  it('a power cut at any file operation of FORMAT MEDIUM and partitioned writes, torn at any byte, leaves the old tape or a state the new one was in: never a mix', () => {
    const path = join(dir, 'cut.cart');
    const c0 = Cartridge.open(path, { create: init });
    for (let i = 0; i < 6; i++) {
      c0.appendBlock(bytes(700 + 13 * i, i));
      if (i % 2 === 1) c0.appendFilemarks(1);
    }
    c0.close();
    const before = readFileSync(path);
    const oldState = fileState(path);

    const rec = recordingIo();
    const { io, ops } = rec;
    // Every state the tape passes through, and from which operation on each is acknowledged.
    const history: string[] = [JSON.stringify(oldState)];
    const acked: Array<{ op: number; state: number }> = [];
    const c = Cartridge.open(path, { io });
    const step = (fn: () => void, ack: boolean): void => {
      fn();
      history.push(JSON.stringify(tapeState(c)));
      if (ack) acked.push({ op: ops.length, state: history.length - 1 });
    };
    rec.record(true);
    step(() => c.format([200 << 20, 300 << 20]), true);
    step(() => c.appendBlock(bytes(1111, 40)), false);
    step(() => c.appendFilemarks(1), true);
    step(() => c.selectPartition(1), false);
    step(() => c.appendBlock(bytes(2222, 41)), false);
    step(() => c.appendBlock(bytes(2223, 42)), false);
    step(() => c.appendFilemarks(1), true);
    step(() => c.selectPartition(0), false);
    // An overwrite in partition 0 (a discard record, durable on return) and new data after it.
    step(() => c.truncate(1), true);
    step(() => c.appendBlock(bytes(3333, 43)), false);
    step(() => c.appendFilemarks(1), true);
    rec.record(false);
    c.close();
    expect(fileState(path)).toEqual([
      ['b1111:40', 'b3333:43', 'fm'],
      ['b2222:41', 'b2223:42', 'fm'],
    ]);

    let cuts = 0;
    // The header (the version 3 mark) is 128 bytes inside the first sector: written whole
    // or not at all, as for the conversion of format 1 files, so it is not torn here.
    for (const { t, tear, n, img, where } of powerCuts(before, ops, { tearBytes: 40, whole: (o) => o.k === 'write' && o.at === 0 })) {
      const cut = join(dir, `cut-${t}-${n}-${tear}.cart`);
      writeFileSync(cut, img);
      const report = checkCartridge(cut);
      expect(report.damaged, where).toEqual([]);
      const got = JSON.stringify(fileState(cut));
      // The old layout with exactly the old data, or one of the states the new layout was in.
      const at = history.indexOf(got);
      expect(at, `${where}: got ${got}`).toBeGreaterThanOrEqual(0);
      // Nothing acknowledged is lost: a format, filemark or discard that returned before the cut stays.
      const must = acked.filter((a) => a.op <= t).reduce((m, a) => Math.max(m, a.state), 0);
      expect(at, `${where}: got ${got}, must be at least ${history[must]}`).toBeGreaterThanOrEqual(must);
      // And the cut file takes writes again in every partition.
      const w = Cartridge.open(cut);
      w.selectPartition(w.partitionCount - 1);
      w.appendBlock(bytes(9, 9));
      w.appendFilemarks(1);
      const after = tapeState(w);
      w.close();
      expect(fileState(cut), where).toEqual(after);
      rmSync(cut);
      cuts++;
    }
    expect(cuts).toBeGreaterThan(ops.length);
  });
});
