/**
 * Reference key journal on node:fs: the same format and contract as the native journal,
 * one write+fdatasync per append, no group commit, no preallocation. It is the yardstick for tests and
 * the fallback where the addon cannot be built.
 */
import { open as openFile, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { decodeJournal, encodeRecord, tornLength } from './journal-format.js';
import { KeyJournalError, checkRecord } from './journal-types.js';
import type { AppendResult, KeyJournalApi, RecoveryReport } from './journal-types.js';

async function syncDirectory(path: string): Promise<void> {
  const dir = await openFile(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** JS reference journal. Error, timeout and cancellation rules: see {@link KeyJournalApi}. */
export class KeyJournalRef implements KeyJournalApi {
  readonly path: string;
  readonly recovery: RecoveryReport;
  #file: FileHandle | undefined;
  #recovered: readonly Uint8Array[];
  #tail: number;
  #seq: number;
  #broken: unknown;
  // Operations run one after another, in call order.
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(path: string, file: FileHandle, recovered: Uint8Array[], report: RecoveryReport) {
    this.path = path;
    this.#file = file;
    this.#recovered = recovered;
    this.recovery = report;
    this.#tail = report.validBytes;
    this.#seq = recovered.length;
  }

  static async open(path: string): Promise<KeyJournalRef> {
    let file: FileHandle | undefined;
    try {
      file = await openFile(path, 'a+');
      await file.close();
      file = await openFile(path, 'r+');
      const bytes = new Uint8Array(await file.readFile());
      const { records, validBytes } = decodeJournal(bytes);
      if (validBytes < bytes.length) {
        await file.truncate(validBytes);
        await file.datasync();
      }
      await unlink(`${path}.compact`).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      await syncDirectory(path);
      return new KeyJournalRef(path, file, records.map((r) => r.slice()), { records: records.length, validBytes, truncatedBytes: tornLength(bytes, validBytes) });
    } catch (err) {
      await file?.close().catch(() => undefined);
      throw KeyJournalError.from(err, `open of ${path}`);
    }
  }

  records(): readonly Uint8Array[] {
    return this.#recovered;
  }

  #run<T>(what: string, op: (file: FileHandle) => Promise<T>): Promise<T> {
    const next = this.#chain.then(async () => {
      const file = this.#file;
      if (file === undefined) throw new KeyJournalError('ECLOSED', `key journal ${what}: the journal is closed`);
      try {
        return await op(file);
      } catch (err) {
        throw KeyJournalError.from(err, what);
      }
    });
    this.#chain = next.catch(() => undefined);
    return next;
  }

  append(record: Uint8Array): Promise<AppendResult> {
    try {
      checkRecord(record, 'KeyJournalRef.append');
    } catch (err) {
      return Promise.reject(err);
    }
    const framed = encodeRecord(record);
    return this.#run('append', async (file) => {
      if (this.#broken !== undefined) throw this.#broken;
      const offset = this.#tail;
      try {
        await file.write(framed, 0, framed.length, offset);
        await file.datasync();
      } catch (err) {
        this.#broken = err;
        throw err;
      }
      this.#tail += framed.length;
      return { offset, seq: this.#seq++ };
    });
  }

  readAll(): Promise<Uint8Array[]> {
    return this.#run('readAll', async (file) => {
      const buf = new Uint8Array(this.#tail);
      await file.read(buf, 0, buf.length, 0);
      const d = decodeJournal(buf);
      if (d.validBytes !== buf.length) throw new KeyJournalError('EIO', 'key journal readAll: the file changed under the journal');
      return d.records;
    });
  }

  compact(records: readonly Uint8Array[]): Promise<void> {
    try {
      for (const r of records) checkRecord(r, 'KeyJournalRef.compact');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#run('compact', async (file) => {
      if (this.#broken !== undefined) throw this.#broken;
      const tmpPath = `${this.path}.compact`;
      const tmp = await openFile(tmpPath, 'w+');
      let size = 0;
      try {
        for (const r of records) {
          const framed = encodeRecord(r);
          await tmp.write(framed, 0, framed.length, size);
          size += framed.length;
        }
        await tmp.datasync();
        await rename(tmpPath, this.path);
      } catch (err) {
        await tmp.close();
        await unlink(tmpPath).catch(() => undefined);
        throw err;
      }
      await file.close();
      this.#file = tmp;
      this.#tail = size;
      this.#seq = records.length;
      await syncDirectory(this.path);
    });
  }

  async close(): Promise<void> {
    await this.#chain;
    const file = this.#file;
    this.#file = undefined;
    await file?.close();
  }
}
