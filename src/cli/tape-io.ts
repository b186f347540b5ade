/**
 * Files on tape: a file is a run of blocks ended by a filemark, as tar and every backup
 * application lay them out. Used by `ptpvts tape write/read/fill` and the demo.
 *
 * Data moves one block at a time, from a source that yields it in chunks and to a sink that
 * takes it block by block: a file of any size costs a few blocks of memory, never its size.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { TapeDrive } from '../devices/tape-drive.js';

/** The largest block `ptpvts` writes or reads: the SSC maximum of READ BLOCK LIMITS is 2^24 - 1. */
export const MAX_BLOCK_BYTES = 0xff_ffff;

export interface WrittenFile {
  readonly bytes: number;
  readonly blocks: number;
  /** Of the bytes written (for an interrupted file, those written before it stopped). */
  readonly sha256: string;
  readonly earlyWarning: boolean;
  /** The signal stopped the write before the data ran out; the blocks written are ended by the filemark. */
  readonly interrupted: boolean;
}

/** Writing a file stopped on an error after `bytes` in `blocks` blocks; `filemarkWritten` says whether what went out was ended by a filemark. */
export class TapeWriteError extends Error {
  override readonly name = 'TapeWriteError';
  readonly code = 'ETAPEWRITE';
  constructor(
    readonly bytes: number,
    readonly blocks: number,
    readonly filemarkWritten: boolean,
    cause: unknown,
  ) {
    super(
      `${cause instanceof Error ? cause.message : String(cause)}; the file was cut short after ${bytes} bytes in ${blocks} blocks${
        filemarkWritten ? ', ended by a filemark' : ' and no filemark could be written after them'
      }`,
      { cause },
    );
  }
}

/** Lets timers, I/O callbacks and signal handlers run. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** How to write a file. */
export interface WriteOptions {
  /** Called after each block with the bytes written so far. */
  readonly onBlock?: (done: number) => void;
  /**
   * Stops the write between two blocks: the blocks already written are ended by the
   * filemark as usual and the result says `interrupted`.
   */
  readonly signal?: AbortSignal;
}

/**
 * Writes the chunks of `source` as variable-length blocks of at most `blockSize` bytes (a
 * chunk longer than that is split, shorter ones are written as they come), then one
 * filemark. Rejects with {@link TapeWriteError} when a block cannot be written, after trying
 * to end what was written with a filemark.
 */
export async function writeStream(drive: TapeDrive, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, blockSize: number, o: WriteOptions = {}): Promise<WrittenFile> {
  let earlyWarning = false;
  let blocks = 0;
  let bytes = 0;
  let interrupted = false;
  const hash = createHash('sha256');
  try {
    outer: for await (const chunk of source) {
      for (let off = 0; off < chunk.length; off += blockSize) {
        if (o.signal) {
          // An emulated drive answers in microtasks alone: without a turn of the event loop a signal handler would never run.
          await yieldToEventLoop();
          if (o.signal.aborted) {
            interrupted = true;
            break outer;
          }
        }
        const block = chunk.subarray(off, Math.min(chunk.length, off + blockSize));
        const r = await drive.writeBlock(block);
        hash.update(block);
        earlyWarning ||= r.earlyWarning;
        blocks++;
        bytes += block.length;
        o.onBlock?.(bytes);
      }
    }
  } catch (e) {
    const fm = await drive.writeFilemarks(1).then(
      () => true,
      () => false,
    );
    throw new TapeWriteError(bytes, blocks, fm, e);
  }
  const fm = await drive.writeFilemarks(1);
  earlyWarning ||= fm.earlyWarning;
  return { bytes, blocks, sha256: hash.digest('hex'), earlyWarning, interrupted };
}

/** Writes `data` as variable-length blocks of `blockSize`, then one filemark (see {@link writeStream}). */
export async function writeFile(drive: TapeDrive, data: Uint8Array, blockSize: number, onBlock?: (done: number) => void): Promise<WrittenFile> {
  return writeStream(drive, [data], blockSize, onBlock === undefined ? {} : { onBlock });
}

export interface ReadFile {
  readonly data: Uint8Array;
  readonly blocks: number;
  readonly sha256: string;
  /** The file ended at end of data rather than at a filemark. */
  readonly endOfData: boolean;
}

/** A file read through a sink: its data went to the sink, not into memory. */
export interface StreamedFile {
  readonly bytes: number;
  readonly blocks: number;
  readonly sha256: string;
  /** The file ended at end of data rather than at a filemark. */
  readonly endOfData: boolean;
}

/** Reads blocks up to the next filemark (or end of data), handing each to `sink` as it comes. */
export async function readStream(drive: TapeDrive, maxBlock: number, sink: (block: Uint8Array) => void | Promise<void>): Promise<StreamedFile> {
  const hash = createHash('sha256');
  let blocks = 0;
  let bytes = 0;
  for (;;) {
    const r = await drive.read(maxBlock);
    if (r.data.length > 0) {
      hash.update(r.data);
      await sink(r.data);
      blocks++;
      bytes += r.data.length;
    }
    if (r.filemark) return { bytes, blocks, sha256: hash.digest('hex'), endOfData: false };
    if (r.eod) return { bytes, blocks, sha256: hash.digest('hex'), endOfData: true };
  }
}

/** Reads blocks up to the next filemark (or end of data) into memory. */
export async function readFile(drive: TapeDrive, maxBlock: number): Promise<ReadFile> {
  const parts: Uint8Array[] = [];
  const r = await readStream(drive, maxBlock, (b) => void parts.push(b));
  return { data: Buffer.concat(parts), blocks: r.blocks, sha256: r.sha256, endOfData: r.endOfData };
}

/** The chunks of a file on disk, `chunkSize` bytes each (the last one shorter), read as they are needed. */
export async function* fileChunks(path: string, chunkSize: number): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    for (;;) {
      // A fresh buffer per chunk: the drive may still hold the one it was given.
      const b = Buffer.allocUnsafe(chunkSize);
      let got = 0;
      while (got < chunkSize) {
        const { bytesRead } = await fh.read(b, got, chunkSize - got, null);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got > 0) yield b.subarray(0, got);
      if (got < chunkSize) return;
    }
  } finally {
    await fh.close();
  }
}

/**
 * `length` bytes of deterministic test data in chunks of `chunkSize` (the last one
 * shorter), made as they are needed: the same seed gives the same bytes on every machine
 * whatever the chunk size.
 */
export function* patternChunks(length: number, seed: number, chunkSize: number): Generator<Uint8Array> {
  let x = (seed * 2654435761) >>> 0 || 1;
  // Bytes of the current word not yet handed out, so that chunks need not be multiples of 4.
  let word = 0;
  let left = 0;
  for (let done = 0; done < length; ) {
    const n = Math.min(chunkSize, length - done);
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; left > 0 && i < n; i++, left--) {
      b[i] = word & 0xff;
      word >>>= 8;
    }
    for (; i + 4 <= n; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      b.writeUInt32LE(x, i);
    }
    if (i < n) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      word = x;
      left = 4;
      for (; i < n; i++, left--) {
        b[i] = word & 0xff;
        word >>>= 8;
      }
    }
    done += n;
    yield b;
  }
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
