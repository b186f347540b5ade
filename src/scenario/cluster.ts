/**
 * A whole PtP system in one process: two VTS hosts and n VTC agents on 127.0.0.1, each
 * with its own directories under one root, plus the faults scenarios need (VTS and VTC
 * crashes, partitions, message loss). Real TCP, real key journals, real VTS units: only
 * the process boundary is missing.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { Timing } from '../ptp/engine.js';
import { generateKeyring, vtcKeys } from '../ptp/mac.js';
import type { Keyring } from '../ptp/mac.js';
import { formatStatus, VTS_NAMES } from '../ptp/types.js';
import type { VtsName } from '../ptp/types.js';
import type { CopyMode } from '../ptp/volumes.js';
import type { VtsLibraryOptions } from '../vts/index.js';
import { VtcAgent } from '../vtc/agent.js';
import type { AgentEvent, IoSelection } from '../vtc/agent.js';
import { VtsHost } from '../vtc/vts-host.js';

/** Fast protocol timers for in-process runs (a scenario finishes in seconds). */
export const FAST_TIMING: Timing = {
  tick: 20,
  heartbeatTimeout: 1000,
  ackTimeout: 600,
  vtsOpTimeout: 5000,
  returnGrace: 150,
  electionTimeout: 500,
  pendingTimeout: 1200,
  helloInterval: 200,
  expediteTimeout: 300,
  stagger: 40,
};

export interface ClusterOptions {
  readonly n: number;
  readonly dir: string;
  readonly ptpId?: string;
  readonly secret?: string;
  readonly timing?: Partial<Timing>;
  readonly copyMode?: CopyMode;
  readonly ioSelection?: IoSelection;
  readonly library?: (x: VtsName) => Promise<VtsLibraryOptions | undefined>;
  readonly logger?: Logger;
  /** Give every VTC a control endpoint (operator commands over RPC) on an OS-chosen port. */
  readonly control?: boolean;
}

/** What happened, for the timeline: agent events plus the harness's own. */
export type ClusterEvent =
  | (AgentEvent & { readonly t: number })
  | { readonly kind: 'step'; readonly t: number; readonly text: string }
  | { readonly kind: 'vts-host'; readonly t: number; readonly vts: VtsName; readonly up: boolean };

export class LocalCluster {
  readonly names: string[];
  readonly agents = new Map<string, VtcAgent>();
  readonly ports = new Map<string, number>();
  readonly vts: Record<VtsName, VtsHost>;
  readonly events: ClusterEvent[] = [];
  readonly options: ClusterOptions;
  readonly timing: Timing;
  readonly secret: string;
  /** Fresh Ed25519 keys of every VTC and the operator (tests sign operator requests with `keyring.operator.privateKey`). */
  readonly keyring: Keyring;
  readonly t0 = Date.now();
  readonly log: Logger;
  #partition: string[][] | null = null;
  #loss = 0;

  private constructor(o: ClusterOptions) {
    this.options = o;
    this.names = Array.from({ length: o.n }, (_, i) => `vtc${i + 1}`);
    this.timing = { ...FAST_TIMING, ...o.timing };
    this.secret = o.secret ?? 'in-process cluster secret 0123456789';
    this.keyring = generateKeyring(this.names);
    this.log = o.logger ?? pino({ level: process.env.PTPVTS_LOG_LEVEL ?? 'silent' });
    this.vts = { A: this.#vtsHost('A'), B: this.#vtsHost('B') };
  }

  #vtsHost(x: VtsName, library?: VtsLibraryOptions): VtsHost {
    const d = join(this.options.dir, `vts-${x}`);
    return new VtsHost({
      name: x,
      vtcs: this.names,
      secret: this.secret,
      listen: { host: '127.0.0.1', port: 0 },
      cacheDir: join(d, 'cache'),
      stateDir: join(d, 'state'),
      logger: this.log,
      ...(library === undefined ? {} : { library }),
    });
  }

