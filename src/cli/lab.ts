/**
 * A lab: one library's robotics and its drives, as the CLI works with them. Either the
 * embedded emulator built from a library YAML, whose cartridge locations, drive positions
 * and injected faults are kept in `state.json` beside the YAML so that one command carries
 * on where the last left off, or real devices named by address (`sg:/dev/sg3`).
 *
 * One command at a time works on an embedded lab: each takes the lab's lock (`lab.lock`
 * beside `state.json`) before reading the state and gives it back after saving it, so two
 * commands never work from the same state and lose one another's changes.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { MediaChanger } from '../devices/media-changer.js';
import { TapeDrive } from '../devices/tape-drive.js';
import type { ScsiPort } from '../transport/scsi-port.js';
import { IscsiSession } from '../iscsi/session.js';
import { IscsiPort } from '../transport/iscsi/index.js';
import { createLibrary, createLibraryTapeDrive, loadLibraryConfig, type EmulatedLibrary, type LibraryConfig } from '../../firmware-sim/library/index.js';
import type { TapeDriveUnit } from '../../firmware-sim/ssc/index.js';
import { MemoryPort } from '../../firmware-sim/front/memory-port.js';
import type { DriveFactory } from '../../firmware-sim/library/drive-factory.js';
import type { AssignedVolumeTags } from '../../firmware-sim/smc/index.js';
import { UsageError } from './ops.js';

/** Faults that outlive one CLI process on the embedded lab. */
export interface PersistedFaults {
  /** Drive index (1-based) -> object numbers that answer MEDIUM ERROR. */
  mediumErrors?: Record<string, number[]>;
  offlineDrives?: number[];
  hungDrives?: number[];
  tapeAlerts?: Record<string, number[]>;
  robotJams?: number;
}

/** Where a drive's tape was left: the cartridge it holds and the logical object number. */
export interface DrivePosition {
  barcode: string;
  block: number;
}

/** A cartridge brought into the lab while it ran (`ptpvts sim ctl insert/add-cartridge`), not in the YAML. */
export interface AddedCartridge {
  mediaType: string;
  capacityBytes: number;
  writeProtected: boolean;
  /** Cartridge file. */
  path: string;
}

export interface LabState {
  /** Barcode -> element address where the cartridge is. */
  locations: Record<string, number>;
  faults: PersistedFaults;
  /** Drive number (1-based) -> where its tape was left. Absent in files of older versions. */
  positions?: Record<string, DrivePosition>;
  /** Cartridges added while serving, by barcode; their place is in `locations`. */
  added?: Record<string, AddedCartridge>;
  /** Barcodes of the YAML's cartridges taken out of the library (ejected); they stay out. */
  removed?: string[];
  /**
   * Volume tags hosts sent (SEND VOLUME TAG) or the YAML gave, by label barcode, for every
   * cartridge that has one. Absent in files of older versions (the YAML's `altBarcode` then applies).
   */
  volumeTags?: Record<string, AssignedVolumeTags>;
}

export interface Lab {
  /** What the lab is, for messages: `embedded library lab0 (ptpvts-lab/library.yaml)`. */
  readonly description: string;
  readonly changer: MediaChanger;
  /** Drives in data transfer element order: drive 1 is `drives[0]`. */
  readonly drives: readonly TapeDrive[];
  /** The emulated library, when the lab is the embedded one (faults, doors). */
  readonly emulated?: {
    library: EmulatedLibrary;
    drives: readonly TapeDriveUnit[];
    state: LabState;
    config: LibraryConfig;
    /**
     * Saves the state now (durably) when it changed since the last save; resolves whether it
     * wrote. For a server that holds the lab while initiators move cartridges. Throws the fs error.
     */
    save(): boolean;
  };
  /**
   * Saves the embedded lab's state (durably: resolves once it would survive a power cut),
   * releases ports and files, then the lab's lock. Rejects with the fs error when the state
   * cannot be saved; the lock and ports are released all the same.
   */
  close(): Promise<void>;
}

/** Drive factory joining the library to the SSC drive model (the composition the library leaves open). */
export function sscDriveFactory(made: TapeDriveUnit[]): DriveFactory {
  return (spec) => {
    const unit = createLibraryTapeDrive(spec);
    made.push(unit);
    // The engine unit itself is the LU, so the library can share its LUN list and power-cycle it.
    return { unit: unit.unit, bay: unit, close: () => unit.close() };
  };
}

// ------------------------------------------------------------------------ state file

