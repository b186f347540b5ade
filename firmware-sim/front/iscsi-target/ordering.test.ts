/**
 * The order answers leave in. A command the unit finishes at once is answered from the
 * PDU handler that delivered it, so nothing but the target's ordering rules keep its answer
 * in place: CmdSN order for commands that arrive out of it, and per LU the order of
 * commands when an earlier one still waits for its Data-Out.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../../src/scsi/cdb.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { Opcode } from '../../../src/iscsi/constants.js';
import { encodeLun, encodePdu, type Pdu } from '../../../src/iscsi/pdu.js';
import { startIscsiTarget, type IscsiTargetHandle } from './target.js';
import { getCdb, putCdb, ToyTarget } from './fixture.js';
import { rawLogin, type RawConnection } from './raw-client.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function session(): Promise<{ h: IscsiTargetHandle; c: RawConnection }> {
  const h = await startIscsiTarget({ target: new ToyTarget(), port: 0, nopInIntervalMs: 0 });
  cleanups.push(() => h.stop());
  const c = await rawLogin({ host: h.host, port: h.port, iqn: h.iqn });
  cleanups.push(() => c.close());
  // The power-on unit attention of both LUNs, out of the way.
  for (const lun of [0, 1]) {
    c.sendPdu(scsi(c, { itt: 900 + lun, lun: encodeLun(lun) }));
    c.cmdSN++;
    await c.waitFor((p) => p.opcode === Opcode.SCSI_RESPONSE && p.itt === 900 + lun);
  }
  return { h, c };
}

function scsi(c: RawConnection, over: Partial<Extract<Pdu, { opcode: 0x01 }>> = {}): Extract<Pdu, { opcode: 0x01 }> {
  const cdb = new Uint8Array(16);
  cdb.set(Cdb.testUnitReady().cdb);
  return { opcode: Opcode.SCSI_COMMAND, immediate: false, final: true, read: false, write: false, attr: 1, lun: encodeLun(0), itt: 1, expectedDataTransferLength: 0, cmdSN: c.cmdSN, expStatSN: 0, cdb, ...over };
}

const cdb16 = (c: Uint8Array): Uint8Array => {
  const b = new Uint8Array(16);
  b.set(c);
  return b;
};

/** Answers (SCSI Response or Data-In with status) in the order they came, as [itt, statSN]. */
function answers(c: RawConnection): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const p of c.received) {
    if (p.opcode === Opcode.SCSI_RESPONSE) out.push([p.itt, p.statSN]);
    else if (p.opcode === Opcode.DATA_IN && p.statusPresent) out.push([p.itt, p.statSN]);
  }
  return out;
}

describe('iSCSI target: order of answers', () => {
  it('answers commands that finish at once in CmdSN order when they arrive in reverse, with consecutive StatSNs', async () => {
    const { c } = await session();
    const base = c.cmdSN;
    const before = answers(c).length;
    // One write: CmdSN base+3 first, base last. Each is a command the unit answers at once.
    const pdus = [3, 2, 1, 0].map((k) => scsi(c, { itt: 10 + k, cmdSN: (base + k) >>> 0, ...(k % 2 ? { read: true, expectedDataTransferLength: 36, cdb: cdb16(Cdb.inquiry().cdb) } : {}) }));
    c.sendRaw(Buffer.concat(pdus.map((p) => encodePdu(p))));
    c.cmdSN = (base + 4) >>> 0;
    await c.waitFor((p) => (p.opcode === Opcode.SCSI_RESPONSE || p.opcode === Opcode.DATA_IN) && p.itt === 13);
    const got = answers(c).slice(before);
    expect(got.map(([itt]) => itt)).toEqual([10, 11, 12, 13]);
    const first = got[0]![1];
    expect(got.map(([, sn]) => (sn - first) >>> 0)).toEqual([0, 1, 2, 3]);
  });

  it('holds a command that finishes at once behind an earlier one to the same LU still waiting for its Data-Out', async () => {
    const { c } = await session();
    const data = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
    // PUT with no immediate data: the target asks for the data with an R2T.
    c.sendPdu(scsi(c, { itt: 20, write: true, expectedDataTransferLength: data.length, cdb: cdb16(putCdb(data.length)) }));
    c.cmdSN++;
    const r2t = await c.waitFor((p) => p.opcode === Opcode.R2T && p.itt === 20);
    if (r2t.opcode !== Opcode.R2T) throw new Error('no R2T');
    // GET on the same LU (finishes at once when it runs), and TEST UNIT READY on the other LU.
    c.sendPdu(scsi(c, { itt: 21, read: true, expectedDataTransferLength: data.length, cdb: cdb16(getCdb(data.length)) }));
    c.cmdSN++;
    c.sendPdu(scsi(c, { itt: 22, lun: encodeLun(1) }));
    c.cmdSN++;
    await c.waitFor((p) => p.opcode === Opcode.SCSI_RESPONSE && p.itt === 22);
    await new Promise((r) => setTimeout(r, 30));
    expect(answers(c).some(([itt]) => itt === 21 || itt === 20)).toBe(false);
    c.sendPdu({ opcode: Opcode.DATA_OUT, final: true, lun: encodeLun(0), itt: 20, ttt: r2t.ttt, expStatSN: 0, dataSN: 0, bufferOffset: 0, data });
    const get = await c.waitFor((p) => p.opcode === Opcode.DATA_IN && p.itt === 21 && p.statusPresent);
    const order = answers(c).map(([itt]) => itt).filter((i) => i === 20 || i === 21);
    expect(order).toEqual([20, 21]);
    // The GET ran after the PUT: it read what the PUT wrote.
    const bytes = Buffer.concat(c.received.filter((p) => p.opcode === Opcode.DATA_IN && p.itt === 21).map((p) => Buffer.from((p.opcode === Opcode.DATA_IN && p.data) || [])));
    expect(bytes.equals(Buffer.from(data))).toBe(true);
    expect(get.opcode === Opcode.DATA_IN && get.status).toBe(ScsiStatus.GOOD);
  });
});
