/**
 * Media check: verifies every record of a cartridge file (header CRC, structure, payload
 * CRC) without changing it, and reports what a person needs to decide whether the
 * cartridge is usable. `ptpvts media check FILE` prints this report.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { decodeHeader, decodeLogFloor, decodeMamSlot, decodePartitionLayout, FORMAT_VERSION, HEADER_SIZE, LOG_OFFSET, MAM_SLOT_OFFSETS, MAM_SLOT_SIZE, type CartridgeHeader, type LogFloor, type PartitionLayout } from './format.js';
import { countStoredAttributes } from './cartridge.js';
import { scanLog, type DamageReason } from './scan.js';

/** One damaged stretch of the log. */
export interface DamagedRecord {
  /** Partition the damage is in. */
  readonly partition: number;
  /** Logical object number the damage occupies in its partition (the block number a READ would hit). */
  readonly objectNumber: number;
  /** Blocks before the damage (the block number counting blocks only). */
  readonly blockNumber: number;
  readonly offset: number;
  /** Bytes of the file the damage spans. */
  readonly bytes: number;
  readonly reason: DamageReason;
}

export interface CartridgeReport {
  readonly path: string;
  readonly fileBytes: number;
  /** Undefined when the header itself is unreadable; `headerError` says why. */
  readonly header?: CartridgeHeader;
  readonly headerError?: string;
  readonly blocks: number;
  readonly filemarks: number;
  /** Payload bytes of all readable blocks. */
  readonly bytes: number;
  /** Per partition (partition 0 first): its size from the layout, and what it holds. */
  readonly partitions: readonly PartitionReport[];
  readonly syncPoints: number;
  /** The last record is an EOD marker: the cartridge was unloaded cleanly. */
  readonly cleanEod: boolean;
  readonly damaged: readonly DamagedRecord[];
  /** Bytes past the last usable record (an interrupted write); cut off when the cartridge is next loaded for writing. */
  readonly tornTailBytes: number;
  /** Whole records of an older generation past the end (an overwrite cut that a crash lost). */
  readonly staleTail: boolean;
  /** Valid cartridge-memory slots (0, 1 or 2) and attributes in the newest one. */
  readonly mamSlotsValid: number;
  readonly mamAttributes: number;
  /** No damage and a readable header: the cartridge reads back completely. */
  readonly ok: boolean;
}

/** What one partition holds. */
export interface PartitionReport {
  readonly sizeBytes: number;
  readonly blocks: number;
  readonly filemarks: number;
  readonly bytes: number;
}

function readAt(fd: number, n: number, pos: number): Uint8Array {
  const b = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = readSync(fd, b, got, n - got, pos + got);
    if (r === 0) break;
    got += r;
  }
  return b.subarray(0, got);
}

/**
 * Verifies a cartridge file. Throws only when the file cannot be opened or read (the fs
 * error, with its `code`); every problem inside the file is reported, not thrown.
 */
