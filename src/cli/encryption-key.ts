/**
 * `ptpvts sim ctl encryption set|clear|show`: the operator's way to give a served drive its
 * data encryption key, as a library's key manager would (library-managed encryption),
 * without a host sending SECURITY PROTOCOL OUT. The key travels once over the control
 * socket (mode 0600, the serving user only) and lives in the drive's memory: it is not
 * logged, not written to `state.json` and never to a cartridge (blocks carry the U-KAD
 * only). It survives the drive's power cycles while the server runs, as a configured key
 * does; a restarted server starts without it, so it has to be set again. `show` names the
 * key by a key check value (the first 8 bytes of SHA-256 over a label and the key): enough
 * to tell two keys apart, nothing to recover one from.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { DecryptionMode, EncryptionMode } from '../../firmware-sim/ssc/security.js';
import { DriveSense } from '../../firmware-sim/ssc/sense-codes.js';
import type { TapeDriveUnit } from '../../firmware-sim/ssc/index.js';
import { UsageError } from './ops.js';
import type { Out } from './output.js';

/** AES-256: 32 bytes. */
export const KEY_BYTES = 32;
/** Longest U-KAD the drive writes with each block. */
export const MAX_UKAD_BYTES = 32;

const hexBytes = (max: number) =>
  z
    .string()
    .regex(/^(?:[0-9a-fA-F]{2})*$/u, 'expected hexadecimal digits, two per byte')
    .refine((s) => s.length / 2 <= max, { message: `at most ${max} bytes` });

/** The control requests of this command, as they travel on the socket. */
export const encryptionRequestSchemas = [
  z.strictObject({
    op: z.literal('encryption-set'),
    drive: z.number().int().min(1),
    key: z.string().regex(/^[0-9a-fA-F]{64}$/u, `expected the ${KEY_BYTES}-byte key as 64 hexadecimal digits`),
    ukad: hexBytes(MAX_UKAD_BYTES).optional(),
    mode: z.enum(['encrypt', 'decrypt-only']).default('encrypt'),
  }),
  z.strictObject({ op: z.literal('encryption-clear'), drive: z.number().int().min(1) }),
  z.strictObject({ op: z.literal('encryption-show'), drive: z.number().int().min(1).optional() }),
] as const;

export type EncryptionRequest = z.output<(typeof encryptionRequestSchemas)[number]>;

/** A drive's encryption as `show` reports it; never the key itself. */
export interface DriveEncryptionStatus {
  readonly drive: number;
  readonly serial: string;
  /** The drive can encrypt at all (its personality). */
  readonly capable: boolean;
  readonly encryption: 'off' | 'encrypt';
  readonly decryption: 'off' | 'raw' | 'decrypt' | 'mixed';
  /** Who set the parameters in force: the operator (this command or the configuration) or a host (SECURITY PROTOCOL OUT). */
  readonly setBy: 'operator' | 'host';
  /** Key check value of the key in force, when there is one. */
  readonly keyCheck?: string;
  /** U-KAD written with each block, hexadecimal. */
  readonly ukad?: string;
  /** KEY INSTANCE COUNTER: it moves on each time a key is set. */
  readonly keyInstance: number;
}

/** A short value naming a key without revealing it. */
export function keyCheck(key: Uint8Array): string {
  return createHash('sha256').update('ptpvts key check value\0').update(key).digest('hex').slice(0, 16);
}

const DECRYPTION_NAMES = { [DecryptionMode.disable]: 'off', [DecryptionMode.raw]: 'raw', [DecryptionMode.decrypt]: 'decrypt', [DecryptionMode.mixed]: 'mixed' } as const;

export function encryptionStatus(unit: TapeDriveUnit, n: number): DriveEncryptionStatus {
  const d = unit.drive;
  const p = d.encryption.params;
  return {
    drive: n,
    serial: d.serial,
    capable: d.personality.features.encryption,
    encryption: p.encryptionMode === EncryptionMode.encrypt ? 'encrypt' : 'off',
    decryption: DECRYPTION_NAMES[p.decryptionMode as keyof typeof DECRYPTION_NAMES] ?? 'off',
    setBy: p.setBy === 'config' ? 'operator' : 'host',
    ...(p.key ? { keyCheck: keyCheck(p.key) } : {}),
    ...(p.ukad?.length ? { ukad: Buffer.from(p.ukad).toString('hex') } : {}),
    keyInstance: d.encryption.keyInstanceCounter,
  };
}