  static async start(o: ClusterOptions): Promise<LocalCluster> {
    const c = new LocalCluster(o);
    try {
      await mkdir(o.dir, { recursive: true });
      for (const x of VTS_NAMES) {
        const lib = await o.library?.(x);
        if (lib !== undefined) c.vts[x] = c.#vtsHost(x, lib);
        await c.vts[x].start();
      }
      for (const name of c.names) await c.#startAgent(name, 0);
      for (const a of c.agents.values()) for (const [p, port] of c.ports) if (p !== a.self) a.setPeer(p, { host: '127.0.0.1', port });
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  now(): number {
    return Date.now() - this.t0;
  }

  note(text: string): void {
    this.events.push({ kind: 'step', t: this.now(), text });
  }

  async #startAgent(name: string, port: number): Promise<VtcAgent> {
    const peers: Record<string, { host: string; port: number }> = {};
    for (const [p, pp] of this.ports) if (p !== name) peers[p] = { host: '127.0.0.1', port: pp };
    const a = await VtcAgent.start({
      ptpId: this.options.ptpId ?? 'ptp1',
      vtcs: this.names,
      self: name,
      secret: this.secret,
      keys: vtcKeys(this.keyring, name),
      operatorKey: this.keyring.operator.publicKey,
      listen: { host: '127.0.0.1', port },
      control: this.options.control === true ? { host: '127.0.0.1', port: 0 } : null,
      peers,
      vts: { A: { host: '127.0.0.1', port: this.vts.A.port }, B: { host: '127.0.0.1', port: this.vts.B.port } },
      journalDir: join(this.options.dir, name),
      timing: this.timing,
      copyMode: this.options.copyMode ?? 'immediate',
      ioSelection: this.options.ioSelection ?? 'preferred',
      logger: this.log,
    });
    a.on('event', (e: AgentEvent) => this.events.push({ ...e, t: e.at - this.t0 }));
    this.agents.set(name, a);
    this.ports.set(name, a.listenPort);
    this.#applyFaults();
    return a;
  }

  alive(): VtcAgent[] {
    return [...this.agents.values()].filter((a) => !a.stopped);
  }

  agent(name?: string): VtcAgent {
    const a = name === undefined ? this.alive()[0] : this.agents.get(name);
    if (a === undefined || a.stopped) throw new Error(name === undefined ? 'no VTC is running' : `VTC ${name} is not running`);
    return a;
  }

  async crashVtc(name: string): Promise<void> {
    await this.agent(name).stop();
  }

  async restartVtc(name: string): Promise<void> {
    const old = this.agents.get(name);
    if (old !== undefined && !old.stopped) throw new Error(`VTC ${name} is running`);
    await this.#startAgent(name, this.ports.get(name) ?? 0);
  }

  async crashVts(x: VtsName): Promise<void> {
    await this.vts[x].crash();
    this.events.push({ kind: 'vts-host', t: this.now(), vts: x, up: false });
  }

  async restartVts(x: VtsName): Promise<void> {
    await this.vts[x].start();
    this.events.push({ kind: 'vts-host', t: this.now(), vts: x, up: true });
  }

  /** Splits the VTCs into groups that cannot talk to each other (VTCs not named form one more group). */
  partition(groups: string[][]): void {
    this.#partition = groups;
    this.#applyFaults();
  }

  heal(): void {
    this.#partition = null;
    this.#loss = 0;
    this.#applyFaults();
  }

  setLoss(p: number): void {
    this.#loss = p;
    this.#applyFaults();
  }

  #applyFaults(): void {
    const groups = this.#partition;
    const groupOf = (v: string): number => (groups === null ? 0 : groups.findIndex((g) => g.includes(v)));
    for (const a of this.agents.values()) {
      a.faults.cut.clear();
      a.faults.loss = this.#loss;
      if (groups !== null) for (const v of this.names) if (v !== a.self && groupOf(v) !== groupOf(a.self)) a.faults.cut.add(v);
    }
  }

  /** PtP status as each running VTC sees it. */
  statuses(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const a of this.alive()) out[a.self] = formatStatus(a.engine.status());
    return out;
  }

  async waitFor(pred: () => boolean, timeoutMs: number, pollMs = 10): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (pred()) return true;
      await new Promise((r) => setTimeout(r, pollMs));
    }
    return pred();
  }

  async stop(): Promise<void> {
    for (const a of this.agents.values()) await a.stop();
    for (const x of VTS_NAMES) await this.vts[x].stop();
  }
}
