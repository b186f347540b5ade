/**
 * The topology file of a PtP system (YAML, validated with zod): the PtP id, the cluster
 * secret, the VTCs (with each one's public key and private key file) and both VTS with
 * their addresses and directories, the operator's public key, an optional physical
 * library per VTS, the initial threshold and the protocol timers. Paths are relative to
 * the file. Reference: docs/topology.md.
 */
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Timing } from '../ptp/engine.js';
import { Ed25519Keys, importPrivateKey, importPublicKey, PUBLIC_KEY_PATTERN } from '../ptp/mac.js';
import type { VtsName } from '../ptp/types.js';
import { MIN_PSK_BYTES } from '../platform/net.js';
import type { TlsSettings } from '../platform/net.js';
import type { Address } from '../vtc/agent.js';

export class TopologyError extends Error {
  override readonly name = 'TopologyError';
  readonly code = 'ETOPOLOGY';
  readonly field: string;
  constructor(field: string, message: string, cause?: unknown) {
    super(field === '' ? message : `${field}: ${message}`, cause === undefined ? undefined : { cause });
    this.field = field;
  }
}

const address = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7101').refine((s) => Number(s.split(':').pop()) <= 65535, 'port must be at most 65535');
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, dot, dash and underscore, at most 64');
const ms = z.number().int().positive();
const publicKey = z.string().regex(PUBLIC_KEY_PATTERN, 'expected an Ed25519 public key: 43 base64url characters, as `ptpvts keys generate` writes it');

const timingSchema = z
  .object({
    tick: ms,
    heartbeatTimeout: ms,
    ackTimeout: ms,
    vtsOpTimeout: ms,
    returnGrace: z.number().int().nonnegative(),
    electionTimeout: ms,
    pendingTimeout: ms,
    helloInterval: ms,
    expediteTimeout: ms,
    stagger: z.number().int().nonnegative(),
  })
  .partial()
  .strict();

const librarySchema = z
  .object({
    /** Library YAML of an emulated library (docs/library-yaml.md). */
    yaml: z.string().min(1),
    /** Cartridges this VTS owns: barcodes, or a barcode prefix. */
    cartridges: z.union([z.array(z.string().min(1)).min(1), z.object({ prefix: z.string().min(1) }).strict()]),
  })
  .strict();

/** TLS between VTCs (and the operator) and the VTS: a pre-shared key file, or the CA of the certificates. */
const tlsSchema = z
  .object({
    /** File with the pre-shared key: hex or base64, at least MIN_PSK_BYTES bytes. */
    psk: z.string().min(1).optional(),
    /** PEM of the certificate authority every process trusts. */
    ca: z.string().min(1).optional(),
  })
  .strict();

/** A process's own certificate and key (PEM files), with `tls.ca`. */
const tlsIdentitySchema = z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict();

const vtsSchema = z
  .object({
    listen: address,
    cacheDir: z.string().min(1),
    stateDir: z.string().min(1),
    library: librarySchema.optional(),
    tls: tlsIdentitySchema.optional(),
  })
  .strict();

const vtcSchema = z
  .object({
    id: name,
    listen: address,
    control: address.optional(),
    journalDir: z.string().min(1),
    /** The iSCSI portal of this VTC's virtual library for hosts (docs/host-library.md). */
    library: address.optional(),
    preferredVts: z.enum(['A', 'B']).optional(),
    /** Signs this VTC's keys, commit records and ballots; every process verifies with it. */
    publicKey: publicKey.optional(),
    /** The matching private key (PKCS#8 PEM); only this VTC's process reads it. */
    keyFile: z.string().min(1).optional(),
    tls: tlsIdentitySchema.optional(),
  })
  .strict();

const operatorSchema = z
  .object({
    /** Every operator request to a control endpoint carries a signature it verifies. */
    publicKey,
    /** The matching private key; only the operator's console reads it. */
    keyFile: z.string().min(1).optional(),
    tls: tlsIdentitySchema.optional(),
  })
  .strict();

