/**
 * The read commands' answers as data: each command gathers one view, then prints it either
 * in sentences or, with `--json`, as one JSON document on stdout whose shape is documented
 * in docs/json.md and versioned by its `format` field (`ptpvts.<command>/<version>`): a field
 * is only ever added within a version; a rename, removal or change of meaning is a new version.
 */
import type { CartridgeReport } from '../../firmware-sim/media/index.js';
import type { Inventory } from '../devices/media-changer.js';
import type { TapeDrive } from '../devices/tape-drive.js';
import type { ScenarioResult } from '../scenario/runner.js';
import type { ElementStatus } from '../scsi/parse-element-status.js';
import { barcodeOf, elementLabel } from './ops.js';
import { hex } from './output.js';
import type { Out } from './output.js';

/** Prints `view` as the command's JSON document (two-space indented, one trailing newline). */
export function printJson(out: Out, view: { readonly format: string }): void {
  out.line(JSON.stringify(view, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
}

// ------------------------------------------------------------------ inventory

export interface InventoryElementView {
  /** As a person names it: `drive 1`, `ie 1`, `slot 12`, `transport`. */
  readonly element: string;
  readonly kind: 'drive' | 'import-export' | 'slot' | 'transport';
  readonly address: number;
  readonly full: boolean;
  /** The cartridge's barcode; null when empty or unlabelled. */
  readonly barcode: string | null;
  /** Where the cartridge came from (the element address), when the library says. */
  readonly sourceAddress: number | null;
  /** Set when the element is in an abnormal state. */
  readonly exception: { readonly asc: number; readonly ascq: number } | null;
}

/** `ptpvts inventory --json` (format `ptpvts.inventory/1`). */
export interface InventoryView {
  readonly format: 'ptpvts.inventory/1';
  readonly library: string;
  readonly slots: number;
  readonly drives: number;
  readonly importExport: number;
  /** Drives, then import/export slots, then storage slots, each in address order. */
  readonly elements: readonly InventoryElementView[];
}

const KIND: Record<number, InventoryElementView['kind']> = { 1: 'transport', 2: 'slot', 3: 'import-export', 4: 'drive' };

export function inventoryView(library: string, inv: Inventory): InventoryView {
  const el = (e: ElementStatus): InventoryElementView => ({
    element: elementLabel(e, inv),
    kind: KIND[e.type] ?? 'transport',
    address: e.address,
    full: e.full,
    barcode: e.full ? (barcodeOf(e) ?? null) : null,
    sourceAddress: e.full && e.sourceAddress !== undefined ? e.sourceAddress : null,
    exception: e.except ? { asc: e.asc, ascq: e.ascq } : null,
  });
  return {
    format: 'ptpvts.inventory/1',
    library,
    slots: inv.storage.length,
    drives: inv.dataTransfer.length,
    importExport: inv.importExport.length,
    elements: [...inv.dataTransfer, ...inv.importExport, ...inv.storage].map(el),
  };
}

export function printInventory(out: Out, v: InventoryView): void {
  out.line(`${v.library}: ${v.slots} slots, ${v.drives} drives, ${v.importExport} import/export slots`);
  out.line('element      address  contents');
  for (const e of v.elements) {
    const what = e.full ? `${e.barcode ?? '(no label)'}${e.sourceAddress !== null ? `  (from ${hex(e.sourceAddress)})` : ''}` : '-';
    out.line(`${e.element.padEnd(12)} ${hex(e.address)}   ${what}${e.exception ? `  EXCEPTION asc=${hex(e.exception.asc, 2)} ascq=${hex(e.exception.ascq, 2)}` : ''}`);
  }
}

// ------------------------------------------------------------------ tape status

/** `ptpvts tape status --json` (format `ptpvts.tape-status/1`). */
export interface TapeStatusView {
  readonly format: 'ptpvts.tape-status/1';
  /** Drive number, from 1. */
  readonly drive: number;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  readonly serial: string;
  readonly ready: boolean;
  /** Why the drive is not ready (its sense, in words); null when ready. */
  readonly notReady: string | null;
  /** The rest is null when the drive is not ready. */
  readonly cartridge: { readonly barcode: string | null; readonly writeProtected: boolean; readonly densityCode: number; readonly blockSize: number } | null;
  readonly position: { readonly block: number; readonly file: number | null; readonly bop: boolean; readonly eop: boolean; readonly pastEarlyWarning: boolean } | null;
  readonly capacityMiB: { readonly remaining: number; readonly max: number } | null;
  readonly tapeAlerts: readonly { readonly flag: number; readonly name: string }[];
}

export async function tapeStatusView(d: TapeDrive, drive: number): Promise<TapeStatusView> {
  const inq = await d.inquiry();
  const base = { format: 'ptpvts.tape-status/1' as const, drive, vendor: inq.vendor, product: inq.product, revision: inq.revision, serial: await d.unitSerialNumber() };
  try {
    await d.testUnitReady();
  } catch (e) {
    return { ...base, ready: false, notReady: e instanceof Error ? e.message : String(e), cartridge: null, position: null, capacityMiB: null, tapeAlerts: [] };
  }
  const pos = await d.position({ form: 'long' });
  const mode = await d.blockMode();
  const attrs = await d.readAttributes().catch(() => []);
  const attr = (id: number): string | undefined => {
    const a = attrs.find((x) => x.id === id);
    return a === undefined ? undefined : typeof a.decoded === 'bigint' ? a.decoded.toString() : typeof a.decoded === 'string' ? a.decoded : undefined;
  };
  const remaining = attr(0x0000);
  const max = attr(0x0001);
  const alerts = await d.tapeAlerts().catch(() => []);
  return {
    ...base,
    ready: true,
    notReady: null,
    cartridge: { barcode: attr(0x0806)?.trim() || null, writeProtected: mode.writeProtected, densityCode: mode.densityCode, blockSize: mode.blockSize },
    position: { block: Number(pos.block), file: pos.fileNumber === undefined ? null : Number(pos.fileNumber), bop: pos.bop, eop: pos.eop, pastEarlyWarning: pos.bpew },
    capacityMiB: remaining && max ? { remaining: Number(remaining), max: Number(max) } : null,
    tapeAlerts: alerts.map((a) => ({ flag: a.flag, name: a.name })),
  };
}

export function printTapeStatus(out: Out, v: TapeStatusView): void {
  out.line(`Drive ${v.drive}: ${v.vendor} ${v.product} rev ${v.revision}, serial ${v.serial}`);
  if (!v.ready || v.cartridge === null || v.position === null) {
    out.line(`Not ready: ${v.notReady ?? 'no cartridge'}`);
    return;
  }
  const c = v.cartridge;
  const p = v.position;
  out.line(`Cartridge ${c.barcode ?? '(no barcode in cartridge memory)'}, ${c.writeProtected ? 'write-protected' : 'writable'}, density ${hex(c.densityCode, 2)}, ${c.blockSize === 0 ? 'variable blocks' : `fixed ${c.blockSize}-byte blocks`}`);
  out.line(`Position: block ${p.block}, file ${p.file ?? '?'}${p.bop ? ', at beginning of partition' : ''}${p.eop ? ', at end of partition' : ''}${p.pastEarlyWarning ? ', past early warning' : ''}`);
  if (v.capacityMiB) out.line(`Capacity: ${v.capacityMiB.remaining} MiB remaining of ${v.capacityMiB.max} MiB`);
  out.line(v.tapeAlerts.length ? `TapeAlert: ${v.tapeAlerts.map((a) => `${a.flag} ${a.name}`).join('; ')}` : 'TapeAlert: no flags set');
}

// ------------------------------------------------------------------ media check

/** `ptpvts media check --json` (format `ptpvts.media-check/1`): the check's report, with `cartridge: false` for a file that is not one. */
export function mediaCheckView(r: CartridgeReport): { readonly format: 'ptpvts.media-check/1'; readonly cartridge: boolean } & Record<string, unknown> {
  return {
    format: 'ptpvts.media-check/1',
    path: r.path,
    cartridge: r.header !== undefined,
    ok: r.ok,
    header: r.header ?? null,
    headerError: r.headerError ?? null,
    fileBytes: r.fileBytes,
    blocks: r.blocks,
    filemarks: r.filemarks,
    bytes: r.bytes,
    partitions: r.partitions,
    syncPoints: r.syncPoints,
    cleanEod: r.cleanEod,
    damaged: r.damaged,
    tornTailBytes: r.tornTailBytes,
    staleTail: r.staleTail,
    mamSlotsValid: r.mamSlotsValid,
    mamAttributes: r.mamAttributes,
  };
}

// ------------------------------------------------------------------ scenario run

/** `ptpvts scenario run --json` (format `ptpvts.scenario-run/1`). */
export function scenarioRunView(r: ScenarioResult, svg: string): Record<string, unknown> & { readonly format: 'ptpvts.scenario-run/1' } {
  return {
    format: 'ptpvts.scenario-run/1',
    name: r.name,
    title: r.title,
    passed: r.passed,
    durationMs: r.durationMs,
    vtcs: r.vtcs,
    steps: r.steps.map((s) => ({ index: s.index, text: s.text, ok: s.ok, atMs: s.at, ms: s.ms, detail: s.detail ?? null })),
    error: r.error === null ? null : { name: r.error.name, message: r.error.message },
    svg,
  };
}
