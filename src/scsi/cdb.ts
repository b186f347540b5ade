/**
 * CDB builders. Each returns a {@link Command}: the CDB plus the data phase it implies, so
 * a client hands it to `ScsiPort.execute` as it is. Builders validate their arguments
 * and throw {@link CdbArgumentError} naming the field, so a malformed CDB is never sent
 * by mistake (tests that want malformed CDBs build the bytes themselves).
 */
import { setU16, setU24, setU32, setU64 } from './bytes.js';
import { MaintenanceInServiceAction, SmcOpcode, SpcOpcode, SscOpcode } from './opcodes.js';

export interface Command {
  readonly cdb: Uint8Array;
  readonly direction: 'none' | 'in' | 'out';
  readonly dataInLength?: number;
  readonly dataOut?: Uint8Array;
}

export class CdbArgumentError extends RangeError {
  override readonly name = 'CdbArgumentError';
  readonly code = 'ECDBARG';
}

function need(cond: boolean, field: string, value: unknown, range: string): void {
  if (!cond) throw new CdbArgumentError(`${field} must be ${range} (got ${String(value)})`);
}
function intIn(v: number, lo: number, hi: number): boolean {
  return Number.isInteger(v) && v >= lo && v <= hi;
}

function cdb(len: number, opcode: number): Uint8Array {
  const b = new Uint8Array(len);
  b[0] = opcode;
  return b;
}
const none = (b: Uint8Array): Command => ({ cdb: b, direction: 'none' });
const dataIn = (b: Uint8Array, n: number): Command => ({ cdb: b, direction: 'in', dataInLength: n });
const dataOut = (b: Uint8Array, d: Uint8Array): Command => ({ cdb: b, direction: 'out', dataOut: d });

// ---------------------------------------------------------------- SPC

export function testUnitReady(): Command {
  return none(cdb(6, SpcOpcode.TEST_UNIT_READY));
}

export function requestSense(opts: { descriptor?: boolean; allocationLength?: number } = {}): Command {
  const n = opts.allocationLength ?? 252;
  need(intIn(n, 0, 255), 'allocationLength', n, '0..255');
  const b = cdb(6, SpcOpcode.REQUEST_SENSE);
  if (opts.descriptor) b[1] = 0x01;
  b[4] = n;
  return dataIn(b, n);
}

export function inquiry(opts: { page?: number; allocationLength?: number } = {}): Command {
  const n = opts.allocationLength ?? 255;
  need(intIn(n, 0, 0xffff), 'allocationLength', n, '0..65535');
  const b = cdb(6, SpcOpcode.INQUIRY);
  if (opts.page !== undefined) {
    need(intIn(opts.page, 0, 0xff), 'page', opts.page, '0..255');
    b[1] = 0x01;
    b[2] = opts.page;
  }
  setU16(b, 3, n);
  return dataIn(b, n);
}

export function reportLuns(opts: { selectReport?: number; allocationLength?: number } = {}): Command {
  const n = opts.allocationLength ?? 4096;
  need(intIn(n, 16, 0xffffffff), 'allocationLength', n, '16..2^32-1');
  const b = cdb(12, SpcOpcode.REPORT_LUNS);
  b[2] = opts.selectReport ?? 0;
  setU32(b, 6, n);
  return dataIn(b, n);
}

export interface ModeSenseOptions {
  page: number;
  subpage?: number;
  /** 0 current, 1 changeable, 2 default, 3 saved. */
  pageControl?: 0 | 1 | 2 | 3;
  disableBlockDescriptors?: boolean;
  allocationLength?: number;
}

export function modeSense6(o: ModeSenseOptions): Command {
  const n = o.allocationLength ?? 255;
  need(intIn(n, 0, 255), 'allocationLength', n, '0..255');
  need(intIn(o.page, 0, 0x3f), 'page', o.page, '0..63');
  const b = cdb(6, SpcOpcode.MODE_SENSE_6);
  if (o.disableBlockDescriptors) b[1] = 0x08;
  b[2] = ((o.pageControl ?? 0) << 6) | o.page;
  b[3] = o.subpage ?? 0;
  b[4] = n;
  return dataIn(b, n);
}

