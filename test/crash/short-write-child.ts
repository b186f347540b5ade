// Short-write writer: run under a file-size limit (bash `ulimit -f`), it appends numbered
// records one at a time and prints `A <seq>` for each acknowledged one, then `E <code>`
// for the first failure. A write that crosses the limit is cut short by the kernel (the
// bytes up to the limit land), and the next write fails with EFBIG: a journal that
// ignores the short count would acknowledge a torn record.
import { KeyJournal } from '../../src/hotpath/key-journal.js';
import { KeyJournalRef } from '../../src/hotpath/key-journal-ref.js';
import { padded } from './short-write-record.js';

const [impl, path, countArg, padArg] = process.argv.slice(2);
if ((impl !== 'native' && impl !== 'reference') || path === undefined) throw new Error('usage: short-write-child native|reference <path> <count> [pad]');
const journal = impl === 'native' ? await KeyJournal.open(path) : await KeyJournalRef.open(path);
const count = Number(countArg ?? 100);
const pad = Number(padArg ?? 0);
for (let i = 0; i < count; i++) {
  try {
    const { seq } = await journal.append(padded(i, pad));
    process.stdout.write(`A ${seq}\n`);
  } catch (err) {
    process.stdout.write(`E ${(err as { code?: string }).code ?? 'unknown'}\n`);
    break;
  }
}
await journal.close().catch(() => undefined);
