/**
 * The partitions campaign's writer, run as a worker thread (bundled to plain JS by the
 * test): one cartridge file on the powerfs mount, driven through the production
 * `Cartridge` by the script in script.ts (FORMAT MEDIUM, partition changes, blocks,
 * filemarks, overwrites, reloads). Before an op it stores its index in `Slot.op`, after it
 * in `Slot.done`: only then does the checker count on it. Short random sleeps in front of
 * writes and syncs make cuts land inside the windows that matter.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Cartridge } from '../../../firmware-sim/media/cartridge.js';
import { nodeFileIo, type CartridgeFileIo } from '../../../firmware-sim/media/file-io.js';
import { blockBytes, Script, Slot } from './script.js';

interface WriterData {
  readonly path: string;
  readonly seed: number;
  readonly shared: SharedArrayBuffer;
}

function main(): void {
  const { path, seed, shared } = workerData as WriterData;
  const sh = new Int32Array(shared);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  let r = (seed ^ 0x5bd1e995) >>> 0 || 1;
  const rand = (): number => {
    r ^= r << 13;
    r >>>= 0;
    r ^= r >>> 17;
    r ^= r << 5;
    r >>>= 0;
    return r / 0x100000000;
  };
  const sleep = (p: number, maxMs: number): void => {
    if (rand() < p) Atomics.wait(nap, 0, 0, rand() * maxMs);
  };
  const io: CartridgeFileIo = {
    ...nodeFileIo,
    writeSync: (fd, b, off, len, pos) => {
      sleep(Atomics.load(sh, Slot.formatting) ? 0.8 : 0.05, 2);
      return nodeFileIo.writeSync(fd, b, off, len, pos);
    },
    fdatasyncSync: (fd) => {
      sleep(Atomics.load(sh, Slot.formatting) ? 0.8 : 0.1, 2);
      nodeFileIo.fdatasyncSync(fd);
    },
    ftruncateSync: (fd, len) => {
      sleep(0.5, 2);
      nodeFileIo.ftruncateSync(fd, len);
    },
  };
  const script = new Script(seed);
  let c = Cartridge.open(path, { io });
  let k = 0;
  for (; k < 200_000 && !Atomics.load(sh, Slot.stop); k++) {
    const op = script.next();
    Atomics.store(sh, Slot.op, k);
    switch (op.k) {
      case 'format':
        Atomics.store(sh, Slot.formatting, 1);
        c.format(op.sizes);
        Atomics.store(sh, Slot.formatting, 0);
        break;
      case 'select':
        c.sync();
        c.selectPartition(op.p);
        break;
      case 'block':
        c.appendBlock(blockBytes(op.uid, op.size));
        break;
      case 'filemark':
        c.appendFilemarks(1);
        break;
      case 'overwrite':
        c.truncate(op.at);
        c.appendBlock(blockBytes(op.uid, op.size));
        break;
      case 'reload':
        c.close();
        c = Cartridge.open(path, { io });
        break;
    }
    Atomics.store(sh, Slot.done, k);
  }
  c.close();
  parentPort?.postMessage({ ops: k });
}

try {
  main();
} catch (e) {
  parentPort?.postMessage({ error: `${(e as Error).name}: ${(e as Error).message}\n${(e as Error).stack ?? ''}` });
}
