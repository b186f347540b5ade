import { describe, expect, it } from 'vitest';
import { ImageEvidence, SUMS_PER_HELLO } from './image-evidence.js';

const s = (imageId: string, bootId: string, sum: number, seq = 1) => ({ vts: 'A' as const, imageId, bootId, sum, seq });

describe('ImageEvidence', () => {
  it('judges a boot only by what other boots of the same image held', () => {
    const e = new ImageEvidence();
    e.note(s('img', 'boot-1', 40));
    e.note(s('img', 'boot-2', 10));
    // The current boot's own earlier views never judge it: a late view is not an older image.
    expect(e.floor('A', 'img', 'boot-1')).toBe(10);
    expect(e.floor('A', 'img', 'boot-2')).toBe(40);
    // Another image (new disks) is not judged by this one.
    expect(e.floor('A', 'other', 'boot-3')).toBe(0);
    expect(e.floor('B', 'img', 'boot-3')).toBe(0);
  });

  it('keeps the largest sum per boot and refuses malformed sightings', () => {
    const e = new ImageEvidence();
    expect(e.note(s('img', 'b1', 5))).toBe(true);
    expect(e.note(s('img', 'b1', 3))).toBe(false);
    expect(e.note(s('img', 'b1', 7))).toBe(true);
    expect(e.note(s('', 'b1', 9))).toBe(false);
    expect(e.note(s('img', '', 9))).toBe(false);
    expect(e.note(s('img', 'b2', -1))).toBe(false);
    expect(e.note(s('img', 'b2', 1.5))).toBe(false);
    expect(e.floor('A', 'img', 'b2')).toBe(7);
  });

  it('an override discards what was seen before it, and ignores it when a peer repeats it', () => {
    const e = new ImageEvidence();
    e.note(s('img', 'b1', 50, 3));
    expect(e.floor('A', 'img', 'b2')).toBe(50);
    e.accept('A', 5);
    expect(e.floor('A', 'img', 'b2')).toBe(0);
    expect(e.note(s('img', 'b1', 50, 4))).toBe(false);
    expect(e.note(s('img', 'b2', 20, 5))).toBe(true);
    expect(e.floor('A', 'img', 'b3')).toBe(20);
  });

  it('stays bounded, and shares the highest sums per VTS', () => {
    const e = new ImageEvidence();
    for (let i = 0; i < 20; i++) e.note(s('img', `b${i}`, i));
    e.note({ vts: 'B', imageId: 'i', bootId: 'x', sum: 1, seq: 0 });
    const shared = e.shared();
    expect(shared.filter((x) => x.vts === 'A').map((x) => x.sum)).toEqual([19, 18, 17].slice(0, SUMS_PER_HELLO));
    expect(shared.filter((x) => x.vts === 'B')).toHaveLength(1);
    // The lowest boots went first: the highest is still known.
    expect(e.floor('A', 'img', 'new')).toBe(19);
  });
});
