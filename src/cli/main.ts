/**
 * The `ptpvts` command: the composition root where the emulator (firmware-sim) meets the
 * controller stack. Commands for a person at a lab bench work on a lab: the embedded
 * emulated library (default `ptpvts-lab/library.yaml`, made on first use) or real devices
 * (`--changer sg:/dev/sgN --drive sg:/dev/sgM`).
 */
import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDefaultLab } from './default-lab.js';
import { cliLockOptions, openDeviceLab, openEmbeddedLab, updateLabState, type Lab } from './lab.js';
import { barcodeOf, driveAt, elementLabel, loadCartridge, requireEmptyDirectory, resolveElement, unloadCartridge, UsageError } from './ops.js';
import { bytes, consoleOut, hex, type Out } from './output.js';
import { fileChunks, MAX_BLOCK_BYTES, patternChunks, patternData, readStream, writeStream, yieldToEventLoop } from './tape-io.js';
import { runDemo } from './demo.js';
import { registerSimServe } from './sim-serve.js';
import { registerSimCtl } from './sim-ctl.js';
import { serialConsoleExtension } from './serial-extension.js';
import { registerPtpCommands } from './ptp-commands.js';
import { inventoryView, mediaCheckView, printInventory, printJson, printTapeStatus, tapeStatusView } from './read-views.js';
import { registerKeyCommands } from './keys.js';
import { registerVolumeCommands } from './volumes.js';
import { checkCartridge, formatCartridgeReport } from '../../firmware-sim/media/index.js';
import { SpaceCode } from '../scsi/cdb.js';
import { isSenseError } from '../devices/errors.js';
import type { TapeDrive } from '../devices/tape-drive.js';

interface LabOptions {
  library?: string;
  changer?: string;
  drive?: string[];
  lockTimeout?: number;
}

const lockTimeoutHelp = 'seconds to wait while another command has the lab (default 30, or PTPVTS_LAB_LOCK_TIMEOUT)';

function labOptions(cmd: Command): Command {
  return cmd
    .option('-l, --library <file>', 'library YAML of the embedded emulator (default: ptpvts-lab/library.yaml, made on first use)')
    .option('--changer <address>', 'a changer instead of the embedded emulator: sg:/dev/sg5 or iscsi://host:port/iqn/lun')
    .option('--drive <address...>', 'drives with --changer, in data transfer element order: sg:/dev/sg3 or iscsi://host:port/iqn/lun')
    .option('--lock-timeout <seconds>', lockTimeoutHelp, seconds);
}

async function withLab<T>(o: LabOptions, out: Out, commandLine: string, fn: (lab: Lab) => Promise<T>): Promise<T> {
  let lab: Lab;
  if (o.changer) lab = await openDeviceLab(o.changer, o.drive ?? []);
  else {
    let path = o.library;
    if (!path) {
      const made = ensureDefaultLab();
      if (made.created) out.note(`Made a default emulated library in ${made.path}.`);
      path = made.path;
    }
    lab = await openEmbeddedLab(path, { lock: cliLockOptions(o.lockTimeout, (l) => out.note(l), commandLine) });
  }
  try {
    return await fn(lab);
  } finally {
    await lab.close();
  }
}

function int(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max} (got "${v}")`);
    return n;
  };
}

function seconds(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--lock-timeout must be a number of seconds >= 0 (got "${v}")`);
  return n;
}

