/**
 * `ptpvts sim ctl ...`: changes a library while `ptpvts sim serve` serves it, through the
 * control socket beside the lab's `state.json` (see sim-control.ts): status, insert and
 * eject through the import/export station, add a cartridge, inject and clear faults, reload
 * the YAML.
 */
import { Option, type Command } from 'commander';
import { connect } from 'node:net';
import { ensureDefaultLab } from './default-lab.js';
import { registerEncryptionCommands } from './encryption-key.js';
import { bytes, hex, type Out } from './output.js';
import { UsageError } from './ops.js';
import { controlSocketPath, FAULT_KINDS, type ControlRequest, type LibraryStatus } from './sim-control.js';

/** The control socket could not be reached, or the server refused the request (`code` from the server). */
export class SimCtlError extends Error {
  override readonly name = 'SimCtlError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Sends one request to the control socket at `path` and resolves with the server's result.
 * Rejects with {@link SimCtlError}: `ENOENT`/`ECONNREFUSED` when no server listens there,
 * `ETIMEDOUT` after `timeoutMs` (default 60 s: a robot move may take that long), or the
 * server's code when it refused the request.
 */
export function control(path: string, request: ControlRequest, timeoutMs = 60_000): Promise<unknown> {
  return new Promise((resolveReply, reject) => {
    const socket = connect(path);
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SimCtlError('ETIMEDOUT', `no answer from ${path} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const done = (f: () => void): void => {
      clearTimeout(timer);
      socket.destroy();
      f();
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      let reply: { ok: boolean; result?: unknown; error?: { code: string; message: string } };
      try {
        reply = JSON.parse(buffered.slice(0, nl)) as typeof reply;
      } catch (e) {
        return done(() => reject(new SimCtlError('EPROTO', `${path} answered something that is not JSON`, { cause: e })));
      }
      if (reply.ok) done(() => resolveReply(reply.result));
      else done(() => reject(new SimCtlError(reply.error?.code ?? 'EPROTO', reply.error?.message ?? 'the server refused the request')));
    });
    socket.on('error', (e: NodeJS.ErrnoException) =>
      done(() =>
        reject(
          e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
            ? new SimCtlError(e.code, `no ptpvts sim serve is serving this lab (nothing listens on ${path}); start one with \`ptpvts sim serve\``, { cause: e })
            : new SimCtlError(e.code ?? 'EIO', `cannot reach ${path}: ${e.message}`, { cause: e }),
        ),
      ),
    );
    socket.on('end', () => done(() => reject(new SimCtlError('ECONNRESET', `${path} closed the connection without an answer`))));
  });
}

function size(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g|t|kib|mib|gib|tib|kb|mb|gb|tb|b)?$/i.exec(v.trim());
  const mult: Record<string, number> = { b: 1, k: 1024, kib: 1024, kb: 1e3, m: 1024 ** 2, mib: 1024 ** 2, mb: 1e6, g: 1024 ** 3, gib: 1024 ** 3, gb: 1e9, t: 1024 ** 4, tib: 1024 ** 4, tb: 1e12 };
  const n = m ? Math.floor(Number(m[1]) * mult[(m[2] ?? 'b').toLowerCase()]!) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--capacity must be a size such as 64MiB or 12TB (got "${v}")`);
  return n;
}

function int(name: string, min: number, max = 1e9) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max} (got "${v}")`);
    return n;
  };
}

function formatStatus(s: LibraryStatus): string[] {
  const lines = [`Library ${s.library} (${s.yaml}) is served as ${s.iqn} on ${s.portal}; ${s.sessions} session(s).`];
  for (const d of s.drives) {
    lines.push(`Drive ${d.number} (LUN ${d.lun}, ${d.personality}, serial ${d.serial}, ${hex(d.address)}): ${d.state}${d.barcode ? `, ${d.barcode}` : ''}${d.block === undefined ? '' : ` at block ${d.block}`}.`);
    const t = d.streaming;
    if (t) {
      const fill = `${Math.round(t.bufferFillBytes / 1e6)}/${Math.round(t.bufferBytes / 1e6)} MB`;
      lines.push(`  tape ${t.motion} at ${t.speedMBps} MB/s, buffer ${fill}, ${t.backhitches} backhitch(es), ${t.streamingSeconds.toFixed(1)} s streaming, ${t.stoppedSeconds.toFixed(1)} s stopped (device time).`);
    }
  }
  for (const e of s.elements) lines.push(`${hex(e.address)} ${e.kind}: ${e.barcode} (${e.mediaType})`);
  if (s.emptyImportExport.length) lines.push(`Empty import/export slots: ${s.emptyImportExport.map((a) => hex(a)).join(', ')}.`);
  const f = s.faults;
  const faults = Object.keys(f).filter((k) => f[k as keyof typeof f] !== undefined);
  lines.push(faults.length ? `Faults injected: ${JSON.stringify(f)}.` : 'No faults injected.');
  return lines;
}

