// Whether the compiled JavaScript in dist/ may run: shared by bin/ptpvts.js (which runs the
// sources through tsx instead when it may not) and scripts/build-ts.mjs (which skips the
// compiler when it may). Plain JavaScript: it must work before anything is compiled.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Written into dist/ after the compiler finished without error; removed before it starts. */
export const STAMP = '.build-stamp';

/** What a build reads: the sources it compiles and its settings. */
function newestInput(root) {
  let newest = 0;
  let newestFile = '';
  const see = (file) => {
    const t = statSync(file).mtimeMs;
    if (t > newest) {
      newest = t;
      newestFile = file;
    }
  };
  for (const f of ['tsconfig.json', 'tsconfig.build.json']) if (existsSync(join(root, f))) see(join(root, f));
  for (const dir of ['src', 'firmware-sim']) {
    const base = join(root, dir);
    if (!existsSync(base)) continue;
    for (const e of readdirSync(base, { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !e.name.endsWith('.ts') || e.name.endsWith('.test.ts')) continue;
      see(join(e.parentPath ?? e.path, e.name));
    }
  }
  return { newest, newestFile };
}

/**
 * `{ current: true }` when dist/ is a complete build at least as new as every source;
 * otherwise `{ current: false, why }`. An installed package (no sources beside dist/) is
 * current when its entry points are there.
 */
export function distState(root) {
  const entry = join(root, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(join(root, 'src'))) return existsSync(entry) ? { current: true } : { current: false, why: `${entry} is missing` };
  const stamp = join(root, 'dist', STAMP);
  if (!existsSync(stamp) || !existsSync(entry)) return { current: false, why: 'the TypeScript was never compiled completely' };
  const built = statSync(stamp).mtimeMs;
  const { newest, newestFile } = newestInput(root);
  if (newest > built) return { current: false, why: `${newestFile} changed after the last build` };
  return { current: true };
}
