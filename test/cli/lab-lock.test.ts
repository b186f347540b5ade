/**
 * One command at a time per lab: `ptpvts` processes started together on one lab take turns
 * (neither loses its work), a command that cannot get the lab in time names who has it, and
 * a lock left by a process that is gone is taken over.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { memoryOut } from '../../src/cli/output.js';
import { defaultLibraryYaml } from '../../src/cli/default-lab.js';
import { lockLab, openEmbeddedLab } from '../../src/cli/lab.js';
import { patternData } from '../../src/cli/tape-io.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runner = join(root, 'test', 'cli', 'fixtures', 'ptpvts-runner.ts');

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

interface Started {
  /** Resolves when the command has loaded and waits for `go()` (with `barrier`). */
  readonly ready: Promise<void>;
  go(): void;
  readonly done: Promise<Ran>;
}

/** Starts `ptpvts ...` as a process of its own; `onErr` sees stderr (where lock messages go) as it comes. */
function start(args: string[], o: { env?: NodeJS.ProcessEnv; onErr?: (all: string) => void; barrier?: boolean } = {}): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', runner, ...args], {
    cwd: root,
    env: { ...process.env, ...o.env, PTPVTS_TEST_BARRIER: o.barrier ? '1' : '0' },
  });
  let out = '';
  let err = '';
  let readyNow: () => void = () => undefined;
  const ready = new Promise<void>((r) => (readyNow = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    if (/^ready$/m.test(err)) readyNow();
    o.onErr?.(err);
  });
  const done = new Promise<Ran>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      readyNow();
      resolve({ code, out, err: err.replace(/^ready\n/, '') });
    });
  });
  return { ready, go: () => child.stdin.end('go\n'), done };
}

function ptpvts(args: string[], o: { env?: NodeJS.ProcessEnv; onErr?: (all: string) => void } = {}): Promise<Ran> {
  return start(args, o).done;
}

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOut();
  const code = await main(['node', 'ptpvts', ...args], o);
  process.exitCode = undefined;
  return { code, out: o.lines.join('\n'), err: o.errors.join('\n') };
}

/** The pid of a process that has just exited (for a stale lock). */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => c.once('exit', r));
  return c.pid!;
}

