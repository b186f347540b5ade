import { describe, expect, it } from 'vitest';
import { RecordSigner } from './codec.js';
import { BadMacError, InvalidThresholdError, MalformedRecordError, UnknownVtsError } from './errors.js';
import { HmacSha256 } from './mac.js';
import { MemoryJournal } from './memory-journal.js';
import { checkThreshold, checkVts, genesisKey, transition } from './rules.js';
import type { ShutdownKey } from './types.js';

const signer = new RecordSigner(new HmacSha256('cluster secret for tests 0123'));
const key = (): ShutdownKey => {
  const { mac: _m, ...body } = { ...genesisKey('ptp1', 4), seq: 1, originVtc: 'vtc0', command: 'vts-out' as const, subjects: ['A' as const], status: { A: 'out' as const, B: 'in' as const }, current: ['B' as const], prevMac: '' };
  return signer.sign<ShutdownKey>(body);
};

describe('keys: canonical encoding, validation, MAC', () => {
  it('round-trips a signed key through the journal encoding', () => {
    const k = key();
    expect(signer.decodeRecord(signer.encodeRecord({ type: 'key', key: k }))).toEqual({ type: 'key', key: k });
  });
  it('rejects a tampered field, a wrong secret, a missing field, an unknown field, with clear errors', () => {
    const k = key();
    expect(() => signer.parseKey({ ...k, current: ['A', 'B'] })).toThrow(BadMacError);
    expect(() => new RecordSigner(new HmacSha256('some other secret 0123456')).parseKey(k)).toThrow(BadMacError);
    const { seq: _s, ...noSeq } = k;
    expect(() => signer.parseKey(noSeq)).toThrow(MalformedRecordError);
    expect(() => signer.parseKey({ ...k, extra: 1 })).toThrow(/malformed shutdown key/);
    expect(() => signer.parseKey({ ...k, subjects: ['C'] })).toThrow(/subjects/);
    expect(() => signer.decodeRecord(new Uint8Array([0xff, 0x00]))).toThrow(MalformedRecordError);
  });
});

describe('rules', () => {
  it('threshold valid only for 0 <= T < n; VTS names only A and B', () => {
    expect(checkThreshold(0, 4)).toBe(0);
    expect(checkThreshold(3, 4)).toBe(3);
    for (const bad of [4, -1, 1.5, '2']) expect(() => checkThreshold(bad, 4)).toThrow(InvalidThresholdError);
    expect(() => checkVts('C')).toThrow(UnknownVtsError);
  });
  it('computes current: drained → survivor; pending → empty; last out keeps membership; both out drained → both', () => {
    const g = genesisKey('p', 4);
    expect(transition(g, { command: 'vts-out', subjects: ['A'], reason: 'command' }, []).current).toEqual(['B']);
    expect(transition(g, { command: 'vts-out', subjects: ['A'], reason: 'command' }, ['V1']).current).toEqual([]);
    expect(transition(g, { command: 'vts-out', subjects: ['A'], reason: 'command' }, null).current).toEqual([]);
    const aOut = { ...g, seq: 1, ...transition(g, { command: 'vts-out', subjects: ['A'], reason: 'command' }, []) };
    expect(transition(aOut, { command: 'vts-out', subjects: ['B'], reason: 'command' }, []).current).toEqual(['B']);
    expect(transition(g, { command: 'ptp-shutdown', subjects: ['A', 'B'], reason: 'command' }, []).current).toEqual(['A', 'B']);
    expect(transition(g, { command: 'ptp-shutdown', subjects: ['A', 'B'], reason: 'command' }, ['V2']).current).toEqual([]);
  });
});

describe('MemoryJournal', () => {
  it('keeps what was synced across a crash and loses the tail', async () => {
    const j = new MemoryJournal();
    const done = j.append(new Uint8Array([1]));
    j.sync();
    await done;
    const lost = j.append(new Uint8Array([2]));
    j.crash();
    await expect(lost).rejects.toThrow();
    expect(await j.readAll()).toEqual([new Uint8Array([1])]);
  });
});
