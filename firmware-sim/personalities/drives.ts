/**
 * Tape drive personalities: what a drive model reports (INQUIRY, READ BLOCK LIMITS,
 * REPORT DENSITY SUPPORT), which media it reads and writes, and how long its mechanics
 * take. The drive firmware reads only these fields; it never branches on a vendor name.
 *
 * Compatibility follows the LTO rules as IBM documents them for its LTO drives: up to
 * LTO-7 a drive writes its own and the previous generation and reads two back; LTO-8
 * reads and writes LTO-7 (including the LTO-7 Type M "M8" cartridge) and LTO-8 only;
 * LTO-9 reads and writes LTO-8 and LTO-9 only.
 */

/** One recording format (density) a drive knows. */
export interface Density {
  /** Media type name shared with the library and cartridge files, e.g. `LTO7`, `LTO7-M8`. */
  readonly mediaType: string;
  /** Density code reported in the mode block descriptor and REPORT DENSITY SUPPORT. */
  readonly code: number;
  /** Native (uncompressed) capacity in bytes. */
  readonly capacityBytes: number;
  /** Name fields of the REPORT DENSITY SUPPORT descriptor. */
  readonly assigningOrganization: string;
  readonly densityName: string;
  readonly description: string;
  /** Physical characteristics for REPORT DENSITY SUPPORT. */
  readonly tracks: number;
  /** Bits per mm, for REPORT DENSITY SUPPORT. */
  readonly bitsPerMm: number;
  /** Tape width in tenths of mm. */
  readonly mediaWidth: number;
  /** The barcode's last two characters for data and WORM cartridges (IBM labelling). */
  readonly labelSuffix: string;
  readonly wormLabelSuffix?: string;
  /** Medium type code used in REPORT DENSITY SUPPORT with MEDIUM TYPE=1. */
  readonly mediumTypeCode: number;
}

/** Mechanical times in seconds at `timeScale` 1. */
export interface DriveTiming {
  /** From cartridge insertion until the tape is threaded and ready. */
  readonly loadSeconds: number;
  /** Threading part of a load (also the LOAD after a LOAD/UNLOAD with HOLD). */
  readonly threadSeconds: number;
  readonly unloadSeconds: number;
  /** Rewind from the far end of the tape; shorter rewinds scale with the distance. */
  readonly rewindSeconds: number;
  /** Average locate (a random position); scales with distance like a rewind. */
  readonly locateSeconds: number;
  /** Streaming transfer time per MiB at the native data rate (the top speed step). */
  readonly perMiBSeconds: number;
  /**
   * Speed matching steps in MB/s (10^6 bytes), fastest first: the tape runs at the lowest
   * step at or above the host's net rate (ssc/streaming.ts). The first is the native rate.
   */
  readonly speedStepsMBps: readonly number[];
  /** Data buffer between host and tape, bytes. */
  readonly bufferBytes: number;
  /** A backhitch: the tape stops, reverses and repositions before it streams again. */
  readonly backhitchSeconds: number;
  /** ERASE of a whole tape (long erase). */
  readonly eraseSeconds: number;
}

export interface DriveFeatures {
  readonly worm: boolean;
  readonly encryption: boolean;
  readonly compression: boolean;
  /** TapeAlert log page (2Eh) and informational exceptions mode page (1Ch). */
  readonly tapeAlert: boolean;
  /** Partitions the drive can create (1 means no partitioning support). */
  readonly maxPartitions: number;
}

