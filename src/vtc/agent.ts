/**
 * The VTC agent: drives one VtcEngine (src/ptp) with a real clock, the key journal as its
 * durable storage, the other VTCs over authenticated TCP frames, and both VTS over RPC.
 * Hosts are served by its {@link HostRouter} (host-router.ts: mount, write, read, close with
 * copies per copy mode), the operator and the other VTCs by its control endpoint
 * (control-endpoint.ts); this file is the engine's driver and the lifecycle.
 */
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { KeyJournal } from '../hotpath/key-journal.js';
import { KeyJournalCorruptError } from '../hotpath/journal-types.js';
import type { KeyJournalApi, KeyJournalOpenOptions } from '../hotpath/journal-types.js';
import { systemClock } from '../platform/clock.js';
import type { Clock, Timer } from '../platform/clock.js';
import type { PlatformNet, TlsSettings } from '../platform/net.js';
import { VoteTally } from '../hotpath/vote-tally.js';
import { TcpTransport } from '../net/tcp-transport.js';
import { SecureChannel } from '../net/transport.js';
import { DEFAULT_TIMING, VtcEngine } from '../ptp/engine.js';
import type { Effect, OperatorCommand, Timing } from '../ptp/engine.js';
import { PtpError } from '../ptp/errors.js';
import { HmacSha256 } from '../ptp/mac.js';
import type { RecordKeys } from '../ptp/mac.js';
import type { KeyObject } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { controlMethods } from './control-protocol.js';
import { formatStatus, VTS_NAMES } from '../ptp/types.js';
import type { ElectionId, PtpStatus, ShutdownKey, SignedBallot, VtsName } from '../ptp/types.js';
import type { CopyMode } from '../ptp/volumes.js';
import { CopyQueue } from './copier.js';
import { AgentStoppedError, BadRequestError, CommandInFlightError, VtcError, VtcErrorCode } from './errors.js';
import { FaultyTransport, noFaults } from './faults.js';
import type { LinkFaults } from './faults.js';
import { MAX_BODY, participants, RpcServer } from './rpc.js';
import type { RpcEnv, RpcSecurity } from './rpc.js';
import { VtsClient, vtsTlsNet } from './vts-client.js';
import type { RemoteView } from './vts-client.js';
import { RemoteVtsPort } from './vts-port.js';
import { controlHandler } from './control-endpoint.js';
import { fenceFor, HostRouter } from './host-router.js';
import type { CloseResult, HostHandle } from './host-router.js';

export type { CloseResult, HostHandle } from './host-router.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

export const IoSelection = { preferred: 'preferred', balanced: 'balanced' } as const;
export type IoSelection = (typeof IoSelection)[keyof typeof IoSelection];

