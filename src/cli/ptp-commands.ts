/**
 * The PtP commands of `ptpvts`: run a VTC or a VTS as its own process (or the whole system
 * in one), send operator commands to any VTC, show the status, and run scenarios.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { Option } from 'commander';
import type { Command } from 'commander';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { OperatorCommand } from '../ptp/engine.js';
import { checkThreshold, checkVts, defaultThreshold, minSafeThreshold } from '../ptp/rules.js';
import { VTS_NAMES } from '../ptp/types.js';
import type { VtsName } from '../ptp/types.js';
import { BUILTIN_SCENARIOS, builtinScenario } from '../scenario/builtins.js';
import { runScenario } from '../scenario/runner.js';
import { loadScenarioFile } from '../scenario/schema.js';
import { timelineSvg } from '../scenario/svg.js';
import { VtcAgent } from '../vtc/agent.js';
import type { KeySummary } from '../vtc/agent.js';
import { ControlClient } from '../vtc/control-client.js';
import { UnreachableError } from '../vtc/errors.js';
import { VtsHost } from '../vtc/vts-host.js';
import { listenHttp, metricsRoute, parseListenAddress, type HttpEndpoint, type ListenAddress } from '../metrics/http.js';
import { VtcMetrics, VtsMetrics } from '../metrics/ptp-metrics.js';
import { startStatusPage, type StatusPage } from './status-page.js';
import { serveVtcLibrary } from './virtual-library.js';
import type { VtsLibraryOptions } from '../vts/index.js';
import { lockDirectories } from './dir-lock.js';
import { openEmbeddedLab } from './lab.js';
import type { Lab } from './lab.js';
import { requireEmptyDirectory, UsageError } from './ops.js';
import type { Out } from './output.js';
import { tellScenario } from './ptp-demo.js';
import { describeKey, printStatus, statusJson } from './ptp-status.js';
import { printJson, scenarioRunView } from './read-views.js';
import { loadOperatorKey, loadTopology, loadVtcKeys, tlsFor, vtcOf } from './topology.js';
import type { Topology } from './topology.js';

const MODES = ['normal', 'expedite', 'immediate', 'forced'] as const;
const defaultTopology = (): string => process.env.PTPVTS_TOPOLOGY ?? 'topology.yaml';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const logLevelHelp = `log level on stderr: ${LOG_LEVELS.join(', ')} (default: $PTPVTS_LOG_LEVEL or info)`;

/** The processes' logger (JSON lines on stderr): `--log-level`, else PTPVTS_LOG_LEVEL, else info. A level pino does not know is refused by name. */
export function logger(level?: string, env: NodeJS.ProcessEnv = process.env): Logger {
  const from = level !== undefined ? '--log-level' : 'PTPVTS_LOG_LEVEL';
  const l = level ?? (env.PTPVTS_LOG_LEVEL === undefined || env.PTPVTS_LOG_LEVEL.trim() === '' ? 'info' : env.PTPVTS_LOG_LEVEL.trim());
  if (!(LOG_LEVELS as readonly string[]).includes(l)) throw new UsageError(`${from} must be one of ${LOG_LEVELS.join(', ')} (got "${l}")`);
  return pino({ level: l }, pino.destination(2));
}

// ------------------------------------------------------------------ processes

