/**
 * Large receive buffers handed out and taken back, so that a stream of 256 KiB commands
 * reuses a few buffers instead of allocating (and garbage-collecting) one per PDU. Only
 * buffers this pool made and lent out are taken back; giving back anything else, or the
 * same buffer twice, is ignored.
 */
export interface BufferPoolOptions {
  /** Requests smaller than this are plain allocations, never pooled. Default 32 KiB. */
  readonly minSize?: number;
  /** Free buffers kept per size. Default 8. */
  readonly perSize?: number;
  /** Free bytes kept in all. Default 16 MiB. */
  readonly maxFreeBytes?: number;
}

export class BufferPool {
  readonly minSize: number;
  private readonly perSize: number;
  private readonly maxFreeBytes: number;
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeBytes = 0;
  /** Memory lent out and not yet given back. */
  private readonly lent = new WeakSet<ArrayBuffer>();
  /** Counters for tests: buffers made, and takes served from the free lists. */
  made = 0;
  reused = 0;

  constructor(o: BufferPoolOptions = {}) {
    this.minSize = o.minSize ?? 32 * 1024;
    this.perSize = o.perSize ?? 8;
    this.maxFreeBytes = o.maxFreeBytes ?? 16 * 1024 * 1024;
  }

  /** A buffer of exactly `n` bytes, contents undefined. */
  take(n: number): Buffer {
    if (n < this.minSize) return Buffer.allocUnsafe(n);
    const list = this.free.get(n);
    let ab = list?.pop();
    if (ab) {
      this.freeBytes -= n;
      this.reused++;
    } else {
      ab = new ArrayBuffer(n);
      this.made++;
    }
    this.lent.add(ab);
    return Buffer.from(ab, 0, n);
  }

  /**
   * Takes back the memory `view` lies in, if this pool lent it. The caller must hold no
   * other view of it: its next owner overwrites it.
   */
  give(view: Uint8Array | undefined): void {
    const ab = view?.buffer;
    if (!(ab instanceof ArrayBuffer) || !this.lent.has(ab)) return;
    this.lent.delete(ab);
    const n = ab.byteLength;
    if (this.freeBytes + n > this.maxFreeBytes) return;
    let list = this.free.get(n);
    if (!list) this.free.set(n, (list = []));
    if (list.length >= this.perSize) return;
    list.push(ab);
    this.freeBytes += n;
  }

  /** True when `view` lies in memory this pool lent and has not had back. */
  owns(view: Uint8Array | undefined): boolean {
    const ab = view?.buffer;
    return ab instanceof ArrayBuffer && this.lent.has(ab);
  }
}
