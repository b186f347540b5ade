/**
 * `ptpvts sim serve [LIBRARY.yaml...] --portal HOST:PORT`: serves each library (the lab's,
 * `ptpvts-lab/library.yaml`, when none is named) over iSCSI, one target per library (the
 * changer at LUN 0, the drives behind it), so real initiators (open-iscsi, QEMU, another
 * ptpvts) can use it. Runs until SIGINT or SIGTERM, then stops the targets, saves each lab's
 * state and closes the libraries (their cartridge files).
 *
 * A served library is a lab: the server takes the lab's lock (`lab.lock`) for as long as it
 * runs and starts from its `state.json` (cartridges where the CLI left them, drive
 * positions, faults), and saves it back whenever initiators change it (checked every
 * second, and after every control request) and at the end. Other lab commands meanwhile
 * stop at once with an error naming the server: two processes must never open the same
 * cartridge files. While serving, the library is changed through its control socket
 * (`ptpvts sim ctl`, `sim.sock` beside `state.json`) or reached over iSCSI
 * (`--changer iscsi://...`).
 *
 * More front ends (a serial robot console, ...) join through {@link SimServeExtension}:
 * each adds its own options to the command and is started once the library exists.
 */
import { Option, type Command } from 'commander';
import { dirname, resolve } from 'node:path';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { formatIssue, loadLibraryConfig, type EmulatedLibrary, type LibraryConfig } from '../../firmware-sim/library/index.js';
import { defaultIqn, parsePortal, serveTarget, type IscsiTargetHandle, type IscsiTargetObserver } from '../../firmware-sim/front/iscsi-target/index.js';
import { opcodeName } from '../scsi/opcodes.js';
import { describeSense } from '../scsi/sense.js';
import { statusName } from '../scsi/status.js';
import { SimMetrics } from '../metrics/sim-metrics.js';
import { listenHttp, metricsRoute, type HttpEndpoint } from '../metrics/http.js';
import { ensureDefaultLab } from './default-lab.js';
import { cliLockOptions, openEmbeddedLab, type Lab, type LabLockOptions } from './lab.js';
import { hex, type Out } from './output.js';
import { UsageError } from './ops.js';
import { controlSocketPath, LibraryControl, listenControl, type ControlServer } from './sim-control.js';
/** Something started beside the iSCSI target that must be stopped before the library closes. */
export interface SimServeAttachment {
  /** One sentence for the startup message, e.g. `Robot console on /dev/pts/4.` */
  readonly description?: string;
  /** Stops it; errors are reported and do not keep the rest from stopping. */
  stop(): Promise<void>;
}

/**
 * A front end added to `sim serve` (for instance `--serial PATH` for the robot console).
 * `options` adds its command-line options; `start` runs after the library is built and
 * before the iSCSI target listens, and returns what to stop at shutdown (or undefined when
 * its options were not given). A rejection aborts the start: everything already started
 * is stopped and the command fails with that error.
 */
export interface SimServeExtension {
  options?(cmd: Command): void;
  start(ctx: { library: EmulatedLibrary; config: LibraryConfig; options: Readonly<Record<string, unknown>>; out: Out }): Promise<SimServeAttachment | undefined>;
}

export interface SimServeOptions {
  /** Library YAMLs, one target each; relative paths inside a YAML resolve against its directory. */
  readonly libraryPaths?: readonly string[];
  /** One library YAML (the same as `libraryPaths: [libraryPath]`). */
  readonly libraryPath?: string;
  /**
   * `host:port`, `[v6]:port` or `host` (port 3260) of the first library's target; the next
   * libraries listen on the following ports (port 0: each an ephemeral port).
   */
  readonly portal: string;
  /** One CHAP user every initiator must log in as. */
  readonly chap?: { readonly user: string; readonly secret: string };
  /** Overrides the YAML's `timeScale` (0: no mechanical delays). */
  readonly timeScale?: number;
  /** Share each lab's `state.json` and hold its lock (default true); false serves the YAML alone. */
  readonly persist?: boolean;
  /** How to take each lab's lock (wait, messages). */
  readonly lock?: LabLockOptions;
  /** Listen on each lab's control socket (default true when persisting). */
  readonly control?: boolean;
  /** Where logs go; default pino on stderr at `logLevel`. */
  readonly logger?: Logger;
  /** pino level when no logger is given: `--log-level`, else PTPVTS_LOG_LEVEL, else info. */
  readonly logLevel?: string;
  /** `host:port` of a Prometheus endpoint (`GET /metrics`). */
  readonly metrics?: string;
  /** How often to save the labs' state when initiators changed it (ms, default 1000). */
  readonly saveIntervalMs?: number;
  readonly extensions?: readonly SimServeExtension[];
  /** Parsed command-line options, handed to the extensions. */
  readonly cliOptions?: Readonly<Record<string, unknown>>;
  readonly out: Out;
}

