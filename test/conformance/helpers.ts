/** What the conformance suites share: sense assertions, and loading a cartridge by barcode. */
import { expect } from 'vitest';
import { MediaChanger } from '../../src/devices/media-changer.js';
import { SenseError } from '../../src/devices/errors.js';
import { TapeDrive } from '../../src/devices/tape-drive.js';
import { ElementTypeCode } from '../../src/scsi/parse-element-status.js';
import { describeSense, type SenseCode } from '../../src/scsi/sense.js';
import type { OpenedLab } from './bindings.js';

/** Awaits `p`, which must fail with exactly `code`; returns the error for further checks. */
export async function expectSense(p: Promise<unknown>, code: SenseCode): Promise<SenseError> {
  let error: unknown;
  try {
    await p;
  } catch (e) {
    error = e;
  }
  if (!(error instanceof SenseError)) {
    expect.fail(`expected ${describeSense(code)}, got ${error === undefined ? 'success' : String(error)}`);
  }
  expect(`${error.keyName} / ${error.ascName}`).toBe(describeSense(code));
  expect(error.is(code)).toBe(true);
  return error;
}

/** A lab seen through the device clients. */
export interface Clients {
  readonly changer: MediaChanger;
  readonly drives: TapeDrive[];
}

export function clients(lab: OpenedLab): Clients {
  // Short polls: an emulator is ready at once, hardware within a few seconds.
  const opts = { sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 100))) };
  return { changer: new MediaChanger(lab.changer, opts), drives: lab.drives.map((p) => new TapeDrive(p, opts)) };
}

/** Data transfer element addresses in drive order. */
export async function driveAddresses(changer: MediaChanger): Promise<number[]> {
  const inv = await changer.inventory({ volumeTags: false });
  return inv.dataTransfer.map((e) => e.address);
}

/** Moves the cartridge `barcode` into drive `index` (0-based) and waits until the drive is ready. */
export async function mount(c: Clients, barcode: string, index = 0): Promise<number> {
  const inv = await c.changer.inventory();
  const at = inv.all.find((e) => e.full && e.primaryVolumeTag?.identifier === barcode);
  if (!at) throw new Error(`cartridge ${barcode} is not in the library`);
  const dte = inv.dataTransfer[index];
  if (!dte) throw new Error(`the library has no drive ${index + 1}`);
  if (at.address !== dte.address) await c.changer.move(at.address, dte.address);
  const drive = c.drives[index];
  if (!drive) throw new Error(`no port for drive ${index + 1}`);
  await drive.waitReady({ timeoutMs: 120_000, intervalMs: 100 });
  return dte.address;
}

/** Unloads drive `index` and puts its cartridge back into the slot it came from (or the first empty one). */
export async function dismount(c: Clients, index = 0): Promise<number> {
  const inv = await c.changer.inventory();
  const dte = inv.dataTransfer[index];
  if (!dte?.full) throw new Error(`drive ${index + 1} is empty`);
  await c.drives[index]?.unload().catch(() => undefined);
  const home = dte.sourceAddress !== undefined && inv.all.some((e) => e.address === dte.sourceAddress && !e.full) ? dte.sourceAddress : inv.storage.find((e) => !e.full)?.address;
  if (home === undefined) throw new Error('no empty slot to put the cartridge back');
  await c.changer.move(dte.address, home);
  return home;
}

/** Puts every cartridge left in a drive back (hardware labs are shared between tests). */
export async function tidy(c: Clients): Promise<void> {
  await c.changer.allowRemoval().catch(() => undefined);
  for (const d of c.drives) await d.allowRemoval().catch(() => undefined);
  const inv = await c.changer.inventory({ volumeTags: false });
  for (const [i, e] of inv.dataTransfer.entries()) if (e.full) await dismount(c, i);
}

/** Deterministic test data. */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export const ElementType = ElementTypeCode;