export interface VtcAgentOptions {
  readonly ptpId: string;
  /** Every configured VTC, in the order shared by the whole PtP system. */
  readonly vtcs: readonly string[];
  readonly self: string;
  /** The cluster secret (at least 16 bytes): frame MACs only; it cannot sign a key, a commit or a ballot. */
  readonly secret: string | Uint8Array;
  /** This VTC's private key and every VTC's public key: it signs its keys, commits and ballots, and accepts only those its author signed. */
  readonly keys: RecordKeys;
  /** The operator's public key: every operator request on the control endpoint must carry its signature. */
  readonly operatorKey: KeyObject;
  /** Where this VTC listens for its peers (port 0: any). */
  readonly listen: Address;
  /** Where it listens for operator commands and host requests; null: no control endpoint. */
  readonly control: Address | null;
  /** Peer addresses; may be completed later with {@link VtcAgent.setPeer}. */
  readonly peers: Readonly<Record<string, Address>>;
  readonly vts: Readonly<Record<VtsName, Address>>;
  readonly journalDir: string;
  /**
   * What to do when the key journal has mid-log damage (acknowledged records unreadable):
   * 'refuse' (default) fails start with KeyJournalCorruptError naming the file and offset;
   * 'salvage' keeps every valid record, moves the damaged file aside, and starts: the lost
   * keys and commits come back from peers by anti-entropy (docs/key-journal.md).
   */
  readonly journalRepair?: 'refuse' | 'salvage';
  readonly timing?: Partial<Timing>;
  /** Copy mode of host writes that do not name one. Default immediate. */
  readonly copyMode?: CopyMode;
  /**
   * An immediate write from the beginning of a volume goes to both VTS as the host writes it
   * (default true). False copies it to the other VTS at close instead: the host's link then
   * carries each block once, at the price of the copy's time in the close.
   */
  readonly tee?: boolean;
  readonly ioSelection?: IoSelection;
  readonly preferredVts?: VtsName;
  /** JS vote tally instead of the native one (tests on machines without the addon). */
  readonly logger?: Logger;
  readonly rpcTimeoutMs?: number;
  /** Let the operator inject faults over the control endpoint (scenario runs against processes only). */
  readonly allowFaults?: boolean;
  /**
   * Where the agent gets its sockets, time, randomness and key journal. Production leaves it
   * out (node:net, the real clock, the native journal); the simulation (test/sim/prod) passes
   * its own so the same agent runs over a seeded network, clock and filesystem.
   */
  readonly platform?: AgentPlatform;
  /**
   * Reach both VTS over TLS (the topology's `tls` section): with the pre-shared key (sent
   * with this VTC's id as identity), or with this VTC's certificate, each VTS's checked to
   * name `vts-A`/`vts-B`. Absent: plain TCP. Not with `platform.net` (TLS runs on node:tls).
   */
  readonly tls?: TlsSettings;
}

/** The agent's environment; every field defaults to the production one. */
export interface AgentPlatform {
  readonly net?: PlatformNet;
  readonly clock?: Clock;
  /** Uniform in [0, 1). */
  readonly random?: () => number;
  /** This start's run id (default a random UUID). */
  readonly runId?: () => string;
  /** Opens the key journal at `path` (default the native {@link KeyJournal}). */
  readonly openJournal?: (path: string, options: KeyJournalOpenOptions) => Promise<KeyJournalApi>;
}

export interface BallotView {
  readonly voter: string;
  readonly choice: 'yes' | 'no';
  readonly keySeq: number;
  readonly why: string;
}

export interface ElectionView {
  readonly id: ElectionId;
  readonly ballots: readonly BallotView[];
}

export interface KeySummary {
  readonly seq: number;
  /** When the coordinator issued the key (ms since the epoch, its clock). */
  readonly issuedAt: number;
  readonly command: string;
  readonly subjects: readonly VtsName[];
  readonly mode: string;
  readonly reason: string;
  readonly status: { readonly A: string; readonly B: string };
  readonly current: readonly VtsName[];
  readonly state: string;
  readonly threshold: number;
  readonly acks: readonly string[];
  readonly copiesPending: readonly string[] | null;
  readonly originVtc: string;
  /** The election that placed a VTS on-line alone with this key, and who elected it. */
  readonly election: { readonly seq: number; readonly vts: VtsName; readonly round: number; readonly yes: readonly string[] } | null;
  /** The operator's reason, on a key that overrides a safety rule (reason `override`). */
  readonly note?: string;
}

export interface AgentStatus {
  readonly vtc: string;
  readonly ptp: string;
  readonly keySeq: number;
  readonly threshold: number;
  readonly vts: Readonly<Record<VtsName, RemoteView | null>>;
  readonly keys: readonly KeySummary[];
  readonly lastElection: ElectionView | null;
  readonly rejectedFrames: number;
  readonly rejectedMessages: number;
  readonly copyQueue: number;
  /** Peers or keys that do not fit this VTC's configuration (another VTC list, a threshold that does not follow). */
  readonly configWarnings?: readonly string[];
}

export const summarizeKey = (k: ShutdownKey): KeySummary => ({
  seq: k.seq,
  issuedAt: k.issuedAt,
  command: k.command,
  subjects: k.subjects,
  mode: k.mode,
  reason: k.reason,
  status: k.status,
  current: k.current,
  state: k.state.kind === 'online-single' ? `online-single(${k.state.vts})` : k.state.kind,
  threshold: k.threshold,
  acks: k.acks,
  copiesPending: k.copiesPending,
  originVtc: k.originVtc,
  election: k.election === null ? null : { seq: k.election.seq, vts: k.election.vts, round: k.election.round, yes: k.election.yes },
  ...(k.note === undefined ? {} : { note: k.note }),
});

