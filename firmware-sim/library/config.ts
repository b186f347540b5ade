/**
 * The library YAML (docs/library-yaml.md): schema, normalisation to element addresses and
 * file paths, and the cross-checks a schema cannot express. Every problem is reported with
 * the path of the field that causes it, e.g. `cartridges[3].barcode: duplicate barcode
 * A00001L8 (first at cartridges[0])`, and all problems are reported at once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { checkPersonality, libraryPersonality, libraryPersonalityIds, type LibraryPersonality } from '../personalities/libraries.js';
import { driveLoads, knownDrivePersonalityNames, resolveDrivePersonality } from './drive-personality.js';
import { mediaTypeFromBarcode, mediaTypeInfo, mediaTypeNames } from './media-types.js';

/** One problem in a library configuration. */
export interface ConfigIssue {
  /** Field path in the document, e.g. `cartridges[3].barcode`; empty for the whole document. */
  readonly path: string;
  readonly message: string;
}

/** The configuration is unusable; `issues` lists every problem found. */
export class LibraryConfigError extends Error {
  override readonly name = 'LibraryConfigError';
  readonly code = 'ELIBCONFIG';
  constructor(
    readonly issues: readonly ConfigIssue[],
    readonly source?: string,
    options?: { cause?: unknown },
  ) {
    super(`${source ? `${source}: ` : ''}invalid library configuration:\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`, options);
  }
}

export function formatIssue(i: ConfigIssue): string {
  return i.path ? `${i.path}: ${i.message}` : i.message;
}

/** The element kinds a cartridge can sit in. */
export type SlotKind = 'storage' | 'importExport' | 'dataTransfer';

export interface DriveConfig {
  /** Element address of the data transfer element. */
  readonly address: number;
  /** Drive personality name handed to the drive factory, e.g. `LTO8`. */
  readonly personality: string;
  readonly serial: string;
}

export interface CartridgeConfig {
  readonly barcode: string;
  readonly mediaType: string;
  /** Element address the cartridge starts in. */
  readonly address: number;
  readonly capacityBytes: number;
  readonly writeProtected: boolean;
  /** Absolute path of the cartridge file. */
  readonly path: string;
  /** Alternate volume tag (SMC-3), reported beside the barcode in element status. */
  readonly altBarcode?: string;
}

export interface MoveHookCommandConfig {
  /** argv; a YAML string becomes `['/bin/sh', '-c', string]`. */
  readonly argv: readonly string[];
  readonly timeoutSeconds: number;
}

/** A validated, normalised library configuration. */
export interface LibraryConfig {
  readonly name: string;
  readonly personality: LibraryPersonality;
  /** Unit serial number of the changer. */
  readonly serial: string;
  readonly timeScale: number;
  /** Absolute directory of cartridge files. */
  readonly mediaDir: string;
  /** Storage element addresses, in slot order. */
  readonly storage: readonly number[];
  readonly importExport: readonly number[];
  readonly drives: readonly DriveConfig[];
  readonly cartridges: readonly CartridgeConfig[];
  readonly moveHook?: MoveHookCommandConfig;
  /** Directory relative paths were resolved against; the move hook command runs there. */
  readonly baseDir: string;
  /** Problems that do not stop the library from working (documented in docs/library-yaml.md). */
  readonly warnings: readonly ConfigIssue[];
}

// ------------------------------------------------------------------------ schema

const address = z.union([
  z.number().int().min(0).max(0xffff),
  z
    .string()
    .regex(/^0x[0-9a-fA-F]{1,4}$/, 'expected an element address (0..65535 or 0x0000..0xFFFF)')
    .transform((s) => Number.parseInt(s, 16)),
]);

const slotList = z.union([z.number().int().min(0).max(0xffff), z.array(address)]);

const UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3, TIB: 1024 ** 4 };

const capacity = z.union([
  z.number().int().positive(),
  z.string().transform((s, ctx) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(s);
    const unit = UNITS[(m?.[2] ?? 'B').toUpperCase()];
    const n = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
    if (!(n > 0)) {
      ctx.addIssue({ code: 'custom', message: `expected a size such as 64MiB or 1.5TB, got "${s}"` });
      return z.NEVER;
    }
    return n;
  }),
]);

// Volume identifiers are space-padded by SMC-3, so no blanks; `*` and `?` are the wildcard
// characters of volume tag templates.
const barcode = z
  .string()
  .regex(/^[!-~]{1,32}$/, 'a barcode is 1..32 printable ASCII characters without blanks')
  .refine((s) => !/[*?]/.test(s), 'a barcode may not contain * or ?');

