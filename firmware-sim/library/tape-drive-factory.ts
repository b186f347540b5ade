/**
 * The default drive factory: emulated SSC tape drives (firmware-sim/ssc) with the
 * library-facing product id, as IBM libraries report their drives.
 */
import { inLibrary } from '../personalities/drives.js';
import { createTapeDrive } from '../ssc/index.js';
import type { DriveFactory } from './drive-factory.js';
import { knownDrivePersonalityNames, resolveDrivePersonality } from './drive-personality.js';

/** Throws RangeError for a personality name it does not know (config validation catches that first). */
export const tapeDriveFactory: DriveFactory = (spec) => {
  const p = resolveDrivePersonality(spec.personality);
  if (!p) throw new RangeError(`unknown drive personality '${spec.personality}' (known: ${knownDrivePersonalityNames().join(', ')})`);
  const drive = createTapeDrive({ personality: inLibrary(p), serial: spec.serial, name: spec.name, timeScale: spec.timeScale });
  return { unit: drive.unit, bay: drive, close: () => drive.close() };
};
