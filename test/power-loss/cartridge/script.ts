/**
 * The cartridge campaign's workload as a deterministic script: a seeded generator of tape
 * operations and the model of what each cartridge holds (and what is durable) after each
 * one. The writer (a worker thread driving the emulated drive) and the checker (the test)
 * run the same script, so the checker knows every state a cartridge went through without
 * any message from the writer except "op k is done" (shared memory).
 */

/** One step of the workload. Each cartridge's objects are `b<uid>` (a block) or `f<uid>` (a filemark). */
export type Op =
  | { readonly k: 'block'; readonly uid: number; readonly size: number }
  | { readonly k: 'filemarks'; readonly uids: readonly number[] }
  | { readonly k: 'flush' }
  | { readonly k: 'erase'; readonly at: number }
  | { readonly k: 'overwrite'; readonly at: number; readonly uid: number; readonly size: number }
  | { readonly k: 'attribute'; readonly value: number }
  | { readonly k: 'reload' }
  | { readonly k: 'rotate'; readonly cart: number; readonly format1?: Format1Content };

/**
 * What a format 1 cartridge brought in by a rotate holds when it is inserted: it is
 * converted to version 2 by the drive's writable open, and until that is durable a cut
 * must leave exactly this (see `format1Mam`).
 */
export interface Format1Content {
  /** Objects on the tape, as in {@link CartModel.tape}. */
  readonly tape: readonly string[];
  /** The host attribute's value in its cartridge memory. */
  readonly attribute: number;
}
// A rotate unloads the cartridge, has the robot take it away, inserts a new one (created
// on load), and deletes the one unloaded before (so the cuts copy little): cartridges up to
// `cart - 2` are retired.

/** What the model knows of one cartridge. */
export interface CartModel {
  readonly id: number;
  /** Objects as written, in order. */
  tape: string[];
  /** Payload bytes of the blocks on `tape`. */
  bytes: number;
  /** Objects made durable by an acknowledged sync point (a prefix of `tape`, or what a discard left). */
  durable: string[];
  /** Last host attribute value written (acknowledged once its op is); 0 for none. */
  attribute: number;
  /** Set for a cartridge inserted in format 1: what it held then. */
  readonly format1?: Format1Content;
}

/** A small, clonable PRNG (xorshift32 over a non-zero state). */
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

const MiB = 1 << 20;

/** A block's payload: uid and size, then bytes that depend on both, so any mix-up or torn page shows. */
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

/** The uid a block payload claims, if the payload is what that uid's block holds. */
export function decodeBlock(b: Uint8Array): { uid: number; ok: boolean } {
  if (b.length < 8) return { uid: -1, ok: false };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const uid = v.getUint32(0);
  const size = v.getUint32(4);
  if (size !== b.length) return { uid, ok: false };
  return { uid, ok: Buffer.from(blockBytes(uid, size)).equals(Buffer.from(b)) };
}

export class Script {
  private rng: Rng;
  /** Index of the last op generated (and applied to the model). */
  index = -1;
  carts = new Map<number, CartModel>();
  current: number;
  /** Cartridges with an id up to this one are deleted (or being deleted): not checked any more. */
  retiredUpTo = -1;
  private next = 1;
  private uid = 0;
  private attrs = 0;
  /** Blocks still to come in a burst (long unsynced stretch: the background writeback starts). */
  private burst = 0;

  constructor(seed: number) {
    this.rng = new Rng(seed);
    this.current = 0;
    this.carts.set(0, { id: 0, tape: [], bytes: 0, durable: [], attribute: 0 });
  }

  clone(): Script {
    const c = Object.create(Script.prototype) as Script;
    c.rng = new Rng(this.rng.s);
    c.index = this.index;
    c.current = this.current;
    c.retiredUpTo = this.retiredUpTo;
    c.next = this.next;
    c.uid = this.uid;
    c.attrs = this.attrs;
    c.burst = this.burst;
    c.carts = new Map([...this.carts].map(([k, m]) => [k, { ...m, tape: [...m.tape], durable: [...m.durable] }]));
    return c;
  }

  cart(): CartModel {
    const m = this.carts.get(this.current);
    if (!m) throw new Error(`no cartridge ${this.current}`);
    return m;
  }

  private blockSize(): number {
    if (this.burst > 0) return MiB;
    return this.rng.next() < 0.05 ? 40_000 + this.rng.int(80_000) : 8 + this.rng.int(12_000);
  }

