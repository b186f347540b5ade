/**
 * Short writes: under a file-size limit a write that crosses it lands only partly, with a
 * short count, and the next one fails with EFBIG. A journal must either finish the write
 * or fail the append; it must never acknowledge a record of which only a prefix is on
 * disk. Both journals run in a child process under `ulimit -f`, then the journal is
 * reopened without the limit and every acknowledged record must be there, intact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyJournal } from '../../src/hotpath/key-journal.js';
import { padded } from './short-write-record.js';

const child = join(dirname(fileURLToPath(import.meta.url)), 'short-write-child.ts');
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-short-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The native journal preallocates in 1 MiB steps, so its limit must leave room for those.
// Records are padded so the limit is reached in a few dozen appends.
const cases = [
  ['reference', 4, 40, 1000],
  ['native', 1024, 1000, 20_000],
] as const;

describe.each(cases)('%s journal under a file-size limit of %i KiB', (impl, limitKiB, count, pad) => {
  it('fails the append that hits the limit and never acknowledges a torn record', async () => {
    const path = join(dir, `${impl}.journal`);
    const r = spawnSync('bash', ['-c', `ulimit -f ${limitKiB}; exec "$0" --import tsx "$@"`, process.execPath, child, impl, path, String(count), String(pad)], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const acked = lines.filter((l) => l.startsWith('A ')).map((l) => Number(l.slice(2)));
    expect(acked.length).toBeGreaterThan(0);
    expect(lines.at(-1)).toBe('E EFBIG');
    const j = await KeyJournal.open(path);
    const recs = j.records();
    await j.close();
    expect(recs.length).toBeGreaterThanOrEqual(acked.length);
    for (const seq of acked) expect(Buffer.from(recs[seq]!).equals(Buffer.from(padded(seq, pad)))).toBe(true);
  });
});