/** Why a request cannot be done: `code` for the control protocol. */
export class EncryptionRequestError extends Error {
  override readonly name = 'EncryptionRequestError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Carries out one request on the drives of a served library. Setting or clearing tells
 * every initiator (DATA ENCRYPTION PARAMETERS CHANGED BY VENDOR SPECIFIC EVENT), as a drive
 * does when its key manager changes the key.
 */
export function runEncryptionRequest(drives: readonly TapeDriveUnit[], req: EncryptionRequest): DriveEncryptionStatus | DriveEncryptionStatus[] {
  const unitOf = (n: number): TapeDriveUnit => {
    const u = drives[n - 1];
    if (!u) throw new EncryptionRequestError('no-such-drive', `there is no drive ${n} (this library has ${drives.length}, numbered from 1)`);
    return u;
  };
  if (req.op === 'encryption-show') {
    if (req.drive !== undefined) return encryptionStatus(unitOf(req.drive), req.drive);
    return drives.map((u, i) => encryptionStatus(u, i + 1));
  }
  const u = unitOf(req.drive);
  if (!u.drive.personality.features.encryption) throw new EncryptionRequestError('no-encryption', `drive ${req.drive} (${u.drive.personality.id}, serial ${u.drive.serial}) cannot encrypt: its personality has no encryption`);
  if (req.op === 'encryption-set') {
    const key = Buffer.from(req.key, 'hex');
    try {
      u.drive.configureEncryption({ key, mode: req.mode, ...(req.ukad ? { ukad: Buffer.from(req.ukad, 'hex') } : {}) });
    } finally {
      key.fill(0);
    }
  } else u.drive.configureEncryption(undefined);
  u.unit.raise(DriveSense.DATA_ENCRYPTION_PARAMETERS_CHANGED_BY_VENDOR_SPECIFIC_EVENT);
  return encryptionStatus(u, req.drive);
}

// ------------------------------------------------------------------ the CLI side

/**
 * Reads a key file: the 32 key bytes as they are, or as 64 hexadecimal digits (blanks and
 * a final newline allowed). Refused when others than its owner may read it.
 */
export function readKeyFile(path: string): string {
  let data: Buffer;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UsageError(`--key-file ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) throw new UsageError(`--key-file ${path} may be read by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it first`);
    data = readFileSync(path);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`cannot read --key-file ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  try {
    if (data.length === KEY_BYTES) return data.toString('hex');
    const text = data.toString('latin1').replace(/\s+/gu, '');
    if (/^[0-9a-fA-F]{64}$/u.test(text)) return text.toLowerCase();
    throw new UsageError(`--key-file ${path} holds neither a ${KEY_BYTES}-byte key nor 64 hexadecimal digits (${data.length} bytes)`);
  } finally {
    data.fill(0);
  }
}

/** The options of `encryption set`, checked: where the key comes from and its KAD. */
export const setOptionsSchema = z
  .object({
    driveNumber: z.number().int().min(1),
    key: z.string().optional(),
    keyFile: z.string().optional(),
    ukad: z.string().optional(),
    ukadHex: z.string().optional(),
    decryptOnly: z.boolean().optional(),
    json: z.boolean().optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.key === undefined) === (o.keyFile === undefined)) ctx.addIssue({ code: 'custom', path: ['key'], message: 'give the key with exactly one of --key-file FILE or --key HEX' });
    if (o.key !== undefined && !/^[0-9a-fA-F]{64}$/u.test(o.key)) ctx.addIssue({ code: 'custom', path: ['key'], message: `--key must be ${KEY_BYTES} bytes as 64 hexadecimal digits (got ${o.key.length} characters${/^[0-9a-fA-F]*$/u.test(o.key) ? '' : ', not all hexadecimal'})` });
    if (o.ukad !== undefined && o.ukadHex !== undefined) ctx.addIssue({ code: 'custom', path: ['ukad'], message: 'give the U-KAD with one of --ukad TEXT or --ukad-hex HEX' });
    if (o.ukad !== undefined && Buffer.byteLength(o.ukad, 'utf8') > MAX_UKAD_BYTES) ctx.addIssue({ code: 'custom', path: ['ukad'], message: `--ukad must be at most ${MAX_UKAD_BYTES} bytes (got ${Buffer.byteLength(o.ukad, 'utf8')})` });
    if (o.ukadHex !== undefined) {
      const r = hexBytes(MAX_UKAD_BYTES).safeParse(o.ukadHex);
      if (!r.success) ctx.addIssue({ code: 'custom', path: ['ukadHex'], message: `--ukad-hex: ${r.error.issues[0]?.message ?? 'invalid'}` });
    }
  });

