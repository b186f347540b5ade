import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIRECTORY_LOCK_NAME } from '../../src/cli/dir-lock.js';
import { generateTopologyKeys } from '../../src/cli/keys.js';
import { startVtc, startVts } from '../../src/cli/ptp-commands.js';
import { loadTopology } from '../../src/cli/topology.js';
import type { Topology } from '../../src/cli/topology.js';
import { freePort } from './fixtures/ptp-system.js';


let dir: string;
let t: Topology;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-dirlock-'));
  const p = async (): Promise<string> => `127.0.0.1:${await freePort()}`;
  const doc = {
    ptpId: 'locktest',
    secret: 'a cluster secret for the lock test',
    vtcs: await Promise.all(['vtc1', 'vtc2'].map(async (id) => ({ id, listen: await p(), control: await p(), journalDir: `./${id}` }))),
    vts: { A: { listen: await p(), cacheDir: './A/cache', stateDir: './A/state' }, B: { listen: await p(), cacheDir: './B/cache', stateDir: './B/state' } },
  };
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, stringify(doc));
  generateTopologyKeys(file, join(dir, 'keys'));
  t = loadTopology(file);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('one process per VTS and VTC directory', () => {
  it('a second VTS A on the same directories fails before opening them, naming the holder; after a stop it starts again', async () => {
    const first = await startVts(t, 'A');
    try {
      // A leftover temporary file that opening the VTS state would clean up: it must stay untouched.
      const sentinel = join(t.vts.A.stateDir, 'vts-state.bin.sentinel.tmp');
      writeFileSync(sentinel, 'x');
      const err = await startVts(t, 'A').then(
        () => null,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe('EDIRLOCKED');
      expect(err?.message).toMatch(new RegExp(`^VTS A's state directory .*A/state is in use by pid ${process.pid} \\(.*\\) since \\d{4}-`));
      expect(existsSync(sentinel)).toBe(true);
    } finally {
      await first.stop();
    }
    expect(existsSync(join(t.vts.A.stateDir, DIRECTORY_LOCK_NAME))).toBe(false);
    const again = await startVts(t, 'A');
    await again.stop();
  });

  it('a lock left by a process that is gone is taken over', async () => {
    const lock = join(t.vts.B.stateDir, DIRECTORY_LOCK_NAME);
    rmSync(t.vts.B.stateDir, { recursive: true, force: true });
    const v = await startVts(t, 'B');
    const mine = readFileSync(lock, 'utf8');
    await v.stop();
    // A pid that cannot be alive (above the kernel's pid_max).
    writeFileSync(lock, mine.replace(/"pid":\d+/, '"pid":99999999'));
    const w = await startVts(t, 'B');
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid);
    await w.stop();
  });

  it("a second VTC on the same journal directory fails before opening the journal, naming the holder", async () => {
    const first = await startVtc(t, 'vtc1');
    try {
      const err = await startVtc(t, 'vtc1').then(
        () => null,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe('EDIRLOCKED');
      expect(err?.message).toMatch(new RegExp(`^VTC vtc1's journal directory .*vtc1 is in use by pid ${process.pid} `));
    } finally {
      await first.stop();
    }
    const again = await startVtc(t, 'vtc1');
    await again.stop();
  });
});
