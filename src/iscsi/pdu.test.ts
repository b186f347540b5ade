import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Opcode, RejectReason } from './constants.js';
import { commandCdb, decodeBytes, decodePdu, decodeLun, encodeLun, encodePdu, encodePduParts, PduFormatError, PduFramer, type Pdu, type ScsiCommandPdu } from './pdu.js';
import { encodeText, parseText, TextFormatError } from './text.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });
const lun = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const bool = fc.boolean();
const data = fc.option(fc.uint8Array({ minLength: 1, maxLength: 700 }), { nil: undefined });
const sn = { statSN: u32, expCmdSN: u32, maxCmdSN: u32 };

const arbitraries: Record<string, fc.Arbitrary<Pdu>> = {
  'NOP-Out': fc.record({ opcode: fc.constant(Opcode.NOP_OUT), immediate: bool, lun, itt: u32, ttt: u32, cmdSN: u32, expStatSN: u32, data }, { requiredKeys: ['opcode', 'immediate', 'lun', 'itt', 'ttt', 'cmdSN', 'expStatSN'] }),
  'SCSI Command': fc.record(
    { opcode: fc.constant(Opcode.SCSI_COMMAND), immediate: bool, final: bool, read: bool, write: bool, attr: fc.integer({ min: 0, max: 7 }), lun, itt: u32, expectedDataTransferLength: u32, cmdSN: u32, expStatSN: u32, cdb: fc.uint8Array({ minLength: 16, maxLength: 16 }), ahs: fc.option(fc.uint8Array({ minLength: 1, maxLength: 20 }).map((a) => Uint8Array.from([...a, 0, 0, 0].slice(0, a.length + ((4 - (a.length % 4)) % 4)))), { nil: undefined }), data },
    { requiredKeys: ['opcode', 'immediate', 'final', 'read', 'write', 'attr', 'lun', 'itt', 'expectedDataTransferLength', 'cmdSN', 'expStatSN', 'cdb'] },
  ),
  'Task Management Request': fc.record({ opcode: fc.constant(Opcode.TASK_MGMT_REQUEST), immediate: bool, function: fc.integer({ min: 0, max: 127 }), lun, itt: u32, referencedTaskTag: u32, cmdSN: u32, expStatSN: u32, refCmdSN: u32, expDataSN: u32 }),
  'Login Request': fc.record({ opcode: fc.constant(Opcode.LOGIN_REQUEST), transit: bool, continue: bool, csg: fc.integer({ min: 0, max: 3 }), nsg: fc.integer({ min: 0, max: 3 }), versionMax: u8, versionMin: u8, isid: fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }), tsih: u16, itt: u32, cid: u16, cmdSN: u32, expStatSN: u32, data }, { requiredKeys: ['opcode', 'transit', 'continue', 'csg', 'nsg', 'versionMax', 'versionMin', 'isid', 'tsih', 'itt', 'cid', 'cmdSN', 'expStatSN'] }),
  'Text Request': fc.record({ opcode: fc.constant(Opcode.TEXT_REQUEST), immediate: bool, final: bool, continue: bool, lun, itt: u32, ttt: u32, cmdSN: u32, expStatSN: u32, data }, { requiredKeys: ['opcode', 'immediate', 'final', 'continue', 'lun', 'itt', 'ttt', 'cmdSN', 'expStatSN'] }),
  'Data-Out': fc.record({ opcode: fc.constant(Opcode.DATA_OUT), final: bool, lun, itt: u32, ttt: u32, expStatSN: u32, dataSN: u32, bufferOffset: u32, data }, { requiredKeys: ['opcode', 'final', 'lun', 'itt', 'ttt', 'expStatSN', 'dataSN', 'bufferOffset'] }),
  'Logout Request': fc.record({ opcode: fc.constant(Opcode.LOGOUT_REQUEST), immediate: bool, reason: fc.integer({ min: 0, max: 127 }), itt: u32, cid: u16, cmdSN: u32, expStatSN: u32 }),
  'NOP-In': fc.record({ opcode: fc.constant(Opcode.NOP_IN), lun, itt: u32, ttt: u32, ...sn, data }, { requiredKeys: ['opcode', 'lun', 'itt', 'ttt', 'statSN', 'expCmdSN', 'maxCmdSN'] }),
  'SCSI Response': fc.record({ opcode: fc.constant(Opcode.SCSI_RESPONSE), bidiOverflow: bool, bidiUnderflow: bool, overflow: bool, underflow: bool, response: u8, status: u8, itt: u32, snackTag: u32, ...sn, expDataSN: u32, bidiReadResidualCount: u32, residualCount: u32, data }, { requiredKeys: ['opcode', 'bidiOverflow', 'bidiUnderflow', 'overflow', 'underflow', 'response', 'status', 'itt', 'snackTag', 'statSN', 'expCmdSN', 'maxCmdSN', 'expDataSN', 'bidiReadResidualCount', 'residualCount'] }),
  'Task Management Response': fc.record({ opcode: fc.constant(Opcode.TASK_MGMT_RESPONSE), response: u8, itt: u32, ...sn }),
  'Login Response': fc.record({ opcode: fc.constant(Opcode.LOGIN_RESPONSE), transit: bool, continue: bool, csg: fc.integer({ min: 0, max: 3 }), nsg: fc.integer({ min: 0, max: 3 }), versionMax: u8, versionActive: u8, isid: fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }), tsih: u16, itt: u32, ...sn, statusClass: u8, statusDetail: u8, data }, { requiredKeys: ['opcode', 'transit', 'continue', 'csg', 'nsg', 'versionMax', 'versionActive', 'isid', 'tsih', 'itt', 'statSN', 'expCmdSN', 'maxCmdSN', 'statusClass', 'statusDetail'] }),
  'Text Response': fc.record({ opcode: fc.constant(Opcode.TEXT_RESPONSE), final: bool, continue: bool, lun, itt: u32, ttt: u32, ...sn, data }, { requiredKeys: ['opcode', 'final', 'continue', 'lun', 'itt', 'ttt', 'statSN', 'expCmdSN', 'maxCmdSN'] }),
  'Data-In': fc.record({ opcode: fc.constant(Opcode.DATA_IN), final: bool, acknowledge: bool, overflow: bool, underflow: bool, statusPresent: bool, status: u8, lun, itt: u32, ttt: u32, ...sn, dataSN: u32, bufferOffset: u32, residualCount: u32, data }, { requiredKeys: ['opcode', 'final', 'acknowledge', 'overflow', 'underflow', 'statusPresent', 'status', 'lun', 'itt', 'ttt', 'statSN', 'expCmdSN', 'maxCmdSN', 'dataSN', 'bufferOffset', 'residualCount'] }),
  'Logout Response': fc.record({ opcode: fc.constant(Opcode.LOGOUT_RESPONSE), response: u8, itt: u32, ...sn, time2Wait: u16, time2Retain: u16 }),
  R2T: fc.record({ opcode: fc.constant(Opcode.R2T), lun, itt: u32, ttt: u32, ...sn, r2tSN: u32, bufferOffset: u32, desiredDataTransferLength: u32 }),
  'Async Message': fc.record({ opcode: fc.constant(Opcode.ASYNC_MESSAGE), lun, ...sn, asyncEvent: u8, asyncVCode: u8, parameter1: u16, parameter2: u16, parameter3: u16, data }, { requiredKeys: ['opcode', 'lun', 'statSN', 'expCmdSN', 'maxCmdSN', 'asyncEvent', 'asyncVCode', 'parameter1', 'parameter2', 'parameter3'] }),
  Reject: fc.record({ opcode: fc.constant(Opcode.REJECT), reason: u8, ...sn, dataSN: u32, data }, { requiredKeys: ['opcode', 'reason', 'statSN', 'expCmdSN', 'maxCmdSN', 'dataSN'] }),
};

