/**
 * The target under bad input: one test per PDU class, a fuzz run of at least 100,000
 * random and mutated PDUs, and a check that one session's garbage leaves another alone.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connect } from 'node:net';
import * as Cdb from '../../../src/scsi/cdb.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { decodeSense, SenseKey } from '../../../src/scsi/sense.js';
import type { ScsiRequest, ScsiResponse } from '../../../src/transport/scsi-port.js';
import { LoginStatus, Opcode, RejectReason, RESERVED_TAG, TmfFunction, TmfResponse } from '../../../src/iscsi/constants.js';
import { LoginError } from '../../../src/iscsi/errors.js';
import { encodeLun, encodePdu, type Pdu } from '../../../src/iscsi/pdu.js';
import { IscsiSession } from '../../../src/iscsi/session.js';
import { IscsiPort } from '../../../src/transport/iscsi/iscsi-port.js';
import { startIscsiTarget, type IscsiTargetHandle, type IscsiTargetOptions } from './target.js';
import { getCdb, hangCdb, putCdb, ToyTarget } from './fixture.js';
import { rawLogin, type RawConnection } from './raw-client.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function target(opts: Partial<IscsiTargetOptions> = {}): Promise<{ h: IscsiTargetHandle; lib: ToyTarget }> {
  const lib = new ToyTarget();
  const h = await startIscsiTarget({ target: lib, port: 0, nopInIntervalMs: 0, maxTransferLength: 1 << 20, ...opts });
  cleanups.push(() => h.stop());
  return { h, lib };
}
async function raw(h: IscsiTargetHandle, extra: Partial<Parameters<typeof rawLogin>[0]> = {}): Promise<RawConnection> {
  const c = await rawLogin({ host: h.host, port: h.port, iqn: h.iqn, ...extra });
  cleanups.push(() => c.close());
  return c;
}
const cdb16 = (c: Uint8Array): Uint8Array => {
  const b = new Uint8Array(16);
  b.set(c);
  return b;
};
function scsi(c: RawConnection, over: Partial<Extract<Pdu, { opcode: 0x01 }>> = {}): Pdu {
  return { opcode: Opcode.SCSI_COMMAND, immediate: false, final: true, read: false, write: false, attr: 1, lun: encodeLun(0), itt: 100, expectedDataTransferLength: 0, cmdSN: c.cmdSN, expStatSN: 0, cdb: cdb16(Cdb.testUnitReady().cdb), ...over };
}
const isReject = (reason: number) => (p: Pdu): boolean => p.opcode === Opcode.REJECT && p.reason === reason;

async function cleanSession(h: IscsiTargetHandle): Promise<void> {
  const s = await IscsiSession.open({ host: h.host, port: h.port, initiatorName: `iqn.2026-11.io.ptpvts:clean-${Math.random()}`, targetName: h.iqn, defaultTimeoutMs: 5000 });
  try {
    const port = new IscsiPort(s, 1);
    await port.execute(Cdb.testUnitReady());
    const data = Uint8Array.from({ length: 100000 }, (_, i) => i & 0xff);
    expect((await port.execute({ cdb: putCdb(data.length), direction: 'out', dataOut: data })).status).toBe(ScsiStatus.GOOD);
    const r = await port.execute({ cdb: getCdb(data.length), direction: 'in', dataInLength: data.length });
    expect(Buffer.from(r.data).equals(Buffer.from(data))).toBe(true);
    expect((await port.execute(Cdb.inquiry())).status).toBe(ScsiStatus.GOOD);
  } finally {
    await s.close();
  }
}

describe('iSCSI target: bad input per PDU class', () => {
  it('rejects an unknown opcode (COMMAND NOT SUPPORTED) and a target opcode (PROTOCOL ERROR)', async () => {
    const { h } = await target();
    const c = await raw(h);
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x1c;
    c.sendRaw(bhs);
    await c.waitFor(isReject(RejectReason.COMMAND_NOT_SUPPORTED));
    c.sendPdu({ opcode: Opcode.NOP_IN, lun: 0n, itt: 1, ttt: RESERVED_TAG, statSN: 0, expCmdSN: 0, maxCmdSN: 0 });
    await c.waitFor(isReject(RejectReason.PROTOCOL_ERROR));
  });

  it('rejects a data segment over MaxRecvDataSegmentLength and stays in step', async () => {
    const { h } = await target({ maxRecvDataSegmentLength: 4096 });
    const c = await raw(h);
    c.sendPdu({ opcode: Opcode.NOP_OUT, immediate: true, lun: 0n, itt: 9, ttt: RESERVED_TAG, cmdSN: c.cmdSN, expStatSN: 0, data: new Uint8Array(5000) });
    await c.waitFor(isReject(RejectReason.PROTOCOL_ERROR));
    c.sendPdu({ opcode: Opcode.NOP_OUT, immediate: true, lun: 0n, itt: 10, ttt: RESERVED_TAG, cmdSN: c.cmdSN, expStatSN: 0 });
    await c.waitFor((p) => p.opcode === Opcode.NOP_IN && p.itt === 10);
  });

  it('rejects bad lengths: data on a TMF, immediate data beyond the transfer length, AHS on a NOP-Out', async () => {
    const { h } = await target();
    const c = await raw(h);
    const tmf = encodePdu({ opcode: Opcode.TASK_MGMT_REQUEST, immediate: true, function: 1, lun: 0n, itt: 3, referencedTaskTag: 1, cmdSN: c.cmdSN, expStatSN: 0, refCmdSN: 0, expDataSN: 0 });
    tmf.writeUIntBE(4, 5, 3);
    c.sendRaw(Buffer.concat([tmf, Buffer.alloc(4)]));
    await c.waitFor(isReject(RejectReason.INVALID_PDU_FIELD));
    c.sendPdu(scsi(c, { write: true, final: true, expectedDataTransferLength: 4, data: new Uint8Array(8), cdb: cdb16(putCdb(4)) }));
    c.cmdSN++;
    await c.waitFor(isReject(RejectReason.PROTOCOL_ERROR));
  });

  it('silently ignores commands outside the CmdSN window, then serves in-window ones', async () => {
    const { h } = await target({ cmdWindow: 8 });
    const c = await raw(h);
    c.sendPdu(scsi(c, { itt: 1, cmdSN: (c.cmdSN + 1000) >>> 0 }));
    c.sendPdu(scsi(c, { itt: 2, cmdSN: (c.cmdSN - 5) >>> 0 }));
    c.sendPdu(scsi(c, { itt: 3 }));
    const r = await c.waitFor((p) => p.opcode === Opcode.SCSI_RESPONSE);
    expect(r.opcode === Opcode.SCSI_RESPONSE && r.itt).toBe(3);
    await new Promise((res) => setTimeout(res, 50));
    expect(c.received.filter((p) => p.opcode === Opcode.SCSI_RESPONSE || p.opcode === Opcode.REJECT).length).toBe(1);
    expect(h.stats.dropped).toBe(2);
  });

  it('rejects a second command with an ITT in use (TASK IN PROGRESS)', async () => {
    const { h, lib } = await target();
    const c = await raw(h);
    // The unit attention of a fresh unit first: otherwise the hanging command would be
    // answered at once with it and its ITT would be free again.
    c.sendPdu(scsi(c, { itt: 4 }));
    c.cmdSN++;
    await c.waitFor((p) => p.opcode === Opcode.SCSI_RESPONSE && p.itt === 4);
    c.sendPdu(scsi(c, { itt: 5, cdb: cdb16(hangCdb()) }));
    c.cmdSN++;
    await vi.waitFor(() => expect(lib.units[0]!.inFlight()).toBe(1));
    c.sendPdu(scsi(c, { itt: 5 }));
    c.cmdSN++;
    await c.waitFor(isReject(RejectReason.TASK_IN_PROGRESS));
    c.sendPdu({ opcode: Opcode.TASK_MGMT_REQUEST, immediate: true, function: TmfFunction.ABORT_TASK_SET, lun: encodeLun(0), itt: 6, referencedTaskTag: RESERVED_TAG, cmdSN: c.cmdSN, expStatSN: 0, refCmdSN: 0, expDataSN: 0 });
    const t = await c.waitFor((p) => p.opcode === Opcode.TASK_MGMT_RESPONSE);
    expect(t.opcode === Opcode.TASK_MGMT_RESPONSE && t.response).toBe(TmfResponse.FUNCTION_COMPLETE);
  });

  it('answers task management for unknown LUNs, unknown tasks and unsupported functions', async () => {
    const { h, lib } = await target();
    const c = await raw(h);
    const tmf = (fn: number, lun: number, itt: number, ref = 77): void =>
      c.sendPdu({ opcode: Opcode.TASK_MGMT_REQUEST, immediate: true, function: fn, lun: encodeLun(lun), itt, referencedTaskTag: ref, cmdSN: c.cmdSN, expStatSN: 0, refCmdSN: (c.cmdSN - 1) >>> 0, expDataSN: 0 });
    const resp = async (itt: number): Promise<number> => {
      const p = await c.waitFor((x) => x.opcode === Opcode.TASK_MGMT_RESPONSE && x.itt === itt);
      return p.opcode === Opcode.TASK_MGMT_RESPONSE ? p.response : -1;
    };
    tmf(TmfFunction.ABORT_TASK, 7, 20);
    expect(await resp(20)).toBe(TmfResponse.LUN_DOES_NOT_EXIST);
    tmf(TmfFunction.ABORT_TASK, 0, 21);
    expect(await resp(21)).toBe(TmfResponse.TASK_DOES_NOT_EXIST);
    tmf(TmfFunction.CLEAR_ACA, 0, 22);
    expect(await resp(22)).toBe(TmfResponse.NOT_SUPPORTED);
    tmf(TmfFunction.TASK_REASSIGN, 0, 23);
    expect(await resp(23)).toBe(TmfResponse.REASSIGNMENT_NOT_SUPPORTED);
    c.sendPdu(scsi(c, { itt: 29 }));
    c.cmdSN++;
    await c.waitFor((p) => p.opcode === Opcode.SCSI_RESPONSE && p.itt === 29);
    c.sendPdu(scsi(c, { itt: 30, cdb: cdb16(hangCdb()) }));
    c.cmdSN++;
    await new Promise((r) => setTimeout(r, 30));
    expect(lib.units[0]!.inFlight()).toBe(1);
    tmf(TmfFunction.LOGICAL_UNIT_RESET, 0, 24);
    expect(await resp(24)).toBe(TmfResponse.FUNCTION_COMPLETE);
    expect(lib.units[0]!.inFlight()).toBe(0);
    tmf(TmfFunction.TARGET_WARM_RESET, 0, 25);
    expect(await resp(25)).toBe(TmfResponse.FUNCTION_COMPLETE);
    // No response ever comes for the aborted task.
    expect(c.received.some((p) => p.opcode === Opcode.SCSI_RESPONSE && p.itt === 30)).toBe(false);
  });

  it('rejects Data-Out with a wrong TTT or offset, and unsolicited data when InitialR2T=Yes', async () => {
    const { h } = await target({ initialR2T: true, immediateData: false });
    const c = await raw(h);
    c.sendPdu(scsi(c, { itt: 40, write: true, final: true, expectedDataTransferLength: 1000, cdb: cdb16(putCdb(1000)) }));
    c.cmdSN++;
    const r2t = await c.waitFor((p) => p.opcode === Opcode.R2T);
    if (r2t.opcode !== Opcode.R2T) throw new Error('no R2T');
    const dout = (over: object): Pdu => ({ opcode: Opcode.DATA_OUT, final: true, lun: encodeLun(0), itt: 40, ttt: r2t.ttt, expStatSN: 0, dataSN: 0, bufferOffset: 0, data: new Uint8Array(1000), ...over });
    c.sendPdu(dout({ ttt: r2t.ttt + 1 }));
    await c.waitFor(isReject(RejectReason.INVALID_PDU_FIELD));
    c.sendPdu(dout({ bufferOffset: 4 }));
    await c.waitFor(isReject(RejectReason.PROTOCOL_ERROR));
    c.sendPdu(dout({}));
    const resp = await c.waitFor((p) => p.opcode === Opcode.SCSI_RESPONSE && p.itt === 40);
    expect(resp.opcode === Opcode.SCSI_RESPONSE && resp.status).not.toBe(undefined);
    c.sendPdu(scsi(c, { itt: 41, write: true, final: false, expectedDataTransferLength: 1000, cdb: cdb16(putCdb(1000)) }));
    c.cmdSN++;
    await c.waitFor((p) => p.opcode === Opcode.REJECT && Buffer.from(p.data ?? []).readUInt32BE(16) === 41);
  });

  it('answers text requests: SendTargets in a normal session, NotUnderstood for other keys, Reject for bad text', async () => {
    const { h } = await target();
    const c = await raw(h);
    const text = (itt: number, data: Uint8Array): void => {
      c.sendPdu({ opcode: Opcode.TEXT_REQUEST, immediate: false, final: true, continue: false, lun: 0n, itt, ttt: RESERVED_TAG, cmdSN: c.cmdSN, expStatSN: 0, data });
      c.cmdSN++;
    };
    text(50, Buffer.from('SendTargets=\0X-Y=1\0'));
    const r = await c.waitFor((p) => p.opcode === Opcode.TEXT_RESPONSE);
    expect(Buffer.from(r.data ?? []).toString()).toBe(`TargetName=${h.iqn}\0TargetAddress=127.0.0.1:${h.port},1\0X-Y=NotUnderstood\0`);
    text(51, Buffer.from('oops\0'));
    await c.waitFor(isReject(RejectReason.PROTOCOL_ERROR));
  });

  it('logs out: close session and close connection succeed, recovery is refused', async () => {
    const { h } = await target();
    const c = await raw(h);
    c.sendPdu({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, reason: 2, itt: 60, cid: 0, cmdSN: c.cmdSN, expStatSN: 0 });
    const a = await c.waitFor((p) => p.opcode === Opcode.LOGOUT_RESPONSE);
    expect(a.opcode === Opcode.LOGOUT_RESPONSE && a.response).toBe(2);
    c.sendPdu({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, reason: 1, itt: 61, cid: 0, cmdSN: c.cmdSN, expStatSN: 0 });
    const b = await c.waitFor((p) => p.opcode === Opcode.LOGOUT_RESPONSE && p.itt === 61);
    expect(b.opcode === Opcode.LOGOUT_RESPONSE && b.response).toBe(0);
    await c.closed;
  });

  it('answers a non-login PDU during login with INVALID DURING LOGIN and drops the connection', async () => {
    const { h } = await target();
    const s = connect({ host: h.host, port: h.port });
    cleanups.push(() => void s.destroy());
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => s.once('connect', r));
    s.write(encodePdu({ opcode: Opcode.NOP_OUT, immediate: true, lun: 0n, itt: 1, ttt: RESERVED_TAG, cmdSN: 1, expStatSN: 0 }));
    await new Promise((r) => s.once('close', r));
    const resp = Buffer.concat(chunks);
    expect(resp[0]! & 0x3f).toBe(Opcode.LOGIN_RESPONSE);
    expect((resp[36]! << 8) | resp[37]!).toBe(LoginStatus.INVALID_DURING_LOGIN);
  });

  it('refuses a wrong CHAP secret over TCP with 0x0201, and accepts the right one with digests', async () => {
    const { h } = await target({ chap: { users: { alice: 'alice-secret-123' }, mutual: { name: 'lib', secret: 'target-secret-456' } } });
    const err = await rawLogin({ host: h.host, port: h.port, iqn: h.iqn, chap: { name: 'alice', secret: 'nope-nope-nope' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoginError);
    expect((err as LoginError).status).toBe(LoginStatus.AUTHENTICATION_FAILURE);
    const s = await IscsiSession.open({ host: h.host, port: h.port, initiatorName: 'iqn.x:a', targetName: h.iqn, chap: { name: 'alice', secret: 'alice-secret-123' }, mutualChap: { name: 'lib', secret: 'target-secret-456' }, headerDigest: true, dataDigest: true });
    cleanups.push(() => s.close());
    expect(s.params.headerDigest && s.params.dataDigest).toBe(true);
    const port = new IscsiPort(s, 0);
    await port.execute(Cdb.testUnitReady());
    expect((await port.execute(Cdb.inquiry())).status).toBe(ScsiStatus.GOOD);
    expect(h.stats.loginFailures).toBeGreaterThanOrEqual(1);
  });

  it('drops a connection with a header digest error and rejects a data digest error', async () => {
    const { h } = await target();
    const c = await raw(h, { digests: true });
    const good = encodePdu({ opcode: Opcode.NOP_OUT, immediate: true, lun: 0n, itt: 70, ttt: RESERVED_TAG, cmdSN: c.cmdSN, expStatSN: 0, data: new Uint8Array(16) }, { header: true, data: true });
    const badData = Buffer.from(good);
    badData[60]! ^= 0xff;
    c.sendRaw(badData);
    await c.waitFor(isReject(RejectReason.DATA_DIGEST_ERROR));
    const badHeader = Buffer.from(good);
    badHeader[17]! ^= 0xff;
    c.sendRaw(badHeader);
    await c.closed;
    await cleanSession(h);
  });
});

// ------------------------------------------------------------------------------- fuzz

/** A tiny deterministic PRNG so a failing run can be replayed from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

/** `resets`: include task management that legitimately reaches every initiator (resets, CLEAR TASK SET). */
function fuzzPdu(r: () => number, cmdSN: number, resets = true): Buffer {
  const pick = <T,>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const int = (n: number): number => Math.floor(r() * n);
  const lun = encodeLun(int(3));
  const itt = int(64);
  const templates: Array<() => Pdu> = [
    () => ({ opcode: Opcode.NOP_OUT, immediate: r() < 0.5, lun, itt: r() < 0.1 ? RESERVED_TAG : itt, ttt: RESERVED_TAG, cmdSN, expStatSN: 0, ...(r() < 0.3 ? { data: new Uint8Array(int(300)) } : {}) }),
    () => ({ opcode: Opcode.SCSI_COMMAND, immediate: r() < 0.2, final: r() < 0.8, read: r() < 0.5, write: r() < 0.3, attr: int(8), lun, itt, expectedDataTransferLength: int(70000), cmdSN: (cmdSN + int(4) - 1) >>> 0, expStatSN: 0, cdb: cdb16(pick([Cdb.testUnitReady().cdb, Cdb.inquiry().cdb, putCdb(int(5000)), getCdb(int(5000)), Cdb.requestSense().cdb, Cdb.reportLuns().cdb, Uint8Array.of(int(256), int(256), int(256), int(256), int(256), int(256))])), ...(r() < 0.3 ? { data: new Uint8Array(int(2000)) } : {}) }),
    () => ({ opcode: Opcode.DATA_OUT, final: r() < 0.5, lun, itt, ttt: r() < 0.5 ? RESERVED_TAG : int(50), expStatSN: 0, dataSN: int(4), bufferOffset: int(3) * 1024, data: new Uint8Array(int(2048)) }),
    () => ({ opcode: Opcode.TASK_MGMT_REQUEST, immediate: true, function: pick(resets ? [1, 2, 4, 5, 6, 3, 8, 9, 0, 127] : [1, 2, 3, 8, 9, 0, 127]), lun, itt, referencedTaskTag: int(64), cmdSN, expStatSN: 0, refCmdSN: cmdSN, expDataSN: 0 }),
    () => ({ opcode: Opcode.TEXT_REQUEST, immediate: r() < 0.5, final: true, continue: r() < 0.1, lun: 0n, itt, ttt: RESERVED_TAG, cmdSN, expStatSN: 0, data: Buffer.from(pick(['SendTargets=All\0', 'SendTargets=\0', 'A=B\0', 'garbage', '=\0', 'X=' + 'y'.repeat(int(400)) + '\0'])) }),
    () => ({ opcode: Opcode.LOGIN_REQUEST, transit: true, continue: false, csg: 1, nsg: 3, versionMax: 0, versionMin: 0, isid: 1n, tsih: 0, itt, cid: 0, cmdSN, expStatSN: 0 }),
  ];
  const kind = r();
  if (kind < 0.55) return encodePdu(pick(templates)());
  if (kind < 0.85) {
    // A valid PDU with some header bytes flipped (length fields kept sane).
    const b = encodePdu(pick(templates)());
    for (let i = 0, n = 1 + int(4); i < n; i++) {
      const at = int(48);
      if (at >= 4 && at <= 7) continue;
      b[at] = int(256);
    }
    if ((b[0]! & 0x3f) === Opcode.LOGOUT_REQUEST || (b[0]! & 0x3f) === Opcode.TASK_MGMT_REQUEST) b[1] = b[1]! & 0x80 ? b[1]! : b[1]! | 0x80;
    return b;
  }
  // Random header with a random (bounded) data segment.
  const len = int(600);
  const ahs = int(3);
  const b = Buffer.alloc(48 + ahs * 4 + ((len + 3) & ~3));
  for (let i = 0; i < 48; i++) b[i] = int(256);
  b[4] = ahs;
  b.writeUIntBE(len, 5, 3);
  return b;
}

