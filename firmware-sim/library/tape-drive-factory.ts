/**
 * The default drive factory: emulated SSC tape drives (firmware-sim/ssc) with the
 * library-facing product id, as IBM libraries report their drives.
 */
import { inLibrary } from '../personalities/drives.js';
import { createTapeDrive, type TapeDriveUnit } from '../ssc/index.js';
import type { DriveFactory, DriveSpec } from './drive-factory.js';
import { knownDrivePersonalityNames, resolveDrivePersonality } from './drive-personality.js';

/** Throws RangeError for a personality name it does not know (config validation catches that first). */
export function createLibraryTapeDrive(spec: DriveSpec): TapeDriveUnit {
  const p = resolveDrivePersonality(spec.personality);
  if (!p) throw new RangeError(`unknown drive personality '${spec.personality}' (known: ${knownDrivePersonalityNames().join(', ')})`);
  return createTapeDrive({ personality: inLibrary(p), serial: spec.serial, name: spec.name, timeScale: spec.timeScale });
}

/** The default factory: {@link createLibraryTapeDrive}, its engine unit as the LU. */
export const tapeDriveFactory: DriveFactory = (spec) => {
  const drive = createLibraryTapeDrive(spec);
  return { unit: drive.unit, bay: drive, close: () => drive.close() };
};