const digestModes = [
  { header: false, data: false },
  { header: true, data: false },
  { header: false, data: true },
  { header: true, data: true },
];

function norm(p: Pdu): Record<string, unknown> {
  const o: Record<string, unknown> = { ...p };
  for (const k of ['data', 'ahs'] as const) {
    const v = o[k] as Uint8Array | undefined;
    if (!v || v.length === 0) delete o[k];
    else o[k] = Buffer.from(v).toString('hex');
  }
  if (o.cdb) o.cdb = Buffer.from(o.cdb as Uint8Array).toString('hex');
  return o;
}

describe('gathered writes', () => {
  it('a large data segment in pieces is byte for byte the encoded PDU, with every digest setting', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4096, maxLength: 70_000 }), fc.constantFrom(...digestModes), fc.nat(), (data, digests, itt) => {
        const pdu: Pdu = { opcode: Opcode.DATA_IN, final: true, acknowledge: false, overflow: false, underflow: false, statusPresent: true, status: 0, lun: 0n, itt: itt >>> 0, ttt: 0xffffffff, statSN: 1, expCmdSN: 2, maxCmdSN: 3, dataSN: 0, bufferOffset: 0, residualCount: 0, data } as Pdu;
        expect(Buffer.concat(encodePduParts(pdu, digests)).equals(encodePdu(pdu, digests))).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});

