/**
 * The emulated SSC tape drive. {@link createTapeDrive} builds one drive: a logical unit
 * for the fronts, a {@link DriveBay} for the library robot, and a faults API.
 */
import { DeviceType } from '../../src/scsi/opcodes.js';
import { DispatchTable, type CommandSpec } from '../engine/dispatch.js';
import type { CartridgeRef, DriveBay } from '../engine/library-link.js';
import type { CommandContext, CommandResult, LogicalUnit, TaskManagement } from '../engine/types.js';
import { EmulatedUnit } from '../engine/unit.js';
import { installSpc, spcCommands } from '../spc/index.js';
import { attributeCommands } from './attributes.js';
import { TapeDrive, type DriveFaults, type TapeDriveOptions } from './drive.js';
import { ioCommands } from './io.js';
import { mediumCommands } from './medium.js';
import { driveHooks, installDrivePages } from './pages.js';
import { positionCommands } from './position.js';

export { TapeDrive, TapeAlertFlag, earlyWarningPoint } from './drive.js';
export type { DriveFaults, MediumState, TapeDriveOptions } from './drive.js';
export { Attr, attributeCatalogue } from './mam.js';
export type { AttributeDef } from './mam.js';

/** The SSC command set of the drive (without the shared SPC commands). */
export const sscCommands: readonly CommandSpec<TapeDrive>[] = [...ioCommands, ...positionCommands, ...mediumCommands, ...attributeCommands];

/**
 * One emulated tape drive. As a {@link LogicalUnit}, `execute` never rejects (see the
 * engine contract): an aborted command (task management, transport timeout, a hung drive
 * being reset) resolves with TASK ABORTED. As a {@link DriveBay}, `insert` and
 * `unloadForRobot` take the personality's load/unload time (times `timeScale`) and cannot
 * be cancelled; they reject with `InsertRefused` when the drive refuses.
 */
export interface TapeDriveUnit extends LogicalUnit, DriveBay {
  /** The drive model (state, position, cartridge), for tests and scenarios. */
  readonly drive: TapeDrive;
  /** The engine unit (unit attentions, mode and log pages, recorded emulator bugs). */
  readonly unit: EmulatedUnit<TapeDrive>;
  readonly faults: DriveFaults;
  /** Flushes and closes the loaded cartridge file (process shutdown). */
  close(): void;
}

export function createTapeDrive(o: TapeDriveOptions): TapeDriveUnit {
  const drive = new TapeDrive(o);
  const unit = new EmulatedUnit<TapeDrive>({
    name: o.name ?? `drive-${o.serial}`,
    deviceType: DeviceType.sequentialAccess,
    identity: {
      vendor: o.personality.vendor,
      product: o.personality.product,
      revision: o.personality.revision,
      serial: o.serial,
      versionDescriptors: o.personality.versionDescriptors,
    },
    table: new DispatchTable<TapeDrive>([...spcCommands<TapeDrive>(), ...sscCommands]),
    device: drive,
    hooks: driveHooks(drive),
    timeScale: o.timeScale ?? 0,
    // A tape drive carries out its commands in the order they come (SSC: sequential access).
    ordered: true,
  });
  drive.unit = unit;
  installSpc(unit);
  installDrivePages(unit);
  return {
    drive,
    unit,
    faults: drive.faults,
    get deviceType() {
      return unit.deviceType;
    },
    get name() {
      return unit.name;
    },
    serial: drive.serial,
    vendorProduct: drive.vendorProduct,
    execute: (ctx: CommandContext): Promise<CommandResult> => unit.execute(ctx),
    taskManagement: (fn: TaskManagement, initiator: string): void => unit.taskManagement(fn, initiator),
    senseFormat: (initiator: string) => unit.senseFormat(initiator),
    hasMedium: () => drive.hasMedium(),
    insert: (c: CartridgeRef) => drive.insert(c),
    readyForRemoval: () => drive.readyForRemoval(),
    unloadForRobot: () => drive.unloadForRobot(),
    remove: () => drive.remove(),
    close: () => drive.close(),
  };
}
