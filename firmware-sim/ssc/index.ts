/**
 * The emulated SSC tape drive. {@link createTapeDrive} builds one drive: a logical unit
 * for the fronts, a {@link DriveBay} for the library robot, and a faults API.
 */
import { getU16 } from '../../src/scsi/bytes.js';
import { DeviceType, SpcOpcode, SscOpcode } from '../../src/scsi/opcodes.js';
import { invalidParamField } from '../engine/check.js';
import { DispatchTable, type CommandSpec, type Handler } from '../engine/dispatch.js';
import type { CartridgeRef, DriveBay } from '../engine/library-link.js';
import type { CommandContext, CommandResult, LogicalUnit, TaskManagement } from '../engine/types.js';
import { EmulatedUnit } from '../engine/unit.js';
import { installSpc, spcCommands } from '../spc/index.js';
import { attributeCommands } from './attributes.js';
import { TapeDrive, type DriveFaults, type TapeDriveOptions } from './drive.js';
import { immediate } from './immediate.js';
import { ioCommands } from './io.js';
import { mediumCommands } from './medium.js';
import { driveHooks, installDrivePages } from './pages.js';
import { positionCommands } from './position.js';
import { securityCommands } from './security.js';
import { sscLevel, type DrivePersonality } from '../personalities/drives.js';

export { TapeDrive, TapeAlertFlag, earlyWarningPoint } from './drive.js';
export type { DriveFaults, MediumState, TapeDriveOptions } from './drive.js';
export { StreamingModel } from './streaming.js';
export type { StreamingParameters, StreamingStats, TapeMotion } from './streaming.js';
export { Attr, attributeCatalogue } from './mam.js';
export type { AttributeDef } from './mam.js';
export { DataEncryption, DecryptionMode, EncryptionMode } from './security.js';
export type { EncryptionConfig, EncryptionParameters } from './security.js';
export { DriveSense } from './sense-codes.js';

/** The SSC command set of the drive (without the shared SPC commands). */
export const sscCommands: readonly CommandSpec<TapeDrive>[] = [...ioCommands, ...positionCommands, ...mediumCommands, ...attributeCommands];

/** Where each command that has an IMMED bit keeps it (SSC-4): CDB byte 1, this bit. */
const IMMED_BIT = new Map<number, number>([
  [SscOpcode.REWIND, 0x01],
  [SscOpcode.LOAD_UNLOAD, 0x01],
  [SscOpcode.LOCATE_10, 0x01],
  [SscOpcode.LOCATE_16, 0x01],
  [SscOpcode.WRITE_FILEMARKS_6, 0x01],
  [SscOpcode.WRITE_FILEMARKS_16, 0x01],
  [SscOpcode.ERASE_6, 0x02],
  [SscOpcode.FORMAT_MEDIUM, 0x01],
]);

/**
 * The command set of a drive of personality `p`: its SSC level decides the fields a
 * command has (MLOI of READ BLOCK LIMITS is SSC-4), encryption adds SECURITY PROTOCOL IN/OUT, and the IMMED bit of REWIND, LOAD/UNLOAD, LOCATE, WRITE FILEMARKS, ERASE and FORMAT MEDIUM is
 * honoured (immediate.ts).
 */
export function sscCommandsFor(p: DrivePersonality): CommandSpec<TapeDrive>[] {
  const ssc4 = sscLevel(p) >= 4;
  const specs = [...sscCommands, ...(p.features.encryption ? securityCommands : [])];
  return specs.map((s) => {
    // The MLOI bit of READ BLOCK LIMITS came with SSC-4; an SSC-3 drive finds it reserved.
    if (s.opcode === SscOpcode.READ_BLOCK_LIMITS && !ssc4) return { ...s, usage: s.usage.map((u, i) => (i === 1 ? 0 : u)) };
    const bit = IMMED_BIT.get(s.opcode);
    return bit === undefined ? s : { ...s, handler: immediate(s.name, s.handler, (cdb) => ((cdb[1] ?? 0) & bit) !== 0) };
  });
}

/**
 * MODE SELECT for the drive: the shared command, plus the BUFFERED MODE field of the mode
 * parameter header's device-specific parameter (SSC-4: bits 6..4; 0 unbuffered, 1
 * buffered). It is checked before anything is applied and set once the rest is accepted;
 * other values (2: buffered per initiator) answer INVALID FIELD IN PARAMETER LIST. WP and
 * SPEED are ignored, as SSC allows (the drive picks its speed, streaming.ts).
 */
function withBufferedMode(spec: CommandSpec<TapeDrive>): CommandSpec<TapeDrive> {
  const ten = spec.opcode === SpcOpcode.MODE_SELECT_10;
  const inner: Handler<TapeDrive> = spec.handler;
  const handler: Handler<TapeDrive> = (x) => {
    const len = ten ? getU16(x.cdb, 7) : (x.cdb[4] ?? 0);
    const at = ten ? 3 : 2;
    const header = len > at && x.dataOut.length > at ? x.dataOut[at] : undefined;
    const mode = header === undefined ? undefined : (header >> 4) & 0x07;
    if (mode !== undefined && mode > 1) invalidParamField(at, 6);
    const apply = <T>(v: T): T => {
      if (mode !== undefined) x.device.bufferedMode = mode;
      return v;
    };
    const r = inner(x);
    return r instanceof Promise ? r.then(apply) : apply(r);
  };
  return { ...spec, handler };
}

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
    table: new DispatchTable<TapeDrive>([
      ...spcCommands<TapeDrive>().map((s) => (s.opcode === SpcOpcode.MODE_SELECT_6 || s.opcode === SpcOpcode.MODE_SELECT_10 ? withBufferedMode(s) : s)),
      ...sscCommandsFor(o.personality),
    ]),
    device: drive,
    hooks: driveHooks(drive),
    timeScale: o.timeScale ?? 0,
    // A tape drive carries out its commands in the order they come (SSC: sequential access).
    ordered: true,
  });
  drive.unit = unit;
  installSpc(unit);
  installDrivePages(unit, drive.compression);
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
    execute: (ctx: CommandContext): CommandResult | Promise<CommandResult> => unit.execute(ctx),
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
