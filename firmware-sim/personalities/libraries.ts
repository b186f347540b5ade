/**
 * Library (medium changer) personalities: what a product reports and how fast its robot
 * is. The changer firmware reads only these fields; it never branches on a vendor name.
 *
 * Element addressing follows the scheme IBM documents for the TS3100/TS3200 (machine type
 * 3573, "SCSI element types, SCSI addresses, and physical configurations"): medium
 * transport 0x0001, I/O station elements from 0x0010, drives from 0x0100, storage
 * elements from 0x1000. The generic personality keeps that scheme so that tools written
 * against one work against the other.
 */

/** First element address of each element type; elements of a type are consecutive. */
export interface ElementAddressing {
  readonly transport: number;
  readonly importExport: number;
  readonly dataTransfer: number;
  readonly storage: number;
}

/** Mechanical times in seconds at `timeScale` 1. */
export interface LibraryTiming {
  /** One pick-and-place between two elements. */
  readonly moveSeconds: number;
  /** Extra time when a drive is the source or destination (aligning with the drive throat). */
  readonly driveMoveExtraSeconds: number;
  /** POSITION TO ELEMENT. */
  readonly positionSeconds: number;
  /** Scanning one element's label during INITIALIZE ELEMENT STATUS or after a door closes. */
  readonly scanSecondsPerElement: number;
  /** Power-on calibration before the changer becomes ready. */
  readonly powerOnSeconds: number;
}

export interface LibraryCapabilities {
  /** EXCHANGE MEDIUM is in the command set (and in the device capabilities page). */
  readonly exchange: boolean;
  /** A barcode reader: READ ELEMENT STATUS honours VOLTAG. */
  readonly volumeTags: boolean;
  /** READ ELEMENT STATUS honours DVCID (drive identifiers in data transfer descriptors). */
  readonly deviceIdentifiers: boolean;
  /**
   * Width the drive serial number is padded to in the DVCID identifier (vendor 8 +
   * product 16 + serial). A longer serial widens every descriptor of the page.
   */
  readonly dvcidSerialWidth: number;
  /** INITIALIZE ELEMENT STATUS WITH RANGE is in the command set. */
  readonly initializeWithRange: boolean;
  /** POSITION TO ELEMENT is in the command set. */
  readonly positionToElement: boolean;
}

/** The most elements of each type the product can be configured with. */
export interface LibraryLimits {
  readonly storage: number;
  readonly importExport: number;
  readonly dataTransfer: number;
}

export interface LibraryPersonality {
  /** Name used in the YAML `personality` field. */
  readonly id: string;
  readonly description: string;
  /** INQUIRY vendor identification (8 characters at most). */
  readonly vendor: string;
  /** INQUIRY product identification (16 at most). */
  readonly product: string;
  /** INQUIRY product revision level (4 at most). */
  readonly revision: string;
  readonly addressing: ElementAddressing;
  readonly limits: LibraryLimits;
  readonly timing: LibraryTiming;
  readonly capabilities: LibraryCapabilities;
  /** Ambient temperature the LOG SENSE temperature page reports, in degrees Celsius. */
  readonly temperatureCelsius: number;
  /** Highest rated operating temperature, reported as the reference temperature. */
  readonly referenceTemperatureCelsius: number;
}

const ibmAddressing: ElementAddressing = { transport: 0x0001, importExport: 0x0010, dataTransfer: 0x0100, storage: 0x1000 };

/** What the 3573 family (TS3100, TS3200) shares: no EXCHANGE MEDIUM, barcode reader, DVCID. */
const ibm3573Capabilities: LibraryCapabilities = {
  exchange: false,
  volumeTags: true,
  deviceIdentifiers: true,
  dvcidSerialWidth: 10,
  initializeWithRange: true,
  positionToElement: true,
};

