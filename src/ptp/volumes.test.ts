import { describe, expect, it } from 'vitest';
import { GENERATIONS_PER_KEY, planWrite, writeStillCurrent } from './volumes.js';

describe('writeStillCurrent', () => {
  const online = { kind: 'online-single', vts: 'A' } as const;
  it('acknowledges a write when no newer key took effect', () => {
    expect(writeStillCurrent(3, ['A', 'B'], { status: { kind: 'offline' }, epoch: 3 }, [])).toBe(true);
  });
  it('acknowledges a write across a newer on-line key that holds every copy as current', () => {
    expect(writeStillCurrent(3, ['A'], { status: online, epoch: 4 }, ['A'])).toBe(true);
  });
  it('refuses a write when the newer key is off-line or drops a VTS the data went to', () => {
    expect(writeStillCurrent(3, ['A', 'B'], { status: { kind: 'offline' }, epoch: 4 }, ['A', 'B'])).toBe(false);
    expect(writeStillCurrent(3, ['A', 'B'], { status: online, epoch: 4 }, ['A'])).toBe(false);
  });
});

describe('planWrite generations', () => {
  const both = { kind: 'online-both' } as const;
  it('keeps counting by one under the genesis key', () => {
    const p = planWrite({ status: both, epoch: 0, copyMode: 'immediate', primary: 'A', tokens: { A: { generation: 4, consistent: true }, B: { generation: 4, consistent: true } } });
    expect(p.ok && p.generation).toBe(5);
  });
  it('orders a write under a newer key above any under an older one (an unacknowledged commit left on the other VTS cannot share its generation)', () => {
    // Under key 3, A committed generation g (its copy to B was refused: B had recorded key 4). B
    // alone, under key 4, still reports g - 1 and must not hand out g again.
    const orphan = planWrite({ status: both, epoch: 3, copyMode: 'deferred', primary: 'A', tokens: { A: { generation: 7, consistent: true }, B: { generation: 7, consistent: true } } });
    expect(orphan.ok).toBe(true);
    const g = orphan.ok ? orphan.generation : 0;
    const survivor = planWrite({ status: { kind: 'online-single', vts: 'B' }, epoch: 4, copyMode: 'deferred', primary: 'B', tokens: { B: { generation: 7, consistent: true } } });
    expect(survivor.ok && survivor.generation).toBeGreaterThan(g);
    expect(survivor.ok && survivor.generation).toBe(4 * GENERATIONS_PER_KEY + 1);
    // Within one key, generations still count by one.
    const next = planWrite({ status: { kind: 'online-single', vts: 'B' }, epoch: 4, copyMode: 'deferred', primary: 'B', tokens: { B: { generation: 4 * GENERATIONS_PER_KEY + 1, consistent: true } } });
    expect(next.ok && next.generation).toBe(4 * GENERATIONS_PER_KEY + 2);
  });
});
