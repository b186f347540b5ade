/**
 * Client of a sequential-access device (SSC-4). Positional conditions that SSC reports
 * through CHECK CONDITION — a filemark read, end of data, early warning, an incorrect
 * block length — come back as results, because they are how a tape answers normal
 * work; only real failures throw.
 */
import { Cdb, DeviceType, SenseKey, SpaceCode } from '../scsi/index.js';
import type { Command } from '../scsi/index.js';
import { buildWriteAttributeList, parseAttributeValues } from '../scsi/parse-attribute.js';
import type { AttributeToWrite, DecodedAttribute } from '../scsi/parse-attribute.js';
import { parseSequentialAccessCapabilities, parseManufacturerSerialNumber } from '../scsi/parse-inquiry.js';
import type { SequentialAccessCapabilities } from '../scsi/parse-inquiry.js';
import { LogPageCode, parseTapeAlert } from '../scsi/parse-log.js';
import type { TapeAlert } from '../scsi/parse-log.js';
import { parseBlockLimits, parseDensitySupport, parseLongPosition, parseMediumTypeSupport, parseShortPosition } from '../scsi/parse-tape.js';
import type { BlockLimits, DensityDescriptor, MediumTypeDescriptor } from '../scsi/parse-tape.js';
import { getU16, getU32 } from '../scsi/bytes.js';
import type { ScsiPort } from '../transport/scsi-port.js';
import { senseError } from './command.js';
import type { CallOptions, Outcome } from './command.js';
import { informationOf } from './errors.js';
import { ScsiDevice } from './scsi-device.js';
import type { DeviceOptions } from './scsi-device.js';

/** Options of a {@link TapeDrive}. */
export interface TapeDriveOptions extends DeviceOptions {
  /** Timeout for commands that move tape (rewind, space, locate, load, unload, filemarks), ms. Default 2 h. */
  readonly motionTimeoutMs?: number;
  /** Timeout for ERASE, ms. Default 12 h (a long erase of a full cartridge takes hours). */
  readonly eraseTimeoutMs?: number;
}

const DEFAULT_MOTION_TIMEOUT_MS = 2 * 3600_000;
const DEFAULT_ERASE_TIMEOUT_MS = 12 * 3600_000;

/** Outcome of a READ. */
export interface ReadResult {
  /** The bytes of the block (variable mode) or of the whole blocks read (fixed mode). */
  readonly data: Uint8Array;
  /**
   * Residue from the INFORMATION field: bytes (variable) or blocks (fixed) requested but
   * not read. Negative in variable mode when the block was longer than `maxLength` (the
   * excess is lost: re-read with a larger length after spacing back one block).
   */
  readonly residue: number;
  /** A filemark was read: the position is now after it. */
  readonly filemark: boolean;
  /** End of data (BLANK CHECK): nothing more was written on this partition. */
  readonly eod: boolean;
  /** EOM: early warning or end of partition reached while reading. */
  readonly eom: boolean;
  /** The block length differed from the request. */
  readonly ili: boolean;
  /** A setmark was read. */
  readonly setmark: boolean;
  /** The device recovered an error to complete the read (RECOVERED ERROR). */
  readonly recovered: boolean;
  /** Variable mode: the actual length of the block read, when known. */
  readonly blockLength?: number;
}

/** Outcome of a WRITE or WRITE FILEMARKS. */
export interface WriteResult {
  /** Bytes (WRITE) or filemarks (WRITE FILEMARKS) the device accepted. */
  readonly written: number;
  /**
   * EOM early warning: the write completed but the partition is nearly full. Finish the
   * current file, write filemarks, and change volumes; writing on ends in VOLUME OVERFLOW.
   */
  readonly earlyWarning: boolean;
  /** Programmable early warning (PEW) was crossed. */
  readonly programmableEarlyWarning: boolean;
  readonly recovered: boolean;
}

/** Outcome of a SPACE. */
export interface SpaceResult {
  /** How many of the requested objects were not spaced over (a magnitude, whatever the direction); 0 when complete. */
  readonly residue: number;
  /** Spacing over blocks stopped at a filemark (the position is after it when forward). */
  readonly filemark: boolean;
  readonly setmark: boolean;
  /** End of data reached (BLANK CHECK). */
  readonly eod: boolean;
  /** Beginning of partition reached while spacing backward. */
  readonly bop: boolean;
  /** Early warning or end of partition reached while spacing forward. */
  readonly eom: boolean;
}