/** One served library. */
export interface ServedLibrary {
  readonly configPath: string;
  readonly library: EmulatedLibrary;
  readonly target: IscsiTargetHandle;
  readonly control?: ControlServer;
}

/** A running `sim serve`. `stop()` is idempotent and never rejects; it reports problems on `out`. */
export interface SimServer {
  /** The first library (the only one, usually). */
  readonly library: EmulatedLibrary;
  readonly target: IscsiTargetHandle;
  readonly served: readonly ServedLibrary[];
  /** `http://host:port/metrics` when metrics are served. */
  readonly metricsUrl?: string;
  /** Resolves true when everything stopped cleanly (and every lab's state was saved). */
  stop(): Promise<boolean>;
}

export const LOG_LEVEL_ENV = 'PTPVTS_LOG_LEVEL';
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The pino level: `given` (`--log-level`), else PTPVTS_LOG_LEVEL, else info. Throws {@link UsageError} naming a bad one. */
export function logLevel(given: string | undefined, env: NodeJS.ProcessEnv = process.env): LevelWithSilent {
  const v = given ?? env[LOG_LEVEL_ENV];
  if (v === undefined || v.trim() === '') return 'info';
  const l = v.trim().toLowerCase();
  if (!(LEVELS as readonly string[]).includes(l)) throw new UsageError(`${given === undefined ? LOG_LEVEL_ENV : '--log-level'} must be one of ${LEVELS.join(', ')} (got "${v}")`);
  return l as LevelWithSilent;
}

/**
 * The target's observer for one library: logins and logouts at info, refused logins at
 * warn, commands answered HARDWARE ERROR at error, and at trace every command with its
 * opcode, status, sense and initiator. Commands are only looked at when metrics are kept
 * or one of those levels is on, so the command path stays as it was otherwise.
 */
function observerFor(log: Logger, metrics: ReturnType<SimMetrics['forLibrary']> | undefined): IscsiTargetObserver {
  const trace = log.isLevelEnabled('trace');
  const errors = log.isLevelEnabled('error');
  const observer: IscsiTargetObserver = {
    sessionStarted: (s) => {
      metrics?.session(1);
      log.info({ initiator: s.initiator, isid: s.isid, tsih: s.tsih, peer: s.peer, discovery: s.discovery }, s.discovery ? 'discovery session logged in' : 'initiator logged in');
    },
    sessionEnded: (s, reason) => log.info({ initiator: s.initiator, isid: s.isid, tsih: s.tsih, peer: s.peer, reason }, s.discovery ? 'discovery session ended' : 'initiator logged out'),
    loginFailed: (s, status) => log.warn({ initiator: s.initiator || undefined, peer: s.peer, status: `0x${status.toString(16).padStart(4, '0')}` }, 'login refused'),
  };
  if (!trace && !errors && !metrics) return observer;
  return {
    ...observer,
    commandDone: (initiator, unit, cdb, status, sense, bytesIn, bytesOut, seconds) => {
      const op = cdb[0] ?? 0;
      const deviceType = unit?.deviceType ?? 0x1f;
      if (metrics) metrics.command(deviceType, op, status, bytesIn, bytesOut, seconds);
      if (trace) {
        log.trace(
          {
            initiator,
            lu: unit?.name ?? 'no such LUN',
            opcode: opcodeName(deviceType, op),
            cdb: Buffer.from(cdb).toString('hex'),
            status: statusName(status),
            ...(sense ? { sense: describeSense(sense) } : {}),
            bytesIn,
            bytesOut,
            ms: Math.round(seconds * 1e6) / 1e3,
          },
          'command',
        );
      } else if (errors && sense && sense.key === 0x04) {
        log.error({ initiator, lu: unit?.name, opcode: opcodeName(deviceType, op), sense: describeSense(sense) }, 'command failed with HARDWARE ERROR');
      }
    },
  };
}