const location = z.union([
  address,
  z.string().regex(/^\s*(slot|ie|drive)\s*[ :#]?\s*\d+\s*$/i, 'expected "slot N", "ie N", "drive N" or an element address'),
]);

const cartridgeSchema = z.strictObject({
  barcode,
  mediaType: z.enum(mediaTypeNames).optional(),
  location: location.optional(),
  capacity: capacity.optional(),
  writeProtected: z.boolean().default(false),
  file: z.string().min(1).optional(),
  altBarcode: z
    .string()
    .regex(/^[!-~]{1,32}$/, 'an alternate volume tag is 1..32 printable ASCII characters without blanks')
    .refine((s) => !/[*?]/.test(s), 'an alternate volume tag may not contain * or ?')
    .optional(),
});

// A serial of digits only reads as a YAML number; keep it as written.
const serialString = z.union([z.string(), z.number().int().nonnegative().transform(String)]).pipe(z.string().regex(/^[!-~]{1,32}$/, 'a serial is 1..32 printable ASCII characters'));

const driveEntry = z.strictObject({ personality: z.string().min(1), serial: serialString.optional() });

const drivesSchema = z.union([
  z.strictObject({
    count: z.number().int().min(0),
    personality: z.string().min(1),
    serials: z.array(serialString).optional(),
  }),
  z.array(driveEntry),
]);

const moveHookSchema = z.union([
  z.string().min(1),
  z.array(z.string()).min(1),
  z.strictObject({
    command: z.union([z.string().min(1), z.array(z.string()).min(1)]),
    timeoutSeconds: z.number().positive().default(60),
  }),
]);

export const libraryConfigSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a name is 1..64 characters of letters, digits, dot, dash, underscore'),
  personality: z.string().superRefine((s, ctx) => {
    if (libraryPersonality(s) === undefined) ctx.addIssue({ code: 'custom', message: `unknown library personality "${s}" (known: ${libraryPersonalityIds.join(', ')})` });
  }),
  serial: serialString.optional(),
  timeScale: z.number().min(0).default(1),
  mediaDir: z.string().min(1).default('media'),
  storageSlots: slotList,
  importExportSlots: slotList.default(0),
  drives: drivesSchema.default([]),
  cartridges: z.array(cartridgeSchema).default([]),
  robot: z.strictObject({ moveHook: moveHookSchema.optional() }).optional(),
});

/** The document as written, before normalisation. */
export type LibraryConfigInput = z.input<typeof libraryConfigSchema>;

// ------------------------------------------------------------------------ loading

export interface ConfigSourceOptions {
  /** Directory relative paths (mediaDir, cartridge files) are resolved against. */
  readonly baseDir?: string;
  /** Name used in error messages (a file path). */
  readonly sourceName?: string;
}

/**
 * Reads and validates a library configuration. `source` is a path to a YAML file, or the
 * YAML text itself (anything containing a newline, or that is not an existing file and
 * contains a colon). Relative paths inside a file resolve against the file's directory;
 * inside text, against `opts.baseDir` or the working directory.
 *
 * Throws {@link LibraryConfigError} listing every problem; never returns a partly valid
 * configuration. File system errors (unreadable file) are thrown as they come, with the
 * path in the message.
 */
export function loadLibraryConfig(source: string | { path: string } | { text: string; baseDir?: string }, opts: ConfigSourceOptions = {}): LibraryConfig {
  let text: string;
  let baseDir = opts.baseDir ?? process.cwd();
  let sourceName = opts.sourceName;
  const asPath = typeof source === 'object' ? ('path' in source ? source.path : undefined) : looksLikePath(source) ? source : undefined;
  if (asPath !== undefined) {
    text = readFileSync(asPath, 'utf8');
    baseDir = opts.baseDir ?? dirname(resolve(asPath));
    sourceName ??= asPath;
  } else {
    text = typeof source === 'object' && 'text' in source ? source.text : (source as string);
    if (typeof source === 'object' && 'text' in source && source.baseDir) baseDir = source.baseDir;
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new LibraryConfigError(
      doc.errors.map((e) => ({ path: '', message: `YAML syntax: ${e.message.split('\n')[0] ?? e.message}` })),
      sourceName,
    );
  }
  return parseLibraryConfig(doc.toJS() as unknown, { baseDir, ...(sourceName ? { sourceName } : {}) });
}

function looksLikePath(s: string): boolean {
  if (s.includes('\n')) return false;
  if (existsSync(s)) return true;
  return !s.includes(':');
}

