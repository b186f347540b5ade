/**
 * The `ptpvts` command as a person at a lab bench uses it, against the embedded emulator:
 * each call is its own lab session, and the next one finds the cartridges where the last
 * one left them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync, fstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, writeSmallLab } from './fixtures/in-process-cli.js';

let dir: string;
let yaml: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-cli-'));
  yaml = writeSmallLab(dir, 'clitest');
  process.exitCode = undefined;
});
afterEach(() => {
  process.exitCode = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const run = runCli;

describe('ptpvts CLI on the embedded emulator', () => {
  it('inventories the library with barcodes and drive count', async () => {
    const r = await run('inventory', '-l', yaml);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/20 slots, 2 drives, 1 import\/export slots/);
    expect(r.out).toMatch(/slot 1\s+0x1000\s+LAB001L8/);
    expect(r.out).toMatch(/drive 1\s+0x0100\s+-/);
  });

  it('inventory --init rescans every element with progress', async () => {
    const r = await run('inventory', '-l', yaml, '--init');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/Scanning elements: done \(24 elements\)/);
  });

  it('moves a cartridge and the next command sees it where it was put', async () => {
    expect((await run('move', '-l', yaml, 'slot 1', 'slot 20')).out).toMatch(/Moved LAB001L8 from slot 1 \(0x1000\) to slot 20 \(0x1013\)/);
    const inv = await run('inventory', '-l', yaml);
    expect(inv.out).toMatch(/slot 20\s+0x1013\s+LAB001L8/);
    expect(inv.out).toMatch(/slot 1\s+0x1000\s+-/);
  });

  it('loads, writes, reads back identical data across sessions, and unloads to the home slot', async () => {
    const data = Buffer.alloc(700_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
    const src = join(dir, 'in.bin');
    writeFileSync(src, data);
    expect((await run('load', '-l', yaml, 'LAB002L8', '-d', '2')).out).toMatch(/Loaded LAB002L8 from slot 2 into drive 2/);
    const w = await run('tape', 'write', '-l', yaml, '-d', '2', '-f', src, '-b', '64KiB');
    expect(w.code, w.err).toBe(0);
    expect(w.out).toMatch(/Wrote 684 KiB in 11 blocks and a filemark; now at block 12/);
    const status = await run('tape', 'status', '-l', yaml, '-d', '2');
    expect(status.out).toMatch(/IBM ULTRIUM-HH8/);
    expect(status.out).toMatch(/Cartridge LAB002L8, writable/);
    const back = join(dir, 'out.bin');
    const r = await run('tape', 'read', '-l', yaml, '-d', '2', '--rewind', '-o', back);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(back).equals(data)).toBe(true);
    expect((await run('unload', '-l', yaml, '-d', '2')).out).toMatch(/Unloaded LAB002L8 from drive 2 to slot 2/);
  });

  it('fills a small cartridge up to early warning with progress', async () => {
    await run('load', '-l', yaml, 'LAB003L8');
    const r = await run('tape', 'fill', '-l', yaml, '-b', '256KiB');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/Filling: done/);
    expect(r.out).toMatch(/before early warning/);
  });

  it('refuses to write a write-protected cartridge with the sense named', async () => {
    await run('load', '-l', yaml, 'LAB007L8');
    const r = await run('tape', 'write', '-l', yaml, '--size', '1KiB');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/DATA PROTECT \/ WRITE PROTECTED/);
  });

  it('media check verifies a cartridge file and reports damage', async () => {
    await run('load', '-l', yaml, 'LAB004L8');
    await run('tape', 'write', '-l', yaml, '--size', '300KiB', '-b', '64KiB');
    await run('unload', '-l', yaml);
    const file = join(dir, 'media', 'LAB004L8.tape');
    const ok = await run('media', 'check', file);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).not.toMatch(/damaged/i);
    const fd = openSync(file, 'r+');
    const size = fstatSync(fd).size;
    writeSync(fd, Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, Math.floor(size / 2));
    closeSync(fd);
    const bad = await run('media', 'check', file);
    expect(bad.out).toMatch(/damage/i);
  });

  it('an injected robot jam fails the next move with HARDWARE ERROR and clears after it', async () => {
    expect((await run('fault', 'inject', '-l', yaml, '-k', 'robot-jam')).out).toMatch(/Injected robot-jam for the next 1 move/);
    const r = await run('move', '-l', yaml, 'slot 1', 'slot 19');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/HARDWARE ERROR/);
    await run('fault', 'clear', '-l', yaml);
    expect((await run('move', '-l', yaml, 'slot 1', 'slot 19')).code).toBe(0);
  });

  it('an injected medium error at a block fails the read of that block', async () => {
    await run('load', '-l', yaml, 'LAB001L8');
    await run('tape', 'write', '-l', yaml, '--size', '200KiB', '-b', '64KiB');
    await run('fault', 'inject', '-l', yaml, '-k', 'medium-error', '--block', '2');
    const r = await run('tape', 'read', '-l', yaml, '--rewind');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/MEDIUM ERROR \/ UNRECOVERED READ ERROR/);
  });

  it('names what was wrong in bad input', async () => {
    expect((await run('move', '-l', yaml, 'slot 99', 'slot 1')).err).toMatch(/there is no storage slot 99 \(this library has 20/);
    expect((await run('move', '-l', yaml, 'slot 1', 'slot 2')).err).toMatch(/MEDIUM DESTINATION ELEMENT FULL/);
    expect((await run('move', '-l', yaml, 'slot 20', 'slot 19')).err).toMatch(/MEDIUM SOURCE ELEMENT EMPTY/);
    expect((await run('tape', 'write', '-l', yaml, '--size', 'lots')).err).toMatch(/"lots" is not a size/);
    expect((await run('load', '-l', yaml, 'NOSUCH01', '-d', '1')).err).toMatch(/neither an element .* nor the barcode/);
    expect((await run('load', '-l', yaml, 'LAB001L8', '-d', '9')).err).toMatch(/there is no drive 9/);
    expect((await run('fault', 'inject', '-l', yaml, '-k', 'gremlins')).code).not.toBe(0);
    writeFileSync(yaml, 'name: x\nstorageSlots: -1\n');
    expect((await run('inventory', '-l', yaml)).err).toMatch(/storageSlots/);
  });

  it('runs the demo end to end: devices, then the claim 1 and claim 7 stories with their timelines', async () => {
    const pictures = join(dir, 'timelines');
    const r = await run('demo', '--timelines', pictures);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/Devices: everything written read back identical/);
    expect(r.out).toMatch(/END-OF-DATA DETECTED/);
    expect(r.out).toMatch(/PtP: both stories ended as the claims say/);
    for (const f of ['claim-1.svg', 'claim-7.svg']) expect(readFileSync(join(pictures, f), 'utf8')).toMatch(/^<svg|<\?xml/);
    expect(r.out).toMatch(/Demo finished\./);
  });
});
