/**
 * LTO cartridge types a library configuration may name, with the label suffix (the last
 * two characters of an LTO barcode, the "media identifier" of the LTO label
 * specification) and the native capacity.
 */

export interface MediaTypeInfo {
  /** Name shared with the drive personalities, e.g. `LTO8` or `LTO8-WORM`. */
  readonly name: string;
  /** LTO generation (5..9). */
  readonly generation: number;
  readonly worm: boolean;
  /** Two-character media identifier printed at the end of the barcode label. */
  readonly labelSuffix: string;
  /** Native (uncompressed) capacity in bytes. */
  readonly nativeCapacityBytes: number;
}

const TB = 1_000_000_000_000;

function lto(generation: number, worm: boolean, labelSuffix: string, capacity: number): MediaTypeInfo {
  return Object.freeze({ name: `LTO${generation}${worm ? '-WORM' : ''}`, generation, worm, labelSuffix, nativeCapacityBytes: capacity });
}

export const MediaTypes = {
  LTO5: lto(5, false, 'L5', 1.5 * TB),
  'LTO5-WORM': lto(5, true, 'LV', 1.5 * TB),
  LTO6: lto(6, false, 'L6', 2.5 * TB),
  'LTO6-WORM': lto(6, true, 'LW', 2.5 * TB),
  LTO7: lto(7, false, 'L7', 6 * TB),
  'LTO7-WORM': lto(7, true, 'LX', 6 * TB),
  /** LTO-7 Type M: a new LTO-7 cartridge initialised by an LTO-8 drive to 9 TB; LTO-8 drives only. */
  'LTO7-M8': Object.freeze({ name: 'LTO7-M8', generation: 7, worm: false, labelSuffix: 'M8', nativeCapacityBytes: 9 * TB }),
  LTO8: lto(8, false, 'L8', 12 * TB),
  'LTO8-WORM': lto(8, true, 'LY', 12 * TB),
  LTO9: lto(9, false, 'L9', 18 * TB),
  'LTO9-WORM': lto(9, true, 'LZ', 18 * TB),
} as const satisfies Record<string, MediaTypeInfo>;

export type MediaTypeName = keyof typeof MediaTypes;

export const mediaTypeNames = Object.keys(MediaTypes) as [MediaTypeName, ...MediaTypeName[]];

export function mediaTypeInfo(name: string): MediaTypeInfo | undefined {
  return Object.hasOwn(MediaTypes, name) ? MediaTypes[name as MediaTypeName] : undefined;
}

/**
 * The media type an LTO label names, from its last two characters, or undefined when the
 * label does not end in a known LTO media identifier (a free-form test barcode).
 */
export function mediaTypeFromBarcode(barcode: string): MediaTypeInfo | undefined {
  if (barcode.length < 3) return undefined;
  const suffix = barcode.slice(-2).toUpperCase();
  return Object.values(MediaTypes).find((m) => m.labelSuffix === suffix);
}

/** SMC-3 medium type code of the element descriptor (1 data, 4 WORM). */
export function smcMediumTypeCode(mediaType: string): number {
  const info = mediaTypeInfo(mediaType);
  if (!info) return 0;
  return info.worm ? 4 : 1;
}
