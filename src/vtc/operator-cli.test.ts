import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryOut } from '../cli/output.js';
import { registerPtpCommands, startVtc, startVts } from '../cli/ptp-commands.js';
import { generateTopologyKeys } from '../cli/keys.js';
import { loadTopology } from '../cli/topology.js';
import type { VtcAgent } from './agent.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(p));
    });
  });
}

let dir: string;
let topo: string;
const agents: VtcAgent[] = [];
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ptpvts-cli-'));
  const p = async (): Promise<string> => `127.0.0.1:${await freePort()}`;
  const doc = {
    ptpId: 'clitest',
    secret: 'a cluster secret for the CLI test',
    timing: { tick: 20, heartbeatTimeout: 1000, returnGrace: 150, helloInterval: 200, stagger: 40, ackTimeout: 600, electionTimeout: 500, pendingTimeout: 1200 },
    vtcs: await Promise.all(['vtc1', 'vtc2', 'vtc3', 'vtc4'].map(async (id) => ({ id, listen: await p(), control: await p(), journalDir: `./${id}` }))),
    vts: { A: { listen: await p(), cacheDir: './A/cache', stateDir: './A/state' }, B: { listen: await p(), cacheDir: './B/cache', stateDir: './B/state' } },
  };
  topo = join(dir, 'topology.yaml');
  writeFileSync(topo, stringify(doc));
  generateTopologyKeys(topo, join(dir, 'keys'));
  const t = loadTopology(topo);
  for (const x of ['A', 'B'] as const) stops.push((await startVts(t, x)).stop);
  for (const v of t.vtcs) agents.push(await startVtc(t, v.id));
  const end = Date.now() + 8000;
  while (Date.now() < end && !agents.every((a) => a.engine.status().kind === 'online-both' && a.status().vts.A !== null && a.status().vts.B !== null)) await new Promise((r) => setTimeout(r, 20));
});