/** A drive model. Every value the firmware reports or waits for comes from here. */
export interface DrivePersonality {
  /** Stable id used in configuration, e.g. `ibm-lto7-hh`. */
  readonly id: string;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  /** Generation number of the drive (5 for LTO-5, ...), for display only. */
  readonly generation: number;
  /** Densities this drive records (the first is its native, default density). */
  readonly writeDensities: readonly Density[];
  /** Densities it can only read (besides those it writes). */
  readonly readOnlyDensities: readonly Density[];
  /** READ BLOCK LIMITS. */
  readonly maxBlockLength: number;
  readonly minBlockLength: number;
  /** Granularity exponent (block lengths are multiples of 2^granularity). */
  readonly granularity: number;
  readonly timing: DriveTiming;
  readonly features: DriveFeatures;
  /** SCSI version descriptors after SAM-5 and SPC-4, which INQUIRY adds itself (SSC-4 0x0520, ...). */
  readonly versionDescriptors: readonly number[];
}

const TB = 1_000_000_000_000;
const GB = 1_000_000_000;

function lto(gen: number, code: number, capacityBytes: number, tracks: number, bitsPerMm: number, mediumTypeCode: number, wormSuffix?: string): Density {
  return {
    mediaType: `LTO${gen}`,
    code,
    capacityBytes,
    assigningOrganization: 'LTO-CVE',
    densityName: `U-${gen}16`,
    description: `Ultrium ${gen}/16T`,
    tracks,
    bitsPerMm,
    mediaWidth: 127,
    labelSuffix: `L${gen}`,
    ...(wormSuffix ? { wormLabelSuffix: wormSuffix } : {}),
    mediumTypeCode,
  };
}

/** LTO densities by media type name. Capacities are the LTO Program's native figures. */
export const LtoDensity = {
  LTO3: lto(3, 0x44, 400 * GB, 704, 9638, 0x38, 'LT'),
  LTO4: lto(4, 0x46, 800 * GB, 896, 13250, 0x48, 'LU'),
  LTO5: lto(5, 0x58, 1.5 * TB, 1280, 15142, 0x58, 'LV'),
  LTO6: lto(6, 0x5a, 2.5 * TB, 2176, 15143, 0x68, 'LW'),
  LTO7: lto(7, 0x5c, 6 * TB, 3584, 19094, 0x78, 'LX'),
  LTO7_M8: {
    ...lto(7, 0x5d, 9 * TB, 5376, 20668, 0x79),
    mediaType: 'LTO7-M8',
    densityName: 'U-732',
    description: 'Ultrium 7 Type M/32T',
    labelSuffix: 'M8',
  },
  LTO8: lto(8, 0x5e, 12 * TB, 6656, 20668, 0x88, 'LY'),
  LTO9: lto(9, 0x60, 18 * TB, 8960, 23353, 0x98, 'LZ'),
} as const satisfies Record<string, Density>;

/** Version descriptors (SPC-4 table of version descriptor values): SSC-3 and SSC-4, no version claimed. */
const SSC4 = 0x0520;
const SSC3 = 0x0400;

interface LtoModel {
  readonly gen: number;
  readonly revision: string;
  readonly write: readonly Density[];
  readonly readOnly: readonly Density[];
  /** Speed matching steps in MB/s, fastest (native) first: full height, half height. */
  readonly fhSteps: readonly number[];
  readonly hhSteps: readonly number[];
  /** Data buffer in bytes. */
  readonly buffer: number;
  readonly rewindSeconds: number;
  readonly locateSeconds: number;
  readonly loadSeconds: number;
}

const MB = 1_000_000;

/**
 * Evenly spaced steps from `native` down to 40 MB/s, `step` apart, for the generations
 * whose step table is not published (LTO-5, LTO-6): only the range is (40-140, 40-160 MB/s).
 */
function derivedSteps(native: number, step: number): number[] {
  const steps: number[] = [];
  for (let s = native; s >= 40; s -= step) steps.push(s);
  return steps;
}

/**
 * Speed matching tables as IBM publishes them for its full- and half-height drives (IBM
 * Docs, TS4300 "Speed matching"; docs/emulator.md cites them). LTO-7 half height runs the
 * same twelve steps as full height. LTO-5 and LTO-6 half height are as fast as full height
 * (IBM lists 140 and 160 MB/s for both forms).
 */
