/**
 * Emulated tape libraries: the YAML configuration (docs/library-yaml.md) and the library
 * built from it, a changer at LUN 0 with its drives behind.
 */
export { formatIssue, LibraryConfigError, libraryConfigSchema, loadLibraryConfig, parseLibraryConfig } from './config.js';
export type { CartridgeConfig, ConfigIssue, ConfigSourceOptions, DriveConfig, LibraryConfig, LibraryConfigInput, MoveHookCommandConfig } from './config.js';
export { createLibrary, EmulatedLibrary } from './library.js';
export type { CreateLibraryOptions, InstalledDrive, InventoryEntry, LibraryFaults, NewCartridge } from './library.js';
export type { DriveFactory, DriveSpec, LibraryDrive } from './drive-factory.js';
export { createFakeDrive, FakeDriveBay, fakeDriveFactory } from './fake-drive.js';
export { createLibraryTapeDrive, tapeDriveFactory } from './tape-drive-factory.js';
export { driveLoads, knownDrivePersonalityNames, resolveDrivePersonality } from './drive-personality.js';
export { commandMoveHook, MoveHookError, moveHookEnv, runMoveHookCommand } from './move-hook.js';
export type { MoveHookCommand } from './move-hook.js';
export { MediaTypes, mediaTypeFromBarcode, mediaTypeInfo, mediaTypeNames } from './media-types.js';
export type { MediaTypeInfo, MediaTypeName } from './media-types.js';
export { MoveVetoed, OperatorActionError } from '../smc/index.js';
export type { DoorName, MoveEvent, MoveHook } from '../smc/index.js';
