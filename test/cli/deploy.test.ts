import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/node-flags.js';

const root = join(import.meta.dirname, '..', '..');
const deploy = join(root, 'deploy');
/** The Node options of a ptpvts server, as one string (src/node-flags.ts). */
const flags = NODE_FLAGS.join(' ');
const units = { 'ptpvts-sim.service': 'ptpvts-sim.service', 'ptpvts-vtc@.service': 'ptpvts-vtc@vtc1.service', 'ptpvts-vts@.service': 'ptpvts-vts@A.service' } as const;

const systemdAnalyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
if (!systemdAnalyze) console.warn('deploy.test: systemd-analyze is not installed (Debian package "systemd"): the unit files are not verified by systemd here');

/** The [Section] key=value pairs of a unit file, repeated keys kept in order. */
function unitKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1] ?? '';
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`not a key=value line in [${section}]: ${line}`);
    const k = `${section}.${line.slice(0, eq).trim()}`;
    keys.set(k, [...(keys.get(k) ?? []), line.slice(eq + 1).trim()]);
  }
  return keys;
}

const tmp = mkdtempSync(join(tmpdir(), 'ptpvts-deploy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the Node options of a server', () => {
  it('are on the #! line of bin/ptpvts.js, so `npx ptpvts` and an installed ptpvts start with them', () => {
    const first = readFileSync(join(root, 'bin', 'ptpvts.js'), 'utf8').split('\n')[0];
    expect(first).toBe(`#!/usr/bin/env -S node ${flags}`);
  });

  it('reach the process through the #! line (env -S)', () => {
    const r = spawnSync(join(root, 'bin', 'ptpvts.js'), ['--version'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, NODE_OPTIONS: '--require ' + join(root, 'test', 'cli', 'fixtures', 'print-exec-argv.cjs') } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`execArgv ${JSON.stringify(NODE_FLAGS)}`);
  });
});

describe('systemd unit files', () => {
  it.each(Object.keys(units))('%s runs the right command as an unprivileged, restarted, hardened service', (file) => {
    const k = unitKeys(readFileSync(join(deploy, 'systemd', file), 'utf8'));
    const one = (key: string): string | undefined => k.get(key)?.at(-1);
    const exec = one('Service.ExecStart') ?? '';
    expect(exec.startsWith(`/usr/bin/node ${flags} /opt/ptpvts/bin/ptpvts.js `), exec).toBe(true);
    if (file === 'ptpvts-sim.service') {
      expect(exec).toMatch(/ sim serve /);
      expect(one('Service.DynamicUser')).toBe('yes');
    } else {
      expect(exec).toMatch(file.startsWith('ptpvts-vtc') ? / vtc -t \S+ --id %i$/ : / vts -t \S+ --id %i$/);
      expect(one('Service.User')).toBe('ptpvts');
    }
    expect(one('Service.StateDirectory')).toBeTruthy();
    expect(one('Service.Restart')).toBe('on-failure');
    for (const [key, want] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['CapabilityBoundingSet', '']] as const) {
      expect(one(`Service.${key}`), key).toBe(want);
    }
    expect(one('Install.WantedBy')).toBe('multi-user.target');
  });

  it.skipIf(!systemdAnalyze)('pass systemd-analyze verify without a warning', () => {
    const paths: string[] = [];
    for (const [file, instance] of Object.entries(units)) {
      // Templates are verified as an instance. The node binary is where this machine has it
      // (systemd checks that ExecStart's program exists); nothing else is changed.
      const text = readFileSync(join(deploy, 'systemd', file), 'utf8').replaceAll('/usr/bin/node ', `${process.execPath} `);
      const p = join(tmp, instance);
      writeFileSync(p, text);
      paths.push(p);
    }
    const r = spawnSync('systemd-analyze', ['verify', ...paths], { encoding: 'utf8', cwd: tmp, timeout: 60_000 });
    // verify exits 0 after a key it does not know or a value it cannot parse ("ignoring"): any word about our units is a failure.
    const ours = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.includes(tmp) || Object.values(units).some((u) => l.includes(u)));
    expect(ours).toEqual([]);
    expect(r.status).toBe(0);
  });
});

