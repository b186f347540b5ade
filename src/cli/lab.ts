/**
 * A lab: one library's robotics and its drives, as the CLI works with them. Either the
 * embedded emulator built from a library YAML, whose cartridge locations and injected
 * faults are kept in `state.json` beside the YAML so that one command carries on where the
 * last left off, or real devices named by address (`sg:/dev/sg3`).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MediaChanger } from '../devices/media-changer.js';
import { TapeDrive } from '../devices/tape-drive.js';
import type { ScsiPort } from '../transport/scsi-port.js';
import { createLibrary, createLibraryTapeDrive, loadLibraryConfig, type EmulatedLibrary, type LibraryConfig } from '../../firmware-sim/library/index.js';
import type { TapeDriveUnit } from '../../firmware-sim/ssc/index.js';
import { MemoryPort } from '../../firmware-sim/front/memory-port.js';
import type { DriveFactory } from '../../firmware-sim/library/drive-factory.js';

/** Faults that outlive one CLI process on the embedded lab. */
export interface PersistedFaults {
  /** Drive index (1-based) -> object numbers that answer MEDIUM ERROR. */
  mediumErrors?: Record<string, number[]>;
  offlineDrives?: number[];
  hungDrives?: number[];
  tapeAlerts?: Record<string, number[]>;
  robotJams?: number;
}

export interface LabState {
  /** Barcode -> element address where the cartridge is. */
  locations: Record<string, number>;
  faults: PersistedFaults;
}

export interface Lab {
  /** What the lab is, for messages: `embedded library lab0 (ptpvts-lab/library.yaml)`. */
  readonly description: string;
  readonly changer: MediaChanger;
  /** Drives in data transfer element order: drive 1 is `drives[0]`. */
  readonly drives: readonly TapeDrive[];
  /** The emulated library, when the lab is the embedded one (faults, doors). */
  readonly emulated?: { library: EmulatedLibrary; drives: readonly TapeDriveUnit[]; state: LabState; config: LibraryConfig };
  /** Saves the embedded lab's state and releases ports and files. */
  close(): Promise<void>;
}

/** Drive factory joining the library to the SSC drive model (the composition the library leaves open). */
export function sscDriveFactory(made: TapeDriveUnit[]): DriveFactory {
  return (spec) => {
    const unit = createLibraryTapeDrive(spec);
    made.push(unit);
    // The engine unit itself is the LU, so the library can share its LUN list and power-cycle it.
    return { unit: unit.unit, bay: unit, close: () => unit.close() };
  };
}

function statePath(configPath: string): string {
  return join(dirname(configPath), 'state.json');
}

export function readState(configPath: string): LabState {
  const p = statePath(configPath);
  if (!existsSync(p)) return { locations: {}, faults: {} };
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new Error(`${p} is not valid JSON (${(e as Error).message}); remove it to start the lab from its YAML again`, { cause: e });
  }
  const d = doc as Partial<LabState>;
  if (typeof d !== 'object' || d === null || typeof d.locations !== 'object' || d.locations === null) {
    throw new Error(`${p}: "locations" must be an object of barcode -> element address; remove the file to start from the YAML again`);
  }
  return { locations: d.locations, faults: d.faults ?? {} };
}

/** Saves the lab state beside the YAML (written to a temp file, then renamed). */
export function writeState(configPath: string, state: LabState): void {
  const p = statePath(configPath);
  writeFileSync(`${p}.tmp`, JSON.stringify(state, null, 2) + '\n');
  renameSync(`${p}.tmp`, p);
}

/** Opens the embedded lab from a library YAML. */
export async function openEmbeddedLab(configPath: string, opts: { timeScale?: number; persist?: boolean } = {}): Promise<Lab> {
  const base = loadLibraryConfig({ path: configPath });
  const persist = opts.persist ?? true;
  const state = persist ? readState(configPath) : { locations: {}, faults: {} };
  // Cartridges start where the last command left them.
  const config: LibraryConfig = {
    ...base,
    cartridges: base.cartridges.map((c) => (state.locations[c.barcode] === undefined ? c : { ...c, address: state.locations[c.barcode]! })),
  };
  const drives: TapeDriveUnit[] = [];
  const library = await createLibrary(config, { driveFactory: sscDriveFactory(drives), ...(opts.timeScale === undefined ? {} : { timeScale: opts.timeScale }) });
  applyFaults(library, drives, state.faults);
  const initiator = `cli-${process.pid}`;
  const ports: ScsiPort[] = [];
  const port = (lun: number): ScsiPort => {
    const unit = library.luns().get(lun);
    if (!unit) throw new Error(`${config.name} has no LUN ${lun}`);
    const p = new MemoryPort(unit, { initiator });
    ports.push(p);
    return p;
  };
  const changer = new MediaChanger(port(0));
  const tapeDrives = library.drives.map((d) => new TapeDrive(port(d.lun)));
  // A new initiator owes the units a look at their power-on unit attention.
  for (const dev of [changer, ...tapeDrives]) await dev.requestSense().catch(() => undefined);
  return {
    description: `embedded library ${config.name} (${configPath})`,
    changer,
    drives: tapeDrives,
    emulated: { library, drives, state, config },
    async close() {
      if (persist) {
        const locations: Record<string, number> = {};
        for (const e of library.inventory()) if (e.barcode) locations[e.barcode] = e.address;
        state.locations = locations;
        writeState(configPath, state);
      }
      for (const p of ports) await p.close();
      await library.close();
    },
  };
}

export function applyFaults(library: EmulatedLibrary, drives: readonly TapeDriveUnit[], f: PersistedFaults): void {
  const drive = (n: string | number): TapeDriveUnit | undefined => drives[Number(n) - 1];
  for (const [n, blocks] of Object.entries(f.mediumErrors ?? {})) for (const b of blocks) drive(n)?.faults.mediumErrorAt(b);
  for (const n of f.offlineDrives ?? []) drive(n)?.faults.setOffline(true);
  for (const n of f.hungDrives ?? []) drive(n)?.faults.hang();
  for (const [n, flags] of Object.entries(f.tapeAlerts ?? {})) for (const fl of flags) drive(n)?.faults.setTapeAlert(fl);
  if (f.robotJams) library.faults.jamNextMoves(f.robotJams);
}

/** Opens a lab over real devices: a changer address and drive addresses (`sg:/dev/sgN`). */
export async function openDeviceLab(changerAddress: string, driveAddresses: readonly string[]): Promise<Lab> {
  const ports: ScsiPort[] = [];
  const open = async (address: string): Promise<ScsiPort> => {
    const p = await openPort(address);
    ports.push(p);
    return p;
  };
  const changer = new MediaChanger(await open(changerAddress));
  const drives: TapeDrive[] = [];
  for (const a of driveAddresses) drives.push(new TapeDrive(await open(a)));
  return {
    description: `devices ${[changerAddress, ...driveAddresses].join(', ')}`,
    changer,
    drives,
    async close() {
      for (const p of ports) await p.close();
    },
  };
}

/** Opens a port by address. `sg:/dev/sgN` (Linux SG_IO). */
export async function openPort(address: string): Promise<ScsiPort> {
  const m = /^([a-z]+):(.+)$/.exec(address);
  if (!m) throw new Error(`device address "${address}" is not of the form sg:/dev/sgN`);
  const [, scheme, rest] = m;
  if (scheme === 'sg') {
    const { SgioPort } = await import('../transport/sgio/index.js');
    return SgioPort.open(rest!);
  }
  throw new Error(`device address "${address}": unknown scheme "${scheme}" (known: sg)`);
}