const GEN7_STEPS = [306.0, 287.52, 268.56, 250.66, 231.86, 213.06, 194.26, 175.46, 157.67, 138.52, 120.11, 101.46];
const GEN8_FH_STEPS = [365.0, 341.0, 318.0, 306.4, 273.0, 249.5, 226.0, 203.0, 180.0, 157.5, 135.0, 112.0];
const GEN8_HH_STEPS = [306.4, 273.0, 249.5, 226.0, 203.0, 180.0, 157.5, 135.0, 112.0];
const GEN9_FH_STEPS = [408, 385, 366, 347, 325, 305, 284, 263, 244, 223, 203, 177];
const GEN9_HH_STEPS = [284, 263, 244, 223, 203, 177];

/**
 * Buffers: 1 GB is published for IBM's LTO-7 and LTO-8 drives (the TS2270 and TS2280, both
 * half height); full height and LTO-9 are taken to have the same. 512 MB for LTO-5 and
 * LTO-6 is an assumption (no figure found; those generations shipped smaller buffers).
 */
const GB_BUFFER = 1000 * MB;
const OLD_BUFFER = 512 * MB;

const models: readonly LtoModel[] = [
  { gen: 5, revision: 'G9N1', write: [LtoDensity.LTO5, LtoDensity.LTO4], readOnly: [LtoDensity.LTO3], fhSteps: derivedSteps(140, 10), hhSteps: derivedSteps(140, 10), buffer: OLD_BUFFER, rewindSeconds: 98, locateSeconds: 50, loadSeconds: 15 },
  { gen: 6, revision: 'J4D0', write: [LtoDensity.LTO6, LtoDensity.LTO5], readOnly: [LtoDensity.LTO4], fhSteps: derivedSteps(160, 10), hhSteps: derivedSteps(160, 10), buffer: OLD_BUFFER, rewindSeconds: 108, locateSeconds: 56, loadSeconds: 15 },
  { gen: 7, revision: 'M9R0', write: [LtoDensity.LTO7, LtoDensity.LTO6], readOnly: [LtoDensity.LTO5], fhSteps: GEN7_STEPS, hhSteps: GEN7_STEPS, buffer: GB_BUFFER, rewindSeconds: 88, locateSeconds: 60, loadSeconds: 15 },
  { gen: 8, revision: 'Q3B0', write: [LtoDensity.LTO8, LtoDensity.LTO7_M8, LtoDensity.LTO7], readOnly: [], fhSteps: GEN8_FH_STEPS, hhSteps: GEN8_HH_STEPS, buffer: GB_BUFFER, rewindSeconds: 94, locateSeconds: 62, loadSeconds: 17 },
  { gen: 9, revision: 'S270', write: [LtoDensity.LTO9, LtoDensity.LTO8], readOnly: [], fhSteps: GEN9_FH_STEPS, hhSteps: GEN9_HH_STEPS, buffer: GB_BUFFER, rewindSeconds: 97, locateSeconds: 65, loadSeconds: 17 },
];

/**
 * A backhitch takes about three seconds: no figure is published. The tape decelerates from
 * several metres per second, runs back past the point where writing stopped, and speeds
 * up again to meet it at speed; each of those takes on the order of a second.
 */
const BACKHITCH_SECONDS = 3;

