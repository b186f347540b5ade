/** The simulated VTS: operation status, last key seq, volumes with tokens, mounts, fencing, image and boot identity. */
import { behindList } from '../../src/ptp/volumes.js';
import type { VolumeCopy } from '../../src/ptp/volumes.js';
import type { VtsName, VtsView } from '../../src/ptp/types.js';

export interface Mount {
  aborted: boolean;
  readonly end: number;
}

/** What a VTS's disks hold: a backup of it can be restored later (an older image of the same VTS). */
export interface VtsImage {
  readonly inOperation: boolean;
  readonly lastKeySeq: number;
  readonly lastKeyMac: string;
  readonly vols: ReadonlyMap<string, VolumeCopy>;
}

export class SimVts {
  readonly name: VtsName;
  powered = true;
  inOperation = true;
  stopping = false;
  lastKeySeq = 0;
  lastKeyMac = '';
  /** Same for every image of these disks (a restore carries it). */
  readonly imageId: string;
  bootId: string;
  #boots = 0;
  readonly vols = new Map<string, VolumeCopy>();
  readonly mounts = new Set<Mount>();

  constructor(name: VtsName) {
    this.name = name;
    this.imageId = `image-${name}`;
    this.bootId = `${name}-boot-0`;
  }
  view(): VtsView {
    return { name: this.name, inOperation: this.inOperation && !this.stopping, lastKeySeq: this.lastKeySeq, behind: behindList(this.vols), lastKeyMac: this.lastKeyMac, imageId: this.imageId, bootId: this.bootId };
  }
  record(seq: number, mac = ''): void {
    if (this.inOperation && seq > this.lastKeySeq) {
      this.lastKeySeq = seq;
      this.lastKeyMac = mac;
    }
  }
  /** Records `seq` whatever the status (a VTS taken out records the key that takes it out). */
  recordAlways(seq: number, mac = ''): void {
    if (seq > this.lastKeySeq) {
      this.lastKeySeq = seq;
      this.lastKeyMac = mac;
    }
  }
  /** The VTS unit's fence: an older epoch, another key with the same seq, or a boot the caller has not seen, is refused. */
  admits(epoch: number, epochMac: string, bootId?: string, minSeq = 0): boolean {
    if (bootId !== undefined && bootId !== this.bootId) return false;
    if (this.lastKeySeq < minSeq) return false;
    return epoch > this.lastKeySeq || (epoch === this.lastKeySeq && (this.lastKeyMac === '' || epochMac === this.lastKeyMac));
  }
  /** Power loss: mounts die with it; data, tokens and last key seq are on disk and survive. */
  crash(): void {
    this.powered = false;
    for (const m of this.mounts) m.aborted = true;
    this.mounts.clear();
    this.stopping = false;
  }
  /** Boots back in operation, as a repaired VTS does, with a new boot id. */
  powerOn(): void {
    if (this.powered) return;
    this.powered = true;
    this.inOperation = true;
    this.bootId = `${this.name}-boot-${++this.#boots}`;
  }
  image(): VtsImage {
    return { inOperation: this.inOperation, lastKeySeq: this.lastKeySeq, lastKeyMac: this.lastKeyMac, vols: new Map([...this.vols].map(([k, v]) => [k, { ...v }])) };
  }
  /** Replaces the (powered off) disks with an older image of them. */
  restore(img: VtsImage): void {
    this.lastKeySeq = img.lastKeySeq;
    this.lastKeyMac = img.lastKeyMac;
    this.inOperation = img.inOperation;
    this.vols.clear();
    for (const [k, v] of img.vols) this.vols.set(k, { ...v });
  }
  dataGen(vol: string): number {
    return this.vols.get(vol)?.dataGen ?? 0;
  }
}
