import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool.js';
import { PduFramer } from './pdu.js';

describe('BufferPool', () => {
  it('hands a given-back buffer out again for the same size, and only then', () => {
    const pool = new BufferPool({ minSize: 1024 });
    const a = pool.take(4096);
    expect(a.length).toBe(4096);
    pool.give(a.subarray(100, 200));
    const b = pool.take(4096);
    expect(b.buffer).toBe(a.buffer);
    const c = pool.take(4096);
    expect(c.buffer).not.toBe(a.buffer);
    expect(pool.take(8192).buffer).not.toBe(c.buffer);
    expect({ made: pool.made, reused: pool.reused }).toEqual({ made: 3, reused: 1 });
  });

  it('ignores memory it did not lend, a second give, and small requests', () => {
    const pool = new BufferPool({ minSize: 1024 });
    const a = pool.take(2048);
    pool.give(a);
    pool.give(a);
    pool.give(Buffer.alloc(2048));
    const x = pool.take(2048);
    const y = pool.take(2048);
    expect(x.buffer).toBe(a.buffer);
    expect(y.buffer).not.toBe(a.buffer);
    const small = pool.take(100);
    pool.give(small);
    expect(pool.owns(small)).toBe(false);
    expect(pool.made).toBe(2);
  });

  it('keeps no more free memory than allowed', () => {
    const pool = new BufferPool({ minSize: 1024, perSize: 1, maxFreeBytes: 4096 });
    const a = pool.take(2048);
    const b = pool.take(2048);
    pool.give(a);
    pool.give(b);
    expect(pool.take(2048).buffer).toBe(a.buffer);
    expect(pool.take(2048).buffer).not.toBe(b.buffer);
  });

  it('gathers a PDU that spans reads into a pooled buffer', () => {
    const pool = new BufferPool({ minSize: 64 });
    const framer = new PduFramer({ digests: () => ({ header: false, data: false }), maxDataSegmentLength: () => 1 << 20, alloc: (n) => pool.take(n) });
    const pdu = Buffer.alloc(48 + 200);
    pdu[0] = 0x05; // Data-Out
    pdu.writeUIntBE(200, 5, 3);
    pdu.fill(7, 48);
    const frames: Uint8Array[] = [];
    framer.push(pdu.subarray(0, 100), () => undefined);
    framer.push(pdu.subarray(100), (e) => {
      if (e.kind === 'frame') frames.push(e.frame.data);
    });
    expect(frames).toHaveLength(1);
    expect(pool.owns(frames[0])).toBe(true);
    expect(Buffer.from(frames[0]!).equals(Buffer.alloc(200, 7))).toBe(true);
  });
});
