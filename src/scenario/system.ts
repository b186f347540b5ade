/**
 * What the scenario runner needs of a PtP system, with two implementations: the whole
 * system in this process (LocalCluster) and separate processes (one per VTS and per VTC,
 * driven over the authenticated control endpoints, faults injected over them too).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { OperatorCommand, Timing } from '../ptp/engine.js';
import { addKeys } from '../cli/keys.js';
import { loadOperatorKey, loadTopology } from '../cli/topology.js';
import { HmacSha256 } from '../ptp/mac.js';
import { VTS_NAMES } from '../ptp/types.js';
import type { PtpStatus, VtsName } from '../ptp/types.js';
import type { CopyMode } from '../ptp/volumes.js';
import { summarizeKey } from '../vtc/agent.js';
import type { CloseResult, ElectionView, KeySummary } from '../vtc/agent.js';
import { ControlClient } from '../vtc/control-client.js';
import { OPERATOR, participants, RpcClient, vtsParticipant } from '../vtc/rpc.js';
import { FAST_TIMING } from './cluster.js';
import { freePorts } from './processes.js';
import { NODE_FLAGS } from '../node-flags.js';
import type { LocalCluster } from './cluster.js';
import type { ClusterEvent } from './cluster.js';

export interface VtcSnapshot {
  readonly ptp: string;
  readonly keySeq: number;
  readonly current: readonly VtsName[];
  readonly threshold: number;
  readonly elections: readonly ElectionView[];
}

/**
 * Every operation rejects with the error of the VTC or VTS it reached (codes such as
 * EPTP_NO_QUORUM, EVTC_OFFLINE) or UnreachableError; none retries by itself. Timeouts
 * are the underlying RPC's (process mode) or the agent's command timeout.
 */
export interface ScenarioSystem {
  readonly names: readonly string[];
  readonly events: ClusterEvent[];
  readonly t0: number;
  note(text: string): void;
  /** VTCs started and not crashed. */
  running(): string[];
  /** A VTC's view, or null when it cannot be asked. */
  snapshot(vtc: string): Promise<VtcSnapshot | null>;
  vtsIn(): Promise<VtsName[]>;
  command(via: string | undefined, cmd: OperatorCommand): Promise<KeySummary>;
  write(via: string | undefined, volser: string, data: Uint8Array, copyMode?: CopyMode): Promise<CloseResult>;
  /**
   * A host write kept in flight: mounts, writes the first half of `data`, holds the mount
   * `holdMs`, writes the rest and closes. `mounted` resolves once the mount is active (or
   * rejects with the mount's error); `done` with the close. Absent where the runner cannot
   * hold a mount open (separate processes).
   */
  writeHeld?(via: string | undefined, volser: string, data: Uint8Array, holdMs: number, copyMode?: CopyMode): { mounted: Promise<void>; done: Promise<CloseResult> };
  read(via: string | undefined, volser: string): Promise<{ data: Uint8Array; vts: string }>;
  /** Running VTCs `vtc` is not cut off from. */
  reachable(vtc: string): string[];
  crashVts(x: VtsName): Promise<void>;
  restartVts(x: VtsName): Promise<void>;
  crashVtc(name: string): Promise<void>;
  restartVtc(name: string): Promise<void>;
  partition(groups: string[][]): Promise<void>;
  heal(): Promise<void>;
  setLoss(p: number): Promise<void>;
  pauseCopies(p: boolean): Promise<void>;
  /** In-process systems only: VTC-to-VTS link cuts (cleared by `heal`) and backup images of a VTS's disks. */
  readonly vtsFaults?: {
    cutVtsLinks(vtcs: readonly string[], x: VtsName): void;
    imageVts(x: VtsName): void;
    /** Throws when the VTS is running or no image was taken. */
    restoreVts(x: VtsName): void;
  };
  stop(): Promise<void>;
}

const groupCut = (names: readonly string[], groups: string[][] | null, self: string): string[] => {
  if (groups === null) return [];
  const g = (v: string): number => groups.findIndex((x) => x.includes(v));
  return names.filter((v) => v !== self && g(v) !== g(self));
};

