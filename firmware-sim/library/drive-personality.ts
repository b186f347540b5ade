/**
 * Drive personality names a library YAML may use: a drive personality id
 * (`ibm-lto8-fh`, see firmware-sim/personalities/drives.ts) or a generation alias
 * (`LTO8`), which means the half-height IBM drive the TS3100/TS3200 take.
 */
import { drivePersonalities, mediaAccess, type DrivePersonality } from '../personalities/drives.js';

export function resolveDrivePersonality(name: string): DrivePersonality | undefined {
  const alias = /^LTO-?(\d+)$/i.exec(name);
  const id = alias ? `ibm-lto${alias[1]}-hh` : name;
  return drivePersonalities.find((d) => d.id === id);
}

export function knownDrivePersonalityNames(): string[] {
  return [...new Set(drivePersonalities.map((d) => `LTO${d.generation}`)), ...drivePersonalities.map((d) => d.id)];
}

/** Whether a drive of this personality loads the media type (read-only counts). */
export function driveLoads(personality: string, mediaType: string): boolean {
  const p = resolveDrivePersonality(personality);
  return p === undefined || mediaAccess(p, mediaType) !== 'incompatible';
}
