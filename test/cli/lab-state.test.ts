/**
 * The embedded lab's `state.json`: a bad one is refused with the file and the field named,
 * saves leave no temporary files behind, and each drive's tape stays where the last
 * command left it (`tape write` appends).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { patternData } from '../../src/cli/tape-io.js';
import { openEmbeddedLab } from '../../src/cli/lab.js';
import * as Cdb from '../../src/scsi/cdb.js';
import { elementsOf, parseElementStatus } from '../../src/scsi/parse-element-status.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import { MemoryPort } from '../../firmware-sim/front/memory-port.js';
import { runCli, writeSmallLab } from './fixtures/in-process-cli.js';

let dir: string;
let yaml: string;
let state: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-state-'));
  state = join(dir, 'state.json');
  yaml = writeSmallLab(dir, 'statetest');
  process.exitCode = undefined;
});
afterEach(() => {
  process.exitCode = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const run = runCli;

const good = { locations: { LAB001L8: 0x1000 }, faults: {} };

describe('a bad state.json is refused naming the file and the field', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['a location that is not a number', { ...good, locations: { LAB001L8: '0xbanana' } }, /locations\.LAB001L8: .*expected number.*found "0xbanana"/],
    ['a location that is no element of the library', { ...good, locations: { LAB001L8: 5 } }, /locations\.LAB001L8: 0x0005 is not a slot, import\/export element or drive of library statetest/],
    ['two cartridges in one slot', { ...good, locations: { LAB001L8: 0x1001 } }, /\(the YAML's place for LAB002L8\): 0x1001 is also where LAB001L8 is/],
    ['a fault on a drive the library lacks', { ...good, faults: { hungDrives: [9] } }, /faults\.hungDrives\[0\]: there is no drive 9 \(library statetest has 2\)/],
    ['a medium error list that is not a list', { ...good, faults: { mediumErrors: { '1': 7 } } }, /faults\.mediumErrors\.1: .*expected array/],
    ['an unknown field (a typo)', { ...good, fualts: {} }, /\(top level\): .*fualts/],
    ['no locations at all', { faults: {} }, /locations: .*expected record/],
    ['a position with a negative block', { ...good, positions: { '1': { barcode: 'LAB001L8', block: -1 } } }, /positions\.1\.block: /],
  ];
  it.each(cases)('%s', async (_what, doc, field) => {
    writeFileSync(state, JSON.stringify(doc));
    const r = await run('inventory', '-l', yaml);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${state}: `);
    expect(r.err).toMatch(field);
    expect(r.err).toMatch(/remove the file to start the lab from its YAML again/);
  });

  it('an empty or torn file', async () => {
    writeFileSync(state, '');
    expect((await run('inventory', '-l', yaml)).err).toContain(`${state}: (file): the file is empty`);
    writeFileSync(state, '{"locations": {"LAB0');
    expect((await run('inventory', '-l', yaml)).err).toMatch(new RegExp(`${state.replace(/[.]/g, '\\.')}: \\(file\\): not valid JSON`));
  });

  it('a fault injected on a drive the library lacks is refused and the file is left as it was', async () => {
    expect((await run('move', '-l', yaml, 'slot 1', 'slot 20')).code).toBe(0);
    const before = readFileSync(state, 'utf8');
    const r = await run('fault', 'inject', '-l', yaml, '-k', 'drive-hang', '-d', '9');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/there is no drive 9 \(library statetest has 2\) \(faults\.hungDrives\[0\]\); .*state\.json is left as it was/);
    expect(readFileSync(state, 'utf8')).toBe(before);
  });
});

describe('saving the state', () => {
  it('leaves no temporary file, and removes those a cut-short save left', async () => {
    writeFileSync(join(dir, 'state.json.4242.0a1b2c3d4e5f.tmp'), '{"locations": {"LAB0');
    writeFileSync(join(dir, 'state.json.tmp'), '');
    expect((await run('move', '-l', yaml, 'slot 1', 'slot 20')).code).toBe(0);
    expect(readdirSync(dir).filter((n) => n.startsWith('state.json'))).toEqual(['state.json']);
    expect(JSON.parse(readFileSync(state, 'utf8')).locations.LAB001L8).toBe(0x1013);
    expect((await run('inventory', '-l', yaml)).out).toMatch(/slot 20\s+0x1013\s+LAB001L8/);
  });
});

describe('injected faults', () => {
  it('a robot jam for one move fails one move, not every command after it', async () => {
    expect((await run('fault', 'inject', '-l', yaml, '-k', 'robot-jam', '--moves', '2')).code).toBe(0);
    expect((await run('move', '-l', yaml, 'slot 1', 'slot 19')).err).toMatch(/HARDWARE ERROR/);
    expect((await run('move', '-l', yaml, 'slot 1', 'slot 19')).err).toMatch(/HARDWARE ERROR/);
    const r = await run('move', '-l', yaml, 'slot 1', 'slot 19');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(readFileSync(state, 'utf8')).faults).toEqual({});
  });
});

describe('drive positions are kept between commands', () => {
  it('tape write appends at end of data; each file reads back from its file number', async () => {
    expect((await run('load', '-l', yaml, 'LAB002L8')).code).toBe(0);
    const files = [patternData(150_000, 1), patternData(70_000, 2), patternData(10, 3)].map((d, i) => {
      const f = join(dir, `f${i}.bin`);
      writeFileSync(f, d);
      return f;
    });
    expect((await run('tape', 'write', '-l', yaml, '-f', files[0]!, '-b', '64KiB')).out).toMatch(/3 blocks and a filemark; now at block 4\./);
    expect((await run('tape', 'write', '-l', yaml, '-f', files[1]!, '-b', '64KiB')).out).toMatch(/2 blocks and a filemark; now at block 7\./);
    // Read from the start: the tape is left after file 0, and a write still appends.
    expect((await run('tape', 'read', '-l', yaml, '--rewind')).out).toMatch(/Read [\d.]+ KiB in 3 blocks and a filemark/);
    expect((await run('tape', 'status', '-l', yaml)).out).toMatch(/Position: block 4, file 1/);
    expect((await run('tape', 'write', '-l', yaml, '-f', files[2]!)).out).toMatch(/now at block 9\./);
    for (const [n, f] of files.entries()) {
      const back = join(dir, `back${n}.bin`);
      const r = await run('tape', 'read', '-l', yaml, '--file-number', String(n), '-o', back);
      expect(r.code, r.err).toBe(0);
      expect(readFileSync(back).equals(readFileSync(f))).toBe(true);
    }
    // --here --overwrite writes where the tape is, as a drive does (test/cli/tape-overwrite.test.ts has the refusals).
    expect((await run('tape', 'read', '-l', yaml, '--rewind')).code).toBe(0);
    expect((await run('tape', 'write', '-l', yaml, '--here', '--overwrite', '--size', '1KiB')).out).toMatch(/now at block 6\./);
    expect((await run('tape', 'read', '-l', yaml, '--file-number', '2')).out).toMatch(/Read 0 B in 0 blocks, up to end of data/);
    // The position goes with the cartridge: after unload and load it is at BOP.
    await run('unload', '-l', yaml);
    await run('load', '-l', yaml, 'LAB002L8');
    expect((await run('tape', 'status', '-l', yaml)).out).toMatch(/Position: block 0, file 0, at beginning of partition/);
    expect(existsSync(join(dir, 'lab.lock'))).toBe(false);
  });
});

describe('volume tags a host sent are kept with the lab', () => {
  async function changerPort(lab: Awaited<ReturnType<typeof openEmbeddedLab>>): Promise<MemoryPort> {
    const port = new MemoryPort(lab.emulated!.library.luns().get(0)!);
    await port.execute(Cdb.requestSense()); // the power-on unit attention
    return port;
  }
  async function alternateAt(port: MemoryPort, address: number): Promise<string | undefined> {
    const r = await port.execute(Cdb.readElementStatus({ volTag: true }));
    expect(r.status).toBe(ScsiStatus.GOOD);
    return elementsOf(parseElementStatus(r.data)).find((e) => e.address === address)?.alternateVolumeTag?.identifier;
  }

  it('an alternate tag asserted with SEND VOLUME TAG is there after the lab is closed and opened again, and a bad saved tag is named', async () => {
    let lab = await openEmbeddedLab(yaml);
    let port = await changerPort(lab);
    const sent = await port.execute(Cdb.sendVolumeTag({ elementAddress: 0x1000, action: Cdb.SendVolumeTagAction.assertAlternate, template: 'ALT001', minSequence: 7 }));
    expect(sent.status).toBe(ScsiStatus.GOOD);
    expect(await alternateAt(port, 0x1000)).toBe('ALT001');
    await lab.close();

    const saved = JSON.parse(readFileSync(state, 'utf8')) as { volumeTags?: Record<string, unknown> };
    expect(saved.volumeTags).toEqual({ LAB001L8: { alternate: { identifier: 'ALT001', sequence: 7 } } });
    lab = await openEmbeddedLab(yaml);
    port = await changerPort(lab);
    expect(await alternateAt(port, 0x1000)).toBe('ALT001');
    await lab.close();

    writeFileSync(state, JSON.stringify({ ...saved, volumeTags: { LAB001L8: { alternate: { identifier: 'HAS BLANK', sequence: 0 } } } }));
    const r = await run('inventory', '-l', yaml);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/volumeTags\.LAB001L8\.alternate\.identifier: /);
  });
});
