import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LineSplitter,
  MAX_LINE_LENGTH,
  checksum,
  formatErr,
  formatInventoryLine,
  formatOk,
  formatRequest,
  formatStatus,
  parseInventoryLine,
  parseReply,
  parseRequest,
  parseStatus,
  withChecksum,
} from './protocol.js';
import type { RobotRequest } from './protocol.js';

describe('serial robot protocol', () => {
  it('checksums as XOR of the bytes in two hex digits', () => {
    expect(checksum('')).toBe('00');
    expect(checksum('1 PING')).toBe((['1', ' ', 'P', 'I', 'N', 'G'].reduce((x, c) => x ^ c.charCodeAt(0), 0)).toString(16).toUpperCase().padStart(2, '0'));
    expect(withChecksum('1 PING')).toMatch(/^1 PING\*[0-9A-F]{2}$/u);
  });

  it('parses requests case-insensitively, with or without checksum, in decimal or hex', () => {
    expect(parseRequest('12 move 4096 0x1003')).toEqual({ request: { tag: '12', verb: 'MOVE', source: 4096, destination: 4099 } });
    expect(parseRequest(withChecksum('3 EXCH 1 2 3'))).toEqual({ request: { tag: '3', verb: 'EXCH', source: 1, first: 2, second: 3 } });
    expect(parseRequest('  4\tdoor  open ')).toEqual({ request: { tag: '4', verb: 'DOOR', action: 'OPEN' } });
    expect(parseRequest('5 INV')).toEqual({ request: { tag: '5', verb: 'INV' } });
  });

  it('names the failure of a bad request and keeps its tag when it can be read', () => {
    expect(parseRequest('5 INV 3')).toMatchObject({ error: { tag: '5', code: 'SYNTAX' } });
    expect(parseRequest('5 JUMP')).toMatchObject({ error: { tag: '5', code: 'UNKNOWN_COMMAND' } });
    expect(parseRequest('5')).toMatchObject({ error: { tag: '5', code: 'SYNTAX' } });
    expect(parseRequest('0 PING')).toMatchObject({ error: { tag: '0', code: 'SYNTAX' } });
    expect(parseRequest('5 DOOR AJAR')).toMatchObject({ error: { tag: '5', code: 'SYNTAX' } });
    expect(parseRequest('5 PING*FF')).toMatchObject({ error: { tag: '0', code: 'CHECKSUM' } });
    expect(parseRequest('5 PING\x01')).toMatchObject({ error: { tag: '0', code: 'SYNTAX' } });
  });

  it('round-trips every request and reply', () => {
    const tag = fc.integer({ min: 1, max: 99_999_999 }).map(String);
    const addr = fc.integer({ min: 0, max: 0xffff });
    const req: fc.Arbitrary<RobotRequest> = fc.oneof(
      fc.record({ tag, verb: fc.constantFrom('PING' as const, 'STATUS' as const, 'INV' as const) }),
      fc.record({ tag, verb: fc.constant('MOVE' as const), source: addr, destination: addr }),
      fc.record({ tag, verb: fc.constant('EXCH' as const), source: addr, first: addr, second: addr }),
      fc.record({ tag, verb: fc.constant('DOOR' as const), action: fc.constantFrom('OPEN' as const, 'CLOSE' as const) }),
    );
    fc.assert(
      fc.property(req, (r) => {
        expect(parseRequest(formatRequest(r))).toEqual({ request: r });
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(tag, fc.string({ maxLength: 200 }), (t, text) => {
        const line = formatErr(t, 'DOOR_LOCKED', text);
        expect(line.length).toBeLessThanOrEqual(MAX_LINE_LENGTH);
        expect(parseReply(line)).toMatchObject({ tag: t, kind: 'err', code: 30, name: 'DOOR_LOCKED' });
      }),
      { numRuns: 1000 },
    );
    expect(parseReply(formatOk('7', 'MOVED 1 2'))).toEqual({ tag: '7', kind: 'ok', payload: 'MOVED 1 2' });
    const inv = { address: 4096, kind: 'SLOT' as const, full: true, barcode: 'A00001L8', source: 256, except: true, access: false };
    expect(parseInventoryLine(formatInventoryLine(inv))).toEqual(inv);
    const st = { ready: false, robotBusy: true, doorOpen: true, why: 'DOOR_OPEN' as const };
    expect(parseStatus(formatStatus(st))).toEqual(st);
  });

  it('never throws on arbitrary input, and never accepts a reply whose checksum was hit by noise', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const r = parseRequest(s);
        expect('request' in r || 'error' in r).toBe(true);
        parseReply(s);
        parseInventoryLine(s);
        parseStatus(s);
      }),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 0x7f }), (pos, flip) => {
        const line = formatOk('42', 'MOVED 1 2');
        const i = pos % (line.length - 3);
        const hit = line.slice(0, i) + String.fromCharCode(line.charCodeAt(i) ^ flip) + line.slice(i + 1);
        const r = parseReply(hit);
        // A single corrupted byte always breaks the XOR, so the line is dropped.
        expect(r).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
  });

  it('splits at CR, LF or CRLF, drops empty lines and cuts runaway lines once', () => {
    const s = new LineSplitter(10);
    expect(s.push('a\r\nb\rc\n\n')).toEqual([{ kind: 'line', text: 'a' }, { kind: 'line', text: 'b' }, { kind: 'line', text: 'c' }]);
    expect(s.push('12345')).toEqual([]);
    expect(s.push('678901234567')).toEqual([{ kind: 'overlong', head: '12345678901' }]);
    expect(s.push('zzz\r\nok\n')).toEqual([{ kind: 'line', text: 'ok' }]);
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const sp = new LineSplitter();
        for (const c of chunks) for (const ev of sp.push(c)) if (ev.kind === 'line') expect(ev.text.length).toBeLessThanOrEqual(MAX_LINE_LENGTH);
      }),
      { numRuns: 2000 },
    );
  });
});