/** `state.json` cannot be used: `file` and `field` say where, the message says what is wrong. */
export class LabStateError extends Error {
  override readonly name = 'LabStateError';
  readonly code = 'ELABSTATE';
  constructor(
    readonly file: string,
    /** Dotted path of the bad field (`locations.LAB001L8`), or `(file)` for the whole file. */
    readonly field: string,
    /** What is wrong with it. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${field}: ${problem}; correct it, or remove the file to start the lab from its YAML again`, options);
  }
}

/** Path of the state file of the lab whose library YAML is `configPath`. */
export function statePath(configPath: string): string {
  return join(dirname(resolve(configPath)), 'state.json');
}

const elementAddress = z.number().int().min(0).max(0xffff);
const driveNumber = z.number().int().min(1).max(999);
const driveKey = z.string().regex(/^[1-9]\d{0,2}$/, 'expected a drive number (1, 2, ...) as key');
const volumeTagSchema = z.strictObject({
  identifier: z.string().regex(/^[!-~]{1,32}$/, 'a volume tag is 1..32 printable ASCII characters without blanks').refine((s) => !/[*?]/.test(s), 'a volume tag may not contain * or ?'),
  sequence: z.number().int().min(0).max(0xffff),
});
const labStateSchema = z.strictObject({
  locations: z.record(z.string().min(1), elementAddress),
  faults: z
    .strictObject({
      mediumErrors: z.record(driveKey, z.array(z.number().int().min(0))).optional(),
      offlineDrives: z.array(driveNumber).optional(),
      hungDrives: z.array(driveNumber).optional(),
      tapeAlerts: z.record(driveKey, z.array(z.number().int().min(1).max(64))).optional(),
      robotJams: z.number().int().min(0).optional(),
    })
    .default({}),
  positions: z.record(driveKey, z.strictObject({ barcode: z.string().min(1), block: z.number().int().min(0) })).default({}),
  added: z
    .record(z.string().min(1), z.strictObject({ mediaType: z.string().min(1), capacityBytes: z.number().int().positive(), writeProtected: z.boolean(), path: z.string().min(1) }))
    .optional(),
  removed: z.array(z.string().min(1)).optional(),
  volumeTags: z
    .record(z.string().min(1), z.strictObject({ primary: volumeTagSchema.optional(), alternate: volumeTagSchema.optional() }))
    .optional(),
});

function fieldName(path: readonly PropertyKey[]): string {
  let s = '';
  for (const k of path) s += typeof k === 'number' ? `[${k}]` : `${s ? '.' : ''}${String(k)}`;
  return s || '(top level)';
}

function valueAt(doc: unknown, path: readonly PropertyKey[]): unknown {
  let v = doc;
  for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

/** Validates a parsed state document; throws {@link LabStateError} naming the first bad field. */
export function parseLabState(file: string, doc: unknown): LabState & { positions: Record<string, DrivePosition> } {
  const r = labStateSchema.safeParse(doc);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  const found = valueAt(doc, i.path);
  const shown = found === undefined ? '' : ` (found ${JSON.stringify(found)?.slice(0, 60)})`;
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem(s))` : '';
  throw new LabStateError(file, fieldName(i.path), `${i.message}${shown}${more}`, { cause: r.error });
}

/**
 * Reads and validates the lab's `state.json`; an empty state when there is none. Throws
 * {@link LabStateError} naming the file and the field for a file that is not JSON or not a
 * lab state. Temporary files a save left behind are not looked at.
 */
export function readState(configPath: string): LabState {
  const p = statePath(configPath);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { locations: {}, faults: {}, positions: {} };
    throw e;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new LabStateError(p, '(file)', text.trim() === '' ? 'the file is empty' : `not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return parseLabState(p, doc);
}

/**
 * Checks that a valid state fits the library: every location is a slot, import/export
 * element or drive of it, no element gets two cartridges, and every drive number exists.
 * Throws {@link LabStateError} naming `file` and the field.
 */
export function checkStateFitsLibrary(file: string, state: LabState, config: LibraryConfig): void {
  const kinds = new Map<number, string>();
  for (const a of config.storage) kinds.set(a, 'slot');
  for (const a of config.importExport) kinds.set(a, 'import/export');
  for (const d of config.drives) kinds.set(d.address, 'drive');
  const hex = (a: number): string => `0x${a.toString(16).padStart(4, '0')}`;
  const holder = new Map<number, string>();
  const removed = new Set(state.removed ?? []);
  // A cartridge added while serving is in the library while it has a place; without one it was ejected.
  const added = Object.keys(state.added ?? {}).filter((b) => state.locations[b] !== undefined);
  const cartridges = [...config.cartridges.filter((c) => !removed.has(c.barcode)), ...added.map((barcode) => ({ barcode, address: -1 }))];
  for (const c of cartridges) {
    const at = state.locations[c.barcode];
    const field = at === undefined ? `(the YAML's place for ${c.barcode})` : `locations.${c.barcode}`;
    const address = at ?? c.address;
    if (!kinds.has(address)) throw new LabStateError(file, field, `${hex(address)} is not a slot, import/export element or drive of library ${config.name}`);
    const other = holder.get(address);
    if (other !== undefined) throw new LabStateError(file, field, `${hex(address)} is also where ${other} is`);
    holder.set(address, c.barcode);
  }
  const drives = config.drives.length;
  const checkDrive = (field: string, n: number | string): void => {
    if (Number(n) > drives) throw new LabStateError(file, field, `there is no drive ${n} (library ${config.name} has ${drives})`);
  };
  const f = state.faults;
  for (const n of Object.keys(f.mediumErrors ?? {})) checkDrive(`faults.mediumErrors.${n}`, n);
  for (const n of Object.keys(f.tapeAlerts ?? {})) checkDrive(`faults.tapeAlerts.${n}`, n);
  for (const [i, n] of (f.offlineDrives ?? []).entries()) checkDrive(`faults.offlineDrives[${i}]`, n);
  for (const [i, n] of (f.hungDrives ?? []).entries()) checkDrive(`faults.hungDrives[${i}]`, n);
  for (const n of Object.keys(state.positions ?? {})) checkDrive(`positions.${n}`, n);
}

/** Temporary names of state saves: `state.json.<pid>.<random>.tmp` (and the older `state.json.tmp`). */
const TEMP_STATE = /^state\.json\.(?:\d+\.[0-9a-f]+\.)?tmp$/;

/** fsync of a directory, so that a rename or unlink inside it survives a power cut. */
/** Creates `path` (it must not exist) holding `text`, written whole and fsynced before it returns. */
function createSynced(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o644);
  try {
    const bytes = Buffer.from(text, 'utf8');
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Saves the lab state beside the YAML, atomically and durably: a temporary file of its own
 * name is written and fsynced, renamed over `state.json`, and the directory fsynced. When it
 * returns, the new state survives a power cut; when it throws (the fs error, or
 * {@link LabStateError} for a state that would not read back), the old state is intact.
 * The caller holds the lab's lock ({@link lockLab}).
 */
export function writeState(configPath: string, state: LabState): void {
  const p = statePath(configPath);
  const dir = dirname(p);
  // What could not be read back must never replace a good file.
  const text = JSON.stringify(parseLabState(p, state), null, 2) + '\n';
  const tmp = join(dir, `state.json.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    createSynced(tmp, text);
    renameSync(tmp, p);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // Already renamed or never made: nothing of ours is left to remove.
    }
    throw e;
  }
  syncDirectory(dir);
}

/** Removes temporary files of saves that were cut short (a crash between create and rename). Needs the lock. */
function removeLeftoverTemps(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!TEMP_STATE.test(n)) continue;
    try {
      unlinkSync(join(dir, n));
    } catch {
      // Gone already, or not ours to remove: a leftover is ignored by readers anyway.
    }
  }
}

// ------------------------------------------------------------------------ lab lock

/** Who holds a lab's lock, as its lock file says. */
export interface LabLockHolder {
  readonly pid: number;
  readonly host: string;
  /** Boot id (Linux): a lock from before the last restart is stale whatever its pid. */
  readonly boot?: string;
  /** The command line that took it, for the person waiting. */
  readonly command: string;
  /** When it was taken (ISO 8601). */
  readonly since: string;
  /** Tells this holding apart from any other by the same pid. */
  readonly token: string;
  /**
   * Set by `ptpvts sim serve`, which holds the lab for as long as it runs: where it serves
   * (portal, IQN, control socket). Other commands then fail at once instead of waiting.
   */
  readonly serving?: string;
}

/** The lab is in use by another command and stayed so for the whole wait. */
export class LabLockedError extends Error {
  override readonly name = 'LabLockedError';
  readonly code = 'ELABLOCKED';
  constructor(
    readonly lockFile: string,
    /** Undefined when the lock file could not be read (being written, or damaged). */
    readonly holder: LabLockHolder | undefined,
    readonly waitedMs: number,
    why?: string,
  ) {
    super(
      `the lab ${dirname(lockFile)} is in use: ${holder ? describeLockHolder(holder) : `${lockFile} exists but cannot be read`}; ${
        why ?? `gave up after waiting ${(waitedMs / 1000).toFixed(1)} s (wait longer with --lock-timeout SECONDS or PTPVTS_LAB_LOCK_TIMEOUT)`
      }. If that process is gone for good, remove ${lockFile}`,
    );
  }
}

/** `pid 4242 (ptpvts tape write -f a.bin) since 2026-05-01T10:00:00.000Z`, with the host when it is another. */
export function describeLockHolder(h: LabLockHolder): string {
  return `pid ${h.pid}${h.host === hostname() ? '' : ` on ${h.host}`} (${h.command}) since ${h.since}`;
}

/** How to take a lab's lock. */
export interface LabLockOptions {
  /** How long to wait for another command to finish (ms); default {@link lockTimeoutMs}(). 0: do not wait. */
  readonly timeoutMs?: number;
  /** What the lock file says holds it; default the process's command line. */
  readonly command?: string;
  /** Called once when the lock is held by a live process and the wait begins. */
  readonly onWait?: (holder: LabLockHolder | undefined) => void;
  /** Called when a stale lock (its process gone) is taken over. */
  readonly onTakeover?: (holder: LabLockHolder | undefined, why: string) => void;
  /** Held by a server for its whole run: recorded in the lock as {@link LabLockHolder.serving}. */
  readonly serving?: string;
}

/** A held lab lock. */
export interface LabLock {
  readonly file: string;
  readonly holder: LabLockHolder;
  /** Gives the lock back (removes the lock file if it is still this holding's). Idempotent, never throws. */
  release(): void;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
export const LOCK_TIMEOUT_ENV = 'PTPVTS_LAB_LOCK_TIMEOUT';
const LOCK_NAME = 'lab.lock';
/** A lock file that stays unreadable this long was left by a process that died while writing it. */
const UNREADABLE_STALE_MS = 5_000;
const POLL_MS = 50;

/**
 * How long a command waits for the lab lock: `seconds` when given (the `--lock-timeout`
 * option), else `PTPVTS_LAB_LOCK_TIMEOUT` (seconds), else 30 s. Throws {@link UsageError}
 * for a value that is not a number of seconds >= 0.
 */
export function lockTimeoutMs(seconds?: number, env: NodeJS.ProcessEnv = process.env): number {
  if (seconds !== undefined) return Math.round(seconds * 1000);
  const v = env[LOCK_TIMEOUT_ENV];
  if (v === undefined || v.trim() === '') return DEFAULT_LOCK_TIMEOUT_MS;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${LOCK_TIMEOUT_ENV} must be a number of seconds >= 0 (got "${v}")`);
  return Math.round(n * 1000);
}

/** Tokens of the locks this process holds: a lock with our pid and another token is a leftover of an earlier process. */
const heldHere = new Set<string>();

let cachedBootId: string | undefined | null = null;
function bootId(): string | undefined {
  if (cachedBootId === null) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
    } catch {
      cachedBootId = undefined;
    }
  }
  return cachedBootId;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const holderSchema = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  boot: z.string().optional(),
  command: z.string(),
  since: z.string(),
  token: z.string().min(1),
  serving: z.string().optional(),
});

