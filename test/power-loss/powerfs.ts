/**
 * Harness for powerfs, the power-loss test filesystem (test/power-loss/powerfs/powerfs.c; see
 * docs/power-loss.md). It builds the daemon once per source version into a cache under the OS
 * temp dir, mounts it on a fresh temp dir, and talks to it over a Unix socket.
 *
 * Campaigns: `mountPowerFs()`, run the production writer on `fs.mountpoint`, and call
 * `fs.snapshot(dest, { mode, seed })` to get the tree a power cut right now would leave.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The harness works: colleagues' campaigns poll for this line. */
export const READY = true;

const here = dirname(fileURLToPath(import.meta.url));
const sourceDir = join(here, 'powerfs');

/** How a power cut treats what is not yet durable. */
export type CutMode = 'drop' | 'pages' | 'prefix';

/** Which cut to take; the same state, mode and seed always give the same tree. */
export interface CutOptions {
  mode: CutMode;
  /** Any safe integer; it is taken modulo 2^64. */
  seed: number;
}

/** What a cut threw away and kept. Byte counts are of unsynced changes (pages mode: of pages). */
export interface CutReport {
  lostBytes: number;
  keptBytes: number;
  revertedDirOps: number;
  /** Files that had unsynced data at the cut. */
  volatileFiles: number;
  /** Time the daemon held all operations to take the cut, in milliseconds. */
  ms: number;
}

/** Daemon counters, from `stats`. */
export interface PowerFsStats {
  volatileFiles: number;
  volatileBytes: number;
  pendingDirOps: number;
  writes: number;
  fsyncs: number;
  dirFsyncs: number;
  snapshots: number;
  cuts: number;
  poweredOff: boolean;
}

/**
 * Operation classes an injected error applies to. `link` fails link() alone (`meta` covers it
 * too): with EPERM it plays a filesystem without hard links.
 */
export type FaultOps = 'read' | 'write' | 'fsync' | 'meta' | 'link' | 'all';

/**
 * A mounted powerfs. Every method rejects with a {@link PowerFsError} (code
 * `POWERFS_CONTROL` for a daemon answer, `POWERFS_DAEMON` when the daemon died or did not start,
 * `POWERFS_UNMOUNTED` after unmount). There are no timeouts on snapshot and cut: they take as
 * long as copying the tree takes; a daemon that dies rejects the pending call.
 */
export interface PowerFs {
  /** Code under test reads and writes here. */
  readonly mountpoint: string;
  /**
   * Power cut while writers keep running: the durable state as it would be after a cut right
   * now is materialised as a fresh directory tree at `dest` (created; an existing dir must be
   * empty) on the ordinary fs. FS operations are held while it is taken, so it is one instant.
   */
  snapshot(dest: string, opts: CutOptions): Promise<CutReport>;
  /**
   * Power cut in place: unsynced data is lost on the mount itself; then the harness remounts
   * (kernel caches dropped) at the same mountpoint. Kill your writer processes first: their
   * open files would keep the old mount busy (it is then detached lazily).
   */
  cut(opts: CutOptions): Promise<CutReport>;
  /**
   * A fresh path (not yet created) for a snapshot `dest`, on the same temp filesystem as the
   * daemon's backing store (RAM-backed where possible, see {@link powerFsTempRoot}), so copying
   * and deleting snapshots does not touch the disk. Removed by unmount().
   */
  freshDest(label?: string): string;
  /** Idempotent; also removes the temp dirs. */
  unmount(): Promise<void>;
  /** Daemon counters. */
  stats(): Promise<PowerFsStats>;
  /**
   * Makes the given operation classes fail with `errno` (e.g. 5 for EIO) until called with
   * `null`. A failed fsync leaves the data volatile.
   */
  injectError(ops: readonly FaultOps[] | null, errno?: number): Promise<void>;
}

/** Errors from the harness and the daemon. `errno` is set when the daemon answered with one. */
export class PowerFsError extends Error {
  override readonly name = 'PowerFsError';
  readonly code: string;
  readonly errno: number | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; errno?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.errno = options?.errno;
  }
}

const MODES: readonly CutMode[] = ['drop', 'pages', 'prefix'];

let availability: { ok: true; binary: string } | { ok: false; why: string } | undefined;

function cacheDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return join(tmpdir(), `ptpvts-powerfs-cache-${uid}`);
}

