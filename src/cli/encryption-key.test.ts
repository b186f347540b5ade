/**
 * `ptpvts sim ctl encryption` against a running `sim serve`: the key reaches the drive (a
 * host sees it in SECURITY PROTOCOL IN and its blocks are encrypted on the cartridge),
 * never the cartridge, state.json or the log; clear drops it; bad input fails with a
 * clear message.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTapeDrive } from '../../firmware-sim/ssc/index.js';
import { drivePersonality } from '../../firmware-sim/personalities/drives.js';
import { MediaChanger } from '../devices/media-changer.js';
import { SenseError } from '../devices/errors.js';
import { TapeDrive } from '../devices/tape-drive.js';
import { IscsiSession } from '../iscsi/session.js';
import { getU16 } from '../scsi/bytes.js';
import { IscsiPort } from '../transport/iscsi/index.js';
import { keyCheck, runEncryptionRequest, type DriveEncryptionStatus } from './encryption-key.js';
import { main } from './main.js';
import { memoryOut } from './output.js';
import { startSimServe, type SimServer } from './sim-serve.js';

const YAML = `
name: enc0
personality: PTPVTS-LIB
timeScale: 0
mediaDir: ./media
storageSlots: 4
drives:
  count: 2
  personality: LTO8
cartridges:
  - { barcode: ENC001L8, location: slot 1, capacity: 8MiB }
`;

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff));
const PLAIN = Buffer.from('ptpvts plaintext marker '.repeat(200));

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOut();
  const code = await main(['node', 'ptpvts', ...args], o);
  process.exitCode = undefined;
  return { code, out: o.lines.join('\n'), err: o.errors.join('\n') };
}

/** SECURITY PROTOCOL IN, tape data encryption, data encryption status page: modes and U-KAD. */
async function encryptionStatusPage(port: IscsiPort): Promise<{ encryption: number; decryption: number; ukad?: string }> {
  const cdb = new Uint8Array(12);
  cdb[0] = 0xa2;
  cdb[1] = 0x20;
  cdb[3] = 0x20;
  cdb[8] = 0x01;
  const r = await port.execute({ cdb, direction: 'in', dataInLength: 256, timeoutMs: 10_000 });
  const d = r.data;
  const out: { encryption: number; decryption: number; ukad?: string } = { encryption: d[5] ?? -1, decryption: d[6] ?? -1 };
  const end = 4 + getU16(d, 2);
  for (let off = 24; off + 4 <= end; off += 4 + getU16(d, off + 2)) if (d[off] === 0) out.ukad = Buffer.from(d.subarray(off + 4, off + 4 + getU16(d, off + 2))).toString();
  return out;
}