describe('PDU codec round trips', () => {
  for (const [name, arb] of Object.entries(arbitraries)) {
    it(`${name}: decode(encode(pdu)) == pdu with every digest setting`, () => {
      fc.assert(
        fc.property(arb, fc.constantFrom(...digestModes), (pdu, digests) => {
          const bytes = encodePdu(pdu, digests);
          expect(bytes.length % 4).toBe(0);
          expect(norm(decodeBytes(bytes, digests))).toEqual(norm(pdu));
          // The gathered-write pieces are the same bytes.
          expect(Buffer.concat(encodePduParts(pdu, digests)).equals(bytes)).toBe(true);
        }),
        { numRuns: 150 },
      );
    });
  }

  it('frames PDUs split at every byte boundary and glued together', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(...Object.values(arbitraries)), { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 10 }), (pdus, cuts) => {
        const digests = { header: true, data: true };
        const stream = Buffer.concat(pdus.map((p) => encodePdu(p, digests)));
        const got: Pdu[] = [];
        const framer = new PduFramer({ digests: () => digests, maxDataSegmentLength: () => 1 << 20 });
        let at = 0;
        let i = 0;
        while (at < stream.length) {
          const n = cuts[i++ % cuts.length]!;
          framer.push(stream.subarray(at, at + n), (e) => {
            if (e.kind === 'frame') got.push(decodePdu(e.frame));
          });
          at += n;
        }
        expect(got.map(norm)).toEqual(pdus.map(norm));
      }),
      { numRuns: 100 },
    );
  });

  it('carries the CRC32C least significant byte first (RFC 7143 B.4 vector)', () => {
    const b = encodePdu({ opcode: Opcode.NOP_IN, lun: 0n, itt: 1, ttt: 0xffffffff, statSN: 0, expCmdSN: 0, maxCmdSN: 0, data: new Uint8Array(32) }, { header: false, data: true });
    expect(b.subarray(b.length - 4).toString('hex')).toBe('aa36918a');
  });

});

