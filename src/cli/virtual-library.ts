/**
 * A VTC's virtual library as hosts see it: the emulator's engine, SPC command set, changer
 * model and iSCSI target wired around the virtual drive model of src/vtc/host-library (a
 * drive whose medium is a logical volume of the PtP system). This file is a composition
 * root (DESIGN.md boundaries): the SSC CDB decoding of the virtual drive is here, the tape
 * semantics in the model.
 *
 * LUN 0 is the changer (SMC), LUN 1.. the drives (SSC). The changer's storage slots hold
 * the volumes of the volume catalogue, shared by the libraries of every VTC: each volume
 * sits in its home slot of each library. A volume mounted through another VTC stays in its
 * slot here, and a MOVE MEDIUM of it into a drive fails with NOT READY / OPERATION IN
 * PROGRESS while a VTS reports it mounted. Before each changer command the library
 * re-reads the catalogue when it changed (`ptpvts volumes insert|eject` in another
 * process): volumes inserted appear in their home slots, volumes ejected leave their slot
 * (or their import/export element).
 */
import type { Logger } from 'pino';
import { getU16, getU24, getU32, getU64, setU16, setU24, setU32, setU64 } from '../scsi/bytes.js';
import { DeviceType, SpcOpcode, SscOpcode } from '../scsi/opcodes.js';
import { Sense, sense } from '../scsi/sense.js';
import { CheckCondition, invalidCdbField, invalidParamField } from '../../firmware-sim/engine/check.js';
import { DispatchTable, usage } from '../../firmware-sim/engine/dispatch.js';
import type { CommandSpec, Exec, HandlerResult } from '../../firmware-sim/engine/dispatch.js';
import { InsertRefused } from '../../firmware-sim/engine/library-link.js';
import type { CartridgeRef, DriveBay } from '../../firmware-sim/engine/library-link.js';
import type { CommandContext, CommandResult, EmulatedTarget, LogicalUnit, TaskManagement } from '../../firmware-sim/engine/types.js';
import { EmulatedUnit } from '../../firmware-sim/engine/unit.js';
import { startIscsiTarget } from '../../firmware-sim/front/iscsi-target/target.js';
import type { IscsiTargetChap, IscsiTargetHandle } from '../../firmware-sim/front/iscsi-target/target.js';
import { LibraryPersonalities } from '../../firmware-sim/personalities/libraries.js';
import type { LibraryPersonality } from '../../firmware-sim/personalities/libraries.js';
import { ChangerModel, MoveVetoed } from '../../firmware-sim/smc/changer.js';
import { createChangerUnit } from '../../firmware-sim/smc/changer-unit.js';
import { ElementKind } from '../../firmware-sim/smc/elements.js';
import { installSpc, spcCommands } from '../../firmware-sim/spc/index.js';
import type { CopyMode } from '../ptp/volumes.js';
import type { CloseResult, VtcAgent } from '../vtc/agent.js';
import { CatalogueError, VolumeCatalogue } from '../vtc/host-library/catalogue.js';
import type { CatalogueEntry } from '../vtc/host-library/catalogue.js';
import { VtsVolumes } from '../vtc/host-library/vts-volumes.js';
import type { HostPath } from '../vtc/host-library/host-path.js';
import { DriveRefused, SenseError } from '../vtc/host-library/sense-error.js';
import { MAX_BLOCK, VirtualDrive } from '../vtc/host-library/volume-drive.js';
import type { VirtualDriveOptions } from '../vtc/host-library/volume-drive.js';

// ------------------------------------------------------------------ the virtual drive's SSC commands

type D = VirtualDrive<CartridgeRef>;

/** The model's answers as the engine takes them: a SenseError is CHECK CONDITION. */
async function answer<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof SenseError) throw new CheckCondition(e.sense, e.data);
    throw e;
  }
}

const i24 = (v: number): number => (v & 0x800000 ? v - 0x1000000 : v);

