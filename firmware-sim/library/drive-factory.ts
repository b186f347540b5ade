/**
 * How a library gets its drives. The library builds the changer itself but takes drives
 * from a factory, so the tape drive model (firmware-sim/ssc) and the library stay apart:
 * the changer reaches a drive only through the {@link DriveBay} the factory returns.
 */
import type { DriveBay } from '../engine/library-link.js';
import type { LogicalUnit } from '../engine/types.js';

/** What the library asks a factory for. */
export interface DriveSpec {
  /** Stable name for logs, e.g. `lib0/drive1`. */
  readonly name: string;
  /** Drive personality from the YAML, e.g. `LTO8`. */
  readonly personality: string;
  readonly serial: string;
  /** LUN the drive will have on the library's target (changer is LUN 0). */
  readonly lun: number;
  /** Element address of the drive's data transfer element. */
  readonly elementAddress: number;
  readonly timeScale: number;
  /** Name of the library, for the drive's logs. */
  readonly library: string;
}

/** A drive as the library holds it: the LU hosts talk to and the bay the robot uses. */
export interface LibraryDrive {
  readonly unit: LogicalUnit;
  readonly bay: DriveBay;
  /** Releases the drive's files; called by `EmulatedLibrary.close()`. */
  close?(): void | Promise<void>;
}

/**
 * Builds one drive. May be async (opening files). A factory that throws or rejects makes
 * {@link createLibrary} reject with that error as `cause`; it is not retried.
 */
export type DriveFactory = (spec: DriveSpec) => LibraryDrive | Promise<LibraryDrive>;
