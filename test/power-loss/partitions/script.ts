/**
 * The partitions campaign's workload as a deterministic script: FORMAT MEDIUM into 1 to 4
 * partitions, blocks and filemarks in one partition after another, overwrites inside a
 * partition (a discard record), reloads. The writer (worker thread) and the checker (the
 * test) run the same script; the checker keeps every state the cartridge passed through,
 * and which of them an op's completion acknowledges.
 */

/** One step of the workload. */
export type Op =
  | { readonly k: 'format'; readonly sizes: readonly number[] }
  | { readonly k: 'select'; readonly p: number }
  | { readonly k: 'block'; readonly uid: number; readonly size: number }
  | { readonly k: 'filemark' }
  | { readonly k: 'overwrite'; readonly at: number; readonly uid: number; readonly size: number }
  | { readonly k: 'reload' };

/** Shared-memory slots (Int32) between the writer and the checker. */
export const Slot = {
  /** Index of the op the writer started last (-1: none). */
  op: 0,
  /** Index of the op the writer finished last (-1: none). */
  done: 1,
  /** Set by the checker: the writer stops. */
  stop: 2,
  /** 1 while a FORMAT MEDIUM is under way (for aimed cuts). */
  formatting: 3,
  length: 4,
} as const;

export const CAPACITY = 256 * 1024 * 1024;

/** A block's payload: uid and size first, then bytes that depend on both. */
export function blockBytes(uid: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  v.setUint32(0, uid);
  v.setUint32(4, size);
  let x = (uid * 2654435761) >>> 0 || 1;
  for (let i = 8; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

class Rng {
  constructor(public s: number) {
    this.s = s >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s / 0x100000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * The generator and the model. `states` holds every state the tape was in (each partition's
 * objects, `b<uid>` or `fm`, as JSON); `acked[k]` is the index of the newest state that op k's
 * completion made durable.
 */
export class Script {
  private readonly rng: Rng;
  private parts: string[][] = [[]];
  private cur = 0;
  private uid = 0;
  readonly ops: Op[] = [];
  readonly states: string[] = [JSON.stringify([[]])];
  /** Per op: the last state index it produced. */
  readonly last: number[] = [];
  /** Per op: the newest state index durable once it is done. */
  readonly acked: number[] = [];
  private durable = 0;

  constructor(seed: number) {
    this.rng = new Rng(seed ^ 0x1b873593);
  }

  private push(): void {
    this.states.push(JSON.stringify(this.parts));
  }

  /** Generates op number `ops.length`, applies it to the model and returns it. */
  next(): Op {
    const r = this.rng;
    const x = r.next();
    const p = this.parts;
    let op: Op;
    // Formats often enough to cut many, but with time to write in between.
    if (x < 0.03 || this.ops.length === 0) {
      const n = 1 + r.int(4);
      const unit = Math.floor(CAPACITY / 8);
      const sizes = Array.from({ length: n }, () => (1 + r.int(2)) * unit);
      op = { k: 'format', sizes };
      this.durable = this.states.length - 1;
      this.parts = sizes.map(() => []);
      this.cur = 0;
      this.push();
      this.durable = this.states.length - 1;
    } else if (x < 0.12 && p.length > 1) {
      const to = r.int(p.length);
      op = { k: 'select', p: to };
      this.cur = to;
      // Leaving a partition flushes, as the drive does.
      this.durable = this.states.length - 1;
    } else if (x < 0.22) {
      op = { k: 'filemark' };
      (p[this.cur] as string[]).push('fm');
      this.push();
      this.durable = this.states.length - 1;
    } else if (x < 0.3 && (p[this.cur]?.length ?? 0) > 0) {
      const len = (p[this.cur] as string[]).length;
      const at = r.int(len);
      const size = r.next() < 0.1 ? 64 * 1024 + r.int(300_000) : 16 + r.int(6000);
      op = { k: 'overwrite', at, uid: ++this.uid, size };
      (p[this.cur] as string[]).length = at;
      this.push();
      // The discard is durable when the overwrite's truncate returns (and everything before it).
      this.durable = this.states.length - 1;
      (p[this.cur] as string[]).push(`b${op.uid}`);
      this.push();
    } else if (x < 0.32) {
      op = { k: 'reload' };
      this.cur = 0;
      this.durable = this.states.length - 1;
    } else {
      const size = r.next() < 0.05 ? 64 * 1024 + r.int(400_000) : 16 + r.int(6000);
      op = { k: 'block', uid: ++this.uid, size };
      (p[this.cur] as string[]).push(`b${op.uid}`);
      this.push();
    }
    this.ops.push(op);
    this.last.push(this.states.length - 1);
    this.acked.push(this.durable);
    return op;
  }

  /** Generates ops up to index `k` included. */
  upTo(k: number): void {
    while (this.ops.length <= k) this.next();
  }
}
