/**
 * The package as others meet it: `import ... from 'ptpvts'` loads the compiled public entry
 * (package.json `exports`, with type declarations), `engines` admits no Node version a
 * dependency refuses, and the `ptpvts` command starts from a complete build or, in a
 * checkout whose build is missing or older than the sources, from the sources.
 *
 * The build is made into a temporary copy of the package, so that the test neither depends
 * on nor disturbs dist/ of the working tree.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  main: string;
  types: string;
  exports: { '.': { types: string; import: string } };
  engines: { node: string };
  dependencies: Record<string, string>;
  scripts: Record<string, string>;
  files: string[];
};

let copy: string;

/** Runs `node args` in `cwd`; `out` is stdout, `err` stderr. Asynchronous: a blocked worker misses vitest's calls. */
function node(args: string[], cwd: string): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, ms: Date.now() - t0 });
    });
  });
}

beforeAll(async () => {
  // A copy of the package with what a build reads, its dependencies and addon shared by links.
  copy = mkdtempSync(join(tmpdir(), 'ptpvts-pkg-'));
  for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'binding.gyp']) copyFileSync(join(root, f), join(copy, f));
  for (const d of ['src', 'firmware-sim', 'bin', 'scripts']) cpSync(join(root, d), join(copy, d), { recursive: true });
  for (const d of ['node_modules', 'build']) symlinkSync(join(root, d), join(copy, d));
  const built = await node(['scripts/build-ts.mjs'], copy);
  expect(built.code, `${built.out}\n${built.err}`).toBe(0);
}, 300_000);

afterAll(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
});

