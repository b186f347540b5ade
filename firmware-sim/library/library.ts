/**
 * An emulated tape library: the changer (LUN 0) and its drives (LUN 1..n) on one target,
 * built from a validated {@link LibraryConfig}. Besides the SCSI side it offers what a
 * person at the library does (doors, import/export station) and what a test does to it
 * (faults, a hook on every robot move).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CartridgeRef } from '../engine/library-link.js';
import type { EmulatedTarget, LogicalUnit } from '../engine/types.js';
import type { EmulatedUnit } from '../engine/unit.js';
import { ChangerModel, OperatorActionError, createChangerUnit, ElementKind, elementKindTag, type DoorName, type MoveHook } from '../smc/index.js';
import type { LibraryConfig } from './config.js';
import type { DriveFactory, LibraryDrive } from './drive-factory.js';
import { mediaTypeFromBarcode, mediaTypeInfo } from './media-types.js';
import { commandMoveHook } from './move-hook.js';
import { tapeDriveFactory } from './tape-drive-factory.js';

export interface CreateLibraryOptions {
  /**
   * Builds each drive. Default: `tapeDriveFactory`, emulated SSC tape drives;
   * `fakeDriveFactory` (./fake-drive.ts) gives drives without a tape model.
   */
  readonly driveFactory?: DriveFactory;
  /** Overrides the configuration's `timeScale` (0: no mechanical delays). */
  readonly timeScale?: number;
  /** In-process move hook, run before the configured hook command. */
  readonly moveHook?: MoveHook;
}

/** A drive of the library with its place in it. */
export interface InstalledDrive extends LibraryDrive {
  readonly address: number;
  readonly lun: number;
  readonly serial: string;
  readonly personality: string;
}

export interface InventoryEntry {
  readonly address: number;
  readonly kind: 'transport' | 'storage' | 'import-export' | 'drive';
  readonly barcode: string;
  readonly mediaType: string;
}

/** Options of a cartridge the operator brings to the library. */
export interface NewCartridge {
  /** Media type; default from the barcode's LTO suffix. */
  readonly mediaType?: string;
  readonly capacityBytes?: number;
  readonly writeProtected?: boolean;
  /** Cartridge file; default `<mediaDir>/<barcode>.tape`. */
  readonly path?: string;
  /** Element to put it in; default the first empty one. */
  readonly address?: number;
}

/** Fault injection on a library. */
export interface LibraryFaults {
  /** The next `n` robot motions fail with HARDWARE ERROR / MECHANICAL POSITIONING ERROR and move nothing. */
  jamNextMoves(n: number): void;
  /**
   * Power cycle: commands in flight on the changer and drives abort, every initiator gets
   * POWER ON OCCURRED, prevention is cleared, the changer is NOT READY while it
   * recalibrates. Resolves when the changer is ready. Cartridges stay where they are.
   */
  powerCycle(): Promise<void>;
  /** Clears pending jams. */
  clear(): void;
}

export class EmulatedLibrary implements EmulatedTarget {
  readonly name: string;
  readonly faults: LibraryFaults;
  private closed = false;

  constructor(
    readonly config: LibraryConfig,
    readonly model: ChangerModel,
    readonly changer: EmulatedUnit<ChangerModel>,
    readonly drives: readonly InstalledDrive[],
  ) {
    this.name = config.name;
    const lunList = (): readonly number[] => [0, ...drives.map((d) => d.lun)];
    changer.lunList = lunList;
    for (const d of drives) {
      const u = d.unit as Partial<EmulatedUnit<unknown>>;
      if (typeof u.lunList === 'function') (d.unit as EmulatedUnit<unknown>).lunList = lunList;
    }
    this.faults = {
      jamNextMoves: (n) => model.jamNextMoves(n),
      clear: () => model.jamNextMoves(0),
      powerCycle: async () => {
        for (const d of drives) {
          const u = d.unit as Partial<EmulatedUnit<unknown>>;
          if (typeof u.powerCycle === 'function') u.powerCycle();
        }
        changer.powerCycle();
        await model.settled();
      },
    };
  }

