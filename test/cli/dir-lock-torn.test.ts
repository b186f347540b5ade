/**
 * A power cut must not leave a directory or lab lock that keeps the next start out: an empty
 * or torn lock file is stale at once, and the lock is written so that none is ever left torn.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DIRECTORY_LOCK_NAME, lockDirectory } from '../../src/cli/dir-lock.js';
import { takeLock } from '../../src/cli/lab.js';

/** The order of the lock's file system calls, to check the content is durable before the lock file appears. */
const calls: string[] = [];
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  const fdNames = new Map<number, string>();
  return {
    ...real,
    openSync: (p: fs.PathLike, ...rest: unknown[]) => {
      const fd = (real.openSync as (...a: unknown[]) => number)(p, ...rest);
      fdNames.set(fd, String(p));
      calls.push(`open ${String(p)}`);
      return fd;
    },
    writeSync: (fd: number, ...rest: unknown[]) => {
      calls.push(`write ${fdNames.get(fd) ?? fd}`);
      return (real.writeSync as (...a: unknown[]) => number)(fd, ...rest);
    },
    fsyncSync: (fd: number) => {
      calls.push(`fsync ${fdNames.get(fd) ?? fd}`);
      real.fsyncSync(fd);
    },
    linkSync: (a: fs.PathLike, b: fs.PathLike) => {
      calls.push(`link ${String(a)} ${String(b)}`);
      real.linkSync(a, b);
    },
  };
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-torn-lock-'));
  calls.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('a lock file a power cut left torn', () => {
  it('an empty directory lock is taken over at once, not refused for 5 s', async () => {
    const file = join(dir, DIRECTORY_LOCK_NAME);
    writeFileSync(file, '');
    const held = await lockDirectory(dir, "VTS A's state directory");
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid });
    held.release();
    expect(existsSync(file)).toBe(false);
  });

  it('an empty lab lock is taken over at once', async () => {
    const file = join(dir, 'lab.lock');
    writeFileSync(file, '');
    const held = await takeLock(file, { timeoutMs: 0 });
    expect(held.holder.pid).toBe(process.pid);
    held.release();
  });

  it('a torn lock naming another boot is taken over at once; a torn one of this boot still waits out its age', async () => {
    const file = join(dir, DIRECTORY_LOCK_NAME);
    writeFileSync(file, '{"pid":1234,"host":"h","boot":"00000000-not-this-boot","comm');
    (await lockDirectory(dir, 'a directory')).release();
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    writeFileSync(file, `{"pid":1234,"host":"h","boot":"${boot}","comm`);
    await expect(lockDirectory(dir, 'a directory')).rejects.toMatchObject({ code: 'EDIRLOCKED' });
  });

  it('the lock content is written and fsynced under another name before the lock file appears, and nothing is left beside it', async () => {
    const file = join(dir, DIRECTORY_LOCK_NAME);
    const held = await lockDirectory(dir, 'a directory');
    const link = calls.findIndex((c) => c.startsWith('link ') && c.endsWith(` ${file}`));
    expect(link).toBeGreaterThan(0);
    const tmp = calls[link]!.split(' ')[1]!;
    expect(tmp).not.toBe(file);
    const lockOps = calls.slice(0, link).filter((c) => c.endsWith(` ${tmp}`) || c.endsWith(` ${file}`));
    expect(lockOps.map((c) => c.split(' ')[0])).toEqual(['open', 'write', 'fsync']);
    expect(calls.some((c) => c === `open ${file}` || c === `write ${file}`)).toBe(false);
    expect(readdirSync(dir)).toEqual([DIRECTORY_LOCK_NAME]);
    held.release();
  });

  it('a leftover temporary of a lock creation whose process is gone is removed; a live holder keeps the lock', async () => {
    const file = join(dir, 'lab.lock');
    writeFileSync(`${file}.999999.0badf00d.new`, '{"pid":999999');
    const held = await takeLock(file, { timeoutMs: 0 });
    expect(readdirSync(dir)).toEqual(['lab.lock']);
    await expect(takeLock(file, { timeoutMs: 0, command: 'second' })).rejects.toMatchObject({ name: 'LabLockedError' });
    held.release();
  });
});
