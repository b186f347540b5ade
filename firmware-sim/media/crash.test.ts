import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cartridge, checkCartridge } from './index.js';
import { isFilemark, patternBlock } from './crash-writer.fixture.js';

const fixture = fileURLToPath(new URL('./crash-writer.fixture.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ptpvts-crash-'));
// Bundled once to plain JS, so each killed child starts in tens of milliseconds. It lives
// under the package (node_modules/.cache) because the addon loader finds its build from there.
const bundle = fileURLToPath(new URL(`../../node_modules/.cache/ptpvts-crash-writer-${process.pid}.mjs`, import.meta.url));
beforeAll(async () => {
  await build({ entryPoints: [fixture], bundle: true, platform: 'node', format: 'esm', outfile: bundle, logLevel: 'error' });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(bundle, { force: true });
});

/** Runs the writer, kills it with SIGKILL after `ms`, and returns the last sync point it reported. */
function runAndKill(path: string, back: number, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bundle, path, String(back)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let synced = -1;
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^S (\d+)$/u.exec(line);
        if (m) synced = Number(m[1]);
        // The writer cuts the cartridge back on purpose: fewer objects are then expected.
        const t = /^T (\d+)$/u.exec(line);
        if (t) synced = Math.min(synced, Number(t[1]));
        // Start the clock at the first report, so the kill lands while writing.
        timer ??= setTimeout(() => child.kill('SIGKILL'), ms);
      }
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited on its own (${String(signal)})`));
      else resolve(synced);
    });
  });
}

describe('crash safety (SIGKILL)', () => {
  it('keeps everything written before the last sync point, across kills and overwrites', async () => {
    const path = join(dir, 'crash.cart');
    const iterations = 20;
    for (let it = 0; it < iterations; it++) {
      const synced = await runAndKill(path, it % 3 === 2 ? 5 : 0, 5 + ((it * 7) % 30));
      expect(synced).toBeGreaterThanOrEqual(0);
      const c = Cartridge.open(path, { readOnly: true });
      try {
        expect(c.objectCount).toBeGreaterThanOrEqual(synced);
        const wrong: number[] = [];
        for (let i = 0; i < c.objectCount; i++) {
          const ok = isFilemark(i) ? c.object(i)?.kind === 'filemark' : Buffer.from(c.readBlock(i)).equals(patternBlock(i));
          if (!ok) wrong.push(i);
        }
        expect(wrong).toEqual([]);
      } finally {
        c.close();
      }
      const r = checkCartridge(path);
      expect(r.damaged).toEqual([]);
    }
  }, 60_000);
});
