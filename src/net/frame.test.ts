import { describe, expect, it } from 'vitest';
import { HmacSha256 } from '../ptp/mac.js';
import { FrameCodec, FrameSplitter, HEADER_SIZE } from './frame.js';

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

describe('FrameSplitter', () => {
  it('reassembles frames split across chunks and refuses an oversized length', () => {
    const a = codec('vtc0');
    const f1 = a.seal('vtc1', bytes('one'), 1);
    const f2 = a.seal('vtc1', bytes('two'), 1);
    const stream = new Uint8Array([...f1, ...f2]);
    const s = new FrameSplitter();
    const got: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += 7) got.push(...s.push(stream.subarray(i, i + 7)).frames);
    expect(got).toEqual([f1, f2]);
    const bad = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
    expect(new FrameSplitter(1024).push(bad).error).toBe('oversized');
  });
});
