import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyedQueue, ShortWriteError, writeAll, writeDurable, type PositionalWriter } from './durable.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ptpvts-durable-'));
  dirs.push(d);
  return d;
}

/** A file in memory whose writes take at most `max` bytes each (0: none). */
function shortWriter(max: number): PositionalWriter & { bytes: Buffer; calls: number } {
  const w = {
    bytes: Buffer.alloc(0),
    calls: 0,
    async write(buffer: Uint8Array, offset: number, length: number, position: number) {
      w.calls++;
      const n = Math.min(length, max);
      const end = Math.max(w.bytes.length, position + n);
      if (end > w.bytes.length) w.bytes = Buffer.concat([w.bytes, Buffer.alloc(end - w.bytes.length)]);
      w.bytes.set(buffer.subarray(offset, offset + n), position);
      return { bytesWritten: n };
    },
  };
  return w;
}

describe('writeAll', () => {
  it('writes again from where a short write stopped', async () => {
    const w = shortWriter(7);
    const data = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    await writeAll(w, data, 3, 'test file');
    expect(w.bytes.subarray(3)).toEqual(data);
    expect(w.calls).toBe(Math.ceil(data.length / 7));
  });

  it('fails with a clear error when a write makes no progress', async () => {
    const err = await writeAll(shortWriter(0), Buffer.from('abc'), 0, 'the state file').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShortWriteError);
    expect(err).toMatchObject({ name: 'ShortWriteError', code: 'ESHORTWRITE', written: 0, wanted: 3 });
    expect((err as Error).message).toContain('the state file');
  });
});

describe('writeDurable', () => {
  it('concurrent replacements of one file all land whole, and leave no temporary file', async () => {
    const dir = tempDir();
    const path = join(dir, 'state.json');
    const values = Array.from({ length: 30 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(1000 * (i % 7)) }));
    await Promise.all(values.map((v) => writeDurable(path, v)));
    expect(values).toContain(readFileSync(path, 'utf8'));
    expect(readdirSync(dir)).toEqual(['state.json']);
  });
});

describe('KeyedQueue', () => {
  it('runs work of one key in call order, one at a time, and other keys alongside', async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    const step = (key: string, i: number, ms: number) => q.run(key, async () => {
      log.push(`${key}${i}+`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`${key}${i}-`);
      if (i === 1) throw new Error('a failed step does not stop the queue');
      return i;
    });
    const r = await Promise.allSettled([step('a', 1, 20), step('a', 2, 1), step('b', 1, 1)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'fulfilled', 'rejected']);
    expect(log.indexOf('a1-')).toBeLessThan(log.indexOf('a2+'));
    expect(log.indexOf('b1+')).toBeLessThan(log.indexOf('a1-'));
  });
});
