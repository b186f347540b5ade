/**
 * The iSCSI targets the HIL suites run against: tgtd (a peer no one here wrote) and the
 * ptpvts target serving an emulated library.
 */
import type { IscsiLun } from './guest.js';
import { startTgtd, tgtdUnavailable } from './tgtd.js';

export interface HilTarget {
  name: string;
  /** true when the peer's known gaps (test/interop/tgt-known-gaps.ts) apply. */
  knownGaps: boolean;
  start(): Promise<{ luns: IscsiLun[]; stop(): Promise<void> }>;
}

export function hilTargets(): HilTarget[] {
  const targets: HilTarget[] = [];
  if (!tgtdUnavailable()) {
    targets.push({
      name: 'tgtd',
      knownGaps: true,
      async start() {
        const lib = await startTgtd({ drives: 1 });
        const lun = (n: number): IscsiLun => ({ host: lib.host, port: lib.port, iqn: lib.iqn, lun: n });
        return { luns: [lun(lib.changerLun), ...lib.driveLuns.map(lun)], stop: lib.stop };
      },
    });
  }
  return targets;
}
