/**
 * No silent overwrites: `tape write` and `tape fill` append at end of data wherever the tape
 * was left, and writing at the current position (`--here`) with data after it is refused
 * unless `--overwrite` is given; a refusal leaves the tape and its data as they were. The
 * directories `demo --keep` and `scenario run --keep` fill must be new or empty.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { patternData } from '../../src/cli/tape-io.js';
import { runCli as run, writeSmallLab } from './fixtures/in-process-cli.js';

let dir: string;
let yaml: string;
let files: string[];

/** The sha256 of file `n` read back from the tape (rewinding first), or the read's error. */
async function readBack(n: number): Promise<Buffer> {
  const out = join(dir, `back${n}.bin`);
  const r = await run('tape', 'read', '-l', yaml, '--file-number', String(n), '-o', out);
  expect(r.code, r.err).toBe(0);
  return readFileSync(out);
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-overwrite-'));
  yaml = writeSmallLab(dir, 'overwrite');
  files = [patternData(100_000, 1), patternData(50_000, 2)].map((d, i) => {
    const f = join(dir, `f${i}.bin`);
    writeFileSync(f, d);
    return f;
  });
  expect((await run('load', '-l', yaml, 'LAB001L8')).code).toBe(0);
  for (const f of files) expect((await run('tape', 'write', '-l', yaml, '-f', f, '-b', '64KiB')).code).toBe(0);
  // Back to the start of file 1: data (file 1) follows the position.
  expect((await run('tape', 'read', '-l', yaml, '--rewind')).code).toBe(0);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('tape write and fill never overwrite data unless told to', () => {
  it('tape write --here where data follows is refused, naming --overwrite, and changes nothing', async () => {
    const before = (await run('tape', 'status', '-l', yaml)).out;
    expect(before).toMatch(/Position: block 3, file 1/);
    const r = await run('tape', 'write', '-l', yaml, '--here', '--size', '1KiB');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/drive 1 is at block 3 \(file 1\) and the tape holds data up to block 5: writing here would erase the 2 blocks and filemarks after it\. Add --overwrite/);
    expect(r.out).toBe('');
    // The tape is where it was, and file 1 is still there.
    expect((await run('tape', 'status', '-l', yaml)).out).toMatch(/Position: block 3, file 1/);
    expect((await readBack(0)).equals(readFileSync(files[0]!))).toBe(true);
    expect((await readBack(1)).equals(readFileSync(files[1]!))).toBe(true);
  });

  it('tape write --here --overwrite replaces what follows; --here at end of data needs no --overwrite', async () => {
    const r = await run('tape', 'write', '-l', yaml, '--here', '--overwrite', '--size', '1KiB');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/Wrote 1\.0 KiB in 1 blocks and a filemark; now at block 5\./);
    expect((await readBack(0)).equals(readFileSync(files[0]!))).toBe(true);
    expect((await readBack(1)).length).toBe(1024);
    // Now at end of data (after reading the last file and its filemark): --here appends without asking.
    const at = await run('tape', 'write', '-l', yaml, '--here', '--size', '2KiB');
    expect(at.code, at.err).toBe(0);
    expect((await readBack(2)).length).toBe(2048);
  });

  it('--overwrite without --here is a usage error', async () => {
    const r = await run('tape', 'write', '-l', yaml, '--overwrite', '--size', '1KiB');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--overwrite goes with --here/);
    const f = await run('tape', 'fill', '-l', yaml, '--overwrite');
    expect(f.code).toBe(1);
    expect(f.err).toMatch(/--overwrite goes with --here/);
  });

  it('tape fill appends at end of data: files already on the tape stay', async () => {
    const r = await run('tape', 'fill', '-l', yaml, '-b', '256KiB');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/before early warning/);
    expect((await readBack(0)).equals(readFileSync(files[0]!))).toBe(true);
    expect((await readBack(1)).equals(readFileSync(files[1]!))).toBe(true);
  });

  it('tape fill --here where data follows is refused unless --overwrite', async () => {
    const r = await run('tape', 'fill', '-l', yaml, '--here');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/writing here would erase .* Add --overwrite/);
    expect((await readBack(1)).equals(readFileSync(files[1]!))).toBe(true);
    expect((await run('tape', 'read', '-l', yaml, '--rewind')).code).toBe(0);
    const o = await run('tape', 'fill', '-l', yaml, '--here', '--overwrite', '-b', '256KiB');
    expect(o.code, o.err).toBe(0);
    expect((await readBack(0)).equals(readFileSync(files[0]!))).toBe(true);
    expect((await readBack(1)).equals(readFileSync(files[1]!))).toBe(false);
  });
});

describe('--keep DIR of demo and scenario run', () => {
  it('refuses a directory that holds files (a lab there would be replaced), unless --overwrite', async () => {
    const before = readFileSync(yaml, 'utf8');
    const r = await run('demo', '--keep', dir, '--devices-only');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`--keep ${dir} is not empty (`);
    expect(r.err).toMatch(/library\.yaml.*\): the demo would replace a library there and write over its cartridges\. Name a new or empty directory, or add --overwrite$/);
    expect(r.out).toBe('');
    expect(readFileSync(yaml, 'utf8')).toBe(before);
    expect((await readBack(1)).equals(readFileSync(files[1]!))).toBe(true);
    expect((await run('demo', '--overwrite')).err).toMatch(/--overwrite goes with --keep DIR/);
    writeFileSync(join(dir, 'a-file'), 'x');
    expect((await run('demo', '--keep', join(dir, 'a-file'))).err).toMatch(/is a file, not a directory/);
  });

  it('scenario run --keep refuses a directory that holds files: an earlier run there would change the outcome', async () => {
    const before = readFileSync(yaml, 'utf8');
    const r = await run('scenario', 'run', 'claim-1', '--keep', dir, '--svg', join(dir, 'c1.svg'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`--keep ${dir} is not empty (`);
    expect(r.err).toMatch(/the run would start from the journals and VTS directories there and write over them\. Name a new or empty directory$/);
    expect(readFileSync(yaml, 'utf8')).toBe(before);
  });
});