interface SeenLock {
  readonly raw: string;
  readonly holder: LabLockHolder | undefined;
  readonly ageMs: number;
}

/** The lock file as it is now; undefined when it is gone. */
function readLock(file: string): SeenLock | undefined {
  try {
    const raw = readFileSync(file, 'utf8');
    const ageMs = Date.now() - statSync(file).mtimeMs;
    let holder: LabLockHolder | undefined;
    try {
      const r = holderSchema.safeParse(JSON.parse(raw));
      if (r.success) holder = r.data;
    } catch {
      // Being written by its creator (or it died doing so): judged by age below.
    }
    return { raw, holder, ageMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Why a lock can be taken over, or undefined while its holder may still be working. */
function staleReason(seen: SeenLock): string | undefined {
  const h = seen.holder;
  if (!h) {
    // A lock file appears whole (tryCreateLock links a fsynced file into place): an empty or
    // torn one is what a power cut left of a lock written in place, never a holder at work.
    if (seen.ageMs > UNREADABLE_STALE_MS) return `its lock file has been unreadable for ${Math.round(seen.ageMs / 1000)} s`;
    if (seen.raw.length === 0) return 'its lock file is empty (cut short by a power loss)';
    const boot = bootId();
    const torn = /"boot":"([^"]*)"/.exec(seen.raw)?.[1];
    if (boot !== undefined && torn !== undefined && torn !== boot) return 'its lock file is damaged and was written before the machine restarted';
    return undefined;
  }
  // Another machine's pids mean nothing here: only its holder or a person can end that lock.
  if (h.host !== hostname()) return undefined;
  const boot = bootId();
  if (boot !== undefined && h.boot !== undefined && h.boot !== boot) return 'it was taken before the machine restarted';
  if (h.pid === process.pid) return heldHere.has(h.token) ? undefined : 'an earlier process with this pid left it';
  if (!processAlive(h.pid)) return `process ${h.pid} is gone`;
  return undefined;
}

/**
 * Removes a stale lock file, if it is still the one judged stale. A short-lived guard file
 * makes the check and the removal one step among those breaking locks, so that one of them
 * cannot remove a lock another has just taken in place of the stale one.
 */
function breakStaleLock(file: string, staleRaw: string): void {
  const guard = `${file}.break`;
  let fd: number;
  try {
    fd = openSync(guard, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // The guard is held for a few syscalls; an old one belongs to a process that died inside them.
    try {
      if (Date.now() - statSync(guard).mtimeMs > UNREADABLE_STALE_MS) unlinkSync(guard);
    } catch {
      // Removed by its owner meanwhile.
    }
    return;
  }
  closeSync(fd);
  try {
    if (readLock(file)?.raw === staleRaw) unlinkSync(file);
  } finally {
    unlinkSync(guard);
  }
}

/** Temporary files of lock creations: `<lock>.<pid>.<hex>.new`. */
const lockTempName = (file: string): string => `${file}.${process.pid}.${randomBytes(4).toString('hex')}.new`;

/**
 * Creates the lock file with `text`; false when it exists. The text is written and fsynced
 * under a temporary name, then linked into place (link fails with EEXIST like O_EXCL): the
 * lock file is never seen, nor left by a power cut, empty or half written.
 */
function tryCreateLock(file: string, text: string): boolean {
  const tmp = lockTempName(file);
  try {
    createSynced(tmp, text);
    try {
      linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    // The directory is not fsynced: after a power cut a lost lock file is no loss (the holder is gone).
    return true;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // Already gone: nothing to tidy.
    }
  }
}

/** Removes temporary files of lock creations whose process is gone (a crash between create and link). */
function removeLeftoverLockTemps(file: string): void {
  const dir = dirname(file);
  const re = new RegExp(`^${basename(file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)\\.[0-9a-f]+\\.new$`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const pid = Number(re.exec(n)?.[1] ?? NaN);
    if (!Number.isSafeInteger(pid) || pid === process.pid || processAlive(pid)) continue;
    try {
      unlinkSync(join(dir, n));
    } catch {
      // Removed by another taker meanwhile.
    }
  }
}

/**
 * Takes the lock of the lab whose library YAML is `configPath`: a `lab.lock` file beside its
 * `state.json`, created exclusively and naming the holder. While another live command holds
 * it, waits (polling) up to `timeoutMs`, then rejects with {@link LabLockedError} naming the
 * holder. A lock whose process is gone (same host), or that is older than the last restart,
 * is taken over. Rejects at once when this process already holds the lab's lock (waiting
 * would never end). Leftover temporary files of cut-short saves are removed once it is held.
 */
export async function lockLab(configPath: string, o: LabLockOptions = {}): Promise<LabLock> {
  const held = await takeLock(join(dirname(resolve(configPath)), LOCK_NAME), o);
  try {
    removeLeftoverTemps(dirname(held.file));
  } catch (e) {
    held.release();
    throw e;
  }
  return held;
}

/**
 * Takes the lock file `file` as {@link lockLab} does (created exclusively, naming the holder;
 * waits up to `timeoutMs` for a live holder, takes over a stale one), for any directory.
 */
export async function takeLock(file: string, o: LabLockOptions = {}): Promise<LabLock> {
  const timeoutMs = o.timeoutMs ?? lockTimeoutMs();
  const boot = bootId();
  const holder: LabLockHolder = {
    pid: process.pid,
    host: hostname(),
    ...(boot === undefined ? {} : { boot }),
    command: o.command ?? ['ptpvts', ...process.argv.slice(2)].join(' '),
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
    ...(o.serving === undefined ? {} : { serving: o.serving }),
  };
  const text = JSON.stringify(holder) + '\n';
  const start = Date.now();
  let told = false;
  for (;;) {
    if (tryCreateLock(file, text)) break;
    const seen = readLock(file);
    if (!seen) continue;
    const stale = staleReason(seen);
    if (stale !== undefined) {
      breakStaleLock(file, seen.raw);
      o.onTakeover?.(seen.holder, stale);
      continue;
    }
    const waited = Date.now() - start;
    // A server keeps the lab until it is stopped: waiting for it would only end in a timeout.
    if (seen.holder?.serving !== undefined) {
      throw new LabLockedError(file, seen.holder, waited, `it serves the lab (${seen.holder.serving}); change it while it runs with \`ptpvts sim ctl\`, or reach it with --changer iscsi://... --drive iscsi://...`);
    }
    if (seen.holder?.pid === process.pid) throw new LabLockedError(file, seen.holder, waited, 'this process has the lab open already');
    if (waited >= timeoutMs) throw new LabLockedError(file, seen.holder, waited);
    if (!told) {
      told = true;
      o.onWait?.(seen.holder);
    }
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, timeoutMs - waited)));
  }
  heldHere.add(holder.token);
  removeLeftoverLockTemps(file);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    heldHere.delete(holder.token);
    process.removeListener('exit', release);
    try {
      if (readLock(file)?.raw === text) unlinkSync(file);
    } catch {
      // Nothing to give back: a lock file that cannot be removed is judged stale by the next command.
    }
  };
  // process.exit() skips `finally` blocks; the lock must not outlive us for the next command's timeout.
  process.once('exit', release);
  return { file, holder, release };
}