/** Events for timelines and tests. */
export type AgentEvent =
  | { readonly kind: 'status'; readonly vtc: string; readonly at: number; readonly status: PtpStatus; readonly seq: number }
  | { readonly kind: 'ballot'; readonly vtc: string; readonly at: number; readonly ballot: SignedBallot }
  | { readonly kind: 'key'; readonly vtc: string; readonly at: number; readonly key: KeySummary }
  | { readonly kind: 'vts'; readonly vtc: string; readonly at: number; readonly view: RemoteView };

const idKey = (e: ElectionId): string => `${e.seq}:${e.vts}:${e.round}`;

/**
 * One VTC. Created by {@link VtcAgent.start}; stopped by {@link VtcAgent.stop}.
 *
 * Timeout: operator commands reject with a VtcError `EVTC_TIMEOUT` after `timeoutMs`
 * (the command may still complete: read the status). Host operations inherit the RPC
 * timeout towards the VTS. Cancel: nothing is cancellable once sent; `stop` fails pending
 * commands with EngineStoppedError. Error: commands reject with the core's PtpError
 * classes (invalid threshold, unknown VTS, conflict, no quorum, VTS unreachable); host
 * I/O rejects with PtpOfflineError, RemoteError (the VTS's code) or CopyError. A key
 * journal failure stops the agent (it must not vote on keys it could not keep).
 */
export class VtcAgent extends EventEmitter {
  readonly self: string;
  readonly options: VtcAgentOptions;
  readonly engine: VtcEngine;
  readonly faults: LinkFaults = noFaults();
  readonly log: Logger;
  readonly timing: Timing;
  readonly #journal: KeyJournalApi;
  readonly clock: Clock;
  readonly #tcp: TcpTransport;
  readonly #channel: SecureChannel;
  readonly #clients: Record<VtsName, VtsClient>;
  /** This process's run of the VTC, named to each VTS (vts-server.ts, mount ownership). */
  readonly runId: string;
  readonly #ports: Record<VtsName, RemoteVtsPort>;
  readonly copies: CopyQueue;
  #control: RpcServer | null = null;
  #tickTimer: Timer | null = null;
  #copyTimer: Timer | null = null;
  #stopped = false;
  readonly #pending = new Map<string, { resolve: (k: ShutdownKey) => void; reject: (e: Error) => void }>();
  #commandInFlight: string | null = null;
  #cmdSeq = 0;
  readonly #views: Record<VtsName, RemoteView | null> = { A: null, B: null };
  readonly #elections = new Map<string, { id: ElectionId; ballots: Map<string, BallotView> }>();
  #lastElection: string | null = null;
  #lastBallotOutcome: string | null = null;
  readonly #lastHeard = new Map<string, number>();
  #lastKeySeq = -1;
  /** A sweep of the host router's orphaned VTS mounts is running. */
  #sweeping = false;
  /** Hosts' mounts, writes, reads and closes. */
  readonly host: HostRouter;
  listenPort = 0;
  controlPort = 0;

