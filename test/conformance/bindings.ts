/**
 * The bindings the conformance suites run over, for `describe.each`. Each entry opens a
 * fresh lab: a changer port, drive ports in data transfer element order, and — for the
 * in-process emulator — the emulated library itself, so tests that need powers only an
 * emulator has (faults, doors, cartridge files) can use them and skip elsewhere.
 *
 * Media are described by role (scratch, write-protected, WORM, ...) so a test asks for
 * "a write-protected cartridge" rather than a barcode; a binding that cannot offer a role
 * leaves it out and the tests needing it skip.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Cdb from '../../src/scsi/cdb.js';
import { decodeSense, SenseKey } from '../../src/scsi/sense.js';
import { ScsiStatus } from '../../src/scsi/status.js';
import type { ScsiPort } from '../../src/transport/scsi-port.js';
import { sscDriveFactory } from '../../src/cli/lab.js';
import { MemoryPort } from '../../firmware-sim/front/memory-port.js';
import { createLibrary, loadLibraryConfig, type EmulatedLibrary } from '../../firmware-sim/library/index.js';
import type { TapeDriveUnit } from '../../firmware-sim/ssc/index.js';

/** Barcodes of cartridges with a known property, by role. */
export interface MediaRoles {
  /** Ordinary read-write cartridges of the drives' own generation (at least two). */
  readonly scratch: readonly string[];
  readonly writeProtected?: string;
  readonly worm?: string;
  /** One generation older: read and written by the drives. */
  readonly olderReadWrite?: string;
  /** Two generations older: the drives refuse it. */
  readonly incompatible?: string;
  /** A cartridge small enough to fill in a test (early warning, end of medium). */
  readonly tiny?: string;
  /** Its capacity in bytes. */
  readonly tinyCapacity?: number;
}

export interface OpenedLab {
  readonly changer: ScsiPort;
  /** Drive ports, drive 1 first (the order of the data transfer elements). */
  readonly drives: ScsiPort[];
  /** Emulator only: the library (faults, doors, inventory). */
  readonly library?: EmulatedLibrary;
  /** Emulator only: the drive units (faults, engine state), drive 1 first. */
  readonly driveUnits?: TapeDriveUnit[];
  readonly media: MediaRoles;
  /** Where each cartridge starts (address -> barcode), when the binding knows it. */
  readonly initialInventory?: ReadonlyMap<number, string>;
  /** Drive serial numbers in drive order, when the binding knows them. */
  readonly driveSerials?: readonly string[];
  /** Cartridge files of the emulated library (barcode -> path). */
  readonly cartridgeFiles?: ReadonlyMap<string, string>;
  close(): Promise<void>;
}

export interface Binding {
  readonly name: string;
  /** Why the binding does not run here; the suites then show as skipped. */
  readonly skip?: string;
  open(): Promise<OpenedLab>;
}

/** Takes every pending unit attention of a port (bounded), so a test starts from a quiet unit. */
export async function drainAttentions(port: ScsiPort): Promise<void> {
  for (let i = 0; i < 8; i++) {
    const r = await port.execute({ ...Cdb.testUnitReady(), timeoutMs: 30_000 });
    if (r.status !== ScsiStatus.CHECK_CONDITION || r.sense.length === 0) return;
    if (decodeSense(r.sense).key !== SenseKey.UNIT_ATTENTION) return;
  }
}

// ------------------------------------------------------------------ memory

const MiB = 1024 * 1024;

/**
 * Where the memory binding keeps its cartridge files. The drives sync a cartridge on
 * every filemark, rewind and unload; on a RAM file system those syncs are free, which
 * keeps thousands of commands per second possible (crash safety of the files is tested
 * in firmware-sim/media, not here).
 */
export const TEST_TMPDIR = process.env['PTPVTS_TEST_TMPDIR'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());

export const TINY_CAPACITY = 1 * MiB;