/** Lock options for a CLI command: timeout from `--lock-timeout`/the environment, and sentences for the person waiting. */
export function cliLockOptions(lockTimeoutSeconds: number | undefined, say: (line: string) => void, command?: string): LabLockOptions {
  return {
    timeoutMs: lockTimeoutMs(lockTimeoutSeconds),
    ...(command === undefined ? {} : { command }),
    onWait: (h) => say(`Waiting for the lab: ${h ? describeLockHolder(h) : 'a command'} has it.`),
    onTakeover: (h, why) => say(`Took over the lab's lock${h ? ` from ${describeLockHolder(h)}` : ''}: ${why}.`),
  };
}

/**
 * Changes the lab's state without opening the library (fault injection): takes the lock,
 * reads the state, lets `change` edit it, checks the result against the library YAML and
 * saves it durably, then gives the lock back.
 */
export async function updateLabState(configPath: string, change: (state: LabState) => void, lock: LabLockOptions = {}): Promise<LabState> {
  const held = await lockLab(configPath, lock);
  try {
    const config = loadLibraryConfig({ path: configPath });
    const state = readState(configPath);
    change(state);
    try {
      checkStateFitsLibrary(statePath(configPath), state, config);
    } catch (e) {
      if (!(e instanceof LabStateError)) throw e;
      throw new UsageError(`${e.problem} (${e.field}); ${e.file} is left as it was`);
    }
    writeState(configPath, state);
    return state;
  } finally {
    held.release();
  }
}