/** Validates an already-parsed document (an object, as from YAML or JSON). Same errors as {@link loadLibraryConfig}. */
export function parseLibraryConfig(input: unknown, opts: ConfigSourceOptions = {}): LibraryConfig {
  const parsed = libraryConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new LibraryConfigError(flattenIssues(parsed.error.issues, []), opts.sourceName);
  }
  const { config, issues } = normalise(parsed.data, opts.baseDir ?? process.cwd());
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length > 0 || !config) throw new LibraryConfigError(errors.map(({ path, message }) => ({ path, message })), opts.sourceName);
  return config;
}

interface RawIssue {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly expected?: string;
  readonly errors?: ReadonlyArray<readonly RawIssue[]>;
}

/**
 * Zod reports a failed union as one issue holding every branch's issues. The useful
 * report is the branch whose type matched (its issues name the bad inner field); when no
 * branch's type matched, say which types would have been accepted.
 */
function flattenIssues(issues: readonly RawIssue[], prefix: readonly PropertyKey[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const i of issues) {
    const path = [...prefix, ...i.path];
    if (i.code === 'invalid_union' && i.errors && i.errors.length > 0) {
      const typeOnly = (branch: readonly RawIssue[]): boolean => branch.every((b) => b.code === 'invalid_type' && b.path.length === 0);
      const matched = i.errors.find((b) => b.length > 0 && !typeOnly(b));
      if (matched) {
        out.push(...flattenIssues(matched, path));
        continue;
      }
      const expected = [...new Set(i.errors.flatMap((b) => b.map((x) => x.expected).filter((x): x is string => x !== undefined)))];
      out.push({ path: formatPath(path), message: expected.length > 0 ? `expected ${expected.join(' or ')}` : i.message });
      continue;
    }
    out.push({ path: formatPath(path), message: i.message });
  }
  return out;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

// ------------------------------------------------------------------------ normalisation

type Parsed = z.output<typeof libraryConfigSchema>;

interface Finding extends ConfigIssue {
  readonly severity: 'error' | 'warning';
}

function hex(n: number): string {
  return `0x${n.toString(16).toUpperCase().padStart(4, '0')}`;
}

function normalise(p: Parsed, baseDir: string): { config?: LibraryConfig; issues: Finding[] } {
  const issues: Finding[] = [];
  const err = (path: string, message: string): void => void issues.push({ path, message, severity: 'error' });
  const warn = (path: string, message: string): void => void issues.push({ path, message, severity: 'warning' });

  const personality = libraryPersonality(p.personality);
  if (!personality) return { issues: [{ path: 'personality', message: 'unknown personality', severity: 'error' }] };
  for (const problem of checkPersonality(personality)) err('personality', problem);
  const { addressing, limits } = personality;

  const transport = addressing.transport;
  const storage = slotAddresses(p.storageSlots, addressing.storage, limits.storage, 'storageSlots', err);
  if (Array.isArray(p.storageSlots) && storage.some((a, i) => i > 0 && a !== (storage[i - 1] ?? 0) + 1)) {
    warn('storageSlots', 'addresses are not consecutive and ascending; mode page 1Dh can report only the first address and the count');
  }
  const importExport = slotAddresses(p.importExportSlots, addressing.importExport, limits.importExport, 'importExportSlots', err);

  const driveList: Array<{ personality: string; serial?: string | undefined; path: string }> = Array.isArray(p.drives)
    ? p.drives.map((d, i) => ({ ...d, path: `drives[${i}]` }))
    : Array.from({ length: p.drives.count }, (_, i) => {
        const d = p.drives as { personality: string; serials?: string[] | undefined };
        return { personality: d.personality, serial: d.serials?.[i], path: `drives.serials[${i}]` };
      });
  if (!Array.isArray(p.drives) && p.drives.serials && p.drives.serials.length !== p.drives.count) {
    err('drives.serials', `lists ${p.drives.serials.length} serials for ${p.drives.count} drives`);
  }
  if (driveList.length > limits.dataTransfer) err('drives', `${driveList.length} drives; ${personality.id} holds at most ${limits.dataTransfer}`);
  const nameHash = createHash('sha256').update(p.name).digest('hex').slice(0, 6).toUpperCase();
  const drives: DriveConfig[] = driveList.map((d, i) => ({
    address: addressing.dataTransfer + i,
    personality: d.personality,
    serial: d.serial ?? `PV${nameHash}${String(i + 1).padStart(2, '0')}`,
  }));
  const personalityPaths = Array.isArray(p.drives) ? p.drives.map((_d, i) => `drives[${i}].personality`) : ['drives.personality'];
  const personalityNames = Array.isArray(p.drives) ? p.drives.map((d) => d.personality) : [p.drives.personality];
  personalityNames.forEach((name, i) => {
    if (!resolveDrivePersonality(name)) err(personalityPaths[i] ?? 'drives', `unknown drive personality "${name}" (known: ${knownDrivePersonalityNames().join(', ')})`);
  });
  const serialSeen = new Map<string, string>();
  drives.forEach((d, i) => {
    const path = Array.isArray(p.drives) ? `drives[${i}].serial` : `drives.serials[${i}]`;
    const first = serialSeen.get(d.serial);
    if (first !== undefined) err(path, `duplicate drive serial ${d.serial} (first at ${first})`);
    else serialSeen.set(d.serial, path);
  });

  // Every address belongs to one element.
  const owner = new Map<number, string>([[transport, 'the medium transport']]);
  const claim = (addr: number, what: string, path: string): void => {
    const prev = owner.get(addr);
    if (prev !== undefined) err(path, `element address ${hex(addr)} is already used by ${prev}`);
    else owner.set(addr, what);
  };
  // Drive addresses are fixed by the personality; the lists a user writes get the blame.
  drives.forEach((d, i) => claim(d.address, `drive ${i + 1}`, Array.isArray(p.drives) ? `drives[${i}]` : 'drives.count'));
  importExport.forEach((a, i) => claim(a, `import/export slot ${i + 1}`, Array.isArray(p.importExportSlots) ? `importExportSlots[${i}]` : 'importExportSlots'));
  storage.forEach((a, i) => claim(a, `storage slot ${i + 1}`, Array.isArray(p.storageSlots) ? `storageSlots[${i}]` : 'storageSlots'));

  const capacityTotal = storage.length + importExport.length + drives.length;
  if (p.cartridges.length > capacityTotal) {
    err('cartridges', `${p.cartridges.length} cartridges but only ${capacityTotal} places (${storage.length} storage, ${importExport.length} import/export, ${drives.length} drives)`);
  }

  const mediaDir = resolvePath(baseDir, p.mediaDir);
  const barcodeSeen = new Map<string, string>();
  const altSeen = new Map<string, string>();
  const placed = new Map<number, string>();
  const pending: Array<{ index: number; given: boolean; explicit?: number }> = [];
  const cartridges: Array<Omit<CartridgeConfig, 'address'> & { address: number }> = [];

  p.cartridges.forEach((c, i) => {
    const at = `cartridges[${i}]`;
    const key = c.barcode.toUpperCase();
    const first = barcodeSeen.get(key);
    if (first !== undefined) err(`${at}.barcode`, `duplicate barcode ${c.barcode} (first at ${first})`);
    else barcodeSeen.set(key, at);
    if (c.altBarcode !== undefined) {
      // Hosts search alternate tags (SEND VOLUME TAG translate) expecting one cartridge per tag.
      const altKey = c.altBarcode.toUpperCase();
      const firstAlt = altSeen.get(altKey);
      if (firstAlt !== undefined) err(`${at}.altBarcode`, `duplicate alternate volume tag ${c.altBarcode} (first at ${firstAlt})`);
      else altSeen.set(altKey, at);
    }

    const fromLabel = mediaTypeFromBarcode(c.barcode);
    let mediaType: string | undefined = c.mediaType;
    if (mediaType === undefined) {
      if (fromLabel) mediaType = fromLabel.name;
      else err(`${at}.mediaType`, `required: barcode ${c.barcode} does not end in an LTO media identifier (L5..L9, LV..LZ)`);
    } else if (fromLabel && fromLabel.name !== mediaType) {
      err(`${at}.mediaType`, `${mediaType} contradicts barcode ${c.barcode}, whose label suffix ${fromLabel.labelSuffix} means ${fromLabel.name}`);
    } else if (!fromLabel) {
      warn(`${at}.barcode`, `${c.barcode} has no LTO media identifier suffix; hosts that derive the media type from the label will not recognise it`);
    }
    const info = mediaType ? mediaTypeInfo(mediaType) : undefined;
    if (info && drives.length > 0 && !drives.some((d) => driveLoads(d.personality, info.name))) {
      warn(`${at}.mediaType`, `no drive of this library can load ${info.name} (drives: ${[...new Set(drives.map((d) => d.personality))].join(', ')})`);
    }

    let explicit: number | undefined;
    if (c.location !== undefined) {
      explicit = resolveLocation(c.location, storage, importExport, drives, transport, `${at}.location`, err);
      if (explicit !== undefined) {
        const prev = placed.get(explicit);
        if (prev !== undefined) {
          err(`${at}.location`, `element ${hex(explicit)} already holds ${prev}`);
          explicit = undefined;
        } else placed.set(explicit, `${c.barcode} (${at})`);
      }
    }
    pending.push({ index: i, given: c.location !== undefined, ...(explicit !== undefined ? { explicit } : {}) });
    const capacityBytes = c.capacity ?? info?.nativeCapacityBytes ?? 0;
    cartridges.push({
      barcode: c.barcode,
      mediaType: mediaType ?? '',
      address: explicit ?? -1,
      capacityBytes,
      writeProtected: c.writeProtected,
      path: c.file !== undefined ? resolvePath(mediaDir, c.file) : resolve(mediaDir, `${safeFileName(c.barcode)}.tape`),
      ...(c.altBarcode !== undefined ? { altBarcode: c.altBarcode } : {}),
    });
  });

  // Cartridges without a location fill the free storage slots in slot order.
  const free = storage.filter((a) => !placed.has(a));
  for (const { index, given } of pending) {
    if (given) continue;
    const slot = free.shift();
    const c = cartridges[index];
    if (!c) continue;
    if (slot === undefined) {
      if (p.cartridges.length <= capacityTotal) err(`cartridges[${index}].location`, 'no free storage slot left; give a location (ie N or drive N)');
      continue;
    }
    c.address = slot;
  }

  let moveHook: MoveHookCommandConfig | undefined;
  const mh = p.robot?.moveHook;
  if (mh !== undefined) {
    const cmd = typeof mh === 'object' && !Array.isArray(mh) ? mh.command : mh;
    moveHook = {
      argv: typeof cmd === 'string' ? ['/bin/sh', '-c', cmd] : [...cmd],
      timeoutSeconds: typeof mh === 'object' && !Array.isArray(mh) ? mh.timeoutSeconds : 60,
    };
  }

  if (issues.some((i) => i.severity === 'error')) return { issues };
  return {
    issues,
    config: {
      name: p.name,
      personality,
      serial: p.serial ?? `PVL${nameHash}`,
      timeScale: p.timeScale,
      mediaDir,
      storage,
      importExport,
      drives,
      cartridges,
      ...(moveHook ? { moveHook } : {}),
      baseDir,
      warnings: issues.filter((i) => i.severity === 'warning').map(({ path, message }) => ({ path, message })),
    },
  };
}

function slotAddresses(v: number | number[], first: number, limit: number, path: string, err: (path: string, message: string) => void): number[] {
  if (typeof v === 'number') {
    if (v > limit) err(path, `${v} slots; this personality holds at most ${limit}`);
    return Array.from({ length: Math.min(v, 0x10000 - first) }, (_, i) => first + i);
  }
  if (v.length > limit) err(path, `${v.length} slots; this personality holds at most ${limit}`);
  return v;
}

function resolveLocation(
  loc: number | string,
  storage: readonly number[],
  importExport: readonly number[],
  drives: readonly DriveConfig[],
  transport: number,
  path: string,
  err: (path: string, message: string) => void,
): number | undefined {
  if (typeof loc === 'number') {
    if (loc === transport) {
      err(path, `${hex(loc)} is the medium transport; a cartridge starts in a slot or a drive`);
      return undefined;
    }
    if (!storage.includes(loc) && !importExport.includes(loc) && !drives.some((d) => d.address === loc)) {
      err(path, `no storage, import/export or drive element has address ${hex(loc)}`);
      return undefined;
    }
    return loc;
  }
  const m = /^\s*(slot|ie|drive)\s*[ :#]?\s*(\d+)\s*$/i.exec(loc);
  const kind = (m?.[1] ?? '').toLowerCase();
  const n = Number(m?.[2] ?? 0);
  const list = kind === 'slot' ? storage : kind === 'ie' ? importExport : drives.map((d) => d.address);
  const what = kind === 'slot' ? 'storage slots' : kind === 'ie' ? 'import/export slots' : 'drives';
  const a = list[n - 1];
  if (n < 1 || a === undefined) {
    err(path, `${loc.trim()}: the library has ${list.length} ${what} (numbered from 1)`);
    return undefined;
  }
  return a;
}

function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

function safeFileName(barcode: string): string {
  return barcode.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Which kind of element `address` is in a configuration, or undefined. */
export function slotKindOf(config: LibraryConfig, address: number): SlotKind | undefined {
  if (config.storage.includes(address)) return 'storage';
  if (config.importExport.includes(address)) return 'importExport';
  if (config.drives.some((d) => d.address === address)) return 'dataTransfer';
  return undefined;
}
