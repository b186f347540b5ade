#!/usr/bin/env node
// Runs every benchmark suite (bench/*.bench.ts), each in a fresh process so one suite's
// heap and JIT state never colour another's. `npm run bench -- tally journal` runs some.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const all = readdirSync(here).filter((f) => f.endsWith('.bench.ts'));
// A name that is a suite's whole name picks that suite alone (`iscsi` is not also
// `iscsi-drives`); any other name picks every suite it begins.
const picks = (w, f) => (all.includes(`${w}.bench.ts`) ? f === `${w}.bench.ts` : f.startsWith(w));
const suites = all.filter((f) => wanted.length === 0 || wanted.some((w) => picks(w, f))).sort();
if (suites.length === 0) {
  console.error(`no benchmark suite matches ${wanted.join(' ')}`);
  process.exit(2);
}
let failed = 0;
for (const suite of suites) {
  console.log(`\n== ${suite}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, suite)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