// ------------------------------------------------------------------------ opening a lab

/** How to open the embedded lab. */
export interface OpenEmbeddedLabOptions {
  /** Overrides the YAML's time scale (0: no mechanical delays). */
  readonly timeScale?: number;
  /** Read `state.json` at open and save it at close (default true); false also takes no lock. */
  readonly persist?: boolean;
  /** How to take the lab's lock (when persisting). */
  readonly lock?: LabLockOptions;
}

/**
 * Opens the embedded lab from a library YAML. When persisting, takes the lab's lock first
 * (waiting as {@link lockLab} says; rejects with {@link LabLockedError}), then reads the
 * state (rejects with {@link LabStateError} naming the file and field); cartridges start
 * where the last command left them and each drive's tape where it was. The lock is held
 * until `close()`.
 */
export async function openEmbeddedLab(configPath: string, opts: OpenEmbeddedLabOptions = {}): Promise<Lab> {
  const persist = opts.persist ?? true;
  const held = persist ? await lockLab(configPath, opts.lock) : undefined;
  try {
    return await openLocked(configPath, persist, opts.timeScale, held);
  } catch (e) {
    held?.release();
    throw e;
  }
}

async function openLocked(configPath: string, persist: boolean, timeScale: number | undefined, held: LabLock | undefined): Promise<Lab> {
  const base = loadLibraryConfig({ path: configPath });
  const state = persist ? readState(configPath) : { locations: {}, faults: {}, positions: {} };
  if (persist) checkStateFitsLibrary(statePath(configPath), state, base);
  const config = configWithState(base, state);
  const drives: TapeDriveUnit[] = [];
  const library = await createLibrary(config, { driveFactory: sscDriveFactory(drives), ...(timeScale === undefined ? {} : { timeScale }) });
  restorePositions(drives, state.positions ?? {});
  applyFaults(library, drives, state.faults);
  // A saved record of tags is complete: a cartridge missing from it has none (a host undefined the YAML's).
  if (state.volumeTags) for (const e of library.inventory()) library.model.restoreVolumeTags(e.barcode, state.volumeTags[e.barcode] ?? {});
  const initiator = `cli-${process.pid}`;
  const ports: ScsiPort[] = [];
  const port = (lun: number): ScsiPort => {
    const unit = library.luns().get(lun);
    if (!unit) throw new Error(`${config.name} has no LUN ${lun}`);
    const p = new MemoryPort(unit, { initiator });
    ports.push(p);
    return p;
  };
  const changer = new MediaChanger(port(0));
  const tapeDrives = library.drives.map((d) => new TapeDrive(port(d.lun)));
  // A new initiator owes the units a look at their power-on unit attention.
  for (const dev of [changer, ...tapeDrives]) await dev.requestSense().catch(() => undefined);
  let closed = false;
  return {
    description: `embedded library ${config.name} (${configPath})`,
    changer,
    drives: tapeDrives,
    emulated: { library, drives, state, config, save: () => (persist ? saveLabState(configPath, library, drives, state) : false) },
    async close() {
      if (closed) return;
      closed = true;
      try {
        if (persist) saveLabState(configPath, library, drives, state, true);
      } finally {
        try {
          for (const p of ports) await p.close();
          await library.close();
        } finally {
          held?.release();
        }
      }
    },
  };
}

