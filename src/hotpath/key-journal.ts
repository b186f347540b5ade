/**
 * The key journal over the native addon: durable appends with group commit (appends
 * queued while a write+fdatasync runs share the next one). Format and crash rules:
 * docs/key-journal.md and native/key_journal.cc.
 */
import { native } from '../native.js';
import type { NativeKeyJournal, NativeKeyJournalOptions } from '../native.js';
import { HEADER_SIZE } from './journal-format.js';
import type { JournalDamage } from './journal-format.js';
import { openWithOptions } from './key-journal-ref.js';
import { KeyJournalCorruptError, KeyJournalError, checkRecord } from './journal-types.js';
import type { AppendResult, KeyJournalApi, KeyJournalOpenOptions, RecoveryReport } from './journal-types.js';

/** Native key journal. Error, timeout and cancellation rules: see {@link KeyJournalApi}. */
export class KeyJournal implements KeyJournalApi {
  readonly path: string;
  readonly recovery: RecoveryReport;
  readonly #handle: NativeKeyJournal;
  readonly #recovered: readonly Uint8Array[];
  // Appends made in the same tick, waiting for the microtask that commits them as one group.
  #waiting: { length: number; resolve: (r: AppendResult) => void; reject: (e: unknown) => void }[] = [];

  private constructor(path: string, handle: NativeKeyJournal, recovered: readonly Uint8Array[], report: RecoveryReport) {
    this.path = path;
    this.#handle = handle;
    this.#recovered = recovered;
    this.recovery = report;
  }

  /**
   * Opens (creating if needed) and recovers the journal at `path`: a torn tail (damage
   * that only records of the same, unacknowledged commit group follow) is cut off before
   * this resolves. Mid-log damage rejects with {@link KeyJournalCorruptError} (file,
   * offset, valid records after it) and changes nothing, unless `options.salvage` asks to
   * keep the valid records (see {@link KeyJournalOpenOptions}). Other failures reject with
   * {@link KeyJournalError} carrying the OS code (`ENOENT` for a missing directory,
   * `EACCES`...). `options.native` picks how the addon runs and syncs (default: the libuv
   * threadpool, pwrite + fdatasync); the alternatives are kept for the benchmark that
   * weighs them (bench/journal.bench.ts) and are equally durable.
   */
  static open(path: string, options?: KeyJournalOpenOptions & { native?: NativeKeyJournalOptions }): Promise<KeyJournal> {
    return openWithOptions(path, options, () => KeyJournal.#openOnce(path, options?.native), (j, salvage) => new KeyJournal(path, j.#handle, j.#recovered, { ...j.recovery, salvage }));
  }

  static async #openOnce(path: string, nativeOptions: NativeKeyJournalOptions | undefined): Promise<KeyJournal> {
    const handle = new native.KeyJournal(path, nativeOptions);
    try {
      const r = await handle.open();
      return new KeyJournal(path, handle, r.records, { records: r.records.length, validBytes: r.validBytes, truncatedBytes: r.truncatedBytes });
    } catch (err) {
      const e = err as { code?: unknown; offset?: unknown; recordsBefore?: unknown; recordsAfter?: unknown; damage?: unknown };
      if (e?.code === 'ECORRUPT' && typeof e.offset === 'number' && typeof e.recordsBefore === 'number' && typeof e.recordsAfter === 'number' && Array.isArray(e.damage)) {
        throw new KeyJournalCorruptError(path, { offset: e.offset, recordsBefore: e.recordsBefore, recordsAfter: e.recordsAfter, damage: e.damage as JournalDamage[] }, err);
      }
      throw KeyJournalError.from(err, `open of ${path}`);
    }
  }

  records(): readonly Uint8Array[] {
    return this.#recovered;
  }

  /**
   * The record is copied at once (the caller may reuse its buffer), then committed with
   * every other append of the same tick in one write and one fdatasync, and with later
   * ones by group commit while a sync is running.
   */
  append(record: Uint8Array): Promise<AppendResult> {
    try {
      checkRecord(record, 'KeyJournal.append');
      this.#handle.stage(record);
    } catch (err) {
      return Promise.reject(KeyJournalError.from(err, 'append'));
    }
    return new Promise<AppendResult>((resolve, reject) => {
      if (this.#waiting.push({ length: record.length, resolve, reject }) === 1) queueMicrotask(() => this.#commit());
    });
  }

  #commit(): void {
    const group = this.#waiting;
    if (group.length === 0) return;
    this.#waiting = [];
    const fail = (err: unknown) => {
      const e = KeyJournalError.from(err, 'append');
      for (const w of group) w.reject(e);
    };
    let pending: Promise<{ offset: number; seq: number } | null>;
    try {
      pending = this.#handle.commit();
    } catch (err) {
      fail(err);
      return;
    }
    pending.then((first) => {
      if (first === null) return fail(new KeyJournalError('EIO', 'staged records went missing'));
      let offset = first.offset;
      group.forEach((w, i) => {
        w.resolve({ offset, seq: first.seq + i });
        offset += HEADER_SIZE + w.length;
      });
    }, fail);
  }

  async readAll(): Promise<Uint8Array[]> {
    this.#commit();
    try {
      return await this.#handle.readAll();
    } catch (err) {
      throw KeyJournalError.from(err, 'readAll');
    }
  }

  async compact(records: readonly Uint8Array[]): Promise<void> {
    if (!Array.isArray(records)) throw new KeyJournalError('EINVAL', 'KeyJournal.compact: records must be an array');
    for (const r of records) checkRecord(r, 'KeyJournal.compact');
    this.#commit();
    try {
      await this.#handle.compact(records);
    } catch (err) {
      throw KeyJournalError.from(err, 'compact');
    }
  }

  async close(): Promise<void> {
    this.#commit();
    try {
      await this.#handle.close();
    } catch (err) {
      throw KeyJournalError.from(err, 'close');
    }
  }

  /** Appends acknowledged and fdatasync calls made so far: appends/syncs is the mean group size. */
  stats(): { appends: number; syncs: number; size: number } {
    const s = this.#handle.stats();
    return { appends: s.appends, syncs: s.syncs, size: s.size };
  }
}