export const topologySchema = z
  .object({
    ptpId: name,
    secret: z.string().min(16, 'the cluster secret must be at least 16 characters').optional(),
    secretFile: z.string().min(1).optional(),
    threshold: z.number().int().nonnegative().optional(),
    copyMode: z.enum(['immediate', 'deferred']).default('immediate'),
    ioSelection: z.enum(['preferred', 'balanced']).default('preferred'),
    timing: timingSchema.default({}),
    vtcs: z.array(vtcSchema).min(2, 'a PtP system needs at least two VTCs'),
    vts: z.object({ A: vtsSchema, B: vtsSchema }).strict(),
    operator: operatorSchema.optional(),
    /** The volume catalogue the VTCs' virtual libraries share (default: catalogue.json beside the first VTC's journal directory). */
    catalogue: z.string().min(1).optional(),
    /** Off when absent: VTCs and VTS speak plain TCP (frames are authenticated either way). */
    tls: tlsSchema.optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if ((t.secret === undefined) === (t.secretFile === undefined)) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'give exactly one of secret and secretFile' });
    if (t.tls !== undefined && (t.tls.psk === undefined) === (t.tls.ca === undefined)) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'give exactly one of psk (a pre-shared key file) and ca (the certificate authority of per-process certificates)' });
    const certs = t.tls?.ca !== undefined;
    const own = (has: boolean, path: (string | number)[], who: string): void => {
      if (certs && !has) ctx.addIssue({ code: 'custom', path: [...path, 'tls'], message: `missing: with tls.ca, ${who} needs tls: { cert, key } (its certificate and private key, PEM)` });
      if (!certs && has) ctx.addIssue({ code: 'custom', path: [...path, 'tls'], message: 'a certificate is only used with tls.ca at the top level of the topology' });
    };
    own(t.vts.A.tls !== undefined, ['vts', 'A'], 'VTS A');
    own(t.vts.B.tls !== undefined, ['vts', 'B'], 'VTS B');
    t.vtcs.forEach((v, i) => own(v.tls !== undefined, ['vtcs', i], `VTC ${v.id}`));
    if (!certs && t.operator?.tls !== undefined) own(true, ['operator'], 'the operator');
    const ids = new Set<string>();
    const keys = new Map<string, string>();
    if (t.operator !== undefined) keys.set(t.operator.publicKey, 'the operator');
    t.vtcs.forEach((v, i) => {
      if (ids.has(v.id)) ctx.addIssue({ code: 'custom', path: ['vtcs', i, 'id'], message: `duplicate VTC id ${v.id}` });
      ids.add(v.id);
      // A shared key would let one of them sign as the other.
      const holder = v.publicKey === undefined ? undefined : keys.get(v.publicKey);
      if (holder !== undefined) ctx.addIssue({ code: 'custom', path: ['vtcs', i, 'publicKey'], message: `the same public key as ${holder}: each VTC needs its own key` });
      if (v.publicKey !== undefined) keys.set(v.publicKey, v.id);
    });
    if (t.threshold !== undefined && t.threshold >= t.vtcs.length) {
      ctx.addIssue({ code: 'custom', path: ['threshold'], message: `must be below the number of VTCs (${t.vtcs.length}): 0 <= T < n` });
    }
    const seen = new Map<string, string>();
    const claim = (a: string | undefined, what: string, path: (string | number)[]): void => {
      if (a === undefined) return;
      const other = seen.get(a);
      if (other !== undefined) ctx.addIssue({ code: 'custom', path, message: `address ${a} is already used by ${other}` });
      seen.set(a, what);
    };
    t.vtcs.forEach((v, i) => {
      claim(v.listen, `${v.id} listen`, ['vtcs', i, 'listen']);
      claim(v.control ?? defaultControl(v.listen), `${v.id} control`, ['vtcs', i, 'control']);
      claim(v.library, `${v.id} library`, ['vtcs', i, 'library']);
    });
    claim(t.vts.A.listen, 'VTS A', ['vts', 'A', 'listen']);
    claim(t.vts.B.listen, 'VTS B', ['vts', 'B', 'listen']);
  });

export type TopologyFile = z.infer<typeof topologySchema>;