/** The emulated library every memory test starts from. */
export const MEMORY_LIBRARY_YAML = `
name: conf
personality: PTPVTS-LIB
timeScale: 0
mediaDir: ./media
storageSlots: 12
importExportSlots: 2
drives:
  count: 2
  personality: LTO8
  serials: ["CONFDRV001", "CONFDRV002"]
cartridges:
  - barcode: D00001L8
    capacity: 8MiB
    location: slot 1
  - barcode: D00002L8
    capacity: 8MiB
    location: slot 2
  - barcode: P00001L8
    capacity: 8MiB
    writeProtected: true
    location: slot 3
  - barcode: W00001LY
    capacity: 8MiB
    location: slot 4
  - barcode: G00001L7
    capacity: 8MiB
    location: slot 5
  - barcode: G00001L6
    capacity: 8MiB
    location: slot 6
  - barcode: T00001L8
    capacity: ${TINY_CAPACITY}
    location: slot 7
  - barcode: D00003L8
    capacity: 8MiB
    location: slot 8
  - barcode: E00001L8
    capacity: 8MiB
    location: ie 1
`;

/** Element addresses of the memory library (IBM addressing of PTPVTS-LIB). */
export const MemoryLayout = {
  transport: 0x0001,
  firstImportExport: 0x0010,
  importExportCount: 2,
  firstDrive: 0x0100,
  driveCount: 2,
  firstStorage: 0x1000,
  storageCount: 12,
  slot: (n: number): number => 0x1000 + n - 1,
} as const;

/** How a binding reaches the emulated library's LUNs: ports for each, and how to release them. */
interface Connector {
  connect(library: EmulatedLibrary): Promise<{ port(lun: number): Promise<ScsiPort>; close(): Promise<void> }>;
}

const memoryConnector: Connector = {
  async connect(lib) {
    return {
      port: async (lun) => {
        const unit = lib.luns().get(lun);
        if (!unit) throw new Error(`no LUN ${lun}`);
        return new MemoryPort(unit, { defaultTimeoutMs: 60_000 });
      },
      close: async () => {},
    };
  },
};

/** The library's target served over iSCSI on 127.0.0.1, each LUN through its own session. */
const iscsiConnector: Connector = {
  async connect(lib) {
    const { startIscsiTarget } = await import('../../firmware-sim/front/iscsi-target/index.js');
    const { openIscsiPort } = await import('../../src/transport/iscsi/index.js');
    const served = await startIscsiTarget({ target: lib, host: '127.0.0.1', port: 0 });
    return {
      port: (lun) => openIscsiPort({ host: '127.0.0.1', port: served.port, targetName: served.iqn, initiatorName: 'iqn.2026-11.io.ptpvts:conformance', lun, defaultTimeoutMs: 60_000 }),
      close: () => served.stop(),
    };
  },
};

/** Each LUN behind its own emulated USB Bulk-Only device, as an autoloader presents it. */
const usbConnector: Connector = {
  async connect(lib) {
    const { emulatedUsbPort } = await import('../../firmware-sim/front/usb-bot/index.js');
    return {
      port: (lun) => {
        const unit = lib.luns().get(lun);
        if (!unit) throw new Error(`no LUN ${lun}`);
        return emulatedUsbPort(unit, { defaultTimeoutMs: 60_000 });
      },
      close: async () => {},
    };
  },
};

