/**
 * A small state record made durable with one data flush.
 *
 * The file holds two fixed 4 KiB slots, written when the file is made. Each save overwrites
 * the older slot in place (pwrite, then fdatasync): the space is already allocated, so no
 * metadata changes and the flush is data only. A write-to-temp, fsync, rename and directory
 * fsync costs two journal commits, and a VTS records one on every key. Each slot carries
 * a counter and a CRC32C over counter, length and payload. Open takes the valid slot with
 * the higher counter, so a save torn by a crash leaves the previous state readable.
 *
 * Slot layout (little-endian): magic "PVS1" | u64 counter | u32 length | u32 crc32c | payload.
 */
import { crc32c } from '../native.js';
import { nodeFs, type PlatformFile, type PlatformFs } from '../platform/fs.js';
import { removeTempFiles, writeAll, writeDurable } from './durable.js';
import { StateFileError } from './errors.js';

export const SLOT_SIZE = 4096;
const HEADER = 20;
/** Largest payload a slot holds. */
export const MAX_SLOT_PAYLOAD = SLOT_SIZE - HEADER;
const MAGIC = 0x31535650; // "PVS1" read as u32 LE

// The file stays open for the VTS's life. A PlatformFile is never closed by the garbage
// collector (nodeFs wraps a plain descriptor, not a FileHandle): a VTS left open by its owner
// must not have its state file closed under it.

interface Slot {
  readonly counter: bigint;
  readonly payload: Uint8Array;
}

/** CRC32C over a slot's counter and length, then its payload. */
function slotCrc(slot: Buffer, length: number): number {
  return crc32c(slot.subarray(HEADER, HEADER + length), crc32c(slot.subarray(4, 16)));
}

function encodeSlot(counter: bigint, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(HEADER + payload.length);
  b.writeUInt32LE(MAGIC, 0);
  b.writeBigUInt64LE(counter, 4);
  b.writeUInt32LE(payload.length, 12);
  b.set(payload, HEADER);
  b.writeUInt32LE(slotCrc(b, payload.length), 16);
  return b;
}

/** The slot at `at`, or why it is not valid. */
function decodeSlot(file: Buffer, at: number): Slot | string {
  const b = file.subarray(at, at + SLOT_SIZE);
  if (b.length < HEADER) return 'too short';
  if (b.readUInt32LE(0) !== MAGIC) return 'no magic';
  const length = b.readUInt32LE(12);
  if (length > MAX_SLOT_PAYLOAD) return `length ${length} over ${MAX_SLOT_PAYLOAD}`;
  const want = b.readUInt32LE(16);
  if (slotCrc(b, length) !== want) return 'CRC mismatch';
  return { counter: b.readBigUInt64LE(4), payload: Uint8Array.from(b.subarray(HEADER, HEADER + length)) };
}

export class SlotFile {
  readonly path: string;
  #fd: PlatformFile | null;
  #counter: bigint;
  /** Slot holding the newest state: a save always goes to the other one. */
  #newest: number;
  #tail: Promise<void> = Promise.resolve();
  /** After a failed flush the page cache no longer says what is on disk: every later save is refused. */
  #failed: Error | null = null;

  private constructor(path: string, fd: PlatformFile, counter: bigint, newest: number) {
    this.path = path;
    this.#fd = fd;
    this.#counter = counter;
    this.#newest = newest;
  }

  /**
   * Opens `path`; when it does not exist, makes it (durably, with `initial` in its first
   * slot). Returns the newest valid payload. Throws {@link StateFileError} when the file is
   * short or neither slot is valid. `fs` defaults to node:fs.
   */
  static async open(path: string, initial: () => Uint8Array, fs: PlatformFs = nodeFs): Promise<{ file: SlotFile; payload: Uint8Array }> {
    // A create cut short leaves its temporary file; nothing else ever reads it.
    await removeTempFiles(path, fs);
    let fd: PlatformFile;
    try {
      fd = await fs.open(path, 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const payload = initial();
      await SlotFile.#create(path, payload, fs);
      return { file: new SlotFile(path, await fs.open(path, 'r+'), 1n, 1), payload };
    }
    try {
      const bytes = Buffer.alloc(2 * SLOT_SIZE);
      let got = 0;
      for (;;) {
        const { bytesRead } = await fd.read(bytes, got, bytes.length - got, got);
        if (bytesRead === 0 || (got += bytesRead) === bytes.length) break;
      }
      if (got < 2 * SLOT_SIZE) throw new StateFileError(path, `${got} bytes, a state file has two slots of ${SLOT_SIZE}`);
      const a = decodeSlot(bytes, 0);
      const b = decodeSlot(bytes, SLOT_SIZE);
      if (typeof a === 'string' && typeof b === 'string') throw new StateFileError(path, `neither slot is valid (slot 0: ${a}; slot 1: ${b})`);
      const newest = typeof b === 'string' || (typeof a !== 'string' && a.counter > b.counter) ? 0 : 1;
      const slot = (newest === 0 ? a : b) as Slot;
      return { file: new SlotFile(path, fd, slot.counter, newest), payload: slot.payload };
    } catch (e) {
      await fd.close();
      throw e;
    }
  }

  static async #create(path: string, payload: Uint8Array, fs: PlatformFs): Promise<void> {
    if (payload.length > MAX_SLOT_PAYLOAD) throw new StateFileError(path, `state of ${payload.length} bytes does not fit a slot (${MAX_SLOT_PAYLOAD})`);
    const bytes = Buffer.alloc(2 * SLOT_SIZE);
    // Counter 1 in slot 1, so the first save (counter 2) goes to slot 0 and leaves it whole.
    encodeSlot(1n, payload).copy(bytes, SLOT_SIZE);
    await writeDurable(path, bytes, fs);
  }

  /** Makes `payload` the state, durably; saves run one at a time in call order. */
  save(payload: Uint8Array): Promise<void> {
    const run = this.#tail.then(() => this.#save(payload));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #save(payload: Uint8Array): Promise<void> {
    if (this.#failed !== null) throw new StateFileError(this.path, `an earlier save failed (${this.#failed.message}); reopen the VTS`, { cause: this.#failed });
    const fd = this.#fd;
    if (fd === null) throw new StateFileError(this.path, 'closed');
    if (payload.length > MAX_SLOT_PAYLOAD) throw new StateFileError(this.path, `state of ${payload.length} bytes does not fit a slot (${MAX_SLOT_PAYLOAD})`);
    const counter = this.#counter + 1n;
    // Never the slot of the newest state: a torn save must leave it readable. (Files made
    // before counter 1 moved to slot 1 hold it in slot 0; parity alone would overwrite it.)
    const slot = 1 - this.#newest;
    const b = encodeSlot(counter, payload);
    try {
      await writeAll(fd, b, slot * SLOT_SIZE, this.path);
      await fd.datasync();
    } catch (e) {
      this.#failed = e as Error;
      throw e;
    }
    this.#counter = counter;
    this.#newest = slot;
  }

  async close(): Promise<void> {
    await this.#tail;
    const fd = this.#fd;
    this.#fd = null;
    if (fd !== null) await fd.close();
  }
}
