/**
 * A minimal drive for exercising the changer without a tape model: it keeps the cartridge
 * the robot inserted, loads it at once, and exposes knobs a test turns to make the drive
 * refuse (offline, incompatible media, removal prevented by its host). Its logical unit
 * answers the SPC commands only. Also usable as a `driveFactory` where no SSC model is
 * wanted.
 */
import { DeviceType } from '../../src/scsi/opcodes.js';
import { DispatchTable } from '../engine/dispatch.js';
import { InsertRefused, type CartridgeRef, type DriveBay } from '../engine/library-link.js';
import { EmulatedUnit } from '../engine/unit.js';
import { installSpc, spcCommands } from '../spc/index.js';
import type { DriveFactory, LibraryDrive } from './drive-factory.js';

export class FakeDriveBay implements DriveBay {
  readonly vendorProduct: string;
  cartridge: CartridgeRef | undefined;
  /** Threaded (loaded); the robot may take the cartridge only when false. */
  loaded = false;
  /** The drive's host has PREVENT set: unloadForRobot refuses. */
  removalPrevented = false;
  offline = false;
  /** Media types this drive takes; undefined takes all. */
  accepts: ((mediaType: string) => boolean) | undefined;
  /** Fails the next inserts with a non-refusal error (a mechanical fault). */
  brokenInserts = 0;
  readonly log: string[] = [];

  constructor(
    readonly serial: string,
    vendorProduct = 'PTPVTS  FAKE-LTO        ',
  ) {
    this.vendorProduct = vendorProduct.padEnd(24, ' ').slice(0, 24);
  }

  hasMedium(): boolean {
    return this.cartridge !== undefined;
  }

  insert(c: CartridgeRef): Promise<void> {
    if (this.offline) return Promise.reject(new InsertRefused('offline', `${this.serial} is offline`));
    if (this.cartridge) return Promise.reject(new InsertRefused('full', `${this.serial} already holds ${this.cartridge.barcode}`));
    if (this.accepts && !this.accepts(c.mediaType)) return Promise.reject(new InsertRefused('incompatible', `${this.serial} does not take ${c.mediaType}`));
    if (this.brokenInserts > 0) {
      this.brokenInserts--;
      return Promise.reject(new Error(`${this.serial}: load mechanism fault`));
    }
    this.cartridge = c;
    this.loaded = true;
    this.log.push(`insert ${c.barcode}`);
    return Promise.resolve();
  }

  readyForRemoval(): boolean {
    return this.cartridge !== undefined && !this.loaded;
  }

  unloadForRobot(): Promise<void> {
    if (this.removalPrevented) return Promise.reject(new InsertRefused('removal-prevented', `${this.serial}: medium removal prevented`));
    this.loaded = false;
    this.log.push('unload');
    return Promise.resolve();
  }

  remove(): CartridgeRef {
    const c = this.cartridge;
    if (!c || this.loaded) throw new InsertRefused('not-unloaded', `${this.serial}: nothing unloaded to remove`);
    this.cartridge = undefined;
    this.log.push(`remove ${c.barcode}`);
    return c;
  }
}

/** A fake drive and its SPC-only logical unit. */
export function createFakeDrive(name: string, serial: string): LibraryDrive & { readonly bay: FakeDriveBay } {
  const bay = new FakeDriveBay(serial);
  const unit = new EmulatedUnit<FakeDriveBay>({
    name,
    deviceType: DeviceType.sequentialAccess,
    identity: { vendor: 'PTPVTS', product: 'FAKE-LTO', revision: '0001', serial },
    table: new DispatchTable<FakeDriveBay>(spcCommands<FakeDriveBay>()),
    device: bay,
    hooks: { notReady: () => (bay.cartridge ? undefined : { key: 0x02, asc: 0x3a, ascq: 0x00 }) },
  });
  installSpc(unit);
  return { unit, bay };
}

/** A {@link DriveFactory} of fake drives. */
export const fakeDriveFactory: DriveFactory = (spec) => createFakeDrive(spec.name, spec.serial);