  private constructor(o: VtcAgentOptions, journal: KeyJournalApi, log: Logger) {
    super();
    this.options = o;
    const clock = o.platform?.clock ?? systemClock;
    this.clock = clock;
    const env: RpcEnv = { clock, ...(o.platform?.net === undefined ? {} : { net: o.platform.net }), ...(o.platform?.random === undefined ? {} : { random: o.platform.random }) };
    this.self = o.self;
    this.log = log;
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
    this.#journal = journal;
    const mac = new HmacSha256(o.secret);
    this.engine = new VtcEngine({ ptpId: o.ptpId, vtcs: o.vtcs, self: o.self, timing: this.timing }, { keys: o.keys, tally: (opts) => new VoteTally(opts) });
    this.#tcp = new TcpTransport(Object.entries(o.peers).map(([name, a]) => ({ name, host: a.host, port: a.port })), undefined, o.platform?.net);
    this.#channel = new SecureChannel(new FaultyTransport(this.#tcp, this.faults, o.vtcs, o.platform?.random), { vtcs: o.vtcs, self: o.self, mac, freshnessMs: 30_000 }, () => clock.now());
    const sec: RpcSecurity = { names: participants(o.vtcs), mac };
    const t = o.rpcTimeoutMs ?? Math.max(2000, this.timing.vtsOpTimeout);
    // A new run id per start: each VTS abandons the mounts this VTC's earlier process left.
    this.runId = (o.platform?.runId ?? randomUUID)();
    const tls = o.tls;
    const vtsEnv = (x: VtsName): RpcEnv => (tls === undefined ? env : { ...env, net: vtsTlsNet(tls, o.self, x) });
    this.#clients = { A: new VtsClient(o.self, 'A', o.vts.A, sec, t, this.runId, vtsEnv('A')), B: new VtsClient(o.self, 'B', o.vts.B, sec, t, this.runId, vtsEnv('B')) };
    // Background copies carry this VTC's epoch when they start: one that missed a key is fenced.
    this.copies = new CopyQueue(this.#clients, log, 2, (to) => fenceFor(this.engine.writeContext(), to), clock);
    this.#ports = { A: new RemoteVtsPort('A', this.#clients, this.copies, log, this.timing.vtsOpTimeout, undefined, clock), B: new RemoteVtsPort('B', this.#clients, this.copies, log, this.timing.vtsOpTimeout, undefined, clock) };
    const clients = this.#clients;
    this.host = new HostRouter({ self: o.self, options: o, engine: this.engine, clients, copies: this.copies, timing: this.timing, view: (x) => this.#views[x], stopped: () => this.#stopped });
    if (o.control !== null) {
      this.#control = new RpcServer(o.self, { ...sec, operatorKey: o.operatorKey, methods: controlMethods(o.vtcs) }, controlHandler(this), env);
    }
  }

  /** Opens the key journal, restores the engine from it, starts listening and ticking. Rejects on a journal or bind error. */
  static async start(o: VtcAgentOptions): Promise<VtcAgent> {
    if (o.tls !== undefined && o.platform?.net !== undefined) throw new BadRequestError('tls and platform.net exclude each other: TLS runs over node:tls');
    const log = (o.logger ?? pino({ level: process.env.PTPVTS_LOG_LEVEL ?? 'warn' })).child({ component: 'vtc', vtc: o.self });
    const journalPath = join(o.journalDir, 'keys.journal');
    let journal: KeyJournalApi;
    try {
      // createDirectory: a new journal directory is made durable in its parent before any key is acknowledged.
      const jo: KeyJournalOpenOptions = { createDirectory: true, salvage: o.journalRepair === 'salvage' };
      journal = await (o.platform?.openJournal === undefined ? KeyJournal.open(journalPath, jo) : o.platform.openJournal(journalPath, jo));
    } catch (e) {
      if (e instanceof KeyJournalCorruptError) log.fatal({ err: e, path: journalPath, offset: e.offset, recordsAfter: e.recordsAfter }, 'key journal has mid-log damage: not starting (journalRepair "salvage" recovers from peers)');
      throw e;
    }
    const rec = journal.recovery;
    if (rec.salvage !== undefined) log.error({ path: journalPath, movedTo: rec.salvage.movedTo, damage: rec.salvage.damage, kept: rec.salvage.keptRecords }, 'key journal salvaged: lost records come back from peers');
    else if (rec.truncatedBytes > 0) log.warn({ path: journalPath, truncatedBytes: rec.truncatedBytes, records: rec.records }, 'key journal: cut a torn tail (appends never acknowledged)');
    const agent = new VtcAgent(o, journal, log);
    try {
      await agent.#begin();
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return agent;
  }

  async #begin(): Promise<void> {
    const records = this.#journal.records().map((b) => this.engine.signer.decodeRecord(b));
    this.engine.restore(records, this.clock.now());
    this.#channel.onDeliver((from, msg) => this.#deliver(from, msg));
    this.listenPort = await this.#tcp.listen(this.options.listen.host, this.options.listen.port);
    if (this.#control !== null && this.options.control !== null) this.controlPort = await this.#control.listen(this.options.control.host, this.options.control.port);
    this.#drain();
    this.#tickTimer = this.clock.setInterval(() => {
      if (this.#stopped) return;
      this.engine.tick(this.clock.now());
      this.#drain();
    }, this.timing.tick);
    this.#copyTimer = this.clock.setInterval(() => this.#resync(), Math.max(50, this.timing.tick * 4));
    this.log.info({ records: records.length, port: this.listenPort, control: this.controlPort }, 'VTC started');
  }

  setPeer(name: string, a: Address): void {
    this.#tcp.setPeer({ name, host: a.host, port: a.port });
  }

  setVtsAddress(x: VtsName, a: Address): void {
    this.#clients[x].rpc.setAddress(a);
  }

  /** Fault injection: the link from this VTC to VTS `x` fails as if cut. */
  cutVts(x: VtsName, cut: boolean): void {
    this.#clients[x].rpc.blocked = cut;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  // ------------------------------------------------------------------ engine plumbing

  #deliver(from: string, msg: unknown): void {
    if (this.#stopped) return;
    this.#lastHeard.set(from, this.clock.now());
    this.engine.receive(from, msg, this.clock.now());
    this.#drain();
  }

  #noteBallot(b: SignedBallot): void {
    const k = idKey(b.election);
    let e = this.#elections.get(k);
    if (e === undefined) {
      e = { id: b.election, ballots: new Map() };
      this.#elections.set(k, e);
      const last = this.#lastElection === null ? undefined : this.#elections.get(this.#lastElection);
      if (last === undefined || b.election.seq > last.id.seq || (b.election.seq === last.id.seq && b.election.round >= last.id.round)) this.#lastElection = k;
      if (this.#elections.size > 64) {
        const first = this.#elections.keys().next().value;
        if (first !== undefined && first !== this.#lastElection) this.#elections.delete(first);
      }
    }
    if (!e.ballots.has(b.voter)) {
      e.ballots.set(b.voter, { voter: b.voter, choice: b.choice, keySeq: b.keySeq, why: b.why });
      this.emit('event', { kind: 'ballot', vtc: this.self, at: this.clock.now(), ballot: b } satisfies AgentEvent);
    }
  }

  #drain(): void {
    if (this.#stopped) return;
    for (const e of this.engine.takeEffects()) this.#effect(e);
    const k = this.engine.newestKey();
    if (k.seq !== this.#lastKeySeq) {
      this.#lastKeySeq = k.seq;
      if (k.seq > 0) {
        this.log.info({ seq: k.seq, command: k.command, subjects: k.subjects, current: k.current, state: k.state }, 'newest key');
        this.emit('event', { kind: 'key', vtc: this.self, at: this.clock.now(), key: summarizeKey(k) } satisfies AgentEvent);
      }
    }
  }

  #effect(e: Effect): void {
    switch (e.kind) {
      case 'send':
        try {
          this.#channel.send(e.to, e.msg);
        } catch (err) {
          this.log.error({ err, to: e.to, t: e.msg.t }, 'message too large to send');
        }
        return;
      case 'append': {
        const bytes = this.engine.signer.encodeRecord(e.record);
        this.#journal.append(bytes).then(
          () => {
            if (this.#stopped) return;
            this.engine.appended(e.token, this.clock.now());
            this.#drain();
          },
          (err: unknown) => {
            this.log.fatal({ err }, 'key journal append failed: stopping this VTC');
            this.emit('fatal', err);
            void this.stop();
          },
        );
        return;
      }
      case 'vts': {
        void this.#ports[e.vts].execute(e.op).then((r) => {
          if (this.#stopped) return;
          if (r.ok && e.op.op === 'status') this.#noteView(e.vts, r.view as RemoteView);
          else if (!r.ok && e.op.op === 'status') this.#views[e.vts] = null;
          this.engine.vtsResult(e.token, r, this.clock.now());
          this.#drain();
        });
        return;
      }
      case 'result': {
        const p = this.#pending.get(e.commandId);
        if (p === undefined) return;
        this.#pending.delete(e.commandId);
        if (e.result.ok) p.resolve(e.result.key);
        else p.reject(e.result.error);
        return;
      }
      case 'status':
        this.log.info({ status: formatStatus(e.status), seq: e.seq }, 'PtP status');
        this.emit('event', { kind: 'status', vtc: this.self, at: this.clock.now(), status: e.status, seq: e.seq } satisfies AgentEvent);
        return;
      case 'ballot': {
        // A stale VTS waiting alone is re-elected every electionTimeout: the log says each change of outcome once, the repeats only at debug.
        const outcome = `${e.ballot.election.seq}:${e.ballot.election.vts}:${e.ballot.choice}:${e.ballot.why}`;
        const repeat = outcome === this.#lastBallotOutcome;
        this.#lastBallotOutcome = outcome;
        this.log[repeat ? 'debug' : 'info']({ election: e.ballot.election, choice: e.ballot.choice, why: e.ballot.why }, repeat ? 'ballot cast (same outcome as the last round)' : 'ballot cast');
        this.#noteBallot(e.ballot);
        return;
      }
      case 'seen':
        // Other VTCs' ballots, as the engine authenticated them: on their own, on the
        // acknowledgements of a key holding its election in phase 1, and in its commit.
        for (const b of e.ballots) this.#noteBallot(b);
        return;
    }
  }

  #noteView(x: VtsName, v: RemoteView): void {
    const old = this.#views[x];
    this.#views[x] = v;
    if (old === null || old.inOperation !== v.inOperation) this.emit('event', { kind: 'vts', vtc: this.self, at: this.clock.now(), view: v } satisfies AgentEvent);
  }

  /** The VTC that copies in the background: the first configured VTC this one hears from (or itself). */
  #copyLeader(): boolean {
    const now = this.clock.now();
    for (const v of this.options.vtcs) {
      if (v === this.self) return true;
      if (now - (this.#lastHeard.get(v) ?? -Infinity) <= 3 * this.timing.helloInterval) return false;
    }
    return true;
  }

  #resync(): void {
    if (this.#stopped) return;
    if (this.host.orphans > 0 && !this.#sweeping) {
      this.#sweeping = true;
      void this.host.sweepOrphans().finally(() => (this.#sweeping = false));
    }
    if (this.copies.length > 0) return;
    const s = this.engine.status();
    if (s.kind !== 'online-both' && s.kind !== 'resync') return;
    const a = this.#views.A;
    const b = this.#views.B;
    if (a === null || b === null || !a.inOperation || !b.inOperation || !this.#copyLeader()) return;
    for (const v of b.behind) if (!a.behind.includes(v)) this.copies.enqueue(v, 'A', 'B');
    for (const v of a.behind) if (!b.behind.includes(v)) this.copies.enqueue(v, 'B', 'A');
  }

  // ------------------------------------------------------------------ operator

  /**
   * Runs an operator command with this VTC as coordinator. Resolves with the committed
   * key. One command at a time per VTC: another one rejects with CommandInFlightError.
   */
  command(cmd: OperatorCommand, timeoutMs = 60_000): Promise<ShutdownKey> {
    if (this.#stopped) return Promise.reject(new AgentStoppedError(this.self));
    if (this.#commandInFlight !== null) return Promise.reject(new CommandInFlightError(this.self, this.#commandInFlight));
    const id = `${this.self}-${++this.#cmdSeq}`;
    const what = cmd.command;
    this.#commandInFlight = what;
    this.log.info({ cmd }, 'operator command');
    const p = new Promise<ShutdownKey>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.#pending.delete(id);
        reject(new VtcError(VtcErrorCode.timeout, `${what} did not finish within ${timeoutMs} ms; it may still complete (check ptpvts status)`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (k) => {
          this.clock.clearTimeout(timer);
          resolve(k);
        },
        reject: (e) => {
          this.clock.clearTimeout(timer);
          reject(e);
        },
      });
    });
    this.engine.command(id, cmd, this.clock.now());
    this.#drain();
    return p.finally(() => {
      this.#commandInFlight = null;
    });
  }

  status(): AgentStatus {
    const e = this.#lastElection === null ? undefined : this.#elections.get(this.#lastElection);
    const k = this.engine.newestKey();
    const fr = this.#channel.stats.rejected;
    return {
      vtc: this.self,
      ptp: formatStatus(this.engine.status()),
      keySeq: k.seq,
      threshold: this.engine.threshold(),
      vts: { A: this.#views.A, B: this.#views.B },
      keys: this.engine.committedKeys().slice(-16).map(summarizeKey),
      lastElection: e === undefined ? null : { id: e.id, ballots: [...e.ballots.values()].sort((x, y) => this.options.vtcs.indexOf(x.voter) - this.options.vtcs.indexOf(y.voter)) },
      rejectedFrames: Object.values(fr).reduce((a, b) => a + b, 0) + this.#channel.stats.undecodable,
      rejectedMessages: this.engine.stats.rejected,
      copyQueue: this.copies.length,
      configWarnings: this.engine.configWarnings(),
    };
  }

  /** Elections this VTC saw (at most the last 64), oldest first, each with the ballots it received. */
  elections(): ElectionView[] {
    return [...this.#elections.values()]
      .map((e) => ({ id: e.id, ballots: [...e.ballots.values()] }))
      .sort((a, b) => a.id.seq - b.id.seq || a.id.round - b.id.round);
  }

  /** Frame statistics of the peer channel (accepted, rejected by reason). */
  frameStats(): SecureChannel['stats'] {
    return this.#channel.stats;
  }

  /** Connections dropped for a length field over the frame limit (oversized or malformed streams). */
  transportStats(): TcpTransport['stats'] {
    return this.#tcp.stats;
  }

  controlStats(): RpcServer['stats'] | null {
    return this.#control?.stats ?? null;
  }

  // ------------------------------------------------------------------ host I/O (src/vtc/host-router.ts)

  /** Mounts a volume for a host (see {@link HostRouter.mount}). */
  mount(volser: string, o: { scratch?: boolean; writable?: boolean; copyMode?: CopyMode } = {}): Promise<HostHandle> {
    return this.host.mount(volser, o);
  }
  write(h: HostHandle, data: Uint8Array): Promise<void> {
    return this.host.write(h, data);
  }
  writeFilemark(h: HostHandle): Promise<void> {
    return this.host.writeFilemark(h);
  }
  read(h: HostHandle, max = MAX_BODY): ReturnType<VtsClient['read']> {
    return this.host.read(h, max);
  }
  rewind(h: HostHandle): Promise<void> {
    return this.host.rewind(h);
  }
  /** Commits a host's write (the answer is the acknowledgement; see {@link HostRouter.close}). */
  close(h: HostHandle): Promise<CloseResult> {
    return this.host.close(h);
  }
  writeVolume(volser: string, data: Uint8Array, o: { copyMode?: CopyMode } = {}): Promise<CloseResult> {
    return this.host.writeVolume(volser, data, o);
  }
  /** Ends a mount without committing it (never throws). */
  abandon(h: HostHandle): Promise<void> {
    return this.host.abandon(h);
  }
  readVolume(volser: string): Promise<{ data: Uint8Array; vts: VtsName }> {
    return this.host.readVolume(volser);
  }

  // ------------------------------------------------------------------ lifecycle

  /** Stops everything this agent started. Pending commands fail with EngineStoppedError. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.engine.stop();
    for (const e of this.engine.takeEffects()) if (e.kind === 'result') this.#effect(e);
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.reject(new AgentStoppedError(this.self));
    }
    this.clock.clearInterval(this.#tickTimer);
    this.clock.clearInterval(this.#copyTimer);
    this.copies.stop();
    await this.#tcp.close();
    await this.#control?.close();
    for (const x of VTS_NAMES) this.#clients[x].disconnect();
    await this.#journal.close().catch(() => undefined);
    this.log.info('VTC stopped');
  }
}

export { PtpError };