export function checkCartridge(path: string): CartridgeReport {
  const fd = openSync(path, 'r');
  try {
    const fileBytes = fstatSync(fd).size;
    let header: CartridgeHeader | undefined;
    let headerError: string | undefined;
    try {
      header = decodeHeader(readAt(fd, HEADER_SIZE, 0));
    } catch (err) {
      headerError = (err as Error).message;
    }
    let mamSlotsValid = 0;
    let mamAttributes = 0;
    let bestSeq = -1;
    let floor: LogFloor | undefined;
    let layout: PartitionLayout | undefined;
    for (const off of MAM_SLOT_OFFSETS) {
      const slot = decodeMamSlot(readAt(fd, MAM_SLOT_SIZE, off), header?.version ?? FORMAT_VERSION);
      if (!slot) continue;
      mamSlotsValid++;
      if (slot.sequence > bestSeq) {
        bestSeq = slot.sequence;
        floor = decodeLogFloor(slot.attrs);
        layout = decodePartitionLayout(slot.attrs);
        mamAttributes = countStoredAttributes(slot.attrs);
      }
    }
    const sizes = layout?.sizes ?? [header?.capacityBytes ?? 0];
    const scan = fileBytes >= LOG_OFFSET ? scanLog(fd, fileBytes, 'all', floor, sizes.length) : undefined;
    // Each partition's objects in order (kind, payload bytes, damage), a discard cutting them.
    type Obj = { kind: 'block' | 'filemark' | 'damaged'; length: number; damage?: Omit<DamagedRecord, 'objectNumber' | 'blockNumber'> };
    const objs: Obj[][] = sizes.map(() => []);
    let cleanEod = false;
    for (const e of scan?.entries ?? []) {
      if (e.kind === 'sync') continue;
      if (e.kind === 'eod') {
        cleanEod = true;
        continue;
      }
      cleanEod = false;
      const list = objs[e.partition] ?? [];
      if (e.kind === 'discard') list.length = Math.min(list.length, e.discardFrom ?? 0);
      else if (e.kind === 'damaged') list.push({ kind: 'damaged', length: 0, damage: { partition: e.partition, offset: e.offset, bytes: e.end - e.offset, reason: e.reason ?? 'bad-header' } });
      else list.push({ kind: e.kind, length: e.length });
    }
    const damaged: DamagedRecord[] = [];
    const partitions = objs.map((list, p): PartitionReport => {
      let blocks = 0;
      let filemarks = 0;
      let bytes = 0;
      list.forEach((o, i) => {
        if (o.damage) damaged.push({ ...o.damage, objectNumber: i, blockNumber: blocks });
        else if (o.kind === 'block') {
          blocks++;
          bytes += o.length;
        } else filemarks++;
      });
      return { sizeBytes: sizes[p] ?? 0, blocks, filemarks, bytes };
    });
    const blocks = partitions.reduce((n, q) => n + q.blocks, 0);
    const filemarks = partitions.reduce((n, q) => n + q.filemarks, 0);
    const bytes = partitions.reduce((n, q) => n + q.bytes, 0);
    return {
      path,
      fileBytes,
      ...(header ? { header } : {}),
      ...(headerError !== undefined ? { headerError } : {}),
      blocks,
      filemarks,
      bytes,
      partitions,
      syncPoints: scan?.syncPoints ?? 0,
      cleanEod,
      damaged,
      tornTailBytes: scan ? scan.tornBytes : Math.max(0, fileBytes - HEADER_SIZE),
      staleTail: scan?.staleTail ?? false,
      mamSlotsValid,
      mamAttributes,
      ok: header !== undefined && damaged.length === 0 && scan !== undefined,
    };
  } finally {
    closeSync(fd);
  }
}

/** The report as plain sentences, for the CLI. */
export function formatCartridgeReport(r: CartridgeReport): string {
  const lines: string[] = [];
  if (r.header) {
    lines.push(`${r.path}: ${r.header.mediaType}${r.header.worm ? ' WORM' : ''} cartridge ${r.header.barcode || '(no barcode)'}, capacity ${r.header.capacityBytes} bytes, format version ${r.header.version}${r.header.version < FORMAT_VERSION ? ` (converted to ${FORMAT_VERSION} when next loaded for writing)` : ''}.`);
  } else {
    lines.push(`${r.path}: the header is unreadable (${r.headerError ?? 'unknown reason'}).`);
  }
  lines.push(`${r.blocks} blocks (${r.bytes} bytes) and ${r.filemarks} filemarks in ${r.fileBytes} bytes of file; ${r.syncPoints} sync points.`);
  if (r.partitions.length > 1) r.partitions.forEach((q, i) => lines.push(`Partition ${i} (${q.sizeBytes} bytes): ${q.blocks} blocks (${q.bytes} bytes) and ${q.filemarks} filemarks.`));
  lines.push(r.cleanEod ? 'The cartridge was unloaded cleanly (EOD marker present).' : 'No EOD marker: the cartridge was not unloaded cleanly; loading recovers up to the last complete record.');
  if (r.tornTailBytes > 0) lines.push(`${r.tornTailBytes} bytes after the last complete record ${r.staleTail ? 'are records left over from an overwrite' : 'are an interrupted write'}; they are ignored, and cut off when the cartridge is next loaded for writing.`);
  lines.push(`Cartridge memory: ${r.mamSlotsValid} of 2 slots valid, ${r.mamAttributes} attributes.`);
  for (const d of r.damaged) {
    lines.push(`Damaged record at offset ${d.offset} (${d.bytes} bytes, ${d.reason === 'bad-crc' ? 'payload CRC mismatch' : 'unreadable record header'}): ${r.partitions.length > 1 ? `partition ${d.partition}, ` : ''}logical object ${d.objectNumber}, block ${d.blockNumber}.`);
  }
  lines.push(r.ok ? 'Result: OK.' : `Result: ${r.damaged.length} damaged record(s)${r.header ? '' : ', bad header'}.`);
  return lines.join('\n');
}