/** The whole system in this process. */
export class LocalSystem implements ScenarioSystem {
  readonly c: LocalCluster;
  constructor(c: LocalCluster) {
    this.c = c;
  }
  get names(): readonly string[] {
    return this.c.names;
  }
  get events(): ClusterEvent[] {
    return this.c.events;
  }
  get t0(): number {
    return this.c.t0;
  }
  note(text: string): void {
    this.c.note(text);
  }
  running(): string[] {
    return this.c.alive().map((a) => a.self);
  }
  snapshot(vtc: string): Promise<VtcSnapshot | null> {
    const a = this.c.agents.get(vtc);
    if (a === undefined || a.stopped) return Promise.resolve(null);
    const st = a.status();
    return Promise.resolve({ ptp: st.ptp, keySeq: st.keySeq, current: a.engine.newestKey().current, threshold: st.threshold, elections: a.elections() });
  }
  vtsIn(): Promise<VtsName[]> {
    return Promise.resolve(VTS_NAMES.filter((x) => this.c.vts[x].unit?.inOperation === true));
  }
  async command(via: string | undefined, cmd: OperatorCommand): Promise<KeySummary> {
    return summarizeKey(await this.c.agent(via).command(cmd, 30_000));
  }
  write(via: string | undefined, volser: string, data: Uint8Array, copyMode?: CopyMode): Promise<CloseResult> {
    return this.c.agent(via).writeVolume(volser, data, copyMode === undefined ? {} : { copyMode });
  }
  read(via: string | undefined, volser: string): Promise<{ data: Uint8Array; vts: string }> {
    return this.c.agent(via).readVolume(volser);
  }
  writeHeld(via: string | undefined, volser: string, data: Uint8Array, holdMs: number, copyMode?: CopyMode): { mounted: Promise<void>; done: Promise<CloseResult> } {
    const a = this.c.agent(via);
    const half = Math.floor(data.length / 2);
    const mount = a.mount(volser, { scratch: true, writable: true, ...(copyMode === undefined ? {} : { copyMode }) });
    const mounted = mount.then(async (h) => {
      await a.write(h, data.subarray(0, half));
    });
    const done = mount.then(async (h) => {
      await mounted;
      await new Promise((r) => setTimeout(r, holdMs));
      await a.write(h, data.subarray(half));
      return a.close(h);
    });
    // Whoever awaits only one of the two must not leave the other's rejection unhandled.
    mounted.catch(() => undefined);
    done.catch(() => undefined);
    return { mounted, done };
  }
  reachable(vtc: string): string[] {
    const a = this.c.agents.get(vtc);
    return this.running().filter((v) => !(a?.faults.cut.has(v) ?? false));
  }
  crashVts(x: VtsName): Promise<void> {
    return this.c.crashVts(x);
  }
  restartVts(x: VtsName): Promise<void> {
    return this.c.restartVts(x);
  }
  crashVtc(name: string): Promise<void> {
    return this.c.crashVtc(name);
  }
  restartVtc(name: string): Promise<void> {
    return this.c.restartVtc(name);
  }
  partition(groups: string[][]): Promise<void> {
    this.c.partition(groups);
    return Promise.resolve();
  }
  heal(): Promise<void> {
    this.c.heal();
    for (const k of this.#vtsCuts) {
      const [v, x] = k.split('|') as [string, VtsName];
      this.c.agents.get(v)?.cutVts(x, false);
    }
    this.#vtsCuts.clear();
    return Promise.resolve();
  }
  setLoss(p: number): Promise<void> {
    this.c.setLoss(p);
    return Promise.resolve();
  }
  pauseCopies(p: boolean): Promise<void> {
    for (const a of this.c.alive()) a.copies.paused = p;
    return Promise.resolve();
  }
  readonly #vtsCuts = new Set<string>();
  readonly vtsFaults = {
    cutVtsLinks: (vtcs: readonly string[], x: VtsName): void => {
      for (const v of vtcs) {
        this.c.agent(v).cutVts(x, true);
        this.#vtsCuts.add(`${v}|${x}`);
      }
    },
    imageVts: (x: VtsName): void => cpSync(join(this.c.options.dir, `vts-${x}`), join(this.c.options.dir, `image-vts-${x}`), { recursive: true }),
    restoreVts: (x: VtsName): void => {
      if (this.c.vts[x].running) throw new Error(`VTS ${x} is running: its disks can be restored only while it is down`);
      const img = join(this.c.options.dir, `image-vts-${x}`);
      if (!existsSync(img)) throw new Error(`no backup image of VTS ${x} was taken (image-vts)`);
      rmSync(join(this.c.options.dir, `vts-${x}`), { recursive: true, force: true });
      cpSync(img, join(this.c.options.dir, `vts-${x}`), { recursive: true });
    },
  };
  stop(): Promise<void> {
    return this.c.stop();
  }
}