export interface VtcTopology {
  readonly id: string;
  readonly listen: Address;
  readonly control: Address;
  readonly journalDir: string;
  /** The portal of its virtual library when the topology names one (`ptp run` serves one per VTC regardless: 127.0.0.1:3270 + its index). */
  readonly library: Address | undefined;
  readonly preferredVts: VtsName | undefined;
  readonly publicKey: string | undefined;
  /** Absolute path of the private key file. */
  readonly keyFile: string | undefined;
  /** Absolute paths of its TLS certificate and key (with `tls.ca`). */
  readonly tls?: TlsIdentityFiles | undefined;
}

export interface TlsIdentityFiles {
  readonly cert: string;
  readonly key: string;
}

/** The topology's `tls` section, loaded: the pre-shared key's bytes, or the CA's PEM. */
export type TopologyTls = { readonly psk: Uint8Array; readonly pskFile: string } | { readonly ca: string; readonly caFile: string };

export interface VtsTopology {
  readonly name: VtsName;
  readonly listen: Address;
  readonly cacheDir: string;
  readonly stateDir: string;
  readonly library: { readonly yaml: string; readonly cartridges: readonly string[] | { readonly prefix: string } } | undefined;
  /** Absolute paths of its TLS certificate and key (with `tls.ca`). */
  readonly tls?: TlsIdentityFiles | undefined;
}

/** A validated topology with paths resolved and the secret loaded. */
export interface Topology {
  readonly path: string;
  readonly ptpId: string;
  readonly secret: string;
  readonly threshold: number | undefined;
  readonly copyMode: 'immediate' | 'deferred';
  readonly ioSelection: 'preferred' | 'balanced';
  readonly timing: Partial<Timing>;
  readonly vtcs: readonly VtcTopology[];
  readonly vts: Readonly<Record<VtsName, VtsTopology>>;
  readonly operator: { readonly publicKey: string; readonly keyFile: string | undefined; readonly tls?: TlsIdentityFiles | undefined } | undefined;
  /** Absolute path of the volume catalogue of the virtual libraries. */
  readonly catalogue: string;
  /** TLS between VTCs (and the operator) and the VTS; undefined: plain TCP. */
  readonly tls?: TopologyTls | undefined;
}

/**
 * A pre-shared key file's bytes: hex (64 digits for 32 bytes) or base64, whitespace ignored.
 * Throws a message naming what is wrong.
 */
export function decodePsk(text: string): Uint8Array {
  const t = text.replace(/\s+/g, '');
  let bytes: Uint8Array;
  if (t.length > 0 && t.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(t)) bytes = Buffer.from(t, 'hex');
  else if (t.length > 0 && /^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) bytes = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  else throw new Error('expected the key as hex or base64');
  if (bytes.length < MIN_PSK_BYTES) throw new Error(`the key has ${bytes.length} bytes: at least ${MIN_PSK_BYTES} are needed (make one with: openssl rand -hex 32)`);
  return bytes;
}

function defaultControl(listen: string): string {
  const i = listen.lastIndexOf(':');
  return `${listen.slice(0, i)}:${Number(listen.slice(i + 1)) + 100}`;
}

