/**
 * The hardware-in-the-loop guest: a Debian kernel under QEMU (software emulation; KVM is not
 * available on these machines) with Linux's own st, ch and sg drivers, attached to iSCSI
 * LUNs through QEMU's built-in iSCSI initiator as scsi-generic devices. A run boots the
 * cached base initramfs plus a per-run script, collects `@@HIL` markers from the serial
 * console, and powers off.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const workDir = join(projectRoot, 'test', 'hil', 'work');
const QEMU = '/usr/bin/qemu-system-x86_64';

export function kernelVersion(): string | undefined {
  if (!existsSync('/boot')) return undefined;
  const k = readdirSync('/boot').filter((f) => f.startsWith('vmlinuz-')).sort().pop();
  return k?.slice('vmlinuz-'.length);
}

/** Why the guest can't run here, or undefined when it can. */
export function guestUnavailable(): string | undefined {
  if (!existsSync(QEMU)) return `${QEMU} not found (install Debian package qemu-system-x86)`;
  if (!existsSync('/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so')) return "QEMU's iSCSI initiator is missing (install Debian package qemu-block-extra)";
  const k = kernelVersion();
  if (!k) return 'no kernel in /boot (install Debian package linux-image-amd64)';
  if (!existsSync(`/usr/lib/modules/${k}/kernel/drivers/scsi/st.ko`) && !existsSync(`/lib/modules/${k}/kernel/drivers/scsi/st.ko`)) return `no st module for kernel ${k}`;
  for (const [bin, pkg] of [['busybox', 'busybox-static'], ['sg_inq', 'sg3-utils'], ['mtx', 'mtx'], ['mt-st', 'mt-st'], ['cpio', 'cpio']] as const) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      return `${bin} not found (install Debian package ${pkg})`;
    }
  }
  return undefined;
}

