/**
 * Random MOVE MEDIUM and EXCHANGE MEDIUM sequences through the MediaChanger client over
 * the in-process emulated library, against a reference model (element -> barcode). Each
 * command must fail exactly when the model says it must (source empty, destination full,
 * an exchange onto its own source), with that sense, and the inventory read back over
 * SCSI must equal the model after every step.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SenseError } from '../../src/devices/errors.js';
import type { MediaChanger } from '../../src/devices/media-changer.js';
import { describeSense, Sense, type SenseCode } from '../../src/scsi/sense.js';
import { bindings, MemoryLayout, type OpenedLab } from '../conformance/bindings.js';
import { clients } from '../conformance/helpers.js';

type Op = { op: 'move'; src: number; dst: number } | { op: 'exchange'; src: number; first: number; second: number };
/** A generated step: raw addresses, or picks among the full and empty elements at run time (so most commands can succeed). */
type Step = { aimed: false; op: Op } | { aimed: true; exchange: boolean; a: number; b: number; c: number };

function resolve(model: Map<number, string>, s: Step): Op {
  if (!s.aimed) return s.op;
  const fulls = addresses.filter((x) => model.has(x));
  const empties = addresses.filter((x) => !model.has(x));
  const pick = (list: number[], i: number): number => list[i % list.length] ?? addresses[0]!;
  if (!s.exchange) return { op: 'move', src: pick(fulls, s.a), dst: pick(empties, s.b) };
  const src = pick(fulls, s.a);
  const others = fulls.filter((x) => x !== src);
  const first = pick(others, s.b);
  // Second destination: the source (a swap) or an empty element.
  return { op: 'exchange', src, first, second: s.c % 2 === 0 ? src : pick(empties, s.c) };
}

/** What the model expects of one command: success, or the condition it fails with. */
function predict(model: Map<number, string>, o: Op): SenseCode | undefined {
  if (o.op === 'move') {
    if (!model.has(o.src)) return Sense.MEDIUM_SOURCE_ELEMENT_EMPTY;
    if (model.has(o.dst)) return Sense.MEDIUM_DESTINATION_ELEMENT_FULL;
    return undefined;
  }
  if (o.first === o.src || o.second === o.first) return Sense.INVALID_ELEMENT_ADDRESS;
  if (!model.has(o.src) || !model.has(o.first)) return Sense.MEDIUM_SOURCE_ELEMENT_EMPTY;
  if (o.second !== o.src && model.has(o.second)) return Sense.MEDIUM_DESTINATION_ELEMENT_FULL;
  return undefined;
}

function apply(model: Map<number, string>, o: Op): void {
  if (o.op === 'move') {
    model.set(o.dst, model.get(o.src)!);
    model.delete(o.src);
    return;
  }
  const a = model.get(o.src)!;
  const b = model.get(o.first)!;
  model.delete(o.src);
  model.delete(o.first);
  model.set(o.first, a);
  model.set(o.second, b);
}

const memory = bindings.find((b) => b.name === 'memory')!;
// Storage, import/export and drives; the LTO-6 cartridge stays out of the drives' way by
// being just another barcode: a drive takes it and refuses only to read it.
const addresses = [
  ...Array.from({ length: MemoryLayout.storageCount }, (_, i) => MemoryLayout.firstStorage + i),
  ...Array.from({ length: MemoryLayout.importExportCount }, (_, i) => MemoryLayout.firstImportExport + i),
  ...Array.from({ length: MemoryLayout.driveCount }, (_, i) => MemoryLayout.firstDrive + i),
];
const address = fc.constantFrom(...addresses);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('move' as const), src: address, dst: address }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('exchange' as const), src: address, first: address, second: address }) },
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ aimed: fc.constant(false as const), op: opArb }) },
  { weight: 7, arbitrary: fc.record({ aimed: fc.constant(true as const), exchange: fc.boolean(), a: fc.nat(50), b: fc.nat(50), c: fc.nat(50) }) },
);

describe('a library behaves like the reference element -> barcode model', () => {
  let lab: OpenedLab;
  let changer: MediaChanger;

  beforeAll(async () => {
    lab = await memory.open();
    changer = clients(lab).changer;
  });

  afterAll(async () => {
    expect(lab?.library?.changer.bugs ?? []).toEqual([]);
    for (const u of lab?.driveUnits ?? []) expect(u.unit.bugs).toEqual([]);
    await lab?.close();
  });

  async function scsiInventory(): Promise<Map<number, string>> {
    const inv = await changer.inventory();
    return new Map(inv.all.filter((e) => e.full).map((e) => [e.address, e.primaryVolumeTag?.identifier ?? '?']));
  }

  it('for random sequences of MOVE MEDIUM and EXCHANGE MEDIUM', async () => {
    const started = Date.now();
    let runs = 0;
    let commands = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), async (steps) => {
        runs++;
        // Each run starts from wherever the last one left the cartridges.
        const model = await scsiInventory();
        for (const st of steps) {
          const o = resolve(model, st);
          commands++;
          const want = predict(model, o);
          const got = await (o.op === 'move' ? changer.move(o.src, o.dst) : changer.exchange(o.src, o.first, o.second)).then(
            () => undefined,
            (e: unknown) => e,
          );
          const where = JSON.stringify(o);
          if (want) {
            refused++;
            expect(got instanceof SenseError ? `${got.keyName} / ${got.ascName}` : String(got), where).toBe(describeSense(want));
          } else {
            expect(got, where).toBeUndefined();
            apply(model, o);
          }
          expect(await scsiInventory(), where).toEqual(model);
          const barcodes = lab.library!.inventory().map((e) => e.barcode);
          expect(new Set(barcodes).size, `${where}: every cartridge exactly once`).toBe(barcodes.length);
          expect(new Map(lab.library!.inventory().map((e) => [e.address, e.barcode])), `${where}: emulator model`).toEqual(model);
        }
      }),
      { numRuns: 300, seed: Number(process.env['PTPVTS_FC_SEED'] ?? 0x11b) },
    );
    console.log(`library model: ${runs} sequences, ${commands} commands (${refused} refused as predicted) in ${Date.now() - started} ms`);
  });
});
