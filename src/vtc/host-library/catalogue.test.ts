import { mkdtempSync, rmSync, utimesSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VolumeCatalogue } from './catalogue.js';

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-catalogue-'));
  path = join(dir, 'catalogue.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('volume catalogue', () => {
  it('changes from two writers at once all land (the lock file serializes them), each volume in its own slot', async () => {
    await VolumeCatalogue.create(path, 64);
    const a = new VolumeCatalogue(path);
    const b = new VolumeCatalogue(path);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).insert([`V${String(i).padStart(5, '0')}`])));
    const list = await new VolumeCatalogue(path).list();
    expect(list).toHaveLength(20);
    expect(new Set(list.map((e) => e.slot)).size).toBe(20);
    await Promise.all([a.setCategory('V00000', 'private'), b.eject('V00001'), a.eject('V00002')]);
    expect((await b.get('V00000'))?.category).toBe('private');
    expect(await b.get('V00001')).toBeUndefined();
  });

  it('reuses the lowest free slot, refuses a full catalogue, duplicates and bad volsers, naming what was wrong', async () => {
    const c = await VolumeCatalogue.create(path, 3);
    await c.insert(['A1', 'A2', 'A3']);
    await expect(c.insert(['A4'])).rejects.toMatchObject({ code: 'ECATFULL', message: 'no free slot for A4: all 3 slots hold a volume' });
    await c.eject('A2');
    expect(await c.insert(['A4'])).toMatchObject([{ volser: 'A4', slot: 1, category: 'scratch' }]);
    await expect(c.insert(['A1'])).rejects.toMatchObject({ code: 'EVOLEXISTS' });
    await expect(c.insert(['a-1'])).rejects.toMatchObject({ code: 'EBADVOLSER', message: 'volser "a-1" is not 1 to 6 characters A-Z, 0-9' });
    await expect(c.eject('ZZ')).rejects.toMatchObject({ code: 'ENOVOL' });
    // Creating again keeps what is there.
    expect(await (await VolumeCatalogue.create(path, 99)).slots()).toBe(3);
  });

  it('a lock left by a dead process is taken over once stale; a live one makes a change wait, then give up with ECATLOCK', async () => {
    const c = await VolumeCatalogue.create(path, 8);
    writeFileSync(`${path}.lock`, '');
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(`${path}.lock`, old, old);
    await c.insert(['S1']);
    expect((await c.list()).map((e) => e.volser)).toEqual(['S1']);
    writeFileSync(`${path}.lock`, '');
    const t0 = Date.now();
    await expect(c.insert(['S2'])).rejects.toMatchObject({ code: 'ECATLOCK' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4900);
  }, 15_000);

  it('refuses a file that is not a catalogue, naming the field', async () => {
    await VolumeCatalogue.create(path, 8);
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { volumes: unknown[] };
    doc.volumes.push({ volser: 'X1', category: 'blue', slot: 0, insertedAt: 0 });
    writeFileSync(path, JSON.stringify(doc));
    await expect(new VolumeCatalogue(path).list()).rejects.toMatchObject({ code: 'EBADCAT', message: expect.stringContaining('volumes.0.category') });
    writeFileSync(path, 'not json');
    await expect(new VolumeCatalogue(path).list()).rejects.toMatchObject({ code: 'EBADCAT', message: `${path} is not JSON` });
  });
});
