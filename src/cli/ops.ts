/**
 * Library and drive operations a person does at a lab bench, shared by the CLI commands
 * and the demo: naming elements, loading and unloading cartridges, writing and reading
 * files on tape.
 */
import { readdirSync } from 'node:fs';
import type { Inventory } from '../devices/media-changer.js';
import type { ElementStatus } from '../scsi/parse-element-status.js';
import type { TapeDrive } from '../devices/tape-drive.js';
import type { Lab } from './lab.js';

/** A user-facing error: the CLI prints its message alone and exits 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'EUSAGE';
}

/**
 * Throws a {@link UsageError} when `dir` exists and holds anything (or is not a directory):
 * `option` names it, `consequence` says what would be lost, `otherwise` what else the person
 * can do (e.g. "add --overwrite"). A directory that does not exist yet is fine.
 */
export function requireEmptyDirectory(dir: string, option: string, consequence: string, otherwise?: string): void {
  let held: string[];
  try {
    held = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new UsageError(`${option} ${dir} is a file, not a directory`);
    throw new UsageError(`${option} ${dir}: ${(e as Error).message}`);
  }
  if (held.length === 0) return;
  const shown = held.sort().slice(0, 3).join(', ') + (held.length > 3 ? `, ... (${held.length} entries)` : '');
  throw new UsageError(`${option} ${dir} is not empty (${shown}): ${consequence}. Name a new or empty directory${otherwise === undefined ? '' : `, or ${otherwise}`}`);
}

export function barcodeOf(e: ElementStatus): string | undefined {
  return e.primaryVolumeTag?.identifier || undefined;
}

/**
 * Resolves an element named the way a person names it: `slot 3` / `s3`, `drive 1` / `d1`,
 * `ie 1`, an address (`0x1002`, `4098`), or a barcode (the element holding it).
 */
export function resolveElement(spec: string, inv: Inventory): ElementStatus {
  const s = spec.trim();
  const m = /^(slot|s|drive|d|ie|io)\s*[ :#]?\s*(\d+)$/i.exec(s);
  if (m) {
    const kind = m[1]!.toLowerCase();
    const n = Number(m[2]);
    const list = kind.startsWith('s') ? inv.storage : kind.startsWith('d') ? inv.dataTransfer : inv.importExport;
    const name = kind.startsWith('s') ? 'storage slot' : kind.startsWith('d') ? 'drive' : 'import/export slot';
    const e = list[n - 1];
    if (!e) throw new UsageError(`there is no ${name} ${n} (this library has ${list.length}, numbered from 1)`);
    return e;
  }
  if (/^(0x[0-9a-f]{1,4}|\d{1,5})$/i.test(s)) {
    const address = Number(s);
    const e = inv.all.find((x) => x.address === address);
    if (!e) throw new UsageError(`no element has address ${s} (addresses: ${summariseAddresses(inv)})`);
    return e;
  }
  const e = inv.all.find((x) => barcodeOf(x) === s);
  if (!e) throw new UsageError(`"${spec}" is neither an element (slot N, drive N, ie N, an address) nor the barcode of a cartridge in the library`);
  return e;
}

function summariseAddresses(inv: Inventory): string {
  const range = (l: readonly ElementStatus[], name: string): string => (l.length ? `${name} 0x${l[0]!.address.toString(16)}..0x${l[l.length - 1]!.address.toString(16)}` : '');
  return [range(inv.storage, 'slots'), range(inv.dataTransfer, 'drives'), range(inv.importExport, 'i/e')].filter(Boolean).join(', ');
}

export function driveAt(lab: Lab, n: number): TapeDrive {
  const d = lab.drives[n - 1];
  if (!d) throw new UsageError(`there is no drive ${n} (this lab has ${lab.drives.length}, numbered from 1)`);
  return d;
}

export function elementLabel(e: ElementStatus, inv: Inventory): string {
  const idx = (l: readonly ElementStatus[]): number => l.findIndex((x) => x.address === e.address) + 1;
  switch (e.type) {
    case 2:
      return `slot ${idx(inv.storage)}`;
    case 3:
      return `ie ${idx(inv.importExport)}`;
    case 4:
      return `drive ${idx(inv.dataTransfer)}`;
    default:
      return `transport`;
  }
}

/** Moves a cartridge (by barcode or source element) into drive `n` and waits until the drive is ready. */
export async function loadCartridge(lab: Lab, what: string, n: number): Promise<{ barcode: string; from: string }> {
  const inv = await lab.changer.inventory();
  const src = resolveElement(what, inv);
  if (!src.full) throw new UsageError(`${elementLabel(src, inv)} is empty`);
  const dst = inv.dataTransfer[n - 1];
  if (!dst) throw new UsageError(`there is no drive ${n}`);
  if (dst.full) throw new UsageError(`drive ${n} already holds ${barcodeOf(dst) ?? 'a cartridge'}; unload it first`);
  await lab.changer.move(src.address, dst.address);
  const drive = driveAt(lab, n);
  await drive.waitReady({ timeoutMs: 600_000 });
  return { barcode: barcodeOf(src) ?? '(no label)', from: elementLabel(src, inv) };
}

/**
 * Unloads drive `n` and puts the cartridge back where it came from (its source element
 * when the changer knows it and it is empty), else into `to`, else the first empty slot.
 */
export async function unloadCartridge(lab: Lab, n: number, to?: string): Promise<{ barcode: string; to: string }> {
  const drive = driveAt(lab, n);
  const inv = await lab.changer.inventory();
  const here = inv.dataTransfer[n - 1];
  if (!here?.full) throw new UsageError(`drive ${n} is empty`);
  await drive.unload();
  let dst: ElementStatus | undefined;
  if (to) dst = resolveElement(to, inv);
  else {
    const source = here.sourceAddress === undefined ? undefined : inv.all.find((e) => e.address === here.sourceAddress && !e.full && e.type !== 4);
    dst = source ?? inv.storage.find((e) => !e.full);
  }
  if (!dst) throw new UsageError('no empty slot to put the cartridge in');
  await lab.changer.move(here.address, dst.address);
  return { barcode: barcodeOf(here) ?? '(no label)', to: elementLabel(dst, inv) };
}
