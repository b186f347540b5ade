/**
 * SECURITY PROTOCOL IN and OUT (SPC-4 6.30/6.31) with the tape data encryption protocol
 * 20h (SSC-4 8.5): in-support 0000h, out-support 0001h, data encryption capabilities
 * 0010h, supported key formats 0011h, data encryption status 0020h and next block
 * encryption status 0021h; SECURITY PROTOCOL OUT set data encryption 0010h. Protocol 00h
 * lists the protocols. One algorithm, index 01h: AES-256-GCM (security algorithm code
 * 00010014h), plain-text 256-bit keys. The parameters apply to every I_T nexus; the key
 * lives in the drive only and is dropped on power-on (and on demount with CKOD).
 */
import { getU16, getU32, setU16, setU32, setU64 } from '../../src/scsi/bytes.js';
import { invalidCdbField, invalidParamField, parameterListLengthError } from '../engine/check.js';
import { usage, type CommandSpec, type Exec, type HandlerResult } from '../engine/dispatch.js';
import { allocation } from '../engine/unit.js';
import { inspectBlock, keyOpens, MAX_AKAD, MAX_UKAD, type BlockKey } from './codec.js';
import type { TapeDrive } from './drive.js';
import { DriveSense } from './sense-codes.js';

export const SECURITY_PROTOCOL_IN = 0xa2;
export const SECURITY_PROTOCOL_OUT = 0xb5;
const TAPE_DATA_ENCRYPTION = 0x20;
const ALGORITHM_INDEX = 0x01;
const AES_256_GCM = 0x00010014;
const KEY_LENGTH = 32;

export const EncryptionMode = { disable: 0, external: 1, encrypt: 2 } as const;
export const DecryptionMode = { disable: 0, raw: 1, decrypt: 2, mixed: 3 } as const;

/** The data encryption parameters in force (one set for the drive). */
export interface EncryptionParameters {
  readonly encryptionMode: number;
  readonly decryptionMode: number;
  /** SCOPE as set (0 public, 1 local, 2 all I_T nexus); reported back as the I_T nexus scope. */
  readonly scope: number;
  readonly lock: boolean;
  /** Clear key on demount. */
  readonly ckod: boolean;
  readonly kadFormat: number;
  readonly key?: Uint8Array;
  readonly ukad?: Uint8Array;
  readonly akad?: Uint8Array;
  /** Who set them: a host with SECURITY PROTOCOL OUT, or the drive's configuration. */
  readonly setBy: 'host' | 'config';
}

/** How a drive's configuration (library YAML, CLI) sets a key without a host. */
export interface EncryptionConfig {
  /** 32 bytes (AES-256). */
  readonly key: Uint8Array;
  /** Written with each block as U-KAD, to tell keys apart (at most 32 bytes). */
  readonly ukad?: Uint8Array;
  /** `encrypt` (the default) writes encrypted blocks; `decrypt-only` only reads them. */
  readonly mode?: 'encrypt' | 'decrypt-only';
}

const DISABLED: EncryptionParameters = { encryptionMode: 0, decryptionMode: 0, scope: 0, lock: false, ckod: false, kadFormat: 0, setBy: 'host' };

/** The drive's encryption state. */
export class DataEncryption {
  params: EncryptionParameters = DISABLED;
  /** Incremented each time a key is set (data encryption status KEY INSTANCE COUNTER). */
  keyInstanceCounter = 0;

  constructor(private config?: EncryptionConfig) {
    if (config) this.configure(config);
  }

  /**
   * Replaces the drive's configured key (a key manager's, kept across power-on) and puts
   * it in force; `undefined` drops it and disables encryption, whoever had set it.
   */
  setConfig(c: EncryptionConfig | undefined): void {
    if (c) {
      this.configure(c);
      this.config = { ...c, key: Uint8Array.from(c.key), ...(c.ukad ? { ukad: Uint8Array.from(c.ukad) } : {}) };
    } else {
      this.config = undefined;
      this.params = { ...DISABLED, setBy: 'config' };
    }
  }

