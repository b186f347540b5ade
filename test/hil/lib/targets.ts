/**
 * The iSCSI targets the HIL suites run against: tgtd (a peer no one here wrote) and the
 * ptpvts target serving an emulated library (changer and real SSC tape drive models).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLibrary, loadLibraryConfig, type EmulatedLibrary } from '../../../firmware-sim/library/index.js';
import { startIscsiTarget, type IscsiTargetHandle } from '../../../firmware-sim/front/iscsi-target/index.js';
import type { IscsiLun } from './guest.js';
import { startTgtd, tgtdUnavailable } from './tgtd.js';

export interface StartedTarget {
  /** Changer first, then the drives. */
  luns: IscsiLun[];
  stop(): Promise<void>;
}

export interface HilTarget {
  name: string;
  /** true when the peer's known gaps (test/interop/tgt-known-gaps.ts) apply. */
  knownGaps: boolean;
  /** Why this target can't run here, or undefined. */
  skip?: string;
  start(): Promise<StartedTarget>;
}

/** The library the guest's tools see on the ptpvts target: one drive, three cartridges, spare slots. */
export const HIL_LIBRARY_YAML = `
name: hil0
personality: PTPVTS-LIB
timeScale: 0
mediaDir: ./media
storageSlots: 6
importExportSlots: 1
drives:
  count: 1
  personality: LTO8
  serials: ["HILDRV0001"]
cartridges:
  - barcode: HIL001L8
    capacity: 64MiB
    location: slot 1
  - barcode: HIL002L8
    capacity: 64MiB
    location: slot 2
  - barcode: HIL003L8
    capacity: 64MiB
    location: slot 3
`;

export interface PtpvtsLibraryTarget extends StartedTarget {
  readonly library: EmulatedLibrary;
  readonly target: IscsiTargetHandle;
}

/** An emulated library from {@link HIL_LIBRARY_YAML} behind ptpvts's iSCSI target on 127.0.0.1. */
export async function startPtpvtsTarget(yaml = HIL_LIBRARY_YAML): Promise<PtpvtsLibraryTarget> {
  const dir = await mkdtemp(join(tmpdir(), 'ptpvts-hil-lib-'));
  let library: EmulatedLibrary | undefined;
  try {
    await writeFile(join(dir, 'library.yaml'), yaml);
    library = await createLibrary(loadLibraryConfig({ path: join(dir, 'library.yaml') }), { timeScale: 0 });
    const target = await startIscsiTarget({ target: library, host: '127.0.0.1', port: 0 });
    const lib = library;
    const lun = (n: number): IscsiLun => ({ host: target.host, port: target.port, iqn: target.iqn, lun: n });
    return {
      library: lib,
      target,
      luns: [lun(0), ...lib.drives.map((d) => lun(d.lun))],
      async stop() {
        await target.stop();
        await lib.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await library?.close();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

export function hilTargets(): HilTarget[] {
  const tgtd = tgtdUnavailable();
  return [
    {
      name: 'ptpvts (emulated library)',
      knownGaps: false,
      start: () => startPtpvtsTarget(),
    },
    {
      name: 'tgtd',
      knownGaps: true,
      ...(tgtd ? { skip: tgtd } : {}),
      async start() {
        const lib = await startTgtd({ drives: 1 });
        const lun = (n: number): IscsiLun => ({ host: lib.host, port: lib.port, iqn: lib.iqn, lun: n });
        return { luns: [lun(lib.changerLun), ...lib.driveLuns.map(lun)], stop: lib.stop };
      },
    },
  ];
}
