// `npm install`'s prepare step (and `npm pack`'s): compiles the TypeScript into dist/ unless
// dist/ is already a complete build as new as the sources, in which case it returns at once.
// `npx ptpvts` runs this step too (it links the checkout into npm's npx cache), so a
// first `npx ptpvts` after `npm install` does not wait for the compiler, and an interrupted
// one leaves nothing half-built behind: the stamp is written only after a build that
// finished without error, and until then bin/ptpvts.js runs the sources.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distState, STAMP } from '../bin/dist-state.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const force = process.argv.includes('--force');
const state = distState(root);
if (state.current && !force) {
  console.log('dist/ is up to date with the sources; nothing to compile.');
  process.exit(0);
}
console.log(`Compiling the TypeScript into dist/ (${force ? '--force' : state.why}).`);
const stamp = join(root, 'dist', STAMP);
rmSync(stamp, { force: true });
// A source saved while the compiler runs may not be in its output: the stamp is dated at the start.
const started = new Date();
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`tsc failed (${r.status ?? r.signal}); bin/ptpvts.js runs the sources until a build succeeds.`);
  process.exit(r.status ?? 1);
}
mkdirSync(dirname(stamp), { recursive: true });
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
