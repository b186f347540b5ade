/** CRC-32C from the addon: the check value, incremental use, and every length around the interleaved lanes; AES-256-GCM sealing; starting writeback of a file range. */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c, gcmSeal, gcmSeal2, native } from './native.js';

function reference(b: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  it('gives the CRC-32C check value for "123456789"', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('matches a bitwise reference at every length around the three-lane blocks', () => {
    const data = Uint8Array.from({ length: 3 * 4096 * 2 + 64 }, (_, i) => (i * 131 + 7) & 0xff);
    for (const n of [0, 1, 7, 8, 9, 4095, 4096, 12287, 12288, 12289, 12295, 24576, 24583, data.length]) {
      expect(crc32c(data.subarray(0, n)), `length ${n}`).toBe(reference(data.subarray(0, n)));
    }
  });

  it('continues from a previous result exactly as over the whole buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40_000 }), fc.nat(), (b, cut) => {
        const at = b.length === 0 ? 0 : cut % (b.length + 1);
        expect(crc32c(b.subarray(at), crc32c(b.subarray(0, at)))).toBe(reference(b));
      }),
      { numRuns: 60 },
    );
  });
});

describe('gcmSeal', () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
  const nonce = Uint8Array.from({ length: 12 }, (_, i) => 200 - i);

  it('seals as node:crypto does, into the buffer given or in place, at any length and AAD', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), fc.uint8Array({ maxLength: 40 }), (plain, aad) => {
        const c = createCipheriv('aes-256-gcm', key, nonce);
        c.setAAD(aad);
        const want = Buffer.concat([c.update(plain), c.final()]);
        const out = new Uint8Array(plain.length + 3).fill(0xee);
        const tag = new Uint8Array(16);
        gcmSeal(key, nonce, aad, plain, out.subarray(0, plain.length), tag);
        expect(Buffer.from(out.subarray(0, plain.length)).equals(want)).toBe(true);
        expect([...out.subarray(plain.length)]).toEqual([0xee, 0xee, 0xee]);
        expect(Buffer.from(tag).equals(c.getAuthTag())).toBe(true);
        const inPlace = Uint8Array.from(plain);
        gcmSeal(key, nonce, aad, inPlace, inPlace, tag);
        expect(Buffer.from(inPlace).equals(want)).toBe(true);
        const d = createDecipheriv('aes-256-gcm', key, nonce);
        d.setAAD(aad);
        d.setAuthTag(tag);
        expect(Buffer.concat([d.update(inPlace), d.final()]).equals(Buffer.from(plain))).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('gcmSeal2 seals two parts as two gcmSeal calls do', () => {
    const plain = Uint8Array.from({ length: 300_001 }, (_, i) => (i * 31 + 5) & 0xff);
    const aad = Uint8Array.of(1, 2, 3);
    const n1 = Uint8Array.from(nonce).fill(9, 8);
    const want = new Uint8Array(plain.length);
    const wantTags = new Uint8Array(32);
    gcmSeal(key, nonce, aad, plain.subarray(0, 150_000), want.subarray(0, 150_000), wantTags.subarray(0, 16));
    gcmSeal(key, n1, aad, plain.subarray(150_000), want.subarray(150_000), wantTags.subarray(16));
    for (let round = 0; round < 20; round++) {
      const out = new Uint8Array(plain.length);
      const tags = new Uint8Array(32);
      gcmSeal2(key, nonce, n1, aad, plain.subarray(0, 150_000), out.subarray(0, 150_000), tags.subarray(0, 16), plain.subarray(150_000), out.subarray(150_000), tags.subarray(16));
      expect(Buffer.from(out).equals(Buffer.from(want))).toBe(true);
      expect([...tags]).toEqual([...wantTags]);
    }
    const b = new Uint8Array(64);
    const t = new Uint8Array(16);
    expect(() => gcmSeal2(key, nonce, n1, aad, b.subarray(0, 32), b.subarray(0, 32), t, b.subarray(32), b.subarray(16, 48), t)).toThrow(/overlap/u);
  });

  it('refuses wrong lengths and a partial overlap', () => {
    const b = new Uint8Array(64);
    const tag = new Uint8Array(16);
    expect(() => gcmSeal(key.subarray(0, 16), nonce, b, b, b, tag)).toThrow(/key must be 32 bytes/u);
    expect(() => gcmSeal(key, nonce.subarray(0, 8), b, b, b, tag)).toThrow(/nonce must be 12 bytes/u);
    expect(() => gcmSeal(key, nonce, b, b, b, tag.subarray(0, 8))).toThrow(/tag must be 16 bytes/u);
    expect(() => gcmSeal(key, nonce, b, b, b.subarray(0, 10), tag)).toThrow(/out is shorter than plain/u);
    expect(() => gcmSeal(key, nonce, b, b.subarray(0, 32), b.subarray(8, 40), tag)).toThrow(/overlaps/u);
  });
});