  /** Sets the parameters from configuration, as a management interface would. */
  configure(c: EncryptionConfig): void {
    if (!(c.key instanceof Uint8Array) || c.key.length !== KEY_LENGTH) throw new RangeError(`encryption key must be ${KEY_LENGTH} bytes (got ${c.key instanceof Uint8Array ? c.key.length : typeof c.key})`);
    if (c.ukad && c.ukad.length > MAX_UKAD) throw new RangeError(`encryption U-KAD must be at most ${MAX_UKAD} bytes (got ${c.ukad.length})`);
    const encrypt = (c.mode ?? 'encrypt') === 'encrypt';
    this.params = {
      encryptionMode: encrypt ? EncryptionMode.encrypt : EncryptionMode.disable,
      decryptionMode: DecryptionMode.mixed,
      scope: 2,
      lock: false,
      ckod: false,
      kadFormat: 0,
      key: Uint8Array.from(c.key),
      ...(c.ukad ? { ukad: Uint8Array.from(c.ukad) } : {}),
      setBy: 'config',
    };
    this.keyInstanceCounter++;
  }

  /** The key and KAD blocks are written with, when encrypting. */
  writeKey(): BlockKey | undefined {
    const p = this.params;
    if (p.encryptionMode !== EncryptionMode.encrypt || !p.key) return undefined;
    return { key: p.key, ...(p.ukad ? { ukad: p.ukad } : {}), ...(p.akad ? { akad: p.akad } : {}) };
  }

  /** The key for reading, when decryption is enabled. */
  readKey(): Uint8Array | undefined {
    const p = this.params;
    return p.decryptionMode === DecryptionMode.decrypt || p.decryptionMode === DecryptionMode.mixed ? p.key : undefined;
  }

  /** Demount: CKOD drops the key; configured keys stay (they belong to the drive). */
  onDemount(): void {
    if (this.params.ckod) this.params = DISABLED;
  }

  /** Power on: the key is gone unless the configuration gives it again. */
  onPowerOn(): void {
    this.params = DISABLED;
    if (this.config) this.configure(this.config);
  }
}

// ------------------------------------------------------------------ SECURITY PROTOCOL IN

function withLength(code: number, body: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + body.length);
  setU16(b, 0, code);
  setU16(b, 2, body.length);
  b.set(body, 4);
  return b;
}

function pageList(code: number, pages: readonly number[]): Uint8Array {
  const body = new Uint8Array(2 * pages.length);
  pages.forEach((p, i) => setU16(body, 2 * i, p));
  return withLength(code, body);
}

function capabilities(d: TapeDrive): Uint8Array {
  const body = new Uint8Array(16 + 24);
  body[0] = (0x01 << 2) | 0x01; // EXTDECC 01b: no external encryption; CFG_P 01b: parameters can be set
  const a = body.subarray(16);
  a[0] = ALGORITHM_INDEX;
  setU16(a, 2, 20);
  const mounted = d.state === 'loaded' && d.access !== 'incompatible';
  // AVFMV, DELB_C (encrypted blocks are told apart), DECRYPT_C and ENCRYPT_C 10b (in hardware).
  a[4] = (mounted ? 0x80 : 0) | 0x10 | (0x02 << 2) | 0x02;
  a[5] = 0x04; // VCELB_C: the status page reports whether the volume holds encrypted blocks
  setU16(a, 6, MAX_UKAD);
  setU16(a, 8, MAX_AKAD);
  setU16(a, 10, KEY_LENGTH);
  setU32(a, 20, AES_256_GCM);
  return withLength(0x0010, body);
}

/** Whether the loaded volume holds an encrypted block (status page VCELB), from the blocks read or written. */
function volumeHasEncryptedBlocks(d: TapeDrive): boolean {
  const m = d.media;
  if (!m || d.state !== 'loaded') return false;
  for (let i = 0; i < m.objectCount; i++) {
    if (m.object(i)?.kind !== 'block') continue;
    try {
      // The first block is enough on LTO (a volume is either encrypted or not, past its labels);
      // check up to a few so a plain label in front does not hide it.
      if (inspectBlock(m.readBlock(i)).encrypted) return true;
    } catch {
      return false;
    }
    if (i >= 8) return false;
  }
  return false;
}

function status(d: TapeDrive): Uint8Array {
  const e = d.encryption;
  const p = e.params;
  const kads = kadDescriptors(p.ukad, p.akad, 0);
  const body = new Uint8Array(20 + kads.length);
  body[0] = ((p.scope & 0x07) << 5) | (p.scope & 0x07); // I_T NEXUS SCOPE, KEY SCOPE
  body[1] = p.encryptionMode;
  body[2] = p.decryptionMode;
  body[3] = p.encryptionMode || p.decryptionMode ? ALGORITHM_INDEX : 0;
  setU32(body, 4, e.keyInstanceCounter);
  // PARAMETERS CONTROL 001b: set by the host or by a management interface; VCELB.
  body[8] = (0x01 << 4) | (volumeHasEncryptedBlocks(d) ? 0x08 : 0);
  body[9] = p.kadFormat;
  body.set(kads, 20);
  return withLength(0x0020, body);
}