export function modeSense10(o: ModeSenseOptions & { longLba?: boolean }): Command {
  const n = o.allocationLength ?? 4096;
  need(intIn(n, 0, 0xffff), 'allocationLength', n, '0..65535');
  need(intIn(o.page, 0, 0x3f), 'page', o.page, '0..63');
  const b = cdb(10, SpcOpcode.MODE_SENSE_10);
  b[1] = (o.disableBlockDescriptors ? 0x08 : 0) | (o.longLba ? 0x10 : 0);
  b[2] = ((o.pageControl ?? 0) << 6) | o.page;
  b[3] = o.subpage ?? 0;
  setU16(b, 7, n);
  return dataIn(b, n);
}

export function modeSelect6(params: Uint8Array, opts: { pageFormat?: boolean; savePages?: boolean } = {}): Command {
  need(params.length <= 255, 'parameter list length', params.length, '0..255');
  const b = cdb(6, SpcOpcode.MODE_SELECT_6);
  b[1] = (opts.pageFormat ?? true ? 0x10 : 0) | (opts.savePages ? 0x01 : 0);
  b[4] = params.length;
  return dataOut(b, params);
}

export function modeSelect10(params: Uint8Array, opts: { pageFormat?: boolean; savePages?: boolean } = {}): Command {
  need(params.length <= 0xffff, 'parameter list length', params.length, '0..65535');
  const b = cdb(10, SpcOpcode.MODE_SELECT_10);
  b[1] = (opts.pageFormat ?? true ? 0x10 : 0) | (opts.savePages ? 0x01 : 0);
  setU16(b, 7, params.length);
  return dataOut(b, params);
}

export function logSense(o: { page: number; subpage?: number; pageControl?: 0 | 1 | 2 | 3; parameterPointer?: number; allocationLength?: number }): Command {
  const n = o.allocationLength ?? 0xffff;
  need(intIn(o.page, 0, 0x3f), 'page', o.page, '0..63');
  need(intIn(n, 0, 0xffff), 'allocationLength', n, '0..65535');
  const b = cdb(10, SpcOpcode.LOG_SENSE);
  b[2] = ((o.pageControl ?? 1) << 6) | o.page;
  b[3] = o.subpage ?? 0;
  setU16(b, 5, o.parameterPointer ?? 0);
  setU16(b, 7, n);
  return dataIn(b, n);
}

export function logSelect(o: { parameterCodeReset?: boolean; pageControl?: 0 | 1 | 2 | 3; page?: number; params?: Uint8Array }): Command {
  const b = cdb(10, SpcOpcode.LOG_SELECT);
  b[1] = o.parameterCodeReset ? 0x02 : 0;
  b[2] = ((o.pageControl ?? 1) << 6) | (o.page ?? 0);
  const p = o.params ?? new Uint8Array(0);
  setU16(b, 7, p.length);
  return p.length ? dataOut(b, p) : none(b);
}

export function preventAllowMediumRemoval(prevent: boolean): Command {
  const b = cdb(6, SpcOpcode.PREVENT_ALLOW_MEDIUM_REMOVAL);
  b[4] = prevent ? 0x01 : 0x00;
  return none(b);
}

export function reportSupportedOperationCodes(o: { opcode?: number; serviceAction?: number; allocationLength?: number; timeouts?: boolean } = {}): Command {
  const n = o.allocationLength ?? 8192;
  need(intIn(n, 4, 0xffffffff), 'allocationLength', n, '4..2^32-1');
  const b = cdb(12, SpcOpcode.MAINTENANCE_IN);
  b[1] = MaintenanceInServiceAction.REPORT_SUPPORTED_OPERATION_CODES;
  if (o.opcode !== undefined) {
    need(intIn(o.opcode, 0, 0xff), 'opcode', o.opcode, '0..255');
    b[2] = o.serviceAction !== undefined ? 0x02 : 0x01;
    b[3] = o.opcode;
    if (o.serviceAction !== undefined) setU16(b, 4, o.serviceAction);
  }
  if (o.timeouts) b[2] = (b[2] ?? 0) | 0x80;
  setU32(b, 6, n);
  return dataIn(b, n);
}

// ---------------------------------------------------------------- SSC

export function rewind(opts: { immediate?: boolean } = {}): Command {
  const b = cdb(6, SscOpcode.REWIND);
  if (opts.immediate) b[1] = 0x01;
  return none(b);
}