describe('ptpvts sim ctl encryption', () => {
  let dir: string;
  let lib: string;
  let server: SimServer;
  let log = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-enc-'));
    lib = join(dir, 'library.yaml');
    writeFileSync(lib, YAML);
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        log += chunk.toString();
        done();
      },
    });
    server = await startSimServe({ libraryPath: lib, portal: '127.0.0.1:0', logger: pino({ level: 'debug' }, sink), out: memoryOut() });
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sets a key from a file: hosts see it, blocks are encrypted on the cartridge, and the key is nowhere on disk or in the log', async () => {
    const t = server.served[0]!.target;
    const session = await IscsiSession.open({ host: '127.0.0.1', port: t.port, targetName: t.iqn, initiatorName: 'iqn.2026-12.io.ptpvts:enc-test' });
    try {
      const changer = new MediaChanger(new IscsiPort(session, 0));
      await changer.requestSense();
      const port = new IscsiPort(session, 1);
      const drive = new TapeDrive(port);
      const attentions = async (): Promise<string[]> => {
        const seen: string[] = [];
        for (let i = 0; i < 4; i++) {
          const e = await drive.testUnitReady().then(() => undefined, (x: unknown) => x);
          if (!(e instanceof SenseError) || e.key !== 0x06) break;
          seen.push(`${e.asc.toString(16)}/${e.ascq.toString(16)}`);
        }
        return seen;
      };
      await attentions();

      const keyFile = join(dir, 'drive1.key');
      writeFileSync(keyFile, `${KEY.toString('hex')}\n`, { mode: 0o600 });
      const set = await cli('sim', 'ctl', '-l', lib, 'encryption', 'set', '-d', '1', '--key-file', keyFile, '--ukad', 'backup-key-7', '--json');
      expect(set.code, set.err).toBe(0);
      const s = JSON.parse(set.out) as DriveEncryptionStatus;
      expect(s).toMatchObject({ drive: 1, encryption: 'encrypt', decryption: 'mixed', setBy: 'operator', keyCheck: keyCheck(KEY), ukad: Buffer.from('backup-key-7').toString('hex') });
      expect(set.out).not.toContain(KEY.toString('hex'));
      // The change reaches every initiator as a unit attention.
      expect(await attentions()).toEqual(['2a/12']);
      expect(await encryptionStatusPage(port)).toEqual({ encryption: 2, decryption: 3, ukad: 'backup-key-7' });

      const inv = await changer.inventory();
      await changer.move(inv.storage[0]!.address, inv.dataTransfer[0]!.address);
      await drive.waitReady({ timeoutMs: 30_000 });
      await drive.writeBlock(PLAIN);
      await drive.writeFilemarks(1);
      await drive.rewind();
      expect(Buffer.from((await drive.read(1 << 16)).data ?? [])).toEqual(PLAIN);

      const media = join(dir, 'media');
      const file = readFileSync(join(media, readdirSync(media).find((f) => f.startsWith('ENC001L8'))!));
      expect(file.includes(PLAIN.subarray(0, 48))).toBe(false);
      expect(file.includes(KEY)).toBe(false);
      expect(file.includes(Buffer.from(KEY.toString('hex')))).toBe(false);
      expect(file.includes(Buffer.from('backup-key-7'))).toBe(true); // the U-KAD goes with the block

      // Cleared: the drive writes in clear and cannot read the encrypted block any more.
      const cleared = await cli('sim', 'ctl', '-l', lib, 'encryption', 'clear', '-d', '1', '--json');
      expect(cleared.code, cleared.err).toBe(0);
      const c = JSON.parse(cleared.out) as DriveEncryptionStatus;
      expect(c).toMatchObject({ encryption: 'off', decryption: 'off' });
      expect(c.keyCheck).toBeUndefined();
      await drive.testUnitReady().catch(() => undefined);
      await drive.rewind();
      const e = await drive.read(1 << 16).then(() => undefined, (x: unknown) => x);
      expect(e instanceof SenseError && [e.key, e.asc, e.ascq]).toEqual([0x07, 0x74, 0x01]);
      await drive.rewind();
    } finally {
      await session.close();
    }
    const state = readFileSync(join(dir, 'state.json'), 'latin1');
    for (const form of [KEY.toString('hex'), KEY.toString('hex').toUpperCase(), KEY.toString('base64'), KEY.toString('latin1')]) {
      expect(state.includes(form)).toBe(false);
      expect(log.includes(form)).toBe(false);
    }
    expect(log).toMatch(/control: encryption-set/u);
  });

  it('shows every drive, in words and as JSON, never the key', async () => {
    expect((await cli('sim', 'ctl', '-l', lib, 'encryption', 'set', '-d', '2', '--key', KEY.toString('hex'), '--decrypt-only')).code).toBe(0);
    const words = await cli('sim', 'ctl', '-l', lib, 'encryption', 'show');
    expect(words.code, words.err).toBe(0);
    expect(words.out).toMatch(/^Drive 1 \(serial \S+\): no key; blocks are written in clear and encrypted ones are not read\.$/mu);
    expect(words.out).toMatch(new RegExp(`^Drive 2 \\(serial \\S+\\) writes in clear and decrypts \\(mixed\\) with key ${keyCheck(KEY)}, set by the operator; key instance \\d+\\.$`, 'mu'));
    const json = JSON.parse((await cli('sim', 'ctl', '-l', lib, 'encryption', 'show', '--json')).out) as DriveEncryptionStatus[];
    expect(json.map((d) => [d.drive, d.encryption, d.decryption])).toEqual([
      [1, 'off', 'off'],
      [2, 'off', 'mixed'],
    ]);
    expect(JSON.stringify(json)).not.toContain(KEY.toString('hex'));
    const one = JSON.parse((await cli('sim', 'ctl', '-l', lib, 'encryption', 'show', '-d', '2', '--json')).out) as DriveEncryptionStatus;
    expect(one.keyCheck).toBe(keyCheck(KEY));
    expect((await cli('sim', 'ctl', '-l', lib, 'encryption', 'clear', '-d', '2')).code).toBe(0);
  });

  it('refuses bad input with a message naming what is wrong', async () => {
    const bad = async (args: string[], msg: RegExp): Promise<void> => {
      const r = await cli('sim', 'ctl', '-l', lib, 'encryption', ...args);
      expect(r.code, r.out).toBe(1);
      expect(r.err).toMatch(msg);
    };
    const hex = KEY.toString('hex');
    await bad(['set', '-d', '1', '--key', hex.slice(2)], /--key must be 32 bytes as 64 hexadecimal digits \(got 62 characters\)/u);
    await bad(['set', '-d', '1', '--key', `${hex.slice(1)}g`], /not all hexadecimal/u);
    await bad(['set', '-d', '1'], /exactly one of --key-file FILE or --key HEX/u);
    const loose = join(dir, 'loose.key');
    writeFileSync(loose, KEY);
    chmodSync(loose, 0o644);
    await bad(['set', '-d', '1', '--key-file', loose], /may be read by others \(mode 644\); chmod 600/u);
    await bad(['set', '-d', '1', '--key-file', join(dir, 'missing.key')], /cannot read --key-file .*: no such file/u);
    const short = join(dir, 'short.key');
    writeFileSync(short, 'abcd', { mode: 0o600 });
    await bad(['set', '-d', '1', '--key-file', short], /holds neither a 32-byte key nor 64 hexadecimal digits \(4 bytes\)/u);
    await bad(['set', '-d', '1', '--key', hex, '--ukad', 'x'.repeat(33)], /--ukad must be at most 32 bytes \(got 33\)/u);
    await bad(['set', '-d', '1', '--key', hex, '--ukad-hex', 'abc'], /--ukad-hex: expected hexadecimal digits/u);
    await bad(['set', '-d', '3', '--key', hex], /there is no drive 3 \(this library has 2, numbered from 1\)/u);
    await bad(['set', '-d', '0', '--key', hex], /--drive-number must be an integer from 1/u);
    await bad(['show', '-d', '9'], /there is no drive 9/u);
  });

  it('a drive without encryption refuses a key; a key set by the operator survives the drive\'s power cycle', async () => {
    const plain = drivePersonality('ibm-lto5-hh');
    const lto3 = createTapeDrive({ personality: { ...plain, id: 'no-encryption-lto', features: { ...plain.features, encryption: false } }, serial: 'OLD1' });
    const lto8 = createTapeDrive({ personality: drivePersonality('ibm-lto8-hh'), serial: 'NEW1' });
    try {
      expect(() => runEncryptionRequest([lto3], { op: 'encryption-set', drive: 1, key: KEY.toString('hex'), mode: 'encrypt' })).toThrow(/drive 1 \(no-encryption-lto, serial OLD1\) cannot encrypt/u);
      runEncryptionRequest([lto8], { op: 'encryption-set', drive: 1, key: KEY.toString('hex'), mode: 'encrypt' });
      lto8.unit.powerCycle();
      expect(runEncryptionRequest([lto8], { op: 'encryption-show', drive: 1 })).toMatchObject({ encryption: 'encrypt', keyCheck: keyCheck(KEY) });
      runEncryptionRequest([lto8], { op: 'encryption-clear', drive: 1 });
      lto8.unit.powerCycle();
      expect(runEncryptionRequest([lto8], { op: 'encryption-show', drive: 1 })).toMatchObject({ encryption: 'off' });
    } finally {
      lto3.close();
      lto8.close();
    }
  });
});