function ibmLto(m: LtoModel, form: 'fh' | 'hh', product: string): DrivePersonality {
  // The native rate is the top speed step; half-height LTO-8 and LTO-9 stop lower.
  const steps = form === 'hh' ? m.hhSteps : m.fhSteps;
  const rate = steps[0] ?? 1;
  return {
    id: `ibm-lto${m.gen}-${form}`,
    vendor: 'IBM',
    product,
    revision: m.revision,
    generation: m.gen,
    writeDensities: m.write,
    readOnlyDensities: m.readOnly,
    maxBlockLength: 0x800000,
    minBlockLength: 1,
    granularity: 0,
    timing: {
      loadSeconds: m.loadSeconds,
      threadSeconds: 6,
      unloadSeconds: 17,
      rewindSeconds: m.rewindSeconds,
      locateSeconds: m.locateSeconds,
      perMiBSeconds: 1.048576 / rate,
      speedStepsMBps: steps,
      bufferBytes: m.buffer,
      backhitchSeconds: BACKHITCH_SECONDS,
      eraseSeconds: 3 * 3600,
    },
    // LTO-4 and later encrypt (AES-256-GCM, application-managed through SECURITY PROTOCOL OUT).
    features: { worm: true, encryption: m.gen >= 4, compression: true, tapeAlert: true, maxPartitions: m.gen >= 7 ? 4 : m.gen >= 5 ? 2 : 1 },
    versionDescriptors: [m.gen >= 6 ? SSC4 : SSC3],
  };
}

/** The built-in IBM LTO personalities, full-height (ULT3580-TDn) and half-height (ULT3580-HHn). */
export const drivePersonalities: readonly DrivePersonality[] = models.flatMap((m) => [
  ibmLto(m, 'fh', `ULT3580-TD${m.gen}`),
  ibmLto(m, 'hh', `ULT3580-HH${m.gen}`),
]);

/** Looks a personality up by id; throws a RangeError naming the known ids otherwise. */
export function drivePersonality(id: string): DrivePersonality {
  const p = drivePersonalities.find((d) => d.id === id);
  if (!p) throw new RangeError(`unknown drive personality '${id}' (known: ${drivePersonalities.map((d) => d.id).join(', ')})`);
  return p;
}

/** The library-facing variant: same drive, product id as IBM libraries report it (ULTRIUM-TDn/HHn). */
export function inLibrary(p: DrivePersonality): DrivePersonality {
  return { ...p, id: `${p.id}-lib`, product: p.product.replace('ULT3580-', 'ULTRIUM-') };
}

/** What a drive can do with a cartridge of a given media type. */
export type MediaAccess = 'read-write' | 'read-only' | 'incompatible';

/** Splits `LTO7-WORM` into its density name and the WORM flag. */
export function parseMediaType(mediaType: string): { density: string; worm: boolean } {
  const worm = /-WORM$/u.test(mediaType);
  return { density: worm ? mediaType.slice(0, -5) : mediaType, worm };
}

export function densityOf(mediaType: string): Density | undefined {
  const { density } = parseMediaType(mediaType);
  return Object.values(LtoDensity).find((d) => d.mediaType === density);
}

export function mediaAccess(p: DrivePersonality, mediaType: string): MediaAccess {
  const { density, worm } = parseMediaType(mediaType);
  if (worm && !p.features.worm) return 'incompatible';
  if (p.writeDensities.some((d) => d.mediaType === density)) return 'read-write';
  if (p.readOnlyDensities.some((d) => d.mediaType === density)) return 'read-only';
  return 'incompatible';
}

/**
 * The SSC generation a personality claims in its version descriptors: 3 (SSC-3,
 * 0400h..041Fh), 4 (SSC-4, 0520h..053Fh) or 5 (SSC-5, 05A0h..05BFh); 2 when it claims none
 * of them. It decides the fields a command has, e.g. the MLOI bit of READ BLOCK LIMITS
 * (SSC-4 on).
 */
export function sscLevel(p: DrivePersonality): number {
  let level = 2;
  for (const v of p.versionDescriptors) {
    if (v >= 0x05a0 && v < 0x05c0) level = Math.max(level, 5);
    else if (v >= 0x0520 && v < 0x0540) level = Math.max(level, 4);
    else if (v >= 0x0400 && v < 0x0420) level = Math.max(level, 3);
  }
  return level;
}

/** Every density the drive reports in REPORT DENSITY SUPPORT, newest first. */
export function knownDensities(p: DrivePersonality): readonly Density[] {
  return [...p.writeDensities, ...p.readOnlyDensities].sort((a, b) => b.code - a.code);
}
