/**
 * At least 100,000 random and mutated CDBs at a tape drive with a cartridge loaded and at
 * the medium changer of an emulated library. Every answer must be well formed and no
 * handler may fail; afterwards every cartridge file must be undamaged and every cartridge
 * must be in the library exactly once.
 *
 * The commands run in rounds; between rounds the drive is given its tape back (LOAD) when a
 * fuzzed UNLOAD took it away, so most commands reach a loaded drive rather than stopping at
 * NOT READY. Mechanical delays are off (timeScale 0), and nothing injects a hang, so no
 * opcode needs to be skipped; only filemark counts are bounded (see boundFilemarkCounts).
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import type { EmulatedUnit } from '../../firmware-sim/engine/unit.js';
import { checkCartridge } from '../../firmware-sim/media/check.js';
import { bindings, type OpenedLab } from '../conformance/bindings.js';
import { clients, mount } from '../conformance/helpers.js';
import { fuzzUnit, rng, type FuzzReport } from './cdb-fuzzer.js';

const COMMANDS = Number(process.env['PTPVTS_FUZZ_COMMANDS'] ?? 100_000);
const BUDGET_MS = Number(process.env['PTPVTS_FUZZ_BUDGET_MS'] ?? 60_000);
const ROUND = 2_000;
const memory = bindings.find((b) => b.name === 'memory')!;

interface Totals {
  commands: number;
  reached: number;
  byStatus: Record<string, number>;
  problems: string[];
  ms: number;
}

/**
 * Filemark counts are capped at 255: the drive appends them one by one, and a fuzzed count
 * of sixteen million would take the whole budget for one command. Every other field is
 * left as generated.
 */
function boundFilemarkCounts(cdb: Uint8Array): void {
  if (cdb[0] === 0x10 && cdb.length >= 5) cdb[2] = cdb[3] = 0;
  if (cdb[0] === 0x80 && cdb.length >= 16) cdb[12] = cdb[13] = 0;
}

/**
 * Points most element address fields of robot commands at elements the library has, so
 * fuzzed moves and exchanges really move cartridges (into and out of drives too) instead
 * of stopping at INVALID ELEMENT ADDRESS.
 */
function realAddresses(addresses: readonly number[], seed: number): (cdb: Uint8Array) => void {
  const r = rng(seed);
  const fields: Record<number, number[]> = { 0xa5: [4, 6], 0xa6: [4, 6, 8], 0x2b: [4], 0xb8: [2], 0x37: [2] };
  const transport: Record<number, boolean> = { 0xa5: true, 0xa6: true, 0x2b: true };
  return (cdb) => {
    // Transport 0 means the default one.
    if (transport[cdb[0] ?? 0] && cdb.length > 3 && r() < 0.8) cdb[2] = cdb[3] = 0;
    for (const at of fields[cdb[0] ?? 0] ?? []) {
      if (at + 1 >= cdb.length || r() < 0.2) continue;
      const a = addresses[Math.floor(r() * addresses.length)] ?? 0;
      cdb[at] = a >> 8;
      cdb[at + 1] = a & 0xff;
    }
  };
}

async function fuzzInRounds(unit: EmulatedUnit<unknown>, seed: number, between: () => Promise<void>, shape: (cdb: Uint8Array) => void): Promise<Totals> {
  const t: Totals = { commands: 0, reached: 0, byStatus: {}, problems: [], ms: 0 };
  const started = Date.now();
  for (let round = 0; t.commands < COMMANDS && t.problems.length === 0; round++) {
    const left = BUDGET_MS - (Date.now() - started);
    if (left <= 0) break;
    await between();
    const r: FuzzReport = await fuzzUnit(unit, { seed: seed + round, commands: Math.min(ROUND, COMMANDS - t.commands), budgetMs: left, shape });
    t.commands += r.commands;
    t.reached += r.reachedHandlers;
    for (const [k, v] of Object.entries(r.byStatus)) t.byStatus[k] = (t.byStatus[k] ?? 0) + v;
    t.problems.push(...r.problems);
  }
  t.ms = Date.now() - started;
  return t;
}