function read6(x: Exec<D>): Promise<HandlerResult> {
  const d = x.device;
  const sili = ((x.cdb[1] ?? 0) & 0x02) !== 0;
  const fixed = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  const count = getU24(x.cdb, 2);
  if (fixed && sili) invalidCdbField(1, 1);
  if (fixed && d.blockSize === 0) invalidCdbField(1, 0);
  return answer(
    (async (): Promise<HandlerResult> => {
      if (count === 0) {
        await d.ready();
        return undefined;
      }
      return fixed ? d.readFixed(count) : d.readVariable(count, sili);
    })(),
  );
}

function write6(x: Exec<D>): Promise<HandlerResult> {
  const d = x.device;
  const fixed = ((x.cdb[1] ?? 0) & 0x01) !== 0;
  const count = getU24(x.cdb, 2);
  if (fixed && d.blockSize === 0) invalidCdbField(1, 0);
  if (!fixed && count > MAX_BLOCK) invalidCdbField(2, 7);
  return answer(
    (async (): Promise<HandlerResult> => {
      if (count === 0) {
        await d.ready();
        return undefined;
      }
      await d.write(x.dataOut, fixed ? d.blockSize : count, fixed ? count : 1, fixed);
      return undefined;
    })(),
  );
}

const SPACE_CODES: Record<number, 'blocks' | 'filemarks' | 'eod'> = { 0: 'blocks', 1: 'filemarks', 3: 'eod' };

function space(x: Exec<D>, count: number): Promise<HandlerResult> {
  const what = SPACE_CODES[(x.cdb[1] ?? 0) & 0x0f];
  if (what === undefined) invalidCdbField(1, 3);
  return answer(x.device.space(what, count)).then(() => undefined);
}

function readPosition(x: Exec<D>): HandlerResult {
  const sa = (x.cdb[1] ?? 0) & 0x1f;
  if (sa !== 0 && sa !== 1 && sa !== 6) invalidCdbField(1, 4);
  if (getU16(x.cdb, 7) !== 0) invalidCdbField(7, 7);
  let at: { pos: number; filemarks: number };
  try {
    at = x.device.position();
  } catch (e) {
    if (e instanceof SenseError) throw new CheckCondition(e.sense);
    throw e;
  }
  const flags = at.pos === 0 ? 0x80 : 0;
  if (sa === 6) {
    const b = new Uint8Array(32);
    b[0] = flags;
    setU64(b, 8, at.pos);
    setU64(b, 16, at.filemarks);
    return b;
  }
  const b = new Uint8Array(20);
  b[0] = flags;
  setU32(b, 4, at.pos);
  setU32(b, 8, at.pos);
  return b;
}

function readBlockLimits(): Uint8Array {
  const b = new Uint8Array(6);
  setU24(b, 1, MAX_BLOCK);
  setU16(b, 4, 1);
  return b;
}

function preventAllow(x: Exec<D>): HandlerResult {
  if (((x.cdb[4] ?? 0) & 0x03) !== 0) x.device.preventedBy.add(x.initiator);
  else x.device.preventedBy.delete(x.initiator);
  return undefined;
}

const u64 = (x: Exec<D>, at: number): number => {
  const n = getU64(x.cdb, at);
  const signed = n >= 1n << 63n ? n - (1n << 64n) : n;
  if (signed > BigInt(Number.MAX_SAFE_INTEGER) || signed < -BigInt(Number.MAX_SAFE_INTEGER)) invalidCdbField(at, 7);
  return Number(signed);
};

