/**
 * The conventions a script relies on: a reader that closes the pipe ends the command
 * quietly, stdout carries data only (progress and notes go to stderr, progress only on a
 * terminal), exit codes say what happened, sizes are checked and generated data streams,
 * and Ctrl-C during `tape write` leaves a cartridge that ends cleanly.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { memoryOut } from '../../src/cli/output.js';
import { defaultLibraryYaml } from '../../src/cli/default-lab.js';
import { patternChunks } from '../../src/cli/tape-io.js';
import { checkCartridge } from '../../firmware-sim/media/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsx = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const runner = join(root, 'test', 'cli', 'fixtures', 'ptpvts-runner.ts');
const rssRunner = join(root, 'test', 'cli', 'fixtures', 'rss-runner.ts');

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** `ptpvts ...` as a process of its own in `cwd`, its stdout and stderr pipes (not terminals). */
function ptpvts(
  args: string[],
  o: { cwd?: string; script?: string; closeStdout?: boolean; onStart?: (pid: number) => void; onErr?: (all: string) => void } = {},
): Promise<Ran> {
  const child = spawn(process.execPath, ['--import', tsx, o.script ?? runner, ...args], { cwd: o.cwd ?? root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  // The reader goes away before the command prints anything: its first write meets a closed pipe.
  if (o.closeStdout) child.stdout.destroy();
  else child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    o.onErr?.(err);
  });
  o.onStart?.(child.pid!);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, out, err }));
  });
}

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOut();
  const code = await main(['node', 'ptpvts', ...args], o);
  process.exitCode = undefined;
  return { code, out: o.lines.join('\n'), err: o.errors.join('\n') };
}

let dir: string;
let yaml: string;

