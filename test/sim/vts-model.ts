/** The simulated VTS: operation status, last key seq, volumes with tokens, mounts, fencing. */
import { behindList } from '../../src/ptp/volumes.js';
import type { VolumeCopy } from '../../src/ptp/volumes.js';
import type { VtsName, VtsView } from '../../src/ptp/types.js';

export interface Mount {
  aborted: boolean;
  readonly end: number;
}

export class SimVts {
  readonly name: VtsName;
  powered = true;
  inOperation = true;
  stopping = false;
  lastKeySeq = 0;
  readonly vols = new Map<string, VolumeCopy>();
  readonly mounts = new Set<Mount>();

  constructor(name: VtsName) {
    this.name = name;
  }
  view(): VtsView {
    return { name: this.name, inOperation: this.inOperation && !this.stopping, lastKeySeq: this.lastKeySeq, behind: behindList(this.vols) };
  }
  record(seq: number): void {
    if (this.inOperation && seq > this.lastKeySeq) this.lastKeySeq = seq;
  }
  /** Power loss: mounts die with it; data, tokens and last key seq are on disk and survive. */
  crash(): void {
    this.powered = false;
    for (const m of this.mounts) m.aborted = true;
    this.mounts.clear();
    this.stopping = false;
  }
  /** Boots back in operation, as a repaired VTS does. */
  powerOn(): void {
    if (this.powered) return;
    this.powered = true;
    this.inOperation = true;
  }
  dataGen(vol: string): number {
    return this.vols.get(vol)?.dataGen ?? 0;
  }
}
