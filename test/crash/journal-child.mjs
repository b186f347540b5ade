// Crash-test writer: opens the journal, optionally compacts it onto itself, then appends
// numbered records forever with several in flight, printing each acknowledged seq. The
// parent kills it with SIGKILL at random moments. Plain JS loading the addon directly,
// so each of the many runs starts fast.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { payload } from './journal-payload.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const addon = createRequire(import.meta.url)(process.env.PTPVTS_NATIVE ?? join(root, 'build', 'Release', 'ptpvts.node'));
const [path, compactFlag, concurrencyArg, mode] = process.argv.slice(2);

const out = (line) => process.stdout.write(line + '\n');
const journal = new addon.KeyJournal(path);
const { records } = await journal.open();
out(`R ${records.length}`);
if (compactFlag === '1') {
  await journal.compact(records);
  out('C');
}
let next = records.length;
const concurrency = Number(concurrencyArg ?? 4);

// "staged" mode groups the appends of one tick the way src/hotpath/key-journal.ts does.
let waiting = [];
function stagedAppend(record) {
  journal.stage(record);
  return new Promise((resolve, reject) => {
    if (waiting.push({ resolve, reject }) === 1) {
      queueMicrotask(() => {
        const group = waiting;
        waiting = [];
        journal.commit().then((first) => group.forEach((w, k) => w.resolve({ seq: first.seq + k })), (e) => group.forEach((w) => w.reject(e)));
      });
    }
  });
}
const append = mode === 'staged' ? stagedAppend : (record) => journal.append(record);

function pump() {
  const i = next++;
  append(payload(i)).then(({ seq }) => {
    if (seq !== i) {
      out(`X seq ${seq} for record ${i}`);
      process.exit(3);
    }
    out(String(seq));
    pump();
  }, (err) => {
    out(`X ${err.code} ${err.message}`);
    process.exit(4);
  });
}
for (let k = 0; k < concurrency; k++) pump();
