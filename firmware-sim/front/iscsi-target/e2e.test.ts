import { afterEach, describe, expect, it } from 'vitest';
import * as Cdb from '../../../src/scsi/cdb.js';
import { decodeSense, isSense, Sense } from '../../../src/scsi/sense.js';
import { ScsiStatus } from '../../../src/scsi/status.js';
import { IscsiSession, type IscsiSessionOptions } from '../../../src/iscsi/session.js';
import { LoginError } from '../../../src/iscsi/errors.js';
import { LoginStatus } from '../../../src/iscsi/constants.js';
import { discoverTargets } from '../../../src/iscsi/discovery.js';
import { IscsiPort, openIscsiPort } from '../../../src/transport/iscsi/iscsi-port.js';
import { TransportError } from '../../../src/transport/scsi-port.js';
import { startIscsiTarget, type IscsiTargetHandle, type IscsiTargetOptions } from './target.js';
import { getCdb, hangCdb, putCdb, ToyTarget } from './fixture.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function target(opts: Partial<IscsiTargetOptions> = {}): Promise<{ h: IscsiTargetHandle; lib: ToyTarget }> {
  const lib = new ToyTarget();
  const h = await startIscsiTarget({ target: lib, host: '127.0.0.1', port: 0, ...opts });
  cleanups.push(() => h.stop());
  return { h, lib };
}

async function session(h: IscsiTargetHandle, opts: Partial<IscsiSessionOptions> = {}): Promise<IscsiSession> {
  const s = await IscsiSession.open({ host: h.host, port: h.port, initiatorName: 'iqn.2026-11.io.ptpvts:test-init', targetName: h.iqn, ...opts });
  cleanups.push(() => s.close());
  return s;
}

async function clearUa(port: IscsiPort): Promise<void> {
  const r = await port.execute(Cdb.testUnitReady());
  if (r.status === ScsiStatus.CHECK_CONDITION) expect(isSense(decodeSense(r.sense), Sense.POWER_ON_RESET)).toBe(true);
}

