/**
 * The topology file of a PtP system (YAML, validated with zod): the PtP id, the cluster
 * secret, the VTCs and both VTS with their addresses and directories, an optional
 * physical library per VTS, the initial threshold and the protocol timers. Paths are
 * relative to the file. Reference: docs/topology.md.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Timing } from '../ptp/engine.js';
import type { VtsName } from '../ptp/types.js';
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

const vtsSchema = z
  .object({
    listen: address,
    cacheDir: z.string().min(1),
    stateDir: z.string().min(1),
    library: librarySchema.optional(),
  })
  .strict();

const vtcSchema = z
  .object({
    id: name,
    listen: address,
    control: address.optional(),
    journalDir: z.string().min(1),
    preferredVts: z.enum(['A', 'B']).optional(),
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
  })
  .strict()
  .superRefine((t, ctx) => {
    if ((t.secret === undefined) === (t.secretFile === undefined)) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'give exactly one of secret and secretFile' });
    const ids = new Set<string>();
    t.vtcs.forEach((v, i) => {
      if (ids.has(v.id)) ctx.addIssue({ code: 'custom', path: ['vtcs', i, 'id'], message: `duplicate VTC id ${v.id}` });
      ids.add(v.id);
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
  readonly preferredVts: VtsName | undefined;
}

export interface VtsTopology {
  readonly name: VtsName;
  readonly listen: Address;
  readonly cacheDir: string;
  readonly stateDir: string;
  readonly library: { readonly yaml: string; readonly cartridges: readonly string[] | { readonly prefix: string } } | undefined;
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
  const vts = (x: VtsName): VtsTopology => {
    const v = t.vts[x];
    return {
      name: x,
      listen: parseAddress(v.listen),
      cacheDir: abs(v.cacheDir),
      stateDir: abs(v.stateDir),
      library: v.library === undefined ? undefined : { yaml: abs(v.library.yaml), cartridges: v.library.cartridges },
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
    vtcs: t.vtcs.map((v) => ({ id: v.id, listen: parseAddress(v.listen), control: parseAddress(v.control ?? defaultControl(v.listen)), journalDir: abs(v.journalDir), preferredVts: v.preferredVts })),
    vts: { A: vts('A'), B: vts('B') },
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