function check(): { ok: true; binary: string } | { ok: false; why: string } {
  if (process.platform !== 'linux') return { ok: false, why: `powerfs needs Linux (this is ${process.platform})` };
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch (e) {
    return { ok: false, why: `/dev/fuse is not usable (${(e as NodeJS.ErrnoException).code ?? String(e)})` };
  }
  const pc = spawnSync('pkg-config', ['--exists', 'fuse3'], { stdio: 'ignore' });
  if (pc.error) return { ok: false, why: 'pkg-config is not installed' };
  if (pc.status !== 0) return { ok: false, why: 'libfuse3 development files are missing (apt-get install libfuse3-dev)' };
  if (spawnSync('fusermount3', ['-V'], { stdio: 'ignore' }).error) {
    return { ok: false, why: 'fusermount3 is not installed (apt-get install fuse3)' };
  }
  const src = readFileSync(join(sourceDir, 'powerfs.c'));
  const script = readFileSync(join(sourceDir, 'build.sh'));
  const hash = createHash('sha256').update(src).update(script).digest('hex').slice(0, 16);
  const binary = join(cacheDir(), `powerfs-${hash}`);
  if (!existsSync(binary)) {
    mkdirSync(cacheDir(), { recursive: true });
    const b = spawnSync('sh', [join(sourceDir, 'build.sh'), binary], { encoding: 'utf8' });
    if (b.status !== 0) {
      const out = `${b.stderr ?? ''}${b.stdout ?? ''}`.trim().split('\n').slice(0, 5).join('\n');
      return { ok: false, why: `building powerfs failed: ${out || b.error?.message || `exit ${b.status}`}` };
    }
  }
  return { ok: true, binary };
}

/** ok:false with the reason (no /dev/fuse, no libfuse3, build failed) so suites skip visibly. */
export function powerFsAvailable(): { ok: true } | { ok: false; why: string } {
  availability ??= check();
  return availability.ok ? { ok: true } : { ok: false, why: availability.why };
}

const TMPFS_MAGIC = 0x01021994;

/**
 * Where mounts (backing store, mountpoint, snapshot scratch) are made: PTPVTS_POWERFS_TMP, else
 * /dev/shm when it is a writable tmpfs, else os.tmpdir(). The root fs of CI machines is often
 * mounted with online discard, where every unlink of a snapshot waits for the disk.
 */
export function powerFsTempRoot(): string {
  const env = process.env['PTPVTS_POWERFS_TMP'];
  if (env !== undefined && env !== '') return env;
  try {
    accessSync('/dev/shm', constants.W_OK);
    if (statfsSync('/dev/shm').type === TMPFS_MAGIC) return '/dev/shm';
  } catch {
    // no usable /dev/shm
  }
  return tmpdir();
}

/** Cuts per campaign: PTPVTS_POWER_CUTS, else 1e5 with PTPVTS_LONG=1, else `ciDefault` (1000) in CI, else 100. */
export function cutCount(ciDefault = 1000): number {
  const env = process.env['PTPVTS_POWER_CUTS'];
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new PowerFsError('POWERFS_BAD_ARGUMENT', `PTPVTS_POWER_CUTS must be a positive integer, got '${env}'`);
    }
    return n;
  }
  if (process.env['PTPVTS_LONG'] === '1') return 100_000;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '' && process.env['CI'] !== 'false') return ciDefault;
  return Math.min(ciDefault, 100);
}

/** One request at a time over a persistent connection; answers are single lines. */
class Control {
  private buf = '';
  private waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private closed: Error | undefined;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiting.shift()?.resolve(line);
      }
    });
    const fail = (e?: Error): void => {
      this.closed ??= new PowerFsError('POWERFS_DAEMON', 'powerfs control connection closed', { cause: e });
      for (const w of this.waiting.splice(0)) w.reject(this.closed);
    };
    sock.on('error', fail);
    sock.on('close', () => fail());
    sock.unref();
  }

  static open(path: string): Promise<Control> {
    return new Promise((res, rej) => {
      const s = connect(path);
      s.once('connect', () => {
        s.removeAllListeners('error');
        res(new Control(s));
      });
      s.once('error', rej);
    });
  }

  /** Sends one command; resolves with the JSON after "ok", rejects on "err". */
  request(cmd: string): Promise<unknown> {
    const run = async (): Promise<unknown> => {
      if (this.closed) throw this.closed;
      const line = await new Promise<string>((resolve, reject) => {
        this.waiting.push({ resolve, reject });
        this.sock.ref();
        this.sock.write(`${cmd}\n`);
      }).finally(() => this.sock.unref());
      if (line.startsWith('ok ')) return JSON.parse(line.slice(3)) as unknown;
      const m = /^err (\d+) (.*)$/.exec(line);
      throw new PowerFsError('POWERFS_CONTROL', `powerfs ${cmd.split(' ')[0]}: ${m?.[2] ?? line}`, {
        errno: m ? Number(m[1]) : undefined,
      });
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.sock.destroy();
  }
}

