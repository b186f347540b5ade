/**
 * Random MOVE MEDIUM / EXCHANGE MEDIUM sequences (with jams and bad addresses) against a
 * reference model of the library as a map element -> barcode: after every command the
 * changer's answer and its inventory (as READ ELEMENT STATUS reports it, and as the
 * drives hold it) match the reference.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as Cdb from '../../src/scsi/cdb.js';
import { Sense, isSense, type SenseCode } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { inventoryOverScsi, makeLibrary, senseOf } from '../library/test-kit.js';

const TRANSPORT = 0x0001;
const SLOTS = [0x1000, 0x1001, 0x1002, 0x1003, 0x1004, 0x1005];
const IE = [0x10, 0x11];
const DRIVES = [0x100, 0x101];
const VALID = [...SLOTS, ...IE, ...DRIVES];
const ADDRESSES = [...VALID, TRANSPORT, 0x0000, 0x2000, 0x0102];

type Op =
  | { kind: 'move'; source: number; destination: number }
  | { kind: 'exchange'; source: number; first: number; second: number }
  | { kind: 'jam'; n: number };

const address = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...VALID) }, { weight: 1, arbitrary: fc.constantFrom(...ADDRESSES) });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('move' as const), source: address, destination: address }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('exchange' as const), source: address, first: address, second: address }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('jam' as const), n: fc.integer({ min: 1, max: 2 }) }) },
);

/** What the reference library says a command does: the new state, or the sense it fails with. */
function expectMove(ref: Map<number, string>, jams: { n: number }, source: number, destination: number): SenseCode | undefined {
  const isElement = (a: number): boolean => VALID.includes(a) || a === TRANSPORT;
  if (!isElement(source) || !isElement(destination) || destination === TRANSPORT) return Sense.INVALID_ELEMENT_ADDRESS;
  const c = ref.get(source);
  if (c === undefined) return Sense.MEDIUM_SOURCE_ELEMENT_EMPTY;
  if (ref.has(destination)) return Sense.MEDIUM_DESTINATION_ELEMENT_FULL;
  if (jams.n > 0) {
    jams.n--;
    return Sense.MECHANICAL_POSITIONING_ERROR;
  }
  ref.delete(source);
  ref.set(destination, c);
  return undefined;
}

function expectExchange(ref: Map<number, string>, jams: { n: number }, source: number, first: number, second: number): SenseCode | undefined {
  const isElement = (a: number): boolean => VALID.includes(a) || a === TRANSPORT;
  if (!isElement(source)) return Sense.INVALID_ELEMENT_ADDRESS;
  if (!VALID.includes(first) || !VALID.includes(second)) return Sense.INVALID_ELEMENT_ADDRESS;
  if (first === source || second === first) return Sense.INVALID_ELEMENT_ADDRESS;
  const a = ref.get(source);
  const b = ref.get(first);
  if (a === undefined || b === undefined) return Sense.MEDIUM_SOURCE_ELEMENT_EMPTY;
  if (second !== source && ref.has(second)) return Sense.MEDIUM_DESTINATION_ELEMENT_FULL;
  if (jams.n > 0) {
    jams.n--;
    return Sense.MECHANICAL_POSITIONING_ERROR;
  }
  ref.delete(source);
  ref.set(first, a);
  ref.set(second, b);
  return undefined;
}

describe('changer: random move/exchange sequences against a reference model', () => {
  it('inventory always matches', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const { lib, port, bays } = await makeLibrary();
        const ref = new Map(lib.model.inventory());
        const jams = { n: 0 };
        for (const o of ops) {
          if (o.kind === 'jam') {
            lib.faults.jamNextMoves(o.n);
            jams.n = o.n;
            continue;
          }
          const want = o.kind === 'move' ? expectMove(ref, jams, o.source, o.destination) : expectExchange(ref, jams, o.source, o.first, o.second);
          const r =
            o.kind === 'move'
              ? await port.execute(Cdb.moveMedium({ source: o.source, destination: o.destination }))
              : await port.execute(Cdb.exchangeMedium({ source: o.source, firstDestination: o.first, secondDestination: o.second }));
          if (want === undefined) expect(r.status, JSON.stringify({ o, sense: senseOf(r) })).toBe(ScsiStatus.GOOD);
          else {
            const s = senseOf(r);
            expect(s && isSense(s, want), JSON.stringify({ o, want: want.name, got: s })).toBe(true);
          }
          expect(lib.model.inventory()).toEqual(new Map([...ref].sort((x, y) => x[0] - y[0])));
          DRIVES.forEach((d, i) => expect(bays[i]?.cartridge?.barcode).toBe(ref.get(d)));
        }
        expect(await inventoryOverScsi(port)).toEqual(new Map([...ref].sort((x, y) => x[0] - y[0])));
        expect(lib.changer.bugs).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });
});
