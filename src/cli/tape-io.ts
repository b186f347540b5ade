/**
 * Files on tape: a file is a run of blocks ended by a filemark, as tar and every backup
 * application lay them out. Used by `ptpvts tape write/read/fill` and the demo.
 */
import { createHash } from 'node:crypto';
import type { TapeDrive } from '../devices/tape-drive.js';

export interface WrittenFile {
  readonly bytes: number;
  readonly blocks: number;
  readonly sha256: string;
  readonly earlyWarning: boolean;
}

/** Writes `data` as variable-length blocks of `blockSize`, then one filemark. */
export async function writeFile(drive: TapeDrive, data: Uint8Array, blockSize: number, onBlock?: (done: number) => void): Promise<WrittenFile> {
  let earlyWarning = false;
  let blocks = 0;
  for (let off = 0; off < data.length; off += blockSize) {
    const r = await drive.writeBlock(data.subarray(off, Math.min(data.length, off + blockSize)));
    earlyWarning ||= r.earlyWarning;
    blocks++;
    onBlock?.(Math.min(data.length, off + blockSize));
  }
  const fm = await drive.writeFilemarks(1);
  earlyWarning ||= fm.earlyWarning;
  return { bytes: data.length, blocks, sha256: createHash('sha256').update(data).digest('hex'), earlyWarning };
}

export interface ReadFile {
  readonly data: Uint8Array;
  readonly blocks: number;
  readonly sha256: string;
  /** The file ended at end of data rather than at a filemark. */
  readonly endOfData: boolean;
}

/** Reads blocks up to the next filemark (or end of data). */
export async function readFile(drive: TapeDrive, maxBlock: number): Promise<ReadFile> {
  const parts: Uint8Array[] = [];
  let blocks = 0;
  for (;;) {
    const r = await drive.read(maxBlock);
    if (r.data.length > 0) {
      parts.push(r.data);
      blocks++;
    }
    if (r.filemark) break;
    if (r.eod) {
      const data = Buffer.concat(parts);
      return { data, blocks, sha256: createHash('sha256').update(data).digest('hex'), endOfData: true };
    }
  }
  const data = Buffer.concat(parts);
  return { data, blocks, sha256: createHash('sha256').update(data).digest('hex'), endOfData: false };
}

/** Deterministic test data: the same seed gives the same bytes on every machine. */
export function patternData(length: number, seed: number): Uint8Array {
  const b = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  const whole = length - (length % 4);
  for (let i = 0; i < whole; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  for (let i = whole; i < length; i++) b[i] = (x >>> (8 * (i - whole))) & 0xff;
  return b;
}