function kadDescriptors(ukad: Uint8Array | undefined, akad: Uint8Array | undefined, akadAuthenticated: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const one = (type: number, auth: number, v: Uint8Array): void => {
    const b = new Uint8Array(4 + v.length);
    b[0] = type;
    b[1] = auth;
    setU16(b, 2, v.length);
    b.set(v, 4);
    parts.push(b);
  };
  if (ukad?.length) one(0x00, 0, ukad);
  if (akad?.length) one(0x01, akadAuthenticated, akad);
  const out = new Uint8Array(parts.reduce((n, q) => n + q.length, 0));
  let off = 0;
  for (const q of parts) {
    out.set(q, off);
    off += q.length;
  }
  return out;
}

async function nextBlockStatus(x: Exec<TapeDrive>): Promise<Uint8Array> {
  const d = x.device;
  const m = await d.ready(x.signal);
  const body = new Uint8Array(12);
  setU64(body, 0, d.position);
  const obj = m.object(d.position);
  let compression = 1;
  let encryption = 1;
  let kads: Uint8Array = new Uint8Array(0);
  if (obj?.kind === 'filemark') {
    compression = 2;
    encryption = 2;
  } else if (obj?.kind === 'block') {
    try {
      const payload = m.readBlock(d.position);
      const info = inspectBlock(payload);
      compression = info.compressed ? 4 : 3;
      if (!info.encrypted) encryption = 3;
      else {
        const opens = keyOpens(payload, info, d.encryption.readKey());
        encryption = opens ? 5 : 6;
        body[9] = ALGORITHM_INDEX;
        kads = kadDescriptors(info.ukad, info.akad, opens ? 2 : 1);
      }
    } catch {
      // A block that does not read: capable, but not able to tell now.
    }
  }
  body[8] = (compression << 4) | encryption;
  const out = new Uint8Array(body.length + kads.length);
  out.set(body, 0);
  out.set(kads, body.length);
  return withLength(0x0021, out);
}

async function securityProtocolIn(x: Exec<TapeDrive>): Promise<HandlerResult> {
  const protocol = x.cdb[1] ?? 0;
  const page = getU16(x.cdb, 2);
  const alloc = getU32(x.cdb, 6);
  if (protocol === 0x00) {
    // SPC-4 supported security protocols list.
    if (page !== 0x0000) invalidCdbField(2, 7);
    const b = new Uint8Array(8 + 2);
    setU16(b, 6, 2);
    b[8] = 0x00;
    b[9] = TAPE_DATA_ENCRYPTION;
    return allocation(b, alloc);
  }
  if (protocol !== TAPE_DATA_ENCRYPTION) invalidCdbField(1, 7);
  const d = x.device;
  switch (page) {
    case 0x0000:
      return allocation(pageList(0x0000, [0x0000, 0x0001, 0x0010, 0x0011, 0x0020, 0x0021]), alloc);
    case 0x0001:
      return allocation(pageList(0x0001, [0x0010]), alloc);
    case 0x0010:
      return allocation(capabilities(d), alloc);
    case 0x0011:
      return allocation(withLength(0x0011, Uint8Array.of(0x00)), alloc); // plain-text key only
    case 0x0020:
      return allocation(status(d), alloc);
    case 0x0021:
      return allocation(await nextBlockStatus(x), alloc);
    default:
      return invalidCdbField(2, 7);
  }
}

// ------------------------------------------------------------------ SECURITY PROTOCOL OUT

