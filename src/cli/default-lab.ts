/**
 * The embedded lab a person gets when naming no library: a small emulated library with
 * two LTO-8 drives, written to `ptpvts-lab/library.yaml` on first use so it can be read
 * and edited like any other.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const DEFAULT_LAB_DIR = 'ptpvts-lab';

/** The default library. Small cartridges keep fills quick; timeScale 0 skips mechanical delays. */
export function defaultLibraryYaml(name = 'lab0'): string {
  return `# An emulated library for ptpvts (format: docs/library-yaml.md).
name: ${name}
personality: IBM-TS3100
timeScale: 0
mediaDir: media
storageSlots: 20
importExportSlots: 1
drives:
  count: 2
  personality: LTO8
cartridges:
  - { barcode: LAB001L8, location: slot 1, capacity: 64MiB }
  - { barcode: LAB002L8, location: slot 2, capacity: 64MiB }
  - { barcode: LAB003L8, location: slot 3, capacity: 64MiB }
  - { barcode: LAB004L8, location: slot 4, capacity: 64MiB }
  - { barcode: LAB005L7, location: slot 5, capacity: 64MiB }
  - { barcode: LAB006L6, location: slot 6, capacity: 64MiB }
  - { barcode: LAB007L8, location: slot 7, capacity: 64MiB, writeProtected: true }
  - { barcode: WRM001LY, location: slot 8, capacity: 64MiB }
`;
}

/** Path of the lab's library file, created with the default library when missing. */
export function ensureDefaultLab(dir = DEFAULT_LAB_DIR): { path: string; created: boolean } {
  const path = resolve(join(dir, 'library.yaml'));
  if (existsSync(path)) return { path, created: false };
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, defaultLibraryYaml());
  return { path, created: true };
}