/**
 * The library YAML as the state left it: cartridges where the state put them, those taken
 * out left out, and those added while serving put in.
 */
export function configWithState(base: LibraryConfig, state: LabState): LibraryConfig {
  const removed = new Set(state.removed ?? []);
  const at = (barcode: string): number | undefined => state.locations[barcode];
  const added = Object.entries(state.added ?? {}).flatMap(([barcode, c]) => {
    const address = at(barcode);
    return address === undefined ? [] : [{ barcode, mediaType: c.mediaType, capacityBytes: c.capacityBytes, writeProtected: c.writeProtected, path: c.path, address }];
  });
  return {
    ...base,
    cartridges: [...base.cartridges.filter((c) => !removed.has(c.barcode)).map((c) => (at(c.barcode) === undefined ? c : { ...c, address: at(c.barcode)! })), ...added],
  };
}

/** What the state file would say now (locations, positions, jams left), as JSON, to tell whether a save is due. */
function refreshState(library: EmulatedLibrary, drives: readonly TapeDriveUnit[], state: LabState): void {
  const locations: Record<string, number> = {};
  for (const e of library.inventory()) if (e.barcode) locations[e.barcode] = e.address;
  state.locations = locations;
  state.positions = positionsOf(drives);
  // Written once there is anything to record (so older state files keep their shape); then
  // kept even when empty, because an empty record means a host undefined the YAML's tags.
  const tags = library.model.volumeTagAssignments();
  if (tags.size > 0 || state.volumeTags || library.config.cartridges.some((c) => c.altBarcode !== undefined)) state.volumeTags = Object.fromEntries(tags);
  // A jam lasts for the moves it was injected for, over as many commands as they take.
  const jams = library.model.jamsRemaining();
  if (jams > 0) state.faults.robotJams = jams;
  else delete state.faults.robotJams;
}

