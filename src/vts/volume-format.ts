/**
 * The byte format of one virtual volume: a magic, then records, each a host block or a
 * tape mark. The same bytes sit in the cache file, travel between peer VTS and are
 * premigrated to a cartridge, so each of those paths checks one format.
 *
 * ```
 * "PTPVVOL1"                        8 bytes
 * record*: kind u8 ('B' block | 'F' filemark), length u32 BE, data[length]
 * ```
 */
import { BadVolumeDataError } from './errors.js';

export const VOLUME_MAGIC = Buffer.from('PTPVVOL1', 'ascii');
export const RECORD_HEADER_BYTES = 5;
export const RecordKind = { block: 0x42, filemark: 0x46 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

/** Where one record sits in a volume file. */
export interface RecordEntry {
  readonly kind: RecordKind;
  /** File offset of the record header. */
  readonly offset: number;
  /** Data length (0 for a filemark). */
  readonly length: number;
}

/** Largest host block the VTS takes (what an LTO drive takes in variable mode). */
export const MAX_HOST_BLOCK = 8 * 1024 * 1024;

export function recordHeader(kind: RecordKind, length: number): Buffer {
  const h = Buffer.alloc(RECORD_HEADER_BYTES);
  h[0] = kind;
  h.writeUInt32BE(length, 1);
  return h;
}

/**
 * Checks a volume's bytes as they stream by, chunk by chunk, and optionally keeps the
 * record index. Throws {@link BadVolumeDataError} at the first malformed byte, and at
 * `end()` when the stream stops inside a record.
 */
export class VolumeParser {
  readonly entries: RecordEntry[] | undefined;
  #offset = 0;
  #magic = Buffer.alloc(0);
  #header = Buffer.alloc(0);
  #dataLeft = 0;
  #records = 0;

  constructor(opts: { index?: boolean } = {}) {
    this.entries = opts.index ? [] : undefined;
  }

  get records(): number {
    return this.#records;
  }

  get bytes(): number {
    return this.#offset;
  }

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#magic.length < VOLUME_MAGIC.length) {
        const take = Math.min(VOLUME_MAGIC.length - this.#magic.length, chunk.length - i);
        this.#magic = Buffer.concat([this.#magic, chunk.subarray(i, i + take)]);
        i += take;
        this.#offset += take;
        if (this.#magic.length === VOLUME_MAGIC.length && !this.#magic.equals(VOLUME_MAGIC)) throw new BadVolumeDataError('not a virtual volume (bad magic)');
        continue;
      }
      if (this.#dataLeft > 0) {
        const take = Math.min(this.#dataLeft, chunk.length - i);
        this.#dataLeft -= take;
        i += take;
        this.#offset += take;
        continue;
      }
      const take = Math.min(RECORD_HEADER_BYTES - this.#header.length, chunk.length - i);
      this.#header = Buffer.concat([this.#header, chunk.subarray(i, i + take)]);
      i += take;
      this.#offset += take;
      if (this.#header.length < RECORD_HEADER_BYTES) continue;
      const kind = this.#header[0];
      const length = this.#header.readUInt32BE(1);
      const at = this.#offset - RECORD_HEADER_BYTES;
      this.#header = Buffer.alloc(0);
      if (kind === RecordKind.filemark) {
        if (length !== 0) throw new BadVolumeDataError(`filemark with length ${length} at offset ${at}`);
      } else if (kind === RecordKind.block) {
        if (length === 0 || length > MAX_HOST_BLOCK) throw new BadVolumeDataError(`block of ${length} bytes at offset ${at}`);
      } else {
        throw new BadVolumeDataError(`unknown record kind 0x${(kind ?? 0).toString(16)} at offset ${at}`);
      }
      this.#dataLeft = length;
      this.#records++;
      this.entries?.push({ kind, offset: at, length });
    }
  }

  /** Throws when the bytes so far end inside the magic, a header or a block. */
  end(): void {
    if (this.#magic.length < VOLUME_MAGIC.length) throw new BadVolumeDataError('volume data ends inside the magic');
    if (this.#header.length > 0 || this.#dataLeft > 0) throw new BadVolumeDataError(`volume data ends inside a record at offset ${this.#offset}`);
  }
}

/** Builds a whole volume image in memory (tests, small volumes). */
export function buildVolume(records: readonly (Uint8Array | 'filemark')[]): Buffer {
  const parts: Buffer[] = [VOLUME_MAGIC];
  for (const r of records) {
    if (r === 'filemark') parts.push(recordHeader(RecordKind.filemark, 0));
    else parts.push(recordHeader(RecordKind.block, r.length), Buffer.from(r.buffer, r.byteOffset, r.length));
  }
  return Buffer.concat(parts);
}
