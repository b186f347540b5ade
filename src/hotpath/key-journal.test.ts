import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../native.js';
import { KeyJournal } from './key-journal.js';
import { KeyJournalRef } from './key-journal-ref.js';
import { decodeJournal, encodeRecord, HEADER_SIZE, scanJournal } from './journal-format.js';
import { KeyJournalCorruptError, KeyJournalError } from './journal-types.js';
import type { KeyJournalApi, KeyJournalOpenOptions } from './journal-types.js';

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
  ['native', (p: string, o?: KeyJournalOpenOptions): Promise<KeyJournalApi> => KeyJournal.open(p, o)],
  // The journal's own writer thread and RWF_DSYNC writes, the alternatives the benchmark weighs against the default.
  ['native (thread, dsync)', (p: string, o?: KeyJournalOpenOptions): Promise<KeyJournalApi> => KeyJournal.open(p, { ...o, native: { writer: 'thread', sync: 'dsync' } })],
  ['native (thread, spin)', (p: string, o?: KeyJournalOpenOptions): Promise<KeyJournalApi> => KeyJournal.open(p, { ...o, native: { writer: 'thread', poll: 'spin' } })],
  ['reference', (p: string, o?: KeyJournalOpenOptions): Promise<KeyJournalApi> => KeyJournalRef.open(p, o)],
] as const;