const lastSaved = new WeakMap<LabState, string>();

/**
 * Reads locations, positions and jams left from the running library into `state` and saves
 * it durably when it changed since the last save (or always, with `force`). Returns whether
 * it wrote. Throws the fs error; the caller holds the lab's lock.
 */
function saveLabState(configPath: string, library: EmulatedLibrary, drives: readonly TapeDriveUnit[], state: LabState, force = false): boolean {
  refreshState(library, drives, state);
  const text = JSON.stringify(state);
  if (!force && lastSaved.get(state) === text) return false;
  writeState(configPath, state);
  lastSaved.set(state, text);
  return true;
}

/** Where each drive's tape is, read from the drive models (a READ POSITION would wait forever on a hung drive). */
function positionsOf(drives: readonly TapeDriveUnit[]): Record<string, DrivePosition> {
  const out: Record<string, DrivePosition> = {};
  for (const [i, u] of drives.entries()) {
    const d = u.drive;
    if (d.state === 'loaded' && d.cartridge && d.media) out[String(i + 1)] = { barcode: d.cartridge.barcode, block: d.position };
  }
  return out;
}

/**
 * Puts each drive's tape back where the last command left it, when the drive still holds
 * that cartridge and the position is within its data (a cartridge file cut back by a crash
 * leaves the tape at BOP).
 */
function restorePositions(drives: readonly TapeDriveUnit[], positions: Record<string, DrivePosition>): void {
  for (const [n, p] of Object.entries(positions)) {
    const d = drives[Number(n) - 1]?.drive;
    if (d?.state === 'loaded' && d.cartridge?.barcode === p.barcode && d.media && p.block <= d.media.objectCount) d.position = p.block;
  }
}

export function applyFaults(library: EmulatedLibrary, drives: readonly TapeDriveUnit[], f: PersistedFaults): void {
  const drive = (n: string | number): TapeDriveUnit | undefined => drives[Number(n) - 1];
  for (const [n, blocks] of Object.entries(f.mediumErrors ?? {})) for (const b of blocks) drive(n)?.faults.mediumErrorAt(b);
  for (const n of f.offlineDrives ?? []) drive(n)?.faults.setOffline(true);
  for (const n of f.hungDrives ?? []) drive(n)?.faults.hang();
  for (const [n, flags] of Object.entries(f.tapeAlerts ?? {})) for (const fl of flags) drive(n)?.faults.setTapeAlert(fl);
  if (f.robotJams) library.faults.jamNextMoves(f.robotJams);
}

