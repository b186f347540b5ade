/**
 * Starts a private tgtd (Debian package `tgt`) on 127.0.0.1 with a virtual tape library:
 * tape drives on LUNs 1..n and a medium changer on LUN n+1, set up with tgtadm exactly as
 * tgt's own VTL recipe does. Used as a real peer that no one here wrote.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TgtdOptions {
  drives?: number;
  /** Barcodes of the cartridges, one per storage slot (slots = barcodes.length + spare). */
  barcodes?: string[];
  spareSlots?: number;
  /** Import/export elements after the storage slots (none by default). */
  importExportSlots?: number;
  /** Tape size in MB. */
  tapeMB?: number;
  /** Sizes in MB of particular cartridges, by barcode (others get `tapeMB`). */
  tapeSizesMB?: Readonly<Record<string, number>>;
  iqn?: string;
  /** Require this CHAP account from initiators (tgtadm account bound to the target). */
  chap?: { user: string; secret: string };
  /** Where the backing files go (a fresh directory is made inside); default the OS temp dir. */
  parentDir?: string;
  /** Offer CRC32C header and data digests (tgt's default is None only). */
  digests?: boolean;
}

export interface TgtdLibrary {
  readonly host: string;
  readonly port: number;
  readonly iqn: string;
  /** LUN numbers of the tape drives. */
  readonly driveLuns: number[];
  readonly changerLun: number;
  /** Element addresses as configured. */
  readonly elements: { transport: number; drives: number[]; slots: number[] };
  readonly dir: string;
  /** tgtd's process id (for CPU accounting from /proc). */
  readonly pid: number;
  stop(): Promise<void>;
}

/** Why tgtd can't run here, or undefined when it can. */
export function tgtdUnavailable(): string | undefined {
  for (const bin of ['/usr/sbin/tgtd', '/usr/sbin/tgtadm', '/usr/sbin/tgtimg']) {
    if (!existsSync(bin)) return `${bin} not found (install Debian package tgt)`;
  }
  if (process.getuid && process.getuid() !== 0) return 'tgtd needs root';
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function startTgtd(opts: TgtdOptions = {}): Promise<TgtdLibrary> {
  const why = tgtdUnavailable();
  if (why) throw new Error(why);
  const drives = opts.drives ?? 1;
  const barcodes = opts.barcodes ?? ['PTP001L8', 'PTP002L8', 'PTP003L8'];
  const slotsN = barcodes.length + (opts.spareSlots ?? 1);
  const iqn = opts.iqn ?? 'iqn.2026-11.org.ptpvts:tgtd';
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), 'ptpvts-tgtd-'));
  const port = await freePort();
  // Control-socket number: private to this instance so parallel runs never collide.
  const cn = String(100 + Math.floor(Math.random() * 800));
  const tgtadm = (...args: string[]) => run('/usr/sbin/tgtadm', ['-C', cn, '--lld', 'iscsi', ...args]);

  await writeFile(join(dir, 'smc'), Buffer.alloc(1024));
  for (const b of barcodes) {
    await run('/usr/sbin/tgtimg', ['--op', 'new', '--device-type', 'tape', '--barcode', b, '--size', String(opts.tapeSizesMB?.[b] ?? opts.tapeMB ?? 64), '--type', 'data', '--file', join(dir, b)]);
  }
  // tgt needs a backing file per drive even when the drive is empty.
  for (let d = 1; d <= drives; d++) {
    await run('/usr/sbin/tgtimg', ['--op', 'new', '--device-type', 'tape', '--barcode', `EMPTY${d}`, '--size', '1', '--type', 'data', '--file', join(dir, `empty${d}`)]);
  }
  const child: ChildProcess = spawn('/usr/sbin/tgtd', ['-f', '-C', cn, '--iscsi', `portal=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      // tgtd ignores SIGTERM while it serves targets; its own shutdown request is the clean way.
      await run('/usr/sbin/tgtadm', ['-C', cn, '--mode', 'sys', '--op', 'delete']).catch(() => child.kill('SIGTERM'));
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(async () => {
      try {
        await tgtadm('--op', 'show', '--mode', 'target');
        return true;
      } catch {
        return child.exitCode !== null ? Promise.reject(new Error(`tgtd exited: ${log}`)) : false;
      }
    }, 10_000, 'tgtd control socket');
    await tgtadm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn);
    const driveLuns: number[] = [];
    for (let d = 1; d <= drives; d++) {
      await tgtadm('--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', String(d), '-b', join(dir, `empty${d}`), '--device-type=tape');
      await tgtadm('--mode', 'logicalunit', '--op', 'update', '--tid', '1', '--lun', String(d), '--params', 'online=0');
      driveLuns.push(d);
    }
    const changerLun = drives + 1;
    const upd = (params: string) => tgtadm('--mode', 'logicalunit', '--op', 'update', '--tid', '1', '--lun', String(changerLun), '--params', params);
    await tgtadm('--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', String(changerLun), '-b', join(dir, 'smc'), '--device-type=changer');
    await upd(`media_home=${dir}`);
    // Element addressing as tgt's recipe lays it out: drives from 1, the picker after them, then slots.
    await upd(`element_type=4,start_address=1,quantity=${drives}`);
    for (let d = 1; d <= drives; d++) await upd(`element_type=4,address=${d},tid=1,lun=${d}`);
    const transport = drives + 1;
    await upd(`element_type=1,start_address=${transport},quantity=1`);
    const firstSlot = transport + 1;
    await upd(`element_type=2,start_address=${firstSlot},quantity=${slotsN}`);
    for (const [i, b] of barcodes.entries()) await upd(`element_type=2,address=${firstSlot + i},barcode=${b},sides=1`);
    if (opts.importExportSlots) await upd(`element_type=3,start_address=${firstSlot + slotsN},quantity=${opts.importExportSlots}`);
    await tgtadm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
    if (opts.digests) {
      for (const name of ['HeaderDigest', 'DataDigest']) await tgtadm('--mode', 'target', '--op', 'update', '--tid', '1', '--name', name, '--value', 'CRC32C,None');
    }
    if (opts.chap) {
      await tgtadm('--mode', 'account', '--op', 'new', '--user', opts.chap.user, '--password', opts.chap.secret);
      await tgtadm('--mode', 'account', '--op', 'bind', '--tid', '1', '--user', opts.chap.user);
    }
    return {
      host: '127.0.0.1',
      port,
      iqn,
      driveLuns,
      changerLun,
      elements: { transport, drives: driveLuns.map((d) => d), slots: Array.from({ length: slotsN }, (_, i) => firstSlot + i) },
      dir,
      pid: child.pid!,
      stop,
    };
  } catch (err) {
    await stop();
    throw new Error(`tgtd setup failed: ${(err as Error).message}\n${log}`, { cause: err });
  }
}
