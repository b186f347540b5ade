/**
 * The only module that loads the C++ addon. Everything native goes through the typed
 * facade exported here, so a missing or stale build fails in one place with one message.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Raw shape of the addon's exports; extended as native areas are added. */
export interface NativeAddon {
  crc32c(data: Uint8Array, seed?: number): number;
}

function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`ptpvts: cannot find the package root above ${start}`);
    dir = up;
  }
}

function load(): NativeAddon {
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  const candidates = [join(root, 'build', 'Release', 'ptpvts.node'), join(root, 'build', 'Debug', 'ptpvts.node')];
  const require = createRequire(import.meta.url);
  for (const path of candidates) {
    if (existsSync(path)) return require(path) as NativeAddon;
  }
  throw new Error(`ptpvts: the native addon is not built (looked for ${candidates.join(', ')}); run \`npm run build:native\``);
}

/** The loaded addon. Loading happens once, on first import. */
export const native: NativeAddon = load();

/** CRC-32C (Castagnoli) of `data`, continuing from `seed` (a previous result) when given. */
export function crc32c(data: Uint8Array, seed = 0): number {
  return native.crc32c(data, seed);
}