export function readBlockLimits(): Command {
  return dataIn(cdb(6, SscOpcode.READ_BLOCK_LIMITS), 6);
}

/**
 * READ(6). `fixed`: `length` counts blocks of the current fixed block size; otherwise it is
 * one variable block's byte length. `sili` suppresses the incorrect-length indication.
 */
export function read6(o: { length: number; fixed?: boolean; sili?: boolean; blockSize?: number }): Command {
  need(intIn(o.length, 0, 0xffffff), 'length', o.length, '0..16777215');
  const b = cdb(6, SscOpcode.READ_6);
  b[1] = (o.fixed ? 0x01 : 0) | (o.sili ? 0x02 : 0);
  setU24(b, 2, o.length);
  const bytes = o.fixed ? o.length * (o.blockSize ?? 0) : o.length;
  need(!o.fixed || (o.blockSize !== undefined && o.blockSize > 0), 'blockSize', o.blockSize, 'a positive size when fixed');
  return dataIn(b, bytes);
}

/** WRITE(6): `data.length` must be a multiple of `blockSize` when fixed. */
export function write6(data: Uint8Array, o: { fixed?: boolean; blockSize?: number } = {}): Command {
  const b = cdb(6, SscOpcode.WRITE_6);
  let length = data.length;
  if (o.fixed) {
    const bs = o.blockSize ?? 0;
    need(bs > 0 && data.length % bs === 0, 'data.length', data.length, `a multiple of blockSize ${bs}`);
    length = data.length / bs;
    b[1] = 0x01;
  }
  need(intIn(length, 0, 0xffffff), 'transfer length', length, '0..16777215');
  setU24(b, 2, length);
  return dataOut(b, data);
}

export function writeFilemarks6(count = 1, opts: { immediate?: boolean; setmarks?: boolean } = {}): Command {
  need(intIn(count, 0, 0xffffff), 'count', count, '0..16777215');
  const b = cdb(6, SscOpcode.WRITE_FILEMARKS_6);
  b[1] = (opts.immediate ? 0x01 : 0) | (opts.setmarks ? 0x02 : 0);
  setU24(b, 2, count);
  return none(b);
}

export function writeFilemarks16(count = 1, opts: { immediate?: boolean } = {}): Command {
  need(intIn(count, 0, 0xffffff), 'count', count, '0..16777215');
  const b = cdb(16, SscOpcode.WRITE_FILEMARKS_16);
  b[1] = opts.immediate ? 0x01 : 0;
  setU24(b, 12, count);
  return none(b);
}

/** SPACE codes (SSC-4 table 43). */
export const SpaceCode = {
  blocks: 0,
  filemarks: 1,
  sequentialFilemarks: 2,
  endOfData: 3,
} as const;
export type SpaceCode = (typeof SpaceCode)[keyof typeof SpaceCode];

/** SPACE(6): `count` is signed 24-bit (negative spaces toward BOP). */
export function space6(code: SpaceCode, count = 0): Command {
  need(intIn(count, -0x800000, 0x7fffff), 'count', count, '-8388608..8388607');
  need(intIn(code, 0, 3), 'code', code, '0..3');
  const b = cdb(6, SscOpcode.SPACE_6);
  b[1] = code;
  setU24(b, 2, count & 0xffffff);
  return none(b);
}

export function space16(code: SpaceCode, count: bigint | number = 0): Command {
  const b = cdb(16, SscOpcode.SPACE_16);
  b[1] = code;
  setU64(b, 4, BigInt(count));
  return none(b);
}

export function erase6(opts: { long?: boolean; immediate?: boolean } = {}): Command {
  const b = cdb(6, SscOpcode.ERASE_6);
  b[1] = (opts.long ? 0x01 : 0) | (opts.immediate ? 0x02 : 0);
  return none(b);
}

export const LoadAction = { unload: 0, load: 1, retension: 2, eot: 4 } as const;

export function loadUnload(o: { load: boolean; hold?: boolean; eot?: boolean; retension?: boolean; immediate?: boolean }): Command {
  const b = cdb(6, SscOpcode.LOAD_UNLOAD);
  b[1] = o.immediate ? 0x01 : 0;
  b[4] = (o.load ? 0x01 : 0) | (o.retension ? 0x02 : 0) | (o.eot ? 0x04 : 0) | (o.hold ? 0x08 : 0);
  return none(b);
}

