/**
 * A tape drive behind the iSCSI target with several commands in flight: WRITEs land in
 * CmdSN order even when an earlier one still waits for its Data-Out, reads come back in
 * order, and the receive buffers the target reuses never leak one command's data into
 * another's.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../../src/scsi/cdb.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { IscsiSession, type IscsiSessionOptions } from '../../../src/iscsi/session.js';
import { IscsiPort } from '../../../src/transport/iscsi/iscsi-port.js';
import type { EmulatedTarget, LogicalUnit } from '../../engine/types.js';
import { rig, type Rig } from '../../ssc/test-kit.js';
import { startIscsiTarget, type IscsiTargetHandle, type IscsiTargetOptions } from './target.js';

let r: Rig;
const cleanups: Array<() => Promise<void>> = [];
beforeEach(async () => {
  r = await rig();
  await r.load({ capacityBytes: 256 << 20 });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  r.cleanup();
});

async function open(opts: Partial<IscsiTargetOptions> = {}, sess: Partial<IscsiSessionOptions> = {}): Promise<{ h: IscsiTargetHandle; port: IscsiPort }> {
  const target: EmulatedTarget = { name: 'tapes', luns: () => new Map<number, LogicalUnit>([[0, r.lu]]) };
  const h = await startIscsiTarget({ target, host: '127.0.0.1', port: 0, ...opts });
  cleanups.push(() => h.stop());
  const s = await IscsiSession.open({ host: h.host, port: h.port, initiatorName: 'iqn.2026-11.io.ptpvts:pipeline', targetName: h.iqn, queueDepth: 16, ...sess });
  cleanups.push(() => s.close());
  const port = new IscsiPort(s, 0);
  await port.execute(Cdb.testUnitReady());
  return { h, port };
}

/** Block i: `n` bytes that differ from every other block's. */
function block(n: number, i: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let k = 0; k < n; k++) b[k] = (k * 31 + i * 101 + (k >> 8) * 7) & 0xff;
  b[0] = i;
  return b;
}

async function writeAll(port: IscsiPort, blocks: Uint8Array[]): Promise<void> {
  expect((await port.execute(Cdb.rewind())).status).toBe(ScsiStatus.GOOD);
  const res = await Promise.all(blocks.map((b) => port.execute(Cdb.write6(b))));
  for (const x of res) expect(x.status).toBe(ScsiStatus.GOOD);
  expect((await port.execute(Cdb.writeFilemarks6(1))).status).toBe(ScsiStatus.GOOD);
}

async function readAll(port: IscsiPort, blocks: Uint8Array[]): Promise<void> {
  expect((await port.execute(Cdb.rewind())).status).toBe(ScsiStatus.GOOD);
  const res = await Promise.all(blocks.map((b) => port.execute(Cdb.read6({ length: b.length }))));
  res.forEach((x, i) => {
    expect(x.status, `READ ${i}`).toBe(ScsiStatus.GOOD);
    expect(Buffer.from(x.data).equals(Buffer.from(blocks[i]!)), `READ ${i} returns block ${i}`).toBe(true);
  });
}

describe('pipelined tape commands over iSCSI', () => {
  it('reports buffered mode 1 in the MODE SENSE header', async () => {
    const { port } = await open();
    const ms = await port.execute(Cdb.modeSense6({ page: 0x00 }));
    expect(ms.status).toBe(ScsiStatus.GOOD);
    expect((ms.data[2]! >> 4) & 0x07).toBe(1);
  });

  it('WRITEs that need R2T and WRITEs carried whole in immediate data land in CmdSN order', async () => {
    // FirstBurstLength 16 KiB: the large blocks wait for R2T and Data-Out, the small ones
    // arrive complete with their command and must still wait for their turn.
    const { port } = await open({ firstBurstLength: 16384, maxBurstLength: 65536 }, { maxBurstLength: 65536, firstBurstLength: 16384 });
    const sizes = [200_000, 100, 150_000, 7, 16_384, 90_000, 1, 4096, 300_000, 12];
    const blocks = sizes.map((n, i) => block(n, i));
    await writeAll(port, blocks);
    expect(r.lu.drive.media?.objectCount).toBe(sizes.length + 1);
    await readAll(port, blocks);
  });

  it('a stream of 256 KiB WRITEs reuses receive buffers and every block reads back as written', async () => {
    const { h, port } = await open();
    const blocks = Array.from({ length: 48 }, (_, i) => block(256 * 1024, i));
    for (let round = 0; round < 2; round++) {
      await writeAll(port, blocks);
      await readAll(port, blocks);
    }
    const stats = h.bufferStats();
    expect(stats.reused).toBeGreaterThan(stats.made);
  });
});
