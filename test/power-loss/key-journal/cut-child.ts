// Writer for the cut-in-place campaign: opens the journal with the production open code
// (recovery included), checks what it recovered against the numbered stream and prints
// `R <count>`, then appends with several in flight, printing `A <number>` once each is
// acknowledged and compacting now and then. The parent SIGKILLs it and cuts the power.
import { KeyJournal } from '../../../src/hotpath/key-journal.js';
import { KeyJournalRef } from '../../../src/hotpath/key-journal-ref.js';
import type { KeyJournalApi } from '../../../src/hotpath/journal-types.js';
import { JournalLoad } from './load.js';
import { checkRecords, rng } from './records.js';

const [impl, path, seedArg, holdArg] = process.argv.slice(2);
if ((impl !== 'native' && impl !== 'reference') || path === undefined) throw new Error('usage: cut-child native|reference <path> <seed>');
const out = (line: string): void => void process.stdout.write(`${line}\n`);
let journal: KeyJournalApi;
try {
  journal = impl === 'native' ? await KeyJournal.open(path, { createDirectory: true }) : await KeyJournalRef.open(path, { createDirectory: true });
} catch (e) {
  out(`X opens ${(e as Error).name}: ${(e as Error).message}`);
  process.exit(0);
}
const recs = journal.records();
for (const v of checkRecords(recs, 0, Number.MAX_SAFE_INTEGER)) out(`X ${v.check} ${v.detail}`);
out(`R ${recs.length} ${journal.recovery.validBytes}`);
// "hold": recover and write nothing more, so the cut finds recovery's own truncation alone.
if (holdArg === 'hold') {
  setInterval(() => undefined, 1000);
} else {
  const load = new JournalLoad(journal, recs.length, 6, rng(Number(seedArg ?? 1)), 0.01);
  let shown = recs.length;
  setInterval(() => {
    for (const e of load.errors.splice(0)) out(`X append ${e}`);
    if (load.acked > shown) {
      shown = load.acked;
      out(`A ${shown}`);
    }
  }, 1);
}