/** FORMAT MEDIUM (SSC-4): FORMAT 0 default format, 1 partition the medium (per mode page 11h), 2 default format then partition. */
export function formatMedium(format: 0 | 1 | 2 = 0, opts: { immediate?: boolean; verify?: boolean } = {}): Command {
  const b = cdb(6, SscOpcode.FORMAT_MEDIUM);
  b[1] = (opts.verify ? 0x02 : 0) | (opts.immediate ? 0x01 : 0);
  b[2] = format;
  return none(b);
}

/** LOCATE(10) to a logical object identifier (block address), optionally in a partition. */
export function locate10(objectId: number, opts: { partition?: number; immediate?: boolean } = {}): Command {
  need(intIn(objectId, 0, 0xffffffff), 'objectId', objectId, '0..2^32-1');
  const b = cdb(10, SscOpcode.LOCATE_10);
  b[1] = (opts.partition !== undefined ? 0x02 : 0) | (opts.immediate ? 0x01 : 0);
  setU32(b, 3, objectId);
  if (opts.partition !== undefined) b[8] = opts.partition;
  return none(b);
}

export const LocateDestType = { object: 0, filemark: 1, endOfData: 3 } as const;

export function locate16(objectId: bigint | number, opts: { partition?: number; destType?: number; immediate?: boolean } = {}): Command {
  const b = cdb(16, SscOpcode.LOCATE_16);
  b[1] = ((opts.destType ?? 0) << 3) | (opts.partition !== undefined ? 0x02 : 0) | (opts.immediate ? 0x01 : 0);
  if (opts.partition !== undefined) b[3] = opts.partition;
  setU64(b, 4, BigInt(objectId));
  return none(b);
}

export const ReadPositionForm = { short: 0x00, long: 0x06, extended: 0x08 } as const;

export function readPosition(form: keyof typeof ReadPositionForm = 'short'): Command {
  const b = cdb(10, SscOpcode.READ_POSITION);
  b[1] = ReadPositionForm[form];
  const n = form === 'short' ? 20 : form === 'long' ? 32 : 32;
  if (form === 'extended') setU16(b, 7, n);
  return dataIn(b, n);
}

export function reportDensitySupport(opts: { media?: boolean; mediumType?: boolean; allocationLength?: number } = {}): Command {
  const n = opts.allocationLength ?? 4096;
  need(intIn(n, 4, 0xffff), 'allocationLength', n, '4..65535');
  const b = cdb(10, SscOpcode.REPORT_DENSITY_SUPPORT);
  b[1] = (opts.media ? 0x01 : 0) | (opts.mediumType ? 0x02 : 0);
  setU16(b, 7, n);
  return dataIn(b, n);
}

export const AttributeServiceAction = { values: 0x00, list: 0x01, volumeList: 0x02, partitionList: 0x03, supported: 0x05 } as const;

export function readAttribute(o: { serviceAction?: number; firstAttribute?: number; partition?: number; allocationLength?: number } = {}): Command {
  const n = o.allocationLength ?? 0x10000;
  need(intIn(n, 4, 0xffffffff), 'allocationLength', n, '4..2^32-1');
  const b = cdb(16, SscOpcode.READ_ATTRIBUTE);
  b[1] = o.serviceAction ?? AttributeServiceAction.values;
  b[7] = o.partition ?? 0;
  setU16(b, 8, o.firstAttribute ?? 0);
  setU32(b, 10, n);
  return dataIn(b, n);
}

/** WRITE ATTRIBUTE; `params` is the parameter list (4-byte length header + attributes). */
export function writeAttribute(params: Uint8Array, o: { partition?: number; writeThrough?: boolean } = {}): Command {
  const b = cdb(16, SscOpcode.WRITE_ATTRIBUTE);
  b[1] = o.writeThrough ? 0x01 : 0;
  b[7] = o.partition ?? 0;
  setU32(b, 10, params.length);
  return dataOut(b, params);
}

// ---------------------------------------------------------------- SMC

/** Element type codes (SMC-3 table 12). */
export const ElementType = {
  all: 0,
  mediumTransport: 1,
  storage: 2,
  importExport: 3,
  dataTransfer: 4,
} as const;
export type ElementType = (typeof ElementType)[keyof typeof ElementType];