/** Adds `ptpvts sim ctl` (creating the `sim` command group if no other command made it). */
export function registerSimCtl(program: Command, out: Out): Command {
  const sim = program.commands.find((c) => c.name() === 'sim') ?? program.command('sim').description('run the emulator for outside initiators and tools');
  const ctl = sim
    .command('ctl')
    .description('change a library while `ptpvts sim serve` serves it (the control socket beside its state.json)')
    .option('-l, --library <file>', 'library YAML being served (default: ptpvts-lab/library.yaml)')
    .option('--socket <path>', 'control socket (default: sim.sock beside the library YAML)');
  const socketOf = (): string => {
    const o = ctl.opts<{ library?: string; socket?: string }>();
    if (o.socket) return o.socket;
    return controlSocketPath(o.library ?? ensureDefaultLab().path);
  };
  const ask = (req: ControlRequest): Promise<unknown> => control(socketOf(), req);

  ctl
    .command('status')
    .description('what the served library holds, its drives, sessions and faults')
    .option('--json', 'print the status as JSON')
    .action(async (o: { json?: boolean }) => {
      const s = (await ask({ op: 'status' })) as LibraryStatus;
      if (o.json) out.line(JSON.stringify(s, null, 2));
      else for (const l of formatStatus(s)) out.line(l);
    });

  const cartridgeOptions = (c: Command): Command =>
    c
      .option('--capacity <size>', 'capacity of a new cartridge (64MiB, 12TB, ...); default the media type\'s', size)
      .option('--media-type <type>', 'media type of a new cartridge (default from the barcode\'s suffix, e.g. L8)')
      .option('--write-protected', 'a new cartridge has its write-protect tab set');
  const cartridgeFields = (o: { capacity?: number; mediaType?: string; writeProtected?: boolean }) => ({
    ...(o.capacity === undefined ? {} : { capacityBytes: o.capacity }),
    ...(o.mediaType === undefined ? {} : { mediaType: o.mediaType }),
    ...(o.writeProtected ? { writeProtected: true } : {}),
  });

  cartridgeOptions(
    ctl
      .command('insert')
      .description('put a cartridge into the import/export slot and close its door (initiators see IMPORT OR EXPORT ELEMENT ACCESSED)')
      .argument('<barcode>'),
  ).action(async (barcode: string, o: { capacity?: number; mediaType?: string; writeProtected?: boolean }) => {
    const r = (await ask({ op: 'insert', barcode, ...cartridgeFields(o) })) as { address: number };
    out.line(`Inserted ${barcode} into the import/export slot ${hex(r.address)}.`);
  });

  ctl
    .command('eject')
    .description('the robot takes a cartridge to the import/export slot; it is taken out of the library')
    .argument('<barcode>')
    .action(async (barcode: string) => {
      const r = (await ask({ op: 'eject', barcode })) as { from: number; via: number };
      out.line(`Ejected ${barcode} from ${hex(r.from)} through the import/export slot ${hex(r.via)}.`);
    });

  cartridgeOptions(
    ctl
      .command('add-cartridge')
      .description('open the library door, put a cartridge into a storage slot, close it (the library rescans; NOT READY TO READY CHANGE)')
      .argument('<barcode>')
      .option('--slot <n>', 'storage slot number, from 1 (default: the first empty one)', int('slot', 1)),
  ).action(async (barcode: string, o: { slot?: number; capacity?: number; mediaType?: string; writeProtected?: boolean }) => {
    const r = (await ask({ op: 'add-cartridge', barcode, ...(o.slot === undefined ? {} : { slot: o.slot }), ...cartridgeFields(o) })) as { address: number };
    out.line(`Added ${barcode} in ${hex(r.address)}${o.capacity === undefined ? '' : ` (${bytes(o.capacity)})`}.`);
  });

  const fault = ctl.command('fault').description('inject or clear faults in the served library (kept in state.json until cleared)');
  fault
    .command('inject')
    .description(`inject a fault: ${FAULT_KINDS.join(', ')}`)
    .addOption(new Option('-k, --kind <kind>').choices(FAULT_KINDS).makeOptionMandatory())
    .option('-d, --drive-number <n>', 'drive number, from 1', int('drive number', 1), 1)
    .option('--block <n>', 'medium-error: object (block) number', int('block', 0))
    .option('--flag <n>', 'tapealert: flag number 1..64', int('flag', 1, 64))
    .option('--moves <n>', 'robot-jam: how many moves fail', int('moves', 1), 1)
    .action(async (o: { kind: (typeof FAULT_KINDS)[number]; driveNumber: number; block?: number; flag?: number; moves: number }) => {
      const r = (await ask({
        op: 'fault-inject',
        kind: o.kind,
        drive: o.driveNumber,
        moves: o.moves,
        ...(o.block === undefined ? {} : { block: o.block }),
        ...(o.flag === undefined ? {} : { flag: o.flag }),
      })) as { injected: string };
      out.line(`Injected: ${r.injected}.`);
    });
  fault
    .command('clear')
    .description('remove every injected fault')
    .action(async () => {
      await ask({ op: 'fault-clear' });
      out.line('Cleared every injected fault.');
    });

  registerEncryptionCommands(ctl, (req) => ask(req as ControlRequest), out);

  ctl
    .command('reload')
    .description('read the library YAML again and put in the cartridges added to it')
    .action(async () => {
      const r = (await ask({ op: 'reload' })) as { added: { barcode: string; address: number }[]; skipped: string[] };
      out.line(r.added.length ? `Added ${r.added.map((a) => `${a.barcode} in ${hex(a.address)}`).join(', ')}.` : 'No new cartridges in the YAML.');
      for (const s of r.skipped) out.line(`Not applied: ${s}.`);
    });
  return ctl;
}
