import { sign as edSign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalBytes, RecordSigner } from './codec.js';
import { BadSignatureError, InvalidThresholdError, MalformedRecordError, UnknownVtsError, UnsafeThresholdError } from './errors.js';
import { Ed25519Keys, generateKeyring, HmacSha256, toHex, vtcKeys } from './mac.js';
import { MemoryJournal } from './memory-journal.js';
import { parseMessage } from './messages.js';
import { checkThreshold, checkVts, decideVote, genesisKey, transition } from './rules.js';
import type { ShutdownKey, VtsSighting } from './types.js';

const ring = generateKeyring(['vtc0', 'vtc1', 'vtc2', 'vtc3']);
const signer = new RecordSigner(vtcKeys(ring, 'vtc0'));
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
    expect(() => signer.parseKey({ ...k, current: ['A', 'B'] })).toThrow(BadSignatureError);
    // Another VTC verifies with vtc0's public key from its keyring.
    expect(new RecordSigner(vtcKeys(ring, 'vtc2')).parseKey(k)).toEqual(k);
    expect(() => new RecordSigner(vtcKeys(generateKeyring(['vtc0', 'vtc1']), 'vtc1')).parseKey(k)).toThrow(BadSignatureError);
    const { seq: _s, ...noSeq } = k;
    expect(() => signer.parseKey(noSeq)).toThrow(MalformedRecordError);
    expect(() => signer.parseKey({ ...k, extra: 1 })).toThrow(/malformed shutdown key/);
    expect(() => signer.parseKey({ ...k, subjects: ['C'] })).toThrow(/subjects/);
    expect(() => signer.decodeRecord(new Uint8Array([0xff, 0x00]))).toThrow(MalformedRecordError);
  });
});

describe('VTS sightings in the journal', () => {
  const sighting = (observer = 'vtc0'): Omit<VtsSighting, 'mac'> => ({ ptpId: 'ptp1', observer, vts: 'B', bootId: 'B-boot-1', imageId: 'image-B', restartedSeq: 3, bothLost: true, lostWithOther: false });
  it('round-trips a sighting signed by its observer', () => {
    const r = { type: 'sighting' as const, sighting: signer.sign<VtsSighting>(sighting()) };
    expect(signer.decodeRecord(signer.encodeRecord(r))).toEqual(r);
    expect(new RecordSigner(vtcKeys(ring, 'vtc2')).decodeRecord(signer.encodeRecord(r))).toEqual(r);
  });
  it('refuses a sighting altered, signed by another VTC, or with a field missing', () => {
    const good = signer.sign<VtsSighting>(sighting());
    expect(() => signer.decodeRecord(signer.encodeRecord({ type: 'sighting', sighting: { ...good, restartedSeq: null, bothLost: false } }))).toThrow(BadSignatureError);
    const forged = { ...new RecordSigner(vtcKeys(ring, 'vtc1')).sign<VtsSighting>(sighting('vtc1')), observer: 'vtc0' };
    expect(() => signer.decodeRecord(signer.encodeRecord({ type: 'sighting', sighting: forged }))).toThrow(/sighting of VTS B/);
    const { bootId: _b, ...noBoot } = good;
    expect(() => signer.decodeRecord(canonicalBytes({ type: 'sighting', sighting: noBoot }))).toThrow(MalformedRecordError);
    expect(() => signer.sign<VtsSighting>(sighting('vtc1'))).toThrow(/cannot sign a record of "vtc1" as "vtc0"/);
  });
});