function portalWithPort(portal: string, index: number): string {
  const { host, port } = parsePortal(portal);
  const p = port === 0 ? 0 : port + index;
  if (p > 65535) throw new UsageError(`--portal ${portal}: library ${index + 1} would need port ${p}`);
  return `${host.includes(':') ? `[${host}]` : host}:${p}`;
}

/** Checks the libraries can be served side by side: distinct directories (each lab has one state.json and lock) and names (the IQN). */
function checkDistinct(paths: readonly string[], configs: readonly LibraryConfig[]): void {
  const dirs = new Map<string, string>();
  const iqns = new Map<string, string>();
  for (const [i, p] of paths.entries()) {
    const dir = dirname(p);
    const other = dirs.get(dir);
    if (other) throw new UsageError(`${other} and ${p} are in the same directory, so they would share one state.json and lab lock: put each library in a directory of its own`);
    dirs.set(dir, p);
    const iqn = defaultIqn(configs[i]!.name);
    const same = iqns.get(iqn);
    if (same) throw new UsageError(`${same} and ${p} would both be served as ${iqn}: give the libraries different names`);
    iqns.set(iqn, p);
  }
}

/**
 * Builds the libraries and starts serving them. Rejects with the configuration error, the
 * lab's lock or state error, the listen error (EADDRINUSE, ...) or an extension's error,
 * after closing what it opened.
 */
