import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_SLOT_PAYLOAD, SLOT_SIZE, SlotFile } from './slot-file.js';
import { StateFileError } from './errors.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('SlotFile (two-slot state record)', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-slot-'));
    path = join(dir, 'state.bin');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  /** Opens the existing file, returns the state it holds, closes it. */
  const stored = async (): Promise<string> => {
    const o = await SlotFile.open(path, () => enc('never used'));
    await o.file.close();
    return dec(o.payload);
  };

  it('makes the file with the initial state, then reopens to the newest save', async () => {
    const a = await SlotFile.open(path, () => enc('first'));
    expect(dec(a.payload)).toBe('first');
    expect(statSync(path).size).toBe(2 * SLOT_SIZE);
    await a.file.save(enc('second'));
    await a.file.save(enc('third'));
    await a.file.close();
    const b = await SlotFile.open(path, () => enc('never used'));
    expect(dec(b.payload)).toBe('third');
    await b.file.save(enc('fourth'));
    await b.file.close();
    expect(await stored()).toBe('fourth');
  });

  it('saves overwrite the older slot in place: the file never grows', async () => {
    const a = await SlotFile.open(path, () => enc('0'));
    for (let i = 1; i <= 10; i++) await a.file.save(enc(`state ${i}`));
    await a.file.close();
    expect(statSync(path).size).toBe(2 * SLOT_SIZE);
    const bytes = readFileSync(path);
    // Counter 10 is in slot 0, counter 11 (the tenth save) in slot 1.
    expect(bytes.subarray(SLOT_SIZE, 2 * SLOT_SIZE).includes(Buffer.from('state 10'))).toBe(true);
    expect(bytes.subarray(0, SLOT_SIZE).includes(Buffer.from('state 9'))).toBe(true);
  });

  it('concurrent saves land in call order', async () => {
    const a = await SlotFile.open(path, () => enc('0'));
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.file.save(enc(`s${i}`))));
    await a.file.close();
    expect(await stored()).toBe('s19');
  });

  it('a save torn by a crash (its slot damaged) leaves the previous state', async () => {
    const a = await SlotFile.open(path, () => enc('initial'));
    await a.file.save(enc('older'));
    await a.file.save(enc('newest, torn'));
    await a.file.close();
    // The third record (counter 3) is in slot 1: flip a payload byte as a torn write would.
    const bytes = readFileSync(path);
    bytes[SLOT_SIZE + 22] = (bytes[SLOT_SIZE + 22] ?? 0) ^ 0xff;
    writeFileSync(path, bytes);
    const b = await SlotFile.open(path, () => enc('x'));
    expect(dec(b.payload)).toBe('older');
    // And the next save goes to the damaged slot, not over the good one.
    await b.file.save(enc('after recovery'));
    await b.file.close();
    expect(await stored()).toBe('after recovery');
  });

  it('every save, the first one after the file is made too, leaves the state before it in the other slot', async () => {
    const a = await SlotFile.open(path, () => enc('state 0'));
    for (let i = 1; i <= 4; i++) {
      await a.file.save(enc(`state ${i}`));
      // Tear the save just made (the slot with the higher counter), as a crash inside its write would.
      const bytes = readFileSync(path);
      const counter = (at: number): bigint => (bytes.readUInt32LE(at) === 0x31535650 ? bytes.readBigUInt64LE(at + 4) : -1n);
      const torn = counter(SLOT_SIZE) > counter(0) ? SLOT_SIZE : 0;
      bytes[torn + 20] = (bytes[torn + 20] ?? 0) ^ 0xff;
      const copy = join(dir, `torn-${i}.bin`);
      writeFileSync(copy, bytes);
      const b = await SlotFile.open(copy, () => enc('never used'));
      await b.file.close();
      expect(dec(b.payload), `save ${i} torn`).toBe(`state ${i - 1}`);
    }
    await a.file.close();
  });

  it('a file made with its first state in slot 0 (older layout) keeps that state through a torn first save', async () => {
    const a = await SlotFile.open(path, () => enc('made'));
    await a.file.close();
    const bytes = readFileSync(path);
    const older = Buffer.concat([bytes.subarray(SLOT_SIZE), Buffer.alloc(SLOT_SIZE)]);
    writeFileSync(path, older);
    const b = await SlotFile.open(path, () => enc('never used'));
    await b.file.save(enc('first save'));
    await b.file.close();
    const after = readFileSync(path);
    expect(after.subarray(0, SLOT_SIZE)).toEqual(older.subarray(0, SLOT_SIZE));
    expect(await stored()).toBe('first save');
  });

  it('refuses a file with no valid slot, naming the file and each slot', async () => {
    writeFileSync(path, Buffer.alloc(2 * SLOT_SIZE, 7));
    const err = await SlotFile.open(path, () => enc('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateFileError);
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toMatch(/slot 0: no magic; slot 1: no magic/);
  });

  it('refuses a short file', async () => {
    writeFileSync(path, Buffer.alloc(100));
    await expect(SlotFile.open(path, () => enc('x'))).rejects.toThrow(/100 bytes, a state file has two slots/);
  });

  it('refuses a state too large for a slot and keeps the old one', async () => {
    const a = await SlotFile.open(path, () => enc('kept'));
    await expect(a.file.save(new Uint8Array(MAX_SLOT_PAYLOAD + 1))).rejects.toThrow(/does not fit a slot/);
    await a.file.close();
    expect(await stored()).toBe('kept');
    await expect(SlotFile.open(join(dir, 'other.bin'), () => new Uint8Array(MAX_SLOT_PAYLOAD + 1))).rejects.toThrow(/does not fit a slot/);
  });

  it('refuses saves after close', async () => {
    const a = await SlotFile.open(path, () => enc('x'));
    await a.file.close();
    await expect(a.file.save(enc('y'))).rejects.toThrow(/closed/);
  });
});