/** Starts the VTC `id` of a topology. The caller stops it. Rejects on a journal or bind error. */
export async function startVtc(t: Topology, id: string, log?: Logger): Promise<VtcAgent> {
  const me = vtcOf(t, id);
  // A topology cannot carry the audited override: a threshold below floor(n/2) is set at run
  // time (threshold set --force-below-half --reason), where it gets a key of its own.
  if (t.threshold !== undefined) checkThreshold(t.threshold, t.vtcs.length);
  const peers: Record<string, { host: string; port: number }> = {};
  for (const v of t.vtcs) if (v.id !== id) peers[v.id] = v.listen;
  const { keys, operatorKey } = loadVtcKeys(t, id);
  const tls = tlsFor(t, { vtc: id });
  // Before the journal is opened: a second process on it must not recover a live VTC's journal.
  const unlock = await lockDirectories([{ dir: me.journalDir, what: `VTC ${id}'s journal directory` }]);
  let agent: VtcAgent;
  try {
    agent = await VtcAgent.start({
      ptpId: t.ptpId,
      vtcs: t.vtcs.map((v) => v.id),
      self: id,
      secret: t.secret,
      keys,
      operatorKey,
      listen: me.listen,
      control: me.control,
      peers,
      vts: { A: t.vts.A.listen, B: t.vts.B.listen },
      journalDir: me.journalDir,
      timing: t.timing,
      copyMode: t.copyMode,
      ioSelection: t.ioSelection,
      ...(me.preferredVts === undefined ? {} : { preferredVts: me.preferredVts }),
      ...(log === undefined ? {} : { logger: log }),
      allowFaults: process.env.PTPVTS_ALLOW_FAULTS === '1',
      ...(tls === undefined ? {} : { tls }),
    });
  } catch (e) {
    unlock();
    throw e;
  }
  // The lock lives as long as the agent: whoever stops it (a signal, a test) gives the directory back.
  const stop = agent.stop.bind(agent);
  agent.stop = async () => {
    try {
      await stop();
    } finally {
      unlock();
    }
  };
  // The configured threshold is set once, by the first VTC, when the journal holds no key yet.
  if (t.threshold !== undefined && t.threshold !== defaultThreshold(t.vtcs.length) && t.vtcs[0]?.id === id && agent.engine.newestKey().seq === 0) {
    const want = t.threshold;
    void (async () => {
      while (!agent.stopped && agent.engine.threshold() !== want) {
        await new Promise((r) => setTimeout(r, 500));
        if (agent.stopped || agent.engine.status().kind !== 'online-both') continue;
        await agent.command({ command: 'threshold-set', threshold: want }, 10_000).catch(() => undefined);
      }
    })();
  }
  return agent;
}

/** Starts VTS `x` of a topology, with its emulated library when the topology names one. */
export async function startVts(t: Topology, x: VtsName, log?: Logger): Promise<{ host: VtsHost; lab: Lab | null; stop: () => Promise<void> }> {
  const v = t.vts[x];
  const tls = tlsFor(t, { vts: x });
  // Before anything is opened: a second process on these directories must not recover a live VTS's files.
  const unlock = await lockDirectories([
    { dir: v.stateDir, what: `VTS ${x}'s state directory` },
    { dir: v.cacheDir, what: `VTS ${x}'s cache directory` },
  ]);
  let lab: Lab | null = null;
  let library: VtsLibraryOptions | undefined;
  if (v.library !== undefined) {
    try {
      lab = await openEmbeddedLab(v.library.yaml, { timeScale: 0 });
    } catch (e) {
      unlock();
      throw e;
    }
    const c = v.library.cartridges;
    library = { changer: lab.changer, drives: lab.drives, cartridges: Array.isArray(c) ? c : (b: string) => b.startsWith((c as { prefix: string }).prefix) };
  }
  const host = new VtsHost({
    name: x,
    vtcs: t.vtcs.map((c) => c.id),
    secret: t.secret,
    listen: v.listen,
    cacheDir: v.cacheDir,
    stateDir: v.stateDir,
    ...(library === undefined ? {} : { library }),
    ...(log === undefined ? {} : { logger: log }),
    ...(tls === undefined ? {} : { tls }),
  });
  try {
    await host.start();
  } catch (e) {
    await lab?.close();
    unlock();
    throw e;
  }
  return {
    host,
    lab,
    async stop() {
      try {
        await host.stop();
        await lab?.close();
      } finally {
        unlock();
      }
    },
  };
}

/** Resolves when SIGINT or SIGTERM arrives. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

// ------------------------------------------------------------------ metrics and status page

function listenAddressArg(v: string, option: string): ListenAddress {
  try {
    return parseListenAddress(v, option);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

/** `--metrics` and `--http` of `ptpvts vtc`, checked before anything starts. */
export function vtcEndpoints(o: { metrics?: string; http?: string }): { metrics?: ListenAddress; http?: ListenAddress } {
  return {
    ...(o.metrics === undefined ? {} : { metrics: listenAddressArg(o.metrics, '--metrics') }),
    ...(o.http === undefined ? {} : { http: listenAddressArg(o.http, '--http') }),
  };
}

/** What a VTC process serves over HTTP beside the protocol. */
export interface VtcServices {
  readonly metrics?: VtcMetrics;
  readonly metricsUrl?: string;
  readonly page?: StatusPage;
  readonly pageUrl?: string;
  stop(): Promise<void>;
}