/** A normalised READ POSITION answer. */
export interface TapePosition {
  readonly form: 'short' | 'long';
  readonly partition: number;
  /** Logical object (block) number the next READ or WRITE addresses. */
  readonly block: number;
  /** Long form only: filemarks between BOP and the position. */
  readonly fileNumber?: number;
  readonly bop: boolean;
  readonly eop: boolean;
  readonly bpew: boolean;
  /** The device does not know its position (LOLU/MPU), e.g. after an error. */
  readonly unknown: boolean;
  /** Short form only: the next block the medium will see, objects and bytes still in the buffer. */
  readonly lastBlock?: number;
  readonly objectsInBuffer?: number;
  readonly bytesInBuffer?: number;
}

/** What MODE SENSE says about blocks and density. */
export interface BlockMode {
  /** 0: variable-block mode. */
  readonly blockSize: number;
  readonly densityCode: number;
  readonly writeProtected: boolean;
  readonly bufferedMode: number;
  readonly mediumType: number;
}

/**
 * A tape drive behind a {@link ScsiPort}.
 *
 * Errors: conditions listed on each method come back as results; every other CHECK
 * CONDITION throws `SenseError` with key, ASC and ASCQ named (`VolumeOverflowError` for
 * VOLUME OVERFLOW); other statuses throw `StatusError`. Timeout: commands that move tape
 * use `motionTimeoutMs`, ERASE `eraseTimeoutMs`, others `timeoutMs`; any per-call
 * `timeoutMs` wins. Timeout and cancel (`signal`) reject with the port's `TransportError`
 * unchanged, and the tape position is then unknown: call {@link TapeDrive.position}.
 */
export class TapeDrive extends ScsiDevice {
  readonly deviceType = DeviceType.sequentialAccess;
  #blockSize: number | undefined;

  constructor(
    port: ScsiPort,
    protected override readonly options: TapeDriveOptions = {},
  ) {
    super(port, options);
  }

  /** The block size last set or read through this client (0 variable), if known. */
  get knownBlockSize(): number | undefined {
    return this.#blockSize;
  }

  private get motion(): number {
    return this.options.motionTimeoutMs ?? DEFAULT_MOTION_TIMEOUT_MS;
  }

  /** VPD B0h: sequential-access device capabilities. */
  async capabilities(opts: CallOptions = {}): Promise<SequentialAccessCapabilities> {
    return this.parse(Cdb.inquiry({ page: 0xb0 }), await this.vpdPage(0xb0, opts), parseSequentialAccessCapabilities);
  }

  /** VPD B1h: manufacturer-assigned serial number. */
  async manufacturerSerialNumber(opts: CallOptions = {}): Promise<string> {
    return this.parse(Cdb.inquiry({ page: 0xb1 }), await this.vpdPage(0xb1, opts), parseManufacturerSerialNumber);
  }

  /** READ BLOCK LIMITS. */
  async readBlockLimits(opts: CallOptions = {}): Promise<BlockLimits> {
    const command = Cdb.readBlockLimits();
    return this.parse(command, await this.run(command, opts), parseBlockLimits);
  }

  /** LOAD (threads the medium to BOP). `hold`: load into the drive without threading. */
  async load(o: CallOptions & { hold?: boolean; immediate?: boolean; retension?: boolean } = {}): Promise<void> {
    await this.run(Cdb.loadUnload({ load: true, ...flags(o, 'hold', 'immediate', 'retension') }), o, this.motion);
  }

  /** UNLOAD (rewinds and ejects; `hold` keeps it in the drive; `eot` unloads at end of tape). */
  async unload(o: CallOptions & { hold?: boolean; immediate?: boolean; eot?: boolean } = {}): Promise<void> {
    await this.run(Cdb.loadUnload({ load: false, ...flags(o, 'hold', 'immediate', 'eot') }), o, this.motion);
  }

  /** REWIND to the beginning of the current partition. */
  async rewind(o: CallOptions & { immediate?: boolean } = {}): Promise<void> {
    await this.run(Cdb.rewind(flags(o, 'immediate')), o, this.motion);
  }

  /**
   * WRITE one variable-length block. Early warning (NO SENSE with EOM) is a result with
   * `earlyWarning: true`; VOLUME OVERFLOW throws `VolumeOverflowError`.
   */
  async writeBlock(data: Uint8Array, opts: CallOptions = {}): Promise<WriteResult> {
    const command = Cdb.write6(data);
    return this.writeOutcome(await this.issue(command, opts), data.length, 1);
  }

  /**
   * WRITE in fixed-block mode: `data` holds whole blocks of `blockSize` (default: the size
   * last set through {@link setBlockSize}). Results and errors as {@link writeBlock}.
   */
  async writeBlocks(data: Uint8Array, o: CallOptions & { blockSize?: number } = {}): Promise<WriteResult> {
    const blockSize = this.fixedSize(o.blockSize);
    const command = Cdb.write6(data, { fixed: true, blockSize });
    return this.writeOutcome(await this.issue(command, o), data.length, blockSize);
  }