const live = new Set<string>();
let exitHook = false;

/** A test process that dies without unmount must not leave mounts behind. */
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const mp of live) spawnSync('fusermount3', ['-u', '-z', mp], { stdio: 'ignore' });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isMounted(mountpoint: string): boolean {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[1] === mountpoint);
  } catch {
    return false;
  }
}

class Daemon {
  readonly exited: Promise<number | null>;
  stderr = '';
  exitCode: number | null | undefined;

  constructor(
    readonly child: ChildProcess,
  ) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    this.exited = new Promise((res) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        res(code);
      }),
    );
    child.unref();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  }
}

class PowerFsImpl implements PowerFs {
  private daemon: Daemon | undefined;
  private ctl: Control | undefined;
  private gone = false;
  private readonly state: string;
  private readonly sock: string;

  constructor(
    private readonly binary: string,
    private readonly base: string,
    readonly mountpoint: string,
  ) {
    this.state = join(base, 'state');
    this.sock = join(base, 'ctl.sock');
  }

  async start(): Promise<void> {
    rmSync(this.sock, { force: true });
    const child = spawn(
      this.binary,
      ['--state', this.state, '--ctl', this.sock, '--parent', String(process.pid), this.mountpoint],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const d = new Daemon(child);
    this.daemon = d;
    live.add(this.mountpoint);
    const deadline = Date.now() + 15_000;
    // The daemon opens its socket only after the kernel's INIT, so a connect means mounted.
    while (true) {
      if (d.exitCode !== undefined) {
        throw new PowerFsError('POWERFS_DAEMON', `powerfs exited (${d.exitCode}) before mounting: ${d.stderr.trim() || 'no output'}`);
      }
      if (existsSync(this.sock)) {
        try {
          this.ctl = await Control.open(this.sock);
          break;
        } catch {
          // not accepting yet
        }
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new PowerFsError('POWERFS_DAEMON', `powerfs did not mount ${this.mountpoint} within 15 s: ${d.stderr.trim()}`);
      }
      await sleep(10);
    }
    if (!isMounted(this.mountpoint)) {
      throw new PowerFsError('POWERFS_DAEMON', `powerfs answers but ${this.mountpoint} is not in /proc/self/mounts`);
    }
  }

  private control(): Control {
    if (this.gone || !this.ctl) throw new PowerFsError('POWERFS_UNMOUNTED', `powerfs at ${this.mountpoint} is unmounted`);
    return this.ctl;
  }

  async snapshot(dest: string, opts: CutOptions): Promise<CutReport> {
    if (typeof dest !== 'string' || dest === '' || dest.includes('\n')) {
      throw new PowerFsError('POWERFS_BAD_ARGUMENT', `snapshot: dest must be a path, got ${JSON.stringify(dest)}`);
    }
    const abs = isAbsolute(dest) ? dest : resolve(dest);
    if (abs === this.mountpoint || abs.startsWith(`${this.mountpoint}/`)) {
      throw new PowerFsError('POWERFS_BAD_ARGUMENT', `snapshot: dest ${abs} must not be inside the powerfs mount`);
    }
    return (await this.control().request(`snapshot ${abs} ${cutArgs(opts)}`)) as CutReport;
  }

  async cut(opts: CutOptions): Promise<CutReport> {
    const report = (await this.control().request(`cut ${cutArgs(opts)}`)) as CutReport;
    await this.stop();
    await this.start();
    return report;
  }

  private dests = 0;

  freshDest(label = 'snap'): string {
    const dir = join(this.base, 'snaps');
    mkdirSync(dir, { recursive: true });
    return join(dir, `${label.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 32)}-${this.dests++}`);
  }

  async stats(): Promise<PowerFsStats> {
    return (await this.control().request('stats')) as PowerFsStats;
  }

  async injectError(ops: readonly FaultOps[] | null, errno = 5): Promise<void> {
    if (ops === null || ops.length === 0) {
      await this.control().request('fail off');
      return;
    }
    const allowed: readonly string[] = ['read', 'write', 'fsync', 'meta', 'link', 'all'];
    const bad = ops.find((o) => !allowed.includes(o));
    if (bad !== undefined) throw new PowerFsError('POWERFS_BAD_ARGUMENT', `injectError: unknown op class '${bad}' (use ${allowed.join(', ')})`);
    if (!Number.isInteger(errno) || errno <= 0) throw new PowerFsError('POWERFS_BAD_ARGUMENT', `injectError: errno must be a positive integer, got ${errno}`);
    await this.control().request(`fail ${ops.join(',')} ${errno}`);
  }

  /** Unmounts and waits for the daemon; a busy mount (open files) is detached lazily. */
  private async stop(): Promise<void> {
    this.ctl?.close();
    this.ctl = undefined;
    const d = this.daemon;
    this.daemon = undefined;
    if (!d) return;
    if (d.exitCode === undefined) {
      let done = false;
      for (let i = 0; i < 20 && !done; i++) {
        const r = spawnSync('fusermount3', ['-u', this.mountpoint], { encoding: 'utf8' });
        done = r.status === 0 || !isMounted(this.mountpoint);
        if (!done) await sleep(25);
      }
      if (!done) spawnSync('fusermount3', ['-u', '-z', this.mountpoint], { stdio: 'ignore' });
      const t = setTimeout(() => d.child.kill('SIGKILL'), 5_000);
      await d.exited;
      clearTimeout(t);
    }
    if (isMounted(this.mountpoint)) spawnSync('fusermount3', ['-u', '-z', this.mountpoint], { stdio: 'ignore' });
    live.delete(this.mountpoint);
  }

  async unmount(): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    await this.stop();
    rmSync(this.base, { recursive: true, force: true });
  }
}

