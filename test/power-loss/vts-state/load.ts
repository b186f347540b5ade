/**
 * Writers for the VTS-state campaign: production code (VolumeCache, SlotFile, writeDurable,
 * VtsUnit) doing real writes on the powerfs mount, each recording its attempt before the call
 * and its acknowledgement only after the call resolved.
 */
import { writeDurable, writeJsonDurable } from '../../../src/vts/durable.js';
import type { SlotFile } from '../../../src/vts/slot-file.js';
import type { TapeCopy, VolumeCache } from '../../../src/vts/volume-cache.js';
import type { VtsUnit } from '../../../src/vts/vts-unit.js';
import { RecordKind, buildVolume } from '../../../src/vts/volume-format.js';
import { bytesOf, type SeriesLedger, type VolumeLedger } from './ledger.js';

/** Runs until `stop()`; a writer's own failure is kept and reported (a writer must never fail). */
export class Load {
  #stopped = false;
  readonly #running: Promise<void>[] = [];
  readonly errors: Error[] = [];

  get stopped(): boolean {
    return this.#stopped;
  }

  spawn(name: string, loop: () => Promise<void>): void {
    this.#running.push(
      (async () => {
        while (!this.#stopped) await loop();
      })().catch((e: unknown) => {
        this.errors.push(new Error(`writer ${name} failed: ${(e as Error).message}`, { cause: e }));
        this.#stopped = true;
      }),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#running);
  }
}

/**
 * Blocks of a volume generation: sizes vary from one byte to ~48 KiB so torn pages land inside
 * records. `big`: 17 to 24 blocks of 256 KiB instead (4.25 to 6 MiB), so the working file's
 * early writeback (ranges every MiB, an fdatasync every 4 MiB) runs under the cuts.
 */
export function volumeBlocks(volser: string, gen: number, rand: () => number, big = false): Buffer[] {
  const seed = gen * 7919 + volser.charCodeAt(5);
  if (big) return Array.from({ length: 17 + Math.floor(rand() * 8) }, (_, i) => bytesOf(seed + i * 104729, 256 * 1024));
  const n = 1 + Math.floor(rand() * 4);
  return Array.from({ length: n }, (_, i) => bytesOf(seed + i * 104729, 1 + Math.floor(rand() * rand() * 48 * 1024)));
}

/** Commits of new generations, one after another, through a working file as a host close does. */
export function commitLoop(cache: VolumeCache, l: VolumeLedger, rand: () => number): () => Promise<void> {
  return async () => {
    const gen = l.nextGeneration();
    const blocks = volumeBlocks(l.volser, gen, rand);
    l.attemptCommit(gen, buildVolume(blocks));
    const f = await cache.newWork(l.volser);
    for (const b of blocks) await f.append(RecordKind.block, b);
    await cache.commitData(l.volser, f, gen);
    l.ackCommit(gen);
  };
}

/** Token raises (markBehind at the cache: this VTS is behind on a newer generation). */
export function behindLoop(cache: VolumeCache, l: VolumeLedger): () => Promise<void> {
  return async () => {
    const gen = l.nextGeneration();
    l.attemptToken(gen);
    await cache.setGeneration(l.volser, gen);
    l.ackToken(gen);
    await new Promise((r) => setImmediate(r));
  };
}

let block = 1;
/** Premigrations completing: the tape copy of whatever the cache holds now. */
export function copyLoop(cache: VolumeCache, l: VolumeLedger): () => Promise<void> {
  return async () => {
    const m = cache.get(l.volser);
    if (!m || m.dataGeneration === 0) {
      await new Promise((r) => setTimeout(r, 1));
      return;
    }
    const copy: TapeCopy = { barcode: 'PV0001L8', block: block++, fileNumber: block, generation: m.dataGeneration, bytes: m.bytes, sha256: m.sha256 };
    l.attemptCopy(copy);
    if (await cache.setPremigrated(l.volser, copy)) l.ackCopy(copy);
  };
}

/** Slot-file payload of save `n` (grows and shrinks, up to ~3.5 KiB). */
export const slotPayload = (n: number): Uint8Array => new TextEncoder().encode(JSON.stringify({ n, pad: 'p'.repeat((n * 37) % 3500) }));

export function slotLoop(file: SlotFile, l: SeriesLedger): () => Promise<void> {
  return async () => {
    const n = ++l.attempted;
    await file.save(slotPayload(n));
    l.acked = Math.max(l.acked, n);
  };
}

/** Durable JSON document `k`, save `n` (up to ~12 KiB: several pages). */
export const docValue = (k: number, n: number): unknown => ({ k, n, pad: 'd'.repeat((n * 1013 + k * 17) % 12_000) });
/** Durable binary file `k`, save `n`: its number, then deterministic bytes (up to ~20 KiB). */
export const blobValue = (k: number, n: number): Buffer => {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(n, 0);
  return Buffer.concat([head, bytesOf(k * 1_000_003 + n, (n * 2039 + k) % 20_000)]);
};

export function docLoop(path: string, k: number, l: SeriesLedger): () => Promise<void> {
  return async () => {
    const n = ++l.attempted;
    await writeJsonDurable(path, docValue(k, n));
    l.acked = Math.max(l.acked, n);
  };
}

export function blobLoop(path: string, k: number, l: SeriesLedger): () => Promise<void> {
  return async () => {
    const n = ++l.attempted;
    await writeDurable(path, blobValue(k, n));
    l.acked = Math.max(l.acked, n);
  };
}

/** Host writes through a VtsUnit: scratch mount, blocks, close with the planned generation. */
export function hostLoop(vts: VtsUnit, l: VolumeLedger, rand: () => number, big = false): () => Promise<void> {
  return async () => {
    const gen = l.nextGeneration();
    const blocks = volumeBlocks(l.volser, gen, rand, big);
    const h = await vts.mount(l.volser, { scratch: true });
    for (const b of blocks) await vts.write(h, b);
    l.attemptCommit(gen, buildVolume(blocks));
    await vts.close(h, { generation: gen });
    l.ackCommit(gen);
  };
}

export function keyLoop(vts: VtsUnit, l: SeriesLedger, base: number): () => Promise<void> {
  return async () => {
    const n = ++l.attempted;
    await vts.recordKey(base + n);
    l.acked = Math.max(l.acked, n);
  };
}

/**
 * One volume's life on a VTS with a library: new generations (each queued for premigration),
 * evictions once premigrated, and mounts that recall an evicted volume and read it through.
 */
export function libraryLoop(vts: VtsUnit, l: VolumeLedger, rand: () => number): () => Promise<void> {
  const write = hostLoop(vts, l, rand);
  return async () => {
    const r = rand();
    if (r < 0.35 || l.freeze().data === 0) return write();
    if (r < 0.7) {
      await vts.whenPremigrationIdle();
      await vts.evict(l.volser);
      return;
    }
    const h = await vts.mount(l.volser);
    for (;;) if ((await vts.read(h, 1 << 20)).kind === 'eod') break;
    await vts.close(h);
  };
}