  private writeOutcome(outcome: Outcome, bytes: number, unit: number): WriteResult {
    if (outcome.kind === 'good') return { written: bytes, earlyWarning: false, programmableEarlyWarning: false, recovered: false };
    const s = outcome.sense;
    const soft = s.key === SenseKey.NO_SENSE || s.key === SenseKey.RECOVERED_ERROR;
    const pew = s.asc === 0x00 && s.ascq === 0x07;
    const ew = (s.eom ?? false) && s.asc === 0x00 && (s.ascq === 0x00 || s.ascq === 0x02);
    if (!soft || (!ew && !pew && s.key === SenseKey.NO_SENSE)) throw senseError(outcome);
    const residue = Math.max(0, informationOf(s) ?? 0);
    return { written: Math.max(0, bytes - residue * unit), earlyWarning: ew, programmableEarlyWarning: pew, recovered: s.key === SenseKey.RECOVERED_ERROR };
  }

  /**
   * READ one variable-length block of at most `maxLength` bytes. A filemark, end of
   * data, end of partition and an incorrect length are results (see {@link ReadResult});
   * `sili` suppresses the incorrect-length report for short blocks.
   */
  async read(maxLength: number, o: CallOptions & { sili?: boolean } = {}): Promise<ReadResult> {
    const command = Cdb.read6({ length: maxLength, ...(o.sili ? { sili: true } : {}) });
    return this.readOutcome(await this.issue(command, o), maxLength, 1, true);
  }

  /** READ `count` blocks in fixed-block mode (`blockSize` default: the size last set). */
  async readBlocks(count: number, o: CallOptions & { blockSize?: number } = {}): Promise<ReadResult> {
    const blockSize = this.fixedSize(o.blockSize);
    const command = Cdb.read6({ length: count, fixed: true, blockSize });
    return this.readOutcome(await this.issue(command, o), count, blockSize, false);
  }

  private readOutcome(outcome: Outcome, requested: number, unit: number, variable: boolean): ReadResult {
    const none = { filemark: false, eod: false, eom: false, ili: false, setmark: false, recovered: false };
    if (outcome.kind === 'good') return { ...none, data: outcome.data, residue: 0, ...(variable ? { blockLength: outcome.data.length } : {}) };
    const s = outcome.sense;
    const residue = informationOf(s) ?? Math.floor(outcome.residual / unit);
    const eopRead = s.key === SenseKey.MEDIUM_ERROR && (s.eom ?? false) && s.asc === 0x00 && s.ascq === 0x02;
    const soft = s.key === SenseKey.NO_SENSE || s.key === SenseKey.RECOVERED_ERROR;
    if (!soft && s.key !== SenseKey.BLANK_CHECK && !eopRead) throw senseError(outcome);
    const transferred = requested - Math.max(0, residue);
    const data = outcome.data.subarray(0, Math.min(outcome.data.length, Math.max(0, transferred) * unit));
    return {
      data,
      residue,
      filemark: s.filemark ?? false,
      eod: s.key === SenseKey.BLANK_CHECK,
      eom: s.eom ?? false,
      ili: s.ili ?? false,
      setmark: s.asc === 0x00 && s.ascq === 0x03,
      recovered: s.key === SenseKey.RECOVERED_ERROR,
      ...(variable && (s.ili ?? false) ? { blockLength: requested - residue } : {}),
    };
  }

  private fixedSize(given?: number): number {
    const bs = given ?? this.#blockSize;
    if (bs === undefined || bs <= 0) throw new RangeError('fixed-block transfer needs a block size: pass blockSize or call setBlockSize first');
    return bs;
  }

  /** WRITE FILEMARKS(6) (`count` 0 flushes the buffer). Early warning is a result, as for WRITE. */
  async writeFilemarks(count = 1, o: CallOptions & { immediate?: boolean } = {}): Promise<WriteResult> {
    const command = Cdb.writeFilemarks6(count, flags(o, 'immediate'));
    return this.writeOutcome(await this.issue(command, o, this.motion), count, 1);
  }

