/**
 * The seam between a library's robotics (SMC) and the drives it holds (SSC). The changer
 * never reaches into a drive model: it sees each drive as a {@link DriveBay}, so MOVE
 * MEDIUM into a drive is an insert, and taking a cartridge out works only once the drive
 * has unloaded it, as on real hardware.
 */

/** A physical cartridge as the robot carries it. The data lives in `path` (docs/cartridge-format.md). */
export interface CartridgeRef {
  /** Volume tag as printed on the label, e.g. `A00001L7`. */
  readonly barcode: string;
  /** Media generation/type name known to the drive personalities, e.g. `LTO7`, `LTO7-WORM`. */
  readonly mediaType: string;
  /** The cartridge file on disk. Created on first load when it does not exist. */
  readonly path: string;
  /** Physical write-protect tab. */
  readonly writeProtected: boolean;
  /** Nominal native capacity in bytes (a small value makes early-warning tests cheap). */
  readonly capacityBytes: number;
}

/** A drive as seen from the robot. */
export interface DriveBay {
  /** Drive serial number, reported by READ ELEMENT STATUS as the device identifier. */
  readonly serial: string;
  /** Vendor and product identification (INQUIRY bytes 8..31), for the DVCID descriptor. */
  readonly vendorProduct: string;
  /** Whether a cartridge sits in the drive (threaded or ejected). */
  hasMedium(): boolean;
  /**
   * The robot pushes a cartridge in. The drive loads it (thread, read cartridge memory) as
   * it would with auto-load; a drive that cannot take it (offline, already full) throws
   * an {@link InsertRefused}.
   */
  insert(cartridge: CartridgeRef): Promise<void>;
  /**
   * Whether the robot may pull the cartridge: it has been unloaded (LOAD/UNLOAD with
   * LOAD=0, or the changer's auto-unload) and removal is not prevented.
   */
  readyForRemoval(): boolean;
  /**
   * The changer asks the drive to unload (what libraries do when MOVE MEDIUM sources a
   * drive whose tape is still loaded). Rejects with {@link InsertRefused} when removal is
   * prevented by the drive's host.
   */
  unloadForRobot(): Promise<void>;
  /** Takes the cartridge out; only after {@link readyForRemoval}. */
  remove(): CartridgeRef;
}

/** Why a drive refused a robot operation; the changer maps `reason` to sense. */
export class InsertRefused extends Error {
  override readonly name = 'InsertRefused';
  constructor(
    readonly reason: 'full' | 'offline' | 'removal-prevented' | 'incompatible' | 'not-unloaded',
    message: string,
  ) {
    super(message);
  }
}