function cutArgs(opts: CutOptions): string {
  if (!opts || !MODES.includes(opts.mode)) {
    throw new PowerFsError('POWERFS_BAD_ARGUMENT', `cut mode must be one of ${MODES.join(', ')}, got ${JSON.stringify(opts?.mode)}`);
  }
  if (!Number.isSafeInteger(opts.seed)) {
    throw new PowerFsError('POWERFS_BAD_ARGUMENT', `cut seed must be a safe integer, got ${String(opts.seed)}`);
  }
  return `${opts.mode} ${BigInt.asUintN(64, BigInt(opts.seed)).toString()}`;
}

/** Builds the daemon if needed, mounts a fresh powerfs on a new temp dir. */
export async function mountPowerFs(opts?: { name?: string }): Promise<PowerFs> {
  availability ??= check();
  if (!availability.ok) throw new PowerFsError('POWERFS_UNAVAILABLE', `powerfs is unavailable: ${availability.why}`);
  const name = (opts?.name ?? 'fs').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 32);
  const base = mkdtempSync(join(powerFsTempRoot(), `ptpvts-powerfs-${name}-`));
  const mountpoint = join(base, 'mnt');
  mkdirSync(mountpoint);
  mkdirSync(join(base, 'state'));
  installExitHook();
  const fs = new PowerFsImpl(availability.binary, base, mountpoint);
  try {
    await fs.start();
  } catch (e) {
    await fs.unmount().catch(() => undefined);
    throw e;
  }
  return fs;
}

/**
 * A campaign's writer: a worker running `bundle` with `workerData`, and a promise of its last
 * word (`{ ops }` when it finished its script, `{ error }` when it failed or exited silently).
 */
export function startCampaignWriter(bundle: string | URL, workerData: unknown): { worker: Worker; finished: Promise<{ ops?: number; error?: string }> } {
  const worker = new Worker(bundle, { workerData });
  const finished = new Promise<{ ops?: number; error?: string }>((resolve) => {
    worker.once('message', resolve);
    worker.once('error', (e) => resolve({ error: `${e.name}: ${e.message}` }));
    worker.once('exit', (code) => resolve({ error: `writer exited (${code}) without a word` }));
  });
  return { worker, finished };
}

/** The campaign's seeded choice of cut points (xorshift32), uniform in [0, 1). */
export function cutRandom(seed: number): () => number {
  let rs = (seed ^ 0x2545f491) >>> 0 || 1;
  return (): number => {
    rs ^= rs << 13;
    rs >>>= 0;
    rs ^= rs >>> 17;
    rs ^= rs << 5;
    rs >>>= 0;
    return rs / 0x100000000;
  };
}
