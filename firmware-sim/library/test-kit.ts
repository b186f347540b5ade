/**
 * Helpers for tests of libraries: build one from a small configuration with fake drives,
 * talk to its changer through the in-process port, and decode READ ELEMENT STATUS data
 * independently of the encoder.
 */
import { getAscii, getU16, getU24 } from '../../src/scsi/bytes.js';
import * as Cdb from '../../src/scsi/cdb.js';
import { decodeSense, type SenseCode, isSense } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import type { ScsiResponse } from '../../src/transport/scsi-port.js';
import { MemoryPort } from '../front/memory-port.js';
import { parseLibraryConfig, type LibraryConfigInput } from './config.js';
import type { FakeDriveBay } from './fake-drive.js';
import { createFakeDrive } from './fake-drive.js';
import { createLibrary, type CreateLibraryOptions, type EmulatedLibrary } from './library.js';

export interface TestLibrary {
  readonly lib: EmulatedLibrary;
  /** A port to the changer whose power-on unit attention has been cleared. */
  readonly port: MemoryPort;
  readonly bays: FakeDriveBay[];
}

export const smallLibrary: LibraryConfigInput = {
  name: 'tlib',
  personality: 'PTPVTS-LIB',
  timeScale: 0,
  storageSlots: 6,
  importExportSlots: 2,
  drives: { count: 2, personality: 'LTO8', serials: ['SN0001', 'SN0002'] },
  cartridges: [
    { barcode: 'A00001L8', location: 'slot 1' },
    { barcode: 'A00002L8', location: 'slot 2' },
    { barcode: 'W00003LY', location: 'slot 3' },
    { barcode: 'A00004L8', location: 'drive 1' },
  ],
};

export async function makeLibrary(input: Partial<LibraryConfigInput> = {}, opts: CreateLibraryOptions = {}): Promise<TestLibrary> {
  const config = parseLibraryConfig({ ...smallLibrary, ...input }, { baseDir: '/tmp/ptpvts-test' });
  const bays: FakeDriveBay[] = [];
  const lib = await createLibrary(config, {
    driveFactory: (spec) => {
      const d = createFakeDrive(spec.name, spec.serial);
      bays.push(d.bay);
      return d;
    },
    ...opts,
  });
  const port = new MemoryPort(lib.changer);
  await port.execute(Cdb.testUnitReady());
  return { lib, port, bays };
}

/** Asserts-free sense check: true when `r` is CHECK CONDITION with `code`. */
export function hasSense(r: ScsiResponse, code: SenseCode): boolean {
  return r.status === ScsiStatus.CHECK_CONDITION && isSense(decodeSense(r.sense), code);
}

export function senseOf(r: ScsiResponse): ReturnType<typeof decodeSense> | undefined {
  return r.sense.length > 0 ? decodeSense(r.sense) : undefined;
}

export interface DecodedElement {
  readonly type: number;
  readonly address: number;
  readonly full: boolean;
  readonly impExp: boolean;
  readonly except: boolean;
  readonly access: boolean;
  readonly exEnab: boolean;
  readonly inEnab: boolean;
  readonly asc: number;
  readonly ascq: number;
  readonly luValid: boolean;
  readonly lun: number;
  readonly svalid: boolean;
  readonly mediumType: number;
  readonly source: number;
  readonly barcode?: string;
  readonly identifier?: string;
  readonly codeSet: number;
  readonly identifierType: number;
}

export interface DecodedStatus {
  readonly firstAddress: number;
  readonly count: number;
  readonly byteCount: number;
  readonly pages: Array<{ type: number; pvoltag: boolean; descriptorLength: number; byteCount: number }>;
  readonly elements: DecodedElement[];
}

/** Decodes READ ELEMENT STATUS data; stops at the first incomplete descriptor. */
export function decodeElementStatus(b: Uint8Array): DecodedStatus {
  const pages: DecodedStatus['pages'] = [];
  const elements: DecodedElement[] = [];
  let off = 8;
  while (off + 8 <= b.length) {
    const type = (b[off] ?? 0) & 0x0f;
    const pvoltag = ((b[off + 1] ?? 0) & 0x80) !== 0;
    const descriptorLength = getU16(b, off + 2);
    const byteCount = getU24(b, off + 5);
    pages.push({ type, pvoltag, descriptorLength, byteCount });
    off += 8;
    const end = off + byteCount;
    for (; off + descriptorLength <= Math.min(end, b.length); off += descriptorLength) {
      const d = b.subarray(off, off + descriptorLength);
      const f = d[2] ?? 0;
      let idOff = 12;
      let barcode: string | undefined;
      if (pvoltag) {
        barcode = getAscii(d, 12, 32);
        idOff += 36;
      }
      const idLen = d[idOff + 3] ?? 0;
      elements.push({
        type,
        address: getU16(d, 0),
        full: (f & 0x01) !== 0,
        impExp: (f & 0x02) !== 0,
        except: (f & 0x04) !== 0,
        access: (f & 0x08) !== 0,
        exEnab: (f & 0x10) !== 0,
        inEnab: (f & 0x20) !== 0,
        asc: d[4] ?? 0,
        ascq: d[5] ?? 0,
        luValid: ((d[6] ?? 0) & 0x10) !== 0,
        lun: (d[6] ?? 0) & 0x07,
        svalid: ((d[9] ?? 0) & 0x80) !== 0,
        mediumType: (d[9] ?? 0) & 0x07,
        source: getU16(d, 10),
        ...(barcode !== undefined ? { barcode } : {}),
        codeSet: (d[idOff] ?? 0) & 0x0f,
        identifierType: (d[idOff + 1] ?? 0) & 0x0f,
        ...(idLen > 0 ? { identifier: getAscii(d, idOff + 4, idLen) } : {}),
      });
    }
    if (off < end) break;
  }
  return { firstAddress: getU16(b, 0), count: getU16(b, 2), byteCount: getU24(b, 5), pages, elements };
}

/** READ ELEMENT STATUS with volume tags, decoded; throws when the command fails. */
export async function elementStatus(port: MemoryPort, o: Cdb.ReadElementStatusOptions = {}): Promise<DecodedStatus> {
  const r = await port.execute(Cdb.readElementStatus({ volTag: true, ...o }));
  if (r.status !== ScsiStatus.GOOD) throw new Error(`READ ELEMENT STATUS failed: ${JSON.stringify(senseOf(r))}`);
  return decodeElementStatus(r.data);
}

/** Address -> barcode of every full element, from READ ELEMENT STATUS. */
export async function inventoryOverScsi(port: MemoryPort): Promise<Map<number, string>> {
  const s = await elementStatus(port);
  return new Map(s.elements.filter((e) => e.full).map((e) => [e.address, e.barcode ?? '']));
}