/** Dockerfile instructions: continuation lines joined, comments and blank lines dropped. */
function dockerInstructions(text: string): { op: string; args: string }[] {
  const out: { op: string; args: string }[] = [];
  let acc = '';
  for (const raw of text.split('\n')) {
    if (acc === '' && (raw.trim() === '' || raw.trim().startsWith('#'))) continue;
    if (raw.trim().startsWith('#')) continue;
    acc += raw.endsWith('\\') ? `${raw.slice(0, -1)} ` : raw;
    if (raw.endsWith('\\')) continue;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(acc);
    if (!m) throw new Error(`not an instruction: ${acc}`);
    out.push({ op: (m[1] ?? '').toUpperCase(), args: (m[2] ?? '').trim() });
    acc = '';
  }
  if (acc !== '') throw new Error(`a continuation line ends the file: ${acc}`);
  return out;
}

describe('deploy/Dockerfile', () => {
  const text = readFileSync(join(deploy, 'Dockerfile'), 'utf8');
  const ins = dockerInstructions(text);
  const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

  it('is a well-formed two-stage build: npm ci from the repository, a user-space runtime that is not root', () => {
    for (const i of ins) expect(KNOWN.has(i.op), `unknown instruction ${i.op}`).toBe(true);
    const firstNonArg = ins.find((i) => i.op !== 'ARG');
    expect(firstNonArg?.op).toBe('FROM');
    const stages = ins.filter((i) => i.op === 'FROM');
    expect(stages).toHaveLength(2);
    const named = new Set(stages.map((s) => / AS (\S+)$/i.exec(s.args)?.[1]).filter((x) => x !== undefined));
    const args = new Set(ins.filter((i) => i.op === 'ARG').map((i) => i.args.split('=')[0]));
    for (const s of stages) for (const [, v] of s.args.matchAll(/\$\{(\w+)\}/g)) expect(args.has(v ?? ''), `FROM uses undeclared ARG ${v}`).toBe(true);
    const buildStage = ins.slice(ins.indexOf(stages[0]!), ins.indexOf(stages[1]!));
    expect(buildStage.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args))).toBe(true);
    const runtime = ins.slice(ins.indexOf(stages[1]!));
    for (const c of runtime.filter((i) => i.op === 'COPY')) {
      const from = /--from=(\S+)/.exec(c.args)?.[1];
      expect(from !== undefined && named.has(from), `COPY ${c.args} must come from a named stage`).toBe(true);
      // Each source is in the repository or made by npm ci in the build stage.
      const srcs = c.args.replace(/--\S+/g, '').trim().split(/\s+/).slice(0, -1);
      for (const s of srcs) {
        const rel = s.replace(/^\/src\//, '');
        expect(existsSync(join(root, rel)) || /^(dist|node_modules|build\/Release)(\/|$)/.test(rel), `${s} is neither in the repository nor built`).toBe(true);
      }
    }
    const user = runtime.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    const entry = runtime.find((i) => i.op === 'ENTRYPOINT')?.args ?? '';
    expect(JSON.parse(entry)).toEqual(['node', ...NODE_FLAGS, '/opt/ptpvts/bin/ptpvts.js']);
    expect(JSON.parse(runtime.find((i) => i.op === 'CMD')?.args ?? 'null')).toEqual(['sim', 'serve', '--portal', '0.0.0.0:3260']);
    expect(text).not.toMatch(/--privileged|modprobe|insmod/);
  });

  it('keeps host builds out of the build context', () => {
    const ignore = readFileSync(join(deploy, 'Dockerfile.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['node_modules', 'build', 'dist', '.git']) expect(ignore).toContain(p);
  });
});
