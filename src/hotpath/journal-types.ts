/**
 * The key journal contract, shared by the native journal (`key-journal.ts`) and the JS
 * reference (`key-journal-ref.ts`).
 */
import { MAX_RECORD } from './journal-format.js';
import type { JournalDamage } from './journal-format.js';

/** Where an acknowledged record sits. */
export interface AppendResult {
  /** Byte offset of the record's header in the journal file. */
  readonly offset: number;
  /** Position of the record in the journal, from 0 (recovered records count). */
  readonly seq: number;
}

/** What recovery found when the journal was opened. */
export interface RecoveryReport {
  readonly records: number;
  /** Length of the file kept (everything before the torn tail). */
  readonly validBytes: number;
  /**
   * Nonzero bytes of the torn tail that recovery cut off (0 after a clean shutdown): the
   * last commit group, never acknowledged. The zero-filled preallocation a crash leaves
   * behind is cut off too but not counted. Mid-log damage is never cut off: open refuses
   * it with {@link KeyJournalCorruptError} or salvages it.
   */
  readonly truncatedBytes: number;
  /** Present only when this open salvaged a journal with mid-log damage. */
  readonly salvage?: SalvageReport;
}

/** What a salvaging open did with a journal that had mid-log damage. */
export interface SalvageReport {
  /** Where the damaged file now is, byte for byte: `<path>.corrupt-<offset of the first damage>`. */
  readonly movedTo: string;
  /** The damaged stretches; the records in them are lost here and must come back from peers. */
  readonly damage: readonly JournalDamage[];
  /** Records kept (written to the new journal in their old order; seqs after a damage shift down). */
  readonly keptRecords: number;
}

/** How to open a journal. */
export interface KeyJournalOpenOptions {
  /**
   * Create the journal's directory (and missing parents), each one made durable by an
   * fsync of its parent before the journal is used. Default false: a missing directory
   * fails with ENOENT.
   */
  readonly createDirectory?: boolean;
  /**
   * On mid-log damage, keep every valid record instead of refusing: the damaged file is
   * moved aside to `<path>.corrupt-<offset>` (never deleted), a new journal holding the
   * valid records in order takes its place, and {@link RecoveryReport.salvage} says what
   * was lost. Default false: such a journal is refused with {@link KeyJournalCorruptError}.
   */
  readonly salvage?: boolean;
}

export const KeyJournalErrorCode = {
  /** The journal was closed (or never opened) before the operation ran. */
  closed: 'ECLOSED',
  invalidArgument: 'EINVAL',
  /** Mid-log damage: a record fails its checks and valid records follow it ({@link KeyJournalCorruptError}). */
  corrupt: 'ECORRUPT',
} as const;

/**
 * A journal operation failed. OS failures keep Node's code (`ENOSPC`, `EIO`...) with
 * `errno` and `syscall`; the original error is the `cause`.
 */
export class KeyJournalError extends Error {
  override readonly name: string = 'KeyJournalError';
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly path?: string;

  constructor(code: string, message: string, options?: { cause?: unknown; errno?: number; syscall?: string; path?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.errno !== undefined) this.errno = options.errno;
    if (options?.syscall !== undefined) this.syscall = options.syscall;
    if (options?.path !== undefined) this.path = options.path;
  }

  /** Wraps an error from the addon or from node:fs, keeping its code, errno and syscall. */
  static from(err: unknown, what: string): KeyJournalError {
    if (err instanceof KeyJournalError) return err;
    const e = err as { code?: unknown; errno?: unknown; syscall?: unknown; path?: unknown; message?: unknown };
    const code = typeof e?.code === 'string' ? e.code : 'EIO';
    const opts: { cause: unknown; errno?: number; syscall?: string; path?: string } = { cause: err };
    if (typeof e?.errno === 'number') opts.errno = Math.abs(e.errno);
    if (typeof e?.syscall === 'string') opts.syscall = e.syscall;
    if (typeof e?.path === 'string') opts.path = e.path;
    return new KeyJournalError(code, `key journal ${what} failed: ${String(e?.message ?? err)}`, opts);
  }
}

/**
 * The journal has a damaged record with valid records after it, so the damage is not a
 * torn write (only the last, unacknowledged commit group can be torn): the records in it
 * had been acknowledged. Opening refuses rather than drop them and everything after;
 * nothing is changed on disk. Recover with `open(path, { salvage: true })` and let peers
 * supply what was lost (docs/key-journal.md).
 */
export class KeyJournalCorruptError extends KeyJournalError {
  override readonly name: string = 'KeyJournalCorruptError';
  /** Offset of the first damaged record's header. */
  readonly offset: number;
  /** Valid records before the damage. */
  readonly recordsBefore: number;
  /** Valid records after the damage, which a plain truncation would have destroyed. */
  readonly recordsAfter: number;
  /** Every damaged stretch (the first is at `offset`). */
  readonly damage: readonly JournalDamage[];

  constructor(path: string, info: { offset: number; recordsBefore: number; recordsAfter: number; damage: readonly JournalDamage[] }, cause?: unknown) {
    super(
      'ECORRUPT',
      `key journal ${path} is corrupt at offset ${info.offset}: ${info.recordsAfter} valid record(s) follow the damage, so it is not a torn write; ` +
        `refusing to open (nothing was changed). Open with salvage to keep the valid records and fetch the lost ones from peers`,
      { path, ...(cause === undefined ? {} : { cause }) },
    );
    this.offset = info.offset;
    this.recordsBefore = info.recordsBefore;
    this.recordsAfter = info.recordsAfter;
    this.damage = info.damage;
  }
}

/**
 * A durable append-only journal of opaque records.
 *
 * Error rules: an OS failure rejects with {@link KeyJournalError} carrying the OS code.
 * After a failed append the journal refuses every further append and compaction (what
 * reached the disk is unknown until it is reopened and recovered); reads and close still
 * work. There are no timeouts and no cancellation: a durable write cannot be recalled,
 * and a promise that has not settled means the record may or may not be durable.
 * After `close()` every operation rejects with code `ECLOSED`.
 */
export interface KeyJournalApi {
  readonly path: string;
  /** What recovery found at open. */
  readonly recovery: RecoveryReport;
  /** The records recovered at open, oldest first. */
  records(): readonly Uint8Array[];
  /**
   * Appends one record (1 byte..64 MiB). Resolves only once the record is on stable
   * storage (fdatasync); records resolve in the order they were appended.
   */
  append(record: Uint8Array): Promise<AppendResult>;
  /** Every record in the journal now, oldest first, read back from the file. */
  readAll(): Promise<Uint8Array[]>;
  /**
   * Replaces the whole journal with `records`, atomically across a crash: afterwards the
   * journal holds either the old records or exactly these. Sequence numbers restart:
   * the next append gets seq `records.length`.
   */
  compact(records: readonly Uint8Array[]): Promise<void>;
  /** Waits for queued operations, then closes the file. Idempotent. */
  close(): Promise<void>;
}

/** Throws {@link KeyJournalError} `EINVAL` unless `record` is a 1..MAX_RECORD byte Uint8Array. */
export function checkRecord(record: unknown, what: string): asserts record is Uint8Array {
  if (!(record instanceof Uint8Array)) throw new KeyJournalError('EINVAL', `${what}: a record must be a Uint8Array`);
  if (record.length < 1 || record.length > MAX_RECORD) {
    throw new KeyJournalError('EINVAL', `${what}: a record must be 1..${MAX_RECORD} bytes (got ${record.length})`);
  }
}