const parseStatus = (s: string): PtpStatus => {
  const single = /^online-single\(([AB])\)$/.exec(s);
  if (single !== null) return { kind: 'online-single', vts: single[1] as VtsName };
  const rs = /^resync\(([AB])->([AB])\)$/.exec(s);
  if (rs !== null) return { kind: 'resync', from: rs[1] as VtsName, to: rs[2] as VtsName };
  return s === 'online-both' ? { kind: 'online-both' } : { kind: 'offline' };
};

/** How long `stop` waits for its last status sample of the VTCs. */
const FINAL_SAMPLE_MS = 2000;

/**
 * One process per VTS and per VTC on 127.0.0.1, each `ptpvts vts|vtc` from a topology
 * written for the run. Crashes are SIGKILL; restarts spawn the same command again.
 * Partitions, loss and paused copies go over the control endpoints (faults allowed by
 * the environment of these processes only). The timeline is sampled every 100 ms.
 */
export class ProcessSystem implements ScenarioSystem {
  readonly names: string[];
  readonly events: ClusterEvent[] = [];
  readonly t0 = Date.now();
  readonly #topo: string;
  readonly #secret = 'scenario processes cluster secret';
  readonly #procs = new Map<string, ChildProcess>();
  readonly #controls = new Map<string, ControlClient>();
  readonly #vtsPorts: Record<VtsName, number> = { A: 0, B: 0 };
  #groups: string[][] | null = null;
  #loss = 0;
  #sampler: NodeJS.Timeout | null = null;
  readonly #last = new Map<string, { ptp: string; keys: Set<number>; ballots: Set<string> }>();

  private constructor(n: number, dir: string) {
    this.names = Array.from({ length: n }, (_, i) => `vtc${i + 1}`);
    this.#topo = join(dir, 'topology.yaml');
  }

