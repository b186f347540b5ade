/** Public surface of the VTS unit: the unit, its cache, premigration, and their errors. */
export { VtsUnit } from './vts-unit.js';
export type {
  VtsUnitOptions,
  VtsLibraryOptions,
  MountHandle,
  MountOptions,
  CloseOptions,
  HostRead,
  VolumeInfo,
  VolumeExport,
  VtsStatusView,
  PremigrationStatus,
} from './vts-unit.js';
export { VolumeCache, VolumeFile, hashFile, isPremigrated, isResident, tokenOf } from './volume-cache.js';
export type { VolumeCacheOptions, VolumeMeta, VolumeToken, TapeCopy } from './volume-cache.js';
export { Premigrator, CartridgeState } from './premigration.js';
export type { PremigratorOptions, PremigrationSource, CartridgeInfo, PremigratorStats } from './premigration.js';
export { VOLUME_MAGIC, RecordKind, VolumeParser, buildVolume, MAX_HOST_BLOCK } from './volume-format.js';
export type { RecordEntry } from './volume-format.js';
export * from './errors.js';
