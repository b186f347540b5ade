/**
 * `ptpvts vtc --metrics` and `ptpvts vts --metrics`: Prometheus metrics scraped over HTTP on
 * 127.0.0.1 from a running PtP system, before and after writes and operator commands, with
 * the values the commands must have changed.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveVtsMetrics, startVtcServices, type VtcServices } from '../../src/cli/ptp-commands.js';
import type { HttpEndpoint } from '../../src/metrics/http.js';
import { patternData } from '../../src/cli/tape-io.js';
import { runCli } from './fixtures/in-process-cli.js';
import { freePort, startTestSystem, until, writeTestTopology, type TestSystem } from './fixtures/ptp-system.js';

/** The value of one sample of `name` whose labels include `labels`, or undefined when there is none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => ls[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function scrape(url: string): Promise<string> {
  const r = await fetch(url);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.text();
}

let sys: TestSystem;
let vtc: VtcServices;
let vtsA: HttpEndpoint;
let vtcUrl: string;
let vtsUrl: string;

beforeAll(async () => {
  sys = await startTestSystem('metrics');
  vtc = await startVtcServices(sys.vtcs.vtc1!, sys.topology, { metrics: { host: '127.0.0.1', port: 0 } }, { processMetrics: false });
  vtsA = await serveVtsMetrics(sys.vts.A.host, { host: '127.0.0.1', port: 0 }, { processMetrics: false });
  vtcUrl = vtc.metricsUrl!;
  vtsUrl = `${vtsA.base}/metrics`;
}, 60_000);

afterAll(async () => {
  await vtc?.stop();
  await vtsA?.close();
  await sys?.stop();
});

describe('Prometheus metrics of the VTC and VTS processes', () => {
  it('serve only on the address given, answer 404 elsewhere and refuse a bad address by name', async () => {
    expect(vtcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect((await fetch(vtcUrl.replace('/metrics', '/other'))).status).toBe(404);
    const bad = await runCli('vtc', '-t', `${sys.dir}/topology.yaml`, '--id', 'vtc1', '--metrics', 'localhost');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--metrics must be host:port or \[v6\]:port, e\.g\. 127\.0\.0\.1:9464 \(got "localhost"\)/);
    const badPage = await runCli('vtc', '-t', `${sys.dir}/topology.yaml`, '--id', 'vtc1', '--http', '127.0.0.1:99999');
    expect(badPage.err).toMatch(/--http 127\.0\.0\.1:99999: the port must be from 0 to 65535/);
    const badVts = await runCli('vts', '-t', `${sys.dir}/topology.yaml`, '--id', 'A', '--metrics', ':9464');
    expect(badVts.err).toMatch(/--metrics must be host:port/);
    // An address in use is named, and what was started for the page is closed again.
    const taken = Number(new URL(vtcUrl).port);
    await expect(startVtcServices(sys.vtcs.vtc1!, sys.topology, { metrics: { host: '127.0.0.1', port: taken } }, { processMetrics: false })).rejects.toThrow(
      `cannot serve the metrics (--metrics) on 127.0.0.1:${taken}: the address is in use (another process listens there)`,
    );
    await expect(startVtcServices(sys.vtcs.vtc1!, sys.topology, { http: { host: '127.0.0.1', port: 0 }, metrics: { host: '127.0.0.1', port: taken } }, { processMetrics: false })).rejects.toThrow(/cannot serve the metrics/);
    expect(sys.vtcs.vtc1!.listenerCount('event')).toBe(1);
  });

  it('follow writes and operator commands: PtP state, keys, elections and ballots, VTS states, volumes and requests', async () => {
    const agent = sys.vtcs.vtc1!;
    await until('both VTS seen by vtc1', async () => sample(await scrape(vtcUrl), 'ptpvts_vtc_vts_reachable', { vts: 'B' }) === 1);
    let v = await scrape(vtcUrl);
    expect(sample(v, 'ptpvts_vtc_info', { ptp: 'metrics', vtc: 'vtc1' })).toBe(1);
    expect(sample(v, 'ptpvts_vtc_ptp_state', { state: 'online-both' })).toBe(1);
    expect(sample(v, 'ptpvts_vtc_ptp_state', { state: 'offline' })).toBe(0);
    expect(sample(v, 'ptpvts_vtc_serving_hosts', { vts: 'A' })).toBe(1);
    expect(sample(v, 'ptpvts_vtc_key_seq')).toBe(0);
    expect(sample(v, 'ptpvts_vtc_threshold')).toBe(1);
    expect(sample(v, 'ptpvts_vtc_vts_in_operation', { vts: 'A' })).toBe(1);
    expect(sample(v, 'ptpvts_vtc_elections_total')).toBe(0);
    expect(sample(v, 'ptpvts_vtc_peer_frames_total', { result: 'accepted' })).toBeGreaterThan(0);
    expect(sample(v, 'ptpvts_vtc_peer_connections_total', { event: 'dialled' })).toBeGreaterThanOrEqual(1);

    let a = await scrape(vtsUrl);
    expect(sample(a, 'ptpvts_vts_up')).toBe(1);
    expect(sample(a, 'ptpvts_vts_in_operation')).toBe(1);
    expect(sample(a, 'ptpvts_vts_volumes', { where: 'resident' })).toBe(0);
    const handled0 = sample(a, 'ptpvts_vts_requests_total', { result: 'handled' })!;
    expect(handled0).toBeGreaterThan(0);

    // A host write through vtc1: the volume and its bytes on VTS A, requests served.
    const data = patternData(300_000, 5);
    await agent.writeVolume('MET001', data, { copyMode: 'immediate' });
    a = await scrape(vtsUrl);
    expect(sample(a, 'ptpvts_vts_volumes', { where: 'resident' })).toBe(1);
    // The volume file: the data and its record headers.
    expect(sample(a, 'ptpvts_vts_volume_bytes', { vts: 'A' })).toBeGreaterThanOrEqual(300_000);
    expect(sample(a, 'ptpvts_vts_volume_bytes', { vts: 'A' })).toBeLessThan(301_000);
    expect(sample(a, 'ptpvts_vts_requests_total', { result: 'handled' })).toBeGreaterThan(handled0);
    expect(sample(a, 'ptpvts_vts_mounts')).toBe(0);

    // VTS A out: a key, the state, VTS A out of operation on both sides.
    await agent.command({ command: 'vts-out', vts: 'A', mode: 'normal' }, 20_000);
    await until('vtc1 to see VTS A out', async () => sample(await scrape(vtcUrl), 'ptpvts_vtc_vts_in_operation', { vts: 'A' }) === 0);
    v = await scrape(vtcUrl);
    expect(sample(v, 'ptpvts_vtc_key_seq')).toBe(1);
    expect(sample(v, 'ptpvts_vtc_keys_total', { command: 'vts-out' })).toBe(1);
    expect(sample(v, 'ptpvts_vtc_key_commit_seconds_count')).toBe(1);
    expect(sample(v, 'ptpvts_vtc_key_issued_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(sample(v, 'ptpvts_vtc_ptp_state', { state: 'online-single' })).toBe(1);
    expect(sample(v, 'ptpvts_vtc_ptp_state', { state: 'online-both' })).toBe(0);
    expect(sample(v, 'ptpvts_vtc_serving_hosts', { vts: 'A' })).toBe(0);
    expect(sample(v, 'ptpvts_vtc_serving_hosts', { vts: 'B' })).toBe(1);
    expect(sample(v, 'ptpvts_vtc_ptp_state_changes_total', { state: 'online-single' })).toBeGreaterThanOrEqual(1);
    expect(sample(v, 'ptpvts_vtc_vts_state_changes_total', { vts: 'A', state: 'out' })).toBe(1);
    expect(sample(v, 'ptpvts_vtc_operator_requests_total', { result: 'accepted' })).toBe(0);
    a = await scrape(vtsUrl);
    expect(sample(a, 'ptpvts_vts_in_operation')).toBe(0);
    expect(sample(a, 'ptpvts_vts_last_key_seq')).toBe(1);

    // VTS B out too (off-line), then B back alone: an election, with a ballot from each VTC.
    await agent.command({ command: 'vts-out', vts: 'B', mode: 'normal' }, 20_000);
    await agent.command({ command: 'vts-in', vts: 'B' }, 20_000);
    await until('an election with both ballots', async () => {
      const t = await scrape(vtcUrl);
      return (sample(t, 'ptpvts_vtc_elections_total') ?? 0) >= 1 && (sample(t, 'ptpvts_vtc_ballots_total', { voter: 'vtc2', choice: 'yes' }) ?? 0) >= 1 && (sample(t, 'ptpvts_vtc_ballots_total', { voter: 'vtc1', choice: 'yes' }) ?? 0) >= 1;
    });
    await until('on-line with B alone', async () => sample(await scrape(vtcUrl), 'ptpvts_vtc_ptp_state', { state: 'online-single' }) === 1);
    v = await scrape(vtcUrl);
    expect(sample(v, 'ptpvts_vtc_key_seq')).toBeGreaterThanOrEqual(3);
    expect(sample(v, 'ptpvts_vtc_keys_total', { command: 'vts-out' })).toBe(2);
    expect(sample(v, 'ptpvts_vtc_ptp_state_changes_total', { state: 'offline' })).toBeGreaterThanOrEqual(1);
    expect(sample(v, 'ptpvts_vtc_ballots_total', { voter: 'vtc1', choice: 'no' }) ?? 0).toBe(0);
  }, 90_000);

  it('count what an operator sends through the control endpoint, and show a VTS that stopped as down', async () => {
    const before = sample(await scrape(vtcUrl), 'ptpvts_vtc_operator_requests_total', { result: 'accepted' }) ?? 0;
    const r = await runCli('status', '-t', `${sys.dir}/topology.yaml`, '--vtc', 'vtc1', '--json');
    expect(r.code, r.err).toBe(0);
    expect(sample(await scrape(vtcUrl), 'ptpvts_vtc_operator_requests_total', { result: 'accepted' })).toBe(before + 1);
    await sys.vts.A.host.stop();
    const a = await scrape(vtsUrl);
    expect(sample(a, 'ptpvts_vts_up')).toBe(0);
    expect(sample(a, 'ptpvts_vts_in_operation')).toBeUndefined();
    await until('vtc1 to see VTS A gone', async () => sample(await scrape(vtcUrl), 'ptpvts_vtc_vts_reachable', { vts: 'A' }) === 0, 40_000);
    expect(sample(await scrape(vtcUrl), 'ptpvts_vtc_vts_in_operation', { vts: 'A' })).toBeUndefined();
  }, 60_000);
});

describe('ptpvts vtc and ptpvts vts as processes', () => {
  it('--metrics and --http (one address for both) are served until SIGTERM, and say where', async () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const runner = join(root, 'test', 'cli', 'fixtures', 'ptpvts-runner.ts');
    const { dir, file } = await writeTestTopology('procs', ['vtc1', 'vtc2']);
    const procs: { child: ReturnType<typeof spawn>; out: string; err: string; code?: number | null }[] = [];
    const run = (args: string[]): (typeof procs)[number] => {
      const child = spawn(process.execPath, ['--import', 'tsx', runner, ...args], { cwd: root, env: { ...process.env, PTPVTS_LOG_LEVEL: 'warn' } });
      const p: (typeof procs)[number] = { child, out: '', err: '' };
      child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
      child.once('exit', (c) => (p.code = c));
      procs.push(p);
      return p;
    };
    try {
      const port = await freePort();
      const a = run(['vts', '-t', file, '--id', 'A', '--metrics', '127.0.0.1:0']);
      run(['vts', '-t', file, '--id', 'B']);
      const v1 = run(['vtc', '-t', file, '--id', 'vtc1', '--metrics', `127.0.0.1:${port}`, '--http', `127.0.0.1:${port}`]);
      run(['vtc', '-t', file, '--id', 'vtc2']);
      await until('the processes to say where they serve', () => /Metrics for Prometheus at (\S+)\./.test(a.out) && /Status page at /.test(v1.out), 60_000);
      const vtsUrl = /Metrics for Prometheus at (\S+)\./.exec(a.out)![1]!;
      expect(v1.out).toContain(`Status page at http://127.0.0.1:${port}/.`);
      expect(v1.out).toContain(`Metrics for Prometheus at http://127.0.0.1:${port}/metrics.`);
      await until('on-line with both VTS', async () => sample(await scrape(`http://127.0.0.1:${port}/metrics`), 'ptpvts_vtc_ptp_state', { state: 'online-both' }) === 1, 30_000);
      const m = await scrape(`http://127.0.0.1:${port}/metrics`);
      expect(sample(m, 'ptpvts_vtc_info', { ptp: 'procs', vtc: 'vtc1' })).toBe(1);
      // Process metrics too, under the process's own prefix.
      expect(sample(m, 'ptpvts_vtc_process_resident_memory_bytes')).toBeGreaterThan(0);
      expect((await (await fetch(`http://127.0.0.1:${port}/`)).text())).toMatch(/<h1>PtP system procs<\/h1>/);
      const vm = await scrape(vtsUrl);
      expect(sample(vm, 'ptpvts_vts_in_operation', { vts: 'A' })).toBe(1);
      expect(sample(vm, 'ptpvts_vts_process_resident_memory_bytes')).toBeGreaterThan(0);
      for (const p of procs) p.child.kill('SIGTERM');
      await until('every process to stop', () => procs.every((p) => p.code !== undefined), 30_000);
      expect(procs.map((p) => p.code)).toEqual([0, 0, 0, 0]);
      expect(v1.out).toMatch(/VTC vtc1 stopped \(SIGTERM\)\./);
      await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
    } finally {
      for (const p of procs) if (p.code === undefined) p.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