let dir: string;
let yaml: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-lock-'));
  yaml = join(dir, 'library.yaml');
  writeFileSync(yaml, defaultLibraryYaml('locktest').replace(/capacity: 64MiB/g, 'capacity: 32MiB'));
  process.exitCode = undefined;
});
afterEach(() => {
  process.exitCode = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('the lab lock', () => {
  it('two tape writes started together on one lab both land on the cartridge, one after the other', async () => {
    expect((await run('load', '-l', yaml, 'LAB001L8')).code).toBe(0);
    const files = ['a', 'b'].map((n, i) => {
      const f = join(dir, `${n}.bin`);
      writeFileSync(f, patternData(3_000_000 + i * 1000, 11 + i));
      return f;
    });
    // Both commands loaded first, then let go at once: they meet on the lab, not one after the other by chance.
    const writers = files.map((f) => start(['tape', 'write', '-l', yaml, '-f', f, '-b', '64KiB'], { barrier: true }));
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.go();
    const [a, b] = await Promise.all(writers.map((w) => w.done));
    expect(a!.code, a!.err).toBe(0);
    expect(b!.code, b!.err).toBe(0);
    const wanted = new Set(files.map((f) => readFileSync(f).toString('base64')));
    const got = new Set<string>();
    for (const n of [0, 1]) {
      const back = join(dir, `back${n}.bin`);
      const r = await run('tape', 'read', '-l', yaml, '--file-number', String(n), '-o', back);
      expect(r.code, r.err).toBe(0);
      got.add(readFileSync(back).toString('base64'));
    }
    expect(got).toEqual(wanted);
    // One of them found the lab taken and waited for it, and said so on stderr: stdout keeps the results alone.
    expect(`${a!.err}${b!.err}`).toMatch(/Waiting for the lab: pid \d+ \(ptpvts tape write -l /);
    expect(`${a!.out}${b!.out}`).not.toMatch(/Waiting for the lab/);
    expect(existsSync(join(dir, 'lab.lock'))).toBe(false);
  });

  it('a command waits while another has the lab, saying who, and goes on once it is free', async () => {
    const held = await lockLab(yaml, { command: 'lab-lock test (holding the lab)' });
    let releasedAt = 0;
    const child = ptpvts(['move', '-l', yaml, 'slot 1', 'slot 20', '--lock-timeout', '60'], {
      onErr: (all) => {
        if (releasedAt === 0 && /Waiting for the lab/.test(all)) {
          releasedAt = Date.now();
          held.release();
        }
      },
    });
    const r = await child;
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toMatch(/Waiting for the lab/);
    expect(r.err).toMatch(new RegExp(`Waiting for the lab: pid ${process.pid} \\(lab-lock test \\(holding the lab\\)\\) since \\d{4}-\\d\\d-\\d\\dT`));
    expect(r.out).toMatch(/Moved LAB001L8 from slot 1/);
    expect(releasedAt).toBeGreaterThan(0);
    held.release();
  });

  it('gives up after --lock-timeout naming the holder (pid, command, since), and changes nothing', async () => {
    const held = await lockLab(yaml, { command: 'ptpvts tape fill -l lab (test)' });
    try {
      const t0 = Date.now();
      const r = await ptpvts(['move', '-l', yaml, 'slot 1', 'slot 20', '--lock-timeout', '0.5']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`in use: pid ${process.pid} \\(ptpvts tape fill -l lab \\(test\\)\\) since ${held.holder.since.replace(/[.]/g, '\\.')}`));
      expect(r.err).toMatch(/gave up after waiting 0\.\d s .*--lock-timeout/);
      expect(r.err).toContain(join(dir, 'lab.lock'));
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(existsSync(join(dir, 'state.json'))).toBe(false);
    } finally {
      held.release();
    }
    // The same from the environment.
    const again = await lockLab(yaml, { command: 'holder two' });
    try {
      const r = await ptpvts(['fault', 'clear', '-l', yaml], { env: { PTPVTS_LAB_LOCK_TIMEOUT: '0.2' } });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/\(holder two\)/);
    } finally {
      again.release();
    }
  });

  it('takes over a lock whose process is gone', async () => {
    const pid = await deadPid();
    const lock = join(dir, 'lab.lock');
    writeFileSync(lock, JSON.stringify({ pid, host: (await import('node:os')).hostname(), command: 'ptpvts tape write (killed)', since: '2026-01-01T00:00:00.000Z', token: 'dead' }));
    const r = await run('move', '-l', yaml, 'slot 1', 'slot 20', '--lock-timeout', '5');
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toMatch(/Took over/);
    expect(r.err).toMatch(new RegExp(`Took over the lab's lock from pid ${pid} \\(ptpvts tape write \\(killed\\)\\) since 2026-01-01T00:00:00.000Z: process ${pid} is gone`));
    expect(existsSync(lock)).toBe(false);
    // A lock file cut short by a crash (empty, old) is taken over too.
    writeFileSync(lock, '');
    const old = new Date(Date.now() - 60_000);
    (await import('node:fs')).utimesSync(lock, old, old);
    const r2 = await run('inventory', '-l', yaml, '--lock-timeout', '5');
    expect(r2.code, r2.err).toBe(0);
    expect(r2.err).toMatch(/Took over the lab's lock: its lock file has been unreadable/);
    // One from before a restart (another boot id), even though its pid now belongs to a live process.
    const { hostname } = await import('node:os');
    writeFileSync(lock, JSON.stringify({ pid: process.ppid, host: hostname(), boot: 'an-earlier-boot', command: 'ptpvts load', since: '2026-01-01T00:00:00.000Z', token: 'before-restart' }));
    const r3 = await run('inventory', '-l', yaml, '--lock-timeout', '5');
    expect(r3.code, r3.err).toBe(0);
    expect(r3.err).toMatch(/Took over the lab's lock from pid \d+ \(ptpvts load\) since 2026-01-01T00:00:00.000Z: it was taken before the machine restarted/);
  });

  it('one process opening a lab it already has open is told so at once instead of waiting forever', async () => {
    const lab = await openEmbeddedLab(yaml, { lock: { timeoutMs: 60_000 } });
    try {
      const t0 = Date.now();
      await expect(openEmbeddedLab(yaml)).rejects.toThrow(/this process has the lab open already/);
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      await lab.close();
    }
    const again = await openEmbeddedLab(yaml, { lock: { timeoutMs: 0 } });
    await again.close();
  });

  it('a bad --lock-timeout or PTPVTS_LAB_LOCK_TIMEOUT is named', async () => {
    expect((await run('inventory', '-l', yaml, '--lock-timeout', 'soon')).err).toMatch(/--lock-timeout must be a number of seconds >= 0 \(got "soon"\)/);
    process.env.PTPVTS_LAB_LOCK_TIMEOUT = 'forever';
    try {
      expect((await run('inventory', '-l', yaml)).err).toMatch(/PTPVTS_LAB_LOCK_TIMEOUT must be a number of seconds >= 0 \(got "forever"\)/);
    } finally {
      delete process.env.PTPVTS_LAB_LOCK_TIMEOUT;
    }
  });
});
