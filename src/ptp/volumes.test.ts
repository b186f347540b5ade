import { describe, expect, it } from 'vitest';
import { writeStillCurrent } from './volumes.js';

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
