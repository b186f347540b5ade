/**
 * Conditions the tape drive reports beyond the shared catalogue in src/scsi/sense.ts
 * (SPC-4 annex F assignments; keys as LTO drives report them).
 */
import { SenseKey, type SenseCode } from '../../src/scsi/sense.js';

function c(key: number, asc: number, ascq: number, name: string): SenseCode {
  return Object.freeze({ key, asc, ascq, name });
}

export const DriveSense = {
  /** An IMMED operation (rewind, locate, load, filemarks) is still running. */
  OPERATION_IN_PROGRESS: c(SenseKey.NOT_READY, 0x04, 0x07, 'LOGICAL UNIT NOT READY, OPERATION IN PROGRESS'),
  /** Encrypted block read while decryption is disabled. */
  UNABLE_TO_DECRYPT_DATA: c(SenseKey.DATA_PROTECT, 0x74, 0x01, 'UNABLE TO DECRYPT DATA'),
  /** Plain block read in DECRYPT mode (MIXED reads it). */
  UNENCRYPTED_DATA_WHILE_DECRYPTING: c(SenseKey.DATA_PROTECT, 0x74, 0x02, 'UNENCRYPTED DATA ENCOUNTERED WHILE DECRYPTING'),
  /** Encrypted block that the key in force does not open. */
  INCORRECT_DATA_ENCRYPTION_KEY: c(SenseKey.DATA_PROTECT, 0x74, 0x03, 'INCORRECT DATA ENCRYPTION KEY'),
  /** Told to the other initiators when one sets data encryption parameters. */
  DATA_ENCRYPTION_PARAMETERS_CHANGED_BY_ANOTHER_I_T_NEXUS: c(SenseKey.UNIT_ATTENTION, 0x2a, 0x11, 'DATA ENCRYPTION PARAMETERS CHANGED BY ANOTHER I_T NEXUS'),
  /** Told to every initiator when the drive's key manager (the operator) sets or clears the key. */
  DATA_ENCRYPTION_PARAMETERS_CHANGED_BY_VENDOR_SPECIFIC_EVENT: c(SenseKey.UNIT_ATTENTION, 0x2a, 0x12, 'DATA ENCRYPTION PARAMETERS CHANGED BY VENDOR SPECIFIC EVENT'),
  /** VERIFY with BYTCMP found a difference. */
  MISCOMPARE_DURING_VERIFY: c(SenseKey.MISCOMPARE, 0x1d, 0x00, 'MISCOMPARE DURING VERIFY OPERATION'),
} as const satisfies Record<string, SenseCode>;