  static async start(o: { n: number; dir: string; copyMode: CopyMode; timing?: Partial<Timing> }): Promise<ProcessSystem> {
    const s = new ProcessSystem(o.n, o.dir);
    mkdirSync(o.dir, { recursive: true });
    const ports = await freePorts(2 * o.n + 2);
    s.#vtsPorts.A = ports[2 * o.n]!;
    s.#vtsPorts.B = ports[2 * o.n + 1]!;
    const doc = {
      ptpId: 'ptp1',
      secret: s.#secret,
      copyMode: o.copyMode,
      timing: { ...FAST_TIMING, ...o.timing },
      vtcs: s.names.map((id, i) => ({ id, listen: `127.0.0.1:${ports[2 * i]}`, control: `127.0.0.1:${ports[2 * i + 1]}`, journalDir: `./${id}` })),
      vts: { A: { listen: `127.0.0.1:${s.#vtsPorts.A}`, cacheDir: './A/cache', stateDir: './A/state' }, B: { listen: `127.0.0.1:${s.#vtsPorts.B}`, cacheDir: './B/cache', stateDir: './B/state' } },
    };
    addKeys(doc, o.dir, join(o.dir, 'keys'));
    writeFileSync(s.#topo, stringify(doc));
    const operatorKey = loadOperatorKey(loadTopology(s.#topo));
    s.names.forEach((id, i) => s.#controls.set(id, new ControlClient(s.names, id, { host: '127.0.0.1', port: ports[2 * i + 1]! }, { secret: s.#secret, operatorKey }, 10_000)));
    try {
      await Promise.all(VTS_NAMES.map((x) => s.restartVts(x)));
      await Promise.all(s.names.map((v) => s.restartVtc(v)));
    } catch (e) {
      await s.stop();
      throw e;
    }
    s.#sampler = setInterval(() => void s.#sample(), 100);
    return s;
  }

  #spawn(key: string, args: string[], ready: RegExp): Promise<void> {
    const here = fileURLToPath(import.meta.url);
    const entry = join(resolve(here, '..'), here.endsWith('.ts') ? 'process-entry.ts' : 'process-entry.js');
    const loader = here.endsWith('.ts') ? ['--import', 'tsx'] : [];
    const p = spawn(process.execPath, [...NODE_FLAGS, ...loader, entry, ...args, '-t', this.#topo], {
      cwd: resolve(here, '../../..'),
      env: { ...process.env, PTPVTS_ALLOW_FAULTS: '1', PTPVTS_LOG_LEVEL: process.env.PTPVTS_LOG_LEVEL ?? 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#procs.set(key, p);
    return new Promise((res, rej) => {
      let buf = '';
      const t = setTimeout(() => rej(new Error(`${key} did not start within 60 s: ${buf}`)), 60_000);
      p.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        if (ready.test(buf)) {
          clearTimeout(t);
          res();
        }
      });
      p.stderr?.on('data', (d: Buffer) => (buf += d.toString()));
      p.once('exit', (code) => {
        clearTimeout(t);
        rej(new Error(`${key} exited (${code}) before it was ready: ${buf}`));
      });
    });
  }

  async #kill(key: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.#procs.get(key);
    this.#procs.delete(key);
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill(signal);
    });
  }

  note(text: string): void {
    this.events.push({ kind: 'step', t: Date.now() - this.t0, text });
  }

  async #sample(): Promise<void> {
    const t = Date.now() - this.t0;
    await Promise.all(
      this.running().map(async (v) => {
        const c = this.#controls.get(v);
        if (c === undefined) return;
        try {
          const st = await c.status();
          const last = this.#last.get(v) ?? { ptp: '', keys: new Set<number>(), ballots: new Set<string>() };
          this.#last.set(v, last);
          if (st.ptp !== last.ptp) {
            last.ptp = st.ptp;
            this.events.push({ kind: 'status', vtc: v, at: this.t0 + t, t, status: parseStatus(st.ptp), seq: st.keySeq });
          }
          for (const k of st.keys) if (!last.keys.has(k.seq)) {
            last.keys.add(k.seq);
            this.events.push({ kind: 'key', vtc: v, at: this.t0 + t, t, key: k });
          }
          const own = st.lastElection?.ballots.find((b) => b.voter === v);
          const e = st.lastElection;
          if (e !== null && own !== undefined) {
            const id = `${e.id.seq}:${e.id.vts}:${e.id.round}`;
            if (!last.ballots.has(id)) {
              last.ballots.add(id);
              this.events.push({ kind: 'ballot', vtc: v, at: this.t0 + t, t, ballot: { ptpId: 'ptp1', election: e.id, voter: v, keySeq: own.keySeq, choice: own.choice, why: own.why, mac: '' } });
            }
          }
        } catch {
          // A VTC down or slow: no sample.
        }
      }),
    );
  }

