/**
 * `ptpvts sim serve LIBRARY.yaml --portal HOST:PORT`: builds the emulated library from its
 * YAML and exports every LUN (the changer at LUN 0, the drives behind it) over iSCSI, so
 * real initiators (open-iscsi, QEMU, another ptpvts) can use it. Runs until SIGINT or
 * SIGTERM, then stops the target, closes the library (its cartridge files) and returns.
 *
 * More front ends (a serial robot console, ...) join through {@link SimServeExtension}:
 * each adds its own options to the command and is started once the library exists.
 */
import { Option, type Command } from 'commander';
import { resolve } from 'node:path';
import { createLibrary, formatIssue, loadLibraryConfig, type EmulatedLibrary, type LibraryConfig } from '../../firmware-sim/library/index.js';
import { serveTarget, type IscsiTargetHandle } from '../../firmware-sim/front/iscsi-target/index.js';
import { hex, type Out } from './output.js';
import { UsageError } from './ops.js';

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
  /** Path of the library YAML; relative paths inside it resolve against its directory. */
  readonly libraryPath: string;
  /** `host:port`, `[v6]:port` or `host` (port 3260). */
  readonly portal: string;
  /** One CHAP user every initiator must log in as. */
  readonly chap?: { readonly user: string; readonly secret: string };
  /** Overrides the YAML's `timeScale` (0: no mechanical delays). */
  readonly timeScale?: number;
  readonly extensions?: readonly SimServeExtension[];
  /** Parsed command-line options, handed to the extensions. */
  readonly cliOptions?: Readonly<Record<string, unknown>>;
  readonly out: Out;
}

/** A running `sim serve`. `stop()` is idempotent and never rejects; it reports problems on `out`. */
export interface SimServer {
  readonly library: EmulatedLibrary;
  readonly target: IscsiTargetHandle;
  /** Resolves true when everything stopped cleanly. */
  stop(): Promise<boolean>;
}

/**
 * Builds the library and starts serving it. Rejects with the configuration error, the
 * listen error (EADDRINUSE, ...) or an extension's error, after closing what it opened.
 */
export async function startSimServe(o: SimServeOptions): Promise<SimServer> {
  const config = loadLibraryConfig({ path: resolve(o.libraryPath) });
  for (const w of config.warnings) o.out.line(`Note: ${formatIssue(w)}.`);
  const library = await createLibrary(config, o.timeScale === undefined ? {} : { timeScale: o.timeScale });
  const attachments: SimServeAttachment[] = [];
  let target: IscsiTargetHandle | undefined;
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
    if (target) await attempt('the iSCSI target', () => target!.stop());
    for (const a of attachments.reverse()) await attempt(a.description ?? 'an attachment', () => a.stop());
    await attempt('the library', () => library.close());
    return clean;
  };
  try {
    for (const ext of o.extensions ?? []) {
      const a = await ext.start({ library, config, options: o.cliOptions ?? {}, out: o.out });
      if (a) attachments.push(a);
    }
    target = await serveTarget(library, o.portal, o.chap ? { chap: { users: { [o.chap.user]: o.chap.secret } } } : {});
  } catch (e) {
    await stopAll();
    throw e;
  }
  describeServer(o.out, config, library, target, o.chap?.user, attachments);
  let stopping: Promise<boolean> | undefined;
  return { library, target, stop: () => (stopping ??= stopAll()) };
}

function describeServer(out: Out, config: LibraryConfig, library: EmulatedLibrary, target: IscsiTargetHandle, chapUser: string | undefined, attachments: readonly SimServeAttachment[]): void {
  const p = config.personality;
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  out.line(`Serving library ${config.name} as iSCSI target ${target.iqn} on portal ${host}:${target.port}.`);
  out.line(chapUser ? `Initiators must log in with CHAP as ${chapUser}.` : 'Any initiator may log in (no CHAP).');
  out.line(`LUN 0 is the medium changer (${p.vendor} ${p.product}, serial ${config.serial}) with ${config.storage.length} storage slots, ${config.importExport.length} import/export slots and ${library.drives.length} drives.`);
  for (const d of library.drives) {
    out.line(`LUN ${d.lun} is tape drive ${d.lun} (${d.personality}, serial ${d.serial}) at element address ${hex(d.address)}.`);
  }
  for (const a of attachments) if (a.description) out.line(a.description);
  out.line('Press Ctrl-C (or send SIGTERM) to stop.');
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
      o.out.line(`Received ${sig}: stopping the target and closing the library.`);
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
    .description('serve an emulated library over iSCSI until SIGINT or SIGTERM: ptpvts sim serve library.yaml --portal 127.0.0.1:3260')
    .argument('<library>', 'library YAML (docs/library-yaml.md)')
    .option('--portal <host:port>', 'address to listen on: host:port, [v6]:port, or host for port 3260', '127.0.0.1:3260')
    .option('--chap-user <name>', 'require CHAP: the user name initiators log in with (needs --chap-secret)')
    .option('--chap-secret <secret>', 'the CHAP secret of --chap-user')
    .addOption(new Option('--time-scale <factor>', "override the YAML's timeScale (0: robot and drive act at once)").argParser(timeScaleArg));
  for (const ext of extensions) ext.options?.(cmd);
  cmd.action(async (libraryPath: string, opts: Record<string, unknown>) => {
    const user = opts['chapUser'] as string | undefined;
    const secret = opts['chapSecret'] as string | undefined;
    if ((user === undefined) !== (secret === undefined)) throw new UsageError('--chap-user and --chap-secret go together');
    const code = await serveUntilSignal({
      libraryPath,
      portal: opts['portal'] as string,
      ...(user !== undefined && secret !== undefined ? { chap: { user, secret } } : {}),
      ...(opts['timeScale'] === undefined ? {} : { timeScale: opts['timeScale'] as number }),
      extensions,
      cliOptions: opts,
      out,
    });
    if (code !== 0) process.exitCode = code;
  });
  return cmd;
}