const sscCommands: CommandSpec<D>[] = [
  { opcode: SscOpcode.REWIND, name: 'REWIND', usage: usage(6, { 1: 0x01 }), handler: (x) => answer(x.device.rewind()).then(() => undefined), nominalTimeout: 100, recommendedTimeout: 600 },
  { opcode: SscOpcode.READ_BLOCK_LIMITS, name: 'READ BLOCK LIMITS', usage: usage(6), handler: readBlockLimits },
  { opcode: SscOpcode.READ_6, name: 'READ(6)', usage: usage(6, { 1: 0x03, 2: 0xff, 3: 0xff, 4: 0xff }), handler: read6, nominalTimeout: 60, recommendedTimeout: 1200 },
  { opcode: SscOpcode.WRITE_6, name: 'WRITE(6)', usage: usage(6, { 1: 0x01, 2: 0xff, 3: 0xff, 4: 0xff }), handler: write6, nominalTimeout: 60, recommendedTimeout: 1200 },
  { opcode: SscOpcode.WRITE_FILEMARKS_6, name: 'WRITE FILEMARKS(6)', usage: usage(6, { 1: 0x01, 2: 0xff, 3: 0xff, 4: 0xff }), handler: (x) => answer(x.device.filemarks(getU24(x.cdb, 2))).then(() => undefined) },
  { opcode: SscOpcode.WRITE_FILEMARKS_16, name: 'WRITE FILEMARKS(16)', usage: usage(16, { 1: 0x01, 12: 0xff, 13: 0xff, 14: 0xff }), handler: (x) => answer(x.device.filemarks(getU24(x.cdb, 12))).then(() => undefined) },
  { opcode: SscOpcode.SPACE_6, name: 'SPACE(6)', usage: usage(6, { 1: 0x0f, 2: 0xff, 3: 0xff, 4: 0xff }), handler: (x) => space(x, i24(getU24(x.cdb, 2))) },
  { opcode: SscOpcode.SPACE_16, name: 'SPACE(16)', usage: usage(16, { 1: 0x0f, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff }), handler: (x) => space(x, u64(x, 4)) },
  { opcode: SscOpcode.LOAD_UNLOAD, name: 'LOAD UNLOAD', usage: usage(6, { 1: 0x01, 4: 0x0f }), handler: (x) => answer(x.device.loadUnload(((x.cdb[4] ?? 0) & 0x01) !== 0)).then(() => undefined), nominalTimeout: 60, recommendedTimeout: 600 },
  {
    opcode: SscOpcode.LOCATE_10,
    name: 'LOCATE(10)',
    usage: usage(10, { 1: 0x07, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 8: 0xff }),
    handler: (x) => {
      // One partition: CHANGE PARTITION to another is refused.
      if ((x.cdb[1] ?? 0) & 0x02 && (x.cdb[8] ?? 0) !== 0) invalidCdbField(8, 7);
      return answer(x.device.locate(getU32(x.cdb, 3))).then(() => undefined);
    },
  },
  {
    opcode: SscOpcode.LOCATE_16,
    name: 'LOCATE(16)',
    usage: usage(16, { 1: 0x1b, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff }),
    handler: (x) => {
      if (((x.cdb[1] ?? 0) >> 3) & 0x03) invalidCdbField(1, 4);
      if ((x.cdb[1] ?? 0) & 0x02 && (x.cdb[3] ?? 0) !== 0) invalidCdbField(3, 7);
      const n = u64(x, 4);
      if (n < 0) invalidCdbField(4, 7);
      return answer(x.device.locate(n)).then(() => undefined);
    },
  },
  { opcode: SscOpcode.READ_POSITION, name: 'READ POSITION', usage: usage(10, { 1: 0x1f, 7: 0xff, 8: 0xff }), handler: readPosition },
  { opcode: SpcOpcode.PREVENT_ALLOW_MEDIUM_REMOVAL, name: 'PREVENT ALLOW MEDIUM REMOVAL', usage: usage(6, { 4: 0x03 }), handler: preventAllow },
];

export interface VirtualDriveUnit {
  readonly drive: D;
  readonly unit: EmulatedUnit<D>;
  /** The drive as the changer's robot sees it. */
  readonly bay: DriveBay;
}

/** The robot's view of the model: its refusals become the emulator's InsertRefused. */
function bayOf(d: D): DriveBay {
  const refused = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof DriveRefused) throw new InsertRefused(e.reason, e.message);
      throw e;
    }
  };
  return {
    serial: d.serial,
    vendorProduct: d.vendorProduct,
    hasMedium: () => d.hasMedium(),
    insert: (c) => refused(() => d.insert(c)),
    readyForRemoval: () => d.readyForRemoval(),
    unloadForRobot: () => d.unloadForRobot().catch((e: unknown) => refused(() => { throw e; })),
    remove: () => refused(() => d.remove()),
  };
}

