import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacSha256 } from '../ptp/mac.js';
import { FRAME_VERSION, FrameCodec, FrameSplitter, HEADER_SIZE } from './frame.js';

const vtcs = ['vtc0', 'vtc1', 'vtc2'];
const mac = new HmacSha256('cluster secret for tests 0123');
const codec = (self: string, bootAt = 0, m = mac): FrameCodec => new FrameCodec({ vtcs, self, mac: m, freshnessMs: 1000 }, bootAt);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('FrameCodec', () => {
  it('opens what a peer sealed, once', () => {
    const a = codec('vtc0');
    const b = codec('vtc1');
    const f = a.seal('vtc1', bytes('hello'), 100);
    const r = b.open(f, 101);
    expect(r.ok && r.from).toBe('vtc0');
    expect(r.ok && new TextDecoder().decode(r.payload)).toBe('hello');
    expect(b.open(f, 102)).toEqual({ ok: false, reason: 'replayed' });
    expect(b.stats.accepted).toBe(1);
    expect(b.stats.rejected.replayed).toBe(1);
  });

  it('rejects a forged MAC, a flipped bit, a redirected frame, an unknown sender', () => {
    const b = codec('vtc1');
    const forged = new FrameCodec({ vtcs, self: 'vtc0', mac: new HmacSha256('another secret entirely 0000') }, 0).seal('vtc1', bytes('x'), 10);
    expect(b.open(forged, 10)).toEqual({ ok: false, reason: 'bad-mac' });
    const good = codec('vtc0').seal('vtc1', bytes('x'), 10);
    const flipped = good.slice();
    flipped[HEADER_SIZE] = (flipped[HEADER_SIZE] ?? 0) ^ 1;
    expect(b.open(flipped, 10)).toEqual({ ok: false, reason: 'bad-mac' });
    expect(codec('vtc2').open(good, 10)).toEqual({ ok: false, reason: 'misdirected' });
    const outsider = new FrameCodec({ vtcs: [...vtcs, 'intruder'], self: 'intruder', mac }, 0).seal('vtc1', bytes('x'), 10);
    expect(b.open(outsider, 10)).toEqual({ ok: false, reason: 'unknown-sender' });
    expect(b.stats.rejected['bad-mac']).toBe(2);
    expect(b.stats.rejected['unknown-sender']).toBe(1);
  });

  it('rejects stale frames, frames from before the receiver started, malformed and oversized ones', () => {
    const a = codec('vtc0');
    const old = a.seal('vtc1', bytes('x'), 10);
    expect(codec('vtc1').open(old, 5000)).toEqual({ ok: false, reason: 'stale' });
    expect(codec('vtc1', 50).open(old, 60)).toEqual({ ok: false, reason: 'stale', announceTo: 'vtc0' });
    expect(codec('vtc1').open(new Uint8Array(10), 10)).toEqual({ ok: false, reason: 'malformed' });
    const small = new FrameCodec({ vtcs, self: 'vtc1', mac, maxFrame: 64 }, 0);
    expect(small.open(a.seal('vtc1', new Uint8Array(100), 20), 20)).toEqual({ ok: false, reason: 'oversized' });
    expect(() => small.seal('vtc0', new Uint8Array(100), 20)).toThrow(RangeError);
  });

  it('binds frames to the receiver\'s run: a sender whose clock is behind is refused once, then accepted', () => {
    // vtc1 restarted at 1000 by its clock; vtc0's clock is 300 ms behind.
    const a = codec('vtc0', 0, mac);
    const b = codec('vtc1', 1000, mac);
    const early = a.seal('vtc1', bytes('x'), 800);
    const r = b.open(early, 1100);
    expect(r).toEqual({ ok: false, reason: 'stale', announceTo: 'vtc0' });
    // The refusal is announced, at most every 50 ms per sender.
    expect(b.open(a.seal('vtc1', bytes('y'), 801), 1101)).toEqual({ ok: false, reason: 'stale' });
    expect(a.open(b.announce('vtc0', 1101), 801).ok).toBe(true);
    // Bound to vtc1's run now: accepted although sent "before" vtc1 started, by the clocks.
    const bound = a.seal('vtc1', bytes('z'), 802);
    const ok = b.open(bound, 1102);
    expect(ok.ok && new TextDecoder().decode(ok.payload)).toBe('z');
    expect(b.open(bound, 1103)).toEqual({ ok: false, reason: 'replayed' });
  });

  it('a frame bound to an earlier run of the receiver is judged by the clocks, so it cannot be replayed to the next', () => {
    const a = codec('vtc0');
    const b1 = new FrameCodec({ vtcs, self: 'vtc1', mac, freshnessMs: 1000 }, 0, 7n);
    a.open(b1.announce('vtc0', 10), 10);
    const toB1 = a.seal('vtc1', bytes('x'), 100);
    expect(b1.open(toB1, 100).ok).toBe(true);
    // vtc1 restarts at 150 with another run: the captured frame is refused there.
    const b2 = new FrameCodec({ vtcs, self: 'vtc1', mac, freshnessMs: 1000 }, 150, 8n);
    expect(b2.open(toB1, 160)).toEqual({ ok: false, reason: 'stale', announceTo: 'vtc0' });
    expect(b2.run).toBe(8n);
    expect(() => new FrameCodec({ vtcs, self: 'vtc1', mac }, 0, 0n)).toThrow(/nonzero/);
  });

  it('accepts reordered frames inside the window', () => {
    const a = codec('vtc0');
    const b = codec('vtc1');
    const f1 = a.seal('vtc1', bytes('1'), 100);
    const f2 = a.seal('vtc1', bytes('2'), 100);
    const f3 = a.seal('vtc1', bytes('3'), 101);
    expect([b.open(f3, 102).ok, b.open(f1, 102).ok, b.open(f2, 102).ok, b.open(f2, 103).ok]).toEqual([true, true, true, false]);
  });
});