afterAll(async () => {
  for (const a of agents) await a.stop();
  for (const s of stops) await s();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ lines: string[]; error: Error | null }> {
  const out = memoryOut();
  const program = new Command('ptpvts').exitOverride().configureOutput({ writeOut: (s) => out.line(s.trimEnd()), writeErr: (s) => out.error(s.trimEnd()) });
  registerPtpCommands(program, out);
  try {
    await program.parseAsync(['node', 'ptpvts', ...args]);
    return { lines: out.lines, error: null };
  } catch (e) {
    return { lines: out.lines, error: e as Error };
  }
}

const settle = (seq: number) => new Promise<void>((resolve) => {
  const end = Date.now() + 3000;
  const poll = (): void => {
    if (Date.now() > end || agents.every((a) => a.engine.newestKey().seq >= seq)) resolve();
    else setTimeout(poll, 20);
  };
  poll();
});

describe('operator commands through the CLI to any VTC', () => {
  it('status prints VTS and PtP states in sentences', async () => {
    const r = await cli('status', '-t', topo, '--vtc', 'vtc3');
    expect(r.error).toBeNull();
    expect(r.lines[0]).toBe('PtP system clitest as vtc3 sees it: online-both, newest key 0, VTC agreement threshold 2.');
    expect(r.lines).toContain('VTS A: in operation, last key seq 0, 0 volume(s) behind the other VTS, 0 mount(s).');
  });

  it('vts out A --mode expedite, then vts in A, through different VTCs', async () => {
    const r = await cli('vts', 'out', 'A', '--mode', 'expedite', '-t', topo, '--vtc', 'vtc2');
    expect(r.error).toBeNull();
    expect(r.lines[0]).toMatch(/^VTC vtc2 coordinated the command; key 1: vts-out A \(expedite, command\) from vtc2: PtP online-single\(B\), current \{B\}/);
    await settle(1);
    const r2 = await cli('vts', 'in', 'A', '-t', topo, '--vtc', 'vtc4');
    expect(r2.error).toBeNull();
    expect(r2.lines[0]).toMatch(/key 2: vts-in A .* PtP online-both, current \{A,B\}/);
    await settle(2);
  });

  it('threshold set, ptp shutdown and ptp start; status shows the keys', async () => {
    expect((await cli('threshold', 'set', '1', '-t', topo)).error?.message).toMatch(/^VTC agreement threshold T = 1 is below the minimum 2 for n = 4 VTCs/);
    expect((await cli('threshold', 'set', '1', '--force-below-half', '-t', topo)).error?.message).toMatch(/is an audited override: give --reason/);
    expect((await cli('threshold', 'set', '1', '--force-below-half', '--reason', 'bench rig', '-t', topo)).error).toBeNull();
    await settle(3);
    expect((await cli('ptp', 'shutdown', '--mode', 'normal', '-t', topo, '--vtc', 'vtc3')).error).toBeNull();
    await settle(4);
    expect((await cli('ptp', 'start', '-t', topo)).error).toBeNull();
    await settle(5);
    const s = await cli('status', '-t', topo, '--vtc', 'vtc4');
    expect(s.lines[0]).toBe('PtP system clitest as vtc4 sees it: online-both, newest key 5, VTC agreement threshold 1.');
    expect(s.lines.some((l) => l.includes('key 4: ptp-shutdown (normal, command)'))).toBe(true);
    expect(s.lines[1]).toMatch(/^WARNING: the threshold 1 is below floor\(n\/2\) = 2 for 4 VTCs: .* Set by key 3 from vtc1, an audited override with the reason "bench rig"\.$/);
    expect(s.lines.some((l) => l.includes('key 3: threshold-set (normal, override)') && l.includes('operator\'s reason: "bench rig"'))).toBe(true);
  });

  it('bad input gets clear errors', async () => {
    expect((await cli('threshold', 'set', '4', '-t', topo)).error?.message).toBe('VTC agreement threshold must be an integer with 0 <= T < 4 (the number of configured VTCs); got 4');
    expect((await cli('threshold', 'set', 'two', '-t', topo)).error?.message).toMatch(/got two/);
    expect((await cli('vts', 'out', 'C', '-t', topo)).error?.message).toBe('unknown VTS "C": a PtP system has exactly the VTS "A" and "B"');
    expect((await cli('vts', 'out', 'A', '--mode', 'sideways', '-t', topo)).error?.message).toMatch(/Allowed choices are normal, expedite, immediate, forced/);
    expect((await cli('status', '-t', topo, '--vtc', 'vtc9')).error?.message).toMatch(/no VTC with id "vtc9"/);
    expect((await cli('status', '-t', join(dir, 'missing.yaml'))).error?.message).toMatch(/cannot read topology file/);
  });

  it('a command that cannot apply, and conflicting commands in flight', async () => {
    const [a, b] = await Promise.all([cli('vts', 'out', 'B', '--mode', 'normal', '-t', topo, '--vtc', 'vtc1'), cli('vts', 'out', 'A', '--mode', 'normal', '-t', topo, '--vtc', 'vtc1')]);
    const errors = [a.error, b.error].filter((e) => e !== null);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/still running the operator command vts-out|in flight/);
    const out = a.error === null ? 'B' : 'A';
    await settle(6);
    const r = await cli('vts', 'out', out, '-t', topo, '--vtc', 'vtc2');
    expect(r.error?.message).toBe(`VTS ${out} is already out of operation (key 6)`);
  });

  it('an unreachable VTC is named in the error', async () => {
    const victim = agents[3]!;
    await victim.stop();
    const r = await cli('status', '-t', topo, '--vtc', 'vtc4');
    expect(r.error?.message).toMatch(/^VTC vtc4 at 127\.0\.0\.1:\d+ cannot be reached: is it running \(ptpvts vtc --id vtc4\)\?$/);
  });
});