describe('rules', () => {
  it('a VTC votes NO for a VTS it saw restart while the other was lost too, whatever seq it reports', () => {
    const g = genesisKey('ptp1', 4);
    const view = { name: 'A' as const, inOperation: true, lastKeySeq: 0, behind: [] };
    const base = { key: g, vts: 'A' as const, view, expectLo: 0, expectHi: 0, electionSeq: 0, seenMaxKeySeq: 0 };
    expect(decideVote(base).yes).toBe(true);
    expect(decideVote({ ...base, bothLost: true })).toEqual({ yes: false, why: 'A restarted while the other VTS was lost too, as seen here, and no key has judged it since' });
  });

  it('a VTC votes NO for an older image of a VTS by its token sum', () => {
    const g = genesisKey('ptp1', 4);
    const view = { name: 'A' as const, inOperation: true, lastKeySeq: 0, behind: [] };
    const base = { key: g, vts: 'A' as const, view, expectLo: 0, expectHi: 0, electionSeq: 0, seenMaxKeySeq: 0 };
    expect(decideVote({ ...base, olderImage: 'A reports less' })).toEqual({ yes: false, why: 'A reports less' });
  });

  it('a supersede key changes nothing but the seq, and only of VTS in operation', () => {
    const g = genesisKey('p', 4);
    const t = transition(g, { command: 'vts-in', subjects: ['A'], reason: 'supersede' }, []);
    expect(t).toEqual({ status: g.status, current: g.current, state: g.state, threshold: g.threshold });
    const aOut = { ...g, seq: 1, ...transition(g, { command: 'vts-out', subjects: ['A'], reason: 'command' }, []) };
    expect(() => transition(aOut, { command: 'vts-in', subjects: ['A'], reason: 'supersede' }, [])).toThrow(/VTS A is not in operation \(key 1\): there is no recorded key of it to supersede/);
  });

  it('threshold valid only for 0 <= T < n; VTS names only A and B', () => {
    expect(checkThreshold(2, 4)).toBe(2);
    // Below floor(n/2) only as the audited override.
    expect(() => checkThreshold(1, 4)).toThrow(UnsafeThresholdError);
    expect(() => checkThreshold(0, 2)).toThrow(/T = 0 is below the minimum 1 for n = 2 VTCs/);
    expect(checkThreshold(0, 4, { belowHalf: true })).toBe(0);
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

describe('a record proves which VTC made it', () => {
  const ballotBody = { ptpId: 'ptp1', election: { seq: 3, vts: 'B' as const, round: 0 }, voter: 'vtc2', keySeq: 3, choice: 'yes' as const, why: 'test' };
  const tagWith = (mac: (b: Uint8Array) => Uint8Array, body: object): string => toHex(mac(canonicalBytes({ ...body, mac: undefined })));
  const verifier = new RecordSigner(new Ed25519Keys(ring.publicKeys));

  it("accepts a ballot signed by its voter's private key", () => {
    const b = new RecordSigner(vtcKeys(ring, 'vtc2')).sign(ballotBody);
    expect(verifier.parseBallot(b)).toEqual(b);
    expect(b.mac).toMatch(/^[0-9a-f]{128}$/);
  });
  it("refuses a ballot signed by another VTC's key", () => {
    const vtc3 = ring.privateKeys.get('vtc3')!;
    const forged = { ...ballotBody, mac: tagWith((d) => edSign(null, d, vtc3), ballotBody) };
    expect(() => verifier.parseBallot(forged)).toThrow(BadSignatureError);
    expect(() => verifier.parseBallot(forged)).toThrow(/ballot of vtc2: signature does not verify with the public key of "vtc2"/);
  });
  it('refuses a ballot, a key or a commit tagged with the shared cluster secret', () => {
    const hmac = new HmacSha256('cluster secret for tests 0123');
    expect(() => verifier.parseBallot({ ...ballotBody, mac: tagWith((d) => hmac.sign(d), ballotBody) })).toThrow(BadSignatureError);
    const { mac: _m, ...k } = key();
    expect(() => verifier.parseKey({ ...k, mac: tagWith((d) => hmac.sign(d), k) })).toThrow(BadSignatureError);
    const c = { ptpId: 'ptp1', seq: 1, keyMac: key().mac, coordinator: 'vtc0', outcome: 'done', error: null, acks: ['vtc0'], copiesPending: [], current: ['B'], state: { kind: 'offline' }, recorded: [], attempted: [] };
    expect(() => verifier.parseCommit({ ...c, mac: tagWith((d) => hmac.sign(d), c) })).toThrow(BadSignatureError);
    expect(() => verifier.parseCommit(new RecordSigner(vtcKeys(ring, 'vtc0')).sign(c))).not.toThrow();
  });
  it('refuses a ballot of a voter with no public key, and a commit carrying a ballot its voter did not sign', () => {
    const other = generateKeyring(['vtc9']);
    const stranger = new RecordSigner(new Ed25519Keys(other.publicKeys, { id: 'vtc9', privateKey: other.privateKeys.get('vtc9')! }));
    expect(() => verifier.parseBallot(stranger.sign({ ...ballotBody, voter: 'vtc9' }))).toThrow(BadSignatureError);
    const vtc3 = ring.privateKeys.get('vtc3')!;
    const c = { ptpId: 'ptp1', seq: 1, keyMac: key().mac, coordinator: 'vtc0', outcome: 'done', error: null, acks: ['vtc0'], copiesPending: [], current: ['B'], state: { kind: 'offline' }, recorded: [], attempted: [], ballots: [{ ...ballotBody, mac: tagWith((d) => edSign(null, d, vtc3), ballotBody) }] };
    expect(() => verifier.parseCommit(new RecordSigner(vtcKeys(ring, 'vtc0')).sign(c))).toThrow(/ballot of vtc2 in commit record 1/);
  });
  it('signs only as itself; a verify-only holder cannot sign', () => {
    expect(() => new RecordSigner(vtcKeys(ring, 'vtc1')).sign(ballotBody)).toThrow(/cannot sign a record of "vtc2" as "vtc1"/);
    expect(() => verifier.sign(ballotBody)).toThrow();
  });
  it('a private key that does not match the listed public key is refused up front', () => {
    expect(() => new Ed25519Keys(ring.publicKeys, { id: 'vtc1', privateKey: ring.privateKeys.get('vtc2')! })).toThrow(/does not match/);
  });
});

describe('peer messages', () => {
  const hello = { t: 'hello', hi: 1, top: 1, topMac: 'ab' };
  it('a hello carries what its sender saw of each VTS image, and malformed sightings are refused', () => {
    const sums = [{ vts: 'A', imageId: 'img', bootId: 'b1', sum: 40, seq: 1 }];
    expect(parseMessage({ ...hello, sums }, signer)).toEqual({ ...hello, sums });
    for (const bad of [
      [{ vts: 'C', imageId: 'img', bootId: 'b1', sum: 40, seq: 1 }],
      [{ vts: 'A', imageId: '', bootId: 'b1', sum: 40, seq: 1 }],
      [{ vts: 'A', imageId: 'img', bootId: 'b1', sum: -1, seq: 1 }],
      [{ vts: 'A', imageId: 'img', bootId: 'b1', sum: 40, seq: 1, extra: 1 }],
      Array.from({ length: 7 }, (_, i) => ({ vts: 'A', imageId: 'img', bootId: `b${i}`, sum: i, seq: 1 })),
    ]) {
      expect(() => parseMessage({ ...hello, sums: bad }, signer)).toThrow(MalformedRecordError);
    }
  });
});