/** Opens a lab over devices: a changer address and drive addresses (`sg:/dev/sgN`, `iscsi://host:port/iqn/lun`). */
export async function openDeviceLab(changerAddress: string, driveAddresses: readonly string[]): Promise<Lab> {
  const ports: ScsiPort[] = [];
  // LUNs of one target share one iSCSI session, as they would on a host.
  const sessions = new Map<string, Promise<IscsiSession>>();
  const closeAll = async (): Promise<void> => {
    for (const p of ports) await p.close().catch(() => undefined);
    for (const s of sessions.values()) await s.then((x) => x.close()).catch(() => undefined);
  };
  const open = async (address: string): Promise<ScsiPort> => {
    const p = await openPort(address, sessions);
    ports.push(p);
    return p;
  };
  try {
    const changer = new MediaChanger(await open(changerAddress));
    const drives: TapeDrive[] = [];
    for (const a of driveAddresses) drives.push(new TapeDrive(await open(a)));
    // As for the embedded lab: a new initiator owes each unit a look at its pending unit
    // attention (power on), or the command it came for would fail with it.
    for (const dev of [changer, ...drives]) await dev.requestSense().catch(() => undefined);
    return {
      description: `devices ${[changerAddress, ...driveAddresses].join(', ')}`,
      changer,
      drives,
      close: closeAll,
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** A device address that cannot be used: `address` names it, the message says why. */
export class DeviceAddressError extends Error {
  override readonly name = 'DeviceAddressError';
  readonly code = 'EDEVADDR';
  constructor(
    readonly address: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`device address "${address}": ${problem}`, options);
  }
}

/** The parts of `iscsi://host[:port]/iqn/lun` (port 3260 when absent; `[v6]` hosts). */
export function parseIscsiAddress(address: string): { host: string; port: number; iqn: string; lun: number } {
  const m = /^iscsi:\/\/(?:\[([^\]]+)\]|([^/:[\]]+))(?::(\d{1,5}))?\/([^/]+)\/(\d{1,5})$/.exec(address);
  if (!m) throw new DeviceAddressError(address, 'expected iscsi://host:port/iqn/lun, e.g. iscsi://127.0.0.1:3260/iqn.2026-11.io.ptpvts:lab0/1');
  const port = m[3] === undefined ? 3260 : Number(m[3]);
  if (port < 1 || port > 65535) throw new DeviceAddressError(address, `port ${port} is not 1..65535`);
  const lun = Number(m[5]);
  if (lun > 16383) throw new DeviceAddressError(address, `LUN ${lun} is not 0..16383`);
  return { host: (m[1] ?? m[2])!, port, iqn: m[4]!, lun };
}

/** Initiator name of the lab CLI: one per host, so a target's logs tell its sessions apart. */
function cliInitiatorName(): string {
  return `iqn.2026-11.io.ptpvts:cli.${hostname().toLowerCase().replace(/[^a-z0-9.-]+/g, '-')}`;
}

/**
 * Opens a port by address: `sg:/dev/sgN` (Linux SG_IO) or `iscsi://host:port/iqn/lun`
 * (the project's initiator; ports given the same `sessions` map share a session per
 * target, which the caller closes after the ports). Rejects with {@link DeviceAddressError}
 * for a bad address, and with the login or connection error.
 */
export async function openPort(address: string, sessions: Map<string, Promise<IscsiSession>> = new Map()): Promise<ScsiPort> {
  const m = /^([a-z]+):(.+)$/.exec(address);
  if (!m) throw new DeviceAddressError(address, 'expected sg:/dev/sgN or iscsi://host:port/iqn/lun');
  const [, scheme, rest] = m;
  if (scheme === 'sg') {
    const { SgioPort } = await import('../transport/sgio/index.js');
    return SgioPort.open(rest!);
  }
  if (scheme === 'iscsi') {
    const a = parseIscsiAddress(address);
    const key = `${a.host}:${a.port}/${a.iqn}`;
    let session = sessions.get(key);
    if (!session) {
      session = IscsiSession.open({ host: a.host, port: a.port, targetName: a.iqn, initiatorName: cliInitiatorName() });
      sessions.set(key, session);
    }
    try {
      return new IscsiPort(await session, a.lun);
    } catch (e) {
      throw new DeviceAddressError(address, `cannot log in: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  throw new DeviceAddressError(address, `unknown scheme "${scheme}" (known: sg, iscsi)`);
}
