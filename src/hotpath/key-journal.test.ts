import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyJournal } from './key-journal.js';
import { KeyJournalRef } from './key-journal-ref.js';
import { decodeJournal, encodeRecord, HEADER_SIZE } from './journal-format.js';
import { KeyJournalError } from './journal-types.js';
import type { KeyJournalApi } from './journal-types.js';

let dir = '';
let n = 0;
const fresh = (): string => join(dir, `j${n++}.journal`);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-journal-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rec = (i: number, len = 1 + ((i * 37) % 90)): Uint8Array => {
  const r = new Uint8Array(len);
  for (let k = 0; k < len; k++) r[k] = (i * 131 + k * 7) & 0xff;
  return r;
};

const impls = [
  ['native', (p: string): Promise<KeyJournalApi> => KeyJournal.open(p)],
  ['reference', (p: string): Promise<KeyJournalApi> => KeyJournalRef.open(p)],
] as const;

describe.each(impls)('%s key journal', (_name, open) => {
  it('creates an empty journal, appends, reads back, and recovers on reopen', async () => {
    const path = fresh();
    const j = await open(path);
    expect(j.recovery).toEqual({ records: 0, validBytes: 0, truncatedBytes: 0 });
    expect(await j.append(rec(0, 5))).toEqual({ offset: 0, seq: 0 });
    expect(await j.append(rec(1, 3))).toEqual({ offset: HEADER_SIZE + 5, seq: 1 });
    expect((await j.readAll()).map((r) => Buffer.from(r))).toEqual([rec(0, 5), rec(1, 3)].map((r) => Buffer.from(r)));
    await j.close();
    const k = await open(path);
    expect(k.recovery).toEqual({ records: 2, validBytes: 2 * HEADER_SIZE + 8, truncatedBytes: 0 });
    expect(k.records().map((r) => Buffer.from(r))).toEqual([rec(0, 5), rec(1, 3)].map((r) => Buffer.from(r)));
    expect(await k.append(rec(2, 1))).toEqual({ offset: 2 * HEADER_SIZE + 8, seq: 2 });
    await k.close();
    expect(decodeJournal(readFileSync(path)).records).toHaveLength(3);
  });

  it('acknowledges concurrent appends in order, each durable', async () => {
    const path = fresh();
    const j = await open(path);
    const acks = await Promise.all(Array.from({ length: 200 }, (_, i) => j.append(rec(i))));
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    for (let i = 1; i < acks.length; i++) expect(acks[i]!.offset).toBe(acks[i - 1]!.offset + HEADER_SIZE + rec(i - 1).length);
    const all = await j.readAll();
    expect(all.map((r) => Buffer.from(r))).toEqual(Array.from({ length: 200 }, (_, i) => Buffer.from(rec(i))));
    await j.close();
  });

  it('copies the record at append time, so the caller may reuse its buffer', async () => {
    const j = await open(fresh());
    const buf = new Uint8Array(4).fill(1);
    const a = j.append(buf);
    buf.fill(2);
    const b = j.append(buf);
    await Promise.all([a, b]);
    expect((await j.readAll()).map((r) => [...r])).toEqual([
      [1, 1, 1, 1],
      [2, 2, 2, 2],
    ]);
    await j.close();
  });

  it('rejects empty, oversized and non-byte records with EINVAL', async () => {
    const j = await open(fresh());
    await expect(j.append(new Uint8Array(0))).rejects.toMatchObject({ name: 'KeyJournalError', code: 'EINVAL' });
    await expect(j.append('x' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(j.compact([new Uint8Array(0)])).rejects.toMatchObject({ code: 'EINVAL' });
    await j.close();
  });

  it('rejects with ECLOSED after close, and close is idempotent', async () => {
    const j = await open(fresh());
    const pending = j.append(rec(1));
    const closing = j.close();
    await expect(pending).resolves.toEqual({ offset: 0, seq: 0 });
    await closing;
    await expect(j.append(rec(2))).rejects.toMatchObject({ name: 'KeyJournalError', code: 'ECLOSED' });
    await expect(j.readAll()).rejects.toMatchObject({ code: 'ECLOSED' });
    await j.close();
  });

  it('compaction replaces the content atomically and restarts the numbering', async () => {
    const path = fresh();
    const j = await open(path);
    for (let i = 0; i < 10; i++) await j.append(rec(i));
    const appending = j.append(rec(10));
    const compacting = j.compact([rec(100), rec(101)]);
    const after = j.append(rec(102));
    await appending;
    await compacting;
    expect((await after).seq).toBe(2);
    expect((await j.readAll()).map((r) => Buffer.from(r))).toEqual([rec(100), rec(101), rec(102)].map((r) => Buffer.from(r)));
    await j.close();
    expect(existsSync(`${path}.compact`)).toBe(false);
    const k = await open(path);
    expect(k.recovery.records).toBe(3);
    await k.close();
  });

  it('treats a zero-filled tail as the end, without counting it as damage', async () => {
    const path = fresh();
    writeFileSync(path, Buffer.concat([encodeRecord(rec(1)), encodeRecord(rec(2)), Buffer.alloc(5000)]));
    const j = await open(path);
    expect(j.recovery).toEqual({ records: 2, validBytes: 2 * HEADER_SIZE + rec(1).length + rec(2).length, truncatedBytes: 0 });
    expect(statSync(path).size).toBe(j.recovery.validBytes);
    expect((await j.append(rec(3))).seq).toBe(2);
    await j.close();
    expect(decodeJournal(readFileSync(path)).records).toHaveLength(3);
  });

  it('counts torn bytes before a zero tail as truncated', async () => {
    const path = fresh();
    writeFileSync(path, Buffer.concat([encodeRecord(rec(1)), encodeRecord(rec(2)).subarray(0, 7), Buffer.alloc(100)]));
    const j = await open(path);
    expect(j.recovery).toMatchObject({ records: 1, truncatedBytes: 7 });
    await j.close();
  });

  it('removes a snapshot left behind by a crash during compaction', async () => {
    const path = fresh();
    writeFileSync(path, encodeRecord(rec(1)));
    writeFileSync(`${path}.compact`, encodeRecord(rec(2)).subarray(0, 5));
    const j = await open(path);
    expect(j.records().map((r) => Buffer.from(r))).toEqual([Buffer.from(rec(1))]);
    expect(existsSync(`${path}.compact`)).toBe(false);
    await j.close();
  });

  it('fails to open in a missing directory with ENOENT, errno and syscall', async () => {
    const err = await open(join(dir, 'no', 'such', 'x.journal')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyJournalError);
    expect(err).toMatchObject({ code: 'ENOENT', errno: 2, syscall: 'open' });
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('fails to open a directory with EISDIR', async () => {
    await expect(open(dir)).rejects.toMatchObject({ code: 'EISDIR' });
  });

  it('recovers exactly the valid prefix from torn and garbled tails', async () => {
    const path = fresh();
    const j = await open(path);
    const count = 60;
    const written = Array.from({ length: count }, (_, i) => rec(i, 1 + ((i * 53) % 200)));
    for (const r of written) await j.append(r);
    await j.close();
    const size = statSync(path).size;
    const ends: number[] = [];
    written.reduce((off, r) => (ends.push(off + HEADER_SIZE + r.length), off + HEADER_SIZE + r.length), 0);
    let runs = 0;
    let recovered = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: size }),
        fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 3 }),
        async (cut, garbles) => {
          const victim = join(dir, `torn-${runs++}.journal`);
          copyFileSync(path, victim);
          truncateSync(victim, cut);
          const bytes = readFileSync(victim);
          let firstBad = cut;
          for (const g of garbles) {
            if (cut === 0) break;
            const at = g.at % cut;
            bytes[at] = bytes[at]! ^ g.xor;
            firstBad = Math.min(firstBad, at);
          }
          writeFileSync(victim, bytes);
          const expected = ends.filter((e) => e <= firstBad).length;
          const k = await open(victim);
          recovered += k.records().length;
          expect(k.records().length).toBe(expected);
          expect(k.records().map((r) => Buffer.from(r))).toEqual(written.slice(0, expected).map((r) => Buffer.from(r)));
          expect(statSync(victim).size).toBe(expected === 0 ? 0 : ends[expected - 1]);
          // The journal stays usable after recovery.
          expect((await k.append(rec(999))).seq).toBe(expected);
          await k.close();
          rmSync(victim);
        },
      ),
      { numRuns: 200 },
    );
    console.log(`torn-write injection (${_name}): ${runs} iterations, ${recovered} records recovered in total`);
  });
});