  /** Changer at LUN 0, then the drives in element address order. */
  luns(): ReadonlyMap<number, LogicalUnit> {
    return new Map<number, LogicalUnit>([[0, this.changer], ...this.drives.map((d): [number, LogicalUnit] => [d.lun, d.unit])]);
  }

  /** Adds an in-process move hook (see `MoveHook` for veto and abort rules); returns its removal. */
  onMove(hook: MoveHook): () => void {
    return this.model.addMoveHook(hook);
  }

  /**
   * Opens the import/export door (default) or the library door. Rejects with
   * `OperatorActionError` `door-locked` when an initiator prevents medium removal; waits
   * for a robot motion in progress.
   */
  openDoor(door: DoorName = 'import-export'): Promise<void> {
    return this.model.openDoor(door);
  }

  /** Closes a door; see `ChangerModel.closeDoor` for the unit attentions raised. */
  closeDoor(door: DoorName = 'import-export'): Promise<void> {
    return this.model.closeDoor(door);
  }

  private newCartridge(barcode: string, o: NewCartridge): CartridgeRef {
    if (!/^[!-~]{1,32}$/.test(barcode) || /[*?]/.test(barcode)) throw new OperatorActionError('invalid-cartridge', `barcode "${barcode}" is not 1..32 printable characters without blanks, * or ?`);
    const fromLabel = mediaTypeFromBarcode(barcode);
    const mediaType = o.mediaType ?? fromLabel?.name;
    if (mediaType === undefined) throw new OperatorActionError('invalid-cartridge', `barcode ${barcode} has no LTO media suffix; give a media type`);
    const info = mediaTypeInfo(mediaType);
    if (!info) throw new OperatorActionError('invalid-cartridge', `unknown media type ${mediaType}`);
    if (fromLabel && fromLabel.name !== mediaType) throw new OperatorActionError('invalid-cartridge', `${mediaType} contradicts barcode ${barcode} (${fromLabel.name})`);
    return {
      barcode,
      mediaType,
      path: o.path ?? resolve(this.config.mediaDir, `${barcode.replace(/[^A-Za-z0-9._-]/g, '_')}.tape`),
      writeProtected: o.writeProtected ?? false,
      capacityBytes: o.capacityBytes ?? info.nativeCapacityBytes,
    };
  }

  /**
   * The operator puts a cartridge into the import/export station (door open). Returns
   * the element address used. Throws `OperatorActionError` (door closed, station full,
   * barcode already in the library, bad barcode or media type).
   */
  insertIntoImportExport(barcode: string, opts: NewCartridge = {}): number {
    const address = opts.address ?? this.model.firstEmptyImportExport();
    if (address === undefined) throw new OperatorActionError('element-full', `${this.name}: the import/export station is full`);
    this.model.operatorPlace(address, this.newCartridge(barcode, opts));
    return address;
  }

  /** The operator takes the cartridge out of an import/export element (door open). */
  removeFromImportExport(address: number): CartridgeRef {
    if (this.model.elements.get(address)?.kind !== ElementKind.importExport) throw new OperatorActionError('no-such-element', `${this.name}: 0x${address.toString(16)} is not an import/export element`);
    return this.model.operatorRemove(address);
  }

  /** With the library door open, the operator puts a cartridge into a storage slot. */
  insertIntoStorage(address: number, barcode: string, opts: NewCartridge = {}): void {
    if (this.model.elements.get(address)?.kind !== ElementKind.storage) throw new OperatorActionError('no-such-element', `${this.name}: 0x${address.toString(16)} is not a storage element`);
    this.model.operatorPlace(address, this.newCartridge(barcode, opts));
  }

