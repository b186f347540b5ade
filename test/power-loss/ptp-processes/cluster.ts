/**
 * A PtP system as real OS processes on 127.0.0.1 (`ptpvts vts` x2, `ptpvts vtc` xN, started
 * the way scenario runs and the recovery bench start them), whose durable directories live
 * on powerfs mounts, one mount per power domain: VTS A's disks, VTS B's disks, and the VTCs'
 * key journals. A power loss of a domain is: SIGKILL every process on it, cut the mount in
 * place, restart those processes on what is left.
 *
 * The topology and the key files are configuration provisioned before the run: they live on
 * the ordinary filesystem, outside every power domain.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { addKeys } from '../../../src/cli/keys.js';
import { loadOperatorKey, loadTopology } from '../../../src/cli/topology.js';
import type { Timing } from '../../../src/ptp/engine.js';
import { FAST_TIMING } from '../../../src/scenario/cluster.js';
import { freePorts } from '../../../src/scenario/processes.js';
import type { AgentStatus } from '../../../src/vtc/agent.js';
import { ControlClient } from '../../../src/vtc/control-client.js';
import type { CutMode, CutReport, PowerFs } from '../powerfs.js';

/** A power domain: one machine's disks and the processes that run on them. */
export type Domain = 'A' | 'B' | 'vtcs';
export const DOMAINS: readonly Domain[] = ['A', 'B', 'vtcs'];

const root = resolve(fileURLToPath(import.meta.url), '../../../..');
const entry = join(root, 'src/scenario/process-entry.ts');
/**
 * A machine that lost power takes at least this long to come back, counted from when its
 * processes last started. It matters: the directory locks (src/cli/dir-lock.ts) are not synced,
 * a cut can leave a lock file empty, and an unreadable lock is taken over only once it is 5 s
 * old; a restart sooner than any real reboot would be refused for that alone.
 */
export const MIN_REBOOT_MS = 5_500;
/** Bytes of each process's stderr kept for the trace of a failed cut. */
const LOG_TAIL = 48 * 1024;

