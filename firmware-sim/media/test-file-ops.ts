/**
 * Test helper for the power-cut unit tests (durability.test.ts, partitions.test.ts): node's
 * file I/O for a cartridge, recording every write, truncate and sync while switched on, so a
 * test can rebuild the file as a power cut after any operation would leave it.
 */
import { nodeFileIo, type CartridgeFileIo } from './file-io.js';

export type FileOp = { k: 'write'; at: number; data: Buffer } | { k: 'truncate'; len: number } | { k: 'sync' };

export function recordingIo(): { readonly io: CartridgeFileIo; readonly ops: FileOp[]; record(on: boolean): void } {
  const ops: FileOp[] = [];
  let on = false;
  const io: CartridgeFileIo = {
    ...nodeFileIo,
    writeSync: (fd, buf, off, len, pos) => {
      const n = nodeFileIo.writeSync(fd, buf, off, len, pos);
      if (on) ops.push({ k: 'write', at: pos, data: Buffer.from(buf.subarray(off, off + n)) });
      return n;
    },
    writevSync: (fd, bufs, pos) => {
      const n = nodeFileIo.writevSync(fd, bufs, pos);
      if (on) ops.push({ k: 'write', at: pos, data: Buffer.concat(bufs.map((b) => Buffer.from(b))).subarray(0, n) });
      return n;
    },
    ftruncateSync: (fd, len) => {
      nodeFileIo.ftruncateSync(fd, len);
      if (on) ops.push({ k: 'truncate', len });
    },
    fdatasyncSync: (fd) => {
      nodeFileIo.fdatasyncSync(fd);
      if (on) ops.push({ k: 'sync' });
    },
    fsyncSync: (fd) => {
      nodeFileIo.fsyncSync(fd);
      if (on) ops.push({ k: 'sync' });
    },
  };
  return {
    io,
    ops,
    record(v: boolean): void {
      on = v;
    },
  };
}

/** One power-cut image: after `t` operations were issued, `n` of them kept, the next torn after `tear` bytes (-1: a lost truncate with its page zeroed). */
export interface CutImage {
  readonly t: number;
  readonly n: number;
  readonly tear: number;
  readonly img: Buffer;
  /** The cut in words, for assertion messages. */
  readonly where: string;
}

/**
 * Every file a power cut during `ops` (applied to the file `before`) can leave: a cut after
 * `t` operations keeps everything up to the last sync before it, then any prefix of the rest;
 * the next write may be torn after each of its first `tearBytes` bytes, its middle and its last
 * (unless `whole(op)`: written whole or not at all, like a header inside one sector); a
 * truncate not kept may still have zeroed the rest of the page holding its new end, as the
 * kernel does in the page cache.
 */
export function* powerCuts(before: Buffer, ops: readonly FileOp[], o: { readonly tearBytes: number; readonly whole?: (op: FileOp) => boolean }): Generator<CutImage> {
  for (let t = 0; t <= ops.length; t++) {
    let synced = 0;
    for (let i = 0; i < t; i++) if (ops[i]?.k === 'sync') synced = i + 1;
    for (let n = synced; n <= t; n++) {
      const next = n < t ? ops[n] : undefined;
      const tears =
        next?.k === 'write' && o.whole?.(next) !== true
          ? [...new Set([...Array.from({ length: Math.min(next.data.length, o.tearBytes) }, (_, b) => b + 1), next.data.length - 1, Math.floor(next.data.length / 2)])].filter((b) => b > 0 && b < next.data.length)
          : next?.k === 'truncate'
            ? [0, -1]
            : [0];
      for (const tear of tears) {
        let img = Buffer.from(before);
        const apply = (op: FileOp, upTo?: number): void => {
          if (op.k === 'truncate') img = op.len <= img.length ? img.subarray(0, op.len) : Buffer.concat([img, Buffer.alloc(op.len - img.length)]);
          else if (op.k === 'write') {
            const data = upTo === undefined ? op.data : op.data.subarray(0, upTo);
            if (op.at + data.length > img.length) img = Buffer.concat([img, Buffer.alloc(op.at + data.length - img.length)]);
            data.copy(img, op.at);
          }
        };
        for (let i = 0; i < n; i++) apply(ops[i]!);
        if (next?.k === 'write' && tear > 0) apply(next, tear);
        if (next?.k === 'truncate' && tear === -1) img.fill(0, next.len, Math.min(img.length, Math.ceil((next.len + 1) / 4096) * 4096));
        const where = `cut after ${t} of ${ops.length} operations, ${n} of them kept${tear > 0 ? `, the next write torn after ${tear} bytes` : tear < 0 ? ', the next (a truncate) lost with the page at its end zeroed' : ''}`;
        yield { t, n, tear, img, where };
      }
    }
  }
}