export interface ReadElementStatusOptions {
  elementType?: ElementType;
  startingAddress?: number;
  count?: number;
  volTag?: boolean;
  /** Device identifiers of data transfer elements (DVCID). */
  deviceId?: boolean;
  /** CURDATA: report from the current data without moving the robot. */
  currentData?: boolean;
  allocationLength?: number;
}

export function readElementStatus(o: ReadElementStatusOptions = {}): Command {
  const n = o.allocationLength ?? 0xffff;
  need(intIn(n, 0, 0xffffff), 'allocationLength', n, '0..16777215');
  const start = o.startingAddress ?? 0;
  const count = o.count ?? 0xffff;
  need(intIn(start, 0, 0xffff), 'startingAddress', start, '0..65535');
  need(intIn(count, 0, 0xffff), 'count', count, '0..65535');
  const b = cdb(12, SmcOpcode.READ_ELEMENT_STATUS);
  b[1] = (o.volTag ? 0x10 : 0) | ((o.elementType ?? 0) & 0x0f);
  setU16(b, 2, start);
  setU16(b, 4, count);
  b[6] = (o.currentData ? 0x02 : 0) | (o.deviceId ? 0x01 : 0);
  setU24(b, 7, n);
  return dataIn(b, n);
}

export function moveMedium(o: { transport?: number; source: number; destination: number; invert?: boolean }): Command {
  for (const [k, v] of [['transport', o.transport ?? 0], ['source', o.source], ['destination', o.destination]] as const) {
    need(intIn(v, 0, 0xffff), k, v, '0..65535');
  }
  const b = cdb(12, SmcOpcode.MOVE_MEDIUM);
  setU16(b, 2, o.transport ?? 0);
  setU16(b, 4, o.source);
  setU16(b, 6, o.destination);
  if (o.invert) b[10] = 0x01;
  return none(b);
}

export function exchangeMedium(o: { transport?: number; source: number; firstDestination: number; secondDestination: number }): Command {
  for (const [k, v] of [
    ['transport', o.transport ?? 0],
    ['source', o.source],
    ['firstDestination', o.firstDestination],
    ['secondDestination', o.secondDestination],
  ] as const) {
    need(intIn(v, 0, 0xffff), k, v, '0..65535');
  }
  const b = cdb(12, SmcOpcode.EXCHANGE_MEDIUM);
  setU16(b, 2, o.transport ?? 0);
  setU16(b, 4, o.source);
  setU16(b, 6, o.firstDestination);
  setU16(b, 8, o.secondDestination);
  return none(b);
}

export function initializeElementStatus(): Command {
  return none(cdb(6, SmcOpcode.INITIALIZE_ELEMENT_STATUS));
}

export function initializeElementStatusWithRange(o: { start: number; count: number; fast?: boolean }): Command {
  need(intIn(o.start, 0, 0xffff), 'start', o.start, '0..65535');
  need(intIn(o.count, 0, 0xffff), 'count', o.count, '0..65535');
  const b = cdb(10, SmcOpcode.INITIALIZE_ELEMENT_STATUS_WITH_RANGE);
  b[1] = 0x01 | (o.fast ? 0x02 : 0);
  setU16(b, 2, o.start);
  setU16(b, 6, o.count);
  return none(b);
}

export function positionToElement(o: { transport?: number; destination: number }): Command {
  need(intIn(o.destination, 0, 0xffff), 'destination', o.destination, '0..65535');
  const b = cdb(10, SmcOpcode.POSITION_TO_ELEMENT);
  setU16(b, 2, o.transport ?? 0);
  setU16(b, 4, o.destination);
  return none(b);
}

/** SEND VOLUME TAG send action codes (SMC-3 table 30). */
export const SendVolumeTagAction = {
  translateAll: 0x00,
  translatePrimary: 0x01,
  translateAlternate: 0x02,
  translateAllIgnoreSequence: 0x05,
  translatePrimaryIgnoreSequence: 0x06,
  translateAlternateIgnoreSequence: 0x07,
  assertPrimary: 0x08,
  assertAlternate: 0x09,
  replacePrimary: 0x0a,
  replaceAlternate: 0x0b,
  undefinePrimary: 0x0c,
  undefineAlternate: 0x0d,
} as const;
export type SendVolumeTagAction = (typeof SendVolumeTagAction)[keyof typeof SendVolumeTagAction];

