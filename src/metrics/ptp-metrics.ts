/**
 * Prometheus metrics of the PtP processes: `ptpvts vtc --metrics` (one VTC's view of the
 * system: PtP state, keys, elections and ballots, each VTS as the VTC sees it, the copy
 * backlog, refused frames and operator requests) and `ptpvts vts --metrics` (one VTS: in
 * operation or not, the key it last recorded, volumes and bytes, mounts, volumes it is
 * behind on, premigration, requests served and refused).
 *
 * Everything is read from the processes' public surface: the VTC agent's `event`s (keys,
 * ballots, status and VTS changes, counted as they happen) and its status and statistics,
 * and the VTS unit's and server's views, read at scrape time. Nothing here is on a hot path.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VTS_NAMES } from '../ptp/types.js';
import type { AgentEvent, VtcAgent } from '../vtc/agent.js';
import type { RpcServerStats } from '../vtc/rpc.js';
import type { VtsUnit } from '../vts/index.js';

/** Every PtP state the state gauge reports (1 for the one the system is in, 0 for the others). */
export const PTP_STATES = ['online-both', 'online-single', 'resync', 'offline'] as const;

/** The VTS that serve hosts in PtP state `s` (engine form). */
function serving(s: ReturnType<VtcAgent['engine']['status']>): readonly string[] {
  if (s.kind === 'online-both' || s.kind === 'resync') return VTS_NAMES;
  if (s.kind === 'online-single') return [s.vts];
  return [];
}

/** An RPC server's requests by result (none when it is not running). */
function requestResults(s: Pick<RpcServerStats, 'handled' | 'badRequests' | 'poisoned'> | null): [{ result: string }, number][] {
  if (s === null) return [];
  return [
    [{ result: 'handled' }, s.handled],
    [{ result: 'bad-request' }, s.badRequests],
    [{ result: 'poisoned' }, s.poisoned],
  ];
}

/**
 * A counter whose value is a running total kept elsewhere (a statistics object): set to it
 * at every scrape. `read` yields (labels, total) pairs; totals only grow.
 */
function mirroredCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Iterable<readonly [Partial<Record<L, string>>, number]>): Counter<L> {
  return new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.inc(labels, v);
    },
  });
}

/**
 * The registry of one `ptpvts vtc` process. Counters of events start at `attach`: keys,
 * ballots and status changes seen before it are not counted (the gauges still show the
 * state they left).
 */
export class VtcMetrics {
  readonly registry = new Registry();
  readonly #listeners: { agent: VtcAgent; on: (e: AgentEvent) => void }[] = [];