/** A process that exited before it said it was ready (e.g. a key journal that refuses to open). */
export class ProcessStartError extends Error {
  override readonly name = 'ProcessStartError';
  readonly code = 'EPROCESS_START';
  constructor(readonly key: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

interface Proc {
  readonly p: ChildProcess;
  log: string;
}

/**
 * Starts, kills and restarts the processes; asks the VTCs for their status. Every method that
 * talks to a VTC rejects with the ControlClient's errors (UnreachableError, RpcTimeoutError,
 * RemoteError); {@link stop} ends every process this object started.
 */
export class PowerCluster {
  readonly vtcs: string[];
  readonly clients = new Map<string, ControlClient>();
  readonly #procs = new Map<string, Proc>();
  /** Last words of processes that are gone (killed or exited), for traces. */
  readonly #gone = new Map<string, string>();
  readonly #topo: string;
  readonly #mounts: Record<Domain, PowerFs>;
  readonly #startedAt: Record<Domain, number> = { A: 0, B: 0, vtcs: 0 };

  private constructor(n: number, dir: string, mounts: Record<Domain, PowerFs>) {
    this.vtcs = Array.from({ length: n }, (_, i) => `vtc${i + 1}`);
    this.#topo = join(dir, 'topology.yaml');
    this.#mounts = mounts;
  }

  /** Writes the topology and keys under `dir` and starts every process; rejects (after stopping what started) when one does not start. */
  static async start(o: { n: number; dir: string; mounts: Record<Domain, PowerFs>; timing?: Partial<Timing>; rpcTimeoutMs?: number }): Promise<PowerCluster> {
    const c = new PowerCluster(o.n, o.dir, o.mounts);
    mkdirSync(o.dir, { recursive: true });
    const ports = await freePorts(2 * o.n + 2);
    const secret = 'power-loss processes cluster secret';
    const a = o.mounts.A.mountpoint;
    const b = o.mounts.B.mountpoint;
    const j = o.mounts.vtcs.mountpoint;
    const doc = {
      ptpId: 'ptpcut',
      secret,
      copyMode: 'immediate',
      timing: { ...FAST_TIMING, ...o.timing },
      vtcs: c.vtcs.map((id, i) => ({ id, listen: `127.0.0.1:${ports[2 * i]}`, control: `127.0.0.1:${ports[2 * i + 1]}`, journalDir: join(j, id) })),
      vts: {
        A: { listen: `127.0.0.1:${ports[2 * o.n]}`, cacheDir: join(a, 'cache'), stateDir: join(a, 'state') },
        B: { listen: `127.0.0.1:${ports[2 * o.n + 1]}`, cacheDir: join(b, 'cache'), stateDir: join(b, 'state') },
      },
    };
    addKeys(doc, o.dir, join(o.dir, 'keys'));
    writeFileSync(c.#topo, stringify(doc));
    const t = loadTopology(c.#topo);
    const operatorKey = loadOperatorKey(t);
    for (const v of t.vtcs) c.clients.set(v.id, new ControlClient(c.vtcs, v.id, v.control, { secret, operatorKey }, o.rpcTimeoutMs ?? 10_000));
    try {
      await c.startDomain('A');
      await c.startDomain('B');
      await c.startDomain('vtcs');
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  /** Process keys of a domain. */
  keysOf(d: Domain): string[] {
    return d === 'vtcs' ? [...this.vtcs] : [`vts-${d}`];
  }

  running(): string[] {
    return this.vtcs.filter((v) => this.#procs.has(v));
  }

  #spawn(key: string): Promise<void> {
    const args = key.startsWith('vts-') ? ['vts', '--id', key.slice(4)] : ['vtc', '--id', key];
    const ready = key.startsWith('vts-') ? /is serving/ : /is running/;
    const p = spawn(process.execPath, ['--import', 'tsx', entry, ...args, '-t', this.#topo], {
      cwd: root,
      env: { ...process.env, PTPVTS_LOG_LEVEL: process.env['PTPVTS_POWER_LOG_LEVEL'] ?? 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc: Proc = { p, log: '' };
    this.#procs.set(key, proc);
    const keep = (d: Buffer): void => {
      proc.log = (proc.log + d.toString()).slice(-LOG_TAIL);
    };
    p.stderr?.on('data', keep);
    return new Promise((res, rej) => {
      let out = '';
      const t = setTimeout(() => rej(new ProcessStartError(key, `${key} did not start within 90 s: ${proc.log.slice(-2000)}`)), 90_000);
      p.stdout?.on('data', (d: Buffer) => {
        keep(d);
        out += d.toString();
        if (ready.test(out)) {
          clearTimeout(t);
          res();
        }
      });
      p.once('exit', (code, signal) => {
        clearTimeout(t);
        this.#gone.set(key, proc.log);
        if (this.#procs.get(key) === proc) this.#procs.delete(key);
        rej(new ProcessStartError(key, `${key} exited (${code ?? signal}) before it was ready: ${proc.log.slice(-3000)}`));
      });
    });
  }

  /** Starts every process of `d` (VTCs in parallel). */
  async startDomain(d: Domain): Promise<void> {
    this.#startedAt[d] = Date.now();
    const results = await Promise.allSettled(this.keysOf(d).map((k) => this.#spawn(k)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** SIGKILL, and wait for the exit: a killed process keeps no file open on the mount. */
  async kill(key: string): Promise<void> {
    const proc = this.#procs.get(key);
    this.#procs.delete(key);
    if (proc === undefined) return;
    this.#gone.set(key, proc.log);
    const p = proc.p;
    if (p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGKILL');
    });
  }

  /**
   * A power loss of the domains `ds` at one instant: every process on them killed, then each
   * mount cut in place (mode, a seed per mount), then the processes restarted. Resolves with
   * the cut reports; rejects with ProcessStartError when a process does not come back.
   */
  async powerLoss(ds: readonly Domain[], mode: CutMode, seed: number): Promise<Record<string, CutReport>> {
    await Promise.all(ds.flatMap((d) => this.keysOf(d)).map((k) => this.kill(k)));
    const reports: Record<string, CutReport> = {};
    for (const [i, d] of ds.entries()) reports[d] = await this.#mounts[d].cut({ mode, seed: seed + i });
    const boot = Math.max(0, ...ds.map((d) => this.#startedAt[d] + MIN_REBOOT_MS - Date.now()));
    if (boot > 0) await new Promise((r) => setTimeout(r, boot));
    // VTS first: a VTC started before them only waits for their heartbeat.
    for (const d of (['A', 'B', 'vtcs'] as const).filter((x) => ds.includes(x))) await this.startDomain(d);
    return reports;
  }

  /** Each running VTC's status, or the error it answered. */
  async statuses(): Promise<Map<string, AgentStatus | Error>> {
    const out = new Map<string, AgentStatus | Error>();
    await Promise.all(
      this.running().map(async (v) => {
        try {
          out.set(v, await this.clients.get(v)!.status());
        } catch (e) {
          out.set(v, e as Error);
        }
      }),
    );
    return out;
  }

  /** The stderr tail of every process (running or gone), for a trace. */
  logs(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, l] of this.#gone) out[`${k} (previous run)`] = l;
    for (const [k, p] of this.#procs) out[k] = p.log;
    return out;
  }

  async stop(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    await Promise.all([...this.#procs.keys()].map((k) => this.kill(k)));
  }
}
