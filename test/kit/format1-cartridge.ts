/**
 * Builds cartridge files of format version 1 for tests (unit tests of firmware-sim/media
 * and the cartridge power-loss campaign): production no longer writes that format, so the
 * fixed area is laid out byte by byte here (header version 1, `MAM1` slots whose CRC
 * covers the attributes only). The record log is the same in both versions, so records
 * are appended with the production code first and the fixed area rewritten after.
 */
import { closeSync, fsyncSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { Cartridge } from '../../firmware-sim/media/index.js';
import { LOG_OFFSET, MAM_SLOT_OFFSETS, type StoredAttribute } from '../../firmware-sim/media/format.js';
import { crc32c } from '../../src/native.js';

/** One cartridge memory slot of a format 1 file; it goes to slot `seq % 2`. */
export interface Format1Slot {
  readonly seq: number;
  readonly attrs: ReadonlyMap<number, StoredAttribute>;
}

/** What a format 1 cartridge file holds. */
export interface Format1Cartridge {
  readonly mediaType: string;
  readonly barcode: string;
  readonly capacityBytes: number;
  readonly createdMs: number;
  readonly slots: readonly Format1Slot[];
  /** Objects on the tape, in order (blocks by their payload); none when absent. */
  readonly records?: readonly (Uint8Array | 'filemark')[];
}

/** The fixed area (header and both MAM slots) of a format 1 file. */
function fixedArea(spec: Format1Cartridge): Buffer {
  const f = Buffer.alloc(LOG_OFFSET);
  f.write('PTPVTSCT', 0, 'ascii');
  f.writeUInt16BE(1, 8);
  f.writeUInt32BE(LOG_OFFSET, 12);
  f.writeUInt32BE(16384, 16);
  f.writeBigUInt64BE(BigInt(spec.capacityBytes), 20);
  f.writeBigUInt64BE(BigInt(spec.createdMs), 28);
  f.write(spec.mediaType.padEnd(16), 36, 'ascii');
  f.write(spec.barcode.padEnd(32), 52, 'ascii');
  f.writeUInt32BE(crc32c(f.subarray(0, 124)), 124);
  for (const s of spec.slots) {
    const parts: Buffer[] = [];
    for (const [id, a] of [...s.attrs].sort((x, y) => x[0] - y[0])) {
      const h = Buffer.alloc(5);
      h.writeUInt16BE(id, 0);
      h[2] = a.format;
      h.writeUInt16BE(a.value.length, 3);
      parts.push(h, Buffer.from(a.value));
    }
    const body = Buffer.concat(parts);
    const at = MAM_SLOT_OFFSETS[s.seq % 2] ?? 0;
    f.write('MAM1', at, 'ascii');
    f.writeUInt32BE(s.seq >>> 0, at + 4);
    f.writeUInt32BE(body.length, at + 8);
    f.writeUInt32BE(crc32c(body), at + 12);
    body.copy(f, at + 16);
  }
  return f;
}

/** Writes `spec` as a format 1 cartridge file at `path` (replacing any file there) and fsyncs it. */
export function writeFormat1Cartridge(path: string, spec: Format1Cartridge): void {
  const records = spec.records ?? [];
  if (records.length === 0) {
    writeFileSync(path, fixedArea(spec));
  } else {
    const c = Cartridge.open(path, { create: { mediaType: spec.mediaType, barcode: spec.barcode, capacityBytes: spec.capacityBytes, worm: false } });
    try {
      for (const r of records) {
        if (r === 'filemark') c.appendFilemarks(1);
        else c.appendBlock(r);
      }
    } finally {
      c.close();
    }
  }
  const fd = openSync(path, 'r+');
  try {
    if (records.length > 0) writeSync(fd, fixedArea(spec), 0, LOG_OFFSET, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
