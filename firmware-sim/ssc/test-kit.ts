/** Shared set-up for the drive tests: a drive, a cartridge in a temp dir, a port, helpers. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { decodeSense, describeSense, isSense, type SenseCode, type SenseData } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import type { ScsiResponse } from '../../src/transport/scsi-port.js';
import type { CartridgeRef } from '../engine/library-link.js';
import { MemoryPort } from '../front/memory-port.js';
import { drivePersonality, type DrivePersonality } from '../personalities/drives.js';
import { createTapeDrive, type TapeDriveOptions, type TapeDriveUnit } from './index.js';

export interface Rig {
  readonly dir: string;
  readonly lu: TapeDriveUnit;
  readonly port: MemoryPort;
  cartridge(over?: Partial<CartridgeRef>): CartridgeRef;
  /** Inserts a cartridge and clears the unit attentions it causes. */
  load(over?: Partial<CartridgeRef>): Promise<CartridgeRef>;
  cleanup(): void;
}

let seq = 0;

export async function rig(personality: string | DrivePersonality = 'ibm-lto7-hh', options: Partial<Omit<TapeDriveOptions, 'personality'>> = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'ptpvts-drive-'));
  const p = typeof personality === 'string' ? drivePersonality(personality) : personality;
  const lu = createTapeDrive({ personality: p, serial: `SN${++seq}`, ...options });
  const port = new MemoryPort(lu);
  await drain(port);
  const cartridge = (over: Partial<CartridgeRef> = {}): CartridgeRef => ({
    barcode: 'A00001L7',
    mediaType: 'LTO7',
    path: join(dir, `${over.barcode ?? 'A00001L7'}-${over.mediaType ?? 'LTO7'}.cart`),
    writeProtected: false,
    capacityBytes: 1 << 20,
    ...over,
  });
  return {
    dir,
    lu,
    port,
    cartridge,
    async load(over = {}) {
      const c = cartridge(over);
      await lu.insert(c);
      await drain(port);
      return c;
    },
    cleanup() {
      lu.close();
      expect(lu.unit.bugs).toEqual([]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Takes every pending unit attention. */
export async function drain(port: MemoryPort): Promise<void> {
  for (let i = 0; i < 8; i++) {
    const r = await port.execute(Cdb.testUnitReady());
    if (r.status !== ScsiStatus.CHECK_CONDITION || decodeSense(r.sense).key !== 0x06) return;
  }
}

export function senseOf(r: ScsiResponse): SenseData {
  expect(r.status, 'status').toBe(ScsiStatus.CHECK_CONDITION);
  return decodeSense(r.sense);
}

export function expectSense(r: ScsiResponse, code: SenseCode, extra: Partial<SenseData> = {}): SenseData {
  const s = senseOf(r);
  expect(describeSense(s)).toBe(describeSense(code));
  expect(isSense(s, code)).toBe(true);
  for (const [k, v] of Object.entries(extra)) expect((s as unknown as Record<string, unknown>)[k], k).toEqual(v);
  return s;
}

export function expectGood(r: ScsiResponse): void {
  if (r.status !== ScsiStatus.GOOD) expect(describeSense(decodeSense(r.sense))).toBe('GOOD');
  expect(r.status).toBe(ScsiStatus.GOOD);
}

export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

export const raw = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);

export async function cdb(port: MemoryPort, bytes: Uint8Array, dataInLength = 0, dataOut?: Uint8Array): Promise<ScsiResponse> {
  if (dataOut) return port.execute({ cdb: bytes, direction: 'out', dataOut });
  return port.execute(dataInLength ? { cdb: bytes, direction: 'in', dataInLength } : { cdb: bytes, direction: 'none' });
}
