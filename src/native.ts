/**
 * The only module that loads the C++ addon. Everything native goes through the typed
 * facade exported here, so a missing or stale build fails in one place with one message.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * An OS failure as the addon reports it: a real `Error` keeping the symbolic code
 * (`ENOENT`), the number (`errno`) and the call that failed (`syscall`).
 */
export interface NativeOsError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

/** Raw vote tally handle (native/vote_tally.cc); use src/hotpath/vote-tally.ts. */
export interface NativeVoteTally {
  /** Packed decisions (24 bytes each) or null when the batch decided nothing. */
  castBatch(ballots: Uint8Array): Uint8Array | null;
  /** One ballot; returns a cast code (0 accepted, 1 duplicate, 2 stale, 3 invalid, 4/5 accepted and decided online/offline). */
  cast(election: number, voter: number, choice: number, keySeq: bigint): number;
  open(election: number): boolean;
  /** [yes, no, decided (0 none, 1 online, 2 offline), maxKeySeq] or undefined. */
  election(election: number): [number, number, number, bigint] | undefined;
  stats(): { accepted: number; duplicates: number; stale: number; invalid: number; decided: number; horizon: number };
}

/** Raw key journal handle (native/key_journal.cc); use src/hotpath/key-journal.ts. */
/** How a native journal runs its jobs and syncs (native/key_journal.cc); defaults 'threadpool' and 'fdatasync'. */
export interface NativeKeyJournalOptions {
  /** 'threadpool': libuv's threadpool; 'thread': a thread owned by the journal. */
  writer?: 'threadpool' | 'thread';
  /** 'fdatasync': pwrite then fdatasync; 'dsync': one pwritev2 with RWF_DSYNC. */
  sync?: 'fdatasync' | 'dsync';
  /**
   * With writer 'thread': 'block' (default) sleeps on both sides between jobs; 'spin' keeps
   * the writer thread polling for the next job for 200 µs and the event loop polling while
   * a job is in flight, trading CPU time for hand-offs without wake-ups.
   */
  poll?: 'block' | 'spin';
}

export interface NativeKeyJournal {
  open(): Promise<{ records: Uint8Array[]; validBytes: number; truncatedBytes: number }>;
  append(record: Uint8Array): Promise<{ offset: number; seq: number }>;
  /** Copies a record into the staging area (nothing is written yet). */
  stage(record: Uint8Array): void;
  /** Appends every staged record as one group; resolves with the first one's position, null when none was staged. */
  commit(): Promise<{ offset: number; seq: number } | null>;
  /** Resolves with the new file size. */
  compact(records: readonly Uint8Array[]): Promise<number>;
  readAll(): Promise<Uint8Array[]>;
  close(): Promise<void>;
  stats(): { appends: number; syncs: number; size: number; nextSeq: number };
}

/** What one SG_IO ioctl reported (native/sgio.cc). */
export interface NativeSgResult {
  status: number;
  hostStatus: number;
  driverStatus: number;
  /** sb_len_wr bytes of sense. */
  sense: Uint8Array;
  /** The whole Data-In buffer (dataInLength bytes); `resid` says how much was not filled. */
  data: Uint8Array;
  resid: number;
  /** Wall time of the ioctl, nanoseconds. */
  durationNs: number;
  /** The sg driver's info flags (SG_INFO_*). */
  info: number;
}

/** Raw SCSI generic handle; use src/transport/sgio. */
export interface NativeSgDevice {
  /** direction: 0 none, 1 in (device to host), 2 out. */
  execute(cdb: Uint8Array, direction: number, dataOut: Uint8Array | null, dataInLength: number, timeoutMs: number): Promise<NativeSgResult>;
  /** Closes once the commands in flight have returned. Idempotent. */
  close(): void;
  readonly version: number;
}

/**
 * Raw shape of the addon's exports; extended as native areas are added. Nothing here has
 * a timeout or cancellation of its own (the facades document theirs); OS failures reject
 * or throw {@link NativeOsError}, bad arguments throw `TypeError` / `RangeError`, and use
 * after close fails with code `ECLOSED`.
 */
