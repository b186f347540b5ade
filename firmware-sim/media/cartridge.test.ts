import { mkdtempSync, rmSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Cartridge, CartridgeFormatError, MediaReadError, checkCartridge, formatCartridgeReport, LOG_OFFSET, RECORD_HEADER_SIZE } from './index.js';

const init = { mediaType: 'LTO7', barcode: 'A00001L7', capacityBytes: 1 << 20, worm: false };
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-cart-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('Cartridge', () => {
  it('creates a file with the header facts and an empty log', () => {
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init });
    expect(c.header).toMatchObject({ mediaType: 'LTO7', barcode: 'A00001L7', capacityBytes: 1 << 20, worm: false, version: 2 });
    expect(c.objectCount).toBe(0);
    c.close();
    expect(statSync(p).size).toBeGreaterThanOrEqual(LOG_OFFSET);
  });

  it('rejects a file that is not a cartridge', () => {
    const p = join(dir, 'junk');
    writeFileSync(p, 'hello world'.repeat(1000));
    expect(() => Cartridge.open(p)).toThrow(CartridgeFormatError);
  });

  it('writes blocks and filemarks and reads them back after reopening', () => {
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init });
    c.appendBlock(bytes(100, 1));
    c.appendBlock(bytes(0, 2));
    c.appendFilemarks(1);
    c.appendBlock(bytes(5000, 3));
    c.appendFilemarks(2);
    c.close();
    const d = Cartridge.open(p);
    expect(d.recovered).toBe(false);
    expect(d.objectCount).toBe(6);
    expect(d.object(2)?.kind).toBe('filemark');
    expect(d.readBlock(0)).toEqual(bytes(100, 1));
    expect(d.readBlock(1).length).toBe(0);
    expect(d.readBlock(3)).toEqual(bytes(5000, 3));
    expect(d.filemarksBefore(4)).toBe(1);
    expect(d.nextFilemark(3)).toBe(4);
    expect(d.previousFilemark(4)).toBe(2);
    expect(d.dataBytes).toBe(5100);
    d.close();
  });

  it('overwrites: writing at a position discards everything after it', () => {
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init });
    for (let i = 0; i < 5; i++) c.appendBlock(bytes(64, i));
    c.appendFilemarks(1);
    c.truncate(2);
    c.appendBlock(bytes(10, 99));
    c.close();
    const d = Cartridge.open(p);
    expect(d.objectCount).toBe(3);
    expect(d.filemarkCount).toBe(0);
    expect(d.readBlock(2)).toEqual(bytes(10, 99));
    d.close();
    expect(checkCartridge(p)).toMatchObject({ ok: true, blocks: 3, filemarks: 0, cleanEod: true, tornTailBytes: 0 });
  });

  it('treats old-generation records past the end as stale, not as data', () => {
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init });
    for (let i = 0; i < 4; i++) c.appendBlock(bytes(32, i));
    c.appendFilemarks(1);
    c.close();
    const before = readFileSync(p);
    const d = Cartridge.open(p);
    d.truncate(1);
    d.appendBlock(bytes(32, 50));
    d.sync();
    d.close();
    // Simulate a lost truncate: splice the new records over the old file image.
    const after = readFileSync(p);
    const merged = Buffer.from(before);
    after.copy(merged, 0, 0, Math.min(after.length, merged.length));
    writeFileSync(p, merged.length >= after.length ? merged : after);
    const e = Cartridge.open(p);
    expect(e.objectCount).toBe(2);
    expect(e.readBlock(1)).toEqual(bytes(32, 50));
    e.close();
  });

  it.each([
    ['the same sizes (old records start where the new ones end)', 32],
    ['other sizes (the new records end inside an old one)', 45],
  ])('an overwrite interrupted before its sync point leaves the new records and no old data: %s', (_what, size) => {
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init });
    for (let i = 0; i < 8; i++) c.appendBlock(bytes(32, i));
    c.appendFilemarks(1);
    // Rewind and overwrite 3 blocks; the process dies (no close, no sync point).
    c.truncate(0);
    expect(c.objectCount).toBe(0);
    for (let i = 0; i < 3; i++) c.appendBlock(bytes(size, 100 + i));
    expect(c.readBlock(2)).toEqual(bytes(size, 102));
    const e = Cartridge.open(p, { readOnly: true });
    expect(e.objectCount).toBe(3);
    for (let i = 0; i < 3; i++) expect(e.readBlock(i)).toEqual(bytes(size, 100 + i));
    e.close();
    // The sync point cuts the old records off for good.
    c.appendFilemarks(1);
    expect(statSync(p).size).toBe(c.sizeOnDisk);
    const f = Cartridge.open(p, { readOnly: true });
    expect(f.objectCount).toBe(4);
    f.close();
    c.close();
    expect(checkCartridge(p).damaged).toEqual([]);
  });

  it('a rewind and close without a write cuts the tape at the rewind point', () => {
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init });
    for (let i = 0; i < 4; i++) c.appendBlock(bytes(32, i));
    c.appendFilemarks(1);
    c.truncate(2);
    c.close();
    const d = Cartridge.open(p, { readOnly: true });
    expect(d.objectCount).toBe(2);
    expect(d.recovered).toBe(false);
    d.close();
  });

  it('persists cartridge memory in alternating slots', () => {
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init });
    c.writeAttributes(new Map([[0x0003, { format: 0, value: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 7) }]]));
    c.writeAttributes(new Map([[0x0003, { format: 0, value: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 8) }], [0x0800, { format: 1, value: new TextEncoder().encode('ACME') }]]));
    c.close();
    const d = Cartridge.open(p);
    const m = d.readAttributes();
    expect(m.get(0x0003)?.value[7]).toBe(8);
    expect(new TextDecoder().decode(m.get(0x0800)?.value)).toBe('ACME');
    d.close();
    expect(checkCartridge(p)).toMatchObject({ mamSlotsValid: 2, mamAttributes: 2 });
  });

  it('keeps attributes by partition: each its own, in one image, across reopen; the containers are its own', () => {
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init });
    const vci = (n: number): Map<number, { format: number; value: Uint8Array }> => new Map([[0x080c, { format: 0, value: Uint8Array.of(n, n, n) }]]);
    c.writeAttributes(new Map([[0x0800, { format: 1, value: new TextEncoder().encode('ACME') }], ...vci(0)]));
    c.writeAttributeSets(new Map([[1, vci(1)], [3, vci(3)]]));
    // The drive's partition 0 writes leave the other partitions alone.
    c.writeAttributes(new Map([...c.readAttributes(), [0x0003, { format: 0, value: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1) }]]));
    expect(() => c.writeAttributes(new Map([[0xfe01, { format: 0, value: Uint8Array.of(1) }]]))).toThrow(CartridgeFormatError);
    expect(() => c.writeAttributes(new Map([[0xff00, { format: 0, value: Uint8Array.of(1) }]]), 2)).toThrow(CartridgeFormatError);
    expect(() => c.writeAttributes(new Map(), 256)).toThrow(RangeError);
    c.close();
    const d = Cartridge.open(p);
    expect([...(d.readAttributes(0).get(0x080c)?.value ?? [])]).toEqual([0, 0, 0]);
    expect([...(d.readAttributes(1).get(0x080c)?.value ?? [])]).toEqual([1, 1, 1]);
    expect([...(d.readAttributes(3).get(0x080c)?.value ?? [])]).toEqual([3, 3, 3]);
    expect(d.readAttributes(2).size).toBe(0);
    expect([...d.readAttributes(0).keys()].sort((a, b) => a - b)).toEqual([0x0003, 0x0800, 0x080c]);
    // An empty set drops the partition's container.
    d.writeAttributes(new Map(), 3);
    d.close();
    const e = Cartridge.open(p);
    expect(e.readAttributes(3).size).toBe(0);
    expect(e.readAttributes(1).size).toBe(1);
    e.close();
    // The media check counts the attributes, partition 1's among them, not its container.
    expect(checkCartridge(p).mamAttributes).toBe(4);
  });

  it('ignores a torn tail on open and drops it on the next write', () => {
    const p = join(dir, 'c.cart');
    const c = Cartridge.open(p, { create: init });
    c.appendBlock(bytes(100, 1));
    c.sync();
    c.appendBlock(bytes(100, 2));
    c.close();
    const full = readFileSync(p);
    // Cut in the middle of the second block's payload (EOD/sync records gone too).
    const cut = LOG_OFFSET + RECORD_HEADER_SIZE + 100 + RECORD_HEADER_SIZE + RECORD_HEADER_SIZE + 50;
    writeFileSync(p, full.subarray(0, cut));
    const d = Cartridge.open(p);
    expect(d.recovered).toBe(true);
    expect(d.objectCount).toBe(1);
    d.appendBlock(bytes(7, 3));
    d.close();
    const r = checkCartridge(p);
    expect(r).toMatchObject({ ok: true, blocks: 2, tornTailBytes: 0, cleanEod: true });
  });

  it('refuses writes when opened read-only', () => {
    const p = join(dir, 'c.cart');
    Cartridge.open(p, { create: init }).close();
    const c = Cartridge.open(p, { readOnly: true });
    expect(() => c.appendBlock(bytes(1, 1))).toThrow(/read-only/);
    c.close();
  });

  it('reads back what it wrote for any sequence of writes, overwrites and reopens', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('block' as const), n: fc.integer({ min: 0, max: 300 }) }),
            fc.record({ op: fc.constant('fm' as const), n: fc.integer({ min: 0, max: 2 }) }),
            fc.record({ op: fc.constant('truncate' as const), n: fc.nat() }),
            fc.record({ op: fc.constant('reopen' as const), n: fc.constant(0) }),
          ),
          { maxLength: 30 },
        ),
        (ops) => {
          const p = join(dir, `p${Math.random().toString(36).slice(2)}.cart`);
          let c = Cartridge.open(p, { create: init });
          const model: (Uint8Array | 'fm')[] = [];
          let seed = 0;
          for (const o of ops) {
            if (o.op === 'block') {
              const b = bytes(o.n, seed++);
              c.appendBlock(b);
              model.push(b);
            } else if (o.op === 'fm') {
              c.appendFilemarks(o.n);
              for (let k = 0; k < o.n; k++) model.push('fm');
            } else if (o.op === 'truncate') {
              const at = model.length ? o.n % (model.length + 1) : 0;
              c.truncate(at);
              model.length = at;
            } else {
              c.close();
              c = Cartridge.open(p);
            }
          }
          c.close();
          c = Cartridge.open(p);
          expect(c.objectCount).toBe(model.length);
          model.forEach((m, i) => {
            if (m === 'fm') expect(c.object(i)?.kind).toBe('filemark');
            else expect(c.readBlock(i)).toEqual(m);
          });
          c.close();
          expect(checkCartridge(p).ok).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('checkCartridge', () => {
  function sample(p: string): void {
    const c = Cartridge.open(p, { create: init });
    for (let i = 0; i < 6; i++) c.appendBlock(bytes(200, i));
    c.appendFilemarks(1);
    c.appendBlock(bytes(200, 9));
    c.close();
  }
  const recSize = RECORD_HEADER_SIZE + 200;

  it('reports a clean cartridge', () => {
    const p = join(dir, 'c.cart');
    sample(p);
    const r = checkCartridge(p);
    expect(r).toMatchObject({ ok: true, blocks: 7, filemarks: 1, bytes: 1400, cleanEod: true, damaged: [] });
    expect(formatCartridgeReport(r)).toMatch(/Result: OK/);
  });

  it('finds a flipped payload byte and names the block; reading that block is a media error', () => {
    const p = join(dir, 'c.cart');
    sample(p);
    const f = readFileSync(p);
    const off = LOG_OFFSET + 3 * recSize + RECORD_HEADER_SIZE + 17;
    f[off] = (f[off] ?? 0) ^ 0x40;
    writeFileSync(p, f);
    const r = checkCartridge(p);
    expect(r.ok).toBe(false);
    expect(r.damaged).toEqual([{ partition: 0, objectNumber: 3, blockNumber: 3, offset: LOG_OFFSET + 3 * recSize, bytes: recSize, reason: 'bad-crc' }]);
    expect(r.blocks).toBe(6);
    expect(formatCartridgeReport(r)).toMatch(/block 3/);
    const c = Cartridge.open(p);
    expect(c.objectCount).toBe(8);
    expect(() => c.readBlock(3)).toThrow(MediaReadError);
    expect(c.readBlock(4)).toEqual(bytes(200, 4));
    c.close();
  });

  it('resynchronises after a flipped header byte and keeps the records after it', () => {
    const p = join(dir, 'c.cart');
    sample(p);
    const f = readFileSync(p);
    const off = LOG_OFFSET + 2 * recSize + 13; // inside the length field of block 2
    f[off] = (f[off] ?? 0) ^ 0x01;
    writeFileSync(p, f);
    const r = checkCartridge(p);
    expect(r.damaged).toHaveLength(1);
    expect(r.damaged[0]).toMatchObject({ objectNumber: 2, blockNumber: 2, reason: 'bad-header', offset: LOG_OFFSET + 2 * recSize });
    expect(r).toMatchObject({ blocks: 6, filemarks: 1 });
    const c = Cartridge.open(p);
    expect(c.objectCount).toBe(8);
    expect(() => c.readBlock(2)).toThrow(MediaReadError);
    expect(c.readBlock(7)).toEqual(bytes(200, 9));
    c.close();
  });

  it('reports a damaged header', () => {
    const p = join(dir, 'c.cart');
    sample(p);
    const f = readFileSync(p);
    f[40] = (f[40] ?? 0) ^ 0xff;
    writeFileSync(p, f);
    const r = checkCartridge(p);
    expect(r.ok).toBe(false);
    expect(r.headerError).toMatch(/CRC/);
  });
});
