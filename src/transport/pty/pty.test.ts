import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, readdirSync } from 'node:fs';
import { Socket } from 'node:net';
import { native } from '../../native.js';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { openPty } from './pty.js';
import type { PtyPair } from './pty.js';

const opened: PtyPair[] = [];
const handles: FileHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close().catch(() => undefined);
  for (const p of opened.splice(0)) await p.close();
});

function pair(): PtyPair {
  const p = openPty();
  opened.push(p);
  return p;
}

async function openSlave(path: string): Promise<FileHandle> {
  const h = await open(path, 'r+');
  handles.push(h);
  return h;
}

/** Reads from the slave until `n` bytes have arrived. */
async function readSlave(h: FileHandle, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  while (got < n) {
    const buf = Buffer.alloc(n - got);
    const { bytesRead } = await h.read(buf, 0, buf.length, null);
    chunks.push(buf.subarray(0, bytesRead));
    got += bytesRead;
  }
  return Buffer.concat(chunks);
}

function readMaster(p: PtyPair, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        p.master.off('data', onData);
        p.master.pause();
        resolve(Buffer.concat(chunks));
      }
    };
    p.master.on('data', onData);
    p.master.once('error', reject);
    p.master.resume();
  });
}

const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe('openPty', () => {
  it('gives a /dev/pts slave path', () => {
    expect(pair().slavePath).toMatch(/^\/dev\/pts\/\d+$/);
  });

  it('puts the slave in raw mode', () => {
    const settings = execFileSync('stty', ['-F', pair().slavePath, '-a'], { encoding: 'utf8' });
    for (const flag of ['-icanon', '-echo', '-isig', '-icrnl', '-opost']) expect(settings.split(/\s+/)).toContain(flag);
  });

  it('delivers bytes written to the master at the slave, unchanged', async () => {
    const p = pair();
    const slave = await openSlave(p.slavePath);
    p.master.write(allBytes);
    expect(await readSlave(slave, 256)).toEqual(allBytes);
  });

  it('delivers bytes written to the slave at the master, unchanged', async () => {
    const p = pair();
    const slave = await openSlave(p.slavePath);
    const arriving = readMaster(p, 256 + 6);
    await slave.write(allBytes);
    await slave.write(Buffer.from('ok\r\n\x03\x04'));
    expect(await arriving).toEqual(Buffer.concat([allBytes, Buffer.from('ok\r\n\x03\x04')]));
  });

  it('survives a client closing and reopening the slave', async () => {
    const p = pair();
    const first = await openSlave(p.slavePath);
    await first.close();
    const second = await openSlave(p.slavePath);
    const arriving = readMaster(p, 3);
    await second.write(Buffer.from('abc'));
    expect((await arriving).toString()).toBe('abc');
  });

  it('needs a tty handle: net.Socket refuses a pty master', () => {
    const raw = native.openPty();
    try {
      expect(() => new Socket({ fd: raw.masterFd })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_FD_TYPE' }));
    } finally {
      closeSync(raw.masterFd);
      closeSync(raw.slaveFd);
    }
  });

  it('closes both descriptors cleanly, idempotently', async () => {
    const before = readdirSync('/proc/self/fd').length;
    const p = openPty();
    expect(readdirSync('/proc/self/fd').length).toBe(before + 2);
    await p.close();
    expect(readdirSync('/proc/self/fd').length).toBe(before);
    await p.close();
    expect(p.master.destroyed).toBe(true);
    await expect(open(p.slavePath, 'r+')).rejects.toMatchObject({ code: expect.stringMatching(/ENOENT|EIO/) });
  });
});