/** The personalities by `id`. */
export const LibraryPersonalities = {
  /** 2U IBM LTO library: 23 storage slots, one I/O slot, up to two half-height drives. */
  'IBM-TS3100': {
    id: 'IBM-TS3100',
    description: 'IBM TS3100 Tape Library (3573, 2U)',
    vendor: 'IBM',
    product: '3573-TL',
    revision: 'F.11',
    addressing: ibmAddressing,
    limits: { storage: 23, importExport: 1, dataTransfer: 2 },
    timing: { moveSeconds: 12, driveMoveExtraSeconds: 4, positionSeconds: 3, scanSecondsPerElement: 0.4, powerOnSeconds: 60 },
    capabilities: ibm3573Capabilities,
    temperatureCelsius: 27,
    referenceTemperatureCelsius: 40,
  },
  /** 4U IBM LTO library: 45 storage slots, a three-slot I/O station, up to four drives. */
  'IBM-TS3200': {
    id: 'IBM-TS3200',
    description: 'IBM TS3200 Tape Library (3573, 4U)',
    vendor: 'IBM',
    product: '3573-TL',
    revision: 'F.11',
    addressing: ibmAddressing,
    limits: { storage: 45, importExport: 3, dataTransfer: 4 },
    timing: { moveSeconds: 14, driveMoveExtraSeconds: 4, positionSeconds: 3, scanSecondsPerElement: 0.4, powerOnSeconds: 90 },
    capabilities: ibm3573Capabilities,
    temperatureCelsius: 28,
    referenceTemperatureCelsius: 40,
  },
  /**
   * The emulator's own product: the same addressing, room for large test libraries, and
   * the optional commands (EXCHANGE MEDIUM) a small IBM library lacks.
   */
  'PTPVTS-LIB': {
    id: 'PTPVTS-LIB',
    description: 'ptpvts emulated library',
    vendor: 'PTPVTS',
    product: 'VLIB-SMC',
    revision: '0100',
    addressing: ibmAddressing,
    limits: { storage: 4000, importExport: 64, dataTransfer: 64 },
    timing: { moveSeconds: 8, driveMoveExtraSeconds: 2, positionSeconds: 2, scanSecondsPerElement: 0.1, powerOnSeconds: 30 },
    capabilities: {
      exchange: true,
      volumeTags: true,
      deviceIdentifiers: true,
      dvcidSerialWidth: 12,
      initializeWithRange: true,
      positionToElement: true,
    },
    temperatureCelsius: 25,
    referenceTemperatureCelsius: 45,
  },
} as const satisfies Record<string, LibraryPersonality>;

export type LibraryPersonalityId = keyof typeof LibraryPersonalities;

export const libraryPersonalityIds = Object.keys(LibraryPersonalities) as LibraryPersonalityId[];

/** The personality called `id`, or undefined. */
export function libraryPersonality(id: string): LibraryPersonality | undefined {
  return Object.hasOwn(LibraryPersonalities, id) ? LibraryPersonalities[id as LibraryPersonalityId] : undefined;
}

/**
 * Checks that a personality's address ranges at its limits neither overlap nor leave the
 * 16-bit element address space. Returns the problems found (empty when sound).
 */
export function checkPersonality(p: LibraryPersonality): string[] {
  const problems: string[] = [];
  const ranges: Array<[string, number, number]> = [
    ['transport', p.addressing.transport, 1],
    ['importExport', p.addressing.importExport, p.limits.importExport],
    ['dataTransfer', p.addressing.dataTransfer, p.limits.dataTransfer],
    ['storage', p.addressing.storage, p.limits.storage],
  ];
  for (const [name, first, n] of ranges) {
    if (first + n - 1 > 0xffff) problems.push(`${p.id}: ${name} elements run past address 0xFFFF`);
  }
  ranges.forEach((a, i) => {
    for (const b of ranges.slice(i + 1)) {
      if (a[2] > 0 && b[2] > 0 && a[1] < b[1] + b[2] && b[1] < a[1] + a[2]) problems.push(`${p.id}: ${a[0]} and ${b[0]} address ranges overlap`);
    }
  });
  if (p.vendor.length > 8) problems.push(`${p.id}: vendor longer than 8 characters`);
  if (p.product.length > 16) problems.push(`${p.id}: product longer than 16 characters`);
  if (p.revision.length > 4) problems.push(`${p.id}: revision longer than 4 characters`);
  return problems;
}