export async function startSimServe(o: SimServeOptions): Promise<SimServer> {
  const paths = (o.libraryPaths ?? (o.libraryPath === undefined ? [] : [o.libraryPath])).map((p) => resolve(p));
  if (paths.length === 0) throw new UsageError('no library to serve');
  const persist = o.persist ?? true;
  const log = o.logger ?? pino({ level: logLevel(o.logLevel), base: { component: 'sim-serve' } }, pino.destination(2));
  const configs = paths.map((path) => loadLibraryConfig({ path }));
  checkDistinct(paths, configs);
  for (const c of configs) for (const w of c.warnings) o.out.line(`Note: ${formatIssue(w)}.`);
  const metrics = o.metrics === undefined ? undefined : new SimMetrics({ processMetrics: true });
  const labs: { path: string; lab: Lab }[] = [];
  const served: ServedLibrary[] = [];
  const attachments: SimServeAttachment[] = [];
  let http: HttpEndpoint | undefined;
  let saver: NodeJS.Timeout | undefined;
  const stopAll = async (): Promise<boolean> => {
    let clean = true;
    const attempt = async (what: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        clean = false;
        o.out.error(`Stopping ${what} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    if (saver) clearInterval(saver);
    if (http) {
      const h = http;
      await attempt('the metrics endpoint', () => h.close());
    }
    for (const s of served) {
      if (s.control) await attempt(`the control socket ${s.control.path}`, () => s.control!.close());
      await attempt(`the iSCSI target ${s.target.iqn}`, () => s.target.stop());
    }
    for (const a of attachments.reverse()) await attempt(a.description ?? 'an attachment', () => a.stop());
    // Saves state.json, closes the cartridge files and gives the lab's lock back.
    for (const { path, lab } of labs) await attempt(`the library ${path}`, () => lab.close());
    return clean;
  };
  try {
    for (const [i, path] of paths.entries()) {
      const lab = await openEmbeddedLab(path, {
        persist,
        ...(o.timeScale === undefined ? {} : { timeScale: o.timeScale }),
        lock: { ...o.lock, serving: `ptpvts sim serve, pid ${process.pid}, control socket ${controlSocketPath(path)}` },
      });
      labs.push({ path, lab });
      const emulated = lab.emulated!;
      const { library } = emulated;
      if (i === 0) {
        for (const ext of o.extensions ?? []) {
          const a = await ext.start({ library, config: emulated.config, options: o.cliOptions ?? {}, out: o.out });
          if (a) attachments.push(a);
        }
      }
      const libLog = log.child({ library: library.name });
      // Read at scrape time only, once the target below exists.
      const sessions = (): number => target.connectionCount();
      const m = metrics?.forLibrary({
        library: library.name,
        sessions,
        driveStates: function* () {
          const f = emulated.state.faults;
          for (const [n, u] of emulated.drives.entries()) {
            const d = n + 1;
            yield [d, f.offlineDrives?.includes(d) ? 'offline' : f.hungDrives?.includes(d) ? 'hung' : u.drive.state] as const;
          }
        },
      });
      const target = await serveTarget(library, portalWithPort(o.portal, i), {
        ...(o.chap ? { chap: { users: { [o.chap.user]: o.chap.secret } } } : {}),
        observer: observerFor(libLog, m),
      });
      const t = target;
      let control: ControlServer | undefined;
      if (o.control ?? persist) {
        const c = new LibraryControl(
          {
            configPath: path,
            yaml: configs[i]!,
            library,
            drives: emulated.drives,
            state: emulated.state,
            save: () => void emulated.save(),
            target: () => ({ iqn: t.iqn, portal: `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`, sessions: t.connectionCount() }),
          },
          libLog,
        );
        control = await listenControl(controlSocketPath(path), c, libLog);
      }
      served.push({ configPath: path, library, target: t, ...(control ? { control } : {}) });
    }
    if (metrics && o.metrics !== undefined) http = await serveMetrics(o.metrics, metrics);
  } catch (e) {
    await stopAll();
    throw e;
  }
  if (persist) {
    let failing = false;
    saver = setInterval(() => {
      for (const { path, lab } of labs) {
        try {
          if (lab.emulated!.save()) log.debug({ file: path }, 'saved the lab state');
          failing = false;
        } catch (e) {
          // Said once per run of failures: a full disk would otherwise fill the log too.
          if (!failing) log.error({ file: path, err: e instanceof Error ? e.message : String(e) }, 'cannot save the lab state');
          failing = true;
        }
      }
    }, o.saveIntervalMs ?? 1000);
    saver.unref();
  }
  for (const [i, s] of served.entries()) describeServer(o.out, labs[i]!.lab.emulated!.config, s, o.chap?.user, i === 0 ? attachments : []);
  let metricsUrl: string | undefined;
  if (http) {
    metricsUrl = `${http.base}/metrics`;
    o.out.line(`Metrics for Prometheus at ${metricsUrl}.`);
  }
  o.out.line('Press Ctrl-C (or send SIGTERM) to stop.');
  log.info({ libraries: served.map((s) => ({ library: s.library.name, iqn: s.target.iqn, port: s.target.port })) }, 'serving');
  let stopping: Promise<boolean> | undefined;
  return {
    library: served[0]!.library,
    target: served[0]!.target,
    served,
    ...(metricsUrl ? { metricsUrl } : {}),
    stop: () => (stopping ??= stopAll()),
  };
}

/** `GET /metrics` on `address` (host:port). Rejects with the listen error. */
async function serveMetrics(address: string, metrics: SimMetrics): Promise<HttpEndpoint> {
  const { host, port } = parsePortal(address);
  return listenHttp({ host, port }, [metricsRoute(metrics.registry)], 'Metrics are at /metrics', 'the metrics (--metrics)');
}

function describeServer(out: Out, config: LibraryConfig, s: ServedLibrary, chapUser: string | undefined, attachments: readonly SimServeAttachment[]): void {
  const { library, target } = s;
  const p = config.personality;
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  out.line(`Serving library ${config.name} as iSCSI target ${target.iqn} on portal ${host}:${target.port}.`);
  out.line(chapUser ? `Initiators must log in with CHAP as ${chapUser}.` : 'Any initiator may log in (no CHAP).');
  out.line(`LUN 0 is the medium changer (${p.vendor} ${p.product}, serial ${config.serial}) with ${config.storage.length} storage slots, ${config.importExport.length} import/export slots and ${library.drives.length} drives.`);
  for (const d of library.drives) {
    out.line(`LUN ${d.lun} is tape drive ${d.lun} (${d.personality}, serial ${d.serial}) at element address ${hex(d.address)}.`);
  }
  if (s.control) out.line(`Control it with \`ptpvts sim ctl -l ${s.configPath} ...\` (socket ${s.control.path}).`);
  for (const a of attachments) if (a.description) out.line(a.description);
}

/**
 * Runs until SIGINT or SIGTERM, then stops. A second signal while stopping exits at once
 * with status 1. Resolves with the exit code: 0 after a clean stop.
 */
export async function serveUntilSignal(o: SimServeOptions): Promise<number> {
  const server = await startSimServe(o);
  return new Promise<number>((resolveExit) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (signalled) {
        o.out.error(`Second ${sig} while stopping: exiting at once.`);
        process.exit(1);
      }
      signalled = true;
      o.out.line(`Received ${sig}: stopping the target${server.served.length > 1 ? 's' : ''} and closing the librar${server.served.length > 1 ? 'ies' : 'y'}.`);
      void server.stop().then((clean) => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        o.out.line(clean ? 'Stopped.' : 'Stopped, with errors (see above).');
        resolveExit(clean ? 0 : 1);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

function timeScaleArg(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--time-scale must be a number of at least 0 (got "${v}")`);
  return n;
}

/**
 * Adds `ptpvts sim serve` (creating the `sim` command group if no other command made it).
 * `extensions` join the same command; see {@link SimServeExtension}.
 */
export function registerSimServe(program: Command, out: Out, extensions: readonly SimServeExtension[] = []): Command {
  const sim = program.commands.find((c) => c.name() === 'sim') ?? program.command('sim').description('run the emulator for outside initiators and tools');
  const cmd = sim
    .command('serve')
    .description('serve emulated libraries over iSCSI (one target each) until SIGINT or SIGTERM: ptpvts sim serve [library.yaml...] --portal 127.0.0.1:3260')
    .argument('[library...]', 'library YAMLs (docs/library-yaml.md); default the lab\'s, ptpvts-lab/library.yaml')
    .option('--portal <host:port>', 'address of the first library\'s target: host:port, [v6]:port, or host for port 3260; the next libraries take the next ports', '127.0.0.1:3260')
    .option('--chap-user <name>', 'require CHAP: the user name initiators log in with (needs --chap-secret)')
    .option('--chap-secret <secret>', 'the CHAP secret of --chap-user')
    .addOption(new Option('--time-scale <factor>', "override the YAML's timeScale (0: robot and drive act at once)").argParser(timeScaleArg))
    .option('--log-level <level>', `log level on stderr (JSON lines): ${LEVELS.join(', ')}; default ${LOG_LEVEL_ENV} or info (trace: every command)`)
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://host:port/metrics')
    .option('--lock-timeout <seconds>', 'seconds to wait while a lab command has the lab (default 30, or PTPVTS_LAB_LOCK_TIMEOUT)', lockSeconds);
  for (const ext of extensions) ext.options?.(cmd);
  cmd.action(async (libraryPaths: string[], opts: Record<string, unknown>) => {
    const user = opts['chapUser'] as string | undefined;
    const secret = opts['chapSecret'] as string | undefined;
    if ((user === undefined) !== (secret === undefined)) throw new UsageError('--chap-user and --chap-secret go together');
    const level = logLevel(opts['logLevel'] as string | undefined);
    if (opts['metrics'] !== undefined) parsePortal(opts['metrics'] as string);
    let paths = libraryPaths;
    if (paths.length === 0) {
      const made = ensureDefaultLab();
      if (made.created) out.note(`Made a default emulated library in ${made.path}.`);
      paths = [made.path];
    }
    const code = await serveUntilSignal({
      libraryPaths: paths,
      portal: opts['portal'] as string,
      ...(user !== undefined && secret !== undefined ? { chap: { user, secret } } : {}),
      ...(opts['timeScale'] === undefined ? {} : { timeScale: opts['timeScale'] as number }),
      logLevel: level,
      ...(opts['metrics'] === undefined ? {} : { metrics: opts['metrics'] as string }),
      lock: cliLockOptions(opts['lockTimeout'] as number | undefined, (l) => out.note(l)),
      extensions,
      cliOptions: opts,
      out,
    });
    if (code !== 0) process.exitCode = code;
  });
  return cmd;
}

function lockSeconds(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--lock-timeout must be a number of seconds >= 0 (got "${v}")`);
  return n;
}
