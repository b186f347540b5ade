/**
 * CPU time the iSCSI target process spends per command (utime + stime from /proc), beside
 * the wall-clock rate. On a shared, loaded machine throughput moves by ±30% and more from
 * run to run; the target's own CPU per TEST UNIT READY moves much less, so two builds
 * compare on it. Stream figures include the system time of the cartridge file I/O and
 * move more.
 *
 *   node --import tsx bench/cpu-cost.ts [tree]
 *
 * starts `ptpvts sim serve` from `tree` (default: this one) with the bench library, and
 * measures with this tree's initiator: TEST UNIT READY at queue depth 1 and 16, 256 KiB
 * WRITE(6) and READ(6) (512 blocks in order, 8 in flight), each once to warm up and once
 * timed. CPU_COST_N sets
 * the TEST UNIT READY count (20000), CPU_COST_ONLY a name prefix to run alone,
 * CPU_COST_NODE_ARGS extra Node options for the target (e.g. --cpu-prof).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Cdb from '../src/scsi/cdb.js';
import { IscsiSession } from '../src/iscsi/session.js';
import { IscsiPort } from '../src/transport/iscsi/iscsi-port.js';
import { BENCH_DRIVE_LIBRARY_YAML } from './lib.js';

const root = process.argv[2] ?? process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'cpu-cost-'));
writeFileSync(join(dir, 'library.yaml'), BENCH_DRIVE_LIBRARY_YAML);
const extra = (process.env.CPU_COST_NODE_ARGS ?? '').split(/\s+/u).filter(Boolean);
const child = spawn(process.execPath, [...extra, '--import', 'tsx', join(root, 'test/interop/fixtures/sim-serve-runner.ts'), 'sim', 'serve', join(dir, 'library.yaml'), '--portal', '127.0.0.1:0'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
const m = await new Promise<RegExpExecArray>((resolve) => {
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const x = /iSCSI target (\S+) on portal (\S+):(\d+)\./u.exec(out);
    if (x) resolve(x);
  });
});
const cpu = (): number => {
  const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // ms (100 ticks/s)
};
const session = await IscsiSession.open({ host: m[2]!, port: Number(m[3]), initiatorName: 'iqn.2026-11.io.ptpvts:cpu', targetName: m[1]!, queueDepth: 16 });
const port = new IscsiPort(session, 1);
await port.execute(Cdb.requestSense());
const tur = Cdb.testUnitReady();
const block = Buffer.alloc(256 * 1024, 7);
const w6 = Cdb.write6(block);
const r6 = Cdb.read6({ length: block.length });

const only = process.env.CPU_COST_ONLY;
async function measure(name: string, ops: number, unit: string, fn: () => Promise<void>): Promise<void> {
  if (only && !name.startsWith(only)) return;
  await fn(); // warm-up
  const c0 = cpu();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const used = cpu() - c0;
  console.log(`${name}: target CPU ${((used * 1000) / ops).toFixed(1)} us/${unit}, wall ${((ops / wall) * 1000).toFixed(0)} ${unit}/s`);
}
async function depth(n: number, q: number, issue: () => Promise<unknown>): Promise<void> {
  let left = n;
  await Promise.all(Array.from({ length: q }, async () => {
    while (left-- > 0) await issue();
  }));
}
/** `n` commands in order, at most `q` in flight, waiting for the oldest (as bench/iscsi.bench.ts streams). */
async function pipeline(n: number, q: number, issue: () => Promise<unknown>): Promise<void> {
  const inFlight: Array<Promise<unknown>> = [];
  for (let i = 0; i < n; i++) {
    inFlight.push(issue());
    if (inFlight.length >= q) await inFlight.shift();
  }
  await Promise.all(inFlight);
}
const N = Number(process.env.CPU_COST_N ?? 20000);
await measure('TUR qd1', N, 'cmd', () => depth(N, 1, () => port.execute(tur)));
await measure('TUR qd16', N * 2, 'cmd', () => depth(N * 2, 16, () => port.execute(tur)));
const blocks = 512;
await measure('WRITE(6) 256 KiB qd8', blocks, 'cmd', async () => {
  await port.execute(Cdb.rewind());
  await pipeline(blocks, 8, () => port.execute(w6));
  await port.execute(Cdb.writeFilemarks6(1));
});
await measure('READ(6) 256 KiB qd8', blocks, 'cmd', async () => {
  await port.execute(Cdb.rewind());
  await pipeline(blocks, 8, () => port.execute(r6));
});
await session.close();
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
rmSync(dir, { recursive: true, force: true });
