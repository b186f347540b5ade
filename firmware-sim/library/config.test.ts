import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LibraryConfigError, loadLibraryConfig, parseLibraryConfig, type ConfigIssue } from './config.js';

const base = {
  name: 'lib0',
  personality: 'IBM-TS3200',
  timeScale: 0,
  storageSlots: 20,
  importExportSlots: 2,
  drives: { count: 2, personality: 'LTO8' },
};

function issuesOf(input: unknown): ConfigIssue[] {
  try {
    parseLibraryConfig(input, { baseDir: '/tmp/x' });
  } catch (e) {
    expect(e).toBeInstanceOf(LibraryConfigError);
    return [...(e as LibraryConfigError).issues];
  }
  throw new Error('configuration was accepted');
}

function expectIssue(input: unknown, path: string, pattern: RegExp): void {
  const issues = issuesOf(input);
  const hit = issues.find((i) => i.path === path && pattern.test(i.message));
  expect(hit, `wanted ${path}: ${pattern}; got ${JSON.stringify(issues)}`).toBeDefined();
}

describe('library config: normalisation', () => {
  it('loads the shipped example', () => {
    const c = loadLibraryConfig(join(import.meta.dirname, '../../examples/library.yaml'));
    expect(c.drives).toHaveLength(2);
    expect(c.storage).toHaveLength(20);
    expect(c.importExport).toEqual([0x10, 0x11]);
    expect(c.cartridges).toHaveLength(10);
    expect(c.warnings).toEqual([]);
    expect(c.drives.map((d) => d.serial)).toEqual(['1068000101', '1068000102']);
    expect(c.moveHook?.argv[0]).toBe('/bin/sh');
    expect(c.baseDir).toBe(join(import.meta.dirname, '../../examples'));
  });

  it('assigns IBM-style addresses and fills storage slots in order around explicit locations', () => {
    const c = parseLibraryConfig(
      {
        ...base,
        cartridges: [
          { barcode: 'A00001L8' },
          { barcode: 'A00002L8', location: 'slot 1' },
          { barcode: 'A00003L8', location: 'drive 2' },
          { barcode: 'A00004L8', location: 'ie 2' },
          { barcode: 'A00005L8', location: 0x1005 },
          { barcode: 'A00006L8', location: '0x1006' },
        ],
      },
      { baseDir: '/tmp/x' },
    );
    expect(c.storage[0]).toBe(0x1000);
    expect(c.drives.map((d) => d.address)).toEqual([0x100, 0x101]);
    expect(c.cartridges.map((x) => x.address)).toEqual([0x1001, 0x1000, 0x101, 0x11, 0x1005, 0x1006]);
    expect(c.cartridges[0]?.path).toBe('/tmp/x/media/A00001L8.tape');
  });

  it('derives media type and capacity from the label, and parses capacity units', () => {
    const c = parseLibraryConfig({ ...base, cartridges: [{ barcode: 'W00001LY' }, { barcode: 'S00001L8', capacity: '64MiB' }, { barcode: 'T1', mediaType: 'LTO9', capacity: '1.5GB' }] });
    expect(c.cartridges.map((x) => [x.mediaType, x.capacityBytes])).toEqual([
      ['LTO8-WORM', 12e12],
      ['LTO8', 64 * 1024 * 1024],
      ['LTO9', 1.5e9],
    ]);
    expect(c.warnings.map((w) => w.path)).toContain('cartridges[2].barcode');
    expect(c.warnings.find((w) => w.path === 'cartridges[2].mediaType')?.message).toMatch(/no drive of this library can load LTO9/);
  });

  it('accepts explicit slot lists and drive lists with serials', () => {
    const c = parseLibraryConfig({ ...base, storageSlots: [0x1000, 0x1001, 0x1004], drives: [{ personality: 'LTO9', serial: 'X1' }] });
    expect(c.storage).toEqual([0x1000, 0x1001, 0x1004]);
    expect(c.drives).toEqual([{ address: 0x100, personality: 'LTO9', serial: 'X1' }]);
    expect(c.warnings.map((w) => w.path)).toEqual(['storageSlots']);
  });

  it('gives every library distinct default drive serials', () => {
    const a = parseLibraryConfig({ ...base, name: 'a' });
    const b = parseLibraryConfig({ ...base, name: 'b' });
    expect(new Set([...a.drives, ...b.drives].map((d) => d.serial)).size).toBe(4);
  });

  it('reads YAML text and resolves paths against baseDir', () => {
    const c = loadLibraryConfig({ text: 'name: t\npersonality: PTPVTS-LIB\nstorageSlots: 3\nmediaDir: m\n', baseDir: '/srv' });
    expect(c.mediaDir).toBe('/srv/m');
    expect(c.timeScale).toBe(1);
  });

  it('reports YAML syntax errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'libcfg-'));
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'name: [unclosed\n');
    expect(() => loadLibraryConfig(f)).toThrow(/YAML syntax/);
  });
});