const pattern = (n: number, seed = 7): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('iSCSI initiator against the emulator target', () => {
  it('logs in, answers INQUIRY, REPORT LUNS and the power-on unit attention', async () => {
    const { h } = await target();
    const port = await openIscsiPort({ host: h.host, port: h.port, initiatorName: 'iqn.2026-11.io.ptpvts:i1', targetName: h.iqn, lun: 0 });
    cleanups.push(() => port.close());
    const inq = await port.execute(Cdb.inquiry());
    expect(inq.status).toBe(ScsiStatus.GOOD);
    expect(Buffer.from(inq.data.subarray(8, 16)).toString().trim()).toBe('PTPVTS');
    expect(inq.residual).toBe(255 - inq.data.length);
    const ua = await port.execute(Cdb.testUnitReady());
    expect(ua.status).toBe(ScsiStatus.CHECK_CONDITION);
    expect(isSense(decodeSense(ua.sense), Sense.POWER_ON_RESET)).toBe(true);
    expect((await port.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
    const luns = await port.execute(Cdb.reportLuns());
    expect(luns.status).toBe(ScsiStatus.GOOD);
    expect(port.address).toContain(h.iqn);
  });

  it.each([
    ['defaults', {}, {}],
    ['digests, small segments', { headerDigest: true, dataDigest: true, maxRecvDataSegmentLength: 4096 }, { maxRecvDataSegmentLength: 1024 }],
    ['InitialR2T=Yes, no immediate data', { initialR2T: true, immediateData: false }, { maxBurstLength: 8192, firstBurstLength: 4096 }],
    ['unsolicited data, small bursts', { initialR2T: false, immediateData: true, firstBurstLength: 8192, maxBurstLength: 16384 }, { maxRecvDataSegmentLength: 2048 }],
  ] as const)('moves data both ways across burst boundaries (%s)', async (_n, init, tgt) => {
    const { h } = await target(tgt);
    const s = await session(h, init);
    const port = new IscsiPort(s, 1);
    await clearUa(port);
    for (const n of [0, 1, 511, 512, 513, 4095, 8192, 8193, 65535, 65536, 65537, 262144, 300001, 1048576]) {
      const data = pattern(n, n & 0xff);
      const w = await port.execute({ cdb: putCdb(n), direction: 'out', dataOut: data });
      expect(w.status, `write ${n}`).toBe(ScsiStatus.GOOD);
      const r = await port.execute({ cdb: getCdb(Math.min(n + 100, 0xffffff)), direction: 'in', dataInLength: n + 100 });
      expect(r.status).toBe(ScsiStatus.GOOD);
      expect(r.data.length, `read ${n}`).toBe(n);
      expect(r.residual).toBe(100);
      expect(Buffer.from(r.data).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('pipelines 16 commands at once and keeps them apart', async () => {
    const { h } = await target();
    const s = await session(h, { queueDepth: 16 });
    const ports = [new IscsiPort(s, 0), new IscsiPort(s, 1)];
    for (const p of ports) await clearUa(p);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => ports[i % 2]!.execute(i % 3 === 0 ? Cdb.inquiry({ allocationLength: 36 + (i % 50) }) : Cdb.testUnitReady())),
    );
    results.forEach((r, i) => {
      expect(r.status).toBe(ScsiStatus.GOOD);
      if (i % 3 === 0) expect(r.data.length).toBe(36 + (i % 50));
    });
  });

  it('times out a hung command with ABORT TASK, and the session goes on', async () => {
    const { h, lib } = await target();
    const s = await session(h);
    const port = new IscsiPort(s, 0);
    await clearUa(port);
    const t0 = Date.now();
    const err = await port.execute({ cdb: hangCdb(), direction: 'none', timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('ETIMEDOUT');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(lib.units[0]!.inFlight()).toBe(0);
    expect(s.connections).toBe(1);
    expect((await port.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
  });

  it('cancels a command through its AbortSignal (ECANCELED)', async () => {
    const { h, lib } = await target();
    const s = await session(h);
    const port = new IscsiPort(s, 0);
    await clearUa(port);
    const ac = new AbortController();
    const p = port.execute({ cdb: hangCdb(), direction: 'none', signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ name: 'TransportError', code: 'ECANCELED' });
    expect(lib.units[0]!.inFlight()).toBe(0);
    expect((await port.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
  });

  it('reports ECONNRESET when the target stops mid-command, then reconnects', async () => {
    const lib = new ToyTarget();
    const h1 = await startIscsiTarget({ target: lib, port: 0 });
    const s = await IscsiSession.open({ host: h1.host, port: h1.port, initiatorName: 'iqn.2026-11.io.ptpvts:r', targetName: h1.iqn });
    cleanups.push(() => s.close());
    const port = new IscsiPort(s, 0);
    await clearUa(port);
    const hung = port.execute({ cdb: hangCdb(), direction: 'none' });
    await new Promise((r) => setTimeout(r, 50));
    await h1.stop();
    await expect(hung).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(lib.units[0]!.inFlight()).toBe(0);
    // Same port number again: the session logs in anew for the next command.
    const h2 = await startIscsiTarget({ target: lib, port: h1.port });
    cleanups.push(() => h2.stop());
    expect((await port.execute(Cdb.testUnitReady())).status).toBe(ScsiStatus.GOOD);
    expect(s.connections).toBe(2);
  });

  it('answers an unknown LUN with LOGICAL UNIT NOT SUPPORTED', async () => {
    const { h } = await target();
    const s = await session(h);
    const r = await new IscsiPort(s, 9).execute(Cdb.inquiry());
    expect(r.status).toBe(ScsiStatus.CHECK_CONDITION);
    expect(isSense(decodeSense(r.sense), Sense.LOGICAL_UNIT_NOT_SUPPORTED)).toBe(true);
  });

  it('rejects ECLOSED after close and validates requests', async () => {
    const { h } = await target();
    const port = await openIscsiPort({ host: h.host, port: h.port, initiatorName: 'iqn.2026-11.io.ptpvts:c', targetName: h.iqn, lun: 0 });
    await expect(port.execute({ cdb: new Uint8Array(3), direction: 'none' })).rejects.toMatchObject({ code: 'EINVAL' });
    await port.close();
    await port.close();
    await expect(port.execute(Cdb.testUnitReady())).rejects.toMatchObject({ code: 'ECLOSED' });
  });

  it('discovers the target with SendTargets', async () => {
    const { h } = await target();
    const found = await discoverTargets({ host: h.host, port: h.port, initiatorName: 'iqn.2026-11.io.ptpvts:d' });
    expect(found).toEqual([{ name: h.iqn, addresses: [`127.0.0.1:${h.port},1`] }]);
  });

  it('refuses an unknown target name with NOT FOUND', async () => {
    const { h } = await target();
    const err = await IscsiSession.open({ host: h.host, port: h.port, initiatorName: 'iqn.x:y', targetName: 'iqn.2026-11.io.ptpvts:nope' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoginError);
    expect((err as LoginError).status).toBe(LoginStatus.NOT_FOUND);
  });

  it('pings: the target NOP-Ins an idle connection and the initiator answers', async () => {
    const { h } = await target({ nopInIntervalMs: 50, nopInTimeoutMs: 500 });
    const s = await session(h, { nopIntervalMs: 60 });
    await new Promise((r) => setTimeout(r, 400));
    expect(s.state).toBe('up');
    expect(await s.ping()).toBeGreaterThanOrEqual(0);
    expect(s.connections).toBe(1);
  });
});
