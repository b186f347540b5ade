/**
 * How `state.json` reaches the disk, watched at the fs calls: the new content goes to a
 * temporary file of its own, is fsynced, renamed over `state.json`, and the directory is
 * fsynced, in that order. (test/power-loss/lab-state.power-loss.test.ts cuts the power.)
 */
import type * as fs from 'node:fs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const calls: string[] = [];
const fdPaths = new Map<number, string>();
let watching = false;

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  const note = (s: string): void => void (watching && calls.push(s));
  return {
    ...real,
    openSync: (path: fs.PathLike, ...rest: unknown[]) => {
      const fd = (real.openSync as (...a: unknown[]) => number)(path, ...rest);
      fdPaths.set(fd, String(path));
      return fd;
    },
    fsyncSync: (fd: number) => {
      note(`fsync ${fdPaths.get(fd)}`);
      return real.fsyncSync(fd);
    },
    fdatasyncSync: (fd: number) => {
      note(`fsync ${fdPaths.get(fd)}`);
      return real.fdatasyncSync(fd);
    },
    renameSync: (from: fs.PathLike, to: fs.PathLike) => {
      note(`rename ${String(from)} -> ${String(to)}`);
      return real.renameSync(from, to);
    },
    writeFileSync: (file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
      note(`writeFile ${String(file)}`);
      return (real.writeFileSync as (...a: unknown[]) => void)(file, ...rest);
    },
  };
});

const { readState, writeState } = await import('../../src/cli/lab.js');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-durable-'));
  writeFileSync(join(dir, 'library.yaml'), 'name: x\n');
  calls.length = 0;
});
afterEach(() => {
  watching = false;
  rmSync(dir, { recursive: true, force: true });
});

describe('saving state.json', () => {
  it('writes a temp file of its own, fsyncs it, renames it over state.json, then fsyncs the directory', () => {
    const state = { locations: { A00001L8: 0x1000 }, faults: { robotJams: 1 }, positions: { '1': { barcode: 'A00001L8', block: 3 } } };
    watching = true;
    writeState(join(dir, 'library.yaml'), state);
    watching = false;
    const target = join(dir, 'state.json');
    const rename = calls.findIndex((c) => c.startsWith('rename '));
    expect(rename, calls.join('\n')).toBeGreaterThan(0);
    const m = /^rename (\S+) -> (\S+)$/.exec(calls[rename]!);
    expect(m![2]).toBe(target);
    const tmp = m![1]!;
    expect(tmp).toMatch(/state\.json\.\d+\.[0-9a-f]+\.tmp$/);
    expect(calls.slice(0, rename), 'the temp file is fsynced before the rename').toContain(`fsync ${tmp}`);
    expect(calls.slice(rename + 1), 'the directory is fsynced after the rename').toContain(`fsync ${dir}`);
    expect(calls.some((c) => c === `writeFile ${target}`), 'state.json itself is never written in place').toBe(false);
    expect(readState(join(dir, 'library.yaml'))).toEqual(state);
  });

  it('two saves never share a temporary name', () => {
    watching = true;
    writeState(join(dir, 'library.yaml'), { locations: {}, faults: {} });
    writeState(join(dir, 'library.yaml'), { locations: {}, faults: { robotJams: 2 } });
    watching = false;
    const tmps = calls.filter((c) => c.startsWith('rename ')).map((c) => c.split(' ')[1]);
    expect(new Set(tmps).size).toBe(2);
  });
});