describe('FrameCodec.seal on the wire', () => {
  /** The frame layout of the module doc, built by hand: what every sealed frame must be, byte for byte. */
  function expected(from: number, to: number, now: number, counter: number, run: bigint, toRun: bigint, payload: Uint8Array): Uint8Array {
    const head = new Uint8Array(HEADER_SIZE);
    const v = new DataView(head.buffer);
    v.setUint32(0, HEADER_SIZE - 4 + payload.length + 32);
    v.setUint8(4, FRAME_VERSION);
    v.setUint16(5, from);
    v.setUint16(7, to);
    v.setFloat64(9, now);
    v.setUint32(17, counter);
    v.setBigUint64(21, run);
    v.setBigUint64(29, toRun);
    const tag = createHmac('sha256', 'cluster secret for tests 0123').update(head).update(payload).digest();
    return new Uint8Array([...head, ...payload, ...tag]);
  }

  it('lays a payload given in parts exactly as the same bytes given whole', () => {
    const body = new Uint8Array(70_000).map((_, i) => (i * 31) & 0xff);
    const env = bytes('{"id":1,"m":"write"}');
    const whole = new Uint8Array([...env, ...body]);
    const a = new FrameCodec({ vtcs, self: 'vtc0', mac }, 0, 5n);
    const f1 = a.seal('vtc1', whole, 100);
    const f2 = a.seal('vtc1', [env, body], 100);
    const f3 = a.seal('vtc1', [env, new Uint8Array(0), body.subarray(0, 1), body.subarray(1)], 100);
    expect(Buffer.from(f1).equals(Buffer.from(expected(0, 1, 100, 0, 5n, 0n, whole)))).toBe(true);
    expect(Buffer.from(f2).equals(Buffer.from(expected(0, 1, 100, 1, 5n, 0n, whole)))).toBe(true);
    expect(Buffer.from(f3).equals(Buffer.from(expected(0, 1, 100, 2, 5n, 0n, whole)))).toBe(true);
    expect(a.seal('vtc1', [], 101)).toEqual(expected(0, 1, 101, 0, 5n, 0n, new Uint8Array(0)));
    // The parts were read, not kept: changing them afterwards changes no frame.
    body[0] = 0xee;
    expect(Buffer.from(f2).equals(Buffer.from(expected(0, 1, 100, 1, 5n, 0n, whole)))).toBe(true);
    const b = codec('vtc1');
    const r = b.open(f2, 100);
    expect(r.ok && Buffer.from(r.payload).equals(Buffer.from(whole))).toBe(true);
    // The size limit counts every part.
    const small = new FrameCodec({ vtcs, self: 'vtc0', mac, maxFrame: 200 }, 0);
    expect(() => small.seal('vtc1', [new Uint8Array(100), new Uint8Array(100)], 1)).toThrow(/exceeds the limit of 200/);
  });
});