  constructor(o: { processMetrics?: boolean } = {}) {
    if (o.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'ptpvts_vtc_' });
  }

  /** Starts counting `agent`'s events and reading its state at every scrape. `detach` stops the counting. */
  attach(agent: VtcAgent, ptpId: string): void {
    const registers = [this.registry];
    const vtc = agent.self;
    new Gauge({ name: 'ptpvts_vtc_info', help: 'This VTC: 1, labelled with its PtP system and id', labelNames: ['ptp', 'vtc'], registers }).set({ ptp: ptpId, vtc }, 1);
    new Gauge({
      name: 'ptpvts_vtc_ptp_state',
      help: 'PtP system state as this VTC sees it: 1 for the state it is in, 0 for the others',
      labelNames: ['state'],
      registers,
      collect() {
        const k = agent.engine.status().kind;
        for (const s of PTP_STATES) this.set({ state: s }, s === k ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ptpvts_vtc_serving_hosts',
      help: 'Whether hosts are served through each VTS now (1) or not (0): the PtP state, not the VTS’s own',
      labelNames: ['vts'],
      registers,
      collect() {
        const through = serving(agent.engine.status());
        for (const x of VTS_NAMES) this.set({ vts: x }, through.includes(x) ? 1 : 0);
      },
    });
    new Gauge({ name: 'ptpvts_vtc_key_seq', help: 'Seq of the newest committed shutdown key this VTC holds', registers, collect: function () { this.set(agent.engine.newestKey().seq); } });
    new Gauge({ name: 'ptpvts_vtc_threshold', help: 'VTC agreement threshold T in force', registers, collect: function () { this.set(agent.engine.threshold()); } });
    new Gauge({ name: 'ptpvts_vtc_copy_backlog', help: 'Volume copies queued or running from one VTS to the other', registers, collect: function () { this.set(agent.copies.length); } });
    mirroredCounter(this.registry, 'ptpvts_vtc_copies_total', 'Background volume copies finished, by outcome', ['outcome'], () => [
      [{ outcome: 'copied' }, agent.copies.stats.copied],
      [{ outcome: 'failed' }, agent.copies.stats.failed],
    ]);
    const views = (): ReturnType<VtcAgent['status']>['vts'] => agent.status().vts;
    const perVts = (name: string, help: string, value: (v: NonNullable<ReturnType<typeof views>['A']>) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['vts'],
        registers,
        collect() {
          const vs = views();
          for (const x of VTS_NAMES) {
            const v = vs[x];
            // A VTS that does not answer has no value rather than a made-up one.
            if (v === null) this.remove({ vts: x });
            else this.set({ vts: x }, value(v));
          }
        },
      });
    };
    new Gauge({
      name: 'ptpvts_vtc_vts_reachable',
      help: 'Whether the VTS answered this VTC’s last status request (1) or not (0)',
      labelNames: ['vts'],
      registers,
      collect() {
        const vs = views();
        for (const x of VTS_NAMES) this.set({ vts: x }, vs[x] === null ? 0 : 1);
      },
    });
    perVts('ptpvts_vtc_vts_in_operation', 'The VTS’s own state as last seen: in operation (1) or out (0); absent while it does not answer', (v) => (v.inOperation ? 1 : 0));
    perVts('ptpvts_vtc_vts_last_key_seq', 'Seq of the newest key the VTS recorded, as last seen', (v) => v.lastKeySeq);
    perVts('ptpvts_vtc_vts_behind_volumes', 'Volumes the VTS is behind the other on (waiting for a copy), as last seen', (v) => v.behind.length);
    perVts('ptpvts_vtc_vts_mounts', 'Volumes mounted on the VTS, as last seen', (v) => v.mounts);

    const keys = new Counter({ name: 'ptpvts_vtc_keys_total', help: 'Shutdown keys this VTC took as its newest, by command', labelNames: ['command'], registers });
    const keyDelay = new Histogram({
      name: 'ptpvts_vtc_key_commit_seconds',
      help: 'From a key’s issue (by its coordinator) to this VTC taking it as its newest',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const lastKeyTime = new Gauge({ name: 'ptpvts_vtc_key_issued_timestamp_seconds', help: 'When the newest key this VTC took was issued (Unix time)', registers });
    const ballots = new Counter({ name: 'ptpvts_vtc_ballots_total', help: 'Election ballots this VTC cast or received, by voter and choice', labelNames: ['voter', 'choice'], registers });
    const elections = new Counter({ name: 'ptpvts_vtc_elections_total', help: 'Elections (key seq, VTS, round) this VTC saw a ballot of', registers });
    const statusChanges = new Counter({ name: 'ptpvts_vtc_ptp_state_changes_total', help: 'Changes of the PtP state (or of the key it rests on) this VTC made, by the state entered', labelNames: ['state'], registers });
    const vtsChanges = new Counter({ name: 'ptpvts_vtc_vts_state_changes_total', help: 'Times this VTC saw a VTS go into (state "in") or out of ("out") operation', labelNames: ['vts', 'state'], registers });
    for (const s of PTP_STATES) statusChanges.inc({ state: s }, 0);
    elections.inc(0);
    const seenElections = new Set<string>();
    const on = (e: AgentEvent): void => {
      switch (e.kind) {
        case 'key':
          keys.inc({ command: e.key.command });
          if (e.key.issuedAt > 0) {
            keyDelay.observe(Math.max(0, e.at - e.key.issuedAt) / 1000);
            lastKeyTime.set(e.key.issuedAt / 1000);
          }
          return;
        case 'ballot': {
          ballots.inc({ voter: e.ballot.voter, choice: e.ballot.choice });
          const id = `${e.ballot.election.seq}/${e.ballot.election.vts}/${e.ballot.election.round}`;
          if (!seenElections.has(id)) {
            seenElections.add(id);
            // The agent keeps the last 64 elections; so does this set, roughly.
            if (seenElections.size > 256) seenElections.delete(seenElections.values().next().value!);
            elections.inc();
          }
          return;
        }
        case 'status':
          statusChanges.inc({ state: e.status.kind });
          return;
        case 'vts':
          vtsChanges.inc({ vts: e.view.name, state: e.view.inOperation ? 'in' : 'out' });
          return;
      }
    };
    agent.on('event', on);
    this.#listeners.push({ agent, on });

    mirroredCounter(this.registry, 'ptpvts_vtc_peer_frames_total', 'Frames from other VTCs accepted, and refused by reason', ['result'], () => {
      const st = agent.frameStats();
      return [[{ result: 'accepted' }, st.accepted], ...Object.entries(st.rejected).map(([r, n]) => [{ result: r }, n] as const), [{ result: 'undecodable' }, st.undecodable]];
    });
    mirroredCounter(this.registry, 'ptpvts_vtc_peer_connections_total', 'Connections to other VTCs: dialled, failed or lost (dropped), and incoming ones cut for a bad frame length (poisoned)', ['event'], () => {
      const st = agent.transportStats();
      return [
        [{ event: 'dialled' }, st.connects],
        [{ event: 'dropped' }, st.dropped],
        [{ event: 'poisoned' }, st.poisoned],
      ];
    });
    new Gauge({ name: 'ptpvts_vtc_rejected_messages', help: 'Protocol messages the engine refused (bad signature, stale, malformed), since the start', registers, collect: function () { this.set(agent.engine.stats.rejected); } });
    mirroredCounter(this.registry, 'ptpvts_vtc_control_requests_total', 'Requests on the control endpoint: handled, or refused before the handler', ['result'], () => requestResults(agent.controlStats()));
    mirroredCounter(this.registry, 'ptpvts_vtc_operator_requests_total', 'Operator requests by signature check: accepted, unsigned, bad signature, stale, replayed', ['result'], () => {
      const c = agent.controlStats();
      if (c === null) return [];
      return Object.entries(c.operator).map(([r, n]) => [{ result: r }, n] as const);
    });
  }

  /** Stops counting events (the agent may live on). */
  detach(): void {
    for (const { agent, on } of this.#listeners.splice(0)) agent.off('event', on);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** What a VTS process shows: its unit (null while it is not running) and its server's request statistics. */
export interface VtsMetricsSource {
  readonly name: string;
  unit(): VtsUnit | null;
  serverStats(): RpcServerStats | null;
}

/** The registry of one `ptpvts vts` process; every value is read from `source` at scrape time. */
export class VtsMetrics {
  readonly registry = new Registry();

  constructor(source: VtsMetricsSource, o: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const u = (): VtsUnit | null => source.unit();
    new Gauge({ name: 'ptpvts_vts_info', help: 'This VTS: 1, labelled with its name', labelNames: ['vts'], registers }).set({ vts: source.name }, 1);
    new Gauge({ name: 'ptpvts_vts_up', help: 'Whether the VTS is open and serving (1) or not (0)', registers, collect: function () { this.set(u() === null ? 0 : 1); } });
    // Labelled with the VTS's name, so that while it is down the series are absent rather than 0.
    const vts = { vts: source.name };
    const ifUp = (name: string, help: string, value: (unit: VtsUnit) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['vts'],
        registers,
        collect() {
          const unit = u();
          if (unit === null) this.reset();
          else this.set(vts, value(unit));
        },
      });
    };
    ifUp('ptpvts_vts_in_operation', 'In operation (1) or out of operation (0)', (unit) => (unit.inOperation ? 1 : 0));
    ifUp('ptpvts_vts_last_key_seq', 'Seq of the newest shutdown key recorded here', (unit) => unit.lastKeySeq);
    ifUp('ptpvts_vts_refusing_mounts', 'Refusing new mounts (1) while a normal stop drains the active ones', (unit) => (unit.refusingMounts ? 1 : 0));
    ifUp('ptpvts_vts_mounts', 'Volumes mounted by hosts now', (unit) => unit.activeMounts().length);
    ifUp('ptpvts_vts_behind_volumes', 'Volumes this VTS is behind the other VTS on (the copy backlog towards it)', (unit) => unit.view().behind.length);
    // A count per label value while the VTS is up (none when `counts` gives null).
    const ifUpBy = (name: string, help: string, label: string, counts: (unit: VtsUnit) => Record<string, number> | null): void => {
      new Gauge({
        name,
        help,
        labelNames: ['vts', label],
        registers,
        collect() {
          const unit = u();
          this.reset();
          const n = unit === null ? null : counts(unit);
          if (n !== null) for (const [v, c] of Object.entries(n)) this.set({ ...vts, [label]: v }, c);
        },
      });
    };
    ifUpBy('ptpvts_vts_volumes', 'Volumes held, by where their data is: resident in the cache (and whether premigrated to tape), or on tape only', 'where', (unit) => {
      const n = { resident: 0, 'resident-premigrated': 0, 'tape-only': 0 };
      for (const v of unit.volumes()) n[v.resident ? (v.premigrated ? 'resident-premigrated' : 'resident') : 'tape-only']++;
      return n;
    });
    ifUp('ptpvts_vts_volume_bytes', 'Bytes of the volume files held (data and record headers, newest generation of each)', (unit) => unit.volumes().reduce((a, v) => a + v.bytes, 0));
    ifUpBy('ptpvts_vts_premigrations', 'Premigrations to tape: queued, running, failed (waiting for a retry)', 'state', (unit) => {
      if (unit.premigrator === undefined) return null;
      const p = unit.premigrationStatus();
      return { queued: p.queued.length, running: p.running.length, failed: p.failed.size };
    });
    // The server's statistics start again with each start of the VTS; the counters follow the running one.
    mirroredCounter(this.registry, 'ptpvts_vts_requests_total', 'Requests from VTCs and the operator: handled, or refused before the handler', ['result'], () => requestResults(source.serverStats()));
    mirroredCounter(this.registry, 'ptpvts_vts_frames_total', 'Request frames accepted, and refused by reason (bad MAC, replayed, stale, ...)', ['result'], () => {
      const s = source.serverStats();
      if (s === null) return [];
      return [[{ result: 'accepted' }, s.frames.accepted], ...Object.entries(s.frames.rejected).map(([r, n]) => [{ result: r }, n] as const)];
    });
    if (o.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'ptpvts_vts_' });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