  /**
   * SPACE over blocks, filemarks, sequential filemarks, or to end of data. Negative
   * counts space backward. Stopping early at a filemark, EOD, BOP or end of partition is a
   * result with the residue; SPACE(16) is used when the count does not fit 24 bits.
   */
  async space(code: SpaceCode, count: number, o: CallOptions & { cdb?: 6 | 16 } = {}): Promise<SpaceResult> {
    const fits = count >= -0x800000 && count <= 0x7fffff;
    const command = o.cdb === 16 || !fits ? Cdb.space16(code, count) : Cdb.space6(code, count);
    const outcome = await this.issue(command, o, this.motion);
    const none = { residue: 0, filemark: false, setmark: false, eod: false, bop: false, eom: false };
    if (outcome.kind === 'good') return none;
    const s = outcome.sense;
    const eopHit = s.key === SenseKey.MEDIUM_ERROR && (s.eom ?? false) && s.asc === 0x00 && (s.ascq === 0x02 || s.ascq === 0x04);
    if (s.key !== SenseKey.NO_SENSE && s.key !== SenseKey.BLANK_CHECK && !eopHit) throw senseError(outcome);
    return {
      // Drives differ in the sign they give a backward residue; callers get the magnitude.
      residue: Math.abs(informationOf(s) ?? 0),
      filemark: s.filemark ?? false,
      setmark: s.asc === 0x00 && s.ascq === 0x03,
      eod: s.key === SenseKey.BLANK_CHECK,
      bop: s.asc === 0x00 && s.ascq === 0x04,
      eom: (s.eom ?? false) && !(s.asc === 0x00 && s.ascq === 0x04),
    };
  }

  /** SPACE to end of data, where appending begins. */
  async spaceToEndOfData(opts: CallOptions = {}): Promise<SpaceResult> {
    return this.space(SpaceCode.endOfData, 0, opts);
  }

  /**
   * LOCATE to a logical object (block) address, optionally changing partition. Uses
   * LOCATE(10) when the address fits 32 bits, LOCATE(16) otherwise or when asked for.
   * `destType` (LOCATE(16) only) 1 locates to a file (filemark count), 3 to end of data.
   * Any CHECK CONDITION (including BLANK CHECK short of the target) throws `SenseError`.
   */
  async locate(target: number | bigint, o: CallOptions & { partition?: number; immediate?: boolean; cdb?: 10 | 16; destType?: number } = {}): Promise<void> {
    const big = BigInt(target);
    const use16 = o.cdb === 16 || o.destType !== undefined || big > 0xffffffffn;
    const opts = { ...(o.partition !== undefined ? { partition: o.partition } : {}), ...(o.immediate ? { immediate: true } : {}) };
    const command: Command = use16 ? Cdb.locate16(big, { ...opts, ...(o.destType !== undefined ? { destType: o.destType } : {}) }) : Cdb.locate10(Number(big), opts);
    await this.run(command, o, this.motion);
  }

  /** READ POSITION; the long form (default) carries the file number and 64-bit fields. */
  async position(o: CallOptions & { form?: 'short' | 'long' } = {}): Promise<TapePosition> {
    const form = o.form ?? 'long';
    const command = Cdb.readPosition(form);
    const data = await this.run(command, o);
    if (form === 'short') {
      const p = this.parse(command, data, parseShortPosition);
      return {
        form,
        partition: p.partition,
        block: p.block,
        bop: p.bop,
        eop: p.eop,
        bpew: p.bpew,
        unknown: p.lolu,
        lastBlock: p.lastBlock,
        objectsInBuffer: p.objectsInBuffer,
        bytesInBuffer: p.bytesInBuffer,
      };
    }
    const p = this.parse(command, data, parseLongPosition);
    return { form, partition: p.partition, block: Number(p.block), fileNumber: Number(p.fileNumber), bop: p.bop, eop: p.eop, bpew: p.bpew, unknown: p.mpu || p.lonu };
  }

  /** ERASE: short (writes EOD here) by default; `long` erases to the end of the partition. */
  async erase(o: CallOptions & { long?: boolean; immediate?: boolean } = {}): Promise<void> {
    await this.run(Cdb.erase6(flags(o, 'long', 'immediate')), o, this.options.eraseTimeoutMs ?? DEFAULT_ERASE_TIMEOUT_MS);
  }

  /** REPORT DENSITY SUPPORT (density descriptors); `media` limits it to the mounted medium. */
  async reportDensitySupport(o: CallOptions & { media?: boolean } = {}): Promise<DensityDescriptor[]> {
    const { command, data } = await this.runSized((n) => Cdb.reportDensitySupport({ allocationLength: n, ...flags(o, 'media') }), 1024, (d) => (d.length >= 2 ? getU16(d, 0) + 2 : undefined), 0xffff, o);
    return this.parse(command, data, parseDensitySupport);
  }