describe('native and reference journals share one format', () => {
  it('each reads what the other wrote', async () => {
    const path = fresh();
    const a = await KeyJournal.open(path);
    for (let i = 0; i < 20; i++) await a.append(rec(i));
    await a.close();
    const b = await KeyJournalRef.open(path);
    expect(b.records().length).toBe(20);
    for (let i = 20; i < 40; i++) await b.append(rec(i));
    await b.close();
    const c = await KeyJournal.open(path);
    expect(c.records().map((r) => Buffer.from(r))).toEqual(Array.from({ length: 40 }, (_, i) => Buffer.from(rec(i))));
    await c.close();
  });

  it('native appends share fdatasync calls when queued together (group commit)', async () => {
    const j = await KeyJournal.open(fresh());
    await Promise.all(Array.from({ length: 256 }, (_, i) => j.append(rec(i))));
    const s = j.stats();
    console.log(`group commit: ${s.appends} appends in ${s.syncs} fdatasync calls`);
    expect(s.appends).toBe(256);
    expect(s.syncs).toBeLessThan(s.appends / 4);
    await j.close();
  });

  it('64 looping writers share syncs ~64 at a time', async () => {
    const j = await KeyJournal.open(fresh());
    let left = 64 * 20;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (left-- > 0) await j.append(rec(left));
      }),
    );
    const s = j.stats();
    console.log(`64 writers: ${s.appends} appends in ${s.syncs} fdatasync calls`);
    expect(s.appends / s.syncs).toBeGreaterThan(48);
    await j.close();
  });
});

describe('native preallocation', () => {
  it('grows the file in zero-filled steps while open and trims them at close', async () => {
    const path = fresh();
    const j = await KeyJournal.open(path);
    await j.append(rec(1, 10));
    expect(statSync(path).size).toBe(1 << 20);
    expect(decodeJournal(readFileSync(path)).validBytes).toBe(HEADER_SIZE + 10);
    await j.close();
    expect(statSync(path).size).toBe(HEADER_SIZE + 10);
  });

  it('keeps appending across a preallocation step', async () => {
    const path = fresh();
    const j = await KeyJournal.open(path);
    const big = new Uint8Array(300_000).fill(3);
    for (let i = 0; i < 8; i++) await j.append(big);
    expect(statSync(path).size).toBe(3 << 20);
    await j.close();
    const k = await KeyJournal.open(path);
    expect(k.recovery).toMatchObject({ records: 8, truncatedBytes: 0 });
    await k.close();
  });
});

describe('permissions', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(root)('fails with EACCES on an unreadable journal (skipped as root: root bypasses file modes)', async () => {
    const path = fresh();
    writeFileSync(path, '');
    chmodSync(path, 0);
    await expect(KeyJournal.open(path)).rejects.toMatchObject({ code: 'EACCES', syscall: 'open' });
  });
});