describe('iSCSI target: fuzz', () => {
  it('survives at least 100,000 random and mutated PDUs over many connections, then serves a clean session', async () => {
    const { h, lib } = await target({ cmdWindow: 16 });
    const TOTAL = 100_000;
    const CONNS = 8;
    const BATCH = 400;
    const deadline = Date.now() + 60_000;
    const started = performance.now();
    let sent = 0;
    let reconnects = 0;
    const r = rng(0x5eed1234);
    const worker = async (w: number): Promise<void> => {
      let c = await rawLogin({ host: h.host, port: h.port, iqn: h.iqn, initiatorName: `iqn.2026-11.io.ptpvts:fuzz${w}`, keep: false });
      while (sent < TOTAL && Date.now() < deadline) {
        if (c.isClosed()) {
          reconnects++;
          c = await rawLogin({ host: h.host, port: h.port, iqn: h.iqn, initiatorName: `iqn.2026-11.io.ptpvts:fuzz${w}`, keep: false });
        }
        const batch: Buffer[] = [];
        for (let i = 0; i < BATCH; i++) batch.push(fuzzPdu(r, c.cmdSN + i));
        c.cmdSN += BATCH;
        sent += BATCH;
        c.sendRaw(Buffer.concat(batch));
        // A round trip per batch keeps the sender from running ahead of the target.
        await Promise.race([c.closed, new Promise((res) => setTimeout(res, 2))]);
        await new Promise((res) => setImmediate(res));
      }
      c.close();
    };
    await Promise.all(Array.from({ length: CONNS }, (_, w) => worker(w)));
    const seconds = (performance.now() - started) / 1000;
    // Let the target finish what it was given before checking it.
    await new Promise((res) => setTimeout(res, 200));
    console.log(`fuzz: ${sent} PDUs over ${CONNS} connections (+${reconnects} reconnects) in ${seconds.toFixed(2)} s; target saw ${h.stats.rejects} rejects, ${h.stats.dropped} dropped, ${h.stats.commands} commands, ${h.stats.connections} connections`);
    expect(sent).toBeGreaterThanOrEqual(TOTAL);
    expect(seconds).toBeLessThan(60);
    await cleanSession(h);
    for (const u of lib.units) expect(u.bugs).toEqual([]);
  }, 90_000);

  it('keeps a session working while another session sends garbage', async () => {
    const { h } = await target();
    const good = await IscsiSession.open({ host: h.host, port: h.port, initiatorName: 'iqn.2026-11.io.ptpvts:good', targetName: h.iqn, defaultTimeoutMs: 5000 });
    cleanups.push(() => good.close());
    const port = new IscsiPort(good, 0);
    await port.execute(Cdb.testUnitReady());
    // A reset that a mutated PDU of the other session happens to ask for reaches every
    // initiator as a unit attention (SAM-5): that is SCSI, not interference, so retry it.
    const run = async (req: ScsiRequest): Promise<ScsiResponse> => {
      for (;;) {
        const r = await port.execute(req);
        if (r.status !== ScsiStatus.CHECK_CONDITION || decodeSense(r.sense).key !== SenseKey.UNIT_ATTENTION) return r;
      }
    };
    let stop = false;
    const noise = (async () => {
      const r = rng(99);
      while (!stop) {
        const c = await rawLogin({ host: h.host, port: h.port, iqn: h.iqn, initiatorName: 'iqn.2026-11.io.ptpvts:evil', keep: false });
        for (let i = 0; i < 20 && !stop && !c.isClosed(); i++) {
          c.sendRaw(Buffer.concat(Array.from({ length: 100 }, (_, k) => fuzzPdu(r, c.cmdSN + k, false))));
          c.cmdSN += 100;
          await new Promise((res) => setTimeout(res, 1));
        }
        // Raw garbage too, which no framing survives.
        c.sendRaw(Buffer.from(Array.from({ length: 4096 }, () => Math.floor(r() * 256))));
        c.close();
      }
    })().catch((e: unknown) => {
      if (!stop) throw e;
    });
    try {
      for (let i = 0; i < 150; i++) {
        const n = 1 + ((i * 7919) % 200000);
        const data = Uint8Array.from({ length: n }, (_, k) => (k + i) & 0xff);
        const w = await run({ cdb: putCdb(n), direction: 'out', dataOut: data });
        expect(w.status, Buffer.from(w.sense).toString('hex')).toBe(ScsiStatus.GOOD);
        const rd = await run({ cdb: getCdb(n), direction: 'in', dataInLength: n });
        expect(rd.status, Buffer.from(rd.sense).toString('hex')).toBe(ScsiStatus.GOOD);
        expect(Buffer.from(rd.data).equals(Buffer.from(data))).toBe(true);
      }
    } finally {
      stop = true;
    }
    await noise;
    expect(good.connections).toBe(1);
  }, 60_000);
});