/** A size option (`256KiB`, `10MiB`, `5GiB`, `1TB`, `4096`) from 1 byte up to `max`, named `name` in errors. */
export function sizeOption(name: string, max: number) {
  return (v: string): number => {
    const m = /^(\d+(?:\.\d+)?)\s*(k|m|g|t|kib|mib|gib|tib|kb|mb|gb|tb|b)?$/i.exec(v.trim());
    const mult: Record<string, number> = { b: 1, k: 1024, kib: 1024, kb: 1000, m: 1024 ** 2, mib: 1024 ** 2, mb: 1e6, g: 1024 ** 3, gib: 1024 ** 3, gb: 1e9, t: 1024 ** 4, tib: 1024 ** 4, tb: 1e12 };
    const n = m ? Math.floor(Number(m[1]) * (mult[(m[2] ?? 'b').toLowerCase()] ?? NaN)) : NaN;
    if (!(n > 0)) throw new UsageError(`${name} "${v}" is not a size such as 256KiB, 10MiB or 5GiB`);
    if (n > max) throw new UsageError(`${name} "${v}" is too large: at most ${max} bytes${max >= 1024 ? ` (about ${bytes(max)})` : ''}`);
    return n;
  };
}

const dataSize = sizeOption('--size', Number.MAX_SAFE_INTEGER);
const blockSize = sizeOption('--block-size', MAX_BLOCK_BYTES);

/** Where `tape write` and `tape fill` start: end of data, or the current position with `--here`. */
interface WhereOptions {
  here?: boolean;
  overwrite?: boolean;
}

function checkWhere(o: WhereOptions): void {
  if (o.overwrite && !o.here) throw new UsageError('--overwrite goes with --here: without --here the data is appended at end of data and nothing is overwritten');
}

/**
 * Moves the tape to where the data goes: end of data, or with `--here` the current position,
 * which is refused when data follows it (writing there erases everything after it) unless
 * `--overwrite` is given. A refusal leaves the tape where it was.
 */
async function toWritePosition(d: TapeDrive, driveNumber: number, o: WhereOptions): Promise<void> {
  if (!o.here) {
    await d.spaceToEndOfData();
    return;
  }
  const here = await d.position();
  await d.spaceToEndOfData();
  const eod = await d.position();
  if (eod.block !== here.block) await d.locate(here.block);
  if (eod.block > here.block && !o.overwrite) {
    const n = eod.block - here.block;
    throw new UsageError(
      `drive ${driveNumber} is at block ${here.block}${here.fileNumber === undefined ? '' : ` (file ${here.fileNumber})`} and the tape holds data up to block ${eod.block}: ` +
        `writing here would erase the ${n} block${n === 1 ? '' : 's'} and filemarks after it. Add --overwrite to erase them, or leave out --here to append at end of data`,
    );
  }
}

/**
 * Until `done()`, the first SIGINT or SIGTERM aborts `signal` so that the work in hand can
 * end cleanly (a file ended by its filemark, the lab saved); a second one ends the process
 * at once, for a person who does not want to wait.
 */
