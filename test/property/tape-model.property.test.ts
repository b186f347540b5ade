/**
 * Random sequences of tape operations through the TapeDrive client over the in-process
 * emulator, each compared with a reference model of a tape: a list of blocks and
 * filemarks, a position and end of data. Data, filemark / EOD / BOP flags, residues and
 * the READ POSITION block number must agree after every step.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SenseError } from '../../src/devices/errors.js';
import type { TapeDrive } from '../../src/devices/tape-drive.js';
import { SpaceCode } from '../../src/scsi/index.js';
import { Sense } from '../../src/scsi/sense.js';
import { bindings, type OpenedLab } from '../conformance/bindings.js';
import { clients, mount, pattern } from '../conformance/helpers.js';

type TapeObject = { readonly kind: 'block'; readonly data: Uint8Array } | { readonly kind: 'filemark' };

/** The reference: what SSC says a single-partition tape does. */
class TapeModel {
  objects: TapeObject[] = [];
  pos = 0;

  private truncate(): void {
    this.objects.length = this.pos;
  }

  write(data: Uint8Array): void {
    this.truncate();
    this.objects.push({ kind: 'block', data });
    this.pos++;
  }

  writeFilemarks(n: number): void {
    this.truncate();
    for (let i = 0; i < n; i++) this.objects.push({ kind: 'filemark' });
    this.pos += n;
  }

  read(max: number): { data: Uint8Array; filemark: boolean; eod: boolean; ili: boolean; residue: number } {
    const o = this.objects[this.pos];
    if (!o) return { data: new Uint8Array(0), filemark: false, eod: true, ili: false, residue: max };
    this.pos++;
    if (o.kind === 'filemark') return { data: new Uint8Array(0), filemark: true, eod: false, ili: false, residue: max };
    return { data: o.data.subarray(0, max), filemark: false, eod: false, ili: o.data.length !== max, residue: max - o.data.length };
  }

  /** Residue magnitude and the condition that stopped the space, if any. */
  spaceBlocks(n: number): { residue: number; stop?: 'filemark' | 'eod' | 'bop' } {
    if (n > 0) {
      for (let done = 0; done < n; done++) {
        const o = this.objects[this.pos];
        if (!o) return { residue: n - done, stop: 'eod' };
        this.pos++;
        if (o.kind === 'filemark') return { residue: n - done, stop: 'filemark' };
      }
      return { residue: 0 };
    }
    const m = -n;
    for (let done = 0; done < m; done++) {
      if (this.pos === 0) return { residue: m - done, stop: 'bop' };
      this.pos--;
      if (this.objects[this.pos]?.kind === 'filemark') return { residue: m - done, stop: 'filemark' };
    }
    return { residue: 0 };
  }

  spaceFilemarks(n: number): { residue: number; stop?: 'eod' | 'bop' } {
    if (n > 0) {
      for (let done = 0; done < n; done++) {
        let i = this.pos;
        while (i < this.objects.length && this.objects[i]?.kind !== 'filemark') i++;
        if (i >= this.objects.length) {
          this.pos = this.objects.length;
          return { residue: n - done, stop: 'eod' };
        }
        this.pos = i + 1;
      }
      return { residue: 0 };
    }
    const m = -n;
    for (let done = 0; done < m; done++) {
      let i = this.pos - 1;
      while (i >= 0 && this.objects[i]?.kind !== 'filemark') i--;
      if (i < 0) {
        this.pos = 0;
        return { residue: m - done, stop: 'bop' };
      }
      this.pos = i;
    }
    return { residue: 0 };
  }

  /** True when the target lies beyond end of data (the tape then stops at EOD). */
  locate(target: number): boolean {
    if (target > this.objects.length) {
      this.pos = this.objects.length;
      return false;
    }
    this.pos = target;
    return true;
  }
}

type Op =
  | { op: 'write'; size: number; seed: number }
  | { op: 'filemarks'; count: number }
  | { op: 'read'; max: number }
  | { op: 'spaceBlocks'; count: number }
  | { op: 'spaceFilemarks'; count: number }
  | { op: 'locate'; to: number }
  | { op: 'rewind' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('write' as const), size: fc.integer({ min: 1, max: 3000 }), seed: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('filemarks' as const), count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('read' as const), max: fc.integer({ min: 1, max: 3200 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('spaceBlocks' as const), count: fc.integer({ min: -6, max: 6 }).filter((n) => n !== 0) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('spaceFilemarks' as const), count: fc.integer({ min: -3, max: 3 }).filter((n) => n !== 0) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('locate' as const), to: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('rewind' as const) }) },
);