  /** With the library door open, the operator takes a cartridge out of a storage slot. */
  removeFromStorage(address: number): CartridgeRef {
    if (this.model.elements.get(address)?.kind !== ElementKind.storage) throw new OperatorActionError('no-such-element', `${this.name}: 0x${address.toString(16)} is not a storage element`);
    return this.model.operatorRemove(address);
  }

  /** Every full element. */
  inventory(): InventoryEntry[] {
    const out: InventoryEntry[] = [];
    for (const e of this.model.elements.all()) {
      const o = this.model.occupant(e.address);
      if (o) out.push({ address: e.address, kind: elementKindTag[e.kind] as InventoryEntry['kind'], barcode: o.cartridge.barcode, mediaType: o.cartridge.mediaType });
    }
    return out;
  }

  /** Closes the drives (their cartridge files). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.drives) await d.close?.();
  }
}

/**
 * Builds a library from a validated configuration: the media directory (created when
 * missing), the drives (through `opts.driveFactory`), the cartridges already in drives
 * inserted into them, the changer model and LU. Rejects when the media directory cannot
 * be created, a drive cannot be built or refuses its initial cartridge (the error is the
 * `cause`); drives built before the failure are closed.
 */
export async function createLibrary(config: LibraryConfig, opts: CreateLibraryOptions = {}): Promise<EmulatedLibrary> {
  const timeScale = opts.timeScale ?? config.timeScale;
  const factory = opts.driveFactory ?? tapeDriveFactory;
  // Drives create cartridge files on first load, inside this directory.
  await mkdir(config.mediaDir, { recursive: true });
  const drives: InstalledDrive[] = [];
  const cartridgeRef = (c: LibraryConfig['cartridges'][number]): CartridgeRef => ({
    barcode: c.barcode,
    mediaType: c.mediaType,
    path: c.path,
    writeProtected: c.writeProtected,
    capacityBytes: c.capacityBytes,
  });
  try {
    for (const [i, d] of config.drives.entries()) {
      const lun = i + 1;
      const made = await factory({
        name: `${config.name}/drive${lun}`,
        personality: d.personality,
        serial: d.serial,
        lun,
        elementAddress: d.address,
        timeScale,
        library: config.name,
      });
      drives.push({ ...made, address: d.address, lun, serial: d.serial, personality: d.personality, ...(made.close ? { close: made.close.bind(made) } : {}) });
    }
    for (const c of config.cartridges) {
      const d = drives.find((x) => x.address === c.address);
      if (d) await d.bay.insert(cartridgeRef(c));
    }
  } catch (e) {
    for (const d of drives) await Promise.resolve(d.close?.()).catch(() => undefined);
    throw new Error(`createLibrary(${config.name}): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const model = new ChangerModel({
    name: config.name,
    personality: config.personality,
    layout: {
      transport: [config.personality.addressing.transport],
      storage: config.storage,
      importExport: config.importExport,
      dataTransfer: config.drives.map((d) => d.address),
    },
    drives: drives.map((d) => ({ address: d.address, bay: d.bay, lun: d.lun })),
    initial: config.cartridges.map((c) => ({
      address: c.address,
      cartridge: cartridgeRef(c),
      ...(c.altBarcode !== undefined ? { volumeTags: { alternate: { identifier: c.altBarcode, sequence: 0 } } } : {}),
    })),
    timeScale,
  });
  if (opts.moveHook) model.addMoveHook(opts.moveHook);
  if (config.moveHook) {
    // A configuration built in memory may name a base directory that does not exist.
    const cwd = existsSync(config.baseDir) ? { cwd: config.baseDir } : {};
    model.addMoveHook(commandMoveHook({ argv: config.moveHook.argv, timeoutSeconds: config.moveHook.timeoutSeconds, ...cwd }));
  }
  const changer = createChangerUnit(model, { name: `${config.name}/changer`, serial: config.serial });
  return new EmulatedLibrary(config, model, changer, drives);
}