/**
 * The 40-byte volume identification template of SEND VOLUME TAG: `template` blank padded
 * to 32 bytes, then the minimum (bytes 34..35) and maximum (38..39) volume sequence
 * numbers. `*` and `?` are wildcards in a translate; for assert and replace the template is
 * the tag itself and `minSequence` its sequence number.
 */
export function volumeTagTemplate(o: { template: string; minSequence?: number; maxSequence?: number }): Uint8Array {
  need(/^[!-~][ -~]{0,31}$/.test(o.template), 'template', JSON.stringify(o.template), '1..32 printable ASCII characters, not starting with a blank');
  const min = o.minSequence ?? 0;
  const max = o.maxSequence ?? 0xffff;
  need(intIn(min, 0, 0xffff), 'minSequence', min, '0..65535');
  need(intIn(max, 0, 0xffff), 'maxSequence', max, '0..65535');
  const b = new Uint8Array(40);
  b.fill(0x20, 0, 32);
  for (let i = 0; i < o.template.length; i++) b[i] = o.template.charCodeAt(i);
  setU16(b, 34, min);
  setU16(b, 38, max);
  return b;
}

export interface SendVolumeTagOptions {
  /** Translate: the element the search starts at; the others: the element whose cartridge is tagged. */
  elementAddress: number;
  action: SendVolumeTagAction;
  /** Template or tag; required except for the undefine actions (which send no parameter list). */
  template?: string;
  /** Translate: the lowest sequence number that matches (default 0); assert/replace: the tag's sequence number. */
  minSequence?: number;
  /** Translate: the highest sequence number that matches (default 65535). */
  maxSequence?: number;
}

export function sendVolumeTag(o: SendVolumeTagOptions): Command {
  need(intIn(o.elementAddress, 0, 0xffff), 'elementAddress', o.elementAddress, '0..65535');
  need((Object.values(SendVolumeTagAction) as number[]).includes(o.action), 'action', o.action, 'a send action code of SMC-3 (0..2, 5..0x0D)');
  const undefine = o.action === SendVolumeTagAction.undefinePrimary || o.action === SendVolumeTagAction.undefineAlternate;
  const assertish = o.action >= SendVolumeTagAction.assertPrimary && !undefine;
  need(undefine || o.template !== undefined, 'template', o.template, 'given for translate, assert and replace');
  if (assertish && o.template !== undefined) need(!/[*? ]/.test(o.template), 'template', JSON.stringify(o.template), 'a volume tag without blanks or the wildcards * and ?');
  const params = undefine ? new Uint8Array(0) : volumeTagTemplate({ template: o.template ?? '', minSequence: o.minSequence ?? 0, maxSequence: o.maxSequence ?? (assertish ? 0 : 0xffff) });
  const b = cdb(12, SmcOpcode.SEND_VOLUME_TAG);
  setU16(b, 2, o.elementAddress);
  b[5] = o.action;
  setU16(b, 8, params.length);
  return params.length > 0 ? dataOut(b, params) : none(b);
}

export interface RequestVolumeElementAddressOptions {
  elementType?: ElementType;
  startingAddress?: number;
  count?: number;
  /** Report the volume tags of the elements found (VOLTAG). */
  volTag?: boolean;
  allocationLength?: number;
}

export function requestVolumeElementAddress(o: RequestVolumeElementAddressOptions = {}): Command {
  const n = o.allocationLength ?? 0xffff;
  const start = o.startingAddress ?? 0;
  const count = o.count ?? 0xffff;
  need(intIn(n, 0, 0xffffff), 'allocationLength', n, '0..16777215');
  need(intIn(start, 0, 0xffff), 'startingAddress', start, '0..65535');
  need(intIn(count, 0, 0xffff), 'count', count, '0..65535');
  const t = o.elementType ?? 0;
  need(intIn(t, 0, 4), 'elementType', t, '0..4');
  const b = cdb(12, SmcOpcode.REQUEST_VOLUME_ELEMENT_ADDRESS);
  b[1] = (o.volTag ? 0x10 : 0) | t;
  setU16(b, 2, start);
  setU16(b, 4, count);
  setU24(b, 7, n);
  return dataIn(b, n);
}