/**
 * Starts a VTC's metrics endpoint and status page (either or both; the same address serves
 * both when they are given the same). Rejects with a listen error after closing what it started.
 */
export async function startVtcServices(agent: VtcAgent, t: Topology, at: { metrics?: ListenAddress; http?: ListenAddress }, o: { processMetrics?: boolean; pollMs?: number } = {}): Promise<VtcServices> {
  const metrics = at.metrics === undefined ? undefined : new VtcMetrics({ processMetrics: o.processMetrics ?? true });
  metrics?.attach(agent, t.ptpId);
  const shared = at.metrics !== undefined && at.http !== undefined && at.metrics.host === at.http.host && at.metrics.port === at.http.port && at.http.port !== 0;
  let page: StatusPage | undefined;
  let metricsHttp: HttpEndpoint | undefined;
  try {
    if (at.http !== undefined) page = await startStatusPage({ agent, topology: t, address: at.http, ...(o.pollMs === undefined ? {} : { pollMs: o.pollMs }), ...(shared && metrics ? { routes: [metricsRoute(metrics.registry)] } : {}) });
    if (metrics && at.metrics !== undefined && !shared) metricsHttp = await listenHttp(at.metrics, [metricsRoute(metrics.registry)], 'Metrics are at /metrics', 'the metrics (--metrics)');
  } catch (e) {
    metrics?.detach();
    await page?.stop();
    throw e;
  }
  const metricsBase = shared ? page?.endpoint.base : metricsHttp?.base;
  return {
    ...(metrics === undefined ? {} : { metrics }),
    ...(metricsBase === undefined ? {} : { metricsUrl: `${metricsBase}/metrics` }),
    ...(page === undefined ? {} : { page, pageUrl: page.url }),
    async stop() {
      metrics?.detach();
      await page?.stop();
      await metricsHttp?.close();
    },
  };
}

/** Serves `GET /metrics` of a running VTS (its unit and server, as they are at each scrape). */
export async function serveVtsMetrics(host: VtsHost, at: ListenAddress, o: { processMetrics?: boolean } = {}): Promise<HttpEndpoint> {
  const m = new VtsMetrics({ name: host.options.name, unit: () => host.unit, serverStats: () => host.serverStats() }, { processMetrics: o.processMetrics ?? true });
  return listenHttp(at, [metricsRoute(m.registry)], 'Metrics are at /metrics', 'the metrics (--metrics)');
}

// ------------------------------------------------------------------ operator

interface OpOptions {
  topology?: string;
  vtc?: string;
  timeout: number;
}

function opOptions(cmd: Command): Command {
  return cmd
    .option('-t, --topology <file>', 'topology file (default: $PTPVTS_TOPOLOGY or topology.yaml)')
    .option('--vtc <id>', 'the VTC to send the command to (default: the first one that answers)')
    .addOption(new Option('--timeout <ms>', 'how long to wait for the command').default(30_000).argParser((v) => intArg('--timeout', v, 1)));
}

