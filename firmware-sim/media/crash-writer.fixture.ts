/**
 * Child process for the crash-safety test: appends a deterministic pattern to a cartridge
 * forever, reporting on fd 1 each sync point it has passed (`S n`) and each deliberate
 * truncation before it starts (`T n`), until it is killed.
 * Object i is a filemark when i % 8 === 7, otherwise a block whose bytes depend on i only,
 * so whatever survives a kill can be checked without knowing where the kill landed.
 */
import { writeSync } from 'node:fs';
import { Cartridge } from './cartridge.js';

export function patternBlock(i: number): Uint8Array {
  const n = (i * 37) % 700;
  const b = new Uint8Array(n);
  for (let k = 0; k < n; k++) b[k] = (k + i * 13) & 0xff;
  return b;
}
export const isFilemark = (i: number): boolean => i % 8 === 7;

function main(): void {
  const [path, back] = process.argv.slice(2);
  if (!path) throw new Error('usage: crash-writer PATH [overwrite-back]');
  const c = Cartridge.open(path, { create: { mediaType: 'LTO7', barcode: 'CRASH1L7', capacityBytes: 1 << 30, worm: false } });
  // Step back and overwrite, so a kill can also land inside a truncation.
  const from = Math.max(0, c.objectCount - Number(back ?? 0));
  c.truncate(from);
  c.sync();
  writeSync(1, `S ${c.objectCount}\n`);
  for (let i = c.objectCount; ; i++) {
    if (i >= 3000) {
      // Keep the file small (the parent re-reads all of it) by overwriting from the middle.
      // Said before it is done: a kill inside the truncation must not be held against the
      // sync point reported before it (3000 objects are no longer all meant to be there).
      writeSync(1, `T 1000\n`);
      c.truncate(1000);
      c.sync();
      writeSync(1, `S ${c.objectCount}\n`);
      i = c.objectCount - 1;
      continue;
    }
    if (isFilemark(i)) {
      c.appendFilemarks(1);
      writeSync(1, `S ${c.objectCount}\n`);
    } else {
      c.appendBlock(patternBlock(i));
    }
  }
}

if (/crash-writer[^/]*\.(?:fixture\.ts|mjs)$/u.test(process.argv[1] ?? '')) main();