describe('FrameSplitter', () => {
  const a = codec('vtc0');
  /** Frames of several sizes (an empty payload, small ones, one over 64 KiB) and the stream of all of them. */
  const frames = [bytes(''), bytes('one'), new Uint8Array(70_001).fill(7), bytes('two'), new Uint8Array(300).fill(9)].map((p, i) => a.seal('vtc1', p, 10 + i));
  const stream = Buffer.concat(frames);
  const same = (got: readonly Uint8Array[]): void => {
    expect(got.length).toBe(frames.length);
    got.forEach((g, i) => expect(Buffer.from(g).equals(Buffer.from(frames[i] as Uint8Array))).toBe(true));
  };

  it('hands out every frame whole when the stream is cut at any one point', () => {
    // Small frames only, so every cut of the stream can be tried.
    const small = [bytes('x'), bytes(''), bytes('a longer payload')].map((p, i) => a.seal('vtc1', p, 50 + i));
    const st = Buffer.concat(small);
    for (let cut = 0; cut <= st.length; cut++) {
      const s = new FrameSplitter();
      const got = [...s.push(st.subarray(0, cut)).frames, ...s.push(st.subarray(cut)).frames];
      expect(got.map((g) => Buffer.from(g).toString('hex'))).toEqual(small.map((f) => Buffer.from(f).toString('hex')));
      expect(s.pending).toBe(0);
    }
  });

  it('hands out every frame whole when the stream comes in reads of any size, down to one byte', () => {
    for (const size of [1, 2, 3, 4, 5, 7, 41, 42, 43, 1000, 4096, 65536, 70_000, 70_077, stream.length]) {
      const s = new FrameSplitter();
      const got: Uint8Array[] = [];
      const errors: string[] = [];
      for (let i = 0; i < stream.length; i += size) {
        const r = s.push(stream.subarray(i, i + size));
        if (r.error !== undefined) errors.push(r.error);
        got.push(...r.frames);
      }
      expect(errors).toEqual([]);
      same(got);
      expect(s.pending).toBe(0);
    }
  });

  it('hands out many frames of one read as views of it, and copies a frame spread over reads once, into its own buffer', () => {
    const s = new FrameSplitter();
    const one = new Uint8Array(stream);
    const r = s.push(one);
    same(r.frames);
    for (const f of r.frames) expect(f.buffer).toBe(one.buffer);
    // The big frame in three reads: one copy, which no later read writes over.
    const big = frames[2] as Uint8Array;
    const parts = [big.slice(0, 10), big.slice(10, 40_000), big.slice(40_000)];
    const t = new FrameSplitter();
    expect(t.push(parts[0] as Uint8Array).frames).toEqual([]);
    expect(t.push(parts[1] as Uint8Array).frames).toEqual([]);
    const [f] = t.push(parts[2] as Uint8Array).frames;
    expect(f !== undefined && Buffer.from(f).equals(Buffer.from(big))).toBe(true);
    for (const p of parts) expect(f?.buffer).not.toBe(p.buffer);
    // The first frame ends inside a read and the next starts there: both whole.
    const u = new FrameSplitter();
    const cut = (frames[0] as Uint8Array).length + 5;
    const first = u.push(stream.subarray(0, cut)).frames;
    const rest = u.push(stream.subarray(cut)).frames;
    same([...first, ...rest]);
    expect(u.pending).toBe(0);
  });

  it('refuses an oversized or too short length with an error naming it, keeps the frames before it, and stays refused', () => {
    const bad = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
    const r = new FrameSplitter(1024).push(bad);
    expect(r.error).toBe('oversized');
    expect(r.detail).toMatch(/4294967299 bytes, over the limit of 1024/);
    // The length field itself arrives a byte at a time, after a good frame.
    const s = new FrameSplitter(1024);
    const good = frames[1] as Uint8Array;
    const over = new Uint8Array([0, 0, 0x04, 0x00]); // 1024 + 4 > 1024
    expect(s.push(good).frames.length).toBe(1);
    for (const b of over.subarray(0, 3)) expect(s.push(new Uint8Array([b]))).toEqual({ frames: [] });
    expect(s.push(over.subarray(3))).toMatchObject({ frames: [], error: 'oversized' });
    // Poisoned: a good frame after it is not handed out.
    expect(s.push(good)).toMatchObject({ frames: [], error: 'oversized' });
    // Exactly at the limit is fine.
    const atLimit = new FrameSplitter(good.length);
    expect(atLimit.push(good).frames.length).toBe(1);
    expect(new FrameSplitter(good.length - 1).push(good).error).toBe('oversized');
    // A length too short for a header, behind a good frame in the same read.
    const short = new Uint8Array(4);
    new DataView(short.buffer).setUint32(0, HEADER_SIZE - 5);
    const m = new FrameSplitter().push(Buffer.concat([good, short]));
    expect(m.frames.length).toBe(1);
    expect(m.error).toBe('malformed');
    expect(m.detail).toContain(`shorter than a frame header (${HEADER_SIZE})`);
    // The shortest frame the splitter passes is a header alone; the codec then refuses it.
    const bare = new Uint8Array(HEADER_SIZE);
    new DataView(bare.buffer).setUint32(0, HEADER_SIZE - 4);
    const h = new FrameSplitter().push(bare);
    expect(h.error).toBeUndefined();
    expect(h.frames.length).toBe(1);
    expect(codec('vtc1').open(h.frames[0] as Uint8Array, 10)).toEqual({ ok: false, reason: 'malformed' });
  });
});