function intArg(name: string, v: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max} (got "${v}")`);
  return n;
}

/** Runs `fn` against the chosen VTC, or the first reachable one. Unreachable VTCs give one clear error. */
export async function withVtc<T>(o: OpOptions, fn: (c: ControlClient, t: Topology) => Promise<T>): Promise<T> {
  const t = loadTopology(o.topology ?? defaultTopology());
  const candidates = o.vtc === undefined ? t.vtcs : [vtcOf(t, o.vtc)];
  const operatorKey = loadOperatorKey(t);
  const tried: string[] = [];
  for (const v of candidates) {
    const c = new ControlClient(t.vtcs.map((x) => x.id), v.id, v.control, { secret: t.secret, operatorKey }, o.timeout + 5000);
    try {
      return await fn(c, t);
    } catch (e) {
      if (!(e instanceof UnreachableError)) throw e;
      tried.push(`${v.id} at ${v.control.host}:${v.control.port}`);
    } finally {
      c.close();
    }
  }
  throw new UsageError(candidates.length === 1 ? `VTC ${tried[0] ?? ''} cannot be reached: is it running (ptpvts vtc --id ${o.vtc ?? ''})?` : `no VTC of ${t.ptpId} can be reached (tried ${tried.join(', ')})`);
}

/** Sends one operator command; prints the key it produced. */
export async function sendCommand(out: Out, o: OpOptions, cmd: OperatorCommand): Promise<KeySummary> {
  return withVtc(o, async (c) => {
    const k = await c.command(cmd, o.timeout);
    out.line(`VTC ${c.vtc} coordinated the command; ${describeKey(k)}.`);
    return k;
  });
}

export { printStatus } from './ptp-status.js';

/** First portal `ptp run` gives a VTC's virtual library that the topology does not place: vtc1 3270, vtc2 3271, ... */
export const LIBRARY_BASE_PORT = 3270;

/**
 * Serves the virtual library of `agent` (docs/host-library.md) on the topology's portal for
 * it, or on 127.0.0.1:`LIBRARY_BASE_PORT` + its index when `fallback` is set; at least ten
 * scratch volumes in a new catalogue. Resolves null when neither gives a portal. The line
 * it prints names the portal and IQN hosts log in to.
 */
export async function serveLibraryOf(agent: VtcAgent, t: Topology, out: Out, log: Logger, fallback: boolean): Promise<(() => Promise<void>) | null> {
  const i = t.vtcs.findIndex((v) => v.id === agent.self);
  const at = t.vtcs[i]?.library ?? (fallback ? { host: '127.0.0.1', port: LIBRARY_BASE_PORT + i } : undefined);
  if (at === undefined) return null;
  const served = await serveVtcLibrary(agent, { catalogue: t.catalogue, listen: at, drives: 2, scratch: { prefix: 'V', count: 10 }, log });
  const p = served.library.portal;
  out.line(`VTC ${agent.self}'s virtual library: portal ${p.host}:${p.port}, target ${p.iqn} (changer LUN 0, drives LUN 1-${served.library.drives.length}).`);
  return served.stop;
}

// ------------------------------------------------------------------ registration

