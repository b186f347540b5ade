/**
 * VTC processes in separate network namespaces on a private bridge (10.213.0.0/24, inside
 * the namespaces only). One VTC is partitioned off by setting its link down while the
 * others take both VTS out and bring the stale one back: no VTC may ever place the stale
 * VTS on-line alone, and once healed and the current VTS returns, the system comes
 * on-line. Needs root and `ip netns`; skips visibly otherwise. Every namespace is
 * deleted at the end, on failure too.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addKeys } from '../../src/cli/keys.js';
import { stopProcesses } from '../../src/scenario/processes.js';
import type { AgentStatus } from '../../src/vtc/agent.js';

const root = resolve(import.meta.dirname, '../..');

function netnsUsable(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return '`ip netns` is not available';
  }
  return null;
}
const skipReason = netnsUsable();

const tag = `m${process.pid % 100000}`;
const SW = `ptp-${tag}-sw`;
const nodes = [
  { name: 'vts', addr: '10.213.0.10' },
  { name: 'op', addr: '10.213.0.9' },
  { name: 'vtc1', addr: '10.213.0.21' },
  { name: 'vtc2', addr: '10.213.0.22' },
  { name: 'vtc3', addr: '10.213.0.23' },
  { name: 'vtc4', addr: '10.213.0.24' },
] as const;
const ns = (n: string): string => `ptp-${tag}-${n}`;
const veth = (i: number): string => `p${tag}v${i}`;
const brPort = (i: number): string => `p${tag}b${i}`;
const created: string[] = [];

const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: 'pipe' });
};
const inNs = (n: string, ...args: string[]): void => ip('netns', 'exec', n, ...args);

function cleanup(): void {
  for (const n of created.splice(0).reverse()) {
    try {
      ip('netns', 'del', n);
    } catch {
      // Already gone.
    }
  }
}

const procs: ChildProcess[] = [];
let dir = '';
let topo = '';
let op: ChildProcess | null = null;
let nextId = 1;
const waiting = new Map<number, (v: { result?: unknown; error?: { code: string; message: string } }) => void>();

function ask(vtc: string, req: Record<string, unknown>): Promise<{ result?: unknown; error?: { code: string; message: string } }> {
  const id = nextId++;
  return new Promise((r) => {
    waiting.set(id, r);
    op?.stdin?.write(`${JSON.stringify({ id, vtc, ...req })}\n`);
  });
}

function startIn(n: string, args: string[], ready: RegExp): Promise<ChildProcess> {
  const p = spawn('ip', ['netns', 'exec', ns(n), process.execPath, '--import', 'tsx', ...args], { cwd: root, env: { ...process.env, PTPVTS_LOG_LEVEL: 'warn' }, stdio: ['pipe', 'pipe', 'pipe'] });
  procs.push(p);
  return new Promise((resolveP, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`${n} did not start: ${buf}`)), 30_000);
    const on = (d: Buffer): void => {
      buf += d.toString();
      if (ready.test(buf)) {
        clearTimeout(t);
        resolveP(p);
      }
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', (d: Buffer) => (buf += d.toString()));
    p.once('exit', (code) => reject(new Error(`${n} exited with ${code}: ${buf}`)));
  });
}

async function statuses(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await Promise.all(
    ['vtc1', 'vtc2', 'vtc3', 'vtc4'].map(async (v) => {
      const r = await ask(v, { op: 'status' });
      out[v] = r.error !== undefined ? `unreachable` : (r.result as AgentStatus).ptp;
    }),
  );
  return out;
}

async function until(pred: (s: Record<string, string>) => boolean, ms: number, seen: Record<string, string>[] = []): Promise<Record<string, string>> {
  const end = Date.now() + ms;
  let s = await statuses();
  seen.push(s);
  while (!pred(s) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 150));
    s = await statuses();
    seen.push(s);
  }
  return s;
}

describe.skipIf(skipReason !== null)(`PtP over network namespaces${skipReason === null ? '' : ` (skipped: ${skipReason})`}`, () => {
  beforeAll(async () => {
    process.once('exit', cleanup);
    dir = mkdtempSync(join(tmpdir(), 'ptpvts-netns-'));
    ip('netns', 'add', SW);
    created.push(SW);
    inNs(SW, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    inNs(SW, 'ip', 'link', 'set', 'br0', 'up');
    nodes.forEach((node, i) => {
      const n = ns(node.name);
      ip('netns', 'add', n);
      created.push(n);
      ip('link', 'add', veth(i), 'type', 'veth', 'peer', 'name', brPort(i));
      ip('link', 'set', veth(i), 'netns', n);
      ip('link', 'set', brPort(i), 'netns', SW);
      inNs(SW, 'ip', 'link', 'set', brPort(i), 'master', 'br0');
      inNs(SW, 'ip', 'link', 'set', brPort(i), 'up');
      inNs(n, 'ip', 'addr', 'add', `${node.addr}/24`, 'dev', veth(i));
      inNs(n, 'ip', 'link', 'set', veth(i), 'up');
      inNs(n, 'ip', 'link', 'set', 'lo', 'up');
    });
    const vtcs = nodes.filter((x) => x.name.startsWith('vtc'));
    topo = join(dir, 'topology.yaml');
    const doc = {
      ptpId: 'netns',
      secret: 'network namespace test secret',
      timing: { tick: 50, heartbeatTimeout: 1000, ackTimeout: 1000, returnGrace: 300, electionTimeout: 800, pendingTimeout: 2000, helloInterval: 300, stagger: 60 },
      vtcs: vtcs.map((v) => ({ id: v.name, listen: `${v.addr}:7100`, control: `${v.addr}:7200`, journalDir: `./${v.name}` })),
      vts: { A: { listen: '10.213.0.10:7001', cacheDir: './A/c', stateDir: './A/s' }, B: { listen: '10.213.0.10:7002', cacheDir: './B/c', stateDir: './B/s' } },
    };
    addKeys(doc, dir, join(dir, 'keys'));
    writeFileSync(topo, stringify(doc));
    const cli = join(root, 'src/scenario/process-entry.ts');
    await Promise.all(['A', 'B'].map((x) => startIn('vts', [cli, 'vts', '-t', topo, '--id', x], /is serving/)));
    await Promise.all(vtcs.map((v) => startIn(v.name, [cli, 'vtc', '-t', topo, '--id', v.name], /is running/)));
    op = await startIn('op', [join(root, 'test/multihost/operator-driver.ts'), topo], /"ready":true/);
    let buf = '';
    op.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const m = JSON.parse(line) as { id?: number };
        if (typeof m.id === 'number') waiting.get(m.id)?.(m as never);
      }
    });
  }, 120_000);

  afterAll(async () => {
    op?.stdin?.end();
    await stopProcesses(procs);
    cleanup();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('a partitioned VTC and a stale VTS never put the system on-line alone; healed, it comes on-line', async () => {
    const seen: Record<string, string>[] = [];
    let s = await until((x) => Object.values(x).every((v) => v === 'online-both'), 20_000, seen);
    expect(s).toEqual({ vtc1: 'online-both', vtc2: 'online-both', vtc3: 'online-both', vtc4: 'online-both' });
    expect((await ask('vtc2', { op: 'write', volser: 'V00001', data: 'both' })).error).toBeUndefined();

    // vtc4 loses its link: it sees neither its peers nor the VTS.
    inNs(ns('vtc4'), 'ip', 'link', 'set', veth(5), 'down');
    expect((await ask('vtc1', { op: 'command', cmd: { command: 'vts-out', vts: 'A', mode: 'normal' } })).error).toBeUndefined();
    s = await until((x) => ['vtc1', 'vtc2', 'vtc3'].every((v) => x[v] === 'online-single(B)'), 10_000, seen);
    expect(s.vtc1).toBe('online-single(B)');
    expect((await ask('vtc3', { op: 'write', volser: 'V00002', data: 'only on B' })).error).toBeUndefined();
    expect((await ask('vtc2', { op: 'command', cmd: { command: 'vts-out', vts: 'B', mode: 'normal' } })).error).toBeUndefined();
    await until((x) => ['vtc1', 'vtc2', 'vtc3'].every((v) => x[v] === 'offline'), 10_000, seen);

    // The stale VTS comes back alone: every VTC with the current key votes NO.
    expect((await ask('vtc1', { op: 'command', cmd: { command: 'vts-in', vts: 'A' } })).error).toBeUndefined();
    const stale = Date.now() + 3000;
    while (Date.now() < stale) seen.push(await statuses());

    // Heal: vtc4 learns the keys by anti-entropy; A is still stale, so still off-line.
    inNs(ns('vtc4'), 'ip', 'link', 'set', veth(5), 'up');
    s = await until((x) => x.vtc4 === 'offline', 10_000, seen);
    const healed = Date.now() + 2000;
    while (Date.now() < healed) seen.push(await statuses());
    expect(seen.flatMap((x) => Object.values(x)).filter((v) => v === 'online-single(A)')).toEqual([]);
    const st4 = (await ask('vtc4', { op: 'status' })).result as AgentStatus;
    expect(st4.keySeq).toBeGreaterThanOrEqual(3);

    // Liveness: the current VTS returns, the system comes on-line and B's data is readable everywhere.
    expect((await ask('vtc4', { op: 'command', cmd: { command: 'vts-in', vts: 'B' } })).error).toBeUndefined();
    s = await until((x) => Object.values(x).every((v) => v === 'online-both'), 15_000, seen);
    expect(s).toEqual({ vtc1: 'online-both', vtc2: 'online-both', vtc3: 'online-both', vtc4: 'online-both' });
    const r = await ask('vtc4', { op: 'read', volser: 'V00002' });
    expect((r.result as { data: string }).data).toBe('only on B');
  }, 120_000);
});

describe.skipIf(skipReason === null)('PtP over network namespaces', () => {
  it.skip(`needs root and ip netns: ${skipReason ?? ''}`, () => undefined);
});
