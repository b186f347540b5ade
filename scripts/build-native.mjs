// `npm install`'s install step: builds the C++ addon with node-gyp unless build/Release holds
// a complete build, for this Node ABI, as new as native/ and binding.gyp. `npx ptpvts` runs
// this step too (it links the checkout into npm's npx cache), and rebuilding there cost a
// first run tens of seconds. `npm rebuild`, `npm run build:native`, --force or
// PTPVTS_FORCE_BUILD=1 always rebuild; --check only says whether a build is due.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const stamp = join(root, 'build', 'Release', '.build-stamp');
// What makes a build usable here besides its sources.
const target = { modules: process.versions.modules, napi: process.versions.napi, platform: process.platform, arch: process.arch };

function why() {
  if (process.argv.includes('--force') || process.env.PTPVTS_FORCE_BUILD === '1' || process.env.npm_command === 'rebuild') return 'a rebuild was asked for';
  if (!existsSync(join(root, 'build', 'Release', 'ptpvts.node')) || !existsSync(stamp)) return 'the addon was never built completely';
  let built;
  try {
    built = JSON.parse(readFileSync(stamp, 'utf8'));
  } catch {
    return 'its build stamp is unreadable';
  }
  for (const [k, v] of Object.entries(target)) if (built[k] !== v) return `it was built for ${k} ${built[k]}, this is ${v}`;
  const since = statSync(stamp).mtimeMs;
  const inputs = [join(root, 'binding.gyp'), require.resolve('node-addon-api/package.json')];
  for (const e of readdirSync(join(root, 'native'), { withFileTypes: true })) if (e.isFile() && /\.(cc|c|h|hpp)$/.test(e.name)) inputs.push(join(root, 'native', e.name));
  for (const f of inputs) if (statSync(f).mtimeMs > since) return `${f} changed after the last build`;
  return undefined;
}

const reason = why();
if (reason === undefined) {
  console.log('build/Release/ptpvts.node is up to date; nothing to build.');
  process.exit(0);
}
// --check: only say whether a build is due (exit 1) or not (exit 0).
if (process.argv.includes('--check')) {
  console.log(`The native addon would be built: ${reason}.`);
  process.exit(1);
}
console.log(`Building the native addon (${reason}).`);
rmSync(stamp, { force: true });
const started = new Date();
const r = spawnSync(process.execPath, [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(stamp, JSON.stringify(target) + '\n');
// A source saved while the compiler ran may not be in the build: the stamp is dated at the start.
utimesSync(stamp, started, started);
