/**
 * Mid-log damage in a VTC's key journal, end to end: the VTC refuses to start (the error
 * names the file, the offset and the valid records after it; nothing on disk changes);
 * started with `journalRepair: 'salvage'` it keeps every valid record, moves the damaged
 * file aside, and fetches what was lost from its peers by anti-entropy until its
 * committed chain is theirs again.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { scanJournal } from '../../src/hotpath/journal-format.js';
import { KeyJournalCorruptError } from '../../src/hotpath/journal-types.js';
import { LocalCluster } from '../../src/scenario/cluster.js';
import { VtcAgent } from '../../src/vtc/agent.js';
import type { VtcAgentOptions } from '../../src/vtc/agent.js';

let dir = '';
let c: LocalCluster | null = null;
const start = VtcAgent.start.bind(VtcAgent);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-salvage-'));
});
afterEach(async () => {
  VtcAgent.start = start;
  await c?.stop();
  c = null;
  rmSync(dir, { recursive: true, force: true });
});

const chain = (a: VtcAgent): string[] => a.engine.committedKeys().map((k) => `${k.seq}:${k.mac}`);

it('a VTC with a damaged record mid-journal refuses to start, then salvages and catches up from its peers', async () => {
  c = await LocalCluster.start({ n: 4, dir });
  const cl = c;
  expect(await cl.waitFor(() => Object.values(cl.statuses()).every((s) => s === 'online-both'), 8000)).toBe(true);
  for (const threshold of [3, 2, 3, 2]) {
    await cl.agent('vtc1').command({ command: 'threshold-set', threshold });
  }
  expect(await cl.waitFor(() => cl.alive().every((a) => a.engine.newestKey().seq >= 4), 5000)).toBe(true);
  const want = chain(cl.agent('vtc1'));
  expect(want.length).toBeGreaterThanOrEqual(4);

  await cl.crashVtc('vtc4');
  const path = join(dir, 'vtc4', 'keys.journal');
  const bytes = readFileSync(path);
  const before = scanJournal(bytes);
  expect(before.records.length).toBeGreaterThan(4);
  // Damage the second record's payload: every later key and commit is still readable.
  const at = before.offsets[1]! + 8 + 2;
  bytes[at] = bytes[at]! ^ 0x20;
  writeFileSync(path, bytes);

  const err = await cl.restartVtc('vtc4').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(KeyJournalCorruptError);
  expect(err).toMatchObject({ code: 'ECORRUPT', path, offset: before.offsets[1], recordsBefore: 1, recordsAfter: before.records.length - 2 });
  expect(readFileSync(path).equals(bytes)).toBe(true);

  VtcAgent.start = (o: VtcAgentOptions) => start({ ...o, journalRepair: 'salvage' });
  await cl.restartVtc('vtc4');
  VtcAgent.start = start;
  const moved = `${path}.corrupt-${before.offsets[1]}`;
  expect(existsSync(moved)).toBe(true);
  expect(readFileSync(moved).equals(bytes)).toBe(true);
  const salvaged = scanJournal(readFileSync(path));
  expect(salvaged.damage).toEqual([]);
  expect(salvaged.records.length).toBeGreaterThanOrEqual(before.records.length - 1);
  // Anti-entropy: the lost record comes back from the peers, and the chain is theirs again.
  expect(await cl.waitFor(() => chain(cl.agent('vtc4')).join() === chain(cl.agent('vtc1')).join(), 5000)).toBe(true);
  expect(chain(cl.agent('vtc4'))).toEqual(expect.arrayContaining(want));
});
