import { describe, expect, it } from 'vitest';
import {
  naaOf,
  parseDeviceIdentification,
  parseInquiry,
  parseManufacturerSerialNumber,
  parseSequentialAccessCapabilities,
  parseSupportedVpdPages,
  parseUnitSerialNumber,
} from './parse-inquiry.js';
import { ScsiParseError } from './parse-common.js';

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

describe('parseInquiry', () => {
  it('decodes a tape drive standard INQUIRY as a device sends it', () => {
    const b = new Uint8Array(74);
    b[0] = 0x01; // qualifier 0, sequential access
    b[1] = 0x80; // RMB
    b[2] = 0x06; // SPC-4
    b[3] = 0x12; // HISUP + format 2
    b[4] = 74 - 5;
    b[5] = 0x08; // 3PC
    b[6] = 0x10; // MULTIP
    b[7] = 0x02; // CMDQUE
    b.set(ascii('PTPVTS  '), 8);
    b.set(ascii('ULT3580-TD9     '), 16);
    b.set(ascii('A1B2'), 32);
    b.set(ascii('SERIAL0001'), 36);
    b[58] = 0x00; b[59] = 0x60; // SAM-5
    b[60] = 0x04; b[61] = 0x60; // SPC-4
    const q = parseInquiry(b);
    expect(q).toMatchObject({
      peripheralQualifier: 0,
      deviceType: 1,
      removable: true,
      version: 6,
      hisup: true,
      responseDataFormat: 2,
      thirdPartyCopy: true,
      multip: true,
      cmdque: true,
      vendor: 'PTPVTS',
      product: 'ULT3580-TD9',
      revision: 'A1B2',
      versionDescriptors: [0x0060, 0x0460],
    });
    expect(String.fromCharCode(...q.vendorSpecific.subarray(0, 10))).toBe('SERIAL0001');
  });

  it('accepts the 36-byte minimum and rejects fewer than 5 bytes', () => {
    const b = new Uint8Array(36);
    b[0] = 0x08;
    b[4] = 31;
    expect(parseInquiry(b).deviceType).toBe(8);
    expect(parseInquiry(b).versionDescriptors).toEqual([]);
    expect(() => parseInquiry(new Uint8Array(4))).toThrow(ScsiParseError);
  });
});

describe('VPD pages', () => {
  it('00h lists supported pages', () => {
    expect(parseSupportedVpdPages(Uint8Array.from([0x01, 0x00, 0x00, 0x05, 0x00, 0x80, 0x83, 0xb0, 0xb1]))).toEqual([0x00, 0x80, 0x83, 0xb0, 0xb1]);
  });

  it('80h and B1h give trimmed serial numbers', () => {
    expect(parseUnitSerialNumber(Uint8Array.from([0x01, 0x80, 0x00, 0x08, ...ascii('1234  56')]))).toBe('1234  56');
    expect(parseUnitSerialNumber(Uint8Array.from([0x01, 0x80, 0x00, 0x06, ...ascii('  AB  ')]))).toBe('AB');
    expect(parseManufacturerSerialNumber(Uint8Array.from([0x01, 0xb1, 0x00, 0x04, ...ascii('M001')]))).toBe('M001');
  });

  it('rejects a page that is not the one asked for', () => {
    expect(() => parseUnitSerialNumber(Uint8Array.from([0x01, 0x83, 0x00, 0x00]))).toThrow(/page code 0x83/);
  });

  it('B0h decodes WORM and TSMC', () => {
    expect(parseSequentialAccessCapabilities(Uint8Array.from([0x01, 0xb0, 0x00, 0x02, 0x01, 0x00]))).toEqual({ worm: true, tsmc: false });
    expect(parseSequentialAccessCapabilities(Uint8Array.from([0x01, 0xb0, 0x00, 0x02, 0x02, 0x00]))).toEqual({ worm: false, tsmc: true });
  });

  it('83h decodes NAA, T10 vendor id and relative port designators', () => {
    const naa = [0x01, 0x03, 0x00, 0x08, 0x50, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
    const t10 = [0x02, 0x01, 0x00, 0x0c, ...ascii('PTPVTS  D001')];
    const port = [0x61, 0x94, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01]; // SAS, PIV, target port, relative port
    const body = [...naa, ...t10, ...port];
    const b = Uint8Array.from([0x01, 0x83, 0x00, body.length, ...body]);
    const ds = parseDeviceIdentification(b);
    expect(ds).toHaveLength(3);
    expect(ds[0]).toMatchObject({ codeSet: 1, designatorType: 3, association: 0, text: '5001020304050607' });
    expect(ds[1]).toMatchObject({ codeSet: 2, designatorType: 1, text: 'PTPVTS  D001' });
    expect(ds[2]).toMatchObject({ protocolIdentifier: 6, piv: true, association: 1, designatorType: 4 });
    expect(naaOf(ds)).toBe(0x5001020304050607n);
  });

  it('83h drops a descriptor cut by the allocation length', () => {
    const b = Uint8Array.from([0x01, 0x83, 0x00, 0x0c, 0x01, 0x03, 0x00, 0x08, 0x50, 0x01]);
    expect(parseDeviceIdentification(b)).toEqual([]);
  });
});