/** Parses a set data encryption page; every refusal points at the offending byte. */
export function parseSetDataEncryption(b: Uint8Array, setBy: 'host' | 'config' = 'host'): EncryptionParameters {
  if (b.length < 20) parameterListLengthError();
  if (getU16(b, 0) !== 0x0010) invalidParamField(0, 7);
  const len = getU16(b, 2);
  if (4 + len > b.length || len < 16) parameterListLengthError();
  const end = 4 + len;
  const scope = (b[4] ?? 0) >> 5;
  if (scope > 2) invalidParamField(4, 7);
  if ((b[4] ?? 0) & 0x1e) invalidParamField(4, 4);
  const b5 = b[5] ?? 0;
  if (b5 & 0x08) invalidParamField(5, 3); // SDK: supplemental decryption keys are not supported
  const rdmc = (b5 >> 4) & 0x03;
  if (rdmc === 1) invalidParamField(5, 5);
  const encryptionMode = b[6] ?? 0;
  const decryptionMode = b[7] ?? 0;
  if (encryptionMode !== EncryptionMode.disable && encryptionMode !== EncryptionMode.encrypt) invalidParamField(6, 7);
  if (decryptionMode !== DecryptionMode.disable && decryptionMode !== DecryptionMode.decrypt && decryptionMode !== DecryptionMode.mixed) invalidParamField(7, 7);
  const needKey = encryptionMode === EncryptionMode.encrypt || decryptionMode !== DecryptionMode.disable;
  if (needKey && (b[8] ?? 0) !== ALGORITHM_INDEX) invalidParamField(8, 7);
  if ((b[9] ?? 0) !== 0x00) invalidParamField(9, 7); // plain-text key format only
  const kadFormat = b[10] ?? 0;
  if (kadFormat > 2) invalidParamField(10, 7);
  const keyLength = getU16(b, 18);
  if (20 + keyLength > end) parameterListLengthError();
  if (needKey && keyLength !== KEY_LENGTH) invalidParamField(18, 7);
  const key = needKey ? Uint8Array.from(b.subarray(20, 20 + keyLength)) : undefined;
  let ukad: Uint8Array | undefined;
  let akad: Uint8Array | undefined;
  for (let off = 20 + keyLength; off < end; ) {
    if (off + 4 > end) parameterListLengthError();
    const type = b[off] ?? 0;
    const n = getU16(b, off + 2);
    if (off + 4 + n > end) parameterListLengthError();
    const v = Uint8Array.from(b.subarray(off + 4, off + 4 + n));
    if (type === 0x00) {
      if (n > MAX_UKAD) invalidParamField(off + 2, 7);
      ukad = v;
    } else if (type === 0x01) {
      if (n > MAX_AKAD) invalidParamField(off + 2, 7);
      akad = v;
    } else invalidParamField(off, 7); // nonce and M-KAD descriptors are not supported
    off += 4 + n;
  }
  return {
    encryptionMode,
    decryptionMode,
    scope,
    lock: ((b[4] ?? 0) & 0x01) !== 0,
    ckod: (b5 & 0x04) !== 0,
    kadFormat,
    ...(key ? { key } : {}),
    ...(ukad && encryptionMode === EncryptionMode.encrypt ? { ukad } : {}),
    ...(akad && encryptionMode === EncryptionMode.encrypt ? { akad } : {}),
    setBy,
  };
}

function securityProtocolOut(x: Exec<TapeDrive>): HandlerResult {
  const protocol = x.cdb[1] ?? 0;
  const page = getU16(x.cdb, 2);
  const len = getU32(x.cdb, 6);
  if (protocol !== TAPE_DATA_ENCRYPTION) invalidCdbField(1, 7);
  if (page !== 0x0010) invalidCdbField(2, 7);
  if (x.dataOut.length < len) parameterListLengthError();
  const d = x.device;
  const params = parseSetDataEncryption(x.dataOut.subarray(0, len));
  d.encryption.params = params;
  if (params.key) d.encryption.keyInstanceCounter++;
  d.unit.raise(DriveSense.DATA_ENCRYPTION_PARAMETERS_CHANGED_BY_ANOTHER_I_T_NEXUS, x.initiator);
  return undefined;
}

export const securityCommands: CommandSpec<TapeDrive>[] = [
  {
    opcode: SECURITY_PROTOCOL_IN,
    name: 'SECURITY PROTOCOL IN',
    usage: usage(12, { 1: 0xff, 2: 0xff, 3: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff }),
    handler: securityProtocolIn,
    nominalTimeout: 1,
    recommendedTimeout: 10,
  },
  {
    opcode: SECURITY_PROTOCOL_OUT,
    name: 'SECURITY PROTOCOL OUT',
    usage: usage(12, { 1: 0xff, 2: 0xff, 3: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff }),
    handler: securityProtocolOut,
    nominalTimeout: 1,
    recommendedTimeout: 10,
  },
];