describe('the package entry', () => {
  it('main, types and exports name the compiled src/index', () => {
    expect(pkg.main).toBe('dist/src/index.js');
    expect(pkg.exports['.'].import).toBe('./dist/src/index.js');
    expect(pkg.types).toBe('dist/src/index.d.ts');
    expect(pkg.exports['.'].types).toBe('./dist/src/index.d.ts');
    for (const f of [pkg.main, pkg.types]) expect(existsSync(join(copy, f)), f).toBe(true);
  });

  it("import from 'ptpvts' gives the devices, the transport bindings and the PtP agent and engine, not the emulator", async () => {
    // A module inside the package imports it by its own name, as a dependent would.
    const probe = `const m = await import('ptpvts'); console.log(JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v]))));`;
    const r = await node(['--input-type=module', '-e', probe], copy);
    expect(r.code, r.err).toBe(0);
    const names = JSON.parse(r.out) as Record<string, string>;
    for (const cls of ['TapeDrive', 'MediaChanger', 'SenseError', 'SgioPort', 'IscsiPort', 'UsbBotPort', 'SerialRobot', 'TransportError', 'VtcEngine', 'VtcAgent', 'ControlClient', 'VtsUnit']) {
      expect(names[cls], cls).toBe('function');
    }
    expect(names.ptp).toBe('object');
    // The emulator is not part of the public API.
    for (const internal of ['createLibrary', 'createLibraryTapeDrive', 'MemoryPort', 'main', 'buildProgram']) expect(names[internal], internal).toBeUndefined();
    const dts = readFileSync(join(copy, pkg.types), 'utf8');
    expect(dts).toMatch(/export \* from '\.\/devices\/index\.js'/);
    expect(dts).toMatch(/export \* as ptp from '\.\/ptp\/index\.js'/);
  });

  it('engines admits no Node version that a dependency (node-gyp first) refuses', () => {
    // semver as node-gyp itself resolves it: node-gyp is a dependency, so its semver is always there.
    const semver = createRequire(createRequire(join(root, 'package.json')).resolve('node-gyp/package.json'))('semver') as {
      subset(a: string, b: string): boolean;
    };
    const gyp = JSON.parse(readFileSync(join(root, 'node_modules', 'node-gyp', 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(semver.subset(pkg.engines.node, gyp.engines.node), `ours ${pkg.engines.node}, node-gyp ${gyp.engines.node}`).toBe(true);
    for (const dep of Object.keys(pkg.dependencies)) {
      const theirs = (JSON.parse(readFileSync(join(root, 'node_modules', dep, 'package.json'), 'utf8')) as { engines?: { node?: string } }).engines?.node;
      if (theirs) expect(semver.subset(pkg.engines.node, theirs), `${dep} needs ${theirs}; engines says ${pkg.engines.node}`).toBe(true);
    }
  });
});

describe('the install step', () => {
  it('builds the addon only when build/Release is not a complete build, for this Node, as new as native/', async () => {
    expect(pkg.scripts.install).toBe('node scripts/build-native.mjs');
    // Installing the packed package runs it too.
    expect(pkg.files).toContain('scripts/build-native.mjs');
    // A package of its own: the build here is a copy that may be judged stale (never rebuilt: --check).
    const own = join(copy, 'native-check');
    const release = join(own, 'build', 'Release');
    mkdirSync(release, { recursive: true });
    for (const d of ['native', 'scripts']) cpSync(join(root, d), join(own, d), { recursive: true });
    copyFileSync(join(root, 'binding.gyp'), join(own, 'binding.gyp'));
    symlinkSync(join(root, 'node_modules'), join(own, 'node_modules'));
    copyFileSync(join(root, 'build', 'Release', 'ptpvts.node'), join(release, 'ptpvts.node'));
    const check = (): Promise<{ code: number | null; out: string }> => node(['scripts/build-native.mjs', '--check'], own);
    expect((await check()).out).toMatch(/never built completely/);
    const stamp = join(release, '.build-stamp');
    const target = { modules: process.versions.modules, napi: process.versions.napi, platform: process.platform, arch: process.arch };
    writeFileSync(stamp, JSON.stringify(target));
    const ok = await check();
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(/up to date; nothing to build/);
    writeFileSync(stamp, JSON.stringify({ ...target, modules: '1' }));
    expect((await check()).out).toMatch(/built for modules 1, this is /);
    writeFileSync(stamp, JSON.stringify(target));
    const later = new Date(Date.now() + 2_000);
    utimesSync(join(own, 'native', 'vote_tally.cc'), later, later);
    const due = await check();
    expect(due.code).toBe(1);
    expect(due.out).toMatch(/vote_tally\.cc changed after the last build/);
  });
});

describe('the ptpvts command', () => {
  it('runs from a complete build, and the prepare step then compiles nothing', async () => {
    expect(pkg.scripts.prepare).toBe('node scripts/build-ts.mjs');
    const again = await node(['scripts/build-ts.mjs'], copy);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/up to date/);
    expect(again.ms).toBeLessThan(5_000);
    const r = await node(['bin/ptpvts.js', '--version'], copy);
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim()).toBe(pkg.version);
  });

  it('runs the sources when dist/ is older than them or was cut short, never the stale build', async () => {
    // A change the build does not have: the program's description, which only the sources know.
    const main = join(copy, 'src', 'cli', 'main.ts');
    const text = readFileSync(main, 'utf8');
    const changed = text.replace("'Emulator and controller stack for peer-to-peer virtual tape systems'", "'Changed after the build'");
    expect(changed).not.toBe(text);
    writeFileSync(main, changed);
    const later = new Date(Date.now() + 2_000);
    utimesSync(main, later, later);
    const stale = await node(['bin/ptpvts.js', '--help'], copy);
    expect(stale.code, stale.err).toBe(0);
    expect(stale.out).toMatch(/Changed after the build/);
    // A build cut short (the compiler stopped before writing everything, so no stamp) is not run either.
    writeFileSync(main, text);
    rmSync(join(copy, 'dist', '.build-stamp'));
    rmSync(join(copy, 'dist', 'src', 'cli', 'ptp-commands.js'));
    const cut = await node(['bin/ptpvts.js', '--help'], copy);
    expect(cut.code, cut.err).toBe(0);
    expect(cut.out).toMatch(/Emulator and controller stack/);
    const { distState } = (await import(join(copy, 'bin', 'dist-state.js'))) as { distState(root: string): { current: boolean; why?: string } };
    expect(distState(copy)).toEqual({ current: false, why: 'the TypeScript was never compiled completely' });
  });
});
