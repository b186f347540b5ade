import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryOut } from '../cli/output.js';
import { registerPtpCommands } from '../cli/ptp-commands.js';
import { BUILTIN_SCENARIOS, builtinScenario } from './builtins.js';
import { runScenario, ScenarioMismatchError } from './runner.js';
import { loadScenarioFile, parseScenario, ScenarioFileError } from './schema.js';
import { timelineSvg } from './svg.js';

const dir = mkdtempSync(join(tmpdir(), 'ptpvts-scen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('scenario runner', () => {
  it('runs a passing scenario and draws its timeline', async () => {
    const r = await runScenario(builtinScenario('claim-7')!);
    expect(r.error).toBeNull();
    expect(r.passed).toBe(true);
    expect(r.steps.every((s) => s.ok)).toBe(true);
    const svg = timelineSvg(r);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('VTS A');
    expect(svg).toContain('k1: ptp-shutdown');
    expect(svg).toContain('passed');
  });

  it('a deliberately wrong expectation fails with a clear diff', async () => {
    const s = parseScenario({
      name: 'wrong',
      title: 'A wrong expectation',
      steps: [{ command: { run: 'vts-out', vts: 'A', mode: 'normal' } }, { expect: { ptp: 'online-single(A)', current: ['A'], within: 600 } }],
    });
    const r = await runScenario(s);
    expect(r.passed).toBe(false);
    expect(r.error).toBeInstanceOf(ScenarioMismatchError);
    const e = r.error as ScenarioMismatchError;
    expect(e.step).toBe(1);
    expect(e.diff).toEqual([
      'PtP status: expected online-single(A) on every VTC, got vtc1=online-single(B), vtc2=online-single(B), vtc3=online-single(B), vtc4=online-single(B)',
      'current: expected {A}, got vtc1={B}, vtc2={B}, vtc3={B}, vtc4={B}',
    ]);
    expect(e.message).toMatch(/^scenario wrong, step 2 \(expect PtP online-single\(A\); current \{A\}\) did not go as expected:\n {2}PtP status: expected online-single\(A\)/);
    expect(r.steps.at(-1)?.ok).toBe(false);
    expect(timelineSvg(r)).toContain('FAILED');
  });

  it('an expected error that does not come is a mismatch too', async () => {
    const r = await runScenario(parseScenario({ name: 'no-error', title: 't', steps: [{ command: { run: 'threshold-set', threshold: 3, expectError: 'EPTP_THRESHOLD' } }] }));
    expect(r.passed).toBe(false);
    expect((r.error as ScenarioMismatchError).diff[0]).toMatch(/^command: expected error EPTP_THRESHOLD, it succeeded as key 1/);
  });

  it('scenario files are validated with the field named', () => {
    const p = join(dir, 'bad.yaml');
    writeFileSync(p, 'name: bad\ntitle: t\nsteps:\n  - crash-vts: C\n');
    expect(() => loadScenarioFile(p)).toThrow(ScenarioFileError);
    expect(() => loadScenarioFile(p)).toThrow(/steps\.0/);
    expect(() => parseScenario({ name: 'x', title: 't', steps: [{ expect: { ptp: 'online' } }] })).toThrow(/a PtP status: online-both/);
  });

  it('ptpvts scenario list and run (a YAML file, with --svg)', async () => {
    const out = memoryOut();
    const program = new Command('ptpvts').exitOverride();
    registerPtpCommands(program, out);
    await program.parseAsync(['node', 'ptpvts', 'scenario', 'list']);
    expect(out.lines.length).toBe(BUILTIN_SCENARIOS.length);
    expect(out.lines[0]).toMatch(/^claim-1 /);
    const file = join(dir, 'mine.yaml');
    writeFileSync(file, 'name: mine\ntitle: Mode normal from a file\nsteps:\n  - expect: { ptp: online-both }\n  - command: { run: vts-out, vts: B, mode: normal }\n  - expect: { ptp: online-single(A) }\n');
    const svg = join(dir, 'mine.svg');
    await program.parseAsync(['node', 'ptpvts', 'scenario', 'run', file, '--svg', svg]);
    expect(out.lines).toContain('Mode normal from a file.');
    expect(out.lines.some((l) => l.startsWith('The story ended as the claims say'))).toBe(true);
    expect(readFileSync(svg, 'utf8')).toContain('online-single');
  });
});

describe.each(BUILTIN_SCENARIOS.map((s) => [s.name, s] as const))('built-in scenario %s', (_name, s) => {
  it('passes', async () => {
    const r = await runScenario(s);
    expect(r.error?.message ?? null).toBeNull();
  }, 60_000);
});

describe('example scenario files', () => {
  it('examples/scenarios holds every built-in scenario as YAML, and each parses to the same steps', async () => {
    const { readdirSync } = await import('node:fs');
    const exampleDir = join(import.meta.dirname, '../../examples/scenarios');
    const files = readdirSync(exampleDir).filter((f) => f.endsWith('.yaml')).sort();
    expect(files).toEqual(BUILTIN_SCENARIOS.map((s) => `${s.name}.yaml`).sort());
    for (const f of files) {
      const s = loadScenarioFile(join(exampleDir, f));
      expect(s).toEqual(builtinScenario(s.name));
    }
  });
});

describe('scenarios against separate processes', () => {
  it.each(['claim-7', 'keys-disagree', 'mode-immediate'])('%s passes with one process per VTS and per VTC', async (name) => {
    const r = await runScenario(builtinScenario(name)!, { processes: true });
    expect(r.error?.message ?? null).toBeNull();
    expect(timelineSvg(r), JSON.stringify(r.events.filter((e) => e.kind !== 'ballot'))).toContain('k1: ');
  }, 120_000);
});

describe('runPtpDemo', () => {
  it('tells the claim 1 and claim 7 stories over emulated libraries and writes both timelines', async () => {
    const { runPtpDemo } = await import('../cli/ptp-demo.js');
    const out = memoryOut();
    const demoDir = join(dir, 'demo');
    expect(await runPtpDemo(out, demoDir)).toBe(true);
    expect(out.lines.filter((l) => l.startsWith('The story ended as the claims say'))).toHaveLength(2);
    expect(out.lines, out.lines.join('\n')).toContain('  Election on placing A on-line (key 3, round 0): vtc1 no, vtc2 no, vtc3 no, vtc4 no.');
    expect(out.lines.some((l) => /^VTS A premigrated [1-9]\d* volume\(s\)/.test(l))).toBe(true);
    expect(readFileSync(join(demoDir, 'claim-1.svg'), 'utf8')).toContain('<svg');
    expect(readFileSync(join(demoDir, 'claim-7.svg'), 'utf8')).toContain('ptp-start');
  }, 60_000);
});