const bufs = (rs: readonly Uint8Array[]): Buffer[] => rs.map((r) => Buffer.from(r));
/** A journal image of `records` written one by one (each its own commit group), and where each record starts. */
function image(records: readonly Uint8Array[]): { bytes: Buffer; starts: number[] } {
  const starts: number[] = [];
  let off = 0;
  const framed = records.map((r) => {
    starts.push(off);
    off += HEADER_SIZE + r.length;
    return encodeRecord(r);
  });
  return { bytes: Buffer.concat(framed), starts };
}

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

  it('cuts torn tails and refuses mid-log damage, never dropping a valid record silently', async () => {
    const path = fresh();
    const j = await open(path);
    const count = 60;
    const written = Array.from({ length: count }, (_, i) => rec(i, 1 + ((i * 53) % 200)));
    for (const r of written) await j.append(r);
    await j.close();
    const original = readFileSync(path);
    const size = original.length;
    const starts: number[] = [];
    const ends: number[] = [];
    written.reduce((off, r) => (starts.push(off), ends.push(off + HEADER_SIZE + r.length), off + HEADER_SIZE + r.length), 0);
    let runs = 0;
    let recovered = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: size }),
        fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 3 }),
        async (cut, garbles) => {
          const victim = join(dir, `torn-${runs++}.journal`);
          copyFileSync(path, victim);
          truncateSync(victim, cut);
          const bytes = readFileSync(victim);
          for (const g of garbles) {
            if (cut === 0) break;
            const at = g.at % cut;
            bytes[at] = bytes[at]! ^ g.xor;
          }
          writeFileSync(victim, bytes);
          // A record is intact when all of it is there and none of its bytes changed.
          const intact = written.map((_, k) => ends[k]! <= cut && bytes.subarray(starts[k], ends[k]).equals(original.subarray(starts[k], ends[k])));
          const firstBad = intact.findIndex((ok, k) => !ok && starts[k]! < cut);
          const after = firstBad < 0 ? 0 : intact.slice(firstBad + 1).filter(Boolean).length;
          if (after > 0) {
            // Mid-log damage: every record here was written and synced on its own, so a
            // valid one after the damage proves the damaged one had been acknowledged.
            const err = await open(victim).catch((e: unknown) => e);
            expect(err).toBeInstanceOf(KeyJournalCorruptError);
            expect(err).toMatchObject({ code: 'ECORRUPT', path: victim, offset: starts[firstBad], recordsBefore: firstBad, recordsAfter: after });
            expect(readFileSync(victim).equals(bytes)).toBe(true);
            refused++;
            rmSync(victim);
            return;
          }
          const expected = firstBad < 0 ? intact.filter(Boolean).length : firstBad;
          const k = await open(victim);
          recovered += k.records().length;
          expect(bufs(k.records())).toEqual(bufs(written.slice(0, expected)));
          expect(statSync(victim).size).toBe(expected === 0 ? 0 : ends[expected - 1]);
          // The journal stays usable after recovery.
          expect((await k.append(rec(999))).seq).toBe(expected);
          await k.close();
          rmSync(victim);
        },
      ),
      { numRuns: 200 },
    );
    console.log(`torn-write injection (${_name}): ${runs} iterations, ${recovered} records recovered, ${refused} refused as mid-log damage`);
  });

  it('refuses a journal whose record 2 is damaged, naming file, offset and the valid records after it, and changes nothing', async () => {
    const path = fresh();
    const written = Array.from({ length: 6 }, (_, i) => rec(i, 20 + i));
    const { bytes, starts } = image(written);
    bytes[starts[1]! + HEADER_SIZE + 3] = bytes[starts[1]! + HEADER_SIZE + 3]! ^ 0x40;
    writeFileSync(path, bytes);
    const err = await open(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyJournalCorruptError);
    expect(err).toMatchObject({ name: 'KeyJournalCorruptError', code: 'ECORRUPT', path, offset: starts[1], recordsBefore: 1, recordsAfter: 4 });
    expect((err as KeyJournalCorruptError).damage).toEqual([{ offset: starts[1], length: starts[2]! - starts[1]!, firstLostSeq: 1, lostRecords: 1 }]);
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toContain(`offset ${starts[1]}`);
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith(`${path.split('/').pop()!}.`))).toEqual([]);
  });

  it('salvage keeps every valid record in order, moves the damaged file aside and reports what was lost', async () => {
    const path = fresh();
    const written = Array.from({ length: 6 }, (_, i) => rec(i, 20 + i));
    const { bytes, starts } = image(written);
    bytes[starts[1]! + HEADER_SIZE + 3] = bytes[starts[1]! + HEADER_SIZE + 3]! ^ 0x40;
    bytes[starts[3]!] = bytes[starts[3]!]! ^ 0x01; // a length field too: the damage no longer chains
    writeFileSync(path, bytes);
    const j = await open(path, { salvage: true });
    const kept = [written[0]!, written[2]!, written[4]!, written[5]!];
    expect(bufs(j.records())).toEqual(bufs(kept));
    expect(j.recovery).toMatchObject({ records: 4, truncatedBytes: 0 });
    expect(j.recovery.salvage).toEqual({
      movedTo: `${path}.corrupt-${starts[1]}`,
      keptRecords: 4,
      damage: [
        { offset: starts[1], length: starts[2]! - starts[1]!, firstLostSeq: 1, lostRecords: 1 },
        { offset: starts[3], length: starts[4]! - starts[3]!, firstLostSeq: 2, lostRecords: null },
      ],
    });
    expect(readFileSync(`${path}.corrupt-${starts[1]}`).equals(bytes)).toBe(true);
    expect(existsSync(`${path}.salvage`)).toBe(false);
    expect((await j.append(rec(6))).seq).toBe(4);
    await j.close();
    const k = await open(path);
    expect(k.recovery.salvage).toBeUndefined();
    expect(bufs(k.records())).toEqual(bufs([...kept, rec(6)]));
    await k.close();
  });

  it('salvage of a journal without mid-log damage changes nothing and reports no salvage', async () => {
    const path = fresh();
    writeFileSync(path, Buffer.concat([image([rec(1), rec(2)]).bytes, encodeRecord(rec(3)).subarray(0, 9)]));
    const j = await open(path, { salvage: true });
    expect(j.recovery.salvage).toBeUndefined();
    expect(j.recovery).toMatchObject({ records: 2, truncatedBytes: 9 });
    await j.close();
    expect(readdirSync(dir).some((f) => f.startsWith(`${path.split('/').pop()!}.corrupt`))).toBe(false);
  });

  it('reads a torn commit group (a lost page inside it) as a torn tail, and damage before a later group as corruption', async () => {
    const before = Array.from({ length: 5 }, (_, i) => rec(i, 100));
    const group = Array.from({ length: 40 }, (_, i) => rec(100 + i, 300));
    const later = Array.from({ length: 3 }, (_, i) => rec(200 + i, 50));
    const frame = (rs: Uint8Array[]) => Buffer.concat(rs.map((r, i) => encodeRecord(r, i > 0)));
    const head = Buffer.concat(before.map((r) => encodeRecord(r)));
    const page = 4096 * 2;
    const lostAt = Math.floor((page - head.length - HEADER_SIZE) / (HEADER_SIZE + 300)); // first group record the lost page touches
    const torn = Buffer.concat([head, frame(group)]);
    torn.fill(0, page, page + 4096);
    const path = fresh();
    writeFileSync(path, torn);
    const j = await open(path);
    expect(bufs(j.records())).toEqual(bufs([...before, ...group.slice(0, lostAt)]));
    expect(j.recovery.truncatedBytes).toBeGreaterThan(0);
    await j.close();
    const corrupt = Buffer.concat([torn, frame(later)]);
    const path2 = fresh();
    writeFileSync(path2, corrupt);
    await expect(open(path2)).rejects.toMatchObject({ code: 'ECORRUPT', recordsBefore: before.length + lostAt });
  });

  it('creates a missing directory only when asked', async () => {
    const nested = join(dir, `made-${_name}`, 'deeper', 'x.journal');
    await expect(open(nested)).rejects.toMatchObject({ code: 'ENOENT' });
    const j = await open(nested, { createDirectory: true });
    expect((await j.append(rec(1))).seq).toBe(0);
    await j.close();
    expect(existsSync(nested)).toBe(true);
  });
});