export function registerPtpCommands(program: Command, out: Out): void {
  program
    .command('vtc')
    .description('run one VTC of a topology until SIGINT or SIGTERM')
    .option('-t, --topology <file>', 'topology file', defaultTopology())
    .requiredOption('--id <id>', 'which VTC of the topology')
    .option('--log-level <level>', logLevelHelp)
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://host:port/metrics')
    .option('--http <host:port>', 'serve the web status page at http://host:port/ (VTCs, VTS, keys, elections, timeline; live)')
    .action(async (o: { topology: string; id: string; logLevel?: string; metrics?: string; http?: string }) => {
      const log = logger(o.logLevel);
      const endpoints = vtcEndpoints(o);
      const t = loadTopology(o.topology);
      const agent = await startVtc(t, o.id, log);
      let services: VtcServices;
      let library: (() => Promise<void>) | null = null;
      try {
        services = await startVtcServices(agent, t, endpoints);
        try {
          library = await serveLibraryOf(agent, t, out, log, false);
        } catch (e) {
          await services.stop();
          throw e;
        }
      } catch (e) {
        await agent.stop();
        throw e;
      }
      out.line(`VTC ${o.id} of ${t.ptpId} is running: peers on ${agent.options.listen.host}:${agent.listenPort}, operator commands on port ${agent.controlPort}. Stop it with Ctrl-C.`);
      if (services.pageUrl !== undefined) out.line(`Status page at ${services.pageUrl}.`);
      if (services.metricsUrl !== undefined) out.line(`Metrics for Prometheus at ${services.metricsUrl}.`);
      const sig = await untilSignal();
      await library?.();
      await services.stop();
      await agent.stop();
      out.line(`VTC ${o.id} stopped (${sig}).`);
    });

  const vts = program
    .command('vts')
    .description('run one VTS of a topology (--id A|B), or take a VTS out of or into operation (out, in)')
    .option('-t, --topology <file>', 'topology file (default: $PTPVTS_TOPOLOGY or topology.yaml)')
    .option('--id <vts>', 'which VTS to run: A or B')
    .option('--log-level <level>', logLevelHelp)
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://host:port/metrics')
    .action(async (o: { topology?: string; id?: string; logLevel?: string; metrics?: string }) => {
      if (o.id === undefined) throw new UsageError('give --id A or --id B to run a VTS, or use "ptpvts vts out A" / "ptpvts vts in A"');
      const x = checkVts(o.id);
      const log = logger(o.logLevel);
      const metricsAt = o.metrics === undefined ? undefined : listenAddressArg(o.metrics, '--metrics');
      const t = loadTopology(o.topology ?? defaultTopology());
      const v = await startVts(t, x, log);
      let metrics: HttpEndpoint | undefined;
      try {
        if (metricsAt !== undefined) metrics = await serveVtsMetrics(v.host, metricsAt);
      } catch (e) {
        await v.stop();
        throw e;
      }
      out.line(`VTS ${x} of ${t.ptpId} is serving on ${t.vts[x].listen.host}:${v.host.port}${v.lab === null ? '' : ` with ${v.lab.description}`}. Stop it with Ctrl-C.`);
      if (metrics !== undefined) out.line(`Metrics for Prometheus at ${metrics.base}/metrics.`);
      const sig = await untilSignal();
      await metrics?.close();
      await v.stop();
      out.line(`VTS ${x} stopped (${sig}).`);
    });

  opOptions(vts.command('out'))
    .description('take a VTS out of operation (a shutdown key is made durable on the VTCs first)')
    .argument('<vts>', 'A or B')
    .addOption(new Option('--mode <mode>', 'command execution mode').choices(MODES).default('normal'))
    .action(async (name: string, o: OpOptions & { mode: (typeof MODES)[number] }) => {
      await sendCommand(out, { ...o, topology: o.topology ?? (vts.opts() as { topology?: string }).topology }, { command: 'vts-out', vts: checkVts(name), mode: o.mode });
    });

  opOptions(vts.command('in'))
    .description('put a VTS back in operation (alone, the PtP system goes on-line only after an election)')
    .argument('<vts>', 'A or B')
    .action(async (name: string, o: OpOptions) => {
      await sendCommand(out, { ...o, topology: o.topology ?? (vts.opts() as { topology?: string }).topology }, { command: 'vts-in', vts: checkVts(name) });
    });

  const ptp = program.command('ptp').description('the PtP system as a whole');
  opOptions(ptp.command('shutdown'))
    .description('take both VTS out of operation')
    .addOption(new Option('--mode <mode>', 'command execution mode').choices(MODES).default('normal'))
    .action(async (o: OpOptions & { mode: (typeof MODES)[number] }) => {
      await sendCommand(out, o, { command: 'ptp-shutdown', mode: o.mode });
    });
  opOptions(ptp.command('start'))
    .description('put both VTS in operation (on-line with both, no vote)')
    .action(async (o: OpOptions) => {
      await sendCommand(out, o, { command: 'ptp-start' });
    });
  opOptions(ptp.command('override'))
    .description('audited forced override: place one VTS on-line alone without an election')
    .argument('<vts>', 'A or B')
    .action(async (name: string, o: OpOptions) => {
      await sendCommand(out, o, { command: 'override', vts: checkVts(name) });
    });
  ptp
    .command('run')
    .description('run every VTC and both VTS of a topology in this process until SIGINT or SIGTERM')
    .option('-t, --topology <file>', 'topology file', defaultTopology())
    .option('--log-level <level>', logLevelHelp)
    .action(async (o: { topology: string; logLevel?: string }) => {
      const log = logger(o.logLevel);
      const t = loadTopology(o.topology);
      const hosts = [];
      const agents: VtcAgent[] = [];
      const libraries: (() => Promise<void>)[] = [];
      try {
        for (const x of VTS_NAMES) hosts.push(await startVts(t, x, log));
        for (const v of t.vtcs) agents.push(await startVtc(t, v.id, log));
        out.line(`PtP system ${t.ptpId} is running: VTS A and B, VTCs ${t.vtcs.map((v) => v.id).join(', ')}. Stop it with Ctrl-C.`);
        for (const a of agents) {
          const stop = await serveLibraryOf(a, t, out, log, true);
          if (stop !== null) libraries.push(stop);
        }
        out.line(`Volume catalogue: ${t.catalogue} (ptpvts volumes list -c ${t.catalogue}).`);
        await untilSignal();
      } finally {
        for (const l of libraries) await l().catch(() => undefined);
        for (const a of agents) await a.stop();
        for (const h of hosts) await h.stop();
      }
      out.line(`PtP system ${t.ptpId} stopped.`);
    });

  const threshold = program.command('threshold').description('the VTC agreement threshold');
  opOptions(threshold.command('set'))
    .description(
      'set the VTC agreement threshold T (floor(n/2) <= T < n VTCs); single-VTS on-line needs more than T YES. ' +
        'Below floor(n/2) only with --force-below-half; --mode forced goes ahead without more than T acknowledgements (the recovery when T = n - 1 and a VTC is lost). Both are audited overrides and need --reason.',
    )
    .argument('<T>')
    .option('--force-below-half', 'accept T below floor(n/2): two halves of a partition could then each commit a key (split brain)')
    .addOption(new Option('--mode <mode>', 'normal: more than the current T VTCs must hold the key; forced: goes ahead with the VTCs that answer').choices(['normal', 'forced']).default('normal'))
    .option('--reason <text>', "the operator's reason, recorded in the key (required with --force-below-half or --mode forced)")
    .action(async (v: string, o: OpOptions & { forceBelowHalf?: boolean; mode: 'normal' | 'forced'; reason?: string }) => {
      const t = loadTopology(o.topology ?? defaultTopology());
      const n = Number(v);
      const belowHalf = o.forceBelowHalf === true;
      checkThreshold(/^\d+$/.test(v.trim()) ? n : v, t.vtcs.length, { belowHalf });
      const override = o.mode === 'forced' || n < minSafeThreshold(t.vtcs.length);
      if (override && (o.reason === undefined || o.reason.trim() === '')) {
        throw new UsageError(`threshold set ${n}${belowHalf ? ' --force-below-half' : ''}${o.mode === 'forced' ? ' --mode forced' : ''} is an audited override: give --reason "why" (it is recorded in the key)`);
      }
      await sendCommand(out, o, { command: 'threshold-set', threshold: n, ...(o.mode === 'forced' ? { mode: 'forced' as const } : {}), ...(belowHalf ? { belowHalf } : {}), ...(override && o.reason !== undefined ? { note: o.reason.trim() } : {}) });
    });

  opOptions(program.command('status'))
    .description('VTS and PtP states, keys, and the last election with each ballot, as one VTC sees them')
    .option('--json', 'print JSON')
    .action(async (o: OpOptions & { json?: boolean }) => {
      await withVtc(o, async (c, t) => {
        const s = await c.status();
        const topologyArg = o.topology === undefined ? '' : `-t ${o.topology}`;
        if (o.json === true) printJson(out, statusJson(s, t.ptpId, t.vtcs.length, topologyArg));
        else printStatus(out, s, t.ptpId, t.vtcs.length, topologyArg);
      });
    });

  const scenario = program.command('scenario').description('recovery scenarios: timelines of events with expected outcomes');
  scenario
    .command('list')
    .description('list the built-in scenarios')
    .action(() => {
      for (const s of BUILTIN_SCENARIOS) out.line(`${s.name.padEnd(24)} ${s.title}${s.claims.length > 0 ? ` (claims ${s.claims.join(', ')})` : ''}`);
    });
  scenario
    .command('run')
    .description('run a scenario file or a built-in scenario in this process; writes an SVG timeline')
    .argument('<scenario>', 'a YAML file, or a built-in name (ptpvts scenario list)')
    .option('--svg <file>', 'where to write the timeline (default: <name>.svg)')
    .option('--keep <dir>', 'keep the VTC journals and VTS directories here (a new or empty directory)')
    .option('--processes', 'run each VTS and each VTC as its own process instead of all in this one')
    .option('--json', 'print the result as JSON (docs/json.md) instead of the story')
    .action(async (what: string, o: { svg?: string; keep?: string; processes?: boolean; json?: boolean }) => {
      // A run starts from what its directory holds: an earlier run's journals would change the outcome, and be written over.
      if (o.keep !== undefined) requireEmptyDirectory(o.keep, '--keep', "the run would start from the journals and VTS directories there and write over them");
      const s = existsSync(what) ? loadScenarioFile(what) : builtinScenario(what);
      if (s === undefined) throw new UsageError(`"${what}" is neither a scenario file nor a built-in scenario (${BUILTIN_SCENARIOS.map((b) => b.name).join(', ')})`);
      const r = await runScenario(s, { ...(o.keep === undefined ? {} : { dir: o.keep }), processes: o.processes === true });
      const svg = o.svg ?? `${s.name}.svg`;
      writeFileSync(svg, timelineSvg(r));
      if (o.json === true) printJson(out, scenarioRunView(r, svg));
      else {
        tellScenario(out, r);
        out.line(`The timeline is in ${svg}.`);
      }
      if (!r.passed) process.exitCode = 1;
    });
}