describe('startWriteback', () => {
  const start = (fd: number, offset: number, length: number): Promise<Error | null> => new Promise((r) => native.startWriteback(fd, offset, length, r));

  it('starts the writeback of a range on a read-only descriptor and leaves the data as it was; reports a bad descriptor by its code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ptpvts-writeback-'));
    try {
      const path = join(dir, 'f');
      const w = openSync(path, 'w');
      const data = Uint8Array.from({ length: 3 << 20 }, (_, i) => (i * 7) & 0xff);
      writeSync(w, data);
      const r = openSync(path, 'r');
      expect(await start(r, 1 << 20, 1 << 20)).toBeNull();
      closeSync(r);
      closeSync(w);
      expect(readFileSync(path).equals(data)).toBe(true);
      expect(await start(r, 0, 1)).toMatchObject({ code: 'EBADF', syscall: 'sync_file_range' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a worker thread terminated with ranges in flight ends alone: the process goes on', () => {
    // Each worker keeps four ranges in flight on its own file and is terminated at a random
    // moment; a completion that tried to call into the dying worker used to abort the process.
    const addon = process.env['PTPVTS_NATIVE'] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'build', 'Release', 'ptpvts.node');
    const dir = mkdtempSync(join(tmpdir(), 'ptpvts-writeback-worker-'));
    const script = `
      const { Worker } = require('node:worker_threads');
      const body = \`
        const { parentPort, workerData } = require('node:worker_threads');
        const a = require(workerData.addon);
        const fs = require('node:fs');
        const fd = fs.openSync(workerData.file, 'w+');
        const buf = Buffer.alloc(1 << 20, 7);
        const go = () => { fs.writeSync(fd, buf, 0, buf.length, 0); a.startWriteback(fd, 0, buf.length, go); };
        for (let i = 0; i < 4; i++) go();
        parentPort.postMessage('up');
      \`;
      (async () => {
        for (let i = 0; i < 60; i++) {
          const w = new Worker(body, { eval: true, workerData: { addon: ${JSON.stringify(addon)}, file: ${JSON.stringify(join(dir, 'f'))} + i } });
          await new Promise((r) => w.once('message', r));
          await new Promise((r) => setTimeout(r, Math.random() * 4));
          await w.terminate();
        }
        console.log('survived');
      })();`;
    try {
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
      expect({ status: r.status, signal: r.signal, stdout: r.stdout.trim(), stderr: r.stderr.slice(0, 400) }).toEqual({ status: 0, signal: null, stdout: 'survived', stderr: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad arguments with an error naming the argument', () => {
    const cb = (): void => undefined;
    expect(() => native.startWriteback(-1, 0, 1, cb)).toThrow(/fd must be a non-negative integer/);
    expect(() => native.startWriteback(3, 1.5, 1, cb)).toThrow(/offset must be a non-negative integer/);
    expect(() => native.startWriteback(3, 0, Number.NaN, cb)).toThrow(/length must be a non-negative integer/);
    expect(() => (native.startWriteback as (...a: unknown[]) => void)(3, 0, 1)).toThrow(/callback must be a function/);
    expect(() => (native.startWriteback as (...a: unknown[]) => void)('3', 0, 1, cb)).toThrow(/fd must be a number/);
  });
});