  running(): string[] {
    return this.names.filter((v) => this.#procs.has(v));
  }
  #via(via: string | undefined): ControlClient {
    const v = via ?? this.running()[0];
    const c = v === undefined ? undefined : this.#controls.get(v);
    if (c === undefined || v === undefined || !this.#procs.has(v)) throw new Error(via === undefined ? 'no VTC is running' : `VTC ${via} is not running`);
    return c;
  }
  async snapshot(vtc: string): Promise<VtcSnapshot | null> {
    const c = this.#controls.get(vtc);
    if (c === undefined || !this.#procs.has(vtc)) return null;
    try {
      const [st, elections] = await Promise.all([c.status(), c.elections()]);
      const newest = st.keys.at(-1);
      return { ptp: st.ptp, keySeq: st.keySeq, current: newest?.seq === st.keySeq ? newest.current : st.keySeq === 0 ? ['A', 'B'] : [], threshold: st.threshold, elections };
    } catch {
      return null;
    }
  }
  async vtsIn(): Promise<VtsName[]> {
    const out: VtsName[] = [];
    for (const x of VTS_NAMES) {
      if (!this.#procs.has(`vts-${x}`)) continue;
      const op = new RpcClient(OPERATOR, vtsParticipant(x), { host: '127.0.0.1', port: this.#vtsPorts[x] }, { names: participants(this.names), mac: new HmacSha256(this.#secret) }, 2000);
      try {
        if (((await op.call('view')).result as { inOperation: boolean }).inOperation) out.push(x);
      } catch {
        // Down: not in operation.
      } finally {
        op.close();
      }
    }
    return out;
  }
  command(via: string | undefined, cmd: OperatorCommand): Promise<KeySummary> {
    return this.#via(via).command(cmd, 30_000);
  }
  write(via: string | undefined, volser: string, data: Uint8Array, copyMode?: CopyMode): Promise<CloseResult> {
    return this.#via(via).writeVolume(volser, data, copyMode);
  }
  read(via: string | undefined, volser: string): Promise<{ data: Uint8Array; vts: string }> {
    return this.#via(via).readVolume(volser);
  }
  reachable(vtc: string): string[] {
    const cut = groupCut(this.names, this.#groups, vtc);
    return this.running().filter((v) => !cut.includes(v));
  }
  async crashVts(x: VtsName): Promise<void> {
    await this.#kill(`vts-${x}`);
    this.events.push({ kind: 'vts-host', t: Date.now() - this.t0, vts: x, up: false });
  }
  async restartVts(x: VtsName): Promise<void> {
    await this.#spawn(`vts-${x}`, ['vts', '--id', x], /is serving/);
    this.events.push({ kind: 'vts-host', t: Date.now() - this.t0, vts: x, up: true });
  }
  async crashVtc(name: string): Promise<void> {
    await this.#kill(name);
  }
  async restartVtc(name: string): Promise<void> {
    await this.#spawn(name, ['vtc', '--id', name], /is running/);
    await this.#applyFaults([name]);
  }
  async #applyFaults(only?: string[]): Promise<void> {
    await Promise.all(
      (only ?? this.running()).map((v) => this.#controls.get(v)?.faults({ cut: groupCut(this.names, this.#groups, v), loss: this.#loss }).catch(() => undefined)),
    );
  }
  partition(groups: string[][]): Promise<void> {
    this.#groups = groups;
    return this.#applyFaults();
  }
  heal(): Promise<void> {
    this.#groups = null;
    this.#loss = 0;
    return this.#applyFaults();
  }
  setLoss(p: number): Promise<void> {
    this.#loss = p;
    return this.#applyFaults();
  }
  async pauseCopies(p: boolean): Promise<void> {
    await Promise.all(this.running().map((v) => this.#controls.get(v)?.faults({ pauseCopies: p })));
  }
  async stop(): Promise<void> {
    if (this.#sampler !== null) clearInterval(this.#sampler);
    this.#sampler = null;
    // One last look at every VTC: a key or status that came after the last tick (a story of
    // a few hundred milliseconds on a loaded machine may see only one or two) is in the
    // timeline all the same. Bounded: a VTC that does not answer must not hold the stop.
    await Promise.race([this.#sample(), new Promise<void>((r) => setTimeout(r, FINAL_SAMPLE_MS).unref())]);
    for (const c of this.#controls.values()) c.close();
    await Promise.all([...this.#procs.keys()].map((k) => this.#kill(k, 'SIGTERM')));
  }
}