describe('library config: each bad field names itself', () => {
  it.each<[string, unknown, string, RegExp]>([
    ['unknown personality', { ...base, personality: 'ACME-9000' }, 'personality', /unknown library personality "ACME-9000"/],
    ['bad name', { ...base, name: 'has space' }, 'name', /letters, digits/],
    ['negative timeScale', { ...base, timeScale: -1 }, 'timeScale', /.+/],
    ['unknown top-level key', { ...base, slotz: 3 }, '', /slotz/],
    ['too many slots', { ...base, personality: 'IBM-TS3100', storageSlots: 24 }, 'storageSlots', /at most 23/],
    ['too many I/E slots', { ...base, personality: 'IBM-TS3100', importExportSlots: 2 }, 'importExportSlots', /at most 1/],
    ['too many drives', { ...base, personality: 'IBM-TS3100', drives: { count: 3, personality: 'LTO8' } }, 'drives', /at most 2/],
    ['bad slot address', { ...base, storageSlots: [0x1000, 'zz'] }, 'storageSlots[1]', /element address/],
    ['slot address collides with a drive', { ...base, storageSlots: [0x1000, 0x100] }, 'storageSlots[1]', /already used by drive 1/],
    ['slot address is the transport', { ...base, storageSlots: [1] }, 'storageSlots[0]', /medium transport/],
    ['serial count mismatch', { ...base, drives: { count: 2, personality: 'LTO8', serials: ['a'] } }, 'drives.serials', /1 serials for 2 drives/],
    ['duplicate drive serial', { ...base, drives: [{ personality: 'LTO8', serial: 'S' }, { personality: 'LTO8', serial: 'S' }] }, 'drives[1].serial', /duplicate drive serial S/],
    ['unknown drive personality', { ...base, drives: { count: 1, personality: 'DLT8000' } }, 'drives.personality', /unknown drive personality "DLT8000".*LTO8/],
    ['unknown drive personality in a list', { ...base, drives: [{ personality: 'ibm-lto8-hh' }, { personality: 'x' }] }, 'drives[1].personality', /unknown drive personality/],
    ['unknown drive key', { ...base, drives: [{ personality: 'LTO8', serail: 'S' }] }, 'drives[0]', /serail/],
    ['duplicate barcode', { ...base, cartridges: [{ barcode: 'A00001L8' }, { barcode: 'A00002L8' }, { barcode: 'A00003L8' }, { barcode: 'A00001L8' }] }, 'cartridges[3].barcode', /duplicate barcode A00001L8 \(first at cartridges\[0\]\)/],
    ['barcode with blank', { ...base, cartridges: [{ barcode: 'A 0001L8' }] }, 'cartridges[0].barcode', /without blanks/],
    ['barcode with wildcard', { ...base, cartridges: [{ barcode: 'A*0001L8' }] }, 'cartridges[0].barcode', /\* or \?/],
    ['barcode too long', { ...base, cartridges: [{ barcode: 'A'.repeat(33) }] }, 'cartridges[0].barcode', /1\.\.32/],
    ['media type contradicts label', { ...base, cartridges: [{ barcode: 'A00001L7', mediaType: 'LTO8' }] }, 'cartridges[0].mediaType', /LTO8 contradicts barcode A00001L7.*LTO7/],
    ['unknown media type', { ...base, cartridges: [{ barcode: 'A00001L8', mediaType: 'DLT4' }] }, 'cartridges[0].mediaType', /.+/],
    ['media type missing for free-form label', { ...base, cartridges: [{ barcode: 'TAPE01' }] }, 'cartridges[0].mediaType', /required/],
    ['bad capacity', { ...base, cartridges: [{ barcode: 'A00001L8', capacity: 'lots' }] }, 'cartridges[0].capacity', /64MiB/],
    ['location out of range', { ...base, cartridges: [{ barcode: 'A00001L8', location: 'slot 21' }] }, 'cartridges[0].location', /20 storage slots/],
    ['location in no element', { ...base, cartridges: [{ barcode: 'A00001L8', location: 0x2000 }] }, 'cartridges[0].location', /no storage/],
    ['location is the transport', { ...base, cartridges: [{ barcode: 'A00001L8', location: 1 }] }, 'cartridges[0].location', /medium transport/],
    ['location garbage', { ...base, cartridges: [{ barcode: 'A00001L8', location: 'shelf 3' }] }, 'cartridges[0].location', /slot N/],
    ['two cartridges in one place', { ...base, cartridges: [{ barcode: 'A00001L8', location: 'drive 1' }, { barcode: 'A00002L8', location: 'drive 1' }] }, 'cartridges[1].location', /already holds A00001L8/],
    ['bad write-protect', { ...base, cartridges: [{ barcode: 'A00001L8', writeProtected: 'yes' }] }, 'cartridges[0].writeProtected', /.+/],
    ['bad move hook', { ...base, robot: { moveHook: { command: 'x', timeoutSeconds: 0 } } }, 'robot.moveHook.timeoutSeconds', /.+/],
  ])('%s', (_what, input, path, pattern) => expectIssue(input, path, pattern));

  it('refuses more cartridges than places', () => {
    const cartridges = Array.from({ length: 25 }, (_, i) => ({ barcode: `A${String(i).padStart(5, '0')}L8` }));
    expectIssue({ ...base, cartridges }, 'cartridges', /25 cartridges but only 24 places/);
  });

  it('reports every problem at once, and the message lists them with their paths', () => {
    try {
      parseLibraryConfig({ ...base, timeScale: 'fast', cartridges: [{ barcode: 'A00001L8' }, { barcode: 'A00001L8' }] }, { sourceName: 'lib.yaml' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(LibraryConfigError);
      // Schema errors stop before cross-checks: the type error is what is reported.
      expect((e as Error).message).toMatch(/^lib\.yaml: invalid library configuration:\n {2}timeScale: /);
    }
    const issues = issuesOf({ ...base, storageSlots: 2, cartridges: [{ barcode: 'A00001L7', mediaType: 'LTO8' }, { barcode: 'A00001L7' }, { barcode: 'B1L8', location: 'ie 3' }] });
    expect(issues.map((i) => i.path).sort()).toEqual(['cartridges[0].mediaType', 'cartridges[1].barcode', 'cartridges[2].location']);
  });
});