function makeLab(capacity: string): void {
  writeFileSync(yaml, defaultLibraryYaml('conventions').replace(/capacity: 64MiB/g, `capacity: ${capacity}`));
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-conv-'));
  yaml = join(dir, 'library.yaml');
  makeLab('4MiB');
  process.exitCode = undefined;
});
afterEach(() => {
  process.exitCode = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('output into pipes', () => {
  it('a closed stdout (ptpvts ... | head) ends the command quietly, its work done', async () => {
    await run('load', '-l', yaml, 'LAB001L8');
    const r = await ptpvts(['inventory', '-l', yaml], { closeStdout: true });
    expect(r.err).not.toMatch(/EPIPE|Error|at .*\.ts:\d+/);
    expect(r.code).toBe(0);
    // The lab was closed as usual: its lock given back.
    expect(existsSync(join(dir, 'lab.lock'))).toBe(false);
  });

  it('stdout carries data only: no progress lines and no notes when it is a pipe', async () => {
    const cwd = join(dir, 'bench');
    mkdirSync(cwd);
    // No -l: the default lab is made, and saying so is a note, not data.
    const r = await ptpvts(['inventory', '--init'], { cwd });
    expect(r.code, r.err).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^embedded library lab0 \(.*library\.yaml\): 20 slots/);
    expect(r.out).not.toMatch(/Scanning|Made a default/);
    expect(r.err).toMatch(/Made a default emulated library in /);
    // Progress bars are for a terminal: stderr here is a pipe.
    expect(r.err).not.toMatch(/Scanning/);
  });
});

describe('exit codes and messages', () => {
  it('--version prints the version of the package', async () => {
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    const r = await run('--version');
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(version);
  });

  it('no command: usage on stderr, nothing on stdout, exit 1; --help: stdout, exit 0', async () => {
    const r = await run();
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/Usage: ptpvts/);
    const h = await run('--help');
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/Usage: ptpvts/);
  });

  it('media check on a file that is not a cartridge fails naming the file', async () => {
    const f = join(dir, 'notes.txt');
    writeFileSync(f, 'not a tape at all\n');
    const r = await run('media', 'check', f);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${f} is not a cartridge file of the emulator`);
    expect(r.out).not.toMatch(/Result: /);
    const missing = await run('media', 'check', join(dir, 'nothing.tape'));
    expect(missing.code).toBe(1);
    expect(missing.err).toContain(`cannot check ${join(dir, 'nothing.tape')}: no such file`);
  });

  it('sizes are checked with the option named; one larger than the tape ends in a clear error, the file cut short', async () => {
    expect((await run('tape', 'write', '-l', yaml, '--size', 'lots')).err).toMatch(/--size "lots" is not a size such as 256KiB/);
    expect((await run('tape', 'write', '-l', yaml, '--size', '0')).err).toMatch(/--size "0" is not a size/);
    expect((await run('tape', 'write', '-l', yaml, '--size', '1', '-b', '17MiB')).err).toMatch(/--block-size "17MiB" is too large: at most 16777215 bytes/);
    expect((await run('tape', 'write', '-l', yaml, '--size', '99999999TiB')).err).toMatch(/--size "99999999TiB" is too large/);
    await run('load', '-l', yaml, 'LAB001L8');
    const r = await run('tape', 'write', '-l', yaml, '--size', '5GiB');
    expect(r.code).toBe(1);
    expect(r.err).not.toMatch(/out of range/);
    expect(r.err).toMatch(/VOLUME OVERFLOW.*the file was cut short after \d+ bytes in \d+ blocks/);
  });
});

describe('generated data', () => {
  it('comes in chunks of the block size, the same bytes whatever the chunking', () => {
    const whole = Buffer.concat([...patternChunks(100_003, 5, 100_003)]);
    const sizes: number[] = [];
    const parts = [...patternChunks(100_003, 5, 4099)].map((c) => (sizes.push(c.length), c));
    expect(Math.max(...sizes)).toBe(4099);
    expect(Buffer.concat(parts).equals(whole)).toBe(true);
    expect(Buffer.concat([...patternChunks(100_003, 6, 4099)]).equals(whole)).toBe(false);
  });

  it('tape write --size streams: 256 MiB costs far less memory than 256 MiB', async () => {
    makeLab('1GiB');
    await run('load', '-l', yaml, 'LAB001L8');
    const rss = (r: Ran): number => Number(/maxrss (\d+)/.exec(r.err)?.[1]) * 1024;
    const small = await ptpvts(['tape', 'write', '-l', yaml, '--size', '1MiB'], { script: rssRunner });
    expect(small.code, small.err).toBe(0);
    const big = await ptpvts(['tape', 'write', '-l', yaml, '--size', '256MiB'], { script: rssRunner });
    expect(big.code, big.err).toBe(0);
    expect(big.out).toMatch(/Wrote 256 MiB in 1024 blocks and a filemark/);
    // A whole-file buffer alone would add 256 MiB to the peak.
    expect(rss(big) - rss(small)).toBeLessThan(160 * 1024 * 1024);
  });
});

describe('Ctrl-C during tape write', () => {
  it('ends the file with a filemark, saves the lab, exits 130 with a message; media check then says OK', async () => {
    makeLab('1GiB');
    await run('load', '-l', yaml, 'LAB001L8');
    const first = await run('tape', 'write', '-l', yaml, '--size', '300KiB');
    expect(first.code, first.err).toBe(0);
    const tape = join(dir, 'media', 'LAB001L8.tape');
    let pid = 0;
    let sent = false;
    const poll = setInterval(() => {
      // Interrupt once the write is well under way (the cartridge file grows with each block).
      if (!sent && pid && existsSync(tape) && statSync(tape).size > 24 * 1024 * 1024) {
        sent = true;
        process.kill(pid, 'SIGINT');
      }
    }, 20);
    let r: Ran;
    try {
      r = await ptpvts(['tape', 'write', '-l', yaml, '--size', '900MiB'], { onStart: (p) => (pid = p) });
    } finally {
      clearInterval(poll);
    }
    expect(sent).toBe(true);
    expect(r.signal).toBeNull();
    expect(r.code, `${r.err}\n${r.out}`).toBe(130);
    expect(r.err).toMatch(/Interrupted \(SIGINT\): wrote .* of 900 MiB in \d+ blocks and ended them with a filemark; now at block \d+/);
    const report = checkCartridge(tape);
    expect(report.ok).toBe(true);
    expect(report.cleanEod).toBe(true);
    expect(report.filemarks).toBe(2);
    expect(report.blocks).toBeGreaterThan(2 + 90);
    // The next command carries on after the interrupted file.
    const next = await run('tape', 'write', '-l', yaml, '--size', '1KiB');
    expect(next.code, next.err).toBe(0);
    expect(next.out).toMatch(new RegExp(`now at block ${report.blocks + report.filemarks + 2}\\b`));
  });
});
