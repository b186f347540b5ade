import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AttributeFormat,
  AttributeId,
  asciiAttribute,
  attributeName,
  binaryAttribute,
  buildWriteAttributeList,
  parseAttributeIdList,
  parseAttributeNumberList,
  parseAttributeValues,
  textAttribute,
} from './parse-attribute.js';

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

describe('READ ATTRIBUTE', () => {
  it('decodes attribute values as a drive sends them', () => {
    const remaining = [0x00, 0x00, 0x80, 0x00, 0x08, 0, 0, 0, 0, 0, 0x98, 0x96, 0x80]; // 10 000 000 MiB, read only
    const manufacturer = [0x04, 0x00, 0x81, 0x00, 0x08, ...ascii('FUJIFILM')];
    const barcode = [0x08, 0x06, 0x01, 0x00, 0x20, ...ascii('A00001L9'), ...new Array<number>(24).fill(0x20)];
    const label = [0x08, 0x03, 0x02, 0x00, 0x06, ...ascii('caf'), 0xc3, 0xa9, 0x00];
    const body = [...remaining, ...manufacturer, ...barcode, ...label];
    const b = Uint8Array.from([0, 0, 0, body.length, ...body]);
    const r = parseAttributeValues(b);
    expect(r.truncated).toBe(false);
    expect(r.attributes.map((a) => [a.id, a.name, a.readOnly, a.decoded])).toEqual([
      [0x0000, 'REMAINING CAPACITY IN PARTITION', true, 10_000_000n],
      [0x0400, 'MEDIUM MANUFACTURER', true, 'FUJIFILM'],
      [0x0806, 'BARCODE', false, 'A00001L9'],
      [0x0803, 'USER MEDIUM TEXT LABEL', false, 'café'],
    ]);
  });

  it('flags truncation from AVAILABLE DATA', () => {
    const b = Uint8Array.from([0, 0, 0, 0x40, 0x00, 0x03, 0x80, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 7]);
    const r = parseAttributeValues(b);
    expect(r.truncated).toBe(true);
    expect(r.attributes).toMatchObject([{ id: AttributeId.LOAD_COUNT, decoded: 7n }]);
  });

  it('names standard, vendor and unknown attributes', () => {
    expect(attributeName(0x0222)).toBe('TOTAL MBYTES WRITTEN IN CURRENT/LAST LOAD');
    expect(attributeName(0x0406)).toBe('MEDIUM MANUFACTURE DATE');
    expect(attributeName(0x1001)).toBe('VENDOR SPECIFIC MEDIUM ATTRIBUTE 0x1001');
    expect(attributeName(0x0999)).toBe('ATTRIBUTE 0x0999');
  });

  it('attribute id list and partition list', () => {
    expect(parseAttributeIdList(Uint8Array.from([0, 0, 0, 4, 0x00, 0x00, 0x08, 0x06]))).toEqual([0, 0x0806]);
    expect(parseAttributeNumberList(Uint8Array.from([0, 2, 0, 2]))).toEqual({ first: 0, count: 2 });
  });
});

describe('WRITE ATTRIBUTE', () => {
  it('builds the list sorted by id with standard lengths', () => {
    const list = buildWriteAttributeList([asciiAttribute(AttributeId.BARCODE, 'A00001L9'), asciiAttribute(AttributeId.APPLICATION_VENDOR, 'PTPVTS')]);
    expect(list.length).toBe(4 + 5 + 8 + 5 + 32);
    expect([...list.subarray(0, 4)]).toEqual([0, 0, 0, 50]);
    expect([...list.subarray(4, 9)]).toEqual([0x08, 0x00, 0x01, 0x00, 0x08]);
    expect(String.fromCharCode(...list.subarray(9, 17))).toBe('PTPVTS  ');
    expect([...list.subarray(17, 22)]).toEqual([0x08, 0x06, 0x01, 0x00, 0x20]);
  });

  it('rejects duplicates and oversize text', () => {
    expect(() => buildWriteAttributeList([binaryAttribute(3, 1), binaryAttribute(3, 2)])).toThrow(/twice/);
    expect(() => textAttribute(AttributeId.OWNING_HOST_TEXTUAL_NAME, 'x'.repeat(81))).toThrow(/at most 80/);
  });

  it('round-trips attributes through READ ATTRIBUTE parsing', () => {
    const attr = fc.oneof(
      fc.record({ id: fc.nat({ max: 0xffff }), v: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }).map(({ id, v }) => ({ a: binaryAttribute(id, v, 8), want: v as bigint | string })),
      fc.record({ id: fc.nat({ max: 0xffff }), s: fc.stringMatching(/^[ -~]{0,31}[!-~]$|^$/) }).map(({ id, s }) => ({ a: asciiAttribute(id, s, 32), want: s.trim() as bigint | string })),
      fc.record({ id: fc.nat({ max: 0xffff }), s: fc.string({ maxLength: 20 }).filter((s) => !s.includes('\0') && s === s.trimEnd()) }).map(({ id, s }) => ({ a: { ...textAttribute(0xffff, s), id }, want: s as bigint | string })),
    );
    fc.assert(
      fc.property(fc.uniqueArray(attr, { selector: (x) => x.a.id, maxLength: 6 }), (xs) => {
        const list = buildWriteAttributeList(xs.map((x) => x.a));
        // A READ ATTRIBUTE answer has the same layout; AVAILABLE DATA is the header.
        const { attributes, truncated } = parseAttributeValues(list);
        expect(truncated).toBe(false);
        const sorted = [...xs].sort((p, q) => p.a.id - q.a.id);
        expect(attributes.map((a) => [a.id, a.format, a.decoded])).toEqual(sorted.map((x) => [x.a.id, x.a.format, x.want]));
      }),
    );
  });

  it('binary attributes encode big-endian at their standard width', () => {
    expect([...binaryAttribute(AttributeId.MEDIUM_TYPE, 0x01).value]).toEqual([0x01]);
    expect(binaryAttribute(AttributeId.LOAD_COUNT, 258).value).toEqual(Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 2]));
    expect(asciiAttribute(AttributeId.APPLICATION_NAME, 'x').value.length).toBe(32);
    expect(asciiAttribute(AttributeId.APPLICATION_NAME, 'x').format).toBe(AttributeFormat.ascii);
  });
});