  /** REPORT DENSITY SUPPORT with MEDIUM TYPE=1 (medium type descriptors). */
  async reportMediumTypeSupport(o: CallOptions & { media?: boolean } = {}): Promise<MediumTypeDescriptor[]> {
    const { command, data } = await this.runSized((n) => Cdb.reportDensitySupport({ allocationLength: n, mediumType: true, ...flags(o, 'media') }), 1024, (d) => (d.length >= 2 ? getU16(d, 0) + 2 : undefined), 0xffff, o);
    return this.parse(command, data, parseMediumTypeSupport);
  }

  /**
   * READ ATTRIBUTE (attribute values) from `firstAttribute` on, decoded by name. The
   * answer is re-read whole when the first allocation cut it.
   */
  async readAttributes(o: CallOptions & { partition?: number; firstAttribute?: number } = {}): Promise<DecodedAttribute[]> {
    const build = (n: number): Command => Cdb.readAttribute({ allocationLength: n, ...(o.partition !== undefined ? { partition: o.partition } : {}), ...(o.firstAttribute !== undefined ? { firstAttribute: o.firstAttribute } : {}) });
    const { command, data } = await this.runSized(build, 4096, (d) => (d.length >= 4 ? getU32(d, 0) + 4 : undefined), 0x1000000, o);
    return this.parse(command, data, (b) => parseAttributeValues(b).attributes);
  }

  /** One attribute, or undefined when the medium does not hold it. */
  async readAttribute(id: number, o: CallOptions & { partition?: number } = {}): Promise<DecodedAttribute | undefined> {
    const all = await this.readAttributes({ ...o, firstAttribute: id });
    return all.find((a) => a.id === id);
  }

  /** WRITE ATTRIBUTE with one or more attributes (a zero-length value deletes one). */
  async writeAttributes(attrs: readonly AttributeToWrite[], o: CallOptions & { partition?: number; writeThrough?: boolean } = {}): Promise<void> {
    // A malformed list is a caller error: the builder's ScsiParseError surfaces as is.
    const list = buildWriteAttributeList(attrs);
    await this.run(Cdb.writeAttribute(list, { ...(o.partition !== undefined ? { partition: o.partition } : {}), ...flags(o, 'writeThrough') }), o);
  }

  /** WRITE ATTRIBUTE with a single attribute. */
  async writeAttribute(attr: AttributeToWrite, o: CallOptions & { partition?: number; writeThrough?: boolean } = {}): Promise<void> {
    await this.writeAttributes([attr], o);
  }

  /** Block size, density and write protection from the MODE SENSE header and block descriptor. */
  async blockMode(opts: CallOptions = {}): Promise<BlockMode> {
    const m = await this.modeSense(0x3f, opts);
    const bd = m.blockDescriptors[0];
    const mode = { blockSize: bd?.blockLength ?? 0, densityCode: bd?.densityCode ?? 0, writeProtected: m.writeProtected, bufferedMode: m.bufferedMode, mediumType: m.mediumType };
    if (bd) this.#blockSize = mode.blockSize;
    return mode;
  }

  /**
   * Sets the block size (0 selects variable-block mode) with MODE SELECT(6): the current
   * density and buffered mode are read first and sent back unchanged unless given.
   */
  async setBlockSize(blockSize: number, o: CallOptions & { densityCode?: number; bufferedMode?: number } = {}): Promise<void> {
    if (!Number.isInteger(blockSize) || blockSize < 0 || blockSize > 0xffffff) throw new RangeError(`blockSize must be 0..16777215 (got ${blockSize})`);
    let densityCode = o.densityCode;
    let buffered = o.bufferedMode;
    if (densityCode === undefined || buffered === undefined) {
      const cur = await this.blockMode(o);
      densityCode ??= cur.densityCode;
      buffered ??= cur.bufferedMode;
    }
    await this.modeSelect({ deviceSpecific: (buffered & 7) << 4, blockDescriptors: [{ densityCode, numberOfBlocks: 0n, blockLength: blockSize }] }, o);
    this.#blockSize = blockSize;
  }

  /** LOG SENSE of the TapeAlert page (2Eh): the flags set, with their names. */
  async tapeAlerts(opts: CallOptions = {}): Promise<TapeAlert[]> {
    const command = Cdb.logSense({ page: LogPageCode.tapeAlert });
    return this.parse(command, await this.run(command, opts), parseTapeAlert);
  }
}

/** Copies only the boolean flags that are set, so builders see no `undefined` keys. */
function flags<K extends string>(o: Partial<Record<K, boolean | undefined>> & object, ...keys: K[]): Partial<Record<K, boolean>> {
  const out: Partial<Record<K, boolean>> = {};
  for (const k of keys) if (o[k]) out[k] = true;
  return out;
}