function statusSummary(byStatus: Record<string, number>): string {
  const names: Record<number, string> = { [ScsiStatus.GOOD]: 'GOOD', [ScsiStatus.CHECK_CONDITION]: 'CHECK CONDITION', [ScsiStatus.TASK_ABORTED]: 'TASK ABORTED' };
  return Object.entries(byStatus)
    .map(([k, v]) => `${names[Number(k)] ?? `0x${Number(k).toString(16)}`} ${v}`)
    .join(', ');
}

describe('CDB fuzzing of the emulated devices', () => {
  let lab: OpenedLab;
  let closed = false;

  beforeAll(async () => {
    lab = await memory.open();
    const c = clients(lab);
    await mount(c, lab.media.scratch[0]!, 0);
    // Some data and filemarks on the tape, so reads, spaces and locates have something to cross.
    for (let i = 0; i < 20; i++) await c.drives[0]!.writeBlock(new Uint8Array(512 + i * 100).fill(i));
    await c.drives[0]!.writeFilemarks(2);
    await c.drives[0]!.rewind();
  });

  afterAll(async () => {
    if (!closed) await lab?.close();
  });

  it(`a tape drive with a cartridge answers ${COMMANDS} random CDBs well formed`, { timeout: BUDGET_MS + 60_000 }, async () => {
    const drive = lab.driveUnits![0]!;
    const t = await fuzzInRounds(drive.unit as unknown as EmulatedUnit<unknown>, 0xd21e, async () => {
      // Give the tape back when a fuzzed UNLOAD (or a power-on reset of the drive state) took it.
      if (drive.drive.state !== 'loaded') {
        await drive.unit.execute({ initiator: 'restore', cdb: Cdb.loadUnload({ load: true }).cdb, dataInLength: 0, signal: new AbortController().signal });
      }
    }, boundFilemarkCounts);
    console.log(`tape drive: ${t.commands} CDBs in ${t.ms} ms (${Math.round((t.commands / Math.max(1, t.ms)) * 1000)}/s), ${t.reached} reached a handler; ${statusSummary(t.byStatus)}`);
    expect(t.problems).toEqual([]);
    expect(t.commands).toBeGreaterThanOrEqual(COMMANDS);
    expect(drive.unit.bugs).toEqual([]);
  });

  it(`a medium changer answers ${COMMANDS} random CDBs well formed`, { timeout: BUDGET_MS + 60_000 }, async () => {
    const changer = lab.library!.changer;
    const addresses = lab.library!.model.elements.all().map((e) => e.address);
    const t = await fuzzInRounds(changer as unknown as EmulatedUnit<unknown>, 0xc4a6, async () => undefined, realAddresses(addresses, 0x5eed));
    const moves = lab.library!.model.counters();
    console.log(`changer: robot stats after fuzzing ${JSON.stringify(moves)}`);
    console.log(`changer: ${t.commands} CDBs in ${t.ms} ms (${Math.round((t.commands / Math.max(1, t.ms)) * 1000)}/s), ${t.reached} reached a handler; ${statusSummary(t.byStatus)}`);
    expect(t.problems).toEqual([]);
    expect(t.commands).toBeGreaterThanOrEqual(COMMANDS);
    expect(changer.bugs).toEqual([]);
    for (const d of lab.driveUnits!) expect(d.unit.bugs).toEqual([]);
  });

  it('leaves every cartridge in the library exactly once and every cartridge file undamaged', async () => {
    const expected = [...lab.initialInventory!.values()].sort();
    const barcodes = lab.library!.inventory().map((e) => e.barcode);
    expect([...barcodes].sort()).toEqual(expected);
    const files = [...lab.cartridgeFiles!.entries()];
    // Closing flushes the drives, so the files are checked as the next load would see them.
    await lab.library!.close();
    let checked = 0;
    for (const [barcode, path] of files) {
      if (!existsSync(path)) continue;
      const report = checkCartridge(path);
      expect(report.headerError, `${barcode} header`).toBeUndefined();
      expect(report.damaged, `${barcode} damage`).toEqual([]);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
    await lab.close();
    closed = true;
    console.log(`checked ${checked} cartridge files: no damage`);
  });
});