describe('record format', () => {
  it('a flipped continuation flag fails the CRC either way', () => {
    const plain = Buffer.from(encodeRecord(rec(1, 30)));
    const cont = Buffer.from(encodeRecord(rec(1, 30), true));
    expect(decodeJournal(plain).records).toHaveLength(1);
    expect(decodeJournal(cont).records).toHaveLength(1);
    plain[3] = plain[3]! ^ 0x80;
    cont[3] = cont[3]! ^ 0x80;
    expect(decodeJournal(plain).validBytes).toBe(0);
    expect(decodeJournal(cont).validBytes).toBe(0);
  });

  it('the independent decoder reads a zero-filled tail as the end, not as damage', () => {
    const { bytes } = image([rec(1), rec(2)]);
    const s = scanJournal(Buffer.concat([bytes, Buffer.alloc(1 << 20)]));
    expect(s).toMatchObject({ keepBytes: bytes.length, tornBytes: 0, damage: [], recordsAfterDamage: 0 });
    expect(s.records).toHaveLength(2);
  });
});

describe('native and reference journals share one format', () => {
  it('each reads what the other wrote', async () => {
    const path = fresh();
    const a = await KeyJournal.open(path);
    for (let i = 0; i < 10; i++) await a.append(rec(i));
    // One commit group: continuation records, which the reference must read too.
    await Promise.all(Array.from({ length: 10 }, (_, i) => a.append(rec(10 + i))));
    await a.close();
    expect(scanJournal(readFileSync(path))).toMatchObject({ damage: [], tornBytes: 0, keepBytes: statSync(path).size });
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

describe('native commit groups', () => {
  it('a lost page inside the last group written reads as a torn tail; inside an earlier group, as corruption', async () => {
    const path = fresh();
    const j = await KeyJournal.open(path);
    const before = Array.from({ length: 5 }, (_, i) => rec(i, 100));
    for (const r of before) await j.append(r);
    const group = Array.from({ length: 40 }, (_, i) => rec(100 + i, 300));
    await Promise.all(group.map((r) => j.append(r)));
    await j.close();
    const bytes = readFileSync(path);
    const d = decodeJournal(bytes);
    expect(d.records).toHaveLength(45);
    const page = 8192;
    const lostAt = d.offsets.filter((o) => o + HEADER_SIZE + 300 <= page).length; // records wholly before the lost page
    bytes.fill(0, page, page + 4096);
    writeFileSync(path, bytes);
    const k = await KeyJournal.open(path);
    expect(bufs(k.records())).toEqual(bufs([...before, ...group].slice(0, lostAt)));
    await k.append(rec(999, 10));
    await k.close();
    // Now a later group follows the damage: what was lost had been acknowledged.
    const again = readFileSync(path);
    const path2 = fresh();
    writeFileSync(path2, Buffer.concat([bytes, again.subarray(d.offsets[lostAt])]));
    await expect(KeyJournal.open(path2)).rejects.toMatchObject({ code: 'ECORRUPT', offset: d.offsets[lostAt] });
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

describe('native writer thread (writer: \'thread\')', () => {
  const addon = join(import.meta.dirname, '..', '..', 'build', 'Release', 'ptpvts.node');
  /** Runs `body` in a fresh Node process that has the addon as `addon` and a journal path as `path`. */
  const child = (body: string) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', `import { createRequire } from 'node:module'; const addon = createRequire(import.meta.url)(${JSON.stringify(process.env['PTPVTS_NATIVE'] ?? addon)}); const path = ${JSON.stringify(fresh())};\n${body}`], {
      encoding: 'utf8',
      timeout: 20_000,
    });

  it('lets the process exit once the journal is idle, closed or not', () => {
    const open = child(`const j = new addon.KeyJournal(path, { writer: 'thread' }); await j.open(); await j.append(new Uint8Array([1])); console.log('appended');`);
    expect(open.error).toBeUndefined();
    expect({ status: open.status, stdout: open.stdout, stderr: open.stderr }).toEqual({ status: 0, stdout: 'appended\n', stderr: '' });
    const closed = child(`const j = new addon.KeyJournal(path, { writer: 'thread' }); await j.open(); await j.append(new Uint8Array([1])); await j.close(); console.log('closed');`);
    expect({ status: closed.status, stdout: closed.stdout, stderr: closed.stderr }).toEqual({ status: 0, stdout: 'closed\n', stderr: '' });
    // Polling: the idle handle that keeps the loop spinning during a job must not keep it alive after.
    const spin = child(`const j = new addon.KeyJournal(path, { writer: 'thread', poll: 'spin' }); await j.open(); for (let i = 0; i < 50; i++) await j.append(new Uint8Array([i])); console.log('appended');`);
    expect({ status: spin.status, stdout: spin.stdout, stderr: spin.stderr }).toEqual({ status: 0, stdout: 'appended\n', stderr: '' });
  });

  it('keeps the process alive while an append is in flight', () => {
    // Nothing but the pending append holds the event loop: it must still resolve.
    const r = child(`const j = new addon.KeyJournal(path, { writer: 'thread', sync: 'dsync' }); await j.open(); j.append(new Uint8Array(100000)).then((a) => console.log('durable', a.seq));`);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: 'durable 0\n', stderr: '' });
  });

  it('runs many journals, each with its own thread, and reopens after close', async () => {
    const paths = Array.from({ length: 8 }, fresh);
    for (let round = 0; round < 2; round++) {
      const js = await Promise.all(paths.map((p) => KeyJournal.open(p, { native: { writer: 'thread' } })));
      await Promise.all(js.map((j, i) => Promise.all([j.append(rec(i)), j.append(rec(i + 1))])));
      await Promise.all(js.map((j) => j.close()));
    }
    for (const [i, p] of paths.entries()) {
      const j = await KeyJournal.open(p);
      expect(bufs(j.records())).toEqual(bufs([rec(i), rec(i + 1), rec(i), rec(i + 1)]));
      await j.close();
    }
  });

  it('refuses unknown writer and sync options, naming them', () => {
    expect(() => new native.KeyJournal(fresh(), { writer: 'fast' as 'thread' })).toThrow(/options\.writer must be 'threadpool' or 'thread'/);
    expect(() => new native.KeyJournal(fresh(), { sync: 'none' as 'dsync' })).toThrow(/options\.sync must be 'fdatasync' or 'dsync'/);
    expect(() => new native.KeyJournal(fresh(), { poll: 'busy' as 'spin' })).toThrow(/options\.poll must be 'block' or 'spin'/);
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