async function step(d: TapeDrive, m: TapeModel, o: Op): Promise<void> {
  const where = JSON.stringify(o);
  switch (o.op) {
    case 'write': {
      const data = pattern(o.size, o.seed);
      m.write(data);
      const r = await d.writeBlock(data);
      expect(r, where).toMatchObject({ written: o.size, earlyWarning: false });
      break;
    }
    case 'filemarks': {
      m.writeFilemarks(o.count);
      expect((await d.writeFilemarks(o.count)).written, where).toBe(o.count);
      break;
    }
    case 'read': {
      const want = m.read(o.max);
      const got = await d.read(o.max);
      expect({ filemark: got.filemark, eod: got.eod, ili: got.ili, residue: got.residue }, where).toEqual({ filemark: want.filemark, eod: want.eod, ili: want.ili, residue: want.residue });
      expect(Buffer.from(got.data).equals(Buffer.from(want.data)), `${where}: data`).toBe(true);
      break;
    }
    case 'spaceBlocks': {
      const want = m.spaceBlocks(o.count);
      const got = await d.space(SpaceCode.blocks, o.count);
      expect({ residue: Math.abs(got.residue), filemark: got.filemark, eod: got.eod, bop: got.bop }, where).toEqual({
        residue: want.residue,
        filemark: want.stop === 'filemark',
        eod: want.stop === 'eod',
        bop: want.stop === 'bop',
      });
      break;
    }
    case 'spaceFilemarks': {
      const want = m.spaceFilemarks(o.count);
      const got = await d.space(SpaceCode.filemarks, o.count);
      expect({ residue: Math.abs(got.residue), eod: got.eod, bop: got.bop }, where).toEqual({ residue: want.residue, eod: want.stop === 'eod', bop: want.stop === 'bop' });
      break;
    }
    case 'locate': {
      const reachable = m.locate(o.to);
      if (reachable) await d.locate(o.to);
      else {
        const e = await d.locate(o.to).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(e instanceof SenseError && e.is(Sense.END_OF_DATA_DETECTED), `${where}: BLANK CHECK / END-OF-DATA DETECTED`).toBe(true);
      }
      break;
    }
    case 'rewind':
      m.pos = 0;
      await d.rewind();
      break;
  }
  const p = await d.position();
  expect(p.block, `${where}: READ POSITION block`).toBe(m.pos);
  expect(p.fileNumber, `${where}: READ POSITION file`).toBe(m.objects.slice(0, m.pos).filter((x) => x.kind === 'filemark').length);
  expect(p.bop, `${where}: BOP`).toBe(m.pos === 0);
}

const memory = bindings.find((b) => b.name === 'memory')!;

describe('a tape drive behaves like the reference tape model', () => {
  let lab: OpenedLab;
  let drive: TapeDrive;

  beforeAll(async () => {
    lab = await memory.open();
    const c = clients(lab);
    await mount(c, lab.media.scratch[0]!);
    drive = c.drives[0]!;
  });

  afterAll(async () => {
    for (const u of lab?.driveUnits ?? []) expect(u.unit.bugs).toEqual([]);
    await lab?.close();
  });

  it('for random sequences of write, filemarks, read, space, locate and rewind', async () => {
    const started = Date.now();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 50 }), async (ops) => {
        runs++;
        // A fresh tape: ERASE at BOP makes it blank.
        await drive.rewind();
        await drive.erase();
        const model = new TapeModel();
        for (const o of ops) await step(drive, model, o);
        // Finally every object reads back in order.
        await drive.rewind();
        model.pos = 0;
        for (let i = 0; i <= model.objects.length; i++) await step(drive, model, { op: 'read', max: 3200 });
      }),
      { numRuns: 1500, seed: Number(process.env['PTPVTS_FC_SEED'] ?? 0x7a9e) },
    );
    console.log(`tape model: ${runs} sequences in ${Date.now() - started} ms`);
  });
});
