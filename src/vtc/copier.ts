/**
 * Peer copies between the two VTS: one volume at a time streamed from the VTS holding the
 * current data (exportVolume) into the other (applyCopy), and a deduplicating queue for
 * deferred copies and resync.
 */
import type { Logger } from 'pino';
import type { VtsName } from '../ptp/types.js';
import { CopyError } from './errors.js';
import { MAX_BODY } from './rpc.js';
import type { EpochFence, VtsClient } from './vts-client.js';
import { systemClock } from '../platform/clock.js';
import type { Clock, Timer } from '../platform/clock.js';

/**
 * Copies `volser` from `from` to `to`. Resolves with the generation copied. Rejects with
 * {@link CopyError} (cause: the VTS error, e.g. EVOLBEHIND when `from` holds nothing
 * current, ESTALEGEN when `to` already knows newer, EFENCED when `fence` is the epoch of a
 * VTC a newer key fenced on `to`). No timeout beyond the RPC calls'. A copy is a token update
 * on `to`: a VTC that missed a key must not install data there, so it carries the epoch.
 */
export async function copyVolume(volser: string, from: VtsClient, to: VtsClient, fence?: EpochFence): Promise<number> {
  try {
    const x = await from.exportOpen(volser);
    let cid: number;
    try {
      cid = await to.copyOpen(volser, x.token, x.sha256, fence);
    } catch (e) {
      await from.exportRelease(x.xid).catch(() => undefined);
      throw e;
    }
    // Read-ahead: the source reads chunk n+1 while the destination writes chunk n. One read
    // at a time on the export (it is a stream), and the destination still takes the chunks
    // in order, one write after another; its close checks the whole against x.sha256.
    let reading: Promise<Uint8Array | null> | null = null;
    try {
      reading = from.exportRead(x.xid);
      while (true) {
        const chunk: Uint8Array | null = await reading;
        reading = null;
        if (chunk === null) break;
        reading = from.exportRead(x.xid);
        // Failing here, the copy waits for the read (below) before it releases the export.
        reading.catch(() => undefined);
        for (let off = 0; off < chunk.length; off += MAX_BODY) await to.copyWrite(cid, chunk.subarray(off, off + MAX_BODY));
      }
      return (await to.copyClose(cid)).generation;
    } catch (e) {
      // The read ahead, if any, ends first: the release must not overtake it on the source.
      await reading?.catch(() => undefined);
      // Neither side may stay held by a copy that will not finish: the destination would
      // refuse every other copy and mount of the volume until its idle bound. A close that
      // failed may never have reached it (seed 147); an abort after a close that did is a no-op.
      await Promise.all([to.copyAbort(cid).catch(() => undefined), from.exportRelease(x.xid).catch(() => undefined)]);
      throw e;
    }
  } catch (e) {
    throw new CopyError(volser, from.name, to.name, e);
  }
}

interface Job {
  readonly volser: string;
  readonly from: VtsName;
  readonly to: VtsName;
}

/**
 * A queue of deferred copies, deduplicated by (volser, direction). Failed copies are
 * dropped and counted (resync finds them again through the `behind` lists). `drain`
 * waits until the queue is empty or its deadline passes.
 */
export class CopyQueue {
  readonly #clients: Record<VtsName, VtsClient>;
  readonly #log: Logger;
  readonly #queue: Job[] = [];
  readonly #keys = new Set<string>();
  #running = 0;
  readonly #concurrency: number;
  readonly #idle: (() => void)[] = [];
  readonly stats = { copied: 0, failed: 0 };
  #stopped = false;
  #paused = false;

  readonly #fence: ((to: VtsName) => EpochFence) | undefined;
  readonly #clock: Clock;

  /** `fence`: the copying VTC's epoch towards the destination at the time each copy starts (its newest key, the VTS's boot). `clock`: for `drain`'s deadline. */
  constructor(clients: Record<VtsName, VtsClient>, log: Logger, concurrency = 2, fence?: (to: VtsName) => EpochFence, clock: Clock = systemClock) {
    this.#fence = fence;
    this.#clock = clock;
    this.#clients = clients;
    this.#log = log;
    this.#concurrency = concurrency;
  }

  get length(): number {
    return this.#queue.length + this.#running;
  }

  enqueue(volser: string, from: VtsName, to: VtsName, urgent = false): void {
    const k = `${volser}:${from}>${to}`;
    if (this.#stopped || this.#keys.has(k)) return;
    this.#keys.add(k);
    const job = { volser, from, to };
    if (urgent) this.#queue.unshift(job);
    else this.#queue.push(job);
    this.#pump();
  }

  /** Holds queued copies (scenarios use it to keep a copy pending); they run again on resume. */
  set paused(p: boolean) {
    this.#paused = p;
    if (!p) this.#pump();
  }
  get paused(): boolean {
    return this.#paused;
  }

  #pump(): void {
    while (!this.#stopped && !this.#paused && this.#running < this.#concurrency && this.#queue.length > 0) {
      const j = this.#queue.shift();
      if (j === undefined) break;
      this.#running++;
      copyVolume(j.volser, this.#clients[j.from], this.#clients[j.to], this.#fence?.(j.to))
        .then(
          () => {
            this.stats.copied++;
          },
          (e: unknown) => {
            this.stats.failed++;
            this.#log.debug({ err: e, volser: j.volser }, 'deferred copy failed');
          },
        )
        .finally(() => {
          this.#keys.delete(`${j.volser}:${j.from}>${j.to}`);
          this.#running--;
          this.#pump();
          if (this.length === 0) for (const r of this.#idle.splice(0)) r();
        });
    }
  }

  /** Resolves true once the queue is empty, false at `deadline` (epoch ms) if it is not. */
  drain(deadline = Infinity): Promise<boolean> {
    if (this.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let t: Timer | undefined;
      const done = (v: boolean): void => {
        this.#clock.clearTimeout(t);
        resolve(v);
      };
      this.#idle.push(() => done(true));
      if (Number.isFinite(deadline)) t = this.#clock.setTimeout(() => done(this.length === 0), Math.max(0, deadline - this.#clock.now()));
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#queue.length = 0;
    for (const r of this.#idle.splice(0)) r();
  }
}
