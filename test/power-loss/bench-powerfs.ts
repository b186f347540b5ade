/**
 * Cost of powerfs: one snapshot of a ~4 MiB tree, and a 4 KiB pwrite+fdatasync through the mount
 * versus the plain filesystem underneath. Run: npx tsx test/power-loss/bench-powerfs.ts
 * (PTPVTS_POWERFS_TMP=/tmp to put the backing store on the disk instead of /dev/shm).
 */
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { mountPowerFs, powerFsAvailable, powerFsTempRoot } from './powerfs.js';

const avail = powerFsAvailable();
if (!avail.ok) {
  console.log(`powerfs unavailable: ${avail.why}`);
  process.exit(0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function writeSyncLoop(dir: string, n: number): number[] {
  const fd = openSync(join(dir, 'bench.dat'), 'w');
  const buf = Buffer.alloc(4096, 7);
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    writeSync(fd, buf, 0, buf.length, (i % 256) * 4096);
    fdatasyncSync(fd);
    t.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  closeSync(fd);
  return t;
}

const fs = await mountPowerFs({ name: 'bench' });
try {
  const root = fs.mountpoint;
  const chunk = Buffer.alloc(64 * 1024, 1);
  for (let d = 0; d < 4; d++) {
    mkdirSync(join(root, `d${d}`));
    for (let f = 0; f < 16; f++) {
      const fd = openSync(join(root, `d${d}`, `f${f}`), 'w');
      writeSync(fd, chunk);
      fdatasyncSync(fd);
      closeSync(fd);
    }
    const dfd = openSync(join(root, `d${d}`), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  }
  const rfd = openSync(root, 'r');
  fsyncSync(rfd);
  closeSync(rfd);
  // a quarter of it rewritten and not yet synced, as a writer in flight would leave it
  for (let f = 0; f < 16; f++) {
    const fd = openSync(join(root, 'd0', `f${f}`), 'r+');
    writeSync(fd, Buffer.alloc(64 * 1024, 2), 0, 64 * 1024, 0);
    closeSync(fd);
  }
  for (const mode of ['drop', 'pages', 'prefix'] as const) {
    const wall: number[] = [];
    const held: number[] = [];
    for (let i = 0; i < 30; i++) {
      const dest = fs.freshDest(mode);
      const t0 = process.hrtime.bigint();
      const r = await fs.snapshot(dest, { mode, seed: i });
      if (i === 0) {
        const files = readdirSync(dest, { recursive: true }).length;
        if (files !== 68) throw new Error(`snapshot has ${files} entries, expected 68`);
      }
      wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
      held.push(r.ms);
      rmSync(dest, { recursive: true });
    }
    console.log(`snapshot 4 MiB tree (64 files, 1 MiB unsynced) mode=${mode}: median ${median(wall).toFixed(2)} ms wall, ${median(held).toFixed(2)} ms ops held`);
  }
  const plain = mkdtempSync(join(powerFsTempRoot(), 'ptpvts-powerfs-plain-'));
  try {
    const n = 2000;
    const a = writeSyncLoop(plain, n);
    const b = writeSyncLoop(root, n);
    console.log(`4 KiB pwrite+fdatasync, ${powerFsTempRoot()}: plain median ${median(a).toFixed(1)} us, powerfs median ${median(b).toFixed(1)} us (${n} each)`);
  } finally {
    rmSync(plain, { recursive: true, force: true });
  }
} finally {
  await fs.unmount();
}
