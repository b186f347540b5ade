/**
 * The host side of a VTC: the virtual drive model (a drive whose medium is a logical volume
 * of the PtP system), the volume catalogue, and the VTS's volume lists. The SCSI units and
 * the iSCSI target around them are assembled in src/cli/virtual-library.ts.
 */
export { VolumeCatalogue, CatalogueError, VolumeCategory } from './catalogue.js';
export type { CatalogueEntry } from './catalogue.js';
export { VirtualDrive, MAX_BLOCK, writeError } from './volume-drive.js';
export type { VirtualDriveOptions, VirtualDriveState, VirtualCartridge } from './volume-drive.js';
export { SenseError, DriveRefused } from './sense-error.js';
export { isBlankVolume, mountLost, notReadySense, NO_GENERATION_REASON } from './host-path.js';
export type { HostPath } from './host-path.js';
export { VtsVolumes } from './vts-volumes.js';
export type { VtsVolume, VtsVolumesOptions } from './vts-volumes.js';