/** One virtual drive: the model, its logical unit (the emulator's SPC set plus the SSC commands above) and its bay. */
export function createVirtualDriveUnit(o: VirtualDriveOptions): VirtualDriveUnit {
  const drive = new VirtualDrive<CartridgeRef>(o);
  // The shared SPC set, with TEST UNIT READY replaced: here it mounts (a network call).
  // It waits its turn like the tape commands, so it never mounts under one of them. The
  // one that finds the medium ready after NOT READY answers the unit attention this raises
  // itself, as a drive that finished becoming ready does: st's open then sees the change.
  const testUnitReady = async (x: Exec<D>): Promise<HandlerResult> => {
    await answer(x.device.ready());
    const ua = x.unit.unitAttentions.take(x.initiator);
    if (ua !== undefined) throw new CheckCondition(ua);
    return undefined;
  };
  const spc = spcCommands<D>().map((c) => (c.opcode === SpcOpcode.TEST_UNIT_READY ? { ...c, overtakes: false, handler: testUnitReady } : c));
  const unit = new EmulatedUnit<D>({
    name: o.name,
    deviceType: DeviceType.sequentialAccess,
    identity: { vendor: 'PTPVTS', product: 'VIRTUAL TAPE', revision: '0100', serial: o.serial, versionDescriptors: [0x0960] },
    table: new DispatchTable<D>([...spc, ...sscCommands]),
    device: drive,
    hooks: {
      notReady: () => drive.stateSense(),
      // Buffered mode 1: a WRITE answers GOOD once sent to the VTS (a few on their way, volume-drive.ts); the commit is at unload.
      deviceSpecificParameter: () => 0x10,
      blockDescriptors: () => {
        const b = new Uint8Array(8);
        setU24(b, 5, drive.blockSize);
        return b;
      },
      selectBlockDescriptor: (bd) => {
        const len = getU24(bd, 5);
        if (len > MAX_BLOCK) invalidParamField(5, 7);
        drive.blockSize = len;
      },
      onReset: () => drive.preventedBy.clear(),
    },
    ordered: true,
  });
  drive.onLoaded = () => unit.raise(Sense.NOT_READY_TO_READY_CHANGE);
  drive.onBecameReady = () => unit.raise(Sense.NOT_READY_TO_READY_CHANGE);
  installSpc(unit);
  return { drive, unit, bay: bayOf(drive) };
}

// ------------------------------------------------------------------ the library

/** Media type of a virtual cartridge (any drive of a virtual library takes it). */
export const VIRTUAL_MEDIA = 'PTP-VOLUME';

const PERSONALITY: LibraryPersonality = {
  ...LibraryPersonalities['PTPVTS-LIB'],
  id: 'PTPVTS-VLIB',
  description: 'ptpvts virtual library of a VTC (composite library)',
  product: 'VIRTUAL LIBRARY',
  timing: { moveSeconds: 0, driveMoveExtraSeconds: 0, positionSeconds: 0, scanSecondsPerElement: 0, powerOnSeconds: 0 },
};

const ADDR = PERSONALITY.addressing;

export function cartridgeOf(volser: string): CartridgeRef {
  return { barcode: volser, mediaType: VIRTUAL_MEDIA, path: `ptp:${volser}`, writeProtected: false, capacityBytes: 0 };
}

export interface VirtualLibraryOptions {
  /** The VTC whose host path the drives use (a VtcAgent). */
  readonly host: HostPath;
  readonly catalogue: VolumeCatalogue;
  /** Target name, e.g. `vtc1-vlib` (the IQN is made from it unless `iqn` is given). */
  readonly name: string;
  readonly iqn?: string;
  /** Virtual drives (default 2). */
  readonly drives?: number;
  /** Import/export elements (default 4). */
  readonly importExport?: number;
  /** Portal. Default 127.0.0.1, port 0 (any). */
  readonly listen?: { readonly host: string; readonly port: number };
  readonly chap?: IscsiTargetChap;
  readonly log: Logger;
  /**
   * Who holds `volser` mounted now, or null: a VTS name when a VTS reports it mounted.
   * The library asks before moving a volume into a drive.
   */
  readonly inUse?: (volser: string) => Promise<string | null>;
}