export function parseAddress(s: string): Address {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** Validates a parsed topology document; throws {@link TopologyError} naming the first bad field. */
export function validateTopology(doc: unknown, path = '(inline)', readSecret: (p: string) => string = (p) => readFileSync(p, 'utf8')): Topology {
  const r = topologySchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0];
    const field = i === undefined ? '' : i.path.join('.');
    const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem(s))` : '';
    throw new TopologyError(field, `${i?.message ?? 'invalid topology'}${more}`, r.error);
  }
  const t = r.data;
  const base = path === '(inline)' ? process.cwd() : dirname(resolve(path));
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  let secret = t.secret;
  if (secret === undefined && t.secretFile !== undefined) {
    try {
      secret = readSecret(abs(t.secretFile)).trim();
    } catch (e) {
      throw new TopologyError('secretFile', `cannot read ${abs(t.secretFile)}: ${(e as Error).message}`, e);
    }
    if (secret.length < 16) throw new TopologyError('secretFile', 'the cluster secret must be at least 16 characters');
  }
  let tls: TopologyTls | undefined;
  if (t.tls?.psk !== undefined) {
    const f = abs(t.tls.psk);
    let text: string;
    try {
      text = readSecret(f);
    } catch (e) {
      throw new TopologyError('tls.psk', `cannot read ${f}: ${(e as Error).message}`, e);
    }
    try {
      tls = { psk: decodePsk(text), pskFile: f };
    } catch (e) {
      throw new TopologyError('tls.psk', `${f}: ${(e as Error).message}`, e);
    }
  } else if (t.tls?.ca !== undefined) {
    const f = abs(t.tls.ca);
    let ca: string;
    try {
      ca = readSecret(f);
    } catch (e) {
      throw new TopologyError('tls.ca', `cannot read ${f}: ${(e as Error).message}`, e);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new TopologyError('tls.ca', `${f} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    tls = { ca, caFile: f };
  }
  const identity = (x: { cert: string; key: string } | undefined): TlsIdentityFiles | undefined => (x === undefined ? undefined : { cert: abs(x.cert), key: abs(x.key) });
  const vts = (x: VtsName): VtsTopology => {
    const v = t.vts[x];
    return {
      name: x,
      listen: parseAddress(v.listen),
      cacheDir: abs(v.cacheDir),
      stateDir: abs(v.stateDir),
      library: v.library === undefined ? undefined : { yaml: abs(v.library.yaml), cartridges: v.library.cartridges },
      tls: identity(v.tls),
    };
  };
  return {
    path,
    ptpId: t.ptpId,
    secret: secret ?? '',
    threshold: t.threshold,
    copyMode: t.copyMode,
    ioSelection: t.ioSelection,
    timing: t.timing,
    vtcs: t.vtcs.map((v) => ({
      id: v.id,
      listen: parseAddress(v.listen),
      control: parseAddress(v.control ?? defaultControl(v.listen)),
      journalDir: abs(v.journalDir),
      library: v.library === undefined ? undefined : parseAddress(v.library),
      preferredVts: v.preferredVts,
      publicKey: v.publicKey,
      keyFile: v.keyFile === undefined ? undefined : abs(v.keyFile),
      tls: identity(v.tls),
    })),
    vts: { A: vts('A'), B: vts('B') },
    operator: t.operator === undefined ? undefined : { publicKey: t.operator.publicKey, keyFile: t.operator.keyFile === undefined ? undefined : abs(t.operator.keyFile), tls: identity(t.operator.tls) },
    catalogue: t.catalogue !== undefined ? abs(t.catalogue) : join(dirname(abs(t.vtcs[0]!.journalDir)), 'catalogue.json'),
    tls,
  };
}

/** Reads and validates a topology file. Throws {@link TopologyError} (unreadable file, YAML syntax, or a bad field). */
export function loadTopology(path: string): Topology {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TopologyError('', `cannot read topology file ${path}: ${(e as Error).message}`, e);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new TopologyError('', `${path} is not valid YAML: ${(e as Error).message}`, e);
  }
  return validateTopology(doc, path);
}

export function vtcOf(t: Topology, id: string): VtcTopology {
  const v = t.vtcs.find((x) => x.id === id);
  if (v === undefined) throw new TopologyError('vtcs', `no VTC with id ${JSON.stringify(id)} (configured: ${t.vtcs.map((x) => x.id).join(', ')})`);
  return v;
}

const GENERATE_HINT = 'generate keys with: ptpvts keys generate -t <topology> --out <dir>';

function readKeyFile(field: string, path: string | undefined, read: (p: string) => string): KeyObject {
  if (path === undefined) throw new TopologyError(field, `missing: the private key file is needed here (${GENERATE_HINT})`);
  let text: string;
  try {
    text = read(path);
  } catch (e) {
    throw new TopologyError(field, `cannot read ${path}: ${(e as Error).message}`, e);
  }
  try {
    return importPrivateKey(text, path);
  } catch (e) {
    throw new TopologyError(field, (e as Error).message, e);
  }
}

