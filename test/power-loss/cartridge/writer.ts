/**
 * The cartridge campaign's writer, run as a worker thread (bundled to plain JS by the
 * test): an emulated LTO-7 drive whose cartridges live on the powerfs mount, driven with
 * SCSI commands (WRITE(6), WRITE FILEMARKS, LOCATE + ERASE, LOCATE + WRITE, WRITE
 * ATTRIBUTE, LOAD/UNLOAD, robot removal, insertion of new cartridges, deletion of old ones)
 * by the script in script.ts. After
 * every op it stores the op's index in shared memory: only then does the checker count on it.
 *
 * The file system calls are the production ones, with short random sleeps in front of
 * some of them (renames, fsyncs, writes), so that cuts land inside the windows that
 * matter (between a sync point's write and its fdatasync, inside a cartridge's creation).
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import * as Cdb from '../../../src/scsi/cdb.js';
import { decodeSense, describeSense } from '../../../src/scsi/sense.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import type { Command } from '../../../src/scsi/cdb.js';
import { MemoryPort } from '../../../firmware-sim/front/memory-port.js';
import { nodeFileIo, type CartridgeFileIo } from '../../../firmware-sim/media/file-io.js';
import { HEADER_USED } from '../../../firmware-sim/media/format.js';
import { drivePersonality } from '../../../firmware-sim/personalities/drives.js';
import { createTapeDrive } from '../../../firmware-sim/ssc/index.js';
import { writeFormat1Cartridge } from '../../kit/format1-cartridge.js';
import { attributeValue, blockBytes, cartFile, format1Mam, HOST_ATTRIBUTE, Script, Slot, type Format1Content, type Op } from './script.js';

interface WriterData {
  readonly dir: string;
  readonly seed: number;
  readonly shared: SharedArrayBuffer;
}

async function main(): Promise<void> {
  const { dir, seed, shared } = workerData as WriterData;
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
  /** The first file change of an overwrite or erase: the discard is under way and not durable (held open for the aimed cuts). */
  const discardStep = (): void => {
    if (Atomics.load(sh, Slot.discarding) !== 1) return;
    Atomics.store(sh, Slot.discarding, 2);
    sleep(1, 4);
  };
  const io: CartridgeFileIo = {
    ...nodeFileIo,
    openSync: (path, flags) => {
      sleep(0.3, 3);
      return nodeFileIo.openSync(path, flags);
    },
    writeSync: (fd, b, off, len, pos) => {
      sleep(0.02, 2);
      const n = nodeFileIo.writeSync(fd, b, off, len, pos);
      // Only a format 1 conversion rewrites a header in place (a new cartridge's header goes
      // to a file not yet renamed into place).
      if (pos === 0 && len <= HEADER_USED) Atomics.store(sh, Slot.converting, 1);
      else if (Atomics.load(sh, Slot.converting)) {
        // A write lands while the rewritten header is not durable yet: a cut now must not
        // keep it without the header (held open for the aimed cuts).
        Atomics.store(sh, Slot.converting, 2);
        sleep(1, 6);
      }
      discardStep();
      return n;
    },
    writevSync: (fd, bufs, pos) => {
      const n = nodeFileIo.writevSync(fd, bufs, pos);
      discardStep();
      return n;
    },
    fdatasyncSync: (fd) => {
      // The header rewrite (or a discard) is durable only after this: hold the window open for the aimed cuts.
      if (Atomics.load(sh, Slot.converting) || Atomics.load(sh, Slot.discarding) === 2) sleep(1, 4);
      else sleep(0.25, 3);
      nodeFileIo.fdatasyncSync(fd);
      Atomics.store(sh, Slot.converting, 0);
      if (Atomics.load(sh, Slot.discarding) === 2) Atomics.store(sh, Slot.discarding, 0);
    },
    // A sync point's fdatasync (filemarks, flushes) runs on the thread pool: its window is held open the same way.
    fdatasync: (fd, cb) => {
      if (Atomics.load(sh, Slot.converting) || Atomics.load(sh, Slot.discarding) === 2) sleep(1, 4);
      else sleep(0.25, 3);
      nodeFileIo.fdatasync(fd, (err) => {
        if (!err) {
          Atomics.store(sh, Slot.converting, 0);
          if (Atomics.load(sh, Slot.discarding) === 2) Atomics.store(sh, Slot.discarding, 0);
        }
        cb(err);
      });
    },
    fsyncSync: (fd) => {
      sleep(0.5, 3);
      nodeFileIo.fsyncSync(fd);
    },
    renameSync: (a, b) => {
      sleep(0.5, 3);
      nodeFileIo.renameSync(a, b);
      // The new name is visible now; its header is durable only if the create fsynced it.
      sleep(1, 4);
    },
    ftruncateSync: (fd, n) => {
      sleep(0.25, 2);
      nodeFileIo.ftruncateSync(fd, n);
      discardStep();
    },
  };
  const lu = createTapeDrive({ personality: drivePersonality('ibm-lto7-hh'), serial: 'PWRCUT1', mediaIo: io });
  const port = new MemoryPort(lu);
  const run = async (c: Command, what: string): Promise<void> => {
    const res = await port.execute(c);
    if (res.status !== ScsiStatus.GOOD) throw new Error(`${what}: ${res.status === ScsiStatus.CHECK_CONDITION ? describeSense(decodeSense(res.sense)) : `status ${res.status}`}`);
  };
  /** Takes the unit attentions a load raises for other initiators (there are none, but a power-on one comes first). */
  const drain = async (): Promise<void> => {
    for (let i = 0; i < 8; i++) {
      const res = await port.execute(Cdb.testUnitReady());
      if (res.status !== ScsiStatus.CHECK_CONDITION || decodeSense(res.sense).key !== 0x06) return;
    }
  };
  const ref = (id: number) => ({ barcode: `P${String(id).padStart(5, '0')}L7`, mediaType: 'LTO7', path: join(dir, cartFile(id)), writeProtected: false, capacityBytes: 1 << 30 });
  /** Writes a format 1 cartridge under a temporary name, durably, and renames it into place. */
  const importFormat1 = (id: number, content: Format1Content): void => {
    const path = join(dir, cartFile(id));
    const tmp = `${path}.format1`;
    writeFormat1Cartridge(tmp, {
      mediaType: 'LTO7',
      barcode: ref(id).barcode,
      capacityBytes: ref(id).capacityBytes,
      createdMs: 1_600_000_000_000 + id,
      slots: format1Mam(id, content),
      records: content.tape.map((o) => (o.startsWith('f') ? 'filemark' : blockBytes(Number(o.slice(1, o.indexOf(':'))), Number(o.split(':')[1])))),
    });
    renameSync(tmp, path);
    const d = openSync(dir, 'r');
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  };
  await drain();
  await lu.insert(ref(0));
  await drain();
  const script = new Script(seed);
  const discarding = async (f: () => Promise<void>): Promise<void> => {
    Atomics.store(sh, Slot.discarding, 1);
    try {
      await f();
    } finally {
      Atomics.store(sh, Slot.discarding, 0);
    }
  };
  const exec = async (op: Op, count: number): Promise<void> => {
    switch (op.k) {
      case 'block':
        return run(Cdb.write6(blockBytes(op.uid, op.size)), 'WRITE(6)');
      case 'filemarks':
        return run(Cdb.writeFilemarks6(op.uids.length), 'WRITE FILEMARKS');
      case 'flush':
        return run(Cdb.writeFilemarks6(0), 'WRITE FILEMARKS 0');
      case 'erase':
        await run(Cdb.locate10(op.at), 'LOCATE');
        return discarding(() => run(Cdb.erase6(), 'ERASE'));
      case 'overwrite':
        await run(Cdb.locate10(op.at), 'LOCATE');
        return discarding(() => run(Cdb.write6(blockBytes(op.uid, op.size)), 'WRITE(6) over'));
      case 'attribute': {
        const p = new Uint8Array(4 + 5 + 8);
        const v = new DataView(p.buffer);
        v.setUint32(0, 5 + 8);
        v.setUint16(4, HOST_ATTRIBUTE);
        p[6] = 0;
        v.setUint16(7, 8);
        p.set(attributeValue(op.value), 9);
        return run(Cdb.writeAttribute(p), 'WRITE ATTRIBUTE');
      }
      case 'reload':
        await run(Cdb.loadUnload({ load: false, hold: true }), 'UNLOAD');
        await run(Cdb.loadUnload({ load: true }), 'LOAD');
        await drain();
        return run(Cdb.locate10(count), 'LOCATE EOD');
      case 'rotate':
        await lu.unloadForRobot();
        lu.remove();
        if (op.format1) importFormat1(op.cart, op.format1);
        Atomics.store(sh, Slot.creating, 1);
        try {
          await lu.insert(ref(op.cart));
        } finally {
          Atomics.store(sh, Slot.creating, 0);
        }
        await drain();
        if (op.cart >= 2) unlinkSync(join(dir, cartFile(op.cart - 2)));
        // The host appends after what a format 1 cartridge came with.
        if (op.format1) await run(Cdb.locate10(count), 'LOCATE EOD');
        return;
    }
  };
  for (;;) {
    if (Atomics.load(sh, Slot.stop)) break;
    const op = script.step();
    Atomics.store(sh, Slot.op, script.index);
    await exec(op, script.cart().tape.length);
    Atomics.store(sh, Slot.done, script.index);
  }
  lu.close();
  parentPort?.postMessage({ ops: script.index + 1 });
}

main().catch((e: unknown) => {
  parentPort?.postMessage({ error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e) });
});