/** What one library element holds, for status and `ptpvts volumes show`. */
export interface LibraryElementView {
  readonly address: number;
  readonly kind: 'slot' | 'drive' | 'import-export';
  readonly volser: string | null;
}

/**
 * Error: `start` rejects when the catalogue cannot be read or the portal is taken. A
 * catalogue change that cannot be applied (a door locked by a host's PREVENT) is logged and
 * retried at the next changer command. `stop` ends mounts without committing them (the
 * hosts never unloaded) and closes every host connection.
 */
export class VirtualLibrary implements EmulatedTarget {
  readonly name: string;
  readonly changer: ChangerModel;
  readonly changerUnit: EmulatedUnit<ChangerModel>;
  readonly drives: readonly VirtualDriveUnit[];
  readonly catalogue: VolumeCatalogue;
  readonly log: Logger;
  readonly #o: VirtualLibraryOptions;
  readonly #luns: Map<number, LogicalUnit>;
  #entries = new Map<string, CatalogueEntry>();
  #version = '';
  #syncing: Promise<void> | null = null;
  #target: IscsiTargetHandle | null = null;

  private constructor(o: VirtualLibraryOptions, entries: CatalogueEntry[], slots: number) {
    this.#o = o;
    this.name = o.name;
    this.catalogue = o.catalogue;
    this.log = o.log.child({ library: o.name });
    const nDrives = o.drives ?? 2;
    const nIe = o.importExport ?? 4;
    if (!Number.isInteger(nDrives) || nDrives < 1 || nDrives > 64) throw new RangeError(`a virtual library has 1..64 drives (got ${nDrives})`);
    if (!Number.isInteger(nIe) || nIe < 0 || nIe > 64) throw new RangeError(`a virtual library has 0..64 import/export elements (got ${nIe})`);
    this.#entries = new Map(entries.map((e) => [e.volser, e]));
    this.drives = Array.from({ length: nDrives }, (_, i) =>
      createVirtualDriveUnit({
        host: o.host,
        serial: `${o.host.self}D${i + 1}`.toUpperCase().replace(/[^A-Z0-9]/g, '').slice(0, 12),
        name: `${o.name}/drive${i + 1}`,
        log: this.log,
        copyModeOf: (v) => this.#entries.get(v)?.copyMode as CopyMode | undefined,
        onCommitted: (r) => this.#committed(r),
      }),
    );
    const layout = {
      transport: [ADDR.transport],
      importExport: Array.from({ length: nIe }, (_, i) => ADDR.importExport + i),
      dataTransfer: Array.from({ length: nDrives }, (_, i) => ADDR.dataTransfer + i),
      storage: Array.from({ length: slots }, (_, i) => ADDR.storage + i),
    };
    this.changer = new ChangerModel({
      name: o.name,
      personality: PERSONALITY,
      layout,
      drives: this.drives.map((d, i) => ({ address: ADDR.dataTransfer + i, bay: d.bay, lun: i + 1 })),
      initial: entries.filter((e) => e.slot < slots).map((e) => ({ address: ADDR.storage + e.slot, cartridge: cartridgeOf(e.volser) })),
    });
    this.changerUnit = createChangerUnit(this.changer, { name: `${o.name}/changer`, serial: `${o.host.self}VLIB`.toUpperCase().replace(/[^A-Z0-9]/g, '').slice(0, 12) });
    this.changer.addMoveHook((ev) => this.#checkMove(ev.barcode, ev.destinationKind));
    const lunList = (): number[] => [0, ...this.drives.map((_, i) => i + 1)];
    this.changerUnit.lunList = lunList;
    for (const d of this.drives) d.unit.lunList = lunList;
    const changerLu: LogicalUnit = {
      deviceType: this.changerUnit.deviceType,
      name: this.changerUnit.name,
      execute: (ctx: CommandContext): Promise<CommandResult> => this.#changerCommand(ctx),
      taskManagement: (fn: TaskManagement, initiator: string): void => this.changerUnit.taskManagement(fn, initiator),
      senseFormat: (initiator: string) => this.changerUnit.senseFormat(initiator),
    };
    this.#luns = new Map<number, LogicalUnit>([[0, changerLu], ...this.drives.map((d, i): [number, LogicalUnit] => [i + 1, d.unit])]);
  }

  /** Builds the library from the catalogue and serves it on its portal. */
  static async start(o: VirtualLibraryOptions): Promise<VirtualLibrary> {
    const version = await o.catalogue.version();
    const [entries, slots] = [await o.catalogue.list(), await o.catalogue.slots()];
    const lib = new VirtualLibrary(o, entries, slots);
    lib.#version = version;
    const l = o.listen ?? { host: '127.0.0.1', port: 0 };
    lib.#target = await startIscsiTarget({ target: lib, host: l.host, port: l.port, ...(o.iqn === undefined ? {} : { iqn: o.iqn }), ...(o.chap === undefined ? {} : { chap: o.chap }) });
    lib.log.info({ portal: `${lib.#target.host}:${lib.#target.port}`, iqn: lib.#target.iqn, drives: lib.drives.length, volumes: entries.length }, 'virtual library serving');
    return lib;
  }

  luns(): ReadonlyMap<number, LogicalUnit> {
    return this.#luns;
  }

  get portal(): { host: string; port: number; iqn: string } {
    const t = this.#target;
    if (t === null) throw new Error(`virtual library ${this.name} is not serving`);
    return { host: t.host, port: t.port, iqn: t.iqn };
  }

  /** Every element and what it holds. */
  elements(): LibraryElementView[] {
    const inv = this.changer.inventory();
    const kindOf = (k: number): LibraryElementView['kind'] => (k === ElementKind.dataTransfer ? 'drive' : k === ElementKind.importExport ? 'import-export' : 'slot');
    return this.changer.elements
      .all()
      .filter((e) => e.kind !== ElementKind.transport)
      .map((e) => ({ address: e.address, kind: kindOf(e.kind), volser: inv.get(e.address) ?? null }));
  }

  async #changerCommand(ctx: CommandContext): Promise<CommandResult> {
    await this.sync().catch((e: unknown) => this.log.warn({ err: e }, 'catalogue could not be read: the changer answers from what it had'));
    return this.changerUnit.execute(ctx);
  }

  async #checkMove(volser: string, to: number): Promise<void> {
    if (to !== ElementKind.dataTransfer) return;
    const holder = await (this.#o.inUse?.(volser) ?? Promise.resolve(null));
    if (holder !== null) {
      throw new MoveVetoed(`${volser} is in use (mounted on ${holder})`, sense(Sense.OPERATION_IN_PROGRESS));
    }
  }

  async #committed(r: CloseResult): Promise<void> {
    const e = this.#entries.get(r.volser);
    if (e === undefined || e.category === 'private') return;
    // A scratch volume that was written holds a host's data now.
    this.#entries.set(r.volser, { ...e, category: 'private' });
    await this.catalogue.setCategory(r.volser, 'private').catch((err: unknown) => this.log.error({ err, volser: r.volser }, 'could not move the volume to the private category'));
  }

  /** Applies catalogue changes made since the last look (inserted and ejected volumes). */
  sync(): Promise<void> {
    this.#syncing ??= this.#sync().finally(() => (this.#syncing = null));
    return this.#syncing;
  }

  async #sync(): Promise<void> {
    const version = await this.catalogue.version();
    if (version === this.#version) return;
    const entries = await this.catalogue.list();
    this.#entries = new Map(entries.map((e) => [e.volser, e]));
    const ch = this.changer;
    const storage = ch.elements.ofKind(ElementKind.storage);
    let pending = false;
    for (const [address, volser] of ch.inventory()) {
      if (this.#entries.has(volser)) continue;
      const kind = ch.elements.get(address)?.kind;
      if (kind === ElementKind.dataTransfer) {
        pending = true;
        continue;
      }
      const door = kind === ElementKind.importExport ? 'import-export' : 'library';
      try {
        await ch.openDoor(door);
        ch.operatorRemove(address);
        this.log.info({ volser, address }, 'volume ejected from the catalogue: taken out');
      } catch (e) {
        pending = true;
        this.log.warn({ err: e, volser }, 'ejected volume could not be taken out yet');
      } finally {
        await ch.closeDoor(door);
      }
    }
    for (const e of entries) {
      if (ch.find(e.volser) !== undefined) continue;
      const home = storage[e.slot]?.address;
      const address = home !== undefined && ch.occupant(home) === undefined ? home : storage.find((s) => ch.occupant(s.address) === undefined)?.address;
      if (address === undefined) {
        this.log.warn({ volser: e.volser }, 'no empty slot for an inserted volume');
        pending = true;
        continue;
      }
      try {
        await ch.openDoor('library');
        ch.operatorPlace(address, cartridgeOf(e.volser));
        this.log.info({ volser: e.volser, address }, 'volume inserted in the catalogue: placed');
      } catch (err) {
        pending = true;
        this.log.warn({ err, volser: e.volser }, 'inserted volume could not be placed yet');
      } finally {
        await ch.closeDoor('library');
      }
    }
    // Something left to do (a volume still in a drive): look again next time.
    this.#version = pending ? '' : version;
  }

  /** Stops serving: host connections close, mounts end without a commit. */
  async stop(): Promise<void> {
    const t = this.#target;
    this.#target = null;
    await t?.stop();
    for (const d of this.drives) await d.drive.close();
  }
}

export interface ServeVtcLibraryOptions {
  /** The catalogue file shared by the VTCs' libraries; created when missing. */
  readonly catalogue: string;
  /** Storage slots of a catalogue made here (default 64). */
  readonly slots?: number;
  /** Scratch volumes put in a catalogue that has none yet: `count` volsers `prefix` + number (default V, 10). */
  readonly scratch?: { readonly prefix: string; readonly count: number };
  readonly listen: { readonly host: string; readonly port: number };
  readonly drives?: number;
  readonly chap?: IscsiTargetChap;
  readonly log: Logger;
}

/**
 * What `ptpvts ptp run` (and a lab) calls for each VTC: the catalogue made ready (at least
 * the scratch volumes asked for when it is new or empty), the library served on its portal,
 * a VTS volume view for the in-use check. `stop` ends both. Rejects with CatalogueError or
 * the listen error (the portal taken).
 */
export async function serveVtcLibrary(agent: VtcAgent, o: ServeVtcLibraryOptions): Promise<{ library: VirtualLibrary; stop: () => Promise<void> }> {
  const cat = await VolumeCatalogue.create(o.catalogue, o.slots ?? 64);
  if ((await cat.list()).length === 0) {
    const s = o.scratch ?? { prefix: 'V', count: 10 };
    const width = 6 - s.prefix.length;
    if (width < 1 || s.count < 1 || s.count > 10 ** width) throw new RangeError(`scratch volumes ${s.prefix}+${s.count}: a volser is at most 6 characters`);
    await cat.insert(Array.from({ length: s.count }, (_, i) => `${s.prefix}${String(i + 1).padStart(width, '0')}`)).catch((e: unknown) => {
      // Another VTC's library seeded it at the same moment: theirs stand.
      if (!(e instanceof CatalogueError && e.code === 'EVOLEXISTS')) throw e;
    });
  }
  const vols = new VtsVolumes({ self: agent.self, vtcs: agent.options.vtcs, secret: agent.options.secret, vts: agent.options.vts, ...(agent.options.tls === undefined ? {} : { tls: agent.options.tls }) });
  let library: VirtualLibrary;
  try {
    library = await VirtualLibrary.start({
      host: agent,
      catalogue: cat,
      name: `${agent.self}-vlib`,
      listen: o.listen,
      log: o.log,
      inUse: (v) => vols.holder(v),
      ...(o.drives === undefined ? {} : { drives: o.drives }),
      ...(o.chap === undefined ? {} : { chap: o.chap }),
    });
  } catch (e) {
    vols.close();
    throw e;
  }
  return {
    library,
    stop: async () => {
      await library.stop();
      vols.close();
    },
  };
}