function publicKeyOf(field: string, text: string | undefined): KeyObject {
  if (text === undefined) throw new TopologyError(field, `missing: every VTC and the operator need a public key in the topology (${GENERATE_HINT})`);
  try {
    return importPublicKey(text, field);
  } catch (e) {
    throw new TopologyError(field, (e as Error).message, e);
  }
}

/** The operator's public key. Throws {@link TopologyError} when the topology has none. */
export function operatorPublicKey(t: Topology): KeyObject {
  return publicKeyOf('operator.publicKey', t.operator?.publicKey);
}

/**
 * What VTC `id` signs and verifies with: its private key (from its key file), every VTC's
 * public key, and the operator's. Throws {@link TopologyError} naming the missing or bad field.
 */
export function loadVtcKeys(t: Topology, id: string, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): { keys: Ed25519Keys; operatorKey: KeyObject } {
  const publicKeys = new Map(t.vtcs.map((v, i) => [v.id, publicKeyOf(`vtcs.${i}.publicKey`, v.publicKey)]));
  const i = t.vtcs.findIndex((v) => v.id === id);
  const me = vtcOf(t, id);
  const privateKey = readKeyFile(`vtcs.${i}.keyFile`, me.keyFile, read);
  let keys: Ed25519Keys;
  try {
    keys = new Ed25519Keys(publicKeys, { id, privateKey });
  } catch (e) {
    throw new TopologyError(`vtcs.${i}.keyFile`, (e as Error).message, e);
  }
  return { keys, operatorKey: operatorPublicKey(t) };
}

/** The operator's private key, checked against the public key the VTCs verify with. */
export function loadOperatorKey(t: Topology, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): KeyObject {
  const pub = operatorPublicKey(t);
  const key = readKeyFile('operator.keyFile', t.operator?.keyFile, read);
  try {
    new Ed25519Keys(new Map([['operator', pub]]), { id: 'operator', privateKey: key });
  } catch (e) {
    throw new TopologyError('operator.keyFile', (e as Error).message, e);
  }
  return key;
}

/** Who a process is, for {@link tlsFor}: a VTS, a VTC by id, or the operator's console. */
export type TlsParty = { readonly vts: VtsName } | { readonly vtc: string } | 'operator';

/**
 * The TLS settings of one process of the topology, or undefined when the topology has no
 * `tls` section. With a pre-shared key every process uses it (the identity is its own
 * name); with certificates the process's own certificate and key are read and checked to
 * belong together. Throws {@link TopologyError} naming the missing or bad field.
 */
export function tlsFor(t: Topology, who: TlsParty, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): TlsSettings | undefined {
  const tls = t.tls;
  if (tls === undefined) return undefined;
  const name = who === 'operator' ? 'operator' : 'vts' in who ? `vts-${who.vts}` : who.vtc;
  if ('psk' in tls) return { psk: tls.psk, identity: name };
  let field: string;
  let files: TlsIdentityFiles | undefined;
  if (who === 'operator') {
    field = 'operator.tls';
    files = t.operator?.tls;
  } else if ('vts' in who) {
    field = `vts.${who.vts}.tls`;
    files = t.vts[who.vts].tls;
  } else {
    const i = t.vtcs.findIndex((v) => v.id === who.vtc);
    field = `vtcs.${i}.tls`;
    files = vtcOf(t, who.vtc).tls;
  }
  if (files === undefined) throw new TopologyError(field, `missing: with tls.ca, ${name} needs tls: { cert, key } (its certificate and private key, PEM)`);
  const load = (f: 'cert' | 'key'): string => {
    try {
      return read(files[f]);
    } catch (e) {
      throw new TopologyError(`${field}.${f}`, `cannot read ${files[f]}: ${(e as Error).message}`, e);
    }
  };
  const settings = { ca: tls.ca, cert: load('cert'), key: load('key') };
  try {
    createSecureContext(settings);
  } catch (e) {
    throw new TopologyError(field, `${files.cert} and ${files.key} are not a usable certificate and key: ${(e as Error).message}`, e);
  }
  return settings;
}