function parseOptions<T>(schema: z.ZodType<T>, o: unknown): T {
  const r = schema.safeParse(o);
  if (!r.success) throw new UsageError(r.error.issues.map((i) => i.message).join('; '));
  return r.data;
}

function describe(s: DriveEncryptionStatus): string {
  const who = s.setBy === 'operator' ? 'the operator' : 'a host (SECURITY PROTOCOL OUT)';
  const head = `Drive ${s.drive} (serial ${s.serial})`;
  if (!s.capable) return `${head} cannot encrypt.`;
  if (!s.keyCheck) return `${head}: no key; blocks are written in clear${s.decryption === 'off' ? ' and encrypted ones are not read' : ''}.`;
  const ukad = s.ukad ? `, U-KAD ${s.ukad}` : '';
  const what = s.encryption === 'encrypt' ? 'encrypts what it writes' : 'writes in clear';
  return `${head} ${what} and decrypts (${s.decryption}) with key ${s.keyCheck}${ukad}, set by ${who}; key instance ${s.keyInstance}.`;
}

const driveNumber = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--drive-number must be an integer from 1 (got "${v}")`);
  return n;
};

/** Adds `encryption set|clear|show` under `sim ctl`; `ask` sends one control request. */
export function registerEncryptionCommands(ctl: Command, ask: (req: Record<string, unknown>) => Promise<unknown>, out: Out): void {
  const enc = ctl.command('encryption').description("set, clear or show a served drive's data encryption key (AES-256-GCM), as a key manager would");
  const print = (json: boolean | undefined, s: DriveEncryptionStatus | DriveEncryptionStatus[]): void => {
    if (json) out.line(JSON.stringify(s, null, 2));
    else for (const x of Array.isArray(s) ? s : [s]) out.line(describe(x));
  };
  enc
    .command('set')
    .description('give drive N a key: blocks it writes are encrypted (unless --decrypt-only) and encrypted blocks it reads are decrypted. The key stays in the running server only')
    .requiredOption('-d, --drive-number <n>', 'drive number, from 1', driveNumber)
    .option('--key-file <file>', `file holding the key: ${KEY_BYTES} bytes, or 64 hexadecimal digits (mode 600)`)
    .option('--key <hex>', 'the key as 64 hexadecimal digits (seen by anyone who lists processes; prefer --key-file)')
    .option('--ukad <text>', `unauthenticated key-associated data written with each block, to tell keys apart (at most ${MAX_UKAD_BYTES} bytes)`)
    .option('--ukad-hex <hex>', 'the U-KAD as hexadecimal bytes')
    .option('--decrypt-only', 'read encrypted blocks, write in clear')
    .option('--json', 'print the drive\'s encryption state as JSON')
    .action(async (raw: Record<string, unknown>) => {
      const o = parseOptions(setOptionsSchema, raw);
      if (o.key !== undefined) out.note('Note: a key given with --key is visible in the process list while the command runs; --key-file keeps it out.');
      const key = o.keyFile !== undefined ? readKeyFile(o.keyFile) : o.key!.toLowerCase();
      const ukad = o.ukadHex ?? (o.ukad === undefined ? undefined : Buffer.from(o.ukad, 'utf8').toString('hex'));
      const s = (await ask({ op: 'encryption-set', drive: o.driveNumber, key, mode: o.decryptOnly ? 'decrypt-only' : 'encrypt', ...(ukad ? { ukad } : {}) })) as DriveEncryptionStatus;
      print(o.json, s);
    });
  enc
    .command('clear')
    .description('drop drive N\'s key (whoever set it): it writes in clear and cannot read encrypted blocks')
    .requiredOption('-d, --drive-number <n>', 'drive number, from 1', driveNumber)
    .option('--json', 'print the drive\'s encryption state as JSON')
    .action(async (o: { driveNumber: number; json?: boolean }) => {
      print(o.json, (await ask({ op: 'encryption-clear', drive: o.driveNumber })) as DriveEncryptionStatus);
    });
  enc
    .command('show')
    .description('the encryption state of one drive or of all: mode, key check value (never the key), U-KAD, who set it')
    .option('-d, --drive-number <n>', 'drive number, from 1 (default: every drive)', driveNumber)
    .option('--json', 'print as JSON')
    .action(async (o: { driveNumber?: number; json?: boolean }) => {
      print(o.json, (await ask({ op: 'encryption-show', ...(o.driveNumber === undefined ? {} : { drive: o.driveNumber }) })) as DriveEncryptionStatus | DriveEncryptionStatus[]);
    });
}