function interruptible(): { signal: AbortSignal; readonly received: NodeJS.Signals | undefined; exitCode(): number; done(): void } {
  const ac = new AbortController();
  let received: NodeJS.Signals | undefined;
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
  const on = (sig: NodeJS.Signals): void => {
    if (received !== undefined) process.exit(codes[sig] ?? 1);
    received = sig;
    ac.abort();
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    signal: ac.signal,
    get received() {
      return received;
    },
    exitCode: () => (received === undefined ? 0 : (codes[received] ?? 1)),
    done() {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

/** The version in the package.json of this installation (from the sources or from dist). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ptpvts' && typeof pkg.version === 'string') return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

export function buildProgram(out: Out, commandLine = 'ptpvts'): Command {
  const program = new Command('ptpvts')
    .description('Emulator and controller stack for peer-to-peer virtual tape systems')
    .exitOverride()
    .version(packageVersion(), '-V, --version', 'print the version of ptpvts')
    .configureOutput({ writeOut: (s) => out.line(s.trimEnd()), writeErr: (s) => out.error(s.trimEnd()) });

  program
    .command('demo')
    .description('run the main job on the embedded emulator and print what happened')
    .option('--keep <dir>', 'keep the demo library and its cartridges in this directory (a new or empty one)')
    .option('--overwrite', 'with --keep: use the directory even though it holds files (a library there is replaced, its cartridges written over)')
    .option('--timelines <dir>', 'where the SVG timelines of the recovery stories go', 'ptpvts-demo')
    .option('--devices-only', 'only the device part (library, drive, tape I/O)')
    .action(async (o: { keep?: string; overwrite?: boolean; timelines: string; devicesOnly?: boolean }) => {
      if (o.overwrite && o.keep === undefined) throw new UsageError('--overwrite goes with --keep DIR');
      if (o.keep !== undefined && !o.overwrite) requireEmptyDirectory(o.keep, '--keep', 'the demo would replace a library there and write over its cartridges', 'add --overwrite');
      await runDemo(out, { ...(o.keep === undefined ? {} : { dir: o.keep }), timelines: o.timelines, ...(o.devicesOnly ? { devicesOnly: true } : {}) });
    });

  labOptions(program.command('inventory'))
    .description('list every element of the library and what it holds')
    .option('--init', 'run INITIALIZE ELEMENT STATUS first (rescan), with progress')
    .option('--json', 'print JSON (docs/json.md)')
    .action(async (o: LabOptions & { init?: boolean; json?: boolean }) => {
      await withLab(o, out, commandLine, async (lab) => {
        if (o.init) {
          const inv0 = await lab.changer.inventory();
          const bar = out.progress('Scanning elements', inv0.all.length, 'elements');
          let done = 0;
          for (const e of inv0.all) {
            await lab.changer.initializeElementStatus({ start: e.address, count: 1 });
            bar.update(++done);
          }
          bar.stop();
        }
        const view = inventoryView(lab.description, await lab.changer.inventory());
        if (o.json) printJson(out, view);
        else printInventory(out, view);
      });
    });

  labOptions(program.command('move'))
    .description('move a cartridge: ptpvts move "slot 3" "drive 1" (elements, addresses or a barcode as source)')
    .argument('<source>')
    .argument('<destination>')
    .action(async (src: string, dst: string, o: LabOptions) => {
      await withLab(o, out, commandLine, async (lab) => {
        const inv = await lab.changer.inventory();
        const s = resolveElement(src, inv);
        const d = resolveElement(dst, inv);
        await lab.changer.move(s.address, d.address);
        out.line(`Moved ${barcodeOf(s) ?? 'the cartridge'} from ${elementLabel(s, inv)} (${hex(s.address)}) to ${elementLabel(d, inv)} (${hex(d.address)}).`);
      });
    });

  labOptions(program.command('load'))
    .description('load a cartridge (barcode or element) into a drive and wait until it is ready')
    .argument('<cartridge>')
    .option('-d, --drive-number <n>', 'drive number, from 1', int('drive number', 1), 1)
    .action(async (what: string, o: LabOptions & { driveNumber: number }) => {
      await withLab(o, out, commandLine, async (lab) => {
        const r = await loadCartridge(lab, what, o.driveNumber);
        out.line(`Loaded ${r.barcode} from ${r.from} into drive ${o.driveNumber}; the drive is ready.`);
      });
    });

  labOptions(program.command('unload'))
    .description('unload a drive and put the cartridge back in its slot (or --to)')
    .option('-d, --drive-number <n>', 'drive number, from 1', int('drive number', 1), 1)
    .option('--to <element>', 'where to put the cartridge')
    .action(async (o: LabOptions & { driveNumber: number; to?: string }) => {
      await withLab(o, out, commandLine, async (lab) => {
        const r = await unloadCartridge(lab, o.driveNumber, o.to);
        out.line(`Unloaded ${r.barcode} from drive ${o.driveNumber} to ${r.to}.`);
      });
    });

  const tape = program.command('tape').description('work with the tape in a drive');
  labOptions(tape.command('status'))
    .description('what the drive holds and where it is')
    .option('-d, --drive-number <n>', 'drive number, from 1', int('drive number', 1), 1)
    .option('--json', 'print JSON (docs/json.md)')
    .action(async (o: LabOptions & { driveNumber: number; json?: boolean }) => {
      await withLab(o, out, commandLine, async (lab) => {
        const view = await tapeStatusView(driveAt(lab, o.driveNumber), o.driveNumber);
        if (o.json) printJson(out, view);
        else printTapeStatus(out, view);
      });
    });

  labOptions(tape.command('write'))
    .description('append a file (or generated data) at end of data, then a filemark')
    .option('-d, --drive-number <n>', 'drive number, from 1', int('drive number', 1), 1)
    .option('--here', 'write at the current position instead of at end of data (refused where data follows, unless --overwrite)')
    .option('--overwrite', 'with --here: erase what follows the current position')
    .option('-f, --file <path>', 'the file to write')
    .option('--size <bytes>', 'write this much generated data instead of a file (e.g. 10MiB, 5GiB)', dataSize)
    .option('-b, --block-size <bytes>', 'block size, up to 16 MiB - 1', blockSize, 256 * 1024)
    .action(async (o: LabOptions & { driveNumber: number; file?: string; size?: number; blockSize: number } & WhereOptions) => {
      if (!o.file && !o.size) throw new UsageError('say what to write: --file PATH or --size N');
      checkWhere(o);
      let total = o.size ?? 0;
      if (o.file) {
        // Opened before the lab so that a wrong path costs no robot time; read in blocks later.
        const fh = await openFile(o.file, 'r').catch((e: NodeJS.ErrnoException) => {
          throw new UsageError(`cannot read ${o.file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
        });
        try {
          const st = await fh.stat();
          if (!st.isFile()) throw new UsageError(`${o.file} is not a regular file`);
          total = st.size;
        } finally {
          await fh.close();
        }
      }
      await withLab(o, out, commandLine, async (lab) => {
        const d = driveAt(lab, o.driveNumber);
        const limits = await d.readBlockLimits();
        if (limits.maxBlockLength > 0 && o.blockSize > limits.maxBlockLength) {
          throw new UsageError(`--block-size ${o.blockSize} is more than drive ${o.driveNumber} takes (at most ${limits.maxBlockLength} bytes a block)`);
        }
        await toWritePosition(d, o.driveNumber, o);
        const source = o.file ? fileChunks(o.file, o.blockSize) : patternChunks(total, Date.now() & 0xffff, o.blockSize);
        const bar = total > 16 * o.blockSize ? out.progress('Writing', total, 'bytes') : undefined;
        const stop = interruptible();
        let w;
        try {
          w = await writeStream(d, source, o.blockSize, { onBlock: (n) => bar?.update(n), signal: stop.signal });
        } finally {
          stop.done();
          bar?.stop();
        }
        const pos = await d.position();
        if (w.interrupted) {
          out.error(`Interrupted (${stop.received}): wrote ${bytes(w.bytes)} of ${bytes(total)} in ${w.blocks} blocks and ended them with a filemark; now at block ${pos.block}. sha256 of what was written ${w.sha256}`);
          process.exitCode = stop.exitCode();
          return;
        }
        out.line(`Wrote ${bytes(w.bytes)} in ${w.blocks} blocks and a filemark; now at block ${pos.block}. sha256 ${w.sha256}${w.earlyWarning ? '. Early warning: the tape is nearly full.' : ''}`);
      });
    });

  labOptions(tape.command('read'))
    .description('read the file at the current position (up to the next filemark)')
    .option('-d, --drive-number <n>', 'drive number, from 1', int('drive number', 1), 1)
    .option('-o, --out <path>', 'where to save what was read')
    .option('--rewind', 'rewind first')
    .option('--file-number <n>', 'space to this file (counted from 0 after rewinding) first', int('file number', 0))
    .action(async (o: LabOptions & { driveNumber: number; out?: string; rewind?: boolean; fileNumber?: number }) => {
      await withLab(o, out, commandLine, async (lab) => {
        const d = driveAt(lab, o.driveNumber);
        if (o.rewind || o.fileNumber !== undefined) await d.rewind();
        if (o.fileNumber) await d.space(SpaceCode.filemarks, o.fileNumber);
        const limits = await d.readBlockLimits();
        const fh = o.out ? await openFile(o.out, 'w') : undefined;
        let r;
        try {
          r = await readStream(d, Math.min(limits.maxBlockLength || 1 << 20, 8 << 20), async (b) => {
            for (let off = 0; fh && off < b.length; ) off += (await fh.write(b, off, b.length - off)).bytesWritten;
          });
        } finally {
          await fh?.close();
        }
        out.line(`Read ${bytes(r.bytes)} in ${r.blocks} blocks${r.endOfData ? ', up to end of data' : ' and a filemark'}. sha256 ${r.sha256}${o.out ? `; saved to ${o.out}` : ''}`);
      });
    });

  labOptions(tape.command('fill'))
    .description('append generated data at end of data until the tape reports early warning, with progress')
    .option('-d, --drive-number <n>', 'drive number, from 1', int('drive number', 1), 1)
    .option('-b, --block-size <bytes>', 'block size, up to 16 MiB - 1', blockSize, 256 * 1024)
    .option('--here', 'fill from the current position instead of end of data (refused where data follows, unless --overwrite)')
    .option('--overwrite', 'with --here: erase what follows the current position')
    .action(async (o: LabOptions & { driveNumber: number; blockSize: number } & WhereOptions) => {
      checkWhere(o);
      await withLab(o, out, commandLine, async (lab) => {
        const d = driveAt(lab, o.driveNumber);
        await toWritePosition(d, o.driveNumber, o);
        const rem = await d.readAttribute(0x0000).catch(() => undefined);
        const remainingMiB = rem && typeof rem.decoded === 'bigint' ? Number(rem.decoded) : 0;
        const total = Math.max(1, remainingMiB * 1024 * 1024);
        const bar = out.progress('Filling', total, 'bytes');
        const block = patternData(o.blockSize, 7);
        let written = 0;
        let blocks = 0;
        let stopped = 'early warning';
        const stop = interruptible();
        try {
          for (;;) {
            await yieldToEventLoop();
            if (stop.signal.aborted) {
              stopped = `${stop.received}`;
              break;
            }
            const w = await d.writeBlock(block);
            written += block.length;
            blocks++;
            bar.update(Math.min(total, written));
            if (w.earlyWarning) break;
          }
        } catch (e) {
          if (!isSenseError(e)) throw e;
          stopped = e.message;
        } finally {
          stop.done();
        }
        await d.writeFilemarks(1).catch(() => undefined);
        bar.stop();
        if (stop.received !== undefined) {
          out.error(`Interrupted (${stop.received}): wrote ${bytes(written)} in ${blocks} blocks and ended them with a filemark.`);
          process.exitCode = stop.exitCode();
          return;
        }
        out.line(`Wrote ${bytes(written)} in ${blocks} blocks before ${stopped}.`);
      });
    });

  const media = program.command('media').description('cartridge files of the emulator');
  media
    .command('check')
    .description('verify a cartridge file (every record and its CRC32C) and report damage')
    .argument('<file>')
    .option('--json', 'print JSON (docs/json.md); a file that is not a cartridge gives "cartridge": false and exit 1')
    .action(async (file: string, o: { json?: boolean }) => {
      let report;
      try {
        report = checkCartridge(file);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw new UsageError(`cannot check ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'it is a directory' : err.message}`);
      }
      if (o.json) {
        printJson(out, mediaCheckView(report));
        if (!report.ok) process.exitCode = 1;
        return;
      }
      if (report.header === undefined) {
        // Not a cartridge at all: a record-by-record report of it would only mislead.
        out.error(`ptpvts: ${file} is not a cartridge file of the emulator: ${report.headerError ?? 'its header is unreadable'}.`);
        process.exitCode = 1;
        return;
      }
      out.line(formatCartridgeReport(report));
      if (!report.ok) process.exitCode = 1;
    });

  const fault = program.command('fault').description('inject faults into the embedded emulator (kept until cleared)');
  const faultKinds = ['medium-error', 'drive-hang', 'drive-offline', 'tapealert', 'robot-jam', 'power-cycle'] as const;
  fault
    .command('inject')
    .description(`inject a fault: ${faultKinds.join(', ')}`)
    .addOption(new Option('-k, --kind <kind>').choices(faultKinds).makeOptionMandatory())
    .option('-l, --library <file>', 'library YAML (default ptpvts-lab/library.yaml)')
    .option('-d, --drive-number <n>', 'drive number, from 1', int('drive number', 1), 1)
    .option('--block <n>', 'medium-error: object (block) number', int('block', 0))
    .option('--flag <n>', 'tapealert: flag number 1..64', int('flag', 1, 64))
    .option('--moves <n>', 'robot-jam: how many moves fail', int('moves', 1), 1)
    .option('--lock-timeout <seconds>', lockTimeoutHelp, seconds)
    .action(async (o: { kind: (typeof faultKinds)[number]; library?: string; driveNumber: number; block?: number; flag?: number; moves: number; lockTimeout?: number }) => {
      const path = o.library ?? ensureDefaultLab().path;
      if (o.kind === 'power-cycle') {
        await withLab({ library: path, ...(o.lockTimeout === undefined ? {} : { lockTimeout: o.lockTimeout }) }, out, commandLine, async (lab) => {
          await lab.emulated!.library.faults.powerCycle();
          out.line(`Power-cycled ${lab.description}: every initiator will see POWER ON OCCURRED.`);
        });
        return;
      }
      await updateLabState(path, (state) => {
        const f = state.faults;
        const n = String(o.driveNumber);
        switch (o.kind) {
          case 'medium-error':
            if (o.block === undefined) throw new UsageError('medium-error needs --block N');
            f.mediumErrors = { ...f.mediumErrors, [n]: [...(f.mediumErrors?.[n] ?? []), o.block] };
            break;
          case 'drive-hang':
            f.hungDrives = [...new Set([...(f.hungDrives ?? []), o.driveNumber])];
            break;
          case 'drive-offline':
            f.offlineDrives = [...new Set([...(f.offlineDrives ?? []), o.driveNumber])];
            break;
          case 'tapealert':
            if (o.flag === undefined) throw new UsageError('tapealert needs --flag N (1..64)');
            f.tapeAlerts = { ...f.tapeAlerts, [n]: [...(f.tapeAlerts?.[n] ?? []), o.flag] };
            break;
          case 'robot-jam':
            f.robotJams = (f.robotJams ?? 0) + o.moves;
            break;
        }
      }, cliLockOptions(o.lockTimeout, (l) => out.note(l), commandLine));
      out.line(`Injected ${o.kind}${o.kind === 'robot-jam' ? ` for the next ${o.moves} move(s)` : ` on drive ${o.driveNumber}`}; it stays until \`ptpvts fault clear\`.`);
    });
  fault
    .command('clear')
    .description('remove every injected fault')
    .option('-l, --library <file>', 'library YAML (default ptpvts-lab/library.yaml)')
    .option('--lock-timeout <seconds>', lockTimeoutHelp, seconds)
    .action(async (o: { library?: string; lockTimeout?: number }) => {
      const path = o.library ?? ensureDefaultLab().path;
      await updateLabState(path, (state) => void (state.faults = {}), cliLockOptions(o.lockTimeout, (l) => out.note(l), commandLine));
      out.line('Cleared every injected fault.');
    });

  registerSimServe(program, out, [serialConsoleExtension]);
  registerSimCtl(program, out);
  registerPtpCommands(program, out);
  registerKeyCommands(program, out);
  registerVolumeCommands(program, out);

  return program;
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: readonly string[], out: Out = consoleOut()): Promise<number> {
  const program = buildProgram(out, ['ptpvts', ...argv.slice(2)].join(' '));
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
      // --help, `help` and --version: 0; no command (usage on stderr) and bad usage: 1.
      return err.exitCode ?? 1;
    }
    out.error(`ptpvts: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