function fileDigest(paths: readonly string[], h: ReturnType<typeof createHash>): void {
  for (const p of paths) {
    h.update(relative(projectRoot, p));
    h.update(readFileSync(p));
  }
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Builds a layer unless one with the same digest is cached; old layers of that kind go. */
function cachedLayer(kind: string, digest: string, ext: string, build: (out: string) => void): string {
  const out = join(workDir, `${kind}-${digest.slice(0, 16)}.${ext}`);
  if (!existsSync(out)) {
    mkdirSync(workDir, { recursive: true });
    for (const old of readdirSync(workDir).filter((f) => f.startsWith(`${kind}-`))) rmSync(join(workDir, old), { force: true });
    build(out);
  }
  return out;
}

const buildScript = join(projectRoot, 'test', 'hil', 'guest', 'build-initramfs.sh');

/** The base initramfs layer (busybox, modules, sg3-utils, mtx, mt-st, tar, /init), cached. */
export function baseImage(): string {
  const kver = kernelVersion();
  if (!kver) throw new Error('no kernel in /boot');
  const h = createHash('sha256');
  h.update(kver);
  fileDigest([buildScript], h);
  return cachedLayer('base', h.digest('hex'), 'cpio.gz', (out) => execFileSync('bash', [buildScript, 'base', out, kver], { stdio: 'inherit' }));
}

/** Debian packages the backup layer copies from: package, a shell probe that succeeds when it is installed, what the probe looks for. */
const BACKUP_PACKAGES: ReadonlyArray<readonly [string, string, string]> = [
  ['bacula-sd', 'command -v btape', 'btape'],
  ['amanda-server', 'command -v amtapetype', 'amtapetype'],
  ['libencode-locale-perl', 'perl -MEncode::Locale -e 1', "perl's Encode::Locale (amtapetype needs it)"],
];

/** Why the backup layer can't be built here (a package missing), or undefined. */
export function backupUnavailable(): string | undefined {
  for (const [pkg, probe, what] of BACKUP_PACKAGES) {
    try {
      execFileSync('sh', ['-c', probe], { stdio: 'ignore' });
    } catch {
      return `${what} not found (install Debian package ${pkg})`;
    }
  }
  return undefined;
}

/**
 * The backup layer: Bacula's btape and Amanda's amtapetype with perl, cached by the build
 * script and the installed versions of the packages it copies from.
 */
export function backupImage(): string {
  const h = createHash('sha256');
  fileDigest([buildScript], h);
  h.update(execFileSync('dpkg-query', ['-W', '-f', '${Package} ${Version}\n', ...BACKUP_PACKAGES.map(([p]) => p), 'perl']));
  return cachedLayer('backup', h.digest('hex'), 'cpio', (out) => execFileSync('bash', [buildScript, 'backup', out], { stdio: 'inherit' }));
}

/**
 * The agent layer: node, the built addon and the SG_IO binding compiled on its own from
 * src/ (so a stale or half-built dist/ never leaks in), with the agent script. Cached by
 * content.
 */
export function agentImage(): string {
  const addon = join(projectRoot, 'build', 'Release', 'ptpvts.node');
  if (!existsSync(addon)) throw new Error(`${addon} is missing: run npm run build:native`);
  const stage = join(workDir, 'agent');
  rmSync(stage, { recursive: true, force: true });
  execFileSync(process.execPath, [join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(projectRoot, 'test', 'hil', 'guest', 'tsconfig.agent.json')], { cwd: projectRoot, stdio: 'inherit' });
  mkdirSync(join(stage, 'build', 'Release'), { recursive: true });
  copyFileSync(addon, join(stage, 'build', 'Release', 'ptpvts.node'));
  copyFileSync(join(projectRoot, 'binding.gyp'), join(stage, 'binding.gyp'));
  writeFileSync(join(stage, 'package.json'), JSON.stringify({ name: 'ptpvts-guest-agent', private: true, type: 'module' }) + '\n');
  copyFileSync(join(projectRoot, 'test', 'hil', 'guest', 'sg-agent.mjs'), join(stage, 'sg-agent.mjs'));
  const h = createHash('sha256');
  fileDigest([buildScript, ...filesUnder(stage)], h);
  return cachedLayer('agent', h.digest('hex'), 'cpio', (out) => execFileSync('bash', [buildScript, 'agent', out, stage], { stdio: 'inherit' }));
}

/** A newc cpio archive of the given files (path -> content), written by hand: it is tiny. */
export function cpioArchive(files: Record<string, string | Uint8Array>): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const dirs = new Set<string>();
  for (const path of Object.keys(files)) {
    const segs = path.split('/');
    for (let i = 1; i < segs.length; i++) dirs.add(segs.slice(0, i).join('/'));
  }
  const entry = (name: string, mode: number, data: Buffer) => {
    const nameBuf = Buffer.from(name + '\0');
    const hdr =
      '070701' +
      [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBuf.length, 0].map((n) => n.toString(16).padStart(8, '0')).join('');
    parts.push(Buffer.from(hdr), nameBuf);
    const pad1 = (4 - ((110 + nameBuf.length) % 4)) % 4;
    parts.push(Buffer.alloc(pad1), data, Buffer.alloc((4 - (data.length % 4)) % 4));
  };
  for (const d of [...dirs].sort()) entry(d, 0o40755, Buffer.alloc(0));
  for (const [path, content] of Object.entries(files)) entry(path, 0o100755, Buffer.from(content));
  entry('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

export interface IscsiLun {
  host: string;
  port: number;
  iqn: string;
  lun: number;
}

export interface GuestRun {
  /** Everything the serial console printed. */
  output: string;
  /** `@@HIL name rest` lines, as [name, rest]. */
  markers: Array<[string, string]>;
  exitCode: number | null;
  /** From QEMU's start to its exit. */
  wallMs: number;
}

export interface GuestOptions {
  /** Shell script run by the guest's init after the SCSI scan settled. */
  script: string;
  luns: IscsiLun[];
  /** Extra files for the run archive (path inside the guest without leading slash). */
  files?: Record<string, string | Uint8Array>;
  timeoutMs?: number;
  /** When set, a virtio-serial channel is exposed at this unix socket path (guest /dev/vport*p1). */
  agentSocket?: string;
  /** Whether to boot the agent layer (node and the SG_IO agent); default: when `agentSocket` is set. */
  agentLayer?: boolean;
  /** Whether to boot the backup layer (btape, amtapetype and perl); default false. */
  backupLayer?: boolean;
  memoryMB?: number;
  onOutput?: (chunk: string) => void;
}

export interface RunningGuest {
  /** Resolves when the guest has powered off (or was killed at the timeout). */
  done: Promise<GuestRun>;
  kill(): void;
}

/** Zero bytes up to a multiple of 512, so each concatenated archive starts aligned. */
function padded(b: Buffer): Buffer {
  const pad = (512 - (b.length % 512)) % 512;
  return pad === 0 ? b : Buffer.concat([b, Buffer.alloc(pad)]);
}

export function startGuest(opts: GuestOptions): RunningGuest {
  const withAgent = opts.agentLayer ?? opts.agentSocket !== undefined;
  const layers = [baseImage(), ...(withAgent ? [agentImage()] : []), ...(opts.backupLayer ? [backupImage()] : [])];
  const tmp = mkdtempSync(join(tmpdir(), 'ptpvts-guest-'));
  const initrd = join(tmp, 'initrd.img');
  const runArchive = gzipSync(cpioArchive({ 'hil/run.sh': opts.script, ...(opts.files ?? {}) }));
  writeFileSync(initrd, Buffer.concat([...layers.map((l) => padded(readFileSync(l))), runArchive]));
  const kver = kernelVersion()!;
  const args = [
    '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-m', String(opts.memoryMB ?? (withAgent ? 1024 : opts.backupLayer ? 768 : 384)), '-smp', '1',
    '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio', '-net', 'none',
    '-kernel', `/boot/vmlinuz-${kver}`, '-initrd', initrd,
    '-append', `console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off nokaslr hil.luns=${opts.luns.length}`,
    '-iscsi', 'initiator-name=iqn.2026-11.org.ptpvts:hil-guest',
    '-device', 'virtio-scsi-pci,id=scsi0',
  ];
  opts.luns.forEach((l, i) => {
    args.push('-drive', `file=iscsi://${l.host}:${l.port}/${l.iqn}/${l.lun},if=none,format=raw,id=lun${i}`);
    args.push('-device', `scsi-generic,drive=lun${i},bus=scsi0.0,channel=0,scsi-id=${i},lun=0`);
  });
  if (opts.agentSocket) {
    args.push('-device', 'virtio-serial-pci', '-chardev', `socket,id=agent,path=${opts.agentSocket},server=on,wait=off`, '-device', 'virtserialport,chardev=agent,name=ptpvts-agent');
  }
  const child = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const onData = (d: Buffer) => {
    const s = d.toString();
    output += s;
    opts.onOutput?.(s);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const started = Date.now();
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
  const done = new Promise<GuestRun>((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      rmSync(tmp, { recursive: true, force: true });
      const markers: Array<[string, string]> = [];
      for (const line of output.split(/\r?\n/u)) {
        const m = /@@HIL (\S+) ?(.*)$/u.exec(line);
        if (m) markers.push([m[1]!, m[2]!.trim()]);
      }
      resolve({ output, markers, exitCode: code, wallMs: Date.now() - started });
    });
  });
  return { done, kill: () => child.kill('SIGKILL') };
}

export async function runGuest(opts: GuestOptions): Promise<GuestRun> {
  return startGuest(opts).done;
}

/** Connects to the guest agent's virtio-serial socket once QEMU has created it. */
export async function connectAgentSocket(path: string, timeoutMs = 30_000): Promise<Socket> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