function emulatedBinding(name: string, connector: Connector): Binding {
  return {
  name,
  async open() {
    const dir = mkdtempSync(join(TEST_TMPDIR, 'ptpvts-conf-'));
    let library: EmulatedLibrary | undefined;
    const ports: ScsiPort[] = [];
    let link: Awaited<ReturnType<Connector['connect']>> | undefined;
    try {
      const yamlPath = join(dir, 'library.yaml');
      writeFileSync(yamlPath, MEMORY_LIBRARY_YAML);
      const config = loadLibraryConfig({ path: yamlPath });
      const driveUnits: TapeDriveUnit[] = [];
      library = await createLibrary(config, { driveFactory: sscDriveFactory(driveUnits), timeScale: 0 });
      const lib = library;
      const l = await connector.connect(lib);
      link = l;
      const port = async (lun: number): Promise<ScsiPort> => {
        const p = await l.port(lun);
        ports.push(p);
        return p;
      };
      const changer = await port(0);
      const drives: ScsiPort[] = [];
      for (const d of lib.drives) drives.push(await port(d.lun));
      for (const p of ports) await drainAttentions(p);
      return {
        changer,
        drives,
        library: lib,
        driveUnits,
        media: {
          scratch: ['D00001L8', 'D00002L8', 'D00003L8'],
          writeProtected: 'P00001L8',
          worm: 'W00001LY',
          olderReadWrite: 'G00001L7',
          incompatible: 'G00001L6',
          tiny: 'T00001L8',
          tinyCapacity: TINY_CAPACITY,
        },
        initialInventory: new Map(config.cartridges.map((c) => [c.address, c.barcode])),
        driveSerials: config.drives.map((d) => d.serial),
        cartridgeFiles: new Map(config.cartridges.map((c) => [c.barcode, c.path])),
        async close() {
          for (const p of ports) await p.close();
          await l.close();
          // A handler that threw is an emulator bug, whatever the test checked.
          const bugs = [lib.changer, ...driveUnits.map((d) => d.unit)].flatMap((u) => u.bugs);
          await lib.close();
          rmSync(dir, { recursive: true, force: true });
          if (bugs.length > 0) throw new Error(`emulator bugs: ${bugs.map((b) => `${b.command} (cdb ${b.cdb}): ${String(b.error)}`).join('; ')}`);
        },
      };
    } catch (e) {
      for (const p of ports) await p.close();
      await link?.close();
      await library?.close();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  },
  };
}

const memoryBinding = emulatedBinding('memory', memoryConnector);
const iscsiBinding = emulatedBinding('iscsi', iscsiConnector);
const usbBinding = emulatedBinding('usb-bot (emulated device)', usbConnector);

// ------------------------------------------------------------------ sg (Linux SG_IO, real hardware)

const sgChanger = process.env['TEST_SG_DEVICE'];
const sgDrives = (process.env['TEST_SG_DRIVES'] ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
/** Scratch cartridges the hardware tests may overwrite: TEST_SG_SCRATCH=BARCODE1,BARCODE2. */
const sgScratch = (process.env['TEST_SG_SCRATCH'] ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);

const sgBinding: Binding = {
  name: 'sg',
  ...(sgChanger && sgDrives.length > 0 ? {} : { skip: 'set TEST_SG_DEVICE (a changer /dev/sgN) and TEST_SG_DRIVES (its drives, comma-separated, in element order)' }),
  async open() {
    const { SgioPort } = await import('../../src/transport/sgio/index.js');
    const ports: ScsiPort[] = [];
    try {
      const changer = await SgioPort.open(sgChanger ?? '');
      ports.push(changer);
      const drives: ScsiPort[] = [];
      for (const path of sgDrives) {
        const p = await SgioPort.open(path);
        ports.push(p);
        drives.push(p);
      }
      for (const p of ports) await drainAttentions(p);
      return {
        changer,
        drives,
        media: { scratch: sgScratch },
        async close() {
          for (const p of ports) await p.close();
        },
      };
    } catch (e) {
      for (const p of ports) await p.close();
      throw e;
    }
  },
};

// ------------------------------------------------------------------ usb-bot (real hardware)

const usbDevice = process.env['TEST_USB_DEVICE'];
/** LUNs of the USB device: TEST_USB_LUNS=changer:1,drives:0 (an autoloader's usual layout). */
const usbLuns = /changer:(\d+)\s*,\s*drives:([\d+]+)/.exec(process.env['TEST_USB_LUNS'] ?? 'changer:1,drives:0');

const usbHardwareBinding: Binding = {
  name: 'usb-bot (hardware)',
  ...(usbDevice ? {} : { skip: 'set TEST_USB_DEVICE (vvvv:pppp[:serial]) and TEST_USB_LUNS (changer:N,drives:M+K), TEST_SG_SCRATCH for writable barcodes' }),
  async open() {
    const { openUsbBotPort } = await import('../../src/transport/usb-bot/index.js');
    const ports: ScsiPort[] = [];
    try {
      const changer = await openUsbBotPort(usbDevice ?? '', Number(usbLuns?.[1] ?? 1));
      ports.push(changer);
      const drives: ScsiPort[] = [];
      for (const lun of (usbLuns?.[2] ?? '0').split('+')) {
        const p = await openUsbBotPort(usbDevice ?? '', Number(lun));
        ports.push(p);
        drives.push(p);
      }
      for (const p of ports) await drainAttentions(p);
      return {
        changer,
        drives,
        media: { scratch: sgScratch },
        async close() {
          for (const p of ports) await p.close();
        },
      };
    } catch (e) {
      for (const p of ports) await p.close();
      throw e;
    }
  },
};

export const bindings: readonly Binding[] = [memoryBinding, iscsiBinding, usbBinding, sgBinding, usbHardwareBinding];
