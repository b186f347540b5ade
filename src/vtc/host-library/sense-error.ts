/** How the virtual drive model answers: the sense a host sees, or a robot operation refused. */
import type { SenseData } from '../../scsi/sense.js';

/** A command ends in CHECK CONDITION with `sense` (and `data`, the Data-In sent with it: a short READ's bytes). */
export class SenseError extends Error {
  override readonly name = 'SenseError';
  constructor(
    readonly sense: SenseData,
    readonly data?: Uint8Array,
  ) {
    super(`CHECK CONDITION key=0x${sense.key.toString(16)} asc=0x${sense.asc.toString(16)} ascq=0x${sense.ascq.toString(16)}`);
  }
}

/** The drive refuses what the robot asks (the library maps `reason` to the changer's sense). */
export class DriveRefused extends Error {
  override readonly name = 'DriveRefused';
  constructor(
    readonly reason: 'full' | 'removal-prevented' | 'not-unloaded',
    message: string,
  ) {
    super(message);
  }
}