describe('PDU codec: bad input', () => {
  const header = (op: number, mutate?: (b: Buffer) => void): Buffer => {
    const b = Buffer.alloc(48);
    b[0] = op;
    b[1] = 0x80;
    mutate?.(b);
    return b;
  };
  it('rejects an unknown opcode with COMMAND NOT SUPPORTED', () => {
    for (const op of [0x07, 0x10, 0x1c, 0x27, 0x3c]) {
      const e = (() => { try { decodeBytes(header(op)); } catch (x) { return x; } })();
      expect(e).toBeInstanceOf(PduFormatError);
      expect((e as PduFormatError).reason).toBe(RejectReason.COMMAND_NOT_SUPPORTED);
    }
  });
  it('rejects a data segment on PDUs that carry none, and AHS where none belongs', () => {
    const withData = Buffer.concat([header(Opcode.TASK_MGMT_REQUEST, (b) => b.writeUIntBE(4, 5, 3)), Buffer.alloc(4)]);
    expect(() => decodeBytes(withData)).toThrow(PduFormatError);
    const withAhs = Buffer.concat([header(Opcode.NOP_OUT, (b) => (b[4] = 1)), Buffer.alloc(4)]);
    expect(() => decodeBytes(withAhs)).toThrow(PduFormatError);
    expect(() => decodeBytes(header(Opcode.LOGOUT_REQUEST, (b) => (b[1] = 0)))).toThrow(/F bit/);
  });
  it('reports header and data digest errors, and skips an over-long data segment', () => {
    const good = encodePdu({ opcode: Opcode.NOP_OUT, immediate: true, lun: 0n, itt: 5, ttt: 0xffffffff, cmdSN: 1, expStatSN: 1, data: new Uint8Array(100) }, { header: true, data: true });
    const events: string[] = [];
    const run = (bytes: Buffer, max = 8192): void => {
      const f = new PduFramer({ digests: () => ({ header: true, data: true }), maxDataSegmentLength: () => max });
      f.push(bytes, (e) => void events.push(e.kind));
    };
    const badHeader = Buffer.from(good);
    badHeader[20]! ^= 1;
    run(badHeader);
    const badData = Buffer.from(good);
    badData[48 + 4 + 10]! ^= 1;
    run(Buffer.concat([badData, good]));
    run(Buffer.concat([good, good]), 64);
    expect(events).toEqual(['header-digest', 'data-digest', 'frame', 'too-long', 'too-long']);
  });
  it('never throws anything but PduFormatError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 48, maxLength: 200 }), (bytes) => {
        const f = new PduFramer({ digests: () => ({ header: false, data: false }), maxDataSegmentLength: () => 8192 });
        f.push(Buffer.from(bytes), (e) => {
          if (e.kind !== 'frame') return;
          try {
            decodeBytes(Buffer.concat([e.frame.bhs, e.frame.ahs]));
          } catch (x) {
            if (!(x instanceof PduFormatError) && !(x instanceof Error && /incomplete|more than one/.test(x.message))) throw x;
          }
        });
      }),
      { numRuns: 2000 },
    );
  });
});

describe('LUN and CDB helpers', () => {
  it('round-trips LUN numbers', () => {
    for (const n of [0, 1, 255, 256, 1000, 16383]) expect(decodeLun(encodeLun(n))).toBe(n);
    expect(() => encodeLun(16384)).toThrow(RangeError);
    expect(decodeLun(0xc000000000000000n)).toBeUndefined();
  });
  it('puts CDB bytes beyond 16 in an extended CDB AHS', async () => {
    const { extendedCdbAhs } = await import('./pdu.js');
    const cdb = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
    const p: ScsiCommandPdu = { opcode: Opcode.SCSI_COMMAND, immediate: false, final: true, read: false, write: false, attr: 1, lun: 0n, itt: 1, expectedDataTransferLength: 0, cmdSN: 1, expStatSN: 1, cdb: cdb.subarray(0, 16), ahs: extendedCdbAhs(cdb) };
    const back = decodeBytes(encodePdu(p)) as ScsiCommandPdu;
    expect(Array.from(commandCdb(back))).toEqual(Array.from(cdb));
  });
});

describe('text key=value', () => {
  it('round-trips pairs', () => {
    const key = fc.stringMatching(/^[A-Za-z][A-Za-z0-9.\-+@_]{0,20}$/);
    const value = fc.string({ maxLength: 40 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(key, value), { selector: (t) => t[0], maxLength: 20 }), (pairs) => {
        expect(parseText(encodeText(pairs))).toEqual(pairs);
      }),
    );
  });
  it('refuses malformed text and oversize input', () => {
    expect(() => parseText(Buffer.from('novalue\0'))).toThrow(TextFormatError);
    expect(() => parseText(Buffer.from('=x\0'))).toThrow(TextFormatError);
    expect(() => parseText(Buffer.from('A=1\0A=2\0'))).toThrow(/repeated/);
    expect(parseText(Buffer.from('A=1\0A=2\0'), undefined, true)).toEqual([['A', '1'], ['A', '2']]);
    expect(() => parseText(Buffer.from(`${'K'.repeat(64)}=1\0`))).toThrow(/bad key/);
    expect(() => parseText(Buffer.alloc(70000, 0x41))).toThrow(/exceeds/);
    expect(() => parseText(Buffer.from(Array.from({ length: 200 }, (_, i) => `K${i}=1\0`).join('')))).toThrow(/pairs/);
  });
});