  /** Generates op `index + 1` and applies it to the model. */
  step(): Op {
    const m = this.cart();
    const r = this.rng.next();
    let op: Op;
    if (this.burst > 0) {
      this.burst--;
      op = { k: 'block', uid: ++this.uid, size: this.blockSize() };
    } else if (m.bytes > 6 * MiB || m.tape.length > 400) {
      op = { k: 'erase', at: this.rng.int(Math.min(40, m.tape.length)) };
    } else if (r < 0.003) {
      this.burst = 9;
      op = { k: 'block', uid: ++this.uid, size: MiB };
    } else if (r < 0.55) {
      op = { k: 'block', uid: ++this.uid, size: this.blockSize() };
    } else if (r < 0.7) {
      const n = 1 + this.rng.int(2);
      op = { k: 'filemarks', uids: Array.from({ length: n }, () => ++this.uid) };
    } else if (r < 0.75) {
      op = { k: 'flush' };
    } else if (r < 0.8 && m.tape.length > 0) {
      op = { k: 'overwrite', at: this.rng.int(m.tape.length), uid: ++this.uid, size: this.blockSize() };
    } else if (r < 0.82 && m.tape.length > 0) {
      op = { k: 'erase', at: this.rng.int(m.tape.length) };
    } else if (r < 0.9) {
      op = { k: 'attribute', value: ++this.attrs };
    } else if (r < 0.915) {
      op = { k: 'reload' };
    } else if (r < 0.925) {
      op = { k: 'rotate', cart: this.next++ };
      // Half the new cartridges come in format 1, written before they are inserted.
      if (this.rng.next() < 0.5) {
        const tape: string[] = [];
        for (let n = 1 + this.rng.int(6); n > 0; n--) tape.push(this.rng.next() < 0.25 ? `f${++this.uid}` : `b${++this.uid}:${8 + this.rng.int(12_000)}`);
        op = { ...op, format1: { tape, attribute: ++this.attrs } };
      }
    } else {
      op = { k: 'block', uid: ++this.uid, size: this.blockSize() };
    }
    this.apply(op);
    this.index++;
    return op;
  }

  private apply(op: Op): void {
    const m = this.cart();
    const cut = (at: number): void => {
      m.tape.length = at;
      m.bytes = m.tape.reduce((n, o) => n + (o.startsWith('b') ? Number(o.split(':')[1]) : 0), 0);
    };
    switch (op.k) {
      case 'block':
        m.tape.push(`b${op.uid}:${op.size}`);
        m.bytes += op.size;
        break;
      case 'filemarks':
        for (const u of op.uids) m.tape.push(`f${u}`);
        m.durable = [...m.tape];
        break;
      case 'flush':
      case 'reload':
        m.durable = [...m.tape];
        break;
      case 'erase':
        cut(op.at);
        m.durable = [...m.tape];
        break;
      case 'overwrite':
        // The discard is durable when the WRITE returns; the block itself is not.
        cut(op.at);
        m.durable = [...m.tape];
        m.tape.push(`b${op.uid}:${op.size}`);
        m.bytes += op.size;
        break;
      case 'attribute':
        m.attribute = op.value;
        break;
      case 'rotate':
        m.durable = [...m.tape];
        if (op.format1) {
          const tape = [...op.format1.tape];
          const bytes = tape.reduce((n, o) => n + (o.startsWith('b') ? Number(o.split(':')[1]) : 0), 0);
          this.carts.set(op.cart, { id: op.cart, tape, bytes, durable: [...tape], attribute: op.format1.attribute, format1: op.format1 });
        } else this.carts.set(op.cart, { id: op.cart, tape: [], bytes: 0, durable: [], attribute: 0 });
        this.current = op.cart;
        this.retiredUpTo = op.cart - 2;
        this.carts.delete(this.retiredUpTo);
        break;
    }
  }
}

/** The host attribute the workload writes (and reads back after each cut). */
export const HOST_ATTRIBUTE = 0x1400;
/** A second host attribute only format 1 cartridges carry: written once, it must survive the conversion. */
export const FORMAT1_MARK_ATTRIBUTE = 0x1401;

/** An 8-byte binary attribute value holding `v` in its low 32 bits. */
export function attributeValue(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(4, v);
  return b;
}

/**
 * The cartridge memory of format 1 cartridge `id`: the newest image (sequence 5) and an
 * older one (sequence 4) a conversion must not bring back.
 */
export function format1Mam(id: number, content: Format1Content): { seq: number; attrs: Map<number, { format: number; value: Uint8Array }> }[] {
  return [
    { seq: 4, attrs: new Map([[HOST_ATTRIBUTE, { format: 0, value: attributeValue(0x0bad0000 + id) }]]) },
    {
      seq: 5,
      attrs: new Map([
        [HOST_ATTRIBUTE, { format: 0, value: attributeValue(content.attribute) }],
        [FORMAT1_MARK_ATTRIBUTE, { format: 0, value: attributeValue(0x00f10000 + id) }],
      ]),
    },
  ];
}

/** File name of cartridge `id` in the writer's directory. */
export const cartFile = (id: number): string => `cart-${String(id).padStart(4, '0')}.cart`;

/** Shared memory slots between writer and checker (Int32Array indexes). */
export const Slot = {
  /** The op the writer is doing (stored before it starts). */
  op: 0,
  /** The last op that completed (the drive answered GOOD to all its commands). */
  done: 1,
  /** Set by the checker: finish the current op and stop. */
  stop: 2,
  /** 1 while the writer creates and loads a new cartridge (the checker aims some cuts there). */
  creating: 3,
  /**
   * 1 from a cartridge header rewrite (a format 1 conversion) until the next fdatasync of
   * any file returns; 2 once another write came in that window (the checker aims some
   * cuts there).
   */
  converting: 4,
  /**
   * 1 while an overwrite or erase is under way; 2 once its first write or ftruncate went to
   * the file and until the next fdatasync returns: the discard of the old records is not
   * durable yet (the checker aims some cuts there).
   */
  discarding: 5,
  length: 6,
} as const;