export interface NativeAddon {
  crc32c(data: Uint8Array, seed?: number): number;
  VoteTally: new (electorate: number, threshold: number, window: number) => NativeVoteTally;
  KeyJournal: new (path: string, options?: NativeKeyJournalOptions) => NativeKeyJournal;
  /** Opens a SCSI generic node; rejects ENOTTY when it does not speak sg v3. */
  sgOpen(path: string): Promise<NativeSgDevice>;
  /** A pseudo-terminal pair with the slave in raw mode. */
  openPty(): { masterFd: number; slaveFd: number; slavePath: string };
  /** AES-256-GCM: `plain` sealed into `out` (the same buffer, or one not overlapping it), its tag into `tag` (native/gcm.cc). */
  gcmSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plain: Uint8Array, out: Uint8Array, tag: Uint8Array): void;
  /** Two seals with one key and AAD, the second on a helper thread meanwhile. */
  gcmSeal2(key: Uint8Array, nonce0: Uint8Array, nonce1: Uint8Array, aad: Uint8Array, plain0: Uint8Array, out0: Uint8Array, tag0: Uint8Array, plain1: Uint8Array, out1: Uint8Array, tag1: Uint8Array): void;
  /**
   * Starts writeback of `length` bytes of `fd` from `offset` on the threadpool
   * (sync_file_range, SYNC_FILE_RANGE_WRITE): nothing is durable until an fdatasync. The
   * callback gets null, or the {@link NativeOsError} the kernel reported.
   */
  startWriteback(fd: number, offset: number, length: number, callback: (err: NativeOsError | null) => void): void;
}

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`ptpvts: cannot find the package root above ${start}`);
    dir = up;
  }
}

function load(): NativeAddon {
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  // PTPVTS_NATIVE lets native/sanitize.sh run the same tests over an instrumented build.
  const override = process.env['PTPVTS_NATIVE'];
  const candidates = override
    ? [override]
    : [join(root, 'build', 'Release', 'ptpvts.node'), join(root, 'build', 'Debug', 'ptpvts.node')];
  const require = createRequire(import.meta.url);
  for (const path of candidates) {
    if (existsSync(path)) return require(path) as NativeAddon;
  }
  throw new Error(`ptpvts: the native addon is not built (looked for ${candidates.join(', ')}); run \`npm run build:native\``);
}

/** The loaded addon. Loading happens once, on first import. */
export const native: NativeAddon = load();

/**
 * {@link NativeAddon.startWriteback}, or undefined with an addon built before the call
 * existed (`npm install` not run since): callers then keep their fdatasync form.
 */
export const startWriteback: NativeAddon['startWriteback'] | undefined = typeof native.startWriteback === 'function' ? (fd, offset, length, callback) => native.startWriteback(fd, offset, length, callback) : undefined;

/** What sync_file_range answers on a file system that does not offer it: not a failure of the data. */
const WRITEBACK_UNSUPPORTED: ReadonlySet<string> = new Set(['EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'ESPIPE']);

/** True when a {@link startWriteback} error says the file system refuses the call (only a head start is lost). */
export function writebackUnsupported(err: { readonly code?: string | undefined } | null | undefined): boolean {
  return WRITEBACK_UNSUPPORTED.has(err?.code ?? '');
}

/** CRC-32C (Castagnoli) of `data`, continuing from `seed` (a previous result) when given. */
export function crc32c(data: Uint8Array, seed = 0): number {
  return native.crc32c(data, seed);
}

/**
 * AES-256-GCM with Node's OpenSSL, writing the ciphertext of `plain` into `out` (which may
 * be `plain` itself) and the 16-byte tag into `tag`, with no allocation. Throws RangeError
 * for wrong lengths or a partial overlap.
 */
export function gcmSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plain: Uint8Array, out: Uint8Array, tag: Uint8Array): void {
  native.gcmSeal(key, nonce, aad, plain, out, tag);
}

/** Two {@link gcmSeal}s with one key and AAD at once, the second on a helper thread (alone when another caller holds it). */
export function gcmSeal2(key: Uint8Array, nonce0: Uint8Array, nonce1: Uint8Array, aad: Uint8Array, plain0: Uint8Array, out0: Uint8Array, tag0: Uint8Array, plain1: Uint8Array, out1: Uint8Array, tag1: Uint8Array): void {
  native.gcmSeal2(key, nonce0, nonce1, aad, plain0, out0, tag0, plain1, out1, tag1);
}
